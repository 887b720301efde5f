// sta._sta: the pybind11 layer of the Python module. It only moves float32 C-contiguous
// numpy arrays in and out of the library and turns sta::Error into ValueError; conversions of
// other dtypes, torch tensors, defaults and docs live in python/sta/__init__.py, where they
// are easier to read and to test.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "sta/attention.hpp"
#include "sta/buffer.hpp"
#include "sta/backward.hpp"
#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/golden.hpp"
#include "sta/layout.hpp"
#include "sta/mask.hpp"
#include "sta/shape.hpp"
#include "sta/strategy.hpp"
#include "sta/theory.hpp"

namespace py = pybind11;

namespace {

using F32Array = py::array_t<float, py::array::c_style>;

// Thrown from the progress callback when Python has a pending signal (Ctrl-C); the binding
// re-raises the Python exception once the GIL is back.
struct Interrupted {};

sta::Extent3 extent(const std::vector<int64_t>& v, const char* arg) {
  if (v.size() == 2) return {1, v[0], v[1]};
  if (v.size() != 3)
    throw sta::Error(std::string(arg) + ": expected 3 integers (t, h, w) or 2 (h, w), got " +
                     std::to_string(v.size()));
  return {v[0], v[1], v[2]};
}

py::tuple extent_tuple(const sta::Extent3& e) { return py::make_tuple(e.t, e.h, e.w); }

sta::Geometry geometry(const std::vector<int64_t>& video, const std::vector<int64_t>& tile,
                       int64_t text_length, int64_t text_pad, bool ragged) {
  sta::Geometry g;
  g.canvas = extent(video, "video");
  g.tile = extent(tile, "tile");
  g.text_length = text_length;
  g.text_pad = text_pad;
  g.ragged = ragged;
  g.validate();
  return g;
}

// The array must already be what the library reads: float32, C order, `dims` dimensions.
// The Python layer converts anything else; this check keeps a wrong call from reading junk.
const float* checked(const py::array& a, int dims, const char* arg) {
  if (!py::isinstance<F32Array>(a) || !(a.flags() & py::array::c_style) || a.ndim() != dims)
    throw py::type_error(std::string(arg) + ": expected a C-contiguous float32 array of " +
                         std::to_string(dims) + " dimensions");
  return static_cast<const float*>(a.data());
}

// Runs `fn` without the GIL and with `threads` OpenMP threads (0 = the current default).
template <typename Fn>
void run_released(int threads, Fn&& fn) {
  const int before = omp_get_max_threads();
  if (threads > 0) omp_set_num_threads(threads);
  try {
    py::gil_scoped_release release;
    fn();
  } catch (const Interrupted&) {
    omp_set_num_threads(before);
    if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
  } catch (...) {
    omp_set_num_threads(before);
    throw;
  }
  omp_set_num_threads(before);
}

py::dict stats_dict(const sta::AttentionStats& s) {
  py::dict d;
  d["backend"] = sta::to_string(s.backend);
  d["dense"] = s.counts.dense;
  d["mixed"] = s.counts.mixed;
  d["empty"] = s.counts.empty;
  d["total"] = s.counts.total();
  d["isa"] = s.isa;
  d["gemm"] = s.gemm;
  d["precision"] = sta::to_string(s.precision);
  d["threads"] = s.threads;
  return d;
}

// The library's options from the Python layer's plain values (validated by the library).
sta::AttentionOptions attention_options(const std::vector<int64_t>& video,
                                        const std::vector<int64_t>& tile,
                                        const std::vector<std::string>& masks, int64_t text_length,
                                        int64_t text_pad, bool ragged, const std::string& layout,
                                        const std::string& precision, double scale,
                                        const std::string& rounding) {
  sta::AttentionOptions options;
  options.geometry = geometry(video, tile, text_length, text_pad, ragged);
  options.masks.clear();
  for (size_t i = 0; i < masks.size(); ++i)
    options.masks.push_back(sta::parse_mask(masks[i], "masks[" + std::to_string(i) + "]"));
  options.layout = sta::parse_layout(layout, "layout");
  options.scale = scale;
  options.rounding = sta::parse_rounding(rounding, "rounding");
  options.precision = sta::parse_precision(precision, "precision");
  return options;
}

// [B, H, S, D] of q, after checking that every other array in `same` has it too.
sta::AttentionShape qkv_shape(const py::array& q,
                              std::initializer_list<std::pair<const py::array*, const char*>> same) {
  for (const auto& [a, name] : same)
    for (int i = 0; i < 4; ++i)
      if (a->shape(i) != q.shape(i))
        throw sta::Error(std::string(name) + ": shape must equal q's [B, H, S, D]");
  return {q.shape(0), q.shape(1), q.shape(2), q.shape(3)};
}

py::tuple attention(const py::array& q, const py::array& k, const py::array& v,
                    const std::vector<int64_t>& video, const std::vector<int64_t>& tile,
                    const std::vector<std::string>& masks, int64_t text_length, int64_t text_pad,
                    bool ragged, const std::string& layout, const std::string& backend,
                    const std::string& precision, double scale, const std::string& rounding,
                    int threads) {
  const float* qp = checked(q, 4, "q");
  const float* kp = checked(k, 4, "k");
  const float* vp = checked(v, 4, "v");
  for (int i = 0; i < 4; ++i)
    if (k.shape(i) != q.shape(i) || v.shape(i) != q.shape(i))
      throw sta::Error("k, v: shapes must equal q's [B, H, S, D]");
  sta::AttentionShape shape{q.shape(0), q.shape(1), q.shape(2), q.shape(3)};
  const sta::AttentionOptions options = attention_options(
      video, tile, masks, text_length, text_pad, ragged, layout, precision, scale, rounding);
  const sta::Backend b = sta::parse_backend(backend, "backend");
  sta::validate_attention(shape, options, b);

  F32Array out({shape.batch, shape.heads, shape.seq, shape.dim});
  F32Array lse({shape.batch, shape.heads, shape.seq});
  float* op = out.mutable_data();
  float* lp = lse.mutable_data();
  sta::AttentionStats stats;
  // A pending Ctrl-C is honoured between heads: the callback takes the GIL for a moment.
  auto progress = [](int64_t, int64_t) {
    py::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw Interrupted{};
  };
  run_released(threads, [&] {
    stats = sta::attention_by_head(shape, options, qp, kp, vp, op, lp, b, progress);
  });
  return py::make_tuple(out, lse, stats_dict(stats));
}

// dq, dk, dv of sum(out * dout) (SPEC 8). `out` and `lse` are the forward's results or both
// None (recomputed by the library). No progress callback: the backward is not split by head.
py::tuple attention_backward(const py::array& q, const py::array& k, const py::array& v,
                             const py::array& dout, const py::object& out, const py::object& lse,
                             const std::vector<int64_t>& video, const std::vector<int64_t>& tile,
                             const std::vector<std::string>& masks, int64_t text_length,
                             int64_t text_pad, bool ragged, const std::string& layout,
                             const std::string& backend, const std::string& precision,
                             double scale, const std::string& rounding, int threads) {
  const float* qp = checked(q, 4, "q");
  const float* kp = checked(k, 4, "k");
  const float* vp = checked(v, 4, "v");
  const float* dop = checked(dout, 4, "dout");
  const sta::AttentionShape shape = qkv_shape(q, {{&k, "k"}, {&v, "v"}, {&dout, "dout"}});
  const float* op = nullptr;
  const float* lp = nullptr;
  if (!out.is_none()) {
    const py::array o = out.cast<py::array>();
    op = checked(o, 4, "out");
    qkv_shape(q, {{&o, "out"}});
  }
  if (!lse.is_none()) {
    const py::array l = lse.cast<py::array>();
    lp = checked(l, 3, "lse");
    for (int i = 0; i < 3; ++i)
      if (l.shape(i) != q.shape(i)) throw sta::Error("lse: shape must equal q's [B, H, S]");
  }
  const sta::AttentionOptions options = attention_options(
      video, tile, masks, text_length, text_pad, ragged, layout, precision, scale, rounding);
  const sta::Backend b = sta::parse_backend(backend, "backend");
  F32Array dq({shape.batch, shape.heads, shape.seq, shape.dim});
  F32Array dk({shape.batch, shape.heads, shape.seq, shape.dim});
  F32Array dv({shape.batch, shape.heads, shape.seq, shape.dim});
  float* dqp = dq.mutable_data();
  float* dkp = dk.mutable_data();
  float* dvp = dv.mutable_data();
  sta::AttentionStats stats;
  run_released(threads, [&] {
    stats = sta::attention_backward(shape, options, qp, kp, vp, op, lp, dop, dqp, dkp, dvp, b);
  });
  return py::make_tuple(dq, dk, dv, stats_dict(stats));
}

// A golden folder through the library's writer (the manifest's one definition); returns the
// manifest text. `preset` empty = the custom problem of the other arguments.
std::string write_golden(const std::string& dir, const std::string& preset,
                         const std::vector<int64_t>& shape, const std::vector<int64_t>& video,
                         const std::vector<int64_t>& tile, const std::vector<std::string>& masks,
                         int64_t text_length, int64_t text_pad, bool ragged,
                         const std::string& layout, const std::string& backend,
                         const std::string& precision, const std::string& rounding, uint64_t seed,
                         bool force, bool grad, int threads) {
  sta::GoldenProblem p;
  if (!preset.empty()) {
    p = sta::golden_problem(sta::find_golden_preset(preset, "preset"), seed);
  } else {
    if (shape.size() != 4) throw sta::Error("shape: expected 4 integers (B, H, S, D)");
    p.shape = {shape[0], shape[1], shape[2], shape[3]};
    p.options = attention_options(video, tile, masks, text_length, text_pad, ragged, layout,
                                  precision, 0.0, rounding);
    p.backend = sta::parse_backend(backend, "backend");
    p.description = "custom problem";
    p.seed = seed;
  }
  p.options.rounding = sta::parse_rounding(rounding, "rounding");
  p.options.precision = sta::parse_precision(precision, "precision");
  sta::GoldenWriteOptions options;
  options.force = force;
  options.grad = grad;
  options.arg = "path";
  std::string manifest;
  auto progress = [](int64_t, int64_t) {
    py::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw Interrupted{};
  };
  run_released(threads, [&] { manifest = sta::write_golden_folder(dir, p, options, progress).manifest; });
  return manifest;
}

// `sta verify` through the library's verifier: the report as a dict.
py::dict verify_golden(const std::string& dir, bool hashes_only, int threads) {
  sta::GoldenReport report;
  run_released(threads, [&] { sta::verify_golden_folder(dir, hashes_only, &report, "path"); });
  py::dict d;
  d["ok"] = report.ok;
  d["lines"] = report.lines;
  d["hashes"] = report.hashes;
  d["manifest_same"] = report.manifest_same;
  d["inputs_same"] = report.inputs_same;
  d["out_max_abs"] = report.out_max_abs < 0 ? py::object(py::none()) : py::object(py::float_(report.out_max_abs));
  d["lse_max_abs"] = report.lse_max_abs < 0 ? py::object(py::none()) : py::object(py::float_(report.lse_max_abs));
  return d;
}

// tile() / untile() of [N, S, D] float32 rows (S = video tokens + text rows, text unchanged).
F32Array permute(const py::array& x, const std::vector<int64_t>& video,
                 const std::vector<int64_t>& tile, bool ragged, bool to_tiled) {
  const float* src = checked(x, 3, "x");
  sta::Geometry g = geometry(video, tile, 0, 0, ragged);
  const int64_t seq = x.shape(1);
  if (seq < g.video_tokens())
    throw sta::Error("x: sequence of " + std::to_string(seq) + " tokens is shorter than the video (" +
                     std::to_string(g.video_tokens()) + " tokens)");
  g.text_pad = seq - g.video_tokens();
  F32Array out({x.shape(0), x.shape(1), x.shape(2)});
  float* dst = out.mutable_data();
  const int64_t n = x.shape(0), row = x.shape(2);
  {
    py::gil_scoped_release release;
    if (to_tiled)
      sta::tile(g, src, dst, n, row);
    else
      sta::untile(g, src, dst, n, row);
  }
  return out;
}

// For every tiled position of the video, its raster index (numpy fancy indexing: tiled =
// raster[index]). Works for any dtype and framework in the Python layer.
py::array_t<int64_t> tiled_to_raster(const std::vector<int64_t>& video,
                                     const std::vector<int64_t>& tile, bool ragged) {
  const sta::Geometry g = geometry(video, tile, 0, 0, ragged);
  py::array_t<int64_t> index(g.video_tokens());
  int64_t* p = index.mutable_data();
  for (int64_t s = 0; s < g.video_tokens(); ++s) {
    const sta::TokenCoord c = sta::token_coord(g, sta::Layout::kTiled, s);
    p[s] = sta::raster_index(g.canvas, c.t, c.y, c.x);
  }
  return index;
}

py::dict counts_dict(const sta::BlockCounts& c) {
  py::dict d;
  d["dense"] = c.dense;
  d["mixed"] = c.mixed;
  d["empty"] = c.empty;
  d["total"] = c.total();
  return d;
}

py::dict classify(const std::vector<int64_t>& video, const std::vector<int64_t>& tile,
                  const std::string& mask, const std::string& order, int64_t block_q,
                  int64_t block_k, bool ragged) {
  const sta::Geometry g = geometry(video, tile, 0, 0, ragged);
  sta::BlockPartition p;
  p.order = sta::parse_layout(order, "order");
  p.block_q = block_q;
  p.block_k = block_k;
  const sta::BlockStats s = sta::classify_blocks(g, sta::parse_mask(mask, "mask"), p);
  py::dict d = counts_dict(s.counts);
  d["allowed_pairs"] = s.allowed_pairs;
  d["total_pairs"] = s.total_pairs;
  d["sparsity"] = s.sparsity();
  return d;
}

py::dict theorem_check_dict(const sta::TheoremCheck& c) {
  py::dict d;
  d["theorem"] = c.theorem;
  d["mode"] = c.mode;
  d["canvas"] = c.canvas;
  d["tile"] = c.tile;
  d["window"] = c.window;
  d["query_tiles"] = c.query_tiles;
  d["predicted"] = counts_dict(c.predicted);
  d["measured"] = counts_dict(c.measured);
  d["exact_claim"] = c.exact_claim;
  d["matches"] = c.matches();
  d["failed"] = c.failed();
  return d;
}

void bind_strategy(py::module_& m) {
  py::class_<sta::MaskStrategy>(m, "MaskStrategy")
      .def_readonly("source", &sta::MaskStrategy::source)
      .def("__len__", [](const sta::MaskStrategy& s) { return s.entries.size(); })
      .def("window",
           [](const sta::MaskStrategy& s, int64_t step, int64_t layer, int64_t head) -> py::object {
             const sta::StrategyEntry* e = s.find(step, layer, head);
             if (!e) return py::none();
             return extent_tuple(e->window);
           })
      .def("masks",
           [](const sta::MaskStrategy& s, int64_t step, int64_t layer, int64_t heads) {
             std::vector<std::string> out;
             for (const auto& mk : sta::strategy_masks(s, step, layer, heads))
               out.push_back(sta::to_string(mk));
             return out;
           },
           py::arg("step"), py::arg("layer"), py::arg("heads") = -1)
      .def("window_size",
           [](const sta::MaskStrategy& s, int64_t step, int64_t layer, int64_t heads) {
             py::list out;
             for (const auto& mk : sta::strategy_masks(s, step, layer, heads))
               out.append(py::make_tuple(mk.window.t, mk.window.h, mk.window.w));
             return out;
           },
           py::arg("step"), py::arg("layer"), py::arg("heads") = -1)
      .def("steps", &sta::strategy_steps)
      .def("layers", &sta::strategy_layers)
      .def("heads", &sta::strategy_heads)
      .def("is_complete", &sta::strategy_is_complete)
      .def("histogram",
           [](const sta::MaskStrategy& s) {
             py::list out;
             for (const auto& w : sta::strategy_window_histogram(s))
               out.append(py::make_tuple(extent_tuple(w.window), w.count));
             return out;
           })
      .def("sparsity", [](const sta::MaskStrategy& s, const std::vector<int64_t>& video,
                          const std::vector<int64_t>& tile, bool per_step) {
        const sta::Geometry g = geometry(video, tile, 0, 0, false);
        auto one = [](const sta::StrategySparsity& x) {
          py::dict d;
          d["step"] = x.step;
          d["keys"] = x.keys;
          d["sparsity"] = x.sparsity;
          d["sparsity_raw"] = x.sparsity_raw;
          return d;
        };
        if (!per_step) return py::object(one(sta::strategy_sparsity(s, g)));
        py::list out;
        for (const auto& x : sta::strategy_sparsity_per_step(s, g)) out.append(one(x));
        return py::object(out);
      }, py::arg("video"), py::arg("tile") = std::vector<int64_t>{6, 8, 8}, py::arg("per_step") = false);
  m.def("parse_mask_strategy", &sta::parse_mask_strategy);
  m.def("read_mask_strategy", &sta::read_mask_strategy);
}

}  // namespace

