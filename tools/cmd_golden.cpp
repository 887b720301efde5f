// `sta golden` and `sta verify`: golden outputs for GPU ports, and the check that a golden
// folder is intact and reproducible.
#include <omp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "sta/blocks.hpp"
#include "sta/compare.hpp"
#include "sta/error.hpp"
#include "sta/file_io.hpp"
#include "sta/golden.hpp"
#include "sta/json.hpp"
#include "sta/npy.hpp"
#include "sta/sha256.hpp"

namespace sta::cli {
namespace {

constexpr const char* kFormat = "sta-golden/1";
constexpr const char* kGenerator = "irwin-hall-12/xoshiro256**/splitmix64";

const std::string kGoldenHelp = std::string(R"(sta golden: write trusted inputs and outputs for checking a port of STA.

Usage: sta golden --preset NAME --dir DIR [--seed N] [--round none|bf16|fp16] [--force]
       sta golden --dir DIR [common options] [--batch B] [--heads H] [--dim D]
                  [--backend reference|natten|sta|dense] [--seed N] [--round R] [--force]
       sta golden --list

Writes DIR/q.npy, k.npy, v.npy ([B,H,S,D] float32, approximately N(0,1), the same bits on
every platform for a given seed), out.npy ([B,H,S,D] float32), lse.npy ([B,H,S] float32,
natural log) and DIR/manifest.json: shapes, layout, tile, per-head windows (as given and
effective), text length and padding, scale, dtype and rounding, seed, backend, library
version, suggested tolerances (SPEC 6) and the SHA-256 of each file. The manifest is written
last: a folder with a manifest is complete.

  --preset NAME   a built-in problem (--list shows them); small presets are computed by the
                  double-precision reference, large ones by the sta backend (tested
                  against the reference)
  --dir DIR       output folder, created if missing; existing golden files are not replaced
                  without --force
  --seed N        input generator seed [default 0]
  --round R       round q, k, v to bf16 or fp16 values first (stored rounded, as float32)
                  to check a port that runs in that dtype [default none]
  --batch, --heads, --dim   custom problem sizes [defaults 1, 1, 128]
  --backend B     custom problems: who computes the outputs [default reference]
  --list          list the presets and exit

Check a port: load q, k, v (convert to your dtype), run your kernel with the manifest's
windows, compare with out.npy and lse.npy: `sta compare mine.npy DIR/out.npy --atol X`
with X from manifest "tolerances". See examples/.

)") + common_help();

const char* kVerifyHelp = R"(sta verify: check a golden folder written by `sta golden`; trusts nothing in it.

Usage: sta verify DIR [--hashes-only] [--threads N]

1. every file is a regular file of exactly the size its shape needs (checked before
   hashing), with golden's .npy header and the manifest's SHA-256;
2. the manifest is rebuilt from its primary fields (preset or custom problem, seed,
   rounding) and every other field must equal what `sta golden` writes: tiles, effective
   masks, scale, tolerances (SPEC 6 for the rounding), block counts, file shapes and sizes;
3. q, k, v against the generator for the seed and rounding (bit for bit), then out and
   lse recomputed head by head with the recorded backend, within the SPEC 6 tolerance
   (step 3 is skipped with --hashes-only).
Exit code 0 when everything holds, 1 when something does not, 2 on a malformed folder.
)";

std::string int_list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string extent_json(const Extent3& e) { return int_list({e.t, e.h, e.w}); }

struct Problem {
  std::string preset = "custom";
  std::string description;
  AttentionShape shape;
  AttentionOptions options;
  Backend backend = Backend::kReference;
  uint64_t seed = 0;
};

// The inputs of a problem: generated, then rounded as recorded.
void make_inputs(const Problem& p, std::vector<float>* q, std::vector<float>* k,
                 std::vector<float>* v) {
  const int64_t n = p.shape.elements();
  std::vector<float>* t[3] = {q, k, v};
  for (uint64_t s = 0; s < 3; ++s) {
    t[s]->resize(static_cast<size_t>(n));
    golden_fill(t[s]->data(), n, p.seed, s);
    round_inputs(t[s]->data(), n, p.options.rounding);
  }
}

// Computes out and lse with a progress line on stderr for runs longer than a moment.
AttentionStats compute(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                       const std::vector<float>& v, std::vector<float>* out,
                       std::vector<float>* lse) {
  out->assign(static_cast<size_t>(p.shape.elements()), 0.0f);
  lse->assign(static_cast<size_t>(p.shape.batch * p.shape.heads * p.shape.seq), 0.0f);
  AttentionOptions options = p.options;
  options.rounding = InputRounding::kNone;  // inputs are already rounded
  const auto start = std::chrono::steady_clock::now();
  const bool show = p.shape.batch * p.shape.heads > 1;
  auto progress = [&](int64_t done, int64_t total) {
    if (!show) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\r  %s: head %lld/%lld, %.1f s elapsed, ~%.0f s left   ",
                 to_string(p.backend).c_str(), (long long)done, (long long)total, s,
                 s / done * (total - done));
    if (done == total) std::fprintf(stderr, "\n");
  };
  return attention_by_head(p.shape, options, q.data(), k.data(), v.data(), out->data(),
                           lse->data(), p.backend, progress);
}

