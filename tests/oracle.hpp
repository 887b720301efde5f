#pragma once
// The test-side mask oracle: "may query i attend key j", written from SPEC sections 1, 2 and
// 4 alone, with its own index math. It calls nothing in src/core/mask.cpp, src/core/blocks.cpp or
// src/core/layout.cpp, and no inline helper of their headers either (only the plain structs
// Geometry, Mask, Layout, BlockCounts and AttentionShape are shared, read field by field):
// a bug in the library's mask code cannot hide itself by being asked to judge itself.
// Everything here is O(pairs): small shapes only. Read it against the SPEC.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "sta/attention.hpp"

namespace sta::oracle {

/// Canvas position of a video token, in tokens: frame t, row y, column x.
struct Pos {
  int64_t c[3];  // t, y, x
};

/// Tiles on an axis of `len` tokens cut into tiles of `tile` tokens (SPEC 1: the canvas has
/// T/t tiles; ragged extension: ceil, the last tile shorter).
inline int64_t tiles_on_axis(int64_t len, int64_t tile) { return (len + tile - 1) / tile; }

/// Canvas positions of the video tokens in storage order `layout` (SPEC 1), by walking the
/// definition. Raster: plain row-major (t, y, x). Tiled: tiles row-major over tile
/// coordinates, each tile's tokens contiguous and row-major inside it (clipped to the canvas
/// where the last tile of a ragged axis is shorter).
inline std::vector<Pos> video_positions(const Geometry& g, Layout layout) {
  const int64_t T = g.canvas.t, H = g.canvas.h, W = g.canvas.w;
  std::vector<Pos> pos;
  if (layout == Layout::kRaster) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) pos.push_back({{t, y, x}});
    return pos;
  }
  const int64_t lt = g.tile.t, lh = g.tile.h, lw = g.tile.w;
  for (int64_t tt = 0; tt < tiles_on_axis(T, lt); ++tt)
    for (int64_t ty = 0; ty < tiles_on_axis(H, lh); ++ty)
      for (int64_t tx = 0; tx < tiles_on_axis(W, lw); ++tx)
        for (int64_t t = tt * lt; t < std::min((tt + 1) * lt, T); ++t)
          for (int64_t y = ty * lh; y < std::min((ty + 1) * lh, H); ++y)
            for (int64_t x = tx * lw; x < std::min((tx + 1) * lw, W); ++x) pos.push_back({{t, y, x}});
  return pos;
}

/// SPEC 2, sta: the centre tile of query tile `qt`'s window of `k_tiles` tiles on an axis of
/// `n` tiles, c = clamp(qt, K/2, n-1-K/2). torch.clamp applies the lower bound, then the
/// upper one, so the upper bound wins where they cross (a window wider than the axis).
inline int64_t sta_centre(int64_t k_tiles, int64_t n, int64_t qt) {
  const int64_t half = k_tiles / 2;
  int64_t c = qt;
  if (c < half) c = half;
  if (c > n - 1 - half) c = n - 1 - half;
  return c;
}

/// SPEC 2, swa: the first key token of query token `x`'s window of `w` tokens on an axis of
/// `len` tokens, s = clamp(x - W/2, 0, L - W) (shifted, not cropped, at the borders).
/// Only meaningful for w < len (a wider window is the whole axis).
inline int64_t swa_start(int64_t w, int64_t len, int64_t x) {
  int64_t s = x - w / 2;
  if (s < 0) s = 0;
  if (s > len - w) s = len - w;
  return s;
}

