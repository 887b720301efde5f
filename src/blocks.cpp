#include "sta/blocks.hpp"

#include <algorithm>

#include "sta/error.hpp"

namespace sta {

namespace {

AxisInterval axis_interval(const Geometry& g, const Mask& mask, int axis, int64_t q) {
  return allowed_keys_on_axis(mask.kind, mask.window[axis], g.canvas[axis], g.tile[axis], q);
}

void validate_for_blocks(const Geometry& g, const Mask& mask) {
  g.validate();
  validate_mask(mask, g);
}

// Per-axis facts the 3D counts are products of.
struct AxisSummary {
  int64_t dense_pairs = 0;     // (query tile, key tile) pairs dense on this axis
  int64_t nonempty_pairs = 0;  // pairs with at least one allowed token pair
  int64_t allowed_tokens = 0;  // allowed (query token, key token) pairs on this axis
};

AxisSummary summarize_axis(const Geometry& g, const Mask& mask, int axis) {
  AxisSummary s;
  for (BlockClass c : axis_block_classes(g, mask, axis)) {
    s.dense_pairs += c == BlockClass::kDense;
    s.nonempty_pairs += c != BlockClass::kEmpty;
  }
  for (int64_t q = 0; q < g.canvas[axis]; ++q) s.allowed_tokens += axis_interval(g, mask, axis, q).length;
  return s;
}

BlockStats classify_tiled(const Geometry& g, const Mask& mask) {
  BlockStats st;
  int64_t dense = 1, nonempty = 1;
  st.allowed_pairs = 1;
  for (int a = 0; a < 3; ++a) {
    const AxisSummary s = summarize_axis(g, mask, a);
    dense *= s.dense_pairs;
    nonempty *= s.nonempty_pairs;
    st.allowed_pairs *= s.allowed_tokens;
  }
  const int64_t tiles = g.num_tiles();
  st.counts = {dense, nonempty - dense, tiles * tiles - nonempty};
  st.total_pairs = g.video_tokens() * g.video_tokens();
  return st;
}

// Raster order, any block size. For a query token the allowed keys form a box (product of
// three intervals); f(k) = #allowed keys with raster index < k is O(1), so the allowed count
// of a contiguous key block is f(end) - f(begin). Cost O(V * key_blocks), never O(V^2).
BlockStats classify_raster(const Geometry& g, const Mask& mask, int64_t bq, int64_t bk,
                           std::vector<BlockClass>* classes) {
  const int64_t v = g.video_tokens();
  const int64_t nqb = (v + bq - 1) / bq, nkb = (v + bk - 1) / bk;
  const Extent3 c = g.canvas;
  if (classes) classes->assign(static_cast<size_t>(nqb * nkb), BlockClass::kEmpty);
  // Key block boundaries decomposed once into (t, y, x).
  std::vector<TokenCoord> bound(static_cast<size_t>(nkb + 1));
  for (int64_t j = 0; j <= nkb; ++j) {
    const int64_t k = std::min(j * bk, v);
    bound[j] = {k / (c.h * c.w), (k / c.w) % c.h, k % c.w};
  }
  int64_t dense = 0, mixed = 0, empty = 0, allowed = 0;
#pragma omp parallel reduction(+ : dense, mixed, empty, allowed)
  {
    std::vector<int64_t> row(static_cast<size_t>(nkb));
    std::vector<int64_t> f(static_cast<size_t>(nkb + 1));
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < nqb; ++i) {
      std::fill(row.begin(), row.end(), 0);
      const int64_t q_end = std::min((i + 1) * bq, v);
      for (int64_t q = i * bq; q < q_end; ++q) {
        const TokenCoord qc = token_coord(g, Layout::kRaster, q);
        const AxisInterval it = axis_interval(g, mask, 0, qc.t);
        const AxisInterval iy = axis_interval(g, mask, 1, qc.y);
        const AxisInterval ix = axis_interval(g, mask, 2, qc.x);
        const int64_t plane = iy.length * ix.length;
        for (int64_t j = 0; j <= nkb; ++j) {
          const TokenCoord& b = bound[j];
          int64_t n = count_in_range(it, c.t, 0, b.t) * plane;
          if (b.t < c.t && interval_contains(it, c.t, b.t)) {
            n += count_in_range(iy, c.h, 0, b.y) * ix.length;
            if (interval_contains(iy, c.h, b.y)) n += count_in_range(ix, c.w, 0, b.x);
          }
          f[j] = n;
        }
        for (int64_t j = 0; j < nkb; ++j) row[j] += f[j + 1] - f[j];
      }
      for (int64_t j = 0; j < nkb; ++j) {
        const int64_t cells = (q_end - i * bq) * (std::min((j + 1) * bk, v) - j * bk);
        allowed += row[j];
        BlockClass cls = BlockClass::kMixed;
        if (row[j] == 0) {
          cls = BlockClass::kEmpty;
          ++empty;
        } else if (row[j] == cells) {
          cls = BlockClass::kDense;
          ++dense;
        } else {
          ++mixed;
        }
        if (classes) (*classes)[static_cast<size_t>(i * nkb + j)] = cls;
      }
    }
  }
  BlockStats st;
  st.counts = {dense, mixed, empty};
  st.allowed_pairs = allowed;
  st.total_pairs = v * v;
  return st;
}

}  // namespace

