// The bf16 peak probes (simd/probe_bf16.hpp): a rate where the family is usable, 0 where not,
// and the AMX unit well ahead of vdpbf16ps where both exist (16 x 16 x 32 multiply-adds per
// instruction against 16 x 2: even a loaded machine keeps an order of magnitude between them).
#include <gtest/gtest.h>

#include "gemm.hpp"
#include "probe_bf16.hpp"

namespace sta::simd {
namespace {

TEST(ProbeBf16, RatesWhereUsableZeroElsewhere) {
  const double dp = probe_avx512bf16_gflops(0.002);
  const double amx = probe_amx_bf16_gflops(0.002);
  const bool has_dp = find_gemm_kernels("avx512bf16-bf16") != nullptr;
  const bool has_amx = find_gemm_kernels("amx-bf16") != nullptr;
  if (has_dp) {
    // One core: above 1 GFLOP/s, below 16 lanes x 2 x 2 flops x 2 ports x 10 GHz.
    EXPECT_GT(dp, 1.0);
    EXPECT_LT(dp, 1280.0);
  } else {
    EXPECT_EQ(dp, 0.0);
  }
  if (has_amx) {
    EXPECT_LT(amx, 1024.0 * 10.0);  // 1024 flops per cycle at 10 GHz
    if (has_dp) {
      EXPECT_GT(amx, 4.0 * dp) << "amx " << amx << " vdpbf16ps " << dp;
    }
  } else {
    EXPECT_EQ(amx, 0.0);
  }
}

}  // namespace
}  // namespace sta::simd
