#pragma once
// SHA-256 (FIPS 180-4), for the hashes in golden-output manifests.
#include <cstddef>
#include <cstdint>
#include <string>

namespace sta {

/// Incremental SHA-256: update() with any number of byte runs, then hex().
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  /// Lower-case hex digest of everything updated so far; ends the computation.
  std::string hex();

 private:
  uint32_t h_[8];
  unsigned char block_[64];
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

/// Lower-case hex SHA-256 digest of `size` bytes at `data`.
std::string sha256_hex(const void* data, size_t size);
/// Lower-case hex SHA-256 digest of the file at `path`, read in chunks; throws sta::Error
/// naming `arg` if it cannot be read.
std::string sha256_file_hex(const std::string& path, const std::string& arg);
inline std::string sha256_hex(const std::string& bytes) {
  return sha256_hex(bytes.data(), bytes.size());
}

}  // namespace sta
