#pragma once

// The fixture of the tests that run a relay (and a feed) against the servers the wrappers start:
// a fresh PostgreSQL database and a JetStream stream of its own per test.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster_test_support.hpp"
#include "herald/cluster/nats_relay.hpp"
#include "herald/json.hpp"
#include "postgres_database.hpp"
#include "store_test_support.hpp"

namespace herald::cluster {

// A fresh PostgreSQL database and a stream of its own per test, on the servers the wrappers run.
class NatsRelayServers : public ::testing::Test {
 protected:
  using StreamMessage = cluster_test::StreamMessage;
  using JetStreamClient = cluster_test::JetStreamClient;

  void SetUp() override {
    using cluster_test::env;
    using store_test::must;
    const auto pg = env("HERALD_TEST_PG_URL");
    const auto nats = env("HERALD_TEST_NATS_URL");
    if (!pg || !nats) {
      GTEST_SKIP() << "run under scripts/with_postgres.sh scripts/with_nats.sh";
    }
    nats_url_ = *nats;
    database_ = std::make_unique<test::PostgresDatabase>(*pg, "herald_relay");
    store_ = must(
        open_store({.location = database_->url(), .catalog = &store_test::catalog_with_legacy()}));
    static std::atomic<int> counter{0};
    const std::string suffix = std::to_string(::getpid()) + "_" + std::to_string(++counter);
    stream_ = "RELAY_TEST_" + suffix;
    prefix_ = "herald.test" + suffix + ".events";
    client_ = std::make_unique<JetStreamClient>(nats_url_);
  }

  NatsRelayOptions options() {
    using namespace std::chrono_literals;
    return {.url = nats_url_,
            .stream = stream_,
            .subject_prefix = prefix_,
            .request_timeout = 500ms,
            .backoff_base = 20ms,
            .backoff_max = 200ms,
            .on_error = [this](const Error& error) {
              std::scoped_lock lock(errors_mutex_);
              errors_.push_back(error.message);
            }};
  }

  std::unique_ptr<NatsRelay> make_relay() {
    auto relay = NatsRelay::create(*store_, options());
    if (!relay) throw std::runtime_error(relay.error().message);
    return std::move(*relay);
  }

  // Appends `count` events alternating between two organizations and none; returns their
  // positions.
  std::vector<std::int64_t> append(int count) {
    using store_test::must;
    std::vector<std::int64_t> positions;
    for (int i = 0; i < count; ++i) {
      const int n = next_entity_++;
      const EventPtr event =
          n % 3 == 0 ? store_test::user_created(n) : store_test::tournament_created(n, 1 + n % 3);
      positions.push_back(must(store_->append(event.ref())).position);
    }
    return positions;
  }

  std::vector<StreamMessage> read_stream(std::size_t count) {
    return client_->read(stream_, prefix_ + ".>", count);
  }

  // Every stored event exactly once, in position order, with its subject, headers and body.
  void expect_stream_matches_store(const std::vector<StreamMessage>& messages) {
    using store_test::must;
    const auto stored = must(store_->read_forward(0, 100000));
    std::string got;
    for (const StreamMessage& message : messages) got += message.position + " ";
    ASSERT_EQ(messages.size(), stored.size())
        << "the stream must hold every event once; it holds positions " << got;
    std::set<std::string> ids;
    for (std::size_t i = 0; i < stored.size(); ++i) {
      const EventRef event = stored[i].event;
      const StreamMessage& message = messages[i];
      EXPECT_EQ(message.position, std::to_string(stored[i].position)) << "message " << i;
      EXPECT_EQ(message.message_id, event->event_id.to_string()) << "message " << i;
      EXPECT_EQ(message.subject, relay_subject(prefix_, event)) << "message " << i;
      EXPECT_EQ(message.body, encode_event(event)) << "message " << i;
      EXPECT_TRUE(ids.insert(message.message_id).second) << "duplicate " << message.message_id;
    }
  }

  std::vector<std::string> errors() {
    std::scoped_lock lock(errors_mutex_);
    return errors_;
  }

  std::string nats_url_;
  std::unique_ptr<test::PostgresDatabase> database_;
  std::unique_ptr<EventStore> store_;
  std::string stream_;
  std::string prefix_;
  std::unique_ptr<JetStreamClient> client_;
  int next_entity_ = 1;
  std::mutex errors_mutex_;
  std::vector<std::string> errors_;
};

}  // namespace herald::cluster
