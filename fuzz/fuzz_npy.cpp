// libFuzzer target: the .npy reader must parse or throw sta::Error on any byte string.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sta/error.hpp"
#include "sta/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sta::NpyArray a = sta::read_npy_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (!a.data.empty()) {
      // A parsed array must round-trip through the writer when it is float32.
      if (a.dtype == "<f4") (void)sta::npy_bytes(a.data.data(), a.shape);
    }
  } catch (const sta::Error&) {
  }
  return 0;
}
