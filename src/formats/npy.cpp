// .npy reading and writing. The reader is a small recursive-descent parser for the one
// Python literal NumPy writes ({'descr': ..., 'fortran_order': ..., 'shape': (...), }) and
// checks every length against the bytes actually present before it allocates anything.
// Format reference: numpy/lib/format.py (NEP 1).
#include "sta/npy.hpp"

#include <sys/mman.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "sta/error.hpp"
#include "sta/file_io.hpp"

namespace sta {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// Version 1.0 stores the header length in 2 bytes, 2.0 and 3.0 in 4. NumPy itself refuses
// headers above 10000 bytes unless told otherwise; 1 MiB is far beyond any honest header.
constexpr uint64_t kMaxHeaderBytes = uint64_t{1} << 20;
constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

const char* const kExpectedDtype =
    "expected '<f4' (float32), '<f2' (float16) or '<f8' (float64), little-endian";

struct NpyHeader {
  std::string descr;
  std::vector<int64_t> shape;
  int64_t elements = 1;
  int item_size = 0;
  uint64_t data_offset = 0;  ///< bytes before the data: magic, version, length, dict
};

std::string byte_count(uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

// Prefix length (magic + version + length field) and the header length it announces.
// `p` holds the first `avail` bytes of a file of `total` bytes.
uint64_t header_end(const unsigned char* p, uint64_t avail, uint64_t total,
                    const std::string& where) {
  if (avail < kMagicLen || std::memcmp(p, kMagic, kMagicLen) != 0) {
    if (total < kMagicLen && std::memcmp(p, kMagic, static_cast<size_t>(avail)) == 0)
      throw Error(where + ": truncated .npy file (" + byte_count(total) +
                  "); expected the magic \\x93NUMPY, a version and a header");
    throw Error(where + ": not an .npy file (bad magic); expected it to start with \\x93NUMPY");
  }
  if (avail < 8)
    throw Error(where + ": truncated .npy file (" + byte_count(total) +
                "); expected a format version after the magic");
  const int major = p[6], minor = p[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    throw Error(where + ": unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(minor) + "; expected 1.0, 2.0 or 3.0");
  const uint64_t prefix = major == 1 ? 10 : 12;
  if (avail < prefix)
    throw Error(where + ": truncated .npy file (" + byte_count(total) +
                "); expected a header length after the version");
  uint64_t len = uint64_t{p[8]} | (uint64_t{p[9]} << 8);
  if (major != 1) len |= (uint64_t{p[10]} << 16) | (uint64_t{p[11]} << 24);
  if (len > kMaxHeaderBytes)
    throw Error(where + ": .npy header length " + std::to_string(len) +
                " is absurd; expected at most " + std::to_string(kMaxHeaderBytes));
  if (prefix + len > total)
    throw Error(where + ": truncated .npy header: it claims " + byte_count(len) +
                " but the file has only " + byte_count(total - prefix) + " after the prefix");
  return prefix + len;
}

// Parser for the header dict, a Python literal. Accepts what NumPy 1.x and 2.x write (and
// what Python 2 wrote: "3L"), single or double quotes, any whitespace and trailing commas.
class HeaderParser {
 public:
  HeaderParser(const unsigned char* text, size_t size, const std::string& where)
      : s_(text), n_(size), where_(where) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    bool fortran = false;
    skip_space();
    expect('{', "the header dict to start with '{'");
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string("a quoted key");
      skip_space();
      expect(':', "':' after key '" + key + "'");
      skip_space();
      if (key == "descr") {
        if (have_descr) fail("duplicate key 'descr'");
        if (peek() == '[') fail("structured dtypes are not supported; " + std::string(kExpectedDtype));
        h.descr = parse_string("a dtype string for 'descr'");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) fail("duplicate key 'fortran_order'");
        fortran = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) fail("duplicate key 'shape'");
        h.shape = parse_shape();
        have_shape = true;
      } else {
        fail("unexpected key '" + printable(key) +
             "'; expected only 'descr', 'fortran_order' and 'shape'");
      }
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == '}') break;
      fail("expected ',' or '}' after the value of '" + key + "'");
    }
    ++i_;  // '}'
    skip_space();
    if (i_ != n_) fail("unexpected text after the header dict");
    if (!have_descr) fail("the header has no 'descr'");
    if (!have_order) fail("the header has no 'fortran_order'");
    if (!have_shape) fail("the header has no 'shape'");
    if (fortran)
      throw Error(where_ + ": Fortran-order arrays are not supported; expected C order "
                           "(save np.ascontiguousarray(x))");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_ + ": malformed .npy header at offset " + std::to_string(i_) + ": " + what);
  }

  // Keys and dtypes echoed in messages are limited to printable ASCII.
  static std::string printable(const std::string& s) {
    std::string out;
    for (char c : s) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out.size() > 40 ? out.substr(0, 40) + "..." : out;
  }

  int peek() const { return i_ < n_ ? s_[i_] : -1; }

  void skip_space() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }

  void expect(char c, const std::string& what) {
    if (peek() != c) fail("expected " + what);
    ++i_;
  }

  std::string parse_string(const std::string& what) {
    const int quote = peek();
    if (quote != '\'' && quote != '"') fail("expected " + what);
    ++i_;
    std::string out;
    while (true) {
      const int c = peek();
      if (c < 0 || c == '\n') fail("unterminated string");
      if (c == '\\') fail("escape sequences are not supported in header strings");
      ++i_;
      if (c == quote) return out;
      out += static_cast<char>(c);
    }
  }

  bool parse_bool() {
    if (match_word("True")) return true;
    if (match_word("False")) return false;
    fail("expected True or False for 'fortran_order'");
  }

  bool match_word(const char* word) {
    const size_t len = std::strlen(word);
    if (n_ - i_ < len || std::memcmp(s_ + i_, word, len) != 0) return false;
    const size_t after = i_ + len;
    if (after < n_ && (std::isalnum(s_[after]) || s_[after] == '_')) return false;
    i_ = after;
    return true;
  }

  // A Python tuple of non-negative integers: "()", "(3,)", "(2, 3)", "(2, 3,)".
  std::vector<int64_t> parse_shape() {
    if (peek() != '(') fail("expected a tuple such as (2, 3) for 'shape'");
    ++i_;
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (static_cast<int>(shape.size()) >= kMaxNpyDims)
        fail("shape has more than " + std::to_string(kMaxNpyDims) + " dimensions");
      shape.push_back(parse_dim(shape.size()));
      skip_space();
      trailing_comma = false;
      if (peek() == ',') {
        ++i_;
        trailing_comma = true;
        continue;
      }
      if (peek() == ')') break;
      fail("expected ',' or ')' in 'shape'");
    }
    if (shape.size() == 1 && !trailing_comma)
      fail("'shape' is a parenthesised number, not a tuple; a 1-D shape is written (n,)");
    ++i_;  // ')'
    return shape;
  }

  int64_t parse_dim(size_t axis) {
    bool negative = false;
    if (peek() == '-' || peek() == '+') {
      negative = peek() == '-';
      ++i_;
      skip_space();
    }
    if (peek() < '0' || peek() > '9') fail("expected an integer in 'shape'");
    int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      const int d = peek() - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10)
        fail("dimension " + std::to_string(axis) + " of 'shape' overflows int64");
      v = v * 10 + d;
      ++i_;
    }
    if (peek() == 'L' || peek() == 'l') ++i_;  // Python 2 long literal
    if (negative && v != 0)
      throw Error(where_ + ": .npy shape has a negative dimension -" + std::to_string(v) +
                  " (axis " + std::to_string(axis) + "); expected sizes >= 0");
    return v;
  }

  const unsigned char* s_;
  size_t n_;
  size_t i_ = 0;
  const std::string& where_;
};

