#pragma once

// Requests the cache line holding `p` (a hint: never faults, never changes results).
//
// Why not __builtin_prefetch directly: GCC deduces that a function whose only effect is
// __builtin_prefetch has no side effects (ipa-pure-const) and deletes calls to it before it
// would inline them. Every prefetch helper of the aggregator (FlatMap::prefetch, the hot-record
// and cluster prefetches) was compiled away like that: the built library held one prefetch
// instruction. The empty volatile asm that takes `p` is a side effect the compiler keeps, and
// with it the calls and their prefetches; it emits no instruction.

namespace painpoint::aggregator {

inline void prefetch_line(const void* p) {
  __builtin_prefetch(p);
  asm volatile("" : : "r"(p));
}

}  // namespace painpoint::aggregator
