// Issue 11, "one surface, declared once": every command's options come from one table
// (tools/cli_options.hpp). Checked against the built `sta`: every registered command has a
// table, every option its parser accepts is in its --help, every option --help lists is
// accepted, and options not in the table are refused.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_options.hpp"
#include "cli_runner.hpp"

namespace sta {
namespace {

using testing::run_cli;

std::string first_word(const std::string& s) { return s.substr(0, s.find(' ')); }

// The option names of the lines of `help` that start an option row ("  --name ...").
std::set<std::string> listed_options(const std::string& help) {
  std::set<std::string> out;
  std::istringstream in(help);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 4, "  --") != 0) continue;
    const size_t end = line.find_first_of(" ,", 2);
    out.insert(line.substr(2, end == std::string::npos ? std::string::npos : end - 2));
  }
  return out;
}

TEST(CliOptions, EveryRegisteredCommandHasATable) {
  const auto top = run_cli("--help");
  ASSERT_EQ(top.exit_code, 0) << top.output;
  std::set<std::string> registered;
  std::istringstream in(top.output.substr(top.output.find("Commands:")));
  std::string line;
  std::getline(in, line);  // "Commands:"
  while (std::getline(in, line) && line.compare(0, 2, "  ") == 0)
    registered.insert(first_word(line.substr(2)));
  std::set<std::string> tabled;
  for (const auto& c : cli::all_command_options()) tabled.insert(first_word(c.command));
  EXPECT_GE(registered.size(), 11u) << top.output;
  EXPECT_EQ(registered, tabled) << top.output;
}

TEST(CliOptions, HelpListsExactlyTheAcceptedOptions) {
  std::map<std::string, std::set<std::string>> accepted;  // by command (viz: all pictures)
  for (const auto& c : cli::all_command_options())
    for (const auto& o : c.options) accepted[first_word(c.command)].insert(o.name);
  for (const auto& [command, names] : accepted) {
    const auto h = run_cli(command + " --help");
    ASSERT_EQ(h.exit_code, 0) << command << "\n" << h.output;
    EXPECT_EQ(listed_options(h.output), names) << "sta " << command << " --help:\n" << h.output;
  }
}

TEST(CliOptions, ParserAcceptsEveryTableOptionAndNoOther) {
  for (const auto& c : cli::all_command_options()) {
    std::set<std::string> seen;
    for (const auto& o : c.options) {
      EXPECT_TRUE(seen.insert(o.name).second) << c.command << ": " << o.name << " declared twice";
      EXPECT_STRNE(o.help, "") << c.command << ": " << o.name << " has no help";
      // check_known reports the first unknown option in order, before any work: reaching
      // the trailing one means `o` was accepted (and took a value exactly when declared so).
      const std::string args =
          c.command + " " + o.name + (*o.value ? " 1" : "") + " --zz-not-an-option 1";
      const auto r = run_cli(args);
      EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
      EXPECT_NE(r.output.find("--zz-not-an-option: unknown option"), std::string::npos)
          << args << "\n" << r.output;
      if (!*o.value) {  // a flag refuses a value
        const auto f = run_cli(c.command + " " + o.name + "=yes");
        EXPECT_NE(f.output.find(std::string(o.name) + ": is a flag and takes no value"),
                  std::string::npos)
            << c.command << " " << o.name << "=yes\n" << f.output;
      }
    }
  }
}

TEST(CliOptions, OptionsHelpIsTwoColumnsAndWrapped) {
  const std::string long_help = std::string(30, 'w') + " " + std::string(30, 'v') + " " +
                                std::string(30, 'u');
  const cli::OptionTable stable = {
      {"--alpha", "X", "short"},
      {"--a-very-long-option-name", "VALUE", "beside the name after two spaces"},
      {"--flag", "", long_help.c_str()},
  };
  const std::string text = cli::options_help(stable);
  EXPECT_EQ(text,
            "  --alpha X" + std::string(23 - 11, ' ') + "short\n" +
                "  --a-very-long-option-name VALUE  beside the name after two spaces\n" +
                "  --flag" + std::string(23 - 8, ' ') + std::string(30, 'w') + " " + std::string(30, 'v') + "\n" +
                std::string(23, ' ') + std::string(30, 'u') + "\n");
  EXPECT_EQ(cli::flag_names(stable), (std::vector<std::string>{"--flag"}));
  EXPECT_EQ(cli::option_names(stable),
            (std::vector<std::string>{"--alpha", "--a-very-long-option-name", "--flag", "--help"}));
  // A bracketed default is never split across lines.
  EXPECT_NE(cli::common_help().find("[default 30,48,80, HunyuanVideo 720p]"), std::string::npos)
      << cli::common_help();
  // Every generated help line fits 92 columns (no table has a word that long).
  for (const auto& c : cli::all_command_options()) {
    std::istringstream in(cli::options_help(c.options));
    std::string line;
    while (std::getline(in, line)) EXPECT_LE(line.size(), 92u) << c.command << ": " << line;
  }
}

}  // namespace
}  // namespace sta
