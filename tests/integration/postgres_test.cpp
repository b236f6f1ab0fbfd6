#include "herald/postgres_outbox.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/describe/class.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "herald/event.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_store.hpp"
#include "herald/event_type.hpp"
#include "polling.hpp"

// PostgreSQL-specific behaviour of the store and the outbox, against the real server that
// scripts/with_postgres.sh starts (HERALD_TEST_PG_URL); skipped when it is not set. The
// backend-independent suite (store_test.cpp) runs against the same server.

extern char** environ;

namespace herald::test_pg {

struct PgThingEvent : EntityEvent {
  static constexpr EventTraits traits{.name = "PgThingEvent", .entity_type = "Thing"};
  std::optional<std::string> label;
};
BOOST_DESCRIBE_STRUCT(PgThingEvent, (EntityEvent), (label))

struct PgTickEvent : BaseEvent {
  static constexpr EventTraits traits{.name = "PgTickEvent"};
  std::int64_t sequence = 0;
};
BOOST_DESCRIBE_STRUCT(PgTickEvent, (BaseEvent), (sequence))

namespace {

using test::env;
using test::eventually;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const EventCatalog& catalog() {
  static const EventCatalog instance = [] {
    EventCatalog c;
    c.add<PgThingEvent>().add<PgTickEvent>();
    return c;
  }();
  return instance;
}

EventPtr thing(std::string label, std::optional<std::int64_t> organization = std::nullopt,
               std::optional<EntityId> entity = std::nullopt) {
  return EventPtr::make(make<PgThingEvent>(
      {.entity_id = std::move(entity), .user_id = 7, .organization_id = organization},
      {.label = std::move(label)}));
}

EventPtr tick(std::int64_t sequence) {
  PgTickEvent event;
  event.sequence = sequence;
  return EventPtr::make(std::move(event));
}

/// Every test gets a fresh schema in the test database, chosen through the URL's search_path,
/// so tests neither see nor disturb each other's tables.
class PostgresStore : public ::testing::Test {
 protected:
  void SetUp() override {
    base_url_ = env("HERALD_TEST_PG_URL");
    if (base_url_.empty()) {
      GTEST_SKIP() << "HERALD_TEST_PG_URL is not set: run the tests under "
                      "scripts/with_postgres.sh to test the PostgreSQL store";
    }
    static std::atomic<int> counter{0};
    schema_ = "herald_t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    admin().exec0("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    admin().exec0("CREATE SCHEMA " + schema_);
    url_ = base_url_ + "?options=-csearch_path%3D" + schema_;
  }

  void TearDown() override {
    if (schema_.empty()) return;
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        admin().exec0("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
        return;
      } catch (const std::exception&) {
        // The admin connection died with a server restart: reconnect once. If the server is
        // down for good, with_postgres.sh removes it with its schemas.
        admin_tx_.reset();
        admin_conn_.reset();
      }
    }
  }

  /// A transaction on a connection to the test database outside the test's schema.
  pqxx::nontransaction& admin() {
    if (!admin_conn_ || !admin_conn_->is_open()) {
      admin_tx_.reset();
      admin_conn_ = std::make_unique<pqxx::connection>(base_url_);
      admin_tx_ = std::make_unique<pqxx::nontransaction>(*admin_conn_);
    }
    return *admin_tx_;
  }

  /// A connection whose search_path is the test's schema, as a service using the outbox has.
  std::unique_ptr<pqxx::connection> connect() { return std::make_unique<pqxx::connection>(url_); }

  std::string scalar(const std::string& sql) {
    auto conn = connect();
    pqxx::nontransaction tx(*conn);
    const pqxx::row row = tx.exec1(sql);
    return row[0].is_null() ? std::string("NULL") : std::string(row[0].c_str());
  }

  std::expected<std::unique_ptr<EventStore>, Error> try_open(const std::string& url) {
    return open_store(StoreOptions{.location = url, .catalog = &catalog()});
  }

  std::unique_ptr<EventStore> open() {
    auto store = try_open(url_);
    if (!store) {
      ADD_FAILURE() << "opening the store failed: " << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }

  /// Whether a store's LISTEN connection is open on the test database (so wake-ups by other
  /// connections come by NOTIFY, not by polling).
  bool a_store_listens() {
    pqxx::connection conn(base_url_);
    pqxx::nontransaction tx(conn);
    return tx.exec1(
                 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND application_name = 'herald' AND query LIKE 'LISTEN%herald_events%'")[0]
               .as<int>() > 0;
  }

  /// The tables, views and sequences of the test's schema with their row counts: what "nothing
  /// changed" compares.
  std::map<std::string, std::string> schema_snapshot() {
    std::map<std::string, std::string> snapshot;
    auto conn = connect();
    pqxx::nontransaction tx(*conn);
    for (const auto& row :
         tx.exec("SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON "
                 "n.oid = c.relnamespace WHERE n.nspname = current_schema()")) {
      std::string value = row[1].c_str();
      if (value == "r")
        value +=
            ":" +
            std::string(tx.exec1("SELECT count(*) FROM " + std::string(row[0].c_str()))[0].c_str());
      snapshot.emplace(row[0].c_str(), value);
    }
    return snapshot;
  }

  std::string base_url_;
  std::string schema_;
  std::string url_;
  std::unique_ptr<pqxx::connection> admin_conn_;
  std::unique_ptr<pqxx::nontransaction> admin_tx_;
};

// --- schema and migrations ---

TEST_F(PostgresStore, CreatesItsSchemaWithAVersionInHeraldMetaWhenOpeningAnEmptySchema) {
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(scalar("SELECT value FROM herald_meta WHERE key = 'schema_version'"), "3");
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND "
                   "tablename IN ('herald_events', 'herald_consumer_checkpoints', "
                   "'herald_parked_events', 'herald_audit_records', 'herald_api_tokens')"),
            "5");
}

TEST_F(PostgresStore, ReopeningAnUpToDateDatabaseKeepsEventsAndChangesNothing) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->append(thing("kept")));
  }
  const auto before = schema_snapshot();
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(schema_snapshot(), before);
  EXPECT_EQ(store->count().value(), 1);
}

