// The portable GEMM micro-kernels (baseline x86-64 flags): the fallback on CPUs without AVX2,
// the readable statement of what every faster family must compute, and the bf16 family's
// exact emulation (bf16 products are exact in fp32; sums in fp32).
#include "gemm.hpp"

namespace sta::simd {
namespace {

/// (key, d) of packed K for each layout (simd/gemm.hpp).
inline float k_at(const float* k, int64_t dim, int64_t key, int64_t d) {
  return k[(key / kKeyPanel) * dim * kKeyPanel + d * kKeyPanel + key % kKeyPanel];
}
inline float k_at(const bf16_t* k, int64_t dp, int64_t key, int64_t d) {
  return bf16_to_float(k[(key / kKeyPanel) * dp * kKeyPanel + (d / 2) * 2 * kKeyPanel +
                         (key % kKeyPanel) * 2 + d % 2]);
}
/// (key, c) of packed V, relative to the range's first key.
inline float v_at(const float* v, int64_t stride, int64_t key, int64_t c) {
  return v[(c / kDimPanel) * stride + key * kDimPanel + c % kDimPanel];
}
inline float v_at(const bf16_t* v, int64_t stride, int64_t key, int64_t c) {
  return bf16_to_float(v[(c / kDimPanel) * stride + (key / 2) * 2 * kDimPanel +
                         (c % kDimPanel) * 2 + key % 2]);
}
inline float q_at(const float* q, int64_t ld, int64_t r, int64_t d) { return q[r * ld + d]; }
inline float q_at(const bf16_t* q, int64_t ld, int64_t r, int64_t d) {
  return bf16_to_float(q[r * ld + d]);
}

template <class T>
void qk(const void* q_, int64_t ldq, int64_t rows, int64_t dim, const void* k_, int64_t ncols,
        float* s, int64_t lds, int64_t kdim) {
  const T* q = static_cast<const T*>(q_);
  const T* k = static_cast<const T*>(k_);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < ncols; ++j) {
      float acc = 0.0f;
      for (int64_t d = 0; d < dim; ++d) acc += q_at(q, ldq, r, d) * k_at(k, kdim, j, d);
      s[r * lds + j] = acc;
    }
  }
}

template <class T>
void pv(const void* p_, int64_t ldp, int64_t rows, int64_t kcols, const void* v_,
        int64_t stride, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  const T* p = static_cast<const T*>(p_);
  const T* v = static_cast<const T*>(v_);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < dim; ++c) {
      float acc = alpha != nullptr ? alpha[r] * o[r * ldo + c] : 0.0f;
      for (int64_t j = 0; j < kcols; ++j) acc += q_at(p, ldp, r, j) * v_at(v, stride, j, c);
      o[r * ldo + c] = acc;
    }
  }
}

}  // namespace

void qk_scalar_f32(const void* q, int64_t ldq, int64_t rows, int64_t dim, const void* k,
                   int64_t ncols, float* s, int64_t lds) {
  qk<float>(q, ldq, rows, dim, k, ncols, s, lds, dim);
}
void pv_scalar_f32(const void* p, int64_t ldp, int64_t rows, int64_t kcols, const void* v,
                   int64_t stride, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  pv<float>(p, ldp, rows, kcols, v, stride, dim, alpha, o, ldo);
}
void qk_scalar_bf16(const void* q, int64_t ldq, int64_t rows, int64_t dim, const void* k,
                    int64_t ncols, float* s, int64_t lds) {
  qk<bf16_t>(q, ldq, rows, dim, k, ncols, s, lds, padded_dim_bf16(dim));
}
void pv_scalar_bf16(const void* p, int64_t ldp, int64_t rows, int64_t kcols, const void* v,
                    int64_t stride, int64_t dim, const float* alpha, float* o, int64_t ldo) {
  pv<bf16_t>(p, ldp, rows, kcols, v, stride, dim, alpha, o, ldo);
}

}  // namespace sta::simd
