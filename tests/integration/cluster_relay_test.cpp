#include "herald/cluster/nats_relay.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>

#include "cluster_relay_fixture.hpp"
#include "cluster_test_support.hpp"
#include "herald/cluster/leader_lease.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/json.hpp"
#include "postgres_database.hpp"
#include "store_test_support.hpp"

namespace herald::cluster {
namespace {

using namespace std::chrono_literals;
using cluster_test::env;
using cluster_test::JetStreamClient;
using cluster_test::NatsServer;
using cluster_test::StreamMessage;
using cluster_test::wait_until;
using store_test::must;

std::unique_ptr<EventStore> sqlite_store(const store_test::TempDir& directory) {
  return must(open_store(
      {.location = directory.file("herald.db"), .catalog = &store_test::catalog_with_legacy()}));
}

TEST(NatsRelay, RejectsMalformedOptions) {
  const store_test::TempDir directory;
  const auto store = sqlite_store(directory);
  const auto error_field = [&](NatsRelayOptions options) {
    auto relay = NatsRelay::create(*store, std::move(options));
    EXPECT_FALSE(relay.has_value());
    if (relay) return std::string("(accepted)");
    EXPECT_EQ(relay.error().code, ErrorCode::invalid_argument);
    return relay.error().field;
  };
  EXPECT_EQ(error_field({.url = ""}), "url");
  EXPECT_EQ(error_field({.url = "http://127.0.0.1:4222"}), "url");
  EXPECT_EQ(error_field({.url = "not a url"}), "url");
  EXPECT_EQ(error_field({.url = "127.0.0.1:4222"}), "url");
  EXPECT_EQ(error_field({.url = "nats://127.0.0.1:notaport"}), "url");
  EXPECT_EQ(error_field({.url = "nats://127.0.0.1:70000"}), "url");
  EXPECT_EQ(error_field({.url = "nats://:4222"}), "url");
  EXPECT_EQ(error_field({.url = "nats://host name:4222"}), "url");
  EXPECT_EQ(error_field({.url = "nats://a:4222,ftp://b:4222"}), "url");
  EXPECT_EQ(error_field({.url = "nats://[::1:4222"}), "url");
  EXPECT_EQ(error_field({.url = "nats://" + std::string(5000, 'h')}), "url");
  EXPECT_EQ(error_field({.stream = ""}), "stream");
  EXPECT_EQ(error_field({.stream = "HERALD.EVENTS"}), "stream");
  EXPECT_EQ(error_field({.stream = "HERALD EVENTS"}), "stream");
  EXPECT_EQ(error_field({.stream = "EVENTS>"}), "stream");
  EXPECT_EQ(error_field({.stream = std::string(65, 'S')}), "stream");
  EXPECT_EQ(error_field({.subject_prefix = ""}), "subject_prefix");
  EXPECT_EQ(error_field({.subject_prefix = "herald..events"}), "subject_prefix");
  EXPECT_EQ(error_field({.subject_prefix = "herald.events."}), "subject_prefix");
  EXPECT_EQ(error_field({.subject_prefix = "herald.*"}), "subject_prefix");
  EXPECT_EQ(error_field({.subject_prefix = "herald.>"}), "subject_prefix");
  EXPECT_EQ(error_field({.subject_prefix = "herald events"}), "subject_prefix");
  EXPECT_EQ(error_field({.duplicate_window = 999ms}), "duplicate_window");
  EXPECT_EQ(error_field({.request_timeout = 0ms}), "request_timeout");
  EXPECT_EQ(error_field({.consumer_name = ""}), "consumer_name");
}

TEST(NatsRelay, AcceptsEveryFormOfServerUrl) {
  const store_test::TempDir directory;
  const auto store = sqlite_store(directory);
  for (const char* url : {"nats://127.0.0.1:1", "nats://localhost", "tls://nats.example.com:4443",
                          "nats://herald:s3cret@127.0.0.1:1", "nats://[::1]:1",
                          "nats://127.0.0.1:1,nats://127.0.0.2:1"}) {
    auto relay = NatsRelay::create(*store, {.url = url});
    EXPECT_TRUE(relay.has_value()) << url << ": " << relay.error().message;
  }
}

TEST(NatsRelay, AServerThatIsDownIsNoErrorAtCreation) {
  const store_test::TempDir directory;
  const auto store = sqlite_store(directory);
  // Port 1 on loopback: nothing listens; the client keeps trying in the background.
  auto relay = NatsRelay::create(*store, {.url = "nats://127.0.0.1:1"});
  ASSERT_TRUE(relay.has_value()) << relay.error().message;
  EXPECT_FALSE((*relay)->running());
}

TEST(NatsRelay, SubjectNamesTheOrganizationAndTheEventType) {
  const EventPtr organization_event = store_test::tournament_created(1, 42);
  EXPECT_EQ(relay_subject("herald.events", organization_event.ref()),
            "herald.events.42.TournamentCreatedEvent");
  const EventPtr system_event = store_test::user_created(9);
  EXPECT_EQ(relay_subject("herald.events", system_event.ref()),
            "herald.events.none.UserCreatedEvent");
  EXPECT_EQ(relay_subject("a.b", system_event.ref()), "a.b.none.UserCreatedEvent");
}

TEST(NatsRelay, PublishesTheEventsOfASqliteStoreToo) {
  const auto nats = env("HERALD_TEST_NATS_URL");
  if (!nats) GTEST_SKIP() << "run under scripts/with_nats.sh";
  const store_test::TempDir directory;
  const auto store = sqlite_store(directory);
  const std::string stream = "RELAY_SQLITE_" + std::to_string(::getpid());
  const std::string prefix = "herald.sqlite" + std::to_string(::getpid());
  std::int64_t last = 0;
  for (int i = 1; i <= 5; ++i) {
    last = must(store->append(store_test::tournament_created(i, 7).ref())).position;
  }
  auto relay =
      must(NatsRelay::create(*store, {.url = *nats, .stream = stream, .subject_prefix = prefix}));
  ASSERT_TRUE(relay->start());
  ASSERT_TRUE(relay->wait_for_position(last, 20s));
  JetStreamClient client(*nats);
  const auto messages = client.read(stream, prefix + ".>", 5);
  ASSERT_EQ(messages.size(), 5U);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(messages[i].position, std::to_string(i + 1));
    EXPECT_EQ(messages[i].subject, prefix + ".7.TournamentCreatedEvent");
  }
}

TEST_F(NatsRelayServers, PublishesEveryEventOnceInPositionOrderWithSubjectAndHeaders) {
  const auto positions = append(60);
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  ASSERT_TRUE(relay->wait_for_position(positions.back(), 20s)) << "the relay did not catch up";
  // Events appended while it runs follow.
  const auto more = append(15);
  ASSERT_TRUE(relay->wait_for_position(more.back(), 20s));

  const auto messages = read_stream(75);
  expect_stream_matches_store(messages);
  EXPECT_EQ(relay->published(), 75U);
  EXPECT_EQ(relay->duplicates(), 0U);
  EXPECT_EQ(client_->duplicate_window(stream_), std::chrono::minutes(10));
  EXPECT_EQ(must(consumer_status(*store_, "nats-relay")).checkpoint, more.back())
      << "the checkpoint follows the acknowledged publishes";
}

TEST_F(NatsRelayServers, ARestartedRelayRepublishesNothingAndMissesNothing) {
  const auto first = append(20);
  {
    auto relay = make_relay();
    ASSERT_TRUE(relay->start());
    ASSERT_TRUE(relay->wait_for_position(first.back(), 20s));
    relay->stop();
  }
  // As if the node had crashed after publishing and before saving its checkpoint.
  must(store_->save_checkpoint("nats-relay", first[4]));
  const auto second = append(10);

  auto restarted = make_relay();
  ASSERT_TRUE(restarted->start());
  ASSERT_TRUE(restarted->wait_for_position(second.back(), 20s));
  EXPECT_EQ(restarted->skipped(), 15U) << "events the stream held already are skipped";
  EXPECT_EQ(restarted->published(), 10U);
  EXPECT_EQ(restarted->duplicates(), 0U);
  expect_stream_matches_store(read_stream(30));
}

TEST_F(NatsRelayServers, StartStopStartOnOneObjectResumesWhereTheStreamIs) {
  auto relay = make_relay();
  const auto first = append(5);
  ASSERT_TRUE(relay->start());
  EXPECT_FALSE(relay->start()) << "a second start must be refused";
  ASSERT_TRUE(relay->wait_for_position(first.back(), 20s));
  relay->stop();
  EXPECT_FALSE(relay->running());
  const auto second = append(5);
  ASSERT_TRUE(relay->start());
  ASSERT_TRUE(relay->wait_for_position(second.back(), 20s));
  EXPECT_EQ(relay->published(), 10U);
  expect_stream_matches_store(read_stream(10));
}

TEST_F(NatsRelayServers, AStreamWrittenBySomethingElseIsRefusedWithAClearError) {
  client_->add_stream(stream_, prefix_ + ".>");
  client_->publish(prefix_ + ".none.Foreign", "{}", {{"Herald-Position", "not-a-number"}});
  const auto positions = append(3);
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  ASSERT_TRUE(wait_until(
      [&] {
        for (const std::string& error : errors()) {
          if (error.find("Herald-Position header is 'not-a-number'") != std::string::npos) {
            return true;
          }
        }
        return false;
      },
      10s))
      << "no error names the foreign header";
  EXPECT_FALSE(relay->wait_for_position(positions.back(), 300ms)) << "nothing is published";
  EXPECT_EQ(relay->published(), 0U);
  EXPECT_EQ(client_->message_count(stream_), 1U);
}

TEST_F(NatsRelayServers, TwoNodesRelayingUnderALeasePublishEveryEventOnceAcrossAHandover) {
  // Two nodes: each its own store connection, relay and lease on the relay's role.
  struct Node {
    std::unique_ptr<EventStore> store;
    std::unique_ptr<NatsRelay> relay;
    std::unique_ptr<LeaderLease> lease;
  };
  const std::string role = "relay:" + stream_;
  std::vector<Node> nodes(2);
  for (Node& node : nodes) {
    node.store = must(
        open_store({.location = database_->url(), .catalog = &store_test::catalog_with_legacy()}));
    node.relay = must(NatsRelay::create(*node.store, options()));
    NatsRelay* relay = node.relay.get();
    node.lease = must(LeaderLease::create({.location = database_->url(),
                                           .role = role,
                                           .retry_interval = 100ms,
                                           .on_acquired =
                                               [relay] {
                                                 if (auto started = relay->start(); !started) {
                                                   ADD_FAILURE() << started.error().message;
                                                 }
                                               },
                                           .on_lost = [relay] { relay->stop(); }}));
    must(node.lease->start());
  }
  ASSERT_TRUE(
      wait_until([&] { return nodes[0].lease->is_leader() || nodes[1].lease->is_leader(); }, 5s));
  const std::size_t first = nodes[0].lease->is_leader() ? 0 : 1;
  Node& leader = nodes[first];
  Node& follower = nodes[1 - first];

  const auto before = append(40);
  ASSERT_TRUE(leader.relay->wait_for_position(before.back(), 20s));
  EXPECT_FALSE(follower.relay->running()) << "the follower relays nothing";

  // The leader's node goes away while events keep coming; the follower takes over.
  std::thread appender([&] { append(40); });
  leader.lease->stop();
  EXPECT_FALSE(leader.relay->running());
  ASSERT_TRUE(wait_until([&] { return follower.lease->is_leader(); }, 5s));
  appender.join();
  const auto head = must(store_->head());
  ASSERT_TRUE(wait_until([&] { return follower.relay->wait_for_position(head, 100ms); }, 20s));

  expect_stream_matches_store(read_stream(80));
  EXPECT_EQ(leader.relay->published() + follower.relay->published(), 80U);
  EXPECT_EQ(leader.relay->duplicates() + follower.relay->duplicates(), 0U);
  for (Node& node : nodes) node.lease->stop();
}

TEST_F(NatsRelayServers, TwoRelaysRunningAtOnceKeepTheStreamInPositionOrder) {
  // What the window between a lost lease and its holder noticing allows: two relays on one store
  // and one stream at the same time. Each publishes in position order and only after the previous
  // event was acknowledged, and the duplicate window drops the other's repeats.
  auto other_store = must(
      open_store({.location = database_->url(), .catalog = &store_test::catalog_with_legacy()}));
  auto first = make_relay();
  auto second = must(NatsRelay::create(*other_store, options()));
  ASSERT_TRUE(first->start());
  ASSERT_TRUE(second->start());
  std::int64_t last = 0;
  for (int round = 0; round < 10; ++round) last = append(10).back();
  ASSERT_TRUE(first->wait_for_position(last, 30s));
  ASSERT_TRUE(second->wait_for_position(last, 30s));
  expect_stream_matches_store(read_stream(100));
  EXPECT_EQ(first->published() + second->published(), 100U);
}

TEST_F(NatsRelayServers, KillingTheRelaysProcessMidStreamLosesAndRepeatsNothing) {
  cluster_test::ChildProcess node(
      {HERALD_RELAY_NODE, database_->url(), nats_url_, stream_, prefix_});
  ASSERT_TRUE(node.wait_for_line("leader", 10s))
      << "the relay node did not lead; its output: " << node.output();

  // This process's relay waits for the lease the node holds.
  auto relay = make_relay();
  auto lease = must(LeaderLease::create({.location = database_->url(),
                                         .role = "relay:" + stream_,
                                         .retry_interval = 100ms,
                                         .on_acquired =
                                             [&relay] {
                                               if (auto started = relay->start(); !started) {
                                                 ADD_FAILURE() << started.error().message;
                                               }
                                             },
                                         .on_lost = [&relay] { relay->stop(); }}));
  must(lease->start());

  std::thread appender([&] {
    for (int i = 0; i < 200; ++i) {
      append(1);
      std::this_thread::sleep_for(2ms);
    }
  });
  // Kill the node while it is relaying: some events are in the stream, more are coming.
  const bool relaying =
      wait_until([&] { return client_->message_count(stream_).value_or(0) >= 40; }, 20s);
  EXPECT_EQ(relay->published(), 0U) << "only the leader relays";
  node.kill();
  appender.join();
  ASSERT_TRUE(relaying) << "the node published nothing; its output: " << node.output();

  ASSERT_TRUE(wait_until([&] { return lease->is_leader(); }, 5s)) << "no takeover";
  const auto head = must(store_->head());
  ASSERT_TRUE(wait_until([&] { return relay->wait_for_position(head, 100ms); }, 20s));
  expect_stream_matches_store(read_stream(200));
  EXPECT_GT(relay->published(), 0U) << "the takeover relay published the rest";
  lease->stop();
}

// Runs last in the suite's order: it kills and restarts the one nats-server of the run.
TEST_F(NatsRelayServers, NatsServerRestartedDuringAppendsEveryEventArrivesOnce) {
  NatsServer server;
  auto relay = make_relay();
  ASSERT_TRUE(relay->start());
  const auto before = append(30);
  ASSERT_TRUE(relay->wait_for_position(before.back(), 20s));

  // Appends go on in a thread of their own while the server is killed and started again.
  std::atomic<int> appended{0};
  std::atomic<bool> appending{true};
  std::vector<std::int64_t> during;
  std::thread appender([&] {
    for (int i = 0; i < 150; ++i) {
      during.push_back(append(1).front());
      ++appended;
      std::this_thread::sleep_for(5ms);
    }
    appending = false;
  });
  ASSERT_TRUE(wait_until([&] { return appended >= 20; }, 20s));
  server.kill();
  const int at_kill = appended;
  // Ingestion goes on while NATS is down: the store is the truth.
  EXPECT_TRUE(wait_until([&] { return appended >= at_kill + 40; }, 20s))
      << "appends stalled while NATS was down";
  // The relay's publishes fail while the server is down (a short outage could be bridged by the
  // client's reconnect buffer within one publish timeout: wait until one has failed).
  EXPECT_TRUE(wait_until([&] { return !errors().empty(); }, 20s)) << "the outage is reported";
  server.start();
  appender.join();
  ASSERT_FALSE(appending);

  EXPECT_TRUE(relay->wait_for_position(during.back(), 60s))
      << "the relay did not catch up after the restart";
  ASSERT_TRUE(wait_until([&] { return client_->message_count(stream_).has_value(); }, 10s));
  expect_stream_matches_store(read_stream(180));
}

}  // namespace
}  // namespace herald::cluster
