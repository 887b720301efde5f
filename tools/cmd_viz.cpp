// `sta viz blocks|window|recall`: the teaching pictures of include/sta/viz.hpp, as SVG files.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/error.hpp"
#include "sta/npy.hpp"
#include "sta/viz.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta viz: draw block classification and windows as SVG pictures (open them in a browser).

Usage: sta viz blocks [common options] [--compare M] [--order O] [--block Bq,Bk]
                      [--range q0:q1,k0:k1] [--max-cells N] --out FILE.svg [--force]
       sta viz window [common options] [--query t,y,x] --out FILE.svg [--force]
       sta viz recall --q Q.npy --k K.npy [common options] [--batch B] [--head H]
                      [--query t,y,x] [--scale S] [--heat log|linear] --out FILE.svg [--force]

blocks   the block map of the video attention map: query blocks down, key blocks across,
         each cell dense (blue), mixed (orange) or empty (grey), counts and sparsity above.
         Several panels side by side: give --mask twice, or --compare M, e.g. STA against
         SWA at a similar window; or one mask with --order twice (raster vs tiled order).
)") + options_help(viz_blocks_options()) + R"(
window   the canvas seen from one query token: its tile, the key tiles it attends (for
         STA the effective window: an even K covers K+1 tiles), the window outline, and at
         the borders the dashed centred window that STA / SWA shift instead of shrinking.
         3D canvases get one panel per frame of tiles. Uses the first --mask. With --ragged
         the short edge tiles are drawn at their real size.
)" + options_help(viz_window_options()) + R"(
recall   where one query's attention mass falls: the softmax of scale * q.k over every
         valid key (full attention) as a heat map per frame (summed over frames beyond 16
         frames), the mask's window drawn over it, and the fraction of the mass inside it.
)" + options_help(viz_recall_options()) + R"(
Common to all:
)" + options_help(viz_output_options()) + "\n";

std::string require_out(const Args& args) {
  if (!args.has("--out") || args.get("--out").empty())
    throw Error("--out: missing; expected --out FILE.svg");
  // Checked before drawing: creatable, not an input, replaced only with --force.
  check_outputs({{"--out", args.get("--out")}},
                {{"--q", args.get("--q")}, {"--k", args.get("--k")}, {"--strategy", args.get("--strategy")}},
                args.has("--force"));
  return args.get("--out");
}

TokenCoord query_or_centre(const Args& args, const Geometry& g) {
  if (args.has("--query")) return parse_query_token(args.get("--query"), g, "--query");
  return {g.canvas.t / 2, g.canvas.h / 2, g.canvas.w / 2};
}

void write_svg(const Args& args, const std::string& out, const Svg& svg) {
  write_file_atomic(out, svg.str(), args.has("--force"), "--out");
  std::printf("wrote %s\n", out.c_str());
}

int run_blocks(const Args& args) {
  args.check_known(option_names(command_table(viz_blocks_options(), true, viz_output_options())));
  const std::string out = require_out(args);
  refuse_unused(args, {"--layout"}, "sta viz blocks", "expected --order tiled|raster per panel");
  CommonOptions c = parse_common(args);
  for (const auto& m : args.get_all("--compare")) c.masks.push_back(parse_mask(m, "--compare"));
  std::vector<Layout> orders;
  for (const auto& o : args.get_all("--order")) orders.push_back(parse_layout(o, "--order"));
  const size_t panels = std::max(c.masks.size(), orders.size());
  if (c.masks.size() != 1 && c.masks.size() != panels)
    throw Error("--mask: " + std::to_string(c.masks.size()) + " masks for " + std::to_string(panels) +
                " panels (--order given " + std::to_string(orders.size()) + " times); expected 1 or " +
                std::to_string(panels));
  if (!orders.empty() && orders.size() != 1 && orders.size() != panels)
    throw Error("--order: given " + std::to_string(orders.size()) + " times for " +
                std::to_string(panels) + " panels; expected once or once per panel");
  if (panels > 4) throw Error("--mask: " + std::to_string(panels) + " panels; at most 4");
  BlockPartition raster_part;
  raster_part.order = Layout::kRaster;
  if (args.has("--block")) {
    const Extent3 b = parse_extent3(args.get("--block"), "--block");
    if (b.t != 1) throw Error("--block: '" + args.get("--block") + "', expected Bq,Bk");
    raster_part.block_q = b.h;
    raster_part.block_k = b.w;
  }
  std::vector<BlockPanel> list;
  bool any_raster = false;
  for (size_t i = 0; i < panels; ++i) {
    const Layout order = orders.empty() ? Layout::kTiled : orders.size() == 1 ? orders[0] : orders[i];
    BlockPanel p;
    p.mask = c.masks.size() == 1 ? c.masks[0] : c.masks[i];
    if (order == Layout::kRaster) {
      p.partition = raster_part;
      any_raster = true;
    }
    list.push_back(p);
  }
  if (args.has("--block") && !any_raster)
    throw Error("--block: only raster-order panels take a block size (tiled order uses tiles); "
                "add --order raster");
  BlocksPictureOptions opt;
  opt.max_cells = args.get_int("--max-cells", 150, 8, 2000);
  if (args.has("--range")) opt.range = parse_block_range(args.get("--range"), "--range");
  opt.title = args.get("--title");
  const Svg svg = blocks_svg(c.geometry, list, opt);
  write_svg(args, out, svg);
  return 0;
}

