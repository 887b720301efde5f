#pragma once
// Attention masks (SPEC sections 2 and 4): full, STA (window in tiles, FastVideo's
// centre-clamp rule), token-wise SWA (NATTEN semantics) and SWA on a torus. Every video mask
// is a product of per-axis conditions, and on each axis the keys a query sees form one
// (possibly wrapping) interval; everything else in the library is built on that fact.
#include <cstdint>
#include <string>
#include <vector>

#include "sta/layout.hpp"
#include "sta/shape.hpp"

namespace sta {

enum class MaskKind {
  kFull,      ///< every key
  kSta,       ///< sliding tile attention; window in tiles
  kSwa,       ///< token-wise sliding window, shifted at borders (NATTEN); window in tokens
  kSwaTorus,  ///< token-wise sliding window with wrap-around; window in tokens (Theorem 3.1)
};

/// One head's video mask. `window` is in tiles for kSta, in tokens for kSwa/kSwaTorus, and
/// unused for kFull.
struct Mask {
  MaskKind kind = MaskKind::kFull;
  Extent3 window{1, 1, 1};

  static Mask full() { return {MaskKind::kFull, {1, 1, 1}}; }
  static Mask sta(Extent3 window_tiles) { return {MaskKind::kSta, window_tiles}; }
  static Mask swa(Extent3 window_tokens) { return {MaskKind::kSwa, window_tokens}; }
  static Mask swa_torus(Extent3 window_tokens) { return {MaskKind::kSwaTorus, window_tokens}; }
};

/// "full", "sta:Kt,Kh,Kw", "swa:Wt,Wh,Ww" or "swa-torus:Wt,Wh,Ww" (SPEC section 7).
std::string to_string(const Mask& mask);
/// Parses the `--mask` syntax above. Two numbers ("sta:Kh,Kw") mean a 2D window with Kt=1.
/// Throws sta::Error naming `arg` on anything malformed or on a window entry < 1.
Mask parse_mask(const std::string& text, const std::string& arg = "--mask");

/// Throws sta::Error naming `arg` if a window entry is < 1. Windows larger than the canvas
/// are valid: they cover the whole axis (SPEC section 2).
void validate_mask(const Mask& mask, const Geometry& g, const std::string& arg = "--mask");

/// Key tiles an STA query tile sees on one axis: `count` tiles from `first` (SPEC 2:
/// centre c = clamp(qt, K/2, n-1-K/2), keys |c - kt| <= K/2, clipped to [0, n)).
struct TileRange {
  int64_t first = 0;
  int64_t count = 0;
};
/// The key tiles query tile `query_tile` sees on an axis of `num_tiles` tiles under an STA
/// window of `window_tiles` tiles (FastVideo's rule, above).
TileRange sta_key_tiles(int64_t window_tiles, int64_t num_tiles, int64_t query_tile);

/// The effective STA window in tiles: what `sta_key_tiles` covers on each axis for an
/// interior tile (odd K -> K, even K -> K+1, anything >= n -> n).
Extent3 effective_sta_window(const Extent3& window_tiles, const Extent3& num_tiles);

/// Keys `(start + i) mod axis_len` for `0 <= i < length`, in tokens on one axis.
/// Only kSwaTorus ever wraps; for the other kinds `start + length <= axis_len`.
struct AxisInterval {
  int64_t start = 0;
  int64_t length = 0;
};

/// Keys that query coordinate `q` (tokens) sees on one axis of `axis_len` tokens cut into
/// ceil(axis_len / tile) tiles of `tile` tokens (the last one shorter on a ragged axis), for mask kind `kind` with window `window` (tiles for kSta, tokens
/// otherwise).
AxisInterval allowed_keys_on_axis(MaskKind kind, int64_t window, int64_t axis_len,
                                  int64_t tile, int64_t q);

/// True if key coordinate `k` lies in `iv` on an axis of `axis_len` tokens.
inline bool interval_contains(const AxisInterval& iv, int64_t axis_len, int64_t k) {
  int64_t d = k - iv.start;
  if (d < 0) d += axis_len;
  return d < iv.length;
}

/// Number of keys in the token range [a, b) on an axis of `axis_len` tokens that `iv`
/// contains (wrap-around included): O(1).
int64_t count_in_range(const AxisInterval& iv, int64_t axis_len, int64_t a, int64_t b);

/// Whether video token `q` may attend video token `k` (canvas coordinates, tokens).
bool video_mask_allows(const Geometry& g, const Mask& mask, const TokenCoord& q,
                       const TokenCoord& k);

/// The whole SPEC section 4 rule for sequence indices `q`, `k` in [0, S) stored in `layout`:
/// video-video by the mask, anything else iff the key is a valid (non-padding) token.
bool mask_allows(const Geometry& g, const Mask& mask, Layout layout, int64_t q, int64_t k);

/// mask_allows() for one query and every key, with the query's per-axis key intervals found
/// once (the double reference asks for all S^2 pairs: this makes a pair three compares).
/// mask_allows() itself is written with it, so the two cannot differ.
class QueryMask {
 public:
  QueryMask(const Geometry& g, const Mask& mask, Layout layout, int64_t q);
  /// mask_allows(g, mask, layout, q, k); `kc` is token_coord(g, layout, k) when k is a video
  /// token (it is not read otherwise).
  bool allows(int64_t k, const TokenCoord& kc) const {
    if (k >= valid_keys_) return false;  // padded text keys are never attended
    if (text_query_ || k >= video_) return true;
    return interval_contains(axis_[0], len_[0], kc.t) && interval_contains(axis_[1], len_[1], kc.y) &&
           interval_contains(axis_[2], len_[2], kc.x);
  }

 private:
  int64_t video_, valid_keys_;
  bool text_query_;
  AxisInterval axis_[3];
  int64_t len_[3];
};

/// One mask per head: `masks` holds either one mask for all heads or exactly `heads` masks.
/// Throws sta::Error naming `arg` otherwise.
void validate_head_masks(const std::vector<Mask>& masks, int64_t heads, const Geometry& g,
                         const std::string& arg = "--mask");
inline const Mask& mask_for_head(const std::vector<Mask>& masks, int64_t head) {
  return masks.size() == 1 ? masks[0] : masks[static_cast<size_t>(head)];
}

}  // namespace sta
