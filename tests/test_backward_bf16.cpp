// The backward's bf16 mode (SPEC 8): every fast backend and GEMM family against an
// independent emulation of its semantics (written out per element here, the mask asked of the
// test-side MaskOracle, bf16 rounding by this file's own code), the bf16 tolerance against the
// double reference on the rounded inputs, and thread-count determinism.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attention_harness.hpp"
#include "gemm.hpp"
#include "grad.hpp"
#include "isa_param.hpp"
#include "kernels/backward.hpp"
#include "oracle.hpp"
#include "sta/backward.hpp"
#include "sta/reference.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

using testing::make_problem;
using testing::Problem;

// The bf16 mode's gradients against the double reference on the bf16-rounded inputs: max abs
// error / max(1, max |reference|) per gradient. The worst measured here (the "[measured]"
// lines) was 3.1e-3 (dq 2.8e-3, dk 3.1e-3, dv 3.0e-3) over the 40 random problems of
// FollowTheSemanticsOnRandomProblems; SPEC 6's forward bf16 tolerance, 2e-2, keeps a 6x margin.
constexpr double kBf16GradTolerance = 2e-2;
// The fast bf16 backward against the emulation: fp32 sums in another order (the fp32
// backward is within 1.2e-6 of the double reference, test_backward.cpp), plus the slack of
// values within that error of a bf16 rounding tie.
constexpr double kEmulationTolerance = 1e-5;

/// Round to nearest even bf16, written independently of simd/gemm.hpp's rule: the value of a
/// bf16 bit pattern is a float whose low 16 bits are zero; of the two neighbours of x
/// (truncated and truncated + one bf16 ulp), the nearer, the even one on a tie.
float round_bf16(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const uint32_t low = bits & 0xffffu, down = bits & 0xffff0000u;
  uint32_t pick = down;
  if (low > 0x8000u || (low == 0x8000u && (down & 0x10000u) != 0)) pick = down + 0x10000u;
  float y;
  std::memcpy(&y, &pick, sizeof y);
  return y;
}

/// |round(x + e) - round(x - e)|: how far an fp32 value within e of x may round from x's bf16.
double ambiguity(double x, double e) {
  return std::fabs(static_cast<double>(round_bf16(static_cast<float>(x + e))) -
                   static_cast<double>(round_bf16(static_cast<float>(x - e))));
}

std::vector<float> random_dout(const Problem& p, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x5bd1e995ull);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> d(static_cast<size_t>(p.shape.elements()));
  for (float& x : d) x = normal(rng);
  return d;
}

struct Grads {
  std::vector<float> dq, dk, dv;
  AttentionStats stats;
};

/// What SPEC 8's bf16 mode gives, in double, plus per element the slack of rounding-tie flips.
struct Emulated {
  std::vector<double> grad[3];   ///< dq, dk, dv
  std::vector<double> slack[3];  ///< same shapes
};

