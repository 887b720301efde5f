#pragma once
// SIMD body of the online softmax update (see softmax.hpp), written once over xsimd and
// instantiated per instruction set by softmax_avx2.cpp and softmax_avx512.cpp, each compiled
// with its own -m flags. Include only from those files: everything here must stay inline
// and templated on the architecture, so no symbol compiled for one ISA can be picked by the
// linker for another.
#include <cstdint>
#include <immintrin.h>

#include <limits>

#include <xsimd/xsimd.hpp>

namespace sta::simd {
namespace {

/// exp(x) for the softmax (x <= ~0, -inf or NaN): xsimd's exp in general, a shorter AVX-512
/// one below.
template <class Arch>
inline xsimd::batch<float, Arch> softmax_exp(const xsimd::batch<float, Arch>& x) {
  return xsimd::exp(x);
}
#if defined(__AVX512F__)
/// exp(x) = 2^n e^r with n = round(x log2 e), r = x - n ln 2 (Cody-Waite, ln 2 in two parts
/// with FMAs: as accurate as x itself), e^r on [-ln2/2, ln2/2] by a degree-6 polynomial
/// (weighted least-squares fit, max relative error 1e-7 evaluated in fp32), 2^n by
/// vscalefps: 12 instructions against ~20 for xsimd's exp (its range checks and ldexp).
/// Where x log2 e < -126 (p below the smallest normal float, -inf included) p = 0, as xsimd
/// gives below its range: no denormals, and a masked key's p is exactly 0, so a NaN or Inf
/// in its V row cannot reach O. NaN compares "not less" and stays NaN. (An earlier hand-
/// written exp measured slower in the loop. This one: the 384 x 384 softmax update 37.6 us
/// against 47 us with xsimd's exp, best of 400, on the 2-core Xeon; about 2 % of a block.)
template <>
inline xsimd::batch<float, xsimd::avx512bw> softmax_exp<xsimd::avx512bw>(
    const xsimd::batch<float, xsimd::avx512bw>& xb) {
  const __m512 x = xb;
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.383684459e-3f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.374815807e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166822508e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666641980e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999999106e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __mmask16 normal = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
  return _mm512_maskz_scalef_ps(normal, p, n);
}
#endif

/// Where pass 2 puts p: fp32 in place (kFloat), fp32 rounded to bf16 values in place (the
/// bf16 emulation, kRoundInPlace), or bf16 bits into a separate buffer (kBf16Out).
enum class POut { kFloat, kRoundInPlace, kBf16Out };

/// The exp of pass 2 per output mode: xsimd's everywhere, except where p goes to bf16 bits
/// on AVX-512 (below).
template <class Arch, POut kOut>
inline xsimd::batch<float, Arch> p_exp(const xsimd::batch<float, Arch>& x) {
  return softmax_exp<Arch>(x);
}
#if defined(__AVX512BF16__) && defined(__AVX512DQ__)
/// exp(x) for bf16 P (x <= 0, -inf or NaN) in 9 vector operations instead of xsimd's ~20:
/// 2^t with t = x log2(e), f = t - floor(t) by vreduceps (exact), 2^f by a degree-5 polynomial
/// on [0, 1) (p(0) = 1 exactly, fitted for relative error: 1.5e-7 evaluated in fp32), and
/// vscalefps multiplying by 2^floor(t). Special values need no extra code: t = -inf reduces
/// to f = 0 and scales to +0, NaN stays NaN, t < -149 underflows to 0.
/// Relative error against exp(x) (tests/test_softmax_bf16.cpp measures it): the polynomial
/// plus the rounding of t, |t| 2^-24 ln 2, so <= 1.2e-6 for exp(x) >= 2^-24 (the p that
/// reach the row sum) and <= 6e-6 down to 2^-126. P is then rounded to 8 mantissa bits
/// (relative step 2^-8): only p within that error of a bf16 rounding tie can round the other
/// way than with a correctly rounded exp, the ambiguity SPEC 6's emulation tests already
/// allow for any fp32 kernel (tests/test_precision.cpp: +-1e-5 relative). Not used for fp32
/// P: xsimd's exp is ~1 ulp, and there vscalefps/vreduceps competed with the FMAs (see
/// softmax_exp). Measured here (one thread, Quick/bf16 sta 3,3,3): 1.15x faster with the
/// amx-bf16 family, where the softmax was a third of the time; neutral with the
/// avx512bf16-bf16 family, whose vdpbf16ps GEMMs dominate.
template <>
inline xsimd::batch<float, xsimd::avx512bw> p_exp<xsimd::avx512bw, POut::kBf16Out>(
    const xsimd::batch<float, xsimd::avx512bw>& x) {
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p = _mm512_set1_ps(0x1.e970eap-10f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.277968p-7f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.c91cb6p-5f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.ebdb5ap-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.62e4bap-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, t);
}
#endif

/// p rounded to the nearest bf16 (ties to even), as float bits with the low half cleared.
/// p = exp(...) is >= 0 or NaN; a NaN keeps its quiet bit, so it stays NaN.
template <class Arch>
inline xsimd::batch<uint32_t, Arch> round_bf16_bits(const xsimd::batch<float, Arch>& p) {
  using U = xsimd::batch<uint32_t, Arch>;
  const U bits = xsimd::bitwise_cast<U>(p);
  const U lsb = (bits >> 16) & U(1u);
  return (bits + U(0x7fffu) + lsb) & U(0xffff0000u);
}

/// Stores the high halves of `n` (<= lanes) 32-bit lanes as 16-bit values.
template <class Arch>
inline void store_high_halves(const xsimd::batch<uint32_t, Arch>& rounded, uint16_t* dst,
                              int64_t n) {
  constexpr int64_t kLanes = static_cast<int64_t>(xsimd::batch<uint32_t, Arch>::size);
  alignas(64) uint32_t buf[kLanes];
  (rounded >> 16).store_aligned(buf);
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint16_t>(buf[i]);
}
#if defined(__AVX512F__)
template <>
inline void store_high_halves<xsimd::avx512bw>(const xsimd::batch<uint32_t, xsimd::avx512bw>& r,
                                               uint16_t* dst, int64_t n) {
  const __m256i h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
  if (n == 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), h);
  } else {
    _mm256_mask_storeu_epi16(dst, static_cast<__mmask16>((1u << n) - 1u), h);
  }
}
#endif

