// .npy reading and writing: bit-exact round trips, NumPy-readable headers, exact float16,
// every rejection category as sta::Error, and a seeded mutation fuzz that must never crash.
#include "sta/npy.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sta/error.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

// An .npy file written by hand, independent of npy_bytes(): `dict` is the header text
// before padding, `payload` the raw little-endian data.
std::string make_npy(const std::string& dict, const std::string& payload, int major = 1) {
  const size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const size_t n = header.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 24) & 0xff);
  }
  return out + header + payload;
}

std::string dict_for(const std::string& descr, const std::string& shape,
                     const std::string& order = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }";
}

template <typename T>
std::string le_bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    uint64_t bits = 0;
    std::memcpy(&bits, &values[i], sizeof(T));
    for (size_t b = 0; b < sizeof(T); ++b)
      out[i * sizeof(T) + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
  return out;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Expects sta::Error whose message contains `arg` and `needle`.
void expect_rejected(const std::string& bytes, const std::string& needle) {
  try {
    read_npy_bytes(bytes, "--q");
    ADD_FAILURE() << "accepted; expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--q"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one-line message expected: " << msg;
  }
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sta_npy_test_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    path_ = p ? p : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

using testing::slurp;

TEST(NpyWrite, PiecesMakeTheSameFileAsOneWriteAndAppearOnlyOnCommit) {
  std::vector<float> data(2 * 3 * 7);
  for (size_t i = 0; i < data.size(); ++i) data[i] = 0.25f * static_cast<float>(i) - 3.0f;
  const std::vector<int64_t> shape{2, 3, 7};
  TempDir dir;
  {
    NpyWriter w(dir.file("p.npy"), shape, false, "--dq");
    w.append(data.data(), 21);  // one [3, 7] plane per "head"
    EXPECT_FALSE(std::filesystem::exists(dir.file("p.npy")));
    w.append(data.data() + 21, 0);
    w.append(data.data() + 21, 21);
    w.commit();
  }
  EXPECT_EQ(slurp(dir.file("p.npy")), npy_bytes(data.data(), shape));
  {
    NpyWriter w(dir.file("q.npy"), shape, false, "--dq");
    w.append(data.data(), 21);
  }  // an error after the first plane: nothing is published, no temporary stays
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  try {
    NpyWriter w(dir.file("p.npy"), shape, false, "--dq");
    FAIL() << "an existing file was accepted without force";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--dq"), std::string::npos) << e.what();
  }
}

TEST(NpyWrite, RoundTripIsBitIdentical) {
  const uint64_t seed = 20240601;
  std::mt19937_64 rng(seed);
  // Random bit patterns include NaNs with payloads, infinities, subnormals and -0.
  std::vector<float> data(2 * 3 * 5 * 7);
  for (auto& x : data) {
    const uint32_t b = static_cast<uint32_t>(rng());
    std::memcpy(&x, &b, 4);
  }
  data[0] = -0.0f;
  data[1] = std::numeric_limits<float>::infinity();
  data[2] = std::numeric_limits<float>::denorm_min();
  const std::vector<int64_t> shape{2, 3, 5, 7};
  const NpyArray a = read_npy_bytes(npy_bytes(data.data(), shape), "x");
  ASSERT_EQ(a.shape, shape) << "seed " << seed;
  EXPECT_EQ(a.dtype, "<f4");
  ASSERT_EQ(a.data.size(), data.size());
  for (size_t i = 0; i < data.size(); ++i)
    ASSERT_EQ(bits_of(a.data[i]), bits_of(data[i])) << "element " << i << " seed " << seed;

  TempDir dir;
  write_npy(dir.file("a.npy"), data.data(), shape, false, "--out");
  EXPECT_EQ(slurp(dir.file("a.npy")), npy_bytes(data.data(), shape));
  const NpyArray b = read_npy(dir.file("a.npy"), "--q");
  EXPECT_EQ(b.shape, shape);
  EXPECT_EQ(std::memcmp(b.data.data(), data.data(), data.size() * 4), 0);
}

TEST(NpyWrite, HeaderIsNumpyFormat10) {
  const std::vector<std::pair<std::vector<int64_t>, std::string>> cases{
      {{2, 3}, "(2, 3)"}, {{5}, "(5,)"}, {{}, "()"}, {{1, 2, 3, 4}, "(1, 2, 3, 4)"},
      {{0, 4}, "(0, 4)"}};
  for (const auto& [shape, tuple] : cases) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const std::vector<float> data(static_cast<size_t>(n), 1.5f);
    const std::string bytes = npy_bytes(data.data(), shape);
    ASSERT_GE(bytes.size(), 10u);
    EXPECT_EQ(bytes.substr(0, 6), std::string("\x93NUMPY", 6));
    EXPECT_EQ(bytes[6], 1);  // version 1.0: readable by every NumPy
    EXPECT_EQ(bytes[7], 0);
    const size_t hlen = static_cast<unsigned char>(bytes[8]) |
                        (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    EXPECT_EQ((10 + hlen) % 64, 0u) << tuple;  // data 64-byte aligned
    ASSERT_EQ(bytes.size(), 10 + hlen + data.size() * 4);
    const std::string header = bytes.substr(10, hlen);
    EXPECT_EQ(header.back(), '\n');
    // Exactly what numpy.lib.format writes: sorted keys, repr of each value, ", }".
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + tuple + ", }";
    EXPECT_EQ(header.substr(0, dict.size()), dict);
    EXPECT_EQ(header.find_first_not_of(' ', dict.size()), hlen - 1) << "space padding";
    // Little-endian float32 data: 1.5f = 0x3FC00000.
    if (n > 0) {
      EXPECT_EQ(bytes.substr(10 + hlen, 4), std::string("\x00\x00\xC0\x3F", 4));
    }
    const NpyArray back = read_npy_bytes(bytes, "x");
    EXPECT_EQ(back.shape, shape);
    EXPECT_EQ(back.elements(), n);
  }
}

TEST(NpyWrite, RejectsBadShapes) {
  const float x = 0;
  EXPECT_THROW(npy_bytes(&x, {-1}), Error);
  EXPECT_THROW(npy_bytes(&x, {int64_t{1} << 20, int64_t{1} << 20}), Error);
  EXPECT_THROW(npy_bytes(nullptr, {3}), Error);
  EXPECT_NO_THROW(npy_bytes(nullptr, {0, 3}));
}

TEST(NpyWrite, RefusesToOverwriteUnlessForced) {
  TempDir dir;
  const std::string path = dir.file("out.npy");
  const std::vector<float> one{1.0f}, two{2.0f};
  write_npy(path, one.data(), {1}, false, "--out");
  try {
    write_npy(path, two.data(), {1}, false, "--out");
    ADD_FAILURE() << "overwrote without force";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--out"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_npy(path, "x").data, one);
  write_npy(path, two.data(), {1}, true, "--out");
  EXPECT_EQ(read_npy(path, "x").data, two);
  // No temporary file is left behind, whatever happened.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "out.npy");
  }
  EXPECT_EQ(files, 1);
  EXPECT_THROW(write_npy(dir.file("missing/out.npy"), one.data(), {1}, false, "--out"), Error);
  // Even with force, only regular files are replaced: never a folder or a device.
  EXPECT_THROW(write_npy(dir.path(), one.data(), {1}, true, "--out"), Error);
  EXPECT_THROW(write_npy("/dev/null", one.data(), {1}, true, "--out"), Error);
}

TEST(NpyRead, Float16KnownValuesAreExact) {
  const std::vector<uint16_t> halves{0x3C00, 0xC000, 0x7C00, 0x0001, 0xFC00,
                                     0x8000, 0x7BFF, 0x03FF, 0x3555, 0x7E00};
  const NpyArray a = read_npy_bytes(make_npy(dict_for("<f2", "(2, 5)"), le_bytes(halves)), "x");
  EXPECT_EQ(a.dtype, "<f2");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(a.data[0], 1.0f);
  EXPECT_EQ(a.data[1], -2.0f);
  EXPECT_EQ(a.data[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(a.data[3], std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(a.data[4], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(bits_of(a.data[5]), 0x80000000u);  // -0
  EXPECT_EQ(a.data[6], 65504.0f);               // largest finite
  EXPECT_EQ(a.data[7], std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(a.data[8], 0.333251953125f);       // 1365 * 2^-12
  EXPECT_TRUE(std::isnan(a.data[9]));
}

TEST(NpyRead, Float16EveryValueMatchesFormula) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = fp16_to_float(static_cast<uint16_t>(h));
    const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const float sign = (h & 0x8000) ? -1.0f : 1.0f;
    if (e == 31) {
      if (m == 0) {
        ASSERT_EQ(got, sign * std::numeric_limits<float>::infinity()) << h;
      } else {
        ASSERT_TRUE(std::isnan(got)) << h;
        ASSERT_EQ((bits_of(got) >> 13) & 0x3ff, m) << "NaN payload kept, h=" << h;
        ASSERT_EQ(bits_of(got) >> 31, h >> 15) << h;
      }
      continue;
    }
    const double magnitude = e == 0 ? std::ldexp(static_cast<double>(m), -24)
                                    : std::ldexp(static_cast<double>(m + 1024), static_cast<int>(e) - 25);
    ASSERT_EQ(static_cast<double>(got), sign * magnitude) << "h=" << h;
    ASSERT_EQ(bits_of(got) >> 31, h >> 15) << "sign of h=" << h;
  }
}

TEST(NpyRead, Float64IsRoundedToFloat32) {
  const std::vector<double> v{0.1, -3.0, HUGE_VAL, 1e-50};
  const NpyArray a = read_npy_bytes(make_npy(dict_for("<f8", "(4,)"), le_bytes(v), 3), "x");
  EXPECT_EQ(a.dtype, "<f8");
  EXPECT_EQ(a.data[0], 0.1f);
  EXPECT_EQ(a.data[1], -3.0f);
  EXPECT_TRUE(std::isinf(a.data[2]));  // an infinity stays one
  EXPECT_EQ(a.data[3], 0.0f);
  // A finite float64 beyond float32 would silently become inf (1e300 "equal" to 1e39):
  // refused, naming the element (issue 13, class 7).
  const std::vector<double> big{0.0, 1e300};
  try {
    read_npy_bytes(make_npy(dict_for("<f8", "(2,)"), le_bytes(big), 3), "x");
    ADD_FAILURE() << "1e300 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("element 1"), std::string::npos) << e.what();
  }
}

TEST(NpyRead, AcceptsVersionsAndHeaderVariants) {
  const std::string payload = le_bytes(std::vector<float>{1, 2, 3, 4, 5, 6});
  const std::vector<std::string> dicts{
      dict_for("<f4", "(2, 3)"),
      "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}",
      "{'shape': (2,3,), 'fortran_order': False, 'descr': '<f4'}",
      "  {'descr':'<f4','fortran_order':False,'shape':(2L, 3L),}  ",  // Python 2 longs
      "{'descr': '<f4',\n 'fortran_order': False,\n 'shape': ( 2 , 3 ) ,\n}",
  };
  for (int major = 1; major <= 3; ++major) {
    for (const auto& d : dicts) {
      const NpyArray a = read_npy_bytes(make_npy(d, payload, major), "x");
      EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3})) << d;
      EXPECT_EQ(a.data[5], 6.0f) << d;
    }
  }
  // Empty arrays and scalars.
  EXPECT_EQ(read_npy_bytes(make_npy(dict_for("<f4", "(0, 7)"), ""), "x").elements(), 0);
  EXPECT_EQ(read_npy_bytes(make_npy(dict_for("<f4", "()"), le_bytes(std::vector<float>{7})), "x")
                .data,
            std::vector<float>{7});
  // A zero extent makes a shape whose other extents overflow int64 still empty.
  EXPECT_EQ(read_npy_bytes(make_npy(dict_for("<f4", "(0, 9223372036854775807, 3)"), ""), "x")
                .elements(),
            0);
}

TEST(NpyRead, RejectsBadMagicAndVersions) {
  const std::string good = make_npy(dict_for("<f4", "(1,)"), le_bytes(std::vector<float>{1}));
  expect_rejected("", "truncated");
  expect_rejected("\x93NUM", "truncated");
  expect_rejected("PK\x03\x04 this is a zip", "bad magic");
  std::string m = good;
  m[1] = 'n';
  expect_rejected(m, "bad magic");
  for (auto [major, minor] : {std::pair<int, int>{0, 0}, {4, 0}, {1, 1}, {2, 5}, {255, 255}}) {
    std::string v = good;
    v[6] = static_cast<char>(major);
    v[7] = static_cast<char>(minor);
    expect_rejected(v, "version");
  }
  expect_rejected(good.substr(0, 7), "truncated");
  expect_rejected(good.substr(0, 9), "truncated");
}

TEST(NpyRead, RejectsFortranOrderAndUnsupportedDtypes) {
  const std::string four = le_bytes(std::vector<float>{1, 2, 3, 4});
  expect_rejected(make_npy(dict_for("<f4", "(2, 2)", "True"), four), "Fortran");
  expect_rejected(make_npy(dict_for(">f4", "(2, 2)"), four), "big-endian");
  expect_rejected(make_npy(dict_for(">f2", "(2, 4)"), four), "big-endian");
  for (const char* dtype : {"<i4", "|b1", "<u2", "<c8", "|u1", "<f16", "=f4", "float32", "", "<f4 "})
    expect_rejected(make_npy(dict_for(dtype, "(4,)"), four), "unsupported dtype");
  expect_rejected(make_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", four),
                  "structured");
}

// Big-endian bytes of `values` (independent of the reader): what NumPy writes for '>f8'.
std::string be_bytes(const std::vector<double>& values) {
  std::string out = le_bytes(values);
  for (size_t i = 0; i < out.size(); i += 8) std::reverse(out.begin() + i, out.begin() + i + 8);
  return out;
}

// Expects `what()` of the error thrown by `read` to name `needles`; `label` says which path.
template <typename Read>
void expect_refused(Read read, const std::vector<std::string>& needles, const std::string& label) {
  try {
    read();
    ADD_FAILURE() << label << ": accepted";
  } catch (const Error& e) {
    for (const std::string& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << label << ": expected '" << n << "' in: " << e.what();
  }
}

TEST(NpyRead, RejectsEveryByteOrderButLittleEndian) {
  // Reading big-endian (or native '=') bytes as little-endian would give silently wrong
  // numbers. Each file holds exactly as many bytes as its dtype needs, so only the byte
  // order can make the reader refuse it; both the copying and the mapping reader are held.
  const std::vector<double> values{1.0, -2.5, 3.25, 1e-3};
  const std::string be8 = be_bytes(values);  // 32 bytes: 4 x 8, 8 x 4 or 16 x 2
  struct Case {
    const char* dtype;
    const char* shape;
    const char* says;
  };
  const Case cases[] = {
      {">f8", "(4,)", "big-endian"},  {">f4", "(8,)", "big-endian"},  {">f2", "(16,)", "big-endian"},
      {">i4", "(8,)", "big-endian"},  {">i8", "(4,)", "big-endian"},  {">i2", "(16,)", "big-endian"},
      {">u4", "(8,)", "big-endian"},  {">c8", "(4,)", "big-endian"},  {">c16", "(2,)", "big-endian"},
      {">b1", "(32,)", "big-endian"}, {"=f8", "(4,)", "native byte order"},
      {"=f4", "(8,)", "native byte order"}, {"=f2", "(16,)", "native byte order"},
      {"|f4", "(8,)", "unsupported dtype"}, {"f4", "(8,)", "unsupported dtype"}};
  TempDir dir;
  for (const Case& c : cases) {
    const std::string bytes = make_npy(dict_for(c.dtype, c.shape), be8);
    const std::vector<std::string> says{c.says, std::string("'") + c.dtype + "'", "'<f4'"};
    expect_refused([&] { read_npy_bytes(bytes, "--q"); }, says, std::string(c.dtype) + " bytes");
    const std::string path = dir.file(std::string("x") + std::to_string(&c - cases) + ".npy");
    std::ofstream(path, std::ios::binary) << bytes;
    std::vector<std::string> named = says;
    named.push_back("--v '" + path + "'");  // the argument and the file
    expect_refused([&] { read_npy(path, "--v"); }, named, std::string(c.dtype) + " read_npy");
    expect_refused([&] { view_npy(path, "--v"); }, named, std::string(c.dtype) + " view_npy");
  }
  // The same values little-endian are read (the cases above fail only for the byte order).
  const NpyArray le = read_npy_bytes(make_npy(dict_for("<f8", "(4,)"), le_bytes(values)), "--q");
  EXPECT_EQ(le.data, (std::vector<float>{1.0f, -2.5f, 3.25f, static_cast<float>(1e-3)}));
}

TEST(NpyRead, RejectsMalformedHeaderDicts) {
  const std::string one = le_bytes(std::vector<float>{1});
  const std::vector<std::string> bad{
      "",
      "not a dict",
      "{'descr': '<f4', 'fortran_order': False}",                          // no shape
      "{'descr': '<f4', 'shape': (1,)}",                                   // no fortran_order
      "{'fortran_order': False, 'shape': (1,)}",                           // no descr
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",   // extra key
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1)}",            // not a tuple
      "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1.0,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",           // no '}'
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} extra",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}",            // no comma
      "{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}",            // bad quote
      "{'descr': '<f4\\x', 'fortran_order': False, 'shape': (1,)}",        // escape
      "{descr: '<f4', fortran_order: False, shape: (1,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}" + std::string(1, '\0'),
      "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}",
  };
  for (const auto& d : bad) {
    SCOPED_TRACE(d);
    EXPECT_THROW(read_npy_bytes(make_npy(d, one), "--q"), Error);
    expect_rejected(make_npy(d, one), "");
  }
  expect_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", one),
                  "unexpected key");
  expect_rejected(make_npy("{'descr': '<f4', 'fortran_order': False}", one), "no 'shape'");
}

