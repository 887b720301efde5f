#pragma once
// The options of every `sta` command, declared once (issue 11): each command's parser takes
// its flags and its known names from its table here, and its --help prints the table. They
// live in a header rather than in tools/cmd_*.cpp so the tests (which do not link the
// commands) can check every table against the program's --help and parser.
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"

namespace sta::cli {

/// `sta run`'s own options (the common ones follow them).
inline const OptionTable& run_options() {
  static const OptionTable table = {
      {"--q", "FILE",
       "queries: float32 or float16 .npy (float64 is rounded to float32), C order, [B,H,S,D] "
       "with S = T*H*W + text-pad; video tokens in --layout order (required)"},
      {"--k", "FILE", "keys, as --q and of its shape (required)"},
      {"--v", "FILE", "values, as --q and of its shape (required)"},
      {"--out", "FILE", "output, float32 [B,H,S,D] (required)"},
      {"--lse", "FILE",
       "log-sum-exp per query, float32 [B,H,S], natural log; -inf for a query with no "
       "allowed key [default: not written]"},
      {"--stats", "FILE",
       "JSON: backend, precision, GEMM kernel, softmax isa, cpu, threads, the kernel's own "
       "block counters dense, mixed, empty (video blocks, summed over batches and heads), "
       "shape, masks, seconds, peak_rss_bytes [default: not written]"},
      {"--backend", "B",
       "reference (double accumulation, slow) | natten (tiled, masks mixed blocks) | sta "
       "(window tiles only; sta/full masks) | dense (full mask) [default: sta if every mask "
       "is sta or full, else natten]"},
      {"--round", "R",
       "none | bf16 | fp16: round inputs first, as a GPU run in that dtype would see them "
       "[default: none]"},
      {"--precision", "P",
       "fp32 | bf16: bf16 rounds q, k, v (and P before P V) to bf16 with fp32 accumulation, "
       "like FastVideo's GPU kernels; the same semantics on every CPU (bf16 instructions where "
       "present, an exact emulation elsewhere; results agree within fp32 rounding, except a P "
       "value at a bf16 rounding tie); tolerance against the fp32 reference 2e-2 "
       "[default: fp32]"},
      {"--scale", "X", "softmax scale, > 0 [default: 1/sqrt(D)]"},
      {"--threads", "N",
       "OpenMP threads [default: OpenMP's default, e.g. OMP_NUM_THREADS]; results are "
       "bit-identical for any N"},
      {"--force", "", "replace existing output files [default: refuse]"},
      {"--allow-nonfinite", "", "accept NaN/Inf in the inputs [default: an error naming the file]"},
      {"--progress", "", "show the per-head progress line on stderr [default: shown when stderr is a terminal]"},
      {"--quiet", "", "hide the per-head progress line on stderr"},
  };
  return table;
}

/// `sta grad`'s own options (the common ones follow them).
inline const OptionTable& grad_options() {
  static const OptionTable table = {
      {"--q", "FILE",
       "queries as for sta run: float32 or float16 .npy, [B,H,S,D] with S = T*H*W + "
       "text-pad, video tokens in --layout order (required)"},
      {"--k", "FILE", "keys, as --q and of its shape (required)"},
      {"--v", "FILE", "values, as --q and of its shape (required)"},
      {"--dout", "FILE", "gradient of the loss with respect to out, [B,H,S,D] (required)"},
      {"--dq", "FILE",
       "output, float32 [B,H,S,D] (required): the gradient of sum(out * dout) with respect "
       "to q (SPEC 8)"},
      {"--dk", "FILE", "output, the gradient for k, as --dq (required); padded text keys get 0"},
      {"--dv", "FILE", "output, the gradient for v, as --dq (required); padded text keys get 0"},
      {"--out", "FILE",
       "the forward's out [B,H,S,D] (sta run --out); give --out and --lse both or neither "
       "[default: recomputed with --backend]"},
      {"--lse", "FILE", "the forward's lse [B,H,S] (sta run --lse); with --out"},
      {"--stats", "FILE",
       "JSON: backend, precision, isa, gemm, threads, the backward kernel's own block counters dense, "
       "mixed, empty, shape, masks, seconds"},
      {"--backend", "B",
       "reference (double, slow; ignores --out/--lse) | natten | sta | dense [default: sta if "
       "every mask is sta or full, else natten]"},
      {"--round", "R", "none | bf16 | fp16: round q, k, v first, as sta run does [default: none]"},
      {"--precision", "P",
       "fp32 | bf16: bf16 rounds q, k, v, dout to bf16, and P (before dv = P^T dout) and "
       "dS = P (dP - Delta) (before dq, dk) too, with fp32 sums, as FlashAttention-2's and "
       "FlexAttention's bf16 kernels do (SPEC 8); an exact emulation on the fp32 kernels, the "
       "same on every CPU; pass the out and lse of sta run --precision bf16; tolerance "
       "against the fp32 reference 2e-2 x max(1, max |gradient|) [default: fp32]"},
      {"--scale", "X", "softmax scale, > 0 [default: 1/sqrt(D)]"},
      {"--threads", "N", "OpenMP threads; results are bit-identical for any N"},
      {"--force", "", "replace existing output files [default: refuse]"},
      {"--allow-nonfinite", "", "accept NaN/Inf in the inputs [default: an error naming the file]"},
      {"--progress", "", "show the per-head progress line on stderr [default: shown when stderr is a terminal]"},
      {"--quiet", "", "hide the per-head progress line on stderr"},
  };
  return table;
}

/// `sta golden`'s own options (the common ones follow them).
inline const OptionTable& golden_options() {
  static const OptionTable table = {
      {"--preset", "NAME",
       "a built-in problem (--list shows them); small presets are computed by the "
       "double-precision reference, large ones by the sta backend (tested against the "
       "reference)"},
      {"--dir", "DIR",
       "output folder, created if missing; existing golden files are not replaced without "
       "--force"},
      {"--seed", "N", "input generator seed [default 0]"},
      {"--precision", "P",
       "fp32 | bf16: the arithmetic of the outputs (SPEC 6's bf16 mode: q, k, v and P "
       "rounded to bf16, fp32 accumulation, as FastVideo's GPU kernels; the reference "
       "computes in double on the bf16-rounded inputs); recorded in the manifest with the "
       "bf16 tolerance 2e-2 [default fp32]"},
      {"--round", "R",
       "round q, k, v to bf16 or fp16 values first (stored rounded, as float32) to check a "
       "port that runs in that dtype [default none]"},
      {"--batch", "B", "custom problem: batch size [default 1]"},
      {"--heads", "H", "custom problem: heads [default 1]"},
      {"--dim", "D", "custom problem: head dimension [default 128]"},
      {"--backend", "B", "custom problems: who computes the outputs [default reference]"},
      {"--grad", "",
       "also write dout.npy (from the seed) and the gradients dq.npy, dk.npy, dv.npy of "
       "sum(out * dout) (SPEC 8; in --precision's mode: fp32 tolerance 1e-4, bf16 2e-2, times "
       "max(1, max |gradient|)), tolerances in manifest \"grad\""},
      {"--list", "", "list the presets and exit"},
      {"--force", "", "replace existing golden files [default: refuse]"},
  };
  return table;
}

/// `sta verify`'s options.
inline const OptionTable& verify_options() {
  static const OptionTable table = {
      {"--hashes-only", "", "check sizes, headers, hashes and the manifest only (skip step 3)"},
      {"--threads", "N", "OpenMP threads for step 3 [default: OpenMP's default]"},
  };
  return table;
}

/// `sta compare`'s own options (the common ones follow them).
inline const OptionTable& compare_options() {
  static const OptionTable table = {
      {"--atol", "X", "absolute tolerance, >= 0 [default 1e-5, the fp32 bound of SPEC section 6]"},
      {"--rtol", "Y", "relative tolerance, >= 0 [default 0]"},
      {"--json", "",
       "print one JSON object (max_abs_error, max_rel_error, worst, out_of_tolerance, "
       "per_head, ok, ...); non-finite numbers are printed as null"},
  };
  return table;
}

/// `sta counts`'s own options (the common ones follow them).
inline const OptionTable& counts_options() {
  static const OptionTable table = {
      {"--order", "tiled|raster",
       "token order the blocks cut [default: tiled, FastVideo's kernel order]"},
      {"--block", "Bq,Bk",
       "rows,columns per block in tokens [default: tile volume; tiled order requires "
       "tile-sized blocks, raster order takes any size]"},
      {"--torus", "", "use swa-torus instead of swa (wrap-around; Theorem 3.1 exactly)"},
      {"--json", "",
       "print one JSON object: dense, mixed, empty, total, sparsity, ...; with several "
       "--mask, one entry per head under \"heads\" and the totals summed at the top level"},
  };
  return table;
}

/// `sta theorems`'s options.
inline const OptionTable& theorems_options() {
  static const OptionTable table = {
      {"--json", "", "one JSON object with a summary per (theorem, mode) and every failing row"},
      {"--verbose", "", "print every row (thousands)"},
  };
  return table;
}

/// `sta strategy`'s options (a canvas of its own; not the common options).
inline const OptionTable& strategy_options() {
  static const OptionTable table = {
      {"--video", "T,H,W", "canvas in tokens [default 30,48,80, HunyuanVideo 720p]"},
      {"--tile", "t,h,w", "tile in tokens [default 6,8,8] -> default grid 5x6x10 = 300 tiles"},
      {"--json", "",
       "print one JSON object: file, keys, steps, layers, heads, complete, video, tile, "
       "tiles, histogram [{window, effective, keys}], per_step [{step, keys, sparsity, "
       "sparsity_fastvideo}], sparsity, sparsity_fastvideo"},
  };
  return table;
}

/// `sta report`'s options.
inline const OptionTable& report_options() {
  static const OptionTable table = {
      {"--out", "DIR", "folder for index.html (created if missing) (required)"},
      {"--bench", "FILE",
       "Google Benchmark JSON (--benchmark_format=json or --benchmark_out); adds a chart of "
       "wall time and effective GFLOP/s per benchmark"},
      {"--force", "", "replace an existing DIR/index.html"},
  };
  return table;
}

/// `sta demo`'s options.
inline const OptionTable& demo_options() {
  static const OptionTable table = {
      {"--seed", "N", "seed of the tiny problem's inputs [default 2025]"},
  };
  return table;
}

/// `sta viz blocks`'s own options.
inline const OptionTable& viz_blocks_options() {
  static const OptionTable table = {
      {"--compare", "M", "add a panel with mask M (same syntax as --mask)"},
      {"--order", "O", "tiled | raster, once for all panels or once per panel [tiled]"},
      {"--block", "Bq,Bk", "block size in tokens for raster-order panels [tile volume]"},
      {"--range", "q0:q1,k0:k1", "zoom: draw query blocks [q0, q1) and key blocks [k0, k1)"},
      {"--max-cells", "N", "above N cells per side, each drawn cell aggregates g x g blocks [150]"},
      {"--title", "TEXT", "replace the picture's title"},
  };
  return table;
}

/// `sta viz window`'s own options.
inline const OptionTable& viz_window_options() {
  static const OptionTable table = {
      {"--query", "t,y,x", "query token in canvas coordinates (y,x on a 2D canvas) [canvas centre]"},
  };
  return table;
}

/// `sta viz recall`'s own options.
inline const OptionTable& viz_recall_options() {
  static const OptionTable table = {
      {"--q", "FILE",
       "[B,H,S,D] float32/float16 .npy, video rows in --layout order, S = T*H*W + text pad "
       "(required)"},
      {"--k", "FILE", "keys, as --q (required)"},
      {"--batch", "B", "which batch [0]"},
      {"--head", "H", "which head [0]; with one --mask per head, the head's mask"},
      {"--query", "t,y,x", "query token [canvas centre]"},
      {"--scale", "S", "softmax scale [1/sqrt(D)]"},
      {"--heat", "log|linear", "colour scale [log: 4 decades below the maximum]"},
  };
  return table;
}

/// The options every `sta viz` picture takes (besides the common ones).
inline const OptionTable& viz_output_options() {
  static const OptionTable table = {
      {"--out", "FILE.svg", "output file (required); never overwritten without --force"},
      {"--force", "", "replace an existing output file"},
  };
  return table;
}

/// Everything one parser accepts: `own`, then `shared`, then (when `common`) the common
/// options.
inline OptionTable command_table(const OptionTable& own, bool common,
                                 const OptionTable& shared = {}) {
  OptionTable t = join(own, shared);
  return common ? join(t, common_options()) : t;
}

/// One parser's table: the words after `sta` that select it ("run", "viz blocks") and every
/// option it accepts. Every registered command appears (tests/test_cli_options.cpp checks
/// both against `sta --help`, each command's --help and its parser).
struct CommandOptions {
  std::string command;
  OptionTable options;
};
inline std::vector<CommandOptions> all_command_options() {
  return {
      {"run", command_table(run_options(), true)},
      {"grad", command_table(grad_options(), true)},
      {"golden", command_table(golden_options(), true)},
      {"verify", command_table(verify_options(), false)},
      {"compare", command_table(compare_options(), true)},
      {"counts", command_table(counts_options(), true)},
      {"theorems", command_table(theorems_options(), false)},
      {"strategy", command_table(strategy_options(), false)},
      {"report", command_table(report_options(), false)},
      {"demo", command_table(demo_options(), false)},
      {"viz blocks", command_table(viz_blocks_options(), true, viz_output_options())},
      {"viz window", command_table(viz_window_options(), true, viz_output_options())},
      {"viz recall", command_table(viz_recall_options(), true, viz_output_options())},
  };
}

}  // namespace sta::cli
