// The fp32 GEMM micro-kernels of the flash loop for AVX-512 (compiled with -mavx512f...; see
// CMakeLists.txt), layout kF32Panels (simd/gemm.hpp). Both GEMMs are one register tile:
//   C[R][16 NV] = A[R][kdim] (float rows, stride lda) x B[kdim][16 NV] (packed panels)
// per k: the B row as NV zmm, then each of the R rows' A element broadcast once
// (vbroadcastss from memory) into NV FMAs. The main tile is 6 x 64 (two 32-wide panels side
// by side, NV = 4): 24 accumulators + 4 panel registers + 1 broadcast <= 32 zmm, 10 loads
// per 24 FMAs. The earlier 12 x 32 tile (NV = 2) needs 14 loads per 24 FMAs; on the Xeon
// we measured (2 loads/cycle) the 6 x 64 tile ran qk ~5 % and k-blocked pv ~5 % faster
// (best-of-200 timings, 384 x 384 x 128). (The FMA's embedded {1to16} broadcast instead needs
// a load per FMA: measured 15 % slower.) The 12 x 32 tile stays for a single last panel.
//   qk: A = Q, B = two K panels [D][32] each, C = 64 columns of S.
//   pv: A = P, B = two V column panels [kcols][32], C = 64 columns of O, fused with alpha O.
// Loop order: panels outer, row tiles inner, so the B panels stay in L1 while the A rows
// stream from L2 (a 384 x 128 Q block, a 384 x 384 P block and the K/V tile all fit the
// 2 MB L2). qk's two K panels are 2 x 16 KB for D = 128; pv's two V panels of 384 keys
// would be 96 KB (twice L1), so pv walks the keys in chunks of kPvKeyChunk (32 KB of V),
// adding each chunk's product into O. Each panel step prefetches the next step's panels
// (K and V come from L3: a new key tile every block), a slice per row tile.
// Everything ISA-specific stays in this file's anonymous namespace, so the linker can never
// pick an AVX-512 copy of a helper for another translation unit (see softmax-inl.hpp).
#include <immintrin.h>

#include <algorithm>
#include <cassert>

#include "gemm.hpp"
#include "prefetch-inl.hpp"

namespace sta::simd {
namespace {

#define STA_INLINE inline __attribute__((always_inline))

/// Rows per register tile: NV * rows accumulators + NV panel registers + 1 broadcast <= 32 zmm.
template <int NV>
constexpr int kTileRows = NV == 4 ? 6 : 12;
/// Keys per pv step of the 64-column tile: 2 V panels x 128 keys x 32 floats = 32 KB in L1.
constexpr int64_t kPvKeyChunk = 128;

/// What a tile does with O: o = acc, o = alpha o + acc, or o = o + acc (a later key chunk).
enum class Epilogue { kStore, kAlpha, kAdd };

/// One R x 16 NV tile over the whole k range, then the epilogue. NV = 4: two panels side by
/// side (b, b2), all 64 columns stored; NV = 2: one panel (b); NV = 1: its first half, for
/// pv's last panel when D % 32 is 1..16; NV <= 2 stores under the column masks m0, m1.
/// Not inlined: inlined into the row and panel loops, GCC strength-reduces the output row
/// pointers across tiles and keeps them on the stack (measured 2-3 % slower on qk at D = 64);
/// one call per tile is nothing against its R * kdim * NV FMAs.
template <int R, int NV>
__attribute__((noinline)) void tile(const float* a, int64_t lda, const float* b, const float* b2,
                                    int64_t kdim, float* o, int64_t ldo, Epilogue epilogue,
                                    const float* alpha, __mmask16 m0, __mmask16 m1) {
  __m512 c[NV][R];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) c[v][r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kdim; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps((v < 2 ? b : b2) + k * kKeyPanel + (v % 2) * 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[v][r] = _mm512_fmadd_ps(x, bv[v], c[v][r]);
    }
  }
  const __mmask16 mask[4] = {NV == 4 ? __mmask16{0xffff} : m0, NV == 4 ? __mmask16{0xffff} : m1,
                             0xffff, 0xffff};
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* out = o + r * ldo;
    if (epilogue == Epilogue::kAlpha) {
      const __m512 s = _mm512_set1_ps(alpha[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        c[v][r] = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(mask[v], out + 16 * v), c[v][r]);
      }
    } else if (epilogue == Epilogue::kAdd) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        c[v][r] = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], out + 16 * v), c[v][r]);
      }
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(out + 16 * v, mask[v], c[v][r]);
  }
}

/// A tile of the `n` < kTileRows<NV> rows left at the bottom of a block.
template <int NV>
STA_INLINE void tail_tile(int n, const float* a, int64_t lda, const float* b, const float* b2,
                          int64_t kdim, float* o, int64_t ldo, Epilogue ep, const float* alpha,
                          __mmask16 m0, __mmask16 m1) {
  switch (n) {
    case 1: tile<1, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
    case 2: tile<2, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
    case 3: tile<3, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
    case 4: tile<4, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
    case 5: tile<5, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
    default:
      if constexpr (NV <= 2) {
        switch (n) {
          case 6: tile<6, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
          case 7: tile<7, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
          case 8: tile<8, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
          case 9: tile<9, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
          case 10: tile<10, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
          case 11: tile<11, NV>(a, lda, b, b2, kdim, o, ldo, ep, alpha, m0, m1); break;
          default: assert(false && "tail_tile: n out of range");
        }
      } else {
        assert(false && "tail_tile: n out of range");
      }
  }
}