TEST_F(PostgresStore, RefusesADatabaseFromANewerHeraldAndChangesNothing) {
  { ASSERT_TRUE(open()); }
  {
    auto conn = connect();
    pqxx::work tx(*conn);
    tx.exec0("UPDATE herald_meta SET value = '99' WHERE key = 'schema_version'");
    tx.commit();
  }
  const auto before = schema_snapshot();
  auto refused = try_open(url_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_NE(refused.error().message.find("newer herald"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("127.0.0.1"), std::string::npos)
      << "the message names the server: " << refused.error().message;
  EXPECT_EQ(schema_snapshot(), before);
}

TEST_F(PostgresStore, RefusesASchemaThatHoldsOtherTablesAndChangesNothing) {
  {
    auto conn = connect();
    pqxx::work tx(*conn);
    tx.exec0("CREATE TABLE customers (id bigint PRIMARY KEY, name text)");
    tx.exec0("INSERT INTO customers VALUES (1, 'Ada')");
    tx.commit();
  }
  const auto before = schema_snapshot();
  auto refused = try_open(url_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_NE(refused.error().message.find("customers"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("not herald's"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(schema_snapshot(), before);
}

TEST_F(PostgresStore, ReportsAnUnreachableServerAsUnavailableNamingItWithoutThePassword) {
  // A port nothing listens on: the kernel just handed it out and it was released again.
  int port = 0;
  {
    auto probe = std::make_unique<pqxx::connection>(base_url_);
    pqxx::nontransaction tx(*probe);
    port = tx.exec1("SELECT inet_server_port()")[0].as<int>() + 1;
  }
  const std::string url =
      "postgresql://herald:s3cret-pw@127.0.0.1:" + std::to_string(port) + "/nowhere";
  auto refused = try_open(url);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::unavailable) << refused.error().message;
  EXPECT_NE(refused.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("s3cret-pw"), std::string::npos)
      << refused.error().message;
}

// --- appends and reads ---

TEST_F(PostgresStore, ReadsBackWhatItAppendedWithEveryFilter) {
  auto store = open();
  ASSERT_TRUE(store);
  const Timestamp t0 = herald::now();
  auto a = EventPtr::make(make<PgThingEvent>({.entity_id = EntityId{std::int64_t{42}},
                                              .organization_id = 1,
                                              .timestamp = t0 - std::chrono::hours(2)},
                                             {.label = "a"}));
  auto b = EventPtr::make(make<PgThingEvent>({.entity_id = EntityId{std::string("bold-rush-1234")},
                                              .organization_id = 2,
                                              .timestamp = t0 - std::chrono::hours(1)},
                                             {.label = "b"}));
  auto c = tick(3);
  std::vector<EventRef> batch{a, b, c};
  auto appended = store->append_batch(batch);
  ASSERT_TRUE(appended) << appended.error().message;
  ASSERT_EQ(appended->size(), 3u);
  EXPECT_LT((*appended)[0].position, (*appended)[1].position);
  EXPECT_LT((*appended)[1].position, (*appended)[2].position);

  auto all = store->read_forward(0, 10);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].event->event_id, a->event_id);
  EXPECT_EQ((*all)[0].event.get<PgThingEvent>()->label, "a");
  EXPECT_EQ((*all)[0].event->timestamp, a->timestamp) << "timestamps keep their microseconds";
  EXPECT_EQ((*all)[2].event.get<PgTickEvent>()->sequence, 3);

  const auto ids = [](const std::expected<std::vector<StoredEvent>, Error>& events) {
    std::vector<std::string> labels;
    for (const auto& stored : events.value()) {
      labels.push_back(stored.event.get<PgThingEvent>() ? *stored.event.get<PgThingEvent>()->label
                                                        : "tick");
    }
    return labels;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(store->read_forward(0, 10, {.types = {"PgTickEvent"}})), V{"tick"});
  EXPECT_EQ(ids(store->read_forward(0, 10, {.organization_id = 2})), V{"b"});
  EXPECT_EQ(ids(store->read_forward(0, 10, {.entity_type = "Thing"})), (V{"a", "b"}));
  EXPECT_EQ(ids(store->read_forward(0, 10, {.entity_id = "42"})), V{"a"});
  EXPECT_EQ(ids(store->read_forward(0, 10, {.entity_id = "bold-rush-1234"})), V{"b"});
  EXPECT_EQ(ids(store->read_forward(0, 10, {.since = t0 - std::chrono::minutes(90)})),
            (V{"b", "tick"}));
  EXPECT_EQ(ids(store->read_forward(0, 10, {.until = a->timestamp + std::chrono::microseconds(1)})),
            V{"a"});
  EXPECT_EQ(ids(store->read_backward(std::nullopt, 2)), (V{"tick", "b"}));
  EXPECT_EQ(ids(store->read_backward((*appended)[2].position, 10, {.entity_type = "Thing"})),
            (V{"b", "a"}));
  EXPECT_EQ(store->count({.entity_type = "Thing"}).value(), 2);
  EXPECT_EQ(store->head().value(), (*appended)[2].position);
  auto got = store->get(b->event_id);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->position, (*appended)[1].position);
  EXPECT_FALSE(store->get(EventId::generate()).value().has_value());
}

TEST_F(PostgresStore, AppendingAStoredEventIdWritesNothingAndReturnsItsPosition) {
  auto store = open();
  ASSERT_TRUE(store);
  auto event = thing("once");
  auto first = store->append(event);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->inserted);
  auto again = store->append(event);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(again->position, first->position);
  auto next = store->append(thing("next"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->position, first->position + 1) << "a duplicate uses up no position";
  EXPECT_EQ(store->count().value(), 2);
}

TEST_F(PostgresStore, ABatchWithAStoredIdAmongNewOnesStoresTheNewOnesWithoutAHole) {
  auto store = open();
  ASSERT_TRUE(store);
  auto stored = thing("stored");
  const auto first = store->append(stored);
  ASSERT_TRUE(first) << first.error().message;
  auto before = thing("before");
  auto after = thing("after");
  std::vector<EventRef> batch{before, stored, after, before};
  auto appended = store->append_batch(batch);
  ASSERT_TRUE(appended) << appended.error().message;
  ASSERT_EQ(appended->size(), 4u);
  EXPECT_TRUE((*appended)[0].inserted);
  EXPECT_EQ((*appended)[0].position, first->position + 1) << "the stored id took no position";
  EXPECT_FALSE((*appended)[1].inserted);
  EXPECT_EQ((*appended)[1].position, first->position);
  EXPECT_TRUE((*appended)[2].inserted);
  EXPECT_EQ((*appended)[2].position, first->position + 2);
  EXPECT_FALSE((*appended)[3].inserted) << "a repeat within the batch";
  EXPECT_EQ((*appended)[3].position, (*appended)[0].position);
  auto next = store->append(thing("next"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->position, first->position + 3);
  EXPECT_EQ(store->count().value(), 4);
}

TEST_F(PostgresStore, RacingAppendsOfOneEventIdFromTwoStoresStoreItOnce) {
  auto first_store = open();
  auto second_store = open();  // its own connections, as another process has
  ASSERT_TRUE(first_store && second_store);
  for (int round = 0; round < 5; ++round) {
    auto event = thing("raced " + std::to_string(round));
    constexpr int racers = 8;
    std::atomic<int> ready{0};
    std::vector<std::future<std::expected<AppendResult, Error>>> results;
    for (int i = 0; i < racers; ++i) {
      EventStore* store = i % 2 == 0 ? first_store.get() : second_store.get();
      results.push_back(std::async(std::launch::async, [&, store] {
        ready.fetch_add(1);
        while (ready.load() < racers) std::this_thread::yield();
        return store->append(event);
      }));
    }
    int inserted = 0;
    std::set<std::int64_t> positions;
    for (auto& result : results) {
      auto outcome = result.get();
      ASSERT_TRUE(outcome) << outcome.error().message;
      inserted += outcome->inserted ? 1 : 0;
      positions.insert(outcome->position);
    }
    EXPECT_EQ(inserted, 1);
    EXPECT_EQ(positions.size(), 1u);
  }
  EXPECT_EQ(first_store->count().value(), 5);
}

TEST_F(PostgresStore, ABatchThatTheServerRejectsMidwayStoresNothing) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->append(thing("before")));
  {
    // A trigger makes the server fail the INSERT of one event of the batch.
    auto conn = connect();
    pqxx::work tx(*conn);
    tx.exec0(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.body->>'label' = 'poison' THEN RAISE EXCEPTION 'poisoned event'; END IF; "
        "RETURN NEW; END $$");
    tx.exec0(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON herald_events FOR EACH ROW EXECUTE "
        "FUNCTION refuse_poison()");
    tx.commit();
  }
  auto ok1 = thing("fine 1");
  auto poison = thing("poison");
  auto ok2 = thing("fine 2");
  std::vector<EventRef> batch{ok1, poison, ok2};
  auto refused = store->append_batch(batch);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::io);
  EXPECT_NE(refused.error().message.find("poisoned event"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(store->count().value(), 1);
  EXPECT_FALSE(store->get(ok1->event_id).value().has_value());

  // An oversized event is refused before anything is sent.
  auto big = thing(std::string(2 << 20, 'x'));
  std::vector<EventRef> too_big{ok1, big};
  auto rejected = store->append_batch(too_big);
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().code, ErrorCode::too_large);
  EXPECT_EQ(store->count().value(), 1);

  std::vector<EventRef> good{ok1, ok2, ok1};
  auto stored = store->append_batch(good);
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(store->count().value(), 3);
  EXPECT_FALSE((*stored)[2].inserted) << "a repeated id within a batch is stored once";
  EXPECT_EQ((*stored)[2].position, (*stored)[0].position);
}

TEST_F(PostgresStore, ConcurrentSingleAppendsShareTransactions) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr int threads = 8;
  constexpr int per_thread = 40;
  std::vector<std::thread> appenders;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        if (!store->append(tick(t * 1000 + i))) ++failures;
      }
    });
  }
  for (auto& appender : appenders) appender.join();
  EXPECT_EQ(failures.load(), 0);
  auto events = store->read_forward(0, 10'000);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), std::size_t{threads * per_thread});
  // Each transaction stamps its events with one recording time, so fewer distinct times than
  // events means appends shared transactions.
  std::set<Timestamp> transactions;
  for (const auto& stored : *events) transactions.insert(stored.recorded_at);
  EXPECT_LT(transactions.size(), events->size() / 2)
      << transactions.size() << " transactions for " << events->size() << " appends";
}

