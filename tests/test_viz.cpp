// The teaching pictures (sta/svg.hpp, sta/viz.hpp, sta/report.hpp, `sta viz`, `sta report`):
// well-formed SVG, cells that agree with the classifier, windows that agree with SPEC 2, the
// recall numbers against a brute force, the benchmark reader, and the report in a browser.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/npy.hpp"
#include "sta/report.hpp"
#include "sta/svg.hpp"
#include "sta/viz.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

using testing::run_cli;

// ---------------------------------------------------------------------------------------
// A strict XML 1.0 well-formedness checker (no DTD, no CDATA: the writer emits neither), so
// the tests need no parser library. Returns "" when well-formed, else the first problem.

bool name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (static_cast<unsigned char>(c) & 0x80);
}
bool name_char(char c) {
  return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

std::string xml_error(const std::string& s) {
  size_t i = 0;
  std::vector<std::string> open;
  bool root_seen = false;
  auto at = [&](const std::string& what) { return what + " at byte " + std::to_string(i); };
  auto name = [&] {
    const size_t b = i;
    if (i < s.size() && name_start(s[i]))
      while (i < s.size() && name_char(s[i])) ++i;
    return s.substr(b, i - b);
  };
  auto space = [&] {
    const size_t b = i;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return i > b;
  };
  // An entity or character reference starting at s[i] == '&'.
  auto reference = [&]() -> bool {
    const size_t semi = s.find(';', i);
    if (semi == std::string::npos || semi - i > 10) return false;
    const std::string ref = s.substr(i + 1, semi - i - 1);
    bool ok = ref == "amp" || ref == "lt" || ref == "gt" || ref == "quot" || ref == "apos";
    if (!ok && ref.size() > 1 && ref[0] == '#') {
      ok = true;
      const bool hex = ref[1] == 'x';
      for (size_t k = hex ? 2 : 1; k < ref.size(); ++k)
        ok &= hex ? std::isxdigit(static_cast<unsigned char>(ref[k])) != 0
                  : std::isdigit(static_cast<unsigned char>(ref[k])) != 0;
      ok &= ref.size() > (hex ? 2u : 1u);
    }
    if (ok) i = semi + 1;
    return ok;
  };
  if (s.compare(0, 5, "<?xml") == 0) {
    const size_t e = s.find("?>");
    if (e == std::string::npos) return at("unterminated XML declaration");
    i = e + 2;
  }
  while (i < s.size()) {
    const char c = s[i];
    if (c == '<') {
      if (s.compare(i, 4, "<!--") == 0) {
        const size_t e = s.find("-->", i + 4);
        if (e == std::string::npos) return at("unterminated comment");
        i = e + 3;
        continue;
      }
      if (s.compare(i, 2, "<!") == 0 || s.compare(i, 2, "<?") == 0)
        return at("unexpected markup declaration");
      if (s.compare(i, 2, "</") == 0) {
        i += 2;
        const std::string n = name();
        space();
        if (i >= s.size() || s[i] != '>') return at("malformed end tag </" + n);
        if (open.empty() || open.back() != n)
          return at("end tag </" + n + "> does not match <" + (open.empty() ? "" : open.back()) + ">");
        open.pop_back();
        ++i;
        continue;
      }
      ++i;
      const std::string n = name();
      if (n.empty()) return at("'<' not followed by a name");
      if (open.empty() && root_seen) return at("second root element <" + n + ">");
      root_seen = true;
      std::set<std::string> attrs;
      for (;;) {
        const bool had_space = space();
        if (i >= s.size()) return at("unterminated start tag <" + n);
        if (s[i] == '/') {
          if (s.compare(i, 2, "/>") != 0) return at("stray '/' in <" + n);
          i += 2;
          break;
        }
        if (s[i] == '>') {
          ++i;
          open.push_back(n);
          break;
        }
        if (!had_space) return at("attributes of <" + n + "> need whitespace between them");
        const std::string a = name();
        if (a.empty()) return at("bad attribute name in <" + n + ">");
        if (!attrs.insert(a).second) return at("duplicate attribute " + a + " in <" + n + ">");
        space();
        if (i >= s.size() || s[i] != '=') return at("attribute " + a + " without '='");
        ++i;
        space();
        if (i >= s.size() || (s[i] != '"' && s[i] != '\'')) return at("unquoted attribute " + a);
        const char quote = s[i++];
        while (i < s.size() && s[i] != quote) {
          if (s[i] == '<') return at("'<' inside attribute " + a);
          if (s[i] == '&') {
            if (!reference()) return at("bad reference in attribute " + a);
          } else {
            ++i;
          }
        }
        if (i >= s.size()) return at("unterminated attribute " + a);
        ++i;
      }
      continue;
    }
    if (c == '&') {
      if (!reference()) return at("bad '&' reference");
      if (open.empty()) return at("reference outside the root element");
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
      return at("control character");
    if (open.empty() && !std::isspace(static_cast<unsigned char>(c)))
      return at("text outside the root element");
    ++i;
  }
  if (!open.empty()) return at("unclosed <" + open.back() + ">");
  if (!root_seen) return "no root element";
  return "";
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The text a reader sees: tags dropped, whitespace collapsed (so wrapped lines join up).
std::string plain_text(const std::string& doc) {
  std::string out;
  bool in_tag = false;
  for (char c : doc) {
    if (c == '<') in_tag = true;
    if (!in_tag) {
      const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
      if (!(space && (out.empty() || out.back() == ' '))) out += space ? ' ' : c;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
    if (c == '>') in_tag = false;
  }
  return out;
}

using testing::geo;

std::string temp_dir() {
  char tmpl[] = "/tmp/sta_viz_test_XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (!d) throw std::runtime_error("mkdtemp failed");
  return d;
}

std::string read_file(const std::string& path) { return testing::slurp(path); }

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// The value of attribute `name` in the tag that starts at `at` ("" if absent).
std::string attribute(const std::string& doc, size_t at, const std::string& name) {
  const size_t end = doc.find('>', at);
  const size_t a = doc.find(" " + name + "=\"", at);
  if (a == std::string::npos || a > end) return "";
  const size_t v = a + name.size() + 3;
  return doc.substr(v, doc.find('"', v) - v);
}

/// One drawn rectangle: its size in viewBox units and its tooltip.
struct DrawnRect {
  double w = 0, h = 0;
  std::string tooltip;
};

/// Every <rect> whose class attribute starts with `class_prefix`, in document order.
std::vector<DrawnRect> rects_of_class(const std::string& doc, const std::string& class_prefix) {
  std::vector<DrawnRect> out;
  for (size_t at = doc.find("<rect "); at != std::string::npos; at = doc.find("<rect ", at + 1)) {
    if (attribute(doc, at, "class").rfind(class_prefix, 0) != 0) continue;
    DrawnRect r;
    r.w = std::stod(attribute(doc, at, "width"));
    r.h = std::stod(attribute(doc, at, "height"));
    const size_t close = doc.find('>', at);
    if (doc[close - 1] != '/') {
      const size_t t0 = doc.find("<title>", close) + 7;
      r.tooltip = doc.substr(t0, doc.find("</title>", t0) - t0);
    }
    out.push_back(r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The SVG writer.

TEST(XmlChecker, RejectsWhatIsNotWellFormed) {
  EXPECT_EQ(xml_error("<a x=\"1\"><b/>t &amp; &#38; &#x26;</a>"), "");
  for (const char* bad : {"<a>", "<a></b>", "<a x=1/>", "<a x=\"1\" x=\"2\"/>", "<a>&nbsp;</a>",
                          "<a>&</a>", "<a/><b/>", "text<a/>", "<a x=\"<\"/>", "<a x=\"1\"y=\"2\"/>", ""})
    EXPECT_NE(xml_error(bad), "") << bad;
}

TEST(Svg, EscapesTextAndAttributes) {
  EXPECT_EQ(xml_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  EXPECT_EQ(xml_escape(std::string("x\x01y\tz")), "xy\tz");
  EXPECT_EQ(svg_number(3.0), "3");
  EXPECT_EQ(svg_number(2.5), "2.5");
  EXPECT_EQ(svg_number(-0.001), "0");
  Svg svg(100, 50, "title <&> \"quoted\"");
  svg.add_css(".dense{fill:#0072B2}");
  SvgStyle s;
  s.fill = "#fff";
  s.css_class = "a&b";
  s.tooltip = "x < y & z";
  svg.rect(1, 2, 3, 4, s);
  svg.begin_group("g\"1", "translate(1,2)");
  svg.line(0, 0, 10, 10, s);
  TextStyle t;
  t.rotate = -90;
  svg.text(5, 5, "q\xC2\xB7k < 1 & 'quoted'", t);
  svg.begin_group();  // left open: str() closes it
  const std::string doc = svg.str();
  EXPECT_EQ(xml_error(doc), "") << doc;
  EXPECT_NE(doc.find("viewBox=\"0 0 100 50\""), std::string::npos);
  EXPECT_EQ(xml_error(svg.inline_str(80)), "");
  svg.end_group();
  svg.end_group();
  EXPECT_THROW(svg.end_group(), std::logic_error);
}

// ---------------------------------------------------------------------------------------
// Block class maps and block pictures.

// The class of one block by brute force over its token pairs (SPEC 3), in `order`.
BlockClass brute_block(const Geometry& g, const Mask& m, Layout order, int64_t q0, int64_t q1,
                       int64_t k0, int64_t k1) {
  int64_t allowed = 0;
  for (int64_t q = q0; q < q1; ++q)
    for (int64_t k = k0; k < k1; ++k) allowed += mask_allows(g, m, order, q, k);
  return allowed == 0 ? BlockClass::kEmpty
                      : allowed == (q1 - q0) * (k1 - k0) ? BlockClass::kDense : BlockClass::kMixed;
}

TEST(BlockClassMap, EveryBlockMatchesBruteForceInBothOrders) {
  const uint64_t seed = 20260606;
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 40; ++trial) {
    const Geometry g = testing::random_geometry(rng, 3, 3);
    const Mask m = testing::random_mask(rng, g);
    SCOPED_TRACE("seed " + std::to_string(seed) + " trial " + std::to_string(trial) + " video " +
                 to_string(g.canvas) + " tile " + to_string(g.tile) + " " + to_string(m));
    const int64_t v = g.video_tokens(), tv = g.tile_tokens();
    const BlockClassMap tiled = block_class_map(g, m);
    ASSERT_EQ(tiled.rows, g.num_tiles());
    EXPECT_EQ(tiled.stats.counts, classify_blocks(g, m).counts);
    for (int64_t i = 0; i < tiled.rows; ++i)
      for (int64_t j = 0; j < tiled.cols; ++j)
        ASSERT_EQ(tiled.at(i, j), brute_block(g, m, Layout::kTiled, i * tv, (i + 1) * tv, j * tv, (j + 1) * tv))
            << "tile block " << i << "," << j;
    const int64_t bq = 1 + static_cast<int64_t>(rng() % 7), bk = 1 + static_cast<int64_t>(rng() % 9);
    const BlockClassMap raster = block_class_map(g, m, {Layout::kRaster, bq, bk});
    const BlockStats expect = classify_blocks(g, m, {Layout::kRaster, bq, bk});
    EXPECT_EQ(raster.stats.counts, expect.counts);
    EXPECT_EQ(raster.stats.allowed_pairs, expect.allowed_pairs);
    for (int64_t i = 0; i < raster.rows; ++i)
      for (int64_t j = 0; j < raster.cols; ++j)
        ASSERT_EQ(raster.at(i, j), brute_block(g, m, Layout::kRaster, i * bq, std::min(v, (i + 1) * bq),
                                              j * bk, std::min(v, (j + 1) * bk)))
            << "raster block " << i << "," << j << " of " << bq << "x" << bk;
  }
}

TEST(BlockClassMap, RejectsHugeMapsNamingTheArgument) {
  try {
    block_class_map(Geometry{}, Mask::sta({3, 3, 3}), {Layout::kRaster, 1, 1});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--block"), std::string::npos) << e.what();
  }
}

TEST(BlockClassMap, RaggedTilesMatchBruteForceAtTheirRealSizes) {
  const uint64_t seed = 20261124;
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 30; ++trial) {
    const Geometry g = testing::random_ragged_geometry(rng);
    const Mask m = testing::random_mask(rng, g);
    SCOPED_TRACE("seed " + std::to_string(seed) + " trial " + std::to_string(trial) + " video " +
                 to_string(g.canvas) + " tile " + to_string(g.tile) + " ragged " + to_string(m));
    const BlockClassMap tiled = block_class_map(g, m);
    ASSERT_EQ(tiled.rows, g.num_tiles());
    EXPECT_EQ(tiled.stats.counts, classify_blocks(g, m).counts);
    for (int64_t i = 0; i < tiled.rows; ++i)
      for (int64_t j = 0; j < tiled.cols; ++j) {
        const int64_t q0 = g.tile_offset(i), k0 = g.tile_offset(j);
        ASSERT_EQ(tiled.at(i, j),
                  brute_block(g, m, Layout::kTiled, q0, q0 + g.tile_size(i), k0, k0 + g.tile_size(j)))
            << "tile block " << i << "," << j;
      }
  }
}

TEST(BlocksSvg, RaggedCellCountsEqualTheClassifier) {
  const uint64_t seed = 1124;
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 25; ++trial) {
    const Geometry g = testing::random_ragged_geometry(rng);
    const Mask a = testing::random_mask(rng, g), b = testing::random_mask(rng, g);
    const BlockPartition raster{Layout::kRaster, 1 + static_cast<int64_t>(rng() % 7),
                                1 + static_cast<int64_t>(rng() % 9)};
    SCOPED_TRACE("seed " + std::to_string(seed) + " trial " + std::to_string(trial) + " video " +
                 to_string(g.canvas) + " tile " + to_string(g.tile) + " ragged " + to_string(a) +
                 " / " + to_string(b));
    BlocksPictureOptions opt;
    opt.max_cells = 2000;  // every block its own cell
    const std::string doc = blocks_svg(g, {{a, {}}, {b, {}}, {a, raster}}, opt).str();
    ASSERT_EQ(xml_error(doc), "");
    BlockCounts sum = classify_blocks(g, a).counts;
    sum += classify_blocks(g, b).counts;
    sum += classify_blocks(g, a, raster).counts;
    EXPECT_EQ(count(doc, "class=\"dense\""), static_cast<size_t>(sum.dense));
    EXPECT_EQ(count(doc, "class=\"mixed\""), static_cast<size_t>(sum.mixed));
    EXPECT_EQ(count(doc, "class=\"empty\""), static_cast<size_t>(sum.empty));
    if (g.tile_size(g.num_tiles() - 1) < g.tile_tokens()) {
      EXPECT_NE(plain_text(doc).find("Ragged edges"), std::string::npos);
    }
  }
}

TEST(BlocksSvg, CellCountsEqualTheClassifierSideBySide) {
  const Geometry g = geo({8, 16, 16}, {2, 4, 4});
  const Mask sta = Mask::sta({3, 3, 3}), swa = Mask::swa({5, 11, 11});
  const BlockPartition raster{Layout::kRaster, 48, 64};
  const std::vector<BlockPanel> panels = {{sta, {}}, {swa, {}}, {swa, raster}};
  const Svg svg = blocks_svg(g, panels);
  const std::string doc = svg.str();
  ASSERT_EQ(xml_error(doc), "");
  BlockCounts sum = classify_blocks(g, sta).counts;
  sum += classify_blocks(g, swa).counts;
  sum += classify_blocks(g, swa, raster).counts;
  EXPECT_EQ(count(doc, "class=\"dense\""), static_cast<size_t>(sum.dense));
  EXPECT_EQ(count(doc, "class=\"mixed\""), static_cast<size_t>(sum.mixed));
  EXPECT_EQ(count(doc, "class=\"empty\""), static_cast<size_t>(sum.empty));
  EXPECT_EQ(count(doc, "class=\"agg\""), 0u);
  for (const char* text : {"sta:3,3,3", "swa:5,11,11", "raster order", "key tile", "query tile",
                           "dense: every pair allowed", "sparsity"})
    EXPECT_NE(plain_text(doc).find(text), std::string::npos) << text;
}

TEST(BlocksSvg, LargeMapsAggregateAndZoomShowsSingleBlocks) {
  const Geometry hunyuan;  // 300 x 300 tiles
  const Svg big = blocks_svg(hunyuan, {{Mask::swa({19, 25, 25}), {}}});
  const std::string doc = big.str();
  EXPECT_EQ(xml_error(doc), "");
  EXPECT_EQ(count(doc, "class=\"dense\""), 0u);
  EXPECT_GT(count(doc, "class=\"agg\""), 0u);
  EXPECT_NE(plain_text(doc).find("aggregates 2\xC3\x97" "2 blocks"), std::string::npos);
  EXPECT_LT(doc.size(), 3u << 20);
  BlocksPictureOptions zoom;
  zoom.range = parse_block_range("0:10,5:25", "--range");
  const std::string z = blocks_svg(hunyuan, {{Mask::sta({3, 3, 3}), {}}}, zoom).str();
  EXPECT_EQ(xml_error(z), "");
  const BlockClassMap m = block_class_map(hunyuan, Mask::sta({3, 3, 3}));
  size_t dense = 0;
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t j = 5; j < 25; ++j) dense += m.at(i, j) == BlockClass::kDense;
  EXPECT_EQ(count(z, "class=\"dense\"") + count(z, "class=\"empty\""), 200u);
  EXPECT_EQ(count(z, "class=\"dense\""), dense);
  zoom.range = parse_block_range("0:10,295:301", "--range");
  EXPECT_THROW(blocks_svg(hunyuan, {{Mask::sta({3, 3, 3}), {}}}, zoom), Error);
  for (const char* bad : {"1:1,0:3", "0:3", "a:b,c:d", "-1:3,0:3", "0:3,0:3x"})
    EXPECT_THROW(parse_block_range(bad, "--range"), Error) << bad;
}

// ---------------------------------------------------------------------------------------
// Windows.

TEST(WindowSvg, StaAttendsTheEffectiveWindowEverywhere) {
  struct Case {
    Geometry g;
    Extent3 window;
  };
  const Case cases[] = {
      {geo({1, 80, 80}, {1, 8, 8}), {1, 6, 6}},     // the README's 2D demo: 7x7 effective
      {geo({16, 32, 32}, {4, 8, 8}), {3, 3, 3}},
      {geo({16, 32, 32}, {4, 8, 8}), {2, 2, 4}},    // even: K+1
      {geo({16, 32, 32}, {4, 8, 8}), {9, 1, 5}},    // K >= n: the whole axis
  };
  for (const Case& c : cases) {
    const Mask m = Mask::sta(c.window);
    const int64_t expect = effective_sta_window(c.window, c.g.tiles()).volume();
    for (const TokenCoord q : {TokenCoord{0, 0, 0}, TokenCoord{c.g.canvas.t - 1, c.g.canvas.h / 2, c.g.canvas.w - 1},
                               TokenCoord{c.g.canvas.t / 2, c.g.canvas.h / 2, c.g.canvas.w / 2}}) {
      SCOPED_TRACE(to_string(c.g.canvas) + " " + to_string(m) + " query " + std::to_string(q.t) + "," +
                   std::to_string(q.y) + "," + std::to_string(q.x));
      const QueryWindow w = query_window(c.g, m, q);
      EXPECT_EQ(w.attended_tiles, expect);
      EXPECT_EQ(w.dense_tiles, expect);
      const std::string doc = window_svg(c.g, m, q).str();
      ASSERT_EQ(xml_error(doc), "");
      EXPECT_EQ(count(doc, "class=\"attended"), static_cast<size_t>(expect));
      EXPECT_EQ(count(doc, "class=\"attended mixed"), 0u);
      EXPECT_EQ(count(doc, "class=\"query\""), 1u);
    }
  }
  // At the corner of the 2D demo the window shifts (dashed centred window), in the middle not.
  const Geometry image = geo({1, 80, 80}, {1, 8, 8});
  const std::string corner = window_svg(image, Mask::sta({1, 6, 6}), {0, 3, 5}).str();
  EXPECT_EQ(count(corner, "class=\"centred\""), 1u);
  EXPECT_NE(plain_text(corner).find("shifts instead of shrinking"), std::string::npos);
  EXPECT_NE(plain_text(corner).find("effective 7\xC3\x97" "7 tiles"), std::string::npos);
  EXPECT_EQ(count(window_svg(image, Mask::sta({1, 6, 6}), {0, 40, 40}).str(), "class=\"centred\""), 0u);
}

TEST(WindowSvg, SwaDrawsTheQueryTilesBlockRow) {
  const Geometry g = geo({8, 16, 16}, {2, 4, 4});
  const Mask m = Mask::swa({3, 7, 6});
  const TokenCoord q{5, 0, 9};
  const auto visits = key_tile_visits(g, m);
  const auto& row = visits[static_cast<size_t>(((q.t / 2) * 4 + q.y / 4) * 4 + q.x / 4)];
  size_t dense = 0;
  for (const auto& v : row) dense += v.dense;
  const std::string doc = window_svg(g, m, q).str();
  ASSERT_EQ(xml_error(doc), "");
  EXPECT_EQ(count(doc, "class=\"attended dense\""), dense);
  EXPECT_EQ(count(doc, "class=\"attended mixed\""), row.size() - dense);
  EXPECT_GT(count(doc, "class=\"window\""), 0u);
  // Shifted on y (query y = 0): the centred window, frames [4, 7), spans frames of tiles 2 and 3.
  EXPECT_EQ(count(doc, "class=\"centred\""), 2u);
}

// The attended key tiles as drawn: how many, and the tokens they cover (the rect sizes over
// the canvas scale, times the frames of their frame of tiles, read from the tooltip).
struct DrawnWindow {
  int64_t tiles = 0;
  int64_t tokens = 0;
};

DrawnWindow drawn_window(const Geometry& g, const std::string& doc) {
  const std::vector<DrawnRect> canvas = rects_of_class(doc, "canvas");
  EXPECT_FALSE(canvas.empty());
  if (canvas.empty()) return {};
  const double s = canvas[0].w / static_cast<double>(g.canvas.w);
  EXPECT_NEAR(canvas[0].h / s, static_cast<double>(g.canvas.h), 0.01);
  DrawnWindow d;
  for (const DrawnRect& r : rects_of_class(doc, "attended")) {
    ++d.tiles;
    // "key tile (f,y,x): ..." in 3D, "key tile (y,x): ..." in 2D.
    int64_t f = 0;
    long long c[3];
    if (std::sscanf(r.tooltip.c_str(), "key tile (%lld,%lld,%lld)", &c[0], &c[1], &c[2]) == 3) f = c[0];
    // Whole tokens per side: the coordinates are rounded to 0.01 px.
    const int64_t tw = std::lround(r.w / s), th = std::lround(r.h / s);
    EXPECT_NEAR(r.w / s, static_cast<double>(tw), 0.05) << r.tooltip;
    EXPECT_NEAR(r.h / s, static_cast<double>(th), 0.05) << r.tooltip;
    d.tokens += tw * th * g.tile_len(0, f);
  }
  return d;
}

TEST(WindowSvg, RaggedEdgeTilesAreDrawnAtTheirRealSize) {
  const uint64_t seed = 4505;
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 60; ++trial) {
    const Geometry g = testing::random_ragged_geometry(rng, 5, 4);
    const Extent3 n = g.tiles();
    Extent3 window;
    for (int a = 0; a < 3; ++a) window[a] = 1 + static_cast<int64_t>(rng() % 5);
    const Mask m = trial % 4 == 3 ? testing::random_mask(rng, g) : Mask::sta(window);
    const TokenCoord q{static_cast<int64_t>(rng() % static_cast<uint64_t>(g.canvas.t)),
                       static_cast<int64_t>(rng() % static_cast<uint64_t>(g.canvas.h)),
                       static_cast<int64_t>(rng() % static_cast<uint64_t>(g.canvas.w))};
    SCOPED_TRACE("seed " + std::to_string(seed) + " trial " + std::to_string(trial) + " video " +
                 to_string(g.canvas) + " tile " + to_string(g.tile) + " ragged " + to_string(m) +
                 " query " + std::to_string(q.t) + "," + std::to_string(q.y) + "," + std::to_string(q.x));
    const std::string doc = window_svg(g, m, q).str();
    ASSERT_EQ(xml_error(doc), "");
    EXPECT_EQ(count(doc, "class=\"query\""), 1u);
    const DrawnWindow d = drawn_window(g, doc);
    const Extent3 qt{q.t / g.tile.t, q.y / g.tile.h, q.x / g.tile.w};
    if (m.kind == MaskKind::kSta) {
      int64_t tiles = 1;
      for (int a = 0; a < 3; ++a) tiles *= sta_key_tiles(m.window[a], n[a], qt[a]).count;
      int64_t allowed = 0;
      for (int64_t t = 0; t < g.canvas.t; ++t)
        for (int64_t y = 0; y < g.canvas.h; ++y)
          for (int64_t x = 0; x < g.canvas.w; ++x) allowed += video_mask_allows(g, m, q, {t, y, x});
      EXPECT_EQ(d.tiles, tiles);
      EXPECT_EQ(query_window(g, m, q).attended_tiles, tiles);
      EXPECT_EQ(count(doc, "class=\"attended mixed"), 0u);
      EXPECT_EQ(d.tokens, allowed);
    } else {
      // Any mask: the query tile's non-empty key tiles, drawn with their real token counts.
      const BlockClassMap map = block_class_map(g, m);
      const int64_t row = (qt.t * n.h + qt.h) * n.w + qt.w;
      int64_t tiles = 0, tokens = 0;
      for (int64_t k = 0; k < map.cols; ++k)
        if (map.at(row, k) != BlockClass::kEmpty) {
          ++tiles;
          tokens += g.tile_size(k);
        }
      EXPECT_EQ(d.tiles, tiles);
      EXPECT_EQ(d.tokens, tokens);
    }
  }
}

TEST(WindowSvg, RaggedVideoCornerShowsTheShortEdgeTiles) {
  Geometry g = geo({30, 45, 80}, {6, 8, 8});  // 45 = 5 * 8 + 5: the last row of tiles is 5 high
  g.ragged = true;
  const std::string doc = window_svg(g, Mask::sta({3, 3, 3}), {29, 44, 79}).str();
  ASSERT_EQ(xml_error(doc), "");
  EXPECT_EQ(count(doc, "class=\"attended dense"), 27u);
  EXPECT_EQ(drawn_window(g, doc).tokens, 3 * 6 * (16 + 5) * 24);
  EXPECT_EQ(count(doc, "class=\"centred\""), 2u);  // shifted on t, y and x; tile frames 3 and 4
  const std::string text = plain_text(doc);
  EXPECT_NE(text.find("down to 6\xC3\x97" "5\xC3\x97" "8 in the corner"), std::string::npos);
  EXPECT_NE(text.find("frames 24\xE2\x80\x93" "29"), std::string::npos);
  EXPECT_NE(text.find("6\xC3\x97" "5\xC3\x97" "8 tokens, dense"), std::string::npos);  // a tooltip
}

TEST(WindowSvg, QueryOutsideTheCanvasNamesTheArgument) {
  const Geometry image = geo({1, 80, 80}, {1, 8, 8});
  EXPECT_EQ(parse_query_token("3,5", image, "--query").y, 3);
  EXPECT_EQ(parse_query_token("0,3,5", image, "--query").x, 5);
  for (const char* bad : {"80,0", "0,-1", "1,0,0", "a,b", "1,2,3,4", ""}) {
    try {
      parse_query_token(bad, image, "--query");
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--query", 0), 0u) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------
// Attention recall.

TEST(Recall, MassIsTheSoftmaxAndTheWindowShareMatchesBruteForce) {
  const uint64_t seed = 77;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  Geometry ragged = geo({5, 7, 9}, {2, 4, 4}, 5, 8);
  ragged.ragged = true;
  for (const Geometry& g : {geo({4, 8, 8}, {2, 4, 4}, 5, 8), ragged}) {
    const int64_t s = g.seq_len(), d = 6;
    std::vector<float> q(static_cast<size_t>(s * d)), k(q.size());
    for (auto& x : q) x = normal(rng);
    for (auto& x : k) x = normal(rng);
    const Mask m = Mask::sta({1, 1, 2});
    const TokenCoord query{1, 6, 2};
    for (Layout layout : {Layout::kTiled, Layout::kRaster}) {
      SCOPED_TRACE("seed 77, video " + to_string(g.canvas) + ", layout " + to_string(layout));
      const AttentionRecall r = attention_recall(g, layout, m, q.data(), k.data(), d, 0.5, query);
      const int64_t qi = layout == Layout::kTiled ? tiled_index(g, 1, 6, 2) : raster_index(g.canvas, 1, 6, 2);
      std::vector<double> p(static_cast<size_t>(s), 0.0);
      double sum = 0;
      for (int64_t j = 0; j < g.valid_keys(); ++j) {
        double dot = 0;
        for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[qi * d + e]) * k[j * d + e];
        p[j] = std::exp(0.5 * dot);
        sum += p[j];
      }
      double window = 0, total = r.text_mass, text = 0;
      int64_t keys = 0;
      for (int64_t j = 0; j < g.video_tokens(); ++j) {
        const TokenCoord c = token_coord(g, layout, j);
        EXPECT_NEAR(r.mass[raster_index(g.canvas, c.t, c.y, c.x)], p[j] / sum, 1e-12);
        total += r.mass[j];
        if (mask_allows(g, m, layout, qi, j)) {
          window += p[j] / sum;
          ++keys;
        }
      }
      for (int64_t j = g.video_tokens(); j < g.valid_keys(); ++j) text += p[j] / sum;
      EXPECT_NEAR(total, 1.0, 1e-12);
      EXPECT_NEAR(r.window_mass, window, 1e-12);
      EXPECT_NEAR(r.text_mass, text, 1e-12);
      EXPECT_EQ(r.window_keys, keys);
      const std::string doc = recall_svg(g, m, r, HeatScale::kLog, "label <&>").str();
      ASSERT_EQ(xml_error(doc), "");
      EXPECT_NE(plain_text(doc).find("of the mass falls inside"), std::string::npos);
      EXPECT_EQ(count(doc, "class=\"frame-bar\""), static_cast<size_t>(g.canvas.t));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Benchmark JSON and the report.

const char* kBenchJson = R"({
  "context": {"num_cpus": 2, "caches": [{"type": "Data"},]},
  "benchmarks": [
    {"name": "BM_Attention/sta", "run_type": "iteration", "real_time": 2.0e6, "time_unit": "ns", "GFLOP/s": 40, "dense": 8100, "mixed": 0, "empty": 81900},
    {"name": "BM_Attention/sta", "run_type": "iteration", "real_time": 4.0, "time_unit": "ms", "GFLOP/s": 20},
    {"name": "BM_Attention/natten", "real_time": 0.5, "time_unit": "s", "GFLOP/s": NaN, "extra": {"nested": [1, 2, {"x": null}]}},
    {"name": "BM_Bad", "error_occurred": true, "real_time": 1},
    {"name": "BM_Softmax_mean", "run_name": "BM_Softmax", "run_type": "aggregate", "aggregate_name": "mean", "real_time": 12, "time_unit": "us"},
    {"name": "BM_Softmax_median", "run_name": "BM_Softmax", "run_type": "aggregate", "aggregate_name": "median", "real_time": 10, "time_unit": "us"},
    {"name": "BM_Softmax_stddev", "run_name": "BM_Softmax", "run_type": "aggregate", "aggregate_name": "stddev", "real_time": 1, "time_unit": "us"},
    {"name": "BM_Softmax", "run_type": "iteration", "real_time": 99, "time_unit": "us"},
    {"name": "BM_NoTime", "time_unit": "ms"},
  ],
})";

TEST(BenchmarkJson, ReadsTimesCountersAndAggregatesTolerantly) {
  const auto rows = parse_benchmark_json(kBenchJson, "bench.json");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].name, "BM_Attention/sta");
  EXPECT_DOUBLE_EQ(rows[0].real_time_ms, 3.0);  // mean of 2 ms and 4 ms
  EXPECT_DOUBLE_EQ(rows[0].gflops, 30.0);
  EXPECT_EQ(rows[0].runs, 2);
  EXPECT_DOUBLE_EQ(rows[0].dense, 8100);
  EXPECT_DOUBLE_EQ(rows[1].real_time_ms, 500.0);
  EXPECT_LT(rows[1].gflops, 0);  // NaN counts as absent
  EXPECT_EQ(rows[2].name, "BM_Softmax");
  EXPECT_DOUBLE_EQ(rows[2].real_time_ms, 0.010);  // the median aggregate wins
  EXPECT_EQ(xml_error(benchmark_chart_svg(rows).str()), "");
  for (const char* bad : {"", "{", "{\"benchmarks\": [", "{\"benchmarks\": [{\"name\": \"x\" \"y\"}]}",
                          "[1, 2]", "{\"context\": {}}", "{\"benchmarks\": {}}", "{} x"}) {
    try {
      parse_benchmark_json(bad, "b.json");
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("b.json", 0), 0u) << e.what();
    }
  }
}

// Every <svg>...</svg> inlined in an HTML page.
std::vector<std::string> inline_svgs(const std::string& page) {
  std::vector<std::string> out;
  for (size_t at = page.find("<svg"); at != std::string::npos; at = page.find("<svg", at + 1)) {
    const size_t end = page.find("</svg>", at);
    if (end == std::string::npos) break;
    out.push_back(page.substr(at, end + 6 - at));
  }
  return out;
}

TEST(Report, SelfContainedPageWithWellFormedPictures) {
  ReportOptions opt;
  opt.benchmarks = parse_benchmark_json(kBenchJson, "bench.json");
  opt.benchmark_source = "bench <1>.json";
  const std::string page = report_html(opt);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("href=\"http"), std::string::npos);
  EXPECT_EQ(page.find("@import"), std::string::npos);
  const auto svgs = inline_svgs(page);
  EXPECT_EQ(svgs.size(), 7u);  // 3 block maps, 3 windows, 1 benchmark chart
  for (const auto& s : svgs) EXPECT_EQ(xml_error(s), "") << s.substr(0, 200);
  for (const char* text : {"What STA is", "sta:3,3,3", "swa:19,25,25", "8,100", "23,004", "91.00%",
                           "Every exact claim holds", "0.0579%", "BM_Attention/sta", "bench &lt;1&gt;.json"})
    EXPECT_NE(page.find(text), std::string::npos) << text;
  const std::string plain = report_html({});
  EXPECT_EQ(inline_svgs(plain).size(), 6u);
  EXPECT_NE(plain.find("No benchmark file was given"), std::string::npos);
}

// Screenshots `url` with headless Chromium; returns the PNG's size in bytes (0 on failure).
size_t screenshot_bytes(const std::string& url, const std::string& png, const std::string& profile) {
  const std::string cmd =
      "timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic "
      "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
      "--user-data-dir=" + profile + " --screenshot=" + png + " --window-size=1400,1000 '" + url +
      "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0 || !exists(png)) return 0;
  return read_file(png).size();
}

TEST(Report, RendersInHeadlessChromiumToAPictureThatIsNotBlank) {
  if (!exists("/usr/bin/chromium"))
    GTEST_SKIP() << "/usr/bin/chromium is missing (apt-get install chromium) - render check skipped";
  const std::string dir = temp_dir();
  const auto r = run_cli("report --out " + dir + "/report");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ofstream(dir + "/blank.html") << "<!DOCTYPE html><html><body></body></html>\n";
  const size_t page = screenshot_bytes("file://" + dir + "/report/index.html", dir + "/report.png", dir + "/p1");
  const size_t blank = screenshot_bytes("file://" + dir + "/blank.html", dir + "/blank.png", dir + "/p2");
  ASSERT_GT(blank, 0u) << "chromium produced no screenshot";
  ASSERT_GT(page, 0u) << "chromium produced no screenshot of the report";
  // A blank page compresses to almost nothing; text, tables and pictures do not.
  EXPECT_GT(page, 8 * blank) << "report screenshot " << page << " bytes vs blank " << blank;
  const std::string png = read_file(dir + "/report.png");
  EXPECT_EQ(png.compare(0, 8, "\x89PNG\r\n\x1a\n"), 0);
  std::system(("rm -rf '" + dir + "'").c_str());
}

// ---------------------------------------------------------------------------------------
// The command line.

TEST(CliViz, WritesPicturesThatAgreeWithCounts) {
  const std::string dir = temp_dir();
  auto r = run_cli("viz blocks --video 8,16,16 --tile 2,4,4 --mask sta:3,3,3 --compare swa:5,11,11 --out " +
                   dir + "/b.svg");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string doc = read_file(dir + "/b.svg");
  EXPECT_EQ(xml_error(doc), "");
  const Geometry g = geo({8, 16, 16}, {2, 4, 4});
  EXPECT_EQ(count(doc, "class=\"mixed\""), static_cast<size_t>(classify_blocks(g, Mask::swa({5, 11, 11})).counts.mixed));
  r = run_cli("viz blocks --video 8,16,16 --tile 2,4,4 --mask swa:5,11,11 --order raster --order tiled "
              "--block 32,32 --out " + dir + "/r.svg");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  doc = read_file(dir + "/r.svg");
  EXPECT_EQ(count(doc, "class=\"dense\"") + count(doc, "class=\"mixed\"") + count(doc, "class=\"empty\""),
            2u * 64 * 64);
  r = run_cli("viz window --video 80,80 --tile 8,8 --mask sta:6,6 --query 3,5 --out " + dir + "/w.svg");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(read_file(dir + "/w.svg"), "class=\"attended"), 49u);
  // recall from .npy files
  const Geometry rg = geo({2, 8, 8}, {1, 4, 4}, 3, 4);
  const int64_t s = rg.seq_len(), d = 4;
  std::vector<float> q(static_cast<size_t>(2 * s * d));
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  write_npy(dir + "/q.npy", q.data(), {1, 2, s, d}, false, "q");
  r = run_cli("viz recall --q " + dir + "/q.npy --k " + dir + "/q.npy --video 2,8,8 --tile 1,4,4 "
              "--text-length 3 --text-pad 4 --mask sta:1,1,1 --mask swa:1,3,3 --head 1 --query 1,2,3 --out " +
              dir + "/rc.svg");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("window mass"), std::string::npos);
  doc = read_file(dir + "/rc.svg");
  EXPECT_EQ(xml_error(doc), "");
  EXPECT_NE(plain_text(doc).find("swa:1,3,3 window"), std::string::npos);
  // --force replaces, without it the file is kept
  r = run_cli("viz window --video 80,80 --tile 8,8 --mask sta:2,2 --out " + dir + "/w.svg");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count(read_file(dir + "/w.svg"), "class=\"attended"), 49u);
  r = run_cli("viz window --video 80,80 --tile 8,8 --mask sta:2,2 --out " + dir + "/w.svg --force");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(read_file(dir + "/w.svg"), "class=\"attended"), 9u);
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(CliViz, RaggedCanvasesDraw) {
  const std::string dir = temp_dir();
  auto r = run_cli("viz window --video 30,45,80 --ragged --tile 6,8,8 --mask sta:3,3,3 --query 29,44,79 --out " +
                   dir + "/w.svg");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string doc = read_file(dir + "/w.svg");
  EXPECT_EQ(xml_error(doc), "");
  EXPECT_EQ(count(doc, "class=\"attended dense"), 27u);
  Geometry g = geo({30, 45, 80}, {6, 8, 8});
  g.ragged = true;
  EXPECT_EQ(drawn_window(g, doc).tokens, 3 * 6 * (16 + 5) * 24);
  EXPECT_NE(plain_text(doc).find("down to 6\xC3\x97" "5\xC3\x97" "8 in the corner"), std::string::npos);
  r = run_cli("viz blocks --video 30,45,80 --ragged --tile 6,8,8 --mask sta:3,3,3 --compare swa:9,23,23 --out " +
              dir + "/b.svg");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(xml_error(read_file(dir + "/b.svg")), "");
  // recall on a ragged canvas: S = 3*5*7 = 105 video tokens
  const int64_t s = 105, d = 4;
  std::vector<float> q(static_cast<size_t>(s * d));
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(std::cos(0.41 * static_cast<double>(i)));
  write_npy(dir + "/q.npy", q.data(), {1, 1, s, d}, false, "q");
  r = run_cli("viz recall --q " + dir + "/q.npy --k " + dir + "/q.npy --video 3,5,7 --ragged --tile 2,4,4 "
              "--mask sta:1,1,1 --query 2,4,6 --out " + dir + "/rc.svg");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(xml_error(read_file(dir + "/rc.svg")), "");
  // without --ragged the shape is still an error naming the axis
  r = run_cli("viz window --video 30,45,80 --tile 6,8,8 --mask sta:3,3,3 --out " + dir + "/x.svg");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--ragged"), std::string::npos) << r.output;
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(CliViz, BadInputGivesOneLineErrorNamingTheArgument) {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/exists.svg") << "keep";
  ::mkdir((dir + "/rep").c_str(), 0777);
  std::ofstream(dir + "/rep/index.html") << "keep";
  std::vector<float> x(2 * 64 * 4, 0.5f);
  write_npy(dir + "/short.npy", x.data(), {1, 2, 64, 4}, false, "x");
  struct Bad {
    std::string args, names;
  };
  const std::vector<Bad> cases = {
      {"viz blocks --video 8,16,16 --tile 2,4,4", "--out"},
      {"viz window --video 80,80 --tile 8,8 --mask sta:6,6", "--out"},
      {"viz window --video 80,80 --tile 8,8 --mask sta:6,6 --query 3,80 --out " + dir + "/w.svg", "--query"},
      {"viz window --video 80,80 --tile 8,8 --mask sta:6,6 --query 1,3,5 --out " + dir + "/w.svg", "--query"},
      {"viz window --video 80,80 --tile 8,8 --query x --out " + dir + "/w.svg", "--query"},
      {"viz window --video 80,80 --tile 8,8 --mask sta:6,6 --out " + dir + "/exists.svg", "--out"},
      {"viz blocks --video 8,16,16 --tile 2,4,4 --range 0:5,0:99 --out " + dir + "/b.svg", "--range"},
      {"viz blocks --video 8,16,16 --tile 2,4,4 --range 5:1,0:3 --out " + dir + "/b.svg", "--range"},
      {"viz blocks --video 8,16,16 --tile 2,4,4 --block 8,8 --out " + dir + "/b.svg", "--block"},
      {"viz blocks --video 8,16,16 --tile 2,4,4 --compare blob --out " + dir + "/b.svg", "--compare"},
      {"viz blocks --video 8,16,16 --tile 2,4,4 --max-cells 2 --out " + dir + "/b.svg", "--max-cells"},
      {"viz blocks --video 8,16,16 --tile 2,4,4 --frobnicate 1 --out " + dir + "/b.svg", "--frobnicate"},
      {"viz recall --k a.npy --video 2,8,8 --tile 1,4,4 --out " + dir + "/r.svg", "--q"},
      {"viz recall --q " + dir + "/short.npy --video 2,8,8 --tile 1,4,4 --out " + dir + "/r.svg", "--k"},
      {"viz recall --q " + dir + "/short.npy --k " + dir + "/short.npy --video 2,8,8 --tile 1,4,4 --out " + dir +
           "/r.svg", "--q"},  // S = 64 but the canvas has 128 tokens
      {"viz recall --q " + dir + "/nope.npy --k x --video 2,8,8 --tile 1,4,4 --out " + dir + "/r.svg", "--q"},
      {"viz recall --q " + dir + "/short.npy --k " + dir + "/short.npy --video 1,8,8 --tile 1,4,4 --head 2 --out " +
           dir + "/r.svg", "--head"},
      {"viz recall --q " + dir + "/short.npy --k " + dir + "/short.npy --video 1,8,8 --tile 1,4,4 --heat hot --out " +
           dir + "/r.svg", "--heat"},
      {"report", "--out"},
      {"report --out " + dir + "/rep", "--out"},
      {"report --out " + dir + "/exists.svg/sub", "--out"},
      {"report --out " + dir + "/new --bench " + dir + "/nope.json", "--bench"},
      {"report --out " + dir + "/new --bench " + dir + "/exists.svg", "--bench"},
  };
  for (const Bad& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "not one line: " << r.output;
  }
  EXPECT_EQ(read_file(dir + "/exists.svg"), "keep");
  EXPECT_EQ(read_file(dir + "/rep/index.html"), "keep");
  EXPECT_FALSE(exists(dir + "/new/index.html"));
  EXPECT_EQ(run_cli("viz").exit_code, 2);
  EXPECT_EQ(run_cli("viz sculpture --out x.svg").exit_code, 2);
  for (const char* cmd : {"viz", "report"}) {
    const auto h = run_cli(std::string(cmd) + " --help");
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_NE(h.output.find("Usage: sta " + std::string(cmd)), std::string::npos) << h.output;
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace sta
