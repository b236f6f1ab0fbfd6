// Several `herald serve` processes on one PostgreSQL store and one nats-server (docs/cluster.md),
// started and killed by the test: a stream of node B shows what node A ingested, a client of a
// killed node resumes at another, the audit consumer moves to a live node, three nodes deliver
// each notification once, and every node's stream is complete across a nats-server restart.

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cluster_node_support.hpp"
#include "cluster_test_support.hpp"
#include "postgres_database.hpp"

namespace herald::cluster_test {
namespace {

using namespace std::chrono_literals;
using herald::testing::HttpClient;
using herald::testing::HttpReply;
using herald::testing::TempDir;
namespace bhttp = boost::beast::http;

constexpr const char* herald_binary = HERALD_BINARY;
constexpr const char* fake_discord_binary = HERALD_FAKE_DISCORD;

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

// The first differences between two position lists, for a failure message.
std::string difference(const std::vector<std::int64_t>& received,
                       const std::vector<std::int64_t>& expected) {
  std::string out = "received " + std::to_string(received.size()) + " positions, the store has " +
                    std::to_string(expected.size());
  const std::multiset<std::int64_t> got(received.begin(), received.end());
  const std::set<std::int64_t> want(expected.begin(), expected.end());
  int shown = 0;
  for (std::int64_t position : want) {
    if (got.count(position) == 0 && shown++ < 10) out += "; missing " + std::to_string(position);
  }
  for (std::int64_t position : std::set<std::int64_t>(got.begin(), got.end())) {
    if (got.count(position) > 1 && shown++ < 20) {
      out += "; " + std::to_string(position) + " received " + std::to_string(got.count(position)) +
             " times";
    }
    if (want.count(position) == 0 && shown++ < 20) {
      out += "; " + std::to_string(position) + " not in the store";
    }
  }
  if (!std::is_sorted(received.begin(), received.end())) out += "; not in position order";
  return out;
}

class ClusterNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto postgres = env("HERALD_TEST_PG_URL");
    const auto nats = env("HERALD_TEST_NATS_URL");
    if (!postgres || !nats) {
      GTEST_SKIP() << "run under scripts/with_postgres.sh scripts/with_nats.sh";
    }
    nats_url_ = *nats;
    database_ = std::make_unique<herald::test::PostgresDatabase>(*postgres, "cluster_nodes");
    // A stream of the test's own (at most 64 characters), deleted at the end, so that one test's
    // events never reach another's nodes.
    stream_ =
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()).substr(0, 64);
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const auto& node : nodes_) {
        std::cerr << "--- the log of node " << node->id() << " (last lines)\n"
                  << node->log_tail() << "---\n";
      }
    }
    nodes_.clear();
    if (!stream_.empty()) {
      try {
        JetStreamClient(nats_url_).delete_stream(stream_);
      } catch (const std::exception& e) {
        std::cerr << "deleting stream " << stream_ << ": " << e.what() << "\n";
      }
    }
    database_.reset();
  }

  /// Starts a node named `id` on the test's store and stream; the first one makes the token.
  HeraldNode& start_node(const std::string& id, std::vector<std::string> extra = {},
                         bool with_nats = true) {
    nodes_.push_back(std::make_unique<HeraldNode>(NodeOptions{
        .herald = herald_binary,
        .node_id = id,
        .store = database_->url(),
        .nats = with_nats ? nats_url_ : std::string(),
        .nats_stream = stream_,
        .log = logs_.path() / (id + ".log"),
        .bootstrap_admin = nodes_.empty(),
        .extra = std::move(extra),
    }));
    if (nodes_.size() == 1) token_ = nodes_.front()->token();
    return *nodes_.back();
  }

  /// GET /api/v1/cluster of `node`.
  HttpReply cluster_of(const HeraldNode& node) {
    return HttpClient(node.port()).get("/api/v1/cluster", token_);
  }

  /// The live node that says it leads `role`, when exactly one does.
  HeraldNode* leader_of(const std::string& role) {
    HeraldNode* leader = nullptr;
    for (const auto& node : nodes_) {
      if (!node->alive()) continue;
      const HttpReply reply = cluster_of(*node);
      if (reply.status != 200 || !cluster_roles(reply.json())[role]) continue;
      if (leader != nullptr) return nullptr;
      leader = node.get();
    }
    return leader;
  }

  /// Waits until every live node is fed from NATS and connected to it, and each role has exactly
  /// one leader among them.
  void await_cluster_ready(std::chrono::milliseconds timeout = 20s) {
    std::string state;
    const bool ready = wait_until(
        [&] {
          state.clear();
          std::map<std::string, int> leaders;
          bool connected = true;
          for (const auto& node : nodes_) {
            if (!node->alive()) continue;
            const HttpReply reply = cluster_of(*node);
            state += node->id() + ": " + std::to_string(reply.status) + " " + reply.body + "\n";
            if (reply.status != 200) return false;
            const auto& cluster = reply.json().as_object();
            const auto* nats = cluster.if_contains("nats");
            connected = connected && cluster.at("feed") == "nats" && nats != nullptr &&
                        nats->is_object() && nats->as_object().at("connected") == true;
            for (const auto& [role, leads] : cluster_roles(reply.json())) {
              leaders[role] += leads ? 1 : 0;
            }
          }
          if (!connected || leaders.empty()) return false;
          return std::all_of(leaders.begin(), leaders.end(),
                             [](const auto& role) { return role.second == 1; });
        },
        timeout, 100ms);
    ASSERT_TRUE(ready) << "the cluster did not settle (every node fed from NATS and connected, "
                          "one leader per role); last answers:\n"
                       << state;
  }

  /// How many audit records the log holds, as `node` answers.
  std::int64_t audit_total(const HeraldNode& node) {
    const HttpReply reply = HttpClient(node.port()).get("/api/v1/audit?limit=1", token_);
    if (reply.status != 200) return -1;
    return reply.json().at("total").to_number<std::int64_t>();
  }

  std::unique_ptr<herald::test::PostgresDatabase> database_;
  std::string nats_url_;
  std::string stream_;
  TempDir logs_;
  std::string token_;
  std::vector<std::unique_ptr<HeraldNode>> nodes_;
};

