// The GEMM micro-kernels (simd/gemm.hpp) against a naive double GEMM of the unpacked
// operands, for every family usable on this machine: odd shapes around the register blocks,
// several key blocks in one packed head, every D the issue names, strides, canaries past the
// stored region. Families this CPU cannot run are skipped with a message naming them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gemm.hpp"

namespace sta::simd {
namespace {

constexpr float kCanary = 12345.0f;
// Rows past two register blocks of any family (AVX-512 and AMX block 16-32 rows).
const int64_t kRows[] = {1, 2, 5, 13, 16, 17, 31, 32, 33, 47, 65};
// Key-block sizes: below, at and past one and two panels (kKeyPanel = 32).
const int64_t kKeys[] = {1, 7, 31, 32, 33, 64, 95, 160, 257};
const int64_t kDims[] = {1, 3, 16, 32, 33, 48, 64, 80, 96, 128, 192, 256};

/// Families every test visits, usable or not: the missing ones are reported as skipped.
const char* const kFamilies[] = {"avx512-f32",      "avx2-f32", "scalar-f32", "openblas",
                                 "avx512bf16-bf16", "amx-bf16", "scalar-bf16"};

std::vector<float> random_values(std::mt19937_64& rng, int64_t n, bool bf16, float lo = -1.0f,
                                 float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> x(static_cast<size_t>(n));
  // bf16 families see the rounded values; the fp32 families get the same rounded values so
  // one oracle serves both (products of bf16 values are exact in fp32).
  for (float& e : x) e = bf16 ? bf16_to_float(float_to_bf16(dist(rng))) : dist(rng);
  return x;
}

/// A row-major operand in the layout a family reads as Q or P: float rows, or bf16 rows with
/// `pad_cols` columns (zero past `cols`); `rows_alloc` rows allocated (padding rows junk).
struct RowOperand {
  std::vector<float> f32;
  std::vector<bf16_t> b16;
  int64_t ld = 0;
  const void* data() const { return f32.empty() ? static_cast<const void*>(b16.data()) : f32.data(); }
};

RowOperand make_rows(const std::vector<float>& x, int64_t rows, int64_t cols, bool bf16,
                     int64_t pad_cols) {
  RowOperand op;
  const int64_t rows_alloc = (rows + 31) / 32 * 32;
  if (bf16) {
    op.ld = pad_cols + 32;  // a stride wider than the row
    op.b16.assign(static_cast<size_t>(rows_alloc * op.ld), float_to_bf16(7.0f));
    rows_to_bf16(x.data(), cols, rows, cols, pad_cols, op.b16.data(), op.ld);
  } else {
    op.ld = cols + 3;  // an odd stride
    op.f32.assign(static_cast<size_t>(rows_alloc * op.ld), 7.0f);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(&op.f32[static_cast<size_t>(r * op.ld)], &x[static_cast<size_t>(r * cols)],
                  static_cast<size_t>(cols) * sizeof(float));
    }
  }
  return op;
}

/// Packed storage of a whole head: two key blocks (`first` keys then `keys` keys); the
/// kernels get the second one, so offsets and panel strides are exercised.
struct PackedHead {
  std::vector<float> f32;
  std::vector<bf16_t> b16;
  void* data() { return f32.empty() ? static_cast<void*>(b16.data()) : f32.data(); }
  template <class T>
  static const void* at(const std::vector<T>& v, int64_t offset) { return v.data() + offset; }
  const void* at(int64_t offset) const {
    return f32.empty() ? at(b16, offset) : at(f32, offset);
  }
};

PackedHead pack_head(const GemmKernels& fam, bool as_k, const std::vector<float>& first_block,
                     int64_t first, const std::vector<float>& block, int64_t keys, int64_t dim) {
  const int64_t kp = padded_keys(first) + padded_keys(keys);
  const int64_t n = as_k ? packed_k_elements(fam.layout, kp, dim) : packed_v_elements(fam.layout, kp, dim);
  PackedHead h;
  if (fam.bf16()) {
    h.b16.assign(static_cast<size_t>(n), float_to_bf16(99.0f));
  } else {
    h.f32.assign(static_cast<size_t>(n), 99.0f);
  }
  auto pack = as_k ? pack_k : pack_v;
  pack(fam.layout, first_block.data(), dim, first, dim, 0, kp, h.data());
  pack(fam.layout, block.data(), dim, keys, dim, padded_keys(first), kp, h.data());
  return h;
}

/// Worst-case bound of an fp32 dot product of n terms against the exact value.
double dot_bound(int64_t n, double sum_abs) { return (static_cast<double>(n) + 2.0) * 1.2e-7 * sum_abs + 1e-30; }

std::string where(const char* fam, int64_t rows, int64_t keys, int64_t dim, uint64_t seed) {
  return std::string(fam) + " rows=" + std::to_string(rows) + " keys=" + std::to_string(keys) +
         " D=" + std::to_string(dim) + " seed=" + std::to_string(seed);
}

/// The instruction set a family needs beyond plain x86-64, named when its tests are skipped.
std::string instructions_of(const std::string& family) {
  if (family == "avx512-f32") return "AVX-512 (F, BW, DQ, VL, CD) with FMA";
  if (family == "avx2-f32") return "AVX2 with FMA";
  if (family == "avx512bf16-bf16") return "AVX512-BF16 (with AVX-512)";
  if (family == "amx-bf16") return "AMX-BF16 (with AVX-512 and the OS's AMX tile permission)";
  return "none (portable)";
}

class GemmFamily : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (find_gemm_kernels(GetParam()) == nullptr)
      GTEST_SKIP() << GetParam() << ": not usable on this CPU: missing instruction set "
                   << instructions_of(GetParam());
  }
  const GemmKernels* family() { return find_gemm_kernels(GetParam()); }
};

