// tile() / untile() are exact permutations; coordinates agree with the index formulas.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "sta/error.hpp"
#include "sta/layout.hpp"
#include "sta/mask.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

TEST(Layout, TileUntileRoundTripIsBitIdentical) {
  std::mt19937_64 rng(41);
  for (int i = 0; i < 50; ++i) {
    Geometry g = testing::random_geometry(rng);
    g.text_pad = static_cast<int64_t>(rng() % 5);
    const int64_t bh = 1 + static_cast<int64_t>(rng() % 3), row = 1 + static_cast<int64_t>(rng() % 5);
    std::vector<float> x(static_cast<size_t>(bh * g.seq_len() * row)), t(x.size()), back(x.size());
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto& e : x) e = u(rng);
    tile(g, x.data(), t.data(), bh, row);
    untile(g, t.data(), back.data(), bh, row);
    EXPECT_EQ(0, std::memcmp(x.data(), back.data(), x.size() * sizeof(float)));
  }
}

TEST(Layout, TileMovesRasterTokenToTiledIndex) {
  Geometry g;
  g.canvas = {4, 6, 8};
  g.tile = {2, 3, 4};
  g.text_pad = 3;
  const int64_t s = g.seq_len();
  std::vector<float> x(s), t(s);
  for (int64_t i = 0; i < s; ++i) x[i] = static_cast<float>(i);
  tile(g, x.data(), t.data(), 1, 1);
  std::set<int64_t> seen;
  for (int64_t ti = 0; ti < g.video_tokens(); ++ti) {
    const TokenCoord c = token_coord(g, Layout::kTiled, ti);
    EXPECT_EQ(tiled_index(g, c.t, c.y, c.x), ti);
    EXPECT_EQ(t[ti], static_cast<float>(raster_index(g.canvas, c.t, c.y, c.x)));
    seen.insert(static_cast<int64_t>(t[ti]));
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), g.video_tokens());
  for (int64_t i = g.video_tokens(); i < s; ++i) EXPECT_EQ(t[i], x[i]);  // text unpermuted
  // Tokens of tile 0 are the first tile_tokens() entries, inner order row-major (it, ih, iw).
  EXPECT_EQ(t[0], 0.0f);
  EXPECT_EQ(t[1], 1.0f);
  EXPECT_EQ(t[4], 8.0f);  // (0, 1, 0) in raster is 8
}

TEST(Shape, ParsesExtentsAndRejectsGarbage) {
  EXPECT_TRUE((parse_extent3("30,48,80", "--video") == Extent3{30, 48, 80}));
  EXPECT_TRUE((parse_extent3("48,80", "--video") == Extent3{1, 48, 80}));
  for (const char* bad : {"", "1,2,3,4", "a,b,c", "0,8,8", "-1,8,8", "1,,2", "99999999999999999999,1,1"}) {
    try {
      parse_extent3(bad, "--video");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--video"), std::string::npos) << e.what();
    }
  }
}

TEST(Shape, ValidateNamesTheAxis) {
  Geometry g;
  g.canvas = {30, 48, 81};
  try {
    g.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("W (width)"), std::string::npos) << e.what();
  }
  g.canvas = {30, 48, 80};
  g.text_pad = 256;
  g.text_length = 257;
  EXPECT_THROW(g.validate(), Error);
  g.text_length = 256;
  EXPECT_NO_THROW(g.validate());
}

TEST(Mask, ParsesEveryKindAndRejectsMalformed) {
  EXPECT_EQ(parse_mask("full").kind, MaskKind::kFull);
  EXPECT_TRUE((parse_mask("sta:3,3,3").window == Extent3{3, 3, 3}));
  EXPECT_EQ(parse_mask("swa:19,25,25").kind, MaskKind::kSwa);
  EXPECT_EQ(parse_mask("swa-torus:3,5,7").kind, MaskKind::kSwaTorus);
  EXPECT_TRUE((parse_mask("sta:6,6").window == Extent3{1, 6, 6}));
  EXPECT_EQ(to_string(parse_mask("swa:19,25,25")), "swa:19,25,25");
  for (const char* bad : {"", "sta", "sta:", "sta:0,1,1", "swa:1,2", "box:1,1,1", "sta:1,x,1", "full:1"}) {
    if (std::string(bad) == "swa:1,2") continue;  // 2D is valid
    EXPECT_THROW(parse_mask(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace sta
