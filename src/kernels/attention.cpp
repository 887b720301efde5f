// The attention frontend (SPEC section 6): validates once, prepares the inputs (rounding,
// raster -> tiled order), hands clean values to one of the interchangeable backends and
// brings the outputs back to the caller's layout.
#include "sta/attention.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "flash.hpp"
#include "gemm.hpp"
#include "softmax.hpp"
#include "sta/error.hpp"
#include "sta/npy.hpp"
#include "sta/reference.hpp"

namespace sta {

std::string to_string(Backend backend) {
  switch (backend) {
    case Backend::kReference: return "reference";
    case Backend::kNatten: return "natten";
    case Backend::kSta: return "sta";
    case Backend::kDense: return "dense";
  }
  return "unknown";
}

Backend parse_backend(const std::string& text, const std::string& arg) {
  for (Backend b : {Backend::kReference, Backend::kNatten, Backend::kSta, Backend::kDense}) {
    if (text == to_string(b)) return b;
  }
  throw Error(arg + ": unknown backend '" + text + "'; expected reference, natten, sta or dense");
}

std::string to_string(InputRounding rounding) {
  switch (rounding) {
    case InputRounding::kNone: return "none";
    case InputRounding::kBf16: return "bf16";
    case InputRounding::kFp16: return "fp16";
  }
  return "unknown";
}

InputRounding parse_rounding(const std::string& text, const std::string& arg) {
  for (InputRounding r : {InputRounding::kNone, InputRounding::kBf16, InputRounding::kFp16}) {
    if (text == to_string(r)) return r;
  }
  throw Error(arg + ": unknown rounding '" + text + "'; expected none, bf16 or fp16");
}

std::string to_string(Precision precision) {
  return precision == Precision::kBf16 ? "bf16" : "fp32";
}

Precision parse_precision(const std::string& text, const std::string& arg) {
  for (Precision p : {Precision::kFp32, Precision::kBf16}) {
    if (text == to_string(p)) return p;
  }
  throw Error(arg + ": unknown precision '" + text + "'; expected fp32 or bf16");
}

double AttentionOptions::effective_scale(int64_t dim) const {
  return scale != 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(dim));
}

void validate_attention(const AttentionShape& shape, const AttentionOptions& options,
                        Backend backend) {
  const Geometry& g = options.geometry;
  g.validate();
  if (shape.batch < 1) throw Error("batch: B = " + std::to_string(shape.batch) + ", expected >= 1");
  if (shape.heads < 1) throw Error("heads: H = " + std::to_string(shape.heads) + ", expected >= 1");
  if (shape.dim < 1) throw Error("dim: D = " + std::to_string(shape.dim) + ", expected >= 1");
  if (shape.seq != g.seq_len()) {
    throw Error("seq: S = " + std::to_string(shape.seq) + " but the geometry needs video tokens " +
                std::to_string(g.video_tokens()) + " + text_pad " + std::to_string(g.text_pad) +
                " = " + std::to_string(g.seq_len()));
  }
  // The fast paths index with int: keep every GEMM extent and leading dimension in range.
  const int64_t kIntMax = std::numeric_limits<int>::max();
  if (shape.dim > kIntMax || shape.seq > kIntMax ||
      shape.batch > std::numeric_limits<int64_t>::max() / shape.heads / shape.seq / shape.dim) {
    throw Error("shape: [" + std::to_string(shape.batch) + ", " + std::to_string(shape.heads) +
                ", " + std::to_string(shape.seq) + ", " + std::to_string(shape.dim) +
                "] is too large");
  }
  validate_head_masks(options.masks, shape.heads, g, "--mask");
  for (size_t i = 0; i < options.masks.size(); ++i) {
    const Mask& mask = options.masks[i];
    const std::string which = options.masks.size() == 1 ? "" : " (head " + std::to_string(i) + ")";
    if (backend == Backend::kSta && mask.kind != MaskKind::kSta && mask.kind != MaskKind::kFull) {
      throw Error("--mask: backend sta needs sta or full masks, got " + to_string(mask) + which);
    }
    if (backend == Backend::kDense && mask.kind != MaskKind::kFull) {
      throw Error("--mask: backend dense needs the full mask, got " + to_string(mask) + which);
    }
  }
  if (!options.gemm.empty() && backend != Backend::kReference) {
    const simd::GemmKernels* fam = simd::find_gemm_kernels(options.gemm.c_str());
    const std::vector<std::string> names = gemm_kernel_names(options.precision);
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    if (fam == nullptr || (fam->bf16() && options.precision != Precision::kBf16)) {
      throw Error("gemm: '" + options.gemm + "' is not a usable GEMM kernel for " +
                  to_string(options.precision) + " on this CPU; expected one of " + list);
    }
  }
  if (!std::isfinite(options.scale) || options.scale < 0.0) {
    throw Error("scale: " + std::to_string(options.scale) +
                ", expected a finite value > 0 (or 0 for 1/sqrt(D))");
  }
}

