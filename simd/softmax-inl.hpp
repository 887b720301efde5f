#pragma once
// SIMD body of the online softmax update (see softmax.hpp), written once over xsimd and
// instantiated per instruction set by softmax_avx2.cpp and softmax_avx512.cpp, each compiled
// with its own -m flags. Include only from those files: everything here must stay inline
// and templated on the architecture, so no symbol compiled for one ISA can be picked by the
// linker for another.
#include <cstdint>
#include <limits>

#include <xsimd/xsimd.hpp>

namespace sta::simd {
namespace {

template <class Arch>
inline void online_softmax_body(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                float scale, float* row_max, float* row_sum, float* alpha) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t full = cols - cols % kLanes;
  const int64_t tail = cols - full;
  alignas(64) float buf[kLanes];

  for (int64_t r = 0; r < rows; ++r) {
    float* s = scores + r * ld;

    // Pass 1: the block's row max. scale > 0, so max(scale * s) = scale * max(s).
    Batch vmax(kNegInf);
    for (int64_t j = 0; j < full; j += kLanes) vmax = xsimd::max(vmax, Batch::load_unaligned(s + j));
    vmax.store_aligned(buf);
    float block_max = kNegInf;
    for (int64_t i = 0; i < kLanes; ++i) block_max = buf[i] > block_max ? buf[i] : block_max;
    for (int64_t j = full; j < cols; ++j) block_max = s[j] > block_max ? s[j] : block_max;

    const float old_max = row_max[r];
    const float scaled_max = block_max * scale;
    const float new_max = scaled_max > old_max ? scaled_max : old_max;
    if (new_max == kNegInf) {  // nothing allowed yet: p = 0, accumulators untouched
      for (int64_t j = 0; j < cols; ++j) s[j] = 0.0f;
      alpha[r] = 1.0f;
      continue;
    }

    // Pass 2: p = exp(scale * s - new_max), the scale fused into one FMA; exp(-inf) = 0.
    const Batch vscale(scale);
    const Batch vshift(-new_max);
    Batch vsum(0.0f);
    for (int64_t j = 0; j < full; j += kLanes) {
      const Batch p = xsimd::exp(xsimd::fma(Batch::load_unaligned(s + j), vscale, vshift));
      p.store_unaligned(s + j);
      vsum += p;
    }
    if (tail > 0) {  // the ragged end goes through the same vector code, padded with -inf
      for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < tail ? s[full + i] : kNegInf;
      const Batch p = xsimd::exp(xsimd::fma(Batch::load_aligned(buf), vscale, vshift));
      p.store_aligned(buf);
      for (int64_t i = 0; i < tail; ++i) s[full + i] = buf[i];
      vsum += p;
    }
    const float block_sum = xsimd::hadd(vsum);

    float a = 1.0f;
    if (new_max != old_max) {
      // exp(old - new) through the same vector exp; old = -inf gives 0.
      const Batch e = xsimd::exp(Batch(old_max - new_max));
      e.store_aligned(buf);
      a = buf[0];
    }
    row_max[r] = new_max;
    row_sum[r] = row_sum[r] * a + block_sum;
    alpha[r] = a;
  }
}

}  // namespace
}  // namespace sta::simd
