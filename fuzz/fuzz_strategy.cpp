// libFuzzer target: the FastVideo mask-strategy reader must parse or throw sta::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sta/error.hpp"
#include "sta/strategy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)sta::parse_mask_strategy(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const sta::Error&) {
  }
  return 0;
}
