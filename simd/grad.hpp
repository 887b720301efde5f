#pragma once
// The vector kernels of the attention backward (FlashAttention-2, Dao 2023, Algorithm 2):
// P recomputed from the forward's lse, and dS = P (dP - Delta), element-wise or fused into
// the GEMM that makes S or dP (probs_qk, grad_scores_qk: the register tile of
// gemm_avx512.cpp with the element-wise step as its epilogue), and the transposed-A GEMM of
// dV += P^T dO and dK += dS^T Q (add_transposed_pv). The GEMM kernels read the kF32Panels
// packed layout of simd/gemm.hpp; they live here, beside the forward's GemmKernels, so the
// forward's kernel contracts stay as they are. Compiled once per instruction set
// (grad_scalar.cpp, grad_avx2.cpp, grad_avx512.cpp from the body in grad-inl.hpp) like the
// softmax; the instruction set is the softmax's choice (softmax_kernels(), so STA_ISA forces
// both).
#include <cstdint>

#include "gemm.hpp"  // bf16_t
#include "softmax.hpp"

namespace sta::simd {

/// P from raw scores: s[r*ld + j] = exp(scale * s[r*ld + j] - lse[r]) for `rows` rows of
/// `cols` scores (masked entries hold -inf and become 0). A row with lse = -inf (a query with
/// no allowed key) becomes all zeros. `scale` > 0.
using ProbsFromLseFn = void (*)(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                                const float* lse);

/// dS from dP: dp[r*lddp + j] = scale * p[r*ldp + j] * (dp[r*lddp + j] - delta[r]), with
/// delta[r] = <dout_r, out_r>. The softmax scale is folded in here so that dq = dS K and
/// dk = dS^T Q need no further scaling.
using GradScoresFn = void (*)(float* dp, int64_t lddp, const float* p, int64_t ldp,
                              int64_t rows, int64_t cols, const float* delta, float scale);

/// dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols, and dst[j*ldd + i] = 0 for
/// rows <= i < pad: P^T and dS^T for dV += P^T dO and dK += dS^T Q (the pv kernel reads its
/// left operand row-major), the query padding zeroed so it multiplies the zero padding rows
/// of the packed dO and Q.
using TransposeFn = void (*)(const float* src, int64_t lds, int64_t rows, int64_t cols,
                             float* dst, int64_t ldd, int64_t pad);

/// O += A^T V for the backward's key-side GEMMs (dV += P^T dO, dK += dS^T Q) without a
/// transpose: o[r*ldo + c] += sum_{k < kdim} a[k*lda + r] * v[k][c] for r < rows, c < dim.
/// A is read as stored (row k = one query row of P or dS, so the `rows` key columns of one
/// register tile are contiguous); V is packed in the kF32Panels layout (simd/gemm.hpp:
/// column panel cp at v_packed + cp * v_panel_stride, row k of a panel 32 floats).
/// `kdim` is any count (not padded: only rows k < kdim of A are read, so A's padding rows
/// may hold anything). Accumulated in fp32 in a fixed order (results depend only on the
/// inputs); columns [dim, 32 * panels) are never stored.
using AddTransposedPvFn = void (*)(const float* a, int64_t lda, int64_t rows, int64_t kdim,
                                   const float* v_packed, int64_t v_panel_stride, int64_t dim,
                                   float* o, int64_t ldo);

/// P = exp(scale * Q K^T - lse) in one pass (the qk GEMM with probs_from_lse as its
/// epilogue: S never goes to memory): p[r*ldp + j] = exp(scale * sum_d q[r*ldq + d] k[j][d]
/// - lse[r]) for `rows` rows and `ncols` padded keys (a multiple of kKeyPanel) of K packed in
/// the kF32Panels layout (simd/gemm.hpp), 0 for a row with lse = -inf. Padding keys and
/// masked entries are the caller's to zero afterwards (p = 0 is exp(-inf)).
using ProbsQkFn = void (*)(const float* q, int64_t ldq, int64_t rows, int64_t dim,
                           const float* k_packed, int64_t ncols, float scale, const float* lse,
                           float* p, int64_t ldp);
/// dS = scale P (dO V^T - Delta) in one pass (the dP GEMM with grad_scores as its epilogue):
/// ds[r*ldds + j] = (p[r*ldp + j] * scale) * (sum_d dout[r*ldd + d] v[j][d] - delta[r]), V
/// packed as K (kF32Panels), `ncols` a multiple of kKeyPanel.
using GradScoresQkFn = void (*)(const float* dout, int64_t ldd, int64_t rows, int64_t dim,
                                const float* v_packed, int64_t ncols, const float* p,
                                int64_t ldp, const float* delta, float scale, float* ds,
                                int64_t ldds);

void probs_from_lse_scalar(float*, int64_t, int64_t, int64_t, float, const float*);
void probs_from_lse_avx2(float*, int64_t, int64_t, int64_t, float, const float*);
void probs_from_lse_avx512(float*, int64_t, int64_t, int64_t, float, const float*);
/// The bf16 mode's P with AVX512-BF16 (grad_avx512bf16.cpp): probs_from_lse with the forward's
/// bf16 softmax exp (softmax-inl.hpp: 9 vector operations against 13, relative error <= 1.2e-6
/// for p >= 2^-24, where P is then rounded to bf16's 8 bits).
void probs_from_lse_avx512bf16(float*, int64_t, int64_t, int64_t, float, const float*);
void grad_scores_scalar(float*, int64_t, const float*, int64_t, int64_t, int64_t, const float*, float);
void grad_scores_avx2(float*, int64_t, const float*, int64_t, int64_t, int64_t, const float*, float);
void grad_scores_avx512(float*, int64_t, const float*, int64_t, int64_t, int64_t, const float*, float);
void transpose_scalar(const float*, int64_t, int64_t, int64_t, float*, int64_t, int64_t);
void transpose_avx2(const float*, int64_t, int64_t, int64_t, float*, int64_t, int64_t);
void probs_qk_scalar(const float*, int64_t, int64_t, int64_t, const float*, int64_t, float,
                     const float*, float*, int64_t);
void probs_qk_avx2(const float*, int64_t, int64_t, int64_t, const float*, int64_t, float,
                   const float*, float*, int64_t);
void probs_qk_avx512(const float*, int64_t, int64_t, int64_t, const float*, int64_t, float,
                     const float*, float*, int64_t);
void grad_scores_qk_scalar(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                           const float*, int64_t, const float*, float, float*, int64_t);
void grad_scores_qk_avx2(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                         const float*, int64_t, const float*, float, float*, int64_t);
void grad_scores_qk_avx512(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                           const float*, int64_t, const float*, float, float*, int64_t);
void add_transposed_pv_scalar(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                              int64_t, float*, int64_t);
void add_transposed_pv_avx2(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                            int64_t, float*, int64_t);
void add_transposed_pv_avx512(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                              int64_t, float*, int64_t);

/// bf16 mode (SPEC 8): a[r*lda + j] rounded in place to the nearest bf16 value (ties to
/// even; the low 16 bits of the float cleared) for `rows` rows of `cols` values: P before
/// dV += P^T dO, dS before dQ and dK. Any sign; a NaN stays NaN.
using RoundBf16Fn = void (*)(float* a, int64_t lda, int64_t rows, int64_t cols);
void round_bf16_scalar(float*, int64_t, int64_t, int64_t);
void round_bf16_avx2(float*, int64_t, int64_t, int64_t);
void round_bf16_avx512(float*, int64_t, int64_t, int64_t);

/// bf16 families (bf16 mode): dst[j*ldd + i] = bf16(src[i*lds + j]) (nearest even,
/// simd/gemm.hpp's float_to_bf16) for i < rows, j < cols, and 0 for rows <= i < pad: P^T as
/// the A operand of dV += P^T dO (the transpose of TransposeFn, rounded as it is stored).
using TransposeBf16Fn = void (*)(const float* src, int64_t lds, int64_t rows, int64_t cols,
                                 bf16_t* dst, int64_t ldd, int64_t pad);
void transpose_bf16_scalar(const float*, int64_t, int64_t, int64_t, bf16_t*, int64_t, int64_t);
void transpose_bf16_avx512(const float*, int64_t, int64_t, int64_t, bf16_t*, int64_t, int64_t);
// With AVX512-BF16 (grad_avx512bf16.cpp; the AVX-512 set takes them where the CPU has it).
void transpose_bf16_avx512bf16(const float*, int64_t, int64_t, int64_t, bf16_t*, int64_t, int64_t);

/// bf16 families: ds[r*ldds + j] = bf16((p[r*ldp + j] * scale) * (dp[r*lddp + j] - delta[r])),
/// grad_scores and the rounding in one pass: dS rows as the A operand of dQ += dS K (the fp32
/// dS is never stored).
using GradScoresBf16Fn = void (*)(const float* dp, int64_t lddp, const float* p, int64_t ldp,
                                  int64_t rows, int64_t cols, const float* delta, float scale,
                                  bf16_t* ds, int64_t ldds);
/// bf16 families: dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols, and 0 for rows <=
/// i < pad, on bf16 values (dS^T from the rounded dS rows: half the bytes of transpose_bf16's
/// fp32 source, and no rounding left to do).
using Transpose16Fn = void (*)(const bf16_t* src, int64_t lds, int64_t rows, int64_t cols,
                               bf16_t* dst, int64_t ldd, int64_t pad);
void grad_scores_bf16_scalar(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                             const float*, float, bf16_t*, int64_t);
void grad_scores_bf16_avx512(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                             const float*, float, bf16_t*, int64_t);
void grad_scores_bf16_avx512bf16(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                                 const float*, float, bf16_t*, int64_t);
void transpose_16_scalar(const bf16_t*, int64_t, int64_t, int64_t, bf16_t*, int64_t, int64_t);
void transpose_16_avx512(const bf16_t*, int64_t, int64_t, int64_t, bf16_t*, int64_t, int64_t);

/// The backward kernels of one instruction set.
struct BackwardKernels {
  Isa isa;
  ProbsFromLseFn probs_from_lse;
  GradScoresFn grad_scores;
  /// P in the bf16 mode on the bf16 families: with the exp of the forward's bf16 softmax (the
  /// AVX512-BF16 one where the CPU has it, probs_from_lse elsewhere).
  ProbsFromLseFn probs_bf16;
  TransposeFn transpose;  ///< the AVX2 one serves AVX-512 too (8x8 blocks, exact copies)
  /// For GEMM families of the kF32Panels layout; the backward transposes and calls the
  /// family's pv for the others (kF32Rows: OpenBLAS).
  AddTransposedPvFn add_transposed_pv;
  ProbsQkFn probs_qk;             ///< kF32Panels families only, like add_transposed_pv
  GradScoresQkFn grad_scores_qk;  ///< kF32Panels families only
  RoundBf16Fn round_bf16;         ///< bf16 mode, any layout
  /// bf16 families (the AVX2 set uses the scalar one; the AVX-512 set the AVX512-BF16 one
  /// where the CPU has it)
  TransposeBf16Fn transpose_bf16;
  GradScoresBf16Fn grad_scores_bf16;  ///< bf16 families (likewise)
  Transpose16Fn transpose_16;         ///< bf16 families (the AVX2 set: the scalar one)
};
/// Kernels of `isa` (which must be supported).
BackwardKernels backward_kernels_for(Isa isa);
/// The kernels of the instruction set softmax_kernels() chose (STA_ISA overrides both).
const BackwardKernels& backward_kernels();

}  // namespace sta::simd
