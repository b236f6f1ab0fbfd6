// The HTTP API against a real server on loopback, through real HTTP clients.

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <set>
#include <thread>

#include "herald/audit_log.hpp"
#include "herald/domain/audit_rules.hpp"
#include "herald/durable_consumer.hpp"
#include "http_test_support.hpp"

namespace herald::testing {
namespace {

using bhttp::verb;

std::int64_t position_of(const HttpReply& reply) {
  return reply.json().as_object().at("position").as_int64();
}

std::string batch_of(const std::vector<std::string>& events) {
  std::string out = "[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) out += ',';
    out += events[i];
  }
  return out + "]";
}

TEST(HttpApi, HealthAndReadinessNeedNoToken) {
  TestServer server;
  HttpClient client(server.port());
  EXPECT_EQ(client.get("/healthz").status, 200u);
  const HttpReply ready = client.get("/readyz");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(ready.json().as_object().at("status").as_string(), "ready");
}

TEST(HttpApi, EveryResponseCarriesARequestId) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply first = client.get("/healthz");
  const HttpReply second = client.get("/api/v1/nothing-here");
  EXPECT_EQ(first.header("X-Request-Id").size(), 16u);
  EXPECT_EQ(second.header("X-Request-Id").size(), 16u);
  EXPECT_NE(first.header("X-Request-Id"), second.header("X-Request-Id"));
}

TEST(HttpApi, PostedEventIsStoredAndReadBackById) {
  TestServer server;
  HttpClient client(server.port());
  const std::string event = user_created_json(41, 7);
  const HttpReply created = client.post("/api/v1/events", server.tokens().all, event);
  ASSERT_EQ(created.status, 201u) << created.body;
  const auto& body = created.json().as_object();
  EXPECT_TRUE(body.at("created").as_bool());
  const std::string id(body.at("event_id").as_string());

  const HttpReply fetched = client.get("/api/v1/events/" + id, server.tokens().read);
  ASSERT_EQ(fetched.status, 200u) << fetched.body;
  const auto& stored = fetched.json().as_object();
  EXPECT_EQ(stored.at("position").as_int64(), body.at("position").as_int64());
  EXPECT_EQ(boost::json::serialize(stored.at("event")), event);
  ASSERT_EQ(server.store().count().value(), 1);
}

TEST(HttpApi, RepostingAnEventGivesItsOriginalPositionWith200) {
  TestServer server;
  HttpClient client(server.port());
  const std::string event = user_created_json(42, 7);
  const HttpReply first = client.post("/api/v1/events", server.tokens().ingest, event);
  ASSERT_EQ(first.status, 201u);
  const HttpReply second = client.post("/api/v1/events", server.tokens().ingest, event);
  ASSERT_EQ(second.status, 200u) << second.body;
  EXPECT_FALSE(second.json().as_object().at("created").as_bool());
  EXPECT_EQ(position_of(second), position_of(first));
  EXPECT_EQ(server.store().count().value(), 1);
}

TEST(HttpApi, BatchIsStoredInOrderWithOnePositionEach) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply reply = client.post(
      "/api/v1/events", server.tokens().ingest,
      batch_of({user_created_json(1, 7), user_created_json(2, 7), user_created_json(3, 8)}));
  ASSERT_EQ(reply.status, 201u) << reply.body;
  const auto& results = reply.json().as_object().at("results").as_array();
  ASSERT_EQ(results.size(), 3u);
  std::int64_t last = 0;
  for (const auto& result : results) {
    EXPECT_GT(result.as_object().at("position").as_int64(), last);
    last = result.as_object().at("position").as_int64();
    EXPECT_TRUE(result.as_object().at("created").as_bool());
  }
  EXPECT_EQ(server.store().count().value(), 3);
}

TEST(HttpApi, BatchOverAThousandEventsIsRefusedWith413AndNothingStored) {
  TestServer server;
  HttpClient client(server.port());
  std::vector<std::string> events;
  for (int i = 0; i < 1001; ++i) events.push_back(user_created_json(i + 1, 7));
  const HttpReply reply = client.post("/api/v1/events", server.tokens().ingest, batch_of(events));
  EXPECT_EQ(reply.status, 413u) << reply.body;
  EXPECT_EQ(server.store().count().value(), 0);
}

