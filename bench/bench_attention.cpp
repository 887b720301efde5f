// The paper's Table 2 on a CPU: dense attention, tiled NATTEN (swa) and STA, side by side in
// one run with an OpenBLAS sgemm roofline. One benchmark function per backend, all registered
// over the same problem sets:
//   Quick/...   a scaled-down Table 2 (canvas 12x32x40), the whole set in well under a minute:
//               sta_bench --benchmark_filter=Quick
//   Table2/...  the paper's shape (one head, D=128, canvas 30x48x80, tile 6x8x8, no text);
//               opt-in, minutes: sta_bench --benchmark_filter=Table2 --benchmark_repetitions=3
// scripts/bench_table.py turns --benchmark_out=X.json --benchmark_out_format=json into the
// Markdown table (speedups over dense, sparsity, blocks, share of the sgemm roofline).
//
// Counters per attention run: dense / mixed / empty = the kernel's own block counters,
// sparsity = masked fraction of the video attention map, GFLOP/s = useful FLOPs (4 D per
// allowed query-key pair) per second, computed_GFLOP/s = FLOPs of the blocks the kernel
// actually computed (4 D per pair of every dense or mixed block), omp_threads = OpenMP threads,
// cpu_ms = CPU time of all threads per iteration (robust to other programs on the machine).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/blocks.hpp"
#include "sta/mask.hpp"
#include "bench_common.hpp"
#include "gemm.hpp"
#include "probe.hpp"
#include "probe_bf16.hpp"
#include "softmax.hpp"

