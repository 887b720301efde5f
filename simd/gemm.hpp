#pragma once
// The two GEMMs of the flash loop as this project's own micro-kernels (issue 10):
//   S = Q K^T     (rows x keys, k-dimension D)           -> GemmKernels::qk
//   O = a O + P V (rows x D,    k-dimension keys)         -> GemmKernels::pv
// K and V of one (batch, head) are packed once into the layout the kernels read
// (gemm_pack.cpp) and shared read-only by all threads; Q (and P) are plain row-major.
//
// Every kernel family is a plain value (GemmKernels: a name, a packed layout and two function
// pointers), chosen once at run time (gemm_dispatch.cpp) like the softmax; tests force each
// family in one process, STA_GEMM overrides the choice, stats record the name.
//
// Key space. Packed K and V hold a sequence of *key blocks* (a video key tile, or a chunk of
// text keys); each block is padded with zero keys to a multiple of kKeyPanel, so every block
// starts on a panel boundary and a run of consecutive blocks is one contiguous range of
// "padded keys". The flash loop writes -inf scores (p = 0) into padding columns.
//
// Layouts (element (key, d) of K, element (key, c) of V; kp = padded keys of the whole
// packed head, a multiple of kKeyPanel; "panel" = 32 keys for K, 32 columns of D for V):
//   kF32Panels  K: panel p = keys [32p, 32p+32): float [D][32]; (key, d) at p*D*32 + d*32 + key%32
//               V: float [ceil(D/32)][kp][32];  (key, c) at (c/32)*kp*32 + key*32 + c%32
//   kBf16Panels (bf16 = uint16_t bits, round to nearest even; Dp = D rounded up to 32, the
//               extra d are zero so AMX tiles and dot-product pairs never read past D)
//               K: panel p: bf16 [Dp/2][32][2]; (key, d) at p*Dp*32 + (d/2)*64 + (key%32)*2 + d%2
//               V: bf16 [ceil(D/32)][kp/2][32][2]; (key, c) at (c/32)*kp*32 + (key/2)*64 + (c%32)*2 + key%2
//               (the VNNI pair layout vdpbf16ps and AMX TDPBF16PS read as B; 16-column halves
//               of a panel are tiles with a row stride of 128 bytes)
//   kF32Rows    K and V: float [kp][D] row-major, padding keys zero (for BLAS: OpenBLAS)
// Q operand: kF32*: float rows with stride ldq >= D; kBf16Panels: bf16 rows with stride
//   ldq >= Dp, columns [D, Dp) zero.
// P operand: kF32*: float rows (stride ldp), kBf16Panels: bf16 rows (stride ldp).
// Row padding: Q, P and S buffers handed to a kernel have at least round_up(rows, 32) rows
//   readable/writable (their contents past `rows` are unspecified); kernels may compute
//   garbage there (AMX works in 16-row tiles) but never store it into O.
// Alignment (speed, not correctness): AMX loads and stores whole 64-byte tile rows; with Q/P,
//   packed K/V, S and O at 64-byte boundaries and strides multiples of 64 bytes the amx-bf16
//   kernels run about twice as fast as at the 16-byte offsets malloc gives
//   (bench_gemm_bf16 .../misaligned).
#include <cstdint>
#include <cstring>
#include <string>

