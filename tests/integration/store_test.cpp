#include "herald/event_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../../src/store/sqlite_store.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/json.hpp"
#include "herald/sqlite_outbox.hpp"
#include "store_test_support.hpp"

// The store's behaviour, once for every backend: SQLite on a file in a temporary directory, and
// PostgreSQL on the server scripts/with_postgres.sh starts (HERALD_TEST_PG_URL), each test in a
// fresh schema. Then what only SQLite has: its file format, group commit statistics, the outbox.

namespace herald::store_test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using domain::TournamentCreatedEvent;

enum class Backend { sqlite, postgresql };

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::sqlite ? "SQLite" : "PostgreSQL";
}

class StoreTest : public ::testing::TestWithParam<Backend> {
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
      pg_schema_ = "herald_st" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
      pg_admin("DROP SCHEMA IF EXISTS " + pg_schema_ + " CASCADE");
      pg_admin("CREATE SCHEMA " + pg_schema_);
      location_ = pg_base_url_ + (pg_base_url_.find('?') == std::string::npos ? "?" : "&") +
                  "options=-csearch_path%3D" + pg_schema_;
    } else {
      dir_.emplace();
      location_ = dir_->file("herald.db");
    }
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
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

  StoreOptions options() const {
    return StoreOptions{.location = location_, .catalog = &domain::platform_catalog()};
  }

  std::unique_ptr<EventStore> open(const StoreOptions& o) {
    auto store = open_store(o);
    if (!store) {
      ADD_FAILURE() << "opening the store failed: " << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }
  std::unique_ptr<EventStore> open() { return open(options()); }

  /// SQLite positions have no holes; PostgreSQL's may (a sequence value is not given back).
  bool gapless() const { return GetParam() == Backend::sqlite; }

  std::vector<StoredEvent> all(EventStore& store, const EventFilter& filter = {}) {
    return must(store.read_forward(0, 100000, filter), "read_forward");
  }

  /// An audit record for `event` stored at `position`, linked to `prev_hash`. The store does not
  /// recompute hashes, so `hash` is any value that differs per record and link.
  static AuditRecord audit_record(const EventPtr& event, std::int64_t position,
                                  const HashHex& prev_hash, std::string action = "test_action",
                                  std::optional<std::int64_t> actor = 7) {
    AuditRecord record;
    record.position = position;
    record.event_id = event->event_id;
    record.occurred_at = event->timestamp;
    record.recorded_at = herald::now();
    record.actor = actor;
    record.organization_id = event->organization_id;
    record.action = std::move(action);
    record.entity_type = std::string(event.type().entity_type());
    if (const EntityEvent* entity = event.ref().entity(); entity && entity->entity_id) {
      record.entity_id = to_string(*entity->entity_id);
    }
    record.details = {{"event_type", event.event_type()}, {"n", position}};
    record.prev_hash = prev_hash;
    record.hash = sha256_hex(prev_hash + record.event_id.to_string());
    return record;
  }

  /// `records` with their links and hashes computed again after `prev_hash`, in order.
  static std::vector<AuditRecord> rechain(std::vector<AuditRecord> records, HashHex prev_hash) {
    for (AuditRecord& record : records) {
      record.prev_hash = prev_hash;
      record.hash = sha256_hex(prev_hash + record.event_id.to_string() +
                               std::to_string(record.actor.value_or(0)));
      prev_hash = record.hash;
    }
    return records;
  }

  /// Records for `events`, stored at `positions`, chained after `prev_hash`.
  static std::vector<AuditRecord> audit_chain(const std::vector<EventPtr>& events,
                                              const std::vector<std::int64_t>& positions,
                                              HashHex prev_hash) {
    std::vector<AuditRecord> records;
    for (std::size_t i = 0; i < events.size(); ++i) {
      records.push_back(audit_record(events[i], positions[i], prev_hash));
      prev_hash = records.back().hash;
    }
    return records;
  }

  /// Appends `events` and returns their positions.
  std::vector<std::int64_t> append_all(const std::vector<EventPtr>& events) {
    std::vector<std::int64_t> positions;
    for (const AppendResult& r : must(store_->append_batch(refs(events)), "append_batch")) {
      positions.push_back(r.position);
    }
    return positions;
  }

  /// Appends `event` and a matching audit record chained to the head; returns the record.
  AuditRecord append_audited(const EventPtr& event, std::string action,
                             std::optional<std::int64_t> actor) {
    const AppendResult appended = must(store_->append(event), "append");
    const AuditChainHead head = must(store_->audit_head(), "audit_head");
    AuditRecord record =
        audit_record(event, appended.position, head.hash, std::move(action), actor);
    EXPECT_TRUE(must(store_->append_audit(record, "audit"), "append_audit"));
    return record;
  }

  std::optional<TempDir> dir_;
  std::string pg_base_url_;
  std::string pg_schema_;
  std::string location_;
  std::unique_ptr<EventStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::sqlite, Backend::postgresql), backend_name);

/// Failures of store calls made on other threads, where a throw would end the process.
class ThreadErrors {
 public:
  template <class T>
  void check(const std::expected<T, Error>& result) {
    if (result) return;
    std::lock_guard lock(mutex_);
    messages_.push_back(result.error().message);
  }
  std::string first() const {
    std::lock_guard lock(mutex_);
    return messages_.empty() ? std::string() : messages_.front();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

std::vector<std::int64_t> positions_of(const std::vector<StoredEvent>& events) {
  std::vector<std::int64_t> out;
  for (const StoredEvent& e : events) out.push_back(e.position);
  return out;
}

// --- append ---

TEST_P(StoreTest, AppendReturnsPositionsFromOneUpInAppendOrder) {
  EXPECT_EQ(must(store_->head()), 0);
  std::vector<std::int64_t> positions;
  for (int i = 1; i <= 3; ++i) {
    const AppendResult result = must(store_->append(tournament_created(i)));
    EXPECT_TRUE(result.inserted);
    positions.push_back(result.position);
  }
  EXPECT_EQ(positions, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(must(store_->head()), 3);
}

TEST_P(StoreTest, AppendOfAStoredEventIdWritesNothingAndReturnsTheStoredPosition) {
  const EventPtr original = tournament_created(1, 1, "Original");
  must(store_->append(tournament_created(2)));
  const AppendResult first = must(store_->append(original));
  // The same id with other content: still the first write wins and nothing is added.
  auto retry = make<TournamentCreatedEvent>({.entity_id = 1, .event_id = original->event_id},
                                            {.tournament_name = "Changed"});
  const AppendResult second = must(store_->append(EventPtr::make(std::move(retry))));

  EXPECT_TRUE(first.inserted);
  EXPECT_FALSE(second.inserted);
  EXPECT_EQ(second.position, first.position);
  EXPECT_EQ(must(store_->count()), 2);
  const auto stored = must(store_->get(original->event_id));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(*stored->event.get<TournamentCreatedEvent>()->tournament_name, "Original");
}

TEST_P(StoreTest, AppendBatchReturnsEachPositionInOrder) {
  must(store_->append(user_created(1)));
  const std::vector<EventPtr> batch{tournament_created(1), tournament_created(2),
                                    tournament_created(3)};
  const auto results = must(store_->append_batch(refs(batch)));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].position, 2);
  EXPECT_EQ(results[1].position, 3);
  EXPECT_EQ(results[2].position, 4);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_TRUE(results[i].inserted);
    EXPECT_EQ(must(store_->get(batch[i]->event_id))->position, results[i].position);
  }
}

TEST_P(StoreTest, AppendBatchStoresAnEventIdRepeatedWithinTheBatchOnce) {
  const EventPtr stored_before = user_created(9);
  const AppendResult earlier = must(store_->append(stored_before));
  const EventPtr a = tournament_created(1);
  const EventPtr b = tournament_created(2);
  const std::vector<EventPtr> batch{a, b, a, stored_before};
  const auto results = must(store_->append_batch(refs(batch)));
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].inserted);
  EXPECT_TRUE(results[1].inserted);
  EXPECT_FALSE(results[2].inserted);
  EXPECT_EQ(results[2].position, results[0].position);
  EXPECT_FALSE(results[3].inserted);
  EXPECT_EQ(results[3].position, earlier.position);
  EXPECT_EQ(must(store_->count()), 3);
}

TEST_P(StoreTest, AppendBatchWithARefusedEventWritesNoneOfIt) {
  StoreOptions small = options();
  small.max_event_bytes = 2048;
  auto store = open(small);
  ASSERT_NE(store, nullptr);
  const std::vector<EventPtr> oversized{tournament_created(1),
                                        tournament_created(2, 1, std::string(4096, 'x')),
                                        tournament_created(3)};
  auto refused = store->append_batch(refs(oversized));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::too_large);

  const std::vector<EventPtr> unlisted{tournament_created(4), legacy_score(1)};
  auto unknown = store->append_batch(refs(unlisted));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message.find("LegacyScoreEvent"), std::string::npos)
      << unknown.error().message;

  EXPECT_EQ(must(store->count()), 0);
  EXPECT_EQ(must(store->head()), 0);
}

