// The GEMM micro-kernels of the flash loop (simd/gemm.hpp) at the flash shape, every usable
// family side by side, with the fp32 FMA peak probes (simd/probe.hpp) of the same run:
//   sta_bench --benchmark_filter=Gemm --benchmark_repetitions=5
// Rows:
//   Gemm/probe/fma_f32_<isa>                one core's fp32 FMA peak (independent chains)
//   Gemm/qk/<family>/<rows>x384xD           S = Q K^T, rows x 384 keys, k-dimension D
//   Gemm/pv/<family>/<rows>xDx384           O = alpha O + P V, rows x D, k-dimension 384 keys
// rows = 384 (a whole query tile against a whole key tile), 32 for the scalar families (slow).
// Counters: GFLOP/s = 2 m n k per call over CPU time (robust to the other programs on a
// shared machine); peak_GFLOP/s = the probe of the family's instruction set, measured just
// before the row's timed loop (best ~5 ms slice of 0.1 s: on a shared machine one probe at
// start-up can land in a busy moment and put later rows above 100 %); pct_peak = GFLOP/s
// over it. Families without an fp32 probe (bf16, scalar) get neither.
// Buffers are 64-byte aligned, as the flash loop's packed K/V and S should be: with
// malloc's 16-byte offset every zmm panel load splits over two cache lines (measured 5-7 %
// slower for avx512-f32, 3-5 % for avx2-f32).
// Registered at static-initialisation time, so this file adds rows to sta_bench's main.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "probe.hpp"
#include "softmax.hpp"

namespace {

namespace simd = sta::simd;

constexpr int64_t kKeys = 384;  // one key tile (6 x 8 x 8 tokens)

/// Cache-line aligned storage for the operands (see the header comment).
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const Aligned64<U>&) const { return true; }
  template <class U>
  bool operator!=(const Aligned64<U>&) const { return false; }
};
template <class T>
using AlignedVector = std::vector<T, Aligned64<T>>;

/// The fp32 FMA peak (GFLOP/s) a family is measured against, measured now; 0 if none applies.
double family_peak(const simd::GemmKernels& fam) {
  constexpr double kSeconds = 0.1;
  const bool avx512 = simd::isa_supported(simd::Isa::kAvx512);
  const bool avx2 = simd::isa_supported(simd::Isa::kAvx2);
  if (fam.bf16()) return 0.0;
  // OpenBLAS picks its own kernels: measured against the widest fp32 peak this core has.
  const bool blas = std::strncmp(fam.name, "openblas", 8) == 0;
  if ((std::strncmp(fam.name, "avx512", 6) == 0 || blas) && avx512) {
    return simd::fma_peak_f32_avx512(kSeconds);
  }
  if ((std::strncmp(fam.name, "avx2", 4) == 0 || blas) && avx2) {
    return simd::fma_peak_f32_avx2(kSeconds);
  }
  return 0.0;
}

/// Operands of one flash step in the family's layouts: Q (rows x D), one packed K/V tile of
/// kKeys keys, P (rows x kKeys, softmax-like values), S, O and alpha.
struct Operands {
  AlignedVector<float> q32, p32, k32, v32;
  AlignedVector<simd::bf16_t> q16, p16, k16, v16;
  int64_t ldq = 0, ldp = kKeys;
  AlignedVector<float> s, o, alpha;

  Operands(const simd::GemmKernels& fam, int64_t rows, int64_t dim) {
    std::mt19937_64 rng(2024);
    std::uniform_real_distribution<float> sym(-1.0f, 1.0f), unit(0.0f, 1.0f);
    const int64_t rows_alloc = (rows + 31) / 32 * 32;
    std::vector<float> q(static_cast<size_t>(rows_alloc * dim)), p(static_cast<size_t>(rows_alloc * kKeys));
    std::vector<float> k(static_cast<size_t>(kKeys * dim)), v(static_cast<size_t>(kKeys * dim));
    for (float& x : q) x = sym(rng);
    for (float& x : k) x = sym(rng);
    for (float& x : v) x = sym(rng);
    for (float& x : p) x = unit(rng);
    const int64_t nk = simd::packed_k_elements(fam.layout, kKeys, dim);
    const int64_t nv = simd::packed_v_elements(fam.layout, kKeys, dim);
    if (fam.bf16()) {
      ldq = simd::padded_dim_bf16(dim);
      q16.resize(static_cast<size_t>(rows_alloc * ldq));
      p16.resize(static_cast<size_t>(rows_alloc * ldp));
      simd::rows_to_bf16(q.data(), dim, rows_alloc, dim, ldq, q16.data(), ldq);
      simd::rows_to_bf16(p.data(), kKeys, rows_alloc, kKeys, ldp, p16.data(), ldp);
      k16.resize(static_cast<size_t>(nk));
      v16.resize(static_cast<size_t>(nv));
      simd::pack_k(fam.layout, k.data(), dim, kKeys, dim, 0, kKeys, k16.data());
      simd::pack_v(fam.layout, v.data(), dim, kKeys, dim, 0, kKeys, v16.data());
    } else {
      ldq = dim;
      q32.assign(q.begin(), q.end());
      p32.assign(p.begin(), p.end());
      k32.resize(static_cast<size_t>(nk));
      v32.resize(static_cast<size_t>(nv));
      simd::pack_k(fam.layout, k.data(), dim, kKeys, dim, 0, kKeys, k32.data());
      simd::pack_v(fam.layout, v.data(), dim, kKeys, dim, 0, kKeys, v32.data());
    }
    s.assign(static_cast<size_t>(rows_alloc * kKeys), 0.0f);
    o.assign(static_cast<size_t>(rows_alloc * dim), 0.5f);
    alpha.assign(static_cast<size_t>(rows_alloc), 0.75f);
  }
  const void* q() const { return q16.empty() ? static_cast<const void*>(q32.data()) : q16.data(); }
  const void* p() const { return p16.empty() ? static_cast<const void*>(p32.data()) : p16.data(); }
  const void* k() const { return k16.empty() ? static_cast<const void*>(k32.data()) : k16.data(); }
  const void* v() const { return v16.empty() ? static_cast<const void*>(v32.data()) : v16.data(); }
};

