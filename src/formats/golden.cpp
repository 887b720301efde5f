#include "sta/golden.hpp"

#include <algorithm>

#include <cmath>

#include "sta/error.hpp"

namespace sta {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Xoshiro256 {
  uint64_t s[4];
  explicit Xoshiro256(uint64_t seed) {
    for (auto& w : s) w = splitmix64(seed);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

GoldenPreset make(const std::string& name, const std::string& description, Extent3 video,
                  Extent3 tile, int64_t text_length, int64_t text_pad, int64_t heads, int64_t dim,
                  std::vector<Mask> masks, Backend backend) {
  GoldenPreset p;
  p.name = name;
  p.description = description;
  p.options.geometry.canvas = video;
  p.options.geometry.tile = tile;
  p.options.geometry.text_length = text_length;
  p.options.geometry.text_pad = text_pad;
  p.options.masks = std::move(masks);
  p.shape = {1, heads, p.options.geometry.seq_len(), dim};
  p.backend = backend;
  return p;
}

std::vector<GoldenPreset> build_presets() {
  std::vector<GoldenPreset> p;
  p.push_back(make("tiny",
                   "unit test of a port: 2x2x2 tiles of 6x8x8 + 16/32 text, 2 heads "
                   "(sta:1,1,1, and sta:2,1,3 whose even and oversize entries clamp to 2,1,2), D=128, from the reference",
                   {12, 16, 16}, {6, 8, 8}, 16, 32, 2, 128,
                   {Mask::sta({1, 1, 1}), Mask::sta({2, 1, 3})}, Backend::kReference));
  p.push_back(make("tiny-swa",
                   "token-wise SWA (NATTEN semantics) for NATTEN-style ports: video 12x16x16, "
                   "swa:7,9,9, no text, D=64, from the reference",
                   {12, 16, 16}, {6, 8, 8}, 0, 0, 1, 64, {Mask::swa({7, 9, 9})},
                   Backend::kReference));
  p.push_back(make("image2d",
                   "2D image as in FastVideo's kernel README: 10x10 tiles of 8x8, window 6x6 "
                   "tiles (even: covers 7x7), D=64, from the reference",
                   {1, 80, 80}, {1, 8, 8}, 0, 0, 1, 64, {Mask::sta({1, 6, 6})},
                   Backend::kReference));
  p.push_back(make("medium",
                   "3x3x4 tiles of 6x8x8 + 100/128 text, 4 heads with per-head windows, "
                   "D=128, from the sta backend",
                   {18, 24, 32}, {6, 8, 8}, 100, 128, 4, 128,
                   {Mask::sta({1, 1, 1}), Mask::sta({3, 3, 3}), Mask::sta({1, 3, 3}),
                    Mask::sta({3, 1, 2})},
                   Backend::kSta));
  // Per-head windows in the spirit of FastVideo's Hunyuan mask strategies: most heads local,
  // some spatially global, a few full. Takes minutes and ~5.7 GB of disk.
  std::vector<Mask> hunyuan_masks;
  const Extent3 windows[6] = {{3, 3, 3}, {3, 3, 5}, {5, 3, 3}, {1, 6, 10}, {3, 6, 10}, {5, 6, 10}};
  for (int h = 0; h < 24; ++h) hunyuan_masks.push_back(Mask::sta(windows[h % 6]));
  p.push_back(make("hunyuan",
                   "HunyuanVideo 720p: 30x48x80 + 226/256 text, 24 heads with per-head windows, "
                   "D=128, from the sta backend (minutes, ~5.7 GB)",
                   {30, 48, 80}, {6, 8, 8}, 226, 256, 24, 128, hunyuan_masks, Backend::kSta));
  return p;
}

}  // namespace

const std::vector<GoldenPreset>& golden_presets() {
  static const std::vector<GoldenPreset> presets = build_presets();
  return presets;
}

const GoldenPreset& find_golden_preset(const std::string& name, const std::string& arg) {
  std::string names;
  for (const auto& p : golden_presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw Error(arg + ": unknown preset '" + name + "'; expected one of " + names);
}

GoldenStream::GoldenStream(uint64_t seed, uint64_t stream) {
  uint64_t mix = seed ^ (0xA0761D6478BD642Full * (stream + 1));
  const Xoshiro256 rng(splitmix64(mix));
  for (int i = 0; i < 4; ++i) s_[i] = rng.s[i];
}

void GoldenStream::fill(float* data, int64_t n) {
  Xoshiro256 rng(0);
  for (int i = 0; i < 4; ++i) rng.s[i] = s_[i];
  for (int64_t i = 0; i < n; ++i) {
    // 12 uniforms of 24 bits each: every partial sum is an exact integer in double.
    uint64_t sum = 0;
    for (int j = 0; j < 12; ++j) sum += rng.next() >> 40;
    data[i] = static_cast<float>(static_cast<double>(sum) / 16777216.0 - 6.0);
  }
  for (int i = 0; i < 4; ++i) s_[i] = rng.s[i];
}

void golden_fill(float* data, int64_t n, uint64_t seed, uint64_t stream) {
  GoldenStream(seed, stream).fill(data, n);
}

double golden_tolerance(InputRounding rounding) {
  switch (rounding) {
    case InputRounding::kNone: return 1e-5;
    case InputRounding::kFp16: return 2e-3;
    case InputRounding::kBf16: return 2e-2;
  }
  return 1e-5;
}

double golden_tolerance(InputRounding rounding, Precision precision) {
  const double t = golden_tolerance(rounding);
  return precision == Precision::kBf16 ? std::max(t, golden_tolerance(InputRounding::kBf16)) : t;
}

}  // namespace sta