/// Stores `n` (<= lanes) values of p rounded to bf16 (nearest even).
template <class Arch>
inline void store_bf16(const xsimd::batch<float, Arch>& p, uint16_t* dst, int64_t n) {
  store_high_halves<Arch>(round_bf16_bits<Arch>(p), dst, n);
}
#if defined(__AVX512BF16__)
/// With AVX512-BF16 one vcvtneps2bf16 rounds 16 values to nearest even (it flushes values
/// below 2^-126 to zero: p that small is 0 for any output in float32 anyway).
template <>
inline void store_bf16<xsimd::avx512bw>(const xsimd::batch<float, xsimd::avx512bw>& p,
                                        uint16_t* dst, int64_t n) {
  const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(p));
  if (n == 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), h);
  } else {
    _mm256_mask_storeu_epi16(dst, static_cast<__mmask16>((1u << n) - 1u), h);
  }
}
#endif

/// Stores two full vectors of p (2 * lanes values) rounded to bf16.
template <class Arch>
inline void store_bf16_pair(const xsimd::batch<float, Arch>& p0,
                            const xsimd::batch<float, Arch>& p1, uint16_t* dst) {
  constexpr int64_t kLanes = static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  store_bf16<Arch>(p0, dst, kLanes);
  store_bf16<Arch>(p1, dst + kLanes, kLanes);
}
#if defined(__AVX512BF16__)
/// One vcvtne2ps2bf16 rounds both vectors (2 uops for 32 values instead of 4).
template <>
inline void store_bf16_pair<xsimd::avx512bw>(const xsimd::batch<float, xsimd::avx512bw>& p0,
                                             const xsimd::batch<float, xsimd::avx512bw>& p1,
                                             uint16_t* dst) {
  _mm512_storeu_si512(dst, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(p1, p0)));
}
#endif