TEST(NpyRead, RejectsAbsurdShapes) {
  expect_rejected(make_npy(dict_for("<f4", "(-1, 3)"), ""), "negative");
  expect_rejected(make_npy(dict_for("<f4", "(2, -3)"), ""), "negative");
  expect_rejected(make_npy(dict_for("<f4", "(99999999999999999999,)"), ""), "overflows");
  expect_rejected(make_npy(dict_for("<f4", "(4294967296, 4294967296)"), ""), "overflows");
  expect_rejected(make_npy(dict_for("<f4", "(4294967296, 4294967296, 4)"), ""), "overflows");
  expect_rejected(make_npy(dict_for("<f4", "(17179869185,)"), ""), "at most");
  std::string many = "(";
  for (int i = 0; i < 65; ++i) many += "1,";
  expect_rejected(make_npy(dict_for("<f4", many + ")"), ""), "dimensions");
}

TEST(NpyRead, RejectsLyingSizesTruncationAndTrailingData) {
  const std::string six = le_bytes(std::vector<float>{1, 2, 3, 4, 5, 6});
  const std::string good = make_npy(dict_for("<f4", "(2, 3)"), six);
  expect_rejected(good.substr(0, good.size() - 1), "truncated .npy data");
  expect_rejected(good.substr(0, good.size() - 24), "truncated .npy data");
  expect_rejected(good + "x", "trailing");
  expect_rejected(make_npy(dict_for("<f4", "(2, 2)"), six), "trailing");
  expect_rejected(make_npy(dict_for("<f2", "(2, 3)"), six), "trailing");
  expect_rejected(make_npy(dict_for("<f8", "(2, 3)"), six), "truncated .npy data");
  // A header length beyond the end of the file, and one that cuts the dict short.
  std::string lie = good;
  lie[8] = '\xff';
  lie[9] = '\x7f';
  expect_rejected(lie, "truncated .npy header");
  std::string short_len = good;
  short_len[8] = 20;
  short_len[9] = 0;
  expect_rejected(short_len, "malformed");
  std::string huge = make_npy(dict_for("<f4", "(2, 3)"), six, 2);
  huge[11] = '\x40';  // 1 GiB header length in a 2.0 file
  expect_rejected(huge, "absurd");
  // A huge shape with a tiny file is caught before any allocation.
  expect_rejected(make_npy(dict_for("<f4", "(8589934592,)"), six), "truncated .npy data");
}

