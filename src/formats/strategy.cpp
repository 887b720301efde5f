#include "sta/strategy.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include "sta/error.hpp"
#include "sta/file_io.hpp"

namespace sta {
namespace {

constexpr const char* kAxisName[3] = {"kt", "kh", "kw"};
constexpr const char* kFormatHint =
    "a mask strategy is one JSON object {\"t_l_h\": [kt, kh, kw], ...}";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// `s` as a short printable JSON-ish literal for messages: quotes, escapes for anything
// unprintable, cut after 40 bytes so a corrupt file cannot flood the terminal.
std::string quote_for_message(const char* s, size_t n) {
  std::string out = "\"";
  const size_t shown = std::min<size_t>(n, 40);
  for (size_t i = 0; i < shown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < n) out += "...";
  return out + "\"";
}

bool entry_less(const StrategyEntry& a, const StrategyEntry& b) {
  return std::tie(a.step, a.layer, a.head) < std::tie(b.step, b.layer, b.head);
}

// A single forward pass over the bytes; no allocation per key beyond the entry vector. Byte
// offsets of keys are kept only until duplicates have been checked.
class StrategyParser {
 public:
  StrategyParser(const std::string& text, const std::string& source)
      : b_(text.data()), p_(text.data()), e_(text.data() + text.size()), src_(source) {}

  MaskStrategy parse() {
    skip_ws();
    if (p_ == e_) fail(p_, std::string("empty document; ") + kFormatHint);
    if (*p_ != '{') fail(p_, "expected '{', got " + describe(p_) + "; " + kFormatHint);
    ++p_;
    skip_ws();
    if (p_ < e_ && *p_ == '}') fail(p_, "empty object: a mask strategy needs at least one key");
    // Every key has one '[': counting them first (memchr speed) sizes the vectors once.
    const size_t brackets = static_cast<size_t>(std::count(p_, e_, '['));
    entries_.reserve(brackets);
    offsets_.reserve(brackets);
    for (;;) {
      member();
      skip_ws();
      if (p_ == e_)
        fail(p_, "unterminated object: expected ',' or '}' after the value of key " + key());
      if (*p_ == '}') {
        ++p_;
        break;
      }
      if (*p_ != ',')
        fail(p_, "expected ',' or '}' after the value of key " + key() + ", got " + describe(p_));
      ++p_;
      skip_ws();
      if (p_ < e_ && *p_ == '}') fail(p_, "trailing comma after the value of key " + key());
    }
    skip_ws();
    if (p_ != e_)
      fail(p_, "trailing characters after the closing '}': " + describe(p_));
    return finish();
  }

 private:
  // "line:column (byte B)" of `at`; computed only when reporting, so parsing stays one pass.
  std::string position(const char* at) const {
    int64_t line = 1;
    const char* line_start = b_;
    for (const char* c = b_; c < at; ++c)
      if (*c == '\n') {
        ++line;
        line_start = c + 1;
      }
    return std::to_string(line) + ":" + std::to_string(at - line_start + 1) + " (byte " +
           std::to_string(at - b_) + ")";
  }

  [[noreturn]] void fail(const char* at, const std::string& what) const {
    throw Error(src_ + ":" + position(at) + ": " + what);
  }

  // What the token at `at` looks like, for "expected X, got Y".
  std::string describe(const char* at) const {
    if (at >= e_) return "end of input";
    const char c = *at;
    if (c == '"') return "a string";
    if (c == '{') return "an object '{'";
    if (c == '[') return "an array '['";
    if (c == '-' || is_digit(c)) return "a number";
    size_t n = 0;
    while (at + n < e_ && n < 12 && !is_ws(at[n]) && at[n] != ',' && at[n] != ']' &&
           at[n] != '}')
      ++n;
    return quote_for_message(at, n == 0 ? 1 : n);
  }

  // The key being parsed, quoted for messages. Built only when a message needs it.
  std::string key() const { return quote_for_message(key_begin_, key_len_); }

