// Portable fallback of the online softmax (baseline x86-64 flags, no xsimd): the same
// algorithm as softmax-inl.hpp with std::exp, for CPUs without AVX2.
#include <cmath>
#include <limits>

#include "gemm.hpp"
#include "softmax.hpp"

namespace sta::simd {

void online_softmax_scalar(float* scores, int64_t ld, int64_t rows, int64_t cols, float scale,
                           float* row_max, float* row_sum, float* alpha) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* s = scores + r * ld;
    float block_max = kNegInf;
    for (int64_t j = 0; j < cols; ++j) block_max = s[j] > block_max ? s[j] : block_max;
    const float old_max = row_max[r];
    const float scaled_max = block_max * scale;
    const float new_max = scaled_max > old_max ? scaled_max : old_max;
    if (new_max == kNegInf) {
      for (int64_t j = 0; j < cols; ++j) s[j] = 0.0f;
      alpha[r] = 1.0f;
      continue;
    }
    float block_sum = 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      s[j] = std::exp(s[j] * scale - new_max);  // no std::fma: software-emulated without FMA
      block_sum += s[j];
    }
    const float a = new_max != old_max ? std::exp(old_max - new_max) : 1.0f;
    row_max[r] = new_max;
    row_sum[r] = row_sum[r] * a + block_sum;
    alpha[r] = a;
  }
}

void online_softmax_bf16_scalar(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                float scale, float* row_max, float* row_sum, float* alpha,
                                uint16_t* p_out, int64_t ldp) {
  online_softmax_scalar(scores, ld, rows, cols, scale, row_max, row_sum, alpha);
  for (int64_t r = 0; r < rows; ++r) {
    float* s = scores + r * ld;
    for (int64_t j = 0; j < cols; ++j) {
      const bf16_t b = float_to_bf16(s[j]);
      if (p_out != nullptr) {
        p_out[r * ldp + j] = b;
      } else {
        s[j] = bf16_to_float(b);
      }
    }
  }
}

}  // namespace sta::simd
