// The vdpbf16ps loop of the bf16 peak probe (simd/probe_bf16.hpp), AVX512-BF16 flags.
#include <immintrin.h>

#include "probe_bf16.hpp"

namespace sta::simd::detail {

double dpbf16_loop(long iters) {
  // 24 independent accumulators: more than latency x ports, so only throughput limits.
  constexpr int kAcc = 24;
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  // Small values (1 + 2^-7 and about 1e-3) keep every sum finite whatever the count.
  const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x3f813f81));
  __m512bh b = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x3a833a83));
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    // An empty asm that "may change" b stops the compiler from hoisting or folding the loop.
    __asm__ volatile("" : "+v"(b));
  }
  // The results "are used": the dependency chains cannot be dropped.
#pragma GCC unroll 32
  for (int i = 0; i < kAcc; ++i) __asm__ volatile("" : : "v"(acc[i]));
  return static_cast<double>(iters) * kAcc * 16 * 2 * 2;
}

}  // namespace sta::simd::detail
