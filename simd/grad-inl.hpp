#pragma once
// SIMD body of the backward's element-wise kernels (see grad.hpp), written once over
// xsimd and instantiated per instruction set by grad_avx2.cpp and grad_avx512.cpp.
// Include only from those files (everything stays inline and templated on the architecture).
#include <cstdint>
#include <limits>

#include <xsimd/xsimd.hpp>

namespace sta::simd {
namespace {

template <class Arch>
inline void probs_from_lse_body(float* s, int64_t ld, int64_t rows, int64_t cols, float scale,
                                const float* lse) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  const int64_t full = cols - cols % kLanes;
  alignas(64) float buf[kLanes];
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * ld;
    if (lse[r] == -std::numeric_limits<float>::infinity()) {  // no allowed key: p = 0
      for (int64_t j = 0; j < cols; ++j) row[j] = 0.0f;
      continue;
    }
    // p = exp(scale * s - lse): one FMA and the same vector exp as the forward's softmax.
    const Batch vscale(scale), vshift(-lse[r]);
    for (int64_t j = 0; j < full; j += kLanes) {
      xsimd::exp(xsimd::fma(Batch::load_unaligned(row + j), vscale, vshift)).store_unaligned(row + j);
    }
    if (full < cols) {  // the ragged end through the same vector code
      const int64_t tail = cols - full;
      for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < tail ? row[full + i] : 0.0f;
      xsimd::exp(xsimd::fma(Batch::load_aligned(buf), vscale, vshift)).store_aligned(buf);
      for (int64_t i = 0; i < tail; ++i) row[full + i] = buf[i];
    }
  }
}

template <class Arch>
inline void grad_scores_body(float* dp, int64_t lddp, const float* p, int64_t ldp, int64_t rows,
                             int64_t cols, const float* delta, float scale) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  const int64_t full = cols - cols % kLanes;
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dp + r * lddp;
    const float* pr = p + r * ldp;
    const Batch vdelta(delta[r]), vscale(scale);
    for (int64_t j = 0; j < full; j += kLanes) {
      const Batch ps = Batch::load_unaligned(pr + j) * vscale;
      (ps * (Batch::load_unaligned(d + j) - vdelta)).store_unaligned(d + j);
    }
    // Same rounding as the vector lanes: (p * scale) * (dp - delta).
    for (int64_t j = full; j < cols; ++j) d[j] = (pr[j] * scale) * (d[j] - delta[r]);
  }
}

}  // namespace
}  // namespace sta::simd