TEST_F(PostgresStore, AnAppendAfterTheServerEndedTheStoresSessionsReconnectsAndSucceeds) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->append(thing("before")));
  // An administrator (or a failover) ends every session of the store while they sit idle.
  std::vector<int> ended;
  for (const auto& row :
       admin().exec("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
                    "application_name = 'herald' AND pid <> pg_backend_pid()")) {
    ended.push_back(row[0].as<int>());
  }
  ASSERT_FALSE(ended.empty());
  for (const int pid : ended) admin().exec_params("SELECT pg_terminate_backend($1)", pid);
  ASSERT_TRUE(eventually([&] {
    for (const int pid : ended) {
      if (admin()
              .exec_params1("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)[0]
              .as<int>() > 0) {
        return false;
      }
    }
    return true;
  })) << "the sessions did not end";

  auto after = store->append(thing("after"));
  ASSERT_TRUE(after) << "the first append after the sessions ended: " << after.error().message;
  EXPECT_TRUE(after->inserted);
  const EventPtr first = thing("batch 1");
  const EventPtr second = thing("batch 2");
  std::vector<EventRef> batch{first, second};
  auto batched = store->append_batch(batch);
  ASSERT_TRUE(batched) << batched.error().message;
  EXPECT_EQ(store->count().value(), 4);
}

