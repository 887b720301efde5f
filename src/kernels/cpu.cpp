// What this machine is, in words, for stats files, manifests and benchmark context: results
// of a kernel benchmark mean nothing without the CPU that produced them.
#include <cpuid.h>

#include <cstring>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "softmax.hpp"
#include "sta/attention.hpp"

namespace sta {
namespace {

std::string trim(std::string s) {
  const size_t b = s.find_first_not_of(' ');
  const size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

std::string cpu_description() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  char vendor[13] = {};
  __get_cpuid(0, &a, &b, &c, &d);
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  __get_cpuid(1, &a, &b, &c, &d);
  const unsigned base_family = (a >> 8) & 0xf, ext_family = (a >> 20) & 0xff;
  const unsigned family = base_family == 0xf ? base_family + ext_family : base_family;
  const unsigned model = (base_family == 0x6 || base_family == 0xf)
                             ? (((a >> 16) & 0xf) << 4) | ((a >> 4) & 0xf)
                             : (a >> 4) & 0xf;
  const unsigned stepping = a & 0xf;
  char brand[49] = {};
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002u + i, &a, &b, &c, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
  }
  std::string out = std::string(vendor) + " family " + std::to_string(family) + " model " +
                    std::to_string(model) + " stepping " + std::to_string(stepping);
  const std::string name = trim(brand);
  if (!name.empty()) out += " (" + name + ")";
  std::string isa;
  for (simd::Isa i : {simd::Isa::kAvx2, simd::Isa::kAvx512}) {
    if (simd::isa_supported(i)) isa += std::string(" ") + simd::isa_name(i);
  }
  int count = 0;
  const simd::GemmKernels* const* bf16 = simd::available_gemm_kernels(true, &count);
  for (int i = 0; i < count; ++i) {
    if (std::strncmp(bf16[i]->name, "scalar", 6) != 0) isa += std::string(" ") + bf16[i]->name;
  }
  return out + ";" + (isa.empty() ? std::string(" baseline x86-64") : isa);
#else
  return "unknown CPU";
#endif
}

std::string gemm_kernel_name(Precision precision) {
  const bool bf16 = precision == Precision::kBf16;
  return simd::gemm_run_name(simd::gemm_kernels(bf16), bf16);
}

std::vector<std::string> gemm_kernel_names(Precision precision) {
  std::vector<std::string> names;
  for (bool layouts_bf16 : {true, false}) {
    if (layouts_bf16 && precision != Precision::kBf16) continue;
    int count = 0;
    const simd::GemmKernels* const* list = simd::available_gemm_kernels(layouts_bf16, &count);
    for (int i = 0; i < count; ++i) names.emplace_back(list[i]->name);
  }
  return names;
}

}  // namespace sta
