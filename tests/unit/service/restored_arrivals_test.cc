// RestoredArrivals: a restore's arrival-log puts held back until the read ends, and dropped
// with their deletes, give the state that writing every record in order gives.
#include "restored_arrivals.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace painpoint::service {
namespace {

using Family = std::string;
using State = std::map<std::pair<Family, std::string>, std::string>;

constexpr std::string_view kArrivals = store::kArrivalLogFamily;

void write_all(State& state, std::span<const store::PreparedWrite> writes) {
  for (const store::PreparedWrite& w : writes) {
    const std::pair<Family, std::string> key{std::string(w.family), std::string(w.key)};
    switch (w.kind) {
      case store::WriteKind::kPut:
        state[key] = std::string(w.value);
        break;
      case store::WriteKind::kDelete:
        state.erase(key);
        break;
      case store::WriteKind::kDeleteRange:
        if (w.key < w.value) {
          state.erase(state.lower_bound(key),
                      state.lower_bound({std::string(w.family), std::string(w.value)}));
        }
        break;
    }
  }
}

struct OwnedWrite {
  std::string family;
  store::WriteKind kind;
  std::string key;
  std::string value;
  [[nodiscard]] store::PreparedWrite view() const { return {family, kind, key, value}; }
};

std::vector<store::PreparedWrite> views(const std::vector<OwnedWrite>& owned) {
  std::vector<store::PreparedWrite> out;
  for (const OwnedWrite& w : owned) out.push_back(w.view());
  return out;
}

TEST(RestoredArrivalsTest, PutsDeletedLaterAreNeverWritten) {
  const std::vector<OwnedWrite> chunk1 = {
      {std::string(kArrivals), store::WriteKind::kPut, "a1", "e-1"},
      {"events", store::WriteKind::kPut, "e-1", "event"},
      {std::string(kArrivals), store::WriteKind::kPut, "a2", "e-2"}};
  const std::vector<OwnedWrite> chunk2 = {
      {std::string(kArrivals), store::WriteKind::kDelete, "a1", ""}};

  RestoredArrivals cleared(/*partition_was_empty=*/true);
  std::vector<store::PreparedWrite> out;
  cleared.filter(views(chunk1), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].family, "events");
  out.clear();
  cleared.filter(views(chunk2), out);
  EXPECT_TRUE(out.empty());
  const auto held = cleared.held();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].key, "a2");
  EXPECT_EQ(held[0].value, "e-2");
  EXPECT_EQ(held[0].kind, store::WriteKind::kPut);

  // On a partition with records, the delete is still written: the key may be there from before.
  RestoredArrivals warm(/*partition_was_empty=*/false);
  out.clear();
  warm.filter(views(chunk1), out);
  warm.filter(views(chunk2), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].kind, store::WriteKind::kDelete);
  EXPECT_EQ(warm.held().size(), 1u);
}

// Random runs of puts, deletes and range deletions over two families, cut into random chunks:
// the filtered writes plus the held puts at the end give the state of every write in order.
TEST(RestoredArrivalsTest, SameStateAsWritingEveryRecordInOrder) {
  std::mt19937 rng(17);
  for (int round = 0; round < 500; ++round) {
    const bool empty = round % 2 == 0;
    State before;
    if (!empty) {
      for (int k = 0; k < 6; ++k) {
        before[{std::string(kArrivals), "k" + std::to_string(rng() % 10)}] = "old";
        before[{"events", "k" + std::to_string(rng() % 10)}] = "old";
      }
    }
    std::vector<OwnedWrite> log;
    const int length = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) {
      const std::string family = rng() % 3 == 0 ? "events" : std::string(kArrivals);
      const std::string key = "k" + std::to_string(rng() % 10);
      const unsigned kind = rng() % 8;
      if (kind < 4) {
        log.push_back({family, store::WriteKind::kPut, key, "v" + std::to_string(i)});
      } else if (kind < 7) {
        log.push_back({family, store::WriteKind::kDelete, key, ""});
      } else {
        log.push_back({family, store::WriteKind::kDeleteRange, key,
                       "k" + std::to_string(rng() % 10)});
      }
    }
    State expected = before;
    write_all(expected, views(log));

    State got = before;
    RestoredArrivals arrivals(empty);
    for (std::size_t begin = 0; begin < log.size();) {
      const std::size_t end = std::min(log.size(), begin + 1 + rng() % 8);
      const std::vector<OwnedWrite> chunk(log.begin() + static_cast<std::ptrdiff_t>(begin),
                                          log.begin() + static_cast<std::ptrdiff_t>(end));
      std::vector<store::PreparedWrite> out;
      arrivals.filter(views(chunk), out);
      write_all(got, out);
      begin = end;
    }
    write_all(got, arrivals.held());
    ASSERT_EQ(got, expected) << "round " << round;
  }
}

}  // namespace
}  // namespace painpoint::service
