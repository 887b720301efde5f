// Gradients in golden folders (see cmd_golden_grad.hpp).
#include "cmd_golden_grad.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

std::string write_golden_grads(const AttentionShape& shape, const AttentionOptions& options,
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
  char tols[320];
  std::snprintf(tols, sizeof tols,
                "{\"dq\": {\"atol\": %.3g, \"rtol\": 0}, \"dk\": {\"atol\": %.3g, \"rtol\": 0}, "
                "\"dv\": {\"atol\": %.3g, \"rtol\": 0}}",
                kGradRelTolerance * std::max(1.0, max_abs(g.dq)),
                kGradRelTolerance * std::max(1.0, max_abs(g.dk)),
                kGradRelTolerance * std::max(1.0, max_abs(g.dv)));
  return "  \"grad\": {\"backend\": \"" + to_string(backend) + "\", \"dout_stream\": " +
         std::to_string(kDoutStream) +
         ", \"loss\": \"sum(out * dout)\", \"rule\": \"fp32: max abs error <= 1e-4 * max(1, max |reference|) (SPEC 8)\", "
         "\"tolerances\": " + tols + "},\n";
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

bool verify_golden_grads(const std::string& dir, const JsonValue& manifest, const std::string& where,
                         const AttentionShape& shape, const AttentionOptions& options,
                         Backend backend, uint64_t seed, const std::vector<float>& q,
                         const std::vector<float>& k, const std::vector<float>& v) {
  const size_t n = static_cast<size_t>(shape.elements());
  const NpyArray fdout = read_npy(dir + "/dout.npy", "DIR");
  if (fdout.data.size() != n) throw Error(where + ": dout.npy size disagrees with the manifest shape");
  // out and lse recomputed by the same backend (the reference ignores them).
  std::vector<float> out(n), lse(static_cast<size_t>(shape.batch * shape.heads * shape.seq));
  AttentionOptions prepared = options;
  prepared.rounding = InputRounding::kNone;
  attention(shape, prepared, q.data(), k.data(), v.data(), out.data(), lse.data(), backend);
  const Gradients g = compute_grads(shape, options, backend, seed, q.data(), k.data(), v.data(),
                                    out.data(), lse.data());
  bool ok = g.dout == fdout.data;
  std::printf("  dout     %s\n", ok ? "regenerated from the seed, bit-identical" : "DIFFERS from the seed's dout");
  const JsonValue& tols = manifest.at("grad", where).at("tolerances", where + " grad");
  const std::pair<const char*, const std::vector<float>*> grads[] = {{"dq", &g.dq}, {"dk", &g.dk}, {"dv", &g.dv}};
  for (const auto& [name, mine] : grads) {
    const NpyArray file = read_npy(dir + "/" + name + ".npy", "DIR");
    if (file.data.size() != n) throw Error(where + ": " + name + ".npy size disagrees with the manifest shape");
    const double tol = tols.at(name, where + " grad.tolerances").at("atol", where).as_number(where + " atol");
    const double err = diff_arrays(mine->data(), file.data.data(), static_cast<int64_t>(n), tol, 0).max_abs;
    const bool good = err <= tol;
    std::printf("  %-8s recomputed (%s): max abs error %.3g (tolerance %g) %s\n", name,
                to_string(backend).c_str(), err, tol, good ? "ok" : "FAIL");
    ok = ok && good;
  }
  return ok;
}

}  // namespace sta::cli