TEST_P(StoreTest, AppendRefusesAnOversizedEventNamingItAndTheLimit) {
  StoreOptions small = options();
  small.max_event_bytes = 2048;
  auto store = open(small);
  ASSERT_NE(store, nullptr);
  const EventPtr big = tournament_created(1, 1, std::string(4096, 'x'));
  auto refused = store->append(big);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::too_large);
  EXPECT_NE(refused.error().message.find(big->event_id.to_string()), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("2048"), std::string::npos) << refused.error().message;
  EXPECT_EQ(must(store->count()), 0);
  EXPECT_FALSE(must(store->get(big->event_id)).has_value());
  EXPECT_EQ(must(store->append(tournament_created(2))).position, 1);
}

TEST_P(StoreTest, AppendRefusesAnEventTypeNotInTheCatalog) {
  auto refused = store_->append(legacy_score(1));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(refused.error().message.find("LegacyScoreEvent"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(must(store_->count()), 0);
}

TEST_P(StoreTest, RacingAppendsOfOneEventIdThroughTwoStoresStoreItOnceAtOnePosition) {
  auto other = open();
  ASSERT_NE(other, nullptr);
  constexpr int rounds = 20;
  for (int round = 0; round < rounds; ++round) {
    const EventPtr event = tournament_created(round);
    std::latch start(2);
    std::optional<std::expected<AppendResult, Error>> left;
    std::optional<std::expected<AppendResult, Error>> right;
    std::thread a([&] {
      start.arrive_and_wait();
      left = store_->append(event);
    });
    std::thread b([&] {
      start.arrive_and_wait();
      right = other->append(event);
    });
    a.join();
    b.join();
    ASSERT_TRUE(*left) << left->error().message;
    ASSERT_TRUE(*right) << right->error().message;
    EXPECT_EQ((*left)->position, (*right)->position) << "round " << round;
    EXPECT_NE((*left)->inserted, (*right)->inserted) << "round " << round;
  }
  EXPECT_EQ(must(store_->count()), rounds);
}

TEST_P(StoreTest, RacingAppendsOfOneEventIdThroughOneStoreStoreItOnceAtOnePosition) {
  constexpr int threads = 6;
  const EventPtr event = tournament_created(1);
  std::latch start(threads);
  std::vector<std::expected<AppendResult, Error>> results(threads, std::unexpected(Error{}));
  std::vector<std::thread> appenders;
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] {
      start.arrive_and_wait();
      results[t] = store_->append(event);
    });
  }
  for (auto& t : appenders) t.join();
  int inserted = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->position, results[0]->position);
    inserted += r->inserted ? 1 : 0;
  }
  EXPECT_EQ(inserted, 1);
  EXPECT_EQ(must(store_->count()), 1);
}

TEST_P(StoreTest, ConcurrentSingleAppendsEachStoreExactlyOnce) {
  constexpr int threads = 8;
  constexpr int per_thread = 50;
  std::vector<std::vector<EventPtr>> events(threads);
  for (int t = 0; t < threads; ++t) {
    for (int i = 0; i < per_thread; ++i) events[t].push_back(tournament_created(t * 1000 + i));
  }
  std::vector<std::vector<std::int64_t>> positions(threads);
  std::latch start(threads);
  std::vector<std::thread> appenders;
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] {
      start.arrive_and_wait();
      for (const EventPtr& e : events[t]) {
        auto r = store_->append(e);
        positions[t].push_back(r ? r->position : -1);
      }
    });
  }
  for (auto& t : appenders) t.join();
  std::set<std::int64_t> distinct;
  for (int t = 0; t < threads; ++t) {
    // Each thread's appends are acknowledged in its own order.
    EXPECT_TRUE(std::ranges::is_sorted(positions[t]));
    distinct.insert(positions[t].begin(), positions[t].end());
  }
  EXPECT_FALSE(distinct.contains(-1));
  EXPECT_EQ(distinct.size(), std::size_t{threads * per_thread});
  EXPECT_EQ(must(store_->count()), threads * per_thread);
  for (int t = 0; t < threads; ++t) {
    for (int i = 0; i < per_thread; ++i) {
      EXPECT_EQ(must(store_->get(events[t][i]->event_id))->position, positions[t][i]);
    }
  }
}

// --- reads ---

