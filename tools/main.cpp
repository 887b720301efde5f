// `sta`: Sliding Tile Attention on CPU. Dispatches to the subcommands in tools/cmd_*.cpp.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli.hpp"
#include "sta/error.hpp"

namespace {

void print_usage() {
  std::printf(
      "sta: Sliding Tile Attention (STA) on CPU: block counts, theorems, reference and fast\n"
      "attention, golden outputs for GPU ports.\n\n"
      "Usage: sta <command> [options]     (sta <command> --help for details)\n\n"
      "Commands:\n");
  for (const auto& [name, cmd] : sta::cli::registry())
    std::printf("  %-10s %s\n", name.c_str(), cmd.summary.c_str());
  std::printf("\nWith no command, `sta demo` runs.\n");
}

}  // namespace

int main(int argc, char** argv) {
  auto& reg = sta::cli::registry();
  std::string name = argc > 1 ? argv[1] : "demo";
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage();
    return 0;
  }
  if (name == "--version") {
    std::printf("sta %s\n", STA_TOOL_VERSION);
    return 0;
  }
  auto it = reg.find(name);
  if (it == reg.end()) {
    std::fprintf(stderr, "sta: unknown command '%s' (see sta --help)\n", name.c_str());
    return 2;
  }
  const int sub_argc = argc > 1 ? argc - 2 : 0;
  char** sub_argv = argc > 1 ? argv + 2 : argv + argc;
  for (int i = 0; i < sub_argc; ++i)
    if (!std::strcmp(sub_argv[i], "--help") || !std::strcmp(sub_argv[i], "-h")) {
      std::printf("%s\n", it->second.help.c_str());
      return 0;
    }
  try {
    return it->second.run(sub_argc, sub_argv);
  } catch (const sta::Error& e) {
    std::fprintf(stderr, "sta %s: error: %s\n", name.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sta %s: internal error: %s\n", name.c_str(), e.what());
    return 3;
  }
}