/// All rows against one panel (or panel pair): full tiles, then the tail.
template <int NV>
STA_INLINE void panel_rows(const float* a, int64_t lda, int64_t rows, const float* b,
                           const float* b2, int64_t kdim, float* o, int64_t ldo, Epilogue ep,
                           const float* alpha, __mmask16 m0, __mmask16 m1,
                           const Upcoming& next = Upcoming{}) {
  constexpr int kRows = kTileRows<NV>;
  const bool has_alpha = ep == Epilogue::kAlpha;
  const int64_t tiles = (rows + kRows - 1) / kRows;
  int64_t r = 0;
  for (int64_t t = 0; r + kRows <= rows; r += kRows, ++t) {
    prefetch_slice(next, t, tiles);
    tile<kRows, NV>(a + r * lda, lda, b, b2, kdim, o + r * ldo, ldo, ep,
                    has_alpha ? alpha + r : nullptr, m0, m1);
  }
  if (r < rows) {
    prefetch_slice(next, tiles - 1, tiles);
    tail_tile<NV>(static_cast<int>(rows - r), a + r * lda, lda, b, b2, kdim, o + r * ldo, ldo,
                  ep, has_alpha ? alpha + r : nullptr, m0, m1);
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
  const int64_t panels = ncols / kKeyPanel;
  const int64_t panel_elems = dim * kKeyPanel;
  int64_t p = 0;
  for (; p + 2 <= panels; p += 2) {
    Upcoming next;
    next.from[0] = kf + (p + 2) * panel_elems;
    next.floats[0] = std::max<int64_t>(0, std::min<int64_t>(2, panels - p - 2)) * panel_elems;
    panel_rows<4>(qf, ldq, rows, kf + p * panel_elems, kf + (p + 1) * panel_elems, dim,
                  s + p * kKeyPanel, lds, Epilogue::kStore, nullptr, 0xffff, 0xffff, next);
  }
  if (p < panels) {  // an odd last panel
    panel_rows<2>(qf, ldq, rows, kf + p * panel_elems, nullptr, dim, s + p * kKeyPanel, lds,
                  Epilogue::kStore, nullptr, 0xffff, 0xffff);
  }
}

void pv_avx512_f32(const void* p, int64_t ldp, int64_t rows, int64_t kcols, const void* v_packed,
                   int64_t v_panel_stride, int64_t dim, const float* alpha, float* o,
                   int64_t ldo) {
  assert(kcols % kKeyPanel == 0);
  const float* pf = static_cast<const float*>(p);
  const float* vf = static_cast<const float*>(v_packed);
  const Epilogue first = alpha != nullptr ? Epilogue::kAlpha : Epilogue::kStore;
  int64_t c0 = 0;
  // Pairs of whole column panels: the 6 x 64 tile, keys in L1-sized chunks (file comment).
  for (; c0 + 2 * kDimPanel <= dim; c0 += 2 * kDimPanel) {
    const float* b = vf + (c0 / kDimPanel) * v_panel_stride;
    for (int64_t k0 = 0; k0 < kcols; k0 += kPvKeyChunk) {
      const int64_t kc = std::min(kPvKeyChunk, kcols - k0);
      Upcoming next;
      if (k0 + kc < kcols) {
        next.from[0] = b + (k0 + kc) * kDimPanel;
        next.from[1] = next.from[0] + v_panel_stride;
        next.floats[0] = next.floats[1] = std::min(kPvKeyChunk, kcols - k0 - kc) * kDimPanel;
      } else if (c0 + 4 * kDimPanel <= dim) {
        next.from[0] = b + 2 * v_panel_stride;
        next.from[1] = next.from[0] + v_panel_stride;
        next.floats[0] = next.floats[1] = std::min(kPvKeyChunk, kcols) * kDimPanel;
      }
      panel_rows<4>(pf + k0, ldp, rows, b + k0 * kDimPanel, b + v_panel_stride + k0 * kDimPanel,
                    kc, o + c0, ldo, k0 == 0 ? first : Epilogue::kAdd, alpha, 0xffff, 0xffff,
                    next);
    }
  }
  // The rest of D (under 64 columns): one panel at a time, all keys at once, masked columns.
  for (; c0 < dim; c0 += kDimPanel) {
    const float* b = vf + (c0 / kDimPanel) * v_panel_stride;
    const __mmask16 m0 = first_lanes(dim - c0), m1 = first_lanes(dim - c0 - 16);
    if (dim - c0 > 16) {
      panel_rows<2>(pf, ldp, rows, b, nullptr, kcols, o + c0, ldo, first, alpha, m0, m1);
    } else {
      panel_rows<1>(pf, ldp, rows, b, nullptr, kcols, o + c0, ldo, first, alpha, m0, m1);
    }
  }
}

}  // namespace sta::simd
