// Hostile inputs and edge numerics: the option parsers under random mutation, NaN / Inf /
// huge logits in every backend, and determinism across runs and between library and CLI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cli_runner.hpp"
#include "sta/attention.hpp"
#include "sta/error.hpp"
#include "sta/npy.hpp"
#include "sta/reference.hpp"

namespace sta {
namespace {

std::string mutate(std::mt19937_64& rng, std::string s) {
  static const std::string kAlphabet = "0123456789,:-+x sta swa full torus\x01\xff.e";
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 4) {
      case 0: if (!s.empty() && pos < s.size()) s.erase(pos, 1); break;
      case 1: s.insert(pos, 1, kAlphabet[rng() % kAlphabet.size()]); break;
      case 2: if (pos < s.size()) s[pos] = static_cast<char>(rng() & 0xff); break;
      default: s = s.substr(0, pos); break;
    }
  }
  return s;
}

TEST(ParserFuzz, MutatedOptionValuesParseOrThrowError) {
  const uint64_t seed = 71;
  std::mt19937_64 rng(seed);
  const std::vector<std::string> seeds = {"sta:3,3,3", "swa:19,25,25", "swa-torus:3,5,7", "full",
                                          "30,48,80", "6,8", "tiled", "raster", "natten", "bf16"};
  int parsed = 0, rejected = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::string s = mutate(rng, seeds[rng() % seeds.size()]);
    try {
      switch (i % 5) {
        case 0: parse_mask(s); break;
        case 1: parse_extent3(s, "--video"); break;
        case 2: parse_layout(s, "--layout"); break;
        case 3: parse_backend(s); break;
        default: parse_rounding(s); break;
      }
      ++parsed;
    } catch (const Error& e) {
      ASSERT_GT(std::strlen(e.what()), 0u);
      ++rejected;
    }
  }
  std::printf("parser fuzz (seed %llu): %d parsed, %d rejected with sta::Error, 0 crashes\n",
              static_cast<unsigned long long>(seed), parsed, rejected);
  EXPECT_GT(rejected, 50000);
  EXPECT_GT(parsed, 1000);
}

