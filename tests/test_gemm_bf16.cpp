// The bf16 kernel families from several threads at once: every thread configures its own AMX
// tiles (the permission is per process), and the results are bit-identical to a single-thread
// call (the contract's fixed summation order).
#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gemm.hpp"

namespace sta::simd {
namespace {

// One instance per native bf16 family; on a CPU without the family's instructions it is
// reported as skipped, naming them, instead of passing having run nothing.
struct NativeBf16Family {
  const char* name;          ///< the family, as find_gemm_kernels() knows it
  const char* instructions;  ///< what the CPU needs for it
  const char* test_name;
};
// What gtest (and ctest's test list) prints for an instance: the family's name.
void PrintTo(const NativeBf16Family& f, std::ostream* os) { *os << f.name; }
constexpr NativeBf16Family kNativeBf16Families[] = {{"amx-bf16", "AMX-BF16", "amx"},
                                                   {"avx512bf16-bf16", "AVX512-BF16", "avx512bf16"}};

class GemmBf16Threads : public ::testing::TestWithParam<NativeBf16Family> {};

TEST_P(GemmBf16Threads, ConcurrentCallsMatchASingleCallBitForBit) {
  const char* name = GetParam().name;
  const GemmKernels* fam = find_gemm_kernels(name);
  if (fam == nullptr)
    GTEST_SKIP() << name << ": not usable on this CPU (missing instruction set "
                 << GetParam().instructions << ")";
  constexpr int64_t kRowsQ = 80, kKeys = 96, kDim = 72;  // row and D tails on purpose
  const int64_t dp = padded_dim_bf16(kDim);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> q(kRowsQ * kDim), k(kKeys * kDim), v(kKeys * kDim), p(kRowsQ * kKeys);
  for (auto* x : {&q, &k, &v, &p}) {
    for (float& e : *x) e = dist(rng);
  }
  std::vector<bf16_t> qb(96 * dp), pb(96 * kKeys);
  rows_to_bf16(q.data(), kDim, kRowsQ, kDim, dp, qb.data(), dp);
  rows_to_bf16(p.data(), kKeys, kRowsQ, kKeys, kKeys, pb.data(), kKeys);
  const PackedLayout layout = PackedLayout::kBf16Panels;
  std::vector<bf16_t> kb(packed_k_elements(layout, kKeys, kDim)), vb(packed_v_elements(layout, kKeys, kDim));
  pack_k(layout, k.data(), kDim, kKeys, kDim, 0, kKeys, kb.data());
  pack_v(layout, v.data(), kDim, kKeys, kDim, 0, kKeys, vb.data());
  const std::vector<float> alpha(96, 0.5f);

  auto run = [&](std::vector<float>& s, std::vector<float>& o) {
    s.assign(96 * kKeys, 0.0f);
    o.assign(96 * kDim, 1.0f);
    fam->qk(qb.data(), dp, kRowsQ, kDim, kb.data(), kKeys, s.data(), kKeys);
    fam->pv(pb.data(), kKeys, kRowsQ, kKeys, vb.data(), packed_v_panel_stride(layout, kKeys, kDim),
            kDim, alpha.data(), o.data(), kDim);
  };
  std::vector<float> s_ref, o_ref;
  run(s_ref, o_ref);
  constexpr int kThreads = 4;
  std::vector<std::vector<float>> s(kThreads), o(kThreads);
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) run(s[t], o[t]);
    });
  }
  for (std::thread& th : pool) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(std::memcmp(s[t].data(), s_ref.data(), s_ref.size() * sizeof(float)), 0) << name << " S, thread " << t;
    EXPECT_EQ(std::memcmp(o[t].data(), o_ref.data(), o_ref.size() * sizeof(float)), 0) << name << " O, thread " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(NativeFamilies, GemmBf16Threads, ::testing::ValuesIn(kNativeBf16Families),
                         [](const ::testing::TestParamInfo<NativeBf16Family>& info) {
                           return std::string(info.param.test_name);
                         });

}  // namespace
}  // namespace sta::simd
