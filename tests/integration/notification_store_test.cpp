#include "herald/notify/notification_store.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <limits>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_catalog.hpp"
#include "herald/event_store.hpp"
#include "store_test_support.hpp"

// The notification store, once for every backend: SQLite on a file in a temporary directory, and
// PostgreSQL on the server scripts/with_postgres.sh starts (HERALD_TEST_PG_URL), each test in a
// fresh schema. The event store is opened first on the same database, as in herald.

namespace herald::notify {
namespace {

using namespace std::chrono_literals;
using store_test::TempDir;

enum class Backend { sqlite, postgresql };

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::sqlite ? "SQLite" : "PostgreSQL";
}

template <typename T>
T must(std::expected<T, Error> result, const char* what) {
  if (!result) throw std::runtime_error(std::string(what) + ": " + result.error().message);
  return std::move(*result);
}

void must(std::expected<void, Error> result, const char* what) {
  if (!result) throw std::runtime_error(std::string(what) + ": " + result.error().message);
}

const std::vector<KindInfo>& test_kinds() {
  static const std::vector<KindInfo> kinds{
      {.name = "race_approved",
       .description = "Your race was approved",
       .critical = false,
       .default_channels = {Channel::in_app}},
      {.name = "permission_changed",
       .description = "Your permissions changed",
       .critical = true,
       .default_channels = {Channel::in_app}},
      {.name = "tournament_created",
       .description = "A tournament was created",
       .critical = false,
       .default_channels = {}},
  };
  return kinds;
}

class NotificationStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::postgresql) {
      const char* url = std::getenv("HERALD_TEST_PG_URL");
      if (url == nullptr || *url == '\0') {
        GTEST_SKIP() << "PostgreSQL backend not tested: HERALD_TEST_PG_URL is not set. Run the "
                        "tests under scripts/with_postgres.sh, which starts a throwaway server "
                        "and sets it.";
      }
      pg_base_url_ = url;
      static std::atomic<int> counter{0};
      pg_schema_ = "herald_ns" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
      pg_admin("DROP SCHEMA IF EXISTS " + pg_schema_ + " CASCADE");
      pg_admin("CREATE SCHEMA " + pg_schema_);
      location_ = pg_base_url_ + (pg_base_url_.find('?') == std::string::npos ? "?" : "&") +
                  "options=-csearch_path%3D" + pg_schema_;
    } else {
      dir_.emplace();
      location_ = dir_->file("herald.db");
    }
    auto events = open_store(StoreOptions{.location = location_, .catalog = &catalog_});
    ASSERT_TRUE(events) << events.error().message;
    events_ = std::move(*events);
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    events_.reset();
    if (pg_schema_.empty()) return;
    try {
      pg_admin("DROP SCHEMA IF EXISTS " + pg_schema_ + " CASCADE");
    } catch (const std::exception&) {
      // with_postgres.sh removes the whole server afterwards.
    }
  }

  void pg_admin(const std::string& sql) {
    pqxx::connection conn(pg_base_url_);
    pqxx::nontransaction tx(conn);
    tx.exec(sql);
  }

  /// Runs `sql` on the test's database outside the store (an operator's or another herald's).
  void raw_sql(const std::string& sql) {
    if (GetParam() == Backend::postgresql) {
      pqxx::connection conn(location_);
      pqxx::nontransaction tx(conn);
      tx.exec(sql);
    } else {
      store_test::RawDb db(location_);
      const std::string failed = db.exec(sql);
      if (!failed.empty()) throw std::runtime_error(failed);
    }
  }

  std::unique_ptr<NotificationStore> open() {
    auto store = open_notification_store(location_);
    if (!store) {
      ADD_FAILURE() << "opening the notification store failed: " << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }

  std::int64_t checkpoint(const std::string& consumer) {
    return must(events_->load_checkpoint(consumer), "load_checkpoint").position;
  }

  static RoutedEvent routed(std::int64_t position) {
    return RoutedEvent{.position = position, .event_id = EventId::generate()};
  }

  static NewDelivery delivery(const RoutedEvent& event, std::string recipient,
                              Channel channel = Channel::email) {
    return NewDelivery{.event_id = event.event_id,
                       .position = event.position,
                       .channel = channel,
                       .recipient = std::move(recipient),
                       .user_id = 42,
                       .organization_id = 3,
                       .kind = "race_approved",
                       .payload = R"({"to":"a@example.org","title":"t","text":"x","html":"x"})"};
  }

  static NewInboxItem inbox_item(const RoutedEvent& event, std::int64_t user_id,
                                 std::string kind = "race_approved") {
    return NewInboxItem{.user_id = user_id,
                        .kind = std::move(kind),
                        .event_id = event.event_id,
                        .position = event.position,
                        .organization_id = 3,
                        .title = "Race approved",
                        .body = "Your race at Monza was approved.",
                        .link = "/races/9",
                        .created_at = Timestamp{std::chrono::microseconds{1'700'000'000'123'456}}};
  }

  /// Creates `count` email deliveries (one event each, from position `first`), due now.
  std::vector<RoutedEvent> make_deliveries(std::size_t count, std::int64_t first = 1) {
    std::vector<RoutedEvent> events;
    for (std::size_t i = 0; i < count; ++i) {
      RoutedEvent event = routed(first + static_cast<std::int64_t>(i));
      event.deliveries.push_back(delivery(event, "user:42"));
      events.push_back(std::move(event));
    }
    EXPECT_EQ(must(store_->apply_routing(events, "notify"), "apply_routing"), count);
    return events;
  }

  /// Claims the one due delivery as `worker`.
  DeliveryRecord claim_one(const std::string& worker, Timestamp now, std::chrono::seconds lease) {
    auto claimed = must(store_->claim_due(worker, now, lease, 1), "claim_due");
    if (claimed.size() != 1) throw std::runtime_error("expected one due delivery");
    return claimed.front();
  }

  EventCatalog catalog_;
  std::optional<TempDir> dir_;
  std::string pg_base_url_;
  std::string pg_schema_;
  std::string location_;
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<NotificationStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, NotificationStoreTest,
                         ::testing::Values(Backend::sqlite, Backend::postgresql), backend_name);

// --- routing ---

TEST_P(NotificationStoreTest, ApplyRoutingWritesInboxAndDeliveriesAndMovesTheCheckpoint) {
  RoutedEvent first = routed(5);
  first.inbox.push_back(inbox_item(first, 42));
  first.deliveries.push_back(delivery(first, "user:42", Channel::email));
  first.deliveries.push_back(delivery(first, "user:42", Channel::discord));
  RoutedEvent second = routed(9);
  second.inbox.push_back(inbox_item(second, 43));
  const std::vector<RoutedEvent> events{first, second};

  EXPECT_EQ(must(store_->apply_routing(events, "notify"), "apply_routing"), 4u);

  EXPECT_EQ(checkpoint("notify"), 9);
  const auto deliveries = must(store_->list_deliveries({}), "list_deliveries");
  ASSERT_EQ(deliveries.size(), 2u);
  for (const DeliveryRecord& record : deliveries) {
    EXPECT_EQ(record.event_id, first.event_id);
    EXPECT_EQ(record.position, 5);
    EXPECT_EQ(record.status, DeliveryStatus::pending);
    EXPECT_EQ(record.attempts, 0);
    EXPECT_EQ(record.recipient, "user:42");
    EXPECT_EQ(record.payload, first.deliveries[0].payload);
    EXPECT_EQ(record.user_id, 42);
    EXPECT_EQ(record.organization_id, 3);
    EXPECT_TRUE(record.claimed_by.empty());
    EXPECT_LE(record.next_attempt_at, herald::now());
  }
  const auto inbox = must(store_->list_inbox({.user_id = 42}), "list_inbox");
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_EQ(inbox[0].event_id, first.event_id);
  EXPECT_EQ(inbox[0].title, "Race approved");
  EXPECT_EQ(inbox[0].body, "Your race at Monza was approved.");
  EXPECT_EQ(inbox[0].link, "/races/9");
  EXPECT_EQ(inbox[0].organization_id, 3);
  EXPECT_EQ(inbox[0].created_at, first.inbox[0].created_at);
  EXPECT_FALSE(inbox[0].seen_at || inbox[0].read_at || inbox[0].archived_at);
}

TEST_P(NotificationStoreTest, ApplyRoutingReplayCreatesNothingNewAndStillMovesTheCheckpoint) {
  RoutedEvent event = routed(3);
  event.inbox.push_back(inbox_item(event, 42));
  event.deliveries.push_back(delivery(event, "user:42"));
  std::vector<RoutedEvent> events{event};
  ASSERT_EQ(must(store_->apply_routing(events, "notify"), "first"), 2u);
  ASSERT_EQ(checkpoint("notify"), 3);

  // The consumer restarts from an older checkpoint and routes the same event again.
  ASSERT_TRUE(events_->save_checkpoint("notify", 1));
  EXPECT_EQ(must(store_->apply_routing(events, "notify"), "replay"), 0u);

  EXPECT_EQ(checkpoint("notify"), 3);
  EXPECT_EQ(must(store_->list_deliveries({}), "list_deliveries").size(), 1u);
  EXPECT_EQ(must(store_->list_inbox({.user_id = 42}), "list_inbox").size(), 1u);
  // The same user, event and kind once, however it was routed; another kind is another item.
  RoutedEvent again = event;
  again.position = 4;
  again.inbox.push_back(inbox_item(event, 42, "permission_changed"));
  const std::vector<RoutedEvent> later{again};
  EXPECT_EQ(must(store_->apply_routing(later, "notify"), "another kind"), 1u);
  EXPECT_EQ(checkpoint("notify"), 4);
}

TEST_P(NotificationStoreTest, ApplyRoutingWritesARepeatedItemOfOneBatchOnce) {
  RoutedEvent event = routed(1);
  event.inbox.push_back(inbox_item(event, 42));
  event.inbox.push_back(inbox_item(event, 42));
  event.deliveries.push_back(delivery(event, "user:42"));
  event.deliveries.push_back(delivery(event, "user:42"));
  event.deliveries.push_back(delivery(event, "user:42", Channel::discord));
  const std::vector<RoutedEvent> events{event};

  EXPECT_EQ(must(store_->apply_routing(events, "notify"), "apply_routing"), 3u);

  EXPECT_EQ(must(store_->list_inbox({.user_id = 42}), "inbox").size(), 1u);
  EXPECT_EQ(must(store_->list_deliveries({}), "deliveries").size(), 2u);
}

TEST_P(NotificationStoreTest, ApplyRoutingOfMoreItemsThanOneStatementTakes) {
  std::vector<RoutedEvent> events;
  for (int e = 1; e <= 3; ++e) {
    RoutedEvent event = routed(e);
    for (int user = 1; user <= 150; ++user) {
      event.inbox.push_back(inbox_item(event, user));
      event.deliveries.push_back(delivery(event, "user:" + std::to_string(user)));
    }
    events.push_back(std::move(event));
  }

  EXPECT_EQ(must(store_->apply_routing(events, "notify"), "apply_routing"), 900u);

  EXPECT_EQ(must(store_->unread_count(150), "unread"), 3);
  EXPECT_EQ(must(store_->list_deliveries({.limit = 1000}), "deliveries").size(), 450u);
  EXPECT_EQ(must(store_->apply_routing(events, "notify"), "replay"), 0u);
}

TEST_P(NotificationStoreTest, ApplyRoutingRefusesABadItemAndWritesNothing) {
  RoutedEvent good = routed(1);
  good.deliveries.push_back(delivery(good, "user:1"));
  RoutedEvent bad = routed(2);
  bad.deliveries.push_back(delivery(bad, ""));
  const std::vector<RoutedEvent> events{good, bad};

  auto applied = store_->apply_routing(events, "notify");

  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(applied.error().field, "events[1].deliveries[0].recipient");
  EXPECT_TRUE(must(store_->list_deliveries({}), "list").empty());
  EXPECT_EQ(checkpoint("notify"), 0);
}

TEST_P(NotificationStoreTest, DirectoryChangesApplyInOrder) {
  using Op = DirectoryChange::Op;
  RoutedEvent first = routed(1);
  first.changes = {
      {.op = Op::upsert_user, .user_id = 7, .discord_id = 1001, .discord_username = "ada"},
      {.op = Op::add_member, .user_id = 7, .organization_id = 3},
      {.op = Op::add_member, .user_id = 9, .organization_id = 3},
      {.op = Op::add_member, .user_id = 8, .organization_id = 3},
      {.op = Op::remove_member, .user_id = 9, .organization_id = 3},
      {.op = Op::set_group, .group = "match:12", .members = {8, 7, 8}},
      {.op = Op::delete_user, .user_id = 8},
  };
  RoutedEvent second = routed(2);
  second.changes = {
      // A rename without the Discord id keeps the id; deleting and creating again revives.
      {.op = Op::upsert_user, .user_id = 7, .discord_username = "ada_l"},
      {.op = Op::delete_user, .user_id = 9},
      {.op = Op::upsert_user, .user_id = 9},
      {.op = Op::set_group, .group = "invite:ABC", .members = {7}},
      {.op = Op::set_group, .group = "invite:ABC", .members = {}},
  };
  const std::vector<RoutedEvent> events{first, second};

  ASSERT_EQ(must(store_->apply_routing(events, "notify"), "apply_routing"), 0u);

  const auto ada = must(store_->user(7), "user 7");
  ASSERT_TRUE(ada);
  EXPECT_EQ(ada->discord_id, 1001);
  EXPECT_EQ(ada->discord_username, "ada_l");
  EXPECT_FALSE(ada->deleted);
  const auto eight = must(store_->user(8), "user 8");
  ASSERT_TRUE(eight);
  EXPECT_TRUE(eight->deleted);
  const auto nine = must(store_->user(9), "user 9");
  ASSERT_TRUE(nine);
  EXPECT_FALSE(nine->deleted);
  EXPECT_FALSE(must(store_->user(10), "user 10"));
  EXPECT_EQ(must(store_->members(3), "members"), (std::vector<std::int64_t>{7, 8}));
  EXPECT_TRUE(must(store_->members(4), "members of 4").empty());
  EXPECT_EQ(must(store_->group("match:12"), "group"), (std::vector<std::int64_t>{8, 7}));
  EXPECT_TRUE(must(store_->group("invite:ABC"), "emptied group").empty());
  EXPECT_TRUE(must(store_->group("unknown"), "unknown group").empty());
}

// --- the delivery queue ---

TEST_P(NotificationStoreTest, ConcurrentClaimsFromFourStoresNeverReturnTheSameDelivery) {
  constexpr std::size_t total = 200;
  make_deliveries(total);
  std::vector<std::unique_ptr<NotificationStore>> workers;
  for (int i = 0; i < 4; ++i) workers.push_back(open());
  std::vector<std::vector<std::int64_t>> claimed(workers.size());
  std::vector<std::string> failures(workers.size());
  const Timestamp now = herald::now() + 1s;

  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < workers.size(); ++w) {
    threads.emplace_back([&, w] {
      const std::string name = "worker-" + std::to_string(w);
      for (;;) {
        auto batch = workers[w]->claim_due(name, now, 60s, 7);
        if (!batch) {
          failures[w] = batch.error().message;
          return;
        }
        if (batch->empty()) return;
        for (const auto& record : *batch) {
          EXPECT_EQ(record.claimed_by, name);
          claimed[w].push_back(record.id);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::set<std::int64_t> all;
  std::size_t count = 0;
  for (std::size_t w = 0; w < workers.size(); ++w) {
    EXPECT_EQ(failures[w], "") << "worker " << w;
    count += claimed[w].size();
    all.insert(claimed[w].begin(), claimed[w].end());
  }
  EXPECT_EQ(count, total) << "a delivery was claimed twice or not at all";
  EXPECT_EQ(all.size(), total);
  for (const auto& record : must(store_->list_deliveries({.limit = 1000}), "list")) {
    EXPECT_EQ(record.status, DeliveryStatus::sending);
    EXPECT_EQ(record.attempts, 1);
  }
}

TEST_P(NotificationStoreTest, ClaimDueTakesOnlyDueDeliveriesOldestFirst) {
  make_deliveries(3);
  const Timestamp now = herald::now() + 1s;

  const auto first = must(store_->claim_due("a", now, 30s, 2), "claim");
  const auto second = must(store_->claim_due("b", now, 30s, 5), "claim");
  const auto none = must(store_->claim_due("c", now + 29s, 30s, 5), "claim before expiry");

  ASSERT_EQ(first.size(), 2u);
  EXPECT_LT(first[0].id, first[1].id);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GT(second[0].id, first[1].id);
  EXPECT_EQ(second[0].next_attempt_at, now + 30s);
  EXPECT_EQ(second[0].attempts, 1);
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(must(store_->next_due(), "next_due")) << "no pending or retrying delivery is left";
}

TEST_P(NotificationStoreTest, ClaimDueReturnsTheEarliestDueFirst) {
  make_deliveries(2);
  const Timestamp t0 = herald::now() + 1s;
  const auto taken = must(store_->claim_due("w", t0, 30s, 2), "claim");
  ASSERT_EQ(taken.size(), 2u);
  must(store_->finish_attempt(taken[0].id, "w",
                              {.status = DeliveryStatus::retrying, .next_attempt_at = t0 + 10s}),
       "first retries later");
  must(store_->finish_attempt(taken[1].id, "w",
                              {.status = DeliveryStatus::retrying, .next_attempt_at = t0 + 5s}),
       "second retries sooner");

  const auto again = must(store_->claim_due("w", t0 + 20s, 30s, 2), "claim again");

  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].id, taken[1].id);
  EXPECT_EQ(again[1].id, taken[0].id);
}

TEST_P(NotificationStoreTest, AnExpiredClaimIsReclaimedAndTheFirstWorkerGetsConflict) {
  make_deliveries(1);
  const Timestamp now = herald::now() + 1s;
  const DeliveryRecord taken = claim_one("worker-a", now, 10s);

  const DeliveryRecord retaken = claim_one("worker-b", now + 11s, 10s);
  auto late = store_->finish_attempt(taken.id, "worker-a",
                                     {.status = DeliveryStatus::sent, .started_at = now});

  EXPECT_EQ(retaken.id, taken.id);
  EXPECT_EQ(retaken.attempts, 2);
  EXPECT_EQ(retaken.claimed_by, "worker-b");
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::conflict);
  EXPECT_NE(late.error().message.find("worker-a"), std::string::npos) << late.error().message;
  EXPECT_TRUE(must(store_->list_attempts(taken.id), "attempts").empty());
  EXPECT_EQ(must(store_->get_delivery(taken.id), "get").status, DeliveryStatus::sending);

  must(store_->finish_attempt(taken.id, "worker-b",
                              {.status = DeliveryStatus::sent, .started_at = now + 11s}),
       "finish by the holder");
  const DeliveryRecord done = must(store_->get_delivery(taken.id), "get");
  EXPECT_EQ(done.status, DeliveryStatus::sent);
  EXPECT_TRUE(done.claimed_by.empty());
  // Finished: nobody holds it any more, not even the worker that finished it.
  auto again = store_->finish_attempt(taken.id, "worker-b", {.status = DeliveryStatus::sent});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::conflict);
}

TEST_P(NotificationStoreTest, FinishAttemptRecordsAttemptsInOrder) {
  make_deliveries(1);
  const Timestamp t0 = herald::now() + 1s;
  const DeliveryRecord first = claim_one("w", t0, 30s);
  must(store_->finish_attempt(first.id, "w",
                              {.status = DeliveryStatus::retrying,
                               .next_attempt_at = t0 + 10s,
                               .status_code = 503,
                               .error = "503 Service Unavailable",
                               .started_at = t0,
                               .duration_us = 1500}),
       "first attempt");
  EXPECT_EQ(must(store_->next_due(), "next_due"), t0 + 10s);
  EXPECT_TRUE(must(store_->claim_due("w", t0 + 9s, 30s, 10), "early").empty());
  const DeliveryRecord second = claim_one("w", t0 + 10s, 30s);
  must(store_->finish_attempt(second.id, "w",
                              {.status = DeliveryStatus::dead,
                               .status_code = 500,
                               .error = "500 Internal Server Error",
                               .started_at = t0 + 10s,
                               .duration_us = 2500}),
       "second attempt");

  const auto attempts = must(store_->list_attempts(first.id), "list_attempts");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].attempt, 1);
  EXPECT_EQ(attempts[0].outcome, DeliveryStatus::retrying);
  EXPECT_EQ(attempts[0].status_code, 503);
  EXPECT_EQ(attempts[0].error, "503 Service Unavailable");
  EXPECT_EQ(attempts[0].started_at, t0);
  EXPECT_EQ(attempts[0].duration_us, 1500);
  EXPECT_EQ(attempts[1].attempt, 2);
  EXPECT_EQ(attempts[1].outcome, DeliveryStatus::dead);
  EXPECT_EQ(attempts[1].status_code, 500);
  EXPECT_EQ(attempts[1].started_at, t0 + 10s);
  const DeliveryRecord record = must(store_->get_delivery(first.id), "get");
  EXPECT_EQ(record.status, DeliveryStatus::dead);
  EXPECT_EQ(record.attempts, 2);
  EXPECT_EQ(record.last_error, "500 Internal Server Error");
  EXPECT_EQ(record.last_status_code, 500);
  const auto counts = must(store_->count_deliveries(), "count");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].channel, Channel::email);
  EXPECT_EQ(counts[0].status, DeliveryStatus::dead);
  EXPECT_EQ(counts[0].count, 1);
}

