#pragma once
// The attention frontend (SPEC section 6): one API, interchangeable backends. q, k, v are
// contiguous float32 [B, H, S, D]; out is [B, H, S, D] and lse is [B, H, S].
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sta/blocks.hpp"
#include "sta/layout.hpp"
#include "sta/mask.hpp"
#include "sta/shape.hpp"

namespace sta {

enum class Backend {
  kReference,  ///< naive masked attention, double accumulation (reference/)
  kNatten,     ///< tiled NATTEN-style baseline: every non-empty block, masks mixed blocks
  kSta,        ///< sliding tile attention: only window key tiles, all dense, no mask
  kDense,      ///< full attention, every block (mask must be full)
};
std::string to_string(Backend backend);
/// Parses "reference", "natten", "sta" or "dense"; throws sta::Error naming `arg`.
Backend parse_backend(const std::string& text, const std::string& arg = "--backend");

/// Optional rounding of fp32 inputs before attention, to mimic a GPU run's input dtype.
enum class InputRounding { kNone, kBf16, kFp16 };
std::string to_string(InputRounding rounding);
/// Parses "none", "bf16" or "fp16"; throws sta::Error naming `arg`.
InputRounding parse_rounding(const std::string& text, const std::string& arg = "--round");

/// Arithmetic of the fast paths (SPEC section 6). kFp32: fp32 inputs, products and
/// accumulation. kBf16 (FastVideo's kernels): q, k, v rounded to bf16 (nearest even), Q K^T
/// accumulated in fp32, softmax statistics in fp32 (row sum of the unrounded P), P rounded to
/// bf16 before P V, fp32 accumulation; out and lse stay fp32. The same semantics on every CPU:
/// bf16 instructions (AVX512-BF16, AMX) where present, an exact emulation on fp32 kernels
/// elsewhere (results agree within fp32 rounding). The reference backend in kBf16 computes in
/// double on the bf16-rounded inputs (the oracle the bf16 tolerance is measured against).
enum class Precision { kFp32, kBf16 };
std::string to_string(Precision precision);
/// Parses "fp32" or "bf16"; throws sta::Error naming `arg`.
Precision parse_precision(const std::string& text, const std::string& arg = "--precision");

/// Extents of q, k, v, out: [batch, heads, seq, dim].
struct AttentionShape {
  int64_t batch = 1;
  int64_t heads = 1;
  int64_t seq = 0;
  int64_t dim = 0;
  int64_t elements() const { return batch * heads * seq * dim; }
};

/// Everything but the tensors: what the sequence is and who may attend whom.
struct AttentionOptions {
  Geometry geometry;
  std::vector<Mask> masks{Mask::full()};  ///< one for all heads, or one per head
  Layout layout = Layout::kTiled;         ///< order of the video tokens in q, k, v, out
  double scale = 0.0;                     ///< softmax scale; 0 means 1/sqrt(dim)
  InputRounding rounding = InputRounding::kNone;
  Precision precision = Precision::kFp32;  ///< arithmetic of the fast paths (see Precision)
  /// GEMM micro-kernel family of the fast paths by name ("avx512-f32", "amx-bf16", "openblas",
  /// ...; gemm_kernel_names() lists the usable ones); empty = the run-time choice (or the
  /// environment variable STA_GEMM). An fp32 family in bf16 precision emulates bf16 exactly.
  std::string gemm;
  /// Refuse, before computing, inputs beyond the fast backends' float32 range
  /// (check_input_range; one pass over q, k and v). A caller that has applied the rule
  /// itself (`sta run` scans its inputs once while reading them) may turn the pass off.
  bool check_range = true;
  double effective_scale(int64_t dim) const;
};

/// What a backend did.
struct AttentionStats {
  Backend backend = Backend::kReference;
  BlockCounts counts;   ///< video blocks, summed over batches and heads (SPEC section 3)
  std::string isa;      ///< instruction set of the SIMD softmax that ran ("avx512", "avx2", ...)
  std::string gemm;     ///< GEMM micro-kernel that ran ("avx512-f32", "amx-bf16", "openblas:Haswell", "none")
  Precision precision = Precision::kFp32;
  int threads = 1;      ///< OpenMP threads used
  int64_t heads = 0;    ///< heads folded in by add_head (0: the stats of one call)

