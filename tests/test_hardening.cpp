// Issue 13 ("hardening, round two"): one test per class of hostile input, each written so
// that it fails on the behaviour the issue reports (crash, hang, wrong answer with exit 0).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "cli.hpp"
#include "sta/blocks.hpp"
#include "sta/golden.hpp"
#include "sta/npy.hpp"
#include "sta/sha256.hpp"
#include "sta/svg.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

using sta::testing::run_cli;

class Hardening : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sta_hardening_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  // A float32 .npy of `shape` filled with `value`.
  void npy(const std::string& name, const std::vector<int64_t>& shape, float value) const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> data(static_cast<size_t>(n), value);
    write(name, npy_bytes(data.data(), shape));
  }
  std::string dir_;
};

// Exit 2 and a message that names `arg`: refused, not crashed, not exit 3.
void expect_refused(const sta::testing::CliResult& r, const std::string& arg) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(arg), std::string::npos) << "message should name " << arg << ":\n" << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
}

// --- 1. size arithmetic --------------------------------------------------------------------

TEST_F(Hardening, SizeProductsAreRefusedNotWrapped) {
  // A ragged tile of 2^62 tokens wrapped tile_tokens() to 0 (SIGFPE) or blamed --block.
  auto r = run_cli("counts --video 10,10,10 --tile 4611686018427387904,4,4 --ragged");
  expect_refused(r, "--tile");
  EXPECT_EQ(r.output.find("--block"), std::string::npos) << r.output;
  // 19 digits beyond INT64_MAX were printed wrapped (T = -8446744073709551617).
  r = run_cli("counts --video 10000000000000000000,8,8");
  expect_refused(r, "--video");
  EXPECT_EQ(r.output.find("-8446744073709551617"), std::string::npos) << r.output;
  // Allocations that cannot succeed were "internal error: std::bad_alloc" (exit 3).
  r = run_cli("golden --dir " + path("g") + " --video 6,8,8 --tile 6,8,8 --batch 1048576 "
              "--heads 1048576 --dim 65536");
  expect_refused(r, "--batch");
  // A raster block of 2^63 - 1 tokens wrapped the block count to 0 (all-zero counts, exit 0).
  r = run_cli("counts --video 6,8,8 --tile 6,8,8 --order raster --block 9223372036854775807,1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(sta::testing::json_int(r.output, "total"), 384) << r.output;  // 1 query block x 384 keys
  r = run_cli("golden --dir " + path("g2") + " --video 96,96,96 --tile 6,8,8 --batch 4096 --dim 4096");
  expect_refused(r, "--batch/--heads/--dim");
  EXPECT_NE(r.output.find("bytes"), std::string::npos) << r.output;
}

// --- 2. cost that grows faster than the input ---------------------------------------------

TEST_F(Hardening, PerAxisClassifierIsLinear) {
  // 70,000 one-token tiles on one axis: n^2 tables took 80 s and 4.8 GB.
  const auto start = std::chrono::steady_clock::now();
  auto r = run_cli("counts --video 70000,1 --tile 1,1 --mask sta:3,3 --json");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(s, 5.0);
  // Independent count: each of the 70,000 query tiles sees 3 key tiles (2 at the ends, but
  // the clamped window keeps 3), and every visited block is dense.
  EXPECT_EQ(sta::testing::json_int(r.output, "dense"), 70000LL * 3);
  EXPECT_EQ(sta::testing::json_int(r.output, "mixed"), 0);
}

TEST_F(Hardening, AttentionCostGrowingFasterThanTheInputIsRefused) {
  // 70,000 one-token tiles with D = 1 (840 KB): full attention is refused on every backend
  // that would visit all pairs; the sta window is cheap and runs.
  std::vector<float> data(70000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 7) * 0.1f;
  write("q.npy", npy_bytes(data.data(), {1, 1, 70000, 1}));
  const std::string in = "run --q " + path("q.npy") + " --k " + path("q.npy") + " --v " + path("q.npy") +
                         " --video 70000,1 --tile 1,1 --out " + path("o.npy") + " --force";
  for (const char* b : {"--mask full --backend dense", "--mask full --backend sta",
                        "--mask sta:1,3,3 --backend reference", "--mask swa:1,70001,1 --backend natten"})
    expect_refused(run_cli(in + " " + b), "--q");
  const auto ok = run_cli(in + " --mask sta:1,3,3");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  // The presets stay allowed (hunyuan: minutes, but linear in its 4 GB of input), and so does
  // the paper's Table 2 problem with the dense backend (one head, D = 64 and 128).
  ::unsetenv("STA_MAX_WORK");
  for (int64_t dim : {64, 128}) {
    AttentionOptions hunyuan;  // 30x48x80 canvas, 6x8x8 tiles
    const AttentionShape shape{1, 1, hunyuan.geometry.seq_len(), dim};
    EXPECT_NO_THROW(cli::check_attention_cost(shape, hunyuan, Backend::kDense,
                                              12.0 * static_cast<double>(shape.elements()), "--q"))
        << "D = " << dim;
  }
  for (const GoldenPreset& p : golden_presets()) {
    const double bytes = 12.0 * static_cast<double>(p.shape.elements());
    EXPECT_NO_THROW(cli::check_attention_cost(p.shape, p.options, p.backend, bytes, "--preset")) << p.name;
  }
}

TEST_F(Hardening, TiledClassifierMatchesBruteForceOnRandomGeometries) {
  const uint64_t seed = 1313;
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 300; ++trial) {
    const Geometry g = sta::testing::random_geometry(rng, 5, 4);
    const Mask m = sta::testing::random_mask(rng, g);
    const BlockStats fast = classify_blocks(g, m);
    const BlockCounts slow =
        sta::testing::brute_force_blocks(g, m, Layout::kTiled, g.tile_tokens(), g.tile_tokens()).counts;
    int64_t visits = 0, dense_visits = 0;
    for (const auto& list : key_tile_visits(g, m))
      for (const KeyTileVisit& v : list) {
        ++visits;
        dense_visits += v.dense;
      }
    ASSERT_EQ(visits, slow.dense + slow.mixed) << "seed " << seed << " trial " << trial;
    ASSERT_EQ(dense_visits, slow.dense) << "seed " << seed << " trial " << trial;
    ASSERT_EQ(fast.counts.dense, slow.dense) << "seed " << seed << " trial " << trial << " " << to_string(m);
    ASSERT_EQ(fast.counts.mixed, slow.mixed) << "seed " << seed << " trial " << trial << " " << to_string(m);
    ASSERT_EQ(fast.counts.empty, slow.empty) << "seed " << seed << " trial " << trial << " " << to_string(m);
  }
}

