// Portable fallback of the backward's element-wise kernels (baseline flags, std::exp), and
// the run-time choice, which follows the softmax's instruction set.
#include <algorithm>
#include <cmath>
#include <limits>

#include "gemm.hpp"
#include "grad.hpp"

namespace sta::simd {

void probs_from_lse_scalar(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                           const float* lse) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * ld;
    const bool none = lse[r] == -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < cols; ++j) row[j] = none ? 0.0f : std::exp(row[j] * scale - lse[r]);
  }
}

void grad_scores_scalar(float* dp, int64_t lddp, const float* p, int64_t ldp, int64_t rows,
                        int64_t cols, const float* delta, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      float& d = dp[r * lddp + j];
      d = (p[r * ldp + j] * scale) * (d - delta[r]);
    }
  }
}

void round_bf16_scalar(float* a, int64_t lda, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) a[r * lda + j] = bf16_to_float(float_to_bf16(a[r * lda + j]));
}

void grad_scores_bf16_scalar(const float* dp, int64_t lddp, const float* p, int64_t ldp,
                             int64_t rows, int64_t cols, const float* delta, float scale,
                             bf16_t* ds, int64_t ldds) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)  // grad_scores_scalar's rounding, then to bf16
      ds[r * ldds + j] = float_to_bf16((p[r * ldp + j] * scale) * (dp[r * lddp + j] - delta[r]));
}

namespace {
/// dst = convert(src)^T, cache-blocked, rows [rows, pad) of each transposed row zero.
template <class S, class T, class Convert>
void transpose_converted(const S* src, int64_t lds, int64_t rows, int64_t cols, T* dst,
                         int64_t ldd, int64_t pad, Convert convert) {
  constexpr int64_t kB = 16;  // cache blocking
  for (int64_t i0 = 0; i0 < rows; i0 += kB)
    for (int64_t j0 = 0; j0 < cols; j0 += kB)
      for (int64_t j = j0; j < std::min(j0 + kB, cols); ++j)
        for (int64_t i = i0; i < std::min(i0 + kB, rows); ++i) dst[j * ldd + i] = convert(src[i * lds + j]);
  for (int64_t j = 0; j < cols; ++j) std::fill(dst + j * ldd + rows, dst + j * ldd + pad, T{0});
}
}  // namespace

void transpose_bf16_scalar(const float* src, int64_t lds, int64_t rows, int64_t cols, bf16_t* dst,
                           int64_t ldd, int64_t pad) {
  transpose_converted(src, lds, rows, cols, dst, ldd, pad, float_to_bf16);
}

void transpose_16_scalar(const bf16_t* src, int64_t lds, int64_t rows, int64_t cols, bf16_t* dst,
                         int64_t ldd, int64_t pad) {
  transpose_converted(src, lds, rows, cols, dst, ldd, pad, [](bf16_t x) { return x; });
}

void transpose_scalar(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                      int64_t ldd, int64_t pad) {
  transpose_converted(src, lds, rows, cols, dst, ldd, pad, [](float x) { return x; });
}

void add_transposed_pv_scalar(const float* a, int64_t lda, int64_t rows, int64_t kdim,
                              const float* v_packed, int64_t v_panel_stride, int64_t dim, float* o,
                              int64_t ldo) {
  for (int64_t c = 0; c < dim; ++c) {
    const float* panel = v_packed + (c / kDimPanel) * v_panel_stride + c % kDimPanel;
    for (int64_t r = 0; r < rows; ++r) {
      float acc = 0.0f;
      for (int64_t k = 0; k < kdim; ++k) acc += a[k * lda + r] * panel[k * kDimPanel];
      o[r * ldo + c] += acc;
    }
  }
}

namespace {
/// S = Q K^T for one row against packed K panels (kF32Panels), as qk_scalar_f32 reads them.
void scores_row_scalar(const float* q, int64_t dim, const float* k_packed, int64_t ncols, float* s) {
  for (int64_t j = 0; j < ncols; ++j) {
    const float* col = k_packed + (j / kKeyPanel) * dim * kKeyPanel + j % kKeyPanel;
    float acc = 0.0f;
    for (int64_t d = 0; d < dim; ++d) acc += q[d] * col[d * kKeyPanel];
    s[j] = acc;
  }
}
}  // namespace

void probs_qk_scalar(const float* q, int64_t ldq, int64_t rows, int64_t dim, const float* k_packed,
                     int64_t ncols, float scale, const float* lse, float* p, int64_t ldp) {
  for (int64_t r = 0; r < rows; ++r) {
    scores_row_scalar(q + r * ldq, dim, k_packed, ncols, p + r * ldp);
    probs_from_lse_scalar(p + r * ldp, ldp, 1, ncols, scale, lse + r);
  }
}

void grad_scores_qk_scalar(const float* dout, int64_t ldd, int64_t rows, int64_t dim,
                           const float* v_packed, int64_t ncols, const float* p, int64_t ldp,
                           const float* delta, float scale, float* ds, int64_t ldds) {
  for (int64_t r = 0; r < rows; ++r) {
    scores_row_scalar(dout + r * ldd, dim, v_packed, ncols, ds + r * ldds);
    grad_scores_scalar(ds + r * ldds, ldds, p + r * ldp, ldp, 1, ncols, delta + r, scale);
  }
}

BackwardKernels backward_kernels_for(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: {
      // The bf16 rounding instruction where the CPU has AVX512-BF16 (the same values; the
      // family's usability is that CPUID and XCR0 check).
      const bool cvt = find_gemm_kernels("avx512bf16-bf16") != nullptr;
      return {isa, probs_from_lse_avx512, grad_scores_avx512,
              cvt ? probs_from_lse_avx512bf16 : probs_from_lse_avx512, transpose_avx2,
              add_transposed_pv_avx512, probs_qk_avx512, grad_scores_qk_avx512, round_bf16_avx512,
              cvt ? transpose_bf16_avx512bf16 : transpose_bf16_avx512,
              cvt ? grad_scores_bf16_avx512bf16 : grad_scores_bf16_avx512, transpose_16_avx512};
    }
    case Isa::kAvx2:
      return {isa, probs_from_lse_avx2, grad_scores_avx2, probs_from_lse_avx2, transpose_avx2,
              add_transposed_pv_avx2, probs_qk_avx2, grad_scores_qk_avx2, round_bf16_avx2,
              transpose_bf16_scalar, grad_scores_bf16_scalar, transpose_16_scalar};
    case Isa::kScalar: break;
  }
  return {Isa::kScalar, probs_from_lse_scalar, grad_scores_scalar, probs_from_lse_scalar, transpose_scalar,
          add_transposed_pv_scalar, probs_qk_scalar, grad_scores_qk_scalar, round_bf16_scalar,
          transpose_bf16_scalar, grad_scores_bf16_scalar, transpose_16_scalar};
}

const BackwardKernels& backward_kernels() {
  static const BackwardKernels kernels = backward_kernels_for(softmax_kernels().isa);
  return kernels;
}

}  // namespace sta::simd
