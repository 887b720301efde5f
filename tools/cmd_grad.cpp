// `sta grad`: the attention backward on .npy inputs (SPEC sections 7 and 8), the oracle a
// GPU port's backward is checked against. Thin: parse and check everything, call
// sta::attention_backward(), write.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/backward.hpp"
#include "sta/error.hpp"
#include "sta/npy.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta grad: gradients dq, dk, dv of attention on [B,H,S,D] .npy inputs.

Usage: sta grad --q Q.npy --k K.npy --v V.npy --dout DO.npy --dq DQ.npy --dk DK.npy --dv DV.npy
                [--out O.npy --lse L.npy] [--stats STATS.json] [common options] [--backend B]
                [--round R] [--scale X] [--threads N] [--force] [--allow-nonfinite]

)") + options_help(grad_options()) + R"(
fp32 arithmetic only. Outputs are written atomically. Exit code 0 on success, 2 on bad input.

)" + common_help();

/// A [B,H,S,D] (rank 4) or [B,H,S] (rank 3) input, finite unless allowed.
NpyArray read_tensor(const Args& args, const std::string& name, size_t rank, bool allow_nonfinite) {
  const std::string path = args.get(name);
  if (path.empty()) throw Error(name + ": missing; expected a float32 or float16 .npy file (sta grad --help)");
  NpyArray a = read_npy(path, name);
  if (a.shape.size() != rank)
    throw Error(name + " '" + path + "': shape " + shape_to_string(a.shape) + " is not " +
                std::to_string(rank) + "-D; expected " + (rank == 4 ? "[B,H,S,D]" : "[B,H,S]"));
  if (!allow_nonfinite) {
    try {
      check_finite(a, name + " '" + path + "'");
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (pass --allow-nonfinite to run anyway)");
    }
  }
  return a;
}

/// The output options, resolved and checked before any work by the shared rule (check_outputs:
/// each required one given, creatable, none existing without --force, all distinct from each
/// other and from every input). Returns them in the order --dq, --dk, --dv[, --stats].
std::vector<PathArg> output_paths(const Args& args, bool force) {
  std::vector<PathArg> outputs;
  for (const char* name : {"--dq", "--dk", "--dv", "--stats"}) {
    if (!args.has(name)) {
      if (std::string(name) == "--stats") continue;
      throw Error(std::string(name) + ": missing; expected an output .npy file name");
    }
    outputs.push_back({name, args.get(name)});
  }
  std::vector<PathArg> inputs;
  for (const char* name : {"--q", "--k", "--v", "--dout", "--out", "--lse"}) {
    if (args.has(name)) inputs.push_back({name, args.get(name)});
  }
  check_outputs(outputs, inputs, force);
  return outputs;
}

AttentionOptions parse_options(const Args& args) {
  const CommonOptions common = parse_common(args);
  AttentionOptions options;
  options.geometry = common.geometry;
  options.masks = common.masks;
  options.layout = common.layout;
  options.rounding = parse_rounding(args.get("--round", "none"), "--round");
  if (args.has("--scale")) {
    options.scale = args.get_double("--scale", 0.0);
    if (options.scale <= 0.0)
      throw Error("--scale: " + args.get("--scale") + " is not > 0; expected a positive softmax scale");
  }
  return options;
}

/// Checks every tensor against q's [B,H,S,D] and the geometry; returns the shape.
AttentionShape check_shapes(const Args& args, const AttentionOptions& options, const NpyArray& q,
                            const std::vector<std::pair<std::string, const NpyArray*>>& others) {
  for (const auto& [name, a] : others) {
    std::vector<int64_t> want = q.shape;
    if (name == "--lse") want.pop_back();
    if (a->shape != want)
      throw Error(name + " '" + args.get(name) + "': shape " + shape_to_string(a->shape) +
                  " differs from " + shape_to_string(want) + " (from --q); expected the same [B,H,S" +
                  (name == "--lse" ? "]" : ",D]"));
  }
  const AttentionShape shape{q.shape[0], q.shape[1], q.shape[2], q.shape[3]};
  const Geometry& g = options.geometry;
  if (shape.seq != g.seq_len())
    throw Error("--q '" + args.get("--q") + "': S = " + std::to_string(shape.seq) + " but --video " +
                to_string(g.canvas) + " and --text-pad " + std::to_string(g.text_pad) + " need S = " +
                std::to_string(g.seq_len()));
  if (shape.batch < 1 || shape.heads < 1 || shape.dim < 1)
    throw Error("--q '" + args.get("--q") + "': shape " + shape_to_string(q.shape) +
                " has an empty axis; expected B, H, S, D >= 1");
  return shape;
}