namespace {

using sta::Backend;
using sta::Extent3;
using sta::Mask;

/// One problem set: a geometry, a head dim, and the masks each backend runs on it.
struct ProblemSet {
  std::string name;
  sta::Geometry geometry;
  int64_t dim = 128;
  std::vector<std::string> dense_masks;
  std::vector<std::string> natten_masks;
  std::vector<std::string> sta_masks;
};

std::vector<ProblemSet> problem_sets() {
  ProblemSet quick;
  quick.name = "Quick";
  quick.geometry.canvas = {12, 32, 40};  // 2 x 4 x 5 tiles of 6 x 8 x 8
  quick.geometry.tile = {6, 8, 8};
  quick.dense_masks = {"full"};
  quick.natten_masks = {"swa:11,17,17"};
  quick.sta_masks = {"sta:3,3,3", "sta:1,3,3"};

  ProblemSet table2;  // STA paper, Table 2 (HunyuanVideo 720p latent, one head)
  table2.name = "Table2";
  table2.geometry.canvas = {30, 48, 80};  // 5 x 6 x 10 tiles
  table2.geometry.tile = {6, 8, 8};
  table2.dense_masks = {"full"};
  table2.natten_masks = {"swa:19,25,25"};
  table2.sta_masks = {"sta:5,5,5", "sta:3,3,3"};
  return {quick, table2};
}

using sta::bench::process_cpu_seconds;
using sta::bench::set_attention_counters;

/// q, k, v of a sequence length: N(0,1), seed 2024, made once.
struct Inputs {
  const std::vector<float>& q;
  const std::vector<float>& k;
  const std::vector<float>& v;
};
Inputs inputs_for(int64_t elements) {
  const auto& t = sta::bench::normal_inputs(elements, 3, 2024);
  return {t[0], t[1], t[2]};
}

/// How the fast paths compute: the precision and the GEMM family ("" = the run-time choice).
struct Variant {
  std::string name;  ///< "fp32", "bf16", "fp32-openblas": the second part of the run name
  sta::Precision precision = sta::Precision::kFp32;
  std::string gemm;
};

std::vector<Variant> variants() {
  std::vector<Variant> out = {{"fp32", sta::Precision::kFp32, ""},
                              {"bf16", sta::Precision::kBf16, ""}};
  // The borrowed speed, side by side with our kernels (only if another family is the default).
  if (sta::gemm_kernel_name(sta::Precision::kFp32).rfind("openblas", 0) != 0) {
    out.push_back({"fp32-openblas", sta::Precision::kFp32, "openblas"});
  }
  return out;
}

void run_attention(benchmark::State& state, Backend backend, const ProblemSet& set,
                   const std::string& mask_text, const Variant& variant) {
  sta::AttentionOptions options;
  options.geometry = set.geometry;
  options.masks = {sta::parse_mask(mask_text)};
  options.precision = variant.precision;
  options.gemm = variant.gemm;
  const sta::AttentionShape shape{1, 1, set.geometry.seq_len(), set.dim};
  const Inputs in = inputs_for(shape.elements());
  std::vector<float> out(static_cast<size_t>(shape.elements()));
  std::vector<float> lse(static_cast<size_t>(shape.seq));
  sta::AttentionStats stats;
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
    stats = sta::attention(shape, options, in.q.data(), in.k.data(), in.v.data(), out.data(),
                           lse.data(), backend);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_attention_counters(state, set.geometry, options.masks[0], stats, 4.0 * static_cast<double>(set.dim),
                         process_cpu_seconds() - cpu_start);
  state.SetLabel(stats.gemm + ", softmax " + stats.isa);
}

// One function per backend (STYLE.md), registered over the same problem sets below.
void BM_Dense(benchmark::State& state, const ProblemSet& set, const std::string& mask,
              const Variant& variant) {
  run_attention(state, Backend::kDense, set, mask, variant);
}
void BM_Natten(benchmark::State& state, const ProblemSet& set, const std::string& mask,
               const Variant& variant) {
  run_attention(state, Backend::kNatten, set, mask, variant);
}
void BM_Sta(benchmark::State& state, const ProblemSet& set, const std::string& mask,
            const Variant& variant) {
  run_attention(state, Backend::kSta, set, mask, variant);
}

/// The roofline: OpenBLAS sgemm C = A B^T of one 384-row tile against one 384-key tile
/// (M = N = 384, K = D = 128), the shape of S = Q K^T. With `threads` > 1 every OpenMP thread
/// multiplies its own matrices (what the attention kernels do), BLAS itself single-threaded;
/// the rate counted is the total over threads.
void BM_Sgemm(benchmark::State& state, int64_t m, int64_t n, int64_t k, int threads) {
  openblas_set_num_threads(1);
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  std::vector<std::vector<float>> a(threads), b(threads), c(threads);
  for (int t = 0; t < threads; ++t) {
    a[t].assign(static_cast<size_t>(m * k), 0.5f);
    b[t].assign(static_cast<size_t>(n * k), 0.25f);
    c[t].assign(static_cast<size_t>(m * n), 0.0f);
  }
  constexpr int kCallsPerIteration = 16;
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      for (int i = 0; i < kCallsPerIteration; ++i) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, ni, ki, 1.0f, a[t].data(), ki,
                    b[t].data(), ki, 0.0f, c[t].data(), ni);
      }
    }
    benchmark::ClobberMemory();
  }
  state.counters["cpu_ms"] = benchmark::Counter(1e3 * (process_cpu_seconds() - cpu_start),
                                                benchmark::Counter::kAvgIterations);
  state.counters["omp_threads"] = threads;
  state.counters["GFLOP/s"] = benchmark::Counter(
      1e-9 * 2.0 * static_cast<double>(m * n * k) * kCallsPerIteration * threads,
      benchmark::Counter::kIsIterationInvariantRate);
}

/// Same-run peak of one instruction family on `threads` threads (each thread runs the probe
/// at once; the total is reported). bench_table.py divides each attention row's computed
/// GFLOP/s by the peak of its GEMM kernel's family.
void BM_Peak(benchmark::State& state, double (*probe)(double), int threads) {
  double total = 0.0;
  for (auto _ : state) {
    total = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += probe(0.2);
  }
  state.counters["GFLOP/s"] = total;
  state.counters["omp_threads"] = threads;
}

/// The AVX-512 FMA rate all `threads` keep up for 2 s together (total flops over the wall
/// time, not the best slice): on a server the all-core clock under sustained AVX-512 load can
/// sit below the 0.2 s probe's, and an attention row runs for seconds. Beside BM_Peak it tells
/// a clock limit from a loss in the kernels.
void BM_Sustained(benchmark::State& state, int threads) {
  using Clock = std::chrono::steady_clock;
  constexpr double kSeconds = 2.0;
  constexpr int64_t kReps = 2048;  // a few ms per call
  double gflops = 0.0;
  for (auto _ : state) {
    double flops = 0.0;
    const auto start = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    while (std::chrono::duration<double>(Clock::now() - start).count() < kSeconds)
      flops += static_cast<double>(sta::simd::fma_f32_avx512_run(kReps));
    gflops = 1e-9 * flops / std::chrono::duration<double>(Clock::now() - start).count();
  }
  state.counters["GFLOP/s"] = gflops;
  state.counters["omp_threads"] = threads;
}

