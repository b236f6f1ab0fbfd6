#include "herald/durable_consumer.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "herald/domain/events.hpp"
#include "herald/event_bus.hpp"
#include "herald/event_store.hpp"
#include "herald/recorder.hpp"
#include "postgres_database.hpp"

namespace {

using herald::Delivery;
using herald::Error;
using herald::ErrorCode;
using herald::EventPtr;
using herald::StoredEvent;
using herald::domain::UserCreatedEvent;
using namespace std::chrono_literals;

// --- backends -------------------------------------------------------------------------------

using herald::test::backend_name;
using herald::test::PostgresDatabase;

/// A fresh store location per test: a SQLite file in a temporary directory, or a PostgreSQL
/// database.
class DurableConsumer : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      const char* url = std::getenv("HERALD_TEST_PG_URL");
      if (url == nullptr) {
        GTEST_SKIP() << "HERALD_TEST_PG_URL is not set; run the tests through "
                        "scripts/with_postgres.sh to test against PostgreSQL";
      }
      postgres_ = std::make_unique<PostgresDatabase>(url, "herald_consumer");
      location_ = postgres_->url();
    } else {
      static std::atomic<int> counter{0};
      directory_ =
          std::filesystem::temp_directory_path() /
          ("herald-consumer-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
      std::filesystem::remove_all(directory_);
      std::filesystem::create_directories(directory_);
      location_ = (directory_ / "herald.db").string();
    }
  }

  void TearDown() override {
    postgres_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  /// Opens the test's store; `poll` is how often SQLite re-reads the head while waiting.
  std::unique_ptr<herald::EventStore> open(std::chrono::milliseconds poll = 50ms) {
    auto store = herald::open_store({.location = location_,
                                     .catalog = &herald::domain::platform_catalog(),
                                     .sqlite_poll_interval = poll});
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  std::string location_;

 private:
  std::filesystem::path directory_;
  std::unique_ptr<PostgresDatabase> postgres_;
};

INSTANTIATE_TEST_SUITE_P(Backends, DurableConsumer, ::testing::Values("sqlite", "postgres"),
                         backend_name);

// --- helpers ----------------------------------------------------------------------------------

EventPtr user_created(std::int64_t user, std::optional<herald::Timestamp> at = std::nullopt) {
  return EventPtr::make(herald::make<UserCreatedEvent>(
      {.entity_id = user, .user_id = herald::system_actor, .timestamp = at},
      {.discord_id = 1000 + user, .discord_username = "user" + std::to_string(user)}));
}

/// Appends `count` events and returns their positions.
std::vector<std::int64_t> append_users(herald::EventStore& store, int count, int first = 1) {
  std::vector<std::int64_t> positions;
  for (int i = 0; i < count; ++i) {
    auto appended = store.append(user_created(first + i));
    EXPECT_TRUE(appended) << appended.error().message;
    if (appended) positions.push_back(appended->position);
  }
  return positions;
}

/// What a handler saw: one entry per call.
struct Seen {
  std::int64_t position = 0;
  bool replay = false;
  int attempt = 0;
  bool parked = false;
};

/// Records every call, thread-safe, and lets a test await a condition on what was seen.
class Journal {
 public:
  void add(const StoredEvent& event, const Delivery& delivery) {
    std::lock_guard lock(mutex_);
    calls_.push_back({event.position, delivery.replay, delivery.attempt, delivery.parked});
    changed_.notify_all();
  }
  std::vector<Seen> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<std::int64_t> positions() const {
    std::vector<std::int64_t> out;
    for (const Seen& seen : calls()) out.push_back(seen.position);
    return out;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return calls_.size();
  }
  /// Waits until `count` calls were made; false after `timeout`.
  bool await_count(std::size_t count, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return calls_.size() >= count; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Seen> calls_;
};

herald::ConsumerHandler recording(Journal& journal) {
  return
      [&journal](const StoredEvent& event, const Delivery& delivery) -> std::expected<void, Error> {
        journal.add(event, delivery);
        return {};
      };
}

Error handler_error(std::string message) {
  return Error{ErrorCode::unavailable, std::move(message), {}};
}

// --- order and checkpoints -------------------------------------------------------------------

TEST_P(DurableConsumer, DeliversEveryEventInPositionOrder) {
  auto store = open();
  ASSERT_TRUE(store);
  std::vector<EventPtr> batch = {user_created(1), user_created(2), user_created(3)};
  std::vector<herald::EventRef> refs(batch.begin(), batch.end());
  ASSERT_TRUE(store->append_batch(refs));
  append_users(*store, 7, 4);

  Journal journal;
  std::vector<herald::EventId> ids;
  herald::DurableConsumer consumer(
      *store, {.name = "ordered", .batch_size = 3},
      [&](const StoredEvent& event, const Delivery& delivery) -> std::expected<void, Error> {
        journal.add(event, delivery);
        ids.push_back(event.event->event_id);
        return {};
      });
  auto handled = consumer.catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 10u);
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  ASSERT_EQ(ids.size(), 10u);
  EXPECT_EQ(ids[0], batch[0]->event_id);
  EXPECT_EQ(ids[2], batch[2]->event_id);
  for (const Seen& seen : journal.calls()) {
    EXPECT_FALSE(seen.replay);
    EXPECT_EQ(seen.attempt, 1);
  }
  EXPECT_EQ(store->load_checkpoint("ordered")->position, 10);
}

TEST_P(DurableConsumer, SavesTheCheckpointOnlyAfterTheHandlerSucceeded) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 4);
  std::vector<std::int64_t> stored_while_handling;
  herald::DurableConsumer consumer(
      *store, {.name = "careful", .batch_size = 1},
      [&](const StoredEvent&, const Delivery&) -> std::expected<void, Error> {
        stored_while_handling.push_back(store->load_checkpoint("careful")->position);
        return {};
      });
  ASSERT_TRUE(consumer.catch_up());
  // While event k is in the handler, the store still says k - 1.
  EXPECT_EQ(stored_while_handling, (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(store->load_checkpoint("careful")->position, 4);
}

TEST_P(DurableConsumer, KeepsTheCheckpointBeforeAFailingEventAndResumesThereAfterARestart) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    append_users(*store, 5);
    std::mutex mutex;
    std::condition_variable failed;
    bool failing = false;
    herald::DurableConsumer consumer(
        *store,
        {.name = "resumer",
         .batch_size = 10,
         .max_attempts = 0,  // never park: keep failing until stopped
         .backoff_base = 1h,
         .backoff_max = 1h,
         .on_retry =
             [&](const StoredEvent&, int, std::chrono::milliseconds, const Error&) {
               std::lock_guard lock(mutex);
               failing = true;
               failed.notify_all();
             }},
        [&](const StoredEvent& event, const Delivery&) -> std::expected<void, Error> {
          if (event.position == 3) return std::unexpected(handler_error("downstream is down"));
          return {};
        });
    ASSERT_TRUE(consumer.start());
    {
      std::unique_lock lock(mutex);
      ASSERT_TRUE(failed.wait_for(lock, 10s, [&] { return failing; }));
    }
    // The consumer is now waiting an hour before its retry; stop cuts that short.
    consumer.stop();
    EXPECT_FALSE(consumer.running());
    EXPECT_EQ(store->load_checkpoint("resumer")->position, 2);
  }
  // The restart: a new store object and consumer, as a new process would have.
  auto store = open();
  ASSERT_TRUE(store);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "resumer"}, recording(journal));
  ASSERT_TRUE(consumer.catch_up());
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_FALSE(journal.calls().front().replay);
  EXPECT_EQ(store->load_checkpoint("resumer")->position, 5);
}

