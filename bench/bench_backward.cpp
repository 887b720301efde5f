// Backward rows of the Table 2 benchmark (SPEC 8): dq, dk, dv of dense attention, tiled
// NATTEN (swa) and STA, one function per backend over the same problem sets as the forward
// (bench_attention.cpp, which owns main()):
//   Quick-backward/...   canvas 12x32x40 (seconds): sta_bench --benchmark_filter=Quick
//   Quick-backward-4heads/...  the same, four heads in one call
//   Table2-backward/...  one head, D=128, canvas 30x48x80, tile 6x8x8 (minutes):
//                        sta_bench --benchmark_filter=Table2
// Each iteration also runs the forward just before the backward, outside the timed region
// (a training step has out and lse), and reports its wall and CPU time (forward_ms,
// forward_cpu_ms): the backward/forward ratio of two adjacent calls, not of rows minutes apart. scripts/bench_table.py prints each set as its own table, speedups over the dense
// backward of the same run, and the backward/forward ratio of each backend.
//
// Counters: dense / mixed / empty = the backward kernel's own block counters; GFLOP/s =
// useful FLOPs per second with 10 D per allowed query-key pair (five GEMMs: S, dP, dQ, dK,
// dV, each 2 D per pair; FlashAttention-2's count, 2.5x the forward's 4 D); computed_GFLOP/s
// the same over every pair of the blocks computed; cpu_ms = CPU time of all threads.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "sta/attention.hpp"
#include "sta/backward.hpp"
#include "sta/blocks.hpp"
#include "sta/mask.hpp"

