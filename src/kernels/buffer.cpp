// Large allocations: 2 MiB-aligned and advised for transparent huge pages (see buffer.hpp).
#include "sta/buffer.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <string>

#include "sta/error.hpp"

namespace sta::detail {
namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kLarge = size_t{4} << 20;  // below this, huge pages buy nothing
}  // namespace

void* allocate_large(size_t bytes, const char* what) {
  const size_t align = bytes >= kLarge ? kHugePage : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  void* p = rounded < bytes ? nullptr : std::aligned_alloc(align, rounded);
  if (p == nullptr) {
    throw Error(std::string(what) + ": cannot allocate " + std::to_string(bytes) +
                " bytes; expected a problem that fits in memory");
  }
#ifdef MADV_HUGEPAGE
  if (align == kHugePage) ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure is fine
#endif
  return p;
}

void free_large(void* p) noexcept { std::free(p); }

}  // namespace sta::detail
