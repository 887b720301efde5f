// The library's golden folder writer and verifier (src/formats/golden_folder.cpp) called directly, as
// the Python module does: files against the generator and the double reference, the report's
// lines and results, damage caught, errors naming the caller's argument.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sta/backward.hpp"
#include "sta/error.hpp"
#include "sta/golden.hpp"
#include "sta/json.hpp"
#include "sta/npy.hpp"
#include "test_helpers.hpp"
#include "sta/reference.hpp"

namespace sta {
namespace {

std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "sta_golden_folder_" + name + "_" + std::to_string(::getpid());
  std::system(("rm -rf '" + d + "'").c_str());
  return d;
}

using testing::slurp;

// A small custom problem with per-head masks and padded text: the reference computes it.
GoldenProblem small_problem() {
  GoldenProblem p;
  p.description = "custom problem";
  p.options.geometry.canvas = {2, 4, 4};
  p.options.geometry.tile = {1, 2, 2};
  p.options.geometry.text_length = 2;
  p.options.geometry.text_pad = 3;
  p.options.masks = {Mask::sta({1, 1, 1}), Mask::swa({1, 3, 3})};
  p.shape = {1, 2, 32 + 3, 8};
  p.seed = 11;
  return p;
}

bool contains(const std::vector<std::string>& lines, const std::string& s) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(s) != std::string::npos; });
}

