// The per-element mask of mixed blocks (src/kernels/tile_mask.cpp), used by the forward's
// flash loop and the backward, against the test-side MaskOracle (tests/oracle.hpp: SPEC 2
// with its own index math): every entry of every (query tile, key tile) block, for row
// slices and column ranges as the backward's steps use them, on ragged canvases and with
// torus windows that leave a hole inside a key tile (the general path).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/tile_mask.hpp"
#include "oracle.hpp"
#include "sta/mask.hpp"
#include "sta/shape.hpp"

namespace sta {
namespace {

struct Case {
  Geometry g;
  Mask mask;
};

Geometry geometry(Extent3 canvas, Extent3 tile, bool ragged = false) {
  Geometry g;
  g.canvas = canvas;
  g.tile = tile;
  g.ragged = ragged;
  return g;
}

// Every video tile pair: entries the oracle allows keep their value, the others become
// `fill`; columns outside [c0, c1) and rows outside the slice are never touched.
void expect_matches_oracle(const Case& c, float fill, std::mt19937& rng) {
  const Geometry& g = c.g;
  const oracle::MaskOracle m(g, c.mask, Layout::kTiled);
  detail::TileMask tm(g);
  const float kept = std::numeric_limits<float>::infinity();  // an overflowed p is still zeroed
  const float outside = -7.0f;
  for (int64_t qt = 0; qt < g.num_tiles(); ++qt) {
    tm.set_query_tile(c.mask, qt);
    for (int64_t kt = 0; kt < g.num_tiles(); ++kt) {
      tm.set_key_tile(kt);
      const int64_t nq = g.tile_size(qt), nk = g.tile_size(kt);
      const int64_t row0 = std::uniform_int_distribution<int64_t>(0, nq - 1)(rng);
      const int64_t rows = std::uniform_int_distribution<int64_t>(1, nq - row0)(rng);
      const int64_t c0 = std::uniform_int_distribution<int64_t>(0, nk - 1)(rng);
      const bool open_end = rng() % 2 == 0;  // c1 past the tile, as the forward calls it
      const int64_t c1 = open_end ? std::numeric_limits<int64_t>::max()
                                  : std::uniform_int_distribution<int64_t>(c0 + 1, nk)(rng);
      const int64_t width = std::min(c1, nk) - c0, ld = width + 3;
      std::vector<float> s(static_cast<size_t>(rows * ld), outside);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < width; ++j) s[static_cast<size_t>(r * ld + j)] = kept;
      tm.apply(s.data(), ld, row0, rows, fill, c0, c1);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < ld; ++j) {
          const float got = s[static_cast<size_t>(r * ld + j)];
          if (j >= width) {
            ASSERT_EQ(got, outside) << "wrote past the columns, row " << r << " col " << j;
            continue;
          }
          const bool allowed = m.allows(g.tile_offset(qt) + row0 + r, g.tile_offset(kt) + c0 + j);
          ASSERT_EQ(got, allowed ? kept : fill)
              << to_string(c.mask) << " qt " << qt << " kt " << kt << " query offset " << row0 + r
              << " key offset " << c0 + j;
        }
      }
    }
  }
}

TEST(TileMask, EveryBlockMatchesTheOracle) {
  std::mt19937 rng(5);
  const std::vector<Case> cases = {
      {geometry({4, 8, 8}, {2, 4, 4}), Mask::swa({3, 5, 3})},
      {geometry({4, 8, 8}, {2, 4, 4}), Mask::sta({1, 1, 1})},
      {geometry({6, 8, 12}, {2, 4, 4}), Mask::swa({5, 7, 9})},
      {geometry({5, 7, 9}, {2, 4, 4}, true), Mask::swa({3, 3, 5})},  // ragged edge tiles
      {geometry({5, 7, 9}, {2, 4, 4}, true), Mask::sta({1, 3, 1})},
      {geometry({4, 8, 8}, {2, 4, 4}), Mask::swa_torus({3, 5, 5})},
      // Windows of L - 2 on a torus leave two keys out, inside a key tile for some queries:
      // a hole, so these blocks take the general (run by run) path.
      {geometry({2, 4, 16}, {1, 2, 8}), Mask::swa_torus({1, 3, 14})},
      {geometry({8, 4, 4}, {4, 2, 2}), Mask::swa_torus({6, 3, 3})},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(to_string(c.mask) + " on " + to_string(c.g.canvas));
    for (float fill : {-std::numeric_limits<float>::infinity(), 0.0f}) expect_matches_oracle(c, fill, rng);
  }
}

}  // namespace
}  // namespace sta