TEST_P(NotificationStoreTest, FinishAttemptRefusesAStatusThatIsNotAnOutcome) {
  make_deliveries(1);
  const DeliveryRecord taken = claim_one("w", herald::now() + 1s, 30s);

  auto refused = store_->finish_attempt(taken.id, "w", {.status = DeliveryStatus::pending});
  auto unknown = store_->finish_attempt(987654, "w", {.status = DeliveryStatus::sent});

  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().field, "outcome.status");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::not_found);
  EXPECT_EQ(must(store_->get_delivery(taken.id), "get").status, DeliveryStatus::sending);
}

TEST_P(NotificationStoreTest, TimesOutsideTheYears1To9999AreRefused) {
  make_deliveries(1);
  const DeliveryRecord taken = claim_one("w", herald::now() + 1s, 30s);

  auto never = store_->finish_attempt(taken.id, "w",
                                      {.status = DeliveryStatus::retrying,
                                       .next_attempt_at = Timestamp::max(),
                                       .started_at = herald::now()});
  auto ancient = store_->claim_due("w", Timestamp::min(), 30s, 1);
  auto rotate = store_->rotate_secret(1, Timestamp::max(), 60s);

  ASSERT_FALSE(never);
  EXPECT_EQ(never.error().field, "outcome.next_attempt_at");
  ASSERT_FALSE(ancient);
  EXPECT_EQ(ancient.error().field, "now");
  ASSERT_FALSE(rotate);
  EXPECT_EQ(rotate.error().field, "now");
  EXPECT_EQ(must(store_->get_delivery(taken.id), "get").status, DeliveryStatus::sending);
}