template <class Arch, POut kOut>
inline void online_softmax_body(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                float scale, float* row_max, float* row_sum, float* alpha,
                                uint16_t* p_out, int64_t ldp) {
  using Batch = xsimd::batch<float, Arch>;
  using Bits = xsimd::batch<uint32_t, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t full = cols - cols % kLanes;
  const int64_t tail = cols - full;
  alignas(64) float buf[kLanes];

  // Pass 2's output of one vector of p at column j (n valid lanes), per output mode.
  auto put = [&](const Batch& p, float* s, uint16_t* pb, int64_t j, int64_t n) {
    if constexpr (kOut == POut::kFloat) {
      if (n == kLanes) {
        p.store_unaligned(s + j);
      } else {
        p.store_aligned(buf);
        for (int64_t i = 0; i < n; ++i) s[j + i] = buf[i];
      }
    } else if constexpr (kOut == POut::kRoundInPlace) {
      const Batch r = xsimd::bitwise_cast<Batch>(round_bf16_bits<Arch>(p));
      if (n == kLanes) {
        r.store_unaligned(s + j);
      } else {
        r.store_aligned(buf);
        for (int64_t i = 0; i < n; ++i) s[j + i] = buf[i];
      }
    } else {
      store_bf16<Arch>(p, pb + j, n);
    }
  };
  static_cast<void>(sizeof(Bits));

  // Pass 1 for every row first: the block's row max, kept in alpha[] until pass 2. Rows are
  // then independent in pass 2, so the core overlaps one row's exp chain with the next row's
  // (row by row, each row waited on its own reductions: 25% slower at 384 columns).
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = scores + r * ld;
    // Four independent max chains: one chain would wait on the max latency every vector.
    Batch m0(kNegInf), m1(kNegInf), m2(kNegInf), m3(kNegInf);
    int64_t j0 = 0;
    for (; j0 + 4 * kLanes <= full; j0 += 4 * kLanes) {
      m0 = xsimd::max(m0, Batch::load_unaligned(s + j0));
      m1 = xsimd::max(m1, Batch::load_unaligned(s + j0 + kLanes));
      m2 = xsimd::max(m2, Batch::load_unaligned(s + j0 + 2 * kLanes));
      m3 = xsimd::max(m3, Batch::load_unaligned(s + j0 + 3 * kLanes));
    }
    for (; j0 < full; j0 += kLanes) m0 = xsimd::max(m0, Batch::load_unaligned(s + j0));
    xsimd::max(xsimd::max(m0, m1), xsimd::max(m2, m3)).store_aligned(buf);
    float block_max = kNegInf;
    for (int64_t i = 0; i < kLanes; ++i) block_max = buf[i] > block_max ? buf[i] : block_max;
    for (int64_t j = full; j < cols; ++j) block_max = s[j] > block_max ? s[j] : block_max;
    // scale > 0, so max(scale * s) = scale * max(s).
    const float scaled_max = block_max * scale;
    alpha[r] = scaled_max > row_max[r] ? scaled_max : row_max[r];  // the new max
  }

  for (int64_t r = 0; r < rows; ++r) {
    float* s = scores + r * ld;
    uint16_t* pb = kOut == POut::kBf16Out ? p_out + r * ldp : nullptr;
    const float old_max = row_max[r];
    const float new_max = alpha[r];
    if (new_max == kNegInf) {  // nothing allowed yet: p = 0, accumulators untouched
      for (int64_t j = 0; j < cols; ++j) s[j] = 0.0f;
      if (pb != nullptr) {
        for (int64_t j = 0; j < cols; ++j) pb[j] = 0;
      }
      alpha[r] = 1.0f;
      continue;
    }

    // Pass 2: p = exp(scale * s - new_max), the scale fused into one FMA; exp(-inf) = 0.
    // The row sum takes p before any rounding (SPEC 6: flash kernels sum the fp32 p).
    const Batch vscale(scale);
    const Batch vshift(-new_max);
    Batch sum0(0.0f), sum1(0.0f);  // two chains (a fixed order: the same bits every run)
    int64_t j = 0;
    for (; j + 2 * kLanes <= full; j += 2 * kLanes) {
      const Batch p0 = p_exp<Arch, kOut>(xsimd::fma(Batch::load_unaligned(s + j), vscale, vshift));
      const Batch p1 =
          p_exp<Arch, kOut>(xsimd::fma(Batch::load_unaligned(s + j + kLanes), vscale, vshift));
      if constexpr (kOut == POut::kBf16Out) {
        store_bf16_pair<Arch>(p0, p1, pb + j);
      } else {
        put(p0, s, pb, j, kLanes);
        put(p1, s, pb, j + kLanes, kLanes);
      }
      sum0 += p0;
      sum1 += p1;
    }
    for (; j < full; j += kLanes) {
      const Batch p = p_exp<Arch, kOut>(xsimd::fma(Batch::load_unaligned(s + j), vscale, vshift));
      put(p, s, pb, j, kLanes);
      sum0 += p;
    }
    if (tail > 0) {  // the ragged end goes through the same vector code, padded with -inf
      for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < tail ? s[full + i] : kNegInf;
      const Batch p = p_exp<Arch, kOut>(xsimd::fma(Batch::load_aligned(buf), vscale, vshift));
      put(p, s, pb, full, tail);
      sum1 += p;
    }
    const float block_sum = xsimd::hadd(sum0 + sum1);

    float a = 1.0f;
    if (new_max != old_max) {
      // exp(old - new) through the same vector exp; old = -inf gives 0.
      const Batch e = softmax_exp<Arch>(Batch(old_max - new_max));
      e.store_aligned(buf);
      a = buf[0];
    }
    row_max[r] = new_max;
    row_sum[r] = row_sum[r] * a + block_sum;
    alpha[r] = a;
  }
}

/// The bf16-mode update (SoftmaxKernels::online_softmax_bf16): p to bf16 bits in p_out, or
/// rounded in place when p_out is null.
template <class Arch>
inline void online_softmax_bf16_body(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                     float scale, float* row_max, float* row_sum, float* alpha,
                                     uint16_t* p_out, int64_t ldp) {
  if (p_out != nullptr) {
    online_softmax_body<Arch, POut::kBf16Out>(scores, ld, rows, cols, scale, row_max, row_sum,
                                              alpha, p_out, ldp);
  } else {
    online_softmax_body<Arch, POut::kRoundInPlace>(scores, ld, rows, cols, scale, row_max,
                                                   row_sum, alpha, nullptr, 0);
  }
}

}  // namespace
}  // namespace sta::simd
