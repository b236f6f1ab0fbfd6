#include "herald/event_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <latch>
#include <map>
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
#include "herald/postgres_outbox.hpp"
#include "store_test_support.hpp"

// Asynchronous appends (`append_async`, `append_batch_async`) and how they share group commits
// with blocking ones, once for every backend: SQLite on a file in a temporary directory, and
// PostgreSQL on the server scripts/with_postgres.sh starts, each test in a fresh schema.

namespace herald::store_test {
namespace {

using namespace std::chrono_literals;

enum class Backend { sqlite, postgresql };

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::sqlite ? "SQLite" : "PostgreSQL";
}

/// How long a test waits for callbacks before it fails (a guard against hanging, not a timing).
constexpr auto callback_guard = 120s;

/// The outcomes of asynchronous appends, by request number, from whichever thread calls back.
class Outcomes {
 public:
  /// The callback for request `index`; records how often it ran.
  AppendCallback callback(std::size_t index) {
    return [this, index](std::expected<AppendResult, Error> outcome) {
      record(index, std::move(outcome));
    };
  }

  void record(std::size_t index, std::expected<AppendResult, Error> outcome) {
    // Notified under the lock: a waiter that sees the count may destroy this object at once.
    std::lock_guard lock(mutex_);
    ++calls_[index];
    results_.insert_or_assign(index, std::move(outcome));
    changed_.notify_all();
  }

  /// Waits until `count` callbacks ran (false if the guard passes first).
  bool wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, callback_guard, [&] { return total_locked() >= count; });
  }

  /// Waits until the callback of request `index` ran.
  bool wait_for_request(std::size_t index) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, callback_guard, [&] { return calls_.contains(index); });
  }

  std::size_t total() const {
    std::lock_guard lock(mutex_);
    return total_locked();
  }
  int calls(std::size_t index) const {
    std::lock_guard lock(mutex_);
    auto found = calls_.find(index);
    return found == calls_.end() ? 0 : found->second;
  }
  std::expected<AppendResult, Error> result(std::size_t index) const {
    std::lock_guard lock(mutex_);
    return results_.at(index);
  }

 private:
  std::size_t total_locked() const {
    std::size_t total = 0;
    for (const auto& [index, count] : calls_) total += static_cast<std::size_t>(count);
    return total;
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::size_t, int> calls_;
  std::map<std::size_t, std::expected<AppendResult, Error>> results_;
};

class AsyncAppendTest : public ::testing::TestWithParam<Backend> {
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
      pg_schema_ = "herald_async" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
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
    StoreOptions o{.location = location_, .catalog = &domain::platform_catalog()};
    // Appends wait for a held write lock as long as a test holds it.
    o.sqlite_busy_timeout = 120s;
    return o;
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

  /// Keeps every appending transaction of the database waiting until `release`: on SQLite a
  /// connection holding the write lock, on PostgreSQL an outbox transaction holding the append
  /// lock. Released at scope end at the latest.
  class AppendHold {
   public:
    explicit AppendHold(AsyncAppendTest& test) {
      if (test.GetParam() == Backend::sqlite) {
        sqlite_.emplace(test.location_);
        if (const std::string error = sqlite_->exec("BEGIN IMMEDIATE"); !error.empty()) {
          throw std::runtime_error("holding the write lock: " + error);
        }
        return;
      }
      pg_connection_.emplace(test.location_);
      pg_tx_.emplace(*pg_connection_);
      auto held = append_in_transaction(*pg_tx_, user_created(999'999),
                                        {.catalog = &domain::platform_catalog()});
      if (!held) throw std::runtime_error("holding the append lock: " + held.error().message);
    }
    AppendHold(const AppendHold&) = delete;
    AppendHold& operator=(const AppendHold&) = delete;
    ~AppendHold() { release(); }

    void release() {
      if (sqlite_) {
        sqlite_->exec("ROLLBACK");
        sqlite_.reset();
      }
      if (pg_tx_) {
        pg_tx_->abort();
        pg_tx_.reset();
        pg_connection_.reset();
      }
    }

   private:
    std::optional<RawDb> sqlite_;
    std::optional<pqxx::connection> pg_connection_;
    std::optional<pqxx::work> pg_tx_;
  };

