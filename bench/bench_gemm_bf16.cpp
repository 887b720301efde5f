// The bf16 GEMM micro-kernels (simd/gemm.hpp) at the flash shape, one thread, beside the peak
// probes of their instruction sets and the fp32 families, in one run:
//   sta_bench --benchmark_filter='GemmBf16' --benchmark_repetitions=5
// GemmBf16/<qk|pv|pv_overwrite|pv_add>/<family>/<D>: S = Q K^T (384 x 384, k = D), and
// O = alpha O + P V, O = P V, or O += P V (alpha all ones: the backward's dQ, dK, dV)
// (384 x D, k = 384 keys), with GFLOP/s = 2 m n k per call; GemmBf16/probe/<isa>: the
// probe's GFLOP/s (simd/probe_bf16.hpp). Families this CPU cannot run are reported as skipped.
// Every operand is 64-byte aligned (strides too), as the flash loop should hand them; the
// .../misaligned rows shift every buffer by 16 bytes (what plain std::vector storage gives):
// AMX tile rows then straddle two cache lines and run about half as fast.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "probe_bf16.hpp"

namespace {

using namespace sta::simd;

constexpr int64_t kRows = 384;  // FastVideo's tile: 6 x 8 x 8 queries against as many keys
constexpr int64_t kKeys = 384;

/// A buffer of n values starting at a 64-byte boundary plus `shift` bytes.
template <class T>
struct Buffer {
  std::vector<unsigned char> storage;
  T* ptr = nullptr;
  void resize(int64_t n, int64_t shift) {
    storage.assign(static_cast<size_t>(n) * sizeof(T) + 128, 0);
    const uintptr_t base = reinterpret_cast<uintptr_t>(storage.data());
    ptr = reinterpret_cast<T*>((base + 63) / 64 * 64 + static_cast<uintptr_t>(shift));
  }
  T* data() const { return ptr; }
};

/// The operands of both GEMMs in a family's layouts (bf16 or fp32), filled with values in
/// [-1, 1] (P in [0, 1)); `shift` bytes past 64-byte alignment.
struct Operands {
  Buffer<float> qf, pf, kf, vf, s, o;
  Buffer<bf16_t> qb, pb, kb, vb;
  std::vector<float> alpha;
  int64_t ldq = 0, ldp = 0;

  Operands(const GemmKernels& fam, int64_t dim, int64_t shift) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> sym(-1.0f, 1.0f), unit(0.0f, 1.0f);
    std::vector<float> q(kRows * dim), k(kKeys * dim), v(kKeys * dim), p(kRows * kKeys);
    for (float& x : q) x = sym(rng);
    for (float& x : k) x = sym(rng);
    for (float& x : v) x = sym(rng);
    for (float& x : p) x = unit(rng);
    const int64_t rows_alloc = (kRows + 31) / 32 * 32;
    ldp = kKeys;
    if (fam.bf16()) {
      ldq = padded_dim_bf16(dim);
      qb.resize(rows_alloc * ldq, shift);
      pb.resize(rows_alloc * ldp, shift);
      rows_to_bf16(q.data(), dim, kRows, dim, ldq, qb.data(), ldq);
      rows_to_bf16(p.data(), kKeys, kRows, kKeys, ldp, pb.data(), ldp);
      kb.resize(packed_k_elements(fam.layout, kKeys, dim), shift);
      vb.resize(packed_v_elements(fam.layout, kKeys, dim), shift);
      pack_k(fam.layout, k.data(), dim, kKeys, dim, 0, kKeys, kb.data());
      pack_v(fam.layout, v.data(), dim, kKeys, dim, 0, kKeys, vb.data());
    } else {
      ldq = dim;
      qf.resize(rows_alloc * ldq, shift);
      pf.resize(rows_alloc * ldp, shift);
      std::copy(q.begin(), q.end(), qf.data());
      std::copy(p.begin(), p.end(), pf.data());
      kf.resize(packed_k_elements(fam.layout, kKeys, dim), shift);
      vf.resize(packed_v_elements(fam.layout, kKeys, dim), shift);
      pack_k(fam.layout, k.data(), dim, kKeys, dim, 0, kKeys, kf.data());
      pack_v(fam.layout, v.data(), dim, kKeys, dim, 0, kKeys, vf.data());
    }
    s.resize(rows_alloc * kKeys, shift);
    o.resize(rows_alloc * dim, shift);
    alpha.assign(rows_alloc, 0.999f);  // near 1: O stays bounded over many iterations
  }
  const void* q() const { return qb.data() != nullptr ? static_cast<const void*>(qb.data()) : qf.data(); }
  const void* p() const { return pb.data() != nullptr ? static_cast<const void*>(pb.data()) : pf.data(); }
  const void* k() const { return kb.data() != nullptr ? static_cast<const void*>(kb.data()) : kf.data(); }
  const void* v() const { return vb.data() != nullptr ? static_cast<const void*>(vb.data()) : vf.data(); }
};

