#include "sta/mask.hpp"

#include <algorithm>

#include "sta/error.hpp"

namespace sta {

std::string to_string(const Mask& mask) {
  switch (mask.kind) {
    case MaskKind::kFull: return "full";
    case MaskKind::kSta: return "sta:" + to_string(mask.window);
    case MaskKind::kSwa: return "swa:" + to_string(mask.window);
    case MaskKind::kSwaTorus: return "swa-torus:" + to_string(mask.window);
  }
  return "?";
}

Mask parse_mask(const std::string& text, const std::string& arg) {
  const std::string expected =
      "expected 'full', 'sta:Kt,Kh,Kw' (tiles), 'swa:Wt,Wh,Ww' or 'swa-torus:Wt,Wh,Ww' (tokens)";
  if (text == "full") return Mask::full();
  const auto colon = text.find(':');
  if (colon == std::string::npos) throw Error(arg + ": '" + text + "' is malformed; " + expected);
  const std::string kind = text.substr(0, colon);
  const std::string rest = text.substr(colon + 1);
  Extent3 w;
  try {
    w = parse_extent3(rest, arg);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (in '" + text + "'; " + expected + ")");
  }
  if (kind == "sta") return Mask::sta(w);
  if (kind == "swa") return Mask::swa(w);
  if (kind == "swa-torus") return Mask::swa_torus(w);
  throw Error(arg + ": unknown mask kind '" + kind + "' in '" + text + "'; " + expected);
}

void validate_mask(const Mask& mask, const Geometry& g, const std::string& arg) {
  (void)g;
  if (mask.kind == MaskKind::kFull) return;
  for (int a = 0; a < 3; ++a)
    if (mask.window[a] < 1)
      throw Error(arg + ": window " + to_string(mask.window) + " has an entry < 1 in '" +
                  to_string(mask) + "'; expected positive window sizes");
}

TileRange sta_key_tiles(int64_t window_tiles, int64_t num_tiles, int64_t query_tile) {
  const int64_t half = window_tiles / 2;
  // torch.clamp(qt, min=half, max=n-1-half): the max wins when the bounds cross.
  const int64_t centre = std::min(std::max(query_tile, half), num_tiles - 1 - half);
  const int64_t first = std::max<int64_t>(centre - half, 0);
  const int64_t last = std::min<int64_t>(centre + half, num_tiles - 1);
  return {first, last - first + 1};
}

Extent3 effective_sta_window(const Extent3& window_tiles, const Extent3& num_tiles) {
  Extent3 e;
  for (int a = 0; a < 3; ++a)
    e[a] = std::min(2 * (window_tiles[a] / 2) + 1, num_tiles[a]);
  return e;
}

AxisInterval allowed_keys_on_axis(MaskKind kind, int64_t window, int64_t axis_len, int64_t tile,
                                  int64_t q) {
  switch (kind) {
    case MaskKind::kFull: return {0, axis_len};
    case MaskKind::kSta: {
      // ceil: a ragged axis ends with a shorter tile, whose keys end at the axis end.
      const TileRange r = sta_key_tiles(window, (axis_len + tile - 1) / tile, q / tile);
      const int64_t start = r.first * tile;
      return {start, std::min((r.first + r.count) * tile, axis_len) - start};
    }
    case MaskKind::kSwa: {
      if (window >= axis_len) return {0, axis_len};
      // NATTEN: left = W/2, right = W/2 + W%2 - 1; shifted (not cropped) at the borders.
      const int64_t start = std::min(std::max<int64_t>(q - window / 2, 0), axis_len - window);
      return {start, window};
    }
    case MaskKind::kSwaTorus: {
      if (window >= axis_len) return {0, axis_len};
      int64_t start = (q - window / 2) % axis_len;
      if (start < 0) start += axis_len;
      return {start, window};
    }
  }
  return {0, 0};
}

int64_t count_in_range(const AxisInterval& iv, int64_t axis_len, int64_t a, int64_t b) {
  auto overlap = [&](int64_t lo, int64_t hi) {
    return std::max<int64_t>(0, std::min(hi, b) - std::max(lo, a));
  };
  const int64_t end = iv.start + iv.length;
  if (end <= axis_len) return overlap(iv.start, end);
  return overlap(iv.start, axis_len) + overlap(0, end - axis_len);
}

bool video_mask_allows(const Geometry& g, const Mask& mask, const TokenCoord& q,
                       const TokenCoord& k) {
  const int64_t qc[3] = {q.t, q.y, q.x};
  const int64_t kc[3] = {k.t, k.y, k.x};
  for (int a = 0; a < 3; ++a) {
    const AxisInterval iv =
        allowed_keys_on_axis(mask.kind, mask.window[a], g.canvas[a], g.tile[a], qc[a]);
    if (!interval_contains(iv, g.canvas[a], kc[a])) return false;
  }
  return true;
}

QueryMask::QueryMask(const Geometry& g, const Mask& mask, Layout layout, int64_t q)
    : video_(g.video_tokens()), valid_keys_(g.valid_keys()), text_query_(q >= g.video_tokens()) {
  const TokenCoord qc = text_query_ ? TokenCoord{0, 0, 0} : token_coord(g, layout, q);
  const int64_t c[3] = {qc.t, qc.y, qc.x};
  for (int a = 0; a < 3; ++a) {
    len_[a] = g.canvas[a];
    axis_[a] = allowed_keys_on_axis(mask.kind, mask.window[a], g.canvas[a], g.tile[a], c[a]);
  }
}

bool mask_allows(const Geometry& g, const Mask& mask, Layout layout, int64_t q, int64_t k) {
  const bool video_key = k < g.video_tokens();
  return QueryMask(g, mask, layout, q).allows(k, video_key ? token_coord(g, layout, k) : TokenCoord{0, 0, 0});
}

void validate_head_masks(const std::vector<Mask>& masks, int64_t heads, const Geometry& g,
                         const std::string& arg) {
  if (masks.empty()) throw Error(arg + ": no mask given; expected one, or one per head");
  if (masks.size() != 1 && static_cast<int64_t>(masks.size()) != heads)
    throw Error(arg + ": " + std::to_string(masks.size()) + " masks given for " +
                std::to_string(heads) + " heads; expected 1 or " + std::to_string(heads));
  for (const Mask& m : masks) validate_mask(m, g, arg);
}

}  // namespace sta