  /// Makes the database refuse events of tournament 666 (a constraint of the test's own).
  void refuse_tournament_666() {
    if (GetParam() == Backend::sqlite) {
      RawDb db(location_);
      ASSERT_EQ(db.exec("CREATE TRIGGER refuse_666 BEFORE INSERT ON herald_events "
                        "WHEN NEW.entity_id = '666' BEGIN SELECT RAISE(ABORT, 'tournament 666 "
                        "is refused'); END"),
                "");
      return;
    }
    pg_admin("ALTER TABLE " + pg_schema_ +
             ".herald_events ADD CONSTRAINT refuse_666 CHECK (entity_id IS DISTINCT FROM '666')");
  }

  SqliteStore* sqlite_store() { return dynamic_cast<SqliteStore*>(store_.get()); }

  std::optional<TempDir> dir_;
  std::string pg_base_url_;
  std::string pg_schema_;
  std::string location_;
  std::unique_ptr<EventStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, AsyncAppendTest,
                         ::testing::Values(Backend::sqlite, Backend::postgresql), backend_name);

TEST_P(AsyncAppendTest, ManyAsyncAppendsFromSeveralThreadsEachCompleteOnceInQueueOrder) {
  constexpr std::size_t threads = 4;
  constexpr std::size_t per_thread = 250;
  std::vector<EventPtr> events;
  for (std::size_t i = 0; i < threads * per_thread; ++i) {
    events.push_back(tournament_created(static_cast<std::int64_t>(i)));
  }
  Outcomes outcomes;
  std::latch start(threads);
  std::vector<std::thread> appenders;
  for (std::size_t t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] {
      start.arrive_and_wait();
      for (std::size_t i = t * per_thread; i < (t + 1) * per_thread; ++i) {
        store_->append_async(events[i], outcomes.callback(i));
      }
    });
  }
  for (auto& appender : appenders) appender.join();
  ASSERT_TRUE(outcomes.wait_for(events.size())) << outcomes.total() << " callbacks ran";

  std::set<std::int64_t> positions;
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(outcomes.calls(i), 1) << "request " << i;
    auto result = outcomes.result(i);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_TRUE(result->inserted);
    positions.insert(result->position);
    // Each thread's appends take positions in the order the thread queued them.
    if (i % per_thread > 0) {
      EXPECT_GT(result->position, outcomes.result(i - 1)->position);
    }
  }
  EXPECT_EQ(positions.size(), events.size());
  // The store holds each event once, at the position its callback reported, in position order.
  const auto stored = must(store_->read_forward(0, 10'000), "read_forward");
  ASSERT_EQ(stored.size(), events.size());
  std::map<std::string, std::int64_t> position_of;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(stored[i].position, stored[i - 1].position);
    }
    position_of.emplace(stored[i].event->event_id.to_string(), stored[i].position);
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(position_of.at(events[i]->event_id.to_string()), outcomes.result(i)->position);
  }
}

TEST_P(AsyncAppendTest, CallbackRunsOnlyOnceTheEventIsDurableAndVisible) {
  constexpr std::size_t count = 50;
  std::vector<EventPtr> events;
  for (std::size_t i = 0; i < count; ++i) events.push_back(user_created(static_cast<int>(i)));
  // A second store object (its own connections) stands for any other reader.
  auto reader = open();
  ASSERT_NE(reader, nullptr);
  Outcomes outcomes;
  std::atomic<int> visible{0};
  for (std::size_t i = 0; i < count; ++i) {
    store_->append_async(events[i], [&, i](std::expected<AppendResult, Error> outcome) {
      if (outcome) {
        auto found = reader->get(events[i]->event_id);
        if (found && *found && (*found)->position == outcome->position) ++visible;
      }
      outcomes.record(i, std::move(outcome));
    });
  }
  ASSERT_TRUE(outcomes.wait_for(count));
  EXPECT_EQ(visible.load(), static_cast<int>(count));
}

