// The bf16 GEMM micro-kernels on AMX (compiled with -mamx-tile -mamx-bf16 plus the AVX-512
// set; chosen at run time by gemm_dispatch.cpp only where CPUID, XCR0 and the kernel's
// permission (arch_prctl ARCH_REQ_XCOMP_PERM) allow it).
//
// TDPBF16PS C += A B: C = 16 x 16 fp32, A = 16 rows x 32 bf16 (row-major, any stride), B = 16
// rows of 16 VNNI pairs (64 bytes). The packed K and V panels of simd/gemm.hpp are exactly such
// B tiles: a 32-wide panel row of pairs is 128 bytes, its two 16-column halves are two tiles
// with a row stride of 128 bytes. Every kernel works on 32 x 32 blocks of the output in a
// 2 x 2 tile arrangement: tiles 0-3 = C, 4-5 = A (two 16-row halves), 6-7 = B (two halves).
//
// Tile configuration: loaded at the start of every call and released at its end. Measured
// against a per-thread cached configuration (same kernels, one thread): LDTILECFG + TILERELEASE
// cost about 0.1 us per call, in the noise at 384 x 384 x D (24 us) and 7% for a 32-row call;
// a cached configuration breaks (#UD) as soon as any other code releases the tiles, and a
// released state keeps the 8 KiB tile state out of context switches between calls.
#include <immintrin.h>

#include <cstring>

#include "gemm.hpp"
#include "prefetch-inl.hpp"

