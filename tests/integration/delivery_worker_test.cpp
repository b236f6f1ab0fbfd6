#include "herald/notify/delivery_worker.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "herald/domain/events.hpp"
#include "herald/domain/notification_rules.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event_store.hpp"
#include "herald/metrics.hpp"
#include "herald/notify/notification_consumer.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/notify/router.hpp"
#include "polling.hpp"
#include "postgres_database.hpp"

namespace {

using herald::test::eventually;

using herald::EventPtr;
using herald::Timestamp;
using herald::domain::UserCreatedEvent;
using herald::notify::Channel;
using herald::notify::DeliveryQuery;
using herald::notify::DeliveryRecord;
using herald::notify::DeliveryStatus;
using herald::notify::DeliveryWorker;
using herald::notify::DeliveryWorkerOptions;
using herald::notify::NewDelivery;
using herald::notify::NotificationStore;
using herald::notify::RoutedEvent;
using herald::notify::SendOutcome;
using herald::notify::SendRequest;
using herald::notify::SendResult;
using herald::test::backend_name;
using herald::test::PostgresDatabase;
using namespace std::chrono_literals;

// --- test doubles
// ---------------------------------------------------------------------------------

/// A sender that answers from a script (then `sent`), counts the attempts per delivery and can
/// hold every attempt until released, as a provider that does not answer.
class ScriptedSender final : public herald::notify::Sender {
 public:
  explicit ScriptedSender(Channel channel) : channel_(channel) {}
  Channel channel() const noexcept override { return channel_; }

  SendResult send(const SendRequest& request) override {
    std::unique_lock lock(mutex_);
    ++sends_[request.delivery.id];
    ++entered_;
    if (request.endpoint != nullptr) endpoints_seen_.push_back(request.endpoint->id);
    changed_.notify_all();
    changed_.wait(lock, [&] { return !held_; });
    if (script_.empty()) return SendResult{.outcome = SendOutcome::sent, .status_code = 200};
    SendResult result = script_.front();
    script_.pop_front();
    return result;
  }

  /// The next attempts answer these, in order.
  void script(std::vector<SendResult> results) {
    std::lock_guard lock(mutex_);
    script_.insert(script_.end(), results.begin(), results.end());
  }
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  /// Waits until `count` attempts have begun.
  bool wait_entered(int count, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return entered_ >= count; });
  }
  int sends(std::int64_t delivery_id) const {
    std::lock_guard lock(mutex_);
    auto found = sends_.find(delivery_id);
    return found == sends_.end() ? 0 : found->second;
  }
  std::map<std::int64_t, int> all_sends() const {
    std::lock_guard lock(mutex_);
    return sends_;
  }
  int total() const {
    std::lock_guard lock(mutex_);
    return entered_;
  }
  std::vector<std::int64_t> endpoints_seen() const {
    std::lock_guard lock(mutex_);
    return endpoints_seen_;
  }

 private:
  Channel channel_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<SendResult> script_;
  std::map<std::int64_t, int> sends_;
  std::vector<std::int64_t> endpoints_seen_;
  int entered_ = 0;
  bool held_ = false;
};

/// A sender that breaks its promise not to throw.
class ThrowingSender final : public herald::notify::Sender {
 public:
  Channel channel() const noexcept override { return Channel::email; }
  SendResult send(const SendRequest&) override { throw std::runtime_error("boom"); }
};

/// A clock the test moves by hand, shared by every worker of a test.
class TestClock {
 public:
  TestClock() : now_(std::make_shared<std::atomic<std::int64_t>>(0)) {
    // Ahead of the wall clock, so that deliveries the store creates now are due at once.
    now_->store((herald::now() + 1min).time_since_epoch().count());
  }
  Timestamp now() const { return Timestamp{std::chrono::microseconds{now_->load()}}; }
  void advance(std::chrono::microseconds by) { now_->fetch_add(by.count()); }
  std::function<Timestamp()> function() const {
    return [now = now_] { return Timestamp{std::chrono::microseconds{now->load()}}; };
  }

 private:
  std::shared_ptr<std::atomic<std::int64_t>> now_;
};

SendResult transient(int status, std::optional<std::chrono::milliseconds> retry_after = {}) {
  return SendResult{.outcome = SendOutcome::transient,
                    .status_code = status,
                    .error = "HTTP " + std::to_string(status),
                    .retry_after = retry_after};
}

SendResult permanent(int status) {
  return SendResult{.outcome = SendOutcome::permanent,
                    .status_code = status,
                    .error = "HTTP " + std::to_string(status)};
}

EventPtr user_created(std::int64_t user, std::optional<std::int64_t> organization = {}) {
  return EventPtr::make(herald::make<UserCreatedEvent>(
      {.entity_id = user, .user_id = herald::system_actor, .organization_id = organization},
      {.discord_id = 1000 + user, .discord_username = "user" + std::to_string(user)}));
}

// --- fixture
// --------------------------------------------------------------------------------------

