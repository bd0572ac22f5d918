// EventVectors (service/src/event_vectors.h): the sentence vectors of stored events in semantic
// mode. Needs the converted encoder (scripts/fetch-encoder.sh, or $PAINPOINT_ENCODER) and fails
// without it, like tests/unit/aggregator/encoder_test.cc.
#include "event_vectors.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/aggregator/encoder.h"

namespace painpoint::service {
namespace {

namespace agg = painpoint::aggregator;
constexpr std::size_t kDims = agg::SentenceEncoder::kDims;

std::string encoder_path() {
  const char* env = std::getenv("PAINPOINT_ENCODER");
  return env != nullptr && *env != '\0' ? std::string(env) : agg::default_encoder_path();
}

v1::StoredEvent make_event(const std::string& id, const std::string& text) {
  v1::StoredEvent e;
  e.mutable_event()->set_event_id(id);
  e.mutable_event()->set_product_id("mobile-app");
  e.mutable_event()->set_text(text);
  return e;
}

std::vector<std::string> texts(std::size_t n) {
  static const char* const kProblems[] = {
      "the app crashes when I upload a photo", "I was charged twice this month",
      "login with SSO keeps failing",          "export to CSV is missing columns",
      "dark mode would be great",              "search results are slow to load",
      "cannot reset my password",              "the invoice shows the wrong VAT number"};
  static const char* const kTails[] = {"", " since the update", " on android, again today",
                                       " - please fix, it is blocking our whole team",
                                       " (ticket #4711)"};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::string(kProblems[i % 8]) + kTails[(i / 8) % 5] +
                  (i >= 40 ? " x" + std::to_string(i) : ""));
  }
  return out;
}

std::vector<float> unpack(const std::string& bytes) {
  std::vector<float> v(kDims);
  EXPECT_TRUE(agg::unpack_embedding(bytes, v)) << bytes.size() << " bytes";
  return v;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class EventVectorsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    loaded_ = new agg::LoadedEncoder(agg::load_sentence_encoder(encoder_path()));
  }
  static void TearDownTestSuite() {
    delete loaded_;
    loaded_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(loaded_->encoder, nullptr)
        << "cannot load the sentence encoder: " << loaded_->detail
        << "\nRun scripts/fetch-encoder.sh (or set PAINPOINT_ENCODER to the converted file).";
  }
  static const agg::SentenceEncoder& encoder() { return *loaded_->encoder; }

  // What serve must store for `text`: the encoder's vector in packed form.
  static std::string packed(const std::string& text) {
    std::vector<float> raw(kDims);
    const std::string_view view = text;
    EXPECT_TRUE(encoder().encode(std::span<const std::string_view>(&view, 1), raw));
    return agg::pack_embedding(raw);
  }

 private:
  static agg::LoadedEncoder* loaded_;
};

agg::LoadedEncoder* EventVectorsTest::loaded_ = nullptr;

TEST(EventVectorsDisabled, WithoutEncoderNothingIsEncoded) {
  EventVectors vectors(nullptr, 2);
  EXPECT_FALSE(vectors.enabled());
  v1::StoredEvent e = make_event("e1", "the app crashes");
  v1::StoredEvent* events[] = {&e};
  vectors.encode_missing(events);
  EXPECT_TRUE(e.embedding().empty());
  EXPECT_TRUE(vectors.vector_of(e).empty());
  EXPECT_EQ(vectors.encoded_late(), 0u);
}

TEST_F(EventVectorsTest, EncodeMissingFillsOnlyEventsWithoutAVector) {
  EventVectors vectors(&encoder(), 2);
  EXPECT_TRUE(vectors.enabled());
  const std::vector<std::string> t = texts(6);
  std::vector<v1::StoredEvent> events;
  for (std::size_t i = 0; i < t.size(); ++i) events.push_back(make_event("e" + std::to_string(i), t[i]));
  // Events 1 and 4 already carry a vector (of another text): it must stay as it is.
  const std::string kept1 = packed("something else entirely");
  const std::string kept4 = packed("dark mode would be great");
  events[1].set_embedding(kept1);
  events[4].set_embedding(kept4);
  std::vector<v1::StoredEvent*> ptrs;
  for (auto& e : events) ptrs.push_back(&e);
  vectors.encode_missing(ptrs);

  EXPECT_EQ(events[1].embedding(), kept1);
  EXPECT_EQ(events[4].embedding(), kept4);
  for (std::size_t i : {0u, 2u, 3u, 5u}) {
    ASSERT_EQ(events[i].embedding().size(), kDims + 4) << i;
    EXPECT_EQ(events[i].embedding(), packed(t[i])) << i;
  }
  EXPECT_EQ(vectors.encoded_late(), 0u);

  // A second call finds nothing to do and changes nothing.
  const std::vector<v1::StoredEvent> copy = events;
  vectors.encode_missing(ptrs);
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].embedding(), copy[i].embedding()) << i;
  }
  // An empty batch is fine.
  vectors.encode_missing({});
}

