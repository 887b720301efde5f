// `sta counts` / `sta theorems` / `sta demo` as a user runs them, and their bad-input errors.
#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "sta/blocks.hpp"
#include "sta/theory.hpp"

namespace sta {
namespace {

using testing::json_int;
using testing::run_cli;

TEST(CliCounts, HunyuanJsonMatchesLibrary) {
  const auto r = run_cli("counts --mask sta:3,3,3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const BlockStats s = classify_blocks(Geometry{}, Mask::sta({3, 3, 3}));
  EXPECT_EQ(json_int(r.output, "dense"), s.counts.dense);
  EXPECT_EQ(json_int(r.output, "mixed"), 0);
  EXPECT_EQ(json_int(r.output, "empty"), s.counts.empty);
  EXPECT_EQ(json_int(r.output, "total"), 90000);
  EXPECT_NE(r.output.find("\"sparsity\": 0.91"), std::string::npos) << r.output;
}

TEST(CliCounts, RasterOrderAndTorusOptions) {
  const auto r = run_cli("counts --video 12,16,16 --mask swa:5,5,5 --order raster --block 64,32 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Geometry g;
  g.canvas = {12, 16, 16};
  const BlockStats s = classify_blocks(g, Mask::swa({5, 5, 5}), {Layout::kRaster, 64, 32});
  EXPECT_EQ(json_int(r.output, "mixed"), s.counts.mixed);
  const auto t = run_cli("counts --video 12,16,16 --mask swa:5,5,5 --torus --json");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_EQ(json_int(t.output, "mixed"),
            classify_blocks(g, Mask::swa_torus({5, 5, 5})).counts.mixed);
}

TEST(CliCounts, PerHeadMasksSumAtTopLevel) {
  const auto r = run_cli("counts --mask sta:3,3,3 --mask sta:5,5,5 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Geometry g;
  EXPECT_EQ(json_int(r.output, "dense"), classify_blocks(g, Mask::sta({3, 3, 3})).counts.dense +
                                             classify_blocks(g, Mask::sta({5, 5, 5})).counts.dense);
  EXPECT_NE(r.output.find("\"heads\": ["), std::string::npos);
}

TEST(CliTheorems, ExitsZeroAndReportsTable1) {
  const auto r = run_cli("theorems");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("0.0579%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("7.176%"), std::string::npos) << r.output;
  const auto j = run_cli("theorems --json");
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_NE(j.output.find("\"ok\": true"), std::string::npos);
}

struct BadInput {
  const char* args;
  const char* names;  // the argument the one-line message must name
};

TEST(CliCounts, BadInputGivesOneLineErrorNamingTheArgument) {
  const BadInput cases[] = {
      {"counts --video 0,48,80", "--video"},
      {"counts --video -30,48,80", "--video"},
      {"counts --video 30,48,81", "--video"},
      {"counts --video 30,48", "--tile"},  // 2D canvas 1x30x48 vs 6x8x8 tiles: t axis
      {"counts --tile 0,8,8", "--tile"},
      {"counts --mask sta", "--mask"},
      {"counts --mask sta:0,3,3", "--mask"},
      {"counts --mask swa:3,3,x", "--mask"},
      {"counts --mask blob:3,3,3", "--mask"},
      {"counts --text-pad 8 --text-length 9", "--text-length"},
      {"counts --text-length 9", "--text-length"},
      {"counts --text-pad -1", "--text-pad"},
      {"counts --order diagonal", "--order"},
      {"counts --block 128,128", "--block"},
      {"counts --block 0,128 --order raster", "--block"},
      {"counts --layout zigzag", "--layout"},
      {"counts --frobnicate 3", "--frobnicate"},
      {"counts --video", "--video"},
      {"counts --video --json", "--video"},
      {"frobnicate", "frobnicate"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "not one line: " << r.output;
  }
}

TEST(CliHelp, EverySubcommandHasHelp) {
  const auto top = run_cli("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"counts", "theorems", "demo"}) {
    EXPECT_NE(top.output.find(cmd), std::string::npos);
    const auto r = run_cli(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.output.find("Usage: sta " + std::string(cmd)), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace sta
