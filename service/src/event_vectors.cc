#include "event_vectors.h"

#include <algorithm>
#include <thread>
#include <utility>

namespace painpoint::service {

namespace agg = painpoint::aggregator;

EventVectors::EventVectors(const agg::SentenceEncoder* encoder, unsigned threads)
    : encoder_(encoder),
      threads_(threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency())) {}

bool EventVectors::encode(std::span<const std::string_view> texts,
                          std::vector<std::string>& packed) {
  if (encoder_ == nullptr) return false;
  constexpr std::size_t kDims = agg::SentenceEncoder::kDims;
  raw_.resize(texts.size() * kDims);
  if (!encoder_->encode(texts, raw_, threads_)) return false;
  packed.clear();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    packed.push_back(agg::pack_embedding({raw_.data() + i * kDims, kDims}));
  }
  return true;
}

std::span<const float> EventVectors::unpack(std::string_view packed) {
  vector_.resize(agg::SentenceEncoder::kDims);
  if (!agg::unpack_embedding(packed, vector_)) return {};
  return vector_;
}

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
  std::vector<std::string> packed;
  if (!encode(texts, packed)) return;
  for (std::size_t i = 0; i < todo.size(); ++i) todo[i]->set_embedding(std::move(packed[i]));
}

std::span<const float> EventVectors::vector_of(const v1::StoredEvent& stored) {
  if (encoder_ == nullptr) return {};
  if (const auto v = unpack(stored.embedding()); !v.empty()) return v;
  const std::string_view text = stored.event().text();
  std::vector<std::string> packed;
  if (!encode(std::span<const std::string_view>(&text, 1), packed)) return {};
  ++encoded_late_;
  return unpack(packed.front());
}

}  // namespace painpoint::service