  void skip_ws() {
    while (p_ < e_ && is_ws(*p_)) ++p_;
  }

  // Canonical non-negative decimal at q (no sign, no leading zero); advances q. Returns
  // false on anything else; `too_big` reports a value above kMaxStrategyValue.
  static bool key_index(const char*& q, const char* end, int64_t& value, bool& too_big) {
    const char* start = q;
    value = 0;
    while (q < end && is_digit(*q)) {
      if (value <= kMaxStrategyValue) value = value * 10 + (*q - '0');
      ++q;
    }
    if (q == start || (*start == '0' && q - start > 1)) return false;
    if (value > kMaxStrategyValue) too_big = true;
    return true;
  }

  void member() {
    const char* key_start = p_;
    if (p_ == e_) fail(p_, "unterminated object: expected a key \"t_l_h\"");
    if (*p_ != '"') fail(p_, "expected a key \"t_l_h\", got " + describe(p_));
    const char* q = ++p_;
    while (q < e_ && *q != '"' && *q != '\\' && static_cast<unsigned char>(*q) >= 0x20) ++q;
    if (q == e_)
      fail(key_start, "unterminated string: key " + quote_for_message(p_, q - p_) +
                          " has no closing quote");
    if (*q == '\\')
      fail(q, "escape sequence in key " + quote_for_message(p_, q - p_ + 1) +
                  "; keys are plain \"t_l_h\"");
    if (*q != '"')
      fail(q, "unterminated string or raw control character in key " +
                  quote_for_message(p_, q - p_ + 1));
    key_begin_ = p_;
    key_len_ = static_cast<size_t>(q - p_);
    StrategyEntry entry;
    int64_t* index[3] = {&entry.step, &entry.layer, &entry.head};
    bool too_big = false;
    const char* k = p_;
    bool ok = true;
    for (int i = 0; i < 3 && ok; ++i) {
      if (i > 0) {
        if (k < q && *k == '_') {
          ++k;
        } else {
          ok = false;
          break;
        }
      }
      ok = key_index(k, q, *index[i], too_big);
    }
    if (!ok || k != q)
      fail(key_start, "key " + key() +
                          " is not of the form \"t_l_h\" (step, layer, head: non-negative "
                          "integers without sign or leading zeros, e.g. \"0_12_3\")");
    if (too_big)
      fail(key_start, "key " + key() + ": an index is out of range (> " +
                          std::to_string(kMaxStrategyValue) + ")");
    p_ = q + 1;
    skip_ws();
    if (p_ == e_ || *p_ != ':')
      fail(p_, "expected ':' after key " + key() + ", got " + describe(p_));
    ++p_;
    skip_ws();
    if (p_ == e_ || *p_ != '[')
      fail(p_, "the value of key " + key() +
                   " must be an array [kt, kh, kw] of integers (tiles), got " + describe(p_));
    ++p_;
    for (int i = 0; i < 3; ++i) {
      skip_ws();
      if (i > 0) {
        if (p_ < e_ && *p_ == ']')
          fail(p_, "the window of key " + key() + " has " + std::to_string(i) +
                       " entries; expected 3 [kt, kh, kw]");
        if (p_ == e_ || *p_ != ',')
          fail(p_, "expected ',' or ']' in the window of key " + key() + ", got " +
                       describe(p_));
        ++p_;
        skip_ws();
      }
      entry.window[i] = window_entry(i);
    }
    skip_ws();
    if (p_ < e_ && *p_ == ',') {
      const char* comma = p_;
      ++p_;
      skip_ws();
      if (p_ < e_ && *p_ == ']') fail(p_, "trailing comma in the window of key " + key());
      fail(comma, "the window of key " + key() + " has more than 3 entries; expected [kt, kh, kw]");
    }
    if (p_ == e_ || *p_ != ']')
      fail(p_, "expected ']' after the 3 entries of key " + key() + ", got " + describe(p_));
    ++p_;
    entries_.push_back(entry);
    offsets_.push_back(key_start - b_);
  }

