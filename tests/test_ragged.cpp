// Ragged edge tiles (SPEC section 1's extension, Geometry::ragged): a canvas axis not divisible
// by the tile ends with a shorter tile. The layout against an explicit enumeration of the
// tiled order, the classifier against pair-by-pair brute force, STA still dense/empty only,
// every fast backend against the double reference, determinism, and the command line.
#include <gtest/gtest.h>
#include <omp.h>

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "kernels/flash.hpp"
#include "softmax.hpp"
#include "sta/attention.hpp"
#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/layout.hpp"
#include "sta/reference.hpp"
#include "attention_harness.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

std::string seed_trace(uint64_t seed, int i, const Geometry& g, const Mask& m) {
  return "seed " + std::to_string(seed) + " case " + std::to_string(i) + ": " +
         testing::describe(g, m) + (g.ragged ? " ragged" : "");
}

/// The tiled order spelled out: raster indices of the video tokens, tile by tile (tiles
/// row-major), row-major inside each tile clipped to the canvas.
std::vector<int64_t> enumerate_tiled_order(const Geometry& g) {
  std::vector<int64_t> order;
  const Extent3 c = g.canvas, tl = g.tile;
  for (int64_t t0 = 0; t0 < c.t; t0 += tl.t)
    for (int64_t y0 = 0; y0 < c.h; y0 += tl.h)
      for (int64_t x0 = 0; x0 < c.w; x0 += tl.w)
        for (int64_t t = t0; t < std::min(t0 + tl.t, c.t); ++t)
          for (int64_t y = y0; y < std::min(y0 + tl.h, c.h); ++y)
            for (int64_t x = x0; x < std::min(x0 + tl.w, c.w); ++x)
              order.push_back(raster_index(c, t, y, x));
  return order;
}

TEST(RaggedGeometry, NonDivisibleIsAnErrorNamingTheAxisUnlessRagged) {
  Geometry g;
  g.canvas = {30, 48, 81};
  try {
    g.validate();
    FAIL() << "expected sta::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("W (width)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--ragged"), std::string::npos) << msg;
  }
  g.ragged = true;
  EXPECT_NO_THROW(g.validate());
  EXPECT_EQ(g.tiles(), (Extent3{5, 6, 11}));
  EXPECT_EQ(g.tile_len(2, 9), 8);
  EXPECT_EQ(g.tile_len(2, 10), 1);
}

TEST(RaggedGeometry, TileOffsetsArePrefixSumsOfRealTileSizes) {
  const Geometry g = testing::geo({3, 5, 7}, {2, 2, 3}, 0, 0, /*ragged=*/true);
  ASSERT_EQ(g.tiles(), (Extent3{2, 3, 3}));
  int64_t offset = 0;
  for (int64_t id = 0; id < g.num_tiles(); ++id) {
    EXPECT_EQ(g.tile_offset(id), offset) << "tile " << id;
    offset += g.tile_size(id);
  }
  EXPECT_EQ(offset, g.video_tokens());
  // Hand-computed: the last tile is 1 x 1 x 1 (frame 2, row 4, column 6).
  EXPECT_EQ(g.tile_size(g.num_tiles() - 1), 1);
  EXPECT_EQ(g.tile_offset(g.num_tiles() - 1), g.video_tokens() - 1);
  // Without ragged edges the offset is tile_id * tile_tokens().
  const Geometry even = testing::geo({4, 6, 9}, {2, 2, 3});
  for (int64_t id = 0; id < even.num_tiles(); ++id)
    EXPECT_EQ(even.tile_offset(id), id * even.tile_tokens());
}

TEST(RaggedLayout, IndexFormulasMatchTheEnumeratedTiledOrder) {
  const uint64_t seed = 101;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200; ++i) {
    const Geometry g = testing::random_ragged_geometry(rng);
    SCOPED_TRACE(seed_trace(seed, i, g, Mask::full()));
    const std::vector<int64_t> order = enumerate_tiled_order(g);
    ASSERT_EQ(static_cast<int64_t>(order.size()), g.video_tokens());
    for (int64_t s = 0; s < g.video_tokens(); ++s) {
      const TokenCoord r = token_coord(g, Layout::kRaster, order[s]);
      const TokenCoord c = token_coord(g, Layout::kTiled, s);
      ASSERT_EQ(c.t, r.t);
      ASSERT_EQ(c.y, r.y);
      ASSERT_EQ(c.x, r.x);
      ASSERT_EQ(tiled_index(g, r.t, r.y, r.x), s);
    }
  }
}

