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
  // Operand tiles of random bf16 of magnitude [0.5, 1): the unit runs measurably faster on all-zero
  // tiles (about 3.3 against 2.7 TFLOP/s here), which no kernel ever sees.
  alignas(64) static uint16_t operands[4][16 * 32];
  uint32_t x = 12345u;
  for (auto& tile : operands) {
    for (uint16_t& e : tile) {
      x = x * 1103515245u + 12345u;
      e = static_cast<uint16_t>(0x3f00u | ((x >> 16) & 0x807fu));  // sign, 7 mantissa bits
    }
  }
  alignas(64) static float out[16 * 16];
  _tile_loadconfig(&cfg);
  _tile_loadd(4, operands[0], 64);
  _tile_loadd(5, operands[1], 64);
  _tile_loadd(6, operands[2], 64);
  _tile_loadd(7, operands[3], 64);
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
