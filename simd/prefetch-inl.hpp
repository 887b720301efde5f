#pragma once
// Software prefetch of the memory a kernel's next panel step (or next call) will read, spread
// over the current step's row tiles: the forward's GEMM kernels (gemm_avx512.cpp, gemm_amx.cpp)
// and the backward's (grad-inl.hpp). Include only from kernel files compiled per instruction set;
// everything here stays inline in an anonymous namespace (see softmax-inl.hpp).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace sta::simd {
namespace {

/// Memory the next panel step will read (up to two ranges of floats), pulled into L1 a slice
/// per row tile while this step computes: its first tile would otherwise wait on L3 for every
/// panel row.
struct Upcoming {
  const float* from[2] = {nullptr, nullptr};
  int64_t floats[2] = {0, 0};
};

/// Prefetches row tile `tile`'s share (of `tiles`) of the upcoming memory into L1: spread
/// over the tiles, the lines arrive while the FMAs run (into L1 measured 4-5 % faster on the
/// whole dense forward loop than none, and a little faster than into L2, 1-thread best of 12).
/// kIntoL2: into L2 only (the amx-bf16 qk: its tile loads measured faster so, gemm_amx.cpp).
template <bool kIntoL2 = false>
inline __attribute__((always_inline)) void prefetch_slice(const Upcoming& next, int64_t tile,
                                                          int64_t tiles) {
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    const int64_t lines = next.floats[i] / 16;
    const int64_t per_tile = (lines + tiles - 1) / tiles;
    const int64_t end = std::min(lines, (tile + 1) * per_tile);
    const char* base = reinterpret_cast<const char*>(next.from[i]);
    for (int64_t l = tile * per_tile; l < end; ++l) {
      if constexpr (kIntoL2) {
        _mm_prefetch(base + l * 64, _MM_HINT_T1);
      } else {
        _mm_prefetch(base + l * 64, _MM_HINT_T0);
      }
    }
  }
}

}  // namespace
}  // namespace sta::simd
