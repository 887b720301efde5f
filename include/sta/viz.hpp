#pragma once
// Teaching pictures (issue 6): the block map of a mask (dense / mixed / empty blocks, side by
// side for STA vs SWA or raster vs tiled order), the window one query token sees on the
// canvas, and where one query's attention mass falls. Every builder returns an sta::Svg with
// a title, axis labels and a legend; `sta viz` writes them, `sta report` inlines them.
#include <cstdint>
#include <string>
#include <vector>

#include "sta/blocks.hpp"
#include "sta/layout.hpp"
#include "sta/mask.hpp"
#include "sta/shape.hpp"
#include "sta/svg.hpp"

namespace sta {

/// Colour-blind-safe colours (Okabe & Ito) of the three block classes, used by every picture.
constexpr const char* kDenseColour = "#0072B2";  ///< blue: computed without a mask
constexpr const char* kMixedColour = "#E69F00";  ///< orange: computed with a per-element mask
constexpr const char* kEmptyColour = "#EEEEEE";  ///< light grey: skipped

/// Largest class map (query blocks x key blocks) block_class_map() builds: 2^26 cells.
constexpr int64_t kMaxBlockMapCells = int64_t{1} << 26;

/// The class of every block of one head's video attention map, row-major: query blocks down
/// (rows), key blocks across (columns). Blocks are `block_q` x `block_k` tokens in `order`;
/// in tiled order they are (query tile, key tile) pairs with tile ids in row-major order of
/// the tile grid.
struct BlockClassMap {
  Layout order = Layout::kTiled;
  int64_t block_q = 0;  ///< tokens per query block (the last one may be shorter in raster
                        ///< order; in tiled order a ragged edge tile holds fewer, tile_size())
  int64_t block_k = 0;  ///< tokens per key block (likewise)
  int64_t rows = 0;     ///< query blocks
  int64_t cols = 0;     ///< key blocks
  std::vector<BlockClass> classes;  ///< rows * cols entries
  BlockStats stats;                 ///< the same counts as classify_blocks(), and sparsity

