#pragma once

// Sentence vectors of stored events (cluster.encoder = semantic). An event is encoded once, when
// it is first stored; the vector travels in StoredEvent.embedding (aggregator::pack_embedding) and
// is read back by every replay (crash recovery, `replay rebuild`), so the aggregator sees the
// same input each time and recovery reproduces serve exactly.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/aggregator/encoder.h"
#include "painpoint/v1/internal.pb.h"

namespace painpoint::service {

class EventVectors {
 public:
  // `encoder` may be null (not semantic): then every vector is empty. Not owned. `threads`
  // encode each batch; 0: one per core.
  EventVectors(const aggregator::SentenceEncoder* encoder, unsigned threads);

  [[nodiscard]] bool enabled() const { return encoder_ != nullptr; }

  // Encodes `texts` as one batch: packed[i] is the stored form of texts[i]'s vector. False, with
  // `packed` untouched, when not enabled.
  [[nodiscard]] bool encode(std::span<const std::string_view> texts,
                            std::vector<std::string>& packed);

  // The vector the aggregator gets for a stored form; empty when `packed` is not one. Valid
  // until the next call.
  [[nodiscard]] std::span<const float> unpack(std::string_view packed);

  // Encodes, as one batch, the events that carry no vector yet and stores it in them.
  void encode_missing(std::span<v1::StoredEvent* const> events);

  // What the aggregator gets for `stored`: its stored vector, unpacked (encoded now when it has
  // none, e.g. an event stored before semantic mode was switched on). Empty when not enabled.
  // Valid until the next call.
  [[nodiscard]] std::span<const float> vector_of(const v1::StoredEvent& stored);

  // Events encoded because they had no stored vector (see vector_of).
  [[nodiscard]] std::size_t encoded_late() const { return encoded_late_; }

 private:
  const aggregator::SentenceEncoder* encoder_;
  unsigned threads_;
  std::vector<float> raw_;
  std::vector<float> vector_;
  std::size_t encoded_late_ = 0;
};

}  // namespace painpoint::service