TEST_P(DurableConsumer, ResumesAfterTheProcessDiesInsideTheHandler) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    append_users(*store, 5);
  }
  // No store is open in this process while the child runs, so it shares no locks or threads.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store =
        herald::open_store({.location = location_, .catalog = &herald::domain::platform_catalog()});
    if (!store) ::_exit(10);
    herald::DurableConsumer consumer(
        **store, {.name = "crasher", .batch_size = 1},
        [](const StoredEvent& event, const Delivery&) -> std::expected<void, Error> {
          if (event.position == 3) ::_exit(42);  // dies mid-handler: no cleanup, no save
          return {};
        });
    (void)consumer.catch_up();
    ::_exit(11);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42);

  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->load_checkpoint("crasher")->position, 2);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "crasher"}, recording(journal));
  ASSERT_TRUE(consumer.catch_up());
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{3, 4, 5}));
}

TEST_P(DurableConsumer, SavesItsCheckpointWhenItLeavesItsLoopMidBatch) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 6);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "leaver", .batch_size = 100},
                                   recording(journal));
  ASSERT_TRUE(consumer.run_until([&] { return journal.count() >= 4; }));
  EXPECT_EQ(journal.count(), 4u);
  EXPECT_EQ(store->load_checkpoint("leaver")->position, 4);
}

