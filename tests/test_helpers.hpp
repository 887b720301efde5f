#pragma once
// Shared helpers for the tests: seeded random shapes and brute-force oracles that share no
// code with the library beyond the per-pair mask predicate.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "sta/blocks.hpp"
#include "sta/mask.hpp"
#include "sta/shape.hpp"

namespace sta::testing {

/// The whole content of a file as bytes ("" if it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

/// A geometry from its fields: canvas and tile in tokens, text tokens and slots, ragged edges.
inline Geometry geo(Extent3 canvas, Extent3 tile, int64_t text_length = 0, int64_t text_pad = 0,
                    bool ragged = false) {
  Geometry g;
  g.canvas = canvas;
  g.tile = tile;
  g.text_length = text_length;
  g.text_pad = text_pad;
  g.ragged = ragged;
  return g;
}

/// A random small geometry: 1..max_tiles tiles per axis of 1..max_tile tokens; 2D with
/// probability 1/4 (T = t = 1).
inline Geometry random_geometry(std::mt19937_64& rng, int64_t max_tiles = 4,
                                int64_t max_tile = 4) {
  std::uniform_int_distribution<int64_t> nt(1, max_tiles), ts(1, max_tile);
  Geometry g;
  const bool two_d = rng() % 4 == 0;
  for (int a = 0; a < 3; ++a) {
    g.tile[a] = (two_d && a == 0) ? 1 : ts(rng);
    g.canvas[a] = g.tile[a] * ((two_d && a == 0) ? 1 : nt(rng));
  }
  return g;
}

/// A random small ragged geometry: tiles of 1..max_tile tokens, canvas axes of 1..max_tiles
/// tiles' worth of tokens in any length (usually not a multiple of the tile); 2D with
/// probability 1/4. Separate from random_geometry() so the other tests' seeds keep their cases.
inline Geometry random_ragged_geometry(std::mt19937_64& rng, int64_t max_tiles = 4,
                                       int64_t max_tile = 4) {
  Geometry g;
  g.ragged = true;
  const bool two_d = rng() % 4 == 0;
  for (int a = 0; a < 3; ++a) {
    if (two_d && a == 0) continue;  // T = t = 1
    g.tile[a] = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_tile));
    g.canvas[a] = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_tiles * g.tile[a]));
  }
  return g;
}

/// Half the time, text on `g`: 1..9 text slots with 0..all of them real tokens (a text row
/// below its padding, or no real text at all).
inline void maybe_add_text(std::mt19937_64& rng, Geometry& g) {
  if (rng() % 2 != 0) return;
  g.text_pad = 1 + static_cast<int64_t>(rng() % 9);
  g.text_length = static_cast<int64_t>(rng() % static_cast<uint64_t>(g.text_pad + 1));
}

/// A random mask of any kind, windows from 1 to a bit beyond the canvas (odd and even).
inline Mask random_mask(std::mt19937_64& rng, const Geometry& g) {
  const int kind = static_cast<int>(rng() % 4);
  Extent3 w;
  const Extent3 n = g.tiles();
  for (int a = 0; a < 3; ++a) {
    const int64_t hi = kind == 1 ? n[a] + 2 : g.canvas[a] + 2;
    w[a] = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi));
  }
  switch (kind) {
    case 0: return Mask::full();
    case 1: return Mask::sta(w);
    case 2: return Mask::swa(w);
    default: return Mask::swa_torus(w);
  }
}

inline std::string describe(const Geometry& g, const Mask& m) {
  return "video " + to_string(g.canvas) + " tile " + to_string(g.tile) + " mask " + to_string(m) +
         " text " + std::to_string(g.text_length) + "/" + std::to_string(g.text_pad);
}

// Classifies blocks of `order` by asking mask_allows() about every (query, key) pair.
inline BlockStats brute_force_blocks(const Geometry& g, const Mask& m, Layout order, int64_t bq, int64_t bk) {
  const int64_t v = g.video_tokens();
  const int64_t nqb = (v + bq - 1) / bq, nkb = (v + bk - 1) / bk;
  std::vector<int64_t> allowed(static_cast<size_t>(nqb * nkb), 0);
  BlockStats st;
  for (int64_t q = 0; q < v; ++q)
    for (int64_t k = 0; k < v; ++k)
      if (mask_allows(g, m, order, q, k)) {
        ++allowed[(q / bq) * nkb + k / bk];
        ++st.allowed_pairs;
      }
  for (int64_t i = 0; i < nqb; ++i)
    for (int64_t j = 0; j < nkb; ++j) {
      const int64_t cells = (std::min((i + 1) * bq, v) - i * bq) * (std::min((j + 1) * bk, v) - j * bk);
      const int64_t a = allowed[i * nkb + j];
      (a == 0 ? st.counts.empty : a == cells ? st.counts.dense : st.counts.mixed) += 1;
    }
  st.total_pairs = v * v;
  return st;
}

}  // namespace sta::testing