/// The per-axis condition of SPEC 2: may query coordinate `q` see key coordinate `k` (tokens)
/// on an axis of `len` tokens and tiles of `tile` tokens; `window` in tiles for sta, in
/// tokens for swa and swa-torus.
inline bool axis_allows(MaskKind kind, int64_t window, int64_t len, int64_t tile, int64_t q,
                        int64_t k) {
  switch (kind) {
    case MaskKind::kFull:
      return true;
    case MaskKind::kSta: {
      const int64_t c = sta_centre(window, tiles_on_axis(len, tile), q / tile);
      const int64_t d = c - k / tile;
      return -(window / 2) <= d && d <= window / 2;  // |c - kt| <= K/2
    }
    case MaskKind::kSwa: {
      if (window >= len) return true;
      const int64_t s = swa_start(window, len, q);
      return s <= k && k < s + window;  // [s, s + W)
    }
    case MaskKind::kSwaTorus: {
      if (window >= len) return true;
      const int64_t from_start = ((k - (q - window / 2)) % len + len) % len;
      return from_start < window;  // k = (q - W/2 + i) mod L for some 0 <= i < W
    }
  }
  return false;
}

/// One head's whole attention mask over the sequence [0, S) of SPEC sections 1, 2 and 4.
class MaskOracle {
 public:
  MaskOracle(const Geometry& g, const Mask& mask, Layout layout)
      : g_(g), mask_(mask), pos_(video_positions(g, layout)),
        video_(static_cast<int64_t>(pos_.size())) {}

  int64_t video_tokens() const { return video_; }
  /// S = V + text_pad (SPEC 4).
  int64_t seq_len() const { return video_ + g_.text_pad; }
  const Pos& position(int64_t s) const { return pos_[static_cast<size_t>(s)]; }

  /// May query `q` attend key `k` (sequence indices in [0, S)).
  bool allows(int64_t q, int64_t k) const {
    if (k >= video_ + g_.text_length) return false;  // a padded text key: never attended
    if (q >= video_ || k >= video_) return true;     // a text query, or a real text key
    for (int a = 0; a < 3; ++a) {  // video x video: the product of the per-axis conditions
      if (!axis_allows(mask_.kind, mask_.window[a], g_.canvas[a], g_.tile[a], pos_[q].c[a],
                       pos_[k].c[a]))
        return false;
    }
    return true;
  }

 private:
  Geometry g_;
  Mask mask_;
  std::vector<Pos> pos_;
  int64_t video_;
};

/// Masked softmax attention in double (SPEC 6), the mask asked of MaskOracle for every pair:
/// s_ij = scale <q_i, k_j>, lse_i = log sum_j exp(s_ij), out_i = sum_j exp(s_ij - lse_i) v_j
/// over allowed j; no allowed key gives out = 0, lse = -inf. `masks` holds one mask for all
/// heads or one per head; q, k, v are [B, H, S, D].
struct Attention {
  std::vector<double> out, lse;
};
inline Attention attention(const AttentionShape& shape, const Geometry& g,
                           const std::vector<Mask>& masks, Layout layout, double scale,
                           const float* q, const float* k, const float* v) {
  const int64_t S = shape.seq, D = shape.dim;
  Attention r;
  r.out.assign(static_cast<size_t>(shape.batch * shape.heads * S * D), 0.0);
  r.lse.assign(static_cast<size_t>(shape.batch * shape.heads * S),
               -std::numeric_limits<double>::infinity());
  std::vector<double> s(static_cast<size_t>(S));
  for (int64_t b = 0; b < shape.batch; ++b)
    for (int64_t h = 0; h < shape.heads; ++h) {
      const MaskOracle m(g, masks.size() == 1 ? masks[0] : masks[static_cast<size_t>(h)], layout);
      const int64_t base = (b * shape.heads + h) * S;
      for (int64_t i = 0; i < S; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < S; ++j) {
          if (!m.allows(i, j)) continue;
          double dot = 0.0;
          for (int64_t d = 0; d < D; ++d) dot += double(q[(base + i) * D + d]) * k[(base + j) * D + d];
          s[j] = scale * dot;
          mx = std::max(mx, s[j]);
        }
        if (mx == -std::numeric_limits<double>::infinity()) continue;  // no allowed key
        double l = 0.0;
        double* o = &r.out[static_cast<size_t>((base + i) * D)];
        for (int64_t j = 0; j < S; ++j) {
          if (!m.allows(i, j)) continue;
          const double p = std::exp(s[j] - mx);
          l += p;
          for (int64_t d = 0; d < D; ++d) o[d] += p * v[(base + j) * D + d];
        }
        for (int64_t d = 0; d < D; ++d) o[d] /= l;
        r.lse[static_cast<size_t>(base + i)] = mx + std::log(l);
      }
    }
  return r;
}

