// Packing of K and V into the layouts of simd/gemm.hpp, and float <-> bf16 conversion.
// Portable code: it runs once per (batch, head) and key block, O(keys * D), against the
// O(rows * keys * D) of the kernels that read it.
#include <cstring>

#include "gemm.hpp"

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
      // (key, d) at p*Dp*32 + (d/2)*64 + (key%32)*2 + d%2: each key's row is read once, in
      // order, and written as (d, d+1) pairs 64 values apart.
      const int64_t dp = padded_dim_bf16(dim);
      bf16_t* out = static_cast<bf16_t*>(dst) + key0 * dp;
      for (int64_t key = 0; key < padded; ++key) {
        bf16_t* col = out + (key / kKeyPanel) * dp * kKeyPanel + (key % kKeyPanel) * 2;
        const float* row = k + key * ldk;
        for (int64_t d = 0; d < dp; d += 2) {
          const bool real = key < keys;
          col[(d / 2) * 2 * kKeyPanel] = real && d < dim ? float_to_bf16(row[d]) : 0;
          col[(d / 2) * 2 * kKeyPanel + 1] = real && d + 1 < dim ? float_to_bf16(row[d + 1]) : 0;
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
      bf16_t* out = static_cast<bf16_t*>(dst);
      for (int64_t cp = 0; cp < dim_panels(dim); ++cp) {
        bf16_t* panel = out + cp * kp * kDimPanel + key0 * kDimPanel;
        for (int64_t j = 0; j < padded; ++j) {
          for (int64_t c = 0; c < kDimPanel; ++c) {
            const int64_t col = cp * kDimPanel + c;
            const float x = j < keys && col < dim ? v[j * ldv + col] : 0.0f;
            panel[(j / 2) * 2 * kDimPanel + c * 2 + j % 2] = float_to_bf16(x);
          }
        }
      }
      break;
    }
  }
}

void rows_to_bf16(const float* src, int64_t lds, int64_t rows, int64_t cols, int64_t pad_cols,
                  bf16_t* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[r * ldd + c] = float_to_bf16(src[r * lds + c]);
    for (int64_t c = cols; c < pad_cols; ++c) dst[r * ldd + c] = 0;
  }
}

}  // namespace sta::simd