struct FileEntry {
  std::string name;
  std::vector<int64_t> shape;
  std::string sha256;
  size_t bytes;
};

// The manifest of a golden folder. `sta verify` regenerates it from the problem it describes
// and compares field by field, so every field added here is verified without more code.
std::string manifest_json(const Problem& p, const AttentionStats& st,
                          const std::vector<FileEntry>& files,
                          const std::string& version = STA_TOOL_VERSION) {
  const Geometry& g = p.options.geometry;
  const double tol = golden_tolerance(p.options.rounding);
  std::string masks, eff;
  for (int64_t h = 0; h < p.shape.heads; ++h) {
    const Mask& m = mask_for_head(p.options.masks, h);
    masks += (h ? ", " : "") + json_quote(to_string(m));
    Mask e = m;
    if (m.kind == MaskKind::kSta) e.window = effective_sta_window(m.window, g.tiles());
    eff += (h ? ", " : "") + json_quote(to_string(e));
  }
  char scale[64], tols[160];
  std::snprintf(scale, sizeof scale, "%.17g", p.options.effective_scale(p.shape.dim));
  std::snprintf(tols, sizeof tols, "{\"out\": {\"atol\": %g, \"rtol\": 0}, \"lse\": {\"atol\": %g, \"rtol\": 0}}",
                tol, tol);
  std::string j = "{\n";
  j += "  \"format\": " + json_quote(kFormat) + ",\n";
  j += "  \"library_version\": " + json_quote(version) + ",\n";
  j += "  \"preset\": " + json_quote(p.preset) + ",\n";
  j += "  \"description\": " + json_quote(p.description) + ",\n";
  j += "  \"shape\": {\"B\": " + std::to_string(p.shape.batch) + ", \"H\": " +
       std::to_string(p.shape.heads) + ", \"S\": " + std::to_string(p.shape.seq) +
       ", \"D\": " + std::to_string(p.shape.dim) + "},\n";
  j += "  \"layout\": " + json_quote(to_string(p.options.layout)) + ",\n";
  j += "  \"video\": " + extent_json(g.canvas) + ",\n";
  j += "  \"tile\": " + extent_json(g.tile) + ",\n";
  j += "  \"tiles\": " + extent_json(g.tiles()) + ",\n";
  j += "  \"ragged\": " + std::string(g.ragged ? "true" : "false") + ",\n";
  j += "  \"text_length\": " + std::to_string(g.text_length) + ",\n";
  j += "  \"text_pad\": " + std::to_string(g.text_pad) + ",\n";
  j += "  \"masks\": [" + masks + "],\n";
  j += "  \"effective_masks\": [" + eff + "],\n";
  j += "  \"scale\": " + std::string(scale) + ",\n";
  j += "  \"dtype\": \"float32\",\n";
  j += "  \"rounding\": " + json_quote(to_string(p.options.rounding)) + ",\n";
  j += "  \"seed\": " + std::to_string(p.seed) + ",\n";
  j += "  \"generator\": " + json_quote(kGenerator) + ",\n";
  j += "  \"backend\": " + json_quote(to_string(p.backend)) + ",\n";
  j += "  \"isa\": " + json_quote(st.isa) + ",\n";
  j += "  \"block_counts\": {\"dense\": " + std::to_string(st.counts.dense) + ", \"mixed\": " +
       std::to_string(st.counts.mixed) + ", \"empty\": " + std::to_string(st.counts.empty) + "},\n";
  j += "  \"tolerances\": " + std::string(tols) + ",\n";
  j += "  \"files\": {";
  for (size_t i = 0; i < files.size(); ++i)
    j += std::string(i ? ",\n" : "\n") + "    " + json_quote(files[i].name) + ": {\"shape\": " +
         int_list(files[i].shape) + ", \"bytes\": " + std::to_string(files[i].bytes) +
         ", \"sha256\": " + json_quote(files[i].sha256) + "}";
  j += "\n  }\n}\n";
  return j;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

int run_golden(int argc, char** argv) {
  Args args(argc, argv, {"--force", "--list"});
  auto known = common_option_names();
  known.insert(known.end(), {"--preset", "--dir", "--seed", "--round", "--force", "--list",
                             "--batch", "--heads", "--dim", "--backend"});
  args.check_known(known);
  if (args.has("--list")) {
    std::printf("%-10s %-22s %6s %8s %5s %-10s %s\n", "preset", "video / tile", "heads", "S", "D",
                "backend", "description");
    for (const auto& p : golden_presets())
      std::printf("%-10s %-22s %6lld %8lld %5lld %-10s %s\n", p.name.c_str(),
                  (to_string(p.options.geometry.canvas) + " / " + to_string(p.options.geometry.tile)).c_str(),
                  (long long)p.shape.heads, (long long)p.shape.seq, (long long)p.shape.dim,
                  to_string(p.backend).c_str(), p.description.c_str());
    return 0;
  }
  if (!args.positionals().empty())
    throw Error("unexpected argument '" + args.positionals()[0] + "' (see sta golden --help)");
  const std::string dir = args.get("--dir");
  if (dir.empty()) throw Error("--dir: missing; expected the output folder");
  Problem p;
  if (args.has("--preset")) {
    for (const char* o : {"--video", "--tile", "--mask", "--text-length", "--text-pad", "--layout",
                          "--ragged", "--batch", "--heads", "--dim", "--backend", "--strategy",
                          "--step", "--layer"})
      if (args.has(o))
        throw Error(std::string(o) + ": not allowed with --preset (a preset fixes the problem)");
    const GoldenPreset& gp = find_golden_preset(args.get("--preset"));
    p.preset = gp.name;
    p.description = gp.description;
    p.shape = gp.shape;
    p.options = gp.options;
    p.backend = gp.backend;
  } else {
    const CommonOptions c = parse_common(args);
    p.options.geometry = c.geometry;
    p.options.masks = c.masks;
    p.options.layout = c.layout;
    p.shape.batch = args.get_int("--batch", 1, 1, 1 << 20);
    // Several --mask (or a --strategy) without --heads: one head per mask (issue 11).
    const int64_t mask_heads = static_cast<int64_t>(c.masks.size());
    p.shape.heads = args.get_int("--heads", mask_heads, 1, 1 << 20);
    p.shape.dim = args.get_int("--dim", 128, 1, 1 << 16);
    p.shape.seq = c.geometry.seq_len();
    p.backend = parse_backend(args.get("--backend", "reference"));
    p.description = "custom problem";
    check_head_masks(c, p.shape.heads);
  }
  p.seed = static_cast<uint64_t>(args.get_int("--seed", 0, 0, INT64_MAX));
  p.options.rounding = parse_rounding(args.get("--round", "none"), "--round");
  // Sizes are checked before anything is allocated or written: five tensors in memory.
  const int64_t elements = checked_product({p.shape.batch, p.shape.heads, p.shape.seq, p.shape.dim},
                                           "--batch/--heads/--dim", "[B,H,S,D]");
  const std::string problem = "the golden problem [B,H,S,D] = [" + std::to_string(p.shape.batch) + "," +
                              std::to_string(p.shape.heads) + "," + std::to_string(p.shape.seq) + "," +
                              std::to_string(p.shape.dim) + "]";
  const char* size_arg = args.has("--preset") ? "--preset" : "--batch/--heads/--dim";
  check_memory(4.0 * 4.1 * static_cast<double>(elements), size_arg, problem);
  validate_attention(p.shape, p.options, p.backend);
  check_attention_cost(p.shape, p.options, p.backend, 3.0 * 4.0 * static_cast<double>(elements), size_arg);

  const bool force = args.has("--force");
  if (exists(dir)) {
    struct stat st {};
    ::stat(dir.c_str(), &st);
    if (!S_ISDIR(st.st_mode)) throw Error("--dir: '" + dir + "' exists and is not a folder");
  } else if (::mkdir(dir.c_str(), 0755) != 0) {
    throw Error("--dir: cannot create folder '" + dir + "'");
  }
  const char* names[] = {"q.npy", "k.npy", "v.npy", "out.npy", "lse.npy", "manifest.json"};
  std::vector<PathArg> outputs;
  for (const char* n : names) outputs.push_back({"--dir", dir + "/" + n});
  check_outputs(outputs, {}, force);

  const double gb = 4.0 * (4 * p.shape.elements()) / 1e9;
  std::fprintf(stderr, "sta golden: %s, [B,H,S,D] = [%lld,%lld,%lld,%lld], ~%.2f GB on disk\n",
               p.preset.c_str(), (long long)p.shape.batch, (long long)p.shape.heads,
               (long long)p.shape.seq, (long long)p.shape.dim, gb);
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> q, k, v, out, lse;
  make_inputs(p, &q, &k, &v);
  const AttentionStats st = compute(p, q, k, v, &out, &lse);

  const std::vector<int64_t> shape4 = {p.shape.batch, p.shape.heads, p.shape.seq, p.shape.dim};
  const std::vector<int64_t> shape3 = {p.shape.batch, p.shape.heads, p.shape.seq};
  std::vector<FileEntry> files;
  // Header and data are written and hashed in place: no second copy of a (GB-sized) tensor.
  auto put = [&](const char* name, const std::vector<float>& data, const std::vector<int64_t>& shape) {
    const std::string header = npy_header(shape);
    const size_t data_bytes = data.size() * sizeof(float);
    sta::write_file_atomic(dir + "/" + name, {{header.data(), header.size()}, {data.data(), data_bytes}},
                           force, "--dir");
    Sha256 sha;
    sha.update(header.data(), header.size());
    sha.update(data.data(), data_bytes);
    files.push_back({name, shape, sha.hex(), header.size() + data_bytes});
  };
  put("q.npy", q, shape4);
  put("k.npy", k, shape4);
  put("v.npy", v, shape4);
  put("out.npy", out, shape4);
  put("lse.npy", lse, shape3);
  write_file_atomic(dir + "/manifest.json", manifest_json(p, st, files), force, "--dir");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sta golden: wrote %s (preset %s, backend %s, %s) in %.2f s\n", dir.c_str(),
              p.preset.c_str(), to_string(p.backend).c_str(), st.isa.c_str(), s);
  return 0;
}

