#pragma once
// Theorems 3.1 and 3.2 of the STA paper as closed formulas (SPEC section 5), and a checker
// that compares them with the block classifier.
#include <cstdint>
#include <string>
#include <vector>

#include "sta/blocks.hpp"

namespace sta {

/// Theorem 3.1 per query tile, one axis-symmetric cube: tile T tokens, window W tokens.
/// dense = max(2*floor((W+1)/(2T)) - 1, 0)^3,
/// mixed = (2*ceil((W-1)/(2T)) + 1)^3 - dense   (ceil, not floor: SPEC section 5).
/// `dims` = 3 for video, 2 for images (the exponent).
BlockCounts theorem31_per_query_tile(int64_t tile, int64_t window, int dims = 3);

/// Theorem 3.1 over a cube canvas of n = L/T tiles per axis: per-tile counts times n^dims;
/// empty = n^(2*dims) - dense - mixed.
BlockCounts theorem31(int64_t canvas, int64_t tile, int64_t window, int dims = 3);

/// Theorem 3.2 (STA, window K tiles, n tiles per axis): dense = K^dims * n^dims, mixed = 0.
BlockCounts theorem32(int64_t num_tiles, int64_t window_tiles, int dims = 3);

/// One row of the theorem check.
struct TheoremCheck {
  std::string theorem;  ///< "3.1" or "3.2"
  std::string mode;     ///< "torus", "interior", "clamped" (3.1) or "sta" (3.2)
  int64_t canvas = 0;   ///< L, tokens per axis
  int64_t tile = 0;     ///< T, tokens per axis
  int64_t window = 0;   ///< W tokens (3.1) or K tiles (3.2)
  int64_t query_tiles = 0;  ///< query tiles counted (all, or the interior ones)
  BlockCounts predicted;
  BlockCounts measured;
  bool exact_claim = false;  ///< the theorem claims equality in this mode
  bool matches() const { return predicted == measured; }
  /// A failure: an exact claim that the classifier contradicts.
  bool failed() const { return exact_claim && !matches(); }
};

/// Checks Theorem 3.1 (torus, interior, clamped) and 3.2 over the sweep of cube canvases
/// L in {T*n}, tiles T, windows W described in the implementation (odd W, n small enough to
/// classify quickly). Runs in well under a second.
std::vector<TheoremCheck> check_theorems();

/// Check of one (L, T, W) configuration of Theorem 3.1 in `mode` ("torus", "interior",
/// "clamped") on a cube canvas with `dims` axes (3 = video, 2 = image).
TheoremCheck check_theorem31(int64_t canvas, int64_t tile, int64_t window,
                             const std::string& mode, int dims = 3);
/// Check of Theorem 3.2 for n tiles of T tokens per axis and STA window K tiles.
TheoremCheck check_theorem32(int64_t num_tiles, int64_t tile, int64_t window_tiles,
                             int dims = 3);

}  // namespace sta