/// A fresh database per test (a SQLite file or a PostgreSQL database) with the event store and
/// the notification tables opened on it.
class NotifyDelivery : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      const char* url = std::getenv("HERALD_TEST_PG_URL");
      if (url == nullptr) {
        GTEST_SKIP() << "HERALD_TEST_PG_URL is not set; run the tests through "
                        "scripts/with_postgres.sh to test against PostgreSQL";
      }
      postgres_ = std::make_unique<PostgresDatabase>(url, "herald_delivery");
      location_ = postgres_->url();
    } else {
      static std::atomic<int> counter{0};
      directory_ =
          std::filesystem::temp_directory_path() /
          ("herald-delivery-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
      std::filesystem::remove_all(directory_);
      std::filesystem::create_directories(directory_);
      location_ = (directory_ / "herald.db").string();
    }
    auto events = herald::open_store({.location = location_,
                                      .catalog = &herald::domain::platform_catalog(),
                                      .sqlite_poll_interval = 20ms});
    ASSERT_TRUE(events) << events.error().message;
    events_ = std::move(*events);
    notifications_ = open_notifications();
    ASSERT_NE(notifications_, nullptr);
  }

  void TearDown() override {
    notifications_.reset();
    events_.reset();
    postgres_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  std::unique_ptr<NotificationStore> open_notifications() {
    auto store = herald::notify::open_notification_store(location_);
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  /// Appends an event and creates one delivery on `channel` to each of `recipients` for it;
  /// returns their ids in recipient order.
  std::vector<std::int64_t> add_deliveries(Channel channel,
                                           const std::vector<std::string>& recipients,
                                           std::optional<std::int64_t> organization = {}) {
    const EventPtr event = user_created(++next_user_, organization);
    auto appended = events_->append(event);
    EXPECT_TRUE(appended) << appended.error().message;
    if (!appended) return {};
    const herald::EventId event_id = event->event_id;
    RoutedEvent routed{.position = appended->position, .event_id = event_id};
    for (const std::string& recipient : recipients) {
      routed.deliveries.push_back(NewDelivery{
          .event_id = event_id,
          .position = appended->position,
          .channel = channel,
          .recipient = recipient,
          .user_id = std::nullopt,
          .organization_id = organization,
          .kind = "welcome",
          .payload = R"({"discord_id":"1234","title":"Hello","markdown":"Hello","link":""})"});
    }
    auto applied =
        notifications_->apply_routing(std::span<const RoutedEvent>(&routed, 1), "delivery-test");
    EXPECT_TRUE(applied) << applied.error().message;
    std::vector<std::int64_t> ids;
    auto listed =
        notifications_->list_deliveries(DeliveryQuery{.event_id = event_id, .limit = 1000});
    EXPECT_TRUE(listed) << listed.error().message;
    if (!listed) return ids;
    for (const std::string& recipient : recipients) {
      for (const DeliveryRecord& delivery : *listed) {
        if (delivery.recipient == recipient && delivery.channel == channel) {
          ids.push_back(delivery.id);
        }
      }
    }
    EXPECT_EQ(ids.size(), recipients.size());
    return ids;
  }

  std::int64_t add_delivery(Channel channel = Channel::discord,
                            const std::string& recipient = "user:1",
                            std::optional<std::int64_t> organization = {}) {
    auto ids = add_deliveries(channel, {recipient}, organization);
    return ids.empty() ? 0 : ids.front();
  }

  DeliveryRecord delivery(std::int64_t id) {
    auto found = notifications_->get_delivery(id);
    EXPECT_TRUE(found) << found.error().message;
    return found ? *found : DeliveryRecord{};
  }

  std::vector<herald::notify::DeliveryAttempt> attempts(std::int64_t id) {
    auto found = notifications_->list_attempts(id);
    EXPECT_TRUE(found) << found.error().message;
    return found ? *found : std::vector<herald::notify::DeliveryAttempt>{};
  }

  /// Options for a worker on the test clock with no jitter and one sender.
  DeliveryWorkerOptions options(const std::string& id, herald::notify::Sender* sender) {
    DeliveryWorkerOptions options;
    options.worker_id = id;
    options.threads = 2;
    options.clock = clock_.function();
    options.retry.jitter = 0;
    options.jitter_seed = 1;
    if (sender != nullptr) options.senders[sender->channel()] = sender;
    return options;
  }

  std::unique_ptr<DeliveryWorker> make_worker(NotificationStore& store,
                                              DeliveryWorkerOptions worker_options) {
    auto worker = DeliveryWorker::create(store, std::move(worker_options));
    EXPECT_TRUE(worker) << worker.error().message;
    return worker ? std::move(*worker) : nullptr;
  }

  std::string location_;
  std::unique_ptr<herald::EventStore> events_;
  std::unique_ptr<NotificationStore> notifications_;
  TestClock clock_;
  std::int64_t next_user_ = 0;

 private:
  std::filesystem::path directory_;
  std::unique_ptr<PostgresDatabase> postgres_;
};

INSTANTIATE_TEST_SUITE_P(Backends, NotifyDelivery, ::testing::Values("sqlite", "postgres"),
                         backend_name);

// --- one attempt at a time (run_once on the test clock) ------------------------------------------

TEST_P(NotifyDelivery, SendsADueDeliveryAndRecordsTheAttempt) {
  const std::int64_t id = add_delivery();
  ScriptedSender sender(Channel::discord);
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);

  auto round = worker->run_once();
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round->claimed, 1u);
  EXPECT_EQ(round->sent, 1u);
  EXPECT_EQ(sender.sends(id), 1);
  const DeliveryRecord sent = delivery(id);
  EXPECT_EQ(sent.status, DeliveryStatus::sent);
  EXPECT_EQ(sent.attempts, 1);
  const auto rows = attempts(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].attempt, 1);
  EXPECT_EQ(rows[0].outcome, DeliveryStatus::sent);
  EXPECT_EQ(rows[0].status_code, 200);
  EXPECT_EQ(rows[0].started_at, clock_.now());

  auto again = worker->run_once();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->claimed, 0u);
  EXPECT_EQ(sender.sends(id), 1);
}

