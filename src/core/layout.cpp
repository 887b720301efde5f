#include "sta/layout.hpp"

#include <algorithm>
#include <cstring>

#include "sta/error.hpp"

namespace sta {

std::string to_string(Layout layout) { return layout == Layout::kTiled ? "tiled" : "raster"; }

Layout parse_layout(const std::string& text, const std::string& arg) {
  if (text == "tiled") return Layout::kTiled;
  if (text == "raster") return Layout::kRaster;
  throw Error(arg + ": '" + text + "', expected 'tiled' or 'raster'");
}

TokenCoord token_coord(const Geometry& g, Layout layout, int64_t s) {
  if (layout == Layout::kRaster) {
    const int64_t x = s % g.canvas.w;
    const int64_t y = (s / g.canvas.w) % g.canvas.h;
    return {s / (g.canvas.w * g.canvas.h), y, x};
  }
  // Invert Geometry::tile_offset axis by axis: a band of frame tiles holds tile.t whole
  // frames (fewer in the last, ragged one), a row band inside it len_t * tile.h whole rows.
  const Extent3 c = g.canvas;
  const int64_t tt = s / (g.tile.t * c.h * c.w);
  s -= tt * g.tile.t * c.h * c.w;
  const int64_t lt = g.tile_len(0, tt);
  const int64_t ty = s / (lt * g.tile.h * c.w);
  s -= ty * lt * g.tile.h * c.w;
  const int64_t lh = g.tile_len(1, ty);
  const int64_t tx = s / (lt * lh * g.tile.w);
  s -= tx * lt * lh * g.tile.w;
  const int64_t lw = g.tile_len(2, tx);
  const int64_t ix = s % lw, iy = (s / lw) % lh, it = s / (lw * lh);
  return {tt * g.tile.t + it, ty * g.tile.h + iy, tx * g.tile.w + ix};
}

namespace {

// Copies rows between raster and tiled order; `to_tiled` picks the direction. Rows of one
// tile's inner x-run are contiguous in both orders, so copy them tile.w rows at a time (fewer
// in the last, ragged tile of a row).
void permute(const Geometry& g, const float* src, float* dst, int64_t batch_heads, int64_t row,
             bool to_tiled) {
  const int64_t seq = g.seq_len();
  for (int64_t bh = 0; bh < batch_heads; ++bh) {
    const float* s = src + bh * seq * row;
    float* d = dst + bh * seq * row;
    for (int64_t t = 0; t < g.canvas.t; ++t)
      for (int64_t y = 0; y < g.canvas.h; ++y)
        for (int64_t x = 0; x < g.canvas.w; x += g.tile.w) {
          const int64_t r = raster_index(g.canvas, t, y, x) * row;
          const int64_t k = tiled_index(g, t, y, x) * row;
          const int64_t run = std::min(g.tile.w, g.canvas.w - x) * row;
          if (to_tiled)
            std::memcpy(d + k, s + r, sizeof(float) * run);
          else
            std::memcpy(d + r, s + k, sizeof(float) * run);
        }
    const int64_t v = g.video_tokens() * row;
    std::memcpy(d + v, s + v, sizeof(float) * (seq * row - v));
  }
}

}  // namespace

void tile(const Geometry& g, const float* src, float* dst, int64_t batch_heads, int64_t row) {
  permute(g, src, dst, batch_heads, row, true);
}

void untile(const Geometry& g, const float* src, float* dst, int64_t batch_heads, int64_t row) {
  permute(g, src, dst, batch_heads, row, false);
}

}  // namespace sta
