// Golden folders (`sta golden`, `sta verify`, sta.write_golden / sta.verify_golden): the one
// writer and verifier of the manifest, shared by the CLI, the Python module and the examples.
// verify regenerates the manifest from the problem it describes and compares field by field,
// so a field added to manifest_json() is written and verified everywhere at once.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "golden_grad.hpp"
#include "sta/blocks.hpp"
#include "sta/compare.hpp"
#include "sta/error.hpp"
#include "sta/file_io.hpp"
#include "sta/golden.hpp"
#include "sta/json.hpp"
#include "sta/npy.hpp"
#include "sta/sha256.hpp"

namespace sta {
namespace {

using detail::golden_line;

constexpr const char* kGoldenGenerator = "irwin-hall-12/xoshiro256**/splitmix64";

std::vector<int64_t> extent_list(const Extent3& e) { return {e.t, e.h, e.w}; }

struct FileEntry {
  std::string name;
  std::vector<int64_t> shape;
  std::string sha256;
  size_t bytes;
};

// One golden .npy file written as it is computed (NpyWriter: plane after plane, published
// by finish()), hashed on the way for the manifest.
class GoldenFileWriter {
 public:
  GoldenFileWriter(const std::string& dir, const char* name, std::vector<int64_t> shape,
                   const GoldenWriteOptions& o)
      : entry_{name, std::move(shape), "", 0}, file_(dir + "/" + name, entry_.shape, o.force, o.arg) {
    const std::string header = npy_header(entry_.shape);
    hash(header.data(), header.size());
  }
  void append(const float* data, int64_t n) {
    file_.append(data, n);
    hash(data, static_cast<size_t>(n) * sizeof(float));
  }
  FileEntry finish() {
    file_.commit();
    entry_.sha256 = sha_.hex();
    return entry_;
  }

 private:
  void hash(const void* data, size_t bytes) {
    sha_.update(data, bytes);
    entry_.bytes += bytes;
  }
  FileEntry entry_;
  NpyWriter file_;
  Sha256 sha_;
};

// The manifest of a golden folder. `sta verify` regenerates it from the problem it describes
// and compares field by field, so every field added here is verified without more code.
std::string manifest_json(const GoldenProblem& p, const AttentionStats& st,
                          const std::vector<FileEntry>& files,
                          const std::string& version,
                          const std::string& cpu,
                          const detail::GradRecord* grad) {
  const Geometry& g = p.options.geometry;
  const double tol = golden_tolerance(p.options.rounding, p.options.precision);
  std::vector<std::string> masks, effective;
  for (int64_t h = 0; h < p.shape.heads; ++h) {
    const Mask& m = mask_for_head(p.options.masks, h);
    masks.push_back(to_string(m));
    Mask e = m;
    if (m.kind == MaskKind::kSta) e.window = effective_sta_window(m.window, g.tiles());
    effective.push_back(to_string(e));
  }
  JsonWriter j;
  j.begin_object(/*lines=*/true);
  j.field("format", kGoldenFormat).field("library_version", version);
  j.field("preset", p.preset).field("description", p.description);
  j.key("shape").begin_object().field("B", p.shape.batch).field("H", p.shape.heads);
  j.field("S", p.shape.seq).field("D", p.shape.dim).end_object();
  j.field("layout", to_string(p.options.layout));
  j.field("video", extent_list(g.canvas)).field("tile", extent_list(g.tile)).field("tiles", extent_list(g.tiles()));
  j.field("ragged", g.ragged).field("text_length", g.text_length).field("text_pad", g.text_pad);
  j.field("masks", masks).field("effective_masks", effective);
  j.field("scale", p.options.effective_scale(p.shape.dim)).field("dtype", "float32");
  j.field("rounding", to_string(p.options.rounding)).field("precision", to_string(p.options.precision));
  j.field("seed", p.seed).field("generator", kGoldenGenerator);
  j.field("backend", to_string(p.backend)).field("isa", st.isa).field("gemm", st.gemm).field("cpu", cpu);
  j.key("block_counts").begin_object().field("dense", st.counts.dense);
  j.field("mixed", st.counts.mixed).field("empty", st.counts.empty).end_object();
  j.key("tolerances").begin_object();
  for (const char* name : {"out", "lse"}) j.key(name).begin_object().field("atol", tol).field("rtol", 0).end_object();
  j.end_object();
  if (grad) detail::write_grad_member(j, *grad);
  j.key("files").begin_object(/*lines=*/true);
  for (const FileEntry& f : files) {
    j.key(f.name).begin_object().field("shape", f.shape).field("bytes", f.bytes);
    j.field("sha256", f.sha256).end_object();
  }
  return j.end_object().end_object().str();
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
void read_floats(const std::string& path, uint64_t offset, float* dst, int64_t n, const std::string& arg) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(arg + " '" + path + "': cannot open");
  f.seekg(static_cast<std::streamoff>(offset));
  const auto bytes = static_cast<std::streamsize>(n * 4);
  f.read(reinterpret_cast<char*>(dst), bytes);
  if (f.gcount() != bytes) throw Error(arg + " '" + path + "': changed while being read");
}

struct ExpectedFile {
  const char* name;
  std::vector<int64_t> shape;
  uint64_t header_bytes;
  uint64_t bytes;
};

// The folder exists (created if missing, one level) and holds no golden file unless `force`.
void prepare_folder(const std::string& dir, const GoldenWriteOptions& o) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error(o.arg + ": '" + dir + "' exists and is not a folder");
  } else if (::mkdir(dir.c_str(), 0755) != 0) {
    throw Error(o.arg + ": cannot create folder '" + dir + "'");
  }
  std::vector<std::string> names(std::begin(kGoldenFiles), std::end(kGoldenFiles));
  names.push_back("manifest.json");
  if (o.grad) names.insert(names.end(), std::begin(kGoldenGradFiles), std::end(kGoldenGradFiles));
  for (const std::string& n : names)
    if (!o.force && ::lstat((dir + "/" + n).c_str(), &st) == 0)
      throw Error(o.arg + " '" + dir + "/" + n + "': exists; refusing to overwrite it (pass --force)");
}

}  // namespace

