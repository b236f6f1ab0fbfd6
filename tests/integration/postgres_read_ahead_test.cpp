#include <gtest/gtest.h>

#include <boost/describe/class.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "herald/event.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_store.hpp"
#include "herald/event_type.hpp"
#include "polling.hpp"
#include "postgres_database.hpp"

// Read-ahead of the PostgreSQL store's forward reads (StoreOptions::postgres_read_ahead): a
// reader paging forward gets from the page sent ahead exactly what a plain read returns, against
// the real server that scripts/with_postgres.sh starts (HERALD_TEST_PG_URL); skipped without it.

namespace herald::test_read_ahead {

struct RaThingEvent : EntityEvent {
  static constexpr EventTraits traits{.name = "RaThingEvent", .entity_type = "Thing"};
  std::int64_t sequence = 0;
};
BOOST_DESCRIBE_STRUCT(RaThingEvent, (EntityEvent), (sequence))

struct RaTickEvent : BaseEvent {
  static constexpr EventTraits traits{.name = "RaTickEvent"};
  std::int64_t sequence = 0;
};
BOOST_DESCRIBE_STRUCT(RaTickEvent, (BaseEvent), (sequence))

namespace {

using test::env;
using test::eventually;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const EventCatalog& catalog() {
  static const EventCatalog instance = [] {
    EventCatalog c;
    c.add<RaThingEvent>().add<RaTickEvent>();
    return c;
  }();
  return instance;
}

/// Positions of a page, or the error's message when the read failed.
std::vector<std::int64_t> positions(const std::expected<std::vector<StoredEvent>, Error>& page) {
  std::vector<std::int64_t> result;
  if (!page) {
    ADD_FAILURE() << "read failed: " << page.error().message;
    return result;
  }
  for (const StoredEvent& stored : *page) result.push_back(stored.position);
  return result;
}

/// Every page `store` returns paging forward from 0 with `limit` and `filter`, each page after
/// the previous one's last position, until an empty page.
std::vector<std::vector<std::int64_t>> all_pages(EventStore& store, std::size_t limit,
                                                 const EventFilter& filter) {
  std::vector<std::vector<std::int64_t>> pages;
  std::int64_t after = 0;
  for (;;) {
    auto page = positions(store.read_forward(after, limit, filter));
    if (page.empty()) return pages;
    after = page.back();
    pages.push_back(std::move(page));
  }
}

/// A fresh database per test, with a store that reads ahead and one that does not.
class PostgresReadAhead : public ::testing::Test {
 protected:
  void SetUp() override {
    server_url_ = env("HERALD_TEST_PG_URL");
    if (server_url_.empty()) {
      GTEST_SKIP() << "HERALD_TEST_PG_URL is not set: run the tests under "
                      "scripts/with_postgres.sh to test the PostgreSQL store";
    }
    database_ = std::make_unique<test::PostgresDatabase>(server_url_, "herald_read_ahead");
    ahead_ = open(true);
    plain_ = open(false);
    ASSERT_TRUE(ahead_ && plain_);
  }

