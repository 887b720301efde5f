// The backward frontend (SPEC 8): validates once, prepares the inputs as attention() does
// (rounding, raster -> tiled order), recomputes out and lse when the caller has none, hands
// clean values to the reference or the flash backward, and brings dq, dk, dv back to the
// caller's layout.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backward.hpp"
#include "sta/backward.hpp"
#include "sta/error.hpp"
#include "sta/npy.hpp"
#include "sta/reference.hpp"

namespace sta {

std::vector<std::vector<QueryTileVisit>> query_tile_visits(const Geometry& g, const Mask& mask) {
  const auto forward = key_tile_visits(g, mask);
  std::vector<std::vector<QueryTileVisit>> inverse(forward.size());
  for (size_t qt = 0; qt < forward.size(); ++qt)  // increasing qt: each list comes out sorted
    for (const KeyTileVisit& v : forward[qt])
      inverse[static_cast<size_t>(v.key_tile)].push_back({static_cast<int64_t>(qt), v.dense});
  return inverse;
}

namespace {

/// The reference backward: double results cast to float, the classifier's block counts.
AttentionStats run_reference_backward(const AttentionShape& shape, const AttentionOptions& options,
                                      const float* q, const float* k, const float* v,
                                      const float* dout, float* dq, float* dk, float* dv) {
  const size_t n = static_cast<size_t>(shape.elements());
  std::vector<double> dq_d(n), dk_d(n), dv_d(n);
  reference_attention_backward(shape, options, q, k, v, dout, dq_d.data(), dk_d.data(), dv_d.data());
  auto to_float = [](double x) { return static_cast<float>(x); };
  std::transform(dq_d.begin(), dq_d.end(), dq, to_float);
  std::transform(dk_d.begin(), dk_d.end(), dk, to_float);
  std::transform(dv_d.begin(), dv_d.end(), dv, to_float);
  return detail::reference_stats(shape, options);
}

detail::FlashMode flash_mode(Backend backend) {
  return backend == Backend::kSta      ? detail::FlashMode::kSta
         : backend == Backend::kNatten ? detail::FlashMode::kNatten
                                       : detail::FlashMode::kDense;
}

}  // namespace

AttentionStats attention_backward(const AttentionShape& shape, const AttentionOptions& options,
                                  const float* q, const float* k, const float* v,
                                  const float* out, const float* lse, const float* dout,
                                  float* dq, float* dk, float* dv, Backend backend) {
  validate_attention(shape, options, backend);
  if ((out == nullptr) != (lse == nullptr)) {
    throw Error("--out/--lse: give both of the forward's out and lse, or neither (recomputed)");
  }
  const Geometry& g = options.geometry;
  const int64_t n = shape.elements(), bh = shape.batch * shape.heads;
  if (backend != Backend::kReference) {
    // One vectorised pass per input (on the team) serves the range rule and finiteness.
    const FloatScan sq = scan_floats(q, n), sk = scan_floats(k, n), sv = scan_floats(v, n);
    if (options.check_range)
      check_input_range(shape, options, {sq.max_abs_finite, sk.max_abs_finite, sv.max_abs_finite});
    // A NaN or Inf in a key a query may not attend must not reach that query's gradients
    // (SPEC 6), but a tile GEMM multiplies it by zero: such inputs take the reference path,
    // which never touches masked pairs (the stats then say "reference").
    if (sq.nonfinite + sk.nonfinite + sv.nonfinite + scan_floats(dout, n).nonfinite > 0)
      return attention_backward(shape, options, q, k, v, out, lse, dout, dq, dk, dv, Backend::kReference);
  }
  const bool retile = options.layout == Layout::kRaster && backend != Backend::kReference;

  // The same preparation as attention(): the gradients are those of the rounded inputs. In
  // bf16 mode (SPEC 8) q, k, v and dout are rounded to bf16 values, for every backend: the
  // fast backward rounds them as it loads and packs them (as the forward does; no copies of
  // four [B,H,S,D] inputs), the reference gets rounded copies (it computes in double on
  // them: the oracle of the bf16 tolerance).
  const bool bf16 = options.precision == Precision::kBf16;
  const bool round_copies = bf16 && backend == Backend::kReference;
  std::vector<float> q_buf, k_buf, v_buf, dout_buf;
  auto prepare = [&](const float* src, std::vector<float>& buf, bool input) -> const float* {
    const bool round = (input && options.rounding != InputRounding::kNone) || round_copies;
    if (!retile && !round) return src;
    buf.resize(static_cast<size_t>(n));
    if (retile) {
      tile(g, src, buf.data(), bh, shape.dim);
    } else {
      std::copy(src, src + n, buf.data());
    }
    if (input) round_inputs(buf.data(), n, options.rounding);
    if (round_copies) round_inputs(buf.data(), n, InputRounding::kBf16);
    return buf.data();
  };
  const float* qp = prepare(q, q_buf, true);
  const float* kp = prepare(k, k_buf, true);
  const float* vp = prepare(v, v_buf, true);
  const float* dop = prepare(dout, dout_buf, false);
  if (backend == Backend::kReference) {
    AttentionStats stats = run_reference_backward(shape, options, qp, kp, vp, dop, dq, dk, dv);
    stats.precision = options.precision;
    return stats;
  }

  // out and lse in tiled order: the caller's, retiled, or recomputed by this backend.
  std::vector<float> out_buf, lse_buf;
  const float* op = out;
  const float* lp = lse;
  if (out == nullptr || retile) {
    out_buf.resize(static_cast<size_t>(n));
    lse_buf.resize(static_cast<size_t>(bh * shape.seq));
    if (out == nullptr) {
      AttentionOptions tiled = options;  // the inputs are prepared already
      tiled.layout = Layout::kTiled;
      tiled.rounding = InputRounding::kNone;
      attention(shape, tiled, qp, kp, vp, out_buf.data(), lse_buf.data(), backend);
    } else {
      tile(g, out, out_buf.data(), bh, shape.dim);
      tile(g, lse, lse_buf.data(), bh, 1);
    }
    op = out_buf.data();
    lp = lse_buf.data();
  }

  std::vector<float> grads;
  float* dqp = dq;
  float* dkp = dk;
  float* dvp = dv;
  if (retile) {
    grads.resize(static_cast<size_t>(3 * n));
    dqp = grads.data();
    dkp = dqp + n;
    dvp = dkp + n;
  }
  // The forward's choice of GEMM family (validate_attention refused unusable names and bf16
  // families in fp32): in bf16 mode a bf16 family where this CPU has one (compute_step_bf16), else
  // the exact emulation on the fp32 family.
  const simd::GemmKernels& gemm =
      options.gemm.empty() ? simd::gemm_kernels(bf16) : *simd::find_gemm_kernels(options.gemm.c_str());
  const simd::BackwardKernels& kernels = simd::backward_kernels();
  AttentionStats stats;
  stats.backend = backend;
  stats.isa = simd::isa_name(kernels.isa);
  stats.gemm = simd::gemm_run_name(gemm, bf16);
  stats.precision = options.precision;
  stats.counts = detail::flash_attention_backward(
      shape, g, options.masks, static_cast<float>(options.effective_scale(shape.dim)),
      flash_mode(backend), bf16, qp, kp, vp, op, lp, dop, dqp, dkp, dvp, gemm, kernels, &stats.threads);
  if (retile) {
    untile(g, dqp, dq, bh, shape.dim);
    untile(g, dkp, dk, bh, shape.dim);
    untile(g, dvp, dv, bh, shape.dim);
  }
  return stats;
}

}  // namespace sta
