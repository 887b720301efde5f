// The bf16 backward's conversion kernels (simd/grad.hpp: grad_scores_bf16, transpose_bf16) with
// AVX512-BF16's vcvtne2ps2bf16, which rounds 32 floats to nearest even in one instruction
// where grad_avx512.cpp spends seven integer operations and a vpmovdw per 16. Compiled with
// -mavx512bf16 (CMakeLists.txt) and chosen at run time (grad_scalar.cpp) only where the CPU
// has the instruction: every machine with AMX-BF16 or the avx512bf16-bf16 family, the two
// GEMM families whose backward calls them (compute_step_bf16 in src/kernels/backward.cpp).
//
// Same values as float_to_bf16 (simd/gemm.hpp) for every input: the instruction's NaN rule
// is float_to_bf16's (the top 16 bits with the quiet bit set), but it treats subnormal inputs
// as zero, so a vector holding one (|x| < 2^-126, x != 0: dS = P (dP - Delta) can be that
// small) is converted by the integer rounding instead.
//
// transpose_bf16 rounds 16 x 16 blocks two rows per vcvtne2ps2bf16 and transposes them as
// 16-bit values (block16). Measured on the 2-core Xeon, one thread, a 384 x 384 fp32 block
// (L2-resident, best of 300, one process): transpose_bf16 23.9 -> 18.0 us, the rounding of dS
// rows (then a pass of its own) 19.2 -> 10.4 us against grad_avx512.cpp's; Quick-backward-bf16
// (amx-bf16, one thread, old and new binaries alternating, three rounds): dense 680 / 707 /
// 684 -> 644 / 615 / 623 ms, sta 3,3,3 330 / 319 / 327 -> 302 / 291 / 317 ms.
#include <immintrin.h>

#include <algorithm>

#include "grad-inl.hpp"  // probs_from_lse_body
#include "grad.hpp"
#include "transpose-inl.hpp"

// GCC 12 reports the self-initialised `__Y = __Y` inside _mm512_undefined_ps, which the
// unpack and shuffle intrinsics pass as their (unused) merge source: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sta::simd {
namespace {

/// Lanes of x holding a subnormal float (nonzero, below 2^-126 in magnitude).
inline __mmask16 subnormal_lanes(__m512 x) { return _mm512_fpclass_ps_mask(x, 0x20); }

/// 16 floats to bf16: the instruction, or the integer rounding where a lane is subnormal.
inline __m256i bf16_of(__m512 x) {
  if (subnormal_lanes(x) != 0) return bf16_bits_exact(x);
  return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
}

/// The 16 x 16 block at src (row stride lds) transposed and rounded into dst (row stride
/// ldd): dst[j * ldd + i] = bf16(src[i * lds + j]). Rounded first, rows a and a + 8 by one
/// vcvtne2ps2bf16, then transposed as 16-bit values (transpose_words_16x16: 32 shuffles per
/// 256 values; port 5 bounds this kernel, and an fp32 16 x 16 transpose before the rounding
/// took 64).
inline void block16(const float* src, int64_t lds, bf16_t* dst, int64_t ldd) {
  __m512 r[16];
  // The subnormal test without a mask per row (vfpclassps would share port 5 with the
  // shuffles): (|bits| - 1) as unsigned is below 0x7fffff exactly for a subnormal (zero wraps
  // to the top, NaN and normal values stay above).
  const __m512i magnitude = _mm512_set1_epi32(0x7fffffff), one = _mm512_set1_epi32(1);
  __m512i least = _mm512_set1_epi32(-1);
  for (int i = 0; i < 16; ++i) {
    r[i] = _mm512_loadu_ps(src + i * lds);
    least = _mm512_min_epu32(least, _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(r[i]), magnitude), one));
  }
  if (_mm512_cmplt_epu32_mask(least, _mm512_set1_epi32(0x7fffff)) != 0) {  // rare: exact rounding
    for (int j = 0; j < 16; ++j)
      for (int i = 0; i < 16; ++i) dst[j * ldd + i] = float_to_bf16(src[i * lds + j]);
    return;
  }
  __m512i x[8];
  for (int a = 0; a < 8; ++a) x[a] = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(r[a + 8], r[a]));
  transpose_words_16x16(x, dst, ldd);
}

}  // namespace

void probs_from_lse_avx512bf16(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                               const float* lse) {
  probs_from_lse_body<xsimd::avx512bw, POut::kBf16Out>(s, ld, rows, cols, scale, lse);
}

void grad_scores_bf16_avx512bf16(const float* dp, int64_t lddp, const float* p, int64_t ldp,
                                 int64_t rows, int64_t cols, const float* delta, float scale,
                                 bf16_t* ds, int64_t ldds) {
  grad_scores_bf16_body(dp, lddp, p, ldp, rows, cols, delta, scale, ds, ldds,
                        [](__m512 x) { return bf16_of(x); });
}

void rows_to_bf16_avx512bf16(const float* src, int64_t lds, int64_t rows, int64_t cols,
                             int64_t pad_cols, bf16_t* dst, int64_t ldd) {
  rows_to_bf16_body(src, lds, rows, cols, pad_cols, dst, ldd, [](__m512 x) { return bf16_of(x); });
}

void transpose_bf16_avx512bf16(const float* src, int64_t lds, int64_t rows, int64_t cols,
                               bf16_t* dst, int64_t ldd, int64_t pad) {
  transpose_in_blocks<16>(
      rows, cols, dst, ldd, pad,
      [&](int64_t i, int64_t j) { block16(src + i * lds + j, lds, dst + j * ldd + i, ldd); },
      [&](int64_t j, int64_t i) { dst[j * ldd + i] = float_to_bf16(src[i * lds + j]); });
}

}  // namespace sta::simd
