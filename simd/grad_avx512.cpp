// AVX-512 instantiation of the backward's kernels (-mavx512f..., CMakeLists).
// GCC 12's -Wmaybe-uninitialized false positive in _mm512_undefined_ps(): see softmax_avx512.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "grad-inl.hpp"
#include "grad.hpp"

namespace sta::simd {

void probs_from_lse_avx512(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                           const float* lse) {
  probs_from_lse_body<xsimd::avx512bw>(s, ld, rows, cols, scale, lse);
}
void round_bf16_avx512(float* a, int64_t lda, int64_t rows, int64_t cols) {
  round_bf16_body<xsimd::avx512bw>(a, lda, rows, cols);
}
void grad_scores_avx512(float* dp, int64_t lddp, const float* p, int64_t ldp, int64_t rows,
                        int64_t cols, const float* delta, float scale) {
  grad_scores_body<xsimd::avx512bw>(dp, lddp, p, ldp, rows, cols, delta, scale);
}

void add_transposed_pv_avx512(const float* a, int64_t lda, int64_t rows, int64_t kdim,
                              const float* v_packed, int64_t v_panel_stride, int64_t dim, float* o,
                              int64_t ldo) {
  add_transposed_pv_body<xsimd::avx512bw>(a, lda, rows, kdim, v_packed, v_panel_stride, dim,
                                              o, ldo);
}

void probs_qk_avx512(const float* q, int64_t ldq, int64_t rows, int64_t dim, const float* k_packed,
                     int64_t ncols, float scale, const float* lse, float* p, int64_t ldp) {
  fused_scores_body<xsimd::avx512bw, ScoreEpilogue::kProbs>(q, ldq, rows, dim, k_packed, ncols,
                                                                 scale, lse, nullptr, 0, p, ldp);
}
void grad_scores_qk_avx512(const float* dout, int64_t ldd, int64_t rows, int64_t dim,
                           const float* v_packed, int64_t ncols, const float* p, int64_t ldp,
                           const float* delta, float scale, float* ds, int64_t ldds) {
  fused_scores_body<xsimd::avx512bw, ScoreEpilogue::kGradScores>(
      dout, ldd, rows, dim, v_packed, ncols, scale, delta, p, ldp, ds, ldds);
}

}  // namespace sta::simd
