#pragma once
// The oracle: naive masked attention that reads like the equations. Double accumulation,
// one query at a time, the mask asked for every (query, key) pair. Obviously correct over fast.
#include "sta/attention.hpp"

namespace sta {

/// out[b,h,i,:] = sum_j p_ij v_j with p_ij = exp(s_ij - lse_i) over allowed keys j,
/// s_ij = scale * <q_i, k_j>, lse_i = log sum_j exp(s_ij) (natural log). A query with no
/// allowed key gets out = 0, lse = -inf. Results in double; inputs are not rounded here.
/// Validates its arguments (throws sta::Error). Cost O(B*H*S^2*D): small problems only.
void reference_attention(const AttentionShape& shape, const AttentionOptions& options,
                         const float* q, const float* k, const float* v, double* out,
                         double* lse);

/// Gradients of L = sum(out * dout) (SPEC 8), in double, from the equations: per query row
/// i the softmax Jacobian applied directly, ds_ij = p_ij (dp_ij - sum_k p_ik dp_ik) with
/// dp_ij = <dout_i, v_j>; dq_i = scale sum_j ds_ij k_j, dk_j = scale sum_i ds_ij q_i,
/// dv_j = sum_i p_ij dout_i, sums over allowed pairs only (padded keys get 0; a query with
/// no allowed key contributes nothing). p is recomputed here in double (out and lse are not
/// inputs). Validates its arguments. Cost O(B*H*S^2*D): small problems only.
void reference_attention_backward(const AttentionShape& shape, const AttentionOptions& options,
                                  const float* q, const float* k, const float* v,
                                  const float* dout, double* dq, double* dk, double* dv);

}  // namespace sta
