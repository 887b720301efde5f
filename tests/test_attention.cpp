// The fast backends (sta, natten, dense) against the double-precision oracle on many small
// random problems, their block counters against the classifier, determinism across thread
// counts, the input rounding helper and the frontend's validation.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/flash.hpp"
#include "softmax.hpp"
#include "sta/attention.hpp"
#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/reference.hpp"
#include "attention_harness.hpp"
#include "isa_param.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

using testing::check_all_backends;
using testing::make_problem;
using testing::Problem;
using testing::Result;
using testing::run;
using testing::oracle;
using testing::Oracle;
using testing::expected_counts;
using testing::max_abs_error;
using testing::describe;

/// A random mask that never wraps (the tiled-NATTEN and STA cases, plus the torus for natten).
std::vector<Mask> random_head_masks(std::mt19937_64& rng, const Geometry& g, int64_t heads) {
  const int64_t count = (heads > 1 && rng() % 2 == 0) ? heads : 1;
  std::vector<Mask> masks;
  for (int64_t h = 0; h < count; ++h) masks.push_back(testing::random_mask(rng, g));
  return masks;
}

TEST(Attention, BackendsMatchReferenceOnRandomProblems) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    Geometry g = testing::random_geometry(rng, 3, 4);
    testing::maybe_add_text(rng, g);
    const int64_t heads = 1 + static_cast<int64_t>(rng() % 3);
    const int64_t batch = 1 + static_cast<int64_t>(rng() % 2);
    const int64_t dims[] = {32, 64, 128};
    const int64_t dim = dims[rng() % 3];
    const Layout layout = rng() % 3 == 0 ? Layout::kRaster : Layout::kTiled;
    std::vector<Mask> masks = random_head_masks(rng, g, heads);
    check_all_backends(make_problem(g, masks, batch, heads, dim, layout, seed));
  }
}

TEST(Attention, StaBackendMatchesReferenceOnStaWindows) {
  // Odd, even and oversized windows in tiles, per-head windows, text with padding.
  Geometry g;
  g.canvas = {6, 8, 12};
  g.tile = {2, 2, 3};  // 3 x 4 x 4 tiles
  g.text_length = 5;
  g.text_pad = 8;
  const std::vector<Mask> masks = {Mask::sta({1, 1, 1}), Mask::sta({2, 3, 2}),
                                   Mask::sta({3, 9, 1}), Mask::full()};
  check_all_backends(make_problem(g, masks, 2, 4, 32, Layout::kTiled, 11));
  check_all_backends(make_problem(g, {Mask::sta({3, 3, 3})}, 1, 2, 64, Layout::kRaster, 12));
}

TEST(Attention, NattenBackendMatchesReferenceOnTokenWindows) {
  Geometry g;
  g.canvas = {4, 8, 8};
  g.tile = {2, 2, 2};  // small cube tiles: many mixed blocks
  check_all_backends(make_problem(g, {Mask::swa({3, 5, 4}), Mask::swa({9, 2, 7})}, 1, 2, 64,
                                  Layout::kTiled, 21));
  Geometry flat;
  flat.canvas = {1, 8, 12};
  flat.tile = {1, 4, 4};  // a 2D canvas, 1x4x4 tiles, text shorter than its padding
  flat.text_length = 3;
  flat.text_pad = 7;
  check_all_backends(make_problem(flat, {Mask::swa({1, 5, 6})}, 2, 1, 128, Layout::kRaster, 22));
  check_all_backends(make_problem(flat, {Mask::swa_torus({1, 3, 5})}, 1, 1, 32, Layout::kTiled, 23));
}

TEST(Attention, DenseBackendMatchesReferenceWithTextAndNoValidText) {
  Geometry g;
  g.canvas = {2, 4, 6};
  g.tile = {1, 2, 3};
  g.text_length = 0;  // text queries, but every text key is padding
  g.text_pad = 4;
  check_all_backends(make_problem(g, {Mask::full()}, 1, 2, 32, Layout::kTiled, 31));
}

