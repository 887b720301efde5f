// `sta compare`: error statistics between two .npy arrays (SPEC section 7), the check that
// a backend or a GPU port agrees with a golden file. Exit 0 = within tolerance, 1 = not,
// 2 = bad input.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/compare.hpp"
#include "sta/error.hpp"
#include "sta/json.hpp"
#include "sta/layout.hpp"
#include "sta/npy.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta compare: error statistics between two .npy arrays of the same shape.

Usage: sta compare A.npy B.npy [--atol X] [--rtol Y] [--json] [common options]

B is the reference: an element is out of tolerance when |a - b| > atol + rtol * |b|.
NaN against a number (or a number against NaN) and inf against anything but the same inf
count as out of tolerance; NaN against NaN and equal infinities agree.

)") + options_help(compare_options()) + R"(
Printed: max abs error, max rel error (over elements with b != 0), the worst element's
flat index and (b,h,s,d) index, the number out of tolerance, and the max abs error per
(b,h) head for 3-D [B,H,S] and 4-D [B,H,S,D] arrays. Any of --video, --tile, --text-length,
--text-pad, --layout maps the worst sequence index s of such an array to its video token
(t, y, x) or to `text i` (S must then equal T*H*W + text-pad). Files may be float32,
float16 or float64.

Exit code: 0 all elements within tolerance, 1 some out of tolerance, 2 bad input
(unreadable file, different shapes, bad option).

)" + common_help();

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

std::vector<int64_t> unravel(int64_t flat, const std::vector<int64_t>& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t a = shape.size(); a-- > 0;) {
    index[a] = flat % shape[a];
    flat /= shape[a];
  }
  return index;
}

struct HeadError {
  double max_abs = 0.0;
  int64_t out_of_tolerance = 0;
};

/// Everything `sta compare` reports: the one-pass statistics, per-head maxima and where the
/// worst element sits (flat, multi-index, and on the canvas when the geometry was given).
struct Comparison {
  std::string path_a, path_b;
  const NpyArray* a = nullptr;
  const NpyArray* b = nullptr;
  double atol = 0.0, rtol = 0.0;
  ArrayDiff diff;
  bool per_head = false;            // [B,H,S(,D)] arrays: errors per (b, h)
  std::vector<HeadError> heads;     // B*H entries when per_head
  std::vector<int64_t> index;       // multi-index of the worst element
  bool has_token = false, text_token = false;
  TokenCoord token{};               // video token of the worst element
  int64_t text_index = 0;           // or its text slot
  bool ok() const { return diff.out_of_tolerance == 0; }
};

Comparison compare_arrays(const NpyArray& a, const NpyArray& b, double atol, double rtol,
                          const Geometry* g, Layout layout) {
  Comparison c;
  c.a = &a;
  c.b = &b;
  c.atol = atol;
  c.rtol = rtol;
  const int64_t n = a.elements();
  c.per_head = a.shape.size() == 3 || a.shape.size() == 4;
  // An empty array (a zero extent, maybe beside huge ones) has no heads to list: the
  // product of the other extents is never formed.
  const int64_t heads = c.per_head && n > 0 ? a.shape[0] * a.shape[1] : 0;
  const int64_t per_head_elems = heads > 0 ? n / heads : 0;
  c.diff = diff_arrays(a.data.data(), b.data.data(), n, atol, rtol);
  c.heads.resize(static_cast<size_t>(heads));
  for (int64_t i = 0; per_head_elems > 0 && i < n; ++i) {
    const double y = b.data[static_cast<size_t>(i)];
    const double e = element_error(a.data[static_cast<size_t>(i)], y);
    HeadError& h = c.heads[static_cast<size_t>(i / per_head_elems)];
    h.max_abs = std::max(h.max_abs, e);
    if (out_of_tolerance(e, y, atol, rtol)) ++h.out_of_tolerance;
  }
  if (c.diff.worst < 0) return c;
  c.index = unravel(c.diff.worst, a.shape);
  if (g && c.per_head) {
    const int64_t s = c.index[2];
    c.has_token = true;
    c.text_token = s >= g->video_tokens();
    if (c.text_token) c.text_index = s - g->video_tokens();
    else c.token = token_coord(*g, layout, s);
  }
  return c;
}

std::string comparison_json(const Comparison& c) {
  const NpyArray& a = *c.a;
  JsonWriter j;
  j.begin_object().field("a", c.path_a).field("b", c.path_b).field("shape", a.shape);
  j.field("dtype_a", a.dtype).field("dtype_b", c.b->dtype).field("elements", a.elements());
  j.field("atol", c.atol).field("rtol", c.rtol);
  j.key("max_abs_error").number_or_null(c.diff.max_abs).key("max_rel_error").number_or_null(c.diff.max_rel);
  j.field("out_of_tolerance", c.diff.out_of_tolerance).field("nonfinite_mismatches", c.diff.nonfinite_mismatches);
  if (c.diff.worst >= 0) {
    const auto w = static_cast<size_t>(c.diff.worst);
    j.key("worst").begin_object().field("flat", c.diff.worst).field("index", c.index);
    j.key("a").number_or_null(a.data[w]).key("b").number_or_null(c.b->data[w]);
    if (c.has_token) {
      j.key("token").begin_object();
      if (c.text_token) j.field("text", c.text_index);
      else j.field("t", c.token.t).field("y", c.token.y).field("x", c.token.x);
      j.end_object();
    }
    j.end_object();
  }
  if (c.per_head) {
    j.key("per_head").begin_array();
    for (size_t h = 0; h < c.heads.size(); ++h) {
      const int64_t hh = static_cast<int64_t>(h);
      j.begin_object().field("b", hh / a.shape[1]).field("h", hh % a.shape[1]);
      j.key("max_abs_error").number_or_null(c.heads[h].max_abs);
      j.field("out_of_tolerance", c.heads[h].out_of_tolerance).end_object();
    }
    j.end_array();
  }
  return j.field("ok", c.ok()).end_object().str();
}

