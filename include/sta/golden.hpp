#pragma once
// Golden outputs for GPU ports (`sta golden`, `sta verify`): named problem presets, a
// platform-independent input generator, the tolerances of SPEC section 6, and the one writer
// and verifier of golden folders that the CLI and the Python module share.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/json.hpp"

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

/// Fills `n` floats with approximately N(0,1) values: the same bits on every platform and
/// compiler (only exact integer and double arithmetic). The definition, all integers modulo
/// 2^64 (docs/semantics.md section 10; tests pin it by known answers):
///  * splitmix64 step on a state x: x += 0x9E3779B97F4A7C15; z = x;
///    z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB;
///    output z ^ z>>31.
///  * m = seed ^ (0xA0761D6478BD642F * (stream + 1)); x = one splitmix64 output on state m;
///    the xoshiro256** state s[0..3] = four successive splitmix64 outputs from state x.
///  * xoshiro256** next(): r = rotl(s1 * 5, 7) * 9; t = s1 << 17; s2 ^= s0; s3 ^= s1;
///    s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45); returns r.
///  * value i: sum of (next() >> 40) over 12 consecutive draws (Irwin-Hall, 24-bit uniforms),
///    then float32(sum / 2^24 - 6) rounded to nearest even (the double is exact).
/// Golden folders use stream 0 for q, 1 for k, 2 for v, 3 for dout.
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

// --- golden folders (src/formats/golden_folder.cpp): one writer and one verifier for the CLI, the
// Python module and the examples, so the manifest has a single definition. ---------------

/// The manifest's "format".
inline constexpr const char* kGoldenFormat = "sta-golden/1";

/// What a golden folder holds: the problem (a preset's or a custom one), the seed of its
/// inputs and the backend that computes its outputs. Scale is always the default 1/sqrt(D).
struct GoldenProblem {
  std::string preset = "custom";  ///< a preset's name, or "custom"
  std::string description;
  AttentionShape shape;
  AttentionOptions options;  ///< rounding and precision included
  Backend backend = Backend::kReference;
  uint64_t seed = 0;
};

/// The problem of `preset` with `seed` (rounding none, precision fp32).
GoldenProblem golden_problem(const GoldenPreset& preset, uint64_t seed);

/// How write_golden_folder() writes.
struct GoldenWriteOptions {
  bool force = false;        ///< replace existing golden files
  bool grad = false;         ///< also dout, dq, dk, dv (SPEC 8) and the manifest's "grad"
  std::string arg = "--dir"; ///< names the folder in errors ("--dir" for the CLI, "path" for Python)
};

/// What write_golden_folder() wrote.
struct GoldenWriteResult {
  AttentionStats stats;  ///< of the forward that computed out and lse
  std::string manifest;  ///< the text of manifest.json
};

/// The files of a golden folder, then the gradient files of one written with grad.
inline constexpr const char* kGoldenFiles[] = {"q.npy", "k.npy", "v.npy", "out.npy", "lse.npy"};
inline constexpr const char* kGoldenGradFiles[] = {"dout.npy", "dq.npy", "dk.npy", "dv.npy"};

/// Throws sta::Error naming the field if write_golden_folder() would refuse `problem` with
/// `options`: validate_attention()'s rules and the default scale only. Writes nothing.
void validate_golden_problem(const GoldenProblem& problem, const GoldenWriteOptions& options);

/// Writes a golden folder `dir` (created if missing, one level): q, k, v from the seed
/// (golden_fill streams 0, 1, 2, rounded as problem.options.rounding), out and lse computed
/// head by head by problem.backend (`progress(done, total)` after each head, may be empty),
/// with options.grad dout (stream 3) and dq, dk, dv, then manifest.json last (a folder with
/// a manifest is complete). Head by head: every file grows by one head's plane at a time, so
/// memory stays at a few [S, D] planes however many heads; the files are hashed as written
/// and published together (atomically) once every head is done, so a failure on the way
/// (an exception from `progress` included) leaves no golden file behind. Refuses existing
/// golden files unless options.force; validates the problem first
/// (validate_golden_problem). Throws sta::Error naming options.arg or the problem's field.
GoldenWriteResult write_golden_folder(const std::string& dir, const GoldenProblem& problem,
                                      const GoldenWriteOptions& options,
                                      const std::function<void(int64_t, int64_t)>& progress = {});

/// The outcome of verify_golden_folder(): the lines `sta verify` prints, in order, and the
/// results they report.
struct GoldenReport {
  bool ok = false;                     ///< everything checked holds
  std::vector<std::string> lines;      ///< one per check, then "verify: ..." (no newlines at the end)
  std::map<std::string, bool> hashes;  ///< file name -> size, header and SHA-256 as recorded
  bool manifest_same = false;          ///< every manifest field regenerated and equal
  bool inputs_same = false;            ///< q, k, v (and dout) bit-identical to the seed's
  double out_max_abs = -1, lse_max_abs = -1;  ///< recomputed vs stored (-1: not computed)
  /// Called with each line as it is added (to print a long verification as it goes).
  std::function<void(const std::string&)> on_line;
};

/// Checks a golden folder as `sta verify` does: 1. every file a regular file of exactly the
/// size its shape needs (before a byte is hashed), its header the golden header, its SHA-256
/// the manifest's; 2. every manifest field regenerated from the problem and compared; 3.
/// unless `hashes_only`, q, k, v regenerated from the seed (bit for bit) and out, lse
/// recomputed head by head (streaming) within the manifest's tolerance, which must be SPEC
/// 6's; gradients likewise for a folder with "grad". Returns report->ok; lines added before
/// an exception stay in *report. Throws sta::Error (naming `arg` or the manifest) for a
/// malformed folder.
bool verify_golden_folder(const std::string& dir, bool hashes_only, GoldenReport* report,
                          const std::string& arg = "DIR");

/// The problem a manifest describes, from its primary fields only (a preset by name, else
/// the custom fields); derived fields are left to verify_golden_folder(). Throws sta::Error
/// naming `where` and the field.
GoldenProblem golden_problem_from_manifest(const JsonValue& manifest, const std::string& where);

}  // namespace sta
