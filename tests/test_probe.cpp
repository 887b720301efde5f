// The fp32 FMA peak probes (simd/probe.hpp): they must measure real FMAs, so the rate lies
// between zero and what the widest core could do (2 FMA ports x lanes x 2 flops at 6 GHz);
// a compiler that folded the chains away would report an impossible rate, and the flop count
// must grow with the work asked for. Instruction sets this CPU lacks are skipped.
#include <gtest/gtest.h>

#include <cmath>

#include "probe.hpp"
#include "softmax.hpp"

namespace sta::simd {
namespace {

constexpr double kMaxGhz = 6.0;  // no x86 core sustains more

void check_probe(double gflops, int lanes, int64_t (*run)(int64_t)) {
  const double bound = 2.0 * lanes * 2.0 * kMaxGhz;
  EXPECT_TRUE(std::isfinite(gflops));
  EXPECT_GT(gflops, 0.0);
  EXPECT_LE(gflops, bound) << "faster than any core: the FMA chains were optimised away";
  EXPECT_GT(run(1), 0);
  EXPECT_EQ(run(6), 6 * run(1)) << "flops must be proportional to the rounds run";
}

TEST(PeakProbe, Avx512MeasuresPlausibleFmaRate) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  check_probe(fma_peak_f32_avx512(0.02), 16, fma_f32_avx512_run);
}

TEST(PeakProbe, Avx2MeasuresPlausibleFmaRate) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  check_probe(fma_peak_f32_avx2(0.02), 8, fma_f32_avx2_run);
}

}  // namespace
}  // namespace sta::simd