/// SPEC 8's bf16 mode per element pair, from the forward's `out` and `lse` (caller's layout,
/// as passed to the backward): q, k, v, dout rounded to bf16; p = exp(scale q.k - lse) from
/// exact products; P rounded before dv += P^T dout; ds = p (dp - Delta) with the unrounded p,
/// Delta = <dout, out>, rounded before dq += ds k and dk += ds^T q; the scale applied to dq
/// and dk after the sums. An fp32 kernel computes s, dp and Delta with ~D * 2^-24 relative
/// error: where that may move p or ds across a bf16 tie, the flip's size goes into `slack`.
Emulated emulate(const Problem& p, const std::vector<float>& dout, const std::vector<float>& out,
                 const std::vector<float>& lse) {
  const int64_t S = p.shape.seq, D = p.shape.dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const double eps = static_cast<double>(D) * std::ldexp(1.0, -24);
  auto rounded = [](const std::vector<float>& t) {
    std::vector<double> r(t.size());
    for (size_t i = 0; i < t.size(); ++i) r[i] = round_bf16(t[i]);
    return r;
  };
  const std::vector<double> q = rounded(p.q), k = rounded(p.k), v = rounded(p.v), d = rounded(dout);
  Emulated e;
  for (int i = 0; i < 3; ++i) {
    e.grad[i].assign(static_cast<size_t>(p.shape.elements()), 0.0);
    e.slack[i].assign(static_cast<size_t>(p.shape.elements()), 0.0);
  }
  for (int64_t bh = 0; bh < p.shape.batch * p.shape.heads; ++bh) {
    const std::vector<Mask>& masks = p.options.masks;
    const oracle::MaskOracle mask(p.options.geometry,
                                  masks[masks.size() == 1 ? 0 : static_cast<size_t>(bh % p.shape.heads)],
                                  p.options.layout);
    const int64_t off = bh * S * D;
    for (int64_t i = 0; i < S; ++i) {
      const double l = lse[static_cast<size_t>(bh * S + i)];
      if (l == -std::numeric_limits<double>::infinity()) continue;
      double delta = 0.0, delta_abs = 0.0;
      for (int64_t c = 0; c < D; ++c) {
        delta += d[off + i * D + c] * out[static_cast<size_t>(off + i * D + c)];
        delta_abs += std::fabs(d[off + i * D + c] * out[static_cast<size_t>(off + i * D + c)]);
      }
      for (int64_t j = 0; j < S; ++j) {
        if (!mask.allows(i, j)) continue;
        double s = 0.0, s_abs = 0.0, dp = 0.0, dp_abs = 0.0;
        for (int64_t c = 0; c < D; ++c) {
          s += q[off + i * D + c] * k[off + j * D + c];
          s_abs += std::fabs(q[off + i * D + c] * k[off + j * D + c]);
          dp += d[off + i * D + c] * v[off + j * D + c];
          dp_abs += std::fabs(d[off + i * D + c] * v[off + j * D + c]);
        }
        const double prob = std::exp(scale * s - l);
        const double prob_err = prob * (scale * s_abs * eps + 1e-6);  // + the exp's own error
        const double ds = prob * (dp - delta);
        const double ds_err = prob_err * std::fabs(dp - delta) + prob * (dp_abs + delta_abs) * eps;
        const double pb = round_bf16(static_cast<float>(prob));
        const double dsb = round_bf16(static_cast<float>(ds));
        const double p_flip = ambiguity(prob, prob_err), ds_flip = ambiguity(ds, ds_err);
        for (int64_t c = 0; c < D; ++c) {
          const size_t at_i = static_cast<size_t>(off + i * D + c), at_j = static_cast<size_t>(off + j * D + c);
          e.grad[0][at_i] += dsb * k[at_j];
          e.grad[1][at_j] += dsb * q[at_i];
          e.grad[2][at_j] += pb * d[at_i];
          e.slack[0][at_i] += ds_flip * std::fabs(k[at_j]) * scale;
          e.slack[1][at_j] += ds_flip * std::fabs(q[at_i]) * scale;
          e.slack[2][at_j] += p_flip * std::fabs(d[at_i]);
        }
      }
    }
  }
  for (int g = 0; g < 2; ++g)
    for (double& x : e.grad[g]) x *= scale;
  return e;
}

/// Elements of gradient `g` outside emulation +- (tolerance * max(1, max |emulated|) + slack);
/// adds the elements with a non-zero slack to *flips.
int64_t outside_emulation(const std::vector<float>& got, const Emulated& want, int g, int64_t* flips) {
  double peak = 1.0;
  for (double x : want.grad[g]) peak = std::max(peak, std::fabs(x));
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want.grad[g][i]);
    if (!(err <= kEmulationTolerance * peak + want.slack[g][i])) ++bad;
    if (want.slack[g][i] > 0.0) ++*flips;
  }
  return bad;
}

/// max |got - want| / max(1, max |want|).
double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0.0, peak = 1.0;
  for (float w : want) peak = std::max(peak, static_cast<double>(std::fabs(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!std::isfinite(e)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, e);
  }
  return worst / peak;
}

Grads backward(const Problem& p, const std::vector<float>& dout, Backend backend,
               const std::vector<float>* out = nullptr, const std::vector<float>* lse = nullptr) {
  Grads g;
  for (auto* t : {&g.dq, &g.dk, &g.dv}) t->assign(static_cast<size_t>(p.shape.elements()), std::nanf(""));
  g.stats = attention_backward(p.shape, p.options, p.q.data(), p.k.data(), p.v.data(),
                               out != nullptr ? out->data() : nullptr,
                               lse != nullptr ? lse->data() : nullptr, dout.data(), g.dq.data(),
                               g.dk.data(), g.dv.data(), backend);
  return g;
}

/// The bf16 forward's out and lse (the backend's own, as a caller would pass them).
void forward_bf16(const Problem& p, Backend backend, std::vector<float>* out, std::vector<float>* lse) {
  out->assign(static_cast<size_t>(p.shape.elements()), 0.0f);
  lse->assign(static_cast<size_t>(p.shape.batch * p.shape.heads * p.shape.seq), 0.0f);
  attention(p.shape, p.options, p.q.data(), p.k.data(), p.v.data(), out->data(), lse->data(), backend);
}

