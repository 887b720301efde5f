#include "sta/blocks.hpp"

#include <algorithm>

#include "sta/error.hpp"

namespace sta {

namespace {

constexpr double kMaxRasterWork = 2e9;

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

// One axis of L tokens cut into n = ceil(L/t) tiles, the last maybe shorter. For one query
// tile the allowed key intervals of its queries are summarised so that the key tiles it
// touches, and those it covers entirely, follow from tile arithmetic: O(tile) per query
// tile, O(L) per axis, never an n x n table (70,000 one-token tiles took 80 s and 4.8 GB).
class AxisTiles {
 public:
  AxisTiles(const Geometry& g, const Mask& mask, int axis)
      : mask_(mask), axis_(axis), len_(g.canvas[axis]), tile_(g.tile[axis]),
        n_(g.tiles()[axis]) {
    // swa-torus with a window at least the axis is the whole axis for every query.
    torus_ = mask.kind == MaskKind::kSwaTorus && mask.window[axis] < len_;
    // O(1) per tile is still ~30 ns: 2^31 one-token tiles would take a minute.
    if (n_ > kMaxAxisTiles)
      throw Error("--tile: " + to_string(g.tile) + " cuts axis " + std::to_string(axis) + " (" +
                  std::to_string(len_) + " tokens of --video " + to_string(g.canvas) + ") into " +
                  std::to_string(n_) + " tiles; expected at most " + std::to_string(kMaxAxisTiles) +
                  " tiles per axis (use larger tiles)");
  }

  int64_t num_tiles() const { return n_; }

  // Counts of the key tiles query tile `qt` touches (non-empty) and covers (dense).
  void count(int64_t qt, int64_t* nonempty, int64_t* dense) const {
    if (torus_) {
      *nonempty = *dense = 0;
      for_each_torus(qt, [&](int64_t, bool d) {
        ++*nonempty;
        *dense += d;
      });
      return;
    }
    const Span sp = span(qt);
    *nonempty = tiles_touching(sp.union_lo, sp.union_hi);
    *dense = tiles_inside(sp.inter_lo, sp.inter_hi);
  }

  // Calls f(key_tile, dense) for every key tile `qt` touches, in increasing order.
  template <typename F>
  void visit(int64_t qt, F f) const {
    if (torus_) {
      std::vector<std::pair<int64_t, bool>> v;
      for_each_torus(qt, [&](int64_t k, bool d) { v.emplace_back(k, d); });
      std::sort(v.begin(), v.end());
      for (const auto& [k, d] : v) f(k, d);
      return;
    }
    const Span sp = span(qt);
    if (sp.union_lo >= sp.union_hi) return;
    for (int64_t k = sp.union_lo / tile_; k <= (sp.union_hi - 1) / tile_; ++k)
      f(k, k * tile_ >= sp.inter_lo && end_of(k) <= sp.inter_hi);
  }

  // Work of the torus enumeration (candidate key tiles over all query tiles), for callers
  // that must bound it; 0 for the other kinds (their cost is O(L)).
  double torus_work() const {
    if (!torus_) return 0.0;
    const double w = static_cast<double>(mask_.window[axis_]);
    const double per = std::min<double>(static_cast<double>(n_), (w + tile_) / tile_ + 3);
    return per * static_cast<double>(n_);
  }

 private:
  struct Span {
    int64_t union_lo, union_hi;  // keys some query of the tile sees
    int64_t inter_lo, inter_hi;  // keys every query of the tile sees
  };

  int64_t end_of(int64_t k) const { return std::min((k + 1) * tile_, len_); }

  AxisInterval interval(int64_t q) const {
    return allowed_keys_on_axis(mask_.kind, mask_.window[axis_], len_, tile_, q);
  }

  // full, sta and swa give one interval per query, its start non-decreasing in q by steps
  // of at most 1 and its length >= 1: the union over a tile is one interval too. sta and
  // full give every query of a tile the same interval, swa a constant length: the first and
  // the last query decide, O(1) per tile.
  Span span(int64_t qt) const {
    const AxisInterval a = interval(qt * tile_), b = interval(end_of(qt) - 1);
    return {std::min(a.start, b.start), std::max(a.start + a.length, b.start + b.length),
            std::max(a.start, b.start), std::min(a.start + a.length, b.start + b.length)};
  }

  int64_t tiles_touching(int64_t lo, int64_t hi) const {
    return lo >= hi ? 0 : (hi - 1) / tile_ - lo / tile_ + 1;
  }

  int64_t tiles_inside(int64_t lo, int64_t hi) const {
    if (lo >= hi) return 0;
    const int64_t first = (lo + tile_ - 1) / tile_;
    const int64_t last = hi == len_ ? n_ - 1 : hi / tile_ - 1;
    return std::max<int64_t>(0, last - first + 1);
  }

  // Torus, window W < L: query q sees the arc [s_q, s_q + W) with s_q = (q - W/2) mod L, and
  // the starts of a tile's queries form the arc [s_f, s_f + d] (d = tile length - 1).
  // Key tile [k0, k0+len) is dense iff every arc holds it: d <= (k0 - s_f) mod L <= W - len;
  // non-empty iff some start lies in the arc [k0 - W + 1, k0 + len) of starts that reach it.
  template <typename F>
  void for_each_torus(int64_t qt, F f) const {
    const int64_t w = mask_.window[axis_], q0 = qt * tile_, d = end_of(qt) - q0 - 1;
    const int64_t sf = mod(q0 - w / 2);
    const int64_t reach = d + w;  // keys of the union arc, from sf
    const int64_t candidates = reach >= len_ ? n_ : std::min(n_, reach / tile_ + 3);
    const int64_t first = reach >= len_ ? 0 : sf / tile_;
    for (int64_t i = 0; i < candidates; ++i) {
      const int64_t k = (first + i) % n_;
      const int64_t k0 = k * tile_, kl = end_of(k) - k0;
      const int64_t x = mod(k0 - sf);
      const bool dense = x >= d && x <= w - kl;
      const int64_t a_start = mod(k0 - w + 1), a_len = w + kl - 1;
      const bool touch = a_len >= len_ || mod(sf - a_start) < a_len || mod(a_start - sf) < d + 1;
      if (touch) f(k, dense);
    }
  }