// --- visibility order ---

// The situation a plain sequence gets wrong: transaction A takes a position and stays open while
// B appends after it. The reader must not see B's position before A commits or aborts.
TEST_F(PostgresStore, ALaterPositionIsNotVisibleBeforeAnEarlierOneCommits) {
  auto store = open();
  ASSERT_TRUE(store);
  for (const bool commit_first : {true, false}) {
    SCOPED_TRACE(commit_first ? "A commits" : "A aborts");
    const std::int64_t start = store->head().value();
    auto b = thing("B");
    // Declared before A's transaction, so that when an assertion ends the test early, A rolls
    // back first and B can finish.
    std::future<std::expected<AppendResult, Error>> b_result;
    auto conn = connect();
    auto tx = std::make_unique<pqxx::work>(*conn);
    auto a = thing("A");
    auto a_position = append_in_transaction(*tx, a, {.catalog = &catalog()});
    ASSERT_TRUE(a_position) << a_position.error().message;

    b_result = std::async(std::launch::async, [&] { return store->append(b); });
    // Let B get as far as it can while A is open: with herald's append lock it queues behind A
    // (and would commit right after A); a store without one would commit B at once.
    ASSERT_TRUE(eventually([&] {
      return b_result.wait_for(0s) == std::future_status::ready ||
             admin().exec1(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                        "NOT granted")[0]
                     .as<int>() > 0;
    })) << "B neither finished nor queued";
    EXPECT_TRUE(store->read_forward(start, 100).value().empty())
        << "the reader sees a position while an earlier one is not committed";
    EXPECT_EQ(store->head().value(), start);

    if (commit_first) {
      tx->commit();
    } else {
      tx->abort();
    }
    auto b_position = b_result.get();
    ASSERT_TRUE(b_position) << b_position.error().message;
    EXPECT_GT(b_position->position, a_position->position);
    auto seen = store->read_forward(start, 100).value();
    if (commit_first) {
      ASSERT_EQ(seen.size(), 2u);
      EXPECT_EQ(seen[0].event->event_id, a->event_id);
      EXPECT_EQ(seen[0].position, a_position->position);
      EXPECT_EQ(seen[1].event->event_id, b->event_id);
    } else {
      ASSERT_EQ(seen.size(), 1u);
      EXPECT_EQ(seen[0].event->event_id, b->event_id);
      EXPECT_FALSE(store->get(a->event_id).value().has_value());
    }
  }
}

// The store's own appends, forced into the interleaving a plain sequence gets wrong: the first
// append has taken its positions and is held open (its INSERT waits for an uncommitted row with one
// of its event ids, written by a connection outside herald, which takes no append lock) while the
// second one runs. Both a batch held with a single append after it, and the other way round. The
// two go through two store objects: one store queues its appends in-process and commits them one
// transaction at a time anyway, so only another store's append reaches the server meanwhile.
TEST_F(PostgresStore,
       AnAppendHeldOpenAfterTakingPositionsKeepsLaterAppendsInvisibleUntilItCommits) {
  auto store = open();
  ASSERT_TRUE(store);
  auto other = open();
  ASSERT_TRUE(other);
  for (const bool batch_first : {true, false}) {
    SCOPED_TRACE(batch_first ? "a batch held open, then a single append"
                             : "a single append held open, then a batch");
    const std::int64_t start = store->head().value();
    std::vector<EventPtr> batch;
    for (int i = 0; i < 10; ++i) batch.push_back(thing("batch " + std::to_string(i)));
    const std::vector<EventRef> batch_refs(batch.begin(), batch.end());
    const EventPtr single = thing("single");
    // Declared before the blocker, so that when an assertion ends the test early the blocker
    // rolls back first and the appends can finish.
    std::future<std::expected<std::vector<AppendResult>, Error>> batch_result;
    std::future<std::expected<AppendResult, Error>> single_result;
    const auto start_batch = [&] {
      batch_result =
          std::async(std::launch::async, [&] { return store->append_batch(batch_refs); });
    };
    const auto start_single = [&] {
      single_result = std::async(std::launch::async, [&] { return other->append(single); });
    };
    const auto finished = [](const auto& future) {
      return future.valid() && future.wait_for(0s) == std::future_status::ready;
    };

    auto blocker_conn = connect();
    auto blocker = std::make_unique<pqxx::work>(*blocker_conn);
    blocker->exec_params0(
        "INSERT INTO herald_events (position, event_id, event_type, occurred_at, recorded_at, "
        "body) VALUES (-1, $1::uuid, 'PgThingEvent', now(), now(), '{}')",
        (batch_first ? batch.back() : single)->event_id.to_string());

    if (batch_first) {
      start_batch();
    } else {
      start_single();
    }
    ASSERT_TRUE(eventually([&] {
      return admin()
                 .exec1(
                     "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock' AND wait_event = 'transactionid' "
                     "AND query LIKE '%INSERT INTO herald_events%'")[0]
                 .as<int>() > 0;
    })) << "the first append never reached its INSERT";

    if (batch_first) {
      start_single();
    } else {
      start_batch();
    }
    // With the append lock the second append queues behind the first; without it, it would
    // commit at once, above the first one's positions.
    ASSERT_TRUE(eventually([&] {
      return (batch_first ? finished(single_result) : finished(batch_result)) ||
             admin().exec1(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                        "NOT granted")[0]
                     .as<int>() > 0;
    })) << "the second append neither finished nor queued";
    EXPECT_TRUE(store->read_forward(start, 100).value().empty())
        << "a later append is visible while an earlier one holds lower positions uncommitted";
    EXPECT_EQ(store->head().value(), start);

    blocker->abort();
    auto batch_positions = batch_result.get();
    auto single_position = single_result.get();
    ASSERT_TRUE(batch_positions) << batch_positions.error().message;
    ASSERT_TRUE(single_position) << single_position.error().message;
    ASSERT_EQ(batch_positions->size(), batch.size());
    for (const AppendResult& appended : *batch_positions) {
      EXPECT_EQ(appended.position < single_position->position, batch_first);
    }
    std::vector<EventId> expected_order;
    if (!batch_first) expected_order.push_back(single->event_id);
    for (const EventPtr& e : batch) expected_order.push_back(e->event_id);
    if (batch_first) expected_order.push_back(single->event_id);
    const std::vector<StoredEvent> visible = store->read_forward(start, 100).value();
    std::vector<EventId> seen;
    for (const StoredEvent& e : visible) seen.push_back(e.event->event_id);
    EXPECT_EQ(seen, expected_order);
  }
}

