#pragma once
// Large tensor storage without the costs a std::vector adds: no serial zero-fill (the pages
// are first touched by the threads that write them) and transparent huge pages where the
// kernel offers them (one fault per 2 MiB instead of per 4 KiB: on the VMs we measured a
// 4 KiB fault costs about 14 us, 0.2 s for a 60 MB tensor). Blocks of 4 MiB and more are
// kept when freed, up to $STA_BUFFER_CACHE_MB MiB in all (1024 unset; 0 keeps none; read at
// each large allocation and free), and
// handed to the next allocation they fit: a second attention() or attention_backward() call
// of the same shape touches no fresh page (its packed K and V reuse the last call's; a fresh
// 2 MiB page costs a clear, and on VMs the host's first touch: measured 0.28 CPU-s for the
// backward's 177 MB of packed heads at the Table 2 shape). release_buffer_cache() gives them
// back.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sta {

namespace detail {
/// Allocates `bytes` (rounded up to whole 2 MiB pages when large) aligned to 64 bytes, or to
/// 2 MiB and advised MADV_HUGEPAGE when large (a kept block of at least that size and at
/// most twice it, if one exists: its contents are stale). Throws sta::Error naming `what`
/// and the bytes when the memory cannot be had, or naming STA_BUFFER_CACHE_MB when it is not
/// a whole number. Never returns null.
void* allocate_large(size_t bytes, const char* what);
/// Frees a block of allocate_large: a large one is kept for reuse while the kept blocks stay
/// within the cache's bytes (the least recently freed go first).
void free_large(void* p) noexcept;
struct LargeDeleter {
  void operator()(void* p) const noexcept { free_large(p); }
};
}  // namespace detail

/// Frees every large block kept for reuse (see above): for a long-running program between
/// phases that no longer call the kernels. Thread-safe; blocks in use are not affected.
void release_buffer_cache() noexcept;

/// An uninitialised array of `n` trivially copyable values for large tensors (see above).
template <class T>
class LargeArray {
 public:
  LargeArray() = default;
  /// `what` names the tensor in the error if the allocation fails (e.g. "--out").
  explicit LargeArray(int64_t n, const char* what = "tensor")
      : data_(static_cast<T*>(detail::allocate_large(static_cast<size_t>(n < 1 ? 1 : n) * sizeof(T), what))),
        size_(n) {}
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  int64_t size() const { return size_; }
  T& operator[](int64_t i) { return data_.get()[i]; }
  const T& operator[](int64_t i) const { return data_.get()[i]; }

 private:
  std::unique_ptr<T[], detail::LargeDeleter> data_;
  int64_t size_ = 0;
};

}  // namespace sta