namespace {

/// RNE to fp16 (1 sign, 5 exponent, 10 mantissa bits), returned as the float it represents.
float round_fp16(float x) {
  if (std::isnan(x)) return x;
  const float ax = std::fabs(x);
  float y;
  if (ax >= 65520.0f) {  // halfway between 65504 (largest fp16) and 2^16 rounds up: inf
    y = std::numeric_limits<float>::infinity();
  } else if (ax < 0x1p-14f) {  // fp16 subnormals: multiples of 2^-24 (the scaling is exact)
    y = std::nearbyint(ax * 0x1p24f) * 0x1p-24f;
  } else {  // normal: keep 10 of the 23 mantissa bits
    uint32_t b;
    std::memcpy(&b, &ax, sizeof b);
    b = (b + 0xfffu + ((b >> 13) & 1u)) & ~0x1fffu;
    std::memcpy(&y, &b, sizeof y);
  }
  return std::copysign(y, x);
}

}  // namespace

void round_inputs(float* data, int64_t n, InputRounding rounding) {
  if (rounding == InputRounding::kBf16) {
    // One rounding rule for the whole library: the kernels' (simd/gemm.hpp).
    for (int64_t i = 0; i < n; ++i) data[i] = simd::bf16_to_float(simd::float_to_bf16(data[i]));
  } else if (rounding == InputRounding::kFp16) {
    for (int64_t i = 0; i < n; ++i) data[i] = round_fp16(data[i]);
  }
}

std::string simd_isa() { return simd::isa_name(simd::softmax_kernels().isa); }

namespace detail {

AttentionStats reference_stats(const AttentionShape& shape, const AttentionOptions& options) {
  AttentionStats stats;
  stats.backend = Backend::kReference;
  stats.isa = "none";
  stats.gemm = "none";
  stats.threads = omp_get_max_threads();
  for (int64_t h = 0; h < shape.heads; ++h) {
    const BlockCounts c = classify_blocks(options.geometry, mask_for_head(options.masks, h)).counts;
    stats.counts += BlockCounts{c.dense * shape.batch, c.mixed * shape.batch, c.empty * shape.batch};
  }
  return stats;
}

}  // namespace detail

namespace {

/// The reference backend: same input preparation (rounding), double results cast to float.
AttentionStats run_reference(const AttentionShape& shape, const AttentionOptions& options,
                             const float* q, const float* k, const float* v, float* out,
                             float* lse) {
  std::vector<double> out_d(static_cast<size_t>(shape.elements()));
  std::vector<double> lse_d(static_cast<size_t>(shape.batch * shape.heads * shape.seq));
  reference_attention(shape, options, q, k, v, out_d.data(), lse_d.data());
  std::transform(out_d.begin(), out_d.end(), out, [](double x) { return static_cast<float>(x); });
  std::transform(lse_d.begin(), lse_d.end(), lse, [](double x) { return static_cast<float>(x); });
  return detail::reference_stats(shape, options);
}

}  // namespace

namespace {

std::string number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

}  // namespace

InputRange input_range(const AttentionShape& shape, const float* q, const float* k, const float* v) {
  const int64_t n = shape.elements();
  return {scan_floats(q, n).max_abs_finite, scan_floats(k, n).max_abs_finite,
          scan_floats(v, n).max_abs_finite};
}

void check_input_range(const AttentionShape& shape, const AttentionOptions& options,
                       const InputRange& r, const InputNames& names) {
  constexpr double kLimit = 1e37;
  const double d = static_cast<double>(shape.dim), seq = static_cast<double>(shape.seq);
  const double scale = options.effective_scale(shape.dim);
  const std::string rule = "; expected float32-safe inputs (D*max|q|*max|k|, scale*D*max|q|*max|k| "
                           "and S*max|v| below 1e37)";
  if (d * r.q * r.k > kLimit)
    throw Error(names.q + "/" + names.k + ": scores up to D*max|q|*max|k| = " + number(d) + "*" +
                number(r.q) + "*" + number(r.k) + " = " + number(d * r.q * r.k) + " overflow float32" + rule);
  if (scale * d * r.q * r.k > kLimit || scale * r.q > kLimit)
    throw Error((options.scale != 0.0 ? names.scale : names.q + "/" + names.k) + ": scaled scores up to " +
                number(scale * d * r.q * r.k) + " (scale " + number(scale) + ") overflow float32" + rule);
  if (seq * r.v > kLimit)
    throw Error(names.v + ": sums up to S*max|v| = " + number(seq * r.v) + " overflow float32" + rule);
  if (options.rounding == InputRounding::kFp16) {
    const std::pair<const std::string*, double> inputs[] = {{&names.q, r.q}, {&names.k, r.k}, {&names.v, r.v}};
    for (const auto& [name, m] : inputs)
      if (m >= 65520.0)
        throw Error(*name + ": a value of magnitude " + number(m) + " does not fit float16 (fp16 "
                    "rounding); expected |x| <= 65504");
  }
}