TEST_P(NotificationStoreTest, ResendWorksOnlyForDeadOrFailedDeliveries) {
  make_deliveries(2);
  const Timestamp t0 = herald::now() + 1s;
  const auto claimed = must(store_->claim_due("w", t0, 30s, 2), "claim");
  ASSERT_EQ(claimed.size(), 2u);
  must(store_->finish_attempt(claimed[0].id, "w",
                              {.status = DeliveryStatus::failed,
                               .status_code = 550,
                               .error = "550 no such mailbox",
                               .started_at = t0}),
       "fail");
  must(store_->finish_attempt(claimed[1].id, "w",
                              {.status = DeliveryStatus::sent, .started_at = t0}),
       "send");

  const DeliveryRecord again = must(store_->resend(claimed[0].id, t0 + 5s), "resend failed");
  auto sent = store_->resend(claimed[1].id, t0 + 5s);
  auto pending = store_->resend(claimed[0].id, t0 + 5s);
  auto unknown = store_->resend(424242, t0 + 5s);

  EXPECT_EQ(again.status, DeliveryStatus::pending);
  EXPECT_EQ(again.next_attempt_at, t0 + 5s);
  EXPECT_EQ(again.attempts, 1);
  EXPECT_TRUE(again.claimed_by.empty());
  EXPECT_EQ(must(store_->list_attempts(again.id), "attempts").size(), 1u);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, ErrorCode::conflict);
  ASSERT_FALSE(pending);
  EXPECT_EQ(pending.error().code, ErrorCode::conflict);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::not_found);
  const auto retried = must(store_->claim_due("w", t0 + 5s, 30s, 5), "claim again");
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].id, claimed[0].id);
  EXPECT_EQ(retried[0].attempts, 2);
}