// An unsigned 64-bit integer written in the manifest exactly (a JSON double cannot hold a
// seed above 2^53, so the number's text is parsed).
uint64_t exact_u64(const JsonValue& v, const std::string& where) {
  const std::string& t = v.text;
  if (v.type != JsonValue::Type::kNumber || t.empty() || t.size() > 20 ||
      t.find_first_not_of("0123456789") != std::string::npos)
    throw Error(where + ": expected an unsigned integer, found " + (v.type == JsonValue::Type::kNumber ? t : "another type"));
  uint64_t x = 0;
  for (char c : t) {
    if (x > (UINT64_MAX - static_cast<uint64_t>(c - '0')) / 10)
      throw Error(where + ": " + t + " overflows 64 bits");
    x = x * 10 + static_cast<uint64_t>(c - '0');
  }
  return x;
}

// Rebuilds the problem a manifest describes from its primary fields only (a preset by name,
// else the custom fields). Derived fields (tiles, effective masks, tolerances, scale, block
// counts, file shapes and sizes) are not read here: verify regenerates them and compares.
Problem problem_from_manifest(const JsonValue& m, const std::string& where) {
  if (m.at("format", where).as_string(where + " format") != kFormat)
    throw Error(where + ": format is not " + std::string(kFormat));
  Problem p;
  p.preset = m.at("preset", where).as_string(where + " preset");
  if (p.preset != "custom") {
    const GoldenPreset& gp = find_golden_preset(p.preset, where + " preset");
    p.description = gp.description;
    p.shape = gp.shape;
    p.options = gp.options;
    p.backend = gp.backend;
  } else {
    p.description = "custom problem";  // what golden writes; verify compares it
    const JsonValue& shape = m.at("shape", where);
    p.shape.batch = shape.at("B", where + " shape").as_int(where + " shape.B");
    p.shape.heads = shape.at("H", where + " shape").as_int(where + " shape.H");
    p.shape.seq = shape.at("S", where + " shape").as_int(where + " shape.S");
    p.shape.dim = shape.at("D", where + " shape").as_int(where + " shape.D");
    auto extent = [&](const char* key) {
      const JsonValue& a = m.at(key, where);
      if (a.type != JsonValue::Type::kArray || a.array.size() != 3)
        throw Error(where + ": " + key + " must be an array of 3 integers");
      return Extent3{a.array[0].as_int(where + " " + key), a.array[1].as_int(where + " " + key),
                     a.array[2].as_int(where + " " + key)};
    };
    Geometry& g = p.options.geometry;
    g.canvas = extent("video");
    g.tile = extent("tile");
    g.text_length = m.at("text_length", where).as_int(where + " text_length");
    g.text_pad = m.at("text_pad", where).as_int(where + " text_pad");
    if (m.has("ragged")) {
      const JsonValue& r = m.at("ragged", where);
      if (r.type != JsonValue::Type::kBool) throw Error(where + ": ragged must be true or false");
      g.ragged = r.boolean;
    }
    g.validate();
    p.options.layout = parse_layout(m.at("layout", where).as_string(where + " layout"), where + " layout");
    p.options.masks.clear();
    const JsonValue& masks = m.at("masks", where);
    if (masks.type != JsonValue::Type::kArray) throw Error(where + ": masks must be an array");
    for (const auto& s : masks.array)
      p.options.masks.push_back(parse_mask(s.as_string(where + " masks"), where + " masks"));
    p.backend = parse_backend(m.at("backend", where).as_string(where + " backend"), where + " backend");
  }
  p.options.rounding = parse_rounding(m.at("rounding", where).as_string(where + " rounding"), where + " rounding");
  p.seed = exact_u64(m.at("seed", where), where + " seed");
  // golden always uses the default scale 1/sqrt(D); the manifest's "scale" is derived.
  p.options.scale = 0.0;
  validate_attention(p.shape, p.options, p.backend);
  const int64_t elements = checked_product({p.shape.batch, p.shape.heads, p.shape.seq, p.shape.dim},
                                           where + " shape", "[B,H,S,D]");
  if (elements > kMaxNpyElements)
    throw Error(where + ": shape [B,H,S,D] has " + std::to_string(elements) +
                " elements; expected at most " + std::to_string(kMaxNpyElements));
  return p;
}