TEST(ParserFuzz, RandomCommandLinesParseOrThrowError) {
  std::mt19937_64 rng(72);
  const std::vector<std::string> names = {"--video", "--tile", "--mask", "--text-length",
                                          "--text-pad", "--layout", "--json", "--bogus"};
  const std::vector<std::string> values = {"30,48,80", "6,8,8", "sta:3,3,3", "256", "-1", "0",
                                           "tiled", "99999999999999999999", "swa:1,1,1", ""};
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::string> tokens;
    const int n = static_cast<int>(rng() % 7);
    for (int t = 0; t < n; ++t) {
      tokens.push_back(rng() % 2 ? names[rng() % names.size()] : mutate(rng, values[rng() % values.size()]));
    }
    std::vector<char*> argv;
    for (auto& t : tokens) argv.push_back(t.data());
    try {
      cli::Args args(static_cast<int>(argv.size()), argv.data(), {"--json"});
      args.check_known(cli::common_option_names());
      const cli::CommonOptions c = cli::parse_common(args);
      EXPECT_NO_THROW(c.geometry.validate());
      ++ok;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(ok, 100);
}

struct Small {
  AttentionShape shape;
  AttentionOptions opt;
  std::vector<float> q, k, v;
  explicit Small(std::vector<Mask> masks, uint64_t seed = 5) {
    opt.geometry.canvas = {4, 8, 8};
    opt.geometry.tile = {2, 4, 4};
    opt.geometry.text_pad = 4;
    opt.geometry.text_length = 3;
    opt.masks = std::move(masks);
    shape = {1, 1, opt.geometry.seq_len(), 16};
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> n(0, 1);
    for (auto* t : {&q, &k, &v}) {
      t->resize(static_cast<size_t>(shape.elements()));
      for (auto& x : *t) x = n(rng);
    }
  }
  void run(Backend b, std::vector<float>* out, std::vector<float>* lse) const {
    out->assign(static_cast<size_t>(shape.elements()), 0);
    lse->assign(static_cast<size_t>(shape.seq), 0);
    attention(shape, opt, q.data(), k.data(), v.data(), out->data(), lse->data(), b);
  }
};

TEST(EdgeNumerics, NanKeyPoisonsExactlyTheRowsThatAttendIt) {
  // STA 1,1,1: video queries of tile 0 attend tile 0 (+ text); others do not see key 0.
  for (Backend b : {Backend::kReference, Backend::kSta, Backend::kNatten}) {
    Small p({Mask::sta({1, 1, 1})});
    p.k[0] = std::nanf("");  // key 0 lies in tile 0
    std::vector<float> out, lse;
    p.run(b, &out, &lse);
    const int64_t tv = p.opt.geometry.tile_tokens(), V = p.opt.geometry.video_tokens();
    for (int64_t i = 0; i < p.shape.seq; ++i) {
      const bool sees_key0 = i < tv || i >= V;  // tile 0, or a text query
      EXPECT_EQ(std::isnan(out[i * 16]), sees_key0) << to_string(b) << " row " << i;
      EXPECT_EQ(std::isnan(lse[i]), sees_key0) << to_string(b) << " row " << i;
    }
  }
}

TEST(EdgeNumerics, HugeLogitsStayFiniteAndMatchTheReference) {
  // Scaled scores 9984 +- 15: exp without the max subtraction overflows, and the row max
  // moves between key blocks by O(1), so every flash rescale factor matters. q and k are
  // small integers (plus one large column), so every score is an integer below 2^24, exact in
  // float32 in any summation order and after the exact scale 1/4: the only rounding left is
  // in exp and the sums, as for ordinary inputs, and SPEC 6's fp32 tolerance 1e-5 applies.
  const uint64_t seed = 17;
  for (Backend b : {Backend::kReference, Backend::kSta, Backend::kNatten, Backend::kDense}) {
    Small p({b == Backend::kDense ? Mask::full() : Mask::sta({1, 2, 1})});
    const int64_t dim = p.shape.dim;
    std::mt19937_64 rng(seed);
    for (int64_t i = 0; i < p.shape.seq; ++i)
      for (int64_t d = 0; d < dim; ++d) {
        p.q[i * dim + d] = d == 0 ? 128.0f : static_cast<float>(static_cast<int>(rng() % 5) - 2);
        p.k[i * dim + d] = d == 0 ? 312.0f : static_cast<float>(static_cast<int>(rng() % 5) - 2);
      }
    ASSERT_EQ(p.opt.effective_scale(dim), 0.25);  // D = 16: the exact scale the comment needs
    std::vector<float> out, lse;
    p.run(b, &out, &lse);
    std::vector<double> want(out.size()), want_lse(lse.size());
    reference_attention(p.shape, p.opt, p.q.data(), p.k.data(), p.v.data(), want.data(),
                        want_lse.data());
    double out_err = 0.0;
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i])) << to_string(b) << " out " << i << " seed " << seed;
      out_err = std::max(out_err, std::fabs(out[i] - want[i]));
    }
    EXPECT_LT(out_err, 1e-5) << to_string(b) << " seed " << seed;
    for (size_t i = 0; i < lse.size(); ++i) {
      ASSERT_TRUE(std::isfinite(lse[i])) << to_string(b) << " lse " << i << " seed " << seed;
      ASSERT_GT(want_lse[i], 9000.0);  // the logits really are huge
      // lse ~ 1e4 is stored in float32: a few ulps of its magnitude (2^-24 relative each).
      EXPECT_NEAR(lse[i], want_lse[i], 4 * 0x1p-24 * std::fabs(want_lse[i]))
          << to_string(b) << " row " << i << " seed " << seed;
    }
  }
}

TEST(EdgeNumerics, InfiniteValueReachesOnlyAttendingRows) {
  for (Backend b : {Backend::kReference, Backend::kSta}) {
    Small p({Mask::sta({1, 1, 1})});
    const int64_t last_tile_key = p.opt.geometry.video_tokens() - 1;
    p.v[last_tile_key * 16] = INFINITY;
    std::vector<float> out, lse;
    p.run(b, &out, &lse);
    EXPECT_TRUE(std::isfinite(out[0])) << to_string(b);  // tile 0 does not see the last tile
    EXPECT_FALSE(std::isfinite(out[last_tile_key * 16])) << to_string(b);
  }
}

TEST(Determinism, SameBitsAcrossRuns) {
  Small p({Mask::sta({1, 2, 2})}, 9);
  std::vector<float> a, la, b, lb;
  for (Backend be : {Backend::kSta, Backend::kNatten, Backend::kDense, Backend::kReference}) {
    if (be == Backend::kDense) p.opt.masks = {Mask::full()};
    p.run(be, &a, &la);
    p.run(be, &b, &lb);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << to_string(be);
    EXPECT_EQ(0, std::memcmp(la.data(), lb.data(), la.size() * 4)) << to_string(be);
  }
}

TEST(Determinism, HeadByHeadEqualsOneCallBitForBit) {
  Small p({Mask::sta({1, 2, 1}), Mask::swa({3, 5, 5})}, 12);
  p.shape.heads = 2;
  p.shape.batch = 2;
  for (auto* t : {&p.q, &p.k, &p.v}) {
    const std::vector<float> one = *t;
    for (int r = 0; r < 3; ++r) t->insert(t->end(), one.rbegin(), one.rend());
  }
  for (Backend b : {Backend::kNatten, Backend::kReference}) {
    std::vector<float> o1(p.q.size()), l1(static_cast<size_t>(4 * p.shape.seq)), o2 = o1, l2 = l1;
    const AttentionStats s1 = attention(p.shape, p.opt, p.q.data(), p.k.data(), p.v.data(),
                                        o1.data(), l1.data(), b);
    int64_t calls = 0;
    const AttentionStats s2 = attention_by_head(p.shape, p.opt, p.q.data(), p.k.data(), p.v.data(),
                                                o2.data(), l2.data(), b,
                                                [&](int64_t, int64_t) { ++calls; });
    EXPECT_EQ(calls, 4);
    EXPECT_TRUE(s1.counts == s2.counts) << to_string(b);
    EXPECT_EQ(0, std::memcmp(o1.data(), o2.data(), o1.size() * 4)) << to_string(b);
    EXPECT_EQ(0, std::memcmp(l1.data(), l2.data(), l1.size() * 4)) << to_string(b);
  }
}