std::vector<BlockClass> axis_block_classes(const Geometry& g, const Mask& mask, int axis) {
  const int64_t tile = g.tile[axis], len = g.canvas[axis], n = g.tiles()[axis];
  std::vector<BlockClass> out(static_cast<size_t>(n * n));
  for (int64_t qt = 0; qt < n; ++qt)
    for (int64_t kt = 0; kt < n; ++kt) {
      // Real token ranges: the last tile of a ragged axis is shorter.
      const int64_t k0 = kt * tile, k1 = std::min(k0 + tile, len);
      int64_t min_count = k1 - k0, max_count = 0;
      for (int64_t q = qt * tile; q < std::min((qt + 1) * tile, len); ++q) {
        const int64_t cnt = count_in_range(axis_interval(g, mask, axis, q), len, k0, k1);
        min_count = std::min(min_count, cnt);
        max_count = std::max(max_count, cnt);
      }
      out[qt * n + kt] = max_count == 0           ? BlockClass::kEmpty
                         : min_count == k1 - k0 ? BlockClass::kDense
                                                : BlockClass::kMixed;
    }
  return out;
}

BlockPartition resolve_partition(const Geometry& g, const BlockPartition& p) {
  const int64_t tv = g.tile_tokens();
  BlockPartition r = p;
  if (r.block_q == 0) r.block_q = tv;
  if (r.block_k == 0) r.block_k = tv;
  if (r.block_q < 1 || r.block_k < 1)
    throw Error("--block: " + std::to_string(r.block_q) + "," + std::to_string(r.block_k) +
                ", expected positive block sizes Bq,Bk");
  if (r.order == Layout::kTiled && (r.block_q != tv || r.block_k != tv))
    throw Error("--block: tiled order uses tile-sized blocks (" + std::to_string(tv) + "," +
                std::to_string(tv) + " for tile " + to_string(g.tile) + "), got " +
                std::to_string(r.block_q) + "," + std::to_string(r.block_k) +
                "; use --order raster for other block sizes");
  return r;
}

BlockGrid block_grid(const Geometry& g, const BlockPartition& r) {
  if (r.order == Layout::kTiled) return {g.num_tiles(), g.num_tiles()};
  const int64_t v = g.video_tokens();
  return {(v + r.block_q - 1) / r.block_q, (v + r.block_k - 1) / r.block_k};
}

BlockStats classify_blocks(const Geometry& g, const Mask& mask, const BlockPartition& p) {
  return classify_blocks(g, mask, p, nullptr);
}

BlockStats classify_blocks(const Geometry& g, const Mask& mask, const BlockPartition& p,
                           std::vector<BlockClass>* classes) {
  validate_for_blocks(g, mask);
  const BlockPartition r = resolve_partition(g, p);
  if (r.order == Layout::kTiled) {
    if (classes) {
      const int64_t n = g.num_tiles();
      classes->assign(static_cast<size_t>(n * n), BlockClass::kEmpty);
      const auto visits = key_tile_visits(g, mask);
      for (int64_t qt = 0; qt < n; ++qt)
        for (const KeyTileVisit& v : visits[static_cast<size_t>(qt)])
          (*classes)[static_cast<size_t>(qt * n + v.key_tile)] =
              v.dense ? BlockClass::kDense : BlockClass::kMixed;
    }
    return classify_tiled(g, mask);
  }
  return classify_raster(g, mask, r.block_q, r.block_k, classes);
}

std::vector<std::vector<KeyTileVisit>> key_tile_visits(const Geometry& g, const Mask& mask) {
  validate_for_blocks(g, mask);
  const Extent3 n = g.tiles();
  // Per axis and query tile: the non-empty key tiles, with whether they are dense.
  std::vector<std::vector<std::vector<KeyTileVisit>>> axis(3);
  for (int a = 0; a < 3; ++a) {
    const auto cls = axis_block_classes(g, mask, a);
    axis[a].resize(static_cast<size_t>(n[a]));
    for (int64_t qt = 0; qt < n[a]; ++qt)
      for (int64_t kt = 0; kt < n[a]; ++kt) {
        const BlockClass c = cls[qt * n[a] + kt];
        if (c != BlockClass::kEmpty) axis[a][qt].push_back({kt, c == BlockClass::kDense});
      }
  }
  std::vector<std::vector<KeyTileVisit>> visits(static_cast<size_t>(n.volume()));
  for (int64_t qt = 0; qt < n.t; ++qt)
    for (int64_t qy = 0; qy < n.h; ++qy)
      for (int64_t qx = 0; qx < n.w; ++qx) {
        auto& list = visits[(qt * n.h + qy) * n.w + qx];
        for (const auto& kt : axis[0][qt])
          for (const auto& ky : axis[1][qy])
            for (const auto& kx : axis[2][qx])
              list.push_back({(kt.key_tile * n.h + ky.key_tile) * n.w + kx.key_tile,
                              kt.dense && ky.dense && kx.dense});
      }
  return visits;
}

}  // namespace sta