// A sequence set back (a data-only restore, ALTER SEQUENCE ... RESTART) must not hand out
// positions in the holes below what readers have passed.
TEST_F(PostgresStore, AppendTakesPositionsAboveEveryStoredOneEvenWhenTheSequenceWasSetBack) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->append(thing("one")));
  // A rolled-back append leaves a hole: positions 2 to 4.
  {
    auto conn = connect();
    pqxx::work tx(*conn);
    std::vector<EventPtr> lost{thing("lost a"), thing("lost b"), thing("lost c")};
    ASSERT_TRUE(append_batch_in_transaction(tx, std::vector<EventRef>(lost.begin(), lost.end()),
                                            {.catalog = &catalog()}));
    tx.abort();
  }
  const std::int64_t last = store->append(thing("five")).value().position;
  ASSERT_EQ(last, 5);
  admin().exec0("ALTER SEQUENCE " + schema_ + ".herald_position_seq RESTART WITH 2");

  auto single = store->append(thing("six"));
  ASSERT_TRUE(single) << single.error().message;
  EXPECT_EQ(single->position, last + 1);
  std::vector<EventPtr> more{thing("seven"), thing("eight")};
  auto batch = store->append_batch(std::vector<EventRef>(more.begin(), more.end()));
  ASSERT_TRUE(batch) << batch.error().message;
  EXPECT_EQ((*batch)[0].position, last + 2);
  EXPECT_EQ((*batch)[1].position, last + 3);
}

TEST_F(PostgresStore, ATailingReaderNeverSkipsAnEventWhileOthersAppendConcurrently) {
  auto store = open();
  auto other_process = open();  // a second store: its own connections and group commit
  ASSERT_TRUE(store && other_process);
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        if (!store->append(tick(t * 10'000 + i))) ++failures;
      }
    });
  }
  writers.emplace_back([&] {
    for (int i = 0; i < 40; ++i) {
      std::vector<EventPtr> events{tick(i), tick(i), tick(i)};
      std::vector<EventRef> refs(events.begin(), events.end());
      if (!other_process->append_batch(refs)) ++failures;
    }
  });
  // Outbox transactions that hold their positions open for a while, and sometimes roll back.
  std::set<EventId> rolled_back;
  writers.emplace_back([&] {
    auto conn = connect();
    for (int i = 0; i < 40; ++i) {
      pqxx::work tx(*conn);
      auto event = thing("outbox " + std::to_string(i));
      if (!append_in_transaction(tx, event, {.catalog = &catalog()})) ++failures;
      tx.exec("SELECT pg_sleep(0.002)");
      if (i % 4 == 3) {
        tx.abort();
        rolled_back.insert(event->event_id);
      } else {
        tx.commit();
      }
    }
  });

  std::vector<std::int64_t> seen;
  std::set<EventId> seen_ids;
  std::thread reader([&] {
    std::int64_t last = 0;
    for (;;) {
      const bool was_writing = writing.load();
      auto head = store->wait_for(last, 200ms);
      if (!head) {
        ++failures;
        return;
      }
      auto events = store->read_forward(last, 64);
      if (!events) {
        ++failures;
        return;
      }
      for (const auto& stored : *events) {
        if (stored.position <= last) ++failures;
        last = stored.position;
        seen.push_back(stored.position);
        seen_ids.insert(stored.event->event_id);
      }
      if (!was_writing && events->empty()) return;
    }
  });
  for (auto& writer : writers) writer.join();
  writing = false;
  reader.join();
  EXPECT_EQ(failures.load(), 0);

  std::vector<std::int64_t> stored;
  auto all = store->read_forward(0, 100'000).value();
  for (const auto& event : all) stored.push_back(event.position);
  EXPECT_EQ(stored.size(), 3u * 150 + 40 * 3 + 30);
  EXPECT_EQ(seen, stored) << "the reader saw exactly the stored positions, in order";
  for (const auto& id : rolled_back) EXPECT_FALSE(seen_ids.contains(id));
}

// --- wake-ups ---

