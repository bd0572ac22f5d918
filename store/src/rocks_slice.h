#pragma once

// Conversions between std::string_view and rocksdb::Slice, for every store source file (private).

#include <rocksdb/slice.h>

#include <string_view>

namespace painpoint::store {

inline rocksdb::Slice slice(std::string_view view) { return {view.data(), view.size()}; }
inline std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace painpoint::store
