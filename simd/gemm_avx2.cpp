// The fp32 GEMM micro-kernels of the flash loop for AVX2 + FMA (compiled with -mavx2 -mfma;
// see CMakeLists.txt), layout kF32Panels (simd/gemm.hpp). Same scheme as gemm_avx512.cpp
// with 16 ymm registers: the register tile is R x 16 (one half of a 32-wide packed panel,
// two ymm per row), A broadcast one element at a time:
//   C[R][16] = A[R][kdim] (float rows, stride lda) x B[kdim][16] (panel rows 32 floats apart)
// 2R accumulators + 2 panel registers + 1 broadcast <= 16 ymm gives R = 6. Loop order as in
// gemm_avx512.cpp (panel halves outer, row tiles inner). Unlike there, the inlined tile is
// the faster one here (a noinline tile measured ~5 % slower on qk).
// Everything ISA-specific stays in this file's anonymous namespace (see softmax-inl.hpp).
#include <immintrin.h>

#include <cassert>

#include "gemm.hpp"

namespace sta::simd {
namespace {

#define STA_INLINE inline __attribute__((always_inline))

constexpr int kTileRows = 6;

/// Masks for _mm256_maskstore_ps / maskload of the first `n` (clamped to 0..8) lanes.
__m256i first_lanes(int64_t n) {
  const int32_t k = static_cast<int32_t>(n < 0 ? 0 : (n > 8 ? 8 : n));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), lane);
}

/// Column masks of one 16-wide half panel; `full` skips the masked loads and stores.
struct Cols {
  bool full;
  __m256i m0, m1;
};

/// One R x 16 tile over the whole k range, then o = acc or o = alpha o + acc under the masks.
template <int R>
STA_INLINE void tile(const float* a, int64_t lda, const float* b, int64_t kdim, float* o,
                     int64_t ldo, const float* alpha, const Cols& cols) {
  __m256 c0[R], c1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm256_setzero_ps();
    c1[r] = _mm256_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kdim; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kDimPanel);
    const __m256 b1 = _mm256_loadu_ps(b + k * kDimPanel + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * lda + k);
      c0[r] = _mm256_fmadd_ps(x, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(x, b1, c1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* out = o + r * ldo;
    if (cols.full) {
      if (alpha != nullptr) {
        const __m256 s = _mm256_set1_ps(alpha[r]);
        c0[r] = _mm256_fmadd_ps(s, _mm256_loadu_ps(out), c0[r]);
        c1[r] = _mm256_fmadd_ps(s, _mm256_loadu_ps(out + 8), c1[r]);
      }
      _mm256_storeu_ps(out, c0[r]);
      _mm256_storeu_ps(out + 8, c1[r]);
    } else {
      if (alpha != nullptr) {
        const __m256 s = _mm256_set1_ps(alpha[r]);
        c0[r] = _mm256_fmadd_ps(s, _mm256_maskload_ps(out, cols.m0), c0[r]);
        c1[r] = _mm256_fmadd_ps(s, _mm256_maskload_ps(out + 8, cols.m1), c1[r]);
      }
      _mm256_maskstore_ps(out, cols.m0, c0[r]);
      _mm256_maskstore_ps(out + 8, cols.m1, c1[r]);
    }
  }
}

/// All rows against one half panel: full tiles, then the `rows % kTileRows` left.
STA_INLINE void panel_rows(const float* a, int64_t lda, int64_t rows, const float* b,
                           int64_t kdim, float* o, int64_t ldo, const float* alpha,
                           const Cols& cols) {
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows) {
    tile<kTileRows>(a + r * lda, lda, b, kdim, o + r * ldo, ldo,
                    alpha != nullptr ? alpha + r : nullptr, cols);
  }
  const float* al = alpha != nullptr ? alpha + r : nullptr;
  a += r * lda;
  o += r * ldo;
  switch (rows - r) {
    case 0: break;
    case 1: tile<1>(a, lda, b, kdim, o, ldo, al, cols); break;
    case 2: tile<2>(a, lda, b, kdim, o, ldo, al, cols); break;
    case 3: tile<3>(a, lda, b, kdim, o, ldo, al, cols); break;
    case 4: tile<4>(a, lda, b, kdim, o, ldo, al, cols); break;
    case 5: tile<5>(a, lda, b, kdim, o, ldo, al, cols); break;
    default: assert(false && "panel_rows: tail out of range");
  }
}

}  // namespace

void qk_avx2_f32(const void* q, int64_t ldq, int64_t rows, int64_t dim, const void* k_packed,
                 int64_t ncols, float* s, int64_t lds) {
  assert(ncols % kKeyPanel == 0);
  const float* qf = static_cast<const float*>(q);
  const float* kf = static_cast<const float*>(k_packed);
  const Cols all{true, first_lanes(8), first_lanes(8)};
  for (int64_t j = 0; j < ncols; j += 16) {  // j / 32 = panel, j % 32 = half
    panel_rows(qf, ldq, rows, kf + (j / kKeyPanel) * dim * kKeyPanel + j % kKeyPanel, dim, s + j,
               lds, nullptr, all);
  }
}

void pv_avx2_f32(const void* p, int64_t ldp, int64_t rows, int64_t kcols, const void* v_packed,
                 int64_t v_panel_stride, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  assert(kcols % kKeyPanel == 0);
  const float* pf = static_cast<const float*>(p);
  const float* vf = static_cast<const float*>(v_packed);
  for (int64_t c = 0; c < dim; c += 16) {  // c / 32 = column panel, c % 32 = half
    const Cols cols{c + 16 <= dim, first_lanes(dim - c), first_lanes(dim - c - 8)};
    panel_rows(pf, ldp, rows, vf + (c / kDimPanel) * v_panel_stride + c % kDimPanel, kcols,
               o + c, ldo, alpha, cols);
  }
}

}  // namespace sta::simd