TEST_P(NotifyDelivery, RetriesATransientFailureAndSendsOnTheSecondAttempt) {
  const std::int64_t id = add_delivery();
  ScriptedSender sender(Channel::discord);
  sender.script({transient(503)});
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);

  auto first = worker->run_once();
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->retrying, 1u);
  const DeliveryRecord retrying = delivery(id);
  EXPECT_EQ(retrying.status, DeliveryStatus::retrying);
  EXPECT_EQ(retrying.next_attempt_at, clock_.now() + 10s);
  EXPECT_EQ(retrying.last_status_code, 503);

  // Not before the policy's 10 s.
  clock_.advance(9s);
  auto early = worker->run_once();
  ASSERT_TRUE(early) << early.error().message;
  EXPECT_EQ(early->claimed, 0u);

  clock_.advance(1s);
  auto second = worker->run_once();
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->sent, 1u);
  EXPECT_EQ(sender.sends(id), 2);
  const DeliveryRecord sent = delivery(id);
  EXPECT_EQ(sent.status, DeliveryStatus::sent);
  EXPECT_EQ(sent.attempts, 2);
  const auto rows = attempts(id);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].attempt, 1);
  EXPECT_EQ(rows[0].outcome, DeliveryStatus::retrying);
  EXPECT_EQ(rows[0].status_code, 503);
  EXPECT_EQ(rows[0].error, "HTTP 503");
  EXPECT_EQ(rows[1].attempt, 2);
  EXPECT_EQ(rows[1].outcome, DeliveryStatus::sent);
}

TEST_P(NotifyDelivery, HonoursRetryAfterLongerThanTheScheduledDelay) {
  const std::int64_t id = add_delivery();
  ScriptedSender sender(Channel::discord);
  sender.script({transient(429, 90s)});
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(worker->run_once());
  EXPECT_EQ(delivery(id).next_attempt_at, clock_.now() + 90s);
}

TEST_P(NotifyDelivery, DiesAfterExactlySixTransientFailures) {
  const std::int64_t id = add_delivery();
  ScriptedSender sender(Channel::discord);
  sender.script(std::vector<SendResult>(10, transient(500)));
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);

  const std::vector<std::chrono::seconds> waits = {10s, 60s, 600s, 3600s, 21600s};
  for (std::size_t i = 0; i < 5; ++i) {
    auto round = worker->run_once();
    ASSERT_TRUE(round) << round.error().message;
    ASSERT_EQ(round->retrying, 1u) << "attempt " << i + 1;
    EXPECT_EQ(delivery(id).next_attempt_at, clock_.now() + waits[i]);
    clock_.advance(waits[i]);
  }
  auto last = worker->run_once();
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(last->dead, 1u);

  clock_.advance(std::chrono::hours{24 * 30});
  auto after = worker->run_once();
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->claimed, 0u);

  EXPECT_EQ(sender.sends(id), 6);
  const DeliveryRecord dead = delivery(id);
  EXPECT_EQ(dead.status, DeliveryStatus::dead);
  EXPECT_EQ(dead.attempts, 6);
  const auto rows = attempts(id);
  ASSERT_EQ(rows.size(), 6u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(rows[i].outcome, DeliveryStatus::retrying);
  EXPECT_EQ(rows[5].outcome, DeliveryStatus::dead);
}