void check_qk(const GemmKernels& fam, int64_t rows, int64_t keys, int64_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const bool b16 = fam.bf16();
  const int64_t first = 1 + static_cast<int64_t>(rng() % 40);
  const std::vector<float> q = random_values(rng, rows * dim, b16);
  const std::vector<float> k0 = random_values(rng, first * dim, b16);
  const std::vector<float> k = random_values(rng, keys * dim, b16);
  const RowOperand qo = make_rows(q, rows, dim, b16, b16 ? padded_dim_bf16(dim) : dim);
  const PackedHead kh = pack_head(fam, true, k0, first, k, keys, dim);
  const int64_t ncols = padded_keys(keys);
  const int64_t lds = ncols + 16;
  std::vector<float> s(static_cast<size_t>((rows + 31) / 32 * 32 * lds), kCanary);
  fam.qk(qo.data(), qo.ld, rows, dim, kh.at(packed_k_offset(fam.layout, padded_keys(first), dim)),
         ncols, s.data(), lds);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < ncols; ++j) {
      double exact = 0.0, sum_abs = 0.0;
      for (int64_t d = 0; d < dim && j < keys; ++d) {
        const double p = static_cast<double>(q[r * dim + d]) * k[j * dim + d];
        exact += p;
        sum_abs += std::fabs(p);
      }
      const float got = s[static_cast<size_t>(r * lds + j)];
      ASSERT_NEAR(got, exact, dot_bound(dim, sum_abs))
          << "S[" << r << "][" << j << "] " << where(fam.name, rows, keys, dim, seed)
          << (j >= keys ? " (padding key: must be 0)" : "");
    }
    for (int64_t j = ncols; j < lds; ++j) {
      ASSERT_EQ(s[static_cast<size_t>(r * lds + j)], kCanary)
          << "stored past ncols " << where(fam.name, rows, keys, dim, seed);
    }
  }
}

/// O = P V (no alpha), O = alpha O + P V (alpha in [0, 1)), O += P V (alpha all ones: the
/// backward's accumulations, which the AMX family adds in its tiles).
enum class Alpha { kNone, kRandom, kOnes };

