#include "sta/viz.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "sta/error.hpp"

namespace sta {

namespace {

// ---------------------------------------------------------------------------------------
// Small formatting and drawing helpers shared by the pictures.

constexpr const char* kInk = "#222222";
constexpr const char* kMuted = "#555555";
constexpr const char* kWindowColour = "#D55E00";  // vermillion (Okabe & Ito): outlines
constexpr const char* kTokenWindowColour = "#CC79A7";  // reddish purple: a token-wise window

std::string percent(double fraction, int decimals = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals, 100.0 * fraction);
  return buf;
}

std::string times(const Extent3& e, bool is_2d) {
  const std::string x = "\xC3\x97";  // multiplication sign
  if (is_2d) return std::to_string(e.h) + x + std::to_string(e.w);
  return std::to_string(e.t) + x + std::to_string(e.h) + x + std::to_string(e.w);
}

bool is_2d(const Geometry& g) { return g.canvas.t == 1 && g.tile.t == 1; }

// Tokens of the last tile on each axis (the corner tile): shorter than g.tile on a ragged axis.
Extent3 last_tile(const Geometry& g) {
  const Extent3 n = g.tiles();
  return g.tile_extent({n.t - 1, n.h - 1, n.w - 1});
}

bool has_short_tiles(const Geometry& g) { return last_tile(g) != g.tile; }

const char* class_name(BlockClass c) {
  return c == BlockClass::kDense ? "dense" : c == BlockClass::kMixed ? "mixed" : "empty";
}

// Tick step from {1, 2, 5} x 10^k so that [0, n) gets at most `max_ticks` ticks.
int64_t nice_step(int64_t n, int64_t max_ticks, int64_t multiple_of = 1) {
  int64_t step = multiple_of;
  for (int64_t p = 1;; p *= 10) {
    for (int64_t m : {1, 2, 5}) {
      const int64_t s = m * p;
      if (s % multiple_of != 0 && multiple_of % s != 0) continue;
      step = std::max(s, multiple_of);
      if ((n + step - 1) / step <= max_ticks) return step;
    }
    if (p > (int64_t{1} << 50)) return step;
  }
}

TextStyle text_style(double size, const std::string& anchor = "start",
                     const std::string& weight = "", const std::string& fill = kInk) {
  TextStyle t;
  t.size = size;
  t.anchor = anchor;
  t.weight = weight;
  t.fill = fill;
  return t;
}

SvgStyle fill_style(const std::string& fill, const std::string& css_class = "",
                    double opacity = 1) {
  SvgStyle s;
  s.fill = fill;
  s.css_class = css_class;
  s.opacity = opacity;
  return s;
}

SvgStyle stroke_style(const std::string& stroke, double width, const std::string& dash = "") {
  SvgStyle s;
  s.fill = "none";
  s.stroke = stroke;
  s.stroke_width = width;
  s.dash = dash;
  return s;
}

// A legend entry: swatch (drawn by the caller's lambda at x, y) then a label; returns the
// x where the next entry starts.
double legend_label(Svg& svg, double x, double y, const std::string& label) {
  svg.text(x + 22, y + 11, label, text_style(13));
  return x + 22 + 7.2 * static_cast<double>(label.size()) + 26;
}

// Characters of UTF-8 text (not bytes), for width estimates.
size_t glyphs(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Splits `text` at spaces into lines of at most `max_glyphs` characters.
std::vector<std::string> wrap(const std::string& text, size_t max_glyphs) {
  std::vector<std::string> lines;
  std::string line, word;
  auto flush_word = [&] {
    if (word.empty()) return;
    if (!line.empty() && glyphs(line) + 1 + glyphs(word) > max_glyphs) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char c : text) {
    if (c == ' ') flush_word();
    else word += c;
  }
  flush_word();
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// A picture's title (20 px, bold) and explanatory notes (13 px), wrapped to the width.
struct Header {
  std::vector<std::string> title_lines, note_lines;
  double height = 0;  // px from the top of the picture to the first content
};

Header make_header(const std::string& title, const std::vector<std::string>& notes, double width) {
  Header h;
  // Average glyph widths of DejaVu Sans: ~11.5 px at 20 px bold, ~7.3 px at 13 px.
  h.title_lines = wrap(title, static_cast<size_t>((width - 48) / 11.5));
  for (const std::string& n : notes)
    for (const std::string& l : wrap(n, static_cast<size_t>((width - 48) / 7.3)))
      h.note_lines.push_back(l);
  h.height = 20 + 26.0 * h.title_lines.size() + 19.0 * h.note_lines.size() + 14;
  return h;
}

void draw_header(Svg& svg, const Header& h) {
  double y = 38;
  for (const std::string& l : h.title_lines) {
    svg.text(24, y, l, text_style(20, "start", "bold"));
    y += 26;
  }
  y -= 4;
  for (const std::string& l : h.note_lines) {
    svg.text(24, y, l, text_style(13, "start", "", kMuted));
    y += 19;
  }
}

// `mask` as the user would type it: 2D canvases drop the frame axis ("sta:6,6").
std::string mask_text(const Mask& mask, bool two_d) {
  if (!two_d || mask.kind == MaskKind::kFull || mask.window.t != 1) return to_string(mask);
  const std::string s = to_string(mask);
  return s.substr(0, s.find(':') + 1) + std::to_string(mask.window.h) + "," +
         std::to_string(mask.window.w);
}


// The pieces [start, end) of a possibly wrapping interval, inside [0, axis_len).
std::vector<std::pair<int64_t, int64_t>> pieces(const AxisInterval& iv, int64_t axis_len) {
  const int64_t end = iv.start + iv.length;
  if (end <= axis_len) return {{iv.start, end}};
  return {{iv.start, axis_len}, {0, end - axis_len}};
}

// ---------------------------------------------------------------------------------------
// Block class maps.

void validate_inputs(const Geometry& g, const Mask& mask) {
  g.validate();
  validate_mask(mask, g);
}

// ---------------------------------------------------------------------------------------
// The block picture.

std::string mask_label(const Mask& mask, const Geometry& g) {
  std::string s = mask_text(mask, is_2d(g));
  if (mask.kind == MaskKind::kSta)
    s += " (effective " + times(effective_sta_window(mask.window, g.tiles()), is_2d(g)) + " tiles)";
  if (mask.kind == MaskKind::kSwa || mask.kind == MaskKind::kSwaTorus) s += " (tokens)";
  return s;
}

struct Resolved {
  int64_t q0, q1, k0, k1;
};

Resolved resolve_range(const BlockRange& r, const BlockClassMap& m) {
  Resolved out{r.q0, r.q1 < 0 ? m.rows : r.q1, r.k0, r.k1 < 0 ? m.cols : r.k1};
  if (out.q0 < 0 || out.q1 > m.rows || out.q0 >= out.q1 || out.k0 < 0 || out.k1 > m.cols ||
      out.k0 >= out.k1)
    throw Error("--range: " + std::to_string(out.q0) + ":" + std::to_string(out.q1) + "," +
                std::to_string(out.k0) + ":" + std::to_string(out.k1) +
                " is outside the block map of " + std::to_string(m.rows) + " query blocks x " +
                std::to_string(m.cols) + " key blocks; expected q0:q1,k0:k1 with 0 <= q0 < q1 <= " +
                std::to_string(m.rows) + " and 0 <= k0 < k1 <= " + std::to_string(m.cols));
  return out;
}

struct PanelPlan {
  BlockPanel panel;
  BlockClassMap map;
  Resolved range{};
  int64_t group = 1;  // each drawn cell = group x group blocks
  int64_t drawn_rows = 0, drawn_cols = 0;
  double cell = 0;  // px per drawn cell
  double map_w = 0, map_h = 0, width = 0;
};

void draw_block_panel(Svg& svg, const Geometry& g, const PanelPlan& p, double x0, double y0,
                      double map_top) {
  const BlockClassMap& m = p.map;
  const bool tiled = m.order == Layout::kTiled;
  const double left = x0 + 72;
  const BlockCounts& c = m.stats.counts;
  // Header: mask, cut, counts.
  svg.text(x0, y0 + 16, mask_label(p.panel.mask, g), text_style(15, "start", "bold"));
  const std::string x = "\xC3\x97";
  std::string cut = tiled ? std::string("tiled order: blocks = tiles of ") +
                                (has_short_tiles(g) ? "up to " : "") + std::to_string(m.block_q) + " tokens"
                          : "raster order: blocks of " + std::to_string(m.block_q) + x +
                                std::to_string(m.block_k) + " tokens";
  cut += ", " + group_thousands(m.rows) + x + group_thousands(m.cols) + " blocks";
  svg.text(x0, y0 + 36, cut, text_style(13, "start", "", kMuted));
  const std::string dot = " \xC2\xB7 ";
  const bool zoomed = p.range.q0 != 0 || p.range.k0 != 0 || p.range.q1 != m.rows || p.range.k1 != m.cols;
  svg.text(x0, y0 + 56,
           "dense " + group_thousands(c.dense) + dot + "mixed " + group_thousands(c.mixed) + dot +
               "empty " + group_thousands(c.empty) + dot + "sparsity " + percent(m.stats.sparsity()) +
               (zoomed ? " (whole map)" : ""),
           text_style(13, "start", "bold"));

  // Axis labels and ticks (block indices; absolute, also when zoomed).
  const std::string unit = tiled ? "tile" : "block";
  svg.text(left + p.map_w / 2, map_top - 24,
           "key " + unit + " (" + (tiled ? "tiled" : "raster") + " order) \xE2\x86\x92",
           text_style(13, "middle", "bold"));
  TextStyle ylabel = text_style(13, "middle", "bold");
  ylabel.rotate = -90;
  svg.text(x0 + 14, map_top + p.map_h / 2, "\xE2\x86\x90 query " + unit, ylabel);
  const double per_block = p.cell / static_cast<double>(p.group);
  const int64_t kstep = nice_step(p.range.k1 - p.range.k0, std::max<int64_t>(2, static_cast<int64_t>(p.map_w / 55)));
  for (int64_t k = (p.range.k0 + kstep - 1) / kstep * kstep; k <= p.range.k1; k += kstep) {
    const double xx = left + (k - p.range.k0) * per_block;
    svg.line(xx, map_top - 4, xx, map_top, stroke_style(kMuted, 1));
    svg.text(xx, map_top - 7, std::to_string(k), text_style(11, "middle", "", kMuted));
  }
  const int64_t qstep = nice_step(p.range.q1 - p.range.q0, std::max<int64_t>(2, static_cast<int64_t>(p.map_h / 30)));
  for (int64_t q = (p.range.q0 + qstep - 1) / qstep * qstep; q <= p.range.q1; q += qstep) {
    const double yy = map_top + (q - p.range.q0) * per_block;
    svg.line(left - 4, yy, left, yy, stroke_style(kMuted, 1));
    svg.text(left - 7, yy + 4, std::to_string(q), text_style(11, "end", "", kMuted));
  }

  // Cells.
  svg.rect(left, map_top, p.map_w, p.map_h, fill_style(p.group == 1 ? "#FFFFFF" : kEmptyColour));
  const double gap = p.cell >= 6 ? 1 : 0;
  const bool tooltips = p.group == 1 && p.drawn_rows * p.drawn_cols <= 1024;
  svg.begin_group(p.group == 1 ? "cells" : "cells aggregated");
  for (int64_t r = 0; r < p.drawn_rows; ++r)
    for (int64_t col = 0; col < p.drawn_cols; ++col) {
      const double cx = left + col * p.cell, cy = map_top + r * p.cell;
      if (p.group == 1) {
        const int64_t qi = p.range.q0 + r, ki = p.range.k0 + col;
        const BlockClass cls = m.at(qi, ki);
        SvgStyle s;
        s.css_class = class_name(cls);
        if (tooltips)
          s.tooltip = "query " + unit + " " + std::to_string(qi) + ", key " + unit + " " +
                      std::to_string(ki) + ": " + class_name(cls);
        svg.rect(cx, cy, p.cell - gap, p.cell - gap, s);
        continue;
      }
      int64_t n_dense = 0, n_mixed = 0, n_all = 0;
      for (int64_t qi = p.range.q0 + r * p.group; qi < std::min(p.range.q1, p.range.q0 + (r + 1) * p.group); ++qi)
        for (int64_t ki = p.range.k0 + col * p.group; ki < std::min(p.range.k1, p.range.k0 + (col + 1) * p.group); ++ki) {
          const BlockClass cls = m.at(qi, ki);
          n_dense += cls == BlockClass::kDense;
          n_mixed += cls == BlockClass::kMixed;
          ++n_all;
        }
      if (n_dense + n_mixed == 0) continue;  // the background is the empty colour
      const double nonempty = static_cast<double>(n_dense + n_mixed) / static_cast<double>(n_all);
      SvgStyle s = fill_style(n_mixed ? kMixedColour : n_dense ? kDenseColour : kEmptyColour, "agg",
                              0.3 + 0.7 * nonempty);
      const double cw = std::min(p.cell, left + p.map_w - cx), ch = std::min(p.cell, map_top + p.map_h - cy);
      svg.rect(cx, cy, cw - gap, ch - gap, s);
    }
  svg.end_group();

  // Separators between frames of tiles (3D) or rows of tiles (2D), where legible.
  const Extent3 n = g.tiles();
  auto separators = [&](double period_blocks, const std::string& colour, double width) {
    if (period_blocks * per_block < 8) return;
    for (double b = std::ceil(p.range.q0 / period_blocks) * period_blocks; b < p.range.q1; b += period_blocks)
      if (b > p.range.q0)
        svg.line(left, map_top + (b - p.range.q0) * per_block, left + p.map_w,
                 map_top + (b - p.range.q0) * per_block, stroke_style(colour, width));
    for (double b = std::ceil(p.range.k0 / period_blocks) * period_blocks; b < p.range.k1; b += period_blocks)
      if (b > p.range.k0)
        svg.line(left + (b - p.range.k0) * per_block, map_top, left + (b - p.range.k0) * per_block,
                 map_top + p.map_h, stroke_style(colour, width));
  };
  if (tiled) {
    // Rows of tiles where they are far enough apart to read, frames of tiles on top.
    if (n.h > 1 && (n.t == 1 || n.w * per_block >= 40))
      separators(static_cast<double>(n.w), "#888888", 0.75);
    if (n.t > 1) separators(static_cast<double>(n.h * n.w), "#444444", 1);
  } else if (m.block_q == m.block_k && g.canvas.t > 1) {
    separators(static_cast<double>(g.canvas.h * g.canvas.w) / m.block_q, "#444444", 1);
  }
  svg.rect(left, map_top, p.map_w, p.map_h, stroke_style("#333333", 1));
}

}  // namespace

std::string group_thousands(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

BlockClassMap block_class_map(const Geometry& g, const Mask& mask, const BlockPartition& p) {
  validate_inputs(g, mask);
  const BlockPartition r = resolve_partition(g, p);
  const BlockGrid grid = block_grid(g, r);
  if (grid.query_blocks > kMaxBlockMapCells / grid.key_blocks) {
    const std::string size = std::to_string(grid.query_blocks) + "x" + std::to_string(grid.key_blocks) +
                             " block map, more than the " + std::to_string(kMaxBlockMapCells) +
                             " cells a picture can hold";
    if (r.order == Layout::kTiled)
      throw Error("--video/--tile: " + std::to_string(grid.query_blocks) + " tiles give a " + size +
                  "; use larger tiles");
    throw Error("--block: " + std::to_string(r.block_q) + "," + std::to_string(r.block_k) +
                " gives a " + size + "; use larger blocks");
  }
  BlockClassMap m;
  m.order = r.order;
  m.block_q = r.block_q;
  m.block_k = r.block_k;
  m.rows = grid.query_blocks;
  m.cols = grid.key_blocks;
  m.stats = classify_blocks(g, mask, r, &m.classes);
  return m;
}

BlockRange parse_block_range(const std::string& text, const std::string& arg) {
  const std::string expected = "expected q0:q1,k0:k1 (block indices, half-open, q0 < q1, k0 < k1)";
  long long v[4];
  char tail = 0;
  if (std::sscanf(text.c_str(), "%lld:%lld,%lld:%lld%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4)
    throw Error(arg + ": '" + text + "' is malformed; " + expected);
  for (long long x : v)
    if (x < 0) throw Error(arg + ": '" + text + "' has a negative index; " + expected);
  if (v[0] >= v[1] || v[2] >= v[3]) throw Error(arg + ": '" + text + "' is empty; " + expected);
  return {v[0], v[1], v[2], v[3]};
}

Svg blocks_svg(const Geometry& g, const std::vector<BlockPanel>& panels,
               const BlocksPictureOptions& options) {
  if (panels.empty() || panels.size() > 4)
    throw Error("--mask: " + std::to_string(panels.size()) +
                " panels requested; a block picture shows 1 to 4");
  if (options.max_cells < 8) throw Error("--max-cells: expected at least 8");
  std::vector<PanelPlan> plans;
  for (const BlockPanel& bp : panels) {
    PanelPlan p;
    p.panel = bp;
    p.map = block_class_map(g, bp.mask, bp.partition);
    p.range = resolve_range(options.range, p.map);
    const int64_t rows = p.range.q1 - p.range.q0, cols = p.range.k1 - p.range.k0;
    p.group = (std::max(rows, cols) + options.max_cells - 1) / options.max_cells;
    p.drawn_rows = (rows + p.group - 1) / p.group;
    p.drawn_cols = (cols + p.group - 1) / p.group;
    plans.push_back(std::move(p));
  }
  // Every panel gets the same map budget; cells are at most 40 px.
  const double budget = panels.size() == 1 ? 600 : panels.size() == 2 ? 500 : 330;
  double map_h = 0, x = 24;
  for (PanelPlan& p : plans) {
    // Whole pixels when cells are large enough (crisper, shorter coordinates), else quarters.
    const double fit = budget / static_cast<double>(std::max(p.drawn_rows, p.drawn_cols));
    p.cell = std::min(40.0, fit >= 4 ? std::floor(fit) : std::floor(fit * 4) / 4);
    p.cell = std::max(p.cell, 1.0);
    // An aggregated last cell may cover fewer blocks: the map ends at the last block.
    const int64_t rows = p.range.q1 - p.range.q0, cols = p.range.k1 - p.range.k0;
    p.map_w = p.cell * static_cast<double>(cols) / static_cast<double>(p.group);
    p.map_h = p.cell * static_cast<double>(rows) / static_cast<double>(p.group);
    p.width = 72 + std::max(p.map_w, 400.0) + 36;
    map_h = std::max(map_h, p.map_h);
    x += p.width;
  }
  bool aggregated = false, zoomed = false;
  for (const PanelPlan& p : plans) {
    aggregated |= p.group > 1;
    zoomed |= p.range.q0 != 0 || p.range.k0 != 0 || p.range.q1 != p.map.rows || p.range.k1 != p.map.cols;
  }
  const double width = std::max(x, 760.0);
  const std::string title =
      options.title.empty()
          ? "Block classification: video " + times(g.canvas, is_2d(g)) + " tokens, tile " +
                times(g.tile, is_2d(g)) + " tokens (" + times(g.tiles(), is_2d(g)) + " tiles" +
                (has_short_tiles(g) ? ", ragged: last tile " + times(last_tile(g), is_2d(g)) + " tokens" : "") +
                ")"
          : options.title;
  std::vector<std::string> notes = {
      "Each cell is one (query block, key block) pair of the video attention map: dense blocks "
      "run a plain GEMM, mixed ones need a per-element mask, empty ones are skipped."};
  std::string note2;
  if (zoomed)
    note2 += "Zoom: query blocks " + std::to_string(plans[0].range.q0) + "\xE2\x80\x93" +
             std::to_string(plans[0].range.q1) + ", key blocks " + std::to_string(plans[0].range.k0) +
             "\xE2\x80\x93" + std::to_string(plans[0].range.k1) + " (counts are for the whole map). ";
  if (aggregated) {
    std::string gs;
    for (const PanelPlan& p : plans)
      if (p.group > 1) gs = std::to_string(p.group) + "\xC3\x97" + std::to_string(p.group);
    note2 += "Large map: each drawn cell aggregates " + gs +
             " blocks, orange if any of them is mixed, else blue if any is dense; paler = fewer "
             "non-empty blocks (zoom with --range to see single blocks). ";
  }
  if (has_short_tiles(g))
    note2 += "Ragged edges: the last tile of an axis not divisible by the tile is shorter, so its "
             "blocks hold fewer tokens; each tile is still one cell of the map. ";
  if (g.tiles().t > 1) note2 += "Dark lines separate frames (of tiles, in tiled order). ";
  bool row_lines = false;
  for (const PanelPlan& p : plans)
    row_lines |= p.map.order == Layout::kTiled && g.tiles().h > 1 &&
                 (g.tiles().t == 1 || g.tiles().w * p.cell / static_cast<double>(p.group) >= 40);
  if (row_lines) note2 += "Grey lines separate rows of tiles.";
  if (!note2.empty()) notes.push_back(note2);
  const Header header = make_header(title, notes, width);
  const double panels_top = header.height, map_top = panels_top + 100;
  const double legend_top = map_top + map_h + 26;
  const double height = legend_top + 34;
  Svg svg(width, height, title);
  svg.add_css(".dense{fill:" + std::string(kDenseColour) + "}\n.mixed{fill:" + kMixedColour +
              "}\n.empty{fill:" + kEmptyColour + "}");
  svg.rect(0, 0, width, height, fill_style("#FFFFFF"));
  draw_header(svg, header);
  double px = 24;
  for (const PanelPlan& p : plans) {
    draw_block_panel(svg, g, p, px, panels_top, map_top);
    px += p.width;
  }
  // Legend.
  double lx = 24;
  const double ly = legend_top;
  svg.rect(lx, ly, 16, 16, fill_style(kDenseColour, "swatch"));
  lx = legend_label(svg, lx, ly, "dense: every pair allowed, plain GEMM");
  svg.rect(lx, ly, 16, 16, fill_style(kMixedColour, "swatch"));
  lx = legend_label(svg, lx, ly, "mixed: GEMM + per-element mask");
  SvgStyle es = fill_style(kEmptyColour, "swatch");
  es.stroke = "#999999";
  es.stroke_width = 0.5;
  svg.rect(lx, ly, 16, 16, es);
  legend_label(svg, lx, ly, "empty: skipped");
  return svg;
}

// ---------------------------------------------------------------------------------------
// The window seen from one query token.

TokenCoord parse_query_token(const std::string& text, const Geometry& g, const std::string& arg) {
  long long v[3] = {0, 0, 0};
  char tail = 0;
  int n = std::sscanf(text.c_str(), "%lld,%lld,%lld%c", &v[0], &v[1], &v[2], &tail);
  TokenCoord q{0, 0, 0};
  if (n == 3) {
    q = {v[0], v[1], v[2]};
  } else if (std::sscanf(text.c_str(), "%lld,%lld%c", &v[0], &v[1], &tail) == 2 && g.canvas.t == 1) {
    q = {0, v[0], v[1]};
  } else {
    throw Error(arg + ": '" + text + "' is malformed; expected t,y,x token coordinates" +
                (g.canvas.t == 1 ? " (or y,x on a 2D canvas)" : ""));
  }
  const int64_t c[3] = {q.t, q.y, q.x};
  const char* axis[3] = {"t", "y", "x"};
  for (int a = 0; a < 3; ++a)
    if (c[a] < 0 || c[a] >= g.canvas[a])
      throw Error(arg + ": '" + text + "' is outside the canvas " + to_string(g.canvas) + ": " +
                  axis[a] + " = " + std::to_string(c[a]) + ", expected 0 <= " + axis[a] + " < " +
                  std::to_string(g.canvas[a]));
  return q;
}

QueryWindow query_window(const Geometry& g, const Mask& mask, const TokenCoord& query) {
  validate_inputs(g, mask);
  QueryWindow w;
  w.query = query;
  const int64_t qc[3] = {query.t, query.y, query.x};
  const char* axis_name[3] = {"t", "y", "x"};
  int64_t attended = 1, dense = 1;
  for (int a = 0; a < 3; ++a) {
    const int64_t len = g.canvas[a], tile = g.tile[a], n = g.tiles()[a];  // ceil if ragged
    if (qc[a] < 0 || qc[a] >= len)
      throw Error(std::string("--query: ") + axis_name[a] + " = " + std::to_string(qc[a]) +
                  " is outside the canvas, expected 0 <= " + axis_name[a] + " < " +
                  std::to_string(len));
    const int64_t qt = qc[a] / tile;
    w.query_tile[a] = qt;
    w.keys[a] = allowed_keys_on_axis(mask.kind, mask.window[a], len, tile, qc[a]);
    w.centred[a] = w.keys[a];
    if (mask.kind == MaskKind::kSta) {
      const int64_t half = mask.window[a] / 2;
      if (2 * half + 1 <= n) {
        w.centred[a] = {(qt - half) * tile, (2 * half + 1) * tile};
        w.shifted[a] = w.centred[a].start != w.keys[a].start;
      }
    } else if (mask.kind == MaskKind::kSwa && mask.window[a] < len) {
      w.centred[a] = {qc[a] - mask.window[a] / 2, mask.window[a]};
      w.shifted[a] = w.centred[a].start != w.keys[a].start;
    }
    // What the query tile's block row touches on this axis.
    const auto cls = axis_block_row(g, mask, a, qt);
    int64_t ne = 0, de = 0;
    for (int64_t kt = 0; kt < n; ++kt) {
      ne += cls[static_cast<size_t>(kt)] != BlockClass::kEmpty;
      de += cls[static_cast<size_t>(kt)] == BlockClass::kDense;
    }
    attended *= ne;
    dense *= de;
  }
  w.attended_tiles = attended;
  w.dense_tiles = dense;
  return w;
}

Svg window_svg(const Geometry& g, const Mask& mask, const TokenCoord& query) {
  const QueryWindow w = query_window(g, mask, query);
  const Extent3 n = g.tiles();
  const bool two_d = is_2d(g);
  const std::string x_sign = "\xC3\x97";
  std::vector<std::vector<BlockClass>> axis_cls(3);
  for (int a = 0; a < 3; ++a) axis_cls[a] = axis_block_row(g, mask, a, w.query_tile[a]);
  auto tile_class = [&](int a, int64_t kt) { return axis_cls[a][static_cast<size_t>(kt)]; };
  // Frames of tiles to draw.
  std::vector<int64_t> frames;
  bool elided = false;
  if (n.t <= 12) {
    for (int64_t f = 0; f < n.t; ++f) frames.push_back(f);
  } else {
    for (int64_t f = 0; f < n.t; ++f) {
      bool keep = std::abs(f - w.query_tile.t) <= 1;
      for (int64_t d = -1; d <= 1; ++d)
        if (f + d >= 0 && f + d < n.t && tile_class(0, f + d) != BlockClass::kEmpty) keep = true;
      if (keep) frames.push_back(f);
      else elided = true;
    }
  }
  const int64_t np = static_cast<int64_t>(frames.size());
  // Every tile of a drawn frame is one SVG shape: refuse pictures no viewer could open.
  constexpr double kMaxDrawnTiles = 250000;
  const double drawn = static_cast<double>(np) * static_cast<double>(n.h) * static_cast<double>(n.w);
  if (drawn > kMaxDrawnTiles)
    throw Error("--tile: viz window would draw " + std::to_string(static_cast<long long>(drawn)) +
                " tiles (" + std::to_string(np) + " frames of " + times(Extent3{1, n.h, n.w}, true) +
                "); expected at most 250000 (use larger tiles or a smaller --video)");
  const int64_t cols = np <= 3 ? np : np == 4 ? 2 : 3;
  const int64_t rows = (np + cols - 1) / cols;
  const double panel_budget_w = np == 1 ? 640 : 1260.0 / static_cast<double>(cols) - 110;
  const double panel_budget_h = np == 1 ? 640 : 420;
  const double s = std::min({panel_budget_w / g.canvas.w, panel_budget_h / g.canvas.h, 14.0});
  const double cw = s * g.canvas.w, ch = s * g.canvas.h;
  const double margin = 30;  // room around the canvas for the centred window outside it
  const double label_h = two_d ? 0 : 30;
  const double canvas_dx = 44 + margin, canvas_dy = label_h + 22 + margin;
  // 3D panels carry a label such as "tile frame 12 (frames 72-77), query: 9 key tiles".
  const double panel_w = std::max(canvas_dx + cw + margin + 18, two_d ? 0.0 : 400.0);
  const double panel_h = canvas_dy + ch + margin + 8;
  const double width = std::max(24 + cols * panel_w + 24, 900.0);

  // Title and explanation.
  const auto coord = [&](const TokenCoord& c) {
    return two_d ? "(y,x) = (" + std::to_string(c.y) + "," + std::to_string(c.x) + ")"
                 : "(t,y,x) = (" + std::to_string(c.t) + "," + std::to_string(c.y) + "," +
                       std::to_string(c.x) + ")";
  };
  const auto tile_coord = [&](const Extent3& t) {
    return two_d ? "(" + std::to_string(t.h) + "," + std::to_string(t.w) + ")"
                 : "(" + std::to_string(t.t) + "," + std::to_string(t.h) + "," + std::to_string(t.w) + ")";
  };
  std::string title = "Window of query token " + coord(query) + " under " + mask_text(mask, two_d);
  if (mask.kind == MaskKind::kSta)
    title += ": effective " + times(effective_sta_window(mask.window, n), two_d) + " tiles";
  int64_t window_keys = 1;
  for (int a = 0; a < 3; ++a) window_keys *= w.keys[a].length;
  std::string l1 = "Canvas " + times(g.canvas, two_d) + " tokens = " + times(n, two_d) +
                   " tiles of " + times(g.tile, two_d) + " tokens" +
                   (has_short_tiles(g) ? " (ragged: the last tile of an axis is shorter, down to " +
                                             times(last_tile(g), two_d) + " in the corner)"
                                       : "") +
                   ". The query tile " +
                   tile_coord(w.query_tile) + " attends " + group_thousands(w.attended_tiles) +
                   " key tiles";
  if (mask.kind == MaskKind::kSta || mask.kind == MaskKind::kFull)
    l1 += " (all dense blocks)";
  else
    l1 += ": " + group_thousands(w.dense_tiles) + " dense, " +
          group_thousands(w.attended_tiles - w.dense_tiles) + " mixed (need a per-element mask)";
  l1 += "; the query token sees " + group_thousands(window_keys) + " keys = " +
        percent(static_cast<double>(window_keys) / g.video_tokens(), 1) + " of the video.";
  std::string l2;
  bool any_shift = false;
  for (int a = 0; a < 3; ++a) any_shift |= w.shifted[a];
  if (mask.kind == MaskKind::kSta && any_shift) {
    Extent3 centre;  // FastVideo's centre: clamp(qt, K/2, n-1-K/2), the upper bound winning
    for (int a = 0; a < 3; ++a)
      centre[a] = std::min(std::max(w.query_tile[a], mask.window[a] / 2), n[a] - 1 - mask.window[a] / 2);
    l2 = "At the border the window shifts instead of shrinking: its centre is clamped from tile " +
         tile_coord(w.query_tile) + " to " + tile_coord(centre) +
         " (dashed: the centred window it would have been, partly outside the canvas).";
  } else if (mask.kind == MaskKind::kSta) {
    l2 = "The window is centred on the query tile; all queries of a tile share the same key tiles.";
  }
  if (mask.kind == MaskKind::kSta && effective_sta_window(mask.window, n) != mask.window)
    l2 += " An even K covers K+1 tiles, a K at least the axis covers the axis (SPEC 2): the "
          "effective window is what is drawn.";
  if (mask.kind == MaskKind::kSta && has_short_tiles(g))
    l2 += " A short edge tile inside the window counts as one key tile but holds fewer keys.";
  if (mask.kind == MaskKind::kSwa && any_shift)
    l2 = "Token-wise window (NATTEN): at the border it shifts instead of shrinking (dashed: the "
         "centred window). Its edges cut through tiles, so the query tile's blocks are mixed.";
  else if (mask.kind == MaskKind::kSwa || mask.kind == MaskKind::kSwaTorus)
    l2 = "Token-wise window: each query token has its own box of keys, whose edges cut through "
         "tiles, so the query tile's blocks are mixed.";
  std::vector<std::string> notes = {l1};
  if (!l2.empty()) notes.push_back(l2);
  if (elided)
    notes.push_back("Only the frames of tiles near the window are drawn (" + std::to_string(np) +
                    " of " + std::to_string(n.t) + ").");
  const Header header = make_header(title, notes, width);
  const double panels_top = header.height;
  const double legend_top = panels_top + rows * panel_h + 6;
  const double height = legend_top + 56;
  Svg svg(width, height, title);
  svg.rect(0, 0, width, height, fill_style("#FFFFFF"));
  draw_header(svg, header);

  const int64_t tick_tiles = nice_step(n.w, std::max<int64_t>(2, static_cast<int64_t>(cw / 40)));
  const int64_t tick_tiles_y = nice_step(n.h, std::max<int64_t>(2, static_cast<int64_t>(ch / 28)));
  int64_t frames_attended = 0;  // frames of key tiles the query tile attends
  for (int64_t kt = 0; kt < n.t; ++kt) frames_attended += tile_class(0, kt) != BlockClass::kEmpty;
  const int64_t tiles_per_frame = frames_attended ? w.attended_tiles / frames_attended : 0;
  for (int64_t i = 0; i < np; ++i) {
    const int64_t f = frames[static_cast<size_t>(i)];
    const double px = 24 + (i % cols) * panel_w, py = panels_top + (i / cols) * panel_h;
    const double cx = px + canvas_dx, cy = py + canvas_dy;
    if (!two_d) {
      const int64_t f0 = f * g.tile.t, f1 = f0 + g.tile_len(0, f);
      const int64_t in_window = count_in_range(w.keys[0], g.canvas.t, f0, f1);
      std::string label = "tile frame " + std::to_string(f) + " (frames " + std::to_string(f0) +
                          "\xE2\x80\x93" + std::to_string(f1 - 1) + ")";
      if (f == w.query_tile.t) label += ", query";
      if (tile_class(0, f) != BlockClass::kEmpty)
        label += ": " + group_thousands(tiles_per_frame) + (tiles_per_frame == 1 ? " key tile" : " key tiles");
      if (in_window > 0 && in_window < f1 - f0)
        label += ", " + std::to_string(in_window) + "/" + std::to_string(f1 - f0) + " frames in window";
      svg.text(cx - margin, py + 15, label,
               text_style(13, "start", f == w.query_tile.t ? "bold" : "", kInk));
    }
    // Axis ticks in tokens at tile boundaries, outside the margin the dashed window may use.
    // A ragged axis also gets a tick at its end (the short last tile); a tick label too close
    // to it is dropped rather than overprinted.
    auto tick = [&](int axis, int64_t tok, bool with_label) {
      const double at = (axis == 2 ? cx : cy) + tok * s;
      if (axis == 2) {
        svg.line(at, cy - margin, at, cy, stroke_style("#D0D0D0", 1));
        if (with_label) svg.text(at, cy - margin - 4, std::to_string(tok), text_style(11, "middle", "", kMuted));
      } else {
        svg.line(cx - margin, at, cx, at, stroke_style("#D0D0D0", 1));
        if (with_label) svg.text(cx - margin - 4, at + 4, std::to_string(tok), text_style(11, "end", "", kMuted));
      }
    };
    auto ticks = [&](int axis, int64_t step, double min_gap) {
      const int64_t len = g.canvas[axis];
      const bool ragged_end = len % g.tile[axis] != 0;
      for (int64_t t = 0; t <= n[axis]; t += step) {
        const int64_t tok = std::min(t * g.tile[axis], len);
        tick(axis, tok, !(ragged_end && tok < len && (len - tok) * s < min_gap));
        if (tok == len) return;
      }
      if (ragged_end) tick(axis, len, true);
    };
    ticks(2, tick_tiles, 24);
    ticks(1, tick_tiles_y, 14);
    svg.text(cx + cw, cy - margin - 18, "x (tokens) \xE2\x86\x92", text_style(12, "end", "bold"));
    TextStyle yl = text_style(12, "middle", "bold");
    yl.rotate = -90;
    svg.text(cx - margin - 32, cy + ch / 2, ch >= 90 ? "\xE2\x86\x90 y (tokens)" : "\xE2\x86\x90 y", yl);

    svg.rect(cx, cy, cw, ch, fill_style("#FFFFFF", "canvas"));
    // Attended key tiles: the query tile's block row in this frame of tiles, each drawn at
    // its real size (a ragged edge tile is shorter).
    const BlockClass ct = tile_class(0, f);
    if (ct != BlockClass::kEmpty)
      for (int64_t ky = 0; ky < n.h; ++ky)
        for (int64_t kx = 0; kx < n.w; ++kx) {
          const BlockClass cy_cls = tile_class(1, ky), cx_cls = tile_class(2, kx);
          if (cy_cls == BlockClass::kEmpty || cx_cls == BlockClass::kEmpty) continue;
          const bool dense = ct == BlockClass::kDense && cy_cls == BlockClass::kDense &&
                             cx_cls == BlockClass::kDense;
          SvgStyle st = fill_style(dense ? kDenseColour : kMixedColour,
                                   dense ? "attended dense" : "attended mixed", dense ? 0.45 : 0.55);
          const Extent3 kc{f, ky, kx};
          st.tooltip = "key tile " + tile_coord(kc) + ": " + times(g.tile_extent(kc), two_d) +
                       " tokens, " + (dense ? "dense" : "mixed");
          svg.rect(cx + kx * g.tile.w * s, cy + ky * g.tile.h * s, g.tile_len(2, kx) * s,
                   g.tile_len(1, ky) * s, st);
        }
    // Token grid (faint) and tile grid.
    if (s >= 5) {
      for (int64_t xx = 1; xx < g.canvas.w; ++xx)
        if (xx % g.tile.w) svg.line(cx + xx * s, cy, cx + xx * s, cy + ch, stroke_style("#E3E3E3", 0.5));
      for (int64_t yy = 1; yy < g.canvas.h; ++yy)
        if (yy % g.tile.h) svg.line(cx, cy + yy * s, cx + cw, cy + yy * s, stroke_style("#E3E3E3", 0.5));
    }
    for (int64_t t = 1; t < n.w; ++t)
      svg.line(cx + t * g.tile.w * s, cy, cx + t * g.tile.w * s, cy + ch, stroke_style("#9A9A9A", 1));
    for (int64_t t = 1; t < n.h; ++t)
      svg.line(cx, cy + t * g.tile.h * s, cx + cw, cy + t * g.tile.h * s, stroke_style("#9A9A9A", 1));
    svg.rect(cx, cy, cw, ch, stroke_style("#333333", 1.2));

    // The keys this query token sees (token box; STA: the tile box) in this frame of tiles.
    const bool frame_in_window =
        count_in_range(w.keys[0], g.canvas.t, f * g.tile.t, f * g.tile.t + g.tile_len(0, f)) > 0;
    if (frame_in_window)
      for (const auto& [y0, y1] : pieces(w.keys[1], g.canvas.h))
        for (const auto& [x0, x1] : pieces(w.keys[2], g.canvas.w)) {
          SvgStyle st = stroke_style(mask.kind == MaskKind::kSta ? kDenseColour : kTokenWindowColour, 3);
          st.css_class = "window";
          svg.rect(cx + x0 * s, cy + y0 * s, (x1 - x0) * s, (y1 - y0) * s, st);
        }
    // The centred window where the border shifted it (clipped to the margin).
    const bool t_centred_here =
        w.centred[0].start < (f + 1) * g.tile.t && w.centred[0].start + w.centred[0].length > f * g.tile.t;
    if (any_shift && t_centred_here) {
      const double x0 = std::max(cx - margin + 4, cx + w.centred[2].start * s);
      const double x1 = std::min(cx + cw + margin - 4, cx + (w.centred[2].start + w.centred[2].length) * s);
      const double y0 = std::max(cy - margin + 4, cy + w.centred[1].start * s);
      const double y1 = std::min(cy + ch + margin - 4, cy + (w.centred[1].start + w.centred[1].length) * s);
      SvgStyle st = stroke_style(kWindowColour, 2, "7 4");
      st.css_class = "centred";
      svg.rect(x0, y0, x1 - x0, y1 - y0, st);
    }
    // The query tile and the query token.
    if (f == w.query_tile.t) {
      const Extent3 qe = g.tile_extent(w.query_tile);
      svg.rect(cx + w.query_tile.w * g.tile.w * s, cy + w.query_tile.h * g.tile.h * s, qe.w * s,
               qe.h * s, stroke_style("#000000", 3));
      const double qs = std::max(s, 6.0);
      SvgStyle qst = fill_style("#000000", "query");
      qst.stroke = "#FFFFFF";
      qst.stroke_width = 1;
      qst.tooltip = "query token " + coord(query);
      svg.rect(cx + (query.x + 0.5) * s - qs / 2, cy + (query.y + 0.5) * s - qs / 2, qs, qs, qst);
    }
  }

  // Legend.
  double lx = 24;
  const double ly = legend_top;
  SvgStyle q = fill_style("#000000");
  svg.rect(lx + 4, ly + 4, 8, 8, q);
  lx = legend_label(svg, lx, ly, "query token");
  svg.rect(lx, ly, 16, 16, stroke_style("#000000", 3));
  lx = legend_label(svg, lx, ly, "query tile");
  svg.rect(lx, ly, 16, 16, fill_style(kDenseColour, "swatch", 0.45));
  lx = legend_label(svg, lx, ly, "attended key tile (dense block)");
  if (mask.kind != MaskKind::kSta && mask.kind != MaskKind::kFull) {
    svg.rect(lx, ly, 16, 16, fill_style(kMixedColour, "swatch", 0.55));
    lx = legend_label(svg, lx, ly, "mixed block (per-element mask)");
  }
  lx = 24;
  const double ly2 = ly + 26;
  svg.rect(lx, ly2, 16, 16, stroke_style(mask.kind == MaskKind::kSta ? kDenseColour : kTokenWindowColour, 3));
  lx = legend_label(svg, lx, ly2, mask.kind == MaskKind::kSta ? "effective window (tiles)" : "keys of the query token (window)");
  if (any_shift) {
    svg.line(lx, ly2 + 8, lx + 16, ly2 + 8, stroke_style(kWindowColour, 2, "5 3"));
    lx = legend_label(svg, lx, ly2, "window centred on the query, before the border shift");
  }
  svg.line(lx, ly2 + 8, lx + 16, ly2 + 8, stroke_style("#9A9A9A", 1));
  legend_label(svg, lx, ly2, "tile boundaries");
  return svg;
}

// ---------------------------------------------------------------------------------------
// Attention recall.

AttentionRecall attention_recall(const Geometry& g, Layout layout, const Mask& mask,
                                 const float* q, const float* k, int64_t head_dim, double scale,
                                 const TokenCoord& query) {
  validate_inputs(g, mask);
  if (head_dim < 1) throw Error("--q: head dim " + std::to_string(head_dim) + ", expected >= 1");
  if (!std::isfinite(scale)) throw Error("--scale: expected a finite number");
  const QueryWindow w = query_window(g, mask, query);
  const int64_t v = g.video_tokens(), valid = g.valid_keys();
  const int64_t qi = layout == Layout::kTiled ? tiled_index(g, query.t, query.y, query.x)
                                              : raster_index(g.canvas, query.t, query.y, query.x);
  const float* qrow = q + qi * head_dim;
  std::vector<double> score(static_cast<size_t>(valid));
  double best = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < valid; ++j) {
    const float* krow = k + j * head_dim;
    double dot = 0;
    for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(qrow[d]) * krow[d];
    const double sc = scale * dot;
    if (!std::isfinite(sc))
      throw Error("--k: the score of key " + std::to_string(j) + " is not finite (check --q/--k for NaN or inf)");
    score[static_cast<size_t>(j)] = sc;
    best = std::max(best, sc);
  }
  double sum = 0;
  for (double& sc : score) {
    sc = std::exp(sc - best);
    sum += sc;
  }
  AttentionRecall r;
  r.query = query;
  r.mass.assign(static_cast<size_t>(v), 0.0);
  for (int64_t j = 0; j < v; ++j) {
    const TokenCoord c = token_coord(g, layout, j);
    const double p = score[static_cast<size_t>(j)] / sum;
    r.mass[static_cast<size_t>(raster_index(g.canvas, c.t, c.y, c.x))] = p;
    if (interval_contains(w.keys[0], g.canvas.t, c.t) && interval_contains(w.keys[1], g.canvas.h, c.y) &&
        interval_contains(w.keys[2], g.canvas.w, c.x)) {
      r.window_mass += p;
      ++r.window_keys;
    }
  }
  for (int64_t j = v; j < valid; ++j) r.text_mass += score[static_cast<size_t>(j)] / sum;
  r.window_key_fraction = static_cast<double>(r.window_keys) / static_cast<double>(v);
  return r;
}

namespace {

// ColorBrewer YlGnBu, a sequential colour-blind-safe palette: light = little mass.
std::string heat_colour(double f) {
  static const int stops[9][3] = {{255, 255, 217}, {237, 248, 177}, {199, 233, 180},
                                  {127, 205, 187}, {65, 182, 196},  {29, 145, 192},
                                  {34, 94, 168},   {37, 52, 148},   {8, 29, 88}};
  f = std::min(1.0, std::max(0.0, f)) * 8;
  const int i = std::min(7, static_cast<int>(f));
  const double u = f - i;
  char buf[8];
  int rgb[3];
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<int>(std::lround(stops[i][c] + u * (stops[i + 1][c] - stops[i][c])));
  std::snprintf(buf, sizeof buf, "#%02X%02X%02X", rgb[0], rgb[1], rgb[2]);
  return buf;
}

std::string short_number(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e4))
    std::snprintf(buf, sizeof buf, "%.1e", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

Svg recall_svg(const Geometry& g, const Mask& mask, const AttentionRecall& recall, HeatScale scale,
               const std::string& label) {
  validate_inputs(g, mask);
  if (static_cast<int64_t>(recall.mass.size()) != g.video_tokens())
    throw Error("recall: " + std::to_string(recall.mass.size()) + " masses for " +
                std::to_string(g.video_tokens()) + " video tokens");
  const QueryWindow w = query_window(g, mask, recall.query);
  const Extent3 c = g.canvas;
  const bool two_d = c.t == 1;
  const bool per_frame = c.t <= 16;
  const int64_t np = per_frame ? c.t : 1;
  const int64_t group = (std::max(c.h, c.w) + 63) / 64;  // tokens per heat cell side
  const int64_t gh = (c.h + group - 1) / group, gw = (c.w + group - 1) / group;
  // Heat cells: mass summed over group x group tokens (and over frames when not per frame).
  std::vector<double> cells(static_cast<size_t>(np * gh * gw), 0.0);
  std::vector<double> per_frame_mass(static_cast<size_t>(c.t), 0.0);
  for (int64_t t = 0; t < c.t; ++t)
    for (int64_t y = 0; y < c.h; ++y)
      for (int64_t x = 0; x < c.w; ++x) {
        const double m = recall.mass[static_cast<size_t>(raster_index(c, t, y, x))];
        per_frame_mass[static_cast<size_t>(t)] += m;
        cells[static_cast<size_t>(((per_frame ? t : 0) * gh + y / group) * gw + x / group)] += m;
      }
  double vmax = 0;
  for (double m : cells) vmax = std::max(vmax, m);
  const double decades = 4;
  auto level = [&](double m) {
    if (vmax <= 0 || m <= 0) return 0.0;
    if (scale == HeatScale::kLinear) return m / vmax;
    return std::max(0.0, (std::log10(m / vmax) + decades) / decades);
  };

  const int64_t cols = np == 1 ? 1 : std::min<int64_t>(np, 4);
  const int64_t rows = (np + cols - 1) / cols;
  const double budget = np == 1 ? 560 : 1240.0 / static_cast<double>(cols) - 70;
  const double cell = std::min({budget / gw, (np == 1 ? 560.0 : 300.0) / gh, 24.0});
  const double mw = cell * static_cast<double>(c.w) / group, mh = cell * static_cast<double>(c.h) / group;
  const double panel_w = 56 + mw + 24, panel_h = 24 + 22 + mh + 16;
  const double width = std::max(24 + cols * panel_w + 24, 900.0);
  const std::string qs = two_d ? "(y,x) = (" + std::to_string(recall.query.y) + "," + std::to_string(recall.query.x) + ")"
                               : "(t,y,x) = (" + std::to_string(recall.query.t) + "," +
                                     std::to_string(recall.query.y) + "," + std::to_string(recall.query.x) + ")";
  const std::string title = "Attention of query " + qs + ": " + percent(recall.window_mass, 1) +
                            " of the mass falls inside the " + mask_text(mask, two_d) +
                            " window, which holds " + percent(recall.window_key_fraction, 2) +
                            " of the video keys";
  std::string l1 = "Softmax of the scaled q\xC2\xB7k over all " + group_thousands(g.valid_keys()) +
                   " valid keys (full attention), per key token";
  if (g.text_length > 0) l1 += "; the text keys hold " + percent(recall.text_mass, 1) + " of the mass";
  l1 += ". " + std::string(per_frame ? (two_d ? "" : "One panel per frame.") : "Summed over all frames.");
  if (group > 1) l1 += " Cells = " + std::to_string(group) + "\xC3\x97" + std::to_string(group) + " tokens.";
  l1 += " Vermillion outline: the keys the mask lets this query see; white square: the query.";
  std::vector<std::string> notes = {l1};
  if (!label.empty()) notes.push_back(label);
  const Header header = make_header(title, notes, width);
  const double heat_top = header.height;
  const double bars_top = heat_top + rows * panel_h + 8;
  const double bars_h = two_d ? 0 : 150;
  const double legend_top = bars_top + bars_h + 8;
  const double height = legend_top + 70;
  Svg svg(width, height, title);
  svg.rect(0, 0, width, height, fill_style("#FFFFFF"));
  draw_header(svg, header);

  for (int64_t i = 0; i < np; ++i) {
    const double px = 24 + (i % cols) * panel_w, py = heat_top + (i / cols) * panel_h;
    const double cx = px + 56, cy = py + 46;
    const bool in_window_t = per_frame ? interval_contains(w.keys[0], c.t, i) : true;
    std::string pl = per_frame ? (two_d ? "image" : "frame " + std::to_string(i)) : "all frames summed";
    if (per_frame && !two_d)
      pl += ": " + percent(per_frame_mass[static_cast<size_t>(i)], 1) + (in_window_t ? ", in window" : "");
    svg.text(cx, py + 16, pl, text_style(13, "start", per_frame && i == recall.query.t ? "bold" : "", kInk));
    svg.text(cx + mw, cy - 6, "x \xE2\x86\x92", text_style(11, "end", "", kMuted));
    TextStyle yl = text_style(11, "middle", "", kMuted);
    yl.rotate = -90;
    svg.text(cx - 16, cy + mh / 2, "\xE2\x86\x90 y", yl);
    svg.text(cx - 4, cy + 10, "0", text_style(10, "end", "", kMuted));
    svg.text(cx - 4, cy + mh, std::to_string(c.h - 1), text_style(10, "end", "", kMuted));
    svg.text(cx, cy + mh + 12, "0", text_style(10, "start", "", kMuted));
    svg.text(cx + mw, cy + mh + 12, std::to_string(c.w - 1), text_style(10, "end", "", kMuted));
    svg.rect(cx, cy, mw, mh, fill_style(heat_colour(0)));
    for (int64_t y = 0; y < gh; ++y)
      for (int64_t x = 0; x < gw; ++x) {
        const double f = level(cells[static_cast<size_t>((i * gh + y) * gw + x)]);
        if (f < 0.02) continue;
        svg.rect(cx + x * cell, cy + y * cell, std::min(cell, mw - x * cell), std::min(cell, mh - y * cell),
                 fill_style(heat_colour(f), "heat"));
      }
    if (in_window_t)
      for (const auto& [y0, y1] : pieces(w.keys[1], c.h))
        for (const auto& [x0, x1] : pieces(w.keys[2], c.w)) {
          SvgStyle st = stroke_style(kWindowColour, 2.5);
          st.css_class = "window";
          svg.rect(cx + x0 * cell / group, cy + y0 * cell / group, (x1 - x0) * cell / group,
                   (y1 - y0) * cell / group, st);
        }
    svg.rect(cx, cy, mw, mh, stroke_style("#333333", 1));
    if (!per_frame || i == recall.query.t) {
      const double qsz = std::max(6.0, cell / group);
      SvgStyle q = fill_style("#FFFFFF", "query");
      q.stroke = "#000000";
      q.stroke_width = 1.5;
      svg.rect(cx + (recall.query.x + 0.5) * cell / group - qsz / 2,
               cy + (recall.query.y + 0.5) * cell / group - qsz / 2, qsz, qsz, q);
    }
  }

  // Mass per frame (video): bars, window frames in blue.
  if (!two_d) {
    const double bx = 80, bw = std::min(width - bx - 40, 1000.0), bh = 90, by = bars_top + 26;
    svg.text(24, bars_top + 14, "Mass per frame (blue: frames inside the window)", text_style(13, "start", "bold"));
    double fmax = 0;
    for (double m : per_frame_mass) fmax = std::max(fmax, m);
    const double slot = bw / static_cast<double>(c.t);
    for (int64_t t = 0; t < c.t; ++t) {
      const double hgt = fmax > 0 ? bh * per_frame_mass[static_cast<size_t>(t)] / fmax : 0;
      SvgStyle st = fill_style(interval_contains(w.keys[0], c.t, t) ? kDenseColour : "#AAAAAA", "frame-bar");
      st.tooltip = "frame " + std::to_string(t) + ": " + percent(per_frame_mass[static_cast<size_t>(t)], 2);
      svg.rect(bx + t * slot + slot * 0.1, by + bh - hgt, slot * 0.8, hgt, st);
    }
    svg.line(bx, by + bh, bx + bw, by + bh, stroke_style("#333333", 1));
    svg.line(bx, by, bx, by + bh, stroke_style("#333333", 1));
    svg.text(bx - 6, by + 8, percent(fmax, 1), text_style(10, "end", "", kMuted));
    svg.text(bx - 6, by + bh, "0", text_style(10, "end", "", kMuted));
    const int64_t step = nice_step(c.t, std::max<int64_t>(2, static_cast<int64_t>(bw / 40)));
    for (int64_t t = 0; t < c.t; t += step)
      svg.text(bx + (t + 0.5) * slot, by + bh + 13, std::to_string(t), text_style(10, "middle", "", kMuted));
    svg.text(bx + bw, by + bh + 28, "frame (t) \xE2\x86\x92", text_style(11, "end", "bold"));
    TextStyle yl = text_style(11, "middle", "bold");
    yl.rotate = -90;
    svg.text(40, by + bh / 2, "mass", yl);
  }

  // Colour bar.
  const double lx = 24, ly = legend_top + 4, lw = 360;
  svg.text(lx, ly + 10, std::string("Mass per cell (") + (scale == HeatScale::kLog ? "log scale, 4 decades" : "linear") + ")",
           text_style(13, "start", "bold"));
  for (int i = 0; i < 60; ++i)
    svg.rect(lx + i * lw / 60, ly + 18, lw / 60 + 0.3, 14, fill_style(heat_colour(i / 59.0), "swatch"));
  svg.rect(lx, ly + 18, lw, 14, stroke_style("#666666", 0.5));
  const std::string lo = scale == HeatScale::kLog ? short_number(vmax * 1e-4) : "0";
  svg.text(lx, ly + 46, lo, text_style(11, "start", "", kMuted));
  if (scale == HeatScale::kLog) svg.text(lx + lw / 2, ly + 46, short_number(vmax * 1e-2), text_style(11, "middle", "", kMuted));
  svg.text(lx + lw, ly + 46, short_number(vmax) + " (max)", text_style(11, "end", "", kMuted));
  const double kx = lx + lw + 40;
  svg.rect(kx, ly + 18, 16, 14, stroke_style(kWindowColour, 2.5));
  svg.text(kx + 22, ly + 30, "window of the query (" + percent(recall.window_mass, 1) + " of the mass)", text_style(13));
  SvgStyle q = fill_style("#FFFFFF");
  q.stroke = "#000000";
  q.stroke_width = 1.5;
  svg.rect(kx + 330, ly + 20, 10, 10, q);
  svg.text(kx + 348, ly + 30, "query token", text_style(13));
  return svg;
}

}  // namespace sta
