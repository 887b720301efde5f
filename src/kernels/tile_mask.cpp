// The per-element mask of a mixed block (see tile_mask.hpp).
#include "tile_mask.hpp"

#include <algorithm>

namespace sta::detail {

TileMask::TileMask(const Geometry& g)
    : g_(g),
      intervals_(static_cast<size_t>(g.tile.t + g.tile.h + g.tile.w)),
      allowed_t_(static_cast<size_t>(g.tile.t * g.tile.t)),
      allowed_h_(static_cast<size_t>(g.tile.h * g.tile.h)),
      keep_w_(static_cast<size_t>(g.tile.w * g.tile.w)),
      box_(static_cast<size_t>(g.tile.t + g.tile.h + g.tile.w)) {}

void TileMask::set_query_tile(const Mask& mask, int64_t qt) {
  const Extent3 tile_coord = g_.tile_coord(qt);
  query_extent_ = g_.tile_extent(tile_coord);
  AxisInterval* iv = intervals_.data();
  for (int a = 0; a < 3; ++a) {
    for (int64_t i = 0; i < query_extent_[a]; ++i) {
      iv[i] = allowed_keys_on_axis(mask.kind, mask.window[a], g_.canvas[a], g_.tile[a],
                                   tile_coord[a] * g_.tile[a] + i);
    }
    iv += g_.tile[a];
  }
}

void TileMask::set_key_tile(int64_t kt) {
  const Extent3 tile_coord = g_.tile_coord(kt);
  key_extent_ = g_.tile_extent(tile_coord);
  const AxisInterval* iv = intervals_.data();
  std::pair<int64_t, int64_t>* box = box_.data();
  boxes_ = true;
  for (int a = 0; a < 3; ++a) {
    const int64_t klen = key_extent_[a];
    const int64_t first_key = tile_coord[a] * g_.tile[a];
    for (int64_t i = 0; i < query_extent_[a]; ++i) {
      int64_t first = klen, last = 0, allowed = 0;
      for (int64_t j = 0; j < klen; ++j) {
        const bool ok = interval_contains(iv[i], g_.canvas[a], first_key + j);
        const size_t at = static_cast<size_t>(i * klen + j);
        if (a == 0) allowed_t_[at] = ok;
        if (a == 1) allowed_h_[at] = ok;
        if (a == 2) keep_w_[at] = ok ? 1.0f : 0.0f;
        if (ok) {
          first = std::min(first, j);
          last = j + 1;
          ++allowed;
        }
      }
      box[i] = allowed == 0 ? std::pair<int64_t, int64_t>{0, 0} : std::pair<int64_t, int64_t>{first, last};
      boxes_ = boxes_ && allowed == box[i].second - box[i].first;  // no hole
    }
    iv += g_.tile[a];
    box += g_.tile[a];
  }
}

void TileMask::apply(float* s, int64_t ld, int64_t first_row, int64_t rows, float fill,
                     int64_t c0, int64_t c1) const {
  const int64_t end = std::min(c1, key_extent_.t * key_extent_.h * key_extent_.w);
  if (boxes_) {
    apply_boxes(s, ld, first_row, rows, fill, c0, end);
  } else {
    apply_runs(s, ld, first_row, rows, fill, c0, end);
  }
}

void TileMask::apply_boxes(float* s, int64_t ld, int64_t first_row, int64_t rows, float fill,
                           int64_t c0, int64_t end) const {
  const int64_t qh = query_extent_.h, qw = query_extent_.w;
  const int64_t kh = key_extent_.h, kw = key_extent_.w, slab = kh * kw;
  const std::pair<int64_t, int64_t>* box_t = box_.data();
  const std::pair<int64_t, int64_t>* box_h = box_t + g_.tile.t;
  const std::pair<int64_t, int64_t>* box_w = box_h + g_.tile.h;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t qi = first_row + r;
    const auto [t0, t1] = box_t[qi / (qh * qw)];
    const auto [h0, h1] = box_h[(qi / qw) % qh];
    const auto [w0, w1] = box_w[qi % qw];
    float* row = s + r * ld;  // key offset j at row[j - c0]
    // Fills key offsets [from, to) within this call's columns [c0, end).
    auto fill_keys = [&](int64_t from, int64_t to) {
      from = std::max(from, c0);
      to = std::min(to, end);
      if (from < to) std::fill(row + (from - c0), row + (to - c0), fill);
    };
    if (t0 == t1 || h0 == h1 || w0 == w1) {  // no key of this tile
      fill_keys(c0, end);
      continue;
    }
    fill_keys(0, t0 * slab);  // t slabs before and after the box
    fill_keys(t1 * slab, end);
    for (int64_t a = t0; a < t1; ++a) {
      const int64_t base = a * slab;
      if (base >= end) break;
      if (base + slab <= c0) continue;
      fill_keys(base, base + h0 * kw);  // h runs before and after the box
      fill_keys(base + h1 * kw, base + slab);
      if (w0 == 0 && w1 == kw) continue;
      for (int64_t b = h0; b < h1; ++b) {  // the w ends of the runs inside
        fill_keys(base + b * kw, base + b * kw + w0);
        fill_keys(base + b * kw + w1, base + (b + 1) * kw);
      }
    }
  }
}

void TileMask::apply_runs(float* s, int64_t ld, int64_t first_row, int64_t rows, float fill,
                          int64_t c0, int64_t end) const {
  const int64_t qh = query_extent_.h, qw = query_extent_.w;
  const int64_t kt = key_extent_.t, kh = key_extent_.h, kw = key_extent_.w;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t qi = first_row + r;
    const uint8_t* at = allowed_t_.data() + (qi / (qh * qw)) * kt;
    const uint8_t* ah = allowed_h_.data() + ((qi / qw) % qh) * kh;
    const float* keep = keep_w_.data() + (qi % qw) * kw;
    float* row = s + r * ld;  // key offset j at row[j - c0]
    for (int64_t a = 0; a < kt; ++a) {
      for (int64_t b = 0; b < kh; ++b) {
        const int64_t first = (a * kh + b) * kw;  // this run's key offsets: [first, first + kw)
        const int64_t lo = std::max(first, c0), hi = std::min(first + kw, end);
        if (lo >= hi) continue;
        float* run = row + (lo - c0);
        const int64_t n = hi - lo;
        if (!(at[a] && ah[b])) {
          std::fill(run, run + n, fill);
          continue;
        }
        const float* k = keep + (lo - first);
        for (int64_t c = 0; c < n; ++c) run[c] = k[c] != 0.0f ? run[c] : fill;
      }
    }
  }
}

}  // namespace sta::detail