TEST_F(PostgresStore, WaitForWakesOnAnAppendThroughThisStore) {
  auto store = open();
  ASSERT_TRUE(store);
  std::atomic<bool> waiting{false};
  auto waited = std::async(std::launch::async, [&] {
    waiting = true;
    const auto started = Clock::now();
    auto head = store->wait_for(0, 60s);
    return std::make_pair(head, Clock::now() - started);
  });
  while (!waiting) std::this_thread::yield();
  auto appended = store->append(thing("wake"));
  ASSERT_TRUE(appended);
  auto [head, took] = waited.get();
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(*head, appended->position);
  EXPECT_LT(took, 30s);
}

TEST_F(PostgresStore, WaitForWakesOnAnOutboxCommitOnAnotherConnection) {
  auto store = open();
  ASSERT_TRUE(store);
  std::atomic<bool> waiting{false};
  auto waited = std::async(std::launch::async, [&] {
    waiting = true;
    return store->wait_for(0, 60s);
  });
  while (!waiting) std::this_thread::yield();
  auto conn = connect();
  pqxx::work tx(*conn);
  auto appended = append_in_transaction(tx, thing("elsewhere"), {.catalog = &catalog()});
  ASSERT_TRUE(appended) << appended.error().message;
  tx.commit();
  const auto started = Clock::now();
  auto head = waited.get();
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(*head, appended->position);
  EXPECT_LT(Clock::now() - started, 30s);
}

// Run by WaitForWakesOnAnAppendByAnotherProcess in a child process; skipped otherwise.
TEST(PostgresChildProcess, AppendsOneEventWhenAParentAsks) {
  const std::string url = env("HERALD_TEST_PG_CHILD_URL");
  if (url.empty()) GTEST_SKIP() << "only runs as the child of another test";
  auto store = open_store(StoreOptions{.location = url, .catalog = &catalog()});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->append(thing("from the child process")));
}

TEST_F(PostgresStore, WaitForWakesOnAnAppendByAnotherProcess) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(eventually([&] { return a_store_listens(); }));
  std::atomic<bool> waiting{false};
  auto waited = std::async(std::launch::async, [&] {
    waiting = true;
    return store->wait_for(0, 60s);
  });
  while (!waiting) std::this_thread::yield();

  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) environment.emplace_back(*entry);
  environment.push_back("HERALD_TEST_PG_CHILD_URL=" + url_);
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string program = "/proc/self/exe";
  std::string filter = "--gtest_filter=PostgresChildProcess.*";
  std::vector<char*> argv{program.data(), filter.data(), nullptr};
  posix_spawn_file_actions_t quiet;
  ::posix_spawn_file_actions_init(&quiet);
  ::posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t child = 0;
  const int spawned =
      ::posix_spawn(&child, program.c_str(), &quiet, nullptr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&quiet);
  ASSERT_EQ(spawned, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's append failed";

  auto head = waited.get();
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(*head, 1);
  auto events = store->read_forward(0, 10).value();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.get<PgThingEvent>()->label, "from the child process");
}

// --- outage and reconnection ---

TEST_F(PostgresStore, SurvivesAServerRestartWithoutReopeningAndLosesNothingAcknowledged) {
  const std::string data_dir = env("HERALD_TEST_PG_DATA");
  const std::string server_script = env("HERALD_TEST_PG_SERVER");
  if (data_dir.empty() || server_script.empty()) {
    GTEST_SKIP() << "HERALD_TEST_PG_DATA and HERALD_TEST_PG_SERVER are not set: "
                    "scripts/with_postgres.sh sets them";
  }
  const auto server = [&](const std::string& command) {
    return std::system((server_script + " " + command + " '" + data_dir + "' >/dev/null").c_str());
  };
  auto store = open();
  ASSERT_TRUE(store);

  std::mutex mutex;
  std::condition_variable changed;
  std::map<EventId, std::int64_t> acknowledged;
  int failed_during_outage = 0;
  int acknowledged_after_restart = 0;
  bool restarted = false;
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    for (std::int64_t i = 0; !stop; ++i) {
      auto event = tick(i);
      auto result = store->append(event);
      std::lock_guard lock(mutex);
      if (result) {
        acknowledged.emplace(event->event_id, result->position);
        if (restarted) ++acknowledged_after_restart;
      } else {
        ++failed_during_outage;
      }
      changed.notify_all();
    }
  });
  // However the test ends, the producer stops and the server runs again for the next tests.
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] {
    stop = true;
    if (producer.joinable()) producer.join();
    server("start");
  }};
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return acknowledged.size() >= 20; }));
  }

  ASSERT_EQ(server("stop"), 0);
  auto during_event = thing("during the outage");
  auto during = store->append(during_event);
  ASSERT_FALSE(during);
  EXPECT_TRUE(during.error().code == ErrorCode::unavailable || during.error().code == ErrorCode::io)
      << to_string(during.error().code);
  const std::string port =
      base_url_.substr(base_url_.rfind(':') + 1, base_url_.rfind('/') - base_url_.rfind(':') - 1);
  EXPECT_NE(during.error().message.find("127.0.0.1:" + port), std::string::npos)
      << "names the server: " << during.error().message;
  EXPECT_FALSE(store->head()) << "reads fail too while the server is down";

  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return failed_during_outage > 0; }));
  }

  ASSERT_EQ(server("start"), 0);
  {
    std::lock_guard lock(mutex);
    restarted = true;
  }
  auto after = store->append(thing("after the restart"));
  ASSERT_TRUE(after) << after.error().message;
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return acknowledged_after_restart >= 20; }));
  }
  stop = true;
  producer.join();

  std::lock_guard lock(mutex);
  for (const auto& [id, position] : acknowledged) {
    auto stored = store->get(id);
    ASSERT_TRUE(stored) << stored.error().message;
    ASSERT_TRUE(stored->has_value()) << "acknowledged event " << id.to_string() << " was lost";
    EXPECT_EQ((*stored)->position, position);
  }
  // At least: an append whose connection died while committing reports an error, although the
  // server may have committed it.
  EXPECT_GE(store->count().value(), static_cast<std::int64_t>(acknowledged.size()) + 1);
  EXPECT_FALSE(store->get(during_event->event_id).value().has_value());

  // The LISTEN connection came back too: another connection's commit wakes wait_for.
  ASSERT_TRUE(eventually([&] { return a_store_listens(); })) << "the listener never reconnected";
  const std::int64_t before = store->head().value();
  auto waited = std::async(std::launch::async, [&] { return store->wait_for(before, 60s); });
  auto conn = connect();
  pqxx::work tx(*conn);
  auto elsewhere = append_in_transaction(tx, thing("elsewhere"), {.catalog = &catalog()});
  ASSERT_TRUE(elsewhere) << elsewhere.error().message;
  tx.commit();
  auto woke = waited.get();
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_EQ(*woke, elsewhere->position);
}