// (1) Fan-out: an event stored at A reaches B's stream through JetStream.
TEST_F(ClusterNodes, AStreamClientOfBReceivesAnEventIngestedAtAWithin500Ms) {
  HeraldNode& a = start_node("a");
  HeraldNode& b = start_node("b");
  ASSERT_NO_FATAL_FAILURE(await_cluster_ready());
  StreamRecorder at_b(b.port(), token_, "/api/v1/events/stream?after=0");
  ASSERT_TRUE(at_b.wait_for_head(10s));
  ASSERT_EQ(at_b.status(), 200u);

  HttpClient ingest(a.port());
  std::vector<std::int64_t> posted;
  std::chrono::microseconds slowest{0};
  std::string latencies;  // milliseconds
  for (std::int64_t user = 1; user <= 10; ++user) {
    const HttpReply reply = ingest.post("/api/v1/events", token_, user_created_json(user));
    const Clock::time_point answered = Clock::now();
    ASSERT_EQ(reply.status, 201u) << reply.body;
    const std::int64_t position = posted_positions(reply).front();
    posted.push_back(position);
    ASSERT_TRUE(at_b.wait_for_position(position, 10s))
        << "B's stream did not receive position " << position << " in 10 s";
    const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(
        *at_b.received_at(position) - answered);
    slowest = std::max(slowest, latency);
    latencies += (latencies.empty() ? "" : " ") + std::to_string(latency.count() / 1000);
    EXPECT_LT(latency, 500ms) << "position " << position << " reached B " << latency.count()
                              << " us after A answered the POST";
  }
  RecordProperty("slowest_us", std::to_string(slowest.count()));
  RecordProperty("latencies_ms", latencies);
  EXPECT_FALSE(at_b.malformed());
  EXPECT_EQ(at_b.positions(), posted);
  // They went through the test's JetStream stream.
  EXPECT_EQ(JetStreamClient(nats_url_).message_count(stream_), posted.size());
}

