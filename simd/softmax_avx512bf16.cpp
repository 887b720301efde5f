// The bf16-mode softmax for CPUs with AVX512-BF16 (compiled with -mavx512bf16 and the AVX-512
// set, see CMakeLists): the same body as softmax_avx512.cpp, with P rounded to bf16 by
// vcvtneps2bf16 instead of integer arithmetic. Chosen at run time (dispatch.cpp) where the
// AVX512-BF16 GEMM family is usable.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "softmax-inl.hpp"
#include "softmax.hpp"

namespace sta::simd {

void online_softmax_bf16_avx512bf16(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                    float scale, float* row_max, float* row_sum, float* alpha,
                                    uint16_t* p_out, int64_t ldp) {
  online_softmax_bf16_body<xsimd::avx512bw>(scores, ld, rows, cols, scale, row_max, row_sum,
                                            alpha, p_out, ldp);
}

}  // namespace sta::simd