GoldenProblem golden_problem(const GoldenPreset& preset, uint64_t seed) {
  GoldenProblem p;
  p.preset = preset.name;
  p.description = preset.description;
  p.shape = preset.shape;
  p.options = preset.options;
  p.backend = preset.backend;
  p.seed = seed;
  return p;
}

void validate_golden_problem(const GoldenProblem& p, const GoldenWriteOptions& /*o*/) {
  // (No rule depends on the write options since golden gradients may be bf16.)
  validate_attention(p.shape, p.options, p.backend);
  if (p.options.scale != 0.0)
    throw Error("scale: golden folders use the default 1/sqrt(D); expected 0 (the default)");
}

GoldenWriteResult write_golden_folder(const std::string& dir, const GoldenProblem& p,
                                      const GoldenWriteOptions& o,
                                      const std::function<void(int64_t, int64_t)>& progress) {
  validate_golden_problem(p, o);
  prepare_folder(dir, o);
  const AttentionShape& sh = p.shape;
  const int64_t plane = sh.seq * sh.dim, heads = sh.batch * sh.heads;
  const std::vector<int64_t> shape4 = {sh.batch, sh.heads, sh.seq, sh.dim};
  const std::vector<int64_t> shape3 = {sh.batch, sh.heads, sh.seq};
  // Every file is open from the start and grows head by head (a head's outputs and gradients
  // depend on that head only): memory for a few [S, D] planes, not the folder's tensors
  // (11 GB for the Hunyuan preset with --grad). Nothing is published before every head is
  // done; a failure on the way leaves no golden file behind.
  std::vector<GoldenFileWriter> files;
  files.reserve(std::size(kGoldenFiles) + std::size(kGoldenGradFiles));
  for (const char* name : kGoldenFiles) files.emplace_back(dir, name, name == std::string("lse.npy") ? shape3 : shape4, o);
  if (o.grad)
    for (const char* name : kGoldenGradFiles) files.emplace_back(dir, name, shape4, o);

  AttentionOptions options = p.options;
  options.rounding = InputRounding::kNone;  // the inputs are rounded once, as stored
  GoldenStream inputs[3] = {{p.seed, 0}, {p.seed, 1}, {p.seed, 2}};  // q, k, v, head after head
  std::vector<float> qkv[3], out(static_cast<size_t>(plane)), lse(static_cast<size_t>(sh.seq));
  for (std::vector<float>& x : qkv) x.resize(static_cast<size_t>(plane));
  std::optional<detail::GradHeads> grads;
  if (o.grad) grads.emplace(sh, p.seed);
  GoldenWriteResult result;
  for (int64_t bh = 0; bh < heads; ++bh) {
    for (int s = 0; s < 3; ++s) {
      inputs[s].fill(qkv[s].data(), plane);
      round_inputs(qkv[s].data(), plane, p.options.rounding);
    }
    const HeadProblem head = head_problem(sh, options, bh);
    result.stats.add_head(attention(head.shape, head.options, qkv[0].data(), qkv[1].data(), qkv[2].data(),
                                    out.data(), lse.data(), p.backend));
    for (int s = 0; s < 3; ++s) files[static_cast<size_t>(s)].append(qkv[s].data(), plane);
    files[3].append(out.data(), plane);
    files[4].append(lse.data(), sh.seq);
    if (grads) {
      grads->compute(head, p.backend, qkv[0].data(), qkv[1].data(), qkv[2].data(), out.data(), lse.data());
      files[5].append(grads->dout(), plane);
      for (int i = 0; i < 3; ++i) files[static_cast<size_t>(6 + i)].append(grads->grad(i), plane);
    }
    if (progress) progress(bh + 1, heads);
  }
  std::vector<FileEntry> entries;
  for (GoldenFileWriter& f : files) entries.push_back(f.finish());
  std::optional<detail::GradRecord> grad;
  if (grads) grad = grads->record(p.backend);
  result.manifest = manifest_json(p, result.stats, entries, STA_VERSION, cpu_description(), grad ? &*grad : nullptr);
  write_file_atomic(dir + "/manifest.json", result.manifest, o.force, o.arg);
  return result;
}