void check_pv(const GemmKernels& fam, int64_t rows, int64_t keys, int64_t dim, Alpha mode,
              uint64_t seed) {
  const bool with_alpha = mode != Alpha::kNone;
  std::mt19937_64 rng(seed);
  const bool b16 = fam.bf16();
  const int64_t first = 1 + static_cast<int64_t>(rng() % 40);
  const int64_t kcols = padded_keys(keys);
  // P in [0, 1) like softmax probabilities; its padding columns stay 0 as the flash loop writes.
  std::vector<float> p = random_values(rng, rows * kcols, b16, 0.0f, 1.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = keys; j < kcols; ++j) p[r * kcols + j] = 0.0f;
  }
  const std::vector<float> v0 = random_values(rng, first * dim, b16);
  const std::vector<float> v = random_values(rng, keys * dim, b16);
  std::vector<float> alpha = random_values(rng, (rows + 31) / 32 * 32, false, 0.0f, 1.0f);
  if (mode == Alpha::kOnes) std::fill(alpha.begin(), alpha.end(), 1.0f);
  const std::vector<float> o_in = random_values(rng, rows * dim, false);
  const RowOperand po = make_rows(p, rows, kcols, b16, kcols);
  const PackedHead vh = pack_head(fam, false, v0, first, v, keys, dim);
  const int64_t kp = padded_keys(first) + kcols;
  const int64_t ldo = dim + 5;
  std::vector<float> o(static_cast<size_t>(((rows + 31) / 32 * 32 + 1) * ldo), kCanary);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < dim; ++c) {
      o[static_cast<size_t>(r * ldo + c)] = with_alpha ? o_in[r * dim + c] : std::nanf("");
    }
  }
  fam.pv(po.data(), po.ld, rows, kcols, vh.at(packed_v_offset(fam.layout, padded_keys(first), dim)),
         packed_v_panel_stride(fam.layout, kp, dim), dim, with_alpha ? alpha.data() : nullptr,
         o.data(), ldo);
  for (int64_t r = 0; r < (rows + 31) / 32 * 32 + 1; ++r) {
    for (int64_t c = 0; c < ldo; ++c) {
      const float got = o[static_cast<size_t>(r * ldo + c)];
      if (r >= rows || c >= dim) {
        ASSERT_EQ(got, kCanary) << "stored outside rows x dim at (" << r << ", " << c << ") "
                                << where(fam.name, rows, keys, dim, seed);
        continue;
      }
      double exact = with_alpha ? static_cast<double>(alpha[r]) * o_in[r * dim + c] : 0.0;
      double sum_abs = std::fabs(exact);
      for (int64_t j = 0; j < keys; ++j) {
        const double t = static_cast<double>(p[r * kcols + j]) * v[j * dim + c];
        exact += t;
        sum_abs += std::fabs(t);
      }
      ASSERT_NEAR(got, exact, dot_bound(kcols + 1, sum_abs))
          << "O[" << r << "][" << c << "] alpha=" << with_alpha << " "
          << where(fam.name, rows, keys, dim, seed);
    }
  }
}

TEST_P(GemmFamily, QkMatchesNaiveGemm) {
  const GemmKernels* fam = family();
  ASSERT_NE(fam, nullptr);  // SetUp skipped the families this CPU lacks
  uint64_t seed = 1;
  for (int64_t dim : kDims) {
    for (int64_t rows : kRows) {
      for (int64_t keys : kKeys) check_qk(*fam, rows, keys, dim, seed++);
    }
  }
}

TEST_P(GemmFamily, PvMatchesNaiveGemm) {
  const GemmKernels* fam = family();
  ASSERT_NE(fam, nullptr);  // SetUp skipped the families this CPU lacks
  uint64_t seed = 1000;
  for (int64_t dim : kDims) {
    for (int64_t rows : kRows) {
      for (int64_t keys : kKeys) {
        check_pv(*fam, rows, keys, dim, static_cast<Alpha>(seed % 3), seed);
        ++seed;
      }
    }
  }
}

TEST_P(GemmFamily, FlashShapeEveryAlphaMode) {
  const GemmKernels* fam = family();
  ASSERT_NE(fam, nullptr);  // SetUp skipped the families this CPU lacks
  // FastVideo's block: 384 queries x 384 keys, D = 128 (a whole tile against a whole tile).
  check_qk(*fam, 384, 384, 128, 77);
  check_pv(*fam, 384, 384, 128, Alpha::kNone, 78);
  check_pv(*fam, 384, 384, 128, Alpha::kRandom, 79);
  check_pv(*fam, 384, 384, 128, Alpha::kOnes, 80);
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, GemmFamily, ::testing::ValuesIn(kFamilies),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(GemmDispatch, ChosenFamiliesAreUsableAndNamed) {
  const GemmKernels& f32 = gemm_kernels(false);
  EXPECT_FALSE(f32.bf16()) << f32.name;
  EXPECT_EQ(find_gemm_kernels(f32.name), &f32);
  const GemmKernels& b16 = gemm_kernels(true);
  EXPECT_EQ(find_gemm_kernels(b16.name), &b16);
  int count = 0;
  available_gemm_kernels(false, &count);
  EXPECT_GE(count, 2) << "scalar-f32 and openblas are always there";
}

TEST(Bf16Conversion, RoundsToNearestEvenAndKeepsSpecials) {
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd mantissa) and 1 + 2^-6: up to the even one.
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(bf16_to_float(float_to_bf16(-inf)), -inf);
  EXPECT_EQ(bf16_to_float(float_to_bf16(std::numeric_limits<float>::max())), inf);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-0.0f)), -0.0f);
}

}  // namespace
}  // namespace sta::simd
