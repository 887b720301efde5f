// The oracle against hand-worked cases and independent formulations.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <random>
#include <vector>

#include "sta/error.hpp"
#include "sta/reference.hpp"

namespace sta {
namespace {

struct Problem {
  AttentionShape shape;
  AttentionOptions opt;
  std::vector<float> q, k, v;
  std::vector<double> out, lse;

  Problem(const Geometry& g, int64_t b, int64_t h, int64_t d, std::vector<Mask> masks,
          uint64_t seed) {
    opt.geometry = g;
    opt.masks = std::move(masks);
    shape = {b, h, g.seq_len(), d};
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> n(0, 1);
    for (auto* t : {&q, &k, &v}) {
      t->resize(static_cast<size_t>(shape.elements()));
      for (auto& x : *t) x = n(rng);
    }
  }
  void run() {
    out.assign(static_cast<size_t>(shape.elements()), 0);
    lse.assign(static_cast<size_t>(shape.batch * shape.heads * shape.seq), 0);
    reference_attention(shape, opt, q.data(), k.data(), v.data(), out.data(), lse.data());
  }
};

Geometry line(int64_t n) {
  Geometry g;
  g.canvas = {1, 1, n};
  g.tile = {1, 1, 1};
  return g;
}

TEST(Reference, HandWorkedTwoTokens) {
  // D = 1, scale 1: q = (1, 0), k = (1, 2), v = (3, 5).
  Problem p(line(2), 1, 1, 1, {Mask::full()}, 1);
  p.opt.scale = 1.0;
  p.q = {1, 0};
  p.k = {1, 2};
  p.v = {3, 5};
  p.run();
  const double e = std::exp(1.0);
  EXPECT_NEAR(p.out[0], (3 + 5 * e) / (1 + e), 1e-15);
  EXPECT_NEAR(p.lse[0], std::log(std::exp(1.0) + std::exp(2.0)), 1e-15);
  EXPECT_NEAR(p.out[1], 4.0, 1e-15);
  EXPECT_NEAR(p.lse[1], std::log(2.0), 1e-15);
}

TEST(Reference, HandWorkedSlidingWindow) {
  // 1D swa:3 on 4 tokens, all scores equal (q = 0): each output is the mean of its window's
  // values, and the window shifts at the borders: token 0 sees 0..2, token 3 sees 1..3.
  Problem p(line(4), 1, 1, 1, {Mask::swa({1, 1, 3})}, 2);
  p.q = {0, 0, 0, 0};
  p.v = {1, 2, 4, 8};
  p.run();
  EXPECT_NEAR(p.out[0], (1 + 2 + 4) / 3.0, 1e-15);
  EXPECT_NEAR(p.out[1], (1 + 2 + 4) / 3.0, 1e-15);
  EXPECT_NEAR(p.out[2], (2 + 4 + 8) / 3.0, 1e-15);
  EXPECT_NEAR(p.out[3], (2 + 4 + 8) / 3.0, 1e-15);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(p.lse[i], std::log(3.0), 1e-15);
}

TEST(Reference, FullMaskEqualsSoftmaxQKtV) {
  Geometry g;
  g.canvas = {2, 4, 6};
  g.tile = {1, 2, 3};
  Problem p(g, 2, 2, 16, {Mask::full()}, 3);
  p.run();
  const int64_t S = p.shape.seq, D = p.shape.dim;
  using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  for (int64_t bh = 0; bh < 4; ++bh) {
    Mat Q = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(p.q.data() + bh * S * D, S, D).cast<double>();
    Mat K = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(p.k.data() + bh * S * D, S, D).cast<double>();
    Mat V = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(p.v.data() + bh * S * D, S, D).cast<double>();
    Mat A = (Q * K.transpose()) / std::sqrt(static_cast<double>(D));
    Eigen::VectorXd rowmax = A.rowwise().maxCoeff();
    Mat E = (A.colwise() - rowmax).array().exp().matrix();
    Eigen::VectorXd rowsum = E.rowwise().sum();
    Mat O = (E * V).array().colwise() / rowsum.array();
    for (int64_t i = 0; i < S; ++i) {
      EXPECT_NEAR(p.lse[bh * S + i], rowmax(i) + std::log(rowsum(i)), 1e-12);
      for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(p.out[(bh * S + i) * D + d], O(i, d), 1e-12);
    }
  }
}

TEST(Reference, WindowCoveringEverythingEqualsFullAttention) {
  Geometry g;
  g.canvas = {4, 4, 6};
  g.tile = {2, 2, 3};
  g.text_pad = 4;
  g.text_length = 4;
  Problem full(g, 1, 1, 8, {Mask::full()}, 4);
  full.run();
  for (const Mask& m : {Mask::sta({2, 2, 2}), Mask::sta({9, 9, 9}), Mask::swa({4, 4, 6}),
                        Mask::swa({99, 99, 99}), Mask::swa_torus({4, 5, 6})}) {
    Problem p(g, 1, 1, 8, {m}, 4);
    p.run();
    EXPECT_EQ(p.out, full.out) << to_string(m);  // same allowed set, same summation order
    EXPECT_EQ(p.lse, full.lse) << to_string(m);
  }
}

TEST(Reference, TextRules) {
  // Video 1x2x4 (tile 1x2x2 -> 2 tiles), text padded to 3 with 2 real tokens, STA window 1.
  Geometry g;
  g.canvas = {1, 2, 4};
  g.tile = {1, 2, 2};
  g.text_pad = 3;
  g.text_length = 2;
  Problem p(g, 1, 1, 4, {Mask::sta({1, 1, 1})}, 5);
  p.run();
  const int64_t S = g.seq_len(), D = 4, V = g.video_tokens();
  // Changing the padded key/value (index S-1) changes nothing.
  Problem p2 = p;
  for (int64_t d = 0; d < D; ++d) {
    p2.k[(S - 1) * D + d] = 100.0f;
    p2.v[(S - 1) * D + d] = -100.0f;
  }
  p2.run();
  EXPECT_EQ(p.out, p2.out);
  EXPECT_EQ(p.lse, p2.lse);
  // A text query (also the padded one) equals full attention over the valid keys; a video
  // query of tile 0 sees its own tile's 4 tokens and the 2 text tokens, nothing else.
  auto manual = [&](int64_t i, const std::vector<int64_t>& keys, int64_t d) {
    std::vector<double> s;
    double m = -1e300;
    for (int64_t j : keys) {
      double dot = 0;
      for (int64_t e = 0; e < D; ++e) dot += double(p.q[i * D + e]) * p.k[j * D + e];
      s.push_back(dot / 2.0);
      m = std::max(m, s.back());
    }
    double l = 0, o = 0;
    for (size_t n = 0; n < keys.size(); ++n) {
      l += std::exp(s[n] - m);
      o += std::exp(s[n] - m) * p.v[keys[n] * D + d];
    }
    return o / l;
  };
  const std::vector<int64_t> valid = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int64_t i : {V, V + 1, V + 2})
    for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(p.out[i * D + d], manual(i, valid, d), 1e-12);
  for (int64_t i : {0, 3})
    for (int64_t d = 0; d < D; ++d)
      EXPECT_NEAR(p.out[i * D + d], manual(i, {0, 1, 2, 3, 8, 9}, d), 1e-12);
}

TEST(Reference, PerHeadWindowsAreIndependent) {
  Geometry g;
  g.canvas = {2, 4, 4};
  g.tile = {1, 2, 2};
  Problem both(g, 1, 2, 4, {Mask::sta({1, 1, 1}), Mask::full()}, 6);
  both.run();
  Problem sta_only(g, 1, 2, 4, {Mask::sta({1, 1, 1})}, 6);
  sta_only.run();
  Problem full_only(g, 1, 2, 4, {Mask::full()}, 6);
  full_only.run();
  const size_t half = both.out.size() / 2;
  EXPECT_TRUE(std::equal(both.out.begin(), both.out.begin() + half, sta_only.out.begin()));
  EXPECT_TRUE(std::equal(both.out.begin() + half, both.out.end(), full_only.out.begin() + half));
}

}  // namespace
}  // namespace sta
