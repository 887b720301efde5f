#pragma once
// The 8 x 8 float transpose of the backward's P^T and dS^T (AVX2 registers; also used by the
// AVX-512 file, which rounds each transposed row to bf16 as it stores it), and with AVX-512BW
// the bf16 mode's 16 x 16 transpose of 16-bit values and dS rounded as it is computed. Include
// only from files compiled with AVX2 or AVX-512 (grad_avx2.cpp, grad_avx512.cpp,
// grad_avx512bf16.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace sta::simd {
namespace {

/// Column c of the 8 x 8 block at `src` (row stride lds) into out[c], c = 0..7 (the classic
/// unpack / shuffle / permute2f128 sequence).
inline void transpose8x8(const float* src, int64_t lds, __m256 out[8]) {
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
    out[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    out[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
}

/// A transpose of `rows` x `cols` values into dst (row stride ldd) in kBlock x kBlock blocks,
/// 64 x 64 tiles of them at a time (their source stays in L1): block(i, j) for each block of
/// the first rows - rows % kBlock rows and cols - cols % kBlock columns, then edge(j, i) for
/// each element past them, then zeros in rows [rows, pad) of each of the `cols` transposed
/// rows.
template <int kBlock, class T, class Block, class Edge>
inline void transpose_in_blocks(int64_t rows, int64_t cols, T* dst, int64_t ldd, int64_t pad,
                                Block block, Edge edge) {
  const int64_t rb = rows - rows % kBlock, cb = cols - cols % kBlock;
  constexpr int64_t kB = 64;
  for (int64_t i0 = 0; i0 < rb; i0 += kB)
    for (int64_t j0 = 0; j0 < cb; j0 += kB)
      for (int64_t i = i0; i < std::min(i0 + kB, rb); i += kBlock)
        for (int64_t j = j0; j < std::min(j0 + kB, cb); j += kBlock) block(i, j);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = j < cb ? rb : 0; i < rows; ++i) edge(j, i);
  for (int64_t j = 0; j < cols; ++j) std::fill(dst + j * ldd + rows, dst + j * ldd + pad, T{0});
}

/// The transpose of `rows` x `cols` floats (row stride lds) into dst in 8 x 8 blocks
/// (transpose_in_blocks): store(j, i, v) receives the 8 values src[i..i+8)[j] of transposed
/// row j from column i on; edge(j, i) each single value src[i][j] past the blocks.
template <class T, class Store, class Edge>
inline void transpose_blocked(const float* src, int64_t lds, int64_t rows, int64_t cols, T* dst,
                              int64_t ldd, int64_t pad, Store store, Edge edge) {
  transpose_in_blocks<8>(
      rows, cols, dst, ldd, pad,
      [&](int64_t i, int64_t j) {
        __m256 out[8];
        transpose8x8(src + i * lds + j, lds, out);
        for (int a = 0; a < 8; ++a) store(j + a, i, out[a]);
      },
      edge);
}

#if defined(__AVX512BW__)
/// 16 floats rounded to bf16 by integer arithmetic (float_to_bf16's rule: nearest even, a
/// NaN keeps its payload's top bits with the quiet bit set, subnormals rounded like any
/// value), as 16 bf16 bits.
inline __m256i bf16_bits_exact(__m512 x) {
  const __m512i b = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x0040));
  return _mm512_cvtepi32_epi16(r);
}

/// Rows of 16-float vectors stored as bf16 bits: for each of `rows` rows and each 16 columns
/// of `cols` (the last ones under a mask m), value(r, c, m) gives the floats (lanes outside m
/// zero), stored through `round` (16 floats -> 16 bf16 bits) at out + r * ldo + c.
template <class Value, class Round>
inline void store_rows_bf16(int64_t rows, int64_t cols, uint16_t* out, int64_t ldo, Value value,
                            Round round) {
  const int64_t full = cols - cols % 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (cols - full)) - 1u);
  for (int64_t r = 0; r < rows; ++r) {
    uint16_t* o = out + r * ldo;
    for (int64_t c = 0; c < full; c += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + c), round(value(r, c, __mmask16{0xffff})));
    if (full < cols) _mm256_mask_storeu_epi16(o + full, tail, round(value(r, full, tail)));
  }
}

