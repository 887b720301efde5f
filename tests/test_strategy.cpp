// FastVideo mask strategies: the strict reader, per-head masks, the summaries and sparsity,
// a mutation fuzz of the reader, a full-size (72,000-key) file, and `sta strategy` /
// `--strategy` on the command line.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/json.hpp"
#include "sta/strategy.hpp"

namespace sta {
namespace {

using testing::json_int;
using testing::run_cli;

const std::string kSmall = std::string(STA_SOURCE_DIR) + "/tests/data/mask_strategy_small.json";

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Compact JSON of the entries, for round trips.
std::string to_json(const MaskStrategy& s) {
  std::string out = "{";
  for (size_t i = 0; i < s.entries.size(); ++i) {
    const auto& e = s.entries[i];
    out += (i ? ",\"" : "\"") + strategy_key(e.step, e.layer, e.head) + "\":[" +
           std::to_string(e.window.t) + "," + std::to_string(e.window.h) + "," +
           std::to_string(e.window.w) + "]";
  }
  return out + "}";
}

// Throws if `text` parses; otherwise returns the message.
std::string parse_error(const std::string& text) {
  try {
    parse_mask_strategy(text, "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "<parsed without error>";
}

TEST(MaskStrategyParse, ReadsTheExampleFile) {
  const MaskStrategy s = read_mask_strategy(kSmall);
  EXPECT_EQ(s.source, kSmall);
  ASSERT_EQ(s.entries.size(), 12u);
  EXPECT_EQ(strategy_steps(s), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(strategy_layers(s), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(strategy_heads(s), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(strategy_is_complete(s));
  ASSERT_NE(s.find(1, 1, 1), nullptr);
  EXPECT_EQ(s.find(1, 1, 1)->window, (Extent3{3, 6, 10}));
  EXPECT_EQ(s.find(1, 0, 2)->window, (Extent3{5, 6, 1}));
  EXPECT_EQ(s.find(2, 0, 0), nullptr);
  EXPECT_EQ(s.find(0, 0, 3), nullptr);
  for (size_t i = 1; i < s.entries.size(); ++i) {
    const auto& a = s.entries[i - 1];
    const auto& b = s.entries[i];
    EXPECT_LT(std::make_tuple(a.step, a.layer, a.head), std::make_tuple(b.step, b.layer, b.head));
  }
}

TEST(MaskStrategyParse, AcceptsAnyJsonWhitespaceAndAnyKeyOrder) {
  const std::string texts[] = {
      R"({"1_0_0":[1,2,3],"0_0_1":[4,5,6],"0_0_0":[7,8,9]})",
      " \t\r\n{ \"1_0_0\" :\n[ 1 ,\t2 , 3 ] ,\r\n\"0_0_1\":[4,5,6]\n,\"0_0_0\" : [7,\n8,9]}\n\n",
      "{\"0_0_0\":[7,8,9],\r\n\"0_0_1\":[4,5,6],\"1_0_0\":[1,2,3]}",
  };
  for (const auto& t : texts) {
    const MaskStrategy s = parse_mask_strategy(t, "ws.json");
    ASSERT_EQ(s.entries.size(), 3u) << t;
    EXPECT_EQ(s.entries[0].window, (Extent3{7, 8, 9}));
    EXPECT_EQ(s.entries[1].window, (Extent3{4, 5, 6}));
    EXPECT_EQ(s.entries[2].window, (Extent3{1, 2, 3}));
    EXPECT_EQ(s.entries[2].step, 1);
    EXPECT_FALSE(strategy_is_complete(s));  // 2 steps x 1 layer x 2 heads, 3 keys
  }
  const MaskStrategy big = parse_mask_strategy(
      R"({"2147483647_0_10":[2147483647,1,1]})", "max.json");
  EXPECT_EQ(big.entries[0].step, kMaxStrategyValue);
  EXPECT_EQ(big.entries[0].head, 10);
  EXPECT_EQ(big.entries[0].window.t, kMaxStrategyValue);
}

struct Malformed {
  const char* category;
  std::string text;
  std::vector<std::string> mentions;  // every one must appear in the message
};

TEST(MaskStrategyParse, RejectsEveryMalformedCategoryWithAClearMessage) {
  const std::vector<Malformed> cases = {
      {"duplicate key", R"({"0_0_0":[1,1,1],"0_0_1":[1,1,1],"0_0_0":[2,2,2]})",
       {"duplicate key \"0_0_0\"", "byte 33", "first at 1:2 (byte 1)"}},
      {"duplicate key, later one out of order",
       "{\"0_0_1\":[1,1,1],\n\"0_0_0\":[1,1,1],\n\"0_0_1\":[2,2,2]}",
       {"duplicate key \"0_0_1\"", "bad.json:3:1", "first at 1:2"}},
      {"trailing comma in the object", R"({"0_0_0":[1,1,1],})",
       {"trailing comma", "\"0_0_0\""}},
      {"trailing comma in a window", R"({"0_0_0":[1,1,1,]})", {"trailing comma", "\"0_0_0\""}},
      {"trailing comma after 2 entries", R"({"0_0_0":[1,1,]})", {"trailing comma", "\"0_0_0\""}},
      {"float", R"({"0_0_0":[1,5.0,1]})", {"5.0", "not an integer", "kh", "\"0_0_0\""}},
      {"exponent", R"({"0_0_0":[5e0,1,1]})", {"5e0", "not an integer", "\"0_0_0\""}},
      {"signed exponent", R"({"0_0_7":[1,1,5E+1]})", {"5E+1", "kw", "\"0_0_7\""}},
      {"string number", R"({"0_1_0":[1,"5",1]})", {"is a string", "\"0_1_0\""}},
      {"negative window", R"({"0_0_2":[1,1,-3]})", {"-3", "positive", "\"0_0_2\""}},
      {"zero window", R"({"0_0_0":[0,1,1]})", {"is 0", "positive", "\"0_0_0\""}},
      {"minus zero", R"({"0_0_0":[-0,1,1]})", {"-0", "positive"}},
      {"leading zero", R"({"0_0_0":[05,1,1]})", {"leading zeros", "\"0_0_0\""}},
      {"bare minus", R"({"0_0_0":[-,1,1]})", {"expected an integer", "\"0_0_0\""}},
      {"too few entries", R"({"0_0_0":[1,1]})", {"2 entries", "expected 3", "\"0_0_0\""}},
      {"one entry", R"({"9_9_9":[4]})", {"1 entries", "\"9_9_9\""}},
      {"empty window", R"({"0_0_0":[]})", {"empty", "\"0_0_0\""}},
      {"too many entries", R"({"0_0_0":[1,1,1,1]})", {"more than 3", "\"0_0_0\""}},
      {"key with two parts", R"({"0_0":[1,1,1]})", {"\"0_0\"", "not of the form"}},
      {"key with four parts", R"({"0_0_0_0":[1,1,1]})", {"\"0_0_0_0\"", "not of the form"}},
      {"key with letters", R"({"a_b_c":[1,1,1]})", {"\"a_b_c\"", "not of the form"}},
      {"negative index", R"({"-1_0_0":[1,1,1]})", {"\"-1_0_0\"", "not of the form"}},
      {"plus sign", R"({"+1_0_0":[1,1,1]})", {"\"+1_0_0\"", "not of the form"}},
      {"leading zero index", R"({"00_0_0":[1,1,1]})", {"\"00_0_0\"", "not of the form"}},
      {"empty index", R"({"0__0":[1,1,1]})", {"\"0__0\"", "not of the form"}},
      {"space in key", R"({"0_0_0 ":[1,1,1]})", {"\"0_0_0 \"", "not of the form"}},
      {"empty key", R"({"":[1,1,1]})", {"\"\"", "not of the form"}},
      {"escape in key", R"({"0_0_\u0030":[1,1,1]})", {"escape", "\"0_0_\\\\\""}},
      {"key index overflow", R"({"2147483648_0_0":[1,1,1]})", {"\"2147483648_0_0\"", "out of range"}},
      {"key index huge", R"({"0_99999999999999999999999_0":[1,1,1]})", {"out of range"}},
      {"window overflow", R"({"0_0_0":[1,2147483648,1]})", {"out of range", "kh", "\"0_0_0\""}},
      {"window huge", R"({"0_0_0":[1,1,123456789012345678901234567890]})", {"out of range"}},
      {"unterminated key", R"({"0_0_0)", {"unterminated string", "byte 1"}},
      {"unterminated key later", "{\"0_0_0\":[1,1,1],\n  \"0_0_", {"unterminated string", "bad.json:2:3"}},
      {"raw newline in key", "{\"0_0\n_0\":[1,1,1]}", {"control character", "\"0_0\\x0a\""}},
      {"nested array", R"({"0_0_0":[[1],1,1]})", {"nested array", "\"0_0_0\""}},
      {"object value", R"({"0_0_0":{"t":1}})", {"must be an array", "\"0_0_0\""}},
      {"nested object member", R"({"0_0_0":[1,1,1],"x":{}})", {"\"x\"", "not of the form"}},
      {"number value", R"({"0_0_0":5})", {"must be an array", "\"0_0_0\""}},
      {"null value", R"({"0_0_0":null})", {"must be an array", "\"0_0_0\""}},
      {"true in window", R"({"0_0_0":[1,true,1]})", {"expected an integer", "\"0_0_0\""}},
      {"top-level array", R"([{"0_0_0":[1,1,1]}])", {"expected '{'", "byte 0"}},
      {"top-level string", R"("0_0_0")", {"expected '{'"}},
      {"empty document", "", {"empty document"}},
      {"whitespace only", " \n\t ", {"empty document", "bad.json:2:3"}},
      {"empty object", "{ }", {"empty object"}},
      {"trailing garbage", R"({"0_0_0":[1,1,1]} x)", {"trailing characters", "byte 18"}},
      {"two objects", R"({"0_0_0":[1,1,1]}{"0_0_1":[1,1,1]})", {"trailing characters"}},
      {"missing colon", R"({"0_0_0" [1,1,1]})", {"expected ':'", "\"0_0_0\""}},
      {"missing comma between members", R"({"0_0_0":[1,1,1] "0_0_1":[1,1,1]})",
       {"expected ',' or '}'", "\"0_0_0\""}},
      {"missing comma in window", R"({"0_0_0":[1 1,1]})", {"expected ',' or ']'", "\"0_0_0\""}},
      {"missing closing bracket", R"({"0_0_0":[1,1,1})", {"expected ']'", "\"0_0_0\""}},
      {"truncated after value", R"({"0_0_0":[1,1,1])", {"unterminated object", "\"0_0_0\""}},
      {"truncated inside window", R"({"0_0_0":[1,1)", {"\"0_0_0\"", "end of input"}},
      {"truncated after comma", R"({"0_0_0":[1,1,1],)", {"unterminated object"}},
      {"single-quoted key", R"({'0_0_0':[1,1,1]})", {"expected a key"}},
      {"form feed is not JSON whitespace", "{\f\"0_0_0\":[1,1,1]}", {"expected a key"}},
      {"byte order mark", "\xEF\xBB\xBF{\"0_0_0\":[1,1,1]}", {"expected '{'", "\\xef"}},
      {"NUL byte", std::string("{\"0_0_0\":[1,1,1]}\0", 18), {"trailing characters", "\\x00"}},
      {"comment", "{\"0_0_0\":[1,1,1] // full\n}", {"expected ',' or '}'"}},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(c.text);
    EXPECT_EQ(msg.rfind("bad.json:", 0), 0u) << c.category << ": " << msg;
    for (const auto& m : c.mentions)
      EXPECT_NE(msg.find(m), std::string::npos)
          << c.category << ": message lacks '" << m << "': " << msg;
  }
}

TEST(MaskStrategyParse, MissingFileNamesThePath) {
  try {
    read_mask_strategy("/nonexistent/strategy.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/strategy.json"), std::string::npos);
  }
}

TEST(StrategyMasks, PicksEachHeadsWindow) {
  const MaskStrategy s = read_mask_strategy(kSmall);
  const std::vector<Mask> m = strategy_masks(s, 0, 1);
  ASSERT_EQ(m.size(), 3u);
  for (const auto& x : m) EXPECT_EQ(x.kind, MaskKind::kSta);
  EXPECT_EQ(m[0].window, (Extent3{5, 6, 10}));
  EXPECT_EQ(m[1].window, (Extent3{3, 3, 3}));
  EXPECT_EQ(m[2].window, (Extent3{1, 6, 10}));
  const std::vector<Mask> m2 = strategy_masks(s, 1, 0, 3);
  ASSERT_EQ(m2.size(), 3u);
  EXPECT_EQ(m2[0].window, (Extent3{3, 3, 3}));
  EXPECT_EQ(m2[1].window, (Extent3{1, 6, 10}));
  EXPECT_EQ(m2[2].window, (Extent3{5, 6, 1}));
}

TEST(StrategyMasks, MissingOrExtraHeadsNameTheKey) {
  auto message = [](const MaskStrategy& s, int64_t step, int64_t layer, int64_t heads) {
    try {
      strategy_masks(s, step, layer, heads);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  const MaskStrategy s = read_mask_strategy(kSmall);
  EXPECT_NE(message(s, 0, 1, 4).find("missing key \"0_1_3\""), std::string::npos);
  EXPECT_NE(message(s, 0, 1, 2).find("key \"0_1_2\" is beyond the 2 heads"), std::string::npos);
  EXPECT_NE(message(s, 2, 0, -1).find("missing key \"2_0_0\""), std::string::npos);
  EXPECT_NE(message(s, 0, 5, -1).find("missing key \"0_5_0\""), std::string::npos);
  EXPECT_NE(message(s, 0, 0, 0).find("heads must be >= 1"), std::string::npos);
  EXPECT_NE(message(s, 0, 0, 0).find(kSmall), std::string::npos);
  const MaskStrategy gap =
      parse_mask_strategy(R"({"0_0_0":[1,1,1],"0_0_2":[1,1,1],"0_1_0":[1,1,1]})", "gap.json");
  const std::string g = message(gap, 0, 0, -1);
  EXPECT_EQ(g.rfind("gap.json: missing key \"0_0_1\"", 0), 0u) << g;
  EXPECT_NE(g.find("has heads 0, 2"), std::string::npos) << g;
  const MaskStrategy late = parse_mask_strategy(R"({"3_4_1":[1,1,1]})", "late.json");
  EXPECT_NE(message(late, 3, 4, -1).find("missing key \"3_4_0\""), std::string::npos);
}

TEST(StrategySummary, HistogramByDescendingCountThenWindow) {
  const auto h = strategy_window_histogram(read_mask_strategy(kSmall));
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h[0].window, (Extent3{3, 3, 3}));
  EXPECT_EQ(h[0].count, 4);
  EXPECT_EQ(h[1].window, (Extent3{5, 6, 10}));
  EXPECT_EQ(h[1].count, 4);
  EXPECT_EQ(h[2].window, (Extent3{1, 6, 10}));
  EXPECT_EQ(h[2].count, 2);
  EXPECT_EQ(h[3].window, (Extent3{3, 6, 10}));
  EXPECT_EQ(h[4].window, (Extent3{5, 6, 1}));
  int64_t total = 0;
  for (const auto& w : h) total += w.count;
  EXPECT_EQ(total, 12);
}

TEST(StrategySummary, FormatIndexSet) {
  EXPECT_EQ(format_index_set({}), "none");
  EXPECT_EQ(format_index_set({0}), "0");
  EXPECT_EQ(format_index_set({0, 1}), "0, 1");
  EXPECT_EQ(format_index_set({0, 1, 2, 5, 7, 8, 9}), "0-2, 5, 7-9");
}

TEST(StrategySparsity, MatchesHandComputation) {
  // Hunyuan grid 5x6x10 = 300 tiles. Step 0: four [5,6,10] (300 each), [3,3,3] (27),
  // [1,6,10] (60): 1 - 1287/1800 = 0.285. Step 1: [3,3,3] x3 (81), [1,6,10] (60),
  // [5,6,1] (30), [3,6,10] (180): 1 - 351/1800 = 0.805. All: 1 - 1638/3600 = 0.545.
  const MaskStrategy s = read_mask_strategy(kSmall);
  const Geometry g;
  const auto per_step = strategy_sparsity_per_step(s, g);
  ASSERT_EQ(per_step.size(), 2u);
  EXPECT_EQ(per_step[0].step, 0);
  EXPECT_EQ(per_step[0].keys, 6);
  EXPECT_NEAR(per_step[0].sparsity, 0.285, 1e-12);
  EXPECT_NEAR(per_step[1].sparsity, 0.805, 1e-12);
  const StrategySparsity all = strategy_sparsity(s, g);
  EXPECT_EQ(all.step, -1);
  EXPECT_EQ(all.keys, 12);
  EXPECT_NEAR(all.sparsity, 0.545, 1e-12);
  // Every window is odd or spans its axis: FastVideo's raw formula agrees.
  EXPECT_DOUBLE_EQ(all.sparsity_raw, all.sparsity);
  for (const auto& p : per_step) EXPECT_DOUBLE_EQ(p.sparsity_raw, p.sparsity);

  // Even and oversized windows: [2,2,2] covers 3x3x3 = 27 tiles (raw 8); [7,1,20] covers
  // 5x1x10 = 50 (raw 140). Ours 1 - 77/600, FastVideo's 1 - 148/600.
  const MaskStrategy odd = parse_mask_strategy(R"({"0_0_0":[2,2,2],"0_0_1":[7,1,20]})", "e");
  const StrategySparsity o = strategy_sparsity(odd, g);
  EXPECT_NEAR(o.sparsity, 1.0 - 77.0 / 600.0, 1e-12);
  EXPECT_NEAR(o.sparsity_raw, 1.0 - 148.0 / 600.0, 1e-12);
  // A huge window: FastVideo's formula goes negative, ours stops at full attention.
  const StrategySparsity h = strategy_sparsity(
      parse_mask_strategy(R"({"0_0_0":[100,100,100]})", "h"), g);
  EXPECT_EQ(h.sparsity, 0.0);
  EXPECT_LT(h.sparsity_raw, 0.0);
}

TEST(StrategySparsity, EqualsTheBlockClassifierAveragedOverHeads) {
  const MaskStrategy s = read_mask_strategy(kSmall);
  Geometry small;
  small.canvas = {12, 16, 24};
  small.tile = {3, 4, 4};  // 4x4x6 tiles: [5,6,10] and [3,6,10] clamp, [1,6,10] too
  for (const Geometry& g : {Geometry{}, small}) {
    for (const auto& p : strategy_sparsity_per_step(s, g)) {
      double sum = 0;
      int64_t n = 0;
      for (int64_t layer : strategy_layers(s))
        for (const Mask& m : strategy_masks(s, p.step, layer)) {
          sum += classify_blocks(g, m).sparsity();
          ++n;
        }
      EXPECT_EQ(n, p.keys);
      EXPECT_NEAR(p.sparsity, sum / static_cast<double>(n), 1e-12)
          << "step " << p.step << " canvas " << to_string(g.canvas);
    }
  }
}

// Random mutations of the example file (byte flips, insertions, deletions, truncations):
// each must parse or throw sta::Error, never crash or throw anything else; what parses must
// round-trip.
TEST(MaskStrategyFuzz, MutationsParseOrThrowStaError) {
  const uint64_t seed = 20250214;
  std::mt19937_64 rng(seed);
  const std::string base = read_text(kSmall);
  ASSERT_FALSE(base.empty());
  // Bytes that are likely to make syntactically interesting inputs, plus any byte.
  const std::string alphabet = "{}[],:\"_-+.eE0123456789 \n\t\\xu";
  const auto start = std::chrono::steady_clock::now();
  int64_t parsed = 0, rejected = 0;
  constexpr int kInputs = 120000;
  for (int i = 0; i < kInputs; ++i) {
    std::string t = i % 7 == 0 ? to_json(parse_mask_strategy(base, "x")) : base;
    const int mutations = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations; ++m) {
      const size_t at = t.empty() ? 0 : static_cast<size_t>(rng() % (t.size() + 1));
      const char byte = rng() % 4 == 0 ? static_cast<char>(rng() & 0xff)
                                       : alphabet[static_cast<size_t>(rng() % alphabet.size())];
      switch (rng() % 4) {
        case 0:
          if (at < t.size()) t[at] = byte;
          break;
        case 1: t.insert(t.begin() + static_cast<std::ptrdiff_t>(at), byte); break;
        case 2:
          if (at < t.size()) t.erase(at, 1 + rng() % 3);
          break;
        default: t.resize(at); break;
      }
    }
    try {
      const MaskStrategy s = parse_mask_strategy(t, "fuzz.json");
      ++parsed;
      ASSERT_FALSE(s.entries.empty());
      const MaskStrategy again = parse_mask_strategy(to_json(s), "again.json");
      ASSERT_EQ(to_json(again), to_json(s)) << "seed " << seed << " input " << i << ": " << t;
      for (const auto& e : s.entries)
        for (int a = 0; a < 3; ++a)
          ASSERT_TRUE(e.window[a] >= 1 && e.window[a] <= kMaxStrategyValue);
    } catch (const Error& e) {
      ++rejected;
      ASSERT_EQ(std::string(e.what()).rfind("fuzz.json:", 0), 0u)
          << "seed " << seed << " input " << i << ": " << e.what();
    } catch (const std::exception& e) {
      FAIL() << "seed " << seed << " input " << i << ": non-sta exception " << e.what()
             << " for: " << t;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ fuzz     ] %d mutated inputs (seed %llu): %lld parsed, %lld rejected, %.2f s\n",
              kInputs, static_cast<unsigned long long>(seed), static_cast<long long>(parsed),
              static_cast<long long>(rejected), secs);
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, kInputs / 2);
}

class StrategyFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sta_strategy_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// FastVideo's Hunyuan file has 50 steps x 60 layers x 24 heads = 72,000 keys written by
// json.dump(indent=4) (about 4 MB). Build one like it (scripts/make_mask_strategy.py does
// the same from the shell) and read it back; only correctness is asserted, the time printed.
TEST_F(StrategyFiles, FullSizeHunyuanFileParses) {
  const int64_t kSteps = 50, kLayers = 60, kHeads = 24;
  const Extent3 windows[] = {{3, 3, 3}, {1, 6, 10}, {5, 6, 1}, {3, 6, 10}, {5, 6, 10}};
  std::string text = "{";
  for (int64_t t = 0; t < kSteps; ++t)
    for (int64_t l = 0; l < kLayers; ++l)
      for (int64_t h = 0; h < kHeads; ++h) {
        const Extent3& w = windows[(t * 7 + l * 3 + h) % 5];
        text += (text.size() > 1 ? ",\n    \"" : "\n    \"") + strategy_key(t, l, h) +
                "\": [\n        " + std::to_string(w.t) + ",\n        " + std::to_string(w.h) +
                ",\n        " + std::to_string(w.w) + "\n    ]";
      }
  text += "\n}";
  const std::string file = path("mask_strategy_hunyuan_synthetic.json");
  write_text(file, text);
  const auto t0 = std::chrono::steady_clock::now();
  const MaskStrategy s = read_mask_strategy(file);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ timing   ] read_mask_strategy: %zu keys, %.2f MB in %.2f ms\n", s.entries.size(),
              static_cast<double>(text.size()) / 1e6, ms);
  ASSERT_EQ(static_cast<int64_t>(s.entries.size()), kSteps * kLayers * kHeads);
  EXPECT_TRUE(strategy_is_complete(s));
  EXPECT_EQ(strategy_steps(s).size(), 50u);
  EXPECT_EQ(strategy_layers(s).size(), 60u);
  EXPECT_EQ(strategy_heads(s).size(), 24u);
  const std::vector<Mask> m = strategy_masks(s, 30, 45);
  ASSERT_EQ(m.size(), 24u);
  for (int64_t h = 0; h < kHeads; ++h)
    EXPECT_EQ(m[static_cast<size_t>(h)].window, windows[(30 * 7 + 45 * 3 + h) % 5]);
}

TEST_F(StrategyFiles, CliSummarisesTheExample) {
  const auto r = run_cli("strategy " + quoted(kSmall));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"12 keys", "steps      2  (0, 1)", "heads      3  (0-2)", "complete",
                        "5,6,10", "3,3,3", "28.5000%", "80.5000%", "54.5000%"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  const auto j = run_cli("strategy " + quoted(kSmall) + " --json");
  ASSERT_EQ(j.exit_code, 0) << j.output;
  EXPECT_EQ(json_int(j.output, "keys"), 12);
  const JsonValue v = parse_json(j.output, "sta strategy --json");
  auto ints = [&](const char* key) {
    std::vector<int64_t> out;
    for (const JsonValue& e : v.at(key, "json").array) out.push_back(e.as_int(key));
    return out;
  };
  EXPECT_EQ(ints("steps"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ints("layers"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ints("heads"), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(v.at("complete", "json").boolean);
  const JsonValue& first = v.at("histogram", "json").array.at(0);
  EXPECT_EQ(first.at("window", "h").array.at(2).as_int("w"), 3);
  EXPECT_EQ(first.at("effective", "h").array.at(0).as_int("e"), 3);
  EXPECT_EQ(first.at("keys", "h").as_int("keys"), 4);
  EXPECT_NEAR(v.at("sparsity", "json").as_number("sparsity"), 0.545, 1e-12);
  // A smaller canvas clamps the windows: effective differs from raw.
  const auto c = run_cli("strategy " + quoted(kSmall) + " --video 12,16,24 --tile 3,4,4");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("fastvideo"), std::string::npos) << c.output;
  const auto help = run_cli("strategy --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("Usage: sta strategy FILE"), std::string::npos);
}

TEST_F(StrategyFiles, CliCountsPerHeadFromStrategy) {
  const auto r = run_cli("counts --strategy " + quoted(kSmall) + " --step 0 --layer 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Geometry g;
  const Mask heads[] = {Mask::sta({5, 6, 10}), Mask::sta({3, 3, 3}), Mask::sta({1, 6, 10})};
  int64_t dense = 0;
  size_t at = r.output.find("\"heads\": [");
  ASSERT_NE(at, std::string::npos) << r.output;
  for (const Mask& m : heads) {
    at = r.output.find("\"mask\": \"" + to_string(m) + "\"", at);
    ASSERT_NE(at, std::string::npos) << to_string(m) << " (in head order)\n" << r.output;
    const BlockStats s = classify_blocks(g, m);
    EXPECT_EQ(json_int(r.output.substr(at), "dense"), s.counts.dense);
    dense += s.counts.dense;
  }
  EXPECT_EQ(json_int(r.output, "dense"), dense);
  const auto text = run_cli("counts --strategy " + quoted(kSmall) + " --step 1 --layer 0");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("sta:5,6,1"), std::string::npos) << text.output;
}

TEST_F(StrategyFiles, CliErrorsAreOneLineNamingTheKeyOrArgument) {
  write_text(path("dup.json"), "{\"0_0_0\": [3,3,3],\n \"0_0_0\": [1,1,1]}");
  write_text(path("gap.json"), R"({"0_0_0": [3,3,3], "0_0_2": [1,1,1]})");
  write_text(path("float.json"), R"({"0_0_0": [3,3.5,3]})");
  const std::string small = quoted(kSmall);
  const struct {
    std::string args;
    std::vector<std::string> names;
  } cases[] = {
      {"counts --strategy " + small + " --step 0 --layer 7", {"--layer", "7", "0, 1"}},
      {"counts --strategy " + small + " --step 2 --layer 0", {"--step", "2"}},
      {"counts --strategy " + small + " --step x --layer 0", {"--step", "'x'"}},
      {"counts --strategy " + small + " --step -1 --layer 0", {"--step"}},
      {"counts --strategy " + small + " --layer 0", {"--step", "missing"}},
      {"counts --strategy " + small + " --step 0", {"--layer", "missing"}},
      {"counts --strategy " + small + " --step 0 --layer 0 --mask sta:3,3,3",
       {"--strategy", "--mask"}},
      {"counts --step 0 --layer 0", {"--step", "--strategy"}},
      {"counts --layer 0", {"--layer", "--strategy"}},
      {"counts --strategy " + quoted(path("none.json")) + " --step 0 --layer 0",
       {"--strategy", "none.json"}},
      {"counts --strategy " + quoted(path("dup.json")) + " --step 0 --layer 0",
       {"dup.json:2:2", "duplicate key \"0_0_0\""}},
      {"counts --strategy " + quoted(path("gap.json")) + " --step 0 --layer 0",
       {"gap.json", "missing key \"0_0_1\""}},
      {"strategy " + quoted(path("float.json")), {"float.json:1:", "3.5", "\"0_0_0\""}},
      {"strategy " + quoted(path("none.json")), {"none.json"}},
      {"strategy", {"FILE"}},
      {"strategy " + small + " extra", {"extra"}},
      {"strategy " + small + " --video 30,48,81", {"--video"}},
      {"strategy " + small + " --step 0", {"--step"}},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    for (const auto& n : c.names)
      EXPECT_NE(r.output.find(n), std::string::npos) << c.args << ": lacks " << n << "\n" << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "not one line: " << r.output;
  }
}

}  // namespace
}  // namespace sta