TEST_P(NotificationStoreTest, WaitForDueReturnsWhenRoutingCreatesADelivery) {
  const auto started = std::chrono::steady_clock::now();
  auto waited = std::async(std::launch::async, [&] { store_->wait_for_due(20s); });
  // Route until the waiter returns: a delivery created before it began waiting cannot wake it.
  std::int64_t position = 1;
  while (waited.wait_for(200ms) != std::future_status::ready &&
         std::chrono::steady_clock::now() - started < 10s) {
    make_deliveries(1, position++);
  }
  waited.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST_P(NotificationStoreTest, WaitForDueOfAnotherStoreReturnsWhenRoutingCommits) {
  if (GetParam() == Backend::sqlite) {
    GTEST_SKIP() << "On SQLite a store wakes only its own waiters; other processes' workers "
                    "wake on their timeouts";
  }
  auto other = open();
  ASSERT_NE(other, nullptr);
  const auto started = std::chrono::steady_clock::now();
  auto waited = std::async(std::launch::async, [&] { other->wait_for_due(20s); });
  // Route until the other store's waiter returns: its LISTEN connection may not be up yet when
  // the first notification is sent.
  std::int64_t position = 1;
  while (waited.wait_for(200ms) != std::future_status::ready &&
         std::chrono::steady_clock::now() - started < 10s) {
    make_deliveries(1, position++);
  }
  waited.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST_P(NotificationStoreTest, WaitForDueReturnsOnWake) {
  const auto started = std::chrono::steady_clock::now();
  auto waited = std::async(std::launch::async, [&] { store_->wait_for_due(20s); });
  while (waited.wait_for(50ms) != std::future_status::ready &&
         std::chrono::steady_clock::now() - started < 10s) {
    store_->wake();
  }
  waited.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

// --- the inbox ---

TEST_P(NotificationStoreTest, InboxListsNewestFirstWithFiltersCursorAndUnreadCount) {
  std::vector<RoutedEvent> events;
  for (int i = 1; i <= 5; ++i) {
    RoutedEvent event = routed(i);
    event.inbox.push_back(inbox_item(event, 42));
    event.inbox.push_back(inbox_item(event, 43));
    events.push_back(std::move(event));
  }
  ASSERT_EQ(must(store_->apply_routing(events, "notify"), "apply"), 10u);
  const auto all = must(store_->list_inbox({.user_id = 42}), "all");
  ASSERT_EQ(all.size(), 5u);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i - 1].id, all[i].id);
  for (const auto& item : all) EXPECT_EQ(item.user_id, 42);
  EXPECT_EQ(all.front().event_id, events.back().event_id);
  const Timestamp now = herald::now();

  const std::vector<std::int64_t> read{all[0].id, all[1].id};
  const std::vector<std::int64_t> archived{all[2].id};
  EXPECT_EQ(must(store_->mark_inbox(42, read, InboxMark::read, now), "read"), 2u);
  EXPECT_EQ(must(store_->mark_inbox(42, read, InboxMark::read, now), "read again"), 0u);
  EXPECT_EQ(must(store_->mark_inbox(42, archived, InboxMark::archived, now), "archive"), 1u);

  EXPECT_EQ(must(store_->unread_count(42), "unread 42"), 2);
  EXPECT_EQ(must(store_->unread_count(43), "unread 43"), 5);
  const auto unread = must(store_->list_inbox({.user_id = 42, .unread_only = true}), "unread");
  ASSERT_EQ(unread.size(), 2u);
  EXPECT_EQ(unread[0].id, all[3].id);
  EXPECT_EQ(unread[1].id, all[4].id);
  const auto in_archive = must(store_->list_inbox({.user_id = 42, .archived = true}), "archive");
  ASSERT_EQ(in_archive.size(), 1u);
  EXPECT_EQ(in_archive[0].id, all[2].id);
  EXPECT_TRUE(in_archive[0].archived_at);
  const auto page1 = must(store_->list_inbox({.user_id = 42, .limit = 2}), "page 1");
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_TRUE(page1[0].read_at && page1[0].seen_at) << "read implies seen";
  const auto page2 =
      must(store_->list_inbox({.user_id = 42, .before_id = page1.back().id, .limit = 2}), "page 2");
  ASSERT_EQ(page2.size(), 2u);
  EXPECT_EQ(page2[0].id, all[3].id);
  EXPECT_EQ(page2[1].id, all[4].id);

  EXPECT_EQ(must(store_->mark_inbox(42, read, InboxMark::unread, now), "unread"), 2u);
  EXPECT_EQ(must(store_->mark_inbox(42, archived, InboxMark::unarchived, now), "unarchive"), 1u);
  EXPECT_EQ(must(store_->unread_count(42), "unread after"), 5);
  // Two were seen when they were read: marking as unread keeps them seen.
  EXPECT_EQ(must(store_->mark_inbox(42, {}, InboxMark::seen, now), "seen all"), 3u);
  EXPECT_EQ(must(store_->mark_inbox(42, {}, InboxMark::read, now), "read all"), 5u);
  EXPECT_EQ(must(store_->unread_count(42), "all read"), 0);
  EXPECT_EQ(must(store_->unread_count(43), "other user untouched"), 5);

  const auto after = must(store_->inbox_after(42, all[2].id, 10), "inbox_after");
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].id, all[1].id);
  EXPECT_EQ(after[1].id, all[0].id);
  EXPECT_EQ(must(store_->inbox_head(), "head"),
            std::max(all[0].id, must(store_->list_inbox({.user_id = 43}), "43")[0].id));
}

