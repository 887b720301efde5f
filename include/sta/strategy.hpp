#pragma once
// FastVideo mask strategies: the JSON files (`FASTVIDEO_ATTENTION_CONFIG`, e.g. FastVideo's
// assets/mask_strategy_hunyuan.json) that give every (denoising step, layer, head) its own
// STA window in TILES. The format is one JSON object whose keys are "t_l_h" (step, layer,
// head) and whose values are [kt, kh, kw]:
//
//     {"0_0_0": [5, 6, 10], "0_0_1": [3, 3, 3], ..., "49_59_23": [1, 6, 10]}
//
// The reader is hand-written for exactly this format (a 72,000-key, 4 MB file parses in a
// few milliseconds) and strict: anything else is an sta::Error naming the file, the line,
// column and byte of the offence and, once it is known, the key.
#include <cstdint>
#include <string>
#include <vector>

#include "sta/mask.hpp"
#include "sta/shape.hpp"

namespace sta {

/// Largest step, layer or head index and largest window entry the reader accepts
/// (2^31 - 1); bigger numbers are reported as out of range rather than wrapped.
constexpr int64_t kMaxStrategyValue = 2147483647;

/// One key of a mask strategy: the STA window (tiles, as written in the file, not clamped)
/// of head `head` of layer `layer` at denoising step `step`.
struct StrategyEntry {
  int64_t step = 0;
  int64_t layer = 0;
  int64_t head = 0;
  Extent3 window;  ///< tiles (kt, kh, kw), each >= 1
};

/// A parsed mask strategy. `entries` are sorted by (step, layer, head) and unique.
struct MaskStrategy {
  std::string source;  ///< file name (or label) used in error messages
  std::vector<StrategyEntry> entries;

  /// The entry for (step, layer, head), or nullptr. O(log keys).
  const StrategyEntry* find(int64_t step, int64_t layer, int64_t head) const;
};

/// "S_L_H", the key of (step, layer, head) as FastVideo writes it.
std::string strategy_key(int64_t step, int64_t layer, int64_t head);

/// Parses the text of a mask strategy file. `source` names it in error messages. Accepts any
/// JSON whitespace (space, tab, CR, LF) between tokens and nothing else: the document must be
/// one non-empty object; keys must be three canonical non-negative decimal integers joined by
/// '_' (no sign, no leading zeros, no escapes, each <= kMaxStrategyValue); values must be
/// arrays of exactly three JSON integers in [1, kMaxStrategyValue] (tiles; 5.0, 5e0, "5", 0,
/// -1, nested arrays are rejected). Duplicate keys, trailing commas, unterminated strings
/// and trailing characters are errors. Throws sta::Error "source:line:column (byte B): ..."
/// that quotes the offending key when there is one.
MaskStrategy parse_mask_strategy(const std::string& text, const std::string& source);

/// Reads and parses the mask strategy file at `path` (see parse_mask_strategy); error
/// messages name `path`. Throws sta::Error if the file cannot be read.
MaskStrategy read_mask_strategy(const std::string& path);

/// One STA mask per head for (step, layer): element h is Mask::sta(window of "step_layer_h")
/// with the window as written (masks clamp windows larger than the grid themselves, SPEC 2).
/// `heads` = -1 takes the heads the file has for (step, layer); they must be 0..H-1 with no
/// gap. `heads` = H >= 1 requires exactly keys step_layer_0 .. step_layer_{H-1}. Throws
/// sta::Error naming the file and the first missing key "S_L_H" (or the first key beyond
/// the H heads asked for).
std::vector<Mask> strategy_masks(const MaskStrategy& strategy, int64_t step, int64_t layer,
                                 int64_t heads = -1);

/// Distinct step indices in the file, ascending.
std::vector<int64_t> strategy_steps(const MaskStrategy& strategy);
/// Distinct layer indices in the file, ascending.
std::vector<int64_t> strategy_layers(const MaskStrategy& strategy);
/// Distinct head indices in the file, ascending.
std::vector<int64_t> strategy_heads(const MaskStrategy& strategy);

/// True if the file has every key of steps x layers x heads (FastVideo's Hunyuan file:
/// 50 x 60 x 24 = 72,000 keys).
bool strategy_is_complete(const MaskStrategy& strategy);

/// How many keys use one window (tiles, as written).
struct WindowCount {
  Extent3 window;
  int64_t count = 0;
};
/// Window histogram: every distinct window with its number of keys, ordered by descending
/// count, then by window (kt, kh, kw) ascending.
std::vector<WindowCount> strategy_window_histogram(const MaskStrategy& strategy);

/// Sparsity of a set of heads on one canvas (fractions of the video attention map masked
/// out; text tokens are not counted).
struct StrategySparsity {
  int64_t step = -1;  ///< the step, or -1 for the whole file
  int64_t keys = 0;   ///< heads counted (over all layers of the step)
  /// 1 - sum(prod(effective window)) / (keys * prod(tile grid)), with the effective window
  /// of effective_sta_window(): what the clamped STA mask really covers on this grid (an
  /// even K covers K+1 tiles, a window larger than the axis covers the axis). Since every
  /// query tile sees the same number of key tiles under STA, this equals the exact block /
  /// token sparsity of classify_blocks() averaged over the heads.
  double sparsity = 0.0;
  /// FastVideo's own formula, 1 - sum(prod(raw window)) / (keys * prod(tile grid)), with the
  /// window as written. Equal to `sparsity` when every window is odd and fits the grid; it
  /// can be lower (even negative) for even or oversized windows.
  double sparsity_raw = 0.0;
};

/// Sparsity per step (ascending steps) on geometry `g` (its tile grid `g.tiles()`), as
/// defined in StrategySparsity. Throws sta::Error if `g` is invalid.
std::vector<StrategySparsity> strategy_sparsity_per_step(const MaskStrategy& strategy,
                                                         const Geometry& g);
/// Sparsity over every key of the file on geometry `g` (step = -1).
StrategySparsity strategy_sparsity(const MaskStrategy& strategy, const Geometry& g);

/// Compact text of a sorted index set: "0-49", "0-2, 5, 7-9" (for messages and summaries).
std::string format_index_set(const std::vector<int64_t>& indices);

}  // namespace sta