int run_window(const Args& args) {
  args.check_known(option_names(command_table(viz_window_options(), true, viz_output_options())));
  const std::string out = require_out(args);
  const CommonOptions c = parse_common(args);
  if (c.masks.size() != 1)
    throw Error("--mask: viz window draws one mask; got " + std::to_string(c.masks.size()));
  const TokenCoord q = query_or_centre(args, c.geometry);
  write_svg(args, out, window_svg(c.geometry, c.masks[0], q));
  return 0;
}

std::string format_scale(double scale) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", scale);
  return buf;
}

int run_recall(const Args& args) {
  args.check_known(option_names(command_table(viz_recall_options(), true, viz_output_options())));
  const std::string out = require_out(args);
  if (!args.has("--q")) throw Error("--q: missing; expected --q Q.npy ([B,H,S,D] queries)");
  if (!args.has("--k")) throw Error("--k: missing; expected --k K.npy ([B,H,S,D] keys)");
  const CommonOptions c = parse_common(args);
  const Geometry& g = c.geometry;
  const TokenCoord query = query_or_centre(args, g);
  HeatScale heat = HeatScale::kLog;
  const std::string hs = args.get("--heat", "log");
  if (hs == "linear") heat = HeatScale::kLinear;
  else if (hs != "log") throw Error("--heat: '" + hs + "', expected log or linear");
  const NpyArray q = read_npy(args.get("--q"), "--q");
  if (q.shape.size() != 4)
    throw Error("--q: shape " + shape_to_string(q.shape) + ", expected [B,H,S,D]");
  const NpyArray k = read_npy(args.get("--k"), "--k");
  if (k.shape != q.shape)
    throw Error("--k: shape " + shape_to_string(k.shape) + ", expected the shape of --q " +
                shape_to_string(q.shape));
  const int64_t b = q.shape[0], h = q.shape[1], s = q.shape[2], d = q.shape[3];
  // An empty array (B, H, S or D = 0, legal .npy) has no head to draw.
  if (b < 1 || h < 1 || s < 1 || d < 1)
    throw Error("--q: shape " + shape_to_string(q.shape) +
                " has an empty axis; expected B, H, S, D >= 1 (a picture needs one head)");
  if (s != g.seq_len())
    throw Error("--q: sequence length " + std::to_string(s) + " in " + shape_to_string(q.shape) +
                ", expected " + std::to_string(g.seq_len()) + " = video " + to_string(g.canvas) +
                " (" + std::to_string(g.video_tokens()) + " tokens) + text pad " +
                std::to_string(g.text_pad) + " (check --video / --text-pad)");
  const int64_t batch = args.get_int("--batch", 0, 0, b - 1);
  const int64_t head = args.get_int("--head", 0, 0, h - 1);
  check_head_masks(c, h);
  const Mask& mask = mask_for_head(c.masks, head);
  const double scale = args.get_double("--scale", 1.0 / std::sqrt(static_cast<double>(d)));
  const int64_t offset = (batch * h + head) * s * d;
  const AttentionRecall r = attention_recall(g, c.layout, mask, q.data.data() + offset,
                                             k.data.data() + offset, d, scale, query);
  const std::string label = "q: " + args.get("--q") + ", k: " + args.get("--k") + ", batch " +
                            std::to_string(batch) + ", head " + std::to_string(head) + ", " +
                            to_string(c.layout) + " layout, scale " + format_scale(scale);
  write_svg(args, out, recall_svg(g, mask, r, heat, label));
  std::printf("window mass %.4f (%lld keys = %.2f%% of the video), text mass %.4f\n", r.window_mass,
              static_cast<long long>(r.window_keys), 100.0 * r.window_key_fraction, r.text_mass);
  return 0;
}

int run_viz(int argc, char** argv) {
  if (argc < 1)
    throw Error("missing picture: expected 'sta viz blocks|window|recall ...' (see sta viz --help)");
  const std::string what = argv[0];
  // The flags of every picture: each picture then checks its own names.
  const OptionTable all = join(join(viz_blocks_options(), viz_window_options()),
                               command_table(viz_recall_options(), true, viz_output_options()));
  Args args(argc - 1, argv + 1, flag_names(all));
  if (!args.positionals().empty())
    throw Error("unexpected argument '" + args.positionals()[0] + "' (see sta viz --help)");
  if (what == "blocks") return run_blocks(args);
  if (what == "window") return run_window(args);
  if (what == "recall") return run_recall(args);
  throw Error("unknown picture '" + what + "'; expected blocks, window or recall (see sta viz --help)");
}

STA_COMMAND("viz", "SVG pictures: block maps, a query's window, attention recall",
            std::string(kHelp) + common_help(), run_viz);

}  // namespace
}  // namespace sta::cli
