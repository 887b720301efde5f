#pragma once
// SIMD body of the backward's kernels (see grad.hpp), written once over
// xsimd and instantiated per instruction set by grad_avx2.cpp and grad_avx512.cpp.
// Include only from those files (everything stays inline and templated on the architecture).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "gemm.hpp"  // kDimPanel: the packed V layout add_transposed_pv reads
#include "prefetch-inl.hpp"  // Upcoming, prefetch_slice: as the forward's kernels
#include "softmax-inl.hpp"  // softmax_exp: the forward's vector exp

namespace sta::simd {
namespace {

/// kOut picks the exp (softmax-inl.hpp's p_exp): the forward's fp32 one (kFloat), or its bf16
/// softmax's (kBf16Out, the bf16 mode's P).
template <class Arch, POut kOut = POut::kFloat>
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
      p_exp<Arch, kOut>(xsimd::fma(Batch::load_unaligned(row + j), vscale, vshift)).store_unaligned(row + j);
    }
    if (full < cols) {  // the ragged end through the same vector code
      const int64_t tail = cols - full;
      for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < tail ? row[full + i] : 0.0f;
      p_exp<Arch, kOut>(xsimd::fma(Batch::load_aligned(buf), vscale, vshift)).store_aligned(buf);
      for (int64_t i = 0; i < tail; ++i) row[full + i] = buf[i];
    }
  }
}

template <class Arch>
inline void round_bf16_body(float* a, int64_t lda, int64_t rows, int64_t cols) {
  using Batch = xsimd::batch<float, Arch>;
  using U = xsimd::batch<uint32_t, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  const int64_t full = cols - cols % kLanes;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = a + r * lda;
    for (int64_t j = 0; j < full; j += kLanes) {
      const U rounded = round_bf16_bits<Arch>(Batch::load_unaligned(row + j));
      xsimd::bitwise_cast<Batch>(rounded).store_unaligned(row + j);
    }
    for (int64_t j = full; j < cols; ++j) row[j] = bf16_to_float(float_to_bf16(row[j]));
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

/// Register tile of the backward's GEMMs per instruction set: R rows x NV vectors of
/// columns. AVX-512: 6 x 64 (two 32-wide panels side by side: 24 accumulators, 4 panel
/// registers and a broadcast, 10 loads per 24 FMAs), the forward's tile (gemm_avx512.cpp);
/// it replaced 12 x 32 (14 loads per 24 FMAs) here too: with it, the 12-instruction exp in
/// the P epilogue, next-panel prefetch and O-row prefetch in add_transposed_pv, the whole
/// backward ran 6-9 % faster (Quick-backward, one thread on the 2-core Xeon, old and new
/// binaries alternating: dense 2255/2330/2303/2260 -> 2126/2117/2020/2075 ms, sta 3,3,3
/// 1058/1055/1010/1006 -> 999/974/954/988 ms). AVX2: 6 x 16 (12 of the 16 ymm).
template <class Arch>
struct GradTile {
  static constexpr int kRows = 6;
  static constexpr int kVectors = 2;
};
#if defined(__AVX512F__)
template <>
struct GradTile<xsimd::avx512bw> {
  static constexpr int kRows = 6;
  static constexpr int kVectors = 4;
};
#endif

/// How a tile reads its left operand A: a[r * lda + k] (Q, dO: rows as stored) or
/// a[k * lda + r] (P, dS read transposed: row k of the stored block holds the tile's R
/// values contiguously, so no transpose is ever written).
enum class AOrder { kRows, kTransposed };

/// The k loop of an R x NV tile: c[v][r] += a(r, k) * b_v[k] with B in 32-wide packed
/// panels (row k of a panel at k * 32; `panel_stride` floats from one panel to the next), so
/// vector v reads panel v / (32 / lanes) at lane offset (v * lanes) % 32.
template <class Arch, int R, int NV, AOrder kA>
inline __attribute__((always_inline)) void tile_accumulate(
    const float* a, int64_t lda, const float* b, int64_t panel_stride, int64_t kdim,
    xsimd::batch<float, Arch> (&c)[NV][R]) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  constexpr int64_t kPerPanel = kKeyPanel / kLanes;
  const float* bv_base[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) bv_base[v] = b + (v / kPerPanel) * panel_stride + (v % kPerPanel) * kLanes;
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) c[v][r] = Batch(0.0f);
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kdim; ++k) {
    Batch bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = Batch::load_unaligned(bv_base[v] + k * kKeyPanel);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Batch x(kA == AOrder::kRows ? a[r * lda + k] : a[k * lda + r]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) c[v][r] = xsimd::fma(x, bv[v], c[v][r]);
    }
  }
}

