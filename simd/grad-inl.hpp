#pragma once
// SIMD body of the backward's element-wise kernels (see grad.hpp), written once over
// xsimd and instantiated per instruction set by grad_avx2.cpp and grad_avx512.cpp.
// Include only from those files (everything stays inline and templated on the architecture).
#include <algorithm>
#include <cstdint>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "gemm.hpp"  // kDimPanel: the packed V layout add_transposed_pv reads

namespace sta::simd {
namespace {

template <class Arch>
inline void probs_from_lse_body(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                                const float* lse) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  const int64_t full = cols - cols % kLanes;
  alignas(64) float buf[kLanes];
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * ld;
    if (lse[r] == -std::numeric_limits<float>::infinity()) {  // no allowed key: p = 0
      for (int64_t j = 0; j < cols; ++j) row[j] = 0.0f;
      continue;
    }
    // p = exp(scale * s - lse): one FMA and the same vector exp as the forward's softmax.
    const Batch vscale(scale), vshift(-lse[r]);
    for (int64_t j = 0; j < full; j += kLanes) {
      xsimd::exp(xsimd::fma(Batch::load_unaligned(row + j), vscale, vshift)).store_unaligned(row + j);
    }
    if (full < cols) {  // the ragged end through the same vector code
      const int64_t tail = cols - full;
      for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < tail ? row[full + i] : 0.0f;
      xsimd::exp(xsimd::fma(Batch::load_aligned(buf), vscale, vshift)).store_aligned(buf);
      for (int64_t i = 0; i < tail; ++i) row[full + i] = buf[i];
    }
  }
}

template <class Arch>
inline void grad_scores_body(float* dp, int64_t lddp, const float* p, int64_t ldp, int64_t rows,
                             int64_t cols, const float* delta, float scale) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  const int64_t full = cols - cols % kLanes;
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dp + r * lddp;
    const float* pr = p + r * ldp;
    const Batch vdelta(delta[r]), vscale(scale);
    for (int64_t j = 0; j < full; j += kLanes) {
      const Batch ps = Batch::load_unaligned(pr + j) * vscale;
      (ps * (Batch::load_unaligned(d + j) - vdelta)).store_unaligned(d + j);
    }
    // Same rounding as the vector lanes: (p * scale) * (dp - delta).
    for (int64_t j = full; j < cols; ++j) d[j] = (pr[j] * scale) * (d[j] - delta[r]);
  }
}

/// One R-row tile of add_transposed_pv over 2 vectors of columns (32 for AVX-512, 16 for
/// AVX2) of one V panel: 2R accumulators, 2 panel registers and a broadcast (R = 12 fills the
/// 32 zmm, R = 6 the 16 ymm). Per k the R broadcasts come from one contiguous run of A's row k
/// (the point of reading A transposed: no strided loads). `cols` < 2 lanes at the last panel
/// of a D that is not a multiple of the vector pair.
template <class Arch, int R>
inline void add_transposed_pv_tile(const float* a, int64_t lda, int64_t kdim, const float* b,
                                   float* o, int64_t ldo, int64_t cols) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  Batch c0[R], c1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    c0[r] = Batch(0.0f);
    c1[r] = Batch(0.0f);
  }
  for (int64_t k = 0; k < kdim; ++k) {
    const Batch b0 = Batch::load_unaligned(b + k * kDimPanel);
    const Batch b1 = Batch::load_unaligned(b + k * kDimPanel + kLanes);
    const float* ak = a + k * lda;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Batch x(ak[r]);
      c0[r] = xsimd::fma(x, b0, c0[r]);
      c1[r] = xsimd::fma(x, b1, c1[r]);
    }
  }
  if (cols == 2 * kLanes) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      float* out = o + r * ldo;
      (Batch::load_unaligned(out) + c0[r]).store_unaligned(out);
      (Batch::load_unaligned(out + kLanes) + c1[r]).store_unaligned(out + kLanes);
    }
    return;
  }
  alignas(64) float buf[2 * kLanes];
  for (int r = 0; r < R; ++r) {
    c0[r].store_aligned(buf);
    c1[r].store_aligned(buf + kLanes);
    for (int64_t c = 0; c < cols; ++c) o[r * ldo + c] += buf[c];
  }
}

template <class Arch, int R>
inline void add_transposed_pv_body(const float* a, int64_t lda, int64_t rows, int64_t kdim,
                                   const float* v_packed, int64_t v_panel_stride, int64_t dim,
                                   float* o, int64_t ldo) {
  constexpr int64_t kCols = 2 * static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  // Column blocks outer, row tiles inner: the V panel slice ([kdim][kCols], 48 KB at
  // kdim = 384 with AVX-512) stays in L1 while A's rows stream from L2, as in gemm_avx512.
  for (int64_t c0 = 0; c0 < dim; c0 += kCols) {
    const float* b = v_packed + (c0 / kDimPanel) * v_panel_stride + c0 % kDimPanel;
    const int64_t cols = std::min(kCols, dim - c0);
    int64_t r = 0;
    for (; r + R <= rows; r += R)
      add_transposed_pv_tile<Arch, R>(a + r, lda, kdim, b, o + r * ldo + c0, ldo, cols);
    for (; r < rows; ++r)  // ragged key blocks only (a 384-key tile is 32 tiles of 12)
      add_transposed_pv_tile<Arch, 1>(a + r, lda, kdim, b, o + r * ldo + c0, ldo, cols);
  }
}

}  // namespace
}  // namespace sta::simd
