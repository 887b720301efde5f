// The library held to the independent mask oracle (tests/oracle.hpp, SPEC 1, 2, 4 written
// out): mask_allows pair by pair, the reference and every fast backend (out, lse, block
// counters), and the classifier, on random problems built to reach the edges where STA
// lives: 1 to 8 tiles per axis, windows from 1 to past the axis (odd and even), ragged and
// raster, text below its padding, batches, per-head windows. Each test counts the cases whose
// window the border clamp moves and holds that count to a floor, so that a change to the
// generator cannot quietly stop testing the clamp.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attention_harness.hpp"
#include "oracle.hpp"
#include "sta/attention.hpp"
#include "sta/blocks.hpp"
#include "sta/mask.hpp"
#include "sta/reference.hpp"

namespace sta {
namespace {

/// One OpenMP thread while in scope. These tests check semantics on hundreds of tiny
/// problems, where two threads mostly wait at barriers (8.6 s instead of 1.3 s on a loaded
/// 2-core machine); thread-count determinism has its own tests (SameBitsForOneAndTwoThreads).
struct OneThread {
  int saved = omp_get_max_threads();
  OneThread() { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(saved); }
};

int64_t pick(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

/// Tiles on one axis: 1 and 8 (the extremes) a fifth of the time each, else 2..7.
int64_t pick_tiles(std::mt19937_64& rng) {
  const int64_t r = pick(rng, 0, 4);
  return r == 0 ? 1 : r == 1 ? 8 : pick(rng, 2, 7);
}

/// A random canvas of 1..8 tiles of 1..3 tokens per axis, 2D a quarter of the time, ragged
/// (last tile shorter) a third of the time, at most `max_tokens` video tokens: tiles shrink
/// first, so that 8-tile axes survive the cap.
Geometry edge_geometry(std::mt19937_64& rng, int64_t max_tokens) {
  Geometry g;
  g.ragged = pick(rng, 0, 2) == 0;
  const bool two_d = pick(rng, 0, 3) == 0;
  int64_t n[3], last[3];
  for (int a = 0; a < 3; ++a) {
    const bool flat = two_d && a == 0;
    n[a] = flat ? 1 : pick_tiles(rng);
    g.tile[a] = flat ? 1 : pick(rng, 1, 3);
    last[a] = g.ragged ? pick(rng, 1, g.tile[a]) : g.tile[a];
  }
  auto canvas = [&](int a) { return (n[a] - 1) * g.tile[a] + last[a]; };
  while (canvas(0) * canvas(1) * canvas(2) > max_tokens) {
    int a = 0;  // the longest axis gives way: a shorter tile if it can, else one tile fewer
    for (int b = 1; b < 3; ++b)
      if (canvas(b) > canvas(a)) a = b;
    if (g.tile[a] > 1) {
      g.tile[a] -= 1;
      last[a] = std::min(last[a], g.tile[a]);
    } else {
      n[a] -= 1;
    }
  }
  for (int a = 0; a < 3; ++a) g.canvas[a] = canvas(a);
  if (pick(rng, 0, 1) == 0) {  // text, usually shorter than its padding
    g.text_pad = pick(rng, 1, 6);
    g.text_length = pick(rng, 0, 2) == 0 ? g.text_pad : pick(rng, 0, g.text_pad - 1);
  }
  return g;
}

/// A window on every axis from 1 to two past the axis (tiles for sta, tokens otherwise).
/// `sta_only` keeps to the kinds the sta backend runs (sta, full).
Mask edge_mask(std::mt19937_64& rng, const Geometry& g, bool sta_only) {
  const int64_t r = pick(rng, 0, 9);
  const MaskKind kind = sta_only ? (r < 8 ? MaskKind::kSta : MaskKind::kFull)
                        : r < 3  ? MaskKind::kSta
                        : r < 7  ? MaskKind::kSwa
                        : r < 9  ? MaskKind::kSwaTorus
                                 : MaskKind::kFull;
  Mask m{kind, {1, 1, 1}};
  for (int a = 0; a < 3; ++a) {
    const int64_t axis = kind == MaskKind::kSta ? oracle::tiles_on_axis(g.canvas[a], g.tile[a])
                                                : g.canvas[a];
    m.window[a] = pick(rng, 1, axis + 2);
  }
  return m;
}

/// One random attention problem: 1..2 batches, 1..3 heads with one mask or one per head,
/// tiled or raster (a third), D in {8, 16, 32}.
struct Case {
  Geometry g;
  std::vector<Mask> masks;
  Layout layout = Layout::kTiled;
  int64_t batch = 1, heads = 1, dim = 8;
};
Case edge_case(uint64_t seed, int64_t max_tokens) {
  std::mt19937_64 rng(seed);
  Case c;
  c.g = edge_geometry(rng, max_tokens);
  c.batch = pick(rng, 1, 2);
  c.heads = pick(rng, 1, 3);
  c.dim = int64_t{8} << pick(rng, 0, 2);
  c.layout = pick(rng, 0, 2) == 0 ? Layout::kRaster : Layout::kTiled;
  const bool sta_only = pick(rng, 0, 1) == 0;  // half the cases also run the sta backend
  const int64_t count = c.heads > 1 && pick(rng, 0, 1) == 0 ? c.heads : 1;
  for (int64_t h = 0; h < count; ++h) c.masks.push_back(edge_mask(rng, c.g, sta_only));
  return c;
}

/// What a set of cases reached; each field a number of cases.
struct Coverage {
  int cases = 0, sta_clamped = 0, swa_shifted = 0, one_tile_axis = 0, eight_tile_axis = 0,
      ragged = 0, raster = 0, text_below_pad = 0, batched = 0, per_head = 0;

  void add(const Case& c) {
    ++cases;
    bool clamped = false, shifted = false, one = false, eight = false, ragged_axis = false;
    for (int a = 0; a < 3; ++a) {
      const int64_t n = oracle::tiles_on_axis(c.g.canvas[a], c.g.tile[a]);
      one |= n == 1 && !(a == 0 && c.g.canvas.t == 1 && c.g.tile.t == 1);
      eight |= n == 8;
      ragged_axis |= c.g.canvas[a] % c.g.tile[a] != 0;
      for (const Mask& m : c.masks) {
        clamped |= m.kind == MaskKind::kSta && oracle::sta_clamp_moves_a_window(m.window[a], n);
        shifted |= m.kind == MaskKind::kSwa && oracle::swa_shift_moves_a_window(m.window[a], c.g.canvas[a]);
      }
    }
    sta_clamped += clamped;
    swa_shifted += shifted;
    one_tile_axis += one;
    eight_tile_axis += eight;
    ragged += ragged_axis;
    raster += c.layout == Layout::kRaster;
    text_below_pad += c.g.text_length < c.g.text_pad;
    batched += c.batch > 1;
    per_head += c.masks.size() > 1;
  }

  /// Prints the counts and fails when one falls below `floor` percent of the cases (the
  /// STA clamp below `clamp_floor` percent).
  void expect_at_least(const std::string& test, int floor, int clamp_floor) const {
    std::cout << test << ": " << cases << " cases; sta window moved by the clamp " << sta_clamped
              << ", swa window shifted " << swa_shifted << ", 1-tile axis " << one_tile_axis
              << ", 8-tile axis " << eight_tile_axis << ", ragged " << ragged << ", raster "
              << raster << ", text below padding " << text_below_pad << ", B>1 " << batched
              << ", per-head windows " << per_head << "\n";
    EXPECT_GE(100 * sta_clamped, clamp_floor * cases) << "STA clamp cases shrank";
    for (int field : {swa_shifted, one_tile_axis, eight_tile_axis, ragged, raster,
                      text_below_pad, batched, per_head})
      EXPECT_GE(100 * field, floor * cases) << "a kind of edge case shrank (see the counts above)";
  }
};

std::string describe(uint64_t seed, const Case& c) {
  std::string s = "seed " + std::to_string(seed) + ": B=" + std::to_string(c.batch) +
                  " H=" + std::to_string(c.heads) + " video " + to_string(c.g.canvas) +
                  " tile " + to_string(c.g.tile) + (c.g.ragged ? " ragged" : "") + " text " +
                  std::to_string(c.g.text_length) + "/" + std::to_string(c.g.text_pad) + " " +
                  to_string(c.layout) + " masks";
  for (const Mask& m : c.masks) s += " " + to_string(m);
  return s;
}

TEST(OracleSelf, HandWorkedWindowsFromTheSpec) {
  // sta, n = 10 tiles, K = 6 (even: K+1 = 7 tiles): tile 0 sees 0..6, tile 9 sees 3..9,
  // tile 5 sees 2..8 (centred).
  auto sta_tiles = [](int64_t k, int64_t n, int64_t qt) {
    std::vector<int64_t> seen;
    for (int64_t kt = 0; kt < n; ++kt)
      if (oracle::axis_allows(MaskKind::kSta, k, n, 1, qt, kt)) seen.push_back(kt);
    return seen;
  };
  EXPECT_EQ(sta_tiles(6, 10, 0), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(sta_tiles(6, 10, 9), (std::vector<int64_t>{3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(sta_tiles(6, 10, 5), (std::vector<int64_t>{2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(sta_tiles(3, 5, 0), (std::vector<int64_t>{0, 1, 2}));  // odd K: exactly K tiles
  EXPECT_EQ(sta_tiles(9, 3, 1), (std::vector<int64_t>{0, 1, 2}));  // wider than the axis
  // swa, W = 3 on 4 tokens: token 0 sees 0..2, token 3 sees 1..3 (shifted, not cropped);
  // W = 4 (even, NATTEN: left 2, right 1) on 9 tokens: token 4 sees 2..5.
  EXPECT_TRUE(oracle::axis_allows(MaskKind::kSwa, 3, 4, 1, 0, 2));
  EXPECT_FALSE(oracle::axis_allows(MaskKind::kSwa, 3, 4, 1, 3, 0));
  EXPECT_TRUE(oracle::axis_allows(MaskKind::kSwa, 4, 9, 1, 4, 2));
  EXPECT_FALSE(oracle::axis_allows(MaskKind::kSwa, 4, 9, 1, 4, 6));
  EXPECT_FALSE(oracle::axis_allows(MaskKind::kSwa, 4, 9, 1, 4, 1));
  // swa-torus wraps: W = 3 on 5 tokens, token 0 sees 4, 0, 1.
  EXPECT_TRUE(oracle::axis_allows(MaskKind::kSwaTorus, 3, 5, 1, 0, 4));
  EXPECT_FALSE(oracle::axis_allows(MaskKind::kSwaTorus, 3, 5, 1, 0, 2));
  // Text (SPEC 4): 2 video tokens, 2 of 3 text slots real; a padded key is never attended.
  Geometry g;
  g.canvas = {1, 1, 2};
  g.tile = {1, 1, 1};
  g.text_length = 2;
  g.text_pad = 3;
  const oracle::MaskOracle m(g, Mask::sta({1, 1, 1}), Layout::kTiled);
  EXPECT_FALSE(m.allows(0, 1));  // sta:1 -- the other video tile is out of the window
  EXPECT_TRUE(m.allows(0, 3));   // video query, real text key
  EXPECT_FALSE(m.allows(0, 4));  // padded key
  EXPECT_TRUE(m.allows(4, 1));   // a padded text query sees every valid key
  EXPECT_FALSE(m.allows(4, 4));
}

TEST(OracleSelf, TiledPositionsAreAPermutationTileByTile) {
  // Ragged 5 x 3 canvas, tiles 2 x 2: tiles (0,0) (0,1) (1,0) (1,1) (2,0) (2,1) of sizes
  // 4, 2, 4, 2, 2, 1 tokens, each row-major inside.
  Geometry g;
  g.canvas = {1, 5, 3};
  g.tile = {1, 2, 2};
  g.ragged = true;
  const std::vector<oracle::Pos> p = oracle::video_positions(g, Layout::kTiled);
  const int64_t want[15][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 2}, {1, 2}, {2, 0}, {2, 1},
                               {3, 0}, {3, 1}, {2, 2}, {3, 2}, {4, 0}, {4, 1}, {4, 2}};
  ASSERT_EQ(p.size(), 15u);
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(p[i].c[1], want[i][0]) << i;
    EXPECT_EQ(p[i].c[2], want[i][1]) << i;
  }
}

TEST(Oracle, MaskAllowsEqualsTheOracleOnEveryPair) {
  const OneThread one_thread;
  Coverage cov;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const Case c = edge_case(seed, 160);
    cov.add(c);
    SCOPED_TRACE(describe(seed, c));
    for (const Mask& m : c.masks) {
      const oracle::MaskOracle want(c.g, m, c.layout);
      const int64_t S = want.seq_len();
      int64_t wrong = 0, first_q = -1, first_k = -1;
      for (int64_t q = 0; q < S; ++q)
        for (int64_t k = 0; k < S; ++k)
          if (mask_allows(c.g, m, c.layout, q, k) != want.allows(q, k) && wrong++ == 0) {
            first_q = q;
            first_k = k;
          }
      EXPECT_EQ(wrong, 0) << to_string(m) << ": first at query " << first_q << ", key "
                          << first_k << " (oracle says " << want.allows(first_q, first_k) << ")";
    }
  }
  cov.expect_at_least("MaskAllowsEqualsTheOracleOnEveryPair", 10, 30);
}

// Max abs difference of two double arrays; infinities must match exactly.
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    const double e = std::fabs(a[i] - b[i]);
    if (!(e <= worst)) worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
  }
  return worst;
}

/// Block counters one backend must report for a problem: the oracle's pair-by-pair count per
/// head (every block dense for the dense backend), times the batch.
BlockCounts oracle_counts(const Case& c, Backend backend) {
  BlockCounts total;
  for (int64_t h = 0; h < c.heads; ++h) {
    const Mask m = backend == Backend::kDense ? Mask::full() : mask_for_head(c.masks, h);
    const BlockCounts one = oracle::tile_block_counts(c.g, m);
    total += BlockCounts{one.dense * c.batch, one.mixed * c.batch, one.empty * c.batch};
  }
  return total;
}

TEST(Oracle, EveryBackendMatchesOracleAttention) {
  const OneThread one_thread;
  Coverage cov;
  for (uint64_t seed = 1001; seed <= 1150; ++seed) {
    const Case c = edge_case(seed, 120);
    cov.add(c);
    SCOPED_TRACE(describe(seed, c));
    const testing::Problem p =
        testing::make_problem(c.g, c.masks, c.batch, c.heads, c.dim, c.layout, seed);
    const oracle::Attention want =
        oracle::attention(p.shape, c.g, c.masks, c.layout, p.options.effective_scale(c.dim),
                          p.q.data(), p.k.data(), p.v.data());
    // The double reference itself, then every backend through the frontend.
    std::vector<double> ref_out(want.out.size()), ref_lse(want.lse.size());
    reference_attention(p.shape, p.options, p.q.data(), p.k.data(), p.v.data(), ref_out.data(),
                        ref_lse.data());
    EXPECT_LT(max_abs_diff(ref_out, want.out), 1e-12);
    EXPECT_LT(max_abs_diff(ref_lse, want.lse), 1e-12);
    std::vector<Backend> backends = {Backend::kReference, Backend::kNatten};
    if (testing::sta_compatible(c.masks)) backends.push_back(Backend::kSta);
    if (testing::all_full(c.masks)) backends.push_back(Backend::kDense);
    for (Backend b : backends) {
      SCOPED_TRACE("backend " + to_string(b));
      const testing::Result got = testing::run(p, b);
      EXPECT_LT(testing::max_abs_error(got.out, want.out), 1e-5);
      EXPECT_LT(testing::max_abs_error(got.lse, want.lse), 1e-5);
      const BlockCounts counts = oracle_counts(c, b);
      EXPECT_TRUE(got.stats.counts == counts)
          << "counters dense/mixed/empty " << got.stats.counts.dense << "/"
          << got.stats.counts.mixed << "/" << got.stats.counts.empty << ", oracle "
          << counts.dense << "/" << counts.mixed << "/" << counts.empty;
    }
  }
  cov.expect_at_least("EveryBackendMatchesOracleAttention", 10, 30);
}

TEST(Oracle, ClassifierMatchesOracleBlockCounts) {
  const OneThread one_thread;
  Coverage cov;
  for (uint64_t seed = 2001; seed <= 2250; ++seed) {
    const Case c = edge_case(seed, 160);
    cov.add(c);
    std::mt19937_64 rng(seed);
    const Mask& m = c.masks[0];
    SCOPED_TRACE(describe(seed, c));
    const BlockCounts tiled = oracle::tile_block_counts(c.g, m);
    EXPECT_TRUE(classify_blocks(c.g, m).counts == tiled)
        << "tiled, oracle " << tiled.dense << "/" << tiled.mixed << "/" << tiled.empty;
    const int64_t bq = pick(rng, 1, 20), bk = pick(rng, 1, 20);
    const BlockCounts raster = oracle::raster_block_counts(c.g, m, bq, bk);
    EXPECT_TRUE(classify_blocks(c.g, m, {Layout::kRaster, bq, bk}).counts == raster)
        << "raster blocks " << bq << "," << bk << ", oracle " << raster.dense << "/"
        << raster.mixed << "/" << raster.empty;
  }
  cov.expect_at_least("ClassifierMatchesOracleBlockCounts", 10, 30);
}

}  // namespace
}  // namespace sta