TEST_F(EventVectorsTest, VectorOfIsTheUnpackedStoredVector) {
  EventVectors vectors(&encoder(), 1);
  // The stored vector wins over the text: a replay must see what serve saw, not a new encoding.
  v1::StoredEvent e = make_event("e1", "login with SSO keeps failing");
  const std::string stored = packed("I was charged twice this month");
  e.set_embedding(stored);
  const std::vector<float> expected = unpack(stored);
  const std::span<const float> got = vectors.vector_of(e);
  ASSERT_EQ(got.size(), kDims);
  EXPECT_TRUE(same_bits(got, expected));
  EXPECT_EQ(vectors.encoded_late(), 0u);

  // Arbitrary stored bytes (not the encoder's at all) come back exactly as unpacked.
  std::vector<float> odd(kDims);
  for (std::size_t k = 0; k < kDims; ++k) odd[k] = static_cast<float>(k % 17) - 8.0f;
  e.set_embedding(agg::pack_embedding(odd));
  const std::span<const float> got2 = vectors.vector_of(e);
  ASSERT_EQ(got2.size(), kDims);
  EXPECT_TRUE(same_bits(got2, unpack(e.embedding())));
  EXPECT_EQ(vectors.encoded_late(), 0u);
}

TEST_F(EventVectorsTest, EventWithoutStoredVectorIsEncodedLateAndCounted) {
  EventVectors vectors(&encoder(), 2);
  const std::vector<std::string> t = texts(3);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const v1::StoredEvent e = make_event("old" + std::to_string(i), t[i]);
    const std::span<const float> got = vectors.vector_of(e);
    ASSERT_EQ(got.size(), kDims) << i;
    // The stored form of its vector, unpacked: what serve would have stored and replayed.
    EXPECT_TRUE(same_bits(got, unpack(packed(t[i])))) << i;
    EXPECT_EQ(vectors.encoded_late(), i + 1);
  }
  // A stored vector does not count.
  v1::StoredEvent with = make_event("new", t[0]);
  with.set_embedding(packed(t[0]));
  (void)vectors.vector_of(with);
  EXPECT_EQ(vectors.encoded_late(), 3u);
  // Unusable stored bytes (wrong length) are treated like none.
  with.set_embedding(packed(t[0]).substr(0, 100));
  const std::span<const float> got = vectors.vector_of(with);
  ASSERT_EQ(got.size(), kDims);
  EXPECT_TRUE(same_bits(got, unpack(packed(t[0]))));
  EXPECT_EQ(vectors.encoded_late(), 4u);
}

TEST_F(EventVectorsTest, SameBytesInABatchOfOneOrOfFifty) {
  const std::vector<std::string> t = texts(50);
  // One batch of 50 over several threads.
  EventVectors batch(&encoder(), 4);
  std::vector<v1::StoredEvent> together;
  for (std::size_t i = 0; i < t.size(); ++i) together.push_back(make_event("b" + std::to_string(i), t[i]));
  std::vector<v1::StoredEvent*> ptrs;
  for (auto& e : together) ptrs.push_back(&e);
  batch.encode_missing(ptrs);

  // Fifty batches of one, on the calling thread.
  EventVectors single(&encoder(), 1);
  for (std::size_t i = 0; i < t.size(); ++i) {
    v1::StoredEvent alone = make_event("s" + std::to_string(i), t[i]);
    v1::StoredEvent* one[] = {&alone};
    single.encode_missing(one);
    ASSERT_EQ(alone.embedding().size(), kDims + 4) << i;
    EXPECT_EQ(alone.embedding(), together[i].embedding()) << "text " << i << ": " << t[i];
    // And the late path (a replay of an event stored without a vector) agrees too.
    const v1::StoredEvent bare = make_event("l" + std::to_string(i), t[i]);
    std::vector<float> late;
    const std::span<const float> v = single.vector_of(bare);
    late.assign(v.begin(), v.end());
    EXPECT_TRUE(same_bits(late, single.vector_of(together[i]))) << i;
  }
  // The texts differ, and so do their vectors.
  EXPECT_NE(together[0].embedding(), together[8].embedding());
  EXPECT_NE(together[0].embedding(), together[1].embedding());
}

}  // namespace
}  // namespace painpoint::service
