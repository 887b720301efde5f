#pragma once
// Peak probes for the bf16 instruction sets of one core, to print beside the kernel benchmarks
// of the same run (bench/bench_gemm_bf16.cpp): the GFLOP/s of an endless stream of independent
// vdpbf16ps (AVX512-BF16) or TDPBF16PS (AMX) with operands in registers, 2 flops per
// multiply-add. Not a roofline from a data sheet: what this core, clock and neighbours give now.
// (The fp32 FMA probe lives in simd/probe.hpp.)

namespace sta::simd {

/// vdpbf16ps zmm throughput of the calling thread in GFLOP/s (16 lanes x 2 multiply-adds per
/// instruction); runs for about `seconds` and reports the best of a few runs. 0 where the
/// avx512bf16-bf16 family is not usable.
double probe_avx512bf16_gflops(double seconds = 0.05);

/// TDPBF16PS throughput of the calling thread in GFLOP/s (16 x 16 x 32 multiply-adds per
/// instruction, four independent C tiles); 0 where the amx-bf16 family is not usable.
double probe_amx_bf16_gflops(double seconds = 0.05);

namespace detail {
/// The instruction loops (per-ISA files): run `iters` rounds, return the flops executed.
double dpbf16_loop(long iters);
double tdpbf16_loop(long iters);
}  // namespace detail

}  // namespace sta::simd