// (2) A client of B, which is killed with SIGKILL while A ingests, resumes at A with
// Last-Event-ID: together the two streams hold every stored event once, in order.
TEST_F(ClusterNodes, AClientOfAKilledNodeResumesAtAnotherWithNoGapAndNoDuplicate) {
  HeraldNode& a = start_node("a");
  HeraldNode& b = start_node("b");
  ASSERT_NO_FATAL_FAILURE(await_cluster_ready());
  auto at_b = std::make_unique<StreamRecorder>(b.port(), token_, "/api/v1/events/stream?after=0");
  Ingester ingester({a.port()}, token_);
  ASSERT_TRUE(at_b->wait_for_count(50, 20s)) << "B's stream received " << at_b->positions().size();

  b.kill();
  ASSERT_TRUE(wait_until([&] { return at_b->ended(); }, 10s)) << "B's stream did not end";
  at_b->stop();
  const std::vector<std::int64_t> from_b = at_b->positions();
  const std::size_t stored_at_kill = ingester.stored();
  StreamRecorder at_a(a.port(), token_, "/api/v1/events/stream", from_b.back());
  ASSERT_TRUE(at_a.wait_for_head(10s));
  ASSERT_EQ(at_a.status(), 200u);
  ASSERT_TRUE(ingester.wait_for_stored(stored_at_kill + 100, 20s));
  ingester.stop();
  EXPECT_TRUE(ingester.errors().empty()) << joined(ingester.errors());

  const std::vector<std::int64_t> expected = store_positions(a.port(), token_);
  ASSERT_FALSE(expected.empty());
  EXPECT_TRUE(at_a.wait_for_position(expected.back(), 20s))
      << "A's stream stopped at " << at_a.last() << "; the store ends at " << expected.back();
  at_a.stop();
  EXPECT_FALSE(at_b->malformed());
  EXPECT_FALSE(at_a.malformed());
  std::vector<std::int64_t> received = from_b;
  const std::vector<std::int64_t> from_a = at_a.positions();
  received.insert(received.end(), from_a.begin(), from_a.end());
  EXPECT_EQ(received, expected) << difference(received, expected) << " (" << from_b.size()
                                << " from B up to " << from_b.back() << ", " << from_a.size()
                                << " from A)";
}

// (3) The node running the audit consumer is killed with SIGKILL while events are ingested: the
// other node takes the role, and the log has one record per event and verifies.
TEST_F(ClusterNodes, KillingTheAuditLeaderHandsTheAuditLogToAnotherNode) {
  start_node("a");
  start_node("b");
  ASSERT_NO_FATAL_FAILURE(await_cluster_ready());
  HeraldNode* leader = leader_of("consumer:audit");
  ASSERT_NE(leader, nullptr);
  HeraldNode& survivor = *(leader == nodes_[0].get() ? nodes_[1] : nodes_[0]);
  Ingester ingester({survivor.port()}, token_);
  ASSERT_TRUE(wait_until([&] { return audit_total(survivor) >= 50; }, 20s, 50ms))
      << "the audit log did not grow: " << audit_total(survivor) << " records";

  leader->kill();
  ASSERT_TRUE(wait_until(
      [&] {
        const HttpReply reply = cluster_of(survivor);
        return reply.status == 200 && cluster_roles(reply.json())["consumer:audit"];
      },
      10s, 50ms))
      << "node " << survivor.id() << " did not take consumer:audit: " << cluster_of(survivor).body;
  const std::size_t stored_at_takeover = ingester.stored();
  ASSERT_TRUE(ingester.wait_for_stored(stored_at_takeover + 100, 20s));
  ingester.stop();
  EXPECT_TRUE(ingester.errors().empty()) << joined(ingester.errors());

  const std::vector<std::int64_t> expected = store_positions(survivor.port(), token_);
  const auto events = static_cast<std::int64_t>(expected.size());
  ASSERT_TRUE(wait_until([&] { return audit_total(survivor) >= events; }, 30s, 50ms))
      << "the audit log has " << audit_total(survivor) << " records for " << events << " events";

  // Every record, newest first, a page at a time.
  HttpClient client(survivor.port());
  std::vector<std::int64_t> audited;
  std::set<std::string> event_ids;
  std::string target = "/api/v1/audit?limit=1000";
  for (;;) {
    const HttpReply page = client.get(target, token_);
    ASSERT_EQ(page.status, 200u) << page.body;
    for (const auto& record : page.json().at("records").as_array()) {
      audited.push_back(record.at("position").to_number<std::int64_t>());
      event_ids.insert(std::string(record.at("event_id").as_string()));
    }
    const auto& next = page.json().at("next_before");
    if (next.is_null()) break;
    target = "/api/v1/audit?limit=1000&before=" + std::to_string(next.to_number<std::int64_t>());
  }
  std::sort(audited.begin(), audited.end());
  EXPECT_EQ(audited, expected) << difference(audited, expected);
  EXPECT_EQ(event_ids.size(), expected.size());

  const HttpReply verified = client.get("/api/v1/audit/verify", token_);
  ASSERT_EQ(verified.status, 200u) << verified.body;
  EXPECT_EQ(verified.json().at("ok"), true) << verified.body;
  EXPECT_EQ(verified.json().at("records").to_number<std::int64_t>(), events) << verified.body;
}

