// Gradients in golden folders (see cmd_golden_grad.hpp).
#include "cmd_golden_grad.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "sta/backward.hpp"
#include "sta/compare.hpp"
#include "sta/error.hpp"
#include "sta/golden.hpp"
#include "sta/npy.hpp"
#include "sta/sha256.hpp"

namespace sta::cli {
namespace {

constexpr uint64_t kDoutStream = 3;  // q, k, v are streams 0, 1, 2
constexpr double kGradRelTolerance = 1e-4;  // SPEC 8, relative to max(1, max |reference|)

struct Gradients {
  std::vector<float> dout, dq, dk, dv;
};

Gradients compute_grads(const AttentionShape& shape, const AttentionOptions& options, Backend backend,
                        uint64_t seed, const float* q, const float* k, const float* v,
                        const float* out, const float* lse) {
  Gradients g;
  const size_t n = static_cast<size_t>(shape.elements());
  g.dout.resize(n);
  golden_fill(g.dout.data(), shape.elements(), seed, kDoutStream);
  g.dq.resize(n);
  g.dk.resize(n);
  g.dv.resize(n);
  AttentionOptions prepared = options;
  prepared.rounding = InputRounding::kNone;  // the inputs are stored rounded already
  attention_backward(shape, prepared, q, k, v, out, lse, g.dout.data(), g.dq.data(), g.dk.data(),
                     g.dv.data(), backend);
  return g;
}

double max_abs(const std::vector<float>& x) {
  double m = 0.0;
  for (float e : x) m = std::max(m, static_cast<double>(std::fabs(e)));
  return m;
}

}  // namespace

void write_golden_grads(const AttentionShape& shape, const AttentionOptions& options,
                        Backend backend, uint64_t seed, const std::vector<float>& q,
                        const std::vector<float>& k, const std::vector<float>& v,
                        const std::vector<float>& out, const std::vector<float>& lse,
                        const GoldenPut& put) {
  const Gradients g = compute_grads(shape, options, backend, seed, q.data(), k.data(), v.data(),
                                    out.data(), lse.data());
  const std::vector<int64_t> shape4 = {shape.batch, shape.heads, shape.seq, shape.dim};
  put("dout.npy", g.dout, shape4);
  put("dq.npy", g.dq, shape4);
  put("dk.npy", g.dk, shape4);
  put("dv.npy", g.dv, shape4);
}

std::string golden_grad_manifest(Backend backend) {
  char tol[64];
  std::snprintf(tol, sizeof tol, "{\"max_abs_over_scale\": %g}", kGradRelTolerance);
  return "  \"grad\": {\"backend\": \"" + to_string(backend) + "\", \"dout_stream\": " +
         std::to_string(kDoutStream) + ", \"loss\": \"sum(out * dout)\", \"precision\": \"fp32\", " +
         "\"rule\": \"max |mine - file| <= max_abs_over_scale * max(1, max |file|) (SPEC 8)\", " +
         "\"tolerances\": {\"dq\": " + tol + ", \"dk\": " + tol + ", \"dv\": " + tol + "}},\n";
}

bool verify_golden_grad_hashes(const std::string& dir, const JsonValue& manifest,
                               const std::string& where) {
  const JsonValue& files = manifest.at("files", where);
  bool ok = true;
  for (const char* name : kGoldenGradFiles) {
    const std::string want = files.at(name, where + " files").at("sha256", where + " files." + name).as_string(where);
    const bool same = sha256_file_hex(dir + "/" + name, "DIR") == want;
    std::printf("  %-8s sha256 %s\n", name, same ? "ok" : "MISMATCH (file changed)");
    ok = ok && same;
  }
  return ok;
}

namespace {

/// Reads `n` floats at element `first` of the float32 .npy file `path` of `shape` (its header
/// is the golden header of that shape; verify checked the hashes before).
void read_slice(const std::string& path, const std::vector<int64_t>& shape, int64_t first,
                int64_t n, float* dst) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("DIR '" + path + "': cannot open");
  f.seekg(static_cast<std::streamoff>(npy_header(shape).size() + 4 * static_cast<uint64_t>(first)));
  f.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(4 * n));
  if (f.gcount() != static_cast<std::streamsize>(4 * n))
    throw Error("DIR '" + path + "': shorter than its shape " + shape_to_string(shape));
}

}  // namespace

