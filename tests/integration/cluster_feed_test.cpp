#include "herald/cluster/nats_feed.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "cluster_relay_fixture.hpp"
#include "cluster_test_support.hpp"
#include "herald/json.hpp"
#include "store_test_support.hpp"

namespace herald::cluster {
namespace {

using namespace std::chrono_literals;
using cluster_test::env;
using cluster_test::NatsServer;
using store_test::must;

TEST(NatsFeed, RejectsMalformedOptions) {
  const store_test::TempDir directory;
  const auto store = must(open_store(
      {.location = directory.file("herald.db"), .catalog = &store_test::catalog_with_legacy()}));
  const EventCatalog& catalog = store_test::catalog_with_legacy();
  const auto error_field = [&](NatsFeedOptions options) {
    auto feed = NatsFeed::create(*store, std::move(options));
    EXPECT_FALSE(feed.has_value());
    if (feed) return std::string("(accepted)");
    EXPECT_EQ(feed.error().code, ErrorCode::invalid_argument);
    return feed.error().field;
  };
  EXPECT_EQ(error_field({.url = "", .catalog = &catalog}), "url");
  EXPECT_EQ(error_field({.url = "http://127.0.0.1:4222", .catalog = &catalog}), "url");
  EXPECT_EQ(error_field({.url = "nats://127.0.0.1:1", .stream = "A.B", .catalog = &catalog}),
            "stream");
  EXPECT_EQ(
      error_field({.url = "nats://127.0.0.1:1", .subject_prefix = "a..b", .catalog = &catalog}),
      "subject_prefix");
  EXPECT_EQ(error_field({.url = "nats://127.0.0.1:1"}), "catalog");
  EXPECT_EQ(
      error_field({.url = "nats://127.0.0.1:1", .catalog = &catalog, .store_fallback_after = 99ms}),
      "store_fallback_after");
}

// A feed on the fixture's store and stream, and a follower that reads it like the stream hub does:
// by position, handing out each batch.
class NatsFeedServers : public NatsRelayServers {
 protected:
  std::unique_ptr<NatsFeed> make_feed(std::chrono::milliseconds fallback = 3s,
                                      const std::string& url = {}) {
    auto feed = NatsFeed::create(*store_, {.url = url.empty() ? nats_url_ : url,
                                           .stream = stream_,
                                           .subject_prefix = prefix_,
                                           .catalog = &store_test::catalog_with_legacy(),
                                           .store_fallback_after = fallback,
                                           .on_error = [this](const Error& error) {
                                             std::scoped_lock lock(errors_mutex_);
                                             errors_.push_back(error.message);
                                           }});
    if (!feed) throw std::runtime_error(feed.error().message);
    return std::move(*feed);
  }

  // Reads `feed` after `after` until it has handed out `until` (or `timeout` passes), `max` per
  // call; returns every position handed out, in the order handed out.
  std::vector<std::int64_t> follow(NatsFeed& feed, std::int64_t after, std::int64_t until,
                                   std::size_t max = 1000,
                                   std::chrono::milliseconds timeout = 20s) {
    std::vector<std::int64_t> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::int64_t position = after;
    while (position < until && std::chrono::steady_clock::now() < deadline) {
      auto events = feed.next(position, max, 200ms);
      if (!events) {
        ADD_FAILURE() << events.error().message;
        break;
      }
      EXPECT_LE(events->size(), max);
      for (const StoredEvent& event : *events) {
        out.push_back(event.position);
        position = event.position;
      }
    }
    return out;
  }

  // The store's positions after `after`, in order.
  std::vector<std::int64_t> stored_after(std::int64_t after) {
    std::vector<std::int64_t> out;
    for (const StoredEvent& event : must(store_->read_forward(after, 100000))) {
      out.push_back(event.position);
    }
    return out;
  }
};

TEST_F(NatsFeedServers, HandsOutRelayedEventsInPositionOrderFromTheStream) {
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  auto feed = make_feed();
  const auto first = append(1);
  ASSERT_TRUE(relay->wait_for_position(first.back(), 20s));
  // The first message after subscribing is a jump; from there on events come from the stream.
  EXPECT_EQ(follow(*feed, 0, first.back()), stored_after(0));
  const auto more = append(40);
  ASSERT_TRUE(relay->wait_for_position(more.back(), 20s));
  EXPECT_EQ(follow(*feed, first.back(), more.back()), stored_after(first.back()));
  EXPECT_GE(feed->from_stream(), 40U) << "the events after the first come from the stream";
  EXPECT_TRUE(feed->connected());
}

TEST_F(NatsFeedServers, EventsComeWithTheirContentAsStored) {
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  auto feed = make_feed();
  const auto positions = append(5);
  ASSERT_TRUE(relay->wait_for_position(positions.back(), 20s));
  std::vector<StoredEvent> got;
  std::int64_t after = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (after < positions.back() && std::chrono::steady_clock::now() < deadline) {
    for (StoredEvent& event : must(feed->next(after, 100, 200ms))) {
      after = event.position;
      got.push_back(std::move(event));
    }
  }
  const auto stored = must(store_->read_forward(0, 100));
  ASSERT_EQ(got.size(), stored.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].position, stored[i].position);
    EXPECT_EQ(encode_event(got[i].event.ref()), encode_event(stored[i].event.ref()));
  }
}

