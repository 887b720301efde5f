#pragma once
// The flash-attention machinery shared by the fast backends (sta, natten, dense): for one
// query tile, loop over key segments, S = Q K^T, online softmax, O = alpha O + P V, with the
// GEMM micro-kernels of simd/gemm.hpp on K and V packed once per (batch, head). Internal to
// the library; attention.cpp is the validating frontend.
#include <cstdint>
#include <vector>

#include "gemm.hpp"
#include "softmax.hpp"
#include "sta/attention.hpp"

namespace sta::detail {

/// Which key tiles a video query tile visits, and how.
enum class FlashMode {
  kSta,     ///< window key tiles only (key_tile_visits of an sta/full mask), never a mask
  kNatten,  ///< every non-empty key tile; mixed tiles get the per-element mask
  kDense,   ///< every key tile, no mask (full mask)
};

/// Bytes of packed K and V held at once, the forward's and the backward's default: their
/// heads are packed and computed in groups that fit it (about 8 Hunyuan heads in the
/// forward's fp32 K and V, 5 in the backward's three arrays; a larger head is a group of one).
inline constexpr int64_t kPackBudgetBytes = int64_t{1} << 30;

/// Tuning knobs of the kernel (defaults measured on Zen4, see bench/bench_attention.cpp).
struct FlashConfig {
  int64_t row_chunk = 0;      ///< query rows per inner step (keeps S in L2); 0 = default
  int64_t max_key_cols = 0;   ///< contiguous dense key tiles merged up to this many keys; 0 = default
  int64_t text_rows = 0;      ///< text query rows per task (splits the long text tasks); 0 = default
  bool bf16 = false;          ///< SPEC 6's bf16 precision mode
  /// GEMM family; nullptr = the run-time choice for the precision (simd::gemm_kernels). An
  /// fp32 family in bf16 mode emulates it (rounded operands and P, exact fp32 products).
  const simd::GemmKernels* gemm = nullptr;
  int64_t pack_budget_bytes = 0;  ///< packed K/V held at once (heads per group); 0 = default
};

/// What the reference backends report: backend "reference", no ISA or GEMM, the team size, and
/// the block classifier's counts for every head (the oracle asks the mask for every pair; the
/// counts say what a tiled kernel would see), summed over the batch.
AttentionStats reference_stats(const AttentionShape& shape, const AttentionOptions& options);

/// Runs the flash kernel on validated inputs stored in tiled order (text rows last). `masks`
/// holds one mask or one per head (mask_for_head); `scale` > 0 multiplies <q, k>. Writes out
/// [B, H, S, D] and lse [B, H, S] (natural log; -inf and out = 0 for a query with no allowed
/// key). Returns what it did for the video blocks, summed over batches and heads. OpenMP over
/// (batch, head, query tile), each task done by one thread in a fixed order, so results are
/// the same bits for any thread count. `threads_used` receives the team size.
BlockCounts flash_attention(const AttentionShape& shape, const Geometry& g,
                            const std::vector<Mask>& masks, float scale, FlashMode mode,
                            const float* q, const float* k, const float* v, float* out,
                            float* lse, const simd::SoftmaxKernels& kernels,
                            const FlashConfig& config, int* threads_used);

}  // namespace sta::detail