TEST(GoldenFolder, WrittenFilesAreTheGeneratorsAndTheReferences) {
  const std::string dir = fresh_dir("write");
  const GoldenProblem p = small_problem();
  GoldenWriteOptions o;
  o.grad = true;
  const GoldenWriteResult r = write_golden_folder(dir, p, o);
  EXPECT_EQ(slurp(dir + "/manifest.json"), r.manifest);
  const int64_t n = p.shape.elements();
  const NpyArray q = read_npy(dir + "/q.npy", "q"), k = read_npy(dir + "/k.npy", "k"),
                 v = read_npy(dir + "/v.npy", "v"), out = read_npy(dir + "/out.npy", "out"),
                 dout = read_npy(dir + "/dout.npy", "dout");
  std::vector<float> want(static_cast<size_t>(n));
  golden_fill(want.data(), n, p.seed, 0);
  EXPECT_EQ(q.data, want);
  golden_fill(want.data(), n, p.seed, 3);  // dout is stream 3
  EXPECT_EQ(dout.data, want);
  std::vector<double> ref_out(static_cast<size_t>(n)), ref_lse(static_cast<size_t>(n / p.shape.dim));
  reference_attention(p.shape, p.options, q.data.data(), k.data.data(), v.data.data(), ref_out.data(),
                      ref_lse.data());
  double err = 0;
  for (size_t i = 0; i < ref_out.size(); ++i) err = std::max(err, std::fabs(ref_out[i] - out.data[i]));
  EXPECT_LT(err, 1e-6);
  const JsonValue m = parse_json(r.manifest, "manifest");
  EXPECT_EQ(m.at("masks", "m").array.at(1).as_string("m"), "swa:1,3,3");
  EXPECT_TRUE(m.has("grad"));
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(GoldenFolder, VerifyReportsEveryCheckAndCatchesDamage) {
  const std::string dir = fresh_dir("verify");
  GoldenWriteOptions o;
  o.grad = true;
  o.arg = "path";
  write_golden_folder(dir, small_problem(), o);

  GoldenReport report;
  int printed = 0;
  report.on_line = [&](const std::string&) { ++printed; };
  ASSERT_TRUE(verify_golden_folder(dir, false, &report)) << ::testing::PrintToString(report.lines);
  // 9 files, manifest, inputs, out, lse, dout, dq, dk, dv, the verdict.
  EXPECT_EQ(report.lines.size(), 18u);
  EXPECT_EQ(printed, 18);
  EXPECT_EQ(report.lines.back(), "verify: ok");
  EXPECT_EQ(report.hashes.size(), 9u);
  for (const auto& [name, same] : report.hashes) EXPECT_TRUE(same) << name;
  EXPECT_TRUE(report.manifest_same && report.inputs_same);
  EXPECT_LE(report.out_max_abs, 1e-5);
  EXPECT_GE(report.out_max_abs, 0.0);

  GoldenReport hashes;
  EXPECT_TRUE(verify_golden_folder(dir, true, &hashes));
  EXPECT_EQ(hashes.lines.back(), "verify: hashes ok");
  EXPECT_EQ(hashes.out_max_abs, -1);

  // Existing files are kept unless force; the error names the caller's argument.
  try {
    write_golden_folder(dir, small_problem(), o);
    ADD_FAILURE() << "an existing folder was overwritten without force";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("path '", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("exists"), std::string::npos) << e.what();
  }

  // One flipped bit in dq.npy.
  {
    std::fstream f(dir + "/dq.npy", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    const char c = static_cast<char>(f.get());
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(c ^ 0x01));
  }
  GoldenReport bad;
  EXPECT_FALSE(verify_golden_folder(dir, false, &bad));
  EXPECT_FALSE(bad.ok);
  EXPECT_FALSE(bad.hashes.at("dq.npy"));
  EXPECT_TRUE(bad.hashes.at("dk.npy"));
  EXPECT_TRUE(contains(bad.lines, "dq.npy   sha256 MISMATCH")) << ::testing::PrintToString(bad.lines);
  EXPECT_EQ(bad.lines.back(), "verify: FAILED");

  // A missing file is a malformed folder (an exception naming the argument), and the lines
  // of the checks before it stay in the report.
  std::remove((dir + "/lse.npy").c_str());
  GoldenReport missing;
  EXPECT_THROW(verify_golden_folder(dir, false, &missing, "path"), Error);
  EXPECT_EQ(missing.lines.size(), 4u) << ::testing::PrintToString(missing.lines);
  EXPECT_FALSE(missing.ok);
  std::system(("rm -rf '" + dir + "'").c_str());
}

class GoldenFolderPrecision : public ::testing::TestWithParam<Precision> {};

TEST_P(GoldenFolderPrecision, FilesWrittenHeadByHeadAreOneWholeCallsTensors) {
  // The writer computes and appends one head at a time; every tensor must be the one a
  // single call on the whole [B,H,S,D] problem gives (generator streams continued across
  // heads, per-head masks, the fast backward's planes at their offsets), bit for bit; in
  // fp32 and in bf16 mode (SPEC 8's bf16 gradients, with their own tolerance rule).
  const std::string dir = fresh_dir("heads");
  GoldenProblem p = small_problem();
  p.options.masks = {Mask::sta({1, 1, 1}), Mask::sta({1, 3, 1})};
  p.options.precision = GetParam();
  p.shape.batch = 2;
  p.backend = Backend::kSta;
  GoldenWriteOptions o;
  o.grad = true;
  int64_t calls = 0;
  write_golden_folder(dir, p, o, [&](int64_t done, int64_t total) {
    EXPECT_EQ(done, ++calls);
    EXPECT_EQ(total, 4);
  });
  EXPECT_EQ(calls, 4);
  const int64_t n = p.shape.elements();
  auto file = [&](const char* name) { return read_npy(dir + "/" + name, name).data; };
  std::vector<float> q(static_cast<size_t>(n)), k(q.size()), v(q.size()), dout(q.size());
  golden_fill(q.data(), n, p.seed, 0);
  golden_fill(k.data(), n, p.seed, 1);
  golden_fill(v.data(), n, p.seed, 2);
  golden_fill(dout.data(), n, p.seed, 3);
  EXPECT_EQ(file("q.npy"), q);
  EXPECT_EQ(file("v.npy"), v);
  EXPECT_EQ(file("dout.npy"), dout);
  std::vector<float> out(q.size()), lse(static_cast<size_t>(n / p.shape.dim)), dq(q.size()),
      dk(q.size()), dv(q.size());
  attention(p.shape, p.options, q.data(), k.data(), v.data(), out.data(), lse.data(), p.backend);
  attention_backward(p.shape, p.options, q.data(), k.data(), v.data(), out.data(), lse.data(),
                     dout.data(), dq.data(), dk.data(), dv.data(), p.backend);
  EXPECT_EQ(file("out.npy"), out);
  EXPECT_EQ(file("lse.npy"), lse);
  EXPECT_EQ(file("dq.npy"), dq);
  EXPECT_EQ(file("dk.npy"), dk);
  EXPECT_EQ(file("dv.npy"), dv);
  // The manifest's rule and tolerances are the precision's (SPEC 8: 1e-4 fp32, 2e-2 bf16,
  // times max(1, max |gradient|)).
  const JsonValue m = parse_json(slurp(dir + "/manifest.json"), "manifest");
  const JsonValue& grad = m.at("grad", "m");
  const bool bf16 = GetParam() == Precision::kBf16;
  EXPECT_EQ(grad.at("rule", "m").as_string("m").rfind(bf16 ? "bf16: " : "fp32: ", 0), 0u);
  double peak = 1.0;
  for (float x : dv) peak = std::max(peak, static_cast<double>(std::fabs(x)));
  const double atol = grad.at("tolerances", "m").at("dv", "m").at("atol", "m").as_number("m");
  EXPECT_NEAR(atol, (bf16 ? 2e-2 : 1e-4) * peak, 1e-3 * atol);
  GoldenReport report;
  EXPECT_TRUE(verify_golden_folder(dir, false, &report)) << ::testing::PrintToString(report.lines);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Precisions, GoldenFolderPrecision,
                         ::testing::Values(Precision::kFp32, Precision::kBf16),
                         [](const ::testing::TestParamInfo<Precision>& info) { return to_string(info.param); });

TEST(GoldenFolder, AnInterruptedWriteLeavesNoGoldenFile) {
  // A progress callback that throws (a Python KeyboardInterrupt arrives this way) after the
  // second of four heads: the half-computed files are never published.
  const std::string dir = fresh_dir("interrupted");
  GoldenProblem p = small_problem();
  p.shape.batch = 2;
  GoldenWriteOptions o;
  o.grad = true;
  EXPECT_THROW(write_golden_folder(dir, p, o,
                                   [](int64_t done, int64_t) {
                                     if (done == 2) throw Error("interrupted");
                                   }),
               Error);
  ASSERT_TRUE(std::filesystem::is_directory(dir));
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "a file (or a temporary) was left in " << dir;
  std::filesystem::remove_all(dir);
}

TEST(GoldenFolder, BadProblemsAreRefusedBeforeAnythingIsWritten) {
  const std::string dir = fresh_dir("bad");
  GoldenProblem p = small_problem();
  p.shape.seq = 30;  // not video + text_pad
  EXPECT_THROW(write_golden_folder(dir, p, {}), Error);
  p = small_problem();
  p.options.scale = 0.5;  // golden folders record the default scale only
  EXPECT_THROW(write_golden_folder(dir, p, {}), Error);
  p = small_problem();
  p.options.masks = {Mask::swa({1, 3, 3})};  // sta backend: mixed blocks
  p.backend = Backend::kSta;
  GoldenWriteOptions with_grad;
  with_grad.grad = true;
  try {
    write_golden_folder(dir, p, with_grad);
    FAIL() << "an swa mask accepted by the sta backend";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--mask"), std::string::npos) << e.what();
  }
  std::ifstream f(dir);
  EXPECT_FALSE(f.good()) << "the folder was created for a refused problem";
}

}  // namespace
}  // namespace sta
