// Counts every heap allocation of the program it is linked into, by replacing malloc and its
// relatives (Eigen allocates with std::malloc, so replacing operator new alone would miss it)
// and every operator new, all forwarding to glibc. Link it only into a binary of its own, and
// never with a sanitizer (which replaces the allocator itself).
#include "tests/engine/testing/alloc_counter.h"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

// glibc's allocator under its internal names, so the replacements below can forward to it.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void* __libc_valloc(std::size_t size);
void* __libc_pvalloc(std::size_t size);
void __libc_free(void* p);
}

namespace {

constinit std::atomic<int64_t> g_allocations{0};

inline void CountAllocation() { g_allocations.fetch_add(1, std::memory_order_relaxed); }

void* NewOrThrow(std::size_t size, std::size_t alignment) {
  CountAllocation();
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t) ? __libc_malloc(size)
                                                   : __libc_memalign(alignment, size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* NewOrNull(std::size_t size, std::size_t alignment) noexcept {
  CountAllocation();
  if (size == 0) size = 1;
  return alignment <= alignof(std::max_align_t) ? __libc_malloc(size)
                                                : __libc_memalign(alignment, size);
}

}  // namespace

extern "C" {
void* malloc(std::size_t size) noexcept {
  CountAllocation();
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
  CountAllocation();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  CountAllocation();
  return __libc_realloc(p, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept {
  CountAllocation();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  CountAllocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  CountAllocation();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(std::size_t size) noexcept {
  CountAllocation();
  return __libc_valloc(size);
}
void* pvalloc(std::size_t size) noexcept {
  CountAllocation();
  return __libc_pvalloc(size);
}
void free(void* p) noexcept { __libc_free(p); }
}

void* operator new(std::size_t size) { return NewOrThrow(size, 0); }
void* operator new[](std::size_t size) { return NewOrThrow(size, 0); }
void* operator new(std::size_t size, std::align_val_t al) {
  return NewOrThrow(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return NewOrThrow(size, static_cast<std::size_t>(al));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return NewOrNull(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return NewOrNull(size, 0);
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return NewOrNull(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return NewOrNull(size, static_cast<std::size_t>(al));
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  __libc_free(p);
}

int64_t AllocationCount() { return g_allocations.load(std::memory_order_relaxed); }