TEST(Attention, ReferenceBackendReturnsTheOracleInFloat) {
  Geometry g;
  g.canvas = {2, 4, 4};
  g.tile = {1, 2, 2};
  g.text_length = 2;
  g.text_pad = 3;
  const Problem p = make_problem(g, {Mask::swa({1, 3, 3})}, 1, 1, 32, Layout::kRaster, 41);
  const Oracle want = oracle(p);
  const Result got = run(p, Backend::kReference);
  for (size_t i = 0; i < got.out.size(); ++i) ASSERT_EQ(got.out[i], static_cast<float>(want.out[i]));
  for (size_t i = 0; i < got.lse.size(); ++i) ASSERT_EQ(got.lse[i], static_cast<float>(want.lse[i]));
  EXPECT_EQ(got.stats.counts, expected_counts(p, Backend::kReference));
}

TEST(Attention, SameBitsForOneAndTwoThreads) {
  Geometry g;
  g.canvas = {4, 8, 8};
  g.tile = {2, 4, 4};
  g.text_length = 6;
  g.text_pad = 9;
  testing::expect_same_bits_for_one_and_two_threads(g, 64, Layout::kTiled, 51);
}

class AttentionEachIsa : public testing::EachIsa {};

TEST_P(AttentionEachIsa, MatchesReference) {
  Geometry g;
  g.canvas = {2, 6, 10};
  g.tile = {1, 3, 5};  // 15 keys per tile: exercises the vector tails
  g.text_length = 3;
  g.text_pad = 4;
  const Problem p = make_problem(g, {Mask::swa({1, 3, 7})}, 1, 1, 64, Layout::kTiled, 61);
  const Oracle want = oracle(p);
  std::vector<float> out(static_cast<size_t>(p.shape.elements()));
  std::vector<float> lse(static_cast<size_t>(p.shape.seq));
  detail::flash_attention(p.shape, g, p.options.masks,
                          static_cast<float>(p.options.effective_scale(p.shape.dim)),
                          detail::FlashMode::kNatten, p.q.data(), p.k.data(), p.v.data(),
                          out.data(), lse.data(), simd::softmax_kernels_for(isa()), {}, nullptr);
  EXPECT_LT(max_abs_error(out, want.out), 1e-5);
  EXPECT_LT(max_abs_error(lse, want.lse), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionEachIsa, ::testing::ValuesIn(testing::kAllIsas),
                         testing::isa_test_name);

TEST(Attention, ChosenIsaIsNamedAndSupported) {
  const std::string name = simd_isa();
  ASSERT_TRUE(name == "avx512" || name == "avx2" || name == "scalar") << name;
  for (simd::Isa isa : testing::kAllIsas) {
    if (name == simd::isa_name(isa)) {
      EXPECT_TRUE(simd::isa_supported(isa)) << name;
    }
  }
}

TEST(Attention, TuningKnobsDoNotChangeTheResult) {
  // Row chunks that do not divide the tile and merged key runs give the same answer.
  Geometry g;
  g.canvas = {3, 8, 16};
  g.tile = {1, 4, 4};
  g.text_length = 5;
  g.text_pad = 5;
  const Problem p = make_problem(g, {Mask::sta({1, 1, 3})}, 1, 1, 32, Layout::kTiled, 71);
  const Oracle want = oracle(p);
  for (detail::FlashConfig config : {detail::FlashConfig{5, 0}, detail::FlashConfig{16, 48},
                                     detail::FlashConfig{3, 1000}}) {
    SCOPED_TRACE("row_chunk " + std::to_string(config.row_chunk) + " max_key_cols " +
                 std::to_string(config.max_key_cols));
    std::vector<float> out(static_cast<size_t>(p.shape.elements()));
    std::vector<float> lse(static_cast<size_t>(p.shape.seq));
    const BlockCounts did = detail::flash_attention(
        p.shape, g, p.options.masks, static_cast<float>(p.options.effective_scale(p.shape.dim)),
        detail::FlashMode::kSta, p.q.data(), p.k.data(), p.v.data(), out.data(), lse.data(),
        simd::softmax_kernels(), config, nullptr);
    EXPECT_LT(max_abs_error(out, want.out), 1e-5);
    EXPECT_LT(max_abs_error(lse, want.lse), 1e-5);
    EXPECT_EQ(did, expected_counts(p, Backend::kSta));
  }
}

TEST(Attention, RoundedInputsMatchReferenceOnRoundedInputs) {
  Geometry g;
  g.canvas = {2, 4, 4};
  g.tile = {1, 2, 2};
  for (InputRounding r : {InputRounding::kBf16, InputRounding::kFp16}) {
    SCOPED_TRACE(to_string(r));
    Problem p = make_problem(g, {Mask::sta({1, 1, 1})}, 1, 1, 32, Layout::kTiled, 81);
    p.options.rounding = r;
    const Result got = run(p, Backend::kSta);
    Problem rounded = p;  // the oracle sees the rounded inputs
    rounded.options.rounding = InputRounding::kNone;
    for (auto* t : {&rounded.q, &rounded.k, &rounded.v}) round_inputs(t->data(), static_cast<int64_t>(t->size()), r);
    EXPECT_LT(max_abs_error(got.out, oracle(rounded).out), 1e-5);
  }
}

class OnlineSoftmaxEachIsa : public testing::EachIsa {};

TEST_P(OnlineSoftmaxEachIsa, FollowsTheFormula) {
  // Rows: ordinary scores, a row masked entirely, a row masked in part; 37 columns (tails).
  const int64_t rows = 3, cols = 37, ld = 40;
  std::vector<float> s(rows * ld, 0.0f);
  for (int64_t j = 0; j < cols; ++j) {
    s[j] = 0.25f * static_cast<float>(j % 11) - 1.0f;
    s[ld + j] = -kInf;
    s[2 * ld + j] = j % 3 == 0 ? -kInf : static_cast<float>(j) * 0.1f;
  }
  const std::vector<float> raw = s;
  std::vector<float> m = {0.5f, -kInf, -kInf}, l = {2.0f, 0.0f, 0.0f}, alpha(3);
  const float scale = 0.7f;
  simd::softmax_kernels_for(isa()).online_softmax(s.data(), ld, rows, cols, scale, m.data(),
                                                  l.data(), alpha.data());
  for (int64_t r = 0; r < rows; ++r) {
    double mx = -kInf;
    for (int64_t j = 0; j < cols; ++j) mx = std::max(mx, scale * static_cast<double>(raw[r * ld + j]));
    const double old_max = r == 0 ? 0.5 : -kInf;
    const double new_max = std::max(mx, old_max);
    if (std::isinf(new_max)) {
      EXPECT_EQ(m[r], -kInf);
      EXPECT_EQ(l[r], 0.0f);
      EXPECT_EQ(alpha[r], 1.0f);
      for (int64_t j = 0; j < cols; ++j) EXPECT_EQ(s[r * ld + j], 0.0f);
      continue;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      const double p = std::exp(scale * static_cast<double>(raw[r * ld + j]) - new_max);
      EXPECT_NEAR(s[r * ld + j], p, 1e-6 * std::max(1.0, p));
      sum += p;
    }
    const double a = std::exp(old_max - new_max);
    EXPECT_NEAR(m[r], new_max, 1e-6);
    EXPECT_NEAR(alpha[r], a, 1e-6);
    EXPECT_NEAR(l[r], (r == 0 ? 2.0 : 0.0) * a + sum, 1e-5);
  }
}

TEST_P(OnlineSoftmaxEachIsa, ExponentialIsAccurateOverItsWholeRange) {
  // p = exp(x) for x from -104 to 0 (past fp32's smallest normal at x = -87.3) against the
  // double formula: 1 ulp-level relative error where p is a normal float, at most the smallest
  // normal below (0 for a masked key), NaN for a NaN score (SPEC 6: it propagates).
  const int64_t cols = 1041;
  constexpr double kSmallestNormal = 1.1754943508222875e-38;
  std::vector<float> s(cols);
  for (int64_t j = 0; j < cols; ++j) s[j] = -0.1f * static_cast<float>(j);
  s[7] = std::numeric_limits<float>::quiet_NaN();
  s[8] = -kInf;
  const std::vector<float> raw = s;
  float m = 0.0f, l = 0.0f, alpha = 0.0f;
  simd::softmax_kernels_for(isa()).online_softmax(s.data(), cols, 1, cols, 1.0f, &m, &l, &alpha);
  EXPECT_TRUE(std::isnan(s[7]));
  EXPECT_TRUE(std::isnan(l));
  EXPECT_EQ(s[8], 0.0f);
  for (int64_t j = 0; j < cols; ++j) {
    if (j == 7) continue;
    const double exact = std::exp(static_cast<double>(raw[j]));
    if (exact >= kSmallestNormal) {
      EXPECT_NEAR(s[j], exact, 4e-7 * exact) << "x = " << raw[j];
    } else {
      EXPECT_LE(s[j], kSmallestNormal) << "x = " << raw[j];
      EXPECT_GE(s[j], 0.0f) << "x = " << raw[j];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, OnlineSoftmaxEachIsa, ::testing::ValuesIn(testing::kAllIsas),
                         testing::isa_test_name);

TEST(RoundInputs, Bf16HandComputed) {
  // bf16 keeps 7 mantissa bits: ties go to the even neighbour.
  std::vector<float> x = {1.0f,
                          1.0f + 0x1p-8f,        // tie between 1 and 1 + 2^-7 -> 1
                          1.0f + 3 * 0x1p-8f,    // tie between 1 + 2^-7 and 1 + 2^-6 -> even
                          1.0f + 0x1p-8f + 0x1p-20f,  // just above the tie -> up
                          -3.14159265f,          // 0x40490fdb -> 0x40490000 = -3.140625
                          0x1.fffffep127f,       // max float rounds up to infinity
                          -0.0f,
                          kInf};
  round_inputs(x.data(), static_cast<int64_t>(x.size()), InputRounding::kBf16);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_EQ(x[2], 1.0f + 0x1p-6f);
  EXPECT_EQ(x[3], 1.0f + 0x1p-7f);
  EXPECT_EQ(x[4], -3.140625f);
  EXPECT_EQ(x[5], kInf);
  EXPECT_EQ(x[6], 0.0f);
  EXPECT_TRUE(std::signbit(x[6]));
  EXPECT_EQ(x[7], kInf);
  float nan = std::nanf("");
  round_inputs(&nan, 1, InputRounding::kBf16);
  EXPECT_TRUE(std::isnan(nan));
}

TEST(RoundInputs, Fp16HandComputed) {
  // fp16 keeps 10 mantissa bits, max 65504, subnormals are multiples of 2^-24.
  std::vector<float> x = {1.0f + 0x1p-11f,      // tie -> 1
                          1.0f + 3 * 0x1p-11f,  // tie -> 1 + 2^-9 (even)
                          0.1f,                 // 0x3dcccccd -> fp16 0x2e66 = 0.0999755859375
                          65519.0f,             // below the halfway point -> 65504
                          65520.0f,             // halfway to 2^16 -> infinity
                          -70000.0f,
                          0x1p-25f,             // tie between 0 and 2^-24 -> 0
                          3 * 0x1p-25f,         // tie between 2^-24 and 2^-23 -> 2^-23
                          1e-8f,
                          0x1p-14f + 0x1p-25f,  // smallest normal plus less than half an ulp
                          -1.0f / 3.0f};        // -0x1.555p-2 = -0.333251953125
  round_inputs(x.data(), static_cast<int64_t>(x.size()), InputRounding::kFp16);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 1.0f + 0x1p-9f);
  EXPECT_EQ(x[2], 0.0999755859375f);
  EXPECT_EQ(x[3], 65504.0f);
  EXPECT_EQ(x[4], kInf);
  EXPECT_EQ(x[5], -kInf);
  EXPECT_EQ(x[6], 0.0f);
  EXPECT_EQ(x[7], 0x1p-23f);
  EXPECT_EQ(x[8], 0.0f);
  EXPECT_EQ(x[9], 0x1p-14f);
  EXPECT_EQ(x[10], -0.333251953125f);
}

TEST(RoundInputs, NoneLeavesDataAlone) {
  std::vector<float> x = {0.1f, -1e-30f, 3e38f};
  const std::vector<float> y = x;
  round_inputs(x.data(), 3, InputRounding::kNone);
  EXPECT_EQ(x, y);
}

void expect_error_naming(const AttentionShape& shape, const AttentionOptions& options,
                         Backend backend, const std::string& name) {
  try {
    validate_attention(shape, options, backend);
    ADD_FAILURE() << "no sta::Error; expected one naming " << name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

TEST(ValidateAttention, ThrowsNamingTheBadArgument) {
  AttentionOptions ok;
  ok.geometry.canvas = {2, 4, 4};
  ok.geometry.tile = {1, 2, 2};
  ok.geometry.text_length = 1;
  ok.geometry.text_pad = 2;
  const AttentionShape shape{1, 2, 34, 16};
  EXPECT_NO_THROW(validate_attention(shape, ok, Backend::kDense));

  expect_error_naming({1, 2, 33, 16}, ok, Backend::kSta, "seq");
  expect_error_naming({1, 2, 34, 0}, ok, Backend::kSta, "dim");
  expect_error_naming({0, 2, 34, 16}, ok, Backend::kSta, "batch");
  expect_error_naming({1, 0, 34, 16}, ok, Backend::kSta, "heads");

  AttentionOptions o = ok;
  o.masks = {Mask::full(), Mask::full(), Mask::full()};  // 3 masks for 2 heads
  expect_error_naming(shape, o, Backend::kNatten, "--mask");
  o.masks = {};
  expect_error_naming(shape, o, Backend::kNatten, "--mask");
  o.masks = {Mask::swa({1, 3, 3})};
  expect_error_naming(shape, o, Backend::kSta, "--mask");
  o.masks = {Mask::sta({1, 1, 1}), Mask::swa_torus({1, 3, 3})};
  expect_error_naming(shape, o, Backend::kSta, "--mask");
  o.masks = {Mask::sta({1, 1, 1})};
  expect_error_naming(shape, o, Backend::kDense, "--mask");
  o.masks = {Mask::sta({0, 1, 1})};
  expect_error_naming(shape, o, Backend::kNatten, "--mask");

  o = ok;
  o.geometry.tile = {1, 3, 2};  // 4 is not divisible by 3
  expect_error_naming({1, 2, 34, 16}, o, Backend::kNatten, "--video");
  o = ok;
  o.geometry.text_length = 3;  // more text than padding
  expect_error_naming(shape, o, Backend::kNatten, "--text-length");
  o = ok;
  o.scale = -1.0;
  expect_error_naming(shape, o, Backend::kNatten, "scale");
  o.scale = std::nan("");
  expect_error_naming(shape, o, Backend::kNatten, "scale");

  // attention() validates too, before touching the data.
  std::vector<float> buf(16);
  EXPECT_THROW(attention({1, 2, 33, 16}, ok, buf.data(), buf.data(), buf.data(), buf.data(),
                         buf.data(), Backend::kSta),
               Error);
}

TEST(ParseBackend, RoundTripsAndNamesTheArgument) {
  for (Backend b : {Backend::kReference, Backend::kNatten, Backend::kSta, Backend::kDense}) {
    EXPECT_EQ(parse_backend(to_string(b)), b);
  }
  for (InputRounding r : {InputRounding::kNone, InputRounding::kBf16, InputRounding::kFp16}) {
    EXPECT_EQ(parse_rounding(to_string(r)), r);
  }
  try {
    parse_backend("flash", "--backend");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--backend"), std::string::npos);
  }
  EXPECT_THROW(parse_rounding("fp8", "--round"), Error);
}

TEST(AttentionOptions, EffectiveScaleDefaultsToInverseSqrtDim) {
  AttentionOptions o;
  EXPECT_DOUBLE_EQ(o.effective_scale(64), 0.125);
  o.scale = 0.3;
  EXPECT_DOUBLE_EQ(o.effective_scale(64), 0.3);
}

TEST(InputRange, FastBackendsRefuseWhatFloat32CannotHoldNamingTheInput) {
  // A library caller gets the same float32 rule as `sta run` (it used to get inf/NaN from the
  // fast backends where the double reference has numbers).
  AttentionOptions o;
  o.geometry.canvas = {2, 4, 4};
  o.geometry.tile = {1, 2, 2};
  o.masks = {Mask::sta({1, 1, 1})};
  const AttentionShape shape{1, 1, o.geometry.seq_len(), 8};
  const size_t n = static_cast<size_t>(shape.elements());
  std::vector<float> q(n, 1.0f), k(n, 1.0f), v(n, 1.0f), out(n), lse(static_cast<size_t>(shape.seq));
  const float kInfinity = std::numeric_limits<float>::infinity();
  q[3] = 1e20f;
  k[5] = 1e19f;  // D*max|q|*max|k| = 8e39 > 1e37
  q[4] = kInfinity;  // non-finite values are SPEC 6's business, not the range rule's
  auto message = [&](Backend b, const AttentionOptions& opts) {
    try {
      attention(shape, opts, q.data(), k.data(), v.data(), out.data(), lse.data(), b);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  for (Backend b : {Backend::kSta, Backend::kNatten}) {
    const std::string m = message(b, o);
    EXPECT_NE(m.find("q/k: scores up to"), std::string::npos) << m;
    EXPECT_NE(m.find("below 1e37"), std::string::npos) << m;
  }
  // The double reference holds these numbers: it computes.
  EXPECT_EQ(message(Backend::kReference, o), "no error");
  // A caller that checked the range itself may skip the pass (and owns the consequences).
  AttentionOptions unchecked = o;
  unchecked.check_range = false;
  EXPECT_EQ(message(Backend::kSta, unchecked), "no error");

  // An explicit scale that overflows is blamed on the scale.
  q.assign(n, 1.0f);
  k.assign(n, 1.0f);
  AttentionOptions scaled = o;
  scaled.scale = 1e38;
  EXPECT_NE(message(Backend::kSta, scaled).find("scale: scaled scores"), std::string::npos);
  // fp16 rounding: a value that rounds to infinity is refused, naming its input.
  AttentionOptions fp16 = o;
  fp16.rounding = InputRounding::kFp16;
  v[7] = -70000.0f;
  EXPECT_NE(message(Backend::kSta, fp16).find("v: a value of magnitude 7e+04 does not fit float16"),
            std::string::npos)
      << message(Backend::kSta, fp16);
  // Names are the caller's: a program passes its option names.
  const InputRange r = input_range(shape, q.data(), k.data(), v.data());
  EXPECT_EQ(r.v, 70000.0);
  EXPECT_EQ(r.q, 1.0);
  try {
    check_input_range(shape, fp16, r, {"--q", "--k", "--v", "--scale"});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--v: ", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace sta