/// SPEC 3 counted pair by pair: video query token i lies in query block qblock[i], video key
/// token j in key block kblock[j] (storage indices); a block is dense if every pair in it
/// is allowed, empty if none is, mixed otherwise.
inline BlockCounts count_blocks(const MaskOracle& m, const std::vector<int64_t>& qblock,
                                int64_t q_blocks, const std::vector<int64_t>& kblock,
                                int64_t k_blocks) {
  const int64_t V = m.video_tokens();
  std::vector<int64_t> allowed(static_cast<size_t>(q_blocks * k_blocks), 0);
  std::vector<int64_t> cells(static_cast<size_t>(q_blocks * k_blocks), 0);
  for (int64_t i = 0; i < V; ++i)
    for (int64_t j = 0; j < V; ++j) {
      const size_t cell = static_cast<size_t>(qblock[i] * k_blocks + kblock[j]);
      cells[cell] += 1;
      allowed[cell] += m.allows(i, j);
    }
  BlockCounts c;
  for (size_t b = 0; b < cells.size(); ++b)
    (allowed[b] == 0 ? c.empty : allowed[b] == cells[b] ? c.dense : c.mixed) += 1;
  return c;
}

/// Blocks of one (query tile, key tile) each, tiled order (what the kernels count): the tile
/// of a token follows from its position, tile ids row-major over tile coordinates.
inline BlockCounts tile_block_counts(const Geometry& g, const Mask& mask) {
  const MaskOracle m(g, mask, Layout::kTiled);
  const int64_t nt = tiles_on_axis(g.canvas.t, g.tile.t), nh = tiles_on_axis(g.canvas.h, g.tile.h),
                nw = tiles_on_axis(g.canvas.w, g.tile.w);
  std::vector<int64_t> tile_of;
  for (int64_t i = 0; i < m.video_tokens(); ++i) {
    const Pos& p = m.position(i);
    tile_of.push_back(((p.c[0] / g.tile.t) * nh + p.c[1] / g.tile.h) * nw + p.c[2] / g.tile.w);
  }
  return count_blocks(m, tile_of, nt * nh * nw, tile_of, nt * nh * nw);
}

/// Blocks of `bq` consecutive query and `bk` consecutive key tokens in raster order.
inline BlockCounts raster_block_counts(const Geometry& g, const Mask& mask, int64_t bq,
                                       int64_t bk) {
  const MaskOracle m(g, mask, Layout::kRaster);
  const int64_t V = m.video_tokens();
  std::vector<int64_t> qb, kb;
  for (int64_t i = 0; i < V; ++i) {
    qb.push_back(i / bq);
    kb.push_back(i / bk);
  }
  return count_blocks(m, qb, (V + bq - 1) / bq, kb, (V + bk - 1) / bk);
}

/// Whether the STA border clamp moves some query tile's window on an axis of `n` tiles: the
/// window is narrower than the axis (so clamped and cropped windows differ) and some tile's
/// clamped start c - K/2 differs from its centred start qt - K/2.
inline bool sta_clamp_moves_a_window(int64_t k_tiles, int64_t n) {
  if (2 * (k_tiles / 2) + 1 >= n) return false;
  for (int64_t qt = 0; qt < n; ++qt)
    if (sta_centre(k_tiles, n, qt) != qt) return true;
  return false;
}

/// Whether the swa border shift moves some query's window on an axis of `len` tokens (a
/// window narrower than the axis whose start differs from x - W/2).
inline bool swa_shift_moves_a_window(int64_t w, int64_t len) {
  if (w >= len) return false;
  for (int64_t x = 0; x < len; ++x)
    if (swa_start(w, len, x) != x - w / 2) return true;
  return false;
}

}  // namespace sta::oracle