TEST_P(NotificationStoreTest, MarkingAnotherUsersItemIsNotFoundAndChangesNothing) {
  RoutedEvent event = routed(1);
  event.inbox.push_back(inbox_item(event, 42));
  event.inbox.push_back(inbox_item(event, 43));
  const std::vector<RoutedEvent> events{event};
  ASSERT_EQ(must(store_->apply_routing(events, "notify"), "apply"), 2u);
  const auto mine = must(store_->list_inbox({.user_id = 42}), "42");
  const auto theirs = must(store_->list_inbox({.user_id = 43}), "43");
  ASSERT_EQ(mine.size(), 1u);
  ASSERT_EQ(theirs.size(), 1u);

  const std::vector<std::int64_t> ids{mine[0].id, theirs[0].id};
  auto marked = store_->mark_inbox(42, ids, InboxMark::read, herald::now());
  const std::vector<std::int64_t> hostile{std::numeric_limits<std::int64_t>::min(), -1};
  auto negative = store_->mark_inbox(42, hostile, InboxMark::archived, herald::now());

  ASSERT_FALSE(marked);
  EXPECT_EQ(marked.error().code, ErrorCode::not_found);
  EXPECT_EQ(marked.error().field, "ids");
  EXPECT_NE(marked.error().message.find(std::to_string(theirs[0].id)), std::string::npos);
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().code, ErrorCode::not_found);
  EXPECT_EQ(must(store_->unread_count(42), "42"), 1);
  EXPECT_EQ(must(store_->unread_count(43), "43"), 1);
  auto limit = store_->list_inbox({.user_id = 42, .limit = 0});
  ASSERT_FALSE(limit);
  EXPECT_EQ(limit.error().field, "limit");
  auto huge = store_->list_inbox({.user_id = 42, .limit = 1001});
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().field, "limit");
}

// --- contacts and preferences ---