void set_counters(benchmark::State& state, double peak, double flops) {
  using benchmark::Counter;
  state.counters["GFLOP/s"] = Counter(1e-9 * flops, Counter::kIsIterationInvariantRate);
  if (peak > 0.0) {
    state.counters["peak_GFLOP/s"] = peak;
    // kIsIterationInvariantRate divides by CPU seconds: the share of the probe's GFLOP/s.
    state.counters["pct_peak"] = Counter(1e-7 * flops / peak, Counter::kIsIterationInvariantRate);
  }
}

void BM_Qk(benchmark::State& state, const simd::GemmKernels* fam, int64_t rows, int64_t dim) {
  Operands op(*fam, rows, dim);
  const double peak = family_peak(*fam);
  for (auto _ : state) {
    fam->qk(op.q(), op.ldq, rows, dim, op.k(), kKeys, op.s.data(), kKeys);
    benchmark::DoNotOptimize(op.s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, peak, 2.0 * rows * kKeys * dim);
}

void BM_Pv(benchmark::State& state, const simd::GemmKernels* fam, int64_t rows, int64_t dim) {
  Operands op(*fam, rows, dim);
  const double peak = family_peak(*fam);
  const int64_t stride = simd::packed_v_panel_stride(fam->layout, kKeys, dim);
  for (auto _ : state) {
    // alpha != nullptr: the flash loop's steady state (every key tile after the first).
    fam->pv(op.p(), op.ldp, rows, kKeys, op.v(), stride, dim, op.alpha.data(), op.o.data(), dim);
    benchmark::DoNotOptimize(op.o.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, peak, 2.0 * rows * kKeys * dim);
}

void BM_Probe(benchmark::State& state, int64_t (*run)(int64_t)) {
  double flops = 0.0;
  for (auto _ : state) flops += static_cast<double>(run(256));
  state.counters["GFLOP/s"] = benchmark::Counter(1e-9 * flops, benchmark::Counter::kIsRate);
}

bool register_gemm_benchmarks() {
  if (simd::isa_supported(simd::Isa::kAvx512)) {
    benchmark::RegisterBenchmark("Gemm/probe/fma_f32_avx512", BM_Probe, simd::fma_f32_avx512_run);
  }
  if (simd::isa_supported(simd::Isa::kAvx2)) {
    benchmark::RegisterBenchmark("Gemm/probe/fma_f32_avx2", BM_Probe, simd::fma_f32_avx2_run);
  }
  for (bool bf16 : {false, true}) {
    int count = 0;
    const simd::GemmKernels* const* fams = simd::available_gemm_kernels(bf16, &count);
    for (int i = 0; i < count; ++i) {
      const simd::GemmKernels* fam = fams[i];
      const bool slow = std::strncmp(fam->name, "scalar", 6) == 0;
      const int64_t rows = slow ? 32 : 384;
      for (int64_t dim : {64, 128}) {
        const std::string r = std::to_string(rows), d = std::to_string(dim);
        benchmark::RegisterBenchmark(
            ("Gemm/qk/" + std::string(fam->name) + "/" + r + "x384x" + d).c_str(), BM_Qk, fam,
            rows, dim)->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(
            ("Gemm/pv/" + std::string(fam->name) + "/" + r + "x" + d + "x384").c_str(), BM_Pv,
            fam, rows, dim)->Unit(benchmark::kMicrosecond);
      }
    }
  }
  return true;
}

// Static registration: sta_bench's main (bench_attention.cpp) runs every registered row.
const bool kRegistered = register_gemm_benchmarks();

}  // namespace
