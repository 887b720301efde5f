// Large allocations: 2 MiB-aligned and advised for transparent huge pages, and kept for the
// next call (see buffer.hpp).
#include "sta/buffer.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sta/error.hpp"

namespace sta::detail {
namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kLarge = size_t{4} << 20;  // below this, huge pages buy nothing

/// Freed large blocks kept for reuse (most recently freed last), and the sizes of the large
/// blocks handed out. One lock: a call allocates a handful of blocks.
struct Cache {
  std::mutex lock;
  std::vector<std::pair<void*, size_t>> kept;
  size_t kept_bytes = 0;
  std::unordered_map<void*, size_t> live;
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: blocks may be freed during static teardown
  return *c;
}

/// Bytes of freed blocks to keep: $STA_BUFFER_CACHE_MB (0 turns the cache off), 1 GiB unset.
/// Read at each large allocation and free (a handful per call), so a program may change it.
size_t cache_limit() {
  const char* env = std::getenv("STA_BUFFER_CACHE_MB");
  if (env == nullptr || *env == '\0') return size_t{1} << 30;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(env, &end, 10);
  if (end == env || *end != '\0' || *env == '-' || mb > (1ull << 40)) {
    throw Error(std::string("STA_BUFFER_CACHE_MB: '") + env +
                "' is not a whole number of MiB (expected e.g. 1024, or 0 to keep nothing)");
  }
  return static_cast<size_t>(mb) << 20;
}
}  // namespace

void* allocate_large(size_t bytes, const char* what) {
  const size_t align = bytes >= kLarge ? kHugePage : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  if (align == kHugePage && rounded >= bytes && cache_limit() > 0) {
    // The smallest kept block that fits and wastes at most half of itself: its pages are
    // already faulted in (a fresh 2 MiB page costs a kernel clear, and on the VMs we measured
    // the host's first touch too: 0.28 CPU-s for the backward's 177 MB of packed heads at the
    // Table 2 shape, 2.7 % of sta 3,3,3's backward, paid again on every call).
    Cache& c = cache();
    std::lock_guard<std::mutex> guard(c.lock);
    size_t best = c.kept.size();
    for (size_t i = 0; i < c.kept.size(); ++i) {
      const size_t size = c.kept[i].second;
      if (size >= rounded && size / 2 <= rounded && (best == c.kept.size() || size < c.kept[best].second)) best = i;
    }
    if (best < c.kept.size()) {
      const auto [p, size] = c.kept[best];
      c.kept.erase(c.kept.begin() + static_cast<std::ptrdiff_t>(best));
      c.kept_bytes -= size;
      c.live[p] = size;
      return p;
    }
  }
  void* p = rounded < bytes ? nullptr : std::aligned_alloc(align, rounded);
  if (p == nullptr) {
    throw Error(std::string(what) + ": cannot allocate " + std::to_string(bytes) +
                " bytes; expected a problem that fits in memory");
  }
  if (align == kHugePage) {
#ifdef MADV_HUGEPAGE
    ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure is fine
#endif
    Cache& c = cache();
    std::lock_guard<std::mutex> guard(c.lock);
    c.live[p] = rounded;
  }
  return p;
}

void free_large(void* p) noexcept {
  if (p == nullptr) return;
  Cache& c = cache();
  std::vector<void*> release;
  {
    std::lock_guard<std::mutex> guard(c.lock);
    const auto it = c.live.find(p);
    if (it == c.live.end()) {  // a small block
      std::free(p);
      return;
    }
    const size_t size = it->second;
    c.live.erase(it);
    size_t limit = 0;
    try {
      limit = cache_limit();
    } catch (...) {  // a malformed setting: allocate_large reported it; keep nothing
    }
    if (size > limit) {
      release.push_back(p);
    } else {
      c.kept.emplace_back(p, size);
      c.kept_bytes += size;
      while (c.kept_bytes > limit) {  // the least recently freed go first
        release.push_back(c.kept.front().first);
        c.kept_bytes -= c.kept.front().second;
        c.kept.erase(c.kept.begin());
      }
    }
  }
  for (void* q : release) std::free(q);
}

}  // namespace sta::detail

namespace sta {

void release_buffer_cache() noexcept {
  detail::Cache& c = detail::cache();
  std::vector<std::pair<void*, size_t>> kept;
  {
    std::lock_guard<std::mutex> guard(c.lock);
    kept.swap(c.kept);
    c.kept_bytes = 0;
  }
  for (const auto& block : kept) std::free(block.first);
}

}  // namespace sta
