#pragma once
// Shapes of the video canvas, its tiles and the text tokens that follow it (SPEC section 1).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace sta {

/// Three extents in (t, h, w) order: frames, height, width. Units depend on use
/// (tokens for a canvas or a tile, tiles for a tile grid or an STA window).
struct Extent3 {
  int64_t t = 1;
  int64_t h = 1;
  int64_t w = 1;

  int64_t volume() const { return t * h * w; }
  int64_t operator[](int axis) const { return axis == 0 ? t : (axis == 1 ? h : w); }
  int64_t& operator[](int axis) { return axis == 0 ? t : (axis == 1 ? h : w); }
  bool operator==(const Extent3& o) const { return t == o.t && h == o.h && w == o.w; }
  bool operator!=(const Extent3& o) const { return !(*this == o); }
  /// {t, h, w}, e.g. for a JSON array.
  std::vector<int64_t> list() const { return {t, h, w}; }
};

/// The product of sizes >= 0 (an empty extent makes it 0), or sta::Error naming `arg` and
/// `what` (e.g. "[B,H,S,D]") instead of a wrapped value when a size is negative or the
/// product overflows 64 bits. For every size product computed from user input.
int64_t checked_product(std::initializer_list<int64_t> factors, const std::string& arg,
                        const std::string& what);

/// "T,H,W" (e.g. "30,48,80").
std::string to_string(const Extent3& e);

/// Parses "T,H,W" (three positive integers); `arg` names the option in error messages.
/// A 2D "H,W" is accepted as "1,H,W". Throws sta::Error on anything else.
Extent3 parse_extent3(const std::string& text, const std::string& arg);

/// The geometry of one attention problem's sequence: a video canvas of `canvas` tokens cut
/// into tiles of `tile` tokens, followed by `text_pad` text slots of which the first
/// `text_length` are real (SPEC sections 1 and 4). `S = canvas.volume() + text_pad`.
///
/// `ragged` (SPEC 1's documented extension, "any video size"): an axis of L tokens and tile
/// T has n = ceil(L/T) tiles, the last one L - (n-1)*T tokens long. Tiles stay row-major in
/// tiled order with their tokens contiguous and row-major inside, so a tile's first token is
/// the number of tokens in all earlier tiles (tile_offset). Without `ragged`, a canvas axis
/// not divisible by the tile is an error. Every formula below holds in both cases.
struct Geometry {
  Extent3 canvas{30, 48, 80};  ///< tokens
  Extent3 tile{6, 8, 8};       ///< tokens (the full size; edge tiles may be shorter if ragged)
  int64_t text_length = 0;     ///< real text tokens (keys beyond are padding, never attended)
  int64_t text_pad = 0;        ///< text slots after the video tokens (0 = no text)
  bool ragged = false;         ///< allow shorter last tiles on axes not divisible by the tile

  /// Tile grid in tiles: ceil(canvas / tile) per axis (exact division unless ragged).
  Extent3 tiles() const {
    return {(canvas.t + tile.t - 1) / tile.t, (canvas.h + tile.h - 1) / tile.h,
            (canvas.w + tile.w - 1) / tile.w};
  }
  int64_t video_tokens() const { return canvas.volume(); }
  /// Tokens of a full (interior) tile; edge tiles of a ragged canvas hold fewer (tile_size).
  int64_t tile_tokens() const { return tile.volume(); }
  int64_t num_tiles() const { return tiles().volume(); }
  /// Tokens of tile `i` on axis `axis` (0=t, 1=h, 2=w): the tile size, shorter for the last
  /// tile of a ragged axis.
  int64_t tile_len(int axis, int64_t i) const {
    const int64_t rest = canvas[axis] - i * tile[axis];
    return rest < tile[axis] ? rest : tile[axis];
  }
  /// Tile coordinates (tiles) of tile id `id` (row-major over the tile grid).
  Extent3 tile_coord(int64_t id) const {
    const Extent3 n = tiles();
    return {id / (n.h * n.w), (id / n.w) % n.h, id % n.w};
  }
  /// Extents in tokens of the tile at tile coordinates `c`.
  Extent3 tile_extent(const Extent3& c) const {
    return {tile_len(0, c.t), tile_len(1, c.h), tile_len(2, c.w)};
  }
  /// Tokens of tile id `id`.
  int64_t tile_size(int64_t id) const { return tile_extent(tile_coord(id)).volume(); }
  /// First token (tiled order) of the tile at tile coordinates `c`: all tiles with a smaller
  /// frame-tile index fill whole frames, then whole rows of this frame band, then columns:
  /// c.t*t*H*W + len_t*(c.h*h*W) + len_t*len_h*(c.w*w). Equals tile_id * tile_tokens()
  /// when no tile is ragged.
  int64_t tile_offset(const Extent3& c) const {
    const int64_t lt = tile_len(0, c.t), lh = tile_len(1, c.h);
    return c.t * tile.t * canvas.h * canvas.w + lt * (c.h * tile.h * canvas.w) +
           lt * lh * (c.w * tile.w);
  }
  int64_t tile_offset(int64_t id) const { return tile_offset(tile_coord(id)); }
  /// Full sequence length S (video + text padding).
  int64_t seq_len() const { return video_tokens() + text_pad; }
  /// Number of keys a query may ever attend: video tokens + real text tokens.
  int64_t valid_keys() const { return video_tokens() + text_length; }

  /// Throws sta::Error naming the argument if a size is not positive, a canvas axis is not
  /// divisible by the tile (unless ragged), the text length is outside [0, text_pad], or
  /// sizes overflow.
  void validate() const;
};

}  // namespace sta