PYBIND11_MODULE(_sta, m) {
  m.doc() = "Low-level bindings of the STA C++ library; use the `sta` package instead.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const sta::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("__version__") = STA_VERSION;
  m.def("attention", &attention);
  m.def("attention_backward", &attention_backward);
  m.def("tile", [](const py::array& x, const std::vector<int64_t>& video,
                   const std::vector<int64_t>& tile, bool ragged) {
    return permute(x, video, tile, ragged, true);
  });
  m.def("untile", [](const py::array& x, const std::vector<int64_t>& video,
                     const std::vector<int64_t>& tile, bool ragged) {
    return permute(x, video, tile, ragged, false);
  });
  m.def("tiled_to_raster", &tiled_to_raster);
  m.def("classify_blocks", &classify);
  m.def("normalize_mask", [](const std::string& text, const std::string& arg) {
    return sta::to_string(sta::parse_mask(text, arg));
  });
  m.def("sta_key_tiles", [](int64_t window, int64_t n, int64_t qt) {
    const sta::TileRange r = sta::sta_key_tiles(window, n, qt);
    return py::make_tuple(r.first, r.count);
  });
  m.def("effective_sta_window",
        [](const std::vector<int64_t>& window, const std::vector<int64_t>& tiles) {
          return extent_tuple(sta::effective_sta_window(extent(window, "window"), extent(tiles, "tiles")));
        });
  m.def("theorem31_per_query_tile", [](int64_t tile, int64_t window, int dims) {
    return counts_dict(sta::theorem31_per_query_tile(tile, window, dims));
  });
  m.def("theorem31", [](int64_t canvas, int64_t tile, int64_t window, int dims) {
    return counts_dict(sta::theorem31(canvas, tile, window, dims));
  });
  m.def("theorem32", [](int64_t n, int64_t window_tiles, int dims) {
    return counts_dict(sta::theorem32(n, window_tiles, dims));
  });
  m.def("check_theorem31", [](int64_t canvas, int64_t tile, int64_t window,
                              const std::string& mode, int dims) {
    return theorem_check_dict(sta::check_theorem31(canvas, tile, window, mode, dims));
  });
  m.def("check_theorem32", [](int64_t n, int64_t tile, int64_t window_tiles, int dims) {
    return theorem_check_dict(sta::check_theorem32(n, tile, window_tiles, dims));
  });
  m.def("check_theorems", [] {
    py::list out;
    for (const auto& c : sta::check_theorems()) out.append(theorem_check_dict(c));
    return out;
  });
  bind_strategy(m);
  m.def("golden_fill", [](int64_t n, uint64_t seed, uint64_t stream) {
    if (n < 0) throw sta::Error("n: " + std::to_string(n) + ", expected >= 0");
    F32Array a(n);
    sta::golden_fill(a.mutable_data(), n, seed, stream);
    return a;
  });
  m.def("round_inputs", [](py::array& a, const std::string& rounding) {
    checked(a, a.ndim(), "x");
    if (!a.writeable()) throw py::type_error("x: array is read-only");
    sta::round_inputs(static_cast<float*>(a.mutable_data()), a.size(),
                      sta::parse_rounding(rounding, "rounding"));
  });
  m.def("write_golden", &write_golden);
  m.def("release_buffer_cache", &sta::release_buffer_cache);
  m.def("verify_golden", &verify_golden);
  m.def("golden_tolerance", [](const std::string& rounding) {
    return sta::golden_tolerance(sta::parse_rounding(rounding, "rounding"));
  });
  m.def("golden_presets", [] {
    py::list out;
    for (const auto& p : sta::golden_presets()) {
      py::dict d;
      d["name"] = p.name;
      d["description"] = p.description;
      d["shape"] = py::make_tuple(p.shape.batch, p.shape.heads, p.shape.seq, p.shape.dim);
      const sta::Geometry& g = p.options.geometry;
      d["video"] = extent_tuple(g.canvas);
      d["tile"] = extent_tuple(g.tile);
      d["text_length"] = g.text_length;
      d["text_pad"] = g.text_pad;
      std::vector<std::string> masks;
      for (const auto& mk : p.options.masks) masks.push_back(sta::to_string(mk));
      d["masks"] = masks;
      d["backend"] = sta::to_string(p.backend);
      out.append(d);
    }
    return out;
  });
  m.def("simd_isa", &sta::simd_isa);
  m.def("gemm_kernel_name", [](const std::string& precision) {
    return sta::gemm_kernel_name(sta::parse_precision(precision, "precision"));
  });
  m.def("cpu_description", &sta::cpu_description);
  m.def("max_threads", [] { return omp_get_max_threads(); });
}