// --- retries, backoff, parking ----------------------------------------------------------------

TEST_P(DurableConsumer, RetriesWithExponentialBackoffThenParksAndGoesOn) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 3);
  Journal journal;
  std::vector<std::pair<int, std::chrono::milliseconds>> retries;
  std::vector<herald::ParkedEvent> parked_seen;
  herald::DurableConsumer consumer(
      *store,
      {.name = "picky",
       .max_attempts = 4,
       .backoff_base = 1ms,
       .backoff_max = 3ms,
       .on_retry =
           [&](const StoredEvent& event, int attempt, std::chrono::milliseconds delay,
               const Error& error) {
             EXPECT_EQ(event.position, 2);
             EXPECT_EQ(error.message, "cannot handle user 2");
             retries.emplace_back(attempt, delay);
           },
       .on_park = [&](const herald::ParkedEvent& parked) { parked_seen.push_back(parked); }},
      [&](const StoredEvent& event, const Delivery& delivery) -> std::expected<void, Error> {
        journal.add(event, delivery);
        if (event.position == 2) return std::unexpected(handler_error("cannot handle user 2"));
        return {};
      });
  ASSERT_TRUE(consumer.catch_up());

  std::vector<int> attempts_on_2;
  for (const Seen& seen : journal.calls()) {
    if (seen.position == 2) attempts_on_2.push_back(seen.attempt);
  }
  EXPECT_EQ(attempts_on_2, (std::vector<int>{1, 2, 3, 4}));
  // 1 ms, doubled, capped at 3 ms.
  EXPECT_EQ(retries,
            (std::vector<std::pair<int, std::chrono::milliseconds>>{{1, 1ms}, {2, 2ms}, {3, 3ms}}));
  ASSERT_EQ(parked_seen.size(), 1u);

  auto parked = consumer.parked();
  ASSERT_TRUE(parked);
  ASSERT_EQ(parked->size(), 1u);
  const herald::ParkedEvent& entry = parked->front();
  EXPECT_EQ(entry.consumer, "picky");
  EXPECT_EQ(entry.position, 2);
  EXPECT_EQ(entry.attempts, 4);
  EXPECT_EQ(entry.error, "cannot handle user 2");
  EXPECT_EQ(entry.event_type, "UserCreatedEvent");
  EXPECT_EQ(entry.event_id, store->read_forward(1, 1)->front().event->event_id);

  // It went on after parking: event 3 was handled and the checkpoint is past both.
  EXPECT_EQ(journal.positions().back(), 3);
  EXPECT_EQ(store->load_checkpoint("picky")->position, 3);
}

TEST_P(DurableConsumer, TreatsAThrowingHandlerAsAFailure) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 1);
  herald::DurableConsumer consumer(
      *store, {.name = "thrower", .max_attempts = 1},
      [](const StoredEvent&, const Delivery&) -> std::expected<void, Error> {
        throw std::runtime_error("boom");
      });
  ASSERT_TRUE(consumer.catch_up());
  auto parked = consumer.parked();
  ASSERT_TRUE(parked);
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ(parked->front().error, "handler threw: boom");
}