std::string stats_json(const AttentionStats& stats, const AttentionOptions& options,
                       const AttentionShape& shape, double seconds, bool recomputed) {
  const BlockCounts& c = stats.counts;
  std::string masks;
  for (const Mask& m : options.masks) masks += (masks.empty() ? "\"" : ", \"") + to_string(m) + "\"";
  char nums[256];
  std::snprintf(nums, sizeof nums,
                "  \"dense\": %lld,\n  \"mixed\": %lld,\n  \"empty\": %lld,\n  \"total\": %lld,\n"
                "  \"scale\": %.17g,\n  \"seconds\": %.6f,\n",
                static_cast<long long>(c.dense), static_cast<long long>(c.mixed),
                static_cast<long long>(c.empty), static_cast<long long>(c.total()),
                options.effective_scale(shape.dim), seconds);
  std::string json = "{\n  \"pass\": \"backward\",\n";
  json += "  \"backend\": \"" + to_string(stats.backend) + "\",\n";
  json += "  \"isa\": \"" + json_escape(stats.isa) + "\",\n";
  json += "  \"gemm\": \"" + json_escape(stats.gemm) + "\",\n";
  json += "  \"threads\": " + std::to_string(stats.threads) + ",\n";
  json += nums;
  json += "  \"shape\": [" + std::to_string(shape.batch) + ", " + std::to_string(shape.heads) + ", " +
          std::to_string(shape.seq) + ", " + std::to_string(shape.dim) + "],\n";
  json += "  \"layout\": \"" + to_string(options.layout) + "\",\n";
  json += "  \"ragged\": " + std::string(options.geometry.ragged ? "true" : "false") + ",\n";
  json += "  \"masks\": [" + masks + "],\n";
  json += "  \"round\": \"" + to_string(options.rounding) + "\",\n";
  json += "  \"out_lse\": \"" + std::string(recomputed ? "recomputed" : "given") + "\"\n}\n";
  return json;
}

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

  const AttentionOptions options = parse_options(args);
  bool all_tile_masks = true;
  for (const Mask& m : options.masks)
    all_tile_masks = all_tile_masks && (m.kind == MaskKind::kSta || m.kind == MaskKind::kFull);
  const Backend backend = args.has("--backend") ? parse_backend(args.get("--backend"), "--backend")
                                                : (all_tile_masks ? Backend::kSta : Backend::kNatten);
  const int threads = static_cast<int>(args.get_int("--threads", 0, 1, 4096));
  const bool force = args.has("--force"), allow_nonfinite = args.has("--allow-nonfinite");
  const auto outputs = output_paths(args, force);

  const NpyArray q = read_tensor(args, "--q", 4, allow_nonfinite);
  const NpyArray k = read_tensor(args, "--k", 4, allow_nonfinite);
  const NpyArray v = read_tensor(args, "--v", 4, allow_nonfinite);
  const NpyArray dout = read_tensor(args, "--dout", 4, allow_nonfinite);
  const bool given = args.has("--out");
  NpyArray out, lse;
  std::vector<std::pair<std::string, const NpyArray*>> others{{"--k", &k}, {"--v", &v}, {"--dout", &dout}};
  if (given) {
    out = read_tensor(args, "--out", 4, true);  // the forward's: -inf lse is legitimate
    lse = read_tensor(args, "--lse", 3, true);
    others.push_back({"--out", &out});
    others.push_back({"--lse", &lse});
  }
  const AttentionShape shape = check_shapes(args, options, q, others);
  validate_attention(shape, options, backend);
  // The forward's fp32 range rule (numbers the kernels cannot hold are refused, not NaN).
  check_score_range(q, k, v, options.effective_scale(shape.dim), shape.dim, args.has("--scale"));

  if (threads > 0) omp_set_num_threads(threads);
  std::vector<float> dq(static_cast<size_t>(shape.elements())), dk(dq.size()), dv(dq.size());
  const auto start = std::chrono::steady_clock::now();
  const AttentionStats stats = attention_backward(
      shape, options, q.data.data(), k.data.data(), v.data.data(), given ? out.data.data() : nullptr,
      given ? lse.data.data() : nullptr, dout.data.data(), dq.data(), dk.data(), dv.data(), backend);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const std::vector<float>* grads[] = {&dq, &dk, &dv};
  for (size_t i = 0; i < 3; ++i)
    write_npy(outputs[i].path, grads[i]->data(), q.shape, force, outputs[i].arg);
  if (args.has("--stats"))
    write_file_atomic(args.get("--stats"), stats_json(stats, options, shape, seconds, !given), force, "--stats");
  const BlockCounts& c = stats.counts;
  std::printf("sta grad: backend %s (%s, %s, %d threads), shape %s, blocks dense %lld mixed %lld "
              "empty %lld, %.3f s -> %s %s %s\n",
              to_string(stats.backend).c_str(), stats.isa.c_str(), stats.gemm.c_str(), stats.threads,
              shape_to_string(q.shape).c_str(), static_cast<long long>(c.dense),
              static_cast<long long>(c.mixed), static_cast<long long>(c.empty), seconds,
              outputs[0].path.c_str(), outputs[1].path.c_str(), outputs[2].path.c_str());
  return 0;
}

}  // namespace

STA_COMMAND("grad", "gradients dq, dk, dv of attention on .npy inputs (SPEC 8)", kHelp, run_grad);

}  // namespace sta::cli
