// `sta strategy`: what a FastVideo mask strategy file contains and how sparse it makes
// attention on a canvas.
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/error.hpp"
#include "sta/json.hpp"
#include "sta/strategy.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta strategy: summarise a FastVideo mask strategy file.

Usage: sta strategy FILE [--video T,H,W] [--tile t,h,w] [--json]

FILE is a FastVideo mask strategy (FASTVIDEO_ATTENTION_CONFIG, e.g. FastVideo's
assets/mask_strategy_hunyuan.json): one JSON object whose keys are "t_l_h" (denoising step,
layer, head; non-negative integers) and whose values are STA windows [kt, kh, kw] in TILES:

    {"0_0_0": [5, 6, 10], "0_0_1": [3, 3, 3], ..., "49_59_23": [1, 6, 10]}

The reader is strict: anything else (duplicate keys, trailing commas, 5.0 or "5", windows
< 1, not exactly 3 entries, keys not of the form int_int_int, trailing characters) is an
error naming the file, line:column (byte) and the key; exit code 2.

Prints: the number of keys; the steps, layers and heads present and whether every
step x layer x head has a key; the window histogram (window -> keys, with the effective
window STA covers on this canvas); the sparsity per step and overall.

)") + options_help(strategy_options()) + R"(
Sparsity is the fraction of the video attention map masked out (text tokens not counted):
  sparsity = 1 - sum over keys of prod(effective window) / (keys x tiles in the grid)
where the effective window is what the clamped STA mask covers per axis (SPEC section 2:
odd K -> K tiles, even K -> K+1, anything larger than the axis -> the axis). Every query
tile sees the same number of key tiles under STA, so this is exactly the block sparsity
that `sta counts --strategy FILE --step S --layer L` reports, averaged over heads.
FastVideo's own formula uses the raw product of the window as written; it is printed as
"fastvideo" (sparsity_fastvideo in JSON) and equals ours when every window is odd and fits
the grid, as in FastVideo's Hunyuan file.

To use one step and layer of a file as per-head masks in other commands, pass
--strategy FILE --step S --layer L instead of --mask (see the common options).
)";

int run_strategy(int argc, char** argv) {
  const OptionTable& table = strategy_options();
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  if (args.positionals().empty())
    throw Error("FILE: missing; usage: sta strategy FILE [--video T,H,W] [--tile t,h,w] [--json]");
  if (args.positionals().size() > 1)
    throw Error("unexpected argument '" + args.positionals()[1] + "' (see sta strategy --help)");
  Geometry g;
  if (args.has("--video")) g.canvas = parse_extent3(args.get("--video"), "--video");
  if (args.has("--tile")) g.tile = parse_extent3(args.get("--tile"), "--tile");
  g.validate();

  const MaskStrategy s = read_mask_strategy(args.positionals()[0]);
  const auto steps = strategy_steps(s);
  const auto layers = strategy_layers(s);
  const auto heads = strategy_heads(s);
  const bool complete = strategy_is_complete(s);
  const auto histogram = strategy_window_histogram(s);
  const auto per_step = strategy_sparsity_per_step(s, g);
  const StrategySparsity all = strategy_sparsity(s, g);
  const Extent3 grid = g.tiles();
  const int64_t keys = static_cast<int64_t>(s.entries.size());

  if (args.has("--json")) {
    JsonWriter j;
    j.begin_object().field("file", s.source).field("keys", keys);
    j.field("steps", steps).field("layers", layers).field("heads", heads).field("complete", complete);
    j.field("video", g.canvas.list()).field("tile", g.tile.list()).field("tiles", grid.list());
    j.key("histogram").begin_array();
    for (const auto& h : histogram) {
      j.begin_object().field("window", h.window.list());
      j.field("effective", effective_sta_window(h.window, grid).list()).field("keys", h.count).end_object();
    }
    j.end_array().key("per_step").begin_array();
    for (const auto& p : per_step) {
      j.begin_object().field("step", p.step).field("keys", p.keys).field("sparsity", p.sparsity);
      j.field("sparsity_fastvideo", p.sparsity_raw).end_object();
    }
    j.end_array().field("sparsity", all.sparsity).field("sparsity_fastvideo", all.sparsity_raw);
    const std::string out = j.end_object().str();
    std::printf("%s", out.c_str());
    return 0;
  }

  std::printf("mask strategy '%s': %lld keys\n", s.source.c_str(), static_cast<long long>(keys));
  std::printf("  steps  %5zu  (%s)\n", steps.size(), format_index_set(steps).c_str());
  std::printf("  layers %5zu  (%s)\n", layers.size(), format_index_set(layers).c_str());
  std::printf("  heads  %5zu  (%s)\n", heads.size(), format_index_set(heads).c_str());
  std::printf("  %s: %zu x %zu x %zu = %.0f step x layer x head cells, %lld keys\n",
              complete ? "complete" : "INCOMPLETE", steps.size(), layers.size(), heads.size(),
              static_cast<double>(steps.size()) * static_cast<double>(layers.size()) *
                  static_cast<double>(heads.size()),
              static_cast<long long>(keys));
  std::printf("canvas %s tokens, tile %s tokens -> %s tiles (%lld per head)\n\n",
              to_string(g.canvas).c_str(), to_string(g.tile).c_str(), to_string(grid).c_str(),
              static_cast<long long>(grid.volume()));

  std::printf("window histogram (tiles as written; effective = what STA covers on this grid):\n");
  std::printf("  %-14s %-14s %10s %8s\n", "window", "effective", "keys", "share");
  for (const auto& h : histogram)
    std::printf("  %-14s %-14s %10lld %7.2f%%\n", to_string(h.window).c_str(),
                to_string(effective_sta_window(h.window, grid)).c_str(),
                static_cast<long long>(h.count), 100.0 * h.count / keys);

  bool differ = all.sparsity != all.sparsity_raw;
  for (const auto& p : per_step) differ = differ || p.sparsity != p.sparsity_raw;
  std::printf("\nsparsity per step (1 - sum prod(effective window) / (keys x %lld tiles)):\n",
              static_cast<long long>(grid.volume()));
  std::printf("  %-6s %10s %10s%s\n", "step", "keys", "sparsity", differ ? "  fastvideo" : "");
  auto row = [&](const std::string& label, const StrategySparsity& p) {
    std::printf("  %-6s %10lld %9.4f%%", label.c_str(), static_cast<long long>(p.keys),
                100.0 * p.sparsity);
    if (differ) std::printf(" %9.4f%%", 100.0 * p.sparsity_raw);
    std::printf("\n");
  };
  for (const auto& p : per_step) row(std::to_string(p.step), p);
  row("all", all);
  if (differ)
    std::printf("fastvideo = FastVideo's formula with the raw window product; it differs here "
                "because some window is even or larger than the grid.\n");
  return 0;
}

STA_COMMAND("strategy", "summarise a FastVideo mask strategy (t_l_h -> STA window) file",
            kHelp, run_strategy);

}  // namespace
}  // namespace sta::cli