namespace {

using sta::Backend;

struct BackwardSet {
  std::string name;
  sta::Geometry geometry;
  int64_t dim = 128;
  sta::Precision precision = sta::Precision::kFp32;
  int64_t heads = 1;  ///< heads of the same mask, in one call
  std::vector<std::pair<Backend, std::string>> runs;  ///< backend, mask
};

std::vector<BackwardSet> backward_sets() {
  BackwardSet quick;
  quick.name = "Quick-backward";
  quick.geometry.canvas = {12, 32, 40};
  quick.geometry.tile = {6, 8, 8};
  quick.runs = {{Backend::kDense, "full"}, {Backend::kNatten, "swa:11,17,17"},
                {Backend::kSta, "sta:3,3,3"}, {Backend::kSta, "sta:1,3,3"}};
  BackwardSet table2;  // STA paper, Table 2 (HunyuanVideo 720p latent, one head)
  table2.name = "Table2-backward";
  table2.geometry.canvas = {30, 48, 80};
  table2.geometry.tile = {6, 8, 8};
  table2.runs = {{Backend::kDense, "full"}, {Backend::kNatten, "swa:19,25,25"},
                 {Backend::kSta, "sta:5,5,5"}, {Backend::kSta, "sta:3,3,3"}};
  // SPEC 8's bf16 mode, backward and forward on the bf16 GEMM family (amx-bf16 where AMX
  // exists; an exact emulation on the fp32 kernels where none is chosen).
  BackwardSet quick_bf16 = quick;
  quick_bf16.name = "Quick-backward-bf16";
  quick_bf16.precision = sta::Precision::kBf16;
  quick_bf16.runs = {{Backend::kDense, "full"}, {Backend::kSta, "sta:3,3,3"}};
  // The Hunyuan preset's text (226 real tokens padded to 256): text queries attend every key
  // and every query attends the text keys, so the text rows visit every key block.
  BackwardSet text;
  text.name = "Table2-backward-text";
  text.geometry = table2.geometry;
  text.geometry.text_length = 226;
  text.geometry.text_pad = 256;
  text.runs = {{Backend::kNatten, "swa:19,25,25"}, {Backend::kSta, "sta:3,3,3"}};
  BackwardSet table2_bf16 = table2;
  table2_bf16.name = "Table2-backward-bf16";
  table2_bf16.precision = sta::Precision::kBf16;
  // Four heads in one call: the backward computes them side by side (their tasks
  // interleaved), which is where many threads help (one head's tasks that run together
  // wait for each other's key blocks).
  BackwardSet heads4 = quick;
  heads4.name = "Quick-backward-4heads";
  heads4.heads = 4;
  heads4.runs = {{Backend::kDense, "full"}, {Backend::kSta, "sta:3,3,3"}};
  return {quick, quick_bf16, heads4, table2, table2_bf16, text};
}

void run_backward(benchmark::State& state, Backend backend, const BackwardSet& set,
                  const std::string& mask_text) {
  using sta::bench::process_cpu_seconds;
  sta::AttentionOptions options;
  options.geometry = set.geometry;
  options.masks = {sta::parse_mask(mask_text)};
  options.precision = set.precision;
  const sta::AttentionShape shape{1, set.heads, set.geometry.seq_len(), set.dim};
  // q, k, v, dout: N(0,1), seed 2025 (not the forward rows' inputs).
  const auto& in = sta::bench::normal_inputs(shape.elements(), 4, 2025);
  const float *q = in[0].data(), *k = in[1].data(), *v = in[2].data(), *dout = in[3].data();
  const size_t n = static_cast<size_t>(shape.elements());
  std::vector<float> out(n), lse(static_cast<size_t>(shape.heads * shape.seq)), dq(n), dk(n), dv(n);
  sta::AttentionStats stats;
  // Each iteration runs the forward (untimed, measured on its own) just before the backward:
  // the backward/forward ratio compares two calls made seconds apart under the same load.
  double forward_wall = 0.0, forward_cpu = 0.0, backward_cpu = 0.0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto w0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    sta::attention(shape, options, q, k, v, out.data(), lse.data(), backend);
    forward_cpu += process_cpu_seconds() - c0;
    forward_wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    state.ResumeTiming();
    const double c1 = process_cpu_seconds();
    stats = sta::attention_backward(shape, options, q, k, v, out.data(), lse.data(), dout, dq.data(),
                                    dk.data(), dv.data(), backend);
    benchmark::DoNotOptimize(dq.data());
    benchmark::ClobberMemory();
    backward_cpu += process_cpu_seconds() - c1;
  }
  sta::bench::set_attention_counters(state, set.geometry, options.masks[0], stats,
                                     10.0 * static_cast<double>(set.dim), backward_cpu, set.heads);
  using benchmark::Counter;
  state.counters["forward_ms"] = Counter(1e3 * forward_wall, Counter::kAvgIterations);
  state.counters["forward_cpu_ms"] = Counter(1e3 * forward_cpu, Counter::kAvgIterations);
  state.SetLabel(stats.isa + " " + stats.gemm + " " + sta::to_string(stats.precision));
}

// One function per backend (STYLE.md), registered over the same problem sets.
void BM_DenseBackward(benchmark::State& state, const BackwardSet& set, const std::string& mask) {
  run_backward(state, Backend::kDense, set, mask);
}
void BM_NattenBackward(benchmark::State& state, const BackwardSet& set, const std::string& mask) {
  run_backward(state, Backend::kNatten, set, mask);
}
void BM_StaBackward(benchmark::State& state, const BackwardSet& set, const std::string& mask) {
  run_backward(state, Backend::kSta, set, mask);
}

// Registered at static-initialisation time: bench_attention.cpp's main() runs them all.
const bool kRegistered = [] {
  static const std::vector<BackwardSet> sets = backward_sets();
  for (const BackwardSet& set : sets) {
    for (const auto& [backend, mask] : set.runs) {
      auto fn = backend == Backend::kDense    ? BM_DenseBackward
                : backend == Backend::kNatten ? BM_NattenBackward
                                              : BM_StaBackward;
      auto* b = benchmark::RegisterBenchmark(
          (set.name + "/" + sta::to_string(backend) + "/" + mask).c_str(), fn, set, mask);
      b->UseRealTime()->Unit(benchmark::kMillisecond);
      if (set.name.rfind("Table2-backward", 0) == 0) b->Iterations(1);  // minutes per dense run
    }
  }
  return true;
}();

}  // namespace
