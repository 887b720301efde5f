#pragma once
// The per-element mask of one mixed block (SPEC 2), shared by the forward's flash loop
// (flash.cpp) and the backward (backward.cpp). Sliding windows are separable: query offset i
// of the query tile may see key offset j of the key tile exactly when it may on each axis,
// allowed_t(i_t, j_t) && allowed_h(i_h, j_h) && allowed_w(i_w, j_w). So the mask of a block is
// three small per-axis tables, built once per (query tile, key tile). Within a key tile a
// query's allowed keys on an axis are one interval (a window), except where a torus window
// wraps into the middle of the tile: then a query row's allowed keys form a box, and apply()
// fills the rest of its row as a few contiguous ranges (key offsets run in tiled order: t
// slabs of key_h x key_w, h runs of key_w), memset-like. Blocks with a wrapped window go
// through the general path: a run of key_w keys at a time, filled whole when its (t, h) pair
// is disallowed, else selected element by element against the w axis's keep pattern. On a
// ragged canvas the query and key tiles have their own (possibly shorter) extents; rows and
// runs follow them.
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "sta/mask.hpp"
#include "sta/shape.hpp"

namespace sta::detail {

class TileMask {
 public:
  explicit TileMask(const Geometry& g);

  /// The per-axis key intervals of every query coordinate of video query tile `qt`.
  void set_query_tile(const Mask& mask, int64_t qt);
  /// The tables for video key tile `kt` (after set_query_tile).
  void set_key_tile(int64_t kt);

  /// Writes `fill` over every disallowed entry of `rows` rows (stride ld) of query offsets
  /// first_row.. of the query tile: -inf into scores, or 0 into probabilities computed
  /// without the mask (whatever such an entry held, inf or NaN included). Only key offsets
  /// [c0, c1) of the key tile, stored at s[j - c0] (a backward step's chunk of the block).
  void apply(float* s, int64_t ld, int64_t first_row, int64_t rows, float fill, int64_t c0 = 0,
             int64_t c1 = std::numeric_limits<int64_t>::max()) const;

 private:
  Geometry g_;
  Extent3 query_extent_;  ///< tokens of the current query tile per axis
  Extent3 key_extent_;    ///< tokens of the current key tile per axis
  std::vector<AxisInterval> intervals_;  ///< per axis a, tile[a] entries: query coordinate i's keys
  std::vector<uint8_t> allowed_t_, allowed_h_;  ///< [i * key extent + j]
  std::vector<float> keep_w_;  ///< [i * key extent + j]: 1 allowed, 0 not
  /// Per axis a, tile[a] entries: query coordinate i's allowed key offsets [first, last) in
  /// the key tile, when they are one interval (empty: first == last).
  std::vector<std::pair<int64_t, int64_t>> box_;
  bool boxes_ = true;  ///< every query coordinate's allowed keys are one interval per axis

  void apply_boxes(float* s, int64_t ld, int64_t first_row, int64_t rows, float fill, int64_t c0,
                   int64_t end) const;
  void apply_runs(float* s, int64_t ld, int64_t first_row, int64_t rows, float fill, int64_t c0,
                  int64_t end) const;
};

}  // namespace sta::detail
