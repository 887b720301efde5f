// `sta grad` as a script runs it: the fast backends agree with the reference through
// `sta compare`, given out/lse (from `sta run`) give the same bits as recomputed ones, stats
// carry the backward kernel's counters, outputs are never clobbered, bad input exits 2 with
// a message naming the argument.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "sta/backward.hpp"
#include "sta/blocks.hpp"
#include "sta/mask.hpp"
#include "sta/npy.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

using testing::json_int;
using testing::run_cli;

// Canvas 2x4x6 in 1x2x3 tiles (8 tiles of 6 tokens), 3 of 5 text slots real: S = 53.
const char* kGeometry = "--video 2,4,6 --tile 1,2,3 --text-pad 5 --text-length 3";
constexpr int64_t kB = 2, kH = 2, kS = 53, kD = 16;

class CliGrad : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sta_cli_grad_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::mt19937_64 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const char* name : {"q", "k", "v", "dout"}) {
      std::vector<float> x(static_cast<size_t>(kB * kH * kS * kD));
      for (auto& e : x) e = normal(rng);
      write_npy(path(std::string(name) + ".npy"), x.data(), {kB, kH, kS, kD}, false, name);
    }
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string inputs() const {
    return "--q " + path("q.npy") + " --k " + path("k.npy") + " --v " + path("v.npy") +
           " --dout " + path("dout.npy") + " " + kGeometry;
  }
  std::string grads(const std::string& tag) const {
    return " --dq " + path("dq_" + tag + ".npy") + " --dk " + path("dk_" + tag + ".npy") +
           " --dv " + path("dv_" + tag + ".npy");
  }
  std::string read(const std::string& name) const {
    std::ifstream f(path(name));
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  std::string dir_;
};