// Rebuilds the problem a manifest describes from its primary fields only (a preset by name,
// else the custom fields). Derived fields (tiles, effective masks, tolerances, scale, block
// counts, file shapes and sizes) are not read here: verify regenerates them and compares.
GoldenProblem golden_problem_from_manifest(const JsonValue& m, const std::string& where) {
  if (m.at("format", where).as_string(where + " format") != kGoldenFormat)
    throw Error(where + ": format is not " + std::string(kGoldenFormat));
  GoldenProblem p;
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
  // Folders written before the bf16 mode have no "precision": they are fp32.
  p.options.precision = m.has("precision")
                            ? parse_precision(m.at("precision", where).as_string(where + " precision"),
                                              where + " precision")
                            : Precision::kFp32;
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

namespace {

// The files a folder of this problem must hold: shape, header size and total size each.
std::vector<ExpectedFile> expected_files(const AttentionShape& sh, bool grad) {
  const std::vector<int64_t> shape4 = {sh.batch, sh.heads, sh.seq, sh.dim};
  const std::vector<int64_t> shape3 = {sh.batch, sh.heads, sh.seq};
  std::vector<const char*> names(std::begin(kGoldenFiles), std::end(kGoldenFiles));
  if (grad) names.insert(names.end(), std::begin(kGoldenGradFiles), std::end(kGoldenGradFiles));
  std::vector<ExpectedFile> expected;
  for (const char* name : names) {
    const auto& shape = std::string(name) == "lse.npy" ? shape3 : shape4;
    const uint64_t header = npy_header(shape).size();
    uint64_t elements = 1;
    for (int64_t d : shape) elements *= static_cast<uint64_t>(d);
    expected.push_back({name, shape, header, header + 4 * elements});
  }
  return expected;
}

// 1. Each file: a regular file of exactly the size its shape needs (checked before a byte
// is hashed: a link to /dev/zero or a 100 GB sparse file is refused at once), its header
// exactly what golden writes, its hash the manifest's.
bool verify_files(const std::string& dir, const JsonValue& m, const std::string& where,
                  const std::vector<ExpectedFile>& expected, const std::string& arg,
                  std::vector<FileEntry>* files, GoldenReport* report) {
  bool ok = true;
  const JsonValue& mfiles = m.at("files", where);
  if (!mfiles.is_object()) throw Error(where + ": files must be an object");
  for (const ExpectedFile& e : expected) {
    const std::string path = dir + "/" + e.name;
    const uint64_t size = regular_file_size(path, arg);
    if (size != e.bytes) {
      golden_line(report, "  %-8s size %llu bytes but shape %s needs %llu: FAIL", e.name,
                  (unsigned long long)size, shape_to_string(e.shape).c_str(), (unsigned long long)e.bytes);
      ok = false;
      report->hashes[e.name] = false;
      files->push_back({e.name, e.shape, "", e.bytes});
      continue;
    }
    std::string header(e.header_bytes, '\0');
    {
      std::ifstream f(path, std::ios::binary);
      f.read(&header[0], static_cast<std::streamsize>(header.size()));
    }
    const bool header_ok = header == npy_header(e.shape);
    const std::string got = sha256_file_hex(path, arg);
    const std::string want = mfiles.at(e.name, where + " files").at("sha256", where + " files." + e.name).as_string(where);
    const bool same = got == want && header_ok;
    ok = ok && same;
    report->hashes[e.name] = same;
    golden_line(report, "  %-8s sha256 %s%s", e.name,
                !header_ok ? "header is not the golden header of shape " : (same ? "ok" : "MISMATCH (file changed)"),
                !header_ok ? shape_to_string(e.shape).c_str()
                           : (same ? "" : ("\n           manifest " + want + "\n           file     " + got).c_str()));
    files->push_back({e.name, e.shape, got, e.bytes});
  }
  return ok;
}

// Block counts: one classification per distinct mask, times the heads using it and B.
BlockCounts expected_counts(const GoldenProblem& p, const std::string& where) {
  const AttentionShape& sh = p.shape;
  BlockCounts counts;
  std::map<std::string, int64_t> uses;
  for (int64_t h = 0; h < sh.heads; ++h) ++uses[to_string(mask_for_head(p.options.masks, h))];
  for (const auto& [text, heads] : uses) {
    const BlockCounts c = classify_blocks(p.options.geometry, parse_mask(text, where + " masks")).counts;
    const int64_t times = checked_product({heads, sh.batch}, where + " shape", "B*H");
    for (auto [one, total] : {std::pair<int64_t, int64_t*>{c.dense, &counts.dense},
                              {c.mixed, &counts.mixed}, {c.empty, &counts.empty}}) {
      int64_t product = 0;
      if (__builtin_mul_overflow(one, times, &product) || __builtin_add_overflow(*total, product, total))
        throw Error(where + ": block counts of shape and video overflow 64 bits; expected a smaller problem");
    }
  }
  return counts;
}

// 2. Every manifest field is what golden writes for this problem: regenerated and compared
// (tolerances, scale, tiles, effective masks, block counts, file shapes and sizes, ...).
bool verify_manifest(const JsonValue& m, const std::string& where, const GoldenProblem& p,
                     const std::vector<FileEntry>& files, GoldenReport* report) {
  AttentionStats st;
  // What ran where (informational, machine-specific): taken as recorded.
  st.isa = m.has("isa") ? m.at("isa", where).as_string(where + " isa") : "";
  st.gemm = m.has("gemm") ? m.at("gemm", where).as_string(where + " gemm") : "";
  const std::string cpu = m.has("cpu") ? m.at("cpu", where).as_string(where + " cpu") : "";
  st.counts = expected_counts(p, where);
  const std::string version = m.at("library_version", where).as_string(where + " library_version");
  std::optional<detail::GradRecord> grad;
  if (m.has("grad")) grad = detail::grad_record(m, where, p.backend, p.options.precision);
  JsonValue regenerated = parse_json(manifest_json(p, st, files, version, cpu, grad ? &*grad : nullptr),
                                     "regenerated manifest");
  // Fields older folders may lack, with the value their absence means ("" = any: what ran
  // where is informational). A field added to manifest_json() is checked with no code here.
  static const std::pair<const char*, const char*> kAddedFields[] = {
      {"ragged", "false"}, {"precision", "\"fp32\""}, {"gemm", ""}, {"cpu", ""}};
  for (const auto& [key, fallback] : kAddedFields) {
    if (m.has(key)) continue;
    const bool any = fallback[0] == '\0';
    if (any || json_difference(parse_json(fallback, key), regenerated.object[key], key).empty()) {
      regenerated.object.erase(key);
    }
  }
  const std::string diff = json_difference(regenerated, m, "manifest");
  golden_line(report, "  manifest %s%s",
              diff.empty() ? "every field recomputed, ok" : "FIELD DIFFERS from what sta golden writes: ",
              diff.c_str());
  report->manifest_same = diff.empty();
  return diff.empty();
}

// q, k, v against the generator, one chunk at a time.
bool verify_inputs(const std::string& dir, const GoldenProblem& p,
                   const std::vector<ExpectedFile>& expected, const std::string& arg,
                   GoldenReport* report) {
  const int64_t n = p.shape.elements();
  bool inputs_same = true;
  constexpr int64_t kChunk = int64_t{1} << 20;
  std::vector<float> want(static_cast<size_t>(std::min(n, kChunk))), got(want.size());
  for (uint64_t s = 0; s < 3; ++s) {
    GoldenStream gen(p.seed, s);
    for (int64_t done = 0; done < n && inputs_same; done += kChunk) {
      const int64_t c = std::min(kChunk, n - done);
      gen.fill(want.data(), c);
      round_inputs(want.data(), c, p.options.rounding);
      read_floats(dir + "/" + expected[s].name, expected[s].header_bytes + 4 * static_cast<uint64_t>(done),
                  got.data(), c, arg);
      inputs_same = std::memcmp(want.data(), got.data(), static_cast<size_t>(c) * 4) == 0;
    }
  }
  golden_line(report, "  inputs   %s", inputs_same ? "regenerated from the seed, bit-identical"
                                                   : "DIFFER from the seed's inputs");
  report->inputs_same = inputs_same;
  return inputs_same;
}

// out and lse recomputed head by head (the Hunyuan folder needs ~60 MB, not 11 GB), and a
// --grad folder's gradients from the same head's inputs and recomputed out and lse (`grads`,
// null without gradients; its verdict is the caller's to ask for).
bool verify_outputs(const std::string& dir, const GoldenProblem& p,
                    const std::vector<ExpectedFile>& expected, const BlockCounts& want_counts,
                    const std::string& arg, detail::GradCheck* grads, GoldenReport* report) {
  const AttentionShape& sh = p.shape;
  const int64_t plane = sh.seq * sh.dim;
  std::vector<float> hq(static_cast<size_t>(plane)), hk(hq.size()), hv(hq.size()), hout(hq.size()),
      fout(hq.size()), hlse(static_cast<size_t>(sh.seq)), flse(hlse.size());
  AttentionOptions options = p.options;
  options.rounding = InputRounding::kNone;  // the stored inputs are already rounded
  const double tol = golden_tolerance(p.options.rounding, p.options.precision);
  double e_out = 0, e_lse = 0;
  BlockCounts counts;
  auto read_plane = [&](const char* name, int64_t bh, float* dst) {  // a --grad folder's files
    const auto e = std::find_if(expected.begin(), expected.end(),
                                [&](const ExpectedFile& f) { return std::string(f.name) == name; });
    if (e == expected.end()) throw Error(dir + ": no expected file " + name);  // a bug, not input
    read_floats(dir + "/" + name, e->header_bytes + 4 * static_cast<uint64_t>(bh * plane), dst, plane, arg);
  };
  for (int64_t bh = 0; bh < sh.batch * sh.heads; ++bh) {
    const uint64_t off4 = 4 * static_cast<uint64_t>(bh * plane), off3 = 4 * static_cast<uint64_t>(bh * sh.seq);
    read_floats(dir + "/q.npy", expected[0].header_bytes + off4, hq.data(), plane, arg);
    read_floats(dir + "/k.npy", expected[1].header_bytes + off4, hk.data(), plane, arg);
    read_floats(dir + "/v.npy", expected[2].header_bytes + off4, hv.data(), plane, arg);
    read_floats(dir + "/out.npy", expected[3].header_bytes + off4, fout.data(), plane, arg);
    read_floats(dir + "/lse.npy", expected[4].header_bytes + off3, flse.data(), sh.seq, arg);
    const HeadProblem head = head_problem(sh, options, bh);
    counts += attention(head.shape, head.options, hq.data(), hk.data(), hv.data(), hout.data(), hlse.data(), p.backend).counts;
    if (grads != nullptr)
      grads->add_head(bh, head, p.backend, hq.data(), hk.data(), hv.data(), hout.data(), hlse.data(),
                      read_plane);
    e_out = std::max(e_out, diff_arrays(hout.data(), fout.data(), plane, tol, 0).max_abs);
    e_lse = std::max(e_lse, diff_arrays(hlse.data(), flse.data(), sh.seq, tol, 0).max_abs);
  }
  report->out_max_abs = e_out;
  report->lse_max_abs = e_lse;
  golden_line(report, "  out      recomputed (%s): max abs error %.3g (tolerance %g) %s",
              to_string(p.backend).c_str(), e_out, tol, e_out <= tol ? "ok" : "FAIL");
  golden_line(report, "  lse      recomputed (%s): max abs error %.3g (tolerance %g) %s",
              to_string(p.backend).c_str(), e_lse, tol, e_lse <= tol ? "ok" : "FAIL");
  const bool counts_same = counts.dense == want_counts.dense && counts.mixed == want_counts.mixed &&
                           counts.empty == want_counts.empty;
  if (!counts_same) golden_line(report, "  blocks   the kernel's counters differ from the classifier's: FAIL");
  return e_out <= tol && e_lse <= tol && counts_same;
}

bool finish(GoldenReport* report, bool ok, const char* good) {
  report->ok = ok;
  golden_line(report, "%s", ok ? good : "verify: FAILED");
  return ok;
}

}  // namespace

bool verify_golden_folder(const std::string& dir, bool hashes_only, GoldenReport* report,
                          const std::string& arg) {
  report->ok = false;
  const std::string where = dir + "/manifest.json";
  const JsonValue m = read_json_file(where);
  const GoldenProblem p = golden_problem_from_manifest(m, where);
  const bool has_grad = m.has("grad");
  const std::vector<ExpectedFile> expected = expected_files(p.shape, has_grad);
  std::vector<FileEntry> files;
  // A file of the wrong size: nothing below could be trusted or bounded.
  if (!verify_files(dir, m, where, expected, arg, &files, report)) return finish(report, false, "");
  const bool manifest_ok = verify_manifest(m, where, p, files, report);
  if (hashes_only || !manifest_ok) return finish(report, manifest_ok, "verify: hashes ok");
  // 3. Streaming, one chunk or one head at a time.
  if (!verify_inputs(dir, p, expected, arg, report)) return finish(report, false, "");
  std::optional<detail::GradCheck> grads;
  if (has_grad) grads.emplace(p.shape, p.seed);
  bool ok = verify_outputs(dir, p, expected, expected_counts(p, where), arg, grads ? &*grads : nullptr, report);
  if (has_grad && ok) ok = grads->finish(m, where, p.backend, report);  // computed beside the outputs
  return finish(report, ok, "verify: ok");
}

}  // namespace sta
