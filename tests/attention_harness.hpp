#pragma once
// The shared harness of the attention tests: a random problem, one backend run, the double
// oracle, and check_all_backends() which holds every backend that accepts the masks to the
// oracle (fp32: 1e-5) and its counters to the classifier.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/blocks.hpp"
#include "sta/reference.hpp"

namespace sta::testing {

/// One attention problem with N(0,1) inputs.
struct Problem {
  AttentionShape shape;
  AttentionOptions options;
  std::vector<float> q, k, v;
};

inline Problem make_problem(const Geometry& g, std::vector<Mask> masks, int64_t batch, int64_t heads,
                     int64_t dim, Layout layout, uint64_t seed) {
  Problem p;
  p.shape = {batch, heads, g.seq_len(), dim};
  p.options.geometry = g;
  p.options.masks = std::move(masks);
  p.options.layout = layout;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto* t : {&p.q, &p.k, &p.v}) {
    t->resize(static_cast<size_t>(p.shape.elements()));
    for (float& x : *t) x = normal(rng);
  }
  return p;
}

inline std::string describe(const Problem& p) {
  std::string s = "B=" + std::to_string(p.shape.batch) + " H=" + std::to_string(p.shape.heads) +
                  " S=" + std::to_string(p.shape.seq) + " D=" + std::to_string(p.shape.dim) +
                  " layout=" + to_string(p.options.layout) + " video " +
                  to_string(p.options.geometry.canvas) + " tile " + to_string(p.options.geometry.tile) +
                  " text " + std::to_string(p.options.geometry.text_length) + "/" +
                  std::to_string(p.options.geometry.text_pad) + " masks";
  for (const Mask& m : p.options.masks) s += " " + to_string(m);
  return s;
}

struct Result {
  std::vector<float> out, lse;
  AttentionStats stats;
};

inline Result run(const Problem& p, Backend backend) {
  Result r;
  r.out.assign(static_cast<size_t>(p.shape.elements()), std::nanf(""));
  r.lse.assign(static_cast<size_t>(p.shape.batch * p.shape.heads * p.shape.seq), std::nanf(""));
  r.stats = attention(p.shape, p.options, p.q.data(), p.k.data(), p.v.data(), r.out.data(),
                      r.lse.data(), backend);
  return r;
}

struct Oracle {
  std::vector<double> out, lse;
};
inline Oracle oracle(const Problem& p) {
  Oracle o;
  o.out.resize(static_cast<size_t>(p.shape.elements()));
  o.lse.resize(static_cast<size_t>(p.shape.batch * p.shape.heads * p.shape.seq));
  reference_attention(p.shape, p.options, p.q.data(), p.k.data(), p.v.data(), o.out.data(),
                      o.lse.data());
  return o;
}

/// Max abs difference; an infinity must be matched exactly, a NaN is an infinite error.
inline double max_abs_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      if (static_cast<double>(got[i]) != want[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(e <= worst)) worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
  }
  return worst;
}

/// The classifier's counts (tiled order) summed over heads, times the batch.
inline BlockCounts expected_counts(const Problem& p, Backend backend) {
  BlockCounts total;
  for (int64_t h = 0; h < p.shape.heads; ++h) {
    const Mask mask = backend == Backend::kDense ? Mask::full() : mask_for_head(p.options.masks, h);
    const BlockCounts c = classify_blocks(p.options.geometry, mask).counts;
    total += BlockCounts{c.dense * p.shape.batch, c.mixed * p.shape.batch, c.empty * p.shape.batch};
  }
  return total;
}

inline bool sta_compatible(const std::vector<Mask>& masks) {
  return std::all_of(masks.begin(), masks.end(), [](const Mask& m) {
    return m.kind == MaskKind::kSta || m.kind == MaskKind::kFull;
  });
}
inline bool all_full(const std::vector<Mask>& masks) {
  return std::all_of(masks.begin(), masks.end(),
                     [](const Mask& m) { return m.kind == MaskKind::kFull; });
}

/// Runs every backend that accepts the masks and checks it against the oracle (fp32: 1e-5).
inline void check_all_backends(const Problem& p) {
  SCOPED_TRACE(describe(p));
  const Oracle want = oracle(p);
  std::vector<Backend> backends = {Backend::kNatten};
  if (sta_compatible(p.options.masks)) backends.push_back(Backend::kSta);
  if (all_full(p.options.masks)) backends.push_back(Backend::kDense);
  for (Backend b : backends) {
    SCOPED_TRACE("backend " + to_string(b));
    const Result got = run(p, b);
    EXPECT_LT(max_abs_error(got.out, want.out), 1e-5);
    EXPECT_LT(max_abs_error(got.lse, want.lse), 1e-5);
    EXPECT_EQ(got.stats.backend, b);
    const BlockCounts c = expected_counts(p, b);
    EXPECT_EQ(got.stats.counts.dense, c.dense);
    EXPECT_EQ(got.stats.counts.mixed, c.mixed);
    EXPECT_EQ(got.stats.counts.empty, c.empty);
    if (b == Backend::kSta || b == Backend::kDense) {
      EXPECT_EQ(got.stats.counts.mixed, 0);
    }
  }
}

/// Runs sta (sta:1,1,3), natten (swa:3,5,5) and dense (full) on `g` with 1 and then 2 OpenMP
/// threads and expects the same bits and counters (SPEC 6: deterministic for any thread count).
inline void expect_same_bits_for_one_and_two_threads(const Geometry& g, int64_t dim, Layout layout,
                                                     uint64_t seed) {
  const int saved = omp_get_max_threads();
  struct Case {
    Backend backend;
    Mask mask;
  };
  for (const Case& c : {Case{Backend::kSta, Mask::sta({1, 1, 3})},
                        Case{Backend::kNatten, Mask::swa({3, 5, 5})},
                        Case{Backend::kDense, Mask::full()}}) {
    SCOPED_TRACE(to_string(c.backend));
    const Problem p = make_problem(g, {c.mask}, 2, 2, dim, layout, seed);
    omp_set_num_threads(1);
    const Result one = run(p, c.backend);
    omp_set_num_threads(2);
    const Result two = run(p, c.backend);
    EXPECT_EQ(one.stats.threads, 1);
    EXPECT_EQ(std::memcmp(one.out.data(), two.out.data(), one.out.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(one.lse.data(), two.lse.data(), one.lse.size() * sizeof(float)), 0);
    EXPECT_EQ(one.stats.counts, two.stats.counts);
  }
  omp_set_num_threads(saved);
}

}  // namespace sta::testing