TEST_F(Hardening, ReportBenchIsBoundedForExtremeTimes) {
  write("b.json", R"({"benchmarks": [{"name": "a", "real_time": 1e308, "time_unit": "ms"},
                                     {"name": "b", "real_time": 1e-300, "time_unit": "ms"}]})");
  const auto r = run_cli("report --out " + path("rep") + " --bench " + path("b.json"));
  expect_refused(r, "--bench");
}

// --- 3. zero-size dimensions ---------------------------------------------------------------

TEST_F(Hardening, EmptyArrays) {
  // compare: two empty arrays agree (nothing out of tolerance), at once, even beside huge
  // extents whose product overflows.
  const std::string huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904, 0, 4), }";
  std::string header = std::string("\x93NUMPY\x01\x00", 8);
  std::string dict = huge;
  while ((10 + dict.size() + 1) % 64) dict += ' ';
  dict += '\n';
  header += static_cast<char>(dict.size() & 0xff);
  header += static_cast<char>(dict.size() >> 8);
  write("e.npy", header + dict);
  auto r = run_cli("compare " + path("e.npy") + " " + path("e.npy"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // A picture of an empty array (B = 0) is refused naming --q.
  npy("q0.npy", {0, 1, 384, 4}, 1.0f);
  r = run_cli("viz recall --q " + path("q0.npy") + " --k " + path("q0.npy") +
              " --video 6,8,8 --tile 6,8,8 --out " + path("r.svg"));
  expect_refused(r, "--q");
  npy("h0.npy", {1, 0, 384, 4}, 1.0f);
  r = run_cli("viz recall --q " + path("h0.npy") + " --k " + path("h0.npy") +
              " --video 6,8,8 --tile 6,8,8 --out " + path("r.svg"));
  expect_refused(r, "--q");
  // run refuses an empty axis.
  r = run_cli("run --q " + path("h0.npy") + " --k " + path("h0.npy") + " --v " + path("h0.npy") +
              " --video 6,8,8 --tile 6,8,8 --out " + path("o.npy"));
  expect_refused(r, "--q");
}

// --- 4. paths that are not regular files ---------------------------------------------------

TEST_F(Hardening, DevicesFifosAndFoldersAreRefusedBeforeReading) {
  auto r = run_cli("compare /dev/zero /dev/zero");
  expect_refused(r, "character device");
  ASSERT_EQ(::mkfifo(path("fifo.npy").c_str(), 0600), 0);
  r = run_cli("compare " + path("fifo.npy") + " " + path("fifo.npy"));  // used to block forever
  expect_refused(r, "FIFO");
  std::filesystem::create_directories(path("g/manifest.json"));
  r = run_cli("verify " + path("g"));
  expect_refused(r, "is a folder");
  EXPECT_EQ(r.output.find("malformed"), std::string::npos) << r.output;
}

TEST_F(Hardening, VerifyChecksSizesBeforeHashing) {
  ASSERT_EQ(run_cli("golden --dir " + path("g") + " --video 6,8,8 --tile 6,8,8 --dim 4").exit_code, 0);
  // A golden file replaced by a link to /dev/zero, or by a sparse file of another size.
  std::filesystem::remove(path("g/k.npy"));
  std::filesystem::create_symlink("/dev/zero", path("g/k.npy"));
  auto r = run_cli("verify " + path("g"));
  expect_refused(r, "character device");
  std::filesystem::remove(path("g/k.npy"));
  { std::ofstream(path("g/k.npy")) << "x"; }
  ASSERT_EQ(::truncate(path("g/k.npy").c_str(), int64_t{1} << 36), 0);  // 64 GB, sparse
  const auto start = std::chrono::steady_clock::now();
  r = run_cli("verify " + path("g"));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("size"), std::string::npos) << r.output;
}

