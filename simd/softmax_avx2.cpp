// AVX2 + FMA instantiation of the online softmax (compiled with -mavx2 -mfma, see CMakeLists).
#include "softmax-inl.hpp"
#include "softmax.hpp"

namespace sta::simd {

void online_softmax_avx2(float* scores, int64_t ld, int64_t rows, int64_t cols, float scale,
                         float* row_max, float* row_sum, float* alpha) {
  online_softmax_body<xsimd::fma3<xsimd::avx2>>(scores, ld, rows, cols, scale, row_max,
                                                row_sum, alpha);
}

}  // namespace sta::simd