TEST_F(CliGrad, FastBackendsAgreeWithTheReferenceThroughCompare) {
  const std::string masks = " --mask sta:1,1,1 --mask sta:2,1,3";
  ASSERT_EQ(run_cli("grad " + inputs() + masks + grads("ref") + " --backend reference").exit_code, 0);
  for (const char* backend : {"sta", "natten"}) {
    SCOPED_TRACE(backend);
    const std::string tag = backend;
    const auto r = run_cli("grad " + inputs() + masks + grads(tag) + " --backend " + backend +
                           " --stats " + path(tag + ".json"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* g : {"dq", "dk", "dv"}) {
      const auto c = run_cli("compare " + path(std::string(g) + "_ref.npy") + " " +
                             path(std::string(g) + "_" + tag + ".npy") + " --atol 1e-5 --rtol 0");
      EXPECT_EQ(c.exit_code, 0) << g << ": " << c.output;
    }
    // The backward's own counters equal the classifier's (per head, times the batch).
    Geometry geo;
    geo.canvas = {2, 4, 6};
    geo.tile = {1, 2, 3};
    BlockCounts want;
    for (const Mask& m : {Mask::sta({1, 1, 1}), Mask::sta({2, 1, 3})}) {
      const BlockCounts c = classify_blocks(geo, m).counts;
      want += BlockCounts{c.dense * kB, c.mixed * kB, c.empty * kB};
    }
    const std::string stats = read(tag + ".json");
    EXPECT_EQ(json_int(stats, "dense"), want.dense) << stats;
    EXPECT_EQ(json_int(stats, "mixed"), 0) << stats;
    EXPECT_EQ(json_int(stats, "empty"), want.empty) << stats;
  }
}

TEST_F(CliGrad, GivenOutAndLseEqualRecomputedBitForBit) {
  const std::string mask = " --mask swa:1,3,5 --layout raster";
  ASSERT_EQ(run_cli("run --q " + path("q.npy") + " --k " + path("k.npy") + " --v " + path("v.npy") +
                    " " + kGeometry + mask + " --out " + path("o.npy") + " --lse " + path("l.npy"))
                .exit_code,
            0);
  ASSERT_EQ(run_cli("grad " + inputs() + mask + grads("a")).exit_code, 0);
  const auto r = run_cli("grad " + inputs() + mask + grads("b") + " --out " + path("o.npy") +
                         " --lse " + path("l.npy") + " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* g : {"dq", "dk", "dv"}) {
    const auto c = run_cli("compare " + path(std::string(g) + "_a.npy") + " " +
                           path(std::string(g) + "_b.npy") + " --atol 0 --rtol 0");
    EXPECT_EQ(c.exit_code, 0) << g << ": " << c.output;
  }
}

TEST_F(CliGrad, HeadByHeadFilesEqualOneLibraryCall) {
  // sta grad computes and writes one head at a time; its files must be the gradients one
  // attention_backward() call on the whole tensors gives, bit for bit (per-head masks, raster
  // order, batch 2, padded text).
  const std::string masks = " --mask swa:1,3,5 --mask swa:3,1,3 --layout raster --backend natten";
  const auto r = run_cli("grad " + inputs() + masks + grads("h"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  AttentionOptions o;
  o.geometry = testing::geo({2, 4, 6}, {1, 2, 3}, 3, 5);  // kGeometry
  o.masks = {Mask::swa({1, 3, 5}), Mask::swa({3, 1, 3})};
  o.layout = Layout::kRaster;
  const AttentionShape shape{kB, kH, kS, kD};
  auto in = [&](const char* name) { return read_npy(path(name), name).data; };
  const std::vector<float> q = in("q.npy"), k = in("k.npy"), v = in("v.npy"), dout = in("dout.npy");
  std::vector<float> dq(q.size()), dk(q.size()), dv(q.size());
  attention_backward(shape, o, q.data(), k.data(), v.data(), nullptr, nullptr, dout.data(), dq.data(),
                     dk.data(), dv.data(), Backend::kNatten);
  EXPECT_EQ(in("dq_h.npy"), dq);
  EXPECT_EQ(in("dk_h.npy"), dk);
  EXPECT_EQ(in("dv_h.npy"), dv);
}

TEST_F(CliGrad, Bf16PrecisionIsTheLibrarysAndSaysSo) {
  // --precision bf16 (SPEC 8's bf16 mode) on the out and lse of sta run --precision bf16:
  // the files are one attention_backward() call's in bf16 mode, bit for bit, the stats and
  // the summary line name the precision, and the gradients differ from fp32's.
  const std::string mask = " --mask sta:1,1,1 --backend sta";
  ASSERT_EQ(run_cli("run --q " + path("q.npy") + " --k " + path("k.npy") + " --v " + path("v.npy") +
                    " " + kGeometry + mask + " --precision bf16 --out " + path("o.npy") +
                    " --lse " + path("l.npy"))
                .exit_code,
            0);
  const auto r = run_cli("grad " + inputs() + mask + grads("bf16") + " --precision bf16 --out " +
                         path("o.npy") + " --lse " + path("l.npy") + " --stats " + path("bf16.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("backend sta (bf16,"), std::string::npos) << r.output;
  EXPECT_NE(read("bf16.json").find("\"precision\": \"bf16\""), std::string::npos) << read("bf16.json");
  AttentionOptions o;
  o.geometry = testing::geo({2, 4, 6}, {1, 2, 3}, 3, 5);  // kGeometry
  o.masks = {Mask::sta({1, 1, 1})};
  o.precision = Precision::kBf16;
  const AttentionShape shape{kB, kH, kS, kD};
  auto in = [&](const char* name) { return read_npy(path(name), name).data; };
  const std::vector<float> q = in("q.npy"), k = in("k.npy"), v = in("v.npy"), dout = in("dout.npy"),
                           out = in("o.npy"), lse = in("l.npy");
  std::vector<float> dq(q.size()), dk(q.size()), dv(q.size());
  attention_backward(shape, o, q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                     dq.data(), dk.data(), dv.data(), Backend::kSta);
  EXPECT_EQ(in("dq_bf16.npy"), dq);
  EXPECT_EQ(in("dk_bf16.npy"), dk);
  EXPECT_EQ(in("dv_bf16.npy"), dv);
  ASSERT_EQ(run_cli("grad " + inputs() + mask + grads("fp32")).exit_code, 0);
  EXPECT_NE(in("dv_fp32.npy"), dv);
}

TEST_F(CliGrad, ProgressLineOnRequestAndQuietOtherwise) {
  // Four heads ([2, 2, ...]): --progress shows the per-head line (as sta run does), --quiet
  // and a non-terminal stderr show none; the files are the same either way.
  const std::string mask = " --mask sta:1,1,1";
  const auto shown = run_cli("grad " + inputs() + mask + grads("p") + " --progress");
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("head 4/4"), std::string::npos) << shown.output;
  const auto quiet = run_cli("grad " + inputs() + mask + grads("q") + " --quiet");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("head "), std::string::npos) << quiet.output;
  auto in = [&](const std::string& name) { return read_npy(path(name), name).data; };
  EXPECT_EQ(in("dk_p.npy"), in("dk_q.npy"));
}

TEST_F(CliGrad, BadInputExitsTwoNamingTheArgument) {
  struct Case {
    std::string args, names;
  };
  ASSERT_EQ(run_cli("grad " + inputs() + grads("x")).exit_code, 0);
  {  // q with a value float16 cannot hold, for --round fp16 (the rule run applies too)
    std::vector<float> big(static_cast<size_t>(kB * kH * kS * kD), 0.5f);
    big[3] = 70000.0f;
    write_npy(path("qbig.npy"), big.data(), {kB, kH, kS, kD}, false, "qbig");
  }
  const std::string others = " --k " + path("k.npy") + " --v " + path("v.npy") + " --dout " +
                             path("dout.npy") + " " + kGeometry;
  const std::vector<Case> cases = {
      {"--q " + path("qbig.npy") + others + grads("b") + " --round fp16", "--q"},
      // The forward's lse is [B,H,S]: a 4-D file is refused naming it.
      {inputs() + grads("l") + " --out " + path("v.npy") + " --lse " + path("k.npy"), "--lse"},
      {inputs() + " --dq " + path("a.npy") + " --dk " + path("b.npy"), "--dv"},
      {inputs() + grads("y") + " --out " + path("q.npy"), "--out"},
      {inputs() + grads("x"), "--dq"},  // exists, no --force
      {inputs() + " --dq " + path("s.npy") + " --dk " + path("s.npy") + " --dv " + path("t.npy"), "--dk"},
      {"--q " + path("q.npy") + " --k " + path("k.npy") + " --v " + path("v.npy") + " --dout " +
           path("q.npy") + " --video 2,4,4 --tile 1,2,2 --text-pad 5" + grads("z"),
       "--q"},  // S does not match the geometry
      {inputs() + grads("w") + " --backend dense --mask sta:1,1,1", "--mask"},
      // An output that is an input is refused even with --force (it would overwrite it).
      {inputs() + " --dq " + path("q.npy") + " --dk " + path("dk_f.npy") + " --dv " +
           path("dv_f.npy") + " --force",
       "same file as the input --q"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    const auto r = run_cli("grad " + c.args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << r.output;
  }
}

TEST_F(CliGrad, GoldenGradCountsTheGradientsInItsMemoryCheck) {
  // [1,2,53,16] floats, a head's [S, D] plane 3.4 kB: the forward's folder is written with
  // ~12 planes (~41 kB), with --grad ~20 (~68 kB), head by head. A 50 kB budget admits the
  // first and refuses the second before anything is written, naming --grad.
  const std::string common = std::string(kGeometry) + " --mask sta:1,1,1 --heads 2 --dim 16";
  ::setenv("STA_MAX_MEMORY", "50000", 1);
  const auto grad = run_cli("golden --dir " + path("g_grad") + " " + common + " --grad");
  const auto plain = run_cli("golden --dir " + path("g_plain") + " " + common);
  ::unsetenv("STA_MAX_MEMORY");
  EXPECT_EQ(grad.exit_code, 2) << grad.output;
  EXPECT_NE(grad.output.find("with --grad needs"), std::string::npos) << grad.output;
  EXPECT_FALSE(std::filesystem::exists(path("g_grad")));
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
}

}  // namespace
}  // namespace sta

namespace sta {
namespace {

TEST_F(CliGrad, GoldenGradIsVerifiedAndATamperedGradientFails) {
  {  // bf16 mode: written, verified, its gradient rule in the manifest.
    const std::string dir = path("golden_bf16");
    const auto w = run_cli("golden --dir " + dir + " " + kGeometry +
                           " --mask sta:1,1,1 --heads 2 --dim 16 --backend sta --precision bf16 --grad");
    ASSERT_EQ(w.exit_code, 0) << w.output;
    const auto v = run_cli("verify " + dir);
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find("dv       recomputed"), std::string::npos) << v.output;
    std::ifstream m(dir + "/manifest.json");
    std::stringstream text;
    text << m.rdbuf();
    EXPECT_NE(text.str().find("bf16: max abs error <= 0.02 * max(1, max |reference|)"), std::string::npos)
        << text.str();
  }
  for (const char* backend : {"reference", "sta"}) {
    SCOPED_TRACE(backend);
    const std::string dir = path(std::string("golden_") + backend);
    const auto w = run_cli("golden --dir " + dir + " " + kGeometry +
                           " --mask sta:1,1,1 --mask sta:1,2,3 --heads 2 --dim 16 --backend " +
                           backend + " --grad");
    ASSERT_EQ(w.exit_code, 0) << w.output;
    const auto v = run_cli("verify " + dir);
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find("dq       recomputed"), std::string::npos) << v.output;
    // The gradients match the reference's (sta's within the SPEC 8 tolerance).
    ASSERT_EQ(run_cli("grad --q " + dir + "/q.npy --k " + dir + "/k.npy --v " + dir + "/v.npy --dout " +
                      dir + "/dout.npy " + kGeometry + " --mask sta:1,1,1 --mask sta:1,2,3" +
                      grads(std::string("golden_") + backend) + " --backend reference")
                  .exit_code,
              0);
    const auto c = run_cli("compare " + dir + "/dk.npy " + path(std::string("dk_golden_") + backend + ".npy") +
                           " --atol 1e-5 --rtol 0");
    EXPECT_EQ(c.exit_code, 0) << c.output;
  }
  // One changed value in dv.npy (the hash no longer matches): verify fails.
  const std::string dv = path("golden_sta/dv.npy");
  std::fstream f(dv, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(200);
  f.put('\x7f');
  f.close();
  const auto v = run_cli("verify " + path("golden_sta") + " --hashes-only");
  EXPECT_EQ(v.exit_code, 1) << v.output;
  EXPECT_NE(v.output.find("dv.npy   sha256 MISMATCH"), std::string::npos) << v.output;
}

}  // namespace
}  // namespace sta
