// Theorems 3.1 and 3.2 (SPEC section 5) against the classifier.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>

#include "sta/theory.hpp"

namespace sta {
namespace {

TEST(Theorem31, PaperTable1Figures) {
  // T=4, W=11, L/T=12: 1 dense and 124 mixed of 1728 key tiles per query tile.
  const BlockCounts per = theorem31_per_query_tile(4, 11);
  EXPECT_EQ(per.dense, 1);
  EXPECT_EQ(per.mixed, 124);
  EXPECT_NEAR(100.0 * per.dense / 1728.0, 0.0579, 5e-5);
  EXPECT_NEAR(100.0 * per.mixed / 1728.0, 7.176, 5e-4);
  const TheoremCheck c = check_theorem31(48, 4, 11, "torus");
  EXPECT_TRUE(c.exact_claim);
  EXPECT_TRUE(c.matches());
  EXPECT_EQ(c.measured.dense, 1728);
  EXPECT_EQ(c.measured.mixed, 124 * 1728);
}

TEST(Theorem31, CeilNotFloorCounterexample) {
  // T=2, W=3 (SPEC 5): per axis a query tile touches 2*ceil(2/4)+1 = 3 key tiles, of which
  // only its own is dense, so 27 - 1 = 26 mixed blocks; a floor would give 1 - 1 = 0.
  const BlockCounts per = theorem31_per_query_tile(2, 3);
  EXPECT_EQ(per.dense, 1);
  EXPECT_EQ(per.mixed, 26);
  const TheoremCheck c = check_theorem31(16, 2, 3, "torus");
  EXPECT_TRUE(c.exact_claim);
  EXPECT_TRUE(c.matches()) << c.measured.mixed << " vs " << c.predicted.mixed;
  EXPECT_EQ(c.measured.mixed, 26 * c.query_tiles);
}

TEST(Theorem31, ExactOnTorusForSweep) {
  for (int dims : {2, 3})
    for (int64_t tile : {1, 2, 3, 4, 5})
      for (int64_t n = 1; n <= 9; ++n)
        for (int64_t w = 1; w <= n * tile; w += 2) {
          const TheoremCheck c = check_theorem31(n * tile, tile, w, "torus", dims);
          if (!c.exact_claim) continue;
          EXPECT_TRUE(c.matches()) << "dims " << dims << " L " << n * tile << " T " << tile
                                   << " W " << w;
        }
}

TEST(Theorem31, ExactOnInteriorTilesForSweep) {
  int checked_nonempty = 0;
  for (int64_t tile : {1, 2, 3, 4})
    for (int64_t n = 1; n <= 10; ++n)
      for (int64_t w = 1; w <= n * tile; w += 2) {
        const TheoremCheck c = check_theorem31(n * tile, tile, w, "interior");
        ASSERT_TRUE(c.exact_claim);
        EXPECT_TRUE(c.matches()) << "L " << n * tile << " T " << tile << " W " << w;
        checked_nonempty += c.query_tiles > 0;
      }
  EXPECT_GT(checked_nonempty, 100);  // the sweep really has interior tiles
}

// NATTEN's clamped window on one axis of `len` tokens (SPEC 2), written out here rather than
// taken from the library: query x sees [start, start + w).
int64_t swa_start(int64_t x, int64_t w, int64_t len) {
  return w >= len ? 0 : std::clamp<int64_t>(x - w / 2, 0, len - w);
}

// Dense / mixed / empty blocks of the clamped token-wise window `w` on a 3D cube canvas of
// `len` tokens and tiles of `tile` tokens per axis, by counting the allowed pairs of every
// (query tile, key tile) block: no formula, no classifier.
BlockCounts brute_force_clamped_swa(int64_t len, int64_t tile, int64_t w) {
  const int64_t n = len / tile, block = tile * tile * tile;
  auto sees = [&](int64_t q, int64_t k) {
    const int64_t s = swa_start(q, w, len);
    return k >= s && k < s + w;
  };
  BlockCounts c;
  for (int64_t qt = 0; qt < n * n * n; ++qt)
    for (int64_t kt = 0; kt < n * n * n; ++kt) {
      int64_t allowed = 0;
      for (int64_t i = 0; i < block; ++i)
        for (int64_t j = 0; j < block; ++j) {
          // Token coordinates: tile coordinate * tile + offset inside the tile, per axis.
          const int64_t q[3] = {qt / (n * n) * tile + i / (tile * tile),
                                qt / n % n * tile + i / tile % tile, qt % n * tile + i % tile};
          const int64_t k[3] = {kt / (n * n) * tile + j / (tile * tile),
                                kt / n % n * tile + j / tile % tile, kt % n * tile + j % tile};
          allowed += sees(q[0], k[0]) && sees(q[1], k[1]) && sees(q[2], k[2]);
        }
      (allowed == block * block ? c.dense : allowed == 0 ? c.empty : c.mixed) += 1;
    }
  return c;
}

TEST(Theorem31, ClampedDeviatesAtBorders) {
  // With real clamping windows shift inwards at the borders, so the formula is not exact: the
  // check measures what a brute-force count over token pairs gives, and that differs from the
  // prediction (by how much is what `sta theorems` reports).
  for (auto [len, tile, w] : {std::tuple<int64_t, int64_t, int64_t>{16, 4, 7}, {12, 2, 5}}) {
    SCOPED_TRACE("L " + std::to_string(len) + " T " + std::to_string(tile) + " W " + std::to_string(w));
    const TheoremCheck c = check_theorem31(len, tile, w, "clamped");
    const BlockCounts brute = brute_force_clamped_swa(len, tile, w);
    EXPECT_EQ(c.measured, brute);
    EXPECT_EQ(c.predicted, theorem31(len, tile, w));
    EXPECT_FALSE(brute == c.predicted);  // the deviation is real: an exact claim would fail
    EXPECT_FALSE(c.exact_claim);
    EXPECT_FALSE(c.failed());
  }
}

TEST(Theorem32, ExactForOddWindowsWithinCanvas) {
  for (int dims : {2, 3})
    for (int64_t n = 1; n <= 12; ++n)
      for (int64_t tile : {1, 2, 8})
        for (int64_t k = 1; k <= n; k += 2) {
          const TheoremCheck c = check_theorem32(n, tile, k, dims);
          EXPECT_TRUE(c.exact_claim);
          EXPECT_TRUE(c.matches()) << "n " << n << " T " << tile << " K " << k;
          EXPECT_EQ(c.measured.mixed, 0);
        }
}

TEST(Theorem32, EvenWindowActsAsNextOdd) {
  // SPEC 2: an even K covers K+1 tiles; so for K+1 <= n the counts are those of K+1.
  for (int64_t n = 3; n <= 10; ++n)
    for (int64_t k = 2; k + 1 <= n; k += 2) {
      const TheoremCheck c = check_theorem32(n, 2, k);
      EXPECT_EQ(c.measured.dense, theorem32(n, k + 1).dense);
    }
}

TEST(Theorems, FullSweepHasNoFailure) {
  const auto rows = check_theorems();
  int claims = 0;
  for (const auto& r : rows) {
    claims += r.exact_claim;
    EXPECT_FALSE(r.failed()) << r.theorem << " " << r.mode << " L " << r.canvas << " T "
                             << r.tile << " W " << r.window;
  }
  EXPECT_GT(claims, 1000);
}

}  // namespace
}  // namespace sta