  std::unique_ptr<EventStore> open(bool read_ahead) {
    auto store = open_store(StoreOptions{
        .location = database_->url(), .catalog = &catalog(), .postgres_read_ahead = read_ahead});
    if (!store) {
      ADD_FAILURE() << "opening the store failed: " << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }

  /// Appends `count` events in one batch: alternately things (of organizations 1 and 2, with
  /// entity ids "e0".."e2", an hour apart going back from now) and ticks.
  void append(int count) {
    std::vector<EventPtr> events;
    const Timestamp now = herald::now();
    for (int i = 0; i < count; ++i) {
      const std::int64_t n = appended_++;
      if (n % 2 == 0) {
        RaThingEvent thing = make<RaThingEvent>({.entity_id = EntityId{"e" + std::to_string(n % 3)},
                                                 .organization_id = 1 + (n / 2) % 2,
                                                 .timestamp = now - std::chrono::hours(n)},
                                                {.sequence = n});
        events.push_back(EventPtr::make(std::move(thing)));
      } else {
        RaTickEvent tick;
        tick.sequence = n;
        tick.timestamp = now - std::chrono::hours(n);
        events.push_back(EventPtr::make(std::move(tick)));
      }
    }
    std::vector<EventRef> refs(events.begin(), events.end());
    auto stored = plain_->append_batch(refs);
    ASSERT_TRUE(stored) << stored.error().message;
  }

  /// Whether a connection to this test's database has run (or runs) a COPY of a forward read
  /// "after `after`": how a read sent ahead shows on the server.
  bool server_saw_read(std::int64_t after) {
    pqxx::connection conn(server_url_);
    pqxx::nontransaction tx(conn);
    const std::string pattern = "COPY (%position > (" + std::to_string(after) + ")::bigint%";
    return tx.exec_params1(
                 "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE $2",
                 database_name(), pattern)[0]
               .as<int>() > 0;
  }

  /// How many connections herald has open on this test's database.
  int herald_connections() {
    pqxx::connection conn(server_url_);
    pqxx::nontransaction tx(conn);
    return tx
        .exec_params1(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND "
            "application_name = 'herald'",
            database_name())[0]
        .as<int>();
  }

  std::string database_name() const {
    const std::string& url = database_->url();
    const auto end = url.find('?');
    const std::string base = url.substr(0, end);
    return base.substr(base.rfind('/') + 1);
  }

  std::string server_url_;
  std::unique_ptr<test::PostgresDatabase> database_;
  std::unique_ptr<EventStore> ahead_;
  std::unique_ptr<EventStore> plain_;
  std::int64_t appended_ = 0;
};

TEST_F(PostgresReadAhead, PagingReturnsWhatPlainReadsReturnForEveryFilterAndLimit) {
  append(95);
  const Timestamp now = herald::now();
  const std::vector<EventFilter> filters{
      {},
      {.types = {"RaTickEvent"}},
      {.types = {"RaThingEvent", "RaTickEvent"}},
      {.organization_id = 2},
      {.entity_type = "Thing"},
      {.entity_id = "e1"},
      {.since = now - std::chrono::hours(60)},
      {.since = now - std::chrono::hours(80), .until = now - std::chrono::hours(10)},
      {.types = {"RaThingEvent"}, .organization_id = 1, .entity_id = "e2"},
  };
  for (std::size_t f = 0; f < filters.size(); ++f) {
    for (const std::size_t limit : {std::size_t{1}, std::size_t{7}, std::size_t{10}}) {
      SCOPED_TRACE("filter " + std::to_string(f) + ", limit " + std::to_string(limit));
      const auto expected = all_pages(*plain_, limit, filters[f]);
      ASSERT_FALSE(expected.empty());
      EXPECT_EQ(all_pages(*ahead_, limit, filters[f]), expected);
      EXPECT_EQ(all_pages(*ahead_, limit, filters[f]), expected) << "paging again";
    }
  }
  // The events themselves, not just their positions.
  auto page = ahead_->read_forward(0, 10);
  auto next = ahead_->read_forward(page.value().back().position, 10);
  auto third = ahead_->read_forward(next.value().back().position, 10);
  auto plain_third = plain_->read_forward(next.value().back().position, 10);
  ASSERT_TRUE(third && plain_third);
  ASSERT_EQ(third->size(), plain_third->size());
  for (std::size_t i = 0; i < third->size(); ++i) {
    EXPECT_EQ((*third)[i].event->event_id, (*plain_third)[i].event->event_id);
    EXPECT_EQ((*third)[i].event->timestamp, (*plain_third)[i].event->timestamp);
    EXPECT_EQ((*third)[i].recorded_at, (*plain_third)[i].recorded_at);
  }
}

TEST_F(PostgresReadAhead, SendsThePageAfterAFullPageOnlyOnceTheReaderPagesAndOnlyWhenEnabled) {
  append(40);
  auto first = positions(ahead_->read_forward(0, 10));
  ASSERT_EQ(first.size(), 10u);
  auto second = positions(ahead_->read_forward(first.back(), 10));
  ASSERT_EQ(second.size(), 10u);
  EXPECT_TRUE(eventually([&] { return server_saw_read(second.back()); }))
      << "the page after the second one was not sent ahead";

  // One full page is no paging yet: a single read sends nothing more.
  auto single = positions(ahead_->read_forward(second.back() + 1, 5));
  ASSERT_EQ(single.size(), 5u);
  EXPECT_FALSE(server_saw_read(single.back()));

  // Without read-ahead, paging sends nothing ahead either.
  auto plain_first = positions(plain_->read_forward(1, 9));
  auto plain_second = positions(plain_->read_forward(plain_first.back(), 9));
  ASSERT_EQ(plain_second.size(), 9u);
  EXPECT_FALSE(server_saw_read(plain_second.back()));
}

TEST_F(PostgresReadAhead, AnAppendBetweenPagesIsSeenWhenThePageSentAheadWasShort) {
  append(25);
  auto first = positions(ahead_->read_forward(0, 10));
  auto second = positions(ahead_->read_forward(first.back(), 10));
  ASSERT_EQ(second.size(), 10u);
  ASSERT_TRUE(eventually([&] { return server_saw_read(second.back()); }));
  append(3);  // the third page, sent ahead with 5 events, now has 8
  auto third = positions(ahead_->read_forward(second.back(), 10));
  EXPECT_EQ(third, positions(plain_->read_forward(second.back(), 10)));
  EXPECT_EQ(third.size(), 8u);

  // A full page sent ahead stays right after appends: they come after it.
  append(30);
  auto fourth = positions(ahead_->read_forward(third.back(), 10));
  auto fifth = positions(ahead_->read_forward(fourth.back(), 10));
  ASSERT_TRUE(eventually([&] { return server_saw_read(fifth.back()); }));
  append(5);
  EXPECT_EQ(positions(ahead_->read_forward(fifth.back(), 10)),
            positions(plain_->read_forward(fifth.back(), 10)));
}

TEST_F(PostgresReadAhead, OtherFiltersLimitsAndPositionsDoNotTakeThePageSentAhead) {
  append(60);
  auto first = positions(ahead_->read_forward(0, 10));
  auto second = positions(ahead_->read_forward(first.back(), 10));
  ASSERT_TRUE(eventually([&] { return server_saw_read(second.back()); }));
  const std::int64_t after = second.back();
  // Each differs from the page sent ahead in one part only; each answer differs from its.
  const auto sent_ahead = positions(plain_->read_forward(after, 10));
  const auto same = [&](std::int64_t from, std::size_t limit, const EventFilter& filter) {
    auto expected = positions(plain_->read_forward(from, limit, filter));
    EXPECT_NE(expected, sent_ahead);
    EXPECT_EQ(positions(ahead_->read_forward(from, limit, filter)), expected);
  };
  same(after, 10, {.types = {"RaTickEvent"}});
  same(after, 10, {.organization_id = 1});
  same(after, 10, {.entity_id = "e0"});
  same(after, 10, {.until = herald::now() - std::chrono::hours(30)});
  same(after, 5, {});
  same(after + 1, 10, {});
  same(after - 1, 10, {});
  // The page sent ahead is still there for the reader it was sent for.
  EXPECT_EQ(positions(ahead_->read_forward(after, 10)), sent_ahead);
}

TEST_F(PostgresReadAhead, ReadersOnSeveralThreadsEachGetTheirOwnPages) {
  append(300);
  const std::vector<std::pair<std::size_t, EventFilter>> readers{
      {10, {}}, {10, {.types = {"RaTickEvent"}}}, {7, {}}, {10, {.organization_id = 2}}};
  std::vector<std::vector<std::vector<std::int64_t>>> expected;
  for (const auto& [limit, filter] : readers) expected.push_back(all_pages(*plain_, limit, filter));
  std::vector<std::vector<std::vector<std::int64_t>>> got(readers.size() * 2);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      const auto& [limit, filter] = readers[i % readers.size()];
      for (int round = 0; round < 5; ++round) got[i] = all_pages(*ahead_, limit, filter);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i], expected[i % readers.size()]) << "reader " << i;
  }
}

