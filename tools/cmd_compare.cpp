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

std::string json_num(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", x);
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
  const size_t ndim = a.shape.size();
  const bool per_head = ndim == 3 || ndim == 4;
  if (want_tokens && per_head && a.shape[2] != g.seq_len())
    throw Error("--video: S = " + std::to_string(a.shape[2]) + " in " + shape_to_string(a.shape) +
                " but --video " + to_string(g.canvas) + " and --text-pad " +
                std::to_string(g.text_pad) + " need S = " + std::to_string(g.seq_len()));

  // Statistics in one pass (sta::diff_arrays); per-head maxima with the same element rules.
  const int64_t n = a.elements();
  // An empty array (a zero extent, maybe beside huge ones) has no heads to list: the
  // product of the other extents is never formed.
  const int64_t heads = per_head && n > 0 ? a.shape[0] * a.shape[1] : 0;
  const int64_t per_head_elems = per_head && heads > 0 ? n / heads : 0;
  const ArrayDiff diff = diff_arrays(a.data.data(), b.data.data(), n, atol, rtol);
  const double max_abs = diff.max_abs, max_rel = diff.max_rel;
  const int64_t worst = diff.worst, bad = diff.out_of_tolerance, nonfinite_bad = diff.nonfinite_mismatches;
  std::vector<HeadError> head_errors(static_cast<size_t>(heads));
  for (int64_t i = 0; per_head_elems > 0 && i < n; ++i) {
    const double y = b.data[static_cast<size_t>(i)];
    const double e = element_error(a.data[static_cast<size_t>(i)], y);
    HeadError& h = head_errors[static_cast<size_t>(i / per_head_elems)];
    h.max_abs = std::max(h.max_abs, e);
    if (out_of_tolerance(e, y, atol, rtol)) ++h.out_of_tolerance;
  }
  const bool ok = bad == 0;

  // Where the worst element sits: flat, multi-index, and on the canvas if asked.
  std::vector<int64_t> index = worst >= 0 ? unravel(worst, a.shape) : std::vector<int64_t>{};
  std::string token_text, token_json;
  if (worst >= 0 && want_tokens && per_head) {
    const int64_t s = index[2];
    if (s < g.video_tokens()) {
      const TokenCoord tc = token_coord(g, common.layout, s);
      token_text = "video token (t " + std::to_string(tc.t) + ", y " + std::to_string(tc.y) +
                   ", x " + std::to_string(tc.x) + ")";
      token_json = "{\"t\": " + std::to_string(tc.t) + ", \"y\": " + std::to_string(tc.y) +
                   ", \"x\": " + std::to_string(tc.x) + "}";
    } else {
      const int64_t t = s - g.video_tokens();
      token_text = "text " + std::to_string(t) + (t >= g.text_length ? " (padding)" : "");
      token_json = "{\"text\": " + std::to_string(t) + "}";
    }
  }
  const char* axis_names = ndim == 4 ? "bhsd" : (ndim == 3 ? "bhs" : nullptr);
  std::string index_text = "(";
  for (size_t d = 0; d < index.size(); ++d) {
    if (d) index_text += ", ";
    if (axis_names) index_text += std::string(1, axis_names[d]) + " ";
    index_text += std::to_string(index[d]);
  }
  index_text += ")";

  if (args.has("--json")) {
    std::string j = "{\"a\": \"" + json_escape(pos[0]) + "\", \"b\": \"" + json_escape(pos[1]) +
                    "\", \"shape\": [";
    for (size_t d = 0; d < ndim; ++d) j += (d ? ", " : "") + std::to_string(a.shape[d]);
    j += "], \"dtype_a\": \"" + json_escape(a.dtype) + "\", \"dtype_b\": \"" +
         json_escape(b.dtype) + "\", \"elements\": " + std::to_string(n) +
         ", \"atol\": " + json_num(atol) + ", \"rtol\": " + json_num(rtol) +
         ", \"max_abs_error\": " + json_num(max_abs) + ", \"max_rel_error\": " + json_num(max_rel) +
         ", \"out_of_tolerance\": " + std::to_string(bad) +
         ", \"nonfinite_mismatches\": " + std::to_string(nonfinite_bad);
    if (worst >= 0) {
      j += ", \"worst\": {\"flat\": " + std::to_string(worst) + ", \"index\": [";
      for (size_t d = 0; d < index.size(); ++d) j += (d ? ", " : "") + std::to_string(index[d]);
      j += "], \"a\": " + json_num(a.data[static_cast<size_t>(worst)]) +
           ", \"b\": " + json_num(b.data[static_cast<size_t>(worst)]);
      if (!token_json.empty()) j += ", \"token\": " + token_json;
      j += "}";
    }
    if (per_head) {
      j += ", \"per_head\": [";
      for (int64_t h = 0; h < heads; ++h) {
        const HeadError& e = head_errors[static_cast<size_t>(h)];
        j += (h ? ", " : "") + std::string("{\"b\": ") + std::to_string(h / a.shape[1]) +
             ", \"h\": " + std::to_string(h % a.shape[1]) +
             ", \"max_abs_error\": " + json_num(e.max_abs) +
             ", \"out_of_tolerance\": " + std::to_string(e.out_of_tolerance) + "}";
      }
      j += "]";
    }
    j += std::string(", \"ok\": ") + (ok ? "true" : "false") + "}";
    std::printf("%s\n", j.c_str());
    return ok ? 0 : 1;
  }

  std::printf("A: %s  %s %s\nB: %s  %s %s\n", pos[0].c_str(), a.dtype.c_str(),
              shape_to_string(a.shape).c_str(), pos[1].c_str(), b.dtype.c_str(),
              shape_to_string(b.shape).c_str());
  std::printf("elements %lld, atol %s, rtol %s\n", static_cast<long long>(n), num(atol).c_str(),
              num(rtol).c_str());
  std::printf("max abs error: %s\n", num(max_abs).c_str());
  std::printf("max rel error: %s (over b != 0; inf if a != b where b == 0)\n", num(max_rel).c_str());
  if (worst >= 0) {
    std::printf("worst element: flat %lld, index %s%s%s: a = %s, b = %s\n",
                static_cast<long long>(worst), index_text.c_str(),
                token_text.empty() ? "" : ", ", token_text.c_str(),
                num(a.data[static_cast<size_t>(worst)]).c_str(),
                num(b.data[static_cast<size_t>(worst)]).c_str());
  }
  std::printf("out of tolerance: %lld of %lld (%lld NaN/inf mismatches)\n",
              static_cast<long long>(bad), static_cast<long long>(n),
              static_cast<long long>(nonfinite_bad));
  if (per_head && heads > 0) {
    std::printf("max abs error per head:\n");
    for (int64_t h = 0; h < heads; ++h) {
      const HeadError& e = head_errors[static_cast<size_t>(h)];
      std::printf("  b %lld h %lld: %s%s\n", static_cast<long long>(h / a.shape[1]),
                  static_cast<long long>(h % a.shape[1]), num(e.max_abs).c_str(),
                  e.out_of_tolerance
                      ? ("  (" + std::to_string(e.out_of_tolerance) + " out of tolerance)").c_str()
                      : "");
    }
  }
  std::printf("%s\n", ok ? "OK: all elements within tolerance" : "FAIL: elements out of tolerance");
  return ok ? 0 : 1;
}

}  // namespace

STA_COMMAND("compare", "error statistics between two .npy arrays; exit 1 if out of tolerance",
             kHelp, run_compare);

}  // namespace sta::cli