// The first place where two JSON values differ ("" if equal). Integers compare by their
// text (seeds beyond 2^53), other numbers by value (1e-05 == 1e-5), the rest exactly.
std::string json_difference(const JsonValue& want, const JsonValue& got, const std::string& path) {
  using T = JsonValue::Type;
  if (want.type != got.type) return path + " (a different type)";
  switch (want.type) {
    case T::kNull: return "";
    case T::kBool: return want.boolean == got.boolean ? "" : path;
    case T::kString: return want.text == got.text ? "" : path;
    case T::kNumber: {
      const bool ints = want.text.find_first_of(".eE") == std::string::npos &&
                        got.text.find_first_of(".eE") == std::string::npos;
      return (ints ? want.text == got.text : want.number == got.number) ? "" : path;
    }
    case T::kArray:
      if (want.array.size() != got.array.size()) return path + " (a different length)";
      for (size_t i = 0; i < want.array.size(); ++i) {
        const std::string d = json_difference(want.array[i], got.array[i], path + "[" + std::to_string(i) + "]");
        if (!d.empty()) return d;
      }
      return "";
    case T::kObject:
      for (const auto& [k, v] : want.object) {
        const auto it = got.object.find(k);
        if (it == got.object.end()) return path + "." + k + " (missing)";
        const std::string d = json_difference(v, it->second, path + "." + k);
        if (!d.empty()) return d;
      }
      for (const auto& [k, v] : got.object)
        if (!want.object.count(k)) return path + "." + k + " (not written by sta golden)";
      return "";
  }
  return "";
}

