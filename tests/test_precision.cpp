// Every GEMM family inside the flash loop, in both precisions: fp32 against the double
// reference (1e-5); bf16 mode (SPEC 6) against an independent emulation of its semantics
// (1e-5) and against the double reference on the rounded inputs (the bf16 tolerance 2e-2);
// the same bits for 1 and 2 threads per family.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "attention_harness.hpp"
#include "kernels/flash.hpp"
#include "gemm.hpp"
#include "sta/backward.hpp"
#include "sta/error.hpp"
#include "sta/mask.hpp"

namespace sta {
namespace {

using testing::make_problem;
using testing::max_abs_error;
using testing::Oracle;
using testing::Problem;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kBf16Tolerance = 2e-2;  // SPEC 6

float to_bf16(float x) { return simd::bf16_to_float(simd::float_to_bf16(x)); }

/// The emulation's outputs, plus per output element the slack of p values that sit so close to
/// a bf16 rounding tie that an fp32 kernel (another exp, another summation order of s) may
/// round them the other way: |out - emulated| <= 1e-5 + slack is the honest criterion.
struct Emulated {
  Oracle o;
  std::vector<double> slack;  ///< [B, H, S, D]
};

/// SPEC 6's bf16 mode written out per query row, in the key order of the flash loop with one
/// key block per step (FlashConfig::max_key_cols = 1): video key tiles in ascending order,
/// then the valid text keys in chunks of 32. Per block: fp32-exact products of the rounded
/// inputs, the running max, p = exp(scale s - max) summed unrounded, then rounded to bf16
/// before it multiplies v. A key tile with no allowed key for the row changes nothing (its
/// block max is -inf), so visiting every tile equals visiting the non-empty ones.
Emulated emulate_bf16(const Problem& p) {
  const Geometry& g = p.options.geometry;
  const int64_t S = p.shape.seq, D = p.shape.dim;
  const double scale = p.options.effective_scale(D);
  std::vector<std::pair<int64_t, int64_t>> blocks;  // [first, first + count)
  for (int64_t kt = 0; kt < g.num_tiles(); ++kt) blocks.push_back({g.tile_offset(kt), g.tile_size(kt)});
  for (int64_t f = g.video_tokens(); f < g.valid_keys(); f += 32) {
    blocks.push_back({f, std::min<int64_t>(32, g.valid_keys() - f)});
  }
  Emulated e;
  Oracle& o = e.o;
  e.slack.assign(static_cast<size_t>(p.shape.elements()), 0.0);
  o.out.assign(static_cast<size_t>(p.shape.elements()), 0.0);
  o.lse.assign(static_cast<size_t>(p.shape.batch * p.shape.heads * S), -kInf);
  for (int64_t bh = 0; bh < p.shape.batch * p.shape.heads; ++bh) {
    const Mask& mask = mask_for_head(p.options.masks, bh % p.shape.heads);
    const float* q = p.q.data() + bh * S * D;
    const float* k = p.k.data() + bh * S * D;
    const float* v = p.v.data() + bh * S * D;
    for (int64_t i = 0; i < S; ++i) {
      double m = -kInf, l = 0.0;
      std::vector<double> acc(static_cast<size_t>(D), 0.0), slack(static_cast<size_t>(D), 0.0);
      for (const auto& [first, count] : blocks) {
        std::vector<double> s(static_cast<size_t>(count), -kInf);
        double block_max = -kInf;
        for (int64_t j = 0; j < count; ++j) {
          if (!mask_allows(g, mask, Layout::kTiled, i, first + j)) continue;
          double dot = 0.0;
          for (int64_t d = 0; d < D; ++d) {
            dot += static_cast<double>(to_bf16(q[i * D + d])) * to_bf16(k[(first + j) * D + d]);
          }
          s[j] = scale * dot;
          block_max = std::max(block_max, s[j]);
        }
        const double new_max = std::max(m, block_max);
        if (new_max == -kInf) continue;
        const double alpha = std::exp(m - new_max);
        l *= alpha;
        for (double& a : acc) a *= alpha;
        for (double& a : slack) a *= alpha;
        for (int64_t j = 0; j < count; ++j) {
          const float pj = static_cast<float>(std::exp(s[j] - new_max));
          l += pj;
          const double pb = to_bf16(pj);
          // s is exact here but an fp32 dot of D terms is not: p may differ by ~1e-5 relative.
          const double ambiguous = std::fabs(to_bf16(pj * (1.0f + 1e-5f)) - to_bf16(pj * (1.0f - 1e-5f)));
          for (int64_t d = 0; d < D; ++d) {
            const double vd = to_bf16(v[(first + j) * D + d]);
            acc[d] += pb * vd;
            slack[d] += ambiguous * std::fabs(vd);
          }
        }
        m = new_max;
      }
      if (l == 0.0) continue;
      for (int64_t d = 0; d < D; ++d) {
        o.out[(bh * S + i) * D + d] = acc[d] / l;
        e.slack[(bh * S + i) * D + d] = slack[d] / l;
      }
      o.lse[bh * S + i] = m + std::log(l);
    }
  }
  return e;
}

/// Elements of `got` outside emulation +- (tol + slack).
int64_t outside_emulation(const std::vector<float>& got, const Emulated& want, double tol) {
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - want.o.out[i]);
    if (!(e <= tol + want.slack[i])) ++bad;
  }
  return bad;
}

