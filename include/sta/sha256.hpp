#pragma once
// SHA-256 (FIPS 180-4), for the hashes in golden-output manifests.
#include <cstddef>
#include <cstdint>
#include <string>

namespace sta {

/// Lower-case hex SHA-256 digest of `size` bytes at `data`.
std::string sha256_hex(const void* data, size_t size);
inline std::string sha256_hex(const std::string& bytes) {
  return sha256_hex(bytes.data(), bytes.size());
}

}  // namespace sta
