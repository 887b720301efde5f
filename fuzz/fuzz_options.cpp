// libFuzzer target: the command-line option parsers (Args, the common options, --mask and
// extents) must accept or throw sta::Error on any argument list. Arguments are the input's
// lines.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli.hpp"
#include "sta/error.hpp"
#include "sta/mask.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> tokens;
  std::string cur;
  for (char c : text) {
    if (c == '\n') {
      tokens.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  tokens.push_back(cur);
  if (tokens.size() > 64) return 0;
  std::vector<char*> argv;
  for (auto& t : tokens) argv.push_back(t.data());
  try {
    sta::cli::Args args(static_cast<int>(argv.size()), argv.data(), {"--json", "--ragged"});
    (void)sta::cli::parse_common(args);
  } catch (const sta::Error&) {
  }
  try {
    (void)sta::parse_mask(tokens[0]);
  } catch (const sta::Error&) {
  }
  return 0;
}
