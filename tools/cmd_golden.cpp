// `sta golden` and `sta verify`: golden outputs for GPU ports, and the check that a golden
// folder is intact and reproducible.
#include <omp.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cmd_golden_grad.hpp"
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
  --grad          also write dout.npy (from the seed) and the gradients dq.npy, dk.npy,
                  dv.npy of sum(out * dout) (SPEC 8, fp32), tolerances in manifest "grad"
  --list          list the presets and exit

Check a port: load q, k, v (convert to your dtype), run your kernel with the manifest's
windows, compare with out.npy and lse.npy: `sta compare mine.npy DIR/out.npy --atol X`
with X from manifest "tolerances". See examples/.

)") + common_help();

const char* kVerifyHelp = R"(sta verify: check a golden folder written by `sta golden`.

Usage: sta verify DIR [--hashes-only] [--threads N]

1. every file's SHA-256 against the manifest (catches a single flipped byte);
2. q, k, v against the generator for the recorded seed and rounding (bit for bit);
3. out and lse recomputed with the recorded backend, max abs error against the files
   within the manifest's tolerance (skipped with --hashes-only).
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

std::string manifest_json(const Problem& p, const AttentionStats& st,
                          const std::vector<FileEntry>& files, const std::string& grad_json) {
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
  j += "  \"library_version\": " + json_quote(STA_TOOL_VERSION) + ",\n";
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
  j += grad_json;
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
  Args args(argc, argv, {"--force", "--list", "--grad"});
  auto known = common_option_names();
  known.insert(known.end(), {"--preset", "--dir", "--seed", "--round", "--force", "--list",
                             "--batch", "--heads", "--dim", "--backend", "--grad"});
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
                          "--ragged", "--batch", "--heads", "--dim", "--backend"})
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
    p.shape.heads = args.get_int("--heads", 1, 1, 1 << 20);
    p.shape.dim = args.get_int("--dim", 128, 1, 1 << 16);
    p.shape.seq = c.geometry.seq_len();
    p.backend = parse_backend(args.get("--backend", "reference"));
    p.description = "custom problem";
  }
  p.seed = static_cast<uint64_t>(args.get_int("--seed", 0, 0, INT64_MAX));
  p.options.rounding = parse_rounding(args.get("--round", "none"), "--round");
  validate_attention(p.shape, p.options, p.backend);

  const bool force = args.has("--force");
  if (exists(dir)) {
    struct stat st {};
    ::stat(dir.c_str(), &st);
    if (!S_ISDIR(st.st_mode)) throw Error("--dir: '" + dir + "' exists and is not a folder");
  } else if (::mkdir(dir.c_str(), 0755) != 0) {
    throw Error("--dir: cannot create folder '" + dir + "'");
  }
  const char* names[] = {"q.npy", "k.npy", "v.npy", "out.npy", "lse.npy", "manifest.json"};
  for (const char* n : names)
    if (!force && exists(dir + "/" + n))
      throw Error("--dir: '" + dir + "/" + n + "' exists; refusing to overwrite it (pass --force)");
  for (const char* n : kGoldenGradFiles)
    if (args.has("--grad") && !force && exists(dir + "/" + n))
      throw Error("--dir: '" + dir + "/" + n + "' exists; refusing to overwrite it (pass --force)");

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
  const std::string grad_json =
      args.has("--grad") ? write_golden_grads(p.shape, p.options, p.backend, p.seed, q, k, v, out, lse, put) : "";
  write_file_atomic(dir + "/manifest.json", manifest_json(p, st, files, grad_json), force, "--dir");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sta golden: wrote %s (preset %s, backend %s, %s) in %.2f s\n", dir.c_str(),
              p.preset.c_str(), to_string(p.backend).c_str(), st.isa.c_str(), s);
  return 0;
}