TEST_P(StoreTest, ReadForwardReturnsEventsAfterAPositionOldestFirstUpToTheLimit) {
  for (int i = 1; i <= 10; ++i) must(store_->append(tournament_created(i)));
  EXPECT_EQ(positions_of(must(store_->read_forward(0, 3))), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(positions_of(must(store_->read_forward(7, 100))),
            (std::vector<std::int64_t>{8, 9, 10}));
  EXPECT_TRUE(must(store_->read_forward(10, 100)).empty());
  EXPECT_TRUE(must(store_->read_forward(0, 0)).empty());
}

TEST_P(StoreTest, ReadBackwardReturnsEventsBeforeAPositionNewestFirstUpToTheLimit) {
  for (int i = 1; i <= 10; ++i) must(store_->append(tournament_created(i)));
  EXPECT_EQ(positions_of(must(store_->read_backward(std::nullopt, 3))),
            (std::vector<std::int64_t>{10, 9, 8}));
  EXPECT_EQ(positions_of(must(store_->read_backward(4, 100))),
            (std::vector<std::int64_t>{3, 2, 1}));
  EXPECT_TRUE(must(store_->read_backward(1, 100)).empty());
}

TEST_P(StoreTest, ReadBackPreservesEveryFieldOfTheEvent) {
  boost::json::object metadata{{"request_id", "r-1"}, {"source", "api"}};
  boost::json::object snapshot{{"name", "Spring Cup"}, {"rounds", 3}};
  const EventPtr tournament = EventPtr::make(
      make<TournamentCreatedEvent>({.entity_id = 42,
                                    .user_id = 7,
                                    .organization_id = 3,
                                    .entity_data = snapshot,
                                    .metadata = metadata,
                                    .priority = Priority::high},
                                   {.tournament_name = "Spring Cup", .tournament_type = "live"}));
  const EventPtr race = race_submitted("bold-rush-1234");
  const Timestamp before = herald::now();
  must(store_->append(tournament));
  must(store_->append(race));
  const Timestamp after = herald::now();

  const auto stored = all(*store_);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(encode_event(stored[0].event), encode_event(tournament));
  EXPECT_EQ(encode_event(stored[1].event), encode_event(race));
  ASSERT_NE(stored[0].event.get<TournamentCreatedEvent>(), nullptr);
  ASSERT_NE(stored[1].event.get<domain::RaceSubmittedEvent>(), nullptr);
  for (const StoredEvent& e : stored) {
    EXPECT_GE(e.recorded_at, before - 1s);  // PostgreSQL's clock may differ slightly from ours.
    EXPECT_LE(e.recorded_at, after + 1s);
  }
}

TEST_P(StoreTest, ReadsFilterByEventTypes) {
  must(store_->append(tournament_created(1)));
  must(store_->append(user_created(1)));
  must(store_->append(race_submitted("room-a")));
  must(store_->append(user_created(2)));
  EXPECT_EQ(positions_of(all(*store_, {.types = {"UserCreatedEvent"}})),
            (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(positions_of(all(*store_, {.types = {"TournamentCreatedEvent", "RaceSubmittedEvent"}})),
            (std::vector<std::int64_t>{1, 3}));
  EXPECT_TRUE(all(*store_, {.types = {"NoSuchEvent"}}).empty());
}

TEST_P(StoreTest, ReadsFilterByOrganization) {
  must(store_->append(tournament_created(1, 10)));
  must(store_->append(tournament_created(2, 20)));
  must(store_->append(user_created(3)));  // no organization
  must(store_->append(tournament_created(4, 10)));
  EXPECT_EQ(positions_of(all(*store_, {.organization_id = 10})), (std::vector<std::int64_t>{1, 4}));
  EXPECT_EQ(positions_of(all(*store_, {.organization_id = 20})), (std::vector<std::int64_t>{2}));
}

TEST_P(StoreTest, ReadsFilterByEntityTypeAndId) {
  must(store_->append(tournament_created(5)));
  must(store_->append(user_created(5)));
  must(store_->append(tournament_created(6)));
  must(store_->append(race_submitted("bold-rush-1234")));
  EXPECT_EQ(positions_of(all(*store_, {.entity_type = "Tournament"})),
            (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(positions_of(all(*store_, {.entity_type = "Tournament", .entity_id = "5"})),
            (std::vector<std::int64_t>{1}));
  EXPECT_EQ(positions_of(all(*store_, {.entity_id = "bold-rush-1234"})),
            (std::vector<std::int64_t>{4}));
}

TEST_P(StoreTest, ReadsFilterByEntityIdAloneAcrossEntityTypes) {
  must(store_->append(tournament_created(5)));
  must(store_->append(user_created(5)));
  must(store_->append(tournament_created(6)));
  EXPECT_EQ(positions_of(all(*store_, {.entity_id = "5"})), (std::vector<std::int64_t>{1, 2}));
}

TEST_P(StoreTest, ReadsFilterByTimeRangeFromSinceInclusiveToUntilExclusive) {
  const Timestamp t0 = herald::now() - 3h;
  const Timestamp t1 = t0 + 1h;
  const Timestamp t2 = t0 + 2h;
  for (Timestamp t : {t0, t1, t2}) {
    must(store_->append(
        EventPtr::make(make<TournamentCreatedEvent>({.entity_id = 1, .timestamp = t}))));
  }
  EXPECT_EQ(positions_of(all(*store_, {.since = t1})), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(positions_of(all(*store_, {.until = t1})), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(positions_of(all(*store_, {.since = t1, .until = t2})), (std::vector<std::int64_t>{2}));
}

TEST_P(StoreTest, ReadsCombineFiltersAndApplyTheLimitToMatchingEvents) {
  for (int i = 1; i <= 10; ++i) {
    must(store_->append(tournament_created(i, i % 2 == 0 ? 2 : 1)));
    must(store_->append(user_created(i)));
  }
  const EventFilter even_org_tournaments{.types = {"TournamentCreatedEvent"}, .organization_id = 2};
  EXPECT_EQ(positions_of(must(store_->read_forward(0, 2, even_org_tournaments))),
            (std::vector<std::int64_t>{3, 7}));
  EXPECT_EQ(positions_of(must(store_->read_forward(7, 2, even_org_tournaments))),
            (std::vector<std::int64_t>{11, 15}));
  EXPECT_EQ(positions_of(must(store_->read_backward(std::nullopt, 2, even_org_tournaments))),
            (std::vector<std::int64_t>{19, 15}));
  EXPECT_EQ(positions_of(must(store_->read_backward(15, 10, even_org_tournaments))),
            (std::vector<std::int64_t>{11, 7, 3}));
}

TEST_P(StoreTest, CountAppliesTheFilter) {
  EXPECT_EQ(must(store_->count()), 0);
  for (int i = 1; i <= 4; ++i) must(store_->append(tournament_created(i, i <= 3 ? 1 : 2)));
  must(store_->append(user_created(1)));
  EXPECT_EQ(must(store_->count()), 5);
  EXPECT_EQ(must(store_->count({.types = {"TournamentCreatedEvent"}})), 4);
  EXPECT_EQ(must(store_->count({.organization_id = 1})), 3);
  EXPECT_EQ(must(store_->count({.entity_type = "User", .entity_id = "1"})), 1);
}

TEST_P(StoreTest, GetFindsAStoredEventByIdAndNothingForAnUnknownId) {
  const EventPtr event = tournament_created(1);
  must(store_->append(user_created(1)));
  must(store_->append(event));
  const auto found = must(store_->get(event->event_id));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->position, 2);
  EXPECT_EQ(found->event->event_id, event->event_id);
  EXPECT_FALSE(must(store_->get(EventId::generate())).has_value());
}

TEST_P(StoreTest, HeadIsZeroWhenEmptyThenTheLastPosition) {
  EXPECT_EQ(must(store_->head()), 0);
  must(store_->append(tournament_created(1)));
  EXPECT_EQ(must(store_->head()), 1);
  must(store_->append_batch(refs({tournament_created(2), tournament_created(3)})));
  EXPECT_EQ(must(store_->head()), 3);
}

TEST_P(StoreTest, EventsSurviveReopeningTheStore) {
  const EventPtr event = tournament_created(1);
  must(store_->append(event));
  must(store_->save_checkpoint("mailer", 1));
  store_.reset();
  store_ = open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(must(store_->count()), 1);
  EXPECT_EQ(encode_event(must(store_->get(event->event_id))->event), encode_event(event));
  EXPECT_EQ(must(store_->load_checkpoint("mailer")).position, 1);
  EXPECT_EQ(must(store_->append(tournament_created(2))).position, 2);
}

TEST_P(StoreTest,
       ReadingAnEventOfATypeMissingFromTheCatalogNamesTypeAndPositionAndOthersStayReadable) {
  StoreOptions wide = options();
  wide.catalog = &catalog_with_legacy();
  const EventPtr before = tournament_created(1);
  const EventPtr legacy = legacy_score(2);
  const EventPtr after = tournament_created(3);
  {
    auto writer = open(wide);
    ASSERT_NE(writer, nullptr);
    must(writer->append_batch(refs({before, legacy, after})));
  }
  // store_ has the platform catalog, which lacks LegacyScoreEvent.
  auto unreadable = store_->get(legacy->event_id);
  ASSERT_FALSE(unreadable.has_value());
  const std::string& message = unreadable.error().message;
  EXPECT_NE(message.find("LegacyScoreEvent"), std::string::npos) << message;
  EXPECT_NE(message.find("position 2"), std::string::npos) << message;

  // A read stops before the unreadable event, reports it when it comes first, and reads on past it.
  EXPECT_EQ(positions_of(must(store_->read_forward(0, 10))), (std::vector<std::int64_t>{1}));
  auto at_legacy = store_->read_forward(1, 10);
  ASSERT_FALSE(at_legacy.has_value());
  EXPECT_NE(at_legacy.error().message.find("position 2"), std::string::npos);
  EXPECT_EQ(positions_of(must(store_->read_forward(2, 10))), (std::vector<std::int64_t>{3}));
  EXPECT_EQ(positions_of(must(store_->read_backward(std::nullopt, 10))),
            (std::vector<std::int64_t>{3}));
  EXPECT_TRUE(must(store_->get(before->event_id)).has_value());
  EXPECT_TRUE(must(store_->get(after->event_id)).has_value());
  EXPECT_EQ(must(store_->count()), 3);
}

// --- following the store ---

TEST_P(StoreTest, WaitForWakesAtOnceWhenThisProcessAppends) {
  StoreOptions o = options();
  o.sqlite_poll_interval = std::chrono::hours(1);  // only a wake-up can end the wait in time
  auto store = open(o);
  ASSERT_NE(store, nullptr);
  std::latch waiting(1);
  std::expected<std::int64_t, Error> woke = std::unexpected(Error{});
  Clock::duration waited{};
  std::thread waiter([&] {
    waiting.count_down();
    const auto start = Clock::now();
    woke = store->wait_for(0, 60s);
    waited = Clock::now() - start;
  });
  waiting.wait();
  must(store->append(tournament_created(1)));
  waiter.join();
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_EQ(*woke, 1);
  EXPECT_LT(waited, 30s);
}

TEST_P(StoreTest, WaitForReturnsAtOnceWhenAnEventIsPastThePosition) {
  must(store_->append(tournament_created(1)));
  must(store_->append(tournament_created(2)));
  const auto start = Clock::now();
  EXPECT_EQ(must(store_->wait_for(1, 60s)), 2);
  EXPECT_LT(Clock::now() - start, 30s);
}

TEST_P(StoreTest, WaitForReturnsTheHeadWhenTheTimeoutPassesWithoutAppends) {
  must(store_->append(tournament_created(1)));
  const auto start = Clock::now();
  EXPECT_EQ(must(store_->wait_for(1, 100ms)), 1);
  EXPECT_GE(Clock::now() - start, 100ms);
}

TEST_P(StoreTest, WakeWaitersEndsAWaitForInProgressAtOnceAndNotALaterOne) {
  StoreOptions o = options();
  o.sqlite_poll_interval = std::chrono::hours(1);  // only a wake-up can end the wait in time
  auto store = open(o);
  ASSERT_NE(store, nullptr);
  must(store->append(tournament_created(1)));

  // A wake before the waiter is inside wait_for is not seen by it (documented), so the waker
  // repeats it until the waiter returns, as DurableConsumer::stop does.
  const auto start = Clock::now();
  auto waited = std::async(std::launch::async, [&] { return store->wait_for(1, 60s); });
  while (waited.wait_for(10ms) != std::future_status::ready) store->wake_waiters();
  const auto woke = waited.get();
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_EQ(*woke, 1);  // the head, which did not move
  EXPECT_LT(Clock::now() - start, 30s);

  // A wait that begins afterwards runs its course.
  store->wake_waiters();
  const auto later = Clock::now();
  EXPECT_EQ(must(store->wait_for(1, 200ms)), 1);
  EXPECT_GE(Clock::now() - later, 200ms);
}

TEST_P(StoreTest, TailingReaderSeesEveryEventOnceInPositionOrderWhileThreadsAppend) {
  constexpr int single_writers = 4;
  constexpr int singles_each = 150;
  constexpr int batches = 20;
  constexpr int batch_size = 10;
  constexpr std::size_t total = single_writers * singles_each + batches * batch_size;

  std::vector<std::vector<EventPtr>> work(single_writers + 1);
  for (int w = 0; w < single_writers; ++w) {
    for (int i = 0; i < singles_each; ++i) work[w].push_back(tournament_created(w * 1000 + i));
  }
  for (std::size_t i = 0; i < batches * batch_size; ++i) {
    work[single_writers].push_back(user_created(static_cast<std::int64_t>(i)));
  }

  std::vector<std::string> seen;
  std::vector<std::string> order_faults;
  std::string read_error;
  std::int64_t last = 0;
  std::thread reader([&] {
    const auto deadline = Clock::now() + 120s;
    while (seen.size() < total && Clock::now() < deadline) {
      auto page = store_->read_forward(last, 64);
      if (!page) {
        read_error = page.error().message;
        return;
      }
      if (page->empty()) {
        (void)store_->wait_for(last, 1s);
        continue;
      }
      for (const StoredEvent& e : *page) {
        if (e.position <= last || (gapless() && e.position != last + 1)) {
          order_faults.push_back("position " + std::to_string(e.position) + " after " +
                                 std::to_string(last));
        }
        last = e.position;
        seen.push_back(e.event->event_id.to_string());
      }
    }
  });
  ThreadErrors errors;
  std::vector<std::thread> writers;
  for (int w = 0; w < single_writers; ++w) {
    writers.emplace_back([&, w] {
      for (const EventPtr& e : work[w]) errors.check(store_->append(e));
    });
  }
  writers.emplace_back([&] {
    for (int b = 0; b < batches; ++b) {
      std::vector<EventPtr> batch(work[single_writers].begin() + b * batch_size,
                                  work[single_writers].begin() + (b + 1) * batch_size);
      errors.check(store_->append_batch(refs(batch)));
    }
  });
  for (auto& w : writers) w.join();
  reader.join();

  EXPECT_EQ(errors.first(), "");
  EXPECT_EQ(read_error, "");
  EXPECT_TRUE(order_faults.empty()) << order_faults.front();
  std::set<std::string> expected;
  for (const auto& events : work) {
    for (const EventPtr& e : events) expected.insert(e->event_id.to_string());
  }
  // A missed event below where the reader got to was skipped (it became visible after a higher
  // position); one above it means the reader ran out of time.
  const std::set<std::string> seen_set(seen.begin(), seen.end());
  std::string skipped;
  std::string not_reached;
  for (const StoredEvent& e : all(*store_)) {
    if (seen_set.contains(e.event->event_id.to_string())) continue;
    (e.position < last ? skipped : not_reached) += std::to_string(e.position) + " ";
  }
  EXPECT_EQ(skipped, "") << "the reader stopped at position " << last;
  EXPECT_EQ(not_reached, "") << "the reader stopped at position " << last;
  EXPECT_EQ(seen.size(), total);
  EXPECT_EQ(seen_set, expected);
}

// --- checkpoints and parked events ---

TEST_P(StoreTest, CheckpointOfAConsumerThatNeverRanIsZero) {
  const ConsumerCheckpoint checkpoint = must(store_->load_checkpoint("mailer"));
  EXPECT_EQ(checkpoint.name, "mailer");
  EXPECT_EQ(checkpoint.position, 0);
  EXPECT_TRUE(must(store_->list_checkpoints()).empty());
}

TEST_P(StoreTest, SaveCheckpointMovesItForwardAndBackAndListsEveryConsumer) {
  const Timestamp before = herald::now();
  must(store_->save_checkpoint("mailer", 5));
  must(store_->save_checkpoint("audit", 9));
  EXPECT_EQ(must(store_->load_checkpoint("mailer")).position, 5);
  must(store_->save_checkpoint("mailer", 2));  // a replay moves it back
  const ConsumerCheckpoint mailer = must(store_->load_checkpoint("mailer"));
  EXPECT_EQ(mailer.position, 2);
  EXPECT_GE(mailer.updated_at, before - 1s);
  const auto listed = must(store_->list_checkpoints());
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "audit");
  EXPECT_EQ(listed[0].position, 9);
  EXPECT_EQ(listed[1].name, "mailer");
  EXPECT_EQ(listed[1].position, 2);
}

ParkedEvent parked(std::string consumer, std::int64_t position, std::string error, int attempts) {
  return ParkedEvent{.consumer = std::move(consumer),
                     .position = position,
                     .event_id = EventId::generate(),
                     .event_type = "TournamentCreatedEvent",
                     .error = std::move(error),
                     .attempts = attempts,
                     .parked_at = herald::now()};
}

TEST_P(StoreTest, ParkedEventsAreListedPerConsumerUntilUnparked) {
  const ParkedEvent first = parked("mailer", 3, "SMTP 554 rejected", 5);
  must(store_->park(first));
  must(store_->park(parked("mailer", 7, "timeout", 5)));
  must(store_->park(parked("webhooks", 4, "HTTP 500", 3)));

  const auto mailer = must(store_->list_parked("mailer"));
  ASSERT_EQ(mailer.size(), 2u);
  EXPECT_EQ(mailer[0].position, 3);
  EXPECT_EQ(mailer[0].event_id, first.event_id);
  EXPECT_EQ(mailer[0].event_type, "TournamentCreatedEvent");
  EXPECT_EQ(mailer[0].error, "SMTP 554 rejected");
  EXPECT_EQ(mailer[0].attempts, 5);
  EXPECT_EQ(mailer[0].parked_at, first.parked_at);
  EXPECT_EQ(mailer[1].position, 7);
  EXPECT_EQ(must(store_->list_parked()).size(), 3u);

  must(store_->unpark("mailer", 3));
  const auto left = must(store_->list_parked("mailer"));
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].position, 7);
  EXPECT_EQ(must(store_->list_parked("webhooks")).size(), 1u);
}

TEST_P(StoreTest, ParkingAnEventAgainUpdatesItsErrorAndAttempts) {
  must(store_->park(parked("mailer", 3, "timeout", 3)));
  must(store_->park(parked("mailer", 3, "SMTP 554 rejected", 6)));
  const auto listed = must(store_->list_parked("mailer"));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].error, "SMTP 554 rejected");
  EXPECT_EQ(listed[0].attempts, 6);
}

TEST_P(StoreTest, UnparkOfAnEventThatIsNotParkedIsNotFound) {
  must(store_->park(parked("mailer", 3, "timeout", 3)));
  auto missing = store_->unpark("mailer", 4);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  auto other_consumer = store_->unpark("webhooks", 3);
  ASSERT_FALSE(other_consumer.has_value());
  EXPECT_EQ(other_consumer.error().code, ErrorCode::not_found);
  EXPECT_EQ(must(store_->list_parked()).size(), 1u);
}

// --- audit log ---

TEST_P(StoreTest, AuditHeadOfAnEmptyLogIsPositionZeroAndTheGenesisHash) {
  const AuditChainHead head = must(store_->audit_head());
  EXPECT_EQ(head.position, 0);
  EXPECT_EQ(head.hash, genesis_hash);
}

TEST_P(StoreTest, AppendAuditStoresTheRecordAndMovesTheCheckpointTogether) {
  const AuditRecord record =
      append_audited(race_submitted("bold-rush-1234", 4), "race_submitted", 11);
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, record.position);
  const AuditChainHead head = must(store_->audit_head());
  EXPECT_EQ(head.position, record.position);
  EXPECT_EQ(head.hash, record.hash);

  const auto chain = must(store_->read_audit_chain(0, 10));
  ASSERT_EQ(chain.size(), 1u);
  const AuditRecord& read = chain[0];
  EXPECT_EQ(read.position, record.position);
  EXPECT_EQ(read.event_id, record.event_id);
  EXPECT_EQ(read.occurred_at, record.occurred_at);
  EXPECT_EQ(read.recorded_at, record.recorded_at);
  EXPECT_EQ(read.actor, record.actor);
  EXPECT_EQ(read.organization_id, record.organization_id);
  EXPECT_EQ(read.action, record.action);
  EXPECT_EQ(read.entity_type, "AsyncTournamentRace");
  EXPECT_EQ(read.entity_id, std::optional<std::string>("bold-rush-1234"));
  EXPECT_EQ(read.details, record.details);
  EXPECT_EQ(read.prev_hash, genesis_hash);
  EXPECT_EQ(read.hash, record.hash);
}

