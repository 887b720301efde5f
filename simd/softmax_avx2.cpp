// AVX2 + FMA instantiation of the online softmax (compiled with -mavx2 -mfma, see CMakeLists).
#include "softmax-inl.hpp"
#include "softmax.hpp"

namespace sta::simd {

void online_softmax_avx2(float* scores, int64_t ld, int64_t rows, int64_t cols, float scale,
                         float* row_max, float* row_sum, float* alpha) {
  online_softmax_body<xsimd::fma3<xsimd::avx2>, POut::kFloat>(scores, ld, rows, cols, scale, row_max,
                                                row_sum, alpha, nullptr, 0);
}

void online_softmax_bf16_avx2(float* scores, int64_t ld, int64_t rows, int64_t cols,
                              float scale, float* row_max, float* row_sum, float* alpha,
                              uint16_t* p_out, int64_t ldp) {
  online_softmax_bf16_body<xsimd::fma3<xsimd::avx2>>(scores, ld, rows, cols, scale, row_max, row_sum, alpha,
                                   p_out, ldp);
}

}  // namespace sta::simd
