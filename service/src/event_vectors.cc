#include "event_vectors.h"

#include <string_view>

namespace painpoint::service {

namespace agg = painpoint::aggregator;

EventVectors::EventVectors(const agg::SentenceEncoder* encoder, unsigned threads)
    : encoder_(encoder), threads_(threads == 0 ? 1 : threads) {}

void EventVectors::encode_missing(std::span<v1::StoredEvent* const> events) {
  if (encoder_ == nullptr) return;
  std::vector<v1::StoredEvent*> todo;
  std::vector<std::string_view> texts;
  for (v1::StoredEvent* e : events) {
    if (!e->embedding().empty()) continue;
    todo.push_back(e);
    texts.emplace_back(e->event().text());
  }
  if (todo.empty()) return;
  constexpr std::size_t kDims = agg::SentenceEncoder::kDims;
  raw_.resize(texts.size() * kDims);
  if (!encoder_->encode(texts, raw_, threads_)) return;
  for (std::size_t i = 0; i < todo.size(); ++i) {
    todo[i]->set_embedding(agg::pack_embedding({raw_.data() + i * kDims, kDims}));
  }
}

std::span<const float> EventVectors::vector_of(const v1::StoredEvent& stored) {
  if (encoder_ == nullptr) return {};
  constexpr std::size_t kDims = agg::SentenceEncoder::kDims;
  vector_.resize(kDims);
  if (agg::unpack_embedding(stored.embedding(), vector_)) return vector_;
  const std::string_view text = stored.event().text();
  raw_.resize(kDims);
  if (!encoder_->encode(std::span<const std::string_view>(&text, 1), raw_, 1)) return {};
  ++encoded_late_;
  if (!agg::unpack_embedding(agg::pack_embedding(raw_), vector_)) return {};
  return vector_;
}

}  // namespace painpoint::service