// (4) Three nodes deliver to the fake Discord API: every direct message once, none twice, and
// every delivery claimed once, however the nodes' workers share them.
TEST_F(ClusterNodes, ThreeNodesSendEveryNotificationExactlyOnce) {
  // Buckets large enough that no answer is a 429, so that every delivery takes one attempt.
  FakeDiscordProcess discord(fake_discord_binary, {"--port", "0", "--bucket-size", "100000"});
  const std::vector<std::string> discord_flags = {"--discord-api-base", discord.api_base(),
                                                  "--discord-bot-token", "fake-bot-token"};
  start_node("a", discord_flags);
  start_node("b", discord_flags);
  start_node("c", discord_flags);
  ASSERT_NO_FATAL_FAILURE(await_cluster_ready());

  constexpr int users = 8;
  constexpr int matches = 4;
  constexpr int expected = users * matches;
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (const auto& node : nodes_) clients.push_back(std::make_unique<HttpClient>(node->port()));
  std::string participants;
  for (int u = 1; u <= users; ++u) {
    const std::string user = std::to_string(500 + u);
    participants += (u > 1 ? "," : "") + user;
    const HttpReply created = clients[static_cast<std::size_t>(u) % 3]->post(
        "/api/v1/events", token_,
        R"({"event_type":"UserCreatedEvent","entity_type":"User","entity_id":)" + user +
            R"(,"user_id":-1,"discord_id":)" + std::to_string(1000500 + u) +
            R"(,"discord_username":"racer)" + user + R"("})");
    ASSERT_EQ(created.status, 201u) << created.body;
    const HttpReply preferences = clients[0]->send(
        bhttp::verb::put, "/api/v1/users/" + user + "/preferences", token_,
        R"({"rules":[{"kind":"match_scheduled","channel":"discord","organization_id":null,"enabled":true}],"muted":[]})");
    ASSERT_EQ(preferences.status, 200u) << preferences.body;
  }
  for (int m = 1; m <= matches; ++m) {
    const HttpReply scheduled = clients[static_cast<std::size_t>(m) % 3]->post(
        "/api/v1/events", token_,
        R"({"event_type":"MatchScheduledEvent","entity_type":"MatchSchedule","entity_id":)" +
            std::to_string(900 + m) +
            R"(,"user_id":5,"organization_id":7,"tournament_id":3,"scheduled_time":"2026-12-01T19:00:00Z","participant_ids":[)" +
            participants + "]}");
    ASSERT_EQ(scheduled.status, 201u) << scheduled.body;
  }

  // Every delivery sent, as the shared queue says.
  std::string deliveries;
  const bool all_sent = wait_until(
      [&] {
        const HttpReply reply =
            clients[0]->get("/api/v1/deliveries?channel=discord&limit=1000", token_);
        deliveries = reply.body;
        if (reply.status != 200) return false;
        const auto& items = reply.json().at("items").as_array();
        return items.size() == expected &&
               std::all_of(items.begin(), items.end(),
                           [](const auto& item) { return item.at("status") == "sent"; });
      },
      60s, 100ms);
  ASSERT_TRUE(all_sent) << "the deliveries are not all sent: " << deliveries;
  const HttpReply listed = clients[0]->get("/api/v1/deliveries?channel=discord&limit=1000", token_);
  for (const auto& item : listed.json().at("items").as_array()) {
    EXPECT_EQ(item.at("attempts"), 1) << "claimed more than once: " << boost::json::serialize(item);
  }

  // What Discord received: one message per user and match.
  HttpClient fake(discord.port());
  const HttpReply messages = fake.get("/_fake/messages");
  ASSERT_EQ(messages.status, 200u);
  std::map<std::pair<std::string, std::string>, int> received;
  std::set<std::string> channels;
  for (const auto& message : messages.json().as_array()) {
    if (message.at("kind") != "dm") continue;
    const std::string channel(message.at("channel_id").as_string());
    channels.insert(channel);
    ++received[{channel, std::string(message.at("content").as_string())}];
  }
  EXPECT_EQ(received.size(), static_cast<std::size_t>(expected)) << messages.body;
  EXPECT_EQ(channels.size(), static_cast<std::size_t>(users)) << messages.body;
  for (const auto& [message, count] : received) {
    EXPECT_EQ(count, 1) << "sent " << count << " times to channel " << message.first << ": "
                        << message.second;
  }

  // The nodes' own counts of what they sent add up to the same number.
  int sent_by_nodes = 0;
  std::string shares;
  const std::string counter =
      R"(herald_notify_deliveries_total{channel="discord",outcome="sent"} )";
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const HttpReply metrics = clients[i]->get("/metrics", token_);
    ASSERT_EQ(metrics.status, 200u);
    const std::size_t at = ("\n" + metrics.body).find("\n" + counter);
    const int sent =
        at == std::string::npos ? 0 : std::stoi(metrics.body.substr(at + counter.size()));
    sent_by_nodes += sent;
    shares += " " + nodes_[i]->id() + "=" + std::to_string(sent);
  }
  RecordProperty("sent_by_node", shares);
  EXPECT_EQ(sent_by_nodes, expected) << "sent by node:" << shares;
}

