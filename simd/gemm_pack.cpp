// Packing of K and V into the layouts of simd/gemm.hpp, and float <-> bf16 conversion.
// Portable code: it runs once per (batch, head) and key block, O(keys * D), against the
// O(rows * keys * D) of the kernels that read it.
#include <cstring>
#include <vector>

#include "gemm.hpp"
#include "softmax.hpp"  // isa_supported

namespace sta::simd {

namespace {
int64_t dim_panels(int64_t dim) { return (dim + kDimPanel - 1) / kDimPanel; }
}  // namespace

int64_t packed_k_elements(PackedLayout layout, int64_t kp, int64_t dim) {
  return layout == PackedLayout::kBf16Panels ? kp * padded_dim_bf16(dim) : kp * dim;
}

int64_t packed_v_elements(PackedLayout layout, int64_t kp, int64_t dim) {
  return layout == PackedLayout::kF32Rows ? kp * dim : dim_panels(dim) * kp * kDimPanel;
}

int64_t packed_k_offset(PackedLayout layout, int64_t key0, int64_t dim) {
  return layout == PackedLayout::kBf16Panels ? key0 * padded_dim_bf16(dim) : key0 * dim;
}

int64_t packed_v_offset(PackedLayout layout, int64_t key0, int64_t dim) {
  return layout == PackedLayout::kF32Rows ? key0 * dim : key0 * kDimPanel;
}

int64_t packed_v_panel_stride(PackedLayout layout, int64_t kp, int64_t dim) {
  return layout == PackedLayout::kF32Rows ? 0 : (static_cast<void>(dim), kp * kDimPanel);
}

void pack_k(PackedLayout layout, const float* k, int64_t ldk, int64_t keys, int64_t dim,
            int64_t key0, int64_t /*kp*/, void* dst) {
  const int64_t padded = padded_keys(keys);
  switch (layout) {
    case PackedLayout::kF32Rows: {
      float* out = static_cast<float*>(dst) + key0 * dim;
      for (int64_t j = 0; j < padded; ++j) {
        for (int64_t d = 0; d < dim; ++d) out[j * dim + d] = j < keys ? k[j * ldk + d] : 0.0f;
      }
      break;
    }
    case PackedLayout::kF32Panels: {
      float* out = static_cast<float*>(dst) + key0 * dim;
      for (int64_t p = 0; p < padded / kKeyPanel; ++p) {
        float* panel = out + p * dim * kKeyPanel;
        for (int64_t d = 0; d < dim; ++d) {
          for (int64_t j = 0; j < kKeyPanel; ++j) {
            const int64_t key = p * kKeyPanel + j;
            panel[d * kKeyPanel + j] = key < keys ? k[key * ldk + d] : 0.0f;
          }
        }
      }
      break;
    }
    case PackedLayout::kBf16Panels: {
      // (key, d) at p*Dp*32 + (d/2)*64 + (key%32)*2 + d%2: per panel, the 32 key rows are
      // converted into a row-major scratch of (d, d+1) pairs (contiguous, so it vectorises),
      // then the (d, d+1) pairs are transposed into the panel, 32 keys' pairs per 128 bytes.
      const int64_t dp = padded_dim_bf16(dim);
      bf16_t* out = static_cast<bf16_t*>(dst) + key0 * dp;
      std::vector<bf16_t> rows(static_cast<size_t>(kKeyPanel * dp));
      for (int64_t p = 0; p < padded / kKeyPanel; ++p) {
        for (int64_t j = 0; j < kKeyPanel; ++j) {
          const int64_t key = p * kKeyPanel + j;
          bf16_t* row = rows.data() + j * dp;
          if (key < keys) {
            rows_to_bf16(k + key * ldk, ldk, 1, dim, dp, row, dp);
          } else {
            std::memset(row, 0, static_cast<size_t>(dp) * sizeof(bf16_t));
          }
        }
        bf16_t* panel = out + p * dp * kKeyPanel;
        for (int64_t d = 0; d < dp; d += 2) {
          for (int64_t j = 0; j < kKeyPanel; ++j) {
            std::memcpy(panel + d * kKeyPanel + j * 2, rows.data() + j * dp + d, 2 * sizeof(bf16_t));
          }
        }
      }
      break;
    }
  }
}

void pack_v(PackedLayout layout, const float* v, int64_t ldv, int64_t keys, int64_t dim,
            int64_t key0, int64_t kp, void* dst) {
  const int64_t padded = padded_keys(keys);
  switch (layout) {
    case PackedLayout::kF32Rows:
      pack_k(layout, v, ldv, keys, dim, key0, kp, dst);  // the same row-major copy
      break;
    case PackedLayout::kF32Panels: {
      float* out = static_cast<float*>(dst);
      for (int64_t cp = 0; cp < dim_panels(dim); ++cp) {
        float* panel = out + cp * kp * kDimPanel + key0 * kDimPanel;
        for (int64_t j = 0; j < padded; ++j) {
          for (int64_t c = 0; c < kDimPanel; ++c) {
            const int64_t col = cp * kDimPanel + c;
            panel[j * kDimPanel + c] = j < keys && col < dim ? v[j * ldv + col] : 0.0f;
          }
        }
      }
      break;
    }
    case PackedLayout::kBf16Panels: {
      // (key, c) at (c/32)*kp*32 + (key/2)*64 + (c%32)*2 + key%2: a key pair's two rows,
      // converted, interleave into one run of 32 (key, key+1) pairs per column panel.
      bf16_t* out = static_cast<bf16_t*>(dst);
      const int64_t dp = padded_dim_bf16(dim);
      std::vector<bf16_t> two(static_cast<size_t>(2 * dp));
      for (int64_t j = 0; j < padded; j += 2) {
        for (int64_t h = 0; h < 2; ++h) {
          bf16_t* row = two.data() + h * dp;
          if (j + h < keys) {
            rows_to_bf16(v + (j + h) * ldv, ldv, 1, dim, dp, row, dp);
          } else {
            std::memset(row, 0, static_cast<size_t>(dp) * sizeof(bf16_t));
          }
        }
        for (int64_t cp = 0; cp < dim_panels(dim); ++cp) {
          bf16_t* panel = out + cp * kp * kDimPanel + (key0 + j) * kDimPanel;
          const bf16_t* lo = two.data() + cp * kDimPanel;
          const bf16_t* hi = lo + dp;
          for (int64_t c = 0; c < kDimPanel; ++c) {
            panel[2 * c] = lo[c];
            panel[2 * c + 1] = hi[c];
          }
        }
      }
      break;
    }
  }
}

void rows_to_bf16(const float* src, int64_t lds, int64_t rows, int64_t cols, int64_t pad_cols,
                  bf16_t* dst, int64_t ldd) {
  // The AVX-512 variants: about 3 % of a bf16 sta 3,3,3 forward + backward's samples went to
  // the portable loop (every Q, dO row and packed K, V value passes here).
  static const auto convert = [] {
    if (find_gemm_kernels("avx512bf16-bf16") != nullptr) return rows_to_bf16_avx512bf16;
    if (isa_supported(Isa::kAvx512)) return rows_to_bf16_avx512;
    return rows_to_bf16_portable;
  }();
  convert(src, lds, rows, cols, pad_cols, dst, ldd);
}

void rows_to_bf16_portable(const float* src, int64_t lds, int64_t rows, int64_t cols,
                           int64_t pad_cols, bf16_t* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[r * ldd + c] = float_to_bf16(src[r * lds + c]);
    for (int64_t c = cols; c < pad_cols; ++c) dst[r * ldd + c] = 0;
  }
}

}  // namespace sta::simd