TEST_P(NotifyDelivery, FailsAPermanentErrorAfterOneAttempt) {
  const std::int64_t id = add_delivery();
  ScriptedSender sender(Channel::discord);
  sender.script({permanent(403)});
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);
  auto round = worker->run_once();
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round->failed, 1u);
  clock_.advance(std::chrono::hours{24});
  ASSERT_TRUE(worker->run_once());
  EXPECT_EQ(sender.sends(id), 1);
  const DeliveryRecord failed = delivery(id);
  EXPECT_EQ(failed.status, DeliveryStatus::failed);
  EXPECT_EQ(failed.attempts, 1);
  EXPECT_EQ(failed.last_error, "HTTP 403");
  EXPECT_EQ(failed.last_status_code, 403);
}

TEST_P(NotifyDelivery, RetriesAChannelWithoutASenderAndSaysWhy) {
  const std::int64_t id = add_delivery(Channel::email, "user:1");
  ScriptedSender discord(Channel::discord);
  auto worker = make_worker(*notifications_, options("w1", &discord));
  ASSERT_NE(worker, nullptr);
  auto round = worker->run_once();
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round->retrying, 1u);
  const DeliveryRecord retrying = delivery(id);
  EXPECT_EQ(retrying.status, DeliveryStatus::retrying);
  EXPECT_EQ(retrying.last_error, "no sender is configured for channel 'email' on worker w1");
  EXPECT_EQ(discord.total(), 0);
}

TEST_P(NotifyDelivery, RetriesAnAttemptWhoseSenderThrew) {
  const std::int64_t id = add_delivery(Channel::email, "user:1");
  ThrowingSender sender;
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);
  auto round = worker->run_once();
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round->retrying, 1u);
  EXPECT_EQ(delivery(id).last_error, "the sender threw: boom");
}

TEST_P(NotifyDelivery, GoneFailsTheDeliveryAndDisablesTheEndpoint) {
  auto endpoint = notifications_->create_endpoint(7, "http://127.0.0.1:9/hook", {});
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  const auto ids =
      add_deliveries(Channel::webhook, {"endpoint:" + std::to_string(endpoint->id)}, 7);
  ASSERT_EQ(ids.size(), 1u);
  ScriptedSender sender(Channel::webhook);
  sender.script(
      {SendResult{.outcome = SendOutcome::gone, .status_code = 410, .error = "HTTP 410"}});
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);
  auto round = worker->run_once();
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round->failed, 1u);
  EXPECT_EQ(sender.endpoints_seen(), std::vector<std::int64_t>{endpoint->id});
  EXPECT_EQ(delivery(ids[0]).status, DeliveryStatus::failed);
  auto disabled = notifications_->get_endpoint(endpoint->id);
  ASSERT_TRUE(disabled) << disabled.error().message;
  EXPECT_FALSE(disabled->active);
  EXPECT_EQ(disabled->disabled_reason, "410 Gone");
}

TEST_P(NotifyDelivery, FailsAWebhookToAMalformedOrUnknownEndpointWithoutSending) {
  const auto ids = add_deliveries(Channel::webhook, {"endpoint:x", "endpoint:999999", "org:7"}, 7);
  ASSERT_EQ(ids.size(), 3u);
  ScriptedSender sender(Channel::webhook);
  auto worker = make_worker(*notifications_, options("w1", &sender));
  ASSERT_NE(worker, nullptr);
  auto round = worker->run_once();
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round->failed, 3u);
  EXPECT_EQ(sender.total(), 0);
  EXPECT_EQ(delivery(ids[0]).last_error,
            "recipient 'endpoint:x' does not name a webhook endpoint (expected endpoint:<id>)");
  EXPECT_EQ(delivery(ids[1]).last_error, "endpoint 999999 no longer exists");
  EXPECT_EQ(delivery(ids[2]).last_error,
            "recipient 'org:7' does not name a webhook endpoint (expected endpoint:<id>)");
}

TEST_P(NotifyDelivery, ARunOfFailuresAtTheThresholdDisablesTheEndpoint) {
  auto endpoint = notifications_->create_endpoint(7, "http://127.0.0.1:9/hook", {});
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  const std::string recipient = "endpoint:" + std::to_string(endpoint->id);
  ScriptedSender sender(Channel::webhook);
  sender.script({permanent(400), permanent(400), permanent(400)});
  auto worker_options = options("w1", &sender);
  worker_options.endpoint_failure_threshold = 3;
  auto worker = make_worker(*notifications_, worker_options);
  ASSERT_NE(worker, nullptr);

  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(add_deliveries(Channel::webhook, {recipient}, 7).at(0));
    ASSERT_TRUE(worker->run_once());
    auto current = notifications_->get_endpoint(endpoint->id);
    ASSERT_TRUE(current) << current.error().message;
    EXPECT_EQ(current->active, i < 2) << "after failure " << i + 1;
  }
  auto disabled = notifications_->get_endpoint(endpoint->id);
  ASSERT_TRUE(disabled) << disabled.error().message;
  EXPECT_EQ(disabled->disabled_reason, "3 consecutive failures");
  EXPECT_EQ(delivery(ids[2]).last_error,
            "HTTP 400; endpoint disabled after 3 consecutive failures");

  // Deliveries to the disabled endpoint fail without an attempt at it.
  const std::int64_t later = add_deliveries(Channel::webhook, {recipient}, 7).at(0);
  auto round = worker->run_once();
  ASSERT_TRUE(round) << round.error().message;
  EXPECT_EQ(round->failed, 1u);
  EXPECT_EQ(sender.sends(later), 0);
  EXPECT_EQ(delivery(later).last_error, "endpoint disabled: 3 consecutive failures");
}

