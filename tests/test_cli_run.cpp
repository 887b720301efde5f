// `sta run` and `sta compare` as a script runs them: every backend agrees with the reference
// through `sta compare`, stats carry the kernel's counters, outputs are never clobbered, and
// bad input exits 2 with one line naming the argument.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "sta/attention.hpp"
#include "sta/blocks.hpp"
#include "sta/mask.hpp"
#include "sta/npy.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

using testing::json_int;
using testing::run_cli;

// A tiny video with text: canvas 2x4x4 in 1x2x2 tiles (8 tiles of 4 tokens), 3 of 4 text
// slots real, so S = 32 + 4 = 36.
const char* kGeometry = "--video 2,4,4 --tile 1,2,2 --text-pad 4 --text-length 3";
constexpr int64_t kB = 2, kH = 2, kS = 36, kD = 8;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

int count_lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

class CliRun : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sta_cli_run_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::mt19937_64 rng(seed_);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const char* name : {"q", "k", "v"}) {
      std::vector<float> x(static_cast<size_t>(kB * kH * kS * kD));
      for (auto& e : x) e = normal(rng);
      write_npy(path(std::string(name) + ".npy"), x.data(), {kB, kH, kS, kD}, false, name);
      data_[name] = x;
    }
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string p(const std::string& name) const { return quoted(path(name)); }
  std::string inputs() const {
    return "--q " + p("q.npy") + " --k " + p("k.npy") + " --v " + p("v.npy") + " " + kGeometry;
  }

  const uint64_t seed_ = 77;
  std::string dir_;
  std::map<std::string, std::vector<float>> data_;
};

TEST_F(CliRun, EveryBackendAgreesWithReference) {
  struct Case {
    std::string masks;
    std::vector<std::string> backends;  // "" = the default backend
  };
  const std::vector<Case> cases{
      {"--mask sta:1,1,1 --mask sta:3,1,2", {"sta", "natten", ""}},
      {"--mask swa:1,3,3 --mask swa:2,2,3", {"natten", ""}},
      {"--mask full", {"dense", "sta", "natten"}},
      {"--mask sta:1,3,3 --layout raster", {"sta", "natten"}},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string ref = "ref" + std::to_string(n);
    const auto r = run_cli("run " + inputs() + " " + c.masks + " --backend reference --out " +
                           p(ref + ".npy") + " --lse " + p(ref + "_lse.npy"));
    ASSERT_EQ(r.exit_code, 0) << c.masks << "\n" << r.output;
    for (const std::string& backend : c.backends) {
      const std::string out = "out" + std::to_string(n) + "_" + backend;
      const auto f = run_cli("run " + inputs() + " " + c.masks +
                             (backend.empty() ? "" : " --backend " + backend) + " --threads 2" +
                             " --out " + p(out + ".npy") + " --lse " + p(out + "_lse.npy"));
      ASSERT_EQ(f.exit_code, 0) << c.masks << " " << backend << "\n" << f.output;
      const auto cmp = run_cli("compare " + p(out + ".npy") + " " + p(ref + ".npy") + " --atol 1e-5");
      EXPECT_EQ(cmp.exit_code, 0) << c.masks << " backend " << backend << "\n" << cmp.output;
      // lse: -inf for queries without keys must agree too; relative tolerance for large values.
      const auto lse = run_cli("compare " + p(out + "_lse.npy") + " " + p(ref + "_lse.npy") +
                               " --atol 1e-5 --rtol 1e-6");
      EXPECT_EQ(lse.exit_code, 0) << c.masks << " backend " << backend << "\n" << lse.output;
    }
    ++n;
  }
  // The outputs have the documented shapes.
  EXPECT_EQ(read_npy(path("ref0.npy"), "x").shape, (std::vector<int64_t>{kB, kH, kS, kD}));
  EXPECT_EQ(read_npy(path("ref0_lse.npy"), "x").shape, (std::vector<int64_t>{kB, kH, kS}));
}

