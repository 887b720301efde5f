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

/// Writes one golden file (the folder writer's: atomic, hashed into the manifest).
using GoldenPut = std::function<void(const char* name, const std::vector<float>& data,
                                     const std::vector<int64_t>& shape)>;

/// What the manifest's "grad" member records: the backend and per-gradient atol.
struct GradRecord {
  Backend backend;
  double dq, dk, dv;
};

/// Generates dout (golden_fill, stream 3 of `seed`), computes dq, dk, dv with `backend` on
/// the (already rounded) inputs and the forward's out and lse, writes the four files through
/// `put`, and returns the tolerances: atol = 1e-4 * max(1, max |gradient|) each (SPEC 8).
GradRecord write_golden_grads(const AttentionShape& shape, const AttentionOptions& options,
                              Backend backend, uint64_t seed, const std::vector<float>& q,
                              const std::vector<float>& k, const std::vector<float>& v,
                              const std::vector<float>& out, const std::vector<float>& lse,
                              const GoldenPut& put);

/// Writes the manifest member "grad": {backend, dout stream, loss, rule, tolerances}.
void write_grad_member(JsonWriter& j, const GradRecord& grad);
/// The record of `manifest`'s own "grad" member (verify regenerates the member from it and
/// compares every other field; verify_golden_grads then checks the tolerances against the
/// SPEC 8 rule).
GradRecord grad_record(const JsonValue& manifest, const std::string& where, Backend backend);

/// Reads head `bh`'s [S, D] plane of the golden file `name` (e.g. "dq.npy") into `dst`.
using GoldenPlaneReader = std::function<void(const char* name, int64_t bh, float* dst)>;

/// Regenerates dout from the seed (bit for bit against dout.npy), recomputes dq, dk, dv with
/// `backend` from the folder's q, k, v and dout, and compares them with the files within the
/// manifest's tolerances (one report line each); true when everything holds. Head by head:
/// memory for a few [S, D] planes.
bool verify_golden_grads(const JsonValue& manifest, const std::string& where,
                         const AttentionShape& shape, const AttentionOptions& options,
                         Backend backend, uint64_t seed, const GoldenPlaneReader& read,
                         GoldenReport* report);

}  // namespace sta::detail
