#pragma once
// Body of the fp32 FMA peak probes (probe.hpp), instantiated per instruction set by
// probe_avx512.cpp and probe_avx2.cpp. Include only from those files: everything stays in an
// anonymous namespace so no copy compiled for one ISA can be picked for another.
#include <chrono>
#include <cstdint>

namespace sta::simd {
namespace {

/// kChains independent accumulators: FMA latency 4 cycles x 2 ports needs 8, more covers
/// cores with longer latency; but all of them plus the two constants must stay in registers
/// (16 ymm for AVX2: a spilled chain would measure the load/store ports instead).
/// `Vec` ops are the intrinsics passed in by the caller.
template <class Vec, int kChains, Vec (*kSet1)(float), Vec (*kFma)(Vec, Vec, Vec),
          Vec (*kAdd)(Vec, Vec), float (*kFirst)(Vec)>
int64_t fma_chains(int64_t reps, int lanes) {
  constexpr int kInner = 64;  // FMAs per chain per rep: the loop overhead stays negligible
  Vec acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = kSet1(1.0f + 0.001f * i);
  // acc = acc * m + c converges to c / (1 - m) = 1: no overflow, no denormals.
  const Vec m = kSet1(0.999f), c = kSet1(0.001f);
  for (int64_t rep = 0; rep < reps; ++rep) {
    for (int j = 0; j < kInner; ++j) {
#pragma GCC unroll 16
      for (int i = 0; i < kChains; ++i) acc[i] = kFma(acc[i], m, c);
    }
  }
  // The volatile sink keeps the chains alive; without -ffast-math no compiler may fold an
  // FMA recurrence (PeakProbe tests catch an impossible rate if one ever does).
  Vec sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = kAdd(sum, acc[i]);
  volatile float sink = kFirst(sum);
  static_cast<void>(sink);
  return reps * kInner * kChains * 2 * static_cast<int64_t>(lanes);
}

/// Best GFLOP/s of ~5 ms slices of `run` over about `seconds`.
inline double best_rate(int64_t (*run)(int64_t), double seconds) {
  using Clock = std::chrono::steady_clock;
  int64_t reps = 64;
  for (;;) {  // size a slice to ~5 ms
    const auto t0 = Clock::now();
    run(reps);
    if (std::chrono::duration<double>(Clock::now() - t0).count() > 0.005) break;
    reps *= 2;
  }
  double best = 0.0;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    const int64_t flops = run(reps);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (flops / dt > best) best = flops / dt;
  } while (std::chrono::duration<double>(Clock::now() - start).count() < seconds);
  return best * 1e-9;
}

}  // namespace
}  // namespace sta::simd
