// Safe output files (src/formats/file_io.cpp): AtomicFile publishes a file written in pieces
// all at once, or not at all; write_file_atomic is one AtomicFile.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sta/error.hpp"
#include "sta/file_io.hpp"
#include "test_helpers.hpp"

namespace sta {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "sta_file_io_" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // Every entry of the folder: a temporary left behind shows up here.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::string slurp(const std::string& p) { return testing::slurp(p); }
  std::string dir_;
};

TEST_F(AtomicFileTest, PiecesArePublishedTogetherOnCommit) {
  {
    AtomicFile f(path("a.bin"), false, "--out");
    f.append("head", 4);
    f.append("-", 1);
    EXPECT_FALSE(fs::exists(path("a.bin"))) << "visible before commit";
    f.append("tail", 4);
    f.commit();
  }
  EXPECT_EQ(slurp(path("a.bin")), "head-tail");
  EXPECT_EQ(entries(), std::vector<std::string>{"a.bin"});
}

TEST_F(AtomicFileTest, AWriterDestroyedBeforeCommitLeavesNothing) {
  {
    AtomicFile f(path("b.bin"), false, "--out");
    f.append("partial", 7);
  }  // as when an exception unwinds a writer
  EXPECT_TRUE(entries().empty());
}

TEST_F(AtomicFileTest, ExistingFilesNeedForceAndFoldersAreNeverReplaced) {
  std::ofstream(path("c.bin")) << "keep";
  try {
    AtomicFile f(path("c.bin"), false, "--out");
    FAIL() << "an existing file was accepted without force";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--out"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(path("c.bin")), "keep");
  {
    AtomicFile f(path("c.bin"), true, "--out");
    f.append("new", 3);
    EXPECT_EQ(slurp(path("c.bin")), "keep") << "replaced before commit";
    f.commit();
  }
  EXPECT_EQ(slurp(path("c.bin")), "new");
  fs::create_directory(path("sub"));
  EXPECT_THROW(AtomicFile(path("sub"), true, "--out"), Error);
  EXPECT_EQ(entries(), (std::vector<std::string>{"c.bin", "sub"}));
}

TEST_F(AtomicFileTest, AFileThatAppearsBeforeCommitIsNotOverwritten) {
  AtomicFile f(path("d.bin"), false, "--out");
  f.append("mine", 4);
  std::ofstream(path("d.bin")) << "theirs";  // another program got there first
  EXPECT_THROW(f.commit(), Error);
  EXPECT_EQ(slurp(path("d.bin")), "theirs");
}

TEST_F(AtomicFileTest, WriteFileAtomicWritesEveryPart) {
  write_file_atomic(path("e.bin"), {{"ab", 2}, {"", 0}, {"cd", 2}}, false, "--out");
  EXPECT_EQ(slurp(path("e.bin")), "abcd");
  EXPECT_THROW(write_file_atomic(path("e.bin"), "x", false, "--out"), Error);
  EXPECT_EQ(slurp(path("e.bin")), "abcd");
}

}  // namespace
}  // namespace sta
