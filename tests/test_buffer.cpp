// Large-buffer storage (sta/buffer.hpp): alignment, the reuse of freed large blocks, and that
// reused (stale) memory cannot change a result: the kernels write every element they read.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "sta/attention.hpp"
#include "sta/backward.hpp"
#include "sta/buffer.hpp"
#include "sta/error.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

TEST(LargeArray, AlignsSmallAndLargeBlocks) {
  LargeArray<float> small(10);
  LargeArray<float> large(int64_t{3} << 20);  // 12 MiB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large.data()) % (uintptr_t{2} << 20), 0u);
  large[large.size() - 1] = 1.0f;  // the whole block is usable
  EXPECT_EQ(large[large.size() - 1], 1.0f);
}

TEST(LargeArray, ReusesAFreedBlockOfAFittingSize) {
  release_buffer_cache();
  const float* first = nullptr;
  {
    LargeArray<float> a(int64_t{3} << 20, "a");
    first = a.data();
    a[0] = 42.0f;
  }
  // The same size and a slightly smaller one fit the kept block; twice its size does not,
  // nor does one under half of it.
  {
    LargeArray<float> b((int64_t{3} << 20) - 1000, "b");
    EXPECT_EQ(b.data(), first);
    EXPECT_EQ(b[0], 42.0f) << "kept blocks are handed out as they were (uninitialised)";
  }
  {
    LargeArray<float> huge(int64_t{6} << 20, "huge");
    EXPECT_NE(huge.data(), first);
    LargeArray<float> tiny(int64_t{1} << 20, "tiny");
    EXPECT_NE(tiny.data(), first);
  }
  release_buffer_cache();
  LargeArray<float> c(int64_t{3} << 20, "c");  // after a release, a fresh block (may reuse the address)
  c[0] = 1.0f;
  EXPECT_EQ(c[0], 1.0f);
}

TEST(LargeArray, CacheSizeComesFromTheEnvironment) {
  release_buffer_cache();
  ::setenv("STA_BUFFER_CACHE_MB", "0", 1);  // keep nothing: a freed block goes back
  {
    LargeArray<float> a(int64_t{3} << 20, "a");
  }
  ::setenv("STA_BUFFER_CACHE_MB", "1.5GB", 1);
  try {
    LargeArray<float> b(int64_t{3} << 20, "b");
    ADD_FAILURE() << "a malformed STA_BUFFER_CACHE_MB was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("STA_BUFFER_CACHE_MB: '1.5GB' is not a whole number"), std::string::npos)
        << e.what();
  }
  ::setenv("STA_BUFFER_CACHE_MB", "8", 1);  // 8 MiB: a 6 MiB block is kept and handed out again
  const float* kept = nullptr;
  {
    LargeArray<float> c(int64_t{3} << 19, "c");
    kept = c.data();
  }
  {
    LargeArray<float> d(int64_t{3} << 19, "d");
    EXPECT_EQ(d.data(), kept);
  }
  ::unsetenv("STA_BUFFER_CACHE_MB");
  release_buffer_cache();
}

TEST(LargeArray, ThreadsAllocateAndFreeConcurrently) {
  release_buffer_cache();
#pragma omp parallel num_threads(4)
  for (int i = 0; i < 20; ++i) {
    LargeArray<uint8_t> block((int64_t{4} << 20) + i * 4096, "block");
    std::memset(block.data(), i, static_cast<size_t>(block.size()));
    EXPECT_EQ(block[block.size() - 1], static_cast<uint8_t>(i));
  }
  release_buffer_cache();
}

TEST(LargeArray, StaleBlocksDoNotChangeResults) {
  // A forward and a backward whose packed heads are large blocks: run once on fresh blocks,
  // then fill every kept block with NaN and run again on them: the same bits.
  // 16,388 tokens, D = 64: a packed K or V of a head is 4 MiB in fp32, 2 MiB in bf16; the
  // two heads are packed together (the forward: 16 / 8 MiB, the backward's three arrays:
  // 24 / 12 MiB), large (kept) blocks. The window is one tile: the buffers are what this
  // tests, and the backward's fp32 tiles are slow under the sanitizers (CI).
  const Geometry g = testing::geo({8, 32, 64}, {2, 8, 16}, 4, 4);
  AttentionOptions options;
  options.geometry = g;
  options.masks = {Mask::sta({1, 1, 1})};
  const AttentionShape shape{1, 2, g.seq_len(), 64};
  const size_t n = static_cast<size_t>(shape.elements());
  std::vector<float> q(n), k(n), v(n), dout(n);
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto* t : {&q, &k, &v, &dout})
    for (float& x : *t) x = normal(rng);
  struct Result {
    std::vector<float> out, lse, dq, dk, dv;
  };
  auto run = [&](Precision precision) {
    AttentionOptions o = options;
    o.precision = precision;
    Result r{std::vector<float>(n), std::vector<float>(static_cast<size_t>(2 * shape.seq)),
             std::vector<float>(n), std::vector<float>(n), std::vector<float>(n)};
    attention(shape, o, q.data(), k.data(), v.data(), r.out.data(), r.lse.data(), Backend::kSta);
    attention_backward(shape, o, q.data(), k.data(), v.data(), r.out.data(), r.lse.data(), dout.data(),
                       r.dq.data(), r.dk.data(), r.dv.data(), Backend::kSta);
    return r;
  };
  for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
    release_buffer_cache();
    const Result fresh = run(precision);
    {  // poison: take blocks of the sizes the calls use, fill them with NaN, free them (kept)
      std::vector<LargeArray<float>> poison;
      for (int64_t mib : {4, 5, 8, 9, 12, 13, 16, 17, 24, 25}) poison.emplace_back(mib << 18, "poison");  // floats
      for (auto& block : poison) std::fill(block.data(), block.data() + block.size(), std::nanf(""));
    }
    const Result stale = run(precision);
    for (auto [a, b] : {std::pair{&fresh.out, &stale.out}, {&fresh.lse, &stale.lse}, {&fresh.dq, &stale.dq},
                        {&fresh.dk, &stale.dk}, {&fresh.dv, &stale.dv}})
      EXPECT_EQ(std::memcmp(a->data(), b->data(), a->size() * sizeof(float)), 0) << to_string(precision);
  }
  release_buffer_cache();
}

}  // namespace
}  // namespace sta
