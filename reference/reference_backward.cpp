// The gradient oracle (SPEC 8). Every line mirrors an equation; speed is not a goal, but it
// needs no S x S buffer: pass 1 walks query rows (dq, and each row's lse and Delta), pass 2
// walks key rows (dk, dv) recomputing p_ij from the saved lse_i. Both in double, each output
// row written by one iteration, so it is deterministic for any thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "query_masks.hpp"
#include "sta/reference.hpp"

namespace sta {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double dot(const float* a, const float* b, int64_t dim) {
  double acc = 0.0;
  for (int64_t d = 0; d < dim; ++d) acc += static_cast<double>(a[d]) * b[d];
  return acc;
}

/// One head's tensors and the per-row statistics shared by the two passes.
struct HeadView {
  const float* q;
  const float* k;
  const float* v;
  const float* dout;
  double* lse;    ///< [S], written by pass 1
  double* delta;  ///< [S], written by pass 1: sum_j p_ij dp_ij (= <dout_i, out_i>)
};

/// Pass 1 for query row i: softmax row p_i, dp_i, the Jacobian ds_i = p_i (dp_i - p_i.dp_i),
/// and dq_i = scale sum_j ds_ij k_j. Scratch vectors hold S entries.
void query_row(const QueryMasks& mask, int64_t S, int64_t D, double scale, const HeadView& h, int64_t i, double* dq_i,
               std::vector<double>& score, std::vector<double>& dprob,
               std::vector<char>& allowed) {
  const float* qi = h.q + i * D;
  double m = kNegInf;
  bool any = false;
  for (int64_t j = 0; j < S; ++j) {
    allowed[j] = mask.allows(i, j);
    if (!allowed[j]) continue;
    score[j] = scale * dot(qi, h.k + j * D, D);
    if (!any || score[j] > m || std::isnan(score[j])) m = score[j];
    any = true;
  }
  for (int64_t d = 0; d < D; ++d) dq_i[d] = 0.0;
  if (!any) {  // no allowed key: this query contributes nothing (SPEC 8)
    h.lse[i] = kNegInf;
    h.delta[i] = 0.0;
    return;
  }
  double l = 0.0;
  for (int64_t j = 0; j < S; ++j)
    if (allowed[j]) l += std::exp(score[j] - m);
  const double lse = m + std::log(l);
  // p_ij = exp(s_ij - lse); dp_ij = <dout_i, v_j>; delta = sum_j p_ij dp_ij.
  double delta = 0.0;
  for (int64_t j = 0; j < S; ++j) {
    if (!allowed[j]) continue;
    score[j] = std::exp(score[j] - lse);  // score now holds p_ij
    dprob[j] = dot(h.dout + i * D, h.v + j * D, D);
    delta += score[j] * dprob[j];
  }
  for (int64_t j = 0; j < S; ++j) {
    if (!allowed[j]) continue;
    const double ds = score[j] * (dprob[j] - delta);
    for (int64_t d = 0; d < D; ++d) dq_i[d] += scale * ds * h.k[j * D + d];
  }
  h.lse[i] = lse;
  h.delta[i] = delta;
}

/// Pass 2 for key row j: dv_j = sum_i p_ij dout_i, dk_j = scale sum_i ds_ij q_i over the
/// queries i that may attend j, with p_ij = exp(s_ij - lse_i), ds_ij = p_ij (dp_ij - delta_i).
void key_row(const QueryMasks& mask, int64_t S, int64_t D, double scale, const HeadView& h, int64_t j, double* dk_j, double* dv_j) {
  for (int64_t d = 0; d < D; ++d) dk_j[d] = dv_j[d] = 0.0;
  for (int64_t i = 0; i < S; ++i) {
    if (h.lse[i] == kNegInf || !mask.allows(i, j)) continue;
    const double p = std::exp(scale * dot(h.q + i * D, h.k + j * D, D) - h.lse[i]);
    const double ds = p * (dot(h.dout + i * D, h.v + j * D, D) - h.delta[i]);
    for (int64_t d = 0; d < D; ++d) {
      dv_j[d] += p * h.dout[i * D + d];
      dk_j[d] += scale * ds * h.q[i * D + d];
    }
  }
}

}  // namespace

void reference_attention_backward(const AttentionShape& shape, const AttentionOptions& options,
                                  const float* q, const float* k, const float* v,
                                  const float* dout, double* dq, double* dk, double* dv) {
  validate_attention(shape, options, Backend::kReference);
  const Geometry& g = options.geometry;
  const int64_t S = shape.seq, D = shape.dim;
  const double scale = options.effective_scale(D);
  const int64_t heads_total = shape.batch * shape.heads;
  std::vector<double> lse(static_cast<size_t>(heads_total * S));
  std::vector<double> delta(static_cast<size_t>(heads_total * S));
  auto head = [&](int64_t bh) {
    const int64_t off = bh * S * D;
    return HeadView{q + off, k + off, v + off, dout + off, lse.data() + bh * S,
                    delta.data() + bh * S};
  };

  const HeadMasks masks(g, options.masks, options.layout);
  auto mask_of = [&](int64_t bh) -> const QueryMasks& { return masks.of_head(bh % shape.heads); };

#pragma omp parallel
  {
    std::vector<double> score(static_cast<size_t>(S)), dprob(static_cast<size_t>(S));
    std::vector<char> allowed(static_cast<size_t>(S));
#pragma omp for collapse(2) schedule(dynamic, 64)
    for (int64_t bh = 0; bh < heads_total; ++bh)
      for (int64_t i = 0; i < S; ++i)
        query_row(mask_of(bh), S, D, scale, head(bh), i, dq + (bh * S + i) * D, score, dprob, allowed);
    // (the implicit barrier: pass 2 reads every row's lse and delta)
#pragma omp for collapse(2) schedule(dynamic, 64)
    for (int64_t bh = 0; bh < heads_total; ++bh)
      for (int64_t j = 0; j < S; ++j)
        key_row(mask_of(bh), S, D, scale, head(bh), j, dk + (bh * S + j) * D, dv + (bh * S + j) * D);
  }
}

}  // namespace sta