/// The double reference on the bf16-rounded inputs (precision bf16 in the reference backend).
Oracle reference_on_rounded(const Problem& p) {
  Problem r = p;
  for (auto* t : {&r.q, &r.k, &r.v}) {
    for (float& x : *t) x = to_bf16(x);
  }
  return testing::oracle(r);
}

struct FlashRun {
  std::vector<float> out, lse;
  BlockCounts counts;
};

FlashRun run_flash(const Problem& p, detail::FlashMode mode, const simd::GemmKernels& family,
                   bool bf16, int64_t max_key_cols) {
  FlashRun r;
  r.out.assign(static_cast<size_t>(p.shape.elements()), std::nanf(""));
  r.lse.assign(static_cast<size_t>(p.shape.batch * p.shape.heads * p.shape.seq), std::nanf(""));
  detail::FlashConfig config;
  config.bf16 = bf16;
  config.gemm = &family;
  config.max_key_cols = max_key_cols;
  config.text_rows = 5;  // several text tasks per head, one of them short
  r.counts = detail::flash_attention(
      p.shape, p.options.geometry, p.options.masks,
      static_cast<float>(p.options.effective_scale(p.shape.dim)), mode, p.q.data(), p.k.data(),
      p.v.data(), r.out.data(), r.lse.data(), simd::softmax_kernels(), config, nullptr);
  return r;
}

/// Every family usable here for a precision: bf16 mode runs the bf16 families natively and
/// every fp32 family as the emulation.
std::vector<const simd::GemmKernels*> families(bool bf16) {
  std::vector<const simd::GemmKernels*> out;
  for (bool layouts_bf16 : {false, true}) {
    if (layouts_bf16 && !bf16) continue;
    int count = 0;
    const simd::GemmKernels* const* list = simd::available_gemm_kernels(layouts_bf16, &count);
    out.insert(out.end(), list, list + count);
  }
  return out;
}

struct Case {
  const char* name;
  detail::FlashMode mode;
  Geometry geometry;
  std::vector<Mask> masks;
  int64_t dim;
};