TEST_F(NatsFeedServers, AFollowerBehindTheStreamGetsTheGapFromTheStoreWithoutDuplicates) {
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  const auto positions = append(120);
  ASSERT_TRUE(relay->wait_for_position(positions.back(), 20s));
  auto feed = make_feed();
  // The subscription starts at the stream's last message: positions 11..119 can only come from
  // the store, in batches of 25 (the last message waits for them).
  const auto got = follow(*feed, positions[9], positions.back(), 25);
  EXPECT_EQ(got, stored_after(positions[9]));
  EXPECT_GE(feed->from_store(), 100U);
}

TEST_F(NatsFeedServers, ReadsTheStoreWhenNoRelayRunsAndTakesTheStreamBackWhenOneDoes) {
  auto feed = make_feed(300ms);
  const auto early = append(8);
  // No relay: nothing reaches the stream, the store is ahead; after the fallback delay the feed
  // reads the store.
  EXPECT_EQ(follow(*feed, 0, early.back()), stored_after(0));
  EXPECT_EQ(feed->from_store(), 8U);
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  const auto later = append(30);
  ASSERT_TRUE(relay->wait_for_position(later.back(), 20s));
  EXPECT_EQ(follow(*feed, early.back(), later.back()), stored_after(early.back()));
}

TEST_F(NatsFeedServers, ANatsServerThatIsDownStillLetsTheFeedFollowTheStore) {
  // Port 1 on loopback: nothing listens.
  auto feed = make_feed(200ms, "nats://127.0.0.1:1");
  EXPECT_FALSE(feed->connected());
  const auto positions = append(12);
  EXPECT_EQ(follow(*feed, 0, positions.back()), stored_after(0));
}

TEST_F(NatsFeedServers, AMessageThatIsNotTheRelaysIsReportedAndSkipped) {
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  const auto first = append(3);
  ASSERT_TRUE(relay->wait_for_position(first.back(), 20s));
  auto feed = make_feed();
  EXPECT_EQ(follow(*feed, 0, first.back()), stored_after(0));
  // Something else writes to the stream's subjects: no position header.
  client_->publish(prefix_ + ".none.Foreign", R"({"not":"an event"})", {});
  const auto more = append(3);
  ASSERT_TRUE(relay->wait_for_position(more.back(), 20s));
  EXPECT_EQ(follow(*feed, first.back(), more.back()), stored_after(first.back()));
  // The relay reports the foreign message too (its next publish no longer follows the stream's
  // last message); the feed's report names the missing header.
  const auto reported = errors();
  EXPECT_TRUE(std::ranges::any_of(reported, [](const std::string& message) {
    return message.find("no Herald-Position header") != std::string::npos;
  })) << ::testing::PrintToString(reported);
}

TEST_F(NatsFeedServers, WakeEndsAWaitAtOnce) {
  auto feed = make_feed();
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    feed->wake();
  });
  const auto started = std::chrono::steady_clock::now();
  auto events = feed->next(0, 10, 30s);
  waker.join();
  ASSERT_TRUE(events.has_value()) << events.error().message;
  EXPECT_TRUE(events->empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST_F(NatsFeedServers, NothingIsLostOrRepeatedAcrossANatsServerRestart) {
  if (!env("HERALD_TEST_NATS_PID_FILE")) GTEST_SKIP() << "run under scripts/with_nats.sh";
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  auto feed = make_feed(1s);
  std::vector<std::int64_t> got;
  std::int64_t position = 0;
  const auto take = [&](std::int64_t until) {
    for (const std::int64_t p : follow(*feed, position, until)) {
      got.push_back(p);
      position = p;
    }
  };
  const auto before = append(20);
  take(before.back());
  NatsServer server;
  server.kill();
  const auto during = append(20);
  server.start();
  const auto after = append(20);
  ASSERT_TRUE(relay->wait_for_position(after.back(), 30s));
  take(after.back());
  EXPECT_EQ(got, stored_after(0));
  (void)during;
}

}  // namespace
}  // namespace herald::cluster
