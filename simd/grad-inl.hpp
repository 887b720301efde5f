#pragma once
// SIMD body of the backward's kernels (see grad.hpp), written once over
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
/// The epilogue of a fused score tile: what becomes of Q K^T (or dO V^T) in registers.
enum class ScoreEpilogue {
  kProbs,      ///< p = exp(scale * acc - lse[r]); 0 for a row with lse = -inf
  kGradScores  ///< ds = (p * scale) * (acc - delta[r]), p read from the P block
};

/// One R-row tile of a fused score GEMM over 2 vectors of key columns of one K panel
/// (gemm_avx512.cpp's register tile: per d the panel row as 2 vectors and R broadcasts),
/// then the epilogue of probs_from_lse_body or grad_scores_body on the accumulators, so S
/// and dP never travel to memory. Same formulas, the same vector exp and rounding as the
/// unfused kernels.
template <class Arch, int R, ScoreEpilogue kEpi>
__attribute__((noinline)) void fused_scores_tile(const float* a, int64_t lda, int64_t dim,
                                                 const float* b, float scale, const float* row_term,
                                                 const float* p, int64_t ldp, float* out,
                                                 int64_t ldo) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  Batch c0[R], c1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    c0[r] = Batch(0.0f);
    c1[r] = Batch(0.0f);
  }
#pragma GCC unroll 2
  for (int64_t d = 0; d < dim; ++d) {
    const Batch b0 = Batch::load_unaligned(b + d * kKeyPanel);
    const Batch b1 = Batch::load_unaligned(b + d * kKeyPanel + kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Batch x(a[r * lda + d]);
      c0[r] = xsimd::fma(x, b0, c0[r]);
      c1[r] = xsimd::fma(x, b1, c1[r]);
    }
  }
  const Batch vscale(scale);
  for (int r = 0; r < R; ++r) {
    float* o = out + r * ldo;
    if constexpr (kEpi == ScoreEpilogue::kProbs) {
      if (row_term[r] == -std::numeric_limits<float>::infinity()) {  // no allowed key: p = 0
        Batch(0.0f).store_unaligned(o);
        Batch(0.0f).store_unaligned(o + kLanes);
        continue;
      }
      const Batch vshift(-row_term[r]);
      xsimd::exp(xsimd::fma(c0[r], vscale, vshift)).store_unaligned(o);
      xsimd::exp(xsimd::fma(c1[r], vscale, vshift)).store_unaligned(o + kLanes);
    } else {
      const Batch vdelta(row_term[r]);
      const float* pr = p + r * ldp;
      ((Batch::load_unaligned(pr) * vscale) * (c0[r] - vdelta)).store_unaligned(o);
      ((Batch::load_unaligned(pr + kLanes) * vscale) * (c1[r] - vdelta)).store_unaligned(o + kLanes);
    }
  }
}

/// rows x ncols fused scores against packed K panels (ncols a multiple of kKeyPanel): panel
/// slices outer, row tiles inner (the 16 KB panel stays in L1, as in gemm_avx512).
template <class Arch, int R, ScoreEpilogue kEpi>
inline void fused_scores_body(const float* a, int64_t lda, int64_t rows, int64_t dim,
                              const float* k_packed, int64_t ncols, float scale,
                              const float* row_term, const float* p, int64_t ldp, float* out,
                              int64_t ldo) {
  constexpr int64_t kCols = 2 * static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  for (int64_t j = 0; j < ncols; j += kCols) {
    const float* b = k_packed + (j / kKeyPanel) * dim * kKeyPanel + j % kKeyPanel;
    auto p_at = [&](int64_t r) { return p == nullptr ? nullptr : p + r * ldp + j; };  // kProbs: none
    int64_t r = 0;
    for (; r + R <= rows; r += R)
      fused_scores_tile<Arch, R, kEpi>(a + r * lda, lda, dim, b, scale, row_term + r,
                                       p_at(r), ldp, out + r * ldo + j, ldo);
    for (; r < rows; ++r)  // rows past the last full tile (ragged tiles, text)
      fused_scores_tile<Arch, 1, kEpi>(a + r * lda, lda, dim, b, scale, row_term + r,
                                       p_at(r), ldp, out + r * ldo + j, ldo);
  }
}

template <class Arch, int R>
__attribute__((noinline)) void add_transposed_pv_tile(const float* a, int64_t lda, int64_t kdim, const float* b,
                                   float* o, int64_t ldo, int64_t cols) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  Batch c0[R], c1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    c0[r] = Batch(0.0f);
    c1[r] = Batch(0.0f);
  }
#pragma GCC unroll 2
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
  // k blocks of 128 outer, then column blocks, then row tiles: the V panel slice
  // ([128][kCols], 16 KB with AVX-512) stays in L1 while A's rows stream from L2, as in
  // gemm_avx512. (Unblocked, a 384-row slice is 48 KB, all of L1 with A's lines on top:
  // measured 4 % slower at 384 x 128 x 384; blocks of 96 and 192 measured as 128.)
  constexpr int64_t kBlockK = 128;
  for (int64_t k0 = 0; k0 < kdim; k0 += kBlockK) {
    const int64_t kb = std::min(kBlockK, kdim - k0);
    const float* ak = a + k0 * lda;
    for (int64_t c0 = 0; c0 < dim; c0 += kCols) {
      const float* b = v_packed + (c0 / kDimPanel) * v_panel_stride + k0 * kDimPanel + c0 % kDimPanel;
      const int64_t cols = std::min(kCols, dim - c0);
      int64_t r = 0;
      for (; r + R <= rows; r += R)
        add_transposed_pv_tile<Arch, R>(ak + r, lda, kb, b, o + r * ldo + c0, ldo, cols);
      for (; r < rows; ++r)  // ragged key blocks only (a 384-key tile is 32 tiles of 12)
        add_transposed_pv_tile<Arch, 1>(ak + r, lda, kb, b, o + r * ldo + c0, ldo, cols);
    }
  }
}

}  // namespace
}  // namespace sta::simd