// (5) nats-server is killed and started again while the nodes ingest: ingestion goes on, and
// every node's stream ends up with every event once, in order.
TEST_F(ClusterNodes, EveryNodesStreamHasEveryEventAcrossANatsServerRestart) {
  start_node("a");
  start_node("b");
  start_node("c");
  ASSERT_NO_FATAL_FAILURE(await_cluster_ready());
  std::vector<std::unique_ptr<StreamRecorder>> streams;
  std::vector<std::uint16_t> ports;
  for (const auto& node : nodes_) {
    streams.push_back(
        std::make_unique<StreamRecorder>(node->port(), token_, "/api/v1/events/stream?after=0"));
    ports.push_back(node->port());
  }
  Ingester ingester(ports, token_);
  for (const auto& stream : streams) ASSERT_TRUE(stream->wait_for_count(30, 20s));

  NatsServer nats;
  nats.kill();
  const std::size_t stored_at_kill = ingester.stored();
  ASSERT_TRUE(ingester.wait_for_stored(stored_at_kill + 100, 20s))
      << "ingestion stalled while NATS was down: " << joined(ingester.errors());
  EXPECT_TRUE(wait_until(
      [&] {
        const HttpReply reply = cluster_of(*nodes_[0]);
        return reply.status == 200 && reply.json().at("nats").at("connected") == false;
      },
      10s, 50ms))
      << "node a still says it is connected: " << cluster_of(*nodes_[0]).body;
  nats.start();
  const std::size_t stored_at_restart = ingester.stored();
  ASSERT_TRUE(ingester.wait_for_stored(stored_at_restart + 100, 20s));
  ingester.stop();
  EXPECT_TRUE(ingester.errors().empty()) << joined(ingester.errors());

  const std::vector<std::int64_t> expected = store_positions(nodes_[0]->port(), token_);
  // The relay caught up: the stream holds every event.
  JetStreamClient jetstream(nats_url_);
  EXPECT_TRUE(
      wait_until([&] { return jetstream.message_count(stream_) == expected.size(); }, 20s, 50ms))
      << "the stream holds " << jetstream.message_count(stream_).value_or(0) << " of "
      << expected.size() << " events";
  for (std::size_t i = 0; i < streams.size(); ++i) {
    EXPECT_TRUE(streams[i]->wait_for_position(expected.back(), 30s))
        << "node " << nodes_[i]->id() << "'s stream stopped at " << streams[i]->last()
        << "; the store ends at " << expected.back();
    streams[i]->stop();
    EXPECT_FALSE(streams[i]->malformed()) << "node " << nodes_[i]->id();
    EXPECT_EQ(streams[i]->positions(), expected)
        << "node " << nodes_[i]->id() << ": " << difference(streams[i]->positions(), expected);
  }
}