  // One window entry: a JSON integer in [1, kMaxStrategyValue].
  int64_t window_entry(int axis) {
    auto what = [&] {
      return std::string("entry ") + kAxisName[axis] + " of the window of key " + key();
    };
    const char* start = p_;
    if (p_ == e_) fail(p_, "unexpected end of input in the window of key " + key());
    if (axis == 0 && *p_ == ']')
      fail(p_, "the window of key " + key() + " is empty; expected 3 entries [kt, kh, kw]");
    if (axis > 0 && *p_ == ']') fail(p_, "trailing comma in the window of key " + key());
    if (*p_ == '[')
      fail(p_, what() + " is a nested array; expected an integer (tiles)");
    if (*p_ == '"') fail(p_, what() + " is a string; expected an integer (tiles)");
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == e_ || !is_digit(*p_))
      fail(start, what() + ": expected an integer (tiles), got " +
                      (negative ? quote_for_message(start, p_ - start) : describe(start)));
    int64_t value = 0;
    bool too_big = false;
    const char* digits = p_;
    while (p_ < e_ && is_digit(*p_)) {
      if (value <= kMaxStrategyValue) value = value * 10 + (*p_ - '0');
      ++p_;
    }
    too_big = value > kMaxStrategyValue;
    if (*digits == '0' && p_ - digits > 1)
      fail(start, what() + ": leading zeros are not allowed in JSON numbers (" +
                      quote_for_message(start, p_ - start) + ")");
    if (p_ < e_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) {
      while (p_ < e_ && (is_digit(*p_) || *p_ == '.' || *p_ == 'e' || *p_ == 'E' ||
                         *p_ == '+' || *p_ == '-'))
        ++p_;
      fail(start, what() + " is " + std::string(start, std::min<size_t>(p_ - start, 40)) +
                      ", not an integer (windows are whole tiles)");
    }
    if (negative || value == 0)
      fail(start, what() + " is " + std::string(start, std::min<size_t>(p_ - start, 40)) +
                      "; windows are positive integers (>= 1 tile)");
    if (too_big)
      fail(start, what() + " is out of range (> " + std::to_string(kMaxStrategyValue) + ")");
    return value;
  }

  MaskStrategy finish() {
    MaskStrategy s;
    s.source = src_;
    bool sorted = true;
    for (size_t i = 1; i < entries_.size() && sorted; ++i)
      sorted = entry_less(entries_[i - 1], entries_[i]);
    if (!sorted) {
      // Rare path (FastVideo writes keys in order): sort a permutation, tie-break on offset
      // so the duplicate reported is the one that comes second in the file.
      std::vector<size_t> order(entries_.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const auto& x = entries_[a];
        const auto& y = entries_[b];
        return std::tie(x.step, x.layer, x.head, offsets_[a]) <
               std::tie(y.step, y.layer, y.head, offsets_[b]);
      });
      size_t dup = order.size();  // index of the earliest second occurrence, if any
      size_t first = 0;
      for (size_t i = 1; i < order.size(); ++i)
        if (!entry_less(entries_[order[i - 1]], entries_[order[i]]) &&
            (dup == order.size() || offsets_[order[i]] < offsets_[dup])) {
          dup = order[i];
          first = order[i - 1];
        }
      if (dup != order.size()) {
        const StrategyEntry& d = entries_[dup];
        const std::string key = strategy_key(d.step, d.layer, d.head);
        fail(b_ + offsets_[dup],
             "duplicate key \"" + key + "\" (first at " + position(b_ + offsets_[first]) + ")");
      }
      s.entries.reserve(entries_.size());
      for (size_t i : order) s.entries.push_back(entries_[i]);
    } else {
      s.entries = std::move(entries_);
    }
    return s;
  }

  const char* const b_;
  const char* p_;
  const char* const e_;
  const std::string& src_;
  const char* key_begin_ = nullptr;  // the key being parsed, for messages
  size_t key_len_ = 0;
  std::vector<StrategyEntry> entries_;
  std::vector<int64_t> offsets_;
};