// Bytes per element of `descr`, which must be one of the three little-endian float dtypes
// spelled exactly as NumPy writes them. Any other byte order is refused by name: reading
// '>f8' bytes as '<f8' would give silently wrong numbers, and '=' (native) does not say
// which machine wrote the file.
int dtype_item_size(const std::string& descr, const std::string& where) {
  if (descr == "<f4") return 4;
  if (descr == "<f2") return 2;
  if (descr == "<f8") return 8;
  std::string shown;
  for (char c : descr) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
  if (!shown.empty() && shown[0] == '>')
    throw Error(where + ": big-endian dtype '" + shown + "' is not supported; " +
                kExpectedDtype + " (save x.astype('<f4'))");
  if (!shown.empty() && shown[0] == '=')
    throw Error(where + ": unsupported dtype '" + shown + "': native byte order ('=') does not " +
                "say which; " + kExpectedDtype);
  throw Error(where + ": unsupported dtype '" + shown + "'; " + kExpectedDtype);
}

// Checks magic, version and dict of the first `end` bytes of a file of `total` bytes and
// that the data that follows has exactly the size the header promises.
NpyHeader parse_header(const unsigned char* p, uint64_t end, uint64_t total,
                       const std::string& where) {
  const uint64_t prefix = p[6] == 1 ? 10 : 12;
  NpyHeader h = HeaderParser(p + prefix, static_cast<size_t>(end - prefix), where).parse();
  h.data_offset = end;
  h.item_size = dtype_item_size(h.descr, where);
  // A zero extent makes any shape empty (and an empty array is fine), so only non-empty
  // shapes can overflow.
  int64_t elements = 1;
  bool empty = false;
  for (int64_t d : h.shape) empty = empty || d == 0;
  for (size_t a = 0; a < h.shape.size() && !empty; ++a) {
    const int64_t d = h.shape[a];
    if (elements > std::numeric_limits<int64_t>::max() / d)
      throw Error(where + ": .npy shape " + shape_to_string(h.shape) +
                  " overflows int64 elements; expected at most " +
                  std::to_string(kMaxNpyElements));
    elements *= d;
  }
  if (empty) elements = 0;
  if (elements > kMaxNpyElements)
    throw Error(where + ": .npy shape " + shape_to_string(h.shape) + " has " +
                std::to_string(elements) + " elements; expected at most " +
                std::to_string(kMaxNpyElements));
  h.elements = elements;
  const uint64_t need = static_cast<uint64_t>(elements) * static_cast<uint64_t>(h.item_size);
  const uint64_t have = total - end;
  if (have < need)
    throw Error(where + ": truncated .npy data: shape " + shape_to_string(h.shape) + " of '" +
                h.descr + "' needs " + byte_count(need) + " but only " + byte_count(have) +
                " follow the header");
  if (have > need)
    throw Error(where + ": " + byte_count(have - need) + " of trailing data after the " +
                std::to_string(elements) + " elements of shape " + shape_to_string(h.shape) +
                "; the header does not describe the file");
  return h;
}