struct Worst {
  double ref[3] = {0, 0, 0};
  int64_t flips = 0, compared = 0;
};

/// Every fast backend in bf16 mode against the emulation, and (with the reference backend in
/// bf16 mode, the double oracle on rounded inputs) within the bf16 tolerance.
void check_bf16(Problem p, uint64_t seed, Worst* worst) {
  p.options.precision = Precision::kBf16;
  SCOPED_TRACE(testing::describe(p));
  const std::vector<float> dout = random_dout(p, seed);
  const Grads ref = backward(p, dout, Backend::kReference);
  EXPECT_EQ(ref.stats.precision, Precision::kBf16);
  std::vector<Backend> fast = {Backend::kNatten};
  if (testing::sta_compatible(p.options.masks)) fast.push_back(Backend::kSta);
  if (testing::all_full(p.options.masks)) fast.push_back(Backend::kDense);
  for (Backend b : fast) {
    SCOPED_TRACE("backend " + to_string(b));
    std::vector<float> out, lse;
    forward_bf16(p, b, &out, &lse);
    const Grads got = backward(p, dout, b, &out, &lse);
    EXPECT_EQ(got.stats.precision, Precision::kBf16);
    EXPECT_EQ(got.stats.backend, b);
    const Emulated want = emulate(p, dout, out, lse);
    const std::vector<float>* grads[3] = {&got.dq, &got.dk, &got.dv};
    const std::vector<float>* refs[3] = {&ref.dq, &ref.dk, &ref.dv};
    for (int g = 0; g < 3; ++g) {
      EXPECT_EQ(outside_emulation(*grads[g], want, g, &worst->flips), 0) << "dq dk dv"[g * 3 + 1];
      const double e = relative_error(*grads[g], *refs[g]);
      EXPECT_LE(e, kBf16GradTolerance) << "dq dk dv"[g * 3 + 1];
      worst->ref[g] = std::max(worst->ref[g], e);
      worst->compared += static_cast<int64_t>(grads[g]->size());
    }
    // Recomputing out and lse (nullptr) runs the same bf16 forward: the same bits.
    const Grads recomputed = backward(p, dout, b);
    EXPECT_EQ(recomputed.dq, got.dq);
    EXPECT_EQ(recomputed.dk, got.dk);
    EXPECT_EQ(recomputed.dv, got.dv);
  }
}

TEST(BackwardBf16, FollowTheSemanticsOnRandomProblems) {
  Worst worst;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed * 7919);
    Geometry g = seed % 4 == 0 ? testing::random_ragged_geometry(rng, 3, 3)
                               : testing::random_geometry(rng, 3, 3);
    testing::maybe_add_text(rng, g);
    const int64_t heads = 1 + static_cast<int64_t>(rng() % 2);
    const int64_t batch = 1 + static_cast<int64_t>(rng() % 2);
    const int64_t dims[] = {32, 64, 128};
    const int64_t dim = dims[rng() % 3];
    const Layout layout = rng() % 3 == 0 ? Layout::kRaster : Layout::kTiled;
    std::vector<Mask> masks = {testing::random_mask(rng, g)};
    if (heads == 2 && rng() % 2 == 0) masks.push_back(testing::random_mask(rng, g));
    check_bf16(make_problem(g, masks, batch, heads, dim, layout, seed), seed, &worst);
  }
  std::printf("[measured] bf16 backward vs double reference on rounded inputs: max rel error "
              "dq %.3g dk %.3g dv %.3g; %lld of %lld elements with a tie slack\n",
              worst.ref[0], worst.ref[1], worst.ref[2], static_cast<long long>(worst.flips),
              static_cast<long long>(worst.compared));
}

TEST(BackwardBf16, LargeTilesStepsAndTextFollowTheSemantics) {
  // 162-token tiles on a ragged canvas (a 128-key step and a 64-key one), text below its
  // padding, two heads with their own windows.
  Worst worst;
  check_bf16(make_problem(testing::geo({5, 11, 13}, {3, 6, 9}, 3, 5, /*ragged=*/true),
                          {Mask::sta({1, 1, 1}), Mask::swa({3, 5, 5})}, 1, 2, 64, Layout::kTiled, 5),
             5, &worst);
  check_bf16(make_problem(testing::geo({2, 8, 8}, {1, 4, 4}, 7, 9), {Mask::full()}, 2, 1, 128,
                          Layout::kRaster, 6),
             6, &worst);
}

