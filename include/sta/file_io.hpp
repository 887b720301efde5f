#pragma once
// Safe output files: nothing the user has is lost or half-written (SPEC section 7).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sta {

/// A run of bytes to write.
struct ByteSpan {
  const void* data;
  size_t size;
};

/// A file written in pieces and published atomically: the constructor checks `path` and
/// creates an exclusive temporary file in the same folder, append() writes to it, commit()
/// fsyncs and publishes it (the rules of write_file_atomic below). A writer destroyed before
/// commit() (an error on the way) removes its temporary: nothing is left half-written.
/// Throws sta::Error "`arg` 'path': ..." on any failure.
class AtomicFile {
 public:
  AtomicFile(const std::string& path, bool force, const std::string& arg);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();
  void append(const void* data, size_t size);
  /// Publishes the file under its name; at most once, and nothing may be appended after.
  void commit();

 private:
  std::string path_, where_, temp_;
  bool force_ = false;
  int fd_ = -1;
};

/// Writes the concatenation of `parts` to `path` atomically: an exclusively created
/// temporary file in the same folder, fsync, then publish. Without `force` an existing file
/// is never replaced (link() refuses atomically); with `force` only a regular file is
/// replaced, never a device or folder. Throws sta::Error "`arg` 'path': ..." on any failure
/// and leaves no temporary file behind.
void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& parts, bool force,
                       const std::string& arg);
inline void write_file_atomic(const std::string& path, const std::string& bytes, bool force,
                              const std::string& arg) {
  write_file_atomic(path, {ByteSpan{bytes.data(), bytes.size()}}, force, arg);
}

/// Checks that `path` (after following links) is a regular file one may read, and returns
/// its size in bytes. Devices (/dev/zero), FIFOs, sockets and folders are refused before a
/// byte is read: their size is unknown, so a read could block or never end. Throws
/// sta::Error "`arg` 'path': ..." naming what the path is instead.
uint64_t regular_file_size(const std::string& path, const std::string& arg);

/// Reads the whole regular file at `path` after regular_file_size(); refuses files larger
/// than `max_bytes` with a message naming `arg`, the size and the limit.
std::string read_small_file(const std::string& path, const std::string& arg, uint64_t max_bytes);

}  // namespace sta
