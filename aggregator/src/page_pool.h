#pragma once

// Memory for the per-cluster state that add() reads for every event: cluster records,
// centroids, dense sums, day counts, accounts, exemplar pools and posting lists.
//
// Why a pool: with thousands of pain points in a product, the cluster an event joins (and the
// posting lists of its rare terms) was last touched thousands of events ago. glibc's heap
// scatters each record and each of its vectors over its own 4 KiB pages, so besides the cache
// misses every one of those reads also misses the TLB and walks the page tables (inside a VM,
// a two-level walk). Measured with aggregator_bench's loop (CPU time of add() at 10,000 pain
// points): with the whole heap on transparent huge pages (GLIBC_TUNABLES=
// glibc.malloc.hugetlb=1) it took 6.3 instead of 7.4 µs per event, and varied far less from
// run to run. The pool gets most of that for the clustering state without asking the
// deployment for a tunable: it carves blocks from 2 MiB-aligned chunks advised with
// MADV_HUGEPAGE, so a few dozen TLB entries cover the state of a large product. Where THP is
// off ("never"), the advice is ignored and this is a plain size-class allocator.
//
// Blocks of up to kMaxPooledBytes are served from free lists by 16-byte size class. Freed
// blocks go back to their list and are reused by later blocks of the same class; chunks are
// never returned to the system (like most of glibc's heap in practice), so the pool's size is
// the peak of the state it held. Arrays of kHugeBytes or more (a large product's term tables,
// hot records) get mappings of their own, rounded up to whole huge pages and unmapped when
// freed; sizes in between come from operator new.
//
// Thread safety: process-wide and safe to use from any thread (one mutex; allocation is rare
// on the hot path: vectors grow seldom once a cluster exists). Under AddressSanitizer it
// forwards to operator new/delete, so that use-after-free and leaks stay detectable.

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace painpoint::aggregator {

class PagePool {
 public:
  // False under AddressSanitizer: every block then comes from operator new (neither reused nor
  // huge-page aligned), so that a use after free or a leak of clustering state is reported
  // instead of hidden in the pool.
#if defined(__SANITIZE_ADDRESS__)
  static constexpr bool kPooled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  static constexpr bool kPooled = false;
#else
  static constexpr bool kPooled = true;
#endif
#else
  static constexpr bool kPooled = true;
#endif
  static constexpr std::size_t kMaxPooledBytes = 4096;
  static constexpr std::size_t kHugeBytes = std::size_t{1} << 20;

  // Never returns nullptr; throws std::bad_alloc. `bytes` may be 0; `align` is a power of two
  // of at most 64.
  static void* allocate(std::size_t bytes, std::size_t align);
  // `p` must come from allocate(bytes, align) with the same arguments.
  static void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept;
};

// Stateless allocator over PagePool (all instances are interchangeable).
template <typename T>
struct PoolAllocator {
  using value_type = T;
  static_assert(alignof(T) <= 64);

  PoolAllocator() noexcept = default;
  template <typename U>
  explicit(false) PoolAllocator(const PoolAllocator<U>& /*other*/) noexcept {}

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(PagePool::allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    PagePool::deallocate(p, n * sizeof(T), alignof(T));
  }

  template <typename U>
  bool operator==(const PoolAllocator<U>& /*other*/) const noexcept {
    return true;
  }
};

template <typename T>
using PoolVector = std::vector<T, PoolAllocator<T>>;

}  // namespace painpoint::aggregator
