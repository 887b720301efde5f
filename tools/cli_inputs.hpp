// The inputs of the computing commands (`sta run`, `sta grad`): attention options from the
// command line, .npy tensors memory-mapped and scanned once, and every check on them before
// any work (shapes, geometry, per-head masks, float32/float16 range, memory, cost). One
// place, so the two commands cannot drift apart in what they accept.
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"
#include "sta/attention.hpp"
#include "sta/json.hpp"
#include "sta/npy.hpp"

namespace sta::cli {

/// Attention options shared by run and grad: geometry, masks and layout from `common`,
/// --round, --precision (when `with_precision`) and --scale (a positive normal float32);
/// check_range off (check_attention_inputs applies the rule).
AttentionOptions parse_attention_options(const Args& args, const CommonOptions& common,
                                         bool with_precision);

/// --backend if given, else the SPEC 7 default: sta when every mask is made of whole tiles
/// (sta or full), natten otherwise.
Backend backend_option(const Args& args, const std::vector<Mask>& masks);

/// The output options of run and grad, resolved and checked before any work by the shared
/// rule (check_outputs: each `required` one given and non-empty, creatable, none existing
/// without --force, all distinct from each other and from every given `inputs` option).
/// Returns the given ones in the order `required`, then `optional`.
std::vector<PathArg> checked_output_options(const Args& args, const std::vector<const char*>& required,
                                            const std::vector<const char*>& optional,
                                            const std::vector<const char*>& inputs, bool force);

/// One input tensor: float32 memory-mapped (no copy), other dtypes widened; one parallel
/// pass found its non-finite values and largest finite magnitude.
struct Input {
  std::string arg;  ///< the option, e.g. "--q"
  std::string path;
  NpyView view;
  FloatScan scan;
};

/// Reads option `name` as an Input of `rank` (4: [B,H,S,D], 3: [B,H,S]); refuses a missing
/// option, another rank, and (unless `allow_nonfinite`) NaN or infinity. `command` names the
/// help to point at ("sta run").
Input read_input(const Args& args, const std::string& name, size_t rank, bool allow_nonfinite,
                 const std::string& command);

/// Checks q's [B,H,S,D] against `same` (each must have q's shape, or q's without D when rank
/// 3), the geometry's S, non-empty axes, the per-head masks, the backend, and the library's
/// float32 / float16 range rule on q, k, v (sta::check_input_range). Returns the shape.
AttentionShape check_attention_inputs(const CommonOptions& common,
                                      const AttentionOptions& options, Backend backend,
                                      const Input& q, const Input& k, const Input& v,
                                      const std::vector<const Input*>& same);

/// The members run and grad stats share, in this order: backend, precision, gemm, threads, block
/// counts (dense, mixed, empty, total), scale, seconds (to the microsecond), shape, layout,
/// ragged, masks, round. `j` must be inside an object.
void write_stats_fields(JsonWriter& j, const AttentionStats& stats, const AttentionOptions& options,
                        const AttentionShape& shape, double seconds);

}  // namespace sta::cli