TEST(BackwardBf16, IsNotFp32) {
  // The rounding points matter: the bf16 gradients differ from the fp32 ones on the same
  // (already bf16-valued) inputs, by more than the fp32 backward's error.
  Problem p = make_problem(testing::geo({2, 4, 4}, {1, 2, 2}, 3, 4), {Mask::sta({1, 1, 1})}, 1, 1,
                           64, Layout::kTiled, 8);
  for (auto* t : {&p.q, &p.k, &p.v})
    for (float& x : *t) x = round_bf16(x);
  std::vector<float> dout = random_dout(p, 8);
  for (float& x : dout) x = round_bf16(x);
  const Grads fp32 = backward(p, dout, Backend::kSta);
  p.options.precision = Precision::kBf16;
  const Grads bf16 = backward(p, dout, Backend::kSta);
  EXPECT_GT(relative_error(bf16.dq, fp32.dq), 1e-4);
  EXPECT_GT(relative_error(bf16.dk, fp32.dk), 1e-4);
  EXPECT_GT(relative_error(bf16.dv, fp32.dv), 1e-4);
}

TEST(BackwardBf16, SameBitsForAnyThreadCount) {
  const int saved = omp_get_max_threads();
  const Geometry g = testing::geo({4, 16, 16}, {2, 8, 8}, 4, 4);  // two steps per key block
  for (const auto& [backend, mask] : {std::pair{Backend::kSta, Mask::sta({1, 1, 3})},
                                      std::pair{Backend::kNatten, Mask::swa({3, 5, 5})},
                                      std::pair{Backend::kDense, Mask::full()}}) {
    SCOPED_TRACE(to_string(backend));
    Problem p = make_problem(g, {mask}, 1, 2, 64, Layout::kTiled, 9);
    p.options.precision = Precision::kBf16;
    const std::vector<float> dout = random_dout(p, 9);
    omp_set_num_threads(1);
    const Grads one = backward(p, dout, backend);
    for (int threads : {2, 3}) {
      omp_set_num_threads(threads);
      const Grads many = backward(p, dout, backend);
      EXPECT_EQ(std::memcmp(one.dq.data(), many.dq.data(), one.dq.size() * sizeof(float)), 0) << threads;
      EXPECT_EQ(std::memcmp(one.dk.data(), many.dk.data(), one.dk.size() * sizeof(float)), 0) << threads;
      EXPECT_EQ(std::memcmp(one.dv.data(), many.dv.data(), one.dv.size() * sizeof(float)), 0) << threads;
    }
  }
  omp_set_num_threads(saved);
}

class BackwardBf16EachIsa : public testing::EachIsa {};

TEST_P(BackwardBf16EachIsa, EveryFamilyFollowsTheSemantics) {
  // The fused kernels of each instruction set, the transposing path of the row-major
  // families (OpenBLAS) and the bf16 families (compute_step_bf16: AMX, AVX512-BF16, their portable
  // twin), on inputs that already hold bf16 values (as the frontend passes). D = 40: not a
  // multiple of the packed panels' 32 columns.
  for (const int64_t dim : {int64_t{64}, int64_t{40}}) {
    SCOPED_TRACE("D = " + std::to_string(dim));
    Problem p = make_problem(testing::geo({2, 6, 10}, {1, 3, 5}, 3, 4), {Mask::swa({1, 3, 7})}, 1,
                             1, dim, Layout::kTiled, 61);
    p.options.precision = Precision::kBf16;
    std::vector<float> dout = random_dout(p, 61);
    for (float& x : dout) x = round_bf16(x);
    Problem rounded = p;
    for (auto* t : {&rounded.q, &rounded.k, &rounded.v})
      for (float& x : *t) x = round_bf16(x);
    std::vector<float> out, lse;
    forward_bf16(p, Backend::kNatten, &out, &lse);
    const Emulated want = emulate(p, dout, out, lse);
    std::vector<const simd::GemmKernels*> list;
    for (bool bf16_layouts : {false, true}) {
      int count = 0;
      const simd::GemmKernels* const* some = simd::available_gemm_kernels(bf16_layouts, &count);
      list.insert(list.end(), some, some + count);
    }
    const int families = static_cast<int>(list.size());
    for (int f = 0; f < families; ++f) {
      SCOPED_TRACE(list[f]->name);
      Grads got;
      for (auto* t : {&got.dq, &got.dk, &got.dv}) t->assign(out.size(), std::nanf(""));
      detail::flash_attention_backward(
          p.shape, p.options.geometry, p.options.masks, static_cast<float>(p.options.effective_scale(dim)),
          detail::FlashMode::kNatten, /*bf16=*/true, rounded.q.data(), rounded.k.data(),
          rounded.v.data(), out.data(), lse.data(), dout.data(), got.dq.data(), got.dk.data(),
          got.dv.data(), *list[f], simd::backward_kernels_for(isa()), nullptr);
      int64_t flips = 0;
      EXPECT_EQ(outside_emulation(got.dq, want, 0, &flips), 0) << "dq";
      EXPECT_EQ(outside_emulation(got.dk, want, 1, &flips), 0) << "dk";
      EXPECT_EQ(outside_emulation(got.dv, want, 2, &flips), 0) << "dv";
    }
    EXPECT_GE(families, 1);
  }
}

