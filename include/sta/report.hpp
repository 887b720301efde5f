#pragma once
// `sta report`: one self-contained HTML page that explains STA with the library's own numbers
// and pictures (counts of preset shapes, the theorem check, block maps, windows) and, given a
// Google Benchmark JSON file, a chart of wall time and effective GFLOP/s.
#include <string>
#include <vector>

#include "sta/svg.hpp"

namespace sta {

/// One benchmark of a Google Benchmark JSON file, reduced to what the report shows.
struct BenchmarkResult {
  std::string name;                ///< run name (aggregates: the run they summarise)
  double real_time_ms = 0;         ///< wall time per iteration, milliseconds
  double gflops = -1;              ///< the "GFLOP/s" counter; < 0 when absent
  double dense = -1, mixed = -1, empty = -1;  ///< block counters when present; < 0 when absent
  int runs = 0;                    ///< repetitions averaged (0 for an aggregate taken as is)
};

/// Reads the output of `--benchmark_format=json` (or `--benchmark_out`): a top-level object
/// with a "benchmarks" array of objects with "name", "real_time", "time_unit" (ns, us, ms or
/// s; ns when absent) and optional counters ("GFLOP/s", "dense", "mixed", "empty"). Tolerant:
/// unknown fields, trailing commas, NaN/Infinity and entries without a time are ignored;
/// errored runs are skipped; repetitions of a name are averaged unless a "median" (or else
/// "mean") aggregate exists, which is then used. Throws sta::Error naming `source` and the
/// byte offset on malformed JSON, or when there is no "benchmarks" array.
std::vector<BenchmarkResult> parse_benchmark_json(const std::string& text, const std::string& source);

/// Two horizontal bar charts side by side: wall time (ms, lower is better) and effective
/// GFLOP/s (higher is better), one bar per benchmark, coloured by the backend its name
/// mentions (sta, natten, dense, reference). Shows at most 40 benchmarks (says so if more).
Svg benchmark_chart_svg(const std::vector<BenchmarkResult>& results);

/// What report_html() puts on the page besides the fixed sections.
struct ReportOptions {
  std::vector<BenchmarkResult> benchmarks;  ///< empty = no benchmark section, only a how-to
  std::string benchmark_source;             ///< file name shown with the chart
};

/// The complete HTML page (inline CSS and SVG, no scripts, no network): what STA is, block
/// counts of preset shapes (HunyuanVideo 30x48x80 with STA and SWA in tiled and raster
/// order, a 2D image), the theorem check summary, block maps and window pictures of small
/// shapes, and the benchmark chart and table when given. Takes about a second.
std::string report_html(const ReportOptions& options);

}  // namespace sta