TEST(Determinism, CliOutputEqualsLibraryCallBitForBit) {
  Small p({Mask::sta({1, 2, 1}), Mask::swa({3, 5, 5})}, 11);
  p.shape.heads = 2;
  for (auto* t : {&p.q, &p.k, &p.v}) {
    const std::vector<float> one = *t;
    t->insert(t->end(), one.rbegin(), one.rend());
  }
  const std::string dir = ::testing::TempDir() + "sta_det_" + std::to_string(::getpid());
  std::system(("mkdir -p '" + dir + "'").c_str());
  const std::vector<int64_t> shape = {1, 2, p.shape.seq, 16};
  write_npy(dir + "/q.npy", p.q.data(), shape, true, "q");
  write_npy(dir + "/k.npy", p.k.data(), shape, true, "k");
  write_npy(dir + "/v.npy", p.v.data(), shape, true, "v");
  std::vector<float> out, lse;
  out.resize(p.q.size());
  lse.resize(static_cast<size_t>(2 * p.shape.seq));
  attention(p.shape, p.opt, p.q.data(), p.k.data(), p.v.data(), out.data(), lse.data(),
            Backend::kNatten);
  {
    const auto r = testing::run_cli(
        "run --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --video 4,8,8 " +
        "--tile 2,4,4 --text-pad 4 --text-length 3 --mask sta:1,2,1 --mask swa:3,5,5 " +
        "--backend natten --force --progress --out " + dir + "/out.npy");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("natten: head 2/2"), std::string::npos) << r.output;
  }
  for (const char* threads : {"1", "2"}) {
    const auto r = testing::run_cli(
        "run --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --video 4,8,8 " +
        "--tile 2,4,4 --text-pad 4 --text-length 3 --mask sta:1,2,1 --mask swa:3,5,5 " +
        "--backend natten --force --threads " + threads + " --out " + dir + "/out.npy --lse " +
        dir + "/lse.npy");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const NpyArray cli_out = read_npy(dir + "/out.npy", "out"), cli_lse = read_npy(dir + "/lse.npy", "lse");
    EXPECT_EQ(0, std::memcmp(cli_out.data.data(), out.data(), out.size() * 4)) << threads;
    EXPECT_EQ(0, std::memcmp(cli_lse.data.data(), lse.data(), lse.size() * 4)) << threads;
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace sta

namespace sta {
namespace {

TEST(Memory, StaRunPeakRssStaysBelowTwiceInputsAndOutputs) {
  // sta run on a Hunyuan-like slice (2x6x10 tiles + 256 text, D=128): the process's own
  // peak RSS (getrusage, reported in the stats JSON) must stay below 2x (q+k+v+out+lse).
  Geometry g;
  g.canvas = {12, 48, 80};
  g.text_pad = 256;
  g.text_length = 226;
  const int64_t S = g.seq_len(), D = 128;
  const std::string dir = ::testing::TempDir() + "sta_mem_" + std::to_string(::getpid());
  std::system(("mkdir -p '" + dir + "'").c_str());
  {
    std::vector<float> x(static_cast<size_t>(S * D));
    std::mt19937_64 rng(81);
    std::normal_distribution<float> n(0, 1);
    for (const char* name : {"q", "k", "v"}) {
      for (auto& e : x) e = n(rng);
      write_npy(dir + "/" + name + ".npy", x.data(), {1, 1, S, D}, true, name);
    }
  }
  const auto r = testing::run_cli("run --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir +
                                  "/v.npy --video 12,48,80 --text-pad 256 --text-length 226 " +
                                  "--mask sta:3,3,3 --backend sta --force --out " + dir +
                                  "/out.npy --lse " + dir + "/lse.npy --stats " + dir + "/st.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(dir + "/st.json");
  const std::string stats((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const long long peak = testing::json_int(stats, "peak_rss_bytes");
  const double io_bytes = 4.0 * (4 * S * D + S);
  std::printf("peak RSS %.1f MB for %.1f MB of inputs and outputs (ratio %.2f)\n", peak / 1e6,
              io_bytes / 1e6, peak / io_bytes);
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak, 2.0 * io_bytes);
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace sta