void print_comparison(const Comparison& c, int64_t text_length) {
  const NpyArray &a = *c.a, &b = *c.b;
  std::printf("A: %s  %s %s\nB: %s  %s %s\n", c.path_a.c_str(), a.dtype.c_str(),
              shape_to_string(a.shape).c_str(), c.path_b.c_str(), b.dtype.c_str(),
              shape_to_string(b.shape).c_str());
  std::printf("elements %lld, atol %s, rtol %s\n", static_cast<long long>(a.elements()),
              num(c.atol).c_str(), num(c.rtol).c_str());
  std::printf("max abs error: %s\n", num(c.diff.max_abs).c_str());
  std::printf("max rel error: %s (over b != 0; inf if a != b where b == 0)\n", num(c.diff.max_rel).c_str());
  if (c.diff.worst >= 0) {
    const char* axis_names = c.index.size() == 4 ? "bhsd" : (c.index.size() == 3 ? "bhs" : nullptr);
    std::string where = "(";
    for (size_t d = 0; d < c.index.size(); ++d)
      where += (d ? ", " : "") + (axis_names ? std::string(1, axis_names[d]) + " " : "") +
               std::to_string(c.index[d]);
    where += ")";
    if (c.has_token && c.text_token)
      where += ", text " + std::to_string(c.text_index) + (c.text_index >= text_length ? " (padding)" : "");
    else if (c.has_token)
      where += ", video token (t " + std::to_string(c.token.t) + ", y " + std::to_string(c.token.y) +
               ", x " + std::to_string(c.token.x) + ")";
    const auto w = static_cast<size_t>(c.diff.worst);
    std::printf("worst element: flat %lld, index %s: a = %s, b = %s\n",
                static_cast<long long>(c.diff.worst), where.c_str(), num(a.data[w]).c_str(),
                num(b.data[w]).c_str());
  }
  std::printf("out of tolerance: %lld of %lld (%lld NaN/inf mismatches)\n",
              static_cast<long long>(c.diff.out_of_tolerance), static_cast<long long>(a.elements()),
              static_cast<long long>(c.diff.nonfinite_mismatches));
  if (!c.heads.empty()) {
    std::printf("max abs error per head:\n");
    for (size_t h = 0; h < c.heads.size(); ++h) {
      const HeadError& e = c.heads[h];
      const int64_t hh = static_cast<int64_t>(h);
      std::printf("  b %lld h %lld: %s%s\n", static_cast<long long>(hh / a.shape[1]),
                  static_cast<long long>(hh % a.shape[1]), num(e.max_abs).c_str(),
                  e.out_of_tolerance
                      ? ("  (" + std::to_string(e.out_of_tolerance) + " out of tolerance)").c_str()
                      : "");
    }
  }
  std::printf("%s\n", c.ok() ? "OK: all elements within tolerance" : "FAIL: elements out of tolerance");
}

int run_compare(int argc, char** argv) {
  const OptionTable table = command_table(compare_options(), true);
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  refuse_unused(args, {"--mask", "--strategy", "--step", "--layer"}, "sta compare",
                "the common options only map the worst index to a token (see --help)");
  const auto& pos = args.positionals();
  if (pos.size() != 2)
    throw Error("expected two files A.npy B.npy, got " + std::to_string(pos.size()) +
                " (see sta compare --help)");
  const double atol = args.get_double("--atol", 1e-5);
  const double rtol = args.get_double("--rtol", 0.0);
  if (atol < 0) throw Error("--atol: " + args.get("--atol") + " is negative; expected >= 0");
  if (rtol < 0) throw Error("--rtol: " + args.get("--rtol") + " is negative; expected >= 0");
  const bool want_tokens = args.has("--video") || args.has("--tile") || args.has("--text-pad") ||
                           args.has("--text-length") || args.has("--layout");
  const CommonOptions common = parse_common(args);
  const Geometry& g = common.geometry;

  const NpyArray a = read_npy(pos[0], "A");
  const NpyArray b = read_npy(pos[1], "B");
  if (a.shape != b.shape)
    throw Error("B '" + pos[1] + "': shape " + shape_to_string(b.shape) + " differs from A '" +
                pos[0] + "' shape " + shape_to_string(a.shape) + "; expected the same shape");
  const bool per_head = a.shape.size() == 3 || a.shape.size() == 4;
  if (want_tokens && per_head && a.shape[2] != g.seq_len())
    throw Error("--video: S = " + std::to_string(a.shape[2]) + " in " + shape_to_string(a.shape) +
                " but --video " + to_string(g.canvas) + " and --text-pad " +
                std::to_string(g.text_pad) + " need S = " + std::to_string(g.seq_len()));

  Comparison c = compare_arrays(a, b, atol, rtol, want_tokens ? &g : nullptr, common.layout);
  c.path_a = pos[0];
  c.path_b = pos[1];
  if (args.has("--json")) std::printf("%s", comparison_json(c).c_str());
  else print_comparison(c, g.text_length);
  return c.ok() ? 0 : 1;
}

}  // namespace

STA_COMMAND("compare", "error statistics between two .npy arrays; exit 1 if out of tolerance",
             kHelp, run_compare);

}  // namespace sta::cli