TEST_P(NotifyDelivery, ASuccessEndsTheEndpointsRunOfFailures) {
  auto endpoint = notifications_->create_endpoint(7, "http://127.0.0.1:9/hook", {});
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  const std::string recipient = "endpoint:" + std::to_string(endpoint->id);
  ScriptedSender sender(Channel::webhook);
  // Two failures, a success, two failures: never three in a row.
  sender.script({permanent(400), permanent(400), SendResult{}, permanent(400), permanent(400)});
  auto worker_options = options("w1", &sender);
  worker_options.endpoint_failure_threshold = 3;
  auto worker = make_worker(*notifications_, worker_options);
  ASSERT_NE(worker, nullptr);
  for (int i = 0; i < 5; ++i) {
    add_deliveries(Channel::webhook, {recipient}, 7);
    ASSERT_TRUE(worker->run_once());
  }
  auto current = notifications_->get_endpoint(endpoint->id);
  ASSERT_TRUE(current) << current.error().message;
  EXPECT_TRUE(current->active);
  EXPECT_EQ(current->consecutive_failures, 2);
}

TEST_P(NotifyDelivery, AnotherWorkerSendsWhatAKilledWorkerClaimedOnceTheLeaseExpires) {
  const std::int64_t id = add_delivery();
  // The first worker takes the claim and never comes back from the provider: as killed.
  ScriptedSender stuck(Channel::discord);
  stuck.hold();
  auto first = make_worker(*notifications_, options("killed", &stuck));
  ASSERT_NE(first, nullptr);
  std::optional<std::expected<herald::notify::WorkerRound, herald::Error>> first_round;
  std::thread killed([&] { first_round = first->run_once(); });
  ASSERT_TRUE(stuck.wait_entered(1));

  auto second_store = open_notifications();
  ASSERT_NE(second_store, nullptr);
  ScriptedSender sender(Channel::discord);
  auto second = make_worker(*second_store, options("survivor", &sender));
  ASSERT_NE(second, nullptr);
  auto during = second->run_once();
  ASSERT_TRUE(during) << during.error().message;
  EXPECT_EQ(during->claimed, 0u) << "taken while the claim still held";

  clock_.advance(61s);
  auto after = second->run_once();
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->sent, 1u);
  EXPECT_EQ(sender.sends(id), 1);

  // The killed worker's late answer is not recorded: its claim is gone.
  stuck.release();
  killed.join();
  ASSERT_TRUE(first_round.has_value());
  ASSERT_TRUE(*first_round) << (*first_round).error().message;
  EXPECT_EQ((*first_round)->unrecorded, 1u);
  const DeliveryRecord sent = delivery(id);
  EXPECT_EQ(sent.status, DeliveryStatus::sent);
  EXPECT_EQ(sent.attempts, 2);
  const auto rows = attempts(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].attempt, 2);
  EXPECT_EQ(rows[0].outcome, DeliveryStatus::sent);
}

// --- the threads (real clock) --------------------------------------------------------------------

TEST_P(NotifyDelivery, TwoWorkersOnTwoStoreObjectsNeverSendTheSameDelivery) {
  std::vector<std::string> recipients;
  for (int i = 1; i <= 150; ++i) recipients.push_back("user:" + std::to_string(i));
  const auto ids = add_deliveries(Channel::discord, recipients);
  ASSERT_EQ(ids.size(), recipients.size());

  ScriptedSender sender(Channel::discord);
  auto other_store = open_notifications();
  ASSERT_NE(other_store, nullptr);
  auto first_options = options("first", &sender);
  auto second_options = options("second", &sender);
  first_options.clock = second_options.clock = nullptr;
  first_options.threads = second_options.threads = 4;
  auto first = make_worker(*notifications_, first_options);
  auto second = make_worker(*other_store, second_options);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(first->start());
  ASSERT_TRUE(second->start());
  const bool all_sent = eventually([&] {
    auto counts = notifications_->count_deliveries();
    if (!counts) return false;
    for (const auto& count : *counts) {
      if (count.status == DeliveryStatus::sent) return count.count == std::int64_t{150};
    }
    return false;
  });
  first->stop();
  second->stop();
  ASSERT_TRUE(all_sent);
  const auto sends = sender.all_sends();
  EXPECT_EQ(sends.size(), ids.size());
  for (std::int64_t id : ids) EXPECT_EQ(sender.sends(id), 1) << "delivery " << id;
  EXPECT_EQ(sender.total(), 150);
}

