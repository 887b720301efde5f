// The bf16 GEMM micro-kernels on AVX512-BF16 (compiled with -mavx512bf16 plus the AVX-512
// set; chosen at run time by gemm_dispatch.cpp only where CPUID and XCR0 allow it).
//
// vdpbf16ps adds, per fp32 lane i, a[2i] * b[2i] + a[2i+1] * b[2i+1] to the accumulator: with
// b = one row of VNNI pairs of the packed K or V panel (16 keys or columns per zmm) and a = a
// pair of the A operand (two consecutive bf16 of a Q or P row) broadcast as one 32-bit value,
// each instruction is 16 lanes x 2 multiply-adds of an outer-product micro-kernel. Blocks are
// MR rows x NP panels of 32 columns held in 2 * MR * NP accumulators (kRows2, kRows1 below).
//
// Speed: the kernels run at ~97% of the vdpbf16ps probe (simd/probe_bf16.hpp). On the Xeon
// (Sapphire Rapids class) this was written on, vdpbf16ps zmm issues once per 2 cycles: ~115
// GFLOP/s per core against ~230 for fp32 FMA, so there this family is slower than a good fp32
// kernel and AMX is the bf16 path; it pays where vdpbf16ps runs at the FMA's rate.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "gemm.hpp"

namespace sta::simd {
namespace {

/// The pair (x[0], x[1]) of a bf16 row broadcast to all 16 lanes (an embedded broadcast).
inline __m512bh pair_broadcast(const bf16_t* x) {
  int32_t bits;
  std::memcpy(&bits, x, sizeof bits);
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(bits));
}

inline __m512bh load_pairs(const bf16_t* x) {
  return reinterpret_cast<__m512bh>(_mm512_loadu_si512(x));
}

/// Lanes of the 16 columns starting at c0 that lie below `dim`.
inline __mmask16 column_mask(int64_t c0, int64_t dim) {
  const int64_t n = dim - c0;
  return n >= 16 ? static_cast<__mmask16>(0xffff)
                 : n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1u);
}

/// S block of MR rows x NP key panels: s[r][j] = sum over `pairs` d-pairs of q[r] . k[j].
/// `k` is the first panel, `panel` the element distance between panels (Dp * 32).
template <int MR, int NP>
void qk_block(const bf16_t* q, int64_t ldq, int64_t pairs, const bf16_t* k, int64_t panel,
              float* s, int64_t lds) {
  __m512 acc[MR][2 * NP];
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    #pragma GCC unroll 32
    for (int c = 0; c < 2 * NP; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int64_t t = 0; t < pairs; ++t) {
    __m512bh b[2 * NP];
    #pragma GCC unroll 32
    for (int p = 0; p < NP; ++p) {
      b[2 * p] = load_pairs(k + p * panel + t * 64);
      b[2 * p + 1] = load_pairs(k + p * panel + t * 64 + 32);
    }
    #pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      const __m512bh a = pair_broadcast(q + r * ldq + 2 * t);
      #pragma GCC unroll 32
      for (int c = 0; c < 2 * NP; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, b[c]);
    }
  }
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    #pragma GCC unroll 32
    for (int c = 0; c < 2 * NP; ++c) _mm512_storeu_ps(s + r * lds + 16 * c, acc[r][c]);
  }
}

/// O block of MR rows x NP column panels (starting at column c0 of O, panel pointer v):
/// o = alpha o + p v over kcols keys; stores only columns below dim.
template <int MR, int NP>
void pv_block(const bf16_t* p, int64_t ldp, int64_t kcols, const bf16_t* v, int64_t stride,
              int64_t c0, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  __mmask16 mask[2 * NP];
  #pragma GCC unroll 32
  for (int c = 0; c < 2 * NP; ++c) mask[c] = column_mask(c0 + 16 * c, dim);
  __m512 acc[MR][2 * NP];
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    // The same order as the scalar family: alpha o first, then the products.
    const __m512 a = _mm512_set1_ps(alpha != nullptr ? alpha[r] : 0.0f);
    #pragma GCC unroll 32
    for (int c = 0; c < 2 * NP; ++c) {
      acc[r][c] = alpha != nullptr
                      ? _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mask[c], o + r * ldo + c0 + 16 * c))
                      : _mm512_setzero_ps();
    }
  }
  for (int64_t u = 0; u < kcols / 2; ++u) {
    __m512bh b[2 * NP];
    #pragma GCC unroll 32
    for (int q = 0; q < NP; ++q) {
      b[2 * q] = load_pairs(v + q * stride + u * 64);
      b[2 * q + 1] = load_pairs(v + q * stride + u * 64 + 32);
    }
    #pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      const __m512bh a = pair_broadcast(p + r * ldp + 2 * u);
      #pragma GCC unroll 32
      for (int c = 0; c < 2 * NP; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, b[c]);
    }
  }
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    #pragma GCC unroll 32
    for (int c = 0; c < 2 * NP; ++c) {
      _mm512_mask_storeu_ps(o + r * ldo + c0 + 16 * c, mask[c], acc[r][c]);
    }
  }
}

