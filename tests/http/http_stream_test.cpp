// GET /api/v1/events/stream: live delivery, filters, resume across a restart, the seam between
// replay and live, heartbeats, slow clients and a clean end on stop.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http_test_support.hpp"

namespace herald::testing {
namespace {

std::string stream_target(const TestServer& server, std::string_view query = {}) {
  std::string target = "/api/v1/events/stream?access_token=" + server.tokens().read;
  if (!query.empty()) target += "&" + std::string(query);
  return target;
}

std::int64_t id_of(const SseEvent& event) { return std::stoll(event.id); }

void append_users(EventStore& store, int from, int to, std::optional<std::int64_t> org = 7) {
  std::vector<EventPtr> events;
  for (int i = from; i <= to; ++i) {
    events.push_back(EventPtr::make(make<domain::UserCreatedEvent>(
        {.entity_id = i, .user_id = i, .organization_id = org}, {})));
  }
  std::vector<EventRef> refs(events.begin(), events.end());
  ASSERT_TRUE(store.append_batch(refs));
}

TEST(HttpStream, SendsTheSseHeadersAndARetryHint) {
  TestServer server;
  SseReader stream(server.port(), stream_target(server));
  ASSERT_EQ(stream.status(), 200u);
  EXPECT_EQ(stream.header("Content-Type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(stream.header("X-Accel-Buffering"), "no");
  EXPECT_EQ(stream.header("Cache-Control"), "no-store");
  EXPECT_FALSE(stream.header("X-Request-Id").empty());
  ASSERT_TRUE(stream.wait_for_comment("live after position", std::chrono::seconds(10)));
  EXPECT_EQ(stream.retry(), "2000");
}

TEST(HttpStream, DeliversPostedEventsLiveInOrder) {
  TestServer server;
  SseReader stream(server.port(), stream_target(server));
  ASSERT_TRUE(stream.wait_for_comment("live after position", std::chrono::seconds(10)));
  HttpClient client(server.port());
  std::vector<std::string> posted;
  for (int i = 1; i <= 5; ++i) {
    posted.push_back(user_created_json(i, 7));
    ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, posted.back()).status, 201u);
  }
  for (int i = 1; i <= 5; ++i) {
    auto event = stream.next();
    ASSERT_TRUE(event) << "event " << i << " did not arrive";
    EXPECT_EQ(id_of(*event), i);
    EXPECT_EQ(event->event, "UserCreatedEvent");
    EXPECT_EQ(event->data, posted[i - 1]);
  }
}

TEST(HttpStream, AppliesTheFilters) {
  TestServer server;
  SseReader stream(server.port(), stream_target(server, "organization=8&type=UserCreatedEvent"));
  ASSERT_TRUE(stream.wait_for_comment("live after position", std::chrono::seconds(10)));
  append_users(server.store(), 1, 9, 7);
  append_users(server.store(), 10, 12, 8);
  for (int expected = 10; expected <= 12; ++expected) {
    auto event = stream.next();
    ASSERT_TRUE(event);
    EXPECT_EQ(id_of(*event), expected);
  }
}

TEST(HttpStream, OrganizationTokenStreamsOnlyItsOrganization) {
  TestServer server;
  SseReader stream(server.port(),
                   "/api/v1/events/stream?after=0&access_token=" + server.tokens().org7);
  append_users(server.store(), 1, 4, 8);
  append_users(server.store(), 5, 6, 7);
  auto first = stream.next();
  auto second = stream.next();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(id_of(*first), 5);
  EXPECT_EQ(id_of(*second), 6);
  SseReader other(server.port(),
                  "/api/v1/events/stream?organization=8&access_token=" + server.tokens().org7);
  EXPECT_EQ(other.status(), 403u);
}

TEST(HttpStream, NeedsAReadToken) {
  TestServer server;
  SseReader none(server.port(), "/api/v1/events/stream");
  EXPECT_EQ(none.status(), 401u);
  SseReader ingest_only(server.port(),
                        "/api/v1/events/stream?access_token=" + server.tokens().ingest);
  EXPECT_EQ(ingest_only.status(), 403u);
  SseReader by_header(server.port(), "/api/v1/events/stream", server.tokens().read);
  EXPECT_EQ(by_header.status(), 200u);
}

TEST(HttpStream, ResumesWithLastEventIdAcrossARestartWithNoGapAndNoDuplicate) {
  TestServer server;
  append_users(server.store(), 1, 10);
  std::string last_id;
  {
    SseReader stream(server.port(), stream_target(server, "after=0"));
    for (int i = 1; i <= 10; ++i) {
      auto event = stream.next();
      ASSERT_TRUE(event);
      ASSERT_EQ(id_of(*event), i);
      last_id = event->id;
    }
  }
  server.restart();
  append_users(server.store(), 11, 15);
  SseReader resumed(server.port(), stream_target(server), {}, last_id);
  for (int i = 11; i <= 15; ++i) {
    auto event = resumed.next();
    ASSERT_TRUE(event) << "position " << i << " is missing";
    ASSERT_EQ(id_of(*event), i);
  }
  // Then live.
  HttpClient client(server.port());
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, user_created_json(16, 7)).status,
            201u);
  auto live = resumed.next();
  ASSERT_TRUE(live);
  EXPECT_EQ(id_of(*live), 16);
  EXPECT_FALSE(resumed.next(std::chrono::milliseconds(300)));
}