bool verify_golden_grads(const std::string& dir, const JsonValue& manifest, const std::string& where,
                         const AttentionShape& shape, const AttentionOptions& options,
                         Backend backend, uint64_t seed) {
  const std::vector<int64_t> shape4 = {shape.batch, shape.heads, shape.seq, shape.dim};
  const int64_t n = shape.elements(), plane = shape.seq * shape.dim;
  // dout against the generator (one stream, generated whole), then head by head: the
  // forward's out and lse and the gradients recomputed by the same backend (heads are
  // independent: the same bits as one call), compared with the files.
  std::vector<float> dout(static_cast<size_t>(n)), slice(static_cast<size_t>(plane));
  golden_fill(dout.data(), n, seed, kDoutStream);
  bool ok = true;
  for (int64_t bh = 0; bh < shape.batch * shape.heads && ok; ++bh) {
    read_slice(dir + "/dout.npy", shape4, bh * plane, plane, slice.data());
    ok = std::equal(slice.begin(), slice.end(), dout.begin() + bh * plane);
  }
  std::printf("  dout     %s\n", ok ? "regenerated from the seed, bit-identical" : "DIFFERS from the seed's dout");
  if (!ok) return false;

  AttentionShape one = shape;
  one.batch = one.heads = 1;
  AttentionOptions head = options;
  head.rounding = InputRounding::kNone;  // the stored inputs are rounded already
  const size_t p = static_cast<size_t>(plane);
  std::vector<float> q(p), k(p), v(p), out(p), lse(static_cast<size_t>(shape.seq)), mine[3], file(p);
  for (auto& g : mine) g.resize(p);
  const char* names[3] = {"dq", "dk", "dv"};
  double err[3] = {0, 0, 0}, scale[3] = {1, 1, 1};
  for (int64_t bh = 0; bh < shape.batch * shape.heads; ++bh) {
    read_slice(dir + "/q.npy", shape4, bh * plane, plane, q.data());
    read_slice(dir + "/k.npy", shape4, bh * plane, plane, k.data());
    read_slice(dir + "/v.npy", shape4, bh * plane, plane, v.data());
    head.masks = {mask_for_head(options.masks, bh % shape.heads)};
    attention(one, head, q.data(), k.data(), v.data(), out.data(), lse.data(), backend);
    attention_backward(one, head, q.data(), k.data(), v.data(), out.data(), lse.data(),
                       dout.data() + bh * plane, mine[0].data(), mine[1].data(), mine[2].data(), backend);
    for (int i = 0; i < 3; ++i) {
      read_slice(dir + "/" + names[i] + ".npy", shape4, bh * plane, plane, file.data());
      scale[i] = std::max(scale[i], max_abs(file));
      err[i] = std::max(err[i], diff_arrays(mine[i].data(), file.data(), plane, 0, 0).max_abs);
    }
  }
  const JsonValue& tols = manifest.at("grad", where).at("tolerances", where + " grad");
  for (int i = 0; i < 3; ++i) {
    const double rel = tols.at(names[i], where + " grad.tolerances")
                           .at("max_abs_over_scale", where + " grad.tolerances." + names[i])
                           .as_number(where + " max_abs_over_scale");
    const double tol = rel * scale[i];
    const bool good = err[i] <= tol;
    std::printf("  %-8s recomputed (%s): max abs error %.3g (tolerance %g = %g * max(1, max |file|)) %s\n",
                names[i], to_string(backend).c_str(), err[i], tol, rel, good ? "ok" : "FAIL");
    ok = ok && good;
  }
  return ok;
}

}  // namespace sta::cli