// Register blocks: two panels (64 columns) x 6 rows = 24 accumulators for the bulk, one panel
// x 14 rows = 28 accumulators for a last odd panel; 4 (or 2) B registers, the A pair is an
// embedded-broadcast memory operand. Row tails use the same shapes with fewer rows.
constexpr int kRows2 = 6;
constexpr int kRows1 = 14;

using QkBlockFn = void (*)(const bf16_t*, int64_t, int64_t, const bf16_t*, int64_t, float*, int64_t);
using PvBlockFn = void (*)(const bf16_t*, int64_t, int64_t, const bf16_t*, int64_t, int64_t,
                           int64_t, const float*, float*, int64_t);

/// Block functions for 1..MaxRows rows (index rows - 1), so row tails stay in registers.
template <int NP, int MaxRows>
struct Table {
  template <int... I>
  static constexpr std::array<QkBlockFn, MaxRows> qk(std::integer_sequence<int, I...>) {
    return {qk_block<I + 1, NP>...};
  }
  template <int... I>
  static constexpr std::array<PvBlockFn, MaxRows> pv(std::integer_sequence<int, I...>) {
    return {pv_block<I + 1, NP>...};
  }
  static constexpr std::array<QkBlockFn, MaxRows> kQk = qk(std::make_integer_sequence<int, MaxRows>());
  static constexpr std::array<PvBlockFn, MaxRows> kPv = pv(std::make_integer_sequence<int, MaxRows>());
};

}  // namespace

void qk_avx512bf16_bf16(const void* q_, int64_t ldq, int64_t rows, int64_t dim,
                        const void* k_, int64_t ncols, float* s, int64_t lds) {
  const bf16_t* q = static_cast<const bf16_t*>(q_);
  const bf16_t* k = static_cast<const bf16_t*>(k_);
  const int64_t dp = padded_dim_bf16(dim);
  const int64_t panel = dp * kKeyPanel;
  const int64_t panels = ncols / kKeyPanel;
  // Only the pairs that hold some d < D: the rest of Dp is zero in Q and K alike.
  const int64_t pairs = (dim + 1) / 2;
  // Panel pairs outside (a 2-panel slice of K stays in L1), row blocks inside.
  int64_t pc = 0;
  for (; pc + 2 <= panels; pc += 2) {
    for (int64_t r0 = 0; r0 < rows; r0 += kRows2) {
      const int64_t mr = rows - r0 < kRows2 ? rows - r0 : kRows2;
      Table<2, kRows2>::kQk[mr - 1](q + r0 * ldq, ldq, pairs, k + pc * panel, panel,
                                    s + r0 * lds + pc * kKeyPanel, lds);
    }
  }
  if (pc < panels) {
    for (int64_t r0 = 0; r0 < rows; r0 += kRows1) {
      const int64_t mr = rows - r0 < kRows1 ? rows - r0 : kRows1;
      Table<1, kRows1>::kQk[mr - 1](q + r0 * ldq, ldq, pairs, k + pc * panel, panel,
                                    s + r0 * lds + pc * kKeyPanel, lds);
    }
  }
}

void pv_avx512bf16_bf16(const void* p_, int64_t ldp, int64_t rows, int64_t kcols,
                        const void* v_, int64_t stride, int64_t dim, const float* alpha,
                        float* o, int64_t ldo) {
  const bf16_t* p = static_cast<const bf16_t*>(p_);
  const bf16_t* v = static_cast<const bf16_t*>(v_);
  const int64_t panels = (dim + kDimPanel - 1) / kDimPanel;
  // Row blocks outside (the block's P rows stay in L1), column panels inside.
  for (int64_t r0 = 0; r0 < rows; r0 += kRows2) {
    const int64_t mr = rows - r0 < kRows2 ? rows - r0 : kRows2;
    const float* a = alpha != nullptr ? alpha + r0 : nullptr;
    int64_t cp = 0;
    for (; cp + 2 <= panels; cp += 2) {
      Table<2, kRows2>::kPv[mr - 1](p + r0 * ldp, ldp, kcols, v + cp * stride, stride,
                                    cp * kDimPanel, dim, a, o + r0 * ldo, ldo);
    }
    if (cp < panels) {
      Table<1, kRows2>::kPv[mr - 1](p + r0 * ldp, ldp, kcols, v + cp * stride, stride,
                                    cp * kDimPanel, dim, a, o + r0 * ldo, ldo);
    }
  }
}

}  // namespace sta::simd
