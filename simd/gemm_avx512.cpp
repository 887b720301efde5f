// The fp32 GEMM micro-kernels of the flash loop for AVX-512 (compiled with -mavx512f...; see
// CMakeLists.txt), layout kF32Panels (simd/gemm.hpp). Both GEMMs are the same register tile:
//   C[R][32] = A[R][kdim] (float rows, stride lda) x B[kdim][32] (a packed panel, contiguous)
// per k: the panel row as two zmm, then each of the R rows' A element broadcast once
// (vbroadcastss from memory) into two FMAs: 2R accumulators + 2 panel registers + 1
// broadcast <= 32 zmm, 14 loads per 24 FMAs for R = 12. (The FMA's embedded {1to16}
// broadcast instead needs a load per FMA: measured 15 % slower.)
//   qk: A = Q, B = one K panel [D][32], C = 32 columns of S.
//   pv: A = P, B = one V column panel [kcols][32], C = 32 columns of O, fused with alpha O.
// Loop order: panel outer, row tiles inner, so the panel (16 KB for D = 128) stays in L1
// while the A rows stream from L2 (a 384 x 128 Q block, a 384 x 384 P block and the K/V
// tile all fit the 2 MB L2). The other order, A rows held in L1 against all panels, and
// k-blocking of pv's 48 KB V panel measured the same within noise; R = 14 too.
// Everything ISA-specific stays in this file's anonymous namespace, so the linker can never
// pick an AVX-512 copy of a helper for another translation unit (see softmax-inl.hpp).
#include <immintrin.h>

#include <cassert>

#include "gemm.hpp"

namespace sta::simd {
namespace {

#define STA_INLINE inline __attribute__((always_inline))

/// Rows per register tile: 2 * kTileRows accumulators + 2 panel registers <= 32 zmm.
constexpr int kTileRows = 12;

/// One R x 16 NV tile (NV = 2: a whole panel; NV = 1: its first half, for pv's last panel
/// when D % 32 is 1..16) over the whole k range, then the epilogue: o = acc, or
/// o = alpha o + acc (alpha != nullptr), stored under the column masks.
/// Not inlined: inlined into the row and panel loops, GCC strength-reduces the 12 output row
/// pointers across tiles and keeps them on the stack (measured 2-3 % slower on qk at D = 64);
/// one call per tile is nothing against its R * D * 2 FMAs.
template <int R, int NV>
__attribute__((noinline)) void tile(const float* a, int64_t lda, const float* b, int64_t kdim,
                                    float* o, int64_t ldo, const float* alpha, __mmask16 m0,
                                    __mmask16 m1) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm512_setzero_ps();
    c1[r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kdim; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * kDimPanel);
    const __m512 b1 = NV == 2 ? _mm512_loadu_ps(b + k * kDimPanel + 16) : b0;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + k]);
      c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);
      if (NV == 2) c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* out = o + r * ldo;
    if (alpha != nullptr) {
      const __m512 s = _mm512_set1_ps(alpha[r]);
      c0[r] = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m0, out), c0[r]);
      if (NV == 2) c1[r] = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m1, out + 16), c1[r]);
    }
    _mm512_mask_storeu_ps(out, m0, c0[r]);
    if (NV == 2) _mm512_mask_storeu_ps(out + 16, m1, c1[r]);
  }
}

/// A tile of the `n` < kTileRows rows left at the bottom of a block.
template <int NV>
STA_INLINE void tail_tile(int n, const float* a, int64_t lda, const float* b, int64_t kdim,
                          float* o, int64_t ldo, const float* alpha, __mmask16 m0, __mmask16 m1) {
  switch (n) {
    case 1: tile<1, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 2: tile<2, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 3: tile<3, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 4: tile<4, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 5: tile<5, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 6: tile<6, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 7: tile<7, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 8: tile<8, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 9: tile<9, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 10: tile<10, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    case 11: tile<11, NV>(a, lda, b, kdim, o, ldo, alpha, m0, m1); break;
    default: assert(false && "tail_tile: n out of range");
  }
}

/// All rows against one panel: full tiles, then the tail.
template <int NV>
STA_INLINE void panel_rows(const float* a, int64_t lda, int64_t rows, const float* b,
                           int64_t kdim, float* o, int64_t ldo, const float* alpha,
                           __mmask16 m0, __mmask16 m1) {
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows) {
    tile<kTileRows, NV>(a + r * lda, lda, b, kdim, o + r * ldo, ldo,
                    alpha != nullptr ? alpha + r : nullptr, m0, m1);
  }
  if (r < rows) {
    tail_tile<NV>(static_cast<int>(rows - r), a + r * lda, lda, b, kdim, o + r * ldo, ldo,
              alpha != nullptr ? alpha + r : nullptr, m0, m1);
  }
}

/// Lane mask of the first `n` (clamped to 0..16) columns.
__mmask16 first_lanes(int64_t n) {
  if (n <= 0) return 0;
  if (n >= 16) return 0xffff;
  return static_cast<__mmask16>((1u << n) - 1u);
}

}  // namespace

void qk_avx512_f32(const void* q, int64_t ldq, int64_t rows, int64_t dim, const void* k_packed,
                   int64_t ncols, float* s, int64_t lds) {
  assert(ncols % kKeyPanel == 0);
  const float* qf = static_cast<const float*>(q);
  const float* kf = static_cast<const float*>(k_packed);
  for (int64_t p = 0; p < ncols / kKeyPanel; ++p) {
    panel_rows<2>(qf, ldq, rows, kf + p * dim * kKeyPanel, dim, s + p * kKeyPanel, lds, nullptr,
                  0xffff, 0xffff);
  }
}

void pv_avx512_f32(const void* p, int64_t ldp, int64_t rows, int64_t kcols, const void* v_packed,
                   int64_t v_panel_stride, int64_t dim, const float* alpha, float* o,
                   int64_t ldo) {
  assert(kcols % kKeyPanel == 0);
  const float* pf = static_cast<const float*>(p);
  const float* vf = static_cast<const float*>(v_packed);
  for (int64_t cp = 0; cp * kDimPanel < dim; ++cp) {
    const int64_t c0 = cp * kDimPanel;
    const float* b = vf + cp * v_panel_stride;
    const __mmask16 m0 = first_lanes(dim - c0), m1 = first_lanes(dim - c0 - 16);
    if (dim - c0 > 16) {
      panel_rows<2>(pf, ldp, rows, b, kcols, o + c0, ldo, alpha, m0, m1);
    } else {
      panel_rows<1>(pf, ldp, rows, b, kcols, o + c0, ldo, alpha, m0, m1);
    }
  }
}

}  // namespace sta::simd
