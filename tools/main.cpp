// `sta`: Sliding Tile Attention on CPU. Dispatches to the subcommands in tools/cmd_*.cpp.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli.hpp"
#include "sta/error.hpp"

int main(int argc, char** argv) {
  if (argc > 1 && !std::strcmp(argv[1], "--version")) {
    std::printf("sta %s\n", STA_TOOL_VERSION);
    return 0;
  }
  return sta::cli::dispatch(argc, argv);
}