  BlockClass at(int64_t row, int64_t col) const {
    return classes[static_cast<size_t>(row * cols + col)];
  }
};

/// Classifies every block like classify_blocks() but keeps the per-block classes. Tiled
/// order reads them from key_tile_visits() (what the kernels iterate); raster order counts
/// the allowed keys of each (query token, key block) with the O(1) box-range trick of
/// classify_blocks() (cost O(video_tokens * key_blocks), never O(video_tokens^2)). Throws
/// sta::Error on invalid input or when the map would exceed kMaxBlockMapCells (the message
/// names --block for raster order, --video/--tile for tiled order).
BlockClassMap block_class_map(const Geometry& g, const Mask& mask,
                              const BlockPartition& partition = {});

/// A half-open window of block indices to draw: query blocks [q0, q1), key blocks [k0, k1).
/// q1 / k1 = -1 mean "to the end".
struct BlockRange {
  int64_t q0 = 0, q1 = -1, k0 = 0, k1 = -1;
};

/// Parses "q0:q1,k0:k1" (non-negative integers, q0 < q1, k0 < k1); `arg` names the option
/// in errors. The range is checked against a map's size later, by blocks_svg().
BlockRange parse_block_range(const std::string& text, const std::string& arg);

/// One panel of a block picture: a mask cut into blocks by `partition`.
struct BlockPanel {
  Mask mask;
  BlockPartition partition;
};

/// What blocks_svg() draws.
struct BlocksPictureOptions {
  /// Above this many drawn cells per side, cells aggregate g x g blocks (the smallest g that
  /// fits): coloured mixed if any block in the group is mixed, else dense if any is dense,
  /// shaded by the fraction of non-empty blocks.
  int64_t max_cells = 150;
  BlockRange range;    ///< zoom, in block indices (applies to every panel)
  std::string title;   ///< empty = a title naming the canvas and tile
};

/// The block map of each panel side by side (query blocks down, key blocks across): one
/// <rect> per drawn cell with class "dense", "mixed" or "empty" (or "agg" when aggregated),
/// panel headers with the counts and sparsity, axis labels with tick marks, frame-of-tiles
/// separators where they are legible, and a legend. In tiled order every tile is one cell,
/// also a shorter ragged edge tile (the title and a note give its size). Throws sta::Error
/// on invalid input, on a range outside a map (naming --range), or on more than 4 panels.
Svg blocks_svg(const Geometry& g, const std::vector<BlockPanel>& panels,
               const BlocksPictureOptions& options = {});

/// Parses a query token position "t,y,x" (or "y,x" on a 2D canvas, t = 0), in tokens, and
/// checks it lies inside the canvas of `g`. Throws sta::Error naming `arg`, the canvas and
/// the offending axis.
TokenCoord parse_query_token(const std::string& text, const Geometry& g, const std::string& arg);

/// What one query token attends, per axis, as the window pictures draw it.
struct QueryWindow {
  TokenCoord query;
  Extent3 query_tile;          ///< tile coordinates of the query's tile
  AxisInterval keys[3];        ///< allowed key tokens per axis (t, y, x)
  AxisInterval centred[3];     ///< the window centred on the query (tokens; may leave the
                               ///< canvas): where it would be without the border shift
  bool shifted[3] = {false, false, false};  ///< the border moved the window on this axis
  int64_t attended_tiles = 0;  ///< key tiles with at least one allowed key for the query tile
  int64_t dense_tiles = 0;     ///< of those, tiles dense for the whole query tile
};

/// The window of `query` under `mask` (SPEC 2): for STA the key tiles of the query's tile
/// (their count is the effective window volume), for SWA the token box and the key tiles
/// the query tile's block row touches. Throws sta::Error on invalid input.
QueryWindow query_window(const Geometry& g, const Mask& mask, const TokenCoord& query);

/// The canvas seen from `query`: one panel per frame of tiles (a single panel in 2D) with
/// the tile grid, the query token and its tile, the attended key tiles (one <rect
/// class="attended ..."> each, "dense" or "mixed"), the window outline, and where the border
/// shifted the window, the dashed outline of the centred window it would have been. Every
/// tile is drawn at its real size in tokens, so on a ragged canvas the last tile of an axis
/// is shorter (the white canvas background is <rect class="canvas">, the scale reference).
/// Canvases with more than 12 frames of tiles show the frames the window touches plus one
/// on each side. Throws sta::Error on invalid input.
Svg window_svg(const Geometry& g, const Mask& mask, const TokenCoord& query);

/// Where one query's softmax attention mass falls over the keys (full attention, SPEC 4
/// validity: padded text keys get nothing).
struct AttentionRecall {
  TokenCoord query;
  std::vector<double> mass;      ///< per video key token, raster order (t, y, x); sums with
                                 ///< text_mass to 1
  double text_mass = 0;          ///< mass on the real text keys
  double window_mass = 0;        ///< mass on the video keys the mask allows for the query
  int64_t window_keys = 0;       ///< number of such keys
  double window_key_fraction = 0;  ///< window_keys / video tokens
};

/// Softmax of `scale * q . k` over every valid key for the video query at `query`, in
/// double. `q` and `k` point to one (batch, head) slice, `[S, head_dim]` row-major, with the
/// video rows in `layout` order. Throws sta::Error on invalid input or a non-finite score.
AttentionRecall attention_recall(const Geometry& g, Layout layout, const Mask& mask,
                                 const float* q, const float* k, int64_t head_dim,
                                 double scale, const TokenCoord& query);

/// How recall_svg() maps mass to colour.
enum class HeatScale { kLog, kLinear };

/// A heat map of `recall` (one panel per frame when the canvas has at most 16 frames, else
/// one panel summed over frames; cells aggregate tokens to at most 64 per side), the mask's
/// window drawn over it, a bar chart of the mass per frame (video), a colour bar, and the
/// fraction of the mass inside the window in the title. `label` names the inputs (e.g. the
/// files and head) in the subtitle.
Svg recall_svg(const Geometry& g, const Mask& mask, const AttentionRecall& recall,
               HeatScale scale = HeatScale::kLog, const std::string& label = "");

/// "12,345" (thousands separators), for counts in pictures and the report.
std::string group_thousands(int64_t v);

}  // namespace sta
