#pragma once
// Gradients in golden folders (`sta golden --grad`, `sta verify`): dout generated from the
// seed like q, k, v, and dq, dk, dv of SPEC 8 computed by the folder's backend, with their
// tolerances in the manifest's "grad" member. Kept apart from cmd_golden.cpp, which only
// calls these three functions.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/json.hpp"

namespace sta::cli {

/// Writes one golden file (cmd_golden.cpp's writer: atomic, hashed into the manifest).
using GoldenPut = std::function<void(const char* name, const std::vector<float>& data,
                                     const std::vector<int64_t>& shape)>;

/// The gradient files of a golden folder.
inline constexpr const char* kGoldenGradFiles[] = {"dout.npy", "dq.npy", "dk.npy", "dv.npy"};

/// Generates dout (golden_fill, stream 3 of `seed`), computes dq, dk, dv with `backend` on
/// the (already rounded) inputs and the forward's out and lse, writes the four files through
/// `put`, and returns the manifest member `"grad": {...},\n` (backend, dout stream, rule and
/// per-gradient atol = 1e-4 * max(1, max |gradient|), SPEC 8).
std::string write_golden_grads(const AttentionShape& shape, const AttentionOptions& options,
                               Backend backend, uint64_t seed, const std::vector<float>& q,
                               const std::vector<float>& k, const std::vector<float>& v,
                               const std::vector<float>& out, const std::vector<float>& lse,
                               const GoldenPut& put);

/// Checks the SHA-256 of the gradient files against `manifest` (printing one line each);
/// true when all match.
bool verify_golden_grad_hashes(const std::string& dir, const JsonValue& manifest,
                               const std::string& where);

/// Regenerates dout from the seed (bit for bit against dout.npy), recomputes dq, dk, dv with
/// `backend` from the folder's q, k, v and dout, and compares them with the files within the
/// manifest's tolerances (printing one line each); true when everything holds.
bool verify_golden_grads(const std::string& dir, const JsonValue& manifest, const std::string& where,
                         const AttentionShape& shape, const AttentionOptions& options,
                         Backend backend, uint64_t seed, const std::vector<float>& q,
                         const std::vector<float>& k, const std::vector<float>& v);

}  // namespace sta::cli
