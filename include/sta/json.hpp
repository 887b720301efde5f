#pragma once
// A small strict JSON reader (RFC 8259) for the files the tools read back: golden manifests,
// stats and benchmark outputs. No dependency; depth-limited; errors name the source and the
// byte offset. Not for FastVideo mask strategies, which have their own fast reader.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
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

}  // namespace sta