// --- 5. verify trusts nothing --------------------------------------------------------------

class VerifyEdits : public Hardening {
 protected:
  void SetUp() override {
    Hardening::SetUp();
    ASSERT_EQ(run_cli("golden --dir " + path("g") + " --video 6,8,8 --tile 3,4,4 --mask sta:1,3,3 "
                      "--mask swa:3,3,3 --dim 8 --seed 9223372036854775807").exit_code, 0);
    std::ifstream f(path("g/manifest.json"));
    manifest_.assign(std::istreambuf_iterator<char>(f), {});
  }
  // Replaces the first `from` in the manifest by `to` and runs verify.
  sta::testing::CliResult edited(const std::string& from, const std::string& to,
                                 const std::string& flags = "") {
    std::string m = manifest_;
    const auto at = m.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) m.replace(at, from.size(), to);
    std::ofstream(path("g/manifest.json"), std::ios::trunc) << m;
    return run_cli("verify " + path("g") + " " + flags);
  }
  std::string manifest_;
};

TEST_F(VerifyEdits, LargeSeedVerifies) {
  const auto r = run_cli("verify " + path("g"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(VerifyEdits, EveryDerivedFieldIsChecked) {
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"\"atol\": 1e-05", "\"atol\": 1e9"},
      {"\"scale\": 0.35355339059327373", "\"scale\": 0"},
      {"\"tiles\": [2, 2, 2]", "\"tiles\": [2, 2, 3]"},
      {"\"effective_masks\": [\"sta:1,2,2\"", "\"effective_masks\": [\"sta:1,3,3\""},
      {"\"dense\": ", "\"dense\": 1"},
      {"\"shape\": [1, 2, 384, 8], \"bytes\": ", "\"shape\": [1, 2, 384, 8], \"bytes\": 1"},
      {"\"shape\": [1, 2, 384, 8]", "\"shape\": [2, 1, 384, 8]"},
  };
  // The seed is checked by regenerating the inputs (not done with --hashes-only).
  const auto seed = edited("\"seed\": 9223372036854775807", "\"seed\": 9223372036854775806");
  EXPECT_EQ(seed.exit_code, 1) << seed.output;
  for (const auto& [from, to] : edits) {
    for (const char* flags : {"", "--hashes-only"}) {
      const auto r = edited(from, to, flags);
      EXPECT_NE(r.exit_code, 0) << from << " -> " << to << " " << flags << "\n" << r.output;
    }
  }
}

TEST_F(Hardening, VerifyRejectsReshapedAndRehashedFiles) {
  ASSERT_EQ(run_cli("golden --dir " + path("g") + " --video 6,8,8 --tile 6,8,8 --dim 8").exit_code, 0);
  // Re-save out.npy as [1,1,8,384] (same bytes, another shape) and fix its hash and shape.
  auto out = read_npy(path("g/out.npy"), "out");
  const std::string bytes = npy_bytes(out.data.data(), {1, 1, 8, 384});
  write("g/out.npy", bytes);
  std::ifstream f(path("g/manifest.json"));
  std::string m((std::istreambuf_iterator<char>(f)), {});
  const std::string key = "\"out.npy\": {\"shape\": [1, 1, 384, 8]";
  ASSERT_NE(m.find(key), std::string::npos) << m;
  m.replace(m.find(key), key.size(), "\"out.npy\": {\"shape\": [1, 1, 8, 384]");
  const auto h = m.find("\"sha256\": \"", m.find("\"out.npy\"")) + 11;
  m.replace(h, 64, sha256_hex(bytes));
  std::ofstream(path("g/manifest.json"), std::ios::trunc) << m;
  const auto r = run_cli("verify " + path("g"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
}

// --- 6. outputs checked before the work ----------------------------------------------------

TEST_F(Hardening, OutputsAreResolvedAndCheckedFirst) {
  npy("q.npy", {1, 1, 384, 4}, 0.5f);
  const std::string in = " --q " + path("q.npy") + " --k " + path("q.npy") + " --v " + path("q.npy") +
                         " --video 6,8,8 --tile 6,8,8";
  expect_refused(run_cli("run" + in + " --out " + path("o.npy") + " --force=no"), "--force");
  // Two spellings of one file.
  auto r = run_cli("run" + in + " --out " + path("o.npy") + " --lse " + dir_ + "/./o.npy");
  expect_refused(r, "--lse");
  EXPECT_FALSE(std::filesystem::exists(path("o.npy")));
  // An output that is an input.
  expect_refused(run_cli("run" + in + " --out " + path("q.npy") + " --force"), "--out");
  std::filesystem::create_hard_link(path("q.npy"), path("hard.npy"));
  expect_refused(run_cli("run" + in + " --out " + path("hard.npy") + " --force"), "--out");
  // A name beyond NAME_MAX, and a folder that does not exist: refused, nothing written.
  r = run_cli("run" + in + " --out " + path("o.npy") + " --lse " + path(std::string(256, 'x')));
  expect_refused(r, "--lse");
  EXPECT_FALSE(std::filesystem::exists(path("o.npy")));
  // A legal name of 255 bytes works (its temporary file gets a short name).
  r = run_cli("run" + in + " --out " + path("o.npy") + " --lse " + path(std::string(255, 'x')));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(path(std::string(255, 'x'))));
  std::filesystem::remove(path("o.npy"));
  expect_refused(run_cli("run" + in + " --out " + path("none/o.npy")), "--out");
}

// --- 7. numbers the fp32 kernels cannot hold ----------------------------------------------

TEST_F(Hardening, ValuesBeyondFloat32AreRefused) {
  npy("q.npy", {1, 1, 384, 4}, 0.5f);
  npy("big.npy", {1, 1, 384, 4}, 1e20f);
  const std::string shape = " --video 6,8,8 --tile 6,8,8 --out " + path("o.npy");
  for (const char* backend : {"reference", "natten", "sta"}) {
    expect_refused(run_cli("run --q " + path("q.npy") + " --k " + path("q.npy") + " --v " + path("q.npy") +
                           " --scale 1e39 --backend " + std::string(backend) + shape),
                   "--scale");
    expect_refused(run_cli("run --q " + path("big.npy") + " --k " + path("big.npy") + " --v " +
                           path("q.npy") + " --backend " + std::string(backend) + shape),
                   "--q");
  }
  npy("k16.npy", {1, 1, 384, 4}, 70000.0f);  // float16 overflows to inf at 65520
  expect_refused(run_cli("run --q " + path("q.npy") + " --k " + path("k16.npy") + " --v " + path("q.npy") +
                         " --round fp16" + shape),
                 "--k");
  // Inputs that fit give finite output (the rule does not refuse normal data).
  const auto ok = run_cli("run --q " + path("q.npy") + " --k " + path("q.npy") + " --v " + path("q.npy") +
                          " --scale 1e30" + shape);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  // compare: float64 1e300 and 1e39 must not both become inf and "agree".
  auto f8 = [&](const std::string& name, double v) {
    std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }";
    while ((10 + dict.size() + 1) % 64) dict += ' ';
    dict += '\n';
    std::string b = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(dict.size()) + '\0' + dict;
    b.append(reinterpret_cast<const char*>(&v), 8);
    write(name, b);
  };
  f8("a.npy", 1e300);
  f8("b.npy", 1e39);
  const auto r = run_cli("compare " + path("a.npy") + " " + path("b.npy"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  expect_refused(r, "float32 range");
}

// --- 8. strategies and presets -------------------------------------------------------------

TEST_F(Hardening, StrategiesAndPresets) {
  // Layer 1 lacks head 1: refused naming the key, never broadcast from head 0.
  write("s.json", R"({"0_0_0": [1,1,1], "0_0_1": [3,3,3], "0_1_0": [1,1,1]})");
  auto r = run_cli("counts --video 6,8,8 --tile 3,4,4 --strategy " + path("s.json") + " --step 0 --layer 1");
  expect_refused(r, "0_1_1");
  EXPECT_NE(r.output.find("--strategy"), std::string::npos) << r.output;
  // A head index of 999,999,999 elsewhere in the file: the missing key, not std::bad_alloc.
  write("s2.json", R"({"0_0_0": [1,1,1], "0_1_999999999": [3,3,3]})");
  r = run_cli("counts --video 6,8,8 --tile 3,4,4 --strategy " + path("s2.json") + " --step 0 --layer 0");
  expect_refused(r, "0_0_1");
  // A strategy's heads must match the problem's: named --strategy, not --mask.
  npy("q.npy", {1, 3, 384, 4}, 0.5f);
  r = run_cli("run --q " + path("q.npy") + " --k " + path("q.npy") + " --v " + path("q.npy") +
              " --video 6,8,8 --tile 3,4,4 --strategy " + path("s.json") + " --step 0 --layer 0 --out " +
              path("o.npy"));
  expect_refused(r, "--strategy");
  EXPECT_EQ(r.output.find("--mask"), std::string::npos) << r.output;
  // golden --preset does not silently ignore --strategy; counts does not ignore --layout.
  expect_refused(run_cli("golden --preset tiny --dir " + path("g") + " --strategy " + path("s.json") +
                         " --step 0 --layer 0"),
                 "--strategy");
  expect_refused(run_cli("counts --layout raster"), "--layout");
  expect_refused(run_cli("counts --text-pad 8"), "--text-pad");
  npy("a.npy", {2}, 1.0f);
  expect_refused(run_cli("compare " + path("a.npy") + " " + path("a.npy") + " --mask sta:1,1,1"), "--mask");
  expect_refused(run_cli("viz blocks --layout raster --out " + path("b.svg")), "--layout");
}

TEST_F(Hardening, GoldenInfersOneHeadPerMask) {  // issue 11
  const auto r = run_cli("golden --mask sta:3,1,3 --mask swa:3,5,3 --video 6,8,8 --tile 3,4,4 --dim 4 --dir " +
                         path("g"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = read_npy(path("g/out.npy"), "out");
  EXPECT_EQ(out.shape, (std::vector<int64_t>{1, 2, 384, 4}));
}

// --- 9. text in pictures -------------------------------------------------------------------

TEST_F(Hardening, InvalidUtf8BecomesReplacementCharacters) {
  // Lone continuation, truncated sequence, overlong '/', a surrogate, and valid text.
  const std::string bad = std::string("a\x80" "b\xE2\x82" "c\xC0\xAF" "d\xED\xA0\x80" "e\xC3\xA9", 16);
  const std::string esc = xml_escape(bad);
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(esc, "a" + fffd + "b" + fffd + fffd + "c" + fffd + fffd + "d" + fffd + fffd + fffd +
                     "e\xC3\xA9");
  const auto r = run_cli("viz blocks --video 6,8,8 --tile 3,4,4 --title \"$(printf 'bad \\377\\376 title')\" --out " +
                         path("b.svg"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(path("b.svg"), std::ios::binary);
  const std::string svg((std::istreambuf_iterator<char>(f)), {});
  for (size_t i = 0; i < svg.size(); ++i)
    ASSERT_NE(static_cast<unsigned char>(svg[i]), 0xFF) << "raw invalid byte at " << i;
}

}  // namespace
}  // namespace sta