template <typename Field>
std::vector<int64_t> distinct(const MaskStrategy& s, Field field) {
  std::vector<int64_t> v;
  v.reserve(s.entries.size());
  for (const auto& e : s.entries) v.push_back(field(e));
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

using EntryIt = std::vector<StrategyEntry>::const_iterator;

// Head indices of the sorted entries [lo, hi) of one (step, layer).
std::vector<int64_t> heads_of(EntryIt lo, EntryIt hi) {
  std::vector<int64_t> v;
  for (auto it = lo; it != hi; ++it) v.push_back(it->head);
  return v;
}

// Accumulates StrategySparsity over keys: covered and raw key-tile counts per query tile.
struct SparsityAccumulator {
  int64_t keys = 0;
  double covered = 0;  // sum of prod(effective window)
  double raw = 0;      // sum of prod(window as written), FastVideo's numerator

  void add(const StrategyEntry& e, const Extent3& grid) {
    ++keys;
    covered += static_cast<double>(effective_sta_window(e.window, grid).volume());
    raw += static_cast<double>(e.window.t) * static_cast<double>(e.window.h) *
           static_cast<double>(e.window.w);
  }
  StrategySparsity result(int64_t step, const Extent3& grid) const {
    const double full = static_cast<double>(keys) * static_cast<double>(grid.volume());
    StrategySparsity s;
    s.step = step;
    s.keys = keys;
    s.sparsity = keys ? 1.0 - covered / full : 0.0;
    s.sparsity_raw = keys ? 1.0 - raw / full : 0.0;
    return s;
  }
};

}  // namespace

const StrategyEntry* MaskStrategy::find(int64_t step, int64_t layer, int64_t head) const {
  StrategyEntry probe;
  probe.step = step;
  probe.layer = layer;
  probe.head = head;
  auto it = std::lower_bound(entries.begin(), entries.end(), probe, entry_less);
  if (it == entries.end() || entry_less(probe, *it)) return nullptr;
  return &*it;
}

std::string strategy_key(int64_t step, int64_t layer, int64_t head) {
  return std::to_string(step) + "_" + std::to_string(layer) + "_" + std::to_string(head);
}

MaskStrategy parse_mask_strategy(const std::string& text, const std::string& source) {
  return StrategyParser(text, source).parse();
}

MaskStrategy read_mask_strategy(const std::string& path) {
  // The 72,000-key Hunyuan file is 1.6 MB; 1 GiB bounds a hostile one. Devices and FIFOs
  // are refused by type before any read.
  const std::string text = read_small_file(path, "mask strategy file", uint64_t{1} << 30);
  return parse_mask_strategy(text, path);
}

std::vector<Mask> strategy_masks(const MaskStrategy& strategy, int64_t step, int64_t layer,
                                 int64_t heads) {
  if (heads == 0 || heads < -1)
    throw Error(strategy.source + ": heads must be >= 1 (or -1 for the heads in the file), got " +
                std::to_string(heads));
  StrategyEntry lo_probe, hi_probe;
  lo_probe.step = hi_probe.step = step;
  lo_probe.layer = layer;
  hi_probe.layer = layer + 1;
  lo_probe.head = hi_probe.head = INT64_MIN;
  const auto lo = std::lower_bound(strategy.entries.begin(), strategy.entries.end(), lo_probe,
                                   entry_less);
  const auto hi = std::lower_bound(lo, strategy.entries.end(), hi_probe, entry_less);
  const int64_t present = hi - lo;
  const int64_t want = heads == -1 ? present : heads;
  if (present == 0)
    throw Error(strategy.source + ": missing key \"" + strategy_key(step, layer, 0) +
                "\": step " + std::to_string(step) + " layer " + std::to_string(layer) +
                " is not in the file (steps " + format_index_set(strategy_steps(strategy)) +
                ", layers " + format_index_set(strategy_layers(strategy)) + ")");
  // The first missing head is found among the entries present: `want` may be a head index
  // of 2^31 from the file (no allocation of that size; it was std::bad_alloc).
  int64_t run = 0;
  while (run < present && run < want && (lo + run)->head == run) ++run;
  std::vector<Mask> masks;
  for (int64_t h = 0; h < want; ++h) {
    const auto it = lo + h;
    if (h >= run)
      throw Error(strategy.source + ": missing key \"" + strategy_key(step, layer, h) +
                  "\": the heads of step " + std::to_string(step) + " layer " +
                  std::to_string(layer) +
                  (heads == -1 ? std::string(" must be numbered 0, 1, 2, ... without gaps")
                               : " must be 0.." + std::to_string(want - 1)) +
                  " (the file has heads " + format_index_set(heads_of(lo, hi)) + ")");
    masks.push_back(Mask::sta(it->window));
  }
  if (present > want)
    throw Error(strategy.source + ": key \"" + strategy_key(step, layer, (lo + want)->head) +
                "\" is beyond the " + std::to_string(want) + " heads asked for (the file has " +
                std::to_string(present) + " heads for step " + std::to_string(step) +
                " layer " + std::to_string(layer) + ")");
  return masks;
}