// Rebuilds the problem a manifest describes.
Problem problem_from_manifest(const JsonValue& m, const std::string& where) {
  if (m.at("format", where).as_string(where + " format") != kFormat)
    throw Error(where + ": format is not " + std::string(kFormat));
  Problem p;
  p.preset = m.at("preset", where).as_string(where + " preset");
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
  // Absent in manifests written before ragged tiles existed: those are never ragged.
  if (m.has("ragged")) {
    const JsonValue& r = m.at("ragged", where);
    if (r.type != JsonValue::Type::kBool) throw Error(where + ": ragged must be true or false");
    g.ragged = r.boolean;
  }
  p.options.layout = parse_layout(m.at("layout", where).as_string(where + " layout"), where + " layout");
  p.options.masks.clear();
  const JsonValue& masks = m.at("masks", where);
  if (masks.type != JsonValue::Type::kArray) throw Error(where + ": masks must be an array");
  for (const auto& s : masks.array) p.options.masks.push_back(parse_mask(s.as_string(where + " masks"), where + " masks"));
  p.options.scale = m.at("scale", where).as_number(where + " scale");
  p.options.rounding = parse_rounding(m.at("rounding", where).as_string(where + " rounding"), where + " rounding");
  p.seed = static_cast<uint64_t>(m.at("seed", where).as_int(where + " seed"));
  p.backend = parse_backend(m.at("backend", where).as_string(where + " backend"), where + " backend");
  validate_attention(p.shape, p.options, p.backend);
  return p;
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
  Problem p = problem_from_manifest(m, where);
  bool ok = true;
  const JsonValue& files = m.at("files", where);
  if (!files.is_object()) throw Error(where + ": files must be an object");
  for (const char* name : {"q.npy", "k.npy", "v.npy", "out.npy", "lse.npy"}) {
    const std::string want = files.at(name, where + " files").at("sha256", where + " files." + name).as_string(where);
    const std::string got = sha256_file_hex(dir + "/" + name, "DIR");
    const bool same = got == want;
    ok = ok && same;
    std::printf("  %-8s sha256 %s%s\n", name, same ? "ok" : "MISMATCH (file changed)", same ? "" : ("\n           manifest " + want + "\n           file     " + got).c_str());
  }
  const bool has_grad = m.has("grad");
  if (has_grad) ok = verify_golden_grad_hashes(dir, m, where) && ok;
  if (args.has("--hashes-only") || !ok) {
    std::printf("%s\n", ok ? "verify: hashes ok" : "verify: FAILED");
    return ok ? 0 : 1;
  }
  const NpyArray fq = read_npy(dir + "/q.npy", "DIR"), fk = read_npy(dir + "/k.npy", "DIR"),
                 fv = read_npy(dir + "/v.npy", "DIR"), fout = read_npy(dir + "/out.npy", "DIR"),
                 flse = read_npy(dir + "/lse.npy", "DIR");
  std::vector<float> q, k, v, out, lse;
  make_inputs(p, &q, &k, &v);
  const bool inputs_same = q == fq.data && k == fk.data && v == fv.data;
  std::printf("  inputs   %s\n", inputs_same ? "regenerated from the seed, bit-identical"
                                             : "DIFFER from the seed's inputs");
  ok = ok && inputs_same;
  if (fout.data.size() != static_cast<size_t>(p.shape.elements()) ||
      flse.data.size() != static_cast<size_t>(p.shape.batch * p.shape.heads * p.shape.seq))
    throw Error(where + ": out.npy / lse.npy sizes disagree with the manifest shape");
  compute(p, fq.data, fk.data, fv.data, &out, &lse);
  const double tol = golden_tolerance(p.options.rounding);
  const double e_out = diff_arrays(out.data(), fout.data.data(), static_cast<int64_t>(out.size()), tol, 0).max_abs;
  const double e_lse = diff_arrays(lse.data(), flse.data.data(), static_cast<int64_t>(lse.size()), tol, 0).max_abs;
  std::printf("  out      recomputed (%s): max abs error %.3g (tolerance %g) %s\n",
              to_string(p.backend).c_str(), e_out, tol, e_out <= tol ? "ok" : "FAIL");
  std::printf("  lse      recomputed (%s): max abs error %.3g (tolerance %g) %s\n",
              to_string(p.backend).c_str(), e_lse, tol, e_lse <= tol ? "ok" : "FAIL");
  ok = ok && e_out <= tol && e_lse <= tol;
  if (has_grad) ok = verify_golden_grads(dir, m, where, p.shape, p.options, p.backend, p.seed, fq.data, fk.data, fv.data) && ok;
  std::printf("%s\n", ok ? "verify: ok" : "verify: FAILED");
  return ok ? 0 : 1;
}

STA_COMMAND("golden", "write golden q/k/v/out/lse .npy files and a manifest for GPU ports",
            kGoldenHelp, run_golden);
STA_COMMAND("verify", "check a golden folder: hashes, inputs, recomputed outputs", kVerifyHelp,
            run_verify);

}  // namespace
}  // namespace sta::cli