TEST_P(StoreTest, AppendAuditOfARecordedEventIdWritesNothingAndStillMovesTheCheckpoint) {
  const AuditRecord first = append_audited(tournament_created(1), "tournament_created", 7);
  append_audited(tournament_created(2), "tournament_created", 7);
  must(store_->save_checkpoint("audit", 0));  // a replay from the start

  AuditRecord again = first;
  again.prev_hash = must(store_->audit_head()).hash;
  EXPECT_FALSE(must(store_->append_audit(again, "audit")));
  EXPECT_EQ(must(store_->read_audit_chain(0, 10)).size(), 2u);
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, first.position);
}

TEST_P(StoreTest, AppendAuditRefusesARecordThatDoesNotExtendTheHead) {
  const AuditRecord first = append_audited(tournament_created(1), "tournament_created", 7);
  const EventPtr next = tournament_created(2);
  const AppendResult appended = must(store_->append(next));

  AuditRecord stale = first;
  stale.event_id = next->event_id;
  stale.position = appended.position;
  stale.prev_hash = genesis_hash;  // computed before `first` was written
  auto refused = store_->append_audit(stale, "audit");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);

  AuditRecord behind = stale;
  behind.prev_hash = first.hash;
  behind.position = first.position;  // not above the head
  auto refused_behind = store_->append_audit(behind, "audit");
  ASSERT_FALSE(refused_behind.has_value());
  EXPECT_EQ(refused_behind.error().code, ErrorCode::conflict);

  EXPECT_EQ(must(store_->read_audit_chain(0, 10)).size(), 1u);
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, first.position);
}