TEST(RaggedLayout, TileUntileRoundTripIsExactWithText) {
  const uint64_t seed = 102;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 100; ++i) {
    Geometry g = testing::random_ragged_geometry(rng);
    g.text_pad = static_cast<int64_t>(rng() % 4);
    g.text_length = g.text_pad > 0 ? static_cast<int64_t>(rng() % (g.text_pad + 1)) : 0;
    SCOPED_TRACE(seed_trace(seed, i, g, Mask::full()));
    const int64_t row = 1 + static_cast<int64_t>(rng() % 3), bh = 2, seq = g.seq_len();
    std::vector<float> src(static_cast<size_t>(bh * seq * row)), tiled(src.size()), back(src.size());
    for (size_t j = 0; j < src.size(); ++j) src[j] = static_cast<float>(j) + 0.25f;
    tile(g, src.data(), tiled.data(), bh, row);
    const std::vector<int64_t> order = enumerate_tiled_order(g);
    for (int64_t b = 0; b < bh; ++b)
      for (int64_t s = 0; s < seq; ++s) {
        const int64_t from = s < g.video_tokens() ? order[s] : s;  // text rows stay put
        for (int64_t d = 0; d < row; ++d)
          ASSERT_EQ(tiled[(b * seq + s) * row + d], src[(b * seq + from) * row + d]);
      }
    untile(g, tiled.data(), back.data(), bh, row);
    EXPECT_EQ(std::memcmp(src.data(), back.data(), src.size() * sizeof(float)), 0);
  }
}

// Pair-by-pair classification of (query tile, key tile) blocks from canvas coordinates only:
// tile ids and real tile sizes come from enumerating positions, not from the library.
BlockStats brute_force_tiled(const Geometry& g, const Mask& m) {
  const Extent3 c = g.canvas, tl = g.tile;
  const Extent3 n{(c.t + tl.t - 1) / tl.t, (c.h + tl.h - 1) / tl.h, (c.w + tl.w - 1) / tl.w};
  const int64_t tiles = n.volume(), v = g.video_tokens();
  std::vector<TokenCoord> pos;
  std::vector<int64_t> tile_of, size(static_cast<size_t>(tiles), 0);
  for (int64_t t = 0; t < c.t; ++t)
    for (int64_t y = 0; y < c.h; ++y)
      for (int64_t x = 0; x < c.w; ++x) {
        pos.push_back({t, y, x});
        tile_of.push_back(((t / tl.t) * n.h + y / tl.h) * n.w + x / tl.w);
        ++size[static_cast<size_t>(tile_of.back())];
      }
  std::vector<int64_t> allowed(static_cast<size_t>(tiles * tiles), 0);
  BlockStats st;
  for (int64_t q = 0; q < v; ++q)
    for (int64_t k = 0; k < v; ++k)
      if (video_mask_allows(g, m, pos[q], pos[k])) {
        ++allowed[tile_of[q] * tiles + tile_of[k]];
        ++st.allowed_pairs;
      }
  for (int64_t i = 0; i < tiles; ++i)
    for (int64_t j = 0; j < tiles; ++j) {
      const int64_t a = allowed[i * tiles + j];
      (a == 0 ? st.counts.empty : a == size[i] * size[j] ? st.counts.dense : st.counts.mixed) += 1;
    }
  st.total_pairs = v * v;
  return st;
}

TEST(RaggedClassifier, TiledMatchesBruteForceOnRandomRaggedShapes) {
  const uint64_t seed = 103;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    const Geometry g = testing::random_ragged_geometry(rng);
    const Mask m = testing::random_mask(rng, g);
    SCOPED_TRACE(seed_trace(seed, i, g, m));
    const BlockStats want = brute_force_tiled(g, m);
    std::vector<BlockClass> classes;
    const BlockStats got = classify_blocks(g, m, {}, &classes);
    EXPECT_EQ(got.counts, want.counts);
    EXPECT_EQ(got.allowed_pairs, want.allowed_pairs);
    EXPECT_EQ(got.total_pairs, want.total_pairs);
    // key_tile_visits (what the kernels iterate) agrees with the counts.
    BlockCounts visited;
    for (const auto& list : key_tile_visits(g, m)) {
      for (const KeyTileVisit& kv : list) (kv.dense ? visited.dense : visited.mixed) += 1;
      visited.empty += g.num_tiles() - static_cast<int64_t>(list.size());
    }
    EXPECT_EQ(visited, want.counts);
    EXPECT_EQ(static_cast<int64_t>(classes.size()), g.num_tiles() * g.num_tiles());
  }
}