TEST_P(AsyncAppendTest, DuplicatesRacingAsyncAndBlockingAppendsAreStoredOnce) {
  constexpr std::size_t count = 60;
  std::vector<EventPtr> events;
  for (std::size_t i = 0; i < count; ++i) events.push_back(tournament_created(100 + i));
  // Each event is appended three times at once: blocking from one thread, asynchronously from
  // two others.
  Outcomes async_a;
  Outcomes async_b;
  std::vector<std::expected<AppendResult, Error>> blocking(count, std::unexpected(Error{}));
  std::latch start(3);
  std::thread sync_thread([&] {
    start.arrive_and_wait();
    for (std::size_t i = 0; i < count; ++i) blocking[i] = store_->append(events[i]);
  });
  std::thread async_thread_a([&] {
    start.arrive_and_wait();
    for (std::size_t i = 0; i < count; ++i) store_->append_async(events[i], async_a.callback(i));
  });
  std::thread async_thread_b([&] {
    start.arrive_and_wait();
    for (std::size_t i = count; i-- > 0;) store_->append_async(events[i], async_b.callback(i));
  });
  sync_thread.join();
  async_thread_a.join();
  async_thread_b.join();
  ASSERT_TRUE(async_a.wait_for(count));
  ASSERT_TRUE(async_b.wait_for(count));

  for (std::size_t i = 0; i < count; ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    ASSERT_TRUE(blocking[i]) << blocking[i].error().message;
    const auto a = async_a.result(i);
    const auto b = async_b.result(i);
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(a->position, blocking[i]->position);
    EXPECT_EQ(b->position, blocking[i]->position);
    EXPECT_EQ(int{blocking[i]->inserted} + int{a->inserted} + int{b->inserted}, 1);
  }
  EXPECT_EQ(must(store_->count(), "count"), static_cast<std::int64_t>(count));
}

TEST_P(AsyncAppendTest, ABadEventInAGroupFailsAloneAndTheOthersAreStored) {
  refuse_tournament_666();
  constexpr std::size_t count = 21;
  constexpr std::size_t bad = 10;
  std::vector<EventPtr> events;
  for (std::size_t i = 0; i < count; ++i) {
    events.push_back(tournament_created(i == bad ? 666 : static_cast<std::int64_t>(i)));
  }
  Outcomes outcomes;
  {
    // Held, so that the appends queue up and share a transaction once released.
    AppendHold hold(*this);
    for (std::size_t i = 0; i < count; ++i) store_->append_async(events[i], outcomes.callback(i));
    hold.release();
  }
  ASSERT_TRUE(outcomes.wait_for(count));
  for (std::size_t i = 0; i < count; ++i) {
    const auto result = outcomes.result(i);
    if (i == bad) {
      ASSERT_FALSE(result);
      EXPECT_NE(result.error().code, ErrorCode::unavailable);
      EXPECT_NE(result.error().message.find("666"), std::string::npos) << result.error().message;
    } else {
      EXPECT_TRUE(result) << "event " << i << ": " << result.error().message;
    }
  }
  EXPECT_EQ(must(store_->count(), "count"), static_cast<std::int64_t>(count - 1));
  if (SqliteStore* sqlite = sqlite_store()) {
    EXPECT_GT(sqlite->stats().largest_group, 1u);
  }
}

TEST_P(AsyncAppendTest, AppendsOverTheQueueBoundFailAtOnceAsUnavailable) {
  StoreOptions o = options();
  o.max_queued_events = 4;
  store_.reset();
  store_ = open(o);
  ASSERT_NE(store_, nullptr);
  Outcomes outcomes;
  AppendHold hold(*this);
  for (std::size_t i = 0; i < 4; ++i) {
    store_->append_async(tournament_created(static_cast<std::int64_t>(i)), outcomes.callback(i));
  }
  store_->append_async(tournament_created(4), outcomes.callback(4));
  // The fifth is refused while the first four still wait for the held lock.
  ASSERT_TRUE(outcomes.wait_for_request(4));
  EXPECT_EQ(outcomes.total(), 1u);
  const auto refused = outcomes.result(4);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::unavailable);
  EXPECT_NE(refused.error().message.find("max_queued_events"), std::string::npos)
      << refused.error().message;

  hold.release();
  ASSERT_TRUE(outcomes.wait_for(5));
  for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(outcomes.result(i)) << "request " << i;
  // Once they completed there is room again.
  Outcomes later;
  store_->append_async(tournament_created(5), later.callback(0));
  ASSERT_TRUE(later.wait_for(1));
  EXPECT_TRUE(later.result(0));
  EXPECT_EQ(must(store_->count(), "count"), 5);
}

