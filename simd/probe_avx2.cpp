// fp32 FMA peak probe with AVX2 + FMA (compiled with -mavx2 -mfma; see probe.hpp).
#include <immintrin.h>

#include "probe-inl.hpp"
#include "probe.hpp"

namespace sta::simd {
namespace {
__m256 set1(float x) { return _mm256_set1_ps(x); }
__m256 fmadd(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
__m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
float first(__m256 a) { return _mm256_cvtss_f32(a); }
}  // namespace

int64_t fma_f32_avx2_run(int64_t reps) {
  return fma_chains<__m256, 12, set1, fmadd, add, first>(reps, 8);
}

double fma_peak_f32_avx2(double seconds) { return best_rate(fma_f32_avx2_run, seconds); }

}  // namespace sta::simd