TEST_P(DurableConsumer, RetriesAndDiscardsParkedEvents) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 5);
  Journal journal;
  std::atomic<bool> broken{true};
  herald::DurableConsumer consumer(
      *store, {.name = "operator", .max_attempts = 1},
      [&](const StoredEvent& event, const Delivery& delivery) -> std::expected<void, Error> {
        journal.add(event, delivery);
        if (broken && (event.position == 2 || event.position == 4)) {
          return std::unexpected(handler_error("broken for " + std::to_string(event.position)));
        }
        return {};
      });
  ASSERT_TRUE(consumer.catch_up());
  auto parked = consumer.parked();
  ASSERT_TRUE(parked);
  ASSERT_EQ(parked->size(), 2u);
  EXPECT_EQ((*parked)[0].position, 2);
  EXPECT_EQ((*parked)[1].position, 4);

  // Retrying while still broken keeps the entry, with the new error and one more attempt.
  auto again = consumer.retry_parked(2);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "broken for 2");
  parked = consumer.parked();
  ASSERT_EQ(parked->size(), 2u);
  EXPECT_EQ((*parked)[0].attempts, 2);

  broken = false;
  const std::size_t before = journal.count();
  auto retried = consumer.retry_parked(2);
  ASSERT_TRUE(retried) << retried.error().message;
  const Seen last = journal.calls().back();
  EXPECT_EQ(journal.count(), before + 1);
  EXPECT_EQ(last.position, 2);
  EXPECT_TRUE(last.parked);
  EXPECT_EQ(last.attempt, 3);
  EXPECT_FALSE(last.replay);

  auto discarded = consumer.discard_parked(4);
  ASSERT_TRUE(discarded) << discarded.error().message;
  EXPECT_EQ(journal.count(), before + 1);  // discarding does not run the handler
  parked = consumer.parked();
  ASSERT_TRUE(parked);
  EXPECT_TRUE(parked->empty());

  auto missing = consumer.retry_parked(4);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_EQ(consumer.discard_parked(4).error().code, ErrorCode::not_found);
}

// --- replay -----------------------------------------------------------------------------------

TEST_P(DurableConsumer, ReplaysFromAPositionFlaggingWhatItHadSeen) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 5);
  Journal journal;
  {
    herald::DurableConsumer consumer(*store, {.name = "replayer"}, recording(journal));
    ASSERT_TRUE(consumer.catch_up());
    ASSERT_TRUE(consumer.reset_to(2));
    EXPECT_EQ(store->load_checkpoint("replayer")->position, 2);
    append_users(*store, 1, 6);
    ASSERT_TRUE(consumer.catch_up());
  }
  std::vector<Seen> calls = journal.calls();
  ASSERT_EQ(calls.size(), 9u);
  std::vector<std::pair<std::int64_t, bool>> replayed;
  for (std::size_t i = 5; i < calls.size(); ++i) {
    replayed.emplace_back(calls[i].position, calls[i].replay);
  }
  EXPECT_EQ(replayed, (std::vector<std::pair<std::int64_t, bool>>{
                          {3, true}, {4, true}, {5, true}, {6, false}}));
}

TEST_P(DurableConsumer, KeepsTheReplayFlagAcrossARestart) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    append_users(*store, 4);
    Journal journal;
    herald::DurableConsumer consumer(*store, {.name = "restarted"}, recording(journal));
    ASSERT_TRUE(consumer.catch_up());
    ASSERT_TRUE(consumer.reset_to(0));
    // Handle one replayed event, then "crash".
    ASSERT_TRUE(consumer.run_until([&] { return journal.count() >= 5; }));
    EXPECT_TRUE(journal.calls().back().replay);
  }
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 1, 5);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "restarted"}, recording(journal));
  ASSERT_TRUE(consumer.catch_up());
  std::vector<std::pair<std::int64_t, bool>> seen;
  for (const Seen& call : journal.calls()) seen.emplace_back(call.position, call.replay);
  EXPECT_EQ(seen, (std::vector<std::pair<std::int64_t, bool>>{
                      {2, true}, {3, true}, {4, true}, {5, false}}));
  // The replay mark is not a consumer of its own.
  auto consumers = herald::list_consumers(*store);
  ASSERT_TRUE(consumers);
  ASSERT_EQ(consumers->size(), 1u);
  EXPECT_EQ(consumers->front().name, "restarted");
}

TEST_P(DurableConsumer, ReplaysFromATime) {
  auto store = open();
  ASSERT_TRUE(store);
  const herald::Timestamp start = herald::now() - std::chrono::hours(10);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store->append(user_created(i + 1, start + std::chrono::hours(i))));
  }
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "timely"}, recording(journal));
  ASSERT_TRUE(consumer.catch_up());
  // Between the second and third event's time: the third is the first at or after it.
  ASSERT_TRUE(consumer.reset_to_time(start + std::chrono::minutes(90)));
  EXPECT_EQ(*consumer.checkpoint(), 2);
  ASSERT_TRUE(consumer.catch_up());
  std::vector<Seen> calls = journal.calls();
  ASSERT_EQ(calls.size(), 8u);
  for (std::size_t i = 5; i < 8; ++i) {
    EXPECT_EQ(calls[i].position, static_cast<std::int64_t>(i - 2));
    EXPECT_TRUE(calls[i].replay);
  }
  // Exactly at an event's time includes that event.
  ASSERT_TRUE(consumer.reset_to_time(start + std::chrono::hours(4)));
  EXPECT_EQ(*consumer.checkpoint(), 4);
  // After every event: nothing to replay.
  ASSERT_TRUE(consumer.reset_to_time(herald::now() + std::chrono::hours(1)));
  EXPECT_EQ(*consumer.checkpoint(), 5);
}