void set_rate(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  state.counters["GFLOP/s"] = benchmark::Counter(1e-9 * 2.0 * static_cast<double>(m * n * k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Qk(benchmark::State& state, const char* family, int64_t dim, int64_t shift) {
  const GemmKernels* fam = find_gemm_kernels(family);
  if (fam == nullptr) {
    state.SkipWithError((std::string(family) + " not usable here").c_str());
    return;
  }
  Operands op(*fam, dim, shift);
  for (auto _ : state) {
    fam->qk(op.q(), op.ldq, kRows, dim, op.k(), kKeys, op.s.data(), kKeys);
    benchmark::DoNotOptimize(op.s.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(fam->name);
  set_rate(state, kRows, kKeys, dim);
}

/// What BM_Pv passes as alpha: none (O = P V), 0.999 (the flash loop's rescaling), ones (O += P V).
enum class PvAlpha { kNone, kRescale, kOnes };

void BM_Pv(benchmark::State& state, const char* family, int64_t dim, int64_t shift, PvAlpha mode) {
  const GemmKernels* fam = find_gemm_kernels(family);
  if (fam == nullptr) {
    state.SkipWithError((std::string(family) + " not usable here").c_str());
    return;
  }
  Operands op(*fam, dim, shift);
  const int64_t stride = packed_v_panel_stride(fam->layout, kKeys, dim);
  const std::vector<float> ones(op.alpha.size(), 1.0f);
  const float* alpha = mode == PvAlpha::kNone ? nullptr : mode == PvAlpha::kOnes ? ones.data() : op.alpha.data();
  for (auto _ : state) {
    // The flash loop's steady state (O rescaled by alpha and accumulated), its first key
    // block (O = P V), or the backward's accumulation.
    fam->pv(op.p(), op.ldp, kRows, kKeys, op.v(), stride, dim, alpha, op.o.data(), dim);
    benchmark::DoNotOptimize(op.o.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(fam->name);
  set_rate(state, kRows, dim, kKeys);
}

void BM_Probe(benchmark::State& state, double (*probe)(double)) {
  double gflops = 0.0;
  for (auto _ : state) gflops = probe(0.02);
  if (gflops == 0.0) {
    state.SkipWithError("instruction set not usable here");
    return;
  }
  state.counters["GFLOP/s"] = gflops;
}

const bool kRegistered = [] {
  // The bf16 families, then fp32 ones for comparison (skipped where missing).
  const char* const families[] = {"amx-bf16", "avx512bf16-bf16", "avx512-f32", "openblas"};
  for (int64_t dim : {64, 128}) {
    for (const char* fam : families) {
      for (int64_t shift : {0, 16}) {
        if (shift != 0 && std::string(fam) != "amx-bf16") continue;
        const std::string tail =
            std::string(fam) + "/" + std::to_string(dim) + (shift != 0 ? "/misaligned" : "");
        benchmark::RegisterBenchmark(("GemmBf16/qk/" + tail).c_str(), BM_Qk, fam, dim, shift)
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("GemmBf16/pv/" + tail).c_str(), BM_Pv, fam, dim, shift,
                                     PvAlpha::kRescale)
            ->Unit(benchmark::kMicrosecond);
        if (shift == 0) {
          benchmark::RegisterBenchmark(("GemmBf16/pv_overwrite/" + tail).c_str(), BM_Pv, fam, dim,
                                       shift, PvAlpha::kNone)
              ->Unit(benchmark::kMicrosecond);
          benchmark::RegisterBenchmark(("GemmBf16/pv_add/" + tail).c_str(), BM_Pv, fam, dim, shift,
                                       PvAlpha::kOnes)
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  benchmark::RegisterBenchmark("GemmBf16/probe/avx512bf16", BM_Probe, probe_avx512bf16_gflops)
      ->Iterations(3)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("GemmBf16/probe/amx-bf16", BM_Probe, probe_amx_bf16_gflops)
      ->Iterations(3)
      ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