TEST_P(NotifyDelivery, AStartedWorkerWakesForANewDeliveryAndAtTheNextRetry) {
  ScriptedSender sender(Channel::discord);
  sender.script({transient(503, 300ms)});
  auto worker_options = options("w1", &sender);
  worker_options.clock = nullptr;
  // Only a wake can make the worker look again in time: its poll is longer than the test.
  worker_options.poll_interval = std::chrono::minutes{10};
  worker_options.retry.delays = {200ms};
  auto worker = make_worker(*notifications_, worker_options);
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(worker->start());
  const std::int64_t id = add_delivery();
  const bool sent = eventually(
      [&] {
        auto found = notifications_->get_delivery(id);
        return found && found->status == DeliveryStatus::sent;
      },
      10s);
  worker->stop();
  EXPECT_TRUE(sent);
  EXPECT_EQ(sender.sends(id), 2);
  const auto rows = attempts(id);
  ASSERT_EQ(rows.size(), 2u);
  // Not before the provider's Retry-After.
  EXPECT_GE(rows[1].started_at - rows[0].started_at, 300ms);
}

TEST_P(NotifyDelivery, StopFinishesTheAttemptInFlightAndRecordsIt) {
  ScriptedSender sender(Channel::discord);
  sender.hold();
  auto worker_options = options("w1", &sender);
  worker_options.clock = nullptr;
  auto worker = make_worker(*notifications_, worker_options);
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(worker->start());
  const std::int64_t id = add_delivery();
  ASSERT_TRUE(sender.wait_entered(1));
  std::atomic<bool> stopping{false};
  std::thread releaser([&] {
    eventually([&] { return stopping.load(); });
    sender.release();
  });
  stopping = true;
  worker->stop();
  releaser.join();
  EXPECT_FALSE(worker->running());
  EXPECT_EQ(delivery(id).status, DeliveryStatus::sent);
  EXPECT_EQ(attempts(id).size(), 1u);
}

