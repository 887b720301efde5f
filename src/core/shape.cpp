#include "sta/shape.hpp"

#include <limits>
#include <sstream>
#include <vector>

#include "sta/error.hpp"

namespace sta {

std::string to_string(const Extent3& e) {
  return std::to_string(e.t) + "," + std::to_string(e.h) + "," + std::to_string(e.w);
}

namespace {

// Strict decimal integer: optional sign, digits, nothing else, no overflow.
bool parse_int64(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    // 19 digits can exceed INT64_MAX: refuse instead of wrapping to a negative value.
    if (v > (std::numeric_limits<int64_t>::max() - (s[i] - '0')) / 10) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = s[0] == '-' ? -v : v;
  return true;
}

}  // namespace

Extent3 parse_extent3(const std::string& text, const std::string& arg) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : text) {
    if (c == ',' || c == 'x') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  parts.push_back(cur);
  const std::string expected = "expected T,H,W (or H,W) positive integers";
  if (parts.size() != 2 && parts.size() != 3)
    throw Error(arg + ": '" + text + "' is malformed; " + expected);
  std::vector<int64_t> v;
  for (const auto& p : parts) {
    int64_t x = 0;
    if (!parse_int64(p, &x)) throw Error(arg + ": '" + p + "' is not an integer; " + expected);
    if (x < 1) throw Error(arg + ": " + p + " must be >= 1; " + expected);
    v.push_back(x);
  }
  if (v.size() == 2) return {1, v[0], v[1]};
  return {v[0], v[1], v[2]};
}

void Geometry::validate() const {
  static const char* kAxis[3] = {"T (frames)", "H (height)", "W (width)"};
  for (int a = 0; a < 3; ++a) {
    if (canvas[a] < 1)
      throw Error("--video: " + std::string(kAxis[a]) + " = " + std::to_string(canvas[a]) +
                  ", expected a positive number of tokens");
    if (tile[a] < 1)
      throw Error("--tile: " + std::string(kAxis[a]) + " = " + std::to_string(tile[a]) +
                  ", expected a positive number of tokens");
  }
  // With --ragged a tile may exceed its axis; its volume must still be representable, or
  // tile products (tile_tokens, block sizes) wrap (a 2^62 tile wrapped to 0 before).
  const int64_t kMaxTile = int64_t{1} << 31;
  if (tile.t > kMaxTile / tile.h || tile.t * tile.h > kMaxTile / tile.w)
    throw Error("--tile: " + to_string(tile) + " has too many tokens per tile; expected " +
                "t*h*w <= 2^31 (and at most the canvas --video " + to_string(canvas) + ")");
  for (int a = 0; a < 3; ++a) {
    if (!ragged && canvas[a] % tile[a] != 0)
      throw Error("--video: axis " + std::string(kAxis[a]) + " of " + std::to_string(canvas[a]) +
                  " tokens is not divisible by the tile size " + std::to_string(tile[a]) +
                  " (--tile " + to_string(tile) + "); expected a multiple of " +
                  std::to_string(tile[a]) + ", or --ragged for a shorter last tile");
  }
  // Keep every size (and S^2 for pair counts) representable: S^2 must fit in int64.
  const int64_t kMax = int64_t{1} << 31;
  if (canvas.t > kMax / canvas.h || canvas.t * canvas.h > kMax / canvas.w)
    throw Error("--video: " + to_string(canvas) + " has too many tokens (limit 2^31)");
  if (text_pad < 0 || text_pad > kMax)
    throw Error("--text-pad: " + std::to_string(text_pad) + ", expected 0 <= P <= 2^31");
  if (text_length < 0 || text_length > text_pad)
    throw Error("--text-length: " + std::to_string(text_length) + ", expected 0 <= N <= " +
                "--text-pad (" + std::to_string(text_pad) + ")");
  if (video_tokens() + text_pad > kMax)
    throw Error("--text-pad: sequence of " + std::to_string(video_tokens() + text_pad) +
                " tokens is too long (limit 2^31)");
}

int64_t checked_product(std::initializer_list<int64_t> factors, const std::string& arg,
                        const std::string& what) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (f < 0) throw Error(arg + ": " + what + " has a negative size " + std::to_string(f));
    if (f == 0) return 0;  // an empty extent makes the product empty whatever the rest
  }
  for (int64_t f : factors)
    if (__builtin_mul_overflow(p, f, &p))
      throw Error(arg + ": " + what + " overflows 64-bit sizes; expected a smaller problem");
  return p;
}

}  // namespace sta