// --- the outbox ---

class PostgresOutbox : public PostgresStore {
 protected:
  void SetUp() override {
    PostgresStore::SetUp();
    if (IsSkipped()) return;
    store_ = open();
    ASSERT_TRUE(store_);
    // The service's own table, beside herald's (created after the store, which refuses a schema
    // holding tables that are not its own).
    auto conn = connect();
    pqxx::work tx(*conn);
    tx.exec0("CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL)");
    tx.commit();
  }

  std::string accounts() { return scalar("SELECT count(*) FROM accounts"); }

  std::unique_ptr<EventStore> store_;
};

TEST_F(PostgresOutbox, CommitStoresTheServicesRowAndTheEventTogether) {
  auto conn = connect();
  pqxx::work tx(*conn);
  tx.exec_params0("INSERT INTO accounts VALUES ($1, $2)", 1, "Ada");
  auto event = thing("account created", 1, EntityId{std::int64_t{1}});
  auto appended = append_in_transaction(tx, event, {.catalog = &catalog()});
  ASSERT_TRUE(appended) << appended.error().message;
  EXPECT_TRUE(appended->inserted);
  EXPECT_FALSE(store_->get(event->event_id).value().has_value()) << "not visible before the commit";
  tx.commit();
  EXPECT_EQ(accounts(), "1");
  auto stored = store_->get(event->event_id);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->position, appended->position);
}

TEST_F(PostgresOutbox, RollbackStoresNeitherTheRowNorTheEvent) {
  auto event = thing("account created");
  {
    auto conn = connect();
    pqxx::work tx(*conn);
    tx.exec_params0("INSERT INTO accounts VALUES ($1, $2)", 2, "Grace");
    ASSERT_TRUE(append_in_transaction(tx, event, {.catalog = &catalog()}));
    tx.abort();
  }
  EXPECT_EQ(accounts(), "0");
  EXPECT_FALSE(store_->get(event->event_id).value().has_value());
  EXPECT_EQ(store_->count().value(), 0);
  EXPECT_TRUE(store_->append(thing("later"))) << "the append lock went with the rollback";
}

TEST_F(PostgresOutbox, AConnectionKilledBeforeCommitStoresNeitherTheRowNorTheEvent) {
  auto event = thing("account created");
  auto conn = connect();
  auto tx = std::make_unique<pqxx::work>(*conn);
  tx->exec_params0("INSERT INTO accounts VALUES ($1, $2)", 3, "Edsger");
  ASSERT_TRUE(append_in_transaction(*tx, event, {.catalog = &catalog()}));
  // The service "crashes": its backend is terminated from another connection before COMMIT.
  admin().exec_params("SELECT pg_terminate_backend($1)", conn->backendpid());
  EXPECT_ANY_THROW(tx->commit());
  tx.reset();
  EXPECT_EQ(accounts(), "0");
  EXPECT_FALSE(store_->get(event->event_id).value().has_value());
  EXPECT_EQ(store_->count().value(), 0);
  auto later = store_->append(thing("later"));
  EXPECT_TRUE(later) << "the killed transaction's lock is gone: " << later.error().message;
}

TEST_F(PostgresOutbox, AppendingAStoredEventIdReturnsItsPosition) {
  auto event = thing("once");
  auto stored = store_->append(event);
  ASSERT_TRUE(stored);
  auto conn = connect();
  pqxx::work tx(*conn);
  auto again = append_in_transaction(tx, event, {.catalog = &catalog()});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(again->position, stored->position);
  tx.commit();
  EXPECT_EQ(store_->count().value(), 1);
}