/// grad_scores_bf16 (simd/grad.hpp) with AVX-512: dS = (p * scale) * (dp - delta), grad_scores'
/// rounding, 16 lanes at a time, stored through `round` (16 floats -> 16 bf16 bits: the
/// integer rounding of grad_avx512.cpp or AVX512-BF16's instruction).
template <class Round>
inline void grad_scores_bf16_body(const float* dp, int64_t lddp, const float* p, int64_t ldp,
                                  int64_t rows, int64_t cols, const float* delta, float scale,
                                  uint16_t* ds, int64_t ldds, Round round) {
  const __m512 vscale = _mm512_set1_ps(scale);
  store_rows_bf16(rows, cols, ds, ldds, [&](int64_t r, int64_t c, __mmask16 m) {
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + r * ldp + c), vscale),
                         _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dp + r * lddp + c), _mm512_set1_ps(delta[r])));
  }, round);
}

/// rows_to_bf16 (gemm.hpp) with AVX-512: the rows through `round` (16 floats -> 16 bf16 bits),
/// then zeros up to pad_cols.
template <class Round>
inline void rows_to_bf16_body(const float* src, int64_t lds, int64_t rows, int64_t cols,
                              int64_t pad_cols, uint16_t* dst, int64_t ldd, Round round) {
  store_rows_bf16(rows, cols, dst, ldd, [&](int64_t r, int64_t c, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, src + r * lds + c);
  }, round);
  for (int64_t r = 0; r < rows; ++r) std::fill(dst + r * ldd + cols, dst + r * ldd + std::max(cols, pad_cols), uint16_t{0});
}

/// The 16 x 16 transpose of 16-bit values held as x[a] = [row a (256 bits) | row a + 8],
/// a = 0..7, stored as dst[j * ldd + i] = row i's value j (16 values per row j): each 128-bit
/// lane across x[0..7] is an 8 x 8 block (rows 0-7 or 8-15, columns 0-7 or 8-15); three
/// rounds of in-lane unpacks transpose all four, and one lane permute per register puts
/// column k's two halves side by side: 32 shuffles per 256 values. Clobbers x.
inline void transpose_words_16x16(__m512i x[8], uint16_t* dst, int64_t ldd) {
  __m512i y[8];
  for (int a = 0; a < 8; a += 2) {  // words of rows a, a + 1 interleaved
    y[a] = _mm512_unpacklo_epi16(x[a], x[a + 1]);
    y[a + 1] = _mm512_unpackhi_epi16(x[a], x[a + 1]);
  }
  for (int g = 0; g < 8; g += 4) {  // pairs of words: four rows of two columns
    x[g] = _mm512_unpacklo_epi32(y[g], y[g + 2]);
    x[g + 1] = _mm512_unpackhi_epi32(y[g], y[g + 2]);
    x[g + 2] = _mm512_unpacklo_epi32(y[g + 1], y[g + 3]);
    x[g + 3] = _mm512_unpackhi_epi32(y[g + 1], y[g + 3]);
  }
  for (int k = 0; k < 4; ++k) {  // quads: eight rows of one column, per lane
    y[2 * k] = _mm512_unpacklo_epi64(x[k], x[k + 4]);
    y[2 * k + 1] = _mm512_unpackhi_epi64(x[k], x[k + 4]);
  }
  for (int k = 0; k < 8; ++k) {  // lanes (col k rows 0-7, col 8+k rows 0-7, col k 8-15, 8+k 8-15)
    const __m512i t = _mm512_shuffle_i64x2(y[k], y[k], 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k * ldd), _mm512_castsi512_si256(t));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (k + 8) * ldd), _mm512_extracti64x4_epi64(t, 1));
  }
}
#endif

}  // namespace
}  // namespace sta::simd
