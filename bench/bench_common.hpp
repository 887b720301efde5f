// Helpers the attention benchmarks share (bench_attention.cpp, bench_backward.cpp): process
// CPU time, seeded N(0,1) inputs made once per size, and the query-key pairs a run covers.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "sta/attention.hpp"
#include "sta/blocks.hpp"
#include "sta/shape.hpp"

namespace sta::bench {

/// CPU seconds used by the whole process (all threads). On a shared machine wall time also
/// counts other programs' time slices; CPU time does not.
inline double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// `tensors` arrays of `elements` N(0,1) floats from `seed`, made once per (size, count, seed)
/// and shared by every benchmark that asks for them.
inline const std::vector<std::vector<float>>& normal_inputs(int64_t elements, int tensors, uint64_t seed) {
  static std::map<std::pair<int64_t, std::pair<int, uint64_t>>, std::vector<std::vector<float>>> cache;
  auto& in = cache[{elements, {tensors, seed}}];
  if (in.empty()) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    in.resize(static_cast<size_t>(tensors));
    for (auto& t : in) {
      t.resize(static_cast<size_t>(elements));
      for (float& x : t) x = normal(rng);
    }
  }
  return in;
}

/// Query-key pairs the mask allows over the whole sequence (video by the classifier, text by
/// SPEC section 4), and pairs inside the blocks a kernel computed (`did_one_head`).
struct PairCounts {
  double allowed = 0;
  double computed = 0;
};
inline PairCounts pair_counts(const Geometry& g, const BlockStats& video, const BlockCounts& did_one_head) {
  const double v = static_cast<double>(g.video_tokens());
  const double bt = static_cast<double>(g.tile_tokens());
  const double text_pairs = v * static_cast<double>(g.text_length) +
                            static_cast<double>(g.text_pad) * static_cast<double>(g.valid_keys());
  PairCounts p;
  p.allowed = static_cast<double>(video.allowed_pairs) + text_pairs;
  p.computed = static_cast<double>(did_one_head.dense + did_one_head.mixed) * bt * bt + text_pairs;
  return p;
}

/// The counters every attention row reports: the kernel's block counts, the mask's sparsity,
/// the team size, GFLOP/s over the allowed and over the computed pairs (`flop_per_pair`: 4 D
/// for the forward's two GEMMs, 10 D for the backward's five), and the process CPU ms per
/// iteration. `heads` heads of the same mask (their block counts summed in `stats`).
inline void set_attention_counters(benchmark::State& state, const Geometry& g, const Mask& mask,
                                   const AttentionStats& stats, double flop_per_pair,
                                   double cpu_seconds, int64_t heads = 1) {
  using benchmark::Counter;
  const BlockStats video = classify_blocks(g, mask);
  BlockCounts one_head = stats.counts;
  one_head.dense /= heads;
  one_head.mixed /= heads;
  PairCounts pairs = pair_counts(g, video, one_head);
  pairs.allowed *= static_cast<double>(heads);
  pairs.computed *= static_cast<double>(heads);
  state.counters["dense"] = static_cast<double>(stats.counts.dense);
  state.counters["mixed"] = static_cast<double>(stats.counts.mixed);
  state.counters["empty"] = static_cast<double>(stats.counts.empty);
  state.counters["sparsity"] = video.sparsity();
  state.counters["omp_threads"] = stats.threads;
  state.counters["GFLOP/s"] = Counter(1e-9 * flop_per_pair * pairs.allowed, Counter::kIsIterationInvariantRate);
  state.counters["computed_GFLOP/s"] =
      Counter(1e-9 * flop_per_pair * pairs.computed, Counter::kIsIterationInvariantRate);
  state.counters["cpu_ms"] = Counter(1e3 * cpu_seconds, Counter::kAvgIterations);
}

}  // namespace sta::bench
