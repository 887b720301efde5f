// Theorems 3.1 and 3.2 (SPEC section 5) against the classifier.
#include <gtest/gtest.h>

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

TEST(Theorem31, ClampedDeviatesAtBorders) {
  // With real clamping windows shift inwards: the formula is not exact, and the check says so.
  const TheoremCheck c = check_theorem31(48, 4, 11, "clamped");
  EXPECT_FALSE(c.exact_claim);
  EXPECT_FALSE(c.matches());
  EXPECT_EQ(c.measured.total(), c.predicted.total());
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