TEST_P(NotificationStoreTest, SetPreferencesReplacesRulesAndMutes) {
  UserPreferences first{.user_id = 42,
                        .rules = {{.user_id = 42,
                                   .kind = "race_approved",
                                   .channel = Channel::email,
                                   .organization_id = 3,
                                   .enabled = true},
                                  {.user_id = 42,
                                   .kind = "tournament_created",
                                   .channel = Channel::discord,
                                   .enabled = true}},
                        .muted = {Channel::email, Channel::email}};
  must(store_->set_preferences(first, test_kinds()), "first");
  const auto stored = must(store_->preferences(42), "read first");
  ASSERT_EQ(stored.rules.size(), 2u);
  EXPECT_EQ(stored.rules[0].kind, "race_approved");
  EXPECT_EQ(stored.rules[0].organization_id, 3);
  EXPECT_EQ(stored.rules[1].channel, Channel::discord);
  EXPECT_FALSE(stored.rules[1].organization_id);
  EXPECT_EQ(stored.muted, std::vector<Channel>{Channel::email});

  UserPreferences second{
      .user_id = 42,
      .rules = {{.kind = "permission_changed", .channel = Channel::email, .enabled = false}},
      .muted = {}};
  must(store_->set_preferences(second, test_kinds()), "second");

  const auto replaced = must(store_->preferences(42), "read second");
  ASSERT_EQ(replaced.rules.size(), 1u);
  EXPECT_EQ(replaced.rules[0].kind, "permission_changed");
  EXPECT_EQ(replaced.rules[0].user_id, 42);
  EXPECT_FALSE(replaced.rules[0].enabled);
  EXPECT_TRUE(replaced.muted.empty());
  const auto nobody = must(store_->preferences(77), "nobody");
  EXPECT_TRUE(nobody.rules.empty() && nobody.muted.empty());
}

TEST_P(NotificationStoreTest, SetPreferencesRefusesUnknownKindsCriticalInAppOffAndDuplicates) {
  must(store_->set_preferences(
           {.user_id = 42, .rules = {{.kind = "race_approved", .channel = Channel::email}}},
           test_kinds()),
       "baseline");
  const auto refused = [&](UserPreferences preferences) {
    auto result = store_->set_preferences(preferences, test_kinds());
    return result ? Error{} : result.error();
  };

  const Error unknown =
      refused({.user_id = 42, .rules = {{.kind = "no_such_kind", .channel = Channel::email}}});
  const Error critical = refused(
      {.user_id = 42,
       .rules = {{.kind = "race_approved", .channel = Channel::email},
                 {.kind = "permission_changed", .channel = Channel::in_app, .enabled = false}}});
  const Error duplicate =
      refused({.user_id = 42,
               .rules = {{.kind = "race_approved", .channel = Channel::email},
                         {.kind = "race_approved", .channel = Channel::email, .enabled = false}}});
  const Error other_user =
      refused({.user_id = 42,
               .rules = {{.user_id = 43, .kind = "race_approved", .channel = Channel::email}}});
  const Error bad_user = refused({.user_id = -4});

  EXPECT_EQ(unknown.code, ErrorCode::invalid_argument);
  EXPECT_EQ(unknown.field, "rules[0].kind");
  EXPECT_NE(unknown.message.find("no_such_kind"), std::string::npos);
  EXPECT_EQ(critical.field, "rules[1].enabled");
  EXPECT_EQ(duplicate.field, "rules[1]");
  EXPECT_EQ(other_user.field, "rules[0].user_id");
  EXPECT_EQ(bad_user.field, "user_id");
  // Every refusal left the stored preferences alone.
  const auto kept = must(store_->preferences(42), "kept");
  ASSERT_EQ(kept.rules.size(), 1u);
  EXPECT_EQ(kept.rules[0].kind, "race_approved");
  EXPECT_TRUE(kept.rules[0].enabled);
}

TEST_P(NotificationStoreTest, SetEmailStoresAValidAddressAndRefusesBadOnes) {
  const UserProfile profile = must(store_->set_email(42, "ada@example.org"), "set");
  EXPECT_EQ(profile.user_id, 42);
  EXPECT_EQ(profile.email, "ada@example.org");
  EXPECT_FALSE(profile.deleted);

  const std::vector<std::string> bad{"",
                                     "no-at-sign",
                                     "two@@example.org",
                                     "a@b@c",
                                     "@example.org",
                                     "ada@",
                                     "ada lovelace@example.org",
                                     "ada@example.org\r\nBcc: x@y.z",
                                     std::string("ada\0@example.org", 16),
                                     std::string(250, 'a') + "@b.org"};
  for (const std::string& email : bad) {
    auto refused = store_->set_email(42, email);
    ASSERT_FALSE(refused) << email;
    EXPECT_EQ(refused.error().field, "email") << email;
  }
  auto negative = store_->set_email(-1, "a@b.org");
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().field, "user_id");

  EXPECT_EQ(must(store_->user(42), "user")->email, "ada@example.org");
  // The directory's own fields survive a routing update, and the address survives it too.
  RoutedEvent event = routed(1);
  event.changes.push_back(
      {.op = DirectoryChange::Op::upsert_user, .user_id = 42, .discord_username = "ada"});
  const std::vector<RoutedEvent> events{event};
  must(store_->apply_routing(events, "notify"), "apply");
  const auto after = must(store_->user(42), "user after routing");
  EXPECT_EQ(after->email, "ada@example.org");
  EXPECT_EQ(after->discord_username, "ada");
  EXPECT_FALSE(must(store_->set_email(42, std::nullopt), "clear").email);
}

// --- webhook endpoints and announcement channels ---

