#include "cli.hpp"


#include <algorithm>
#include <cmath>
#include <cstdio>

#include "sta/error.hpp"
#include "sta/file_io.hpp"
#include "sta/json.hpp"
#include "sta/strategy.hpp"

namespace sta::cli {

Args::Args(int argc, char** argv, std::vector<std::string> flags) {
  // Common flags take no value in every subcommand (a command that does not know them
  // still rejects them by name through check_known).
  for (const char* f : kCommonFlags) flags.push_back(f);
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        options_.emplace_back(a.substr(0, eq), a.substr(eq + 1));
      } else if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
        options_.emplace_back(a, "");
      } else {
        // A value never starts with "--": `--scale --force` is a missing value, not "--force".
        if (i + 1 >= argc || std::string(argv[i + 1]).compare(0, 2, "--") == 0)
          throw Error(a + ": missing value");
        options_.emplace_back(a, argv[++i]);
      }
    } else if (a == "-h") {
      options_.emplace_back("--help", "");
    } else {
      positionals_.push_back(a);
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  std::string v = fallback;
  for (const auto& [k, val] : options_)
    if (k == name) v = val;
  return v;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [k, val] : options_)
    if (k == name) out.push_back(val);
  return out;
}

bool Args::has(const std::string& name) const {
  return std::any_of(options_.begin(), options_.end(),
                     [&](const auto& kv) { return kv.first == name; });
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  if (!has(name)) return fallback;
  const std::string s = get(name);
  const std::string expected =
      "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    throw Error(name + ": '" + s + "' is not an integer; " + expected);
  }
  if (used != s.size()) throw Error(name + ": '" + s + "' is not an integer; " + expected);
  if (v < lo || v > hi) throw Error(name + ": " + s + " is out of range; " + expected);
  return v;
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string s = get(name);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error(name + ": '" + s + "' is not a number");
  }
  if (used != s.size() || !std::isfinite(v)) throw Error(name + ": '" + s + "' is not a finite number");
  return v;
}

void Args::check_known(const std::vector<std::string>& known) const {
  for (const auto& [k, v] : options_)
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw Error(k + ": unknown option (see --help)");
}

std::vector<std::string> common_option_names() {
  return {"--video", "--tile",  "--mask",   "--text-length", "--text-pad",
          "--layout", "--ragged", "--strategy", "--step", "--layer", "--help"};
}

namespace {

// --strategy FILE --step S --layer L: one STA mask per head from a FastVideo mask strategy
// (sta/strategy.hpp). Each bad or missing piece is reported against its own option.
std::vector<Mask> strategy_masks_from_args(const Args& args) {
  if (args.get_all("--strategy").size() > 1)
    throw Error("--strategy: given more than once; give one mask strategy file");
  if (args.has("--mask"))
    throw Error("--strategy: cannot be combined with --mask (the file gives one mask per head)");
  MaskStrategy strategy;
  try {
    strategy = read_mask_strategy(args.get("--strategy"));
  } catch (const Error& e) {
    throw Error(std::string("--strategy: ") + e.what());
  }
  const std::string file = "'" + strategy.source + "'";
  const std::vector<int64_t> steps = strategy_steps(strategy);
  const std::vector<int64_t> layers = strategy_layers(strategy);
  if (!args.has("--step"))
    throw Error("--step: missing; --strategy needs --step S (" + file + " has steps " +
                format_index_set(steps) + ")");
  if (!args.has("--layer"))
    throw Error("--layer: missing; --strategy needs --layer L (" + file + " has layers " +
                format_index_set(layers) + ")");
  const int64_t step = args.get_int("--step", 0, 0, kMaxStrategyValue);
  const int64_t layer = args.get_int("--layer", 0, 0, kMaxStrategyValue);
  if (!std::binary_search(steps.begin(), steps.end(), step))
    throw Error("--step: " + std::to_string(step) + " is not in " + file + " (steps " +
                format_index_set(steps) + ")");
  if (!std::binary_search(layers.begin(), layers.end(), layer))
    throw Error("--layer: " + std::to_string(layer) + " is not in " + file + " (layers " +
                format_index_set(layers) + ")");
  try {
    return strategy_masks(strategy, step, layer);
  } catch (const Error& e) {
    throw Error(std::string("--strategy: ") + e.what());
  }
}

}  // namespace

CommonOptions parse_common(const Args& args, const std::string& default_mask) {
  CommonOptions c;
  if (args.has("--video")) c.geometry.canvas = parse_extent3(args.get("--video"), "--video");
  if (args.has("--tile")) c.geometry.tile = parse_extent3(args.get("--tile"), "--tile");
  c.geometry.ragged = args.has("--ragged");
  const int64_t kMax = int64_t{1} << 31;
  c.geometry.text_pad = args.get_int("--text-pad", 0, 0, kMax);
  c.geometry.text_length = args.get_int("--text-length", 0, 0, kMax);
  if (args.has("--text-length") && !args.has("--text-pad"))
    throw Error("--text-length: needs --text-pad P (text slots after the video, e.g. 256)");
  c.layout = parse_layout(args.get("--layout", "tiled"), "--layout");
  if (args.has("--strategy")) {
    c.masks = strategy_masks_from_args(args);
  } else if (args.has("--step") || args.has("--layer")) {
    throw Error(std::string(args.has("--step") ? "--step" : "--layer") +
                ": needs --strategy FILE (a FastVideo mask strategy)");
  }
  for (const auto& m : args.get_all("--mask")) c.masks.push_back(parse_mask(m, "--mask"));
  if (c.masks.empty()) c.masks.push_back(parse_mask(default_mask, "--mask"));
  c.geometry.validate();
  for (const auto& m : c.masks) validate_mask(m, c.geometry, "--mask");
  return c;
}

std::string common_help() {
  return R"(Common options:
  --video T,H,W        canvas in tokens (frames, height, width); H,W for a 2D image
                       [default 30,48,80, HunyuanVideo 720p]
  --tile t,h,w         tile in tokens [default 6,8,8, FastVideo's kernel tile]
  --mask M             full | sta:Kt,Kh,Kw (window in TILES) | swa:Wt,Wh,Ww (window in
                       TOKENS, NATTEN) | swa-torus:Wt,Wh,Ww (wrap-around, Theorem 3.1);
                       give once for all heads or once per head, in head order
  --text-length N      real text tokens after the video [default 0]
  --text-pad P         text slots after the video, S = T*H*W + P (FastVideo: 256) [default 0]
  --layout tiled|raster  token order of the video part [default tiled]
  --ragged             allow a canvas axis not divisible by the tile: ceil(L/t) tiles, the
                       last one shorter (SPEC 1 extension; sta masks stay dense/empty)
  --strategy FILE      FastVideo mask strategy JSON ("t_l_h": [kt, kh, kw] in TILES); with
  --step S --layer L   one sta mask per head, heads 0..H-1 of denoising step S, layer L
                       (instead of --mask; see `sta strategy --help`)
)";
}

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> commands;
  return commands;
}

std::string json_escape(const std::string& s) {
  const std::string quoted = json_quote(s);
  return quoted.substr(1, quoted.size() - 2);
}

void write_file_atomic(const std::string& path, const std::string& contents, bool force,
                       const std::string& arg) {
  sta::write_file_atomic(path, contents, force, arg);
}

}  // namespace sta::cli
