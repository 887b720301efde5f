#pragma once
// The references' view of the mask (reference.cpp, reference_backward.cpp): they ask it for
// all S^2 (query, key) pairs, so each query's per-axis key intervals and each key's canvas
// coordinates are found once, not per pair. The rule itself is sta::QueryMask's, which
// mask_allows() is written with.
#include <cstdint>
#include <vector>

#include "sta/layout.hpp"
#include "sta/mask.hpp"

namespace sta {

/// mask_allows(g, mask, layout, i, j) for one mask, every query's intervals found once.
class QueryMasks {
 public:
  QueryMasks(const Geometry& g, const Mask& mask, Layout layout) : video_(g.video_tokens()) {
    const int64_t S = g.seq_len();
    rows_.reserve(static_cast<size_t>(S));
    for (int64_t i = 0; i < S; ++i) rows_.emplace_back(g, mask, layout, i);
    coord_.resize(static_cast<size_t>(video_));
    for (int64_t s = 0; s < video_; ++s) coord_[static_cast<size_t>(s)] = token_coord(g, layout, s);
  }
  bool allows(int64_t i, int64_t j) const {
    return rows_[static_cast<size_t>(i)].allows(j, j < video_ ? coord_[static_cast<size_t>(j)] : TokenCoord{0, 0, 0});
  }

 private:
  int64_t video_;
  std::vector<QueryMask> rows_;
  std::vector<TokenCoord> coord_;
};

/// QueryMasks of every distinct mask: one for all heads, or one per head (mask_for_head).
class HeadMasks {
 public:
  HeadMasks(const Geometry& g, const std::vector<Mask>& masks, Layout layout) {
    for (const Mask& m : masks) masks_.emplace_back(g, m, layout);
  }
  const QueryMasks& of_head(int64_t head) const {
    return masks_[masks_.size() == 1 ? 0 : static_cast<size_t>(head)];
  }

 private:
  std::vector<QueryMasks> masks_;
};

}  // namespace sta
