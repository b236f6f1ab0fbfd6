#include "herald/event_id.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>
#include <vector>

namespace herald {
namespace {

TEST(EventId, GeneratesVersion7WithRfc9562Variant) {
  const EventId id = EventId::generate();
  EXPECT_EQ(id.version(), 7);
  EXPECT_EQ(id.bytes()[8] & 0xC0, 0x80);  // variant 0b10
  const std::string text = id.to_string();
  ASSERT_EQ(text.size(), 36U);
  EXPECT_EQ(text[14], '7');
}

TEST(EventId, EmbedsTheCurrentUnixMillisecond) {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const EventId id = EventId::generate();
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  EXPECT_GE(id.unix_millis(), before);
  // The generator may run a little ahead of the clock when it counts past a millisecond.
  EXPECT_LE(id.unix_millis(), after + 1000);
}

TEST(EventId, IsStrictlyIncreasingWithinOneMillisecond) {
  std::vector<EventId> ids(100000);
  for (auto& id : ids) id = EventId::generate();
  int same_millisecond_pairs = 0;
  for (std::size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LT(ids[i - 1], ids[i]) << "at " << i;
    ASSERT_LT(ids[i - 1].to_string(), ids[i].to_string()) << "text order at " << i;
    if (ids[i - 1].unix_millis() == ids[i].unix_millis()) ++same_millisecond_pairs;
  }
  EXPECT_GT(same_millisecond_pairs, 0) << "the test must exercise ids within one millisecond";
}

TEST(EventId, IsUniqueAndIncreasingAcrossThreads) {
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  std::vector<std::vector<EventId>> results(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      results[t].reserve(per_thread);
      for (int i = 0; i < per_thread; ++i) results[t].push_back(EventId::generate());
    });
  }
  for (auto& w : workers) w.join();
  std::set<EventId> all;
  for (const auto& r : results) {
    for (std::size_t i = 1; i < r.size(); ++i) ASSERT_LT(r[i - 1], r[i]);
    all.insert(r.begin(), r.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST(EventId, ParsesWhatItPrints) {
  const EventId id = EventId::generate();
  const auto parsed = EventId::parse(id.to_string());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, id);
}

TEST(EventId, ParsesUpperCase) {
  const auto parsed = EventId::parse("0193C1A2-7B3D-7E4F-8A9B-0C1D2E3F4A5B");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->to_string(), "0193c1a2-7b3d-7e4f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(parsed->short_string(), "0193c1a2");
}

TEST(EventId, RejectsMalformedText) {
  for (const char* bad :
       {"", "0193c1a2", "0193c1a2-7b3d-7e4f-8a9b-0c1d2e3f4a5",
        "0193c1a2-7b3d-7e4f-8a9b-0c1d2e3f4a5bb", "0193c1a2x7b3d-7e4f-8a9b-0c1d2e3f4a5b",
        "0193c1a2-7b3d-7e4f-8a9b-0c1d2e3f4a5g", "{0193c1a2-7b3d-7e4f-8a9b-0c1d2e3f4a}"}) {
    EXPECT_FALSE(EventId::parse(bad).has_value()) << bad;
  }
}

TEST(EventId, DefaultIsNil) {
  EXPECT_TRUE(EventId{}.is_nil());
  EXPECT_EQ(EventId{}.to_string(), "00000000-0000-0000-0000-000000000000");
  EXPECT_FALSE(EventId::generate().is_nil());
}

}  // namespace
}  // namespace herald
