#include "page_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>

namespace painpoint::aggregator {
namespace {

constexpr std::size_t kChunkBytes = std::size_t{2} << 20;  // one huge page on x86-64
constexpr std::size_t kGrain = 16;
constexpr std::size_t kClasses = PagePool::kMaxPooledBytes / kGrain + 1;

struct Pool {
  std::mutex mu;
  std::array<void*, kClasses> free_lists{};  // by size class; next pointer in the block
  char* next = nullptr;                      // unused rest of the current chunk
  char* end = nullptr;
};

// Leaked on purpose: clusters may be freed during static destruction.
Pool& pool() {
  static Pool* const p = new Pool;
  return *p;
}

std::size_t class_of(std::size_t bytes) {
  return (std::max<std::size_t>(bytes, 1) + kGrain - 1) / kGrain;
}

void push(Pool& p, void* block, std::size_t cls) {
  *static_cast<void**>(block) = p.free_lists[cls];
  p.free_lists[cls] = block;
}

std::size_t huge_size(std::size_t bytes) { return (bytes + kChunkBytes - 1) & ~(kChunkBytes - 1); }

// `bytes` (a multiple of kChunkBytes) of fresh memory, 2 MiB-aligned (huge pages map only whole
// aligned 2 MiB ranges): maps one chunk more and unmaps what lies outside the aligned part.
char* map_huge(std::size_t bytes) {
  const std::size_t mapped = bytes + kChunkBytes;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kChunkBytes - 1) & ~(kChunkBytes - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const std::uintptr_t tail = aligned + bytes;
  const std::uintptr_t raw_end = start + mapped;
  if (raw_end > tail) munmap(reinterpret_cast<void*>(tail), raw_end - tail);
  auto* chunk = reinterpret_cast<char*>(aligned);
  // Advice only: without THP (or with it disabled) the range is ordinary memory.
  (void)madvise(chunk, bytes, MADV_HUGEPAGE);
  return chunk;
}

void* from_heap(std::size_t bytes, std::size_t align) {
  return ::operator new (bytes, std::align_val_t{align});
}

void to_heap(void* ptr, std::size_t align) { ::operator delete (ptr, std::align_val_t{align}); }

}  // namespace

void* PagePool::allocate(std::size_t bytes, std::size_t align) {
  if (!PagePool::kPooled) return from_heap(bytes, align);
  if (bytes >= kHugeBytes) return map_huge(huge_size(bytes));
  if (bytes > kMaxPooledBytes || align > kGrain) return from_heap(bytes, align);
  const std::size_t cls = class_of(bytes);
  Pool& p = pool();
  const std::lock_guard<std::mutex> lock(p.mu);
  if (void* block = p.free_lists[cls]) {
    p.free_lists[cls] = *static_cast<void**>(block);
    return block;
  }
  const std::size_t size = cls * kGrain;
  if (static_cast<std::size_t>(p.end - p.next) < size) {
    // The old chunk's rest (less than one block of this class) becomes a free block of the
    // largest class it holds.
    if (const auto rest = static_cast<std::size_t>(p.end - p.next); rest >= kGrain) {
      push(p, p.next, rest / kGrain);
    }
    p.next = map_huge(kChunkBytes);
    p.end = p.next + kChunkBytes;
  }
  void* block = p.next;
  p.next += size;
  return block;
}

void PagePool::deallocate(void* ptr, std::size_t bytes, std::size_t align) noexcept {
  if (ptr == nullptr) return;
  if (!PagePool::kPooled) return to_heap(ptr, align);
  if (bytes >= kHugeBytes) {
    munmap(ptr, huge_size(bytes));
    return;
  }
  if (bytes > kMaxPooledBytes || align > kGrain) return to_heap(ptr, align);
  Pool& p = pool();
  const std::lock_guard<std::mutex> lock(p.mu);
  push(p, ptr, class_of(bytes));
}

}  // namespace painpoint::aggregator