TEST_P(DurableConsumer, AppliesAResetMadeWhileItRuns) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 5);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "live-reset"}, recording(journal));
  ASSERT_TRUE(consumer.start());
  ASSERT_TRUE(consumer.wait_for_checkpoint(5, 10s));
  ASSERT_TRUE(consumer.reset_to(0));
  ASSERT_TRUE(journal.await_count(10));
  consumer.stop();
  std::vector<Seen> calls = journal.calls();
  ASSERT_EQ(calls.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(calls[i].position, static_cast<std::int64_t>(i % 5 + 1));
    EXPECT_EQ(calls[i].replay, i >= 5);
  }
}

TEST_P(DurableConsumer, PicksUpAResetMadeThroughTheStore) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 3);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "cli-reset"}, recording(journal));
  ASSERT_TRUE(consumer.catch_up());
  // What `herald replay cli-reset --from 1` does from another process.
  ASSERT_TRUE(herald::reset_consumer(*store, "cli-reset", 1));
  ASSERT_TRUE(consumer.catch_up());
  std::vector<Seen> calls = journal.calls();
  ASSERT_EQ(calls.size(), 5u);
  EXPECT_EQ(calls[3].position, 2);
  EXPECT_TRUE(calls[3].replay);
  EXPECT_EQ(calls[4].position, 3);
  EXPECT_TRUE(calls[4].replay);
}

// --- lag and status ---------------------------------------------------------------------------

TEST_P(DurableConsumer, ReportsItsLag) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 5);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "laggard", .batch_size = 2},
                                   recording(journal));
  EXPECT_EQ(*consumer.lag(), 5);
  ASSERT_TRUE(consumer.run_once());
  EXPECT_EQ(*consumer.lag(), 3);
  auto status = consumer.status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->checkpoint, 2);
  EXPECT_EQ(status->head, 5);
  EXPECT_EQ(status->lag, 3);
  ASSERT_TRUE(consumer.catch_up());
  EXPECT_EQ(*consumer.lag(), 0);
  append_users(*store, 2, 6);
  auto listed = herald::list_consumers(*store);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().name, "laggard");
  EXPECT_EQ(listed->front().lag, 2);
  EXPECT_EQ(listed->front().parked, 0);
}

// --- following live ---------------------------------------------------------------------------