TEST_F(PostgresReadAhead, AServerRestartBetweenPagesFailsAndReconnectsAsAPlainRead) {
  const std::string data_dir = env("HERALD_TEST_PG_DATA");
  const std::string server_script = env("HERALD_TEST_PG_SERVER");
  if (data_dir.empty() || server_script.empty()) {
    GTEST_SKIP() << "HERALD_TEST_PG_DATA and HERALD_TEST_PG_SERVER are not set: "
                    "scripts/with_postgres.sh sets them";
  }
  const auto server = [&](const std::string& command) {
    return std::system((server_script + " " + command + " '" + data_dir + "' >/dev/null").c_str());
  };
  // However the test ends, the server runs again for the next tests.
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] { server("start"); }};
  append(100);
  const auto page_two = [&](EventStore& store) {
    auto first = positions(store.read_forward(0, 10));
    auto second = positions(store.read_forward(first.back(), 10));
    EXPECT_EQ(second.size(), 10u);
    return second.back();
  };

  // Restarted between pages: the next read reconnects and reads on.
  std::int64_t after = page_two(*ahead_);
  ASSERT_TRUE(eventually([&] { return server_saw_read(after); }));
  const std::int64_t plain_after = page_two(*plain_);
  ASSERT_EQ(plain_after, after);
  ASSERT_EQ(server("stop"), 0);
  ASSERT_EQ(server("start"), 0);
  auto ahead_third = ahead_->read_forward(after, 10);
  auto plain_third = plain_->read_forward(after, 10);
  ASSERT_TRUE(plain_third) << plain_third.error().message;
  ASSERT_TRUE(ahead_third) << ahead_third.error().message;
  EXPECT_EQ(positions(ahead_third), positions(plain_third));
  EXPECT_EQ(ahead_third->size(), 10u);

  // Down between pages: the same error as a plain read; back up, the next read works. Rows
  // read ahead may have arrived before the server stopped: they are then the right pages, as if
  // read a moment earlier, and the first read that needs the server fails.
  after = page_two(*ahead_);
  ASSERT_TRUE(eventually([&] { return server_saw_read(after); }));
  page_two(*plain_);
  std::vector<std::vector<std::int64_t>> rest;
  for (std::int64_t from = after;;) {
    auto page = positions(plain_->read_forward(from, 10));
    if (page.empty()) break;
    from = page.back();
    rest.push_back(std::move(page));
  }
  ASSERT_EQ(server("stop"), 0);
  auto ahead_down = ahead_->read_forward(after, 10);
  for (std::size_t served = 0; ahead_down && served < rest.size(); ++served) {
    EXPECT_EQ(positions(ahead_down), rest[served]);
    after = rest[served].back();
    ahead_down = ahead_->read_forward(after, 10);
  }
  auto plain_down = plain_->read_forward(after, 10);
  ASSERT_FALSE(ahead_down);
  ASSERT_FALSE(plain_down);
  EXPECT_EQ(ahead_down.error().code, ErrorCode::unavailable);
  EXPECT_EQ(ahead_down.error().code, plain_down.error().code);
  EXPECT_EQ(ahead_down.error().message, plain_down.error().message);
  ASSERT_EQ(server("start"), 0);
  auto ahead_back = ahead_->read_forward(after, 10);
  ASSERT_TRUE(ahead_back) << ahead_back.error().message;
  EXPECT_EQ(positions(ahead_back), positions(plain_->read_forward(after, 10)));
}

TEST_F(PostgresReadAhead, ClosingTheStoreWithAPageInFlightClosesItsConnections) {
  append(3000);
  auto first = positions(ahead_->read_forward(0, 1000));
  auto second = positions(ahead_->read_forward(first.back(), 1000));
  ASSERT_EQ(second.size(), 1000u);
  ASSERT_TRUE(eventually([&] { return server_saw_read(second.back()); }));
  ahead_.reset();
  plain_.reset();
  EXPECT_TRUE(eventually([&] { return herald_connections() == 0; }))
      << herald_connections() << " herald connections left open";
}

}  // namespace
}  // namespace herald::test_read_ahead
