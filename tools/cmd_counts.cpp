// `sta counts`: dense / mixed / empty block counts of one head's video attention map.
#include <cmath>
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/json.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta counts: classify every (query block, key block) of the video attention map
as dense (all pairs allowed), mixed (some) or empty (none), for one head.

Usage: sta counts [common options] [--order tiled|raster] [--block Bq,Bk] [--torus] [--json]

)") + options_help(counts_options()) + R"(
)";

struct HeadResult {
  Mask mask;
  BlockStats stats;
};

// The members of one head (or of all heads summed, with `mask` empty): mask and effective
// window, then the counts.
void head_fields(JsonWriter& j, const Mask* mask, const BlockStats& stats, const Geometry& g) {
  if (mask) {
    j.field("mask", to_string(*mask));
    if (mask->kind == MaskKind::kSta) {
      const Extent3 e = effective_sta_window(mask->window, g.tiles());
      j.field("effective_window_tiles", std::vector<int64_t>{e.t, e.h, e.w});
    }
  }
  const BlockCounts& c = stats.counts;
  j.field("dense", c.dense).field("mixed", c.mixed).field("empty", c.empty).field("total", c.total());
  j.field("sparsity", stats.sparsity()).field("allowed_pairs", stats.allowed_pairs);
}

int run_counts(int argc, char** argv) {
  const OptionTable table = command_table(counts_options(), true);
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  if (!args.positionals().empty())
    throw Error("unexpected argument '" + args.positionals()[0] + "' (see sta counts --help)");
  // counts orders blocks with --order; --layout (the order of tensors in a file) has no
  // meaning here and is refused rather than silently ignored.
  refuse_unused(args, {"--layout"}, "sta counts",
                "expected --order tiled|raster for the block order (--layout orders tensors)");
  refuse_unused(args, {"--text-length", "--text-pad"}, "sta counts",
                "it counts the blocks of the video attention map (text keys are always dense)");
  CommonOptions c = parse_common(args);
  BlockPartition part;
  part.order = parse_layout(args.get("--order", "tiled"), "--order");
  if (args.has("--block")) {
    const Extent3 b = parse_extent3(args.get("--block"), "--block");
    if (b.t != 1) throw Error("--block: '" + args.get("--block") + "', expected Bq,Bk");
    part.block_q = b.h;
    part.block_k = b.w;
  }
  {
    // Raster order costs O(video tokens x key blocks) per head: bounded before it starts.
    const BlockPartition r = resolve_partition(c.geometry, part);
    if (r.order == Layout::kRaster) {
      const double v = static_cast<double>(c.geometry.video_tokens());
      check_work(v * std::ceil(v / static_cast<double>(r.block_k)) * static_cast<double>(c.masks.size()),
                 "--block", "raster classification with key blocks of " + std::to_string(r.block_k));
    }
  }
  std::vector<HeadResult> heads;
  for (Mask m : c.masks) {
    if (args.has("--torus") && m.kind == MaskKind::kSwa) m.kind = MaskKind::kSwaTorus;
    heads.push_back({m, classify_blocks(c.geometry, m, part)});
  }
  const Geometry& g = c.geometry;
  const BlockPartition resolved = resolve_partition(g, part);
  const int64_t bq = resolved.block_q, bk = resolved.block_k;
  if (args.has("--json")) {
    BlockCounts sum;
    int64_t allowed = 0, total_pairs = 0;
    for (const auto& h : heads) {
      sum += h.stats.counts;
      // Pairs of several heads can exceed int64 (2^62 each on a 2^31-token canvas).
      if (__builtin_add_overflow(allowed, h.stats.allowed_pairs, &allowed) ||
          __builtin_add_overflow(total_pairs, h.stats.total_pairs, &total_pairs))
        throw Error("--mask: " + std::to_string(heads.size()) + " heads of " +
                    std::to_string(h.stats.total_pairs) + " pairs overflow 64-bit totals; "
                    "expected fewer heads or a smaller --video");
    }
    BlockStats all{sum, allowed, total_pairs};
    auto extent = [](const Extent3& e) { return std::vector<int64_t>{e.t, e.h, e.w}; };
    JsonWriter j;
    j.begin_object().field("video", extent(g.canvas)).field("tile", extent(g.tile));
    j.field("tiles", extent(g.tiles())).field("ragged", g.ragged).field("order", to_string(part.order));
    j.field("block", std::vector<int64_t>{bq, bk});
    if (heads.size() == 1) {
      head_fields(j, &heads[0].mask, heads[0].stats, g);
    } else {
      head_fields(j, nullptr, all, g);
      j.key("heads").begin_array();
      for (const HeadResult& h : heads) {
        j.begin_object();
        head_fields(j, &h.mask, h.stats, g);
        j.end_object();
      }
      j.end_array();
    }
    const std::string out = j.end_object().str();
    std::printf("%s", out.c_str());
    return 0;
  }
  std::printf("video %s tokens, tile %s tokens -> %s tiles%s (%lld per head), %s order, "
              "blocks %lldx%lld\n",
              to_string(g.canvas).c_str(), to_string(g.tile).c_str(),
              to_string(g.tiles()).c_str(), g.ragged ? " (ragged edges)" : "",
              static_cast<long long>(g.num_tiles()),
              to_string(part.order).c_str(), static_cast<long long>(bq),
              static_cast<long long>(bk));
  std::printf("%-4s %-22s %12s %12s %14s %14s %9s\n", "head", "mask", "dense", "mixed",
              "empty", "total", "sparsity");
  for (size_t i = 0; i < heads.size(); ++i) {
    const auto& c2 = heads[i].stats.counts;
    std::string name = to_string(heads[i].mask);
    if (heads[i].mask.kind == MaskKind::kSta)
      name += " (eff " + to_string(effective_sta_window(heads[i].mask.window, g.tiles())) + ")";
    std::printf("%-4zu %-22s %12lld %12lld %14lld %14lld %8.4f%%\n", i, name.c_str(),
                static_cast<long long>(c2.dense), static_cast<long long>(c2.mixed),
                static_cast<long long>(c2.empty), static_cast<long long>(c2.total()),
                100.0 * heads[i].stats.sparsity());
  }
  return 0;
}

STA_COMMAND("counts", "dense / mixed / empty block counts of a mask", std::string(kHelp) + common_help(),
            run_counts);

}  // namespace
}  // namespace sta::cli