// Without --nats a node is the single node it always was: its hub follows the store.
TEST_F(ClusterNodes, ANodeWithoutNatsFollowsTheStore) {
  HeraldNode& alone = start_node("alone", {}, false);
  std::string last;
  ASSERT_TRUE(wait_until(
      [&] {
        const HttpReply reply = cluster_of(alone);
        last = reply.body;
        return reply.status == 200 && cluster_roles(reply.json())["consumer:audit"];
      },
      10s, 50ms))
      << last;
  const HttpReply cluster = cluster_of(alone);
  EXPECT_EQ(cluster.json().at("node_id"), "alone") << cluster.body;
  EXPECT_EQ(cluster.json().at("feed"), "store") << cluster.body;
  EXPECT_TRUE(cluster.json().at("nats").is_null()) << cluster.body;
  EXPECT_EQ(cluster_roles(cluster.json()).count("relay:nats"), 0u) << cluster.body;

  StreamRecorder stream(alone.port(), token_, "/api/v1/events/stream?after=0");
  const HttpReply posted =
      HttpClient(alone.port()).post("/api/v1/events", token_, user_created_json(1));
  ASSERT_EQ(posted.status, 201u) << posted.body;
  EXPECT_TRUE(stream.wait_for_position(posted_positions(posted).front(), 10s));
}

// A --nats that is not a NATS URL stops the node at start, with a message naming the flag and
// the value.
class ClusterNodesRefuse : public ClusterNodes {
 protected:
  void expect_refused(const std::string& url) {
    const std::filesystem::path log = logs_.path() / "refused.log";
    ChildProcess node({herald_binary, "serve", "--store", database_->url(), "--listen",
                       "127.0.0.1:0", "--nats", url},
                      log.string());
    const std::optional<int> status = node.wait_exit(10s);
    ASSERT_TRUE(status.has_value())
        << "the node runs with --nats '" << url << "': " << node.output();
    EXPECT_NE(*status, 0);
    std::ifstream in(log);
    const std::string message((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    EXPECT_NE(message.find("--nats"), std::string::npos) << message;
    EXPECT_NE(message.find(url), std::string::npos) << message;
    EXPECT_EQ(node.output().find("listening on"), std::string::npos) << node.output();
  }
};

TEST_F(ClusterNodesRefuse, ANatsUrlWithAPortThatIsNotANumber) {
  expect_refused("nats://127.0.0.1:notaport");
}

TEST_F(ClusterNodesRefuse, ANatsUrlOfAnotherScheme) { expect_refused("http://127.0.0.1:4222"); }

}  // namespace
}  // namespace herald::cluster_test