template <typename Bits>
Bits load_le(const unsigned char* p) {
  Bits v = 0;
  for (size_t b = 0; b < sizeof(Bits); ++b) v |= static_cast<Bits>(Bits{p[b]} << (8 * b));
  return v;
}

// Converts `count` little-endian values of `item_size` bytes at `src` to float32 at `dst`.
// Returns the index of the first finite float64 beyond the float32 range (it would become
// inf, so that 1e300 and 1e39 compared equal), or -1.
int64_t decode(const unsigned char* src, int item_size, int64_t count, float* dst) {
  if (count == 0) return -1;  // dst may be the null data() of an empty vector
  if (item_size == 4) {
    if (kHostLittleEndian) {
      std::memcpy(dst, src, static_cast<size_t>(count) * 4);
    } else {
      for (int64_t i = 0; i < count; ++i) {
        const uint32_t bits = load_le<uint32_t>(src + 4 * i);
        std::memcpy(dst + i, &bits, 4);
      }
    }
  } else if (item_size == 2) {
    for (int64_t i = 0; i < count; ++i) dst[i] = fp16_to_float(load_le<uint16_t>(src + 2 * i));
  } else {
    for (int64_t i = 0; i < count; ++i) {
      const uint64_t bits = load_le<uint64_t>(src + 8 * i);
      double d;
      std::memcpy(&d, &bits, 8);
      if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) return i;
      dst[i] = static_cast<float>(d);
    }
  }
  return -1;
}