TEST(HttpApi, InvalidEventNamesTheFieldInsideABatch) {
  TestServer server;
  HttpClient client(server.port());
  std::string bad = user_created_json(5, 7);
  bad.replace(bad.find("\"user_id\":5"), 11, "\"user_id\":\"five\"");
  const HttpReply reply = client.post("/api/v1/events", server.tokens().ingest,
                                      batch_of({user_created_json(4, 7), bad}));
  ASSERT_EQ(reply.status, 400u) << reply.body;
  const auto& error = reply.json().as_object().at("error").as_object();
  EXPECT_EQ(error.at("code").as_string(), "invalid_event");
  EXPECT_EQ(error.at("field").as_string(), "events[1].user_id");
  EXPECT_EQ(server.store().count().value(), 0);
}

class HttpEventList : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpClient client(server_.port());
    std::vector<std::string> events;
    for (int i = 1; i <= 30; ++i) events.push_back(user_created_json(i, i % 3 == 0 ? 8 : 7));
    ASSERT_EQ(client.post("/api/v1/events", server_.tokens().ingest, batch_of(events)).status,
              201u);
  }
  TestServer server_;
};

TEST_F(HttpEventList, PagesForwardWithTheAfterCursor) {
  HttpClient client(server_.port());
  std::vector<std::int64_t> seen;
  std::string target = "/api/v1/events?limit=7";
  for (int page = 0; page < 10; ++page) {
    const HttpReply reply = client.get(target, server_.tokens().read);
    ASSERT_EQ(reply.status, 200u) << reply.body;
    const auto& body = reply.json().as_object();
    for (const auto& item : body.at("events").as_array()) {
      seen.push_back(item.as_object().at("position").as_int64());
    }
    if (body.at("next_after").is_null()) break;
    target = "/api/v1/events?limit=7&after=" + std::to_string(body.at("next_after").as_int64());
  }
  ASSERT_EQ(seen.size(), 30u);
  EXPECT_TRUE(std::ranges::is_sorted(seen));
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), 30u);
}

TEST_F(HttpEventList, PagesBackwardNewestFirst) {
  HttpClient client(server_.port());
  const HttpReply reply = client.get("/api/v1/events?before=31&limit=5", server_.tokens().read);
  ASSERT_EQ(reply.status, 200u) << reply.body;
  const auto& events = reply.json().as_object().at("events").as_array();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].as_object().at("position").as_int64(), 30);
  EXPECT_EQ(events[4].as_object().at("position").as_int64(), 26);
  EXPECT_EQ(reply.json().as_object().at("next_before").as_int64(), 26);
}

TEST_F(HttpEventList, FiltersByOrganizationTypeAndEntity) {
  HttpClient client(server_.port());
  const HttpReply by_org =
      client.get("/api/v1/events?organization=8&limit=1000", server_.tokens().read);
  ASSERT_EQ(by_org.status, 200u);
  EXPECT_EQ(by_org.json().as_object().at("events").as_array().size(), 10u);
  const HttpReply by_entity =
      client.get("/api/v1/events?entity_type=User&entity_id=12", server_.tokens().read);
  ASSERT_EQ(by_entity.status, 200u);
  ASSERT_EQ(by_entity.json().as_object().at("events").as_array().size(), 1u);
  const HttpReply by_type =
      client.get("/api/v1/events?type=UserUpdatedEvent", server_.tokens().read);
  ASSERT_EQ(by_type.status, 200u);
  EXPECT_EQ(by_type.json().as_object().at("events").as_array().size(), 0u);
  const HttpReply in_future =
      client.get("/api/v1/events?since=2999-01-01T00:00:00Z", server_.tokens().read);
  ASSERT_EQ(in_future.status, 200u);
  EXPECT_EQ(in_future.json().as_object().at("events").as_array().size(), 0u);
}