double peak_fp32_avx512(double s) { return sta::simd::fma_peak_f32_avx512(s); }
double peak_fp32_avx2(double s) { return sta::simd::fma_peak_f32_avx2(s); }
double peak_bf16_dot(double s) { return sta::simd::probe_avx512bf16_gflops(s / 4); }
double peak_amx(double s) { return sta::simd::probe_amx_bf16_gflops(s / 4); }

void register_peaks(const std::string& set, int threads) {
  struct Probe {
    const char* kind;
    double (*fn)(double);
    bool usable;
  };
  const Probe probes[] = {
      {"fp32-fma-avx512", peak_fp32_avx512, sta::simd::isa_supported(sta::simd::Isa::kAvx512)},
      {"fp32-fma-avx2", peak_fp32_avx2, sta::simd::isa_supported(sta::simd::Isa::kAvx2)},
      {"bf16-dot-avx512bf16", peak_bf16_dot, sta::simd::find_gemm_kernels("avx512bf16-bf16") != nullptr},
      {"amx-bf16", peak_amx, sta::simd::find_gemm_kernels("amx-bf16") != nullptr},
  };
  if (sta::simd::isa_supported(sta::simd::Isa::kAvx512)) {
    for (int t : {1, threads}) {
      benchmark::RegisterBenchmark((set + "/sustained/fp32-fma-avx512/threads:" + std::to_string(t)).c_str(),
                                   BM_Sustained, t)
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
      if (threads == 1) break;
    }
  }
  for (const Probe& p : probes) {
    if (!p.usable) continue;
    for (int t : {1, threads}) {
      benchmark::RegisterBenchmark(
          (set + "/peak/" + p.kind + "/threads:" + std::to_string(t)).c_str(), BM_Peak, p.fn, t)
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
      if (threads == 1) break;
    }
  }
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

void register_benchmarks() {
  static const std::vector<ProblemSet> sets = problem_sets();
  static const std::vector<Variant> all_variants = variants();
  const int threads = omp_get_max_threads();
  for (const ProblemSet& set : sets) {
    const bool big = set.name == "Table2";
    auto tune = [&](benchmark::internal::Benchmark* b) {
      b->UseRealTime()->Unit(benchmark::kMillisecond);
      if (big) b->Iterations(1);  // tens of seconds per dense run
    };
    register_peaks(set.name, threads);
    for (int t : {1, threads}) {
      benchmark::RegisterBenchmark(
          (set.name + "/sgemm/384x384x128/threads:" + std::to_string(t)).c_str(), BM_Sgemm, 384,
          384, 128, t)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
      if (threads == 1) break;
    }
    for (const Variant& variant : all_variants) {
      const std::string prefix = set.name + "/" + variant.name + "/";
      for (const std::string& mask : set.dense_masks) {
        tune(benchmark::RegisterBenchmark((prefix + "dense/" + mask).c_str(), BM_Dense, set, mask, variant));
      }
      for (const std::string& mask : set.natten_masks) {
        tune(benchmark::RegisterBenchmark((prefix + "natten/" + mask).c_str(), BM_Natten, set, mask, variant));
      }
      for (const std::string& mask : set.sta_masks) {
        tune(benchmark::RegisterBenchmark((prefix + "sta/" + mask).c_str(), BM_Sta, set, mask, variant));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_model", cpu_model());
  benchmark::AddCustomContext("simd_isa", sta::simd_isa());
  benchmark::AddCustomContext("cpu", sta::cpu_description());
  benchmark::AddCustomContext("gemm_fp32", sta::gemm_kernel_name(sta::Precision::kFp32));
  benchmark::AddCustomContext("gemm_bf16", sta::gemm_kernel_name(sta::Precision::kBf16));
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
