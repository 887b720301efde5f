#pragma once
// Tiled and raster token orders (SPEC section 1) and the exact permutations between them.
#include <cstdint>
#include <string>

#include "sta/shape.hpp"

namespace sta {

/// Token order of the video part of a sequence. Text tokens always follow, unpermuted.
enum class Layout {
  kTiled,   ///< tokens of one tile contiguous; tiles row-major; inside a tile row-major
  kRaster,  ///< plain row-major (t, y, x)
};

std::string to_string(Layout layout);
/// Parses "tiled" or "raster"; `arg` names the option in error messages.
Layout parse_layout(const std::string& text, const std::string& arg);

/// Canvas coordinates of a video token, in tokens.
struct TokenCoord {
  int64_t t, y, x;
};

/// Raster index of canvas position (t, y, x).
inline int64_t raster_index(const Extent3& canvas, int64_t t, int64_t y, int64_t x) {
  return (t * canvas.h + y) * canvas.w + x;
}

/// Tiled index of canvas position (t, y, x): the tile's first token (Geometry::tile_offset,
/// tile_id * tile volume unless ragged) + the row-major offset inside the (possibly shorter)
/// tile.
inline int64_t tiled_index(const Geometry& g, int64_t t, int64_t y, int64_t x) {
  const Extent3 c{t / g.tile.t, y / g.tile.h, x / g.tile.w};
  const Extent3 e = g.tile_extent(c);
  const int64_t inner = ((t % g.tile.t) * e.h + y % g.tile.h) * e.w + x % g.tile.w;
  return g.tile_offset(c) + inner;
}

/// Canvas coordinates of video token `s` (0 <= s < video_tokens) stored in `layout`.
TokenCoord token_coord(const Geometry& g, Layout layout, int64_t s);

/// Permutes rows of `[batch_heads, S, row]` data from raster to tiled order (video rows only;
/// text rows are copied unchanged). `src` and `dst` must not overlap. Exact (a pure copy).
void tile(const Geometry& g, const float* src, float* dst, int64_t batch_heads, int64_t row);
/// Inverse of tile(): tiled to raster order. `untile(tile(x)) == x` bit for bit.
void untile(const Geometry& g, const float* src, float* dst, int64_t batch_heads, int64_t row);

}  // namespace sta
