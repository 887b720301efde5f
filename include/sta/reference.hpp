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

}  // namespace sta
