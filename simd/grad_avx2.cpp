// AVX2 + FMA instantiation of the backward's kernels (-mavx2 -mfma, CMakeLists).
#include <immintrin.h>

#include <algorithm>

#include "grad-inl.hpp"
#include "grad.hpp"

namespace sta::simd {

void probs_from_lse_avx2(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                         const float* lse) {
  probs_from_lse_body<xsimd::fma3<xsimd::avx2>>(s, ld, rows, cols, scale, lse);
}
void round_bf16_avx2(float* a, int64_t lda, int64_t rows, int64_t cols) {
  round_bf16_body<xsimd::avx2>(a, lda, rows, cols);
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

namespace {

/// Transposes one 8x8 block (the classic unpack / shuffle / permute2f128 sequence).
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

}  // namespace

void transpose_avx2(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                    int64_t ldd, int64_t pad) {
  const int64_t r8 = rows - rows % 8, c8 = cols - cols % 8;
  constexpr int64_t kB = 64;  // 64 x 64 tiles of 8 x 8 blocks stay in L1
  for (int64_t i0 = 0; i0 < r8; i0 += kB)
    for (int64_t j0 = 0; j0 < c8; j0 += kB)
      for (int64_t i = i0; i < std::min(i0 + kB, r8); i += 8)
        for (int64_t j = j0; j < std::min(j0 + kB, c8); j += 8)
          transpose8x8(src + i * lds + j, lds, dst + j * ldd + i, ldd);
  for (int64_t j = 0; j < cols; ++j) {  // the edges: rows past r8, columns past c8
    for (int64_t i = j < c8 ? r8 : 0; i < rows; ++i) dst[j * ldd + i] = src[i * lds + j];
    std::fill(dst + j * ldd + rows, dst + j * ldd + pad, 0.0f);
  }
}

}  // namespace sta::simd
