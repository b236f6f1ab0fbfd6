// The HTTP side of a cluster node: GET /api/v1/cluster, the herald_cluster_* metrics, and a node
// whose live stream and bus take their events from a feed of their own (docs/cluster.md).

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>

#include "herald/event_bus.hpp"
#include "herald/event_feed.hpp"
#include "http_test_support.hpp"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

// A feed that every event must pass through (like a node's NATS feed), reading the store.
class PassThroughFeed final : public EventFeed {
 public:
  explicit PassThroughFeed(EventStore& store) : store_(store) {}
  std::expected<std::vector<StoredEvent>, Error> next(std::int64_t after, std::size_t max,
                                                      std::chrono::milliseconds timeout) override {
    auto events = store_.next(after, max, timeout);
    if (events) handed_out += events->size();
    return events;
  }
  void wake() noexcept override { store_.wake(); }
  bool may_skip() const noexcept override { return false; }

  std::atomic<std::size_t> handed_out{0};

 private:
  StoreFeed store_;
};

boost::json::object json_body(const HttpReply& reply) {
  return boost::json::parse(reply.body).as_object();
}

TEST(HttpCluster, ASingleNodeReportsTheStoreFeedAndNoRoles) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply reply = client.get("/api/v1/cluster", server.tokens().read);
  ASSERT_EQ(reply.status, 200U) << reply.body;
  const auto body = json_body(reply);
  EXPECT_EQ(body.at("feed").as_string(), "store");
  EXPECT_TRUE(body.at("nats").is_null());
  EXPECT_TRUE(body.at("roles").as_array().empty());
}

TEST(HttpCluster, ReportsTheNodeItsRolesAndNatsWithoutCredentials) {
  std::atomic<bool> leading{true};
  TestServer server({}, {}, [&](EventStore&, http::ServerServices& services) {
    services.node_status = [&] {
      return http::NodeStatus{
          .node_id = "node-a",
          .store = "postgresql",
          .feed = "nats",
          .nats = http::NodeNatsStatus{.url = "nats://herald:s3cret@10.0.0.5:4222,nats://10.0.0.6",
                                       .stream = "HERALD_EVENTS",
                                       .connected = true},
          .roles = {{.role = "consumer:audit", .leader = leading.load()},
                    {.role = "relay:nats", .leader = false}},
      };
    };
  });
  HttpClient client(server.port());
  const HttpReply reply = client.get("/api/v1/cluster", server.tokens().read);
  ASSERT_EQ(reply.status, 200U) << reply.body;
  const auto body = json_body(reply);
  EXPECT_EQ(body.at("node_id").as_string(), "node-a");
  EXPECT_EQ(body.at("store").as_string(), "postgresql");
  EXPECT_EQ(body.at("feed").as_string(), "nats");
  const auto& nats = body.at("nats").as_object();
  EXPECT_EQ(nats.at("url").as_string(), "nats://10.0.0.5:4222,nats://10.0.0.6");
  EXPECT_EQ(reply.body.find("s3cret"), std::string::npos) << "the password must not be shown";
  EXPECT_EQ(nats.at("stream").as_string(), "HERALD_EVENTS");
  EXPECT_TRUE(nats.at("connected").as_bool());
  const auto& roles = body.at("roles").as_array();
  ASSERT_EQ(roles.size(), 2U);
  EXPECT_EQ(roles[0].at("role").as_string(), "consumer:audit");
  EXPECT_TRUE(roles[0].at("leader").as_bool());
  EXPECT_FALSE(roles[1].at("leader").as_bool());

  const HttpReply metrics = client.get("/metrics", server.tokens().read);
  EXPECT_NE(metrics.body.find(R"(herald_cluster_leader{role="consumer:audit"} 1)"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find(R"(herald_cluster_leader{role="relay:nats"} 0)"), std::string::npos);
  EXPECT_NE(metrics.body.find("herald_cluster_nats_connected 1"), std::string::npos);
  leading = false;
  EXPECT_NE(client.get("/metrics", server.tokens().read)
                .body.find(R"(herald_cluster_leader{role="consumer:audit"} 0)"),
            std::string::npos)
      << "the gauge follows the lease";
}

TEST(HttpCluster, TheClusterEndpointNeedsAReadTokenAndRefusesWhatItDoesNotTake) {
  TestServer server;
  HttpClient client(server.port());
  EXPECT_EQ(client.get("/api/v1/cluster").status, 401U);
  EXPECT_EQ(client.get("/api/v1/cluster", "hrld_forged").status, 401U);
  EXPECT_EQ(client.get("/api/v1/cluster", server.tokens().ingest).status, 403U);
  EXPECT_EQ(client.get("/api/v1/cluster?verbose=1", server.tokens().read).status, 400U);
  EXPECT_EQ(client.post("/api/v1/cluster", server.tokens().all, "{}").status, 405U);
}

TEST(HttpCluster, WithAFeedTheBusAndTheStreamTakeEveryEventOnceFromIt) {
  std::unique_ptr<PassThroughFeed> feed;
  TestServer server({}, {}, [&](EventStore& store, http::ServerServices& services) {
    feed = std::make_unique<PassThroughFeed>(store);
    services.feed = feed.get();
  });
  std::atomic<int> published{0};
  auto subscription = server.bus().on_any([&](EventRef) { published.fetch_add(1); });
  // An event appended by another node (straight to the shared store) and two ingested here.
  const auto elsewhere = make<domain::UserCreatedEvent>(
      {.entity_id = 50, .user_id = 50}, {.discord_id = 1, .discord_username = "elsewhere"});
  ASSERT_TRUE(server.store().append(EventRef(elsewhere)));
  HttpClient client(server.port());
  SseReader stream(server.port(), "/api/v1/events/stream?after=0", server.tokens().read);
  ASSERT_EQ(stream.status(), 200U);
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, user_created_json(1, 7)).status,
            201U);
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, user_created_json(2, 7)).status,
            201U);
  for (const char* id : {"1", "2", "3"}) {
    auto event = stream.next();
    ASSERT_TRUE(event.has_value()) << "event " << id;
    EXPECT_EQ(event->id, id);
  }
  // The hub publishes a batch to the bus before handing it to the streams: what the stream showed
  // is queued on the bus.
  server.bus().drain();
  EXPECT_EQ(published.load(), 3) << "each event once on the bus, the other node's included";
  EXPECT_GE(feed->handed_out.load(), 3U);
  server.stop();
}

}  // namespace
}  // namespace herald::testing
