#pragma once
// Peak probes: the arithmetic peak of one core, measured in the same run as a kernel
// benchmark, so each kernel can be reported as a share of what this (possibly shared,
// throttled, virtualised) core really delivers rather than of a datasheet number.
// Each probe runs independent FMA chains, enough of them to cover FMA latency x ports, with
// no memory traffic. Compiled per instruction set (probe_avx512.cpp, probe_avx2.cpp): call a
// probe only where isa_supported() (softmax.hpp) says its instruction set runs.
// Other families add their own probes here (bf16 dot products, AMX) from their own files.
#include <cstdint>

namespace sta::simd {

/// Runs `reps` rounds of the AVX-512 fp32 FMA chains on the calling thread; returns the flops
/// done (2 per lane per FMA). For benchmark loops that time the calls themselves.
int64_t fma_f32_avx512_run(int64_t reps);
/// The same with AVX2 + FMA (8-lane ymm).
int64_t fma_f32_avx2_run(int64_t reps);

/// Measured fp32 FMA peak of one core with AVX-512, GFLOP/s: the best of repeated ~5 ms slices
/// over about `seconds` of wall time (the best slice filters out the other programs).
double fma_peak_f32_avx512(double seconds = 0.2);
/// The same with AVX2 + FMA.
double fma_peak_f32_avx2(double seconds = 0.2);

}  // namespace sta::simd