TEST_P(NotificationStoreTest, EndpointsAreCreatedRotatedDisabledAndCountFailures) {
  const WebhookEndpoint created = must(
      store_->create_endpoint(3, "https://hooks.example.org/herald?x=1", {"RaceApprovedEvent"}),
      "create");
  EXPECT_EQ(created.organization_id, 3);
  EXPECT_TRUE(created.active);
  EXPECT_EQ(created.event_types, std::vector<std::string>{"RaceApprovedEvent"});
  ASSERT_EQ(created.secrets.size(), 1u);
  EXPECT_TRUE(created.secrets[0].secret.starts_with("whsec_"));
  EXPECT_FALSE(created.secrets[0].expires_at);
  const WebhookEndpoint other = must(store_->create_endpoint(4, "http://10.0.0.5/x", {}), "other");

  const Timestamp now = herald::now();
  const WebhookEndpoint rotated = must(store_->rotate_secret(created.id, now, 3600s), "rotate");
  ASSERT_EQ(rotated.secrets.size(), 2u);
  EXPECT_NE(rotated.secrets[0].secret, created.secrets[0].secret);
  EXPECT_FALSE(rotated.secrets[0].expires_at) << "the new secret comes first and never expires";
  EXPECT_EQ(rotated.secrets[1].secret, created.secrets[0].secret);
  EXPECT_EQ(rotated.secrets[1].expires_at, now + 3600s);
  const WebhookEndpoint replaced = must(store_->rotate_secret(created.id, now, 0s), "rotate now");
  ASSERT_EQ(replaced.secrets.size(), 1u) << "an overlap of 0 retires the old secrets at once";
  EXPECT_EQ(must(store_->endpoints(3), "directory").at(0).secrets.size(), 1u);

  // A webhook delivery to the endpoint fails twice, then succeeds, then fails with 410.
  const auto deliver = [&](std::int64_t position, const AttemptOutcome& outcome) {
    RoutedEvent event = routed(position);
    event.deliveries.push_back(
        delivery(event, "endpoint:" + std::to_string(created.id), Channel::webhook));
    const std::vector<RoutedEvent> events{event};
    must(store_->apply_routing(events, "notify"), "apply");
    const DeliveryRecord taken = claim_one("w", herald::now() + 1s, 30s);
    must(store_->finish_attempt(taken.id, "w", outcome), "finish");
    return must(store_->get_endpoint(created.id), "get");
  };
  EXPECT_EQ(deliver(1, {.status = DeliveryStatus::failed, .status_code = 500}).consecutive_failures,
            1);
  EXPECT_EQ(deliver(2, {.status = DeliveryStatus::failed, .status_code = 500}).consecutive_failures,
            2);
  EXPECT_EQ(deliver(3, {.status = DeliveryStatus::sent, .status_code = 204}).consecutive_failures,
            0);
  const WebhookEndpoint gone = deliver(
      4, {.status = DeliveryStatus::failed, .status_code = 410, .disable_endpoint = "410 Gone"});
  EXPECT_FALSE(gone.active);
  EXPECT_EQ(gone.disabled_reason, "410 Gone");
  EXPECT_EQ(gone.consecutive_failures, 1);
  EXPECT_TRUE(must(store_->endpoints(3), "active endpoints of 3").empty());
  EXPECT_EQ(must(store_->list_endpoints(3), "all endpoints of 3").size(), 1u);
  EXPECT_EQ(must(store_->list_endpoints(std::nullopt), "all").size(), 2u);
  EXPECT_TRUE(must(store_->get_endpoint(other.id), "other").active) << "another endpoint untouched";

  const WebhookEndpoint back = must(store_->set_endpoint_active(created.id, true, ""), "activate");
  EXPECT_TRUE(back.active);
  EXPECT_EQ(back.consecutive_failures, 0);
  EXPECT_TRUE(back.disabled_reason.empty());
  const WebhookEndpoint off =
      must(store_->set_endpoint_active(created.id, false, "maintenance"), "disable");
  EXPECT_EQ(off.disabled_reason, "maintenance");
  auto unknown = store_->set_endpoint_active(999999, true, "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::not_found);
  auto unknown_rotate = store_->rotate_secret(999999, now, 60s);
  ASSERT_FALSE(unknown_rotate);
  EXPECT_EQ(unknown_rotate.error().code, ErrorCode::not_found);
}

TEST_P(NotificationStoreTest, CreateEndpointRefusesUrlsThatAreNotHttp) {
  const std::vector<std::string> bad{"",
                                     "ftp://example.org/x",
                                     "javascript:alert(1)",
                                     "file:///etc/passwd",
                                     "https://",
                                     "not a url",
                                     "https://example.org/" + std::string(2048, 'a'),
                                     std::string("https://exa\0mple.org/", 21)};
  for (const std::string& url : bad) {
    auto refused = store_->create_endpoint(3, url, {});
    ASSERT_FALSE(refused) << url;
    EXPECT_EQ(refused.error().field, "url") << url;
  }
  auto types = store_->create_endpoint(3, "https://example.org/", {"Good", "bad type"});
  ASSERT_FALSE(types);
  EXPECT_EQ(types.error().field, "event_types[1]");
  auto org = store_->create_endpoint(0, "https://example.org/", {});
  ASSERT_FALSE(org);
  EXPECT_EQ(org.error().field, "organization_id");
  EXPECT_TRUE(must(store_->list_endpoints(std::nullopt), "list").empty());
}

TEST_P(NotificationStoreTest, AnnouncementChannelsAreSetReplacedAndRemoved) {
  must(store_->set_announcement_channel(3, "https://discord.com/api/webhooks/1/abc"), "set");
  must(store_->set_announcement_channel(3, "https://discord.com/api/webhooks/2/def"), "replace");
  const auto channel = must(store_->announcement_channel(3), "read");
  ASSERT_TRUE(channel);
  EXPECT_EQ(channel->webhook_url, "https://discord.com/api/webhooks/2/def");
  EXPECT_FALSE(must(store_->announcement_channel(4), "none"));
  auto bad = store_->set_announcement_channel(3, "discord.com/api/webhooks/2/def");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "webhook_url");

  must(store_->set_announcement_channel(3, std::nullopt), "remove");
  EXPECT_FALSE(must(store_->announcement_channel(3), "removed"));
}

// --- hostile input ---