std::vector<Case> cases() {
  Geometry a;  // text below its padding, tiles of 18 keys (padding inside every block)
  a.canvas = {2, 6, 12};
  a.tile = {1, 3, 6};
  a.text_length = 7;
  a.text_pad = 11;
  Geometry b;  // ragged edge tiles, no text
  b.canvas = {3, 7, 10};
  b.tile = {2, 4, 4};
  b.ragged = true;
  Geometry c;  // 64-key tiles (two whole panels), text of 40 (two chunks)
  c.canvas = {2, 8, 16};
  c.tile = {2, 4, 8};
  c.text_length = 40;
  c.text_pad = 48;
  return {
      {"sta_per_head", detail::FlashMode::kSta, a, {Mask::sta({1, 1, 1}), Mask::sta({2, 1, 2})}, 80},
      {"natten_text", detail::FlashMode::kNatten, a, {Mask::swa({1, 3, 5}), Mask::swa({2, 4, 4})}, 16},
      {"dense_text", detail::FlashMode::kDense, a, {Mask::full()}, 48},
      {"natten_ragged", detail::FlashMode::kNatten, b, {Mask::swa({3, 3, 5})}, 64},
      {"sta_ragged", detail::FlashMode::kSta, b, {Mask::sta({1, 3, 1})}, 32},
      {"sta_wide_tiles", detail::FlashMode::kSta, c, {Mask::sta({1, 1, 1})}, 128},
  };
}

TEST(FlashFamilies, Fp32EveryFamilyMatchesReference) {
  for (const Case& c : cases()) {
    const Problem p = make_problem(c.geometry, c.masks, 2, static_cast<int64_t>(c.masks.size()),
                                   c.dim, Layout::kTiled, 901);
    const Oracle want = testing::oracle(p);
    for (const simd::GemmKernels* fam : families(false)) {
      for (int64_t cols : {int64_t{1}, int64_t{0}}) {
        SCOPED_TRACE(std::string(c.name) + " " + fam->name + " max_key_cols " + std::to_string(cols));
        const FlashRun got = run_flash(p, c.mode, *fam, false, cols);
        EXPECT_LT(max_abs_error(got.out, want.out), 1e-5);
        EXPECT_LT(max_abs_error(got.lse, want.lse), 1e-5);
      }
    }
  }
}

TEST(FlashFamilies, Bf16EveryFamilyMatchesTheEmulationAndTheTolerance) {
  for (const Case& c : cases()) {
    const Problem p = make_problem(c.geometry, c.masks, 2, static_cast<int64_t>(c.masks.size()),
                                   c.dim, Layout::kTiled, 902);
    const Emulated emulated = emulate_bf16(p);
    const Oracle rounded = reference_on_rounded(p);
    for (const simd::GemmKernels* fam : families(true)) {
      SCOPED_TRACE(std::string(c.name) + " " + fam->name);
      const FlashRun got = run_flash(p, c.mode, *fam, true, 1);
      EXPECT_EQ(outside_emulation(got.out, emulated, 1e-5), 0);
      EXPECT_LT(max_abs_error(got.lse, emulated.o.lse), 1e-5);
      EXPECT_LT(max_abs_error(got.out, rounded.out), kBf16Tolerance);
      EXPECT_LT(max_abs_error(got.lse, rounded.lse), kBf16Tolerance);
      // bf16 is not fp32: the emulation must differ from the fp32 result somewhere.
      EXPECT_GT(max_abs_error(got.out, rounded.out), 1e-6);
    }
  }
}

TEST(FlashFamilies, SameBitsForOneAndTwoThreadsPerFamily) {
  const Case c = cases()[1];  // natten with text: mixed blocks, text tasks
  const Problem p = make_problem(c.geometry, c.masks, 2, 2, 64, Layout::kTiled, 903);
  const int saved = omp_get_max_threads();
  for (bool bf16 : {false, true}) {
    for (const simd::GemmKernels* fam : families(bf16)) {
      SCOPED_TRACE(std::string(fam->name) + (bf16 ? " bf16" : " fp32"));
      omp_set_num_threads(1);
      const FlashRun one = run_flash(p, c.mode, *fam, bf16, 0);
      omp_set_num_threads(2);
      const FlashRun two = run_flash(p, c.mode, *fam, bf16, 0);
      EXPECT_EQ(std::memcmp(one.out.data(), two.out.data(), one.out.size() * sizeof(float)), 0);
      EXPECT_EQ(std::memcmp(one.lse.data(), two.lse.data(), one.lse.size() * sizeof(float)), 0);
      EXPECT_EQ(one.counts, two.counts);
    }
  }
  omp_set_num_threads(saved);
}