TEST_F(HttpEventList, OrganizationTokenSeesOnlyItsOrganization) {
  HttpClient client(server_.port());
  const HttpReply mine = client.get("/api/v1/events?limit=1000", server_.tokens().org7);
  ASSERT_EQ(mine.status, 200u);
  const auto& events = mine.json().as_object().at("events").as_array();
  EXPECT_EQ(events.size(), 20u);
  for (const auto& item : events) {
    EXPECT_EQ(item.as_object().at("event").as_object().at("organization_id").as_int64(), 7);
  }
  EXPECT_EQ(client.get("/api/v1/events?organization=8", server_.tokens().org7).status, 403u);
  // An event of another organization is not found (its existence is not revealed).
  const auto other = server_.store().read_forward(0, 30, EventFilter{.organization_id = 8});
  ASSERT_TRUE(other && !other->empty());
  const std::string id = other->front().event->event_id.to_string();
  EXPECT_EQ(client.get("/api/v1/events/" + id, server_.tokens().org7).status, 404u);
  EXPECT_EQ(client.get("/api/v1/events/" + id, server_.tokens().read).status, 200u);
}

TEST(HttpApi, OrganizationTokenMayIngestOnlyItsOrganization) {
  TestServer server;
  HttpClient client(server.port());
  EXPECT_EQ(client.post("/api/v1/events", server.tokens().org7, user_created_json(1, 7)).status,
            201u);
  const HttpReply other =
      client.post("/api/v1/events", server.tokens().org7, user_created_json(2, 8));
  EXPECT_EQ(other.status, 403u);
  EXPECT_EQ(other.json().as_object().at("error").as_object().at("field").as_string(),
            "organization_id");
  EXPECT_EQ(client.post("/api/v1/events", server.tokens().org7, user_created_json(3, std::nullopt))
                .status,
            403u);
  const HttpReply mixed = client.post("/api/v1/events", server.tokens().org7,
                                      batch_of({user_created_json(4, 7), user_created_json(5, 9)}));
  EXPECT_EQ(mixed.status, 403u);
  EXPECT_EQ(server.store().count().value(), 1);
}

TEST(HttpApi, CatalogListsEveryTypeWithItsSchema) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply reply = client.get("/api/v1/catalog", server.tokens().read);
  ASSERT_EQ(reply.status, 200u);
  const auto& types = reply.json().as_object().at("types").as_array();
  EXPECT_EQ(types.size(), 28u);
  for (const auto& type : types) {
    EXPECT_TRUE(type.as_object().contains("schema"));
    EXPECT_FALSE(type.as_object().at("fields").as_array().empty());
  }
}

TEST(HttpApi, AuditEndpointsListExportAndVerify) {
  TestServer server;
  HttpClient client(server.port());
  std::vector<std::string> events;
  for (int i = 1; i <= 12; ++i) events.push_back(user_created_json(i, i <= 6 ? 7 : 8));
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, batch_of(events)).status, 201u);
  auto consumer = make_audit_consumer(server.store(), domain::audit_mapping());
  ASSERT_TRUE(consumer->catch_up());

  const HttpReply list = client.get("/api/v1/audit?limit=5", server.tokens().audit);
  ASSERT_EQ(list.status, 200u) << list.body;
  EXPECT_EQ(list.json().as_object().at("total").as_int64(), 12);
  EXPECT_EQ(list.json().as_object().at("records").as_array().size(), 5u);
  const HttpReply org = client.get("/api/v1/audit", server.tokens().org7);
  ASSERT_EQ(org.status, 200u);
  EXPECT_EQ(org.json().as_object().at("total").as_int64(), 6);

  const HttpReply csv = client.get("/api/v1/audit/export?format=csv", server.tokens().audit);
  ASSERT_EQ(csv.status, 200u);
  EXPECT_EQ(std::ranges::count(csv.body, '\n'), 13);  // a header and 12 records
  const HttpReply jsonl = client.get("/api/v1/audit/export?format=jsonl", server.tokens().audit);
  ASSERT_EQ(jsonl.status, 200u);
  EXPECT_EQ(std::ranges::count(jsonl.body, '\n'), 12);

  const HttpReply verify = client.get("/api/v1/audit/verify", server.tokens().audit);
  ASSERT_EQ(verify.status, 200u) << verify.body;
  EXPECT_TRUE(verify.json().as_object().at("ok").as_bool());
  EXPECT_EQ(verify.json().as_object().at("records").as_int64(), 12);
  EXPECT_EQ(client.get("/api/v1/audit/verify", server.tokens().org7).status, 403u);
}

