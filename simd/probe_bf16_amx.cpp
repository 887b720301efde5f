// The TDPBF16PS loop of the AMX peak probe (simd/probe_bf16.hpp), AMX flags. Call only after
// the amx-bf16 family was found usable (the kernel's permission is requested there).
#include <immintrin.h>

#include <cstdint>

#include "probe_bf16.hpp"

namespace sta::simd::detail {

double tdpbf16_loop(long iters) {
  struct alignas(64) Config {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
  } cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  alignas(64) static uint16_t zeros[16 * 32] = {};
  alignas(64) static float out[16 * 16];
  _tile_loadconfig(&cfg);
  _tile_loadd(4, zeros, 64);
  _tile_loadd(5, zeros, 64);
  _tile_loadd(6, zeros, 64);
  _tile_loadd(7, zeros, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  // Four independent C tiles (the 2 x 2 arrangement of the kernels), operands in tiles.
  for (long it = 0; it < iters; ++it) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, out, 64);
  _tile_release();
  return static_cast<double>(iters) * 4 * 16 * 16 * 32 * 2;
}

}  // namespace sta::simd::detail