/// Runs `consumer` in a thread until `journal` has `count` calls, appending one event through
/// `appender` each time the consumer has caught up and is about to wait.
void follow_live(herald::EventStore& consumer_store, herald::EventStore& appender,
                 std::chrono::milliseconds poll) {
  Journal journal;
  std::mutex mutex;
  std::condition_variable idle_changed;
  int idle = 0;
  herald::DurableConsumer consumer(consumer_store,
                                   {.name = "follower",
                                    .poll_timeout = poll,
                                    .on_idle =
                                        [&](std::int64_t) {
                                          std::lock_guard lock(mutex);
                                          ++idle;
                                          idle_changed.notify_all();
                                        }},
                                   recording(journal));
  const auto started = std::chrono::steady_clock::now();
  std::expected<void, Error> ran;
  std::thread runner([&] { ran = consumer.run_until([&] { return journal.count() >= 3; }); });
  for (int i = 0; i < 3; ++i) {
    bool waiting;
    {
      std::unique_lock lock(mutex);
      waiting = idle_changed.wait_for(lock, 10s, [&] { return idle > i; });
    }
    EXPECT_TRUE(waiting) << "the consumer never caught up and waited";
    auto appended = appender.append(user_created(i + 1));
    EXPECT_TRUE(appended) << appended.error().message;
    const bool delivered = journal.await_count(static_cast<std::size_t>(i) + 1, 10s);
    EXPECT_TRUE(delivered) << "append " << i + 1 << " did not wake the consumer";
    if (!waiting || !appended || !delivered) {
      consumer.stop();  // returns once the poll runs out
      break;
    }
  }
  runner.join();
  ASSERT_TRUE(ran) << ran.error().message;
  // Three waits each cut short by an append, none running to the poll timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - started, poll);
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_P(DurableConsumer, WakesForAnAppendWithoutWaitingForItsPoll) {
  auto store = open(60s);
  ASSERT_TRUE(store);
  follow_live(*store, *store, 60s);
}

TEST_P(DurableConsumer, WakesForAnAppendThroughAnotherStoreObject) {
  // On PostgreSQL the other store has its own connections, so the wake-up is LISTEN/NOTIFY.
  auto store = open(60s);
  auto other = open(60s);
  ASSERT_TRUE(store && other);
  follow_live(*store, *other, 60s);
}

TEST_P(DurableConsumer, SeesAnAppendByAnotherProcessWithoutWaitingForItsPoll) {
  // Forked before this process has any thread or store, so the child shares no locks. It
  // appends one event when the parent writes to the pipe.
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(go[1]);
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) ::_exit(10);
    auto other =
        herald::open_store({.location = location_, .catalog = &herald::domain::platform_catalog()});
    if (!other) ::_exit(11);
    if (!(*other)->append(user_created(1))) ::_exit(12);
    ::_exit(0);
  }
  ::close(go[0]);

  // PostgreSQL wakes the consumer through LISTEN/NOTIFY; SQLite sees the other process's commit
  // when it re-reads the head every 100 ms. Neither waits for the consumer's 60 s poll.
  auto store = open(100ms);
  ASSERT_TRUE(store);
  Journal journal;
  std::mutex mutex;
  std::condition_variable idle_changed;
  bool idle = false;
  herald::DurableConsumer consumer(*store,
                                   {.name = "cross-process",
                                    .poll_timeout = 60s,
                                    .on_idle =
                                        [&](std::int64_t) {
                                          std::lock_guard lock(mutex);
                                          idle = true;
                                          idle_changed.notify_all();
                                        }},
                                   recording(journal));
  const auto started = std::chrono::steady_clock::now();
  std::expected<void, Error> ran;
  std::thread runner([&] { ran = consumer.run_until([&] { return journal.count() >= 1; }); });
  bool waiting;
  {
    std::unique_lock lock(mutex);
    waiting = idle_changed.wait_for(lock, 10s, [&] { return idle; });
  }
  EXPECT_TRUE(waiting);
  const char byte = 1;
  EXPECT_EQ(::write(go[1], &byte, 1), 1);
  ::close(go[1]);
  const bool delivered = journal.await_count(1, 10s);
  EXPECT_TRUE(delivered) << "the other process's append did not wake the consumer";
  if (!delivered) consumer.stop();
  runner.join();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 60s);
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{1}));
}

TEST_P(DurableConsumer, StartsAndStopsItsThread) {
  auto store = open();
  ASSERT_TRUE(store);
  Journal journal;
  herald::DurableConsumer consumer(*store, {.name = "threaded"}, recording(journal));
  ASSERT_TRUE(consumer.start());
  EXPECT_TRUE(consumer.running());
  auto twice = consumer.start();
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::conflict);
  EXPECT_EQ(consumer.run_once().error().code, ErrorCode::conflict);
  append_users(*store, 4);
  ASSERT_TRUE(consumer.wait_for_checkpoint(4, 10s));
  consumer.stop();
  EXPECT_FALSE(consumer.running());
  EXPECT_EQ(store->load_checkpoint("threaded")->position, 4);
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{1, 2, 3, 4}));
  // A stopped consumer starts again where it stopped.
  append_users(*store, 1, 5);
  ASSERT_TRUE(consumer.start());
  ASSERT_TRUE(consumer.wait_for_checkpoint(5, 10s));
  consumer.stop();
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
}