// Reads `n` float32 values at byte `offset` of `path` (little-endian host, as npy.cpp).
void read_floats(const std::string& path, uint64_t offset, float* dst, int64_t n) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("DIR '" + path + "': cannot open");
  f.seekg(static_cast<std::streamoff>(offset));
  const auto bytes = static_cast<std::streamsize>(n * 4);
  f.read(reinterpret_cast<char*>(dst), bytes);
  if (f.gcount() != bytes) throw Error("DIR '" + path + "': changed while being read");
}

// One file of a golden folder as the problem determines it.
struct ExpectedFile {
  const char* name;
  std::vector<int64_t> shape;
  uint64_t header_bytes;  ///< npy_header(shape).size()
  uint64_t bytes;         ///< header + 4 bytes per element
};

std::vector<ExpectedFile> expected_files(const AttentionShape& sh) {
  const std::vector<int64_t> shape4 = {sh.batch, sh.heads, sh.seq, sh.dim};
  const std::vector<int64_t> shape3 = {sh.batch, sh.heads, sh.seq};
  std::vector<ExpectedFile> expected;
  for (const char* name : {"q.npy", "k.npy", "v.npy", "out.npy", "lse.npy"}) {
    const auto& shape = std::string(name) == "lse.npy" ? shape3 : shape4;
    const uint64_t header = npy_header(shape).size();
    uint64_t elements = 1;
    for (int64_t d : shape) elements *= static_cast<uint64_t>(d);  // <= kMaxNpyElements
    expected.push_back({name, shape, header, header + 4 * elements});
  }
  return expected;
}

