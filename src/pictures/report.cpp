#include "sta/report.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/json.hpp"
#include "sta/theory.hpp"
#include "sta/viz.hpp"

#ifndef STA_VERSION
#define STA_VERSION "dev"
#endif

namespace sta {

namespace {

// ---------------------------------------------------------------------------------------
// Benchmark JSON, read with sta::parse_json in its lenient mode.

const JsonValue* member(const JsonValue& obj, const std::string& key) {
  const auto it = obj.object.find(key);
  return it == obj.object.end() ? nullptr : &it->second;
}
double number_or(const JsonValue& obj, const std::string& key, double fallback) {
  const JsonValue* v = member(obj, key);
  return v && v->type == JsonValue::Type::kNumber && std::isfinite(v->number) ? v->number : fallback;
}
std::string string_or(const JsonValue& obj, const std::string& key, const std::string& fallback) {
  const JsonValue* v = member(obj, key);
  return v && v->type == JsonValue::Type::kString ? v->text : fallback;
}

double to_ms(double t, const std::string& unit) {
  if (unit == "s") return t * 1e3;
  if (unit == "ms") return t;
  if (unit == "us") return t * 1e-3;
  return t * 1e-6;  // ns, Google Benchmark's default
}

// ---------------------------------------------------------------------------------------
// HTML helpers.

std::string html(const std::string& s) { return xml_escape(s); }

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pct(double fraction, int decimals = 2) { return fixed(100.0 * fraction, decimals) + "%"; }

std::string backend_of(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<std::string> tokens(1);
  for (char c : lower) {
    if (c == '/' || c == '_' || c == ':' || c == '-' || c == '<' || c == '>' || c == ' ' || c == ',')
      tokens.emplace_back();
    else
      tokens.back() += c;
  }
  for (const char* b : {"sta", "natten", "dense", "reference"})
    for (const auto& t : tokens)
      if (t == b) return b;
  for (const auto& t : tokens)
    if (t == "ref" || t == "naive") return "reference";
  return "other";
}

const char* backend_colour(const std::string& b) {
  if (b == "sta") return kDenseColour;
  if (b == "natten") return kMixedColour;
  if (b == "dense") return "#777777";
  if (b == "reference") return "#CC79A7";
  return "#56B4E9";
}

struct Preset {
  std::string shape;  // row group label
  Geometry geometry;
  Mask mask;
  BlockPartition partition;
  std::string note;
};

Geometry geometry(Extent3 canvas, Extent3 tile) {
  Geometry g;
  g.canvas = canvas;
  g.tile = tile;
  return g;
}

std::string figure(const Svg& svg, const std::string& caption, double max_width) {
  return "<figure>\n" + svg.inline_str(max_width) + "<figcaption>" + caption +
         "</figcaption>\n</figure>\n";
}

const char* kCss = R"(
body{margin:0;background:#fafafa;color:#222;font:16px/1.55 "DejaVu Sans",Helvetica,Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:30px;margin:8px 0 4px}
h2{font-size:22px;margin:40px 0 8px;border-bottom:2px solid #0072B2;padding-bottom:4px}
p,li{max-width:60em}
code{background:#f0f0f0;padding:1px 4px;border-radius:3px;font-size:90%}
.meta{color:#666;margin-top:0}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:12px 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#eef3f8}
td.l,th.l{text-align:left}
tr.ok td.status{color:#1a7f37;font-weight:bold}
tr.bad td.status{color:#b00020;font-weight:bold}
figure{margin:18px 0 30px}
figcaption{color:#555;font-size:14px;max-width:60em;margin-top:4px}
.key{display:inline-block;width:12px;height:12px;vertical-align:-1px;margin-right:4px}
)";

std::string counts_section() {
  const Geometry hunyuan = geometry({30, 48, 80}, {6, 8, 8});
  const Geometry image = geometry({1, 80, 80}, {1, 8, 8});
  const BlockPartition raster128{Layout::kRaster, 128, 128};
  const BlockPartition raster64{Layout::kRaster, 64, 64};
  const std::vector<Preset> presets = {
      {"HunyuanVideo 720p: 30\xC3\x97" "48\xC3\x97" "80 tokens, tile 6\xC3\x97" "8\xC3\x97" "8 (5\xC3\x97" "6\xC3\x97" "10 tiles)",
       hunyuan, Mask::full(), {}, "full attention"},
      {"", hunyuan, Mask::sta({3, 3, 3}), {}, "STA, the paper's main setting"},
      {"", hunyuan, Mask::swa({19, 25, 25}), {}, "SWA at about the same sparsity"},
      {"", hunyuan, Mask::swa({19, 25, 25}), raster128, "the same SWA, raster order, 128\xC3\x97" "128 blocks"},
      {"", hunyuan, Mask::sta({5, 5, 5}), {}, "a larger STA window (t covers the axis)"},
      {"", hunyuan, Mask::swa({29, 39, 39}), {}, "SWA at about the same sparsity"},
      {"2D image: 80\xC3\x97" "80 tokens, tile 8\xC3\x97" "8 (10\xC3\x97" "10 tiles)", image, Mask::sta({1, 6, 6}), {},
       "even K = 6 acts as 7 tiles"},
      {"", image, Mask::swa({1, 55, 55}), {}, "SWA at about the same sparsity"},
      {"", image, Mask::swa({1, 55, 55}), raster64, "the same SWA, raster order, 64\xC3\x97" "64 blocks"},
  };
  std::string s =
      "<table>\n<tr><th class=\"l\">mask</th><th class=\"l\">order, block</th><th>dense</th>"
      "<th>mixed</th><th>empty</th><th>computed blocks</th><th>of which masked</th>"
      "<th>sparsity</th><th class=\"l\">note</th></tr>\n";
  for (const Preset& p : presets) {
    if (!p.shape.empty())
      s += "<tr><th class=\"l\" colspan=\"9\">" + html(p.shape) + "</th></tr>\n";
    const BlockStats st = classify_blocks(p.geometry, p.mask, p.partition);
    const BlockCounts& c = st.counts;
    const int64_t computed = c.dense + c.mixed;
    const bool two_d = p.geometry.canvas.t == 1;
    std::string m = to_string(p.mask);
    if (two_d && p.mask.kind != MaskKind::kFull)
      m = m.substr(0, m.find(':') + 1) + std::to_string(p.mask.window.h) + "," + std::to_string(p.mask.window.w);
    const std::string cut = p.partition.order == Layout::kTiled
                                ? "tiled, tile (" + std::to_string(p.geometry.tile_tokens()) + ")"
                                : "raster, " + std::to_string(p.partition.block_q) + "\xC3\x97" +
                                      std::to_string(p.partition.block_k);
    s += "<tr><td class=\"l\"><code>" + html(m) + "</code></td><td class=\"l\">" + html(cut) + "</td><td>" +
         group_thousands(c.dense) + "</td><td>" + group_thousands(c.mixed) + "</td><td>" +
         group_thousands(c.empty) + "</td><td>" + group_thousands(computed) + "</td><td>" +
         (computed ? pct(static_cast<double>(c.mixed) / computed, 1) : "\xE2\x80\x93") + "</td><td>" +
         pct(st.sparsity()) + "</td><td class=\"l\">" + html(p.note) + "</td></tr>\n";
  }
  return s + "</table>\n";
}

std::string theorems_section() {
  const auto rows = check_theorems();
  struct Summary {
    int64_t rows = 0, claimed = 0, exact = 0, failed = 0, max_dense = 0, max_mixed = 0;
  };
  std::map<std::string, Summary> by;
  std::vector<std::string> order;
  for (const TheoremCheck& r : rows) {
    const std::string key = r.theorem + " " + r.mode;
    if (!by.count(key)) order.push_back(key);
    Summary& s = by[key];
    ++s.rows;
    s.claimed += r.exact_claim;
    s.exact += r.matches();
    s.failed += r.failed();
    s.max_dense = std::max<int64_t>(s.max_dense, std::llabs(r.measured.dense - r.predicted.dense));
    s.max_mixed = std::max<int64_t>(s.max_mixed, std::llabs(r.measured.mixed - r.predicted.mixed));
  }
  const std::map<std::string, std::string> meaning = {
      {"3.1 torus", "SWA with wrap-around: the theorem's setting, exact when the window's tile span fits"},
      {"3.1 interior", "clamped SWA, query tiles whose window touches no border: exact"},
      {"3.1 clamped", "clamped SWA, all tiles: borders change the counts (no claim; deviation shown)"},
      {"3.2 sta", "STA: exact for odd K \xE2\x89\xA4 n"},
  };
  std::string s =
      "<table>\n<tr><th class=\"l\">theorem, mode</th><th class=\"l\">what is checked</th>"
      "<th>configurations</th><th>exact claims</th><th>formula = classifier</th>"
      "<th>failed claims</th><th>max |&#916;dense|</th><th>max |&#916;mixed|</th>"
      "<th class=\"l\">status</th></tr>\n";
  int64_t failed = 0;
  for (const std::string& key : order) {
    const Summary& m = by[key];
    failed += m.failed;
    const auto it = meaning.find(key);
    s += std::string("<tr class=\"") + (m.failed ? "bad" : "ok") + "\"><td class=\"l\">" + html(key) +
         "</td><td class=\"l\">" + html(it == meaning.end() ? "" : it->second) + "</td><td>" +
         group_thousands(m.rows) + "</td><td>" + group_thousands(m.claimed) + "</td><td>" +
         group_thousands(m.exact) + "</td><td>" + group_thousands(m.failed) + "</td><td>" +
         group_thousands(m.max_dense) + "</td><td>" + group_thousands(m.max_mixed) +
         "</td><td class=\"l status\">" + (m.failed ? "FAILED" : "ok") + "</td></tr>\n";
  }
  s += "</table>\n";
  // The paper's Table 1: T = 4, W = 11, n = 12, 3D, on the torus.
  const TheoremCheck t1 = check_theorem31(48, 4, 11, "torus");
  const double all = std::pow(12.0, 6);
  s += "<p>The paper's Table 1 (tile T = 4, window W = 11, n = 12 tiles per axis): the formula "
       "gives " + pct(t1.predicted.dense / all, 4) + " dense and " + pct(t1.predicted.mixed / all, 3) +
       " mixed blocks, the classifier measures " + pct(t1.measured.dense / all, 4) + " and " +
       pct(t1.measured.mixed / all, 3) + ". Note the <em>ceil</em> in the mixed count (SPEC 5): with a "
       "floor, T = 2, W = 3 would give 0 mixed blocks per query tile instead of 26.</p>\n";
  s += std::string("<p><strong>") + (failed ? "Some exact claims FAILED" : "Every exact claim holds") + "</strong> (" +
       group_thousands(static_cast<int64_t>(rows.size())) + " configurations, 3D and 2D; <code>sta theorems</code> prints them).</p>\n";
  return s;
}

std::string pictures_section() {
  std::string s;
  const Geometry small = geometry({16, 32, 32}, {4, 8, 8});
  {
    std::vector<BlockPanel> panels = {{Mask::sta({3, 3, 3}), {}}, {Mask::swa({12, 24, 24}), {}}};
    BlocksPictureOptions o;
    o.title = "STA vs SWA at the same sparsity: video 16\xC3\x97" "32\xC3\x97" "32, tile 4\xC3\x97" "8\xC3\x97" "8 (4\xC3\x97" "4\xC3\x97" "4 tiles)";
    s += figure(blocks_svg(small, panels, o),
                "STA <code>sta:3,3,3</code> and token-wise SWA <code>swa:12,24,24</code> (the same window "
                "in tokens, 3 tiles per axis) keep exactly the same fraction of the attention map "
                "(57.81% sparsity). STA's blocks are all dense or empty; SWA's window edges cut through "
                "tiles and leave most computed blocks mixed. <code>sta viz blocks --video 16,32,32 --tile "
                "4,8,8 --mask sta:3,3,3 --compare swa:12,24,24</code>",
                1260);
  }
  {
    std::vector<BlockPanel> panels = {{Mask::swa({12, 24, 24}), {Layout::kRaster, 256, 256}},
                                      {Mask::swa({12, 24, 24}), {}}};
    BlocksPictureOptions o;
    o.title = "Why tiling matters: the same SWA in raster order and in tiled order (256-token blocks)";
    s += figure(blocks_svg(small, panels, o),
                "The same mask cut into the same number of 256-token blocks. In raster order a block is "
                "a run of 256 consecutive tokens (8 rows of one frame): a 3D window cuts nearly every "
                "block it touches, so no block is dense. In tiled order a block is a 4\xC3\x97" "8\xC3\x97" "8 cube "
                "of the video and whole tiles fall inside the window. <code>sta viz blocks ... --mask "
                "swa:12,24,24 --order raster --order tiled --block 256,256</code>",
                1260);
  }
  {
    const Geometry image = geometry({1, 80, 80}, {1, 8, 8});
    std::vector<BlockPanel> panels = {{Mask::sta({1, 6, 6}), {}}, {Mask::swa({1, 55, 55}), {}}};
    s += figure(blocks_svg(image, panels),
                "A 2D image of 10\xC3\x97" "10 tiles: STA 6\xC3\x97" "6 (an even K covers K+1 = 7 tiles) against a "
                "55\xC3\x97" "55-token window. Grey lines separate rows of tiles: each band is one row of "
                "query tiles against one row of key tiles.",
                1260);
  }
  return s;
}

std::string windows_section() {
  std::string s;
  const Geometry image = geometry({1, 80, 80}, {1, 8, 8});
  s += figure(window_svg(image, Mask::sta({1, 6, 6}), {0, 3, 5}),
              "The README's example (FastVideo's kernel README): a 10\xC3\x97" "10-tile image with window "
              "6\xC3\x97" "6 tiles. An even window covers K+1 = 7 tiles (the effective window). At the corner "
              "the window does not shrink: its centre is clamped to tile (3,3), so the query tile still "
              "attends 49 tiles. <code>sta viz window --video 80,80 --tile 8,8 --mask sta:6,6 --query 3,5</code>",
              900);
  s += figure(window_svg(image, Mask::swa({1, 28, 28}), {0, 3, 45}),
              "Token-wise SWA (NATTEN): every query token has its own 28\xC3\x97" "28 box, shifted at the "
              "border. The query tile's blocks are dense only where every one of its 64 queries sees the "
              "whole key tile; everywhere else the kernel needs a per-element mask.",
              900);
  const Geometry video = geometry({16, 32, 32}, {4, 8, 8});
  s += figure(window_svg(video, Mask::sta({3, 3, 3}), {1, 2, 30}),
              "In 3D one panel per frame of tiles: the query tile attends 3\xC3\x97" "3\xC3\x97" "3 = 27 key tiles "
              "in three frames of tiles, shifted at the borders in t, y and x.",
              1260);
  return s;
}

std::string benchmark_section(const ReportOptions& o) {
  if (o.benchmarks.empty())
    return "<p>No benchmark file was given. Run the Google Benchmark suite with "
           "<code>--benchmark_format=json &gt; bench.json</code> (or <code>--benchmark_out=bench.json</code>) "
           "and pass it with <code>sta report --out DIR --bench bench.json</code> to add a chart of wall "
           "time and effective GFLOP/s here.</p>\n";
  std::string s = "<p>From <code>" + html(o.benchmark_source) + "</code>: " +
                  group_thousands(static_cast<int64_t>(o.benchmarks.size())) +
                  " benchmarks. Effective GFLOP/s counts the FLOPs of the attention the mask keeps, so a "
                  "sparse kernel that skips work well reaches the same GFLOP/s as a dense one.</p>\n";
  s += figure(benchmark_chart_svg(o.benchmarks), "Wall time per iteration and effective GFLOP/s.", 1260);
  s += "<table>\n<tr><th class=\"l\">benchmark</th><th>wall time (ms)</th><th>GFLOP/s</th><th>dense</th>"
       "<th>mixed</th><th>empty</th></tr>\n";
  auto opt = [](double v, int decimals) { return v < 0 ? std::string("\xE2\x80\x93") : fixed(v, decimals); };
  auto count = [](double v) {
    return v < 0 ? std::string("\xE2\x80\x93") : group_thousands(static_cast<int64_t>(std::llround(v)));
  };
  for (const BenchmarkResult& b : o.benchmarks)
    s += "<tr><td class=\"l\"><code>" + html(b.name) + "</code></td><td>" + fixed(b.real_time_ms, 3) +
         "</td><td>" + opt(b.gflops, 2) + "</td><td>" + count(b.dense) + "</td><td>" + count(b.mixed) +
         "</td><td>" + count(b.empty) + "</td></tr>\n";
  return s + "</table>\n";
}

}  // namespace

namespace {
constexpr double kMaxBenchMs = 1e12, kMinBenchMs = 1e-9;
}  // namespace

std::vector<BenchmarkResult> parse_benchmark_json(const std::string& text, const std::string& source) {
  // Google Benchmark may write NaN / Infinity counters; be lenient about trailing commas.
  const JsonValue doc = parse_json(text, source, {true, true});
  const JsonValue* list = doc.is_object() ? member(doc, "benchmarks") : nullptr;
  if (!list || list->type != JsonValue::Type::kArray)
    throw Error(source + ": no \"benchmarks\" array; expected Google Benchmark JSON "
                "(--benchmark_format=json)");
  struct Acc {
    BenchmarkResult r;
    double time_sum = 0, gflops_sum = 0;
    int gflops_runs = 0;
    bool median = false, mean = false;
  };
  std::vector<std::string> order;
  std::map<std::string, Acc> acc;
  for (const JsonValue& b : list->array) {
    if (!b.is_object()) continue;
    const std::string name = string_or(b, "name", "");
    const JsonValue* err = member(b, "error_occurred");
    if (name.empty() || (err && err->type == JsonValue::Type::kBool && err->boolean)) continue;
    const double t = number_or(b, "real_time", -1);
    if (t < 0) continue;
    const double ms = to_ms(t, string_or(b, "time_unit", "ns"));
    // Extreme values would make the chart's decade ticks loop without end (hi = inf).
    if (!(ms <= kMaxBenchMs) || (ms > 0 && ms < kMinBenchMs))
      throw Error(source + ": benchmark '" + name + "' has real_time " + std::to_string(t) +
                  "; expected a time between 1e-9 ms and 1e12 ms");
    const bool aggregate = string_or(b, "run_type", "iteration") == "aggregate";
    const std::string agg = string_or(b, "aggregate_name", "");
    if (aggregate && agg != "median" && agg != "mean") continue;  // stddev, cv, ...
    const std::string key = aggregate ? string_or(b, "run_name", name) : name;
    if (!acc.count(key)) {
      order.push_back(key);
      acc[key].r.name = key;
    }
    Acc& a = acc[key];
    BenchmarkResult& r = a.r;
    // Counters outside a plausible range (NaN, inf, 1e300) are treated as absent.
    double gflops = number_or(b, "GFLOP/s", -1);
    if (!(gflops >= 0 && gflops <= 1e12)) gflops = -1;
    for (auto [field, out] : {std::pair<const char*, double*>{"dense", &r.dense}, {"mixed", &r.mixed}, {"empty", &r.empty}}) {
      const double v = number_or(b, field, -1);
      if (v >= 0 && v <= 1e18) *out = v;
    }
    if (aggregate) {
      // A median beats a mean, and either beats averaging the repetitions ourselves.
      if (a.median || (a.mean && agg == "mean")) continue;
      a.median = agg == "median";
      a.mean = agg == "mean";
      r.real_time_ms = ms;
      r.gflops = gflops;
      r.runs = 0;
      continue;
    }
    if (a.median || a.mean) continue;
    a.time_sum += ms;
    ++r.runs;
    if (gflops >= 0) {
      a.gflops_sum += gflops;
      ++a.gflops_runs;
    }
    r.real_time_ms = a.time_sum / r.runs;
    r.gflops = a.gflops_runs ? a.gflops_sum / a.gflops_runs : -1;
  }
  std::vector<BenchmarkResult> out;
  for (const std::string& k : order) out.push_back(acc[k].r);
  return out;
}

Svg benchmark_chart_svg(const std::vector<BenchmarkResult>& all) {
  const size_t shown = std::min<size_t>(all.size(), 40);
  const std::vector<BenchmarkResult> rows(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(shown));
  const double label_w = 330, chart_w = 380, gap = 40, row_h = 22, top = 96;
  const double width = 24 + label_w + chart_w + gap + chart_w + 90;
  const double height = top + row_h * std::max<size_t>(shown, 1) + 66;
  const std::string title = "Benchmarks: wall time and effective GFLOP/s";
  Svg svg(width, height, title);
  svg.rect(0, 0, width, height, SvgStyle{"#FFFFFF", "", 0, "", 1, "", ""});
  TextStyle t;
  t.size = 20;
  t.weight = "bold";
  svg.text(24, 34, title, t);
  TextStyle note;
  note.size = 13;
  note.fill = "#555555";
  std::string sub = "One bar per benchmark, coloured by the backend its name mentions.";
  if (all.size() > shown) sub += " Showing the first " + std::to_string(shown) + " of " + std::to_string(all.size()) + ".";
  svg.text(24, 56, sub, note);
  double tmax = 0, tmin = HUGE_VAL, gmax = 0;
  for (const auto& r : rows) {
    tmax = std::max(tmax, r.real_time_ms);
    if (r.real_time_ms > 0) tmin = std::min(tmin, r.real_time_ms);
    gmax = std::max(gmax, r.gflops);
  }
  // Times of different backends span decades: a log axis keeps the fast ones visible.
  const bool log_time = tmax > 0 && tmin < HUGE_VAL && tmax / tmin > 50;
  const double lo = log_time ? std::pow(10.0, std::floor(std::log10(tmin))) : 0;
  const double hi = log_time ? std::pow(10.0, std::ceil(std::log10(tmax) + 1e-9)) : tmax;
  auto time_width = [&](double ms) {
    if (ms <= 0 || hi <= 0) return 0.0;
    if (!log_time) return chart_w * ms / hi;
    return chart_w * std::log10(ms / lo) / std::log10(hi / lo);
  };
  const double x_time = 24 + label_w, x_gf = x_time + chart_w + gap;
  TextStyle head;
  head.size = 13;
  head.weight = "bold";
  svg.text(x_time, top - 10,
           std::string("wall time per iteration, ms") + (log_time ? ", log scale" : "") + " (lower is better)",
           head);
  svg.text(x_gf, top - 10, "effective GFLOP/s (higher is better)", head);
  TextStyle lab;
  lab.size = 12;
  lab.anchor = "end";
  TextStyle val;
  val.size = 11;
  val.fill = "#333333";
  std::map<std::string, bool> used;
  for (size_t i = 0; i < rows.size(); ++i) {
    const BenchmarkResult& r = rows[i];
    const double y = top + row_h * static_cast<double>(i);
    std::string name = r.name;
    if (name.size() > 46) name = name.substr(0, 44) + "\xE2\x80\xA6";
    svg.text(x_time - 8, y + 15, name, lab);
    const std::string backend = backend_of(r.name);
    used[backend] = true;
    SvgStyle bar;
    bar.fill = backend_colour(backend);
    bar.css_class = "bar";
    bar.tooltip = r.name + ": " + fixed(r.real_time_ms, 3) + " ms";
    // Value labels after the bar, or inside its end (white) when the bar is long.
    auto bar_label = [&](double x0, double w, const std::string& text) {
      if (w > chart_w - 64) {
        TextStyle in = val;
        in.anchor = "end";
        in.fill = "#FFFFFF";
        svg.text(x0 + w - 4, y + 15, text, in);
      } else {
        svg.text(x0 + w + 4, y + 15, text, val);
      }
    };
    const double tw = time_width(r.real_time_ms);
    svg.rect(x_time, y + 3, std::max(tw, 1.0), row_h - 6, bar);
    bar_label(x_time, tw, fixed(r.real_time_ms, r.real_time_ms < 10 ? 3 : 1));
    if (r.gflops >= 0 && gmax > 0) {
      const double gw = chart_w * r.gflops / gmax;
      bar.tooltip = r.name + ": " + fixed(r.gflops, 2) + " GFLOP/s";
      svg.rect(x_gf, y + 3, std::max(gw, 1.0), row_h - 6, bar);
      bar_label(x_gf, gw, fixed(r.gflops, 1));
    } else {
      svg.text(x_gf + 4, y + 15, "no GFLOP/s counter", val);
    }
  }
  SvgStyle axis;
  axis.stroke = "#333333";
  axis.stroke_width = 1;
  const double bottom = top + row_h * static_cast<double>(std::max<size_t>(shown, 1));
  svg.line(x_time, top - 2, x_time, bottom, axis);
  svg.line(x_gf, top - 2, x_gf, bottom, axis);
  svg.line(x_time, bottom, x_time + chart_w, bottom, axis);
  svg.line(x_gf, bottom, x_gf + chart_w, bottom, axis);
  TextStyle tick;
  tick.size = 10;
  tick.anchor = "middle";
  tick.fill = "#555555";
  if (log_time) {
    for (double d = lo; d <= hi * 1.0001 && d > 0 && d < HUGE_VAL; d *= 10) {
      const double xx = x_time + time_width(d);
      svg.line(xx, bottom, xx, bottom + 4, axis);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", d);
      svg.text(xx, bottom + 15, buf, tick);
    }
  } else {
    svg.text(x_time, bottom + 15, "0", tick);
    svg.text(x_time + chart_w, bottom + 15, fixed(hi, hi < 10 ? 2 : 0), tick);
  }
  svg.text(x_gf, bottom + 15, "0", tick);
  if (gmax > 0) svg.text(x_gf + chart_w, bottom + 15, fixed(gmax, 1), tick);
  // Legend of the backends present.
  double lx = 24;
  const double ly = bottom + 28;
  for (const char* b : {"sta", "natten", "dense", "reference", "other"}) {
    if (!used.count(b)) continue;
    svg.rect(lx, ly, 14, 14, SvgStyle{backend_colour(b), "", 0, "", 1, "swatch", ""});
    TextStyle l;
    l.size = 13;
    svg.text(lx + 20, ly + 12, b, l);
    lx += 20 + 8.0 * std::char_traits<char>::length(b) + 24;
  }
  return svg;
}

std::string report_html(const ReportOptions& options) {
  std::string s = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                  "<title>Sliding Tile Attention on CPU: report</title>\n<style>" +
                  std::string(kCss) + "</style>\n</head>\n<body>\n<main>\n";
  s += "<h1>Sliding Tile Attention (STA) on CPU</h1>\n";
  s += "<p class=\"meta\">A report generated by <code>sta report</code> (version " STA_VERSION
       ") from the library's own classifier, theorem check and pictures. Self-contained: no scripts, "
       "no network.</p>\n";
  s += "<nav><a href=\"#what\">What STA is</a><a href=\"#counts\">Block counts</a><a href=\"#maps\">Block maps</a>"
       "<a href=\"#window\">Windows</a><a href=\"#theorems\">Theorems</a><a href=\"#bench\">Benchmarks</a></nav>\n";
  s += "<h2 id=\"what\">What STA is</h2>\n";
  s += "<p>A video diffusion transformer attends over every token of a <em>T\xC3\x97H\xC3\x97W</em> latent video "
       "(HunyuanVideo 720p: 30\xC3\x97" "48\xC3\x97" "80 = 115,200 tokens). Attention in trained models is strongly "
       "local, so a 3D sliding window keeps most of the quality at a fraction of the cost.</p>\n";
  s += "<p>Kernels compute attention in blocks (FlashAttention): a block of queries against a block of keys, one "
       "GEMM each. A token-wise sliding window (SWA, as in NATTEN) leaves three kinds of blocks: "
       "<span class=\"key\" style=\"background:" + std::string(kDenseColour) + "\"></span><strong>dense</strong> "
       "(every pair allowed: a plain GEMM), <span class=\"key\" style=\"background:" + kMixedColour +
       "\"></span><strong>mixed</strong> (a GEMM plus a per-element mask, wasting part of the work) and "
       "<span class=\"key\" style=\"background:" + kEmptyColour + ";border:1px solid #999\"></span><strong>empty</strong> "
       "(skipped). Theorem 3.1 of the paper counts them: most computed blocks are mixed.</p>\n";
  s += "<p><strong>Sliding Tile Attention</strong> cuts the video into tiles (FastVideo: 6\xC3\x97" "8\xC3\x97" "8 = 384 "
       "tokens, stored contiguously) and slides the window <em>tile by tile</em>: all queries of a tile attend the "
       "same K<sub>t</sub>\xC3\x97K<sub>h</sub>\xC3\x97K<sub>w</sub> key tiles around it, the window shifted (not "
       "cropped) at the borders. Every block is then dense or empty, never mixed (Theorem 3.2), so sparsity turns "
       "into speed almost one to one.</p>\n";
  s += "<h2 id=\"counts\">Block counts of preset shapes</h2>\n";
  s += "<p>Counts over all (query block, key block) pairs of the video part of one head's attention map. "
       "<em>Computed blocks</em> = dense + mixed; <em>sparsity</em> = fraction of attention-map entries masked "
       "out. Reproduce any row with <code>sta counts</code>.</p>\n";
  s += counts_section();
  s += "<h2 id=\"maps\">Block maps</h2>\n";
  s += "<p>Query blocks down, key blocks across. Small shapes so that single blocks are visible; "
       "<code>sta viz blocks</code> draws any shape (large maps aggregate cells, <code>--range</code> zooms).</p>\n";
  s += pictures_section();
  s += "<h2 id=\"window\">The window seen from one query</h2>\n";
  s += windows_section();
  s += "<h2 id=\"theorems\">The theorems, checked</h2>\n";
  s += "<p>Theorems 3.1 (tiled NATTEN) and 3.2 (STA) as closed formulas against the block classifier over a "
       "sweep of cube canvases L = n\xC2\xB7T (SPEC section 5).</p>\n";
  s += theorems_section();
  s += "<h2 id=\"bench\">Benchmarks</h2>\n";
  s += benchmark_section(options);
  s += "</main>\n</body>\n</html>\n";
  return s;
}

}  // namespace sta
