// `sta counts`: dense / mixed / empty block counts of one head's video attention map.
#include <cmath>
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/blocks.hpp"
#include "sta/error.hpp"

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

std::string head_json(const HeadResult& r, const Geometry& g) {
  const BlockCounts& c = r.stats.counts;
  std::string s = "{\"mask\": \"" + json_escape(to_string(r.mask)) + "\"";
  if (r.mask.kind == MaskKind::kSta)
    s += ", \"effective_window_tiles\": [" +
         to_string(effective_sta_window(r.mask.window, g.tiles())) + "]";
  char buf[256];
  std::snprintf(buf, sizeof buf,
                ", \"dense\": %lld, \"mixed\": %lld, \"empty\": %lld, \"total\": %lld, "
                "\"sparsity\": %.10g, \"allowed_pairs\": %lld}",
                static_cast<long long>(c.dense), static_cast<long long>(c.mixed),
                static_cast<long long>(c.empty), static_cast<long long>(c.total()),
                r.stats.sparsity(), static_cast<long long>(r.stats.allowed_pairs));
  return s + buf;
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
    std::string out = "{\"video\": [" + to_string(g.canvas) + "], \"tile\": [" +
                      to_string(g.tile) + "], \"tiles\": [" + to_string(g.tiles()) +
                      "], \"ragged\": " + (g.ragged ? "true" : "false") + ", \"order\": \"" + to_string(part.order) + "\", \"block\": [" +
                      std::to_string(bq) + "," + std::to_string(bk) + "]";
    if (heads.size() == 1) {
      const std::string h = head_json(heads[0], g);
      out += ", " + h.substr(1);
    } else {
      const std::string s = head_json({Mask::full(), all}, g);
      out += ", " + s.substr(s.find("\"dense\""), s.size() - 1 - s.find("\"dense\"")) +
             ", \"heads\": [";
      for (size_t i = 0; i < heads.size(); ++i) out += (i ? ", " : "") + head_json(heads[i], g);
      out += "]}";
    }
    std::printf("%s\n", out.c_str());
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