TEST_P(AsyncAppendTest, BlockingAppendsAreNotHeldToTheQueueBound) {
  StoreOptions o = options();
  o.max_queued_events = 1;
  store_.reset();
  store_ = open(o);
  ASSERT_NE(store_, nullptr);
  Outcomes outcomes;
  store_->append_async(tournament_created(1), outcomes.callback(0));
  EXPECT_TRUE(store_->append(tournament_created(2)));
  EXPECT_TRUE(store_->append_batch(refs({tournament_created(3), tournament_created(4)})));
  ASSERT_TRUE(outcomes.wait_for(1));
  EXPECT_TRUE(outcomes.result(0));
  EXPECT_EQ(must(store_->count(), "count"), 4);
}

TEST_P(AsyncAppendTest, DestroyingTheStoreCompletesEveryQueuedAppendFirst) {
  constexpr std::size_t count = 300;
  Outcomes outcomes;
  for (std::size_t i = 0; i < count; ++i) {
    store_->append_async(tournament_created(static_cast<std::int64_t>(i)), outcomes.callback(i));
  }
  store_.reset();
  // Every callback ran before the destructor returned, and each was a success.
  EXPECT_EQ(outcomes.total(), count);
  for (std::size_t i = 0; i < count; ++i) {
    EXPECT_EQ(outcomes.calls(i), 1) << "request " << i;
    EXPECT_TRUE(outcomes.result(i)) << "request " << i;
  }
  store_ = open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(must(store_->count(), "count"), static_cast<std::int64_t>(count));
}

TEST_P(AsyncAppendTest, AppendsQueuedFromCallbacksWhileTheStoreIsDestroyedGetACallbackToo) {
  // Each callback queues the next append of its chain; destruction must give every one of them
  // a callback (stored, or refused as unavailable once the store is closing), dropping none.
  constexpr std::size_t chains = 8;
  std::atomic<std::size_t> queued{0};
  std::atomic<std::size_t> called{0};
  std::atomic<std::size_t> refused{0};
  std::atomic<std::size_t> failed{0};
  struct Chain {
    EventStore* store;
    std::atomic<std::size_t>* queued;
    std::atomic<std::size_t>* called;
    std::atomic<std::size_t>* refused;
    std::atomic<std::size_t>* failed;
    std::int64_t next;
    void append() {
      ++*queued;
      store->append_async(tournament_created(next), [self = *this](auto outcome) mutable {
        ++*self.called;
        if (!outcome) {
          ++*(outcome.error().code == ErrorCode::unavailable ? self.refused : self.failed);
          return;
        }
        ++self.next;
        self.append();
      });
    }
  };
  for (std::size_t c = 0; c < chains; ++c) {
    Chain{store_.get(), &queued, &called,
          &refused,     &failed, static_cast<std::int64_t>(c) * 1'000'000}
        .append();
  }
  store_.reset();
  EXPECT_EQ(called.load(), queued.load());
  EXPECT_EQ(refused.load(), chains);  // each chain ends with one refusal
  EXPECT_EQ(failed.load(), 0u);
}

TEST_P(AsyncAppendTest, CallbacksThatAppendAgainFormChainsInPositionOrder) {
  constexpr std::size_t chains = 4;
  constexpr std::size_t length = 40;
  std::mutex mutex;
  std::condition_variable finished;
  std::vector<std::vector<std::int64_t>> positions(chains);
  std::vector<std::string> errors;
  std::size_t done_chains = 0;
  std::function<void(std::size_t, std::size_t)> append_link = [&](std::size_t chain,
                                                                  std::size_t link) {
    store_->append_async(tournament_created(static_cast<std::int64_t>(chain * 1000 + link)),
                         [&, chain, link](std::expected<AppendResult, Error> outcome) {
                           std::unique_lock lock(mutex);
                           if (!outcome) {
                             errors.push_back(outcome.error().message);
                           } else {
                             positions[chain].push_back(outcome->position);
                           }
                           if (!outcome || link + 1 == length) {
                             ++done_chains;
                             finished.notify_all();
                             return;
                           }
                           lock.unlock();
                           append_link(chain, link + 1);
                         });
  };
  for (std::size_t c = 0; c < chains; ++c) append_link(c, 0);
  std::unique_lock lock(mutex);
  ASSERT_TRUE(finished.wait_for(lock, callback_guard, [&] { return done_chains == chains; }));
  EXPECT_TRUE(errors.empty()) << errors.front();
  for (const auto& chain : positions) {
    ASSERT_EQ(chain.size(), length);
    for (std::size_t i = 1; i < chain.size(); ++i) EXPECT_GT(chain[i], chain[i - 1]);
  }
  lock.unlock();
  EXPECT_EQ(must(store_->count(), "count"), static_cast<std::int64_t>(chains * length));
}