TEST_P(NotifyDelivery, CountsDeliveriesAndReportsTheQueueDepth) {
  herald::MetricsRegistry registry;
  const std::int64_t id = add_delivery();
  ScriptedSender sender(Channel::discord);
  auto worker_options = options("w1", &sender);
  worker_options.metrics = &registry;
  auto worker = make_worker(*notifications_, worker_options);
  ASSERT_NE(worker, nullptr);
  const std::string before = registry.render();
  EXPECT_NE(before.find("herald_notify_queue_depth{channel=\"discord\",status=\"pending\"} 1\n"),
            std::string::npos)
      << before;
  ASSERT_TRUE(worker->run_once());
  EXPECT_EQ(delivery(id).status, DeliveryStatus::sent);
  const std::string after = registry.render();
  EXPECT_NE(after.find("herald_notify_deliveries_total{channel=\"discord\",outcome=\"sent\"} 1\n"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find("herald_notify_queue_depth{channel=\"discord\",status=\"pending\"} 0\n"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find("herald_notify_attempt_duration_seconds_count{channel=\"discord\"} 1\n"),
            std::string::npos)
      << after;
  // One worker per registry.
  auto again = DeliveryWorker::create(*notifications_, options("w2", &sender));
  ASSERT_TRUE(again);
  auto twice_options = options("w3", &sender);
  twice_options.metrics = &registry;
  auto twice = DeliveryWorker::create(*notifications_, twice_options);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, herald::ErrorCode::conflict);
}

TEST_P(NotifyDelivery, RefusesOptionsOutOfRangeNamingTheOption) {
  ScriptedSender discord(Channel::discord);
  const auto refused = [&](const std::function<void(DeliveryWorkerOptions&)>& change) {
    auto worker_options = options("w1", &discord);
    change(worker_options);
    auto worker = DeliveryWorker::create(*notifications_, worker_options);
    if (worker) return std::string("accepted");
    EXPECT_EQ(worker.error().code, herald::ErrorCode::invalid_argument);
    return worker.error().field;
  };
  EXPECT_EQ(refused([](auto& o) { o.threads = 0; }), "threads");
  EXPECT_EQ(refused([](auto& o) { o.threads = 100000; }), "threads");
  EXPECT_EQ(refused([](auto& o) { o.lease = 0s; }), "lease");
  EXPECT_EQ(refused([](auto& o) { o.claim_batch = 0; }), "claim_batch");
  EXPECT_EQ(refused([](auto& o) { o.poll_interval = 0ms; }), "poll_interval");
  EXPECT_EQ(refused([](auto& o) { o.endpoint_failure_threshold = 0; }),
            "endpoint_failure_threshold");
  EXPECT_EQ(refused([](auto& o) { o.worker_id = std::string(300, 'w'); }), "worker_id");
  EXPECT_EQ(refused([](auto& o) { o.retry.jitter = 2; }), "retry.jitter");
  EXPECT_EQ(refused([](auto& o) { o.senders[Channel::email] = nullptr; }), "senders[email]");
  EXPECT_EQ(refused([&](auto& o) { o.senders[Channel::email] = &discord; }), "senders[email]");
}

// --- the notification consumer -------------------------------------------------------------------

/// Rules for the test: a created user is welcomed in-app and on Discord, and becomes known to the
/// directory with their Discord id.
class WelcomeRules final : public herald::notify::NotificationRules {
 public:
  /// The rules reject the creation of this user, as a malformed event.
  std::optional<std::int64_t> rejected_user;

  std::span<const herald::notify::KindInfo> kinds() const override { return kinds_; }

  std::vector<herald::notify::DirectoryChange> directory_changes(
      const herald::StoredEvent& event) const override {
    const auto* created = event.event.get<UserCreatedEvent>();
    if (created == nullptr || !created->entity_id) return {};
    herald::notify::DirectoryChange change;
    change.op = herald::notify::DirectoryChange::Op::upsert_user;
    change.user_id = std::get<std::int64_t>(*created->entity_id);
    change.discord_id = created->discord_id;
    change.discord_username = created->discord_username;
    return {change};
  }

  std::expected<std::vector<herald::notify::Notice>, herald::Error> notices(
      const herald::StoredEvent& event, herald::notify::Directory&) const override {
    const auto* created = event.event.get<UserCreatedEvent>();
    if (created == nullptr || !created->entity_id) return std::vector<herald::notify::Notice>{};
    const std::int64_t user = std::get<std::int64_t>(*created->entity_id);
    if (user == rejected_user) {
      return std::unexpected(herald::Error::for_field(herald::ErrorCode::invalid_argument,
                                                      "entity_id", "a user the test rejects"));
    }
    const std::string name = created->discord_username.value_or("someone");
    herald::notify::Notice notice;
    notice.kind = "welcome";
    notice.audience.users = {user};
    notice.message = {.title = "Welcome, " + name,
                      .text = "Welcome, " + name + ".",
                      .markdown = "Welcome, **" + name + "**.",
                      .html = "<p>Welcome, " + name + ".</p>",
                      .link = "/users/" + std::to_string(user)};
    return std::vector<herald::notify::Notice>{notice};
  }

 private:
  std::vector<herald::notify::KindInfo> kinds_{
      {.name = "welcome",
       .description = "You joined the platform",
       .critical = false,
       .default_channels = {Channel::in_app, Channel::discord}}};
};

std::size_t inbox_size(NotificationStore& store, std::int64_t user) {
  auto items = store.list_inbox({.user_id = user, .limit = 1000});
  EXPECT_TRUE(items) << items.error().message;
  return items ? items->size() : 0;
}

std::size_t delivery_count(NotificationStore& store) {
  auto listed = store.list_deliveries({.limit = 1000});
  EXPECT_TRUE(listed) << listed.error().message;
  return listed ? listed->size() : 0;
}

TEST_P(NotifyDelivery, ConsumerTurnsEventsIntoInboxItemsAndDeliveries) {
  const WelcomeRules rules;
  for (int user = 1; user <= 3; ++user) ASSERT_TRUE(events_->append(user_created(user)));
  auto consumer = herald::notify::make_notification_consumer(*events_, *notifications_, rules);
  EXPECT_EQ(consumer->name(), "notifications");
  auto handled = consumer->catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 3u);

  for (int user = 1; user <= 3; ++user) {
    auto items = notifications_->list_inbox({.user_id = user});
    ASSERT_TRUE(items) << items.error().message;
    ASSERT_EQ(items->size(), 1u) << "user " << user;
    EXPECT_EQ((*items)[0].kind, "welcome");
    EXPECT_EQ((*items)[0].title, "Welcome, user" + std::to_string(user));
  }
  auto deliveries = notifications_->list_deliveries({.channel = Channel::discord});
  ASSERT_TRUE(deliveries) << deliveries.error().message;
  ASSERT_EQ(deliveries->size(), 3u);
  for (const DeliveryRecord& record : *deliveries) {
    EXPECT_EQ(record.status, DeliveryStatus::pending);
    // The user became known (with a Discord id) through the event routed in the same batch.
    const std::string discord_id = std::to_string(1000 + *record.user_id);
    EXPECT_NE(record.payload.find("\"" + discord_id + "\""), std::string::npos) << record.payload;
  }
  auto status = herald::consumer_status(*events_, "notifications");
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->checkpoint, status->head);
}

TEST_P(NotifyDelivery, ConsumerReplayCreatesNothingNew) {
  const WelcomeRules rules;
  for (int user = 1; user <= 3; ++user) ASSERT_TRUE(events_->append(user_created(user)));
  auto consumer = herald::notify::make_notification_consumer(*events_, *notifications_, rules);
  ASSERT_TRUE(consumer->catch_up());
  ASSERT_EQ(delivery_count(*notifications_), 3u);

  ASSERT_TRUE(consumer->reset_to(0));
  auto replayed = consumer->catch_up();
  ASSERT_TRUE(replayed) << replayed.error().message;
  EXPECT_EQ(*replayed, 3u);
  EXPECT_EQ(delivery_count(*notifications_), 3u);
  for (int user = 1; user <= 3; ++user) EXPECT_EQ(inbox_size(*notifications_, user), 1u);
  auto status = herald::consumer_status(*events_, "notifications");
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->checkpoint, status->head);
}