TEST(HttpStream, ReplayThenLiveWhileWritersAppendHasNoGapAndNoDuplicate) {
  TestServer server;
  append_users(server.store(), 1, 2500);
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 0; i < 40 && writing; ++i) {
      append_users(server.store(), 3000 + i * 50, 3000 + i * 50 + 49);
    }
  });
  SseReader stream(server.port(), stream_target(server, "after=0"));
  std::int64_t expected = 1;
  while (expected <= 2500 + 40 * 50) {
    auto event = stream.next();
    ASSERT_TRUE(event) << "stopped at position " << expected;
    ASSERT_EQ(id_of(*event), expected);
    ++expected;
  }
  writing = false;
  writer.join();
  EXPECT_FALSE(stream.next(std::chrono::milliseconds(300)));
}

TEST(HttpStream, SendsHeartbeatsWhenIdle) {
  http::ServerOptions options;
  options.heartbeat = std::chrono::milliseconds(50);
  TestServer server(options);
  SseReader stream(server.port(), stream_target(server));
  EXPECT_TRUE(stream.wait_for_comment("heartbeat", std::chrono::seconds(10)));
}

TEST(HttpStream, ASlowClientIsCutOffAndResumesWithoutLoss) {
  http::ServerOptions options;
  options.limits.stream_queue_events = 64;
  options.stream_coalesce = std::chrono::milliseconds(0);
  TestServer server(options);
  // A small receive window, and nothing read while 20,000 events go by.
  SseReader slow(server.port(), stream_target(server), {}, std::nullopt, 4096);
  ASSERT_EQ(slow.status(), 200u);
  ASSERT_TRUE(slow.wait_for_comment("live after position", std::chrono::seconds(10)));
  constexpr int total = 20000;
  for (int from = 1; from <= total; from += 1000) append_users(server.store(), from, from + 999);

  std::vector<std::int64_t> received;
  while (auto event = slow.next(std::chrono::seconds(10))) received.push_back(id_of(*event));
  ASSERT_TRUE(slow.ended()) << "the slow client was not cut off";
  ASSERT_LT(received.size(), static_cast<std::size_t>(total));
  const std::string last = received.empty() ? "0" : std::to_string(received.back());
  SseReader resumed(server.port(), stream_target(server), {}, last);
  while (received.size() < static_cast<std::size_t>(total)) {
    auto event = resumed.next();
    ASSERT_TRUE(event) << "lost after " << received.size();
    received.push_back(id_of(*event));
  }
  for (int i = 0; i < total; ++i) ASSERT_EQ(received[i], i + 1);
}

TEST(HttpStream, StopEndsStreamsWithTheirFinalChunk) {
  TestServer server;
  SseReader stream(server.port(), stream_target(server));
  ASSERT_TRUE(stream.wait_for_comment("live after position", std::chrono::seconds(10)));
  server.stop();
  EXPECT_FALSE(stream.next(std::chrono::seconds(10)));
  EXPECT_TRUE(stream.ended_cleanly());
}

}  // namespace
}  // namespace herald::testing
