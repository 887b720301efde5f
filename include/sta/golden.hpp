#pragma once
// Golden outputs for GPU ports (`sta golden`, `sta verify`): named problem presets, a
// platform-independent input generator and the tolerances of SPEC section 6.
#include <cstdint>
#include <string>
#include <vector>

#include "sta/attention.hpp"

namespace sta {

/// A named golden problem: shapes, masks (one per head), backend that computes it.
struct GoldenPreset {
  std::string name;
  std::string description;
  AttentionShape shape;
  AttentionOptions options;
  Backend backend = Backend::kReference;  ///< reference for small presets, sta for large ones
};

/// Every built-in preset: tiny, tiny-swa, image2d, medium, hunyuan (see golden.cpp).
const std::vector<GoldenPreset>& golden_presets();
/// The preset called `name`; throws sta::Error naming `arg` and listing the presets.
const GoldenPreset& find_golden_preset(const std::string& name, const std::string& arg = "--preset");

/// Fills `n` floats with approximately N(0,1) values (Irwin-Hall sum of 12 uniforms of 24
/// bits, minus 6) from xoshiro256** seeded by splitmix64(seed, stream). Only exact integer
/// and double arithmetic: the same bits on every platform and compiler.
void golden_fill(float* data, int64_t n, uint64_t seed, uint64_t stream);

/// golden_fill() in pieces: fill(a, n1) then fill(b, n2) gives the values golden_fill would
/// put in n1 + n2 floats, so `sta verify` can check a large tensor chunk by chunk.
class GoldenStream {
 public:
  GoldenStream(uint64_t seed, uint64_t stream);
  void fill(float* data, int64_t n);

 private:
  uint64_t s_[4];
};

/// SPEC section 6 tolerance (max abs error vs the double reference) for inputs rounded to
/// `rounding`: none (fp32) 1e-5, fp16 2e-3, bf16 2e-2.
double golden_tolerance(InputRounding rounding);
/// The tolerance of a golden folder computed in `precision`: bf16 mode (SPEC 6) gets the bf16
/// tolerance 2e-2 whatever the input rounding; fp32 the rounding's tolerance.
double golden_tolerance(InputRounding rounding, Precision precision);


}  // namespace sta