AttentionStats attention(const AttentionShape& shape, const AttentionOptions& options,
                         const float* q, const float* k, const float* v, float* out,
                         float* lse, Backend backend) {
  validate_attention(shape, options, backend);
  if (backend != Backend::kReference && options.check_range)
    check_input_range(shape, options, input_range(shape, q, k, v));
  const Geometry& g = options.geometry;
  const int64_t n = shape.elements();
  const int64_t bh = shape.batch * shape.heads;
  // The fast kernels work in tiled order; the reference reads any layout itself.
  const bool retile = options.layout == Layout::kRaster && backend != Backend::kReference;

  // bf16 mode: the fast paths round q, k, v while packing them; the reference (the oracle of
  // the bf16 tolerance) computes in double on the rounded inputs.
  const bool round_for_reference =
      backend == Backend::kReference && options.precision == Precision::kBf16;
  std::vector<float> q_buf, k_buf, v_buf;
  auto prepare = [&](const float* src, std::vector<float>& buf) -> const float* {
    if (!retile && options.rounding == InputRounding::kNone && !round_for_reference) return src;
    buf.resize(static_cast<size_t>(n));
    if (retile) {
      tile(g, src, buf.data(), bh, shape.dim);
    } else {
      std::copy(src, src + n, buf.data());
    }
    round_inputs(buf.data(), n, options.rounding);
    if (round_for_reference) round_inputs(buf.data(), n, InputRounding::kBf16);
    return buf.data();
  };
  const float* qp = prepare(q, q_buf);
  const float* kp = prepare(k, k_buf);
  const float* vp = prepare(v, v_buf);

  if (backend == Backend::kReference) {
    AttentionStats stats = run_reference(shape, options, qp, kp, vp, out, lse);
    stats.precision = options.precision;
    return stats;
  }

  std::vector<float> out_buf, lse_buf;
  float* op = out;
  float* lp = lse;
  if (retile) {
    out_buf.resize(static_cast<size_t>(n));
    lse_buf.resize(static_cast<size_t>(bh * shape.seq));
    op = out_buf.data();
    lp = lse_buf.data();
  }
  const detail::FlashMode mode = backend == Backend::kSta      ? detail::FlashMode::kSta
                                 : backend == Backend::kNatten ? detail::FlashMode::kNatten
                                                               : detail::FlashMode::kDense;
  const simd::SoftmaxKernels& kernels = simd::softmax_kernels();
  AttentionStats stats;
  stats.backend = backend;
  stats.isa = simd::isa_name(kernels.isa);
  stats.precision = options.precision;
  detail::FlashConfig config;
  config.bf16 = options.precision == Precision::kBf16;
  config.gemm = options.gemm.empty() ? &simd::gemm_kernels(config.bf16)
                                      : simd::find_gemm_kernels(options.gemm.c_str());
  stats.gemm = simd::gemm_run_name(*config.gemm, config.bf16);
  stats.counts = detail::flash_attention(shape, g, options.masks,
                                         static_cast<float>(options.effective_scale(shape.dim)),
                                         mode, qp, kp, vp, op, lp, kernels, config, &stats.threads);
  if (retile) {
    untile(g, op, out, bh, shape.dim);
    untile(g, lp, lse, bh, 1);
  }
  return stats;
}

void AttentionStats::add_head(const AttentionStats& head) {
  backend = heads == 0 || head.backend == backend ? head.backend : Backend::kReference;
  ++heads;
  isa = head.isa;
  gemm = head.gemm;
  precision = head.precision;
  threads = head.threads;
  counts += head.counts;
}

HeadProblem head_problem(const AttentionShape& shape, const AttentionOptions& options, int64_t bh) {
  HeadProblem head{shape, options};
  head.shape.batch = head.shape.heads = 1;
  head.options.masks = {mask_for_head(options.masks, bh % shape.heads)};
  return head;
}

AttentionStats attention_by_head(const AttentionShape& shape, const AttentionOptions& options,
                                 const float* q, const float* k, const float* v, float* out,
                                 float* lse, Backend backend,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  validate_attention(shape, options, backend);
  const int64_t heads = shape.batch * shape.heads, plane = shape.seq * shape.dim;
  AttentionStats total;
  for (int64_t bh = 0; bh < heads; ++bh) {
    const HeadProblem head = head_problem(shape, options, bh);
    total.add_head(attention(head.shape, head.options, q + bh * plane, k + bh * plane,
                             v + bh * plane, out + bh * plane, lse + bh * shape.seq, backend));
    if (progress) progress(bh + 1, heads);
  }
  return total;
}

}  // namespace sta
