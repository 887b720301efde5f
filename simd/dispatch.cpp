// Run-time choice of the SIMD kernels (baseline flags: this file must run on any x86-64).
// The instruction set is picked once, at the edge, and handed to the kernels as plain
// function pointers.
#include <cstdlib>
#include <cstring>

#include "gemm.hpp"
#include "softmax.hpp"

namespace sta::simd {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kScalar: break;
  }
  return "scalar";
}

bool isa_supported(Isa isa) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0).
  switch (isa) {
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kScalar: return true;
  }
  return false;
#else
  return isa == Isa::kScalar;
#endif
}

SoftmaxKernels softmax_kernels_for(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      // The bf16 rounding instruction where the CPU has AVX512-BF16 (same values, fewer uops).
      return {isa, online_softmax_avx512,
              find_gemm_kernels("avx512bf16-bf16") != nullptr ? online_softmax_bf16_avx512bf16
                                                              : online_softmax_bf16_avx512};
    case Isa::kAvx2: return {isa, online_softmax_avx2, online_softmax_bf16_avx2};
    case Isa::kScalar: break;
  }
  return {Isa::kScalar, online_softmax_scalar, online_softmax_bf16_scalar};
}

namespace {

SoftmaxKernels choose_kernels() {
  const Isa order[] = {Isa::kAvx512, Isa::kAvx2, Isa::kScalar};
  if (const char* forced = std::getenv("STA_ISA")) {
    for (Isa isa : order) {
      if (std::strcmp(forced, isa_name(isa)) == 0 && isa_supported(isa)) {
        return softmax_kernels_for(isa);
      }
    }
  }
  for (Isa isa : order) {
    if (isa_supported(isa)) return softmax_kernels_for(isa);
  }
  return softmax_kernels_for(Isa::kScalar);
}

}  // namespace

const SoftmaxKernels& softmax_kernels() {
  static const SoftmaxKernels kernels = choose_kernels();
  return kernels;
}

}  // namespace sta::simd