TEST_P(DurableConsumer, StopReturnsAtOnceWhileItWaitsForAppendsWithALongPollTimeout) {
  auto store = open(60s);  // SQLite's own re-read of the head cannot end the wait either
  ASSERT_TRUE(store);
  append_users(*store, 2);
  Journal journal;
  std::mutex mutex;
  std::condition_variable idle_changed;
  int idle = 0;
  herald::DurableConsumer consumer(*store,
                                   {.name = "stoppable",
                                    .poll_timeout = 60s,
                                    .on_idle =
                                        [&](std::int64_t) {
                                          std::lock_guard lock(mutex);
                                          ++idle;
                                          idle_changed.notify_all();
                                        }},
                                   recording(journal));
  // Several rounds: stop() lands at different moments around the consumer entering its wait
  // (on_idle runs just before it).
  for (int round = 1; round <= 5; ++round) {
    ASSERT_TRUE(consumer.start());
    {
      std::unique_lock lock(mutex);
      ASSERT_TRUE(idle_changed.wait_for(lock, 10s, [&] { return idle >= round; }))
          << "the consumer never caught up and waited";
    }
    const auto stopping = std::chrono::steady_clock::now();
    consumer.stop();
    const auto took = std::chrono::steady_clock::now() - stopping;
    EXPECT_LT(took, 10s) << "round " << round << ": stop() waited for the poll timeout";
    EXPECT_FALSE(consumer.running());
  }
  EXPECT_EQ(journal.positions(), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(store->load_checkpoint("stoppable")->position, 2);
}

TEST_P(DurableConsumer, HandsEachBatchToTheBatchHandlerAndEventsOneByOneWhenItFails) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 7);
  Journal singles;
  std::vector<std::vector<std::int64_t>> batches;
  herald::DurableConsumer consumer(
      *store, {.name = "batched", .batch_size = 3}, recording(singles),
      [&](std::span<const StoredEvent> events,
          std::span<const Delivery> deliveries) -> std::expected<void, Error> {
        EXPECT_EQ(events.size(), deliveries.size());
        std::vector<std::int64_t> positions;
        for (const StoredEvent& event : events) positions.push_back(event.position);
        batches.push_back(positions);
        if (positions.front() == 4) return std::unexpected(handler_error("batch refused"));
        return {};
      });
  auto handled = consumer.catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 7u);
  EXPECT_EQ(batches, (std::vector<std::vector<std::int64_t>>{{1, 2, 3}, {4, 5, 6}, {7}}));
  EXPECT_EQ(singles.positions(), (std::vector<std::int64_t>{4, 5, 6}));
  EXPECT_EQ(store->load_checkpoint("batched")->position, 7);
}

TEST_P(DurableConsumer, BatchesGrowWhileBehindUpToTheMaximumAndShrinkOnceCaughtUp) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 40);
  Journal singles;
  std::vector<std::size_t> sizes;
  herald::DurableConsumer consumer(
      *store, {.name = "growing", .batch_size = 4, .max_batch_size = 16}, recording(singles),
      [&](std::span<const StoredEvent> events,
          std::span<const Delivery>) -> std::expected<void, Error> {
        sizes.push_back(events.size());
        return {};
      });
  ASSERT_TRUE(consumer.catch_up());
  // Full batches double (4, 8, 16), capped at 16; the partial one (the last 12) is the last.
  EXPECT_EQ(sizes, (std::vector<std::size_t>{4, 8, 16, 12}));
  // Caught up: the next read is back to batch_size.
  append_users(*store, 10, 41);
  sizes.clear();
  ASSERT_TRUE(consumer.catch_up());
  EXPECT_EQ(sizes, (std::vector<std::size_t>{4, 6}));
  EXPECT_EQ(store->load_checkpoint("growing")->position, 50);
  EXPECT_TRUE(singles.positions().empty());
}

TEST_P(DurableConsumer, AMaximumBelowTheBatchSizeKeepsTheBatchSize) {
  auto store = open();
  ASSERT_TRUE(store);
  append_users(*store, 9);
  Journal singles;
  std::vector<std::size_t> sizes;
  herald::DurableConsumer consumer(*store, {.name = "fixed", .batch_size = 4, .max_batch_size = 2},
                                   recording(singles),
                                   [&](std::span<const StoredEvent> events,
                                       std::span<const Delivery>) -> std::expected<void, Error> {
                                     sizes.push_back(events.size());
                                     return {};
                                   });
  ASSERT_TRUE(consumer.catch_up());
  EXPECT_EQ(sizes, (std::vector<std::size_t>{4, 4, 1}));
}

// --- recorder ---------------------------------------------------------------------------------

