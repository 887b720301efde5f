// `sta golden` and `sta verify`: golden outputs for GPU ports, and the check that a golden
// folder is intact and reproducible. Thin: parse, check the request against this machine's
// limits, call the library's write_golden_folder / verify_golden_folder (src/formats/golden_folder.cpp),
// print.
#include <omp.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/error.hpp"
#include "sta/golden.hpp"

namespace sta::cli {
namespace {

const std::string kGoldenHelp = std::string(R"(sta golden: write trusted inputs and outputs for checking a port of STA.

Usage: sta golden --preset NAME --dir DIR [--seed N] [--round none|bf16|fp16]
                  [--precision fp32|bf16] [--grad] [--force]
       sta golden --dir DIR [common options] [--batch B] [--heads H] [--dim D]
                  [--backend reference|natten|sta|dense] [--seed N] [--round R]
                  [--precision P] [--grad] [--force]
       sta golden --list

Writes DIR/q.npy, k.npy, v.npy ([B,H,S,D] float32, approximately N(0,1), the same bits on
every platform for a given seed), out.npy ([B,H,S,D] float32), lse.npy ([B,H,S] float32,
natural log) and DIR/manifest.json: shapes, layout, tile, per-head windows (as given and
effective), text length and padding, scale, dtype and rounding, seed, backend, library
version, suggested tolerances (SPEC 6) and the SHA-256 of each file. The manifest is written
last: a folder with a manifest is complete.

)") + options_help(golden_options()) + R"(
Check a port: load q, k, v (convert to your dtype), run your kernel with the manifest's
windows, compare with out.npy and lse.npy: `sta compare mine.npy DIR/out.npy --atol X`
with X from manifest "tolerances". See examples/.

)" + common_help();

const std::string kVerifyHelp = std::string(R"(sta verify: check a golden folder written by `sta golden`; trusts nothing in it.

Usage: sta verify DIR [--hashes-only] [--threads N]

)") + options_help(verify_options()) + R"(

1. every file is a regular file of exactly the size its shape needs (checked before
   hashing), with golden's .npy header and the manifest's SHA-256;
2. the manifest is rebuilt from its primary fields (preset or custom problem, seed,
   rounding, precision) and every other field must equal what `sta golden` writes: tiles,
   effective masks, scale, tolerances (SPEC 6 for the rounding and precision; SPEC 8 for
   gradients), block counts, file shapes and sizes (gemm and cpu are taken as recorded);
3. q, k, v (and dout) against the generator for the seed and rounding (bit for bit), then
   out and lse recomputed head by head with the recorded backend and precision, and the
   gradients of a --grad folder (also head by head), within those tolerances (step 3 is
   skipped with --hashes-only).
Exit code 0 when everything holds, 1 when something does not, 2 on a malformed folder.
)";

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

int run_golden(int argc, char** argv) {
  const OptionTable table = command_table(golden_options(), true);
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  if (args.has("--list")) {
    std::printf("%-10s %-22s %6s %8s %5s %-10s %s\n", "preset", "video / tile", "heads", "S", "D",
                "backend", "description");
    for (const auto& p : golden_presets())
      std::printf("%-10s %-22s %6lld %8lld %5lld %-10s %s\n", p.name.c_str(),
                  (to_string(p.options.geometry.canvas) + " / " + to_string(p.options.geometry.tile)).c_str(),
                  (long long)p.shape.heads, (long long)p.shape.seq, (long long)p.shape.dim,
                  to_string(p.backend).c_str(), p.description.c_str());
    return 0;
  }
  if (!args.positionals().empty())
    throw Error("unexpected argument '" + args.positionals()[0] + "' (see sta golden --help)");
  const std::string dir = args.get("--dir");
  if (dir.empty()) throw Error("--dir: missing; expected the output folder");
  GoldenProblem p;
  if (args.has("--preset")) {
    for (const char* o : {"--video", "--tile", "--mask", "--text-length", "--text-pad", "--layout",
                          "--ragged", "--batch", "--heads", "--dim", "--backend", "--strategy",
                          "--step", "--layer"})
      if (args.has(o))
        throw Error(std::string(o) + ": not allowed with --preset (a preset fixes the problem)");
    p = golden_problem(find_golden_preset(args.get("--preset")), 0);
  } else {
    const CommonOptions c = parse_common(args);
    p.options.geometry = c.geometry;
    p.options.masks = c.masks;
    p.options.layout = c.layout;
    p.shape.batch = args.get_int("--batch", 1, 1, 1 << 20);
    // Several --mask (or a --strategy) without --heads: one head per mask (issue 11).
    const int64_t mask_heads = static_cast<int64_t>(c.masks.size());
    p.shape.heads = args.get_int("--heads", mask_heads, 1, 1 << 20);
    p.shape.dim = args.get_int("--dim", 128, 1, 1 << 16);
    p.shape.seq = c.geometry.seq_len();
    p.backend = parse_backend(args.get("--backend", "reference"));
    p.description = "custom problem";
    check_head_masks(c, p.shape.heads);
  }
  p.seed = static_cast<uint64_t>(args.get_int("--seed", 0, 0, INT64_MAX));
  p.options.rounding = parse_rounding(args.get("--round", "none"), "--round");
  p.options.precision = parse_precision(args.get("--precision", "fp32"), "--precision");
  // Sizes are checked before anything is allocated or written.
  const int64_t elements = checked_product({p.shape.batch, p.shape.heads, p.shape.seq, p.shape.dim},
                                           "--batch/--heads/--dim", "[B,H,S,D]");
  const std::string problem = "the golden problem [B,H,S,D] = [" + std::to_string(p.shape.batch) + "," +
                              std::to_string(p.shape.heads) + "," + std::to_string(p.shape.seq) + "," +
                              std::to_string(p.shape.dim) + "]";
  const char* size_arg = args.has("--preset") ? "--preset" : "--batch/--heads/--dim";
  // The writer goes head by head (write_golden_folder): it holds one head's q, k, v, out (and
  // with --grad dout, dq, dk, dv) and the kernels' copies of them (packed K and V, inputs
  // retiled from raster order, the backward's packed operands): at most ~12 [S, D] planes, ~20
  // with --grad, whatever the batch and heads (verify reads the files head by head too).
  const bool grad = args.has("--grad");
  const double plane_bytes = 4.0 * static_cast<double>(p.shape.seq) * static_cast<double>(p.shape.dim);
  check_memory((grad ? 20.0 : 12.0) * plane_bytes, size_arg, problem + (grad ? " with --grad" : ""));
  GoldenWriteOptions write;
  write.force = args.has("--force");
  write.grad = grad;
  validate_golden_problem(p, write);
  check_attention_cost(p.shape, p.options, p.backend, 3.0 * 4.0 * static_cast<double>(elements), size_arg);

  if (exists(dir)) {
    struct stat st {};
    ::stat(dir.c_str(), &st);
    if (!S_ISDIR(st.st_mode)) throw Error("--dir: '" + dir + "' exists and is not a folder");
  } else if (::mkdir(dir.c_str(), 0755) != 0) {
    throw Error("--dir: cannot create folder '" + dir + "'");
  }
  std::vector<PathArg> outputs;
  for (const char* n : kGoldenFiles) outputs.push_back({"--dir", dir + "/" + n});
  outputs.push_back({"--dir", dir + "/manifest.json"});
  if (write.grad) {
    for (const char* n : kGoldenGradFiles) outputs.push_back({"--dir", dir + "/" + n});
  }
  check_outputs(outputs, {}, write.force);

  const double gb = 4.0 * ((write.grad ? 8 : 4) * p.shape.elements()) / 1e9;
  std::fprintf(stderr, "sta golden: %s, [B,H,S,D] = [%lld,%lld,%lld,%lld], ~%.2f GB on disk\n",
               p.preset.c_str(), (long long)p.shape.batch, (long long)p.shape.heads,
               (long long)p.shape.seq, (long long)p.shape.dim, gb);
  const HeadProgress progress(p.backend);
  const AttentionStats st = write_golden_folder(dir, p, write, progress).stats;
  const double s = progress.seconds();
  std::printf("sta golden: wrote %s (preset %s, backend %s, %s) in %.2f s\n", dir.c_str(),
              p.preset.c_str(), to_string(p.backend).c_str(), st.isa.c_str(), s);
  return 0;
}

int run_verify(int argc, char** argv) {
  const OptionTable& table = verify_options();
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  if (args.positionals().size() != 1) throw Error("DIR: expected exactly one golden folder (see sta verify --help)");
  const int threads = static_cast<int>(args.get_int("--threads", 0, 1, 4096));
  if (threads > 0) omp_set_num_threads(threads);
  GoldenReport report;
  report.on_line = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
  return verify_golden_folder(args.positionals()[0], args.has("--hashes-only"), &report) ? 0 : 1;
}

STA_COMMAND("golden", "write golden q/k/v/out/lse .npy files and a manifest for GPU ports",
            kGoldenHelp, run_golden);
STA_COMMAND("verify", "check a golden folder: hashes, inputs, recomputed outputs", kVerifyHelp,
            run_verify);

}  // namespace
}  // namespace sta::cli