TEST_P(StoreTest, AppendAuditBatchWritesTheRecordsAsAChainAndMovesTheCheckpointToTheLast) {
  std::vector<EventPtr> events;
  for (int i = 1; i <= 6; ++i) events.push_back(tournament_created(i));
  const std::vector<std::int64_t> positions = append_all(events);
  const std::vector<AuditRecord> records = audit_chain(events, positions, genesis_hash);

  EXPECT_EQ(must(store_->append_audit_batch(records, "audit")), 6u);
  const auto chain = must(store_->read_audit_chain(0, 100));
  ASSERT_EQ(chain.size(), 6u);
  for (std::size_t i = 0; i < chain.size(); ++i) {
    EXPECT_EQ(chain[i].position, positions[i]);
    EXPECT_EQ(chain[i].event_id, events[i]->event_id);
    EXPECT_EQ(chain[i].details, records[i].details);
    EXPECT_EQ(chain[i].prev_hash, i == 0 ? genesis_hash : chain[i - 1].hash);
    EXPECT_EQ(chain[i].hash, records[i].hash);
  }
  EXPECT_EQ(must(store_->audit_head()).hash, records.back().hash);
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, positions.back());
  EXPECT_EQ(must(store_->append_audit_batch({}, "audit")), 0u);
}

TEST_P(StoreTest, AppendAuditBatchStoresEveryFieldOfEveryRecordOfALongBatch) {
  // 107 records: more than one multi-row INSERT, and a rest of every smaller size.
  std::vector<EventPtr> events;
  for (int i = 1; i <= 107; ++i) events.push_back(tournament_created(i));
  const std::vector<std::int64_t> positions = append_all(events);
  std::vector<AuditRecord> records = audit_chain(events, positions, genesis_hash);
  for (std::size_t i = 0; i < records.size(); i += 3) {
    records[i].actor.reset();
    records[i].organization_id.reset();
    records[i].entity_id.reset();
  }
  records = rechain(std::move(records), genesis_hash);

  EXPECT_EQ(must(store_->append_audit_batch(records, "audit")), records.size());
  const auto chain = must(store_->read_audit_chain(0, 1000));
  ASSERT_EQ(chain.size(), records.size());
  for (std::size_t i = 0; i < chain.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_EQ(chain[i].position, records[i].position);
    EXPECT_EQ(chain[i].event_id, records[i].event_id);
    EXPECT_EQ(chain[i].occurred_at, records[i].occurred_at);
    EXPECT_EQ(chain[i].recorded_at, records[i].recorded_at);
    EXPECT_EQ(chain[i].actor, records[i].actor);
    EXPECT_EQ(chain[i].organization_id, records[i].organization_id);
    EXPECT_EQ(chain[i].action, records[i].action);
    EXPECT_EQ(chain[i].entity_type, records[i].entity_type);
    EXPECT_EQ(chain[i].entity_id, records[i].entity_id);
    EXPECT_EQ(chain[i].details, records[i].details);
    EXPECT_EQ(chain[i].prev_hash, records[i].prev_hash);
    EXPECT_EQ(chain[i].hash, records[i].hash);
  }
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, positions.back());
}

TEST_P(StoreTest, AppendAuditBatchSkipsARecordWhoseEventHasARecordAtAnotherPosition) {
  std::vector<EventPtr> events;
  for (int i = 1; i <= 6; ++i) events.push_back(tournament_created(i));
  const std::vector<std::int64_t> positions = append_all(events);
  const std::vector<AuditRecord> first =
      audit_chain({events.begin(), events.begin() + 2}, {positions.begin(), positions.begin() + 2},
                  genesis_hash);
  ASSERT_EQ(must(store_->append_audit_batch(first, "audit")), 2u);

  // A chain of four records whose last names the first event, which has a record already: that
  // record is skipped as any record of an audited event is, the three before it are written.
  std::vector<AuditRecord> batch =
      audit_chain({events.begin() + 2, events.end()}, {positions.begin() + 2, positions.end()},
                  first.back().hash);
  batch.back().event_id = events[0]->event_id;
  batch = rechain(std::move(batch), first.back().hash);

  EXPECT_EQ(must(store_->append_audit_batch(batch, "audit")), 3u);
  const auto chain = must(store_->read_audit_chain(0, 100));
  ASSERT_EQ(chain.size(), 5u);
  EXPECT_EQ(chain[0].hash, first[0].hash);
  EXPECT_EQ(chain.back().hash, batch[2].hash);
  EXPECT_EQ(must(store_->audit_head()).position, positions[4]);
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, positions.back());
}

TEST_P(StoreTest, AppendAuditBatchAfterAReplaySkipsWrittenRecordsAndChainsTheRestToTheHead) {
  std::vector<EventPtr> events;
  for (int i = 1; i <= 8; ++i) events.push_back(tournament_created(i));
  const std::vector<std::int64_t> positions = append_all(events);
  const std::vector<EventPtr> first_five(events.begin(), events.begin() + 5);
  const std::vector<AuditRecord> written =
      audit_chain(first_five, {positions.begin(), positions.begin() + 5}, genesis_hash);
  ASSERT_EQ(must(store_->append_audit_batch(written, "audit")), 5u);
  must(store_->save_checkpoint("audit", positions[1]));  // a replay from the third event

  // The replayed records 3 to 5 carry contents that differ from what was written (another
  // action, other links); they are skipped by event_id and the written ones stay untouched. 6 to
  // 8 chain to the head, record 5.
  std::vector<AuditRecord> batch =
      audit_chain({events.begin() + 2, events.begin() + 5},
                  {positions.begin() + 2, positions.begin() + 5}, written[1].hash);
  for (AuditRecord& replayed : batch) replayed.action = "replayed";
  const std::vector<AuditRecord> fresh =
      audit_chain({events.begin() + 5, events.end()}, {positions.begin() + 5, positions.end()},
                  written[4].hash);
  batch.insert(batch.end(), fresh.begin(), fresh.end());

  EXPECT_EQ(must(store_->append_audit_batch(batch, "audit")), 3u);
  const auto chain = must(store_->read_audit_chain(0, 100));
  ASSERT_EQ(chain.size(), 8u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(chain[i].hash, written[i].hash);
    EXPECT_EQ(chain[i].action, "test_action");
  }
  for (std::size_t i = 5; i < 8; ++i) EXPECT_EQ(chain[i].hash, fresh[i - 5].hash);
  EXPECT_EQ(chain[5].prev_hash, written[4].hash);
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, positions.back());

  // A batch of records that are all written moves the checkpoint and writes nothing.
  must(store_->save_checkpoint("audit", 0));
  EXPECT_EQ(must(store_->append_audit_batch(written, "audit")), 0u);
  EXPECT_EQ(must(store_->load_checkpoint("audit")).position, written.back().position);
  EXPECT_EQ(must(store_->read_audit_chain(0, 100)).size(), 8u);
}

