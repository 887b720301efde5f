#include "sta/layout.hpp"

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
  const Extent3 n = g.tiles();
  const int64_t tile_id = s / g.tile_tokens();
  const int64_t inner = s % g.tile_tokens();
  const int64_t tx = tile_id % n.w, ty = (tile_id / n.w) % n.h, tt = tile_id / (n.w * n.h);
  const int64_t ix = inner % g.tile.w, iy = (inner / g.tile.w) % g.tile.h,
                it = inner / (g.tile.w * g.tile.h);
  return {tt * g.tile.t + it, ty * g.tile.h + iy, tx * g.tile.w + ix};
}

namespace {

// Copies rows between raster and tiled order; `to_tiled` picks the direction. Rows of one
// tile's inner x-run are contiguous in both orders, so copy them tile.w rows at a time.
void permute(const Geometry& g, const float* src, float* dst, int64_t batch_heads, int64_t row,
             bool to_tiled) {
  const int64_t seq = g.seq_len();
  const int64_t run = g.tile.w * row;
  for (int64_t bh = 0; bh < batch_heads; ++bh) {
    const float* s = src + bh * seq * row;
    float* d = dst + bh * seq * row;
    for (int64_t t = 0; t < g.canvas.t; ++t)
      for (int64_t y = 0; y < g.canvas.h; ++y)
        for (int64_t x = 0; x < g.canvas.w; x += g.tile.w) {
          const int64_t r = raster_index(g.canvas, t, y, x) * row;
          const int64_t k = tiled_index(g, t, y, x) * row;
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
