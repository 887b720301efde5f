#pragma once
// Gradients in golden folders (internal to src/formats/golden_folder.cpp): dout generated from the
// seed like q, k, v, and dq, dk, dv of SPEC 8 computed by the folder's backend, with their
// tolerances in the manifest's "grad" member.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/golden.hpp"
#include "sta/json.hpp"

namespace sta::detail {

/// Appends a printf-formatted line to `report` (and hands it to report->on_line).
void golden_line(GoldenReport* report, const char* format, ...) __attribute__((format(printf, 2, 3)));

/// What the manifest's "grad" member records: the backend, the precision (the folder's) and
/// per-gradient atol.
struct GradRecord {
  Backend backend;
  Precision precision;
  double dq, dk, dv;
};

/// The gradients of a golden folder, one head at a time (the writer's and verify's): dout
/// generated from the seed (golden_fill stream 3, continuing from head to head as the [B,H,S,D]
/// file does), and dq, dk, dv of sum(out * dout) computed by the folder's backend on the head's
/// (already rounded) inputs and the forward's out and lse. Each head's gradients depend on that
/// head only, so a head costs a few [S, D] planes of memory whatever the folder's size.
class GradHeads {
 public:
  GradHeads(const AttentionShape& shape, uint64_t seed);
  /// The next head (heads in order 0, 1, ...): its problem (head_problem(), options with
  /// rounding none) and its q, k, v, out, lse planes.
  void compute(const HeadProblem& head, Backend backend, const float* q, const float* k,
               const float* v, const float* out, const float* lse);
  /// The last head's planes: dout, and gradient i (0 dq, 1 dk, 2 dv).
  const float* dout() const { return dout_.data(); }
  const float* grad(int i) const { return grads_[i].data(); }
  int64_t plane() const { return plane_; }
  /// max |gradient i| over the heads so far.
  double peak(int i) const { return peak_[i]; }
  /// The record of the heads so far: atol = 1e-4 * max(1, max |gradient|) each in fp32,
  /// 2e-2 * max(1, max |gradient|) in bf16 mode (SPEC 8).
  GradRecord record(Backend backend) const;
  /// SPEC 8's tolerance for gradient i of the heads so far (what record() holds).
  double tolerance(int i) const;

 private:
  int64_t plane_;
  GoldenStream dout_stream_;
  std::vector<float> dout_, grads_[3];
  double peak_[3] = {0.0, 0.0, 0.0};
  Precision precision_ = Precision::kFp32;  ///< the heads' (compute())
};

/// Writes the manifest member "grad": {backend, dout stream, loss, rule, tolerances}.
void write_grad_member(JsonWriter& j, const GradRecord& grad);
/// The record of `manifest`'s own "grad" member (verify regenerates the member from it and
/// compares every other field; verify_golden_grads then checks the tolerances against the
/// SPEC 8 rule).
GradRecord grad_record(const JsonValue& manifest, const std::string& where, Backend backend,
                       Precision precision);

/// Reads head `bh`'s [S, D] plane of the golden file `name` (e.g. "dq.npy") into `dst`.
using GoldenPlaneReader = std::function<void(const char* name, int64_t bh, float* dst)>;

/// Checks a --grad folder's gradients head by head, inside verify's per-head recomputation
/// of out and lse (GradHeads: a few [S, D] planes, not ten whole tensors): dout regenerated
/// from the seed (bit for bit against dout.npy), dq, dk, dv recomputed with the folder's
/// backend and compared with the files within the manifest's tolerances.
class GradCheck {
 public:
  GradCheck(const AttentionShape& shape, uint64_t seed);
  /// Head `bh` (heads in order 0, 1, ...): its stored q, k, v and the out and lse just
  /// recomputed from them as `head` (head_problem(), rounding none) with `backend`.
  void add_head(int64_t bh, const HeadProblem& head, Backend backend,
                const float* q, const float* k, const float* v, const float* out,
                const float* lse, const GoldenPlaneReader& read);
  /// One report line each for dout, dq, dk, dv; true when everything holds (the tolerances
  /// must be SPEC 8's for the recomputed gradients).
  bool finish(const JsonValue& manifest, const std::string& where, Backend backend,
              GoldenReport* report);

 private:
  GradHeads heads_;
  std::vector<float> file_;
  double err_[3] = {0.0, 0.0, 0.0};
  bool dout_same_ = true;
};

}  // namespace sta::detail