TEST(HttpApi, ConsumersAreListedAndReplayed) {
  TestServer server;
  HttpClient client(server.port());
  std::vector<std::string> events;
  for (int i = 1; i <= 5; ++i) events.push_back(user_created_json(i, 7));
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, batch_of(events)).status, 201u);
  auto consumer = make_audit_consumer(server.store(), domain::audit_mapping());
  ASSERT_TRUE(consumer->catch_up());

  const HttpReply list = client.get("/api/v1/consumers", server.tokens().admin);
  ASSERT_EQ(list.status, 200u) << list.body;
  const auto& consumers = list.json().as_object().at("consumers").as_array();
  ASSERT_EQ(consumers.size(), 1u);
  EXPECT_EQ(consumers[0].as_object().at("name").as_string(), "audit");
  EXPECT_EQ(consumers[0].as_object().at("checkpoint").as_int64(), 5);
  EXPECT_EQ(consumers[0].as_object().at("lag").as_int64(), 0);

  const HttpReply replay =
      client.post("/api/v1/consumers/audit/replay", server.tokens().admin, R"({"from":2})");
  ASSERT_EQ(replay.status, 200u) << replay.body;
  EXPECT_EQ(replay.json().as_object().at("checkpoint").as_int64(), 2);
  EXPECT_EQ(consumer_status(server.store(), "audit")->checkpoint, 2);
  EXPECT_EQ(
      client.post("/api/v1/consumers/nobody/replay", server.tokens().admin, R"({"from":0})").status,
      404u);
  EXPECT_EQ(
      client.post("/api/v1/consumers/audit/replay", server.tokens().admin, R"({"from":99})").status,
      400u);
}

TEST(HttpApi, MetricsCountIngestedEventsAndRequests) {
  TestServer server;
  HttpClient client(server.port());
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, user_created_json(1, 7)).status,
            201u);
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, user_created_json(2, 7)).status,
            201u);
  const HttpReply metrics = client.get("/metrics", server.tokens().read);
  ASSERT_EQ(metrics.status, 200u);
  EXPECT_NE(metrics.header("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.body.find(R"(herald_events_ingested_total{type="UserCreatedEvent"} 2)"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find(
                R"(herald_http_requests_total{route="POST /api/v1/events",status="201"} 2)"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("herald_append_latency_seconds_count 2"), std::string::npos);
  EXPECT_NE(metrics.body.find("herald_stream_clients 0"), std::string::npos);
  EXPECT_EQ(client.get("/metrics").status, 401u);
}

// --- the authorization matrix ---

struct Endpoint {
  verb method;
  std::string target;
  std::string body;
  Scope scope;
};