[[noreturn]] void throw_out_of_range(const std::string& where, int64_t index) {
  throw Error(where + ": float64 element " + std::to_string(index) +
              " is beyond the float32 range (|x| > 3.4028235e38); expected values float32 can "
              "hold (the arrays are compared and computed in float32)");
}

std::string errno_text() { return std::strerror(errno); }

int64_t checked_elements(const std::vector<int64_t>& shape, const std::string& where) {
  if (static_cast<int>(shape.size()) > kMaxNpyDims)
    throw Error(where + ": shape has " + std::to_string(shape.size()) +
                " dimensions; expected at most " + std::to_string(kMaxNpyDims));
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0)
      throw Error(where + ": shape " + shape_to_string(shape) + " has a negative dimension");
    empty = empty || d == 0;
  }
  if (empty) return 0;
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (elements > kMaxNpyElements / d)
      throw Error(where + ": shape " + shape_to_string(shape) + " has more than " +
                  std::to_string(kMaxNpyElements) + " elements");
    elements *= d;
  }
  return elements;
}


}  // namespace

// The format-1.0 header: magic, version, length, dict, padding to a multiple of 64 bytes.
std::string npy_header(const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) dict += ", ";
    dict += std::to_string(shape[i]);
  }
  if (shape.size() == 1) dict += ",";
  dict += "), }";
  const size_t unpadded = kMagicLen + 4 + dict.size() + 1;  // + 1 for the final '\n'
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>((dict.size() >> 8) & 0xff);
  return out + dict;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