TEST_P(NotificationStoreTest, HostileStringsAreStoredVerbatimOrRefusedWithoutTouchingOtherRows) {
  RoutedEvent before = routed(1);
  before.inbox.push_back(inbox_item(before, 42));
  const std::vector<RoutedEvent> first{before};
  must(store_->apply_routing(first, "notify"), "before");
  const auto original = must(store_->list_inbox({.user_id = 42}), "original");

  const std::string sql = "'); DROP TABLE notify_inbox; -- \" \\ ' `x` $1 ?1 %s \xF0\x9F\x8E\x89";
  const std::string mebibyte(std::size_t{1} << 20, 'x');
  RoutedEvent hostile = routed(2);
  NewInboxItem item = inbox_item(hostile, 42);
  item.title = sql;
  item.body = mebibyte;
  item.link = "/x?a='1'&b=\"2\"";
  hostile.inbox.push_back(item);
  NewDelivery quoted = delivery(hostile, "email:" + sql);
  quoted.payload = sql + mebibyte;
  hostile.deliveries.push_back(quoted);
  hostile.changes.push_back({.op = DirectoryChange::Op::set_group, .group = sql, .members = {42}});
  const std::vector<RoutedEvent> second{hostile};
  ASSERT_EQ(must(store_->apply_routing(second, sql), "hostile"), 2u);

  const auto items = must(store_->list_inbox({.user_id = 42}), "after");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].title, sql);
  EXPECT_EQ(items[0].body, mebibyte);
  EXPECT_EQ(items[0].link, item.link);
  EXPECT_EQ(items[1].title, original[0].title);
  EXPECT_EQ(items[1].body, original[0].body);
  const auto deliveries = must(store_->list_deliveries({}), "deliveries");
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].recipient, "email:" + sql);
  EXPECT_EQ(deliveries[0].payload, quoted.payload);
  EXPECT_EQ(must(store_->group(sql), "group"), std::vector<std::int64_t>{42});
  EXPECT_EQ(checkpoint(sql), 2);

  // NUL bytes, invalid UTF-8 and oversized names are refused, naming the field.
  const auto refused = [&](RoutedEvent event) {
    const std::vector<RoutedEvent> events{event};
    auto result = store_->apply_routing(events, "notify");
    return result ? Error{} : result.error();
  };
  RoutedEvent nul = routed(3);
  NewInboxItem with_nul = inbox_item(nul, 42);
  with_nul.title = std::string("a\0b", 3);
  nul.inbox.push_back(with_nul);
  RoutedEvent latin1 = routed(3);
  NewInboxItem bad_utf8 = inbox_item(latin1, 42);
  bad_utf8.body = "caf\xE9";
  latin1.inbox.push_back(bad_utf8);
  RoutedEvent big_name = routed(3);
  big_name.changes.push_back(
      {.op = DirectoryChange::Op::upsert_user, .user_id = 42, .discord_username = mebibyte});
  RoutedEvent big_body = routed(3);
  NewInboxItem too_big = inbox_item(big_body, 42);
  too_big.body = mebibyte + "y";
  big_body.inbox.push_back(too_big);
  RoutedEvent negative = routed(3);
  negative.inbox.push_back(inbox_item(negative, -42));

  const Error nul_error = refused(nul);
  EXPECT_EQ(nul_error.field, "events[0].inbox[0].title");
  EXPECT_NE(nul_error.message.find("NUL"), std::string::npos);
  EXPECT_EQ(refused(latin1).field, "events[0].inbox[0].body");
  const Error name_error = refused(big_name);
  EXPECT_EQ(name_error.code, ErrorCode::too_large);
  EXPECT_EQ(name_error.field, "events[0].changes[0].discord_username");
  EXPECT_EQ(refused(big_body).code, ErrorCode::too_large);
  EXPECT_EQ(refused(negative).field, "events[0].inbox[0].user_id");
  EXPECT_EQ(must(store_->list_inbox({.user_id = 42}), "unchanged").size(), 2u);
  EXPECT_EQ(checkpoint("notify"), 1);
}

TEST_P(NotificationStoreTest, NegativeAndHugeIdsAreNotFoundOrRefused) {
  make_deliveries(1);
  for (std::int64_t id :
       {std::int64_t{-1}, std::int64_t{0}, std::numeric_limits<std::int64_t>::max(),
        std::numeric_limits<std::int64_t>::min()}) {
    auto delivery = store_->get_delivery(id);
    ASSERT_FALSE(delivery) << id;
    EXPECT_EQ(delivery.error().code, ErrorCode::not_found) << id;
    auto attempts = store_->list_attempts(id);
    ASSERT_FALSE(attempts) << id;
    EXPECT_EQ(attempts.error().code, ErrorCode::not_found) << id;
    auto endpoint = store_->get_endpoint(id);
    ASSERT_FALSE(endpoint) << id;
    EXPECT_EQ(endpoint.error().code, ErrorCode::not_found) << id;
    EXPECT_FALSE(must(store_->user(id), "user"));
    EXPECT_TRUE(must(store_->list_inbox({.user_id = id}), "inbox").empty());
    EXPECT_EQ(must(store_->unread_count(id), "unread"), 0);
  }
  EXPECT_EQ(must(store_->list_deliveries({.before_id = std::numeric_limits<std::int64_t>::max()}),
                 "cursor")
                .size(),
            1u);
  EXPECT_TRUE(must(store_->list_deliveries({.before_id = std::numeric_limits<std::int64_t>::min()}),
                   "cursor")
                  .empty());
  auto claim = store_->claim_due("w", herald::now(), 30s, 0);
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().field, "limit");
  auto lease = store_->claim_due("w", herald::now(), -5s, 1);
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().field, "lease");
  auto worker = store_->claim_due("", herald::now(), 30s, 1);
  ASSERT_FALSE(worker);
  EXPECT_EQ(worker.error().field, "worker");
}

// --- the schema ---

TEST_P(NotificationStoreTest, ReopeningKeepsEverything) {
  make_deliveries(2);
  must(store_->set_email(42, "ada@example.org"), "email");
  store_.reset();

  store_ = open();

  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(must(store_->list_deliveries({}), "list").size(), 2u);
  EXPECT_EQ(must(store_->user(42), "user")->email, "ada@example.org");
}

TEST_P(NotificationStoreTest, NotificationTablesOfANewerHeraldAreRefusedAndLeftAlone) {
  make_deliveries(1);
  store_.reset();
  raw_sql("UPDATE notify_meta SET value = '99' WHERE key = 'schema_version'");

  auto reopened = open_notification_store(location_);

  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().code, ErrorCode::conflict);
  EXPECT_NE(reopened.error().message.find("99"), std::string::npos) << reopened.error().message;
  EXPECT_NE(reopened.error().message.find("newer"), std::string::npos) << reopened.error().message;
  // Still version 99 with its row: put the version back and the data is all there.
  raw_sql("UPDATE notify_meta SET value = '1' WHERE key = 'schema_version'");
  store_ = open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(must(store_->list_deliveries({}), "list").size(), 1u);
}

TEST(NotificationStoreOpen, RefusesADatabaseWithoutAnEventStore) {
  TempDir dir;
  const std::string path = dir.file("empty.db");
  { store_test::RawDb db(path); }

  auto opened = open_notification_store(path);
  auto missing = open_notification_store(dir.file("missing.db"));

  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("event store"), std::string::npos)
      << opened.error().message;
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().field, "location");
}

TEST(WebhookSecret, IsWhsecAndBase64Of24RandomBytes) {
  const std::string first = must(generate_webhook_secret(), "first");
  const std::string second = must(generate_webhook_secret(), "second");

  ASSERT_TRUE(first.starts_with("whsec_"));
  const std::string encoded = first.substr(6);
  ASSERT_EQ(encoded.size(), 32u);
  unsigned char decoded[33] = {};
  EXPECT_EQ(EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(encoded.data()),
                            static_cast<int>(encoded.size())),
            24);
  EXPECT_NE(first, second);
}

}  // namespace
}  // namespace herald::notify