TEST(RaggedClassifier, RasterMatchesBruteForceForAnyBlockSize) {
  const uint64_t seed = 104;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200; ++i) {
    const Geometry g = testing::random_ragged_geometry(rng);
    const Mask m = testing::random_mask(rng, g);
    const int64_t bq = 1 + static_cast<int64_t>(rng() % 40), bk = 1 + static_cast<int64_t>(rng() % 40);
    SCOPED_TRACE(seed_trace(seed, i, g, m) + " block " + std::to_string(bq) + "," + std::to_string(bk));
    const BlockStats got = classify_blocks(g, m, {Layout::kRaster, bq, bk});
    const BlockStats want = testing::brute_force_blocks(g, m, Layout::kRaster, bq, bk);
    EXPECT_EQ(got.counts, want.counts);
    EXPECT_EQ(got.allowed_pairs, want.allowed_pairs);
  }
}

TEST(RaggedSta, EveryBlockIsDenseOrEmpty) {
  const uint64_t seed = 105;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    const Geometry g = testing::random_ragged_geometry(rng, 6, 5);
    Extent3 w;
    for (int a = 0; a < 3; ++a) w[a] = 1 + static_cast<int64_t>(rng() % (g.tiles()[a] + 2));
    const Mask m = Mask::sta(w);
    SCOPED_TRACE(seed_trace(seed, i, g, m));
    const BlockStats st = classify_blocks(g, m);
    EXPECT_EQ(st.counts.mixed, 0);
    // Each query tile sees exactly the effective window's key tiles where it fits.
    const Extent3 eff = effective_sta_window(w, g.tiles());
    for (const auto& list : key_tile_visits(g, m)) EXPECT_EQ(static_cast<int64_t>(list.size()), eff.volume());
  }
}

// --- attention ---------------------------------------------------------------------------

using testing::check_all_backends;
using testing::make_problem;
using testing::Problem;
using testing::run;
using testing::Result;
using testing::max_abs_error;

TEST(RaggedAttention, BackendsMatchReferenceWithTextAndPerHeadWindows) {
  const uint64_t seed = 106;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 60; ++i) {
    Geometry g = testing::random_ragged_geometry(rng);
    if (rng() % 2) {
      g.text_pad = 1 + static_cast<int64_t>(rng() % 6);
      g.text_length = static_cast<int64_t>(rng() % (g.text_pad + 1));
    }
    const int64_t heads = 1 + static_cast<int64_t>(rng() % 3);
    std::vector<Mask> masks;
    const int64_t count = (heads > 1 && rng() % 2 == 0) ? heads : 1;
    const bool sta_only = rng() % 3 == 0;  // so that the sta backend runs often
    for (int64_t h = 0; h < count; ++h) {
      Mask m = testing::random_mask(rng, g);
      if (sta_only && m.kind != MaskKind::kFull) m.kind = MaskKind::kSta;
      masks.push_back(m);
    }
    const Layout layout = rng() % 2 ? Layout::kRaster : Layout::kTiled;
    const int64_t dim = 1 + static_cast<int64_t>(rng() % 24);
    SCOPED_TRACE("seed " + std::to_string(seed) + " case " + std::to_string(i));
    check_all_backends(make_problem(g, masks, 1 + static_cast<int64_t>(rng() % 2), heads, dim,
                                    layout, seed * 1000 + i));
  }
}

TEST(RaggedAttention, HunyuanLikeShapeMatchesReference) {
  // 30,45,80 with 6,8,8 tiles: the height axis ends with a 5-row tile.
  const Geometry g = testing::geo({7, 13, 10}, {3, 4, 4}, 5, 8, /*ragged=*/true);
  for (const Mask& m : {Mask::sta({1, 3, 3}), Mask::swa({3, 5, 5}), Mask::full()})
    check_all_backends(make_problem(g, {m}, 1, 2, 32, Layout::kTiled, 107));
}