/// The bf16 mode's conversion kernels of one instruction set (or variant).
struct Conversions {
  simd::GradScoresBf16Fn grad_scores_bf16;
  simd::TransposeBf16Fn transpose_bf16;
  simd::Transpose16Fn transpose_16;
  simd::RoundBf16Fn round_bf16;
  /// simd::rows_to_bf16's signature (gemm.hpp): Q, dO and packed K, V go through it.
  void (*rows_to_bf16)(const float*, int64_t, int64_t, int64_t, int64_t, simd::bf16_t*, int64_t);
};

/// grad_scores_bf16, transpose_bf16, transpose_16, round_bf16 and rows_to_bf16 against this file's
/// round_bf16 on odd shapes (vector bodies and tails, 8 x 8 and 16 x 16 blocks and edges),
/// with ties, negative values, infinities, a NaN, values that round up into the next binade
/// and subnormals (which vcvtne2ps2bf16 would flush to zero).
void expect_conversions_round_like_the_rule(const Conversions& k) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 13}, {16, 16}, {19, 37}, {64, 96}, {40, 83}}) {
    SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
    const int64_t lds = cols + 3, pad = rows + 5;
    std::vector<float> src(static_cast<size_t>(rows * lds));
    for (size_t i = 0; i < src.size(); ++i) {
      float x = normal(rng);
      switch (i % 7) {
        case 1: {  // an exact tie: low half 0x8000
          uint32_t b;
          std::memcpy(&b, &x, sizeof b);
          b = (b & 0xffff0000u) | 0x8000u;
          std::memcpy(&x, &b, sizeof b);
          break;
        }
        case 3: x = i % 3 == 0 ? std::numeric_limits<float>::infinity() : -x; break;
        case 5: x = i % 5 == 0 ? std::nanf("") : std::nextafter(2.0f, 0.0f); break;
        default: break;
      }
      if (i % 61 == 0) x = (i % 2 == 0 ? 1.0f : -1.0f) * x * 0x1p-130f;  // subnormal (or 0, inf)
      if (i % 89 == 0) x = 0x1.018p-127f;                                // a subnormal rounding up
      src[i] = x;
    }
    auto same = [](float want, simd::bf16_t got) {
      const float g = simd::bf16_to_float(got);
      return std::isnan(want) ? std::isnan(g) : g == want && std::signbit(g) == std::signbit(want);
    };
    // dS = (p * 1) * (1.5 - 0.5) is p itself: the special values go through grad_scores_bf16.
    const std::vector<float> ones_and_halves(static_cast<size_t>(rows * lds), 1.5f), halves(static_cast<size_t>(rows), 0.5f);
    std::vector<simd::bf16_t> ds(static_cast<size_t>(rows * cols), 0x7777);
    k.grad_scores_bf16(ones_and_halves.data(), lds, src.data(), lds, rows, cols, halves.data(), 1.0f, ds.data(), cols);
    std::vector<simd::bf16_t> t_out(static_cast<size_t>(cols * pad), 0x7777);
    k.transpose_bf16(src.data(), lds, rows, cols, t_out.data(), pad, pad);
    std::vector<simd::bf16_t> t16(static_cast<size_t>(cols * pad), 0x7777);
    k.transpose_16(ds.data(), cols, rows, cols, t16.data(), pad, pad);
    const int64_t ld16 = cols + 7, pad_cols = cols + 5;  // zeros to pad_cols, nothing past it
    std::vector<simd::bf16_t> rows16(static_cast<size_t>(rows * ld16), 0x7777);
    k.rows_to_bf16(src.data(), lds, rows, cols, pad_cols, rows16.data(), ld16);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c)
        ASSERT_TRUE(same(round_bf16(src[static_cast<size_t>(r * lds + c)]), rows16[static_cast<size_t>(r * ld16 + c)]))
            << "rows_to_bf16 " << r << "," << c;
      for (int64_t c = cols; c < pad_cols; ++c) ASSERT_EQ(rows16[static_cast<size_t>(r * ld16 + c)], 0) << "padding";
      for (int64_t c = pad_cols; c < ld16; ++c) ASSERT_EQ(rows16[static_cast<size_t>(r * ld16 + c)], 0x7777) << "past the padding";
    }
    std::vector<float> in_place = src;
    k.round_bf16(in_place.data(), lds, rows, cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const float want = round_bf16(src[static_cast<size_t>(r * lds + c)]);
        ASSERT_TRUE(same(want, ds[static_cast<size_t>(r * cols + c)])) << r << "," << c;
        ASSERT_TRUE(same(want, t_out[static_cast<size_t>(c * pad + r)])) << r << "," << c;
        ASSERT_EQ(t16[static_cast<size_t>(c * pad + r)], ds[static_cast<size_t>(r * cols + c)]) << r << "," << c;
        const float ip = in_place[static_cast<size_t>(r * lds + c)];
        ASSERT_TRUE(std::isnan(want) ? std::isnan(ip) : ip == want) << r << "," << c;
      }
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t r = rows; r < pad; ++r) {
        ASSERT_EQ(t_out[static_cast<size_t>(c * pad + r)], 0) << "padding";
        ASSERT_EQ(t16[static_cast<size_t>(c * pad + r)], 0) << "padding";
      }
    // grad_scores_bf16's formula on general values: (p * scale) * (dp - delta) in fp32, rounded.
    std::vector<float> p(static_cast<size_t>(rows * lds)), dp(p.size()), delta(static_cast<size_t>(rows));
    for (float& x : p) x = std::fabs(normal(rng));
    for (float& x : dp) x = normal(rng);
    for (float& x : delta) x = normal(rng);
    const float scale = 0.0883883f;
    k.grad_scores_bf16(dp.data(), lds, p.data(), lds, rows, cols, delta.data(), scale, ds.data(), cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const size_t at = static_cast<size_t>(r * lds + c);
        const float scaled = p[at] * scale, diff = dp[at] - delta[static_cast<size_t>(r)];
        ASSERT_TRUE(same(round_bf16(scaled * diff), ds[static_cast<size_t>(r * cols + c)])) << r << "," << c;
      }
  }
}

