// The block classifier against a brute-force, pair-by-pair classification.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

using testing::brute_force_blocks;

TEST(Classifier, TiledMatchesBruteForceOnRandomShapes) {
  const uint64_t seed = 31;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    const Geometry g = testing::random_geometry(rng);
    const Mask m = testing::random_mask(rng, g);
    SCOPED_TRACE("seed " + std::to_string(seed) + " case " + std::to_string(i) + ": " +
                 testing::describe(g, m));
    const BlockStats got = classify_blocks(g, m);
    const BlockStats want = brute_force_blocks(g, m, Layout::kTiled, g.tile_tokens(), g.tile_tokens());
    EXPECT_EQ(got.counts.dense, want.counts.dense);
    EXPECT_EQ(got.counts.mixed, want.counts.mixed);
    EXPECT_EQ(got.counts.empty, want.counts.empty);
    EXPECT_EQ(got.allowed_pairs, want.allowed_pairs);
  }
}

TEST(Classifier, RasterMatchesBruteForceForAnyBlockSize) {
  const uint64_t seed = 32;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200; ++i) {
    const Geometry g = testing::random_geometry(rng);
    const Mask m = testing::random_mask(rng, g);
    const int64_t bq = 1 + static_cast<int64_t>(rng() % 40), bk = 1 + static_cast<int64_t>(rng() % 40);
    SCOPED_TRACE("seed " + std::to_string(seed) + " case " + std::to_string(i) + ": " +
                 testing::describe(g, m) + " block " + std::to_string(bq) + "," +
                 std::to_string(bk));
    const BlockStats got = classify_blocks(g, m, {Layout::kRaster, bq, bk});
    const BlockStats want = brute_force_blocks(g, m, Layout::kRaster, bq, bk);
    EXPECT_TRUE(got.counts == want.counts)
        << "got " << got.counts.dense << "/" << got.counts.mixed << "/" << got.counts.empty
        << " want " << want.counts.dense << "/" << want.counts.mixed << "/" << want.counts.empty;
    EXPECT_EQ(got.allowed_pairs, want.allowed_pairs);
  }
}

TEST(Classifier, KeyTileVisitsAgreeWithCounts) {
  std::mt19937_64 rng(33);
  for (int i = 0; i < 100; ++i) {
    const Geometry g = testing::random_geometry(rng);
    const Mask m = testing::random_mask(rng, g);
    SCOPED_TRACE(testing::describe(g, m));
    const auto visits = key_tile_visits(g, m);
    BlockCounts c;
    const int64_t tv = g.tile_tokens();
    for (size_t qt = 0; qt < visits.size(); ++qt) {
      int64_t prev = -1;
      for (const auto& kv : visits[qt]) {
        EXPECT_GT(kv.key_tile, prev);  // increasing key-tile order
        prev = kv.key_tile;
        (kv.dense ? c.dense : c.mixed) += 1;
        // Spot-check the class against the pair predicate at the block's corners.
        const int64_t q0 = static_cast<int64_t>(qt) * tv, k0 = kv.key_tile * tv;
        if (kv.dense) {
          EXPECT_TRUE(mask_allows(g, m, Layout::kTiled, q0, k0));
          EXPECT_TRUE(mask_allows(g, m, Layout::kTiled, q0 + tv - 1, k0 + tv - 1));
        }
      }
      c.empty += g.num_tiles() - static_cast<int64_t>(visits[qt].size());
    }
    EXPECT_TRUE(c == classify_blocks(g, m).counts);
  }
}

TEST(StaMask, EveryBlockIsDenseOrEmpty) {
  std::mt19937_64 rng(34);
  for (int i = 0; i < 300; ++i) {
    const Geometry g = testing::random_geometry(rng, 6, 4);
    Extent3 w;
    for (int a = 0; a < 3; ++a) w[a] = 1 + static_cast<int64_t>(rng() % (g.tiles()[a] + 3));
    SCOPED_TRACE(testing::describe(g, Mask::sta(w)));
    EXPECT_EQ(classify_blocks(g, Mask::sta(w)).counts.mixed, 0);
  }
}

