#include "sta/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "sta/error.hpp"

namespace sta {
namespace {

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, const void* data, size_t size, const std::string& where) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(where + ": write failed: " + errno_text());
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path, bool force, const std::string& arg)
    : path_(path), where_(arg + " '" + path + "'"), force_(force) {
  if (path.empty()) throw Error(arg + ": empty path; expected a file name");
  struct stat st {};
  if (!force && ::lstat(path.c_str(), &st) == 0)
    throw Error(where_ + ": exists; refusing to overwrite it (pass --force)");
  // --force replaces files, never devices or folders (rename() would swap out /dev/null).
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error(where_ + ": exists and is not a regular file; refusing to replace it");

  // Same folder as the target so that rename() is atomic; O_EXCL so that concurrent writers
  // (or a stale file of a killed run) never share a temporary.
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; fd_ < 0; ++attempt) {
    // A name near NAME_MAX (legal) would overflow with the suffix: then the temporary gets a
    // short name of its own in the same folder.
    const std::string suffix = ".tmp." + std::to_string(::getpid()) + "." +
                               std::to_string(counter.fetch_add(1));
    const auto slash = path.find_last_of('/');
    const size_t base_len = slash == std::string::npos ? path.size() : path.size() - slash - 1;
    const std::string name = base_len + suffix.size() <= 255
                                 ? path + suffix
                                 : path.substr(0, slash == std::string::npos ? 0 : slash + 1) + ".sta" + suffix;
    fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) temp_ = name;
    else if (errno != EEXIST || attempt > 100)
      throw Error(where_ + ": cannot create a temporary file '" + name + "': " + errno_text());
  }
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), where_(std::move(other.where_)), temp_(std::move(other.temp_)),
      force_(other.force_), fd_(other.fd_) {
  other.temp_.clear();
  other.fd_ = -1;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::append(const void* data, size_t size) {
  assert(fd_ >= 0 && "AtomicFile: appended after commit()");
  write_all(fd_, data, size, where_);
}

void AtomicFile::commit() {
  assert(fd_ >= 0 && "AtomicFile: commit() twice");
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS)
    throw Error(where_ + ": fsync failed: " + errno_text());
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error(where_ + ": close failed: " + errno_text());

  struct stat st {};
  if (!force_) {
    // link() fails with EEXIST instead of replacing: no window between the check and the
    // publish. Filesystems without hard links fall back to check-then-rename.
    if (::link(temp_.c_str(), path_.c_str()) == 0) {
      ::unlink(temp_.c_str());
      temp_.clear();
      return;
    }
    if (errno == EEXIST || ::lstat(path_.c_str(), &st) == 0)
      throw Error(where_ + ": exists; refusing to overwrite it (pass --force)");
  }
  if (std::rename(temp_.c_str(), path_.c_str()) != 0)
    throw Error(where_ + ": cannot rename the temporary file into place: " + errno_text());
  temp_.clear();
}

void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& parts, bool force,
                       const std::string& arg) {
  AtomicFile file(path, force, arg);
  for (const ByteSpan& part : parts) file.append(part.data, part.size);
  file.commit();
}

uint64_t regular_file_size(const std::string& path, const std::string& arg) {
  const std::string where = arg + " '" + path + "'";
  if (path.empty()) throw Error(arg + ": empty path; expected a file name");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(where + ": cannot open: " + errno_text() + "; expected a readable file");
  if (S_ISDIR(st.st_mode)) throw Error(where + ": is a folder; expected a regular file");
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISFIFO(st.st_mode)  ? "a FIFO (named pipe)"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw Error(where + ": is " + std::string(what) + "; expected a regular file");
  }
  return static_cast<uint64_t>(st.st_size);
}

std::string read_small_file(const std::string& path, const std::string& arg, uint64_t max_bytes) {
  const std::string where = arg + " '" + path + "'";
  const uint64_t size = regular_file_size(path, arg);
  if (size > max_bytes)
    throw Error(where + ": " + std::to_string(size) + " bytes; expected at most " +
                std::to_string(max_bytes));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(where + ": cannot open for reading: " + errno_text());
  std::string out(static_cast<size_t>(size), '\0');
  f.read(&out[0], static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(f.gcount()) != size || f.peek() != std::char_traits<char>::eof())
    throw Error(where + ": the file changed while being read");
  return out;
}

}  // namespace sta