TEST_P(AsyncAppendTest, BatchAsyncReturnsEveryResultInOrderOrOneErrorForAll) {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::expected<std::vector<AppendResult>, Error>> outcomes;
  auto callback = [&](std::expected<std::vector<AppendResult>, Error> outcome) {
    std::lock_guard lock(mutex);
    outcomes.push_back(std::move(outcome));
    changed.notify_all();
  };
  const EventPtr repeated = tournament_created(1);
  store_->append_batch_async({repeated, tournament_created(2), repeated}, callback);
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, callback_guard, [&] { return outcomes.size() == 1; }));
  lock.unlock();
  ASSERT_TRUE(outcomes[0]) << outcomes[0].error().message;
  ASSERT_EQ(outcomes[0]->size(), 3u);
  EXPECT_TRUE((*outcomes[0])[0].inserted);
  EXPECT_GT((*outcomes[0])[1].position, (*outcomes[0])[0].position);
  EXPECT_EQ((*outcomes[0])[2].position, (*outcomes[0])[0].position);
  EXPECT_FALSE((*outcomes[0])[2].inserted);

  // An oversized event refuses the whole batch; an empty batch has an empty answer.
  StoreOptions o = options();
  o.max_event_bytes = 300;
  auto small = open(o);
  ASSERT_NE(small, nullptr);
  small->append_batch_async(
      {tournament_created(3), tournament_created(4, 1, std::string(400, 'x'))}, callback);
  small->append_batch_async({}, callback);
  lock.lock();
  ASSERT_TRUE(changed.wait_for(lock, callback_guard, [&] { return outcomes.size() == 3; }));
  lock.unlock();
  std::size_t refused = 0;
  std::size_t empty = 0;
  for (std::size_t i = 1; i < 3; ++i) {
    if (!outcomes[i]) {
      EXPECT_EQ(outcomes[i].error().code, ErrorCode::too_large);
      ++refused;
    } else if (outcomes[i]->empty()) {
      ++empty;
    }
  }
  EXPECT_EQ(refused, 1u);
  EXPECT_EQ(empty, 1u);
  EXPECT_EQ(must(store_->count(), "count"), 2);
}

TEST_P(AsyncAppendTest, BlockingAndAsyncAppendsQueuedTogetherShareOneTransaction) {
  if (GetParam() != Backend::sqlite) GTEST_SKIP() << "transaction counts are SQLite's stats";
  SqliteStore& store = *sqlite_store();
  AppendHold hold(*this);
  Outcomes outcomes;
  constexpr std::size_t async_count = 10;
  for (std::size_t i = 0; i < async_count; ++i) {
    store.append_async(tournament_created(static_cast<std::int64_t>(i)), outcomes.callback(i));
  }
  std::expected<AppendResult, Error> single = std::unexpected(Error{});
  std::expected<std::vector<AppendResult>, Error> batch = std::unexpected(Error{});
  std::thread single_thread([&] { single = store.append(tournament_created(100)); });
  std::thread batch_thread([&] {
    batch = store.append_batch(refs({tournament_created(101), tournament_created(102)}));
  });
  // Every append is queued (or in the transaction waiting for the lock) before it is released.
  const auto deadline = std::chrono::steady_clock::now() + callback_guard;
  while (store.stats().queued < async_count + 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(store.stats().queued, async_count + 3);
  hold.release();
  single_thread.join();
  batch_thread.join();
  ASSERT_TRUE(outcomes.wait_for(async_count));
  ASSERT_TRUE(single) << single.error().message;
  ASSERT_TRUE(batch) << batch.error().message;
  // The transaction that waited for the lock, then one for everything queued behind it.
  EXPECT_EQ(store.stats().group_transactions, 2u);
  EXPECT_EQ(must(store.count(), "count"), static_cast<std::int64_t>(async_count + 3));
}

}  // namespace
}  // namespace herald::store_test