TEST(StaMask, EvenWindowCoversOneMoreTileAndHugeWindowCoversAxis) {
  // FastVideo's centre clamp (SPEC 2): K=2 on 10 tiles acts as K=3; K >= n covers the axis.
  EXPECT_EQ(sta_key_tiles(2, 10, 5).count, 3);
  EXPECT_EQ(sta_key_tiles(3, 10, 0).first, 0);
  EXPECT_EQ(sta_key_tiles(3, 10, 9).first, 7);
  EXPECT_EQ(sta_key_tiles(4, 10, 0).count, 5);
  for (int64_t k = 5; k < 15; ++k)
    for (int64_t qt = 0; qt < 5; ++qt) {
      EXPECT_EQ(sta_key_tiles(k, 5, qt).first, 0);
      EXPECT_EQ(sta_key_tiles(k, 5, qt).count, 5);
    }
  EXPECT_TRUE((effective_sta_window({2, 3, 20}, {5, 6, 10}) == Extent3{3, 3, 10}));
}

TEST(SwaMask, WindowShiftsAtBordersAsNatten) {
  // L = 10, W = 4: left 2, right 1; x = 0 -> [0,4); x = 9 -> [6,10); x = 5 -> [3,7).
  EXPECT_EQ(allowed_keys_on_axis(MaskKind::kSwa, 4, 10, 1, 0).start, 0);
  EXPECT_EQ(allowed_keys_on_axis(MaskKind::kSwa, 4, 10, 1, 9).start, 6);
  EXPECT_EQ(allowed_keys_on_axis(MaskKind::kSwa, 4, 10, 1, 5).start, 3);
  EXPECT_EQ(allowed_keys_on_axis(MaskKind::kSwa, 4, 10, 1, 5).length, 4);
  EXPECT_EQ(allowed_keys_on_axis(MaskKind::kSwa, 11, 10, 1, 5).length, 10);
  // Torus: x = 0, W = 5 -> keys 8, 9, 0, 1, 2.
  const AxisInterval t = allowed_keys_on_axis(MaskKind::kSwaTorus, 5, 10, 1, 0);
  EXPECT_TRUE(interval_contains(t, 10, 8));
  EXPECT_TRUE(interval_contains(t, 10, 2));
  EXPECT_FALSE(interval_contains(t, 10, 3));
  EXPECT_FALSE(interval_contains(t, 10, 7));
}

TEST(Classifier, HunyuanCountsMatchPerAxisFormula) {
  // Independent check on the full Hunyuan shape: STA 3,3,3 on 5x6x10 tiles is 27 key tiles
  // for every query tile (odd K <= n): 300 * 27 dense, nothing mixed.
  const Geometry g;
  const BlockStats s = classify_blocks(g, Mask::sta({3, 3, 3}));
  EXPECT_EQ(s.counts.dense, 300 * 27);
  EXPECT_EQ(s.counts.mixed, 0);
  EXPECT_EQ(s.counts.empty, 300 * 300 - 300 * 27);
  EXPECT_NEAR(s.sparsity(), 1.0 - 27.0 / 300.0, 1e-12);
}

TEST(Classifier, RejectsBadBlocks) {
  const Geometry g;
  EXPECT_THROW(classify_blocks(g, Mask::full(), {Layout::kTiled, 128, 128}), Error);
  EXPECT_THROW(classify_blocks(g, Mask::full(), {Layout::kRaster, -1, 128}), Error);
  Geometry bad = g;
  bad.canvas.w = 81;
  EXPECT_THROW(classify_blocks(bad, Mask::full()), Error);
  EXPECT_THROW(classify_blocks(g, Mask::sta({0, 3, 3})), Error);
}

}  // namespace
}  // namespace sta
