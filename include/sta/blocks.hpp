#pragma once
// Block classification (SPEC section 3): every (query block, key block) pair of the video
// part of the attention map is dense (all pairs allowed), empty (none) or mixed.
#include <cstdint>
#include <string>
#include <vector>

#include "sta/layout.hpp"
#include "sta/mask.hpp"
#include "sta/shape.hpp"

namespace sta {

/// Counts of blocks by class. Kernels report what they did with the same type: dense =
/// computed without a mask, mixed = computed with a per-element mask, empty = skipped.
struct BlockCounts {
  int64_t dense = 0;
  int64_t mixed = 0;
  int64_t empty = 0;

  int64_t total() const { return dense + mixed + empty; }
  BlockCounts& operator+=(const BlockCounts& o) {
    dense += o.dense;
    mixed += o.mixed;
    empty += o.empty;
    return *this;
  }
  bool operator==(const BlockCounts& o) const {
    return dense == o.dense && mixed == o.mixed && empty == o.empty;
  }
};

/// How the classifier cuts the video attention map into blocks.
struct BlockPartition {
  Layout order = Layout::kTiled;  ///< token order of queries and keys
  int64_t block_q = 0;            ///< rows per block; 0 = tile volume
  int64_t block_k = 0;            ///< columns per block; 0 = tile volume
};

/// `partition` with its defaults filled in (0 -> tile volume) and checked: positive sizes,
/// and tile-sized blocks in tiled order. Throws sta::Error naming --block otherwise.
BlockPartition resolve_partition(const Geometry& g, const BlockPartition& partition);

/// Number of query blocks and key blocks of a resolved partition.
struct BlockGrid {
  int64_t query_blocks = 0;
  int64_t key_blocks = 0;
};
/// Query and key blocks of `resolved` (from resolve_partition): tiles in tiled order,
/// ceil(video_tokens / block) in raster order.
BlockGrid block_grid(const Geometry& g, const BlockPartition& resolved);

/// The classifier's answer for one head.
struct BlockStats {
  BlockCounts counts;
  int64_t allowed_pairs = 0;  ///< (video query, video key) pairs the mask allows
  int64_t total_pairs = 0;    ///< video_tokens^2
  /// Fraction of video attention-map entries masked out: 1 - allowed / total.
  double sparsity() const {
    return total_pairs == 0 ? 0.0 : 1.0 - static_cast<double>(allowed_pairs) / total_pairs;
  }
};

/// Block class of one (query block, key block) pair.
enum class BlockClass : uint8_t { kEmpty = 0, kMixed = 1, kDense = 2 };

/// Classifies every block of the video part of one head's attention map. Tiled order
/// requires tile-sized blocks (on a ragged geometry each block is its real query tile x key
/// tile, edge tiles shorter) and costs O(sum over axes of n_axis^2 * tile_axis); raster
/// order takes any (block_q, block_k) and costs O(video_tokens * key_blocks), refused beyond
/// 2e9 naming --block. Never loops
/// over all token pairs. Throws sta::Error on invalid geometry, mask or block sizes.
BlockStats classify_blocks(const Geometry& g, const Mask& mask,
                           const BlockPartition& partition = {});

/// classify_blocks() that also keeps the class of every block: `classes` is resized to
/// query_blocks * key_blocks, row-major (query blocks down, key blocks across). One byte per
/// block: the caller bounds the block count (pictures, tests).
BlockStats classify_blocks(const Geometry& g, const Mask& mask, const BlockPartition& partition,
                           std::vector<BlockClass>* classes);


/// One non-empty key tile a query tile must visit.
struct KeyTileVisit {
  int64_t key_tile;  ///< tile id in tiled order (row-major over the tile grid)
  bool dense;        ///< false = mixed: needs a per-element mask
};

/// Most tiles per axis the tiled classifier accepts (it costs O(tiles) per axis, ~30 ns each).
constexpr int64_t kMaxAxisTiles = int64_t{1} << 25;

/// Most (query tile, key tile) pairs key_tile_visits() lists (16 bytes each: 512 MiB).
constexpr int64_t kMaxKeyTileVisits = int64_t{1} << 25;

/// For every query tile (tiled order), the non-empty key tiles in increasing key-tile order,
/// with their class. This is what the fast kernels iterate; its counts equal
/// classify_blocks() in tiled order. Throws sta::Error naming --tile when there would be
/// more than kMaxKeyTileVisits pairs (checked in O(canvas) before allocating).
std::vector<std::vector<KeyTileVisit>> key_tile_visits(const Geometry& g, const Mask& mask);

/// Per-axis class of the (query tile, key tile) pair on axis `axis` (0=t, 1=h, 2=w): the
/// 3D block class is dense iff all three are dense and empty iff any is empty.
std::vector<BlockClass> axis_block_classes(const Geometry& g, const Mask& mask, int axis);
/// Row `query_tile` of axis_block_classes() alone: O(tiles on the axis), no n x n table.
std::vector<BlockClass> axis_block_row(const Geometry& g, const Mask& mask, int axis,
                                       int64_t query_tile);

}  // namespace sta