std::vector<int64_t> strategy_steps(const MaskStrategy& strategy) {
  // Entries are sorted by step first: no sort needed.
  std::vector<int64_t> v;
  for (const auto& e : strategy.entries)
    if (v.empty() || v.back() != e.step) v.push_back(e.step);
  return v;
}

std::vector<int64_t> strategy_layers(const MaskStrategy& strategy) {
  return distinct(strategy, [](const StrategyEntry& e) { return e.layer; });
}

std::vector<int64_t> strategy_heads(const MaskStrategy& strategy) {
  return distinct(strategy, [](const StrategyEntry& e) { return e.head; });
}

bool strategy_is_complete(const MaskStrategy& strategy) {
  // Entries are unique, so the grid is complete iff it has as many entries as cells.
  const double cells = static_cast<double>(strategy_steps(strategy).size()) *
                       static_cast<double>(strategy_layers(strategy).size()) *
                       static_cast<double>(strategy_heads(strategy).size());
  return cells == static_cast<double>(strategy.entries.size());
}

std::vector<WindowCount> strategy_window_histogram(const MaskStrategy& strategy) {
  std::map<std::tuple<int64_t, int64_t, int64_t>, int64_t> counts;
  for (const auto& e : strategy.entries) ++counts[{e.window.t, e.window.h, e.window.w}];
  std::vector<WindowCount> out;
  out.reserve(counts.size());
  for (const auto& [w, c] : counts) out.push_back({{std::get<0>(w), std::get<1>(w), std::get<2>(w)}, c});
  std::stable_sort(out.begin(), out.end(),
                   [](const WindowCount& a, const WindowCount& b) { return a.count > b.count; });
  return out;
}

std::vector<StrategySparsity> strategy_sparsity_per_step(const MaskStrategy& strategy,
                                                         const Geometry& g) {
  g.validate();
  const Extent3 grid = g.tiles();
  std::vector<StrategySparsity> out;
  SparsityAccumulator acc;
  for (size_t i = 0; i < strategy.entries.size(); ++i) {
    const StrategyEntry& e = strategy.entries[i];
    acc.add(e, grid);
    if (i + 1 == strategy.entries.size() || strategy.entries[i + 1].step != e.step) {
      out.push_back(acc.result(e.step, grid));
      acc = SparsityAccumulator{};
    }
  }
  return out;
}

StrategySparsity strategy_sparsity(const MaskStrategy& strategy, const Geometry& g) {
  g.validate();
  const Extent3 grid = g.tiles();
  SparsityAccumulator acc;
  for (const auto& e : strategy.entries) acc.add(e, grid);
  return acc.result(-1, grid);
}

std::string format_index_set(const std::vector<int64_t>& indices) {
  std::string out;
  for (size_t i = 0; i < indices.size();) {
    size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(indices[i]);
    if (j > i) out += (j == i + 1 ? ", " : "-") + std::to_string(indices[j]);
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

}  // namespace sta