/// The epilogue of a fused score tile: what becomes of Q K^T (or dO V^T) in registers.
enum class ScoreEpilogue {
  kProbs,      ///< p = exp(scale * acc - lse[r]); 0 for a row with lse = -inf
  kGradScores  ///< ds = (p * scale) * (acc - delta[r]), p read from the P block
};

/// One R-row tile of a fused score GEMM over NV vectors of key columns (packed K panels,
/// D * 32 floats apart), then the epilogue of probs_from_lse_body or grad_scores_body on the
/// accumulators, so S and dP never travel to memory. Same formulas, the same vector exp and
/// rounding as the unfused kernels.
template <class Arch, int R, int NV, ScoreEpilogue kEpi>
__attribute__((noinline)) void fused_scores_tile(const float* a, int64_t lda, int64_t dim,
                                                 const float* b, float scale, const float* row_term,
                                                 const float* p, int64_t ldp, float* out,
                                                 int64_t ldo) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  Batch c[NV][R];
  tile_accumulate<Arch, R, NV, AOrder::kRows>(a, lda, b, dim * kKeyPanel, dim, c);
  const Batch vscale(scale);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* o = out + r * ldo;
    if constexpr (kEpi == ScoreEpilogue::kProbs) {
      if (row_term[r] == -std::numeric_limits<float>::infinity()) {  // no allowed key: p = 0
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) Batch(0.0f).store_unaligned(o + v * kLanes);
        continue;
      }
      const Batch vshift(-row_term[r]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        softmax_exp<Arch>(xsimd::fma(c[v][r], vscale, vshift)).store_unaligned(o + v * kLanes);
    } else {
      const Batch vdelta(row_term[r]);
      const float* pr = p + r * ldp;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        ((Batch::load_unaligned(pr + v * kLanes) * vscale) * (c[v][r] - vdelta)).store_unaligned(o + v * kLanes);
    }
  }
}

/// Rows x `cols` fused scores for NV vectors of columns from column j: full tiles, then
/// single rows (ragged tiles, text).
template <class Arch, int R, int NV, ScoreEpilogue kEpi>
inline void fused_scores_columns(const float* a, int64_t lda, int64_t rows, int64_t dim,
                                 const float* b, float scale, const float* row_term,
                                 const float* p, int64_t ldp, float* out, int64_t ldo,
                                 const Upcoming& next) {
  auto p_at = [&](int64_t r) { return p == nullptr ? nullptr : p + r * ldp; };  // kProbs: none
  const int64_t tiles = (rows + R - 1) / R;
  int64_t r = 0;
  for (int64_t t = 0; r + R <= rows; r += R, ++t) {
    prefetch_slice(next, t, tiles);
    fused_scores_tile<Arch, R, NV, kEpi>(a + r * lda, lda, dim, b, scale, row_term + r, p_at(r),
                                         ldp, out + r * ldo, ldo);
  }
  if (r < rows) prefetch_slice(next, tiles - 1, tiles);
  for (; r < rows; ++r)
    fused_scores_tile<Arch, 1, NV, kEpi>(a + r * lda, lda, dim, b, scale, row_term + r, p_at(r),
                                         ldp, out + r * ldo, ldo);
}

