#pragma once
// A small strict JSON reader (RFC 8259) for the files the tools read back: golden manifests,
// stats and benchmark outputs. No dependency; depth-limited; errors name the source and the
// byte offset. Not for FastVideo mask strategies, which have their own fast reader.
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace sta {

/// One JSON value. Objects keep their keys sorted (std::map); duplicate keys are an error.
struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0.0;
  std::string text;  ///< string contents, or the number exactly as written
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  bool is_object() const { return type == Type::kObject; }
  /// The member `key` of an object; throws sta::Error naming `where` and the key if absent
  /// or if this is not an object.
  const JsonValue& at(const std::string& key, const std::string& where) const;
  /// True if this is an object with member `key`.
  bool has(const std::string& key) const;
  /// The value as a string / integer / number; throws sta::Error naming `where` otherwise.
  const std::string& as_string(const std::string& where) const;
  int64_t as_int(const std::string& where) const;
  double as_number(const std::string& where) const;
};

/// Relaxations of strict JSON for files other programs write (Google Benchmark's output may
/// hold NaN or Infinity counters).
struct JsonOptions {
  bool allow_nonfinite = false;        ///< accept NaN, Infinity and -Infinity as numbers
  bool allow_trailing_commas = false;  ///< accept [1, 2,] and {"a": 1,}
};

/// Parses `text` (a whole JSON document). Throws sta::Error "`source`: ... at byte N" on any
/// syntax error, on nesting deeper than 64, on duplicate keys and on trailing garbage.
JsonValue parse_json(const std::string& text, const std::string& source,
                     const JsonOptions& options = {});

/// Reads and parses the file at `path`; messages name `path`.
JsonValue read_json_file(const std::string& path);

/// `s` as a JSON string literal, quotes included.
std::string json_quote(const std::string& s);

/// `x` as a JSON number: the shortest of %.15g..%.17g that reads back as the same double
/// (0.1 -> "0.1", not "0.10000000000000001"). Throws sta::Error for NaN and infinities,
/// which JSON cannot hold.
std::string json_number(double x);

/// Builds a JSON document in the order members are added (manifests and stats read best
/// in a fixed, meaningful order). A container opened with `lines` puts each member on its
/// own line, indented by its depth; others are written inline. Misuse (a value where a key
/// is due, unbalanced ends, str() before the end) is a programming error and asserts.
///
///   JsonWriter j;
///   j.begin_object(true).field("backend", "sta").field("shape", std::vector<int64_t>{1, 2});
///   j.key("counts").begin_object().field("dense", 3).end_object();
///   std::string text = j.end_object().str();   // {\n  "backend": "sta", ...\n}\n
class JsonWriter {
 public:
  JsonWriter& begin_object(bool lines = false);
  JsonWriter& end_object();
  JsonWriter& begin_array(bool lines = false);
  JsonWriter& end_array();
  /// The key of the next member of the current object.
  JsonWriter& key(const std::string& k);

  JsonWriter& value(const std::string& s);
  JsonWriter& value(const char* s) { return value(std::string(s)); }
  JsonWriter& value(bool b);
  JsonWriter& value(double x);  ///< json_number(x)
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  JsonWriter& value(T x) {
    return raw(std::to_string(x));  // exact, also beyond 2^53
  }
  /// An array of values, inline.
  template <class T>
  JsonWriter& value(const std::vector<T>& items) {
    begin_array();
    for (const T& x : items) value(x);
    return end_array();
  }
  JsonWriter& null() { return raw("null"); }
  /// value(x), or null for NaN and infinities (for statistics that may be non-finite).
  JsonWriter& number_or_null(double x) { return std::isfinite(x) ? value(x) : null(); }

  /// key(k).value(v).
  template <class T>
  JsonWriter& field(const std::string& k, const T& v) {
    return key(k).value(v);
  }

  /// The document, with a final newline; every container must be closed.
  std::string str() const;

 private:
  struct Level {
    bool object;
    bool lines;
    int64_t members = 0;
  };
  JsonWriter& raw(const std::string& text);  // one value, after the separator
  JsonWriter& open(char bracket, bool object, bool lines);
  JsonWriter& close(char bracket, bool object);
  void separate();     // before a value: checks the key, or starts an array member
  void next_member();  // the separator and indentation before a member
  std::string out_;
  std::vector<Level> stack_;
  bool key_pending_ = false;
  bool done_ = false;
};

}  // namespace sta
