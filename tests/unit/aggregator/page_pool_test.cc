// PagePool (aggregator/src/page_pool.h): the memory the clustering state lives in.
#include "page_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

namespace painpoint::aggregator {
namespace {

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

TEST(PagePool, SmallBlocksAreAlignedAndDisjoint) {
  struct Block {
    unsigned char* p;
    std::size_t bytes;
  };
  std::vector<Block> blocks;
  for (std::size_t bytes = 0; bytes <= PagePool::kMaxPooledBytes; bytes += 37) {
    auto* p = static_cast<unsigned char*>(PagePool::allocate(bytes, 16));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(address(p) % 16, 0u) << bytes;
    std::memset(p, static_cast<int>(blocks.size() & 0xff), bytes);
    blocks.push_back({p, bytes});
  }
  // Every block still holds its own pattern: none overlaps another.
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto* b = blocks[i].p;
    EXPECT_TRUE(
        std::all_of(b, b + blocks[i].bytes, [&](unsigned char c) { return c == (i & 0xff); }))
        << "block " << i;
  }
  for (const auto& b : blocks) PagePool::deallocate(b.p, b.bytes, 16);
}

TEST(PagePool, FreedBlocksAreReusedBySameSizeClass) {
  if (!PagePool::kPooled) GTEST_SKIP() << "forwards to operator new under AddressSanitizer";
  std::set<void*> freed;
  std::vector<void*> first;
  for (int i = 0; i < 64; ++i) first.push_back(PagePool::allocate(100, 16));
  for (void* p : first) {
    freed.insert(p);
    PagePool::deallocate(p, 100, 16);
  }
  // 97..112 bytes share a 16-byte class with 100.
  for (int i = 0; i < 64; ++i) {
    void* p = PagePool::allocate(97 + static_cast<std::size_t>(i % 16), 16);
    EXPECT_TRUE(freed.contains(p)) << i;
    PagePool::deallocate(p, 97 + static_cast<std::size_t>(i % 16), 16);
  }
}

TEST(PagePool, LargeArraysGetHugePageAlignedMappings) {
  const std::size_t bytes = PagePool::kHugeBytes + 12345;
  auto* p = static_cast<unsigned char*>(PagePool::allocate(bytes, 64));
  ASSERT_NE(p, nullptr);
  if (PagePool::kPooled) {
    EXPECT_EQ(address(p) % (std::size_t{2} << 20), 0u);
  }
  p[0] = 1;
  p[bytes - 1] = 2;
  EXPECT_EQ(p[0] + p[bytes - 1], 3);
  PagePool::deallocate(p, bytes, 64);
}

TEST(PagePool, AllocatorKeepsOverAlignedTypesAligned) {
  struct alignas(64) Line {
    std::uint64_t v[8];
  };
  for (std::size_t n : {1u, 3u, 100u, 20000u}) {  // pooled, heap and huge-mapping sizes
    PoolVector<Line> lines(n);
    EXPECT_EQ(address(lines.data()) % 64, 0u) << n;
  }
}

TEST(PagePool, VectorsGrowAndKeepTheirValues) {
  PoolVector<std::uint32_t> v;
  for (std::uint32_t i = 0; i < 300000; ++i) v.push_back(i * 7);  // crosses every size range
  for (std::uint32_t i = 0; i < 300000; i += 997) ASSERT_EQ(v[i], i * 7);
  PoolVector<std::uint32_t> copy = v;
  v.clear();
  v.shrink_to_fit();
  EXPECT_EQ(copy.size(), 300000u);
  EXPECT_EQ(copy.back(), 299999u * 7);
}

}  // namespace
}  // namespace painpoint::aggregator
