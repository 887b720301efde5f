// AVX2 + FMA instantiation of the backward's element-wise kernels (-mavx2 -mfma, CMakeLists).
#include "grad-inl.hpp"
#include "grad.hpp"

namespace sta::simd {

void probs_from_lse_avx2(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                         const float* lse) {
  probs_from_lse_body<xsimd::fma3<xsimd::avx2>>(s, ld, rows, cols, scale, lse);
}
void grad_scores_avx2(float* dp, int64_t lddp, const float* p, int64_t ldp, int64_t rows,
                      int64_t cols, const float* delta, float scale) {
  grad_scores_body<xsimd::fma3<xsimd::avx2>>(dp, lddp, p, ldp, rows, cols, delta, scale);
}

}  // namespace sta::simd
