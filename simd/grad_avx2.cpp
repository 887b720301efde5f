// AVX2 + FMA instantiation of the backward's kernels (-mavx2 -mfma, CMakeLists).
#include <immintrin.h>

#include <algorithm>

#include "grad-inl.hpp"
#include "grad.hpp"
#include "transpose-inl.hpp"

namespace sta::simd {

void probs_from_lse_avx2(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                         const float* lse) {
  probs_from_lse_body<xsimd::fma3<xsimd::avx2>>(s, ld, rows, cols, scale, lse);
}
void round_bf16_avx2(float* a, int64_t lda, int64_t rows, int64_t cols) {
  round_bf16_body<xsimd::fma3<xsimd::avx2>>(a, lda, rows, cols);
}
void grad_scores_avx2(float* dp, int64_t lddp, const float* p, int64_t ldp, int64_t rows,
                      int64_t cols, const float* delta, float scale) {
  grad_scores_body<xsimd::fma3<xsimd::avx2>>(dp, lddp, p, ldp, rows, cols, delta, scale);
}
void add_transposed_pv_avx2(const float* a, int64_t lda, int64_t rows, int64_t kdim,
                            const float* v_packed, int64_t v_panel_stride, int64_t dim, float* o,
                            int64_t ldo) {
  add_transposed_pv_body<xsimd::fma3<xsimd::avx2>>(a, lda, rows, kdim, v_packed,
                                                      v_panel_stride, dim, o, ldo);
}
void probs_qk_avx2(const float* q, int64_t ldq, int64_t rows, int64_t dim, const float* k_packed,
                   int64_t ncols, float scale, const float* lse, float* p, int64_t ldp) {
  fused_scores_body<xsimd::fma3<xsimd::avx2>, ScoreEpilogue::kProbs>(
      q, ldq, rows, dim, k_packed, ncols, scale, lse, nullptr, 0, p, ldp);
}
void grad_scores_qk_avx2(const float* dout, int64_t ldd, int64_t rows, int64_t dim,
                         const float* v_packed, int64_t ncols, const float* p, int64_t ldp,
                         const float* delta, float scale, float* ds, int64_t ldds) {
  fused_scores_body<xsimd::fma3<xsimd::avx2>, ScoreEpilogue::kGradScores>(
      dout, ldd, rows, dim, v_packed, ncols, scale, delta, p, ldp, ds, ldds);
}

void transpose_avx2(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                    int64_t ldd, int64_t pad) {
  transpose_blocked(
      src, lds, rows, cols, dst, ldd, pad,
      [&](int64_t j, int64_t i, __m256 v) { _mm256_storeu_ps(dst + j * ldd + i, v); },
      [&](int64_t j, int64_t i) { dst[j * ldd + i] = src[i * lds + j]; });
}

}  // namespace sta::simd