TEST_P(BackwardBf16EachIsa, ConversionKernelsRoundLikeTheRule) {
  const simd::BackwardKernels k = simd::backward_kernels_for(isa());
  expect_conversions_round_like_the_rule({k.grad_scores_bf16, k.transpose_bf16, k.transpose_16, k.round_bf16,
                                          simd::rows_to_bf16});
}

TEST(BackwardBf16, EveryConversionVariantRoundsLikeTheRule) {
  // The AVX-512 set picks its conversions by CPU (AVX512-BF16's instruction or integer
  // rounding): each variant this machine can run, whichever the set picked.
  expect_conversions_round_like_the_rule({simd::grad_scores_bf16_scalar, simd::transpose_bf16_scalar,
                                          simd::transpose_16_scalar, simd::round_bf16_scalar,
                                          simd::rows_to_bf16_portable});
  if (!simd::isa_supported(simd::Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  expect_conversions_round_like_the_rule({simd::grad_scores_bf16_avx512, simd::transpose_bf16_avx512,
                                          simd::transpose_16_avx512, simd::round_bf16_avx512,
                                          simd::rows_to_bf16_avx512});
  if (simd::find_gemm_kernels("avx512bf16-bf16") == nullptr) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  expect_conversions_round_like_the_rule({simd::grad_scores_bf16_avx512bf16, simd::transpose_bf16_avx512bf16,
                                          simd::transpose_16_avx512, simd::round_bf16_avx512,
                                          simd::rows_to_bf16_avx512bf16});
}

INSTANTIATE_TEST_SUITE_P(AllIsas, BackwardBf16EachIsa, ::testing::ValuesIn(testing::kAllIsas),
                         testing::isa_test_name);

}  // namespace
}  // namespace sta