namespace sta::simd {

using bf16_t = uint16_t;  ///< the bits of a bfloat16 (upper half of an IEEE float)

/// Keys per packed K panel, and the granularity every key block is padded to.
constexpr int64_t kKeyPanel = 32;
/// Columns of D per packed V panel.
constexpr int64_t kDimPanel = 32;

enum class PackedLayout { kF32Panels, kBf16Panels, kF32Rows };

/// S = Q K^T for `rows` query rows against `ncols` padded keys (a multiple of kKeyPanel):
/// s[r * lds + j] = sum_d q[r][d] * k[j][d] in fp32 (any summation order, but a fixed one:
/// results depend only on the inputs). `k_packed` points at the first key panel of the range
/// (panels follow each other); `dim` is D (not padded). Writes exactly ncols columns of each
/// of the `rows` rows.
using QkFn = void (*)(const void* q, int64_t ldq, int64_t rows, int64_t dim,
                      const void* k_packed, int64_t ncols, float* s, int64_t lds);

/// O = alpha O + P V for `rows` rows and the first `dim` columns of O (row stride ldo):
/// o[r][c] = alpha[r] * o[r][c] + sum_{j < kcols} p[r][j] * v[j][c], accumulated in fp32.
/// alpha == nullptr means O = P V (O is not read: it may hold garbage). `kcols` is a
/// multiple of kKeyPanel. `v_packed` points at (key 0 of the range, column panel 0) and
/// `v_panel_stride` is the element distance between column panels (kp * 32). Stores only
/// columns [0, dim) of rows [0, rows).
using PvFn = void (*)(const void* p, int64_t ldp, int64_t rows, int64_t kcols,
                      const void* v_packed, int64_t v_panel_stride, int64_t dim,
                      const float* alpha, float* o, int64_t ldo);

/// One GEMM kernel family.
struct GemmKernels {
  const char* name;     ///< "avx512-f32", "avx2-f32", "scalar-f32", "avx512bf16-bf16", "amx-bf16", "scalar-bf16", "openblas:<core>"
  PackedLayout layout;  ///< what pack_k / pack_v must produce for it
  QkFn qk;
  PvFn pv;
  bool bf16() const { return layout == PackedLayout::kBf16Panels; }
};

// ---- packing (gemm_pack.cpp; portable code, run once per (batch, head)) -------------------

/// Padded keys of a block of `keys` keys.
inline int64_t padded_keys(int64_t keys) { return (keys + kKeyPanel - 1) / kKeyPanel * kKeyPanel; }
/// D as the bf16 layouts store it (rounded up to 32).
inline int64_t padded_dim_bf16(int64_t dim) { return (dim + 31) / 32 * 32; }

/// Elements (floats, or bf16 values for kBf16Panels) of packed K / packed V for kp padded keys.
int64_t packed_k_elements(PackedLayout layout, int64_t kp, int64_t dim);
int64_t packed_v_elements(PackedLayout layout, int64_t kp, int64_t dim);
/// Element offset inside packed K of padded key `key0` (a multiple of kKeyPanel).
int64_t packed_k_offset(PackedLayout layout, int64_t key0, int64_t dim);
/// Element offset inside packed V of padded key `key0` in column panel 0; and the panel stride.
int64_t packed_v_offset(PackedLayout layout, int64_t key0, int64_t dim);
int64_t packed_v_panel_stride(PackedLayout layout, int64_t kp, int64_t dim);
/// Calls run(offset, count) for each contiguous run of elements that the key block pack_k
/// (`as_k`) or pack_v wrote at padded key `key0` (padded_keys(keys) keys) of a packed head of
/// kp padded keys, in an fp32 layout: one run as K (and in the row layout), one per column
/// panel as V. (The bf16 emulation rounds them in place.)
template <class Run>
void for_each_packed_run(PackedLayout layout, bool as_k, int64_t key0, int64_t keys, int64_t dim,
                         int64_t kp, Run run) {
  const int64_t padded = padded_keys(keys);
  if (as_k || layout == PackedLayout::kF32Rows) {
    run(packed_k_offset(layout, key0, dim), padded * dim);
    return;
  }
  const int64_t stride = packed_v_panel_stride(layout, kp, dim);
  for (int64_t c = 0; c < dim; c += kDimPanel)
    run((c / kDimPanel) * stride + packed_v_offset(layout, key0, dim), padded * kDimPanel);
}

/// Packs `keys` rows of K (row stride ldk floats) as one key block starting at padded key
/// `key0` of a packed head of `kp` padded keys (`dst` is the whole packed head); the block's
/// padding keys are written as zeros. bf16 layouts round to nearest even.
void pack_k(PackedLayout layout, const float* k, int64_t ldk, int64_t keys, int64_t dim,
            int64_t key0, int64_t kp, void* dst);
/// The same for V.
void pack_v(PackedLayout layout, const float* v, int64_t ldv, int64_t keys, int64_t dim,
            int64_t key0, int64_t kp, void* dst);
/// Converts `rows` float rows (stride lds) of `cols` values to bf16 rows (stride ldd,
/// nearest even) and zero-fills columns [cols, pad_cols). NaN stays NaN. The fastest variant
/// this CPU runs, chosen once (they give the same bits: float_to_bf16's).
void rows_to_bf16(const float* src, int64_t lds, int64_t rows, int64_t cols, int64_t pad_cols,
                  bf16_t* dst, int64_t ldd);
/// The variants: portable (this file's float_to_bf16 loop), AVX-512 integer rounding
/// (grad_avx512.cpp), AVX512-BF16's vcvtneps2bf16 with the integer rounding for subnormal
/// lanes, which the instruction flushes (grad_avx512bf16.cpp). Call the last two only where
/// the CPU has the instructions.
void rows_to_bf16_portable(const float*, int64_t, int64_t, int64_t, int64_t, bf16_t*, int64_t);
void rows_to_bf16_avx512(const float*, int64_t, int64_t, int64_t, int64_t, bf16_t*, int64_t);
void rows_to_bf16_avx512bf16(const float*, int64_t, int64_t, int64_t, int64_t, bf16_t*, int64_t);

/// Float <-> bf16 (round to nearest even; NaN stays a quiet NaN). Inline: the packers call
/// them per element.
inline bf16_t float_to_bf16(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  // Branch-free (a select), so the packing loops vectorise.
  const uint32_t rounded = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;  // nearest even; overflow -> inf
  const uint32_t quiet_nan = (b >> 16) | 0x0040u;
  return static_cast<bf16_t>((b & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}
inline float bf16_to_float(bf16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// ---- kernels (one file per family) ---------------------------------------------------------

void qk_scalar_f32(const void*, int64_t, int64_t, int64_t, const void*, int64_t, float*, int64_t);
void pv_scalar_f32(const void*, int64_t, int64_t, int64_t, const void*, int64_t, int64_t,
                   const float*, float*, int64_t);
void qk_scalar_bf16(const void*, int64_t, int64_t, int64_t, const void*, int64_t, float*, int64_t);
void pv_scalar_bf16(const void*, int64_t, int64_t, int64_t, const void*, int64_t, int64_t,
                    const float*, float*, int64_t);
// fp32 panels with AVX-512 (gemm_avx512.cpp) and AVX2 + FMA (gemm_avx2.cpp): call only where
// isa_supported(Isa::kAvx512 / kAvx2) (softmax.hpp).
void qk_avx512_f32(const void*, int64_t, int64_t, int64_t, const void*, int64_t, float*, int64_t);
void pv_avx512_f32(const void*, int64_t, int64_t, int64_t, const void*, int64_t, int64_t,
                   const float*, float*, int64_t);
void qk_avx2_f32(const void*, int64_t, int64_t, int64_t, const void*, int64_t, float*, int64_t);
void pv_avx2_f32(const void*, int64_t, int64_t, int64_t, const void*, int64_t, int64_t,
                 const float*, float*, int64_t);
// AVX512-BF16 (vdpbf16ps; gemm_avx512bf16.cpp) and AMX-BF16 (TDPBF16PS; gemm_amx.cpp):
// call only where gemm_dispatch.cpp found them usable.
void qk_avx512bf16_bf16(const void*, int64_t, int64_t, int64_t, const void*, int64_t, float*,
                        int64_t);
void pv_avx512bf16_bf16(const void*, int64_t, int64_t, int64_t, const void*, int64_t, int64_t,
                        const float*, float*, int64_t);
void qk_amx_bf16(const void*, int64_t, int64_t, int64_t, const void*, int64_t, float*, int64_t);
void pv_amx_bf16(const void*, int64_t, int64_t, int64_t, const void*, int64_t, int64_t,
                 const float*, float*, int64_t);

// ---- run-time choice (gemm_dispatch.cpp) --------------------------------------------------

/// Every family compiled in and usable on this CPU and OS, for fp32 (bf16 = false) or bf16
/// layouts, best first. (AMX needs the kernel's permission, requested once.)
const GemmKernels* const* available_gemm_kernels(bool bf16, int* count);
/// A family by name, or nullptr if unknown or not usable here.
const GemmKernels* find_gemm_kernels(const char* name);
/// The family the fast backends use: the best available one, or the one named by STA_GEMM
/// (a family name, or "openblas" for the fp32 BLAS path) if usable. For bf16 precision
/// without a usable bf16 family (or with STA_GEMM naming an fp32 one) this returns an fp32
/// family: the flash loop then emulates bf16 on it (rounded operands, exact products).
const GemmKernels& gemm_kernels(bool bf16);
/// What stats and manifests call `kernels` running in bf16 mode or not: its name, plus
/// " (bf16 emulated)" for an fp32 family in bf16 mode.
std::string gemm_run_name(const GemmKernels& kernels, bool bf16);

}  // namespace sta::simd