TEST_F(PostgresOutbox, TheStoreAndTheOutboxWriteTheSameColumns) {
  // The store sends its rows as binary arrays, the outbox as text: one event of each pair goes
  // each way, with every column set (odd microseconds before 1970, quotes, backslashes and
  // non-ASCII text) or every optional column empty.
  const Timestamp long_ago = Timestamp{} - std::chrono::microseconds(123'456'789'013);
  const auto full = [&] {
    return EventPtr::make(
        make<PgThingEvent>({.entity_id = EntityId{std::string("na\u00efve \"id\" \\ 1")},
                            .user_id = 7,
                            .organization_id = 99,
                            .timestamp = long_ago},
                           {.label = "\u00fcn\u00efcode \"q\" \\"}));
  };
  const auto numbered = [&] {
    return EventPtr::make(make<PgThingEvent>(
        {.entity_id = EntityId{std::int64_t{-5}}, .timestamp = long_ago + 1us}, {}));
  };
  const auto bare_tick = [&] {
    PgTickEvent event;
    event.timestamp = long_ago + 2us;
    return EventPtr::make(std::move(event));
  };
  const std::vector<std::pair<EventPtr, EventPtr>> pairs{
      {full(), full()}, {numbered(), numbered()}, {bare_tick(), bare_tick()}};
  const auto columns = [&](const EventId& id) {
    auto conn = connect();
    pqxx::nontransaction tx(*conn);
    const pqxx::row row = tx.exec_params1(
        "SELECT event_type, (extract(epoch FROM occurred_at) * 1000000)::bigint, actor, "
        "organization_id, entity_type, entity_id, (body::jsonb - 'event_id')::text FROM "
        "herald_events WHERE event_id = $1::uuid",
        id.to_string());
    std::vector<std::string> values;
    for (const auto& field : row) values.push_back(field.is_null() ? "NULL" : field.c_str());
    return values;
  };
  for (const auto& [through_store, through_outbox] : pairs) {
    ASSERT_TRUE(store_->append(through_store));
    auto conn = connect();
    pqxx::work tx(*conn);
    ASSERT_TRUE(append_in_transaction(tx, through_outbox, {.catalog = &catalog()}));
    tx.commit();
    EXPECT_EQ(columns(through_store->event_id), columns(through_outbox->event_id))
        << through_store.event_type();
  }
  const auto stored = columns(pairs[0].first->event_id);
  EXPECT_EQ(stored[0], "PgThingEvent");
  EXPECT_EQ(stored[1], std::to_string(long_ago.time_since_epoch().count()));
  EXPECT_EQ(stored[2], "7");
  EXPECT_EQ(stored[3], "99");
  EXPECT_EQ(stored[4], "Thing");
  EXPECT_EQ(stored[5], "na\u00efve \"id\" \\ 1");
  EXPECT_EQ(columns(pairs[1].first->event_id)[5], "-5");
  const auto bare = columns(pairs[2].first->event_id);
  EXPECT_EQ(bare[2], "NULL");
  EXPECT_EQ(bare[3], "NULL");
  EXPECT_EQ(bare[4], "NULL");
  EXPECT_EQ(bare[5], "NULL");
}

TEST_F(PostgresOutbox, RefusesAnAppendOutsideATransactionAndWritesNothing) {
  // In autocommit the transaction-scoped append lock would end with the statement that takes it,
  // and positions would commit without it, out of order.
  auto conn = connect();
  pqxx::nontransaction autocommit(*conn);
  const EventPtr event = thing("unordered");
  auto refused = append_in_transaction(autocommit, event, {.catalog = &catalog()});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(refused.error().field, "tx");
  EXPECT_FALSE(store_->get(event->event_id).value().has_value());
  EXPECT_EQ(store_->count().value(), 0);
}

TEST_F(PostgresOutbox, RefusesADatabaseWithoutHeraldsSchema) {
  auto conn = std::make_unique<pqxx::connection>(base_url_ + "?options=-csearch_path%3Dnowhere");
  pqxx::work tx(*conn);
  auto refused = append_in_transaction(tx, thing("lost"), {.catalog = &catalog()});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::not_found);
  EXPECT_NE(refused.error().message.find("open_store"), std::string::npos)
      << refused.error().message;
}

// --- audit log ---

TEST_F(PostgresStore, AppendAuditRefusesARecordBuiltOnAStaleChainHead) {
  auto store = open();
  ASSERT_TRUE(store);
  auto first = store->append(thing("one")).value();
  auto second = store->append(thing("two")).value();
  const auto record = [](std::int64_t position, std::string prev, std::string hash) {
    AuditRecord r;
    r.position = position;
    r.event_id = EventId::generate();
    r.occurred_at = herald::now();
    r.recorded_at = r.occurred_at;
    r.action = "thing_created";
    r.entity_type = "Thing";
    r.details = {{"label", "x"}};
    r.prev_hash = std::move(prev);
    r.hash = std::move(hash);
    return r;
  };
  const std::string h1(64, 'a');
  ASSERT_TRUE(store->append_audit(record(first.position, genesis_hash, h1), "audit").value());
  EXPECT_EQ(store->load_checkpoint("audit").value().position, first.position)
      << "the checkpoint moves with the record";
  auto stale =
      store->append_audit(record(second.position, genesis_hash, std::string(64, 'b')), "audit");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::conflict);
  EXPECT_EQ(store->load_checkpoint("audit").value().position, first.position)
      << "a refused record moves nothing";
  EXPECT_EQ(store->audit_head().value().hash, h1);
}

TEST_F(PostgresStore, AuditActionPrefixMatchesLiterallyWithoutSqlWildcards) {
  auto store = open();
  ASSERT_TRUE(store);
  std::string prev = genesis_hash;
  std::int64_t position = 0;
  for (const std::string action : {"team_member_added", "teamxmember_added", "team_renamed"}) {
    AuditRecord r;
    r.position = ++position;
    r.event_id = EventId::generate();
    r.occurred_at = herald::now();
    r.recorded_at = r.occurred_at;
    r.action = action;
    r.entity_type = "Team";
    r.prev_hash = prev;
    r.hash = std::string(64, static_cast<char>('a' + position));
    prev = r.hash;
    ASSERT_TRUE(store->append_audit(r, "audit").value());
  }
  auto page = store->query_audit({.action = "team_member_*"});
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].action, "team_member_added");
  EXPECT_EQ(page->total, 1);
  auto team = store->query_audit({.action = "team_*", .limit = 1});
  ASSERT_TRUE(team);
  EXPECT_EQ(team->total, 2);
  ASSERT_EQ(team->items.size(), 1u);
  EXPECT_EQ(team->items[0].action, "team_renamed");
  auto next = store->query_audit({.action = "team_*", .before_position = team->items[0].position});
  ASSERT_TRUE(next);
  ASSERT_EQ(next->items.size(), 1u);
  EXPECT_EQ(next->items[0].action, "team_member_added");
}

}  // namespace
}  // namespace herald::test_pg