float fp16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {  // inf or NaN; the payload moves to the top of the fp32 mantissa
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal m * 2^-24: normalise, every one is a normal float32
    uint32_t shift = 0;
    while (!(mantissa & 0x400u)) {
      mantissa <<= 1;
      ++shift;
    }
    bits = sign | ((113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

NpyArray read_npy_bytes(const std::string& bytes, const std::string& arg) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t total = bytes.size();
  const uint64_t end = header_end(p, total, total, arg);
  const NpyHeader h = parse_header(p, end, total, arg);
  NpyArray a;
  a.shape = h.shape;
  a.dtype = h.descr;
  a.data.resize(static_cast<size_t>(h.elements));
  const int64_t bad = decode(p + end, h.item_size, h.elements, a.data.data());
  if (bad >= 0) throw_out_of_range(arg, bad);
  return a;
}

namespace {

// Opens the regular .npy file at `path` and checks its header (every check of
// read_npy_bytes): `f` is left at the first data byte, `total` holds the file size.
NpyHeader open_npy(const std::string& path, const std::string& arg, const std::string& where,
                   std::ifstream& f, uint64_t* total) {
  // Devices, FIFOs and folders are refused before reading: /dev/zero would never end.
  *total = regular_file_size(path, arg);
  f.open(path, std::ios::binary);
  if (!f) throw Error(where + ": cannot open: " + errno_text());
  unsigned char prefix[12] = {};
  const uint64_t got = *total < 12 ? *total : 12;
  f.read(reinterpret_cast<char*>(prefix), static_cast<std::streamsize>(got));
  if (static_cast<uint64_t>(f.gcount()) != got) throw Error(where + ": read failed");
  const uint64_t end = header_end(prefix, got, *total, where);
  std::string head(static_cast<size_t>(end), '\0');
  std::memcpy(&head[0], prefix, static_cast<size_t>(got));
  f.read(&head[got], static_cast<std::streamsize>(end - got));
  if (static_cast<uint64_t>(f.gcount()) != end - got)
    throw Error(where + ": read failed (did the file change while being read?)");
  return parse_header(reinterpret_cast<const unsigned char*>(head.data()), end, *total, where);
}

}  // namespace

NpyArray read_npy(const std::string& path, const std::string& arg) {
  const std::string where = arg + " '" + path + "'";
  std::ifstream f;
  uint64_t total = 0;
  const NpyHeader h = open_npy(path, arg, where, f, &total);

  NpyArray a;
  a.shape = h.shape;
  a.dtype = h.descr;
  a.data.resize(static_cast<size_t>(h.elements));
  // Read in chunks so that float16/float64 need only a small staging buffer.
  const int64_t chunk = (int64_t{1} << 20) / h.item_size;
  std::vector<unsigned char> staging(static_cast<size_t>(std::min(chunk, h.elements)) *
                                     static_cast<size_t>(h.item_size));
  for (int64_t done = 0; done < h.elements;) {
    const int64_t n = std::min(chunk, h.elements - done);
    const auto bytes = static_cast<std::streamsize>(n * h.item_size);
    f.read(reinterpret_cast<char*>(staging.data()), bytes);
    if (f.gcount() != bytes)
      throw Error(where + ": truncated .npy data (did the file change while being read?)");
    const int64_t bad = decode(staging.data(), h.item_size, n, a.data.data() + done);
    if (bad >= 0) throw_out_of_range(where, done + bad);
    done += n;
  }
  if (f.peek() != std::char_traits<char>::eof())
    throw Error(where + ": trailing data after the array (did the file change while being read?)");
  return a;
}

void check_finite(const NpyArray& array, const std::string& arg) {
  check_finite(array.data.data(), array.shape, scan_floats(array.data.data(), array.elements()), arg);
}

// Clang (the fuzz build) cannot vectorise the float max reduction below without fast-math and
// says so for the `simd` request; GCC (the default build) vectorises it. The loop is correct
// either way: only the warning is silenced.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpass-failed"
#endif
FloatScan scan_floats(const float* data, int64_t n) {
  // Branch-free so it vectorises: |x| <= FLT_MAX is false exactly for NaN and +-inf.
  int64_t bad = 0;
  float max_abs = 0.0f;
  constexpr float kMax = std::numeric_limits<float>::max();
#pragma omp parallel for simd schedule(static) reduction(+ : bad) reduction(max : max_abs)
  for (int64_t i = 0; i < n; ++i) {
    const float ax = std::fabs(data[i]);
    const bool finite = ax <= kMax;
    bad += finite ? 0 : 1;
    max_abs = std::max(max_abs, finite ? ax : 0.0f);
  }
  FloatScan scan;
  scan.nonfinite = bad;
  scan.max_abs_finite = max_abs;
  for (int64_t i = 0; bad > 0 && i < n; ++i) {  // rare: find the first one for the message
    if (!(std::fabs(data[i]) <= kMax)) {
      scan.first_nonfinite = i;
      break;
    }
  }
  return scan;
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

void check_finite(const float* data, const std::vector<int64_t>& shape, const FloatScan& scan,
                  const std::string& arg) {
  if (scan.nonfinite == 0) return;
  const int64_t first = scan.first_nonfinite;
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  std::vector<int64_t> index(shape.size());
  int64_t rest = first;
  for (size_t a = shape.size(); a-- > 0;) {
    index[a] = rest % shape[a];
    rest /= shape[a];
  }
  const float v = data[first];
  std::string idx = "(";
  for (size_t a = 0; a < index.size(); ++a) idx += (a ? ", " : "") + std::to_string(index[a]);
  idx += ")";
  throw Error(arg + ": element " + std::to_string(first) + " at index " + idx + " is " +
              (std::isnan(v) ? "NaN" : (v > 0 ? "+inf" : "-inf")) + " (" +
              std::to_string(scan.nonfinite) + " non-finite of " + std::to_string(elements) +
              " values); expected finite inputs");
}

NpyView::NpyView(NpyView&& o) noexcept { *this = std::move(o); }

NpyView& NpyView::operator=(NpyView&& o) noexcept {
  if (this != &o) {
    if (map_ != nullptr) ::munmap(map_, map_bytes_);
    shape = std::move(o.shape);
    dtype = std::move(o.dtype);
    owned_ = std::move(o.owned_);
    map_ = o.map_;
    map_bytes_ = o.map_bytes_;
    elements_ = o.elements_;
    data_ = map_ != nullptr ? o.data_ : owned_.data();
    o.map_ = nullptr;
    o.data_ = nullptr;
    o.elements_ = 0;
  }
  return *this;
}

NpyView::~NpyView() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

NpyView view_npy(const std::string& path, const std::string& arg) {
  const std::string where = arg + " '" + path + "'";
  uint64_t total = 0;
  const NpyHeader h = [&] {
    std::ifstream f;
    return open_npy(path, arg, where, f, &total);
  }();
  const uint64_t end = h.data_offset;
  NpyView view;
  view.shape = h.shape;
  view.dtype = h.descr;
  view.elements_ = h.elements;
  const bool aligned = end % alignof(float) == 0;
  if (h.descr != "<f4" || !kHostLittleEndian || h.elements == 0 || !aligned) {
    NpyArray a = read_npy(path, arg);  // widen float16/float64 (or nothing to map)
    view.owned_ = std::move(a.data);
    view.data_ = view.owned_.data();
    return view;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(where + ": cannot open: " + errno_text());
  void* map = ::mmap(nullptr, static_cast<size_t>(total), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    throw Error(where + ": cannot map " + byte_count(total) + ": " + std::strerror(map_errno));
  }
  view.map_ = map;
  view.map_bytes_ = static_cast<size_t>(total);
  view.data_ = reinterpret_cast<const float*>(static_cast<const unsigned char*>(map) + end);
  return view;
}

std::string npy_bytes(const float* data, const std::vector<int64_t>& shape) {
  const int64_t elements = checked_elements(shape, "npy_bytes");
  if (elements > 0 && data == nullptr) throw Error("npy_bytes: null data for a non-empty shape");
  std::string out = npy_header(shape);
  const size_t offset = out.size();
  out.resize(offset + static_cast<size_t>(elements) * 4);
  for (int64_t i = 0; i < elements; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, 4);
    for (int b = 0; b < 4; ++b)
      out[offset + 4 * static_cast<size_t>(i) + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
  return out;
}

NpyWriter::NpyWriter(const std::string& path, const std::vector<int64_t>& shape, bool force,
                     const std::string& arg)
    : file_(path, force, arg), left_(checked_elements(shape, arg + " '" + path + "'")) {
  const std::string header = npy_header(shape);
  file_.append(header.data(), header.size());
}

void NpyWriter::append(const float* data, int64_t n) {
  assert(n >= 0 && n <= left_ && "NpyWriter: more values than the shape holds");
  left_ -= n;
  if (kHostLittleEndian) {
    file_.append(data, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(n) * 4);  // little-endian on disk
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, data + i, 4);
    for (int b = 0; b < 4; ++b) bytes[static_cast<size_t>(4 * i + b)] = static_cast<uint8_t>(u >> (8 * b));
  }
  file_.append(bytes.data(), bytes.size());
}

void NpyWriter::commit() {
  assert(left_ == 0 && "NpyWriter: committed before every value was appended");
  file_.commit();
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape,
               bool force, const std::string& arg) {
  const std::string where = arg + " '" + path + "'";
  const int64_t elements = checked_elements(shape, where);
  if (elements > 0 && data == nullptr) throw Error(where + ": null data for a non-empty shape");
  NpyWriter file(path, shape, force, arg);
  file.append(data, elements);
  file.commit();
}

}  // namespace sta
