#pragma once
// Tests that run once per instruction set of the softmax and gradient kernels (simd::Isa).
// On a CPU without an instruction set its instance is reported as skipped, naming it, rather
// than passing having tested nothing (a loop with `if (!isa_supported(isa)) continue;` did).
#include <gtest/gtest.h>

#include <string>

#include "softmax.hpp"

namespace sta::testing {

/// Fixture of a per-ISA test: derive one class per suite, then TEST_P and
/// INSTANTIATE_TEST_SUITE_P(AllIsas, Suite, ValuesIn(kAllIsas), isa_test_name).
class EachIsa : public ::testing::TestWithParam<simd::Isa> {
 protected:
  void SetUp() override {
    if (!simd::isa_supported(GetParam()))
      GTEST_SKIP() << "instruction set " << simd::isa_name(GetParam())
                   << " is not supported by this CPU: its kernels are not tested here";
  }
  simd::Isa isa() const { return GetParam(); }
};

/// Every simd::Isa, supported here or not.
inline const simd::Isa kAllIsas[] = {simd::Isa::kScalar, simd::Isa::kAvx2, simd::Isa::kAvx512};

/// "scalar", "avx2", "avx512": the instance names in test output.
inline std::string isa_test_name(const ::testing::TestParamInfo<simd::Isa>& info) {
  return simd::isa_name(info.param);
}

}  // namespace sta::testing