// Step 1. Each file is a regular file of exactly the size its shape needs (checked before a
// byte is hashed: a link to /dev/zero or a 100 GB sparse file fails at once), its header is
// exactly golden's and its hash the manifest's. Fills `files` with what was found.
bool check_files(const std::string& dir, const JsonValue& m, const std::string& where,
                 const std::vector<ExpectedFile>& expected, std::vector<FileEntry>* files) {
  const JsonValue& mfiles = m.at("files", where);
  if (!mfiles.is_object()) throw Error(where + ": files must be an object");
  bool ok = true;
  for (const ExpectedFile& e : expected) {
    const std::string path = dir + "/" + e.name;
    const uint64_t size = regular_file_size(path, "DIR");
    if (size != e.bytes) {
      std::printf("  %-8s size %llu bytes but shape %s needs %llu: FAIL\n", e.name,
                  (unsigned long long)size, shape_to_string(e.shape).c_str(), (unsigned long long)e.bytes);
      ok = false;
      files->push_back({e.name, e.shape, "", e.bytes});
      continue;
    }
    std::string header(e.header_bytes, '\0');
    std::ifstream(path, std::ios::binary).read(&header[0], static_cast<std::streamsize>(header.size()));
    const bool header_ok = header == npy_header(e.shape);
    const std::string got = sha256_file_hex(path, "DIR");
    const std::string want =
        mfiles.at(e.name, where + " files").at("sha256", where + " files." + e.name).as_string(where);
    const bool same = got == want && header_ok;
    ok = ok && same;
    if (!header_ok)
      std::printf("  %-8s header is not the golden header of shape %s: FAIL\n", e.name,
                  shape_to_string(e.shape).c_str());
    else if (!same)
      std::printf("  %-8s sha256 MISMATCH (file changed)\n           manifest %s\n           file     %s\n",
                  e.name, want.c_str(), got.c_str());
    else
      std::printf("  %-8s sha256 ok\n", e.name);
    files->push_back({e.name, e.shape, got, e.bytes});
  }
  return ok;
}