TEST_F(CliRun, HeadByHeadFilesEqualOneLibraryCall) {
  // sta run computes and writes one head at a time; out and lse must be what one attention()
  // call on the whole tensors gives, bit for bit (per-head masks, raster order, padded text).
  const std::string masks = " --mask swa:1,3,3 --mask swa:3,1,3 --layout raster --backend natten";
  const auto r = run_cli("run " + inputs() + masks + " --out " + p("h.npy") + " --lse " + p("h_lse.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  AttentionOptions o;
  o.geometry = testing::geo({2, 4, 4}, {1, 2, 2}, 3, 4);  // kGeometry
  o.masks = {Mask::swa({1, 3, 3}), Mask::swa({3, 1, 3})};
  o.layout = Layout::kRaster;
  auto in = [&](const char* name) { return read_npy(path(name), name).data; };
  const std::vector<float> q = in("q.npy"), k = in("k.npy"), v = in("v.npy");
  std::vector<float> out(q.size()), lse(q.size() / kD);
  attention({kB, kH, kS, kD}, o, q.data(), k.data(), v.data(), out.data(), lse.data(), Backend::kNatten);
  EXPECT_EQ(in("h.npy"), out);
  EXPECT_EQ(in("h_lse.npy"), lse);
}

TEST_F(CliRun, StatsJsonHoldsKernelCounters) {
  const auto r = run_cli("run " + inputs() + " --mask sta:1,1,1 --mask sta:3,3,3 --backend sta" +
                         " --out " + p("o.npy") + " --stats " + p("s.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(path("s.json"));
  const std::string json((std::istreambuf_iterator<char>(f)), {});
  Geometry g;
  g.canvas = {2, 4, 4};
  g.tile = {1, 2, 2};
  BlockCounts want = classify_blocks(g, Mask::sta({1, 1, 1})).counts;
  want += classify_blocks(g, Mask::sta({3, 3, 3})).counts;
  EXPECT_EQ(json_int(json, "dense"), kB * want.dense) << json;
  EXPECT_EQ(json_int(json, "mixed"), 0) << json;
  EXPECT_EQ(json_int(json, "empty"), kB * want.empty) << json;
  EXPECT_GE(json_int(json, "threads"), 1) << json;
  EXPECT_NE(json.find("\"backend\": \"sta\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"isa\": \""), std::string::npos) << json;
  EXPECT_NE(json.find("\"shape\": [2, 2, 36, 8]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"seconds\": "), std::string::npos) << json;
  EXPECT_NE(json.find("\"masks\": [\"sta:1,1,1\", \"sta:3,3,3\"]"), std::string::npos) << json;

  // natten on a token-wise window reports mixed blocks it masked.
  const auto n = run_cli("run " + inputs() + " --mask swa:1,3,3 --out " + p("o2.npy") +
                         " --stats " + p("s2.json"));
  ASSERT_EQ(n.exit_code, 0) << n.output;
  std::ifstream f2(path("s2.json"));
  const std::string json2((std::istreambuf_iterator<char>(f2)), {});
  const BlockCounts swa = classify_blocks(g, Mask::swa({1, 3, 3})).counts;
  EXPECT_NE(json2.find("\"backend\": \"natten\""), std::string::npos) << json2;
  EXPECT_EQ(json_int(json2, "mixed"), kB * kH * swa.mixed) << json2;
  EXPECT_EQ(json_int(json2, "dense"), kB * kH * swa.dense) << json2;
}

TEST_F(CliRun, RefusesToOverwriteWithoutForce) {
  const std::string run = "run " + inputs() + " --mask sta:1,1,1 --out " + p("o.npy");
  ASSERT_EQ(run_cli(run).exit_code, 0);
  const std::vector<float> first = read_npy(path("o.npy"), "x").data;
  // Different inputs, same output: refused, and the file is untouched.
  const std::string swapped = "run --q " + p("k.npy") + " --k " + p("q.npy") + " --v " +
                              p("v.npy") + " " + kGeometry + " --mask sta:1,1,1 --out " + p("o.npy");
  const auto again = run_cli(swapped);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("--out"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
  EXPECT_EQ(read_npy(path("o.npy"), "x").data, first);
  // Every output is checked before computing: an existing --stats stops the run, and the
  // new --out is not created.
  std::ofstream(path("taken.json")) << "{}";
  const auto stats = run_cli(run + "_new --stats " + p("taken.json"));
  EXPECT_EQ(stats.exit_code, 2) << stats.output;
  EXPECT_NE(stats.output.find("--stats"), std::string::npos) << stats.output;
  EXPECT_FALSE(std::filesystem::exists(path("o.npy_new")));
  const auto forced = run_cli(swapped + " --force");
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_NE(read_npy(path("o.npy"), "x").data, first);
  for (const auto& entry : std::filesystem::directory_iterator(dir_))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST_F(CliRun, BadInputsExitTwoWithOneLineNamingTheArgument) {
  // Build the bad files.
  std::vector<float> small(static_cast<size_t>(kB * kH * kS));
  write_npy(path("three_d.npy"), small.data(), {kB, kH, kS}, false, "x");
  std::vector<float> other(static_cast<size_t>(kB * kH * 40 * kD));
  write_npy(path("s40.npy"), other.data(), {kB, kH, 40, kD}, false, "x");
  std::vector<float> d4(static_cast<size_t>(kB * kH * kS * 4));
  write_npy(path("d4.npy"), d4.data(), {kB, kH, kS, 4}, false, "x");
  std::vector<float> nan = data_["v"];
  nan[123] = std::numeric_limits<float>::quiet_NaN();
  write_npy(path("nan.npy"), nan.data(), {kB, kH, kS, kD}, false, "x");
  std::ofstream(path("garbage.npy")) << "this is not numpy";

  const std::string qk = "--q " + p("q.npy") + " --k " + p("k.npy") + " ";
  const std::string tail = std::string(" ") + kGeometry + " --mask sta:1,1,1 --out " + p("o.npy");
  struct Bad {
    std::string args;
    std::vector<std::string> needles;
  };
  const std::vector<Bad> bad{
      {"--q " + p("three_d.npy") + " --k " + p("k.npy") + " --v " + p("v.npy") + tail,
       {"--q", "three_d.npy", "4-D"}},
      {qk + "--v " + p("d4.npy") + tail, {"--v", "d4.npy", "differs"}},
      {"--q " + p("s40.npy") + " --k " + p("s40.npy") + " --v " + p("s40.npy") + tail,
       {"--q", "S = 40", "36"}},
      {qk + "--v " + p("nan.npy") + tail, {"--v", "nan.npy", "NaN", "--allow-nonfinite"}},
      {qk + "--v " + p("missing.npy") + tail, {"--v", "missing.npy"}},
      {qk + "--v " + p("garbage.npy") + tail, {"--v", "garbage.npy", "magic"}},
      {qk + "--v " + p("v.npy") + " " + kGeometry, {"--out", "missing"}},
      {qk + "--v " + p("v.npy") + tail + " --bogus 1", {"--bogus"}},
      {qk + "--v " + p("v.npy") + tail + " --backend fast", {"--backend"}},
      {qk + "--v " + p("v.npy") + tail + " --round fp8", {"--round"}},
      {qk + "--v " + p("v.npy") + tail + " --scale -1", {"--scale"}},
      {qk + "--v " + p("v.npy") + tail + " --threads 0", {"--threads"}},
      {qk + "--v " + p("v.npy") + tail + " --mask sta:1,1,1 --mask sta:1,1,1", {"--mask"}},
      {qk + "--v " + p("v.npy") + " " + kGeometry + " --mask swa:3,3,3 --backend sta --out " +
           p("o.npy"),
       {"--mask", "sta"}},
      {qk + "--v " + p("v.npy") + " --video 2,4,5 --tile 1,2,2 --out " + p("o.npy"), {"--video"}},
      {qk + "--v " + p("v.npy") + tail + " --lse " + p("o.npy"), {"--lse", "same file"}},
      {qk + "--v " + p("v.npy") + tail + " --stats /dev/null --force", {"--stats", "regular"}},
  };
  for (const Bad& b : bad) {
    const auto r = run_cli("run " + b.args);
    EXPECT_EQ(r.exit_code, 2) << b.args << "\n" << r.output;
    EXPECT_EQ(count_lines(r.output), 1) << b.args << "\n" << r.output;
    for (const auto& needle : b.needles)
      EXPECT_NE(r.output.find(needle), std::string::npos) << "'" << needle << "' in " << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(path("o.npy")));
  // NaN inputs are fine when asked for.
  const auto ok = run_cli("run " + qk + "--v " + p("nan.npy") + tail + " --allow-nonfinite");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST_F(CliRun, Float16InputsMatchTheirFloat32Values) {
  // Hand-built '<f2' files: exact halves of the float32 inputs; the float32 files holding the
  // same (widened) values must give the same output.
  std::string paths;
  for (const char* name : {"q", "k", "v"}) {
    std::string payload;
    std::vector<float> widened;
    for (float x : data_[name]) {
      uint32_t b;
      std::memcpy(&b, &x, 4);
      // Truncate to fp16 (inputs ~N(0,1): normal range, no overflow).
      const uint32_t exp = (b >> 23) & 0xff;
      uint16_t h = static_cast<uint16_t>((b >> 16) & 0x8000);
      if (exp >= 113) h |= static_cast<uint16_t>(((exp - 112) << 10) | ((b >> 13) & 0x3ff));
      payload += static_cast<char>(h & 0xff);
      payload += static_cast<char>(h >> 8);
      widened.push_back(fp16_to_float(h));
    }
    std::string dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2, 36, 8), }";
    dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
    dict += '\n';
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(dict.size());
    bytes += '\0';
    std::ofstream(path(std::string(name) + "16.npy"), std::ios::binary) << bytes + dict + payload;
    write_npy(path(std::string(name) + "32.npy"), widened.data(), {kB, kH, kS, kD}, false, "x");
  }
  const std::string common = std::string(" ") + kGeometry + " --mask sta:1,1,1 --backend sta";
  const auto a = run_cli("run --q " + p("q16.npy") + " --k " + p("k16.npy") + " --v " +
                         p("v16.npy") + common + " --out " + p("o16.npy"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto b = run_cli("run --q " + p("q32.npy") + " --k " + p("k32.npy") + " --v " +
                         p("v32.npy") + common + " --out " + p("o32.npy"));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  const auto cmp = run_cli("compare " + p("o16.npy") + " " + p("o32.npy") + " --atol 0");
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
}

TEST_F(CliRun, CompareCatchesPerturbationAndNan) {
  std::vector<float> a = data_["q"];
  write_npy(path("a.npy"), a.data(), {kB, kH, kS, kD}, false, "x");
  // One element off by 1e-3: out of tolerance at the default atol 1e-5, fine at 1e-2.
  std::vector<float> b = a;
  const int64_t flat = ((1 * kH + 1) * kS + 33) * kD + 5;  // b 1, h 1, s 33 (text 1), d 5
  b[static_cast<size_t>(flat)] += 1e-3f;
  write_npy(path("b.npy"), b.data(), {kB, kH, kS, kD}, false, "x");
  const auto r = run_cli("compare " + p("a.npy") + " " + p("b.npy") + " " + kGeometry);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("flat " + std::to_string(flat)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(b 1, h 1, s 33, d 5)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("text 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("out of tolerance: 1 of"), std::string::npos) << r.output;
  EXPECT_EQ(run_cli("compare " + p("a.npy") + " " + p("b.npy") + " --atol 1e-2").exit_code, 0);
  EXPECT_EQ(run_cli("compare " + p("a.npy") + " " + p("b.npy") + " --rtol 1").exit_code, 0);
  const auto j = run_cli("compare " + p("a.npy") + " " + p("b.npy") + " --json");
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(json_int(j.output, "out_of_tolerance"), 1) << j.output;
  EXPECT_EQ(json_int(j.output, "flat"), flat) << j.output;

  // A video token maps to (t, y, x): tiled layout, s = 5 is tile 1 (t 0, y 0, x 2), offset 1.
  std::vector<float> c = a;
  c[5 * kD] += 1.0f;
  write_npy(path("c.npy"), c.data(), {kB, kH, kS, kD}, false, "x");
  const auto v = run_cli("compare " + p("c.npy") + " " + p("a.npy") + " " + kGeometry);
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.output.find("video token (t 0, y 0, x 3)"), std::string::npos) << v.output;

  // NaN against a number is out of tolerance; NaN against NaN agrees.
  std::vector<float> n = a;
  n[7] = std::numeric_limits<float>::quiet_NaN();
  write_npy(path("n.npy"), n.data(), {kB, kH, kS, kD}, false, "x");
  write_npy(path("n2.npy"), n.data(), {kB, kH, kS, kD}, false, "x");
  EXPECT_EQ(run_cli("compare " + p("n.npy") + " " + p("a.npy")).exit_code, 1);
  EXPECT_EQ(run_cli("compare " + p("a.npy") + " " + p("n.npy") + " --atol 100 --rtol 100").exit_code, 1);
  EXPECT_EQ(run_cli("compare " + p("n.npy") + " " + p("n2.npy") + " --atol 0").exit_code, 0);
  // Equal infinities agree; inf against a finite number never does.
  std::vector<float> inf = a;
  inf[3] = std::numeric_limits<float>::infinity();
  write_npy(path("i.npy"), inf.data(), {kB, kH, kS, kD}, false, "x");
  write_npy(path("i2.npy"), inf.data(), {kB, kH, kS, kD}, false, "x");
  EXPECT_EQ(run_cli("compare " + p("i.npy") + " " + p("i2.npy") + " --atol 0").exit_code, 0);
  EXPECT_EQ(run_cli("compare " + p("a.npy") + " " + p("i.npy") + " --rtol 10").exit_code, 1);

  // Bad input: different shapes, a missing file, one file only.
  std::vector<float> small(6);
  write_npy(path("small.npy"), small.data(), {2, 3}, false, "x");
  const auto mismatch = run_cli("compare " + p("a.npy") + " " + p("small.npy"));
  EXPECT_EQ(mismatch.exit_code, 2) << mismatch.output;
  EXPECT_NE(mismatch.output.find("shape"), std::string::npos) << mismatch.output;
  EXPECT_EQ(count_lines(mismatch.output), 1) << mismatch.output;
  EXPECT_EQ(run_cli("compare " + p("a.npy") + " " + p("nope.npy")).exit_code, 2);
  EXPECT_EQ(run_cli("compare " + p("a.npy")).exit_code, 2);
  EXPECT_EQ(run_cli("compare " + p("a.npy") + " " + p("a.npy") + " --atol -1").exit_code, 2);
}

}  // namespace
}  // namespace sta
