// Run-time choice of the GEMM micro-kernels (baseline flags: this file runs on any x86-64).
// A family is a plain value; the best usable one is picked once per process, STA_GEMM can
// force another one (for tests and benchmarks), and the name goes into every stats file.
#include <cblas.h>
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "probe.hpp"
#include "probe_bf16.hpp"
#include "softmax.hpp"

namespace sta::simd {
namespace {

// ---- OpenBLAS as a family (fp32, row-major padded K and V): the borrowed speed, kept
// selectable so the benchmark can show both. Single-threaded inside our OpenMP tasks.
void qk_openblas(const void* q, int64_t ldq, int64_t rows, int64_t dim, const void* k,
                 int64_t ncols, float* s, int64_t lds) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
              static_cast<int>(ncols), static_cast<int>(dim), 1.0f, static_cast<const float*>(q),
              static_cast<int>(ldq), static_cast<const float*>(k), static_cast<int>(dim), 0.0f, s,
              static_cast<int>(lds));
}

void pv_openblas(const void* p, int64_t ldp, int64_t rows, int64_t kcols, const void* v,
                 int64_t /*stride*/, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  if (alpha != nullptr) {
    for (int64_t r = 0; r < rows; ++r) {
      if (alpha[r] == 1.0f) continue;
      for (int64_t c = 0; c < dim; ++c) o[r * ldo + c] *= alpha[r];
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
              static_cast<int>(dim), static_cast<int>(kcols), 1.0f, static_cast<const float*>(p),
              static_cast<int>(ldp), static_cast<const float*>(v), static_cast<int>(dim),
              alpha != nullptr ? 1.0f : 0.0f, o, static_cast<int>(ldo));
}

std::string openblas_name() {
  openblas_set_num_threads(1);  // BLAS runs inside each OpenMP task: never oversubscribe
  const char* core = openblas_get_corename();
  return std::string("openblas:") + (core != nullptr ? core : "unknown");
}

bool always() { return true; }
bool avx512() { return isa_supported(Isa::kAvx512); }
bool avx2() { return isa_supported(Isa::kAvx2); }

// ---- bf16 instruction sets: CPUID says the core has them, XCR0 says the OS saves their state.
struct Cpuid {
  unsigned a = 0, b = 0, c = 0, d = 0;
};
Cpuid cpuid(unsigned leaf, unsigned sub) {
  Cpuid r;
  if (__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d) == 0) return Cpuid{};
  return r;
}
/// XCR0 (the state components the OS enabled), or 0 without OSXSAVE. Inline asm: this file
/// is compiled for baseline x86-64, so the _xgetbv intrinsic is not available.
uint64_t xcr0() {
  if ((cpuid(1, 0).c & (1u << 27)) == 0) return 0;
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
/// AVX-512 state (SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM) enabled by the OS.
bool os_avx512() { return (xcr0() & 0xe6u) == 0xe6u; }

bool avx512bf16_usable() {
  // AVX512_BF16: CPUID.(7,1).EAX bit 5 (subleaf 1 exists when CPUID.(7,0).EAX >= 1).
  return isa_supported(Isa::kAvx512) && os_avx512() && cpuid(7, 0).a >= 1 &&
         (cpuid(7, 1).a & (1u << 5)) != 0;
}

bool amx_bf16_usable() {
  static const bool ok = [] {
    const Cpuid l7 = cpuid(7, 0);
    const bool cpu = (l7.d & (1u << 22)) != 0 && (l7.d & (1u << 24)) != 0;  // AMX-BF16, AMX-TILE
    const uint64_t tiles = (uint64_t{1} << 17) | (uint64_t{1} << 18);      // XTILECFG, XTILEDATA
    if (!cpu || !isa_supported(Isa::kAvx512) || !os_avx512() || (xcr0() & tiles) != tiles) {
      return false;
    }
    // Linux enables the 8 KiB tile state per process on request (ARCH_REQ_XCOMP_PERM,
    // XFEATURE_XTILEDATA); refused (old kernel, seccomp, signal stack limits) = not usable.
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
}

struct Entry {
  GemmKernels kernels;
  bool (*usable)();
};

/// Every family compiled in, best first within each precision. New families go here.
std::vector<Entry> registry() {
  static const std::string blas = openblas_name();
  return {
      // bf16 layouts
      {{"amx-bf16", PackedLayout::kBf16Panels, qk_amx_bf16, pv_amx_bf16}, amx_bf16_usable},
      {{"avx512bf16-bf16", PackedLayout::kBf16Panels, qk_avx512bf16_bf16, pv_avx512bf16_bf16},
       avx512bf16_usable},
      {{"scalar-bf16", PackedLayout::kBf16Panels, qk_scalar_bf16, pv_scalar_bf16}, always},
      // fp32
      {{"avx512-f32", PackedLayout::kF32Panels, qk_avx512_f32, pv_avx512_f32}, avx512},
      {{"avx2-f32", PackedLayout::kF32Panels, qk_avx2_f32, pv_avx2_f32}, avx2},
      {{blas.c_str(), PackedLayout::kF32Rows, qk_openblas, pv_openblas}, always},
      {{"scalar-f32", PackedLayout::kF32Panels, qk_scalar_f32, pv_scalar_f32}, always},
  };
}

struct Available {
  std::vector<const GemmKernels*> fp32, bf16;
  std::vector<GemmKernels> storage;
};

const Available& available() {
  static const Available a = [] {
    Available out;
    std::vector<Entry> all = registry();
    out.storage.reserve(all.size());
    for (const Entry& e : all) {
      if (e.usable()) out.storage.push_back(e.kernels);
    }
    for (const GemmKernels& k : out.storage) (k.bf16() ? out.bf16 : out.fp32).push_back(&k);
    return out;
  }();
  return a;
}

/// Best fp32 family: the fastest hand-written one (OpenBLAS only when nothing else exists).
/// vdpbf16ps does two multiply-adds per lane where an FMA does one, but some cores issue it
/// at half the FMA's rate (measured on a Sapphire-Rapids-class Xeon: 117 against 230 GFLOP/s;
/// there the AVX-512 fp32 family emulating bf16 is 1.6x faster). Without AMX, the bf16 family
/// is chosen only where a short same-process probe shows it clearly ahead (>= 1.5x the fp32
/// FMA rate, as on Zen 4/5); the margin keeps the choice stable from run to run.
bool dot_beats_fma() {
  if (!isa_supported(Isa::kAvx512)) return true;
  return probe_avx512bf16_gflops(0.004) >= 1.5 * fma_peak_f32_avx512(0.004);
}

const GemmKernels& best(bool bf16) {
  const Available& a = available();
  if (bf16 && !a.bf16.empty() && std::strcmp(a.bf16.front()->name, "scalar-bf16") != 0) {
    const GemmKernels& first = *a.bf16.front();
    if (std::strcmp(first.name, "avx512bf16-bf16") != 0 || dot_beats_fma()) return first;
  }
  // No bf16 instructions: the fastest fp32 family emulates bf16 exactly (see gemm.hpp).
  return *a.fp32.front();
}

}  // namespace

const GemmKernels* const* available_gemm_kernels(bool bf16, int* count) {
  const Available& a = available();
  const auto& list = bf16 ? a.bf16 : a.fp32;
  *count = static_cast<int>(list.size());
  return list.data();
}

const GemmKernels* find_gemm_kernels(const char* name) {
  const Available& a = available();
  for (const GemmKernels& k : a.storage) {
    if (std::strcmp(k.name, name) == 0) return &k;
    if (std::strcmp(name, "openblas") == 0 && std::strncmp(k.name, "openblas:", 9) == 0) return &k;
  }
  return nullptr;
}

const GemmKernels& gemm_kernels(bool bf16) {
  static const GemmKernels* chosen[2] = {nullptr, nullptr};
  static const bool init = [] {
    const char* forced = std::getenv("STA_GEMM");
    for (int b = 0; b < 2; ++b) {
      const GemmKernels* k = forced != nullptr ? find_gemm_kernels(forced) : nullptr;
      // A forced fp32 family serves bf16 precision by emulation; a bf16 one cannot do fp32.
      if (k != nullptr && b == 0 && k->bf16()) k = nullptr;
      chosen[b] = k != nullptr ? k : &best(b == 1);
    }
    return true;
  }();
  static_cast<void>(init);
  return *chosen[bf16 ? 1 : 0];
}

std::string gemm_run_name(const GemmKernels& kernels, bool bf16) {
  return bf16 && !kernels.bf16() ? std::string(kernels.name) + " (bf16 emulated)" : kernels.name;
}

}  // namespace sta::simd
