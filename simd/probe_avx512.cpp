// fp32 FMA peak probe with AVX-512 (compiled with -mavx512f...; see probe.hpp).
#include <immintrin.h>

#include "probe-inl.hpp"
#include "probe.hpp"

namespace sta::simd {
namespace {
__m512 set1(float x) { return _mm512_set1_ps(x); }
__m512 fmadd(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
__m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
float first(__m512 a) { return _mm512_cvtss_f32(a); }
}  // namespace

int64_t fma_f32_avx512_run(int64_t reps) {
  return fma_chains<__m512, 16, set1, fmadd, add, first>(reps, 16);
}

double fma_peak_f32_avx512(double seconds) { return best_rate(fma_f32_avx512_run, seconds); }

}  // namespace sta::simd