  /// Folds in the stats of one more head of the same run (computed head by head): counts
  /// summed, the rest taken from `head` (every head of a run runs the same kernels), except
  /// the backend: where heads ran different ones (a backward falls back to the reference on
  /// non-finite inputs, head by head) the run's is the reference, never a fast backend that
  /// some head did not run.
  void add_head(const AttentionStats& head);
};

/// Throws sta::Error naming the argument if shapes, geometry, masks or scale disagree
/// (S must equal video tokens + text_pad; D > 0; masks per head; sta backend needs sta or
/// full masks; dense needs full).
void validate_attention(const AttentionShape& shape, const AttentionOptions& options,
                        Backend backend);

/// The largest finite |x| of q, k and v (NaN and infinities are skipped: SPEC 6 lets them
/// propagate). One parallel pass over each.
struct InputRange {
  double q = 0.0, k = 0.0, v = 0.0;
};
InputRange input_range(const AttentionShape& shape, const float* q, const float* k, const float* v);

/// How check_input_range's messages name the inputs: the library's names, or a program's
/// (`sta run` passes "--q", "--k", "--v", "--scale").
struct InputNames {
  std::string q = "q", k = "k", v = "v", scale = "scale";
};

/// Refuses inputs the fast backends' float32 arithmetic cannot hold (it would give inf or NaN
/// where the double reference has numbers). With the maxima of `range`: D*max|q|*max|k|,
/// scale*D*max|q|*max|k|, scale*max|q| and S*max|v| must stay below 1e37 (FLT_MAX is 3.4e38;
/// the margin covers summation order); with fp16 rounding every |x| must stay below 65520
/// (larger values round to infinity). attention() and attention_backward() apply it to the
/// fast backends' inputs. Throws sta::Error naming the inputs (the scale when options.scale
/// was given) and the bound.
void check_input_range(const AttentionShape& shape, const AttentionOptions& options,
                       const InputRange& range, const InputNames& names = {});

/// Computes attention with `backend`. `out` has shape.elements() floats, `lse` batch*heads*seq.
/// The fast backends refuse inputs outside float32's range (check_input_range).
/// Deterministic: the same bits for any thread count. A query with no allowed key gets
/// out = 0 and lse = -inf.
AttentionStats attention(const AttentionShape& shape, const AttentionOptions& options,
                         const float* q, const float* k, const float* v, float* out,
                         float* lse, Backend backend);

/// The one-head problem of (batch, head) slice `bh` of a [B,H,S,D] problem, as every head-by-head
/// caller computes it: B = H = 1 and the options with that head's mask (mask_for_head). The
/// slice's planes start at bh * S * D in q, k, v, out (and the gradients) and at bh * S in lse.
struct HeadProblem {
  AttentionShape shape;
  AttentionOptions options;
};
HeadProblem head_problem(const AttentionShape& shape, const AttentionOptions& options, int64_t bh);

/// Computes attention head by head (each (b, h) slice is contiguous), calling `progress`
/// after each head with (done, total). Same bits as one attention() call (each
/// (b, h, query tile) task is computed the same way); for progress lines on long runs.
AttentionStats attention_by_head(const AttentionShape& shape, const AttentionOptions& options,
                                 const float* q, const float* k, const float* v, float* out,
                                 float* lse, Backend backend,
                                 const std::function<void(int64_t, int64_t)>& progress);

/// Rounds `n` floats in place to the nearest bf16 / fp16 value (round to nearest even).
void round_inputs(float* data, int64_t n, InputRounding rounding);

/// Name of the SIMD instruction set chosen at run time for this machine.
std::string simd_isa();

/// Name of the GEMM micro-kernel the fast backends use in `precision` on this machine (the
/// run-time choice, or the one forced by STA_GEMM).
std::string gemm_kernel_name(Precision precision);

/// Names of the GEMM families usable on this machine for `precision`, best first (bf16 lists
/// the bf16 families, then the fp32 ones that emulate it).
std::vector<std::string> gemm_kernel_names(Precision precision);

/// This CPU in words: vendor, family/model/stepping, brand string, and the instruction-set
/// extensions the kernels care about (e.g. "GenuineIntel family 6 model 143 ...; avx512f
/// avx512bf16 amx-bf16").
std::string cpu_description();

}  // namespace sta