TEST(HttpAuth, EveryEndpointNeedsItsScopeAndAValidToken) {
  TestServer server;
  HttpClient client(server.port());
  ASSERT_EQ(client.post("/api/v1/events", server.tokens().ingest, user_created_json(1, 7)).status,
            201u);
  const std::string id = server.store().read_forward(0, 1)->front().event->event_id.to_string();
  const std::vector<Endpoint> endpoints = {
      {verb::post, "/api/v1/events", user_created_json(2, 7), Scope::ingest},
      {verb::get, "/api/v1/events", "", Scope::read},
      {verb::get, "/api/v1/events/" + id, "", Scope::read},
      {verb::get, "/api/v1/catalog", "", Scope::read},
      {verb::get, "/metrics", "", Scope::read},
      {verb::get, "/api/v1/audit", "", Scope::audit},
      {verb::get, "/api/v1/audit/export?format=csv", "", Scope::audit},
      {verb::get, "/api/v1/audit/verify", "", Scope::audit},
      {verb::get, "/api/v1/consumers", "", Scope::admin},
      {verb::post, "/api/v1/consumers/audit/replay", R"({"from":0})", Scope::admin},
  };
  const std::vector<std::pair<Scope, std::string>> tokens = {
      {Scope::ingest, server.tokens().ingest},
      {Scope::read, server.tokens().read},
      {Scope::audit, server.tokens().audit},
      {Scope::admin, server.tokens().admin},
  };
  // The replay endpoint needs the consumer to exist.
  ASSERT_TRUE(server.store().save_checkpoint("audit", 0));
  for (const Endpoint& endpoint : endpoints) {
    SCOPED_TRACE(endpoint.target);
    EXPECT_EQ(client.send(endpoint.method, endpoint.target, "", endpoint.body).status, 401u);
    EXPECT_EQ(client.send(endpoint.method, endpoint.target, "hrld_not-a-real-token", endpoint.body)
                  .status,
              401u);
    for (const auto& [scope, token] : tokens) {
      const HttpReply reply = client.send(endpoint.method, endpoint.target, token, endpoint.body);
      if (scope == endpoint.scope) {
        EXPECT_LT(reply.status, 300u) << to_string(scope) << ": " << reply.body;
      } else {
        EXPECT_EQ(reply.status, 403u) << to_string(scope) << ": " << reply.body;
      }
    }
  }
  // Bad Authorization headers.
  for (const std::string header : {"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer x y"}) {
    const HttpReply reply =
        client.send(verb::get, "/api/v1/events", "", "", "", {{"Authorization", header}});
    EXPECT_EQ(reply.status, 401u) << header;
    EXPECT_EQ(reply.header("WWW-Authenticate"), "Bearer realm=\"herald\"");
  }
}

TEST(HttpAuth, ARevokedTokenIsRefused) {
  TestServer server;
  HttpClient client(server.port());
  const std::string token = server.make_token("short-lived", Scope::read);
  EXPECT_EQ(client.get("/api/v1/events", token).status, 200u);
  ASSERT_TRUE(server.store().revoke_token("short-lived"));
  // The authenticator's cache keeps an answer for at most a second.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  unsigned status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    status = client.get("/api/v1/events", token).status;
    if (status == 401u) break;
  }
  EXPECT_EQ(status, 401u);
}

TEST(HttpLimits, RequestRateAboveTheBucketGets429WithRetryAfter) {
  http::ServerOptions options;
  options.limits.requests_per_second = 1;
  options.limits.request_burst = 3;
  TestServer server(options);
  HttpClient client(server.port());
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(client.get("/api/v1/catalog", server.tokens().read).status, 200u);
  const HttpReply limited = client.get("/api/v1/catalog", server.tokens().read);
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(limited.header("Retry-After"), "1");
  // Another token has its own bucket.
  EXPECT_EQ(client.get("/api/v1/catalog", server.tokens().all).status, 200u);
}

TEST(HttpLimits, ConnectionsOverTheLimitGet503) {
  http::ServerOptions options;
  options.limits.connections = 2;
  TestServer server(options);
  HttpClient first(server.port());
  HttpClient second(server.port());
  ASSERT_EQ(first.get("/healthz").status, 200u);
  ASSERT_EQ(second.get("/healthz").status, 200u);
  const std::string raw = raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(raw), 503u) << raw;
}

TEST(HttpLimits, AClientSendingOneByteASecondIsCutOff) {
  http::ServerOptions options;
  options.limits.read_timeout = std::chrono::milliseconds(300);
  TestServer server(options);
  SlowClient client(server.port());
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  // A byte every 100 ms: the whole request would take over 4 s.
  std::size_t sent = 0;
  while (sent < request.size() && client.send_byte(request[sent])) {
    ++sent;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (client.closed_by_server()) break;
  }
  EXPECT_LT(sent, request.size()) << "the server waited for the whole slow request";
  EXPECT_TRUE(client.closed_by_server());
}

TEST(HttpLimits, AnIdleConnectionIsClosed) {
  http::ServerOptions options;
  options.limits.idle_timeout = std::chrono::milliseconds(200);
  TestServer server(options);
  SlowClient client(server.port());
  EXPECT_TRUE(client.wait_closed_by_server(std::chrono::seconds(10)));
}

}  // namespace
}  // namespace herald::testing