TEST(NpyRead, FileErrorsNameArgumentAndPath) {
  TempDir dir;
  for (const std::string& path : {dir.file("missing.npy"), dir.path()}) {
    try {
      read_npy(path, "--k");
      ADD_FAILURE() << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--k '" + path + "'"), std::string::npos) << e.what();
    }
  }
  // A lying header in a real file: the size check happens before the 32 GiB allocation.
  const std::string lie = make_npy(dict_for("<f4", "(8589934592,)"), "abcd");
  std::ofstream(dir.file("lie.npy"), std::ios::binary) << lie;
  EXPECT_THROW(read_npy(dir.file("lie.npy"), "--k"), Error);
  std::ofstream(dir.file("f16.npy"), std::ios::binary)
      << make_npy(dict_for("<f2", "(3,)"), le_bytes(std::vector<uint16_t>{0x3C00, 0xC000, 0x0001}));
  EXPECT_EQ(read_npy(dir.file("f16.npy"), "--k").data,
            (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
}

TEST(NpyCheckFinite, NamesFirstNonFiniteElement) {
  NpyArray a;
  a.shape = {2, 3};
  a.data = {0, 1, 2, 3, 4, 5};
  EXPECT_NO_THROW(check_finite(a, "--q 'q.npy'"));
  a.data[4] = std::numeric_limits<float>::quiet_NaN();
  a.data[5] = -std::numeric_limits<float>::infinity();
  try {
    check_finite(a, "--q 'q.npy'");
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--q 'q.npy'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(1, 1)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2 non-finite"), std::string::npos) << msg;
  }
}

// Every mutation of a valid file either parses (into a consistent array) or throws
// sta::Error; anything else (another exception, a crash, a sanitizer report) fails.
TEST(NpyFuzz, MutatedFilesParseOrThrowError) {
  const uint64_t seed = 0x5eed5eedULL;
  std::mt19937_64 rng(seed);
  const std::vector<std::string> seeds{
      npy_bytes(std::vector<float>{1, 2, 3, 4, 5, 6}.data(), {2, 3}),
      npy_bytes(std::vector<float>{1, 2, 3, 4}.data(), {1, 1, 2, 2}),
      npy_bytes(nullptr, {0, 5}),
      make_npy(dict_for("<f2", "(4,)"), le_bytes(std::vector<uint16_t>{0x3C00, 1, 0x7C00, 0x7E01}), 2),
      make_npy(dict_for("<f8", "()"), le_bytes(std::vector<double>{2.5}), 3),
      make_npy("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1L,)}",
               le_bytes(std::vector<float>{9})),
  };
  const std::vector<std::string> tokens{"(", ")", ",", "'", "\"", "{", "}", ":", "-", "L", " ",
                                        "\n", "True", "False", "<f4", ">f4", "<f2", "<f8", "|b1",
                                        "0", "9", "99999999999999999999", "4294967296",
                                        "17179869184", std::string(1, '\0'), "\xff", "\\"};
  int parsed = 0;
  for (int iter = 0; iter < 100000; ++iter) {
    std::string m = seeds[rng() % seeds.size()];
    const size_t header_end = std::min<size_t>(m.size(), 128);
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      const size_t at_header = rng() % std::min(header_end, m.size());
      switch (rng() % 7) {
        case 0:  // bit flip, mostly in the header
          m[rng() % 4 ? at_header : rng() % m.size()] ^= static_cast<char>(1u << (rng() % 8));
          break;
        case 1:  // truncation
          m.resize(rng() % (m.size() + 1));
          break;
        case 2:  // trailing garbage
          m.append(1 + rng() % 9, static_cast<char>(rng()));
          break;
        case 3:  // replace a header byte with a token
          m.replace(at_header, 1 + rng() % 3, tokens[rng() % tokens.size()]);
          break;
        case 4:  // insert a token
          m.insert(at_header, tokens[rng() % tokens.size()]);
          break;
        case 5:  // random header length field
          if (m.size() >= 12) {
            m[8 + rng() % (m[6] == 1 ? 2 : 4)] = static_cast<char>(rng());
          }
          break;
        default:  // random version byte
          if (m.size() >= 8) m[6 + rng() % 2] = static_cast<char>(rng() % 5);
          break;
      }
    }
    try {
      const NpyArray a = read_npy_bytes(m, "fuzz");
      int64_t n = 1;
      for (int64_t d : a.shape) n *= d;
      ASSERT_EQ(n, a.elements()) << "iteration " << iter << " seed " << seed;
      ++parsed;
    } catch (const Error&) {
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << " seed " << seed << ": non-sta exception " << e.what();
    }
  }
  // The mutations are meant to mostly break files, but some survive (padding edits).
  EXPECT_GT(parsed, 100) << "seed " << seed;
  EXPECT_LT(parsed, 90000) << "seed " << seed;
}

}  // namespace
}  // namespace sta