  int64_t mod(int64_t x) const {
    x %= len_;
    return x < 0 ? x + len_ : x;
  }

  const Mask& mask_;
  int axis_;
  int64_t len_, tile_, n_;
  bool torus_ = false;
};

// Refuses a torus classification whose enumeration would take more than ~0.5 s.
void check_torus_cost(const AxisTiles& t, int axis) {
  constexpr double kMaxWork = 1e8;
  if (t.torus_work() > kMaxWork)
    throw Error("--mask: swa-torus on axis " + std::to_string(axis) + " with " +
                std::to_string(t.num_tiles()) + " tiles needs about " +
                std::to_string(static_cast<int64_t>(t.torus_work())) +
                " tile tests; expected at most 1e8 (use larger tiles or a smaller window)");
}

AxisSummary summarize_axis(const Geometry& g, const Mask& mask, int axis) {
  AxisSummary s;
  const AxisTiles tiles(g, mask, axis);
  check_torus_cost(tiles, axis);
  for (int64_t qt = 0; qt < tiles.num_tiles(); ++qt) {
    int64_t nonempty = 0, dense = 0;
    tiles.count(qt, &nonempty, &dense);
    s.dense_pairs += dense;
    s.nonempty_pairs += nonempty;
  }
  // Allowed token pairs: sta's interval is constant over a tile; the others have one
  // length for every query (the window, or the whole axis).
  const int64_t len = g.canvas[axis], tile = g.tile[axis];
  if (mask.kind == MaskKind::kSta) {
    for (int64_t qt = 0; qt < tiles.num_tiles(); ++qt)
      s.allowed_tokens += axis_interval(g, mask, axis, qt * tile).length * (std::min((qt + 1) * tile, len) - qt * tile);
  } else {
    s.allowed_tokens = axis_interval(g, mask, axis, 0).length * len;
  }
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
  // (v - 1) / b + 1, not (v + b - 1) / b: a block of 2^63 - 1 tokens must not wrap to 0.
  const int64_t nqb = (v - 1) / bq + 1, nkb = (v - 1) / bk + 1;
  // ~3 ns per (query token, key block): 2e9 is a few seconds; beyond, refuse up front.
  if (static_cast<double>(v) * static_cast<double>(nkb + 1) > kMaxRasterWork)
    throw Error("--block: raster order with key blocks of " + std::to_string(bk) + " on " +
                std::to_string(v) + " video tokens needs " + std::to_string(v) + " x " +
                std::to_string(nkb + 1) + " steps; expected at most 2e9 (use larger blocks)");
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
  const AxisTiles tiles(g, mask, axis);
  check_torus_cost(tiles, axis);
  const int64_t n = tiles.num_tiles();
  std::vector<BlockClass> out(static_cast<size_t>(n * n), BlockClass::kEmpty);
  for (int64_t qt = 0; qt < n; ++qt)
    tiles.visit(qt, [&](int64_t kt, bool dense) {
      out[static_cast<size_t>(qt * n + kt)] = dense ? BlockClass::kDense : BlockClass::kMixed;
    });
  return out;
}

std::vector<BlockClass> axis_block_row(const Geometry& g, const Mask& mask, int axis,
                                       int64_t query_tile) {
  const AxisTiles tiles(g, mask, axis);
  check_torus_cost(tiles, axis);
  std::vector<BlockClass> out(static_cast<size_t>(tiles.num_tiles()), BlockClass::kEmpty);
  tiles.visit(query_tile, [&](int64_t kt, bool dense) {
    out[static_cast<size_t>(kt)] = dense ? BlockClass::kDense : BlockClass::kMixed;
  });
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
  return {(v - 1) / r.block_q + 1, (v - 1) / r.block_k + 1};  // v >= 1; never wraps
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
  // Per axis and query tile: the non-empty key tiles, with whether they are dense. The
  // total is the product of the per-axis sums: refused before allocating when it is absurd.
  std::vector<std::vector<std::vector<KeyTileVisit>>> axis(3);
  double total = 1.0;
  for (int a = 0; a < 3; ++a) {
    const AxisTiles tiles(g, mask, a);
    check_torus_cost(tiles, a);
    double sum = 0.0;
    for (int64_t qt = 0; qt < n[a]; ++qt) {
      int64_t nonempty = 0, dense = 0;
      tiles.count(qt, &nonempty, &dense);
      sum += static_cast<double>(nonempty);
    }
    total *= sum;
  }
  if (total > static_cast<double>(kMaxKeyTileVisits))
    throw Error("--tile: " + to_string(g.tile) + " on --video " + to_string(g.canvas) + " with " +
                to_string(mask) + " gives " + std::to_string(static_cast<long long>(total)) +
                " (query tile, key tile) pairs to visit; expected at most " +
                std::to_string(kMaxKeyTileVisits) + " (use larger tiles)");
  for (int a = 0; a < 3; ++a) {
    const AxisTiles tiles(g, mask, a);
    axis[a].resize(static_cast<size_t>(n[a]));
    for (int64_t qt = 0; qt < n[a]; ++qt)
      tiles.visit(qt, [&](int64_t kt, bool dense) { axis[a][qt].push_back({kt, dense}); });
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