TEST(Precision, Bf16ModeOfEveryBackendMeetsTheToleranceWithText) {
  Geometry g;
  g.canvas = {4, 8, 8};
  g.tile = {2, 4, 4};
  g.text_length = 5;
  g.text_pad = 8;
  struct BackendCase {
    Backend backend;
    Mask mask;
  };
  for (Layout layout : {Layout::kTiled, Layout::kRaster}) {
    for (const BackendCase& bc : {BackendCase{Backend::kSta, Mask::sta({1, 1, 1})},
                                  BackendCase{Backend::kNatten, Mask::swa({3, 3, 5})},
                                  BackendCase{Backend::kDense, Mask::full()},
                                  BackendCase{Backend::kReference, Mask::swa({3, 3, 5})}}) {
      SCOPED_TRACE(to_string(bc.backend) + " " + to_string(layout));
      Problem p = make_problem(g, {bc.mask}, 1, 2, 64, layout, 904);
      const Oracle fp32 = testing::oracle(p);
      const Oracle rounded = reference_on_rounded(p);
      p.options.precision = Precision::kBf16;
      const testing::Result got = testing::run(p, bc.backend);
      EXPECT_EQ(got.stats.precision, Precision::kBf16);
      EXPECT_LT(max_abs_error(got.out, rounded.out), kBf16Tolerance);
      EXPECT_LT(max_abs_error(got.out, fp32.out), kBf16Tolerance);
      if (bc.backend == Backend::kReference) {
        EXPECT_LT(max_abs_error(got.out, rounded.out), 1e-6);  // it is that oracle
      } else {
        EXPECT_FALSE(got.stats.gemm.empty());
      }
    }
  }
}

TEST(Precision, ParsesAndNamesBothModes) {
  EXPECT_EQ(parse_precision("fp32"), Precision::kFp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_EQ(to_string(Precision::kBf16), "bf16");
  try {
    parse_precision("fp8", "--precision");
    FAIL() << "fp8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fp32 or bf16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sta

namespace sta {
namespace {

TEST(Precision, BackwardRunsOnTheRequestedGemmFamily) {
  Geometry g;
  g.canvas = {2, 8, 8};
  g.tile = {1, 4, 4};
  g.text_length = 3;
  g.text_pad = 4;
  testing::Problem p = testing::make_problem(g, {Mask::sta({1, 1, 1})}, 1, 1, 32, Layout::kTiled, 905);
  const testing::Result fwd = testing::run(p, Backend::kSta);
  std::vector<float> dout(p.q.size());
  for (size_t i = 0; i < dout.size(); ++i) dout[i] = static_cast<float>((i * 7919) % 13) / 13.0f - 0.5f;
  std::vector<float> base[3];
  for (const std::string& family : {std::string(), std::string("scalar-f32"), std::string("openblas")}) {
    SCOPED_TRACE("gemm '" + family + "'");
    p.options.gemm = family;
    std::vector<float> d[3];
    for (auto& x : d) x.assign(p.q.size(), std::nanf(""));
    const AttentionStats st = attention_backward(p.shape, p.options, p.q.data(), p.k.data(), p.v.data(),
                                                 fwd.out.data(), fwd.lse.data(), dout.data(),
                                                 d[0].data(), d[1].data(), d[2].data(), Backend::kSta);
    if (!family.empty()) {
      EXPECT_EQ(st.gemm.rfind(family, 0), 0u) << st.gemm;
    }
    if (family.empty()) {
      for (int i = 0; i < 3; ++i) base[i] = d[i];
      continue;
    }
    for (int i = 0; i < 3; ++i) {
      double worst = 0;
      for (size_t j = 0; j < d[i].size(); ++j) worst = std::max(worst, std::fabs(double(d[i][j]) - base[i][j]));
      EXPECT_LT(worst, 1e-5) << "gradient " << i;
    }
  }
}

}  // namespace
}  // namespace sta
