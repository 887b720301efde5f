#include "sta/theory.hpp"

#include <algorithm>

#include "sta/error.hpp"

namespace sta {

namespace {

int64_t ipow(int64_t b, int e) {
  int64_t r = 1;
  for (int i = 0; i < e; ++i) r *= b;
  return r;
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

void check_dims(int dims) {
  if (dims != 2 && dims != 3) throw Error("dims: " + std::to_string(dims) + ", expected 2 or 3");
}

// A cube canvas of `canvas` tokens per axis (dims = 2: one frame) cut into cube tiles.
Geometry cube(int64_t canvas, int64_t tile, int dims) {
  Geometry g;
  g.canvas = {dims == 3 ? canvas : 1, canvas, canvas};
  g.tile = {dims == 3 ? tile : 1, tile, tile};
  return g;
}

Extent3 cube_window(int64_t w, int dims) { return {dims == 3 ? w : 1, w, w}; }

}  // namespace

BlockCounts theorem31_per_query_tile(int64_t tile, int64_t window, int dims) {
  check_dims(dims);
  const int64_t dense_side = std::max<int64_t>(2 * floor_div(window + 1, 2 * tile) - 1, 0);
  const int64_t touched_side = 2 * ceil_div(window - 1, 2 * tile) + 1;
  const int64_t dense = ipow(dense_side, dims);
  return {dense, ipow(touched_side, dims) - dense, 0};
}

BlockCounts theorem31(int64_t canvas, int64_t tile, int64_t window, int dims) {
  const BlockCounts per = theorem31_per_query_tile(tile, window, dims);
  const int64_t query_tiles = ipow(canvas / tile, dims);
  BlockCounts c{per.dense * query_tiles, per.mixed * query_tiles, 0};
  c.empty = query_tiles * query_tiles - c.dense - c.mixed;
  return c;
}

BlockCounts theorem32(int64_t num_tiles, int64_t window_tiles, int dims) {
  check_dims(dims);
  const int64_t query_tiles = ipow(num_tiles, dims);
  const int64_t dense = ipow(window_tiles, dims) * query_tiles;
  return {dense, 0, query_tiles * query_tiles - dense};
}

TheoremCheck check_theorem31(int64_t canvas, int64_t tile, int64_t window,
                             const std::string& mode, int dims) {
  check_dims(dims);
  TheoremCheck r;
  r.theorem = "3.1";
  r.mode = mode;
  r.canvas = canvas;
  r.tile = tile;
  r.window = window;
  const Geometry g = cube(canvas, tile, dims);
  const int64_t n = canvas / tile;
  const bool odd_fits = window % 2 == 1 && window <= canvas;
  if (mode == "torus") {
    r.query_tiles = ipow(n, dims);
    r.measured = classify_blocks(g, Mask::swa_torus(cube_window(window, dims))).counts;
    r.predicted = theorem31(canvas, tile, window, dims);
    // Exact unless the torus window wraps onto tiles it already touches.
    r.exact_claim = odd_fits && 2 * ceil_div(window - 1, 2 * tile) + 1 <= n;
  } else if (mode == "clamped") {
    r.query_tiles = ipow(n, dims);
    r.measured = classify_blocks(g, Mask::swa(cube_window(window, dims))).counts;
    r.predicted = theorem31(canvas, tile, window, dims);
    r.exact_claim = false;  // borders shift the window: reported, not claimed
  } else if (mode == "interior") {
    // Query tiles whose every token has an unclamped window on every axis.
    const Mask mask = Mask::swa(cube_window(window, dims));
    int64_t dense = 1, nonempty = 1, interior = 1;
    for (int a = 3 - dims; a < 3; ++a) {
      const auto cls = axis_block_classes(g, mask, a);
      int64_t d = 0, ne = 0, in = 0;
      for (int64_t qt = 0; qt < n; ++qt) {
        const int64_t first = qt * tile - window / 2, last = (qt + 1) * tile - 1 - window / 2;
        if (window > canvas || first < 0 || last + window > canvas) continue;
        ++in;
        for (int64_t kt = 0; kt < n; ++kt) {
          d += cls[qt * n + kt] == BlockClass::kDense;
          ne += cls[qt * n + kt] != BlockClass::kEmpty;
        }
      }
      dense *= d;
      nonempty *= ne;
      interior *= in;
    }
    r.query_tiles = interior;
    r.measured = {dense, nonempty - dense, interior * ipow(n, dims) - nonempty};
    const BlockCounts per = theorem31_per_query_tile(tile, window, dims);
    r.predicted = {per.dense * interior, per.mixed * interior, 0};
    r.predicted.empty = interior * ipow(n, dims) - r.predicted.dense - r.predicted.mixed;
    r.exact_claim = odd_fits;
  } else {
    throw Error("mode: '" + mode + "', expected 'torus', 'interior' or 'clamped'");
  }
  return r;
}

TheoremCheck check_theorem32(int64_t num_tiles, int64_t tile, int64_t window_tiles, int dims) {
  TheoremCheck r;
  r.theorem = "3.2";
  r.mode = "sta";
  r.canvas = num_tiles * tile;
  r.tile = tile;
  r.window = window_tiles;
  r.query_tiles = ipow(num_tiles, dims);
  const Geometry g = cube(r.canvas, tile, dims);
  r.measured = classify_blocks(g, Mask::sta(cube_window(window_tiles, dims))).counts;
  r.predicted = theorem32(num_tiles, window_tiles, dims);
  r.exact_claim = window_tiles % 2 == 1 && window_tiles <= num_tiles;
  return r;
}

std::vector<TheoremCheck> check_theorems() {
  std::vector<TheoremCheck> rows;
  // The paper's Table 1 configuration and the floor counterexample of SPEC section 5 first.
  rows.push_back(check_theorem31(48, 4, 11, "torus"));
  rows.push_back(check_theorem31(8, 2, 3, "torus"));
  for (int dims : {3, 2})
    for (int64_t tile : {1, 2, 3, 4, 6, 8})
      for (int64_t n = 1; n <= 12; ++n) {
        const int64_t canvas = n * tile;
        for (int64_t w = 1; w <= canvas; w += 2)
          for (const char* mode : {"torus", "interior", "clamped"})
            rows.push_back(check_theorem31(canvas, tile, w, mode, dims));
        for (int64_t k = 1; k <= n + 2; ++k) rows.push_back(check_theorem32(n, tile, k, dims));
      }
  return rows;
}

}  // namespace sta