TEST_P(StoreTest, AppendAuditBatchThatDoesNotExtendTheChainWritesNothing) {
  std::vector<EventPtr> events;
  for (int i = 1; i <= 7; ++i) events.push_back(tournament_created(i));
  const std::vector<std::int64_t> positions = append_all(events);
  const std::vector<AuditRecord> first =
      audit_chain({events.begin(), events.begin() + 3}, {positions.begin(), positions.begin() + 3},
                  genesis_hash);
  ASSERT_EQ(must(store_->append_audit_batch(first, "audit")), 3u);

  const auto expect_nothing_written = [&](const std::vector<AuditRecord>& batch,
                                          const std::string& field) {
    auto refused = store_->append_audit_batch(batch, "audit");
    ASSERT_FALSE(refused.has_value()) << field;
    EXPECT_EQ(refused.error().code, ErrorCode::conflict) << refused.error().message;
    EXPECT_EQ(refused.error().field, field) << refused.error().message;
    EXPECT_EQ(must(store_->read_audit_chain(0, 100)).size(), 3u);
    EXPECT_EQ(must(store_->audit_head()).hash, first.back().hash);
    EXPECT_EQ(must(store_->load_checkpoint("audit")).position, positions[2]);
  };
  const std::vector<EventPtr> rest(events.begin() + 3, events.end());
  const std::vector<std::int64_t> rest_positions(positions.begin() + 3, positions.end());

  // Built on a stale head (another writer appended records 1 to 3 meanwhile).
  expect_nothing_written(audit_chain(rest, rest_positions, genesis_hash), "records[0].prev_hash");
  // A good start, but the third record does not link to the second.
  std::vector<AuditRecord> broken = audit_chain(rest, rest_positions, first.back().hash);
  broken[2].prev_hash = broken[0].hash;
  expect_nothing_written(broken, "records[2].prev_hash");
  // An event at or below the head without a record cannot join the chain.
  std::vector<AuditRecord> behind = audit_chain(rest, rest_positions, first.back().hash);
  behind.insert(behind.begin(), audit_record(events[3], positions[1], first.back().hash));
  behind[0].event_id = tournament_created(99)->event_id;
  expect_nothing_written(behind, "records[0].position");
}

TEST_P(StoreTest, AppendAuditBatchRefusesRecordsOutOfPositionOrderNamingTheRecord) {
  std::vector<EventPtr> events{tournament_created(1), tournament_created(2)};
  const std::vector<std::int64_t> positions = append_all(events);
  std::vector<AuditRecord> records = audit_chain(events, positions, genesis_hash);
  std::swap(records[0].position, records[1].position);
  auto refused = store_->append_audit_batch(records, "audit");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(refused.error().field, "records[1].position");
  auto unnamed = store_->append_audit_batch(audit_chain(events, positions, genesis_hash), "");
  ASSERT_FALSE(unnamed.has_value());
  EXPECT_EQ(unnamed.error().field, "consumer");
  EXPECT_TRUE(must(store_->read_audit_chain(0, 100)).empty());
}

TEST_P(StoreTest, ReadAuditChainReturnsRecordsAfterAPositionInChainOrder) {
  std::vector<AuditRecord> written;
  for (int i = 1; i <= 5; ++i) {
    written.push_back(append_audited(tournament_created(i), "tournament_created", 7));
  }
  const auto tail = must(store_->read_audit_chain(written[1].position, 2));
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].position, written[2].position);
  EXPECT_EQ(tail[1].position, written[3].position);
  EXPECT_EQ(tail[0].prev_hash, written[1].hash);
  EXPECT_EQ(tail[1].prev_hash, written[2].hash);
}

std::vector<std::int64_t> audit_positions(const AuditPage& page) {
  std::vector<std::int64_t> out;
  for (const AuditRecord& r : page.items) out.push_back(r.position);
  return out;
}

TEST_P(StoreTest, QueryAuditFiltersByOrganizationActorEntityAndTimeNewestFirst) {
  const Timestamp start = herald::now();
  append_audited(tournament_created(1, 10), "tournament_created", 7);  // 1
  append_audited(user_created(2), "user_created", system_actor);       // 2
  append_audited(tournament_created(3, 20), "tournament_created", 8);  // 3
  append_audited(tournament_created(4, 10), "tournament_created", 8);  // 4
  append_audited(race_submitted("room-x", 10), "race_submitted", 11);  // 5

  EXPECT_EQ(audit_positions(must(store_->query_audit({.organization_id = 10}))),
            (std::vector<std::int64_t>{5, 4, 1}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.actor = 8}))),
            (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.actor = system_actor}))),
            (std::vector<std::int64_t>{2}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.entity_type = "Tournament"}))),
            (std::vector<std::int64_t>{4, 3, 1}));
  EXPECT_EQ(
      audit_positions(must(store_->query_audit({.entity_type = "Tournament", .entity_id = "3"}))),
      (std::vector<std::int64_t>{3}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.entity_id = "room-x"}))),
            (std::vector<std::int64_t>{5}));
  EXPECT_EQ(must(store_->query_audit({.since = start})).total, 5);
  EXPECT_EQ(must(store_->query_audit({.until = start})).total, 0);
  EXPECT_EQ(must(store_->query_audit({.since = start + 1h})).total, 0);
  const AuditPage everything = must(store_->query_audit({}));
  EXPECT_EQ(audit_positions(everything), (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
  EXPECT_EQ(everything.total, 5);
}

TEST_P(StoreTest, QueryAuditMatchesAnActionExactlyOrByPrefix) {
  append_audited(user_created(1), "organization_member_added", 7);    // 1
  append_audited(user_created(2), "organization_member_removed", 7);  // 2
  append_audited(user_created(3), "organization_created", 7);         // 3
  append_audited(user_created(4), "Organization_member_added", 7);    // 4: other case

  EXPECT_EQ(audit_positions(must(store_->query_audit({.action = "organization_member_added"}))),
            (std::vector<std::int64_t>{1}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.action = "organization_member_*"}))),
            (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.action = "organization_*"}))),
            (std::vector<std::int64_t>{3, 2, 1}));
  EXPECT_EQ(must(store_->query_audit({.action = "organization_member"})).total, 0);
}

TEST_P(StoreTest, QueryAuditPrefixTreatsWildcardCharactersLiterally) {
  append_audited(user_created(1), "user_created", 7);  // 1
  append_audited(user_created(2), "userXcreated", 7);  // 2: '_' must not match any character
  append_audited(user_created(3), "50%_done", 7);      // 3
  append_audited(user_created(4), "50abc", 7);         // 4: '%' must not match anything
  append_audited(user_created(5), "a*b?c[d]", 7);      // 5
  append_audited(user_created(6), "aXbYcd", 7);        // 6
  append_audited(user_created(7), "back\\slash", 7);   // 7
  append_audited(user_created(8), "backXslash", 7);    // 8

  EXPECT_EQ(audit_positions(must(store_->query_audit({.action = "user_*"}))),
            (std::vector<std::int64_t>{1}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.action = "50%_*"}))),
            (std::vector<std::int64_t>{3}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.action = "a*b?c[*"}))),
            (std::vector<std::int64_t>{5}));
  EXPECT_EQ(audit_positions(must(store_->query_audit({.action = "back\\*"}))),
            (std::vector<std::int64_t>{7}));
}

TEST_P(StoreTest, QueryAuditCursorPagesStayStableWhileRecordsAreAdded) {
  for (int i = 1; i <= 7; ++i) append_audited(tournament_created(i), "tournament_created", 7);
  const AuditPage first = must(store_->query_audit({.limit = 3}));
  EXPECT_EQ(audit_positions(first), (std::vector<std::int64_t>{7, 6, 5}));
  EXPECT_EQ(first.total, 7);

  // Records added between pages do not shift the next page.
  append_audited(tournament_created(8), "tournament_created", 7);
  append_audited(tournament_created(9), "tournament_created", 7);
  const AuditPage second =
      must(store_->query_audit({.before_position = first.items.back().position, .limit = 3}));
  EXPECT_EQ(audit_positions(second), (std::vector<std::int64_t>{4, 3, 2}));
  EXPECT_EQ(second.total, 9);  // the total ignores the cursor
  const AuditPage last =
      must(store_->query_audit({.before_position = second.items.back().position, .limit = 3}));
  EXPECT_EQ(audit_positions(last), (std::vector<std::int64_t>{1}));
}

TEST_P(StoreTest, QueryAuditRefusesALimitOutsideOneToAThousand) {
  for (std::size_t limit : {std::size_t{0}, std::size_t{1001}}) {
    auto refused = store_->query_audit({.limit = limit});
    ASSERT_FALSE(refused.has_value()) << limit;
    EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(refused.error().message.find("limit"), std::string::npos);
  }
  EXPECT_TRUE(store_->query_audit({.limit = 1000}).has_value());
}

// --- SQLite only: the file, group commit ---