TEST_P(NotifyDelivery, ConsumerInBatchesOfOneEventKeepsItsCheckpointAtTheHead) {
  const WelcomeRules rules;
  for (int user = 1; user <= 3; ++user) ASSERT_TRUE(events_->append(user_created(user)));
  auto consumer = herald::notify::make_notification_consumer(
      *events_, *notifications_, rules, {.name = "notify-one", .batch_size = 1});
  auto handled = consumer->catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 3u);
  EXPECT_EQ(delivery_count(*notifications_), 3u);
  auto status = herald::consumer_status(*events_, "notify-one");
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->checkpoint, status->head);
}

TEST_P(NotifyDelivery, ConsumerPassesAnEventTheRulesRejectAndNotifiesTheOthers) {
  WelcomeRules rules;
  rules.rejected_user = 2;
  for (int user = 1; user <= 3; ++user) ASSERT_TRUE(events_->append(user_created(user)));
  auto consumer = herald::notify::make_notification_consumer(*events_, *notifications_, rules);
  auto handled = consumer->catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 3u);
  EXPECT_EQ(inbox_size(*notifications_, 1), 1u);
  EXPECT_EQ(inbox_size(*notifications_, 2), 0u);
  EXPECT_EQ(inbox_size(*notifications_, 3), 1u);
  EXPECT_EQ(delivery_count(*notifications_), 2u);
  // The rejected event's directory changes were kept: the user is known.
  auto user = notifications_->user(2);
  ASSERT_TRUE(user) << user.error().message;
  ASSERT_TRUE(user->has_value());
  EXPECT_EQ((*user)->discord_id, 1002);
  auto status = herald::consumer_status(*events_, "notifications");
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->checkpoint, status->head);
}

TEST_P(NotifyDelivery, ConsumerWithThePlatformRulesTellsAUserInTheSameBatchAsTheirCreation) {
  const auto& rules = herald::domain::platform_notification_rules();
  herald::notify::UserPreferences preferences{.user_id = 5};
  preferences.rules.push_back({.user_id = 5,
                               .kind = "user_permission_changed",
                               .channel = Channel::discord,
                               .organization_id = std::nullopt,
                               .enabled = true});
  auto set = notifications_->set_preferences(preferences, rules.kinds());
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_TRUE(events_->append(user_created(5)));
  ASSERT_TRUE(
      events_->append(EventPtr::make(herald::make<herald::domain::UserPermissionChangedEvent>(
          {.entity_id = std::int64_t{5}, .user_id = herald::system_actor},
          {.old_permission = "USER", .new_permission = "ADMIN"}))));
  auto consumer = herald::notify::make_notification_consumer(*events_, *notifications_, rules);
  auto handled = consumer->catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 2u);
  auto items = notifications_->list_inbox({.user_id = 5});
  ASSERT_TRUE(items) << items.error().message;
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].kind, "user_permission_changed");
  auto deliveries = notifications_->list_deliveries({.user_id = 5});
  ASSERT_TRUE(deliveries) << deliveries.error().message;
  ASSERT_EQ(deliveries->size(), 1u);
  EXPECT_EQ((*deliveries)[0].channel, Channel::discord);
  // The Discord id came from the creation routed just before, in the same batch.
  EXPECT_NE((*deliveries)[0].payload.find("\"1005\""), std::string::npos)
      << (*deliveries)[0].payload;
}

TEST_P(NotifyDelivery, ConsumerRestartResumesWhereItStopped) {
  const WelcomeRules rules;
  for (int user = 1; user <= 2; ++user) ASSERT_TRUE(events_->append(user_created(user)));
  {
    auto consumer = herald::notify::make_notification_consumer(*events_, *notifications_, rules);
    ASSERT_TRUE(consumer->catch_up());
  }
  for (int user = 3; user <= 4; ++user) ASSERT_TRUE(events_->append(user_created(user)));
  auto restarted = herald::notify::make_notification_consumer(*events_, *notifications_, rules);
  auto handled = restarted->catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 2u);
  EXPECT_EQ(delivery_count(*notifications_), 4u);
  for (int user = 1; user <= 4; ++user) EXPECT_EQ(inbox_size(*notifications_, user), 1u);
}

TEST(NotifyDeliveryWorkerId, NamesTheHostAndProcess) {
  const std::string id = herald::notify::default_worker_id();
  EXPECT_NE(id.find("-" + std::to_string(::getpid()) + "-"), std::string::npos) << id;
  EXPECT_NE(id, herald::notify::default_worker_id());
}

}  // namespace
