// The bf16-mode online softmax kernels (simd/softmax.hpp, OnlineSoftmaxBf16Fn) with bf16
// output, on every instruction set this CPU runs: the exp behind P against exp in double over
// the whole range p can take, the bf16 bits of P against the kernel's own fp32 p, and the
// special values. The AVX512-BF16 kernel has its own exp (simd/softmax-inl.hpp, p_exp) with
// a stated error bound; the others use xsimd's, which must meet the same bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "softmax.hpp"

namespace sta {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct NamedKernel {
  std::string name;
  simd::OnlineSoftmaxBf16Fn fn;
};

/// Every bf16 softmax kernel usable here (the AVX512-BF16 one where its GEMM family is).
std::vector<NamedKernel> bf16_kernels() {
  std::vector<NamedKernel> out = {{"scalar", simd::online_softmax_bf16_scalar}};
  if (simd::isa_supported(simd::Isa::kAvx2)) out.push_back({"avx2", simd::online_softmax_bf16_avx2});
  if (simd::isa_supported(simd::Isa::kAvx512)) {
    out.push_back({"avx512", simd::online_softmax_bf16_avx512});
    if (simd::find_gemm_kernels("avx512bf16-bf16") != nullptr) {
      out.push_back({"avx512bf16", simd::online_softmax_bf16_avx512bf16});
    }
  }
  return out;
}

/// One row per x: column col(r) = r % 32 holds x (every lane of a vector pair in turn), the
/// other 31 are masked (-inf); the running max is 0 and the running sum 0, so the new max
/// stays 0 and the row sum returned is the kernel's fp32 p = exp(x) itself (a sum of p and
/// exact zeros).
struct ExpProbe {
  static constexpr size_t kCols = 32;
  static size_t col(size_t r) { return r % kCols; }
  std::vector<float> x;
  std::vector<float> scores, row_max, row_sum, alpha;
  std::vector<simd::bf16_t> p;

  explicit ExpProbe(std::vector<float> xs) : x(std::move(xs)) {
    const size_t rows = x.size();
    scores.assign(rows * kCols, -kInf);
    for (size_t r = 0; r < rows; ++r) scores[r * kCols + col(r)] = x[r];
    row_max.assign(rows, 0.0f);
    row_sum.assign(rows, 0.0f);
    alpha.assign(rows, 0.0f);
    p.assign(rows * kCols, 0xffff);
  }
  void run(simd::OnlineSoftmaxBf16Fn fn) {
    const auto cols = static_cast<int64_t>(kCols);
    fn(scores.data(), cols, static_cast<int64_t>(x.size()), cols, 1.0f, row_max.data(),
       row_sum.data(), alpha.data(), p.data(), cols);
  }
};

TEST(SoftmaxBf16, ExpMeetsItsStatedBoundOverTheWholeRange) {
  // x from 0 down to ln(2^-126) (p normal in fp32), dense near 0 where p feeds the row sum.
  std::vector<float> xs;
  for (int i = 0; i <= 200000; ++i) xs.push_back(-87.33f * static_cast<float>(i) / 200000.0f);
  for (int i = 0; i <= 100000; ++i) xs.push_back(-1.0f * static_cast<float>(i) / 100000.0f);
  xs.push_back(-0.0f);
  xs.push_back(-1e-30f);
  for (const NamedKernel& k : bf16_kernels()) {
    SCOPED_TRACE(k.name);
    ExpProbe probe(xs);
    probe.run(k.fn);
    double worst_high = 0.0, worst_low = 0.0;  // p >= 2^-24, and 2^-126 <= p < 2^-24
    for (size_t r = 0; r < xs.size(); ++r) {
      const double want = std::exp(static_cast<double>(xs[r]));
      const float got = probe.row_sum[r];
      double& worst = want >= 0x1p-24 ? worst_high : worst_low;
      worst = std::max(worst, std::fabs(got - want) / want);
      ASSERT_EQ(probe.row_max[r], 0.0f) << "x = " << xs[r];
      ASSERT_EQ(probe.alpha[r], 1.0f) << "x = " << xs[r];
      // P is the kernel's fp32 p rounded to nearest even (vcvtneps2bf16 flushes p < 2^-126).
      const simd::bf16_t expect = got < 0x1p-126f ? simd::bf16_t{0} : simd::float_to_bf16(got);
      for (size_t j = 0; j < ExpProbe::kCols; ++j) {
        ASSERT_EQ(probe.p[r * ExpProbe::kCols + j], j == ExpProbe::col(r) ? expect : 0)
            << "x = " << xs[r] << " p = " << got << " column " << j;
      }
    }
    std::printf("[ %s ] exp max relative error: %.3g (p >= 2^-24), %.3g (2^-126 <= p < 2^-24)\n",
                k.name.c_str(), worst_high, worst_low);
    EXPECT_LE(worst_high, 1.2e-6);  // the bound p_exp documents
    EXPECT_LE(worst_low, 6e-6);
  }
}

TEST(SoftmaxBf16, SpecialValues) {
  // NaN propagates to p and the row sum; a score far below the max gives p = 0 exactly; the
  // max element gives p = 1 exactly.
  const std::vector<float> xs = {std::nanf(""), -200.0f, -1e30f, 0.0f};
  for (const NamedKernel& k : bf16_kernels()) {
    SCOPED_TRACE(k.name);
    ExpProbe probe(xs);
    probe.run(k.fn);
    EXPECT_TRUE(std::isnan(probe.row_sum[0]));
    EXPECT_TRUE(std::isnan(simd::bf16_to_float(probe.p[ExpProbe::col(0)])));
    for (size_t r = 1; r < 3; ++r) {
      EXPECT_EQ(probe.row_sum[r], 0.0f) << "x = " << xs[r];
      EXPECT_EQ(probe.p[r * ExpProbe::kCols + ExpProbe::col(r)], 0) << "x = " << xs[r];
    }
    EXPECT_EQ(probe.row_sum[3], 1.0f);
    EXPECT_EQ(simd::bf16_to_float(probe.p[3 * ExpProbe::kCols + ExpProbe::col(3)]), 1.0f);
  }
}

}  // namespace
}  // namespace sta