TEST_P(DurableConsumer, RecorderStoresThenPublishesOnlyNewEvents) {
  auto store = open();
  ASSERT_TRUE(store);
  herald::EventBus bus;
  std::vector<std::pair<std::int64_t, std::int64_t>> published;  // (entity, stored head)
  auto subscription = bus.on<UserCreatedEvent>([&](const UserCreatedEvent& event) {
    // Published only once durable: the store already has it.
    published.emplace_back(std::get<std::int64_t>(*event.entity_id), store->count().value_or(-1));
  });
  herald::Recorder recorder(*store, bus, {.dispatch = herald::RecordDispatch::emit});
  const EventPtr first = user_created(7);
  auto position = recorder.record(first);
  ASSERT_TRUE(position) << position.error().message;
  EXPECT_EQ(*position, 1);
  // The same event again (a retried request): same position, not published twice.
  auto again = recorder.record(first);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 1);
  std::vector<EventPtr> batch = {user_created(8), first, user_created(9)};
  auto positions = recorder.record_batch(batch);
  ASSERT_TRUE(positions) << positions.error().message;
  ASSERT_EQ(positions->size(), 3u);
  EXPECT_GT((*positions)[0], 1);
  EXPECT_EQ((*positions)[1], 1);
  EXPECT_GT((*positions)[2], (*positions)[0]);
  EXPECT_EQ(published,
            (std::vector<std::pair<std::int64_t, std::int64_t>>{{7, 1}, {8, 3}, {9, 3}}));
}

TEST_P(DurableConsumer, RecordAsyncPublishesOnlyNewEventsOnceDurableThenCallsBack) {
  auto store = open();
  ASSERT_TRUE(store);
  herald::EventBus bus;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<std::int64_t, std::int64_t>> published;  // (entity, stored count)
  std::vector<std::expected<std::int64_t, Error>> outcomes;
  auto subscription = bus.on<UserCreatedEvent>([&](const UserCreatedEvent& event) {
    const std::int64_t stored = store->count().value_or(-1);
    std::lock_guard lock(mutex);
    published.emplace_back(std::get<std::int64_t>(*event.entity_id), stored);
  });
  auto done = [&](std::expected<std::int64_t, Error> outcome) {
    std::lock_guard lock(mutex);
    outcomes.push_back(std::move(outcome));
    changed.notify_all();
  };
  auto wait_for = [&](std::size_t count) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 60s, [&] { return outcomes.size() == count; });
  };
  {
    // Destroyed while nothing is pending; a pending call would still complete (the store owns it).
    herald::Recorder recorder(*store, bus, {.dispatch = herald::RecordDispatch::emit});
    const EventPtr first = user_created(7);
    recorder.record_async(first, done);
    ASSERT_TRUE(wait_for(1));
    // The same event again (a retried request): same position, not published twice.
    recorder.record_async(first, done);
    ASSERT_TRUE(wait_for(2));
    // An event the store refuses (the nil UUID as its id) is not published.
    auto nil_id = herald::make<UserCreatedEvent>({.entity_id = 8}, {.discord_id = 1008});
    nil_id.event_id = herald::EventId{};
    recorder.record_async(EventPtr::make(std::move(nil_id)), done);
    ASSERT_TRUE(wait_for(3));
  }
  std::lock_guard lock(mutex);
  ASSERT_TRUE(outcomes[0]) << outcomes[0].error().message;
  EXPECT_EQ(*outcomes[0], 1);
  ASSERT_TRUE(outcomes[1]) << outcomes[1].error().message;
  EXPECT_EQ(*outcomes[1], 1);
  ASSERT_FALSE(outcomes[2]);
  EXPECT_EQ(outcomes[2].error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(published, (std::vector<std::pair<std::int64_t, std::int64_t>>{{7, 1}}));
}

TEST_P(DurableConsumer, RecorderPublishesToTheQueueAfterTheAppend) {
  auto store = open();
  ASSERT_TRUE(store);
  herald::EventBus bus;
  std::atomic<int> seen{0};
  auto subscription = bus.on<UserCreatedEvent>([&](const UserCreatedEvent&) { ++seen; });
  herald::Recorder recorder(*store, bus);
  auto position = recorder.record(herald::make<UserCreatedEvent>({.entity_id = 1}));
  ASSERT_TRUE(position) << position.error().message;
  bus.drain();
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(*store->count(), 1);
}

}  // namespace