class SqliteStoreTest : public ::testing::Test {
 protected:
  StoreOptions options() const {
    return StoreOptions{.location = path_, .catalog = &domain::platform_catalog()};
  }
  std::unique_ptr<SqliteStore> open(const StoreOptions& o) {
    auto store = open_sqlite_store(o);
    if (!store) {
      ADD_FAILURE() << "opening the store failed: " << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }
  std::unique_ptr<SqliteStore> open() { return open(options()); }

  TempDir dir_;
  std::string path_ = dir_.file("herald.db");
};

TEST_F(SqliteStoreTest, OpenStoreGivesTheSqliteBackendForAFilePath) {
  auto store = open_store(options());
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_NE(dynamic_cast<SqliteStore*>(store->get()), nullptr);
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(SqliteStoreTest, RunsInWalModeWithFullSyncByDefault) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const SqliteSettings settings = must(store->settings());
  EXPECT_EQ(settings.journal_mode, "wal");
  EXPECT_EQ(settings.synchronous, 2);  // FULL
  EXPECT_EQ(settings.busy_timeout_ms, 5000);
}

TEST_F(SqliteStoreTest, RunsWithNormalSyncAndTheGivenLimitsWhenAsked) {
  StoreOptions o = options();
  o.sqlite_sync = SqliteSync::normal;
  o.sqlite_busy_timeout = 1500ms;
  o.sqlite_max_pages = 5000;
  auto store = open(o);
  ASSERT_NE(store, nullptr);
  const SqliteSettings settings = must(store->settings());
  EXPECT_EQ(settings.synchronous, 1);  // NORMAL
  EXPECT_EQ(settings.busy_timeout_ms, 1500);
  EXPECT_EQ(settings.max_page_count, 5000);
}

TEST_F(SqliteStoreTest, MarksTheFileAsHeraldsWithItsSchemaVersion) {
  open().reset();
  RawDb raw(path_, SQLITE_OPEN_READONLY);
  EXPECT_EQ(raw.scalar("PRAGMA application_id"), std::to_string(sqlite_application_id));
  EXPECT_EQ(raw.scalar("SELECT value FROM herald_meta WHERE key = 'application'"), "herald");
  EXPECT_EQ(raw.scalar("SELECT value FROM herald_meta WHERE key = 'schema_version'"),
            std::to_string(sqlite_schema_version));
  for (const char* table : {"herald_events", "herald_consumer_checkpoints", "herald_parked_events",
                            "herald_audit_records"}) {
    EXPECT_EQ(
        raw.scalar(std::string("SELECT count(*) FROM sqlite_schema WHERE name = '") + table + "'"),
        "1")
        << table;
  }
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerHeraldAndLeavesItUntouched) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    must(store->append(tournament_created(1)));
  }
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.exec("UPDATE herald_meta SET value = '999' WHERE key = 'schema_version'"), "");
  }
  const std::string digest = file_sha256(path_);
  auto refused = open_sqlite_store(options());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_NE(refused.error().message.find(path_), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("newer herald"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("999"), std::string::npos) << refused.error().message;
  EXPECT_EQ(file_sha256(path_), digest);
}

TEST_F(SqliteStoreTest, RefusesAnotherProgramsSqliteFileAndLeavesItUntouched) {
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER);"
                       "INSERT INTO invoices (total) VALUES (120), (75);"),
              "");
  }
  const std::string digest = file_sha256(path_);
  auto refused = open_sqlite_store(options());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_NE(refused.error().message.find(path_), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("not herald's"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("invoices"), std::string::npos);
  EXPECT_EQ(file_sha256(path_), digest);
}

TEST_F(SqliteStoreTest, RefusesADatabaseMarkedByAnotherApplicationEvenWhenAdopting) {
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.exec("PRAGMA application_id = 1234; CREATE TABLE notes (body TEXT);"), "");
  }
  const std::string digest = file_sha256(path_);
  StoreOptions o = options();
  o.sqlite_adopt_existing = true;
  auto refused = open_sqlite_store(o);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_NE(refused.error().message.find("another application"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(file_sha256(path_), digest);
}

TEST_F(SqliteStoreTest, AdoptsAServicesDatabaseWhenAskedAndKeepsItsTables) {
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.exec("CREATE TABLE tournaments (id INTEGER PRIMARY KEY, name TEXT);"
                       "INSERT INTO tournaments (name) VALUES ('Spring Cup');"),
              "");
  }
  StoreOptions o = options();
  o.sqlite_adopt_existing = true;
  auto store = open(o);
  ASSERT_NE(store, nullptr);
  must(store->append(tournament_created(1)));
  store.reset();
  // Marked as herald's now, so it opens without the flag.
  store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(must(store->count()), 1);
  RawDb raw(path_);
  EXPECT_EQ(raw.scalar("SELECT name FROM tournaments"), "Spring Cup");
}

TEST_F(SqliteStoreTest, OpensAnEmptySqliteFileAsANewStore) {
  { RawDb raw(path_); }  // creates a zero-byte file
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(must(store->append(tournament_created(1))).position, 1);
}

TEST_F(SqliteStoreTest, RequiresACatalog) {
  StoreOptions o = options();
  o.catalog = nullptr;
  auto refused = open_sqlite_store(o);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(refused.error().field, "catalog");
}

TEST_F(SqliteStoreTest, ConcurrentAppendersShareOneTransaction) {
  StoreOptions o = options();
  o.sqlite_busy_timeout = 120s;
  auto store = open(o);
  ASSERT_NE(store, nullptr);
  // Another connection holds the write lock, so the first appender's transaction waits while
  // the other seven queue behind it; once the lock is released they must commit together.
  RawDb blocker(path_);
  ASSERT_EQ(blocker.exec("BEGIN IMMEDIATE"), "");
  constexpr int threads = 8;
  std::vector<EventPtr> events;
  for (int i = 0; i < threads; ++i) events.push_back(tournament_created(i));
  std::vector<std::expected<AppendResult, Error>> results(threads, std::unexpected(Error{}));
  std::vector<std::thread> appenders;
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] { results[t] = store->append(events[t]); });
  }
  const auto deadline = Clock::now() + 60s;
  while (store->stats().queued < threads && Clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(store->stats().queued, std::size_t{threads});
  EXPECT_EQ(blocker.exec("COMMIT"), "");
  for (auto& t : appenders) t.join();

  for (const auto& r : results) ASSERT_TRUE(r) << r.error().message;
  const SqliteStoreStats stats = store->stats();
  EXPECT_EQ(stats.single_appends, std::uint64_t{threads});
  EXPECT_EQ(stats.group_transactions, 2u);  // the first appender alone, then the seven together
  EXPECT_EQ(stats.largest_group, std::size_t{threads - 1});
  EXPECT_EQ(must(store->count()), threads);
}

TEST_F(SqliteStoreTest, ManyThreadsAppendingSingleEventsCommitFewerTransactionsThanEvents) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  constexpr int threads = 8;
  constexpr int per_thread = 100;
  std::latch start(threads);
  ThreadErrors errors;
  std::vector<std::thread> appenders;
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        errors.check(store->append(tournament_created(t * 1000 + i)));
      }
    });
  }
  for (auto& t : appenders) t.join();
  EXPECT_EQ(errors.first(), "");
  const SqliteStoreStats stats = store->stats();
  EXPECT_EQ(stats.single_appends, std::uint64_t{threads * per_thread});
  EXPECT_LT(stats.group_transactions, stats.single_appends);
  EXPECT_GT(stats.largest_group, 1u);
  EXPECT_EQ(must(store->count()), threads * per_thread);
}

TEST_F(SqliteStoreTest, MaxGroupBoundsTheEventsOneTransactionTakes) {
  StoreOptions o = options();
  o.max_group = 3;
  o.sqlite_busy_timeout = 120s;
  auto store = open(o);
  ASSERT_NE(store, nullptr);
  RawDb blocker(path_);
  ASSERT_EQ(blocker.exec("BEGIN IMMEDIATE"), "");
  constexpr int threads = 8;
  ThreadErrors errors;
  std::vector<std::thread> appenders;
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] { errors.check(store->append(tournament_created(t))); });
  }
  const auto deadline = Clock::now() + 60s;
  while (store->stats().queued < threads && Clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(store->stats().queued, std::size_t{threads});
  EXPECT_EQ(blocker.exec("COMMIT"), "");
  for (auto& t : appenders) t.join();
  EXPECT_EQ(errors.first(), "");
  const SqliteStoreStats stats = store->stats();
  EXPECT_EQ(stats.largest_group, 3u);
  EXPECT_EQ(stats.group_transactions, 4u);  // 1, then 3 + 3 + 1
}

// --- SQLite only: the outbox ---

