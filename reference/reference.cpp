// The oracle. Every line mirrors an equation of SPEC section 6; speed is not a goal.
#include "sta/reference.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "query_masks.hpp"
#include "sta/error.hpp"

namespace sta {

void reference_attention(const AttentionShape& shape, const AttentionOptions& options,
                         const float* q, const float* k, const float* v, double* out,
                         double* lse) {
  validate_attention(shape, options, Backend::kReference);
  const Geometry& g = options.geometry;
  const int64_t S = shape.seq, D = shape.dim;
  const double scale = options.effective_scale(D);
  const int64_t heads_total = shape.batch * shape.heads;

  const HeadMasks masks(g, options.masks, options.layout);  // asked for all S^2 pairs

#pragma omp parallel
  {
    std::vector<double> score(static_cast<size_t>(S));
    std::vector<char> allowed(static_cast<size_t>(S));
#pragma omp for collapse(2) schedule(static)
    for (int64_t bh = 0; bh < heads_total; ++bh)
      for (int64_t i = 0; i < S; ++i) {
        const QueryMasks& mask = masks.of_head(bh % shape.heads);
        const float* qi = q + (bh * S + i) * D;
        const float* kb = k + bh * S * D;
        const float* vb = v + bh * S * D;
        // s_ij = scale * <q_i, k_j> for allowed j; m = max_j s_ij.
        double m = -std::numeric_limits<double>::infinity();
        bool any = false;
        for (int64_t j = 0; j < S; ++j) {
          allowed[j] = mask.allows(i, j);
          if (!allowed[j]) continue;
          double dot = 0.0;
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qi[d]) * kb[j * D + d];
          score[j] = scale * dot;
          if (!any || score[j] > m || std::isnan(score[j])) m = score[j];
          any = true;
        }
        double* oi = out + (bh * S + i) * D;
        for (int64_t d = 0; d < D; ++d) oi[d] = 0.0;
        if (!any) {  // no allowed key: out = 0, lse = -inf (FlexAttention's convention)
          lse[bh * S + i] = -std::numeric_limits<double>::infinity();
          continue;
        }
        // l = sum_j exp(s_ij - m); out = sum_j exp(s_ij - m) v_j / l; lse = m + log l.
        double l = 0.0;
        for (int64_t j = 0; j < S; ++j) {
          if (!allowed[j]) continue;
          const double p = std::exp(score[j] - m);
          l += p;
          for (int64_t d = 0; d < D; ++d) oi[d] += p * vb[j * D + d];
        }
        for (int64_t d = 0; d < D; ++d) oi[d] /= l;
        lse[bh * S + i] = m + std::log(l);
      }
  }
}

}  // namespace sta