TEST(RaggedAttention, TuningKnobsDoNotChangeTheResult) {
  // Row chunks that split the shorter edge tiles, and merged key runs across ragged tiles.
  const Geometry g = testing::geo({3, 9, 11}, {2, 4, 4}, 3, 4, /*ragged=*/true);
  for (const Mask& m : {Mask::sta({1, 1, 3}), Mask::swa({2, 5, 3})}) {
    const Problem p = make_problem(g, {m}, 1, 1, 16, Layout::kTiled, 108);
    std::vector<double> want_out(static_cast<size_t>(p.shape.elements()));
    std::vector<double> want_lse(static_cast<size_t>(p.shape.seq));
    reference_attention(p.shape, p.options, p.q.data(), p.k.data(), p.v.data(), want_out.data(),
                        want_lse.data());
    const auto mode = m.kind == MaskKind::kSta ? detail::FlashMode::kSta : detail::FlashMode::kNatten;
    for (detail::FlashConfig config : {detail::FlashConfig{5, 0}, detail::FlashConfig{7, 40},
                                       detail::FlashConfig{3, 1000}}) {
      SCOPED_TRACE(to_string(m) + " row_chunk " + std::to_string(config.row_chunk) +
                   " max_key_cols " + std::to_string(config.max_key_cols));
      std::vector<float> out(static_cast<size_t>(p.shape.elements()));
      std::vector<float> lse(static_cast<size_t>(p.shape.seq));
      const BlockCounts did = detail::flash_attention(
          p.shape, g, p.options.masks, static_cast<float>(p.options.effective_scale(p.shape.dim)),
          mode, p.q.data(), p.k.data(), p.v.data(), out.data(), lse.data(),
          simd::softmax_kernels(), config, nullptr);
      EXPECT_LT(max_abs_error(out, want_out), 1e-5);
      EXPECT_LT(max_abs_error(lse, want_lse), 1e-5);
      EXPECT_EQ(did, classify_blocks(g, m).counts);
    }
  }
}

TEST(RaggedAttention, SameBitsForOneAndTwoThreads) {
  const Geometry g = testing::geo({5, 9, 7}, {2, 4, 4}, 6, 9, /*ragged=*/true);
  testing::expect_same_bits_for_one_and_two_threads(g, 32, Layout::kRaster, 109);
}

// --- command line ------------------------------------------------------------------------

TEST(RaggedCli, CountsWorksWithRaggedAndNamesTheAxisWithout) {
  const auto r = testing::run_cli("counts --video 30,45,80 --ragged --mask sta:3,3,3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Geometry g;
  g.canvas = {30, 45, 80};
  g.ragged = true;
  const BlockStats s = classify_blocks(g, Mask::sta({3, 3, 3}));
  EXPECT_EQ(testing::json_int(r.output, "dense"), s.counts.dense);
  EXPECT_EQ(testing::json_int(r.output, "mixed"), 0);
  EXPECT_EQ(testing::json_int(r.output, "total"), g.num_tiles() * g.num_tiles());
  EXPECT_NE(r.output.find("\"ragged\": true"), std::string::npos) << r.output;

  const auto bad = testing::run_cli("counts --video 30,45,80 --mask sta:3,3,3 --json");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("H (height)"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("--ragged"), std::string::npos) << bad.output;
}

TEST(RaggedCli, GoldenRecordsRaggedAndRunReproducesIt) {
  char tmpl[] = "/tmp/sta_ragged_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string common =
      " --video 5,7,9 --tile 2,3,4 --ragged --text-pad 4 --text-length 2 --mask sta:3,1,3 --mask full";
  auto r = testing::run_cli("golden --dir '" + dir + "/g'" + common +
                            " --heads 2 --dim 8 --backend natten --seed 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_cli("verify '" + dir + "/g'");  // reads "ragged" back from the manifest
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string g = "'" + dir + "/g/";
  r = testing::run_cli("run --q " + g + "q.npy' --k " + g + "k.npy' --v " + g + "v.npy'" + common +
                       " --backend sta --out '" + dir + "/out.npy' --stats '" + dir + "/stats.json'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_cli("compare '" + dir + "/out.npy' " + g + "out.npy' --atol 1e-5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::ifstream stats(dir + "/stats.json");
  const std::string text((std::istreambuf_iterator<char>(stats)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"ragged\": true"), std::string::npos) << text;
  std::string cleanup = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

TEST(RaggedCli, VizDrawsRaggedCanvases) {
  char dir[] = "/tmp/sta_ragged_viz_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const auto r = testing::run_cli("viz blocks --video 1,9,9 --tile 1,4,4 --ragged --out " +
                                  std::string(dir) + "/b.svg");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::system(("rm -rf '" + std::string(dir) + "'").c_str()), 0);
}

}  // namespace
}  // namespace sta
