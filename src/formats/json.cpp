#include "sta/json.hpp"

#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "sta/error.hpp"
#include "sta/file_io.hpp"

namespace sta {

namespace {
// Manifests, stats and benchmark outputs are kilobytes; 256 MiB bounds a hostile file.
constexpr uint64_t kMaxJsonFileBytes = uint64_t{1} << 28;
}  // namespace

namespace {

class Parser {
 public:
  Parser(const std::string& text, const std::string& source, const JsonOptions& options)
      : s_(text), src_(source), opt_(options) {}

  JsonValue document() {
    JsonValue v = value(0);
    skip_ws();
    if (i_ != s_.size()) fail("unexpected trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(src_ + ": malformed JSON: " + what + " at byte " + std::to_string(i_));
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool consume(const char* word) {
    size_t n = 0;
    while (word[n]) ++n;
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }

  JsonValue value(int depth) {
    if (depth > 64) fail("nesting deeper than 64");
    skip_ws();
    if (i_ >= s_.size()) fail("unexpected end of input");
    JsonValue v;
    const char c = s_[i_];
    if (c == '{') {
      v.type = JsonValue::Type::kObject;
      ++i_;
      skip_ws();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
        std::string key = string();
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
        ++i_;
        if (v.object.count(key)) fail("duplicate key \"" + key + "\"");
        v.object.emplace(key, value(depth + 1));
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          if (trailing_close('}')) return v;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return v;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.type = JsonValue::Type::kArray;
      ++i_;
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.array.push_back(value(depth + 1));
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          if (trailing_close(']')) return v;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return v;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.type = JsonValue::Type::kString;
      v.text = string();
      return v;
    }
    if (consume("true")) {
      v.type = JsonValue::Type::kBool;
      v.boolean = true;
      return v;
    }
    if (consume("false")) {
      v.type = JsonValue::Type::kBool;
      return v;
    }
    if (consume("null")) return v;
    if (opt_.allow_nonfinite) {
      for (const auto& [word, value] : {std::pair<const char*, double>{"NaN", NAN},
                                        {"Infinity", HUGE_VAL}, {"-Infinity", -HUGE_VAL}}) {
        if (consume(word)) {
          v.type = JsonValue::Type::kNumber;
          v.text = word;
          v.number = value;
          return v;
        }
      }
    }
    return number();
  }

  JsonValue number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - d;
    };
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (digits() == 0) {
      fail("expected a value");
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (digits() == 0) fail("expected digits after '.'");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (digits() == 0) fail("expected exponent digits");
    }
    JsonValue v;
    v.type = JsonValue::Type::kNumber;
    v.text = s_.substr(start, i_ - start);
    v.number = std::strtod(v.text.c_str(), nullptr);
    return v;
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }

  std::string string() {
    ++i_;  // opening quote
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (!consume("\\u")) fail("lone surrogate");
            const uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("lone surrogate");
          }
          put_utf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  // After a ',': with trailing commas allowed, a closing bracket may follow.
  bool trailing_close(char close) {
    if (!opt_.allow_trailing_commas) return false;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == close) {
      ++i_;
      return true;
    }
    return false;
  }

  const std::string& s_;
  const std::string& src_;
  const JsonOptions opt_;
  size_t i_ = 0;
};

const char* type_name(JsonValue::Type t) {
  switch (t) {
    case JsonValue::Type::kNull: return "null";
    case JsonValue::Type::kBool: return "a boolean";
    case JsonValue::Type::kNumber: return "a number";
    case JsonValue::Type::kString: return "a string";
    case JsonValue::Type::kArray: return "an array";
    case JsonValue::Type::kObject: return "an object";
  }
  return "?";
}

}  // namespace

const JsonValue& JsonValue::at(const std::string& key, const std::string& where) const {
  if (type != Type::kObject) throw Error(where + ": expected an object, found " + type_name(type));
  auto it = object.find(key);
  if (it == object.end()) throw Error(where + ": missing key \"" + key + "\"");
  return it->second;
}

bool JsonValue::has(const std::string& key) const {
  return type == Type::kObject && object.count(key) > 0;
}

const std::string& JsonValue::as_string(const std::string& where) const {
  if (type != Type::kString) throw Error(where + ": expected a string, found " + type_name(type));
  return text;
}

int64_t JsonValue::as_int(const std::string& where) const {
  if (type != Type::kNumber || text.find_first_of(".eE") != std::string::npos ||
      std::fabs(number) > 9.0e15)
    throw Error(where + ": expected an integer, found " +
                (type == Type::kNumber ? text : std::string(type_name(type))));
  return std::stoll(text);
}

double JsonValue::as_number(const std::string& where) const {
  if (type != Type::kNumber) throw Error(where + ": expected a number, found " + type_name(type));
  return number;
}

JsonValue parse_json(const std::string& text, const std::string& source,
                     const JsonOptions& options) {
  return Parser(text, source, options).document();
}

JsonValue read_json_file(const std::string& path) {
  // A folder named manifest.json or a FIFO is reported as what it is, never as bad JSON.
  return parse_json(read_small_file(path, "JSON file", kMaxJsonFileBytes), path);
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) throw Error("json_number: " + std::to_string(x) + " is not finite; JSON holds finite numbers only");
  char buf[32];
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

void JsonWriter::separate() {
  if (stack_.empty()) {
    assert(!done_ && "JsonWriter: one document only");
    return;
  }
  if (stack_.back().object) {
    assert(key_pending_ && "JsonWriter: an object member needs key() first");
    return;  // key() wrote the separator
  }
  next_member();
}

void JsonWriter::next_member() {
  Level& top = stack_.back();
  if (top.members++) out_ += top.lines ? "," : ", ";
  if (top.lines) out_ += "\n" + std::string(2 * stack_.size(), ' ');
}

JsonWriter& JsonWriter::key(const std::string& k) {
  assert(!stack_.empty() && stack_.back().object && !key_pending_ && "JsonWriter: key() outside an object");
  next_member();
  out_ += json_quote(k) + ": ";
  key_pending_ = true;
  return *this;
}

JsonWriter& JsonWriter::raw(const std::string& text) {
  separate();
  out_ += text;
  key_pending_ = false;
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::open(char bracket, bool object, bool lines) {
  separate();
  out_ += bracket;
  key_pending_ = false;
  stack_.push_back({object, lines});
  return *this;
}

JsonWriter& JsonWriter::close(char bracket, bool object) {
  (void)object;  // checked by the assert only
  assert(!stack_.empty() && stack_.back().object == object && !key_pending_ && "JsonWriter: unbalanced end");
  const Level top = stack_.back();
  stack_.pop_back();
  if (top.lines && top.members) out_ += "\n" + std::string(2 * stack_.size(), ' ');
  out_ += bracket;
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object(bool lines) { return open('{', true, lines); }
JsonWriter& JsonWriter::end_object() { return close('}', true); }
JsonWriter& JsonWriter::begin_array(bool lines) { return open('[', false, lines); }
JsonWriter& JsonWriter::end_array() { return close(']', false); }
JsonWriter& JsonWriter::value(const std::string& s) { return raw(json_quote(s)); }
JsonWriter& JsonWriter::value(bool b) { return raw(b ? "true" : "false"); }
JsonWriter& JsonWriter::value(double x) { return raw(json_number(x)); }

std::string JsonWriter::str() const {
  assert(done_ && stack_.empty() && "JsonWriter: str() before the document is complete");
  return out_ + "\n";
}

}  // namespace sta
