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

namespace {

/// 16 floats rounded to bf16 (nearest even; a NaN stays NaN), as 16 bf16 bits.
inline __m256i bf16_halves(__m512 x) {
  const __m512i b = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb), 16);
  // float_to_bf16's NaN rule: keep the payload's top bits, set the quiet bit.
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x0040));
  return _mm512_cvtepi32_epi16(r);
}

/// 8 floats rounded to bf16, as 8 bf16 bits (the 256-bit twin of bf16_halves).
inline __m128i bf16_halves(__m256 x) {
  const __m256i b = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __mmask8 nan = _mm256_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm256_mask_or_epi32(r, nan, _mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x0040));
  return _mm256_cvtepi32_epi16(r);
}

}  // namespace

void to_bf16_avx512(const float* src, int64_t lds, int64_t rows, int64_t cols, bf16_t* dst,
                    int64_t ldd) {
  const int64_t full = cols - cols % 16;
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * lds;
    bf16_t* d = dst + r * ldd;
    for (int64_t c = 0; c < full; c += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c), bf16_halves(_mm512_loadu_ps(s + c)));
    if (full < cols) {
      const __mmask16 m = static_cast<__mmask16>((1u << (cols - full)) - 1u);
      _mm256_mask_storeu_epi16(d + full, m, bf16_halves(_mm512_maskz_loadu_ps(m, s + full)));
    }
  }
}

void transpose_bf16_avx512(const float* src, int64_t lds, int64_t rows, int64_t cols, bf16_t* dst,
                           int64_t ldd, int64_t pad) {
  const int64_t r8 = rows - rows % 8, c8 = cols - cols % 8;
  constexpr int64_t kB = 64;  // 64 x 64 tiles of 8 x 8 blocks stay in L1
  for (int64_t i0 = 0; i0 < r8; i0 += kB)
    for (int64_t j0 = 0; j0 < c8; j0 += kB)
      for (int64_t i = i0; i < std::min(i0 + kB, r8); i += 8)
        for (int64_t j = j0; j < std::min(j0 + kB, c8); j += 8) {
          // One 8 x 8 block: unpack / shuffle / permute2f128, each row rounded as stored.
          __m256 r[8], t[8];
          for (int a = 0; a < 8; ++a) r[a] = _mm256_loadu_ps(src + (i + a) * lds + j);
          for (int a = 0; a < 8; a += 2) {
            t[a] = _mm256_unpacklo_ps(r[a], r[a + 1]);
            t[a + 1] = _mm256_unpackhi_ps(r[a], r[a + 1]);
          }
          for (int a = 0; a < 8; a += 4) {
            r[a] = _mm256_shuffle_ps(t[a], t[a + 2], _MM_SHUFFLE(1, 0, 1, 0));
            r[a + 1] = _mm256_shuffle_ps(t[a], t[a + 2], _MM_SHUFFLE(3, 2, 3, 2));
            r[a + 2] = _mm256_shuffle_ps(t[a + 1], t[a + 3], _MM_SHUFFLE(1, 0, 1, 0));
            r[a + 3] = _mm256_shuffle_ps(t[a + 1], t[a + 3], _MM_SHUFFLE(3, 2, 3, 2));
          }
          for (int a = 0; a < 4; ++a) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (j + a) * ldd + i),
                             bf16_halves(_mm256_permute2f128_ps(r[a], r[a + 4], 0x20)));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (j + a + 4) * ldd + i),
                             bf16_halves(_mm256_permute2f128_ps(r[a], r[a + 4], 0x31)));
          }
        }
  for (int64_t j = 0; j < cols; ++j) {  // the edges: rows past r8, columns past c8
    for (int64_t i = j < c8 ? r8 : 0; i < rows; ++i) dst[j * ldd + i] = float_to_bf16(src[i * lds + j]);
    std::fill(dst + j * ldd + rows, dst + j * ldd + pad, bf16_t{0});
  }
}

}  // namespace sta::simd