/// The pattern of examples/outbox_sqlite.cpp: a service's own table and herald's events in one
/// database file, written through the service's own connection.
class SqliteOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store_with(50ms);
    ASSERT_NE(store_, nullptr);
    RawDb service(path_);
    ASSERT_EQ(service.exec("CREATE TABLE IF NOT EXISTS tournaments ("
                           "id INTEGER PRIMARY KEY, name TEXT NOT NULL, organization_id INTEGER)"),
              "");
  }

  std::unique_ptr<EventStore> open_store_with(std::chrono::milliseconds poll) {
    StoreOptions o{.location = path_, .catalog = &domain::platform_catalog()};
    o.sqlite_poll_interval = poll;
    auto store = open_store(o);
    if (!store) {
      ADD_FAILURE() << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }

  /// Inserts a tournament row and appends its TournamentCreatedEvent in `db`'s open transaction.
  static std::expected<AppendResult, Error> create_tournament(sqlite3* db, const std::string& name,
                                                              EventPtr* appended = nullptr) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO tournaments (name, organization_id) VALUES (?1, 3)", -1,
                       &stmt, nullptr);
    sqlite3_bind_text(stmt, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return std::unexpected(Error{ErrorCode::io, sqlite3_errmsg(db), {}});
    const EventPtr event = EventPtr::make(make<TournamentCreatedEvent>(
        {.entity_id = sqlite3_last_insert_rowid(db), .user_id = 7, .organization_id = 3},
        {.tournament_name = name, .tournament_type = "async"}));
    if (appended != nullptr) *appended = event;
    return append_in_transaction(db, event, {.catalog = &domain::platform_catalog()});
  }

  std::string rows() {
    RawDb raw(path_);
    return raw.scalar("SELECT count(*) FROM tournaments");
  }

  TempDir dir_;
  std::string path_ = dir_.file("service.db");
  std::unique_ptr<EventStore> store_;
};

TEST_F(SqliteOutboxTest, CommitsTheServiceRowAndItsEventTogether) {
  RawDb service(path_);
  auto tx = OutboxTransaction::begin(service.get());
  ASSERT_TRUE(tx) << tx.error().message;
  EventPtr event;
  const AppendResult appended = must(create_tournament(service.get(), "Spring Cup", &event));
  EXPECT_TRUE(appended.inserted);
  must(tx->commit());

  EXPECT_EQ(rows(), "1");
  const auto stored = must(store_->get(event->event_id));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->position, appended.position);
  EXPECT_EQ(encode_event(stored->event), encode_event(event));
  EXPECT_EQ(service.scalar("SELECT id FROM tournaments"),
            to_string(*stored->event.get<TournamentCreatedEvent>()->entity_id));
}

TEST_F(SqliteOutboxTest, RollbackLeavesNeitherTheRowNorTheEvent) {
  RawDb service(path_);
  {
    auto tx = OutboxTransaction::begin(service.get());
    ASSERT_TRUE(tx) << tx.error().message;
    must(create_tournament(service.get(), "Spring Cup"));
    tx->rollback();
  }
  {
    auto tx = OutboxTransaction::begin(service.get());
    ASSERT_TRUE(tx) << tx.error().message;
    must(create_tournament(service.get(), "Autumn Cup"));
  }  // destroyed without commit: rolled back
  ASSERT_EQ(service.exec("BEGIN IMMEDIATE"), "");
  must(create_tournament(service.get(), "Winter Cup"));
  ASSERT_EQ(service.exec("ROLLBACK"), "");

  EXPECT_EQ(rows(), "0");
  EXPECT_EQ(must(store_->count()), 0);
  EXPECT_EQ(must(store_->head()), 0);
}

TEST_F(SqliteOutboxTest, CrashBeforeCommitLeavesNeitherTheRowNorTheEvent) {
  store_.reset();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child writes both inside one transaction, reports that, and dies before COMMIT.
    ::close(ready[0]);
    sqlite3* db = nullptr;
    sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    sqlite3_busy_timeout(db, 10000);
    const bool wrote =
        sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK &&
        create_tournament(db, "Doomed Cup").has_value();
    const char status = wrote ? 'W' : 'F';
    (void)::write(ready[1], &status, 1);
    ::raise(SIGKILL);
    ::_exit(3);
  }
  ::close(ready[1]);
  char status = 0;
  ASSERT_EQ(::read(ready[0], &status, 1), 1);
  ::close(ready[0]);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wait_status));
  EXPECT_EQ(WTERMSIG(wait_status), SIGKILL);
  EXPECT_EQ(status, 'W') << "the child could not write the row and the event";

  auto store = open_store_with(50ms);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(rows(), "0");
  EXPECT_EQ(must(store->count()), 0);
  // The file is healthy: the next transaction commits.
  RawDb service(path_);
  auto tx = OutboxTransaction::begin(service.get());
  ASSERT_TRUE(tx) << tx.error().message;
  EXPECT_EQ(must(create_tournament(service.get(), "Next Cup")).position, 1);
  must(tx->commit());
  EXPECT_EQ(must(store->count()), 1);
}

TEST_F(SqliteOutboxTest, AppendOutsideATransactionIsRefused) {
  RawDb service(path_);
  auto refused = append_in_transaction(service.get(), tournament_created(1));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(refused.error().message.find("BEGIN IMMEDIATE"), std::string::npos);
  EXPECT_EQ(must(store_->count()), 0);
}

TEST_F(SqliteOutboxTest, AppendIsIdempotentByEventId) {
  const EventPtr event = tournament_created(1);
  must(store_->append(user_created(1)));
  RawDb service(path_);
  ASSERT_EQ(service.exec("BEGIN IMMEDIATE"), "");
  const AppendResult first = must(append_in_transaction(service.get(), event));
  const AppendResult again = must(append_in_transaction(service.get(), event));
  ASSERT_EQ(service.exec("COMMIT"), "");
  EXPECT_TRUE(first.inserted);
  EXPECT_FALSE(again.inserted);
  EXPECT_EQ(again.position, first.position);
  EXPECT_EQ(first.position, 2);
  // Through the store afterwards: the same position, nothing written.
  const AppendResult through_store = must(store_->append(event));
  EXPECT_FALSE(through_store.inserted);
  EXPECT_EQ(through_store.position, 2);
  EXPECT_EQ(must(store_->count()), 2);
}

TEST_F(SqliteOutboxTest, AppendRefusesADatabaseWithoutHeraldsTables) {
  const std::string other = dir_.file("plain.db");
  RawDb plain(other);
  ASSERT_EQ(plain.exec("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);"), "");
  auto refused = append_in_transaction(plain.get(), tournament_created(1));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_NE(refused.error().message.find("open_store"), std::string::npos);
  EXPECT_NE(refused.error().message.find("plain.db"), std::string::npos);
  EXPECT_EQ(plain.exec("ROLLBACK"), "");
}

TEST_F(SqliteOutboxTest, AppendRefusesAnOversizedEventAndKeepsTheTransactionUsable) {
  RawDb service(path_);
  auto tx = OutboxTransaction::begin(service.get());
  ASSERT_TRUE(tx) << tx.error().message;
  auto refused =
      tx->append(tournament_created(1, 1, std::string(4096, 'x')), {.max_event_bytes = 1024});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::too_large);
  must(create_tournament(service.get(), "Spring Cup"));
  must(tx->commit());
  EXPECT_EQ(rows(), "1");
  EXPECT_EQ(must(store_->count()), 1);
}

TEST_F(SqliteOutboxTest, WaitForNoticesACommitMadeThroughAnotherConnection) {
  // A plain COMMIT through the service's connection announces nothing; the store sees the new head
  // by polling it.
  std::latch waiting(1);
  std::expected<std::int64_t, Error> woke = std::unexpected(Error{});
  std::thread waiter([&] {
    waiting.count_down();
    woke = store_->wait_for(0, 60s);
  });
  waiting.wait();
  RawDb service(path_);
  ASSERT_EQ(service.exec("BEGIN IMMEDIATE"), "");
  must(create_tournament(service.get(), "Spring Cup"));
  ASSERT_EQ(service.exec("COMMIT"), "");
  waiter.join();
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_EQ(*woke, 1);
}

TEST_F(SqliteOutboxTest, OutboxTransactionCommitWakesStoresOfThisProcessAtOnce) {
  auto store = open_store_with(std::chrono::hours(1));  // polling alone would not end the wait
  ASSERT_NE(store, nullptr);
  std::latch waiting(1);
  std::expected<std::int64_t, Error> woke = std::unexpected(Error{});
  Clock::duration waited{};
  std::thread waiter([&] {
    waiting.count_down();
    const auto start = Clock::now();
    woke = store->wait_for(0, 60s);
    waited = Clock::now() - start;
  });
  waiting.wait();
  RawDb service(path_);
  auto tx = OutboxTransaction::begin(service.get());
  ASSERT_TRUE(tx) << tx.error().message;
  must(create_tournament(service.get(), "Spring Cup"));
  must(tx->commit());
  waiter.join();
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_EQ(*woke, 1);
  EXPECT_LT(waited, 30s);
}

}  // namespace
}  // namespace herald::store_test
