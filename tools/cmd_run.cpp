// `sta run`: attention on .npy inputs (SPEC section 7), the path golden files and GPU ports
// are checked against. Thin: parse and check everything, call sta::attention(), write.
#include <omp.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cfloat>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cli_inputs.hpp"
#include "cli_options.hpp"
#include "sta/attention.hpp"
#include "sta/buffer.hpp"
#include "sta/error.hpp"
#include "sta/golden.hpp"
#include "sta/npy.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta run: attention on [B,H,S,D] .npy inputs with one of the backends.

Usage: sta run --q Q.npy --k K.npy --v V.npy --out OUT.npy [--lse LSE.npy]
               [--stats STATS.json] [common options] [--backend B] [--round R]
               [--precision P] [--scale X] [--threads N] [--force] [--allow-nonfinite]

)") + options_help(run_options()) + R"(
The --mask default is sta:3,3,3. Outputs are checked before computing and written
atomically (temporary file, then rename). Exit code 0 on success, 2 on bad input.

)" + common_help();

// The process's peak resident set so far (getrusage; Linux reports kilobytes).
long long peak_rss_bytes() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<long long>(usage.ru_maxrss) * 1024;
}

int run_run(int argc, char** argv) {
  const OptionTable table = command_table(run_options(), true);
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  if (!args.positionals().empty())
    throw Error("unexpected argument '" + args.positionals()[0] +
                "'; inputs are given as --q/--k/--v (see sta run --help)");

  const CommonOptions common = parse_common(args);
  const AttentionOptions options = parse_attention_options(args, common, /*with_precision=*/true);
  const Backend backend = backend_option(args, options.masks);
  const int threads = static_cast<int>(args.get_int("--threads", 0, 1, 4096));
  const bool force = args.has("--force");
  const bool allow_nonfinite = args.has("--allow-nonfinite");

  // Every output is checked before the (possibly long) computation: creatable, distinct
  // from each other and from the inputs (a link or ./o.npy is the same file as o.npy).
  checked_output_options(args, {"--out"}, {"--lse", "--stats"}, {"--q", "--k", "--v"}, force);
  const std::string out_path = args.get("--out");

  const Input qi = read_input(args, "--q", 4, allow_nonfinite, "sta run");
  const Input ki = read_input(args, "--k", 4, allow_nonfinite, "sta run");
  const Input vi = read_input(args, "--v", 4, allow_nonfinite, "sta run");
  const NpyView& q = qi.view;
  const NpyView& k = ki.view;
  const NpyView& v = vi.view;
  const AttentionShape shape = check_attention_inputs(common, options, backend, qi, ki, vi, {});
  const Geometry& g = options.geometry;
  const double out_elements = static_cast<double>(shape.elements());
  const int64_t heads = shape.batch * shape.heads, plane = shape.seq * shape.dim;
  // The inputs (mapped, or widened copies of float16/float64 files) and one head's working
  // set: its out and lse planes and the kernel's copies (packed K/V, retiled rows).
  check_memory(4.0 * (3.0 * out_elements + 8.0 * static_cast<double>(plane)),
               "--q", "attention on shape " + shape_to_string(q.shape));
  check_attention_cost(shape, options, backend, 3.0 * 4.0 * out_elements, "--q");

  if (threads > 0) omp_set_num_threads(threads);
  // Head by head (a head's out and lse depend on that head only: the same bits as one call):
  // --out and --lse grow one head's plane at a time and appear together at the end, so no
  // whole output is held; a progress line on stderr for long runs.
  NpyWriter out_file(out_path, q.shape, force, "--out");
  std::optional<NpyWriter> lse_file;
  if (args.has("--lse")) lse_file.emplace(args.get("--lse"), std::vector<int64_t>{shape.batch, shape.heads, shape.seq}, force, "--lse");
  // Not zero-filled: the kernel's threads touch these pages first (buffer.hpp), inside the
  // first head's kernel time, as with one whole output.
  LargeArray<float> out(plane, "--out"), lse(shape.seq, "--lse");
  AttentionStats stats;
  double seconds = 0.0;  // the kernels' time, without the writes
  const HeadProgress progress(backend);
  const bool show_progress = progress_wanted(args);
  for (int64_t bh = 0; bh < heads; ++bh) {
    const HeadProblem head = head_problem(shape, options, bh);
    const int64_t at = bh * plane;
    const auto t0 = std::chrono::steady_clock::now();
    stats.add_head(attention(head.shape, head.options, q.data() + at, k.data() + at, v.data() + at, out.data(),
                             lse.data(), backend));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out_file.append(out.data(), plane);
    if (lse_file) lse_file->append(lse.data(), shape.seq);
    if (show_progress) progress(bh + 1, heads);
  }
  out_file.commit();
  if (lse_file) lse_file->commit();

  const BlockCounts& c = stats.counts;
  if (args.has("--stats")) {
    JsonWriter j;
    j.begin_object(/*lines=*/true);
    write_stats_fields(j, stats, options, shape, seconds);
    j.field("cpu", cpu_description());
    j.field("isa", simd_isa()).field("kernel_isa", stats.isa).field("peak_rss_bytes", peak_rss_bytes());
    j.field("dtype", q.dtype).field("video", std::vector<int64_t>{g.canvas.t, g.canvas.h, g.canvas.w});
    j.field("tile", std::vector<int64_t>{g.tile.t, g.tile.h, g.tile.w});
    j.field("text_length", g.text_length).field("text_pad", g.text_pad);
    write_file_atomic(args.get("--stats"), j.end_object().str(), force, "--stats");
  }
  std::printf("sta run: backend %s (%s, gemm %s, softmax %s, %d threads), shape %s, blocks "
              "dense %lld mixed %lld empty %lld, %.3f s -> %s\n",
              to_string(stats.backend).c_str(), to_string(stats.precision).c_str(),
              stats.gemm.c_str(), stats.isa.c_str(), stats.threads,
              shape_to_string(q.shape).c_str(), static_cast<long long>(c.dense),
              static_cast<long long>(c.mixed), static_cast<long long>(c.empty), seconds,
              out_path.c_str());
  return 0;
}

}  // namespace

STA_COMMAND("run", "attention on [B,H,S,D] .npy inputs (reference, natten, sta, dense)",
             kHelp, run_run);

}  // namespace sta::cli