/// rows x ncols fused scores against packed K panels (ncols a multiple of kKeyPanel): column
/// blocks outer, row tiles inner (the block's panels stay in L1, as in gemm_avx512); a last
/// single panel where the tile is wider than one.
template <class Arch, ScoreEpilogue kEpi>
inline void fused_scores_body(const float* a, int64_t lda, int64_t rows, int64_t dim,
                              const float* k_packed, int64_t ncols, float scale,
                              const float* row_term, const float* p, int64_t ldp, float* out,
                              int64_t ldo) {
  constexpr int R = GradTile<Arch>::kRows, NV = GradTile<Arch>::kVectors;
  constexpr int64_t kLanes = static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  constexpr int64_t kCols = NV * kLanes;
  auto panel = [&](int64_t j) { return k_packed + (j / kKeyPanel) * dim * kKeyPanel + j % kKeyPanel; };
  auto p_at = [&](int64_t j) { return p == nullptr ? nullptr : p + j; };
  // The panels of the block of `width` keys from key j (K panels follow each other: one
  // range), none past the end.
  auto upcoming = [&](int64_t j, int64_t width) {
    Upcoming next;
    if (j < ncols) {
      next.from[0] = panel(j);
      next.floats[0] = std::min(width, ncols - j) / kKeyPanel * dim * kKeyPanel;
    }
    return next;
  };
  if constexpr (kCols == 2 * kKeyPanel) {
    // Three panels (96 keys: a ragged block, or a step's end) in one 4 x 96 tile (24
    // accumulators, 6 panel registers, 10 loads per 24 FMAs as 6 x 64), not a pair and a lone
    // panel whose 6 x 32 tile needs 8 loads per 12 FMAs (measured 10 % slower per FLOP in the loop; perf, one
    // thread, Quick-backward dense: the fused kernels 26.1 % -> 24.8 % of all samples).
    if (ncols % (3 * kKeyPanel) == 0 && ncols % kCols != 0) {
      constexpr int64_t kWide = 3 * kKeyPanel;
      for (int64_t j = 0; j < ncols; j += kWide)
        fused_scores_columns<Arch, 4, kWide / kLanes, kEpi>(a, lda, rows, dim, panel(j), scale,
                                                            row_term, p_at(j), ldp, out + j, ldo,
                                                            upcoming(j + kWide, kWide));
      return;
    }
  }
  int64_t j = 0;
  for (; j + kCols <= ncols; j += kCols)
    fused_scores_columns<Arch, R, NV, kEpi>(a, lda, rows, dim, panel(j), scale, row_term, p_at(j),
                                            ldp, out + j, ldo, upcoming(j + kCols, kCols));
  if constexpr (kCols > kKeyPanel) {
    if (j < ncols)  // one last panel
      fused_scores_columns<Arch, R, kKeyPanel / kLanes, kEpi>(a, lda, rows, dim, panel(j), scale,
                                                              row_term, p_at(j), ldp, out + j, ldo,
                                                              Upcoming{});
  }
}

/// One R-row tile of add_transposed_pv over NV vectors of columns of O (packed V panels
/// `panel_stride` apart): o += the tile, only the first `cols` columns when the tile reaches
/// past D.
template <class Arch, int R, int NV>
__attribute__((noinline)) void add_transposed_pv_tile(const float* a, int64_t lda, int64_t kdim,
                                                      const float* b, int64_t panel_stride,
                                                      float* o, int64_t ldo, int64_t cols) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  Batch c[NV][R];
  tile_accumulate<Arch, R, NV, AOrder::kTransposed>(a, lda, b, panel_stride, kdim, c);
  if (cols == NV * kLanes) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      float* out = o + r * ldo;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        (Batch::load_unaligned(out + v * kLanes) + c[v][r]).store_unaligned(out + v * kLanes);
    }
    return;
  }
  alignas(64) float buf[NV * kLanes];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) c[v][r].store_aligned(buf + v * kLanes);
    for (int64_t col = 0; col < cols; ++col) o[r * ldo + col] += buf[col];
  }
}

