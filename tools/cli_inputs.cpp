// The inputs of the computing commands: see cli_inputs.hpp.
#include "cli_inputs.hpp"

#include <cfloat>
#include <cmath>
#include <utility>

#include "sta/error.hpp"

namespace sta::cli {

AttentionOptions parse_attention_options(const Args& args, const CommonOptions& common,
                                         bool with_precision) {
  AttentionOptions options;
  options.geometry = common.geometry;
  options.masks = common.masks;
  options.layout = common.layout;
  options.rounding = parse_rounding(args.get("--round", "none"), "--round");
  // check_attention_inputs applies the range rule to the maxima found while reading the
  // inputs: the library need not scan them again.
  options.check_range = false;
  if (with_precision) options.precision = parse_precision(args.get("--precision", "fp32"), "--precision");
  if (args.has("--scale")) {
    options.scale = args.get_double("--scale", 0.0);
    if (options.scale <= 0.0)
      throw Error("--scale: " + args.get("--scale") + " is not > 0; expected a positive softmax scale");
    // The fast backends multiply by the scale in float32: it must be a normal float32.
    if (options.scale < FLT_MIN || options.scale > FLT_MAX)
      throw Error("--scale: " + args.get("--scale") + " is not representable in float32; " +
                  "expected a value in [1.2e-38, 3.4e38]");
  }
  return options;
}

Backend backend_option(const Args& args, const std::vector<Mask>& masks) {
  if (args.has("--backend")) return parse_backend(args.get("--backend"), "--backend");
  for (const Mask& m : masks)
    if (m.kind != MaskKind::kSta && m.kind != MaskKind::kFull) return Backend::kNatten;
  return Backend::kSta;
}

std::vector<PathArg> checked_output_options(const Args& args, const std::vector<const char*>& required,
                                            const std::vector<const char*>& optional,
                                            const std::vector<const char*>& inputs, bool force) {
  std::vector<PathArg> outputs;
  for (const char* name : required) {
    if (!args.has(name) || args.get(name).empty())
      throw Error(std::string(name) + ": missing; expected an output .npy file name");
    outputs.push_back({name, args.get(name)});
  }
  for (const char* name : optional)
    if (args.has(name)) outputs.push_back({name, args.get(name)});
  std::vector<PathArg> given;
  for (const char* name : inputs)
    if (args.has(name)) given.push_back({name, args.get(name)});
  check_outputs(outputs, given, force);
  return outputs;
}

Input read_input(const Args& args, const std::string& name, size_t rank, bool allow_nonfinite,
                 const std::string& command) {
  const std::string layout = rank == 4 ? "[B,H,S,D]" : "[B,H,S]";
  const std::string path = args.get(name);
  if (!args.has(name) || path.empty())
    throw Error(name + ": missing; expected a " + layout + " float32 or float16 .npy file (" +
                command + " --help)");
  Input in{name, path, view_npy(path, name), {}};
  if (in.view.shape.size() != rank)
    throw Error(name + " '" + path + "': shape " + shape_to_string(in.view.shape) + " is not " +
                std::to_string(rank) + "-D; expected " + layout +
                (rank == 4 ? " (batch, heads, sequence, head dim)" : " (batch, heads, sequence)"));
  in.scan = scan_floats(in.view.data(), in.view.elements());
  if (!allow_nonfinite) {
    try {
      check_finite(in.view.data(), in.view.shape, in.scan, name + " '" + path + "'");
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (pass --allow-nonfinite to run anyway)");
    }
  }
  return in;
}

AttentionShape check_attention_inputs(const CommonOptions& common,
                                      const AttentionOptions& options, Backend backend,
                                      const Input& q, const Input& k, const Input& v,
                                      const std::vector<const Input*>& same) {
  std::vector<const Input*> others{&k, &v};
  others.insert(others.end(), same.begin(), same.end());
  for (const Input* a : others) {
    std::vector<int64_t> want = q.view.shape;
    if (a->view.shape.size() == 3) want.pop_back();
    if (a->view.shape != want)
      throw Error(a->arg + " '" + a->path + "': shape " + shape_to_string(a->view.shape) +
                  " differs from " + shape_to_string(want) + " (from --q " +
                  shape_to_string(q.view.shape) + "); expected the same [B,H,S" +
                  (want.size() == 3 ? "]" : ",D]"));
  }
  const std::vector<int64_t>& s = q.view.shape;
  const AttentionShape shape{s[0], s[1], s[2], s[3]};
  const Geometry& g = options.geometry;
  if (shape.seq != g.seq_len())
    throw Error("--q '" + q.path + "': S = " + std::to_string(shape.seq) + " (shape " +
                shape_to_string(s) + ") but --video " + to_string(g.canvas) + " and --text-pad " +
                std::to_string(g.text_pad) + " need S = " + std::to_string(g.video_tokens()) +
                " + " + std::to_string(g.text_pad) + " = " + std::to_string(g.seq_len()));
  if (shape.batch < 1 || shape.heads < 1 || shape.dim < 1)
    throw Error("--q '" + q.path + "': shape " + shape_to_string(s) +
                " has an empty axis; expected B, H, S, D >= 1");
  check_head_masks(common, shape.heads);
  validate_attention(shape, options, backend);
  // The library's float32 / float16 range rule, on the maxima the read already found.
  check_input_range(shape, options, {q.scan.max_abs_finite, k.scan.max_abs_finite, v.scan.max_abs_finite},
                    {"--q", "--k", "--v", "--scale"});
  return shape;
}

void write_stats_fields(JsonWriter& j, const AttentionStats& stats, const AttentionOptions& options,
                        const AttentionShape& shape, double seconds) {
  const BlockCounts& c = stats.counts;
  std::vector<std::string> masks;
  for (const Mask& m : options.masks) masks.push_back(to_string(m));
  j.field("backend", to_string(stats.backend)).field("precision", to_string(stats.precision));
  j.field("gemm", stats.gemm).field("threads", stats.threads);
  j.field("dense", c.dense).field("mixed", c.mixed).field("empty", c.empty).field("total", c.total());
  j.field("scale", options.effective_scale(shape.dim)).field("seconds", std::round(seconds * 1e6) / 1e6);
  j.field("shape", std::vector<int64_t>{shape.batch, shape.heads, shape.seq, shape.dim});
  j.field("layout", to_string(options.layout)).field("ragged", options.geometry.ragged);
  j.field("masks", masks).field("round", to_string(options.rounding));
}

}  // namespace sta::cli
