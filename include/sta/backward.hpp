#pragma once
// Gradients of masked attention (SPEC section 8): given q, k, v, the forward's out and lse
// and dout, compute dq, dk, dv of sum(out * dout). The same backends as the forward, behind
// one validating frontend beside attention().
#include <cstdint>
#include <vector>

#include "sta/attention.hpp"
#include "sta/blocks.hpp"

namespace sta {

/// Computes dq, dk, dv (each shape.elements() floats, [B,H,S,D], caller's layout) of
/// L = sum(out * dout) with `backend`, the exact derivative of the forward of SPEC 6 with
/// FlashAttention-2's formulas (SPEC 8): P = exp(scale*s - lse), Delta_i = sum_d dout_id
/// out_id, dS = P (dP - Delta), dP = dout V^T, dq = scale dS K, dk = scale dS^T Q,
/// dv = P^T dout. Padded text keys get zero gradient; a query with lse = -inf (no allowed
/// key) contributes nothing. `out` and `lse` are the forward's results for the same inputs
/// ([B,H,S,D] and [B,H,S], caller's layout); pass nullptr for both to have them recomputed
/// with `backend`'s forward. The reference backend always recomputes them in double (it is
/// the oracle) and ignores `out` and `lse`. Input rounding (options.rounding) is applied to
/// q, k, v as in the forward; the gradients are those of the rounded inputs. In bf16
/// precision (SPEC 8, FlashAttention-2's and FlexAttention's bf16 kernels): q, k, v and dout
/// rounded to bf16, P rounded to bf16 before dv = P^T dout, dS = P (dP - Delta) from the
/// unrounded P rounded to bf16 before dq and dk, fp32 sums, the scale applied to dq and dk
/// after them; the fast backends run it on the forward's bf16 GEMM family where this CPU has
/// one (or the one options.gemm names) and emulate it exactly on their fp32 kernels elsewhere;
/// the reference computes in double on the rounded inputs (the oracle of the bf16 tolerance). Deterministic: the same bits
/// for any thread count. The returned counters are the video blocks the backward computed
/// (each block once: they equal the forward's). Inputs with a NaN or Inf are computed by the
/// reference (stats.backend says so): a masked non-finite key then never influences a row.
AttentionStats attention_backward(const AttentionShape& shape, const AttentionOptions& options,
                                  const float* q, const float* k, const float* v,
                                  const float* out, const float* lse, const float* dout,
                                  float* dq, float* dk, float* dv, Backend backend);

/// One non-empty query tile that sees a key tile (the inverse of KeyTileVisit).
struct QueryTileVisit {
  int64_t query_tile;  ///< tile id in tiled order
  bool dense;          ///< false = mixed
};

/// For every key tile (tiled order), the query tiles that see it in increasing query-tile
/// order, with their block class: the transpose of key_tile_visits(). With the STA centre
/// clamp this inverse window is not the forward window at the borders (a border key tile is
/// seen by more query tiles than the window's width). What dk and dv accumulate over.
std::vector<std::vector<QueryTileVisit>> query_tile_visits(const Geometry& g, const Mask& mask);

}  // namespace sta
