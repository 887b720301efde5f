// `sta grad`: the attention backward on .npy inputs (SPEC sections 7 and 8), the oracle a
// GPU port's backward is checked against. Thin: parse and check everything, call
// sta::attention_backward(), write.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cli_inputs.hpp"
#include "cli_options.hpp"
#include "sta/backward.hpp"
#include "sta/buffer.hpp"
#include "sta/error.hpp"
#include "sta/npy.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta grad: gradients dq, dk, dv of attention on [B,H,S,D] .npy inputs.

Usage: sta grad --q Q.npy --k K.npy --v V.npy --dout DO.npy --dq DQ.npy --dk DK.npy --dv DV.npy
                [--out O.npy --lse L.npy] [--stats STATS.json] [common options] [--backend B]
                [--round R] [--precision P] [--scale X] [--threads N] [--force]
                [--allow-nonfinite] [--progress | --quiet]

)") + options_help(grad_options()) + R"(
Outputs are written atomically. Exit code 0 on success, 2 on bad input.

)" + common_help();

int run_grad(int argc, char** argv) {
  const OptionTable table = command_table(grad_options(), true);
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  if (!args.positionals().empty())
    throw Error("unexpected argument '" + args.positionals()[0] +
                "'; inputs are given as --q/--k/--v/--dout (see sta grad --help)");
  if (args.has("--out") != args.has("--lse"))
    throw Error(std::string(args.has("--out") ? "--out" : "--lse") +
                ": give both --out and --lse (the forward's results), or neither to recompute them");

  const CommonOptions common = parse_common(args);
  const AttentionOptions options = parse_attention_options(args, common, /*with_precision=*/true);
  const Backend backend = backend_option(args, options.masks);
  const int threads = static_cast<int>(args.get_int("--threads", 0, 1, 4096));
  const bool force = args.has("--force"), allow_nonfinite = args.has("--allow-nonfinite");
  // --dq, --dk, --dv in this order, then --stats.
  const auto outputs = checked_output_options(args, {"--dq", "--dk", "--dv"}, {"--stats"},
                                              {"--q", "--k", "--v", "--dout", "--out", "--lse"}, force);

  const Input q = read_input(args, "--q", 4, allow_nonfinite, "sta grad");
  const Input k = read_input(args, "--k", 4, allow_nonfinite, "sta grad");
  const Input v = read_input(args, "--v", 4, allow_nonfinite, "sta grad");
  const Input dout = read_input(args, "--dout", 4, allow_nonfinite, "sta grad");
  const bool given = args.has("--out");
  Input out, lse;
  std::vector<const Input*> same{&dout};
  if (given) {
    out = read_input(args, "--out", 4, true, "sta grad");  // the forward's: -inf lse is legitimate
    lse = read_input(args, "--lse", 3, true, "sta grad");
    same.push_back(&out);
    same.push_back(&lse);
  }
  const AttentionShape shape = check_attention_inputs(common, options, backend, q, k, v, same);
  const double elements = static_cast<double>(shape.elements());
  const int64_t heads = shape.batch * shape.heads, plane = shape.seq * shape.dim;
  // The inputs (mapped, or widened copies of float16/float64 files) and one head's working
  // set: its dq, dk, dv planes and the backward's copies (packed K/V, retiled rows, out/lse).
  check_memory(4.0 * ((given ? 5.0 : 4.0) * elements + 16.0 * static_cast<double>(plane)), "--q",
               "gradients on shape " + shape_to_string(q.view.shape));
  check_attention_cost(shape, options, backend, 4.0 * 4.0 * elements, "--q");

  if (threads > 0) omp_set_num_threads(threads);
  // Head by head (a head's gradients depend on that head only: the same bits as one call):
  // --dq, --dk, --dv grow one [S, D] plane at a time and appear together at the end, so no
  // whole gradient is ever held (11 GB for the three of Hunyuan's 24 heads).
  std::vector<NpyWriter> files;
  files.reserve(3);
  for (size_t i = 0; i < 3; ++i) files.emplace_back(outputs[i].path, q.view.shape, force, outputs[i].arg);
  // Not zero-filled here: the backward zeroes them on its team (buffer.hpp).
  LargeArray<float> grads[3] = {LargeArray<float>(plane, "--dq"), LargeArray<float>(plane, "--dk"),
                                LargeArray<float>(plane, "--dv")};
  AttentionStats stats;
  double seconds = 0.0;
  const HeadProgress progress(backend);
  const bool show_progress = progress_wanted(args);
  for (int64_t bh = 0; bh < heads; ++bh) {
    const HeadProblem head = head_problem(shape, options, bh);
    const int64_t at = bh * plane;
    const auto start = std::chrono::steady_clock::now();
    const AttentionStats s = attention_backward(
        head.shape, head.options, q.view.data() + at, k.view.data() + at, v.view.data() + at,
        given ? out.view.data() + at : nullptr, given ? lse.view.data() + bh * shape.seq : nullptr,
        dout.view.data() + at, grads[0].data(), grads[1].data(), grads[2].data(), backend);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats.add_head(s);  // a head with non-finite inputs ran the reference: so says the run
    for (size_t i = 0; i < 3; ++i) files[i].append(grads[i].data(), plane);
    if (show_progress) progress(bh + 1, heads);
  }
  for (NpyWriter& f : files) f.commit();
  if (args.has("--stats")) {
    JsonWriter j;
    j.begin_object(/*lines=*/true).field("pass", "backward");
    write_stats_fields(j, stats, options, shape, seconds);
    j.field("isa", stats.isa).field("out_lse", given ? "given" : "recomputed");
    write_file_atomic(args.get("--stats"), j.end_object().str(), force, "--stats");
  }
  const BlockCounts& c = stats.counts;
  // The same order and labels as sta run's line; the ISA is the element-wise kernels' here.
  std::printf("sta grad: backend %s (%s, gemm %s, element-wise %s, %d threads), shape %s, "
              "blocks dense %lld mixed %lld empty %lld, %.3f s -> %s %s %s\n",
              to_string(stats.backend).c_str(), to_string(stats.precision).c_str(),
              stats.gemm.c_str(), stats.isa.c_str(), stats.threads,
              shape_to_string(q.view.shape).c_str(), static_cast<long long>(c.dense),
              static_cast<long long>(c.mixed), static_cast<long long>(c.empty), seconds,
              outputs[0].path.c_str(), outputs[1].path.c_str(), outputs[2].path.c_str());
  return 0;
}

}  // namespace

STA_COMMAND("grad", "gradients dq, dk, dv of attention on .npy inputs (SPEC 8)", kHelp, run_grad);

}  // namespace sta::cli