// Block counts of the problem from the classifier: one classification per distinct mask,
// times the heads using it and B (overflow-checked).
BlockCounts classifier_counts(const Problem& p, const std::string& where) {
  std::map<std::string, int64_t> uses;
  for (int64_t h = 0; h < p.shape.heads; ++h) ++uses[to_string(mask_for_head(p.options.masks, h))];
  BlockCounts total;
  for (const auto& [text, heads] : uses) {
    const BlockCounts c = classify_blocks(p.options.geometry, parse_mask(text, where + " masks")).counts;
    const int64_t times = checked_product({heads, p.shape.batch}, where + " shape", "B*H");
    for (auto [one, sum] : {std::pair<int64_t, int64_t*>{c.dense, &total.dense},
                            {c.mixed, &total.mixed}, {c.empty, &total.empty}}) {
      int64_t product = 0;
      if (__builtin_mul_overflow(one, times, &product) || __builtin_add_overflow(*sum, product, sum))
        throw Error(where + ": block counts of shape and video overflow 64 bits; expected a smaller problem");
    }
  }
  return total;
}

// Step 2. Every manifest field equals what golden writes for this problem: the manifest is
// regenerated and compared (tolerances, scale, tiles, effective masks, block counts, file
// shapes and sizes, ...). A field added to manifest_json() is checked with no code here;
// kAddedFields lists fields older folders may lack, with the value their absence means.
bool check_manifest(const Problem& p, const JsonValue& m, const std::string& where,
                    const std::vector<FileEntry>& files) {
  AttentionStats st;
  st.isa = m.has("isa") ? m.at("isa", where).as_string(where + " isa") : "";
  st.counts = classifier_counts(p, where);
  const std::string version = m.at("library_version", where).as_string(where + " library_version");
  JsonValue regenerated = parse_json(manifest_json(p, st, files, version), "regenerated manifest");
  static const std::pair<const char*, const char*> kAddedFields[] = {{"ragged", "false"}};
  for (const auto& [key, fallback] : kAddedFields)
    if (!m.has(key) && json_difference(parse_json(fallback, key), regenerated.object[key], key).empty())
      regenerated.object.erase(key);
  const std::string diff = json_difference(regenerated, m, "manifest");
  std::printf("  manifest %s%s\n",
              diff.empty() ? "every field recomputed, ok" : "FIELD DIFFERS from what sta golden writes: ",
              diff.c_str());
  return diff.empty();
}

// Step 3a. q, k, v equal the generator's values for the seed and rounding, bit for bit,
// compared chunk by chunk (a few MB whatever the folder's size).
bool check_inputs(const std::string& dir, const Problem& p, const std::vector<ExpectedFile>& expected) {
  const int64_t n = p.shape.elements();
  constexpr int64_t kChunk = int64_t{1} << 20;
  std::vector<float> want(static_cast<size_t>(std::min(n, kChunk))), got(want.size());
  bool same = true;
  for (uint64_t s = 0; s < 3 && same; ++s) {
    GoldenStream gen(p.seed, s);
    for (int64_t done = 0; done < n && same; done += kChunk) {
      const int64_t c = std::min(kChunk, n - done);
      gen.fill(want.data(), c);
      round_inputs(want.data(), c, p.options.rounding);
      read_floats(dir + "/" + expected[s].name, expected[s].header_bytes + 4 * static_cast<uint64_t>(done),
                  got.data(), c);
      same = std::memcmp(want.data(), got.data(), static_cast<size_t>(c) * 4) == 0;
    }
  }
  std::printf("  inputs   %s\n", same ? "regenerated from the seed, bit-identical" : "DIFFER from the seed's inputs");
  return same;
}