namespace sta::simd {
namespace {

/// The LDTILECFG memory image (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

/// All 8 tiles as 16 rows x 64 bytes (C: 16 x 16 fp32, A: 16 x 32 bf16, B: 16 x 16 pairs).
TileConfig full_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  return cfg;
}

/// Loads the tile configuration for one kernel call and releases it when the call ends.
class TileScope {
 public:
  TileScope() {
    static const TileConfig cfg = full_tiles();
    _tile_loadconfig(&cfg);
  }
  ~TileScope() { _tile_release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

constexpr int64_t kPairRowBytes = 2 * kKeyPanel * sizeof(bf16_t);  // 128: one panel row of pairs

/// C tiles (0, 1) [and (2, 3) if kTwo] += A rows [a, a + 16) [and the next 16] times the two
/// B halves of `steps` k-steps of 32: A advances 32 elements, B 16 pair rows per step.
template <bool kTwo>
inline void dot_steps(const bf16_t* a, int64_t lda_bytes, int64_t a_rows16, const bf16_t* b,
                      int64_t steps) {
  for (int64_t s = 0; s < steps; ++s) {
    const bf16_t* bs = b + s * 16 * 2 * kKeyPanel;
    _tile_loadd(6, bs, kPairRowBytes);
    _tile_loadd(7, bs + 32, kPairRowBytes);
    _tile_loadd(4, a + s * 32, lda_bytes);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if (kTwo) {
      _tile_loadd(5, a + a_rows16 + s * 32, lda_bytes);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
}

/// S rows [0, 16 or 32) x the 32 keys of one K panel `k` (dp / 32 k-steps).
template <bool kTwo>
void qk_block(const bf16_t* q, int64_t ldq, int64_t dp, const bf16_t* k, float* s, int64_t lds) {
  const int64_t lds_bytes = lds * static_cast<int64_t>(sizeof(float));
  _tile_zero(0);
  _tile_zero(1);
  if (kTwo) {
    _tile_zero(2);
    _tile_zero(3);
  }
  dot_steps<kTwo>(q, ldq * 2, 16 * ldq, k, dp / 32);
  _tile_stored(0, s, lds_bytes);
  _tile_stored(1, s + 16, lds_bytes);
  if (kTwo) {
    _tile_stored(2, s + 16 * lds, lds_bytes);
    _tile_stored(3, s + 16 * lds + 16, lds_bytes);
  }
}

/// Panels that qk_amx_bf16 takes one at a time against all rows (below).
constexpr int64_t kPanelsOuterUpTo = 4;

/// O rows [0, nrows) x columns [c0, c0 + 32) ∩ [0, dim) = alpha O + block (a 32 x 32 fp32
/// scratch holding P V), in the scalar family's order (alpha o first, then the products).
void combine(const float* block, int64_t nrows, int64_t c0, int64_t dim, const float* alpha,
             float* o, int64_t ldo) {
  for (int h = 0; h < 2; ++h) {
    const int64_t n = dim - c0 - 16 * h;
    if (n <= 0) break;
    const __mmask16 m = n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
    for (int64_t r = 0; r < nrows; ++r) {
      float* dst = o + r * ldo + c0 + 16 * h;
      __m512 x = _mm512_loadu_ps(block + r * 32 + 16 * h);
      if (alpha != nullptr) {
        x = _mm512_fmadd_ps(_mm512_set1_ps(alpha[r]), _mm512_maskz_loadu_ps(m, dst), x);
      }
      _mm512_mask_storeu_ps(dst, m, x);
    }
  }
}

/// Whether alpha[r] == 1 for the 32 rows of a block (O += P V: the backward's dQ, dK, dV).
inline bool all_ones(const float* alpha) {
  const __mmask16 lo = _mm512_cmp_ps_mask(_mm512_loadu_ps(alpha), _mm512_set1_ps(1.0f), _CMP_EQ_OQ);
  const __mmask16 hi = _mm512_cmp_ps_mask(_mm512_loadu_ps(alpha + 16), _mm512_set1_ps(1.0f), _CMP_EQ_OQ);
  return lo == 0xffff && hi == 0xffff;
}

template <bool kTwo>
void pv_rows(const bf16_t* p, int64_t ldp, int64_t nrows, int64_t kcols, const bf16_t* v,
             int64_t stride, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  alignas(64) float block[32 * 32];
  const int64_t panels = (dim + kDimPanel - 1) / kDimPanel;
  const int64_t ldo_bytes = ldo * static_cast<int64_t>(sizeof(float));
  // O += P V on whole 32 x 32 blocks: the tiles start from O and go straight back (no scratch,
  // no AVX-512 pass; the sum starts from O instead of adding it last).
  const bool accumulate = kTwo && nrows == 32 && alpha != nullptr && all_ones(alpha);
  for (int64_t cp = 0; cp < panels; ++cp) {
    if (accumulate && (cp + 1) * kDimPanel <= dim) {
      float* oc = o + cp * kDimPanel;
      _tile_loadd(0, oc, ldo_bytes);
      _tile_loadd(1, oc + 16, ldo_bytes);
      _tile_loadd(2, oc + 16 * ldo, ldo_bytes);
      _tile_loadd(3, oc + 16 * ldo + 16, ldo_bytes);
      dot_steps<kTwo>(p, ldp * 2, 16 * ldp, v + cp * stride, kcols / 32);
      _tile_stored(0, oc, ldo_bytes);
      _tile_stored(1, oc + 16, ldo_bytes);
      _tile_stored(2, oc + 16 * ldo, ldo_bytes);
      _tile_stored(3, oc + 16 * ldo + 16, ldo_bytes);
      continue;
    }
    _tile_zero(0);
    _tile_zero(1);
    if (kTwo) {
      _tile_zero(2);
      _tile_zero(3);
    }
    dot_steps<kTwo>(p, ldp * 2, 16 * ldp, v + cp * stride, kcols / 32);
    if (alpha == nullptr && nrows == 32 && (cp + 1) * kDimPanel <= dim) {
      // O = P V on a whole 32 x 32 block: the tiles go straight into O (about 1.2x faster
      // than through the scratch: AVX-512 reads right after tile stores stall).
      float* oc = o + cp * kDimPanel;
      _tile_stored(0, oc, ldo_bytes);
      _tile_stored(1, oc + 16, ldo_bytes);
      _tile_stored(2, oc + 16 * ldo, ldo_bytes);
      _tile_stored(3, oc + 16 * ldo + 16, ldo_bytes);
      continue;
    }
    _tile_stored(0, block, 128);
    _tile_stored(1, block + 16, 128);
    if (kTwo) {
      _tile_stored(2, block + 16 * 32, 128);
      _tile_stored(3, block + 16 * 32 + 16, 128);
    }
    combine(block, nrows, cp * kDimPanel, dim, alpha, o, ldo);
  }
}

}  // namespace

void qk_amx_bf16(const void* q_, int64_t ldq, int64_t rows, int64_t dim, const void* k_,
                 int64_t ncols, float* s, int64_t lds) {
  const bf16_t* q = static_cast<const bf16_t*>(q_);
  const bf16_t* k = static_cast<const bf16_t*>(k_);
  const int64_t dp = padded_dim_bf16(dim);
  TileScope tiles;
  // The 32-row block from r0 against panel p; a last block of <= 16 rows uses one A tile, so
  // S rows up to round_up(rows, 16) are written (the contract makes round_up(rows, 32) rows of
  // S writable).
  const int64_t panels = ncols / kKeyPanel;
  const int64_t panel_elems = dp * kKeyPanel;
  auto block = [&](int64_t r0, int64_t p) {
    if (rows - r0 > 16) {
      qk_block<true>(q + r0 * ldq, ldq, dp, k + p * panel_elems, s + r0 * lds + p * kKeyPanel, lds);
    } else {
      qk_block<false>(q + r0 * ldq, ldq, dp, k + p * panel_elems, s + r0 * lds + p * kKeyPanel, lds);
    }
  };
  if (panels > kPanelsOuterUpTo) {
    // 32-row blocks outer: each block's Q rows stay in L1 while it meets every panel (the
    // forward's 384-key tiles; their K is mostly in L2 already, from the query tile before).
    for (int64_t r0 = 0; r0 < rows; r0 += 32)
      for (int64_t p = 0; p < panels; ++p) block(r0, p);
    return;
  }
  // A few panels (the backward's 128-key steps, a new key block every step: K from L3):
  // panels outer, the next panel prefetched into L2 a slice per row block, as its rows
  // would otherwise reach the tile loads of the first row block at L3 latency. Measured (one
  // thread, 384 x 128 x 128, K from L3, medians of 400): 24.7-29.6 -> 22.2-22.6 kcycles; in the
  // loop (Quick-backward-bf16, one thread, six alternating rounds) sta 3,3,3 217 / 223 / 210 /
  // 229 / 222 / 221 -> 214 / 205 / 201 / 209 / 195 / 208 ms with this order for every call;
  // for 12 panels hot in L2 (the forward) it measured 3-4 % slower, hence the threshold. As
  // kept (one thread, Quick, five rounds): backward dense 450-465 -> 429-463 ms, sta 3,3,3
  // 209-223 -> 196-221, forward unchanged; Table2-backward-bf16 sta 3,3,3 on 2 threads, three
  // rounds: 1222 / 1293 / 1315 -> 1213 / 1224 / 1204 ms.
  const int64_t blocks = (rows + 31) / 32;
  for (int64_t p = 0; p < panels; ++p) {
    Upcoming next;  // the next panel (in floats: prefetch_slice counts lines of 16 floats)
    if (p + 1 < panels) {
      next.from[0] = reinterpret_cast<const float*>(k + (p + 1) * panel_elems);
      next.floats[0] = panel_elems * static_cast<int64_t>(sizeof(bf16_t)) / static_cast<int64_t>(sizeof(float));
    }
    for (int64_t r0 = 0, b = 0; r0 < rows; r0 += 32, ++b) {
      prefetch_slice</*kIntoL2=*/true>(next, b, blocks);
      block(r0, p);
    }
  }
}

void pv_amx_bf16(const void* p_, int64_t ldp, int64_t rows, int64_t kcols, const void* v_,
                 int64_t stride, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  const bf16_t* p = static_cast<const bf16_t*>(p_);
  const bf16_t* v = static_cast<const bf16_t*>(v_);
  TileScope tiles;
  for (int64_t r0 = 0; r0 < rows; r0 += 32) {
    const int64_t nrows = rows - r0 < 32 ? rows - r0 : 32;
    const float* a = alpha != nullptr ? alpha + r0 : nullptr;
    if (nrows > 16) {
      pv_rows<true>(p + r0 * ldp, ldp, nrows, kcols, v, stride, dim, a, o + r0 * ldo, ldo);
    } else {
      pv_rows<false>(p + r0 * ldp, ldp, nrows, kcols, v, stride, dim, a, o + r0 * ldo, ldo);
    }
  }
}

}  // namespace sta::simd