/// All rows (full tiles, then single rows) of one column block of add_transposed_pv.
template <class Arch, int R, int NV>
inline void add_transposed_pv_columns(const float* a, int64_t lda, int64_t rows, int64_t kdim,
                                      const float* b, int64_t panel_stride, float* o,
                                      int64_t ldo, int64_t cols, const Upcoming& next) {
  const int64_t tiles = (rows + R - 1) / R;
  int64_t r = 0;
  for (int64_t t = 0; r + R <= rows; r += R, ++t) {
    prefetch_slice(next, t, tiles);
    // The tile's O rows (dK or dV of a key block, last written by another task and
    // usually in L3 or another core's cache) arrive during its k loop, not at its epilogue.
    for (int i = 0; i < R; ++i)
      for (int64_t c = 0; c < cols; c += 16) _mm_prefetch(reinterpret_cast<const char*>(o + (r + i) * ldo + c), _MM_HINT_T0);
    add_transposed_pv_tile<Arch, R, NV>(a + r, lda, kdim, b, panel_stride, o + r * ldo, ldo, cols);
  }
  if (r == rows) return;
  prefetch_slice(next, tiles - 1, tiles);
  // The last rows in one tile of their own height (a 128-key step is 21 tiles of 6 and one
  // of 2; as two single rows those cost a B load per FMA).
  auto tail = [&](auto height) {
    add_transposed_pv_tile<Arch, decltype(height)::value, NV>(a + r, lda, kdim, b, panel_stride,
                                                              o + r * ldo, ldo, cols);
  };
  static_assert(R <= 6, "add_transposed_pv_columns: tails up to 5 rows");
  switch (rows - r) {
    case 1: tail(std::integral_constant<int, 1>{}); break;
    case 2: tail(std::integral_constant<int, 2>{}); break;
    case 3: tail(std::integral_constant<int, 3>{}); break;
    case 4: tail(std::integral_constant<int, 4>{}); break;
    default: tail(std::integral_constant<int, 5>{}); break;
  }
}

template <class Arch>
inline void add_transposed_pv_body(const float* a, int64_t lda, int64_t rows, int64_t kdim,
                                   const float* v_packed, int64_t v_panel_stride, int64_t dim,
                                   float* o, int64_t ldo) {
  constexpr int R = GradTile<Arch>::kRows, NV = GradTile<Arch>::kVectors;
  constexpr int64_t kLanes = static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  constexpr int64_t kCols = NV * kLanes;
  // k blocks of 128 outer, then column blocks, then row tiles: the V panel slices
  // ([128][64] with AVX-512, 32 KB) stay in L1 while A's rows stream from L2, as in
  // gemm_avx512. (Unblocked, a 384-row slice of one panel was 48 KB, all of L1 with A's
  // lines on top: measured 4 % slower at 384 x 128 x 384; blocks of 96 and 192 as 128.)
  constexpr int64_t kBlockK = 128;
  auto slice = [&](int64_t k0, int64_t c0) {
    return v_packed + (c0 / kDimPanel) * v_panel_stride + k0 * kDimPanel + c0 % kDimPanel;
  };
  for (int64_t k0 = 0; k0 < kdim; k0 += kBlockK) {
    const int64_t kb = std::min(kBlockK, kdim - k0);
    const float* ak = a + k0 * lda;
    for (int64_t c0 = 0; c0 < dim; c0 += kCols) {
      const float* b = slice(k0, c0);
      const int64_t cols = std::min(kCols, dim - c0);
      // The next block's slice: its panels of the next column block, or of the next k block.
      Upcoming next;
      const int64_t nk0 = c0 + kCols < dim ? k0 : k0 + kBlockK;
      const int64_t nc0 = c0 + kCols < dim ? c0 + kCols : 0;
      if (nk0 < kdim) {
        const int64_t ncols = std::min(kCols, dim - nc0);
        next.from[0] = slice(nk0, nc0);
        next.floats[0] = std::min(kBlockK, kdim - nk0) * kDimPanel;
        if (ncols > kDimPanel) {  // a second panel exists
          next.from[1] = next.from[0] + v_panel_stride;
          next.floats[1] = next.floats[0];
        }
      }
      if constexpr (kCols > kDimPanel) {
        if (cols <= kDimPanel) {  // the last panel alone: the next one does not exist
          add_transposed_pv_columns<Arch, R, kDimPanel / kLanes>(ak, lda, rows, kb, b, v_panel_stride,
                                                                 o + c0, ldo, cols, next);
          continue;
        }
      }
      add_transposed_pv_columns<Arch, R, NV>(ak, lda, rows, kb, b, v_panel_stride, o + c0, ldo,
                                             cols, next);
    }
  }
}

}  // namespace
}  // namespace sta::simd
