#pragma once
// Shapes of the video canvas, its tiles and the text tokens that follow it (SPEC section 1).
#include <cstdint>
#include <string>

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
};

/// "T,H,W" (e.g. "30,48,80").
std::string to_string(const Extent3& e);

/// Parses "T,H,W" (three positive integers); `arg` names the option in error messages.
/// A 2D "H,W" is accepted as "1,H,W". Throws sta::Error on anything else.
Extent3 parse_extent3(const std::string& text, const std::string& arg);

/// The geometry of one attention problem's sequence: a video canvas of `canvas` tokens cut
/// into tiles of `tile` tokens, followed by `text_pad` text slots of which the first
/// `text_length` are real (SPEC sections 1 and 4). `S = canvas.volume() + text_pad`.
struct Geometry {
  Extent3 canvas{30, 48, 80};  ///< tokens
  Extent3 tile{6, 8, 8};       ///< tokens
  int64_t text_length = 0;     ///< real text tokens (keys beyond are padding, never attended)
  int64_t text_pad = 0;        ///< text slots after the video tokens (0 = no text)

  /// Tile grid in tiles: canvas / tile per axis.
  Extent3 tiles() const { return {canvas.t / tile.t, canvas.h / tile.h, canvas.w / tile.w}; }
  int64_t video_tokens() const { return canvas.volume(); }
  int64_t tile_tokens() const { return tile.volume(); }
  int64_t num_tiles() const { return tiles().volume(); }
  /// Full sequence length S (video + text padding).
  int64_t seq_len() const { return video_tokens() + text_pad; }
  /// Number of keys a query may ever attend: video tokens + real text tokens.
  int64_t valid_keys() const { return video_tokens() + text_length; }

  /// Throws sta::Error naming the argument if a size is not positive, a canvas axis is not
  /// divisible by the tile, the text length is outside [0, text_pad], or sizes overflow.
  void validate() const;
};

}  // namespace sta
