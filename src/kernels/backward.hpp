#pragma once
// The flash backward shared by the fast backends (sta, natten, dense): FlashAttention-2's
// Algorithm 2 on the GEMM micro-kernels of simd/gemm.hpp. Internal to the library;
// src/kernels/backward_api.cpp is the validating frontend (attention_backward).
#include <cstdint>
#include <vector>

#include "grad.hpp"  // simd/: the element-wise kernels
#include "flash.hpp"
#include "gemm.hpp"
#include "sta/attention.hpp"

namespace sta::detail {

/// Scheduling knobs of flash_attention_backward (for tests and experiments): none of them
/// changes a bit of the result.
struct BackwardConfig {
  /// P/dS slots per thread for steps computed before their key rows are free (0: the
  /// default, 8; the transposing path always has 1).
  int64_t slots = 0;
  /// Applies a computed step only when every slot is taken or the task ends, instead of as
  /// soon as its turn comes: the run-ahead path (pending steps, oldest applied first) then
  /// runs on any thread count, one thread included.
  bool defer_applies = false;
  /// Heads computed side by side (0: as many as fit the packing budget, kPackBudgetBytes).
  /// The results do not depend on it.
  int64_t head_group = 0;
};

/// Computes dq, dk, dv ([B,H,S,D], tiled order, text rows last) of sum(out * dout) from
/// validated inputs q, k, v, out, lse (the forward's), dout, all in tiled order. `masks`
/// holds one mask or one per head; `scale` > 0; `mode` picks the key tiles each query tile
/// visits, as in flash_attention. Each (query block, key block) pair is computed once:
/// P = exp(scale Q K^T - lse), dS = scale P (dO V^T - Delta) (GEMMs with the element-wise
/// step fused, `kernels`, on the packed-panel fp32 families; the family's qk and the
/// element-wise kernels otherwise), then dQ += dS K (the family's pv, owned by the query
/// block's task) and dV += P^T dO, dK += dS^T Q (into the key block's rows; P and dS read
/// transposed by `kernels.add_transposed_pv`, or transposed for the family's pv). `kernels`
/// and `gemm` may be of different instruction sets. Key-block updates are applied
/// in a fixed order (the query blocks' task order over the key block's visitors: text rows,
/// then the inverse window of query_tile_visits), each task's update of a chunk of key rows
/// following its predecessor's there (a step not yet free waits in a scratch slot while the
/// task goes on), and text rows' dQ is summed from per-task partials in task order, so the
/// result is the same bits for any thread count without floating-point atomics. No S x S
/// buffer. Returns the video blocks computed (dense, mixed) and skipped (empty), summed over
/// batches and heads; `threads_used` receives the team size.
/// `bf16`: SPEC 8's bf16 mode: q, k, v, dout are rounded to bf16 as they are loaded and
/// packed (the gradients of the rounded inputs; values that are bf16 already stay); P is rounded to
/// bf16 before dV += P^T dO, dS = P (dP - Delta) is rounded to bf16 before dQ += dS K and
/// dK += dS^T Q, and the softmax scale multiplies dq and dk once at the end (as
/// FlashAttention-2's and FlexAttention's bf16 kernels do): on a bf16 family's qk and pv, or
/// emulated exactly on an fp32 family. A bf16 `gemm` needs `bf16`.
BlockCounts flash_attention_backward(const AttentionShape& shape, const Geometry& g,
                                     const std::vector<Mask>& masks, float scale, FlashMode mode,
                                     bool bf16,
                                     const float* q, const float* k, const float* v,
                                     const float* out, const float* lse, const float* dout,
                                     float* dq, float* dk, float* dv,
                                     const simd::GemmKernels& gemm,
                                     const simd::BackwardKernels& kernels, int* threads_used,
                                     const BackwardConfig& config = {});

}  // namespace sta::detail
