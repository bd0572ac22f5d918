// The arrival number inside a serialized StoredEvent (see store_internal.h).
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "painpoint/v1/internal.pb.h"
#include "store_internal.h"

namespace painpoint::store {

void append_arrival(std::string& serialized, std::uint64_t arrival) {
  using google::protobuf::internal::WireFormatLite;
  serialized.push_back(static_cast<char>(WireFormatLite::MakeTag(
      v1::StoredEvent::kArrivalSeqFieldNumber, WireFormatLite::WIRETYPE_VARINT)));
  while (arrival >= 0x80) {
    serialized.push_back(static_cast<char>((arrival & 0x7F) | 0x80));
    arrival >>= 7;
  }
  serialized.push_back(static_cast<char>(arrival));
}

bool read_arrival(std::string_view serialized, std::optional<std::uint64_t>* out) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const std::uint8_t*>(serialized.data()),
      static_cast<int>(serialized.size()));
  out->reset();
  while (const std::uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(v1::StoredEvent::kArrivalSeqFieldNumber,
                                       WireFormatLite::WIRETYPE_VARINT)) {
      std::uint64_t value = 0;
      if (!in.ReadVarint64(&value)) return false;
      *out = value;  // the last occurrence wins, as in a full parse
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

}  // namespace painpoint::store
