// AVX-512 instantiation of the online softmax (compiled with -mavx512f..., see CMakeLists).
// GCC 12 flags the deliberate self-initialisation in _mm512_undefined_ps() (avx512fintrin.h)
// as -Wmaybe-uninitialized once xsimd's intrinsics are inlined; a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "softmax-inl.hpp"
#include "softmax.hpp"

namespace sta::simd {

void online_softmax_avx512(float* scores, int64_t ld, int64_t rows, int64_t cols, float scale,
                           float* row_max, float* row_sum, float* alpha) {
  online_softmax_body<xsimd::avx512bw, POut::kFloat>(scores, ld, rows, cols, scale, row_max, row_sum, alpha, nullptr, 0);
}

void online_softmax_bf16_avx512(float* scores, int64_t ld, int64_t rows, int64_t cols,
                              float scale, float* row_max, float* row_sum, float* alpha,
                              uint16_t* p_out, int64_t ldp) {
  online_softmax_bf16_body<xsimd::avx512bw>(scores, ld, rows, cols, scale, row_max, row_sum, alpha,
                                   p_out, ldp);
}

}  // namespace sta::simd
