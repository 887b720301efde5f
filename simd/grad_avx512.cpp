// AVX-512 instantiation of the backward's kernels (-mavx512f..., CMakeLists).
// GCC 12's -Wmaybe-uninitialized false positive in _mm512_undefined_ps(): see softmax_avx512.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "grad-inl.hpp"
#include "grad.hpp"
#include "transpose-inl.hpp"

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

namespace {

/// 16 floats rounded to bf16 (nearest even; a NaN stays NaN), as 16 bf16 bits.
inline __m256i bf16_halves(__m512 x) { return bf16_bits_exact(x); }

/// 8 floats rounded to bf16, as 8 bf16 bits (the 256-bit twin of bf16_bits_exact).
inline __m128i bf16_halves(__m256 x) {
  const __m256i b = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __mmask8 nan = _mm256_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm256_mask_or_epi32(r, nan, _mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x0040));
  return _mm256_cvtepi32_epi16(r);
}

}  // namespace

void grad_scores_bf16_avx512(const float* dp, int64_t lddp, const float* p, int64_t ldp,
                             int64_t rows, int64_t cols, const float* delta, float scale,
                             bf16_t* ds, int64_t ldds) {
  grad_scores_bf16_body(dp, lddp, p, ldp, rows, cols, delta, scale, ds, ldds,
                        [](__m512 x) { return bf16_halves(x); });
}

void transpose_16_avx512(const bf16_t* src, int64_t lds, int64_t rows, int64_t cols, bf16_t* dst,
                         int64_t ldd, int64_t pad) {
  auto row = [&](int64_t i, int64_t j) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * lds + j));
  };
  transpose_in_blocks<16>(
      rows, cols, dst, ldd, pad,
      [&](int64_t i, int64_t j) {
        __m512i x[8];  // rows a and a + 8 side by side, as transpose_words_16x16 takes them
        for (int a = 0; a < 8; ++a)
          x[a] = _mm512_inserti64x4(_mm512_castsi256_si512(row(i + a, j)), row(i + a + 8, j), 1);
        transpose_words_16x16(x, dst + j * ldd + i, ldd);
      },
      [&](int64_t j, int64_t i) { dst[j * ldd + i] = src[i * lds + j]; });
}

void rows_to_bf16_avx512(const float* src, int64_t lds, int64_t rows, int64_t cols, int64_t pad_cols,
                         bf16_t* dst, int64_t ldd) {
  rows_to_bf16_body(src, lds, rows, cols, pad_cols, dst, ldd, [](__m512 x) { return bf16_bits_exact(x); });
}

void transpose_bf16_avx512(const float* src, int64_t lds, int64_t rows, int64_t cols, bf16_t* dst,
                           int64_t ldd, int64_t pad) {
  transpose_blocked(
      src, lds, rows, cols, dst, ldd, pad,
      [&](int64_t j, int64_t i, __m256 v) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * ldd + i), bf16_halves(v));
      },
      [&](int64_t j, int64_t i) { dst[j * ldd + i] = float_to_bf16(src[i * lds + j]); });
}

}  // namespace sta::simd