// Step 3b. out and lse recomputed head by head with the recorded backend (memory: five
// [S, D] planes, ~300 MB for hunyuan instead of 11 GB), within the SPEC 6 tolerance, and
// the kernel's block counters equal to the classifier's.
bool check_outputs_recomputed(const std::string& dir, const Problem& p,
                              const std::vector<ExpectedFile>& expected, const std::string& where) {
  const AttentionShape& sh = p.shape;
  const int64_t plane = sh.seq * sh.dim;
  AttentionShape one = sh;
  one.batch = one.heads = 1;
  std::vector<float> hq(static_cast<size_t>(plane)), hk(hq.size()), hv(hq.size()), hout(hq.size()),
      fout(hq.size()), hlse(static_cast<size_t>(sh.seq)), flse(hlse.size());
  AttentionOptions options = p.options;
  options.rounding = InputRounding::kNone;  // the stored inputs are already rounded
  const double tol = golden_tolerance(p.options.rounding);
  double e_out = 0, e_lse = 0;
  BlockCounts counts;
  float* planes[4] = {hq.data(), hk.data(), hv.data(), fout.data()};
  for (int64_t bh = 0; bh < sh.batch * sh.heads; ++bh) {
    const uint64_t off4 = 4 * static_cast<uint64_t>(bh * plane), off3 = 4 * static_cast<uint64_t>(bh * sh.seq);
    for (int f = 0; f < 4; ++f)
      read_floats(dir + "/" + expected[f].name, expected[f].header_bytes + off4, planes[f], plane);
    read_floats(dir + "/lse.npy", expected[4].header_bytes + off3, flse.data(), sh.seq);
    options.masks = {mask_for_head(p.options.masks, bh % sh.heads)};
    counts += attention(one, options, hq.data(), hk.data(), hv.data(), hout.data(), hlse.data(), p.backend).counts;
    e_out = std::max(e_out, diff_arrays(hout.data(), fout.data(), plane, tol, 0).max_abs);
    e_lse = std::max(e_lse, diff_arrays(hlse.data(), flse.data(), sh.seq, tol, 0).max_abs);
  }
  for (const auto& [name, e] : {std::pair<const char*, double>{"out", e_out}, {"lse", e_lse}})
    std::printf("  %-8s recomputed (%s): max abs error %.3g (tolerance %g) %s\n", name,
                to_string(p.backend).c_str(), e, tol, e <= tol ? "ok" : "FAIL");
  const bool counts_same = counts == classifier_counts(p, where);
  if (!counts_same) std::printf("  blocks   the kernel's counters differ from the classifier's: FAIL\n");
  return e_out <= tol && e_lse <= tol && counts_same;
}

int run_verify(int argc, char** argv) {
  Args args(argc, argv, {"--hashes-only"});
  args.check_known({"--hashes-only", "--threads", "--help"});
  if (args.positionals().size() != 1) throw Error("DIR: expected exactly one golden folder (see sta verify --help)");
  const int threads = static_cast<int>(args.get_int("--threads", 0, 1, 4096));
  if (threads > 0) omp_set_num_threads(threads);
  const std::string dir = args.positionals()[0];
  const std::string where = dir + "/manifest.json";
  const JsonValue m = read_json_file(where);
  const Problem p = problem_from_manifest(m, where);
  const std::vector<ExpectedFile> expected = expected_files(p.shape);
  std::vector<FileEntry> files;
  // A file of the wrong size stops here: nothing after could be trusted or bounded.
  bool ok = check_files(dir, m, where, expected, &files) && check_manifest(p, m, where, files);
  if (ok && !args.has("--hashes-only"))
    ok = check_inputs(dir, p, expected) && check_outputs_recomputed(dir, p, expected, where);
  std::printf("%s\n", !ok ? "verify: FAILED" : args.has("--hashes-only") ? "verify: hashes ok" : "verify: ok");
  return ok ? 0 : 1;
}

STA_COMMAND("golden", "write golden q/k/v/out/lse .npy files and a manifest for GPU ports",
            kGoldenHelp, run_golden);
STA_COMMAND("verify", "check a golden folder: hashes, inputs, recomputed outputs", kVerifyHelp,
            run_verify);

}  // namespace
}  // namespace sta::cli
