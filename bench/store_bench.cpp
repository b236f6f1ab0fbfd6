// herald_store_bench: herald's event store side by side with raw database code doing the same
// writes, in one run. After Google Benchmark's own output it prints a table of medians with
// ratios to each scenario's baseline, where the files were, and PASS/MISS for each performance
// target of the store (informational: the exit code stays 0).
//
// Scenarios (docs/performance.md, "Event store", explains how to read them), on SQLite, and on
// PostgreSQL when HERALD_BENCH_PG_URL names a server (scripts/bench.sh starts one):
//   (1) append a batch of 1,000 events in one transaction: herald's append_batch against a raw
//       prepared-INSERT loop of the same rows (same columns, the same encoded JSON) in one
//       transaction, the ceiling; a raw loop that also encodes each event shows the JSON's share.
//   (2) 8 threads each appending single events and waiting for durability (group commit),
//       against one thread committing each event in a transaction of its own (raw, SQLite with
//       synchronous=FULL). More appender threads show how group commit scales; 8 threads each
//       keeping 64 asynchronous appends in flight (append_async) show what many appends waiting
//       at once let one commit carry.
//   (3) forward read (replay): read_forward over 100,000 stored events, decoded into typed events,
//       against a raw SELECT of the same rows (no decoding) and one that parses each body.
//   (4) the audit consumer catching up with stored events (hash chain, one record each).
//
// Files go to a fresh directory under $HERALD_BENCH_DIR, else the system's temporary directory
// unless that is a tmpfs (then the current directory): a database in memory would hide the cost of
// fsync, which is most of what durability costs. The directory is printed and removed at the end.
//
// Flags: Google Benchmark's (--benchmark_filter=..., --benchmark_repetitions=N; 5 repetitions by
// default), plus --herald_keep_files to keep the database files.

#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_files.hpp"

#include "herald/audit_log.hpp"
#include "herald/domain/audit_rules.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event.hpp"
#include "herald/event_store.hpp"
#include "herald/json.hpp"
#include "platform_events.hpp"

// Events and rows are built with designated initializers that leave members out, as herald's own
// code does; g++ 12 warns about that under -Wextra (herald_warnings turns it off for the library).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace herald_bench {

namespace fs = std::filesystem;

constexpr std::size_t batch_events = 1'000;
constexpr std::int64_t batches_per_run = 30;
constexpr int group_threads = 8;
constexpr std::int64_t appends_per_thread = 150;
constexpr std::int64_t single_commits_per_run = 400;
constexpr std::size_t async_in_flight = 64;
constexpr std::int64_t async_appends_per_thread = 2'000;
constexpr std::int64_t read_events = 100'000;
constexpr std::int64_t audit_events = 3'000;
// Records per transaction of the audit consumer (its read page), for the ceiling of (4).
constexpr std::size_t audit_batch_rows = 256;
// (4) once more with the consumer reading and committing 1,024 events at a time.
constexpr std::size_t large_audit_batch = 1'024;

constexpr const char* herald_name = "herald";
constexpr const char* raw_name = "raw";
// (4)'s ceiling: the same records copied by the database alone.
constexpr const char* ceiling_name = "ceiling: records copied in SQL";
// (4) with ConsumerOptions::batch_size = large_audit_batch.
constexpr const char* large_batch_name = "herald, batch_size 1024";
// (2)'s ceiling on PostgreSQL: the same rows inserted by the server alone, 512 per commit.
constexpr const char* group_ceiling_name = "ceiling: rows copied in SQL, 512/txn";
// (3)'s ceiling on PostgreSQL: herald's binary COPY, fields copied out, no decoding.
constexpr const char* read_ceiling_name = "raw binary COPY, no decoding";

// ---------------------------------------------------------------------------------------------
// Where the files go

struct Place {
  fs::path directory;
  std::string filesystem;
};

Place& place() {
  static Place where;
  return where;
}

bool make_place() {
  auto directory = make_bench_directory("herald-store-bench", fs::current_path());
  if (!directory) {
    std::fprintf(stderr, "herald_store_bench: %s\n", directory.error().c_str());
    return false;
  }
  place().directory = std::move(*directory);
  place().filesystem = filesystem_name(place().directory);
  return true;
}

/// A new database file path in the bench directory (removing an older one of the same name).
std::string fresh_file(std::string_view name) {
  static std::atomic<int> counter{0};
  const fs::path path =
      place().directory / (std::string(name) + "-" + std::to_string(counter.fetch_add(1)) + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  return path.string();
}

// ---------------------------------------------------------------------------------------------
// Events: the mix of platform_events.hpp

std::vector<herald::EventPtr> make_events(std::size_t count, std::int64_t first) {
  std::vector<herald::EventPtr> events;
  events.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    events.push_back(make_event(first + static_cast<std::int64_t>(i)));
  }
  return events;
}

std::vector<herald::EventRef> refs_of(const std::vector<herald::EventPtr>& events) {
  return {events.begin(), events.end()};
}

/// The columns of an event's row, as herald stores them.
struct Row {
  std::string event_id;
  std::string event_type;
  std::optional<std::int64_t> organization_id;
  std::optional<std::int64_t> actor;
  std::optional<std::string> entity_type;
  std::optional<std::string> entity_id;
  herald::Timestamp occurred_at;
  std::string body;
};

Row row_of(herald::EventRef event) {
  Row row{.event_id = event->event_id.to_string(),
          .event_type = std::string(event.event_type()),
          .organization_id = event->organization_id,
          .actor = event->user_id,
          .occurred_at = event->timestamp,
          .body = herald::encode_event(event)};
  if (const herald::EntityEvent* entity = event.entity()) {
    row.entity_type = std::string(event.type().entity_type());
    if (entity->entity_id) row.entity_id = herald::to_string(*entity->entity_id);
  }
  return row;
}

std::int64_t micros(herald::Timestamp t) { return t.time_since_epoch().count(); }

herald::StoreOptions store_options(std::string location,
                                   herald::SqliteSync sync = herald::SqliteSync::full) {
  return {.location = std::move(location),
          .catalog = &herald::domain::platform_catalog(),
          .sqlite_sync = sync};
}

std::unique_ptr<herald::EventStore> open_or_die(const herald::StoreOptions& options) {
  auto store = herald::open_store(options);
  if (!store) {
    std::fprintf(stderr, "herald_store_bench: %s\n", store.error().message.c_str());
    std::exit(1);
  }
  return std::move(*store);
}

/// Fills `store` with `count` events in batches.
void fill(herald::EventStore& store, std::int64_t count) {
  for (std::int64_t done = 0; done < count;) {
    const auto chunk = static_cast<std::size_t>(std::min<std::int64_t>(5'000, count - done));
    const auto events = make_events(chunk, done);
    const auto refs = refs_of(events);
    if (auto appended = store.append_batch(refs); !appended) {
      std::fprintf(stderr, "herald_store_bench: filling: %s\n", appended.error().message.c_str());
      std::exit(1);
    }
    done += static_cast<std::int64_t>(chunk);
  }
}

// ---------------------------------------------------------------------------------------------
// Raw SQLite: the same table (a herald-created file), the same rows, no herald in between

class RawSqlite {
 public:
  /// Opens `path` (which herald created) as herald's writer does: WAL, synchronous=FULL.
  explicit RawSqlite(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) die();
    exec("PRAGMA journal_mode = WAL");
    exec("PRAGMA synchronous = FULL");
    if (sqlite3_prepare_v2(db_,
                           "INSERT INTO herald_events (event_id, event_type, organization_id, "
                           "entity_type, entity_id, occurred_at, recorded_at, body) VALUES (?1, "
                           "?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, &insert_, nullptr) != SQLITE_OK) {
      die();
    }
  }
  ~RawSqlite() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }
  RawSqlite(const RawSqlite&) = delete;
  RawSqlite& operator=(const RawSqlite&) = delete;

  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) die();
  }

  void insert(const Row& row, std::int64_t recorded_at) {
    bind_text(1, row.event_id);
    bind_text(2, row.event_type);
    if (row.organization_id) {
      sqlite3_bind_int64(insert_, 3, *row.organization_id);
    } else {
      sqlite3_bind_null(insert_, 3);
    }
    bind_optional(4, row.entity_type);
    bind_optional(5, row.entity_id);
    sqlite3_bind_int64(insert_, 6, micros(row.occurred_at));
    sqlite3_bind_int64(insert_, 7, recorded_at);
    bind_text(8, row.body);
    if (sqlite3_step(insert_) != SQLITE_DONE) die();
    sqlite3_reset(insert_);
  }

  sqlite3* db() const { return db_; }

 private:
  void bind_text(int index, const std::string& text) {
    sqlite3_bind_text(insert_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  void bind_optional(int index, const std::optional<std::string>& text) {
    if (text) {
      bind_text(index, *text);
    } else {
      sqlite3_bind_null(insert_, index);
    }
  }
  [[noreturn]] void die() const {
    std::fprintf(stderr, "herald_store_bench: raw sqlite3: %s\n", sqlite3_errmsg(db_));
    std::exit(1);
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

/// A new SQLite file with herald's schema and nothing else, closed again.
std::string fresh_herald_file(std::string_view name) {
  std::string path = fresh_file(name);
  open_or_die(store_options(path));
  return path;
}

// ---------------------------------------------------------------------------------------------
// (1) a batch of 1,000 events in one transaction

void sqlite_batch_herald(benchmark::State& state) {
  auto store = open_or_die(store_options(fresh_file("batch-herald")));
  std::int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto events = make_events(batch_events, next);
    const auto refs = refs_of(events);
    next += batch_events;
    state.ResumeTiming();
    if (auto appended = store->append_batch(refs); !appended) {
      state.SkipWithError(appended.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch_events));
}

/// The ceiling: rows built beforehand, so only SQLite's own work is timed.
void sqlite_batch_raw(benchmark::State& state) {
  RawSqlite raw(fresh_herald_file("batch-raw"));
  std::int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Row> rows;
    for (const auto& event : make_events(batch_events, next)) rows.push_back(row_of(event));
    next += batch_events;
    state.ResumeTiming();
    raw.exec("BEGIN IMMEDIATE");
    const std::int64_t recorded_at = micros(herald::now());
    for (const Row& row : rows) raw.insert(row, recorded_at);
    raw.exec("COMMIT");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch_events));
}

/// The same, encoding each event's JSON inside the timed loop, as herald must.
void sqlite_batch_raw_encoding(benchmark::State& state) {
  RawSqlite raw(fresh_herald_file("batch-raw-encoding"));
  std::int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto events = make_events(batch_events, next);
    next += batch_events;
    state.ResumeTiming();
    raw.exec("BEGIN IMMEDIATE");
    const std::int64_t recorded_at = micros(herald::now());
    for (const auto& event : events) raw.insert(row_of(event), recorded_at);
    raw.exec("COMMIT");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch_events));
}

// ---------------------------------------------------------------------------------------------
// (2) concurrent single appends, each waiting for durability

/// One store shared by the threads of a multi-threaded benchmark (Setup/Teardown run once).
struct SharedStore {
  static inline std::unique_ptr<herald::EventStore> store;
  static inline std::string location;
  static void create_sqlite(const benchmark::State&) {
    store = open_or_die(store_options(fresh_file("group-herald")));
  }
  static void create_postgres(const benchmark::State&);
  static void destroy(const benchmark::State&);
};

void concurrent_appends(benchmark::State& state) {
  herald::EventStore& store = *SharedStore::store;
  std::int64_t next = static_cast<std::int64_t>(state.thread_index()) * 10'000'000;
  for (auto _ : state) {
    const herald::EventPtr event = make_event(next++);
    if (auto appended = store.append(event.ref()); !appended) {
      state.SkipWithError(appended.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

/// Each thread keeps `async_in_flight` appends outstanding (append_async) and counts each as done
/// when its callback reports it durable; the last iteration waits for the rest, inside the timing.
void concurrent_async_appends(benchmark::State& state) {
  herald::EventStore& store = *SharedStore::store;
  std::int64_t next = static_cast<std::int64_t>(state.thread_index()) * 10'000'000 + 5'000'000;
  std::mutex mutex;
  std::condition_variable completed;
  std::size_t in_flight = 0;
  std::string error;
  auto done = [&](std::expected<herald::AppendResult, herald::Error> outcome) {
    std::lock_guard lock(mutex);
    --in_flight;
    if (!outcome && error.empty()) error = outcome.error().message;
    completed.notify_one();
  };
  std::int64_t submitted = 0;
  for (auto _ : state) {
    herald::EventPtr event = make_event(next++);
    {
      std::unique_lock lock(mutex);
      completed.wait(lock, [&] { return in_flight < async_in_flight; });
      ++in_flight;
    }
    store.append_async(std::move(event), done);
    if (++submitted == static_cast<std::int64_t>(state.max_iterations)) {
      std::unique_lock lock(mutex);
      completed.wait(lock, [&] { return in_flight == 0; });
    }
  }
  if (!error.empty()) state.SkipWithError(error.c_str());
  state.SetItemsProcessed(state.iterations());
}

void sqlite_single_commits_raw(benchmark::State& state) {
  RawSqlite raw(fresh_herald_file("single-raw"));
  std::int64_t next = 0;
  for (auto _ : state) {
    const Row row = row_of(make_event(next++));
    raw.exec("BEGIN IMMEDIATE");
    raw.insert(row, micros(herald::now()));
    raw.exec("COMMIT");
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// (3) forward read

/// The file every read benchmark reads: `read_events` events, written once.
const std::string& sqlite_read_file() {
  static const std::string path = [] {
    std::string file = fresh_file("read");
    fill(*open_or_die(store_options(file)), read_events);
    return file;
  }();
  return path;
}

void read_all_forward(benchmark::State& state, herald::EventStore& store) {
  std::int64_t read = 0;
  for (auto _ : state) {
    std::int64_t after = 0;
    for (;;) {
      auto page = store.read_forward(after, 1000);
      if (!page) {
        state.SkipWithError(page.error().message.c_str());
        return;
      }
      if (page->empty()) break;
      after = page->back().position;
      read += static_cast<std::int64_t>(page->size());
      benchmark::DoNotOptimize(page->back().event.base());
    }
  }
  state.SetItemsProcessed(read);
}

void sqlite_read_herald(benchmark::State& state) {
  auto store = open_or_die(store_options(sqlite_read_file()));
  read_all_forward(state, *store);
}

/// Raw rows: every column copied out; `parse` also parses each body as JSON (no typed decode).
void sqlite_read_raw(benchmark::State& state, bool parse) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(sqlite_read_file().c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* select = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT position, event_id, event_type, organization_id, entity_type, "
                     "entity_id, occurred_at, recorded_at, body FROM herald_events WHERE "
                     "position > ?1 ORDER BY position LIMIT 1000",
                     -1, &select, nullptr);
  std::int64_t read = 0;
  const auto text = [&](int column) {
    const auto* bytes = reinterpret_cast<const char*>(sqlite3_column_text(select, column));
    return bytes == nullptr
               ? std::string()
               : std::string(bytes, static_cast<std::size_t>(sqlite3_column_bytes(select, column)));
  };
  for (auto _ : state) {
    std::int64_t after = 0;
    for (;;) {
      sqlite3_bind_int64(select, 1, after);
      std::int64_t rows = 0;
      while (sqlite3_step(select) == SQLITE_ROW) {
        after = sqlite3_column_int64(select, 0);
        Row row{.event_id = text(1),
                .event_type = text(2),
                .organization_id = sqlite3_column_int64(select, 3),
                .entity_type = text(4),
                .entity_id = text(5),
                .occurred_at =
                    herald::Timestamp(std::chrono::microseconds(sqlite3_column_int64(select, 6))),
                .body = text(8)};
        if (parse) benchmark::DoNotOptimize(boost::json::parse(row.body));
        benchmark::DoNotOptimize(row);
        ++rows;
      }
      sqlite3_reset(select);
      read += rows;
      if (rows == 0) break;
    }
  }
  sqlite3_finalize(select);
  sqlite3_close(db);
  state.SetItemsProcessed(read);
}

// ---------------------------------------------------------------------------------------------
// (4) the audit consumer

/// `batch_size`: events per read and per audit transaction (ConsumerOptions, 256 by default).
void audit_catch_up(benchmark::State& state, herald::EventStore& store,
                    std::size_t batch_size = herald::ConsumerOptions{}.batch_size) {
  auto audit = herald::make_audit_consumer(store, herald::domain::audit_mapping(),
                                           herald::ConsumerOptions{.batch_size = batch_size});
  std::int64_t handled = 0;
  for (auto _ : state) {
    auto done = audit->catch_up();
    if (!done) {
      state.SkipWithError(done.error().message.c_str());
      return;
    }
    handled += static_cast<std::int64_t>(*done);
  }
  state.SetItemsProcessed(handled);
}

void sqlite_audit_herald(benchmark::State& state, herald::SqliteSync sync,
                         std::size_t batch_size = herald::ConsumerOptions{}.batch_size) {
  auto store = open_or_die(store_options(fresh_file("audit"), sync));
  fill(*store, audit_events);
  audit_catch_up(state, *store, batch_size);
}

/// The ceiling of (4): the records herald's consumer wrote, copied by SQLite alone into a table
/// with the same columns and indexes (`raw_audit`), in transactions of `audit_batch_rows`, as the
/// consumer commits them: no events read, no records built, no hashing, no round trip.
void sqlite_audit_ceiling(benchmark::State& state) {
  const std::string file = fresh_file("audit-ceiling");
  {
    auto store = open_or_die(store_options(file));
    fill(*store, audit_events);
    auto audit = herald::make_audit_consumer(*store, herald::domain::audit_mapping());
    if (!audit->catch_up()) {
      state.SkipWithError("audit catch-up failed");
      return;
    }
  }
  RawSqlite raw(file);
  std::int64_t copied = 0;
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // The table and indexes of herald_audit_records under new names, empty.
    std::vector<std::string> schema;
    sqlite3_stmt* statement = nullptr;
    sqlite3_prepare_v2(raw.db(),
                       "SELECT sql FROM sqlite_master WHERE tbl_name = 'herald_audit_records' AND "
                       "sql IS NOT NULL ORDER BY type DESC",
                       -1, &statement, nullptr);
    while (sqlite3_step(statement) == SQLITE_ROW) {
      std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
      for (const std::string_view name : {"herald_audit_records", "herald_audit_by"}) {
        const std::string renamed =
            "raw_audit_" + std::to_string(round) + std::string(name.substr(12));
        for (std::size_t at; (at = sql.find(name)) != std::string::npos;) {
          sql.replace(at, name.size(), renamed);
        }
      }
      schema.push_back(std::move(sql));
    }
    sqlite3_finalize(statement);
    for (const std::string& sql : schema) raw.exec(sql.c_str());
    const std::string insert = "INSERT INTO raw_audit_" + std::to_string(round) +
                               "_records SELECT * FROM herald_audit_records WHERE position > ?1 "
                               "ORDER BY position LIMIT " +
                               std::to_string(audit_batch_rows);
    sqlite3_prepare_v2(raw.db(), insert.c_str(), -1, &statement, nullptr);
    ++round;
    state.ResumeTiming();
    for (std::int64_t after = 0; after < audit_events;) {
      raw.exec("BEGIN IMMEDIATE");
      sqlite3_bind_int64(statement, 1, after);
      sqlite3_step(statement);
      sqlite3_reset(statement);
      raw.exec("COMMIT");
      after += static_cast<std::int64_t>(audit_batch_rows);
    }
    sqlite3_finalize(statement);
    copied += audit_events;
  }
  state.SetItemsProcessed(copied);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: each benchmark run gets a schema of its own in HERALD_BENCH_PG_URL's database

std::string& pg_url() {
  static std::string url;
  return url;
}

/// A fresh schema and the URL whose connections use it; dropped when destroyed.
class PgSchema {
 public:
  PgSchema() : name_("herald_bench_" + std::to_string(counter_++)) {
    run("DROP SCHEMA IF EXISTS " + name_ + " CASCADE; CREATE SCHEMA " + name_);
    url_ = pg_url() + (pg_url().find('?') == std::string::npos ? "?" : "&") +
           "options=-csearch_path%3D" + name_;
  }
  ~PgSchema() { run("DROP SCHEMA IF EXISTS " + name_ + " CASCADE"); }
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;

  const std::string& url() const { return url_; }

 private:
  void run(const std::string& sql) {
    pqxx::connection connection(pg_url());
    pqxx::nontransaction tx(connection);
    tx.exec(sql);
  }
  static inline int counter_ = 0;
  std::string name_;
  std::string url_;
};

/// Raw libpqxx on a table shaped like herald_events (LIKE … INCLUDING ALL), positions counted here.
class RawPostgres {
 public:
  explicit RawPostgres(const std::string& url) : connection_(url) {
    pqxx::nontransaction(connection_)
        .exec("CREATE TABLE raw_events (LIKE herald_events INCLUDING ALL)");
    connection_.prepare("insert",
                        "INSERT INTO raw_events (position, event_id, event_type, occurred_at, "
                        "recorded_at, actor, organization_id, entity_type, entity_id, body) VALUES "
                        "($1, $2::uuid, $3, $4::timestamptz, $5::timestamptz, $6, $7, $8, $9, "
                        "$10::json)");
  }

  void insert(pqxx::transaction_base& tx, const Row& row, const std::string& recorded_at) {
    tx.exec_prepared("insert", ++position_, row.event_id, row.event_type,
                     herald::format_timestamp(row.occurred_at), recorded_at, row.actor,
                     row.organization_id, row.entity_type, row.entity_id, row.body);
  }

  pqxx::connection& connection() { return connection_; }

 private:
  pqxx::connection connection_;
  std::int64_t position_ = 0;
};

/// A schema with herald's tables in it (created by opening a store).
struct PgStore {
  PgSchema schema;
  std::unique_ptr<herald::EventStore> store = open_or_die(store_options(schema.url()));
};

void pg_batch_herald(benchmark::State& state) {
  PgStore pg;
  std::int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto events = make_events(batch_events, next);
    const auto refs = refs_of(events);
    next += batch_events;
    state.ResumeTiming();
    if (auto appended = pg.store->append_batch(refs); !appended) {
      state.SkipWithError(appended.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch_events));
}

void pg_batch_raw(benchmark::State& state) {
  PgStore pg;
  RawPostgres raw(pg.schema.url());
  std::int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Row> rows;
    for (const auto& event : make_events(batch_events, next)) rows.push_back(row_of(event));
    next += batch_events;
    state.ResumeTiming();
    pqxx::work tx(raw.connection());
    const std::string recorded_at = herald::format_timestamp(herald::now());
    for (const Row& row : rows) raw.insert(tx, row, recorded_at);
    tx.commit();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch_events));
}

std::unique_ptr<PgSchema> shared_schema;

void SharedStore::create_postgres(const benchmark::State&) {
  shared_schema = std::make_unique<PgSchema>();
  store = open_or_die(store_options(shared_schema->url()));
}

void SharedStore::destroy(const benchmark::State&) {
  store.reset();
  shared_schema.reset();
}

void pg_single_commits_raw(benchmark::State& state) {
  PgStore pg;
  RawPostgres raw(pg.schema.url());
  std::int64_t next = 0;
  for (auto _ : state) {
    const Row row = row_of(make_event(next++));
    pqxx::work tx(raw.connection());
    raw.insert(tx, row, herald::format_timestamp(herald::now()));
    tx.commit();
  }
  state.SetItemsProcessed(state.iterations());
}

/// The schema every PostgreSQL read benchmark reads, written once; dropped by main at the end.
std::unique_ptr<PgStore>& pg_read_slot() {
  static std::unique_ptr<PgStore> pg;
  return pg;
}

PgStore& pg_read_store() {
  if (!pg_read_slot()) {
    pg_read_slot() = std::make_unique<PgStore>();
    fill(*pg_read_slot()->store, read_events);
  }
  return *pg_read_slot();
}

void pg_read_herald(benchmark::State& state) {
  auto store = open_or_die(store_options(pg_read_store().schema.url()));
  read_all_forward(state, *store);
}

/// As pg_read_herald with read-ahead off: what read-ahead adds, side by side.
void pg_read_herald_no_read_ahead(benchmark::State& state) {
  auto options = store_options(pg_read_store().schema.url());
  options.postgres_read_ahead = false;
  auto store = open_or_die(options);
  read_all_forward(state, *store);
}

void pg_read_raw(benchmark::State& state) {
  pqxx::connection connection(pg_read_store().schema.url());
  std::int64_t read = 0;
  for (auto _ : state) {
    std::int64_t after = 0;
    for (;;) {
      pqxx::nontransaction tx(connection);
      const pqxx::result page = tx.exec_params(
          "SELECT position, event_id::text, event_type, organization_id, entity_type, entity_id, "
          "occurred_at::text, recorded_at::text, body::text FROM herald_events WHERE position > $1 "
          "ORDER BY position LIMIT 1000",
          after);
      if (page.empty()) break;
      for (const pqxx::row& columns : page) {
        Row row{.event_id = columns[1].c_str(),
                .event_type = columns[2].c_str(),
                .entity_type = std::string(columns[4].c_str()),
                .entity_id = std::string(columns[5].c_str()),
                .body = columns[8].c_str()};
        benchmark::DoNotOptimize(row);
      }
      after = page.back()[0].as<std::int64_t>();
      read += static_cast<std::int64_t>(page.size());
    }
  }
  state.SetItemsProcessed(read);
}

void pg_audit_herald(benchmark::State& state,
                     std::size_t batch_size = herald::ConsumerOptions{}.batch_size) {
  PgStore pg;
  fill(*pg.store, audit_events);
  audit_catch_up(state, *pg.store, batch_size);
}

/// The ceiling of (3) on PostgreSQL: the query herald sends (a binary COPY of the same columns,
/// pages of 1,000), its rows taken apart into fields by hand and the event type and body copied
/// out, but no JSON decoded: what reading the rows costs before herald decodes anything.
void pg_read_raw_copy(benchmark::State& state) {
  PGconn* conn = PQconnectdb(pg_read_store().schema.url().c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    state.SkipWithError(PQerrorMessage(conn));
    PQfinish(conn);
    return;
  }
  const auto be64 = [](const char* bytes) {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = value << 8 | static_cast<unsigned char>(bytes[i]);
    return static_cast<std::int64_t>(value);
  };
  const auto be32 = [](const char* bytes) {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value = value << 8 | static_cast<unsigned char>(bytes[i]);
    return static_cast<std::int32_t>(value);
  };
  std::int64_t read = 0;
  for (auto _ : state) {
    std::int64_t after = 0;
    for (;;) {
      const std::string copy =
          "COPY (SELECT position, recorded_at, event_type, body FROM herald_events WHERE position "
          "> " +
          std::to_string(after) + " ORDER BY position LIMIT 1000) TO STDOUT (FORMAT binary)";
      PQclear(PQexec(conn, copy.c_str()));
      std::int64_t rows = 0;
      bool first = true;
      char* data = nullptr;
      int size = 0;
      while ((size = PQgetCopyData(conn, &data, 0)) > 0) {
        const char* at = data + (first ? 19 : 0);  // the file header comes with the first row
        first = false;
        if (static_cast<unsigned char>(at[0]) == 0xFF) {  // the trailer: a field count of -1
          PQfreemem(data);
          continue;
        }
        at += 2 + 4;  // the field count, position's length
        after = be64(at);
        at += 8 + 4 + 8;  // position, recorded_at's length and value
        const std::int32_t type_size = be32(at);
        std::string event_type(at + 4, static_cast<std::size_t>(type_size));
        at += 4 + type_size;
        const std::int32_t body_size = be32(at);
        std::string body(at + 4, static_cast<std::size_t>(body_size));
        benchmark::DoNotOptimize(event_type);
        benchmark::DoNotOptimize(body);
        PQfreemem(data);
        ++rows;
      }
      while (PGresult* rest = PQgetResult(conn)) PQclear(rest);
      read += rows;
      if (rows == 0) break;
    }
  }
  PQfinish(conn);
  state.SetItemsProcessed(read);
}

/// A fresh schema holding `audit_events` events and the audit records herald wrote for them,
/// and an empty `raw_audit` shaped like herald_audit_records (LIKE … INCLUDING ALL).
struct PgAuditCopy {
  PgStore pg;
  pqxx::connection connection{pg.schema.url()};
  PgAuditCopy() {
    fill(*pg.store, audit_events);
    auto audit = herald::make_audit_consumer(*pg.store, herald::domain::audit_mapping());
    if (!audit->catch_up()) {
      std::fprintf(stderr, "herald_store_bench: audit catch-up failed\n");
      std::exit(1);
    }
    pqxx::nontransaction(connection)
        .exec("CREATE TABLE raw_audit (LIKE herald_audit_records INCLUDING ALL)");
  }
};

/// The ceiling of (4) on PostgreSQL: the server copying the records herald wrote into
/// `raw_audit` (the same columns and indexes), `audit_batch_rows` per transaction as the
/// consumer commits them: no events read, no records built or sent, one statement per batch.
void pg_audit_ceiling(benchmark::State& state) {
  std::int64_t copied = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto copy = std::make_unique<PgAuditCopy>();
    state.ResumeTiming();
    for (std::int64_t after = 0; after < audit_events;) {
      pqxx::work tx(copy->connection);
      tx.exec("INSERT INTO raw_audit SELECT * FROM herald_audit_records WHERE position > " +
              std::to_string(after) + " ORDER BY position LIMIT " +
              std::to_string(audit_batch_rows));
      tx.commit();
      after += static_cast<std::int64_t>(audit_batch_rows);
    }
    state.PauseTiming();
    copy.reset();
    state.ResumeTiming();
    copied += audit_events;
  }
  state.SetItemsProcessed(copied);
}

/// A ceiling for (2) on PostgreSQL: the server alone inserting stored event rows into
/// `raw_events` (herald_events' columns and indexes), `async_in_flight` × `group_threads` rows
/// per transaction, what the asynchronous appends at most share a commit with: no client work,
/// no numbering, no duplicate check.
void pg_group_ceiling(benchmark::State& state) {
  PgStore& source = pg_read_store();
  pqxx::connection connection(source.schema.url());
  constexpr std::int64_t rows_per_commit =
      static_cast<std::int64_t>(async_in_flight) * group_threads;
  std::int64_t inserted = 0;
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string table = "raw_group_" + std::to_string(round++);
    pqxx::nontransaction(connection)
        .exec("CREATE TABLE " + table + " (LIKE herald_events INCLUDING ALL)");
    state.ResumeTiming();
    for (std::int64_t after = 0; after < async_appends_per_thread * group_threads;
         after += rows_per_commit) {
      pqxx::work tx(connection);
      tx.exec("INSERT INTO " + table + " SELECT * FROM herald_events WHERE position > " +
              std::to_string(after) + " ORDER BY position LIMIT " +
              std::to_string(rows_per_commit));
      tx.commit();
      inserted += rows_per_commit;
    }
    state.PauseTiming();
    pqxx::nontransaction(connection).exec("DROP TABLE " + table);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(inserted);
}

// ---------------------------------------------------------------------------------------------
// Registration, with what the summary table needs to know about each benchmark.

struct Case {
  std::string scenario;  // "(1) SQLite: batch of 1,000 events, one transaction"
  std::string impl;      // "herald"
  std::string baseline;  // the implementation the ratio is taken against
};

/// Registered benchmarks by name, in registration order.
std::vector<std::pair<std::string, Case>>& cases() {
  static std::vector<std::pair<std::string, Case>> registered;
  return registered;
}

template <class Fn>
benchmark::internal::Benchmark* add_case(std::string_view key, Case info, Fn&& fn) {
  std::string name = std::string(key) + "/" + info.impl;
  cases().emplace_back(name, std::move(info));
  return benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();  // durability is waiting for the disk, which CPU time does not see
}

/// The (2) row of asynchronous appends: "herald async, 8 threads x 64 in flight".
std::string async_name() {
  return "herald async, " + std::to_string(group_threads) + " threads x " +
         std::to_string(async_in_flight) + " in flight";
}

void register_sqlite() {
  const std::string batch = "(1) SQLite: batch of 1,000 events, 1 txn";
  add_case("s1_batch", {batch, herald_name, raw_name}, sqlite_batch_herald)
      ->Iterations(batches_per_run);
  add_case("s1_batch", {batch, raw_name, raw_name}, sqlite_batch_raw)->Iterations(batches_per_run);
  add_case("s1_batch", {batch, "raw + JSON encoding", raw_name}, sqlite_batch_raw_encoding)
      ->Iterations(batches_per_run);

  const std::string group = "(2) SQLite: durable single appends";
  for (int threads : {group_threads, 1, 32}) {
    add_case("s2_single_appends",
             {group, "herald, " + std::to_string(threads) + " thread" + (threads > 1 ? "s" : ""),
              "raw, 1 thread"},
             concurrent_appends)
        ->Threads(threads)
        ->Iterations(threads == 1 ? single_commits_per_run
                                  : std::max<std::int64_t>(20, appends_per_thread * 8 / threads))
        ->Setup(&SharedStore::create_sqlite)
        ->Teardown(&SharedStore::destroy);
  }
  add_case("s2_single_appends", {group, async_name(), "raw, 1 thread"}, concurrent_async_appends)
      ->Threads(group_threads)
      ->Iterations(async_appends_per_thread)
      ->Setup(&SharedStore::create_sqlite)
      ->Teardown(&SharedStore::destroy);
  add_case("s2_single_appends", {group, "raw, 1 thread", "raw, 1 thread"},
           sqlite_single_commits_raw)
      ->Iterations(single_commits_per_run);

  const std::string read = "(3) SQLite: forward read (replay)";
  add_case("s3_read", {read, herald_name, raw_name}, sqlite_read_herald)->Iterations(3);
  add_case("s3_read", {read, raw_name, raw_name}, [](benchmark::State& state) {
    sqlite_read_raw(state, false);
  })->Iterations(3);
  add_case("s3_read", {read, "raw + JSON parse", raw_name}, [](benchmark::State& state) {
    sqlite_read_raw(state, true);
  })->Iterations(3);

  const std::string audit = "(4) SQLite: audit consumer catch-up";
  add_case("s4_audit", {audit, herald_name, ceiling_name}, [](benchmark::State& state) {
    sqlite_audit_herald(state, herald::SqliteSync::full);
  })->Iterations(1);
  add_case("s4_audit", {audit, "herald, synchronous=NORMAL", ceiling_name},
           [](benchmark::State& state) { sqlite_audit_herald(state, herald::SqliteSync::normal); })
      ->Iterations(1);
  add_case("s4_audit", {audit, large_batch_name, ceiling_name}, [](benchmark::State& state) {
    sqlite_audit_herald(state, herald::SqliteSync::full, large_audit_batch);
  })->Iterations(1);
  add_case("s4_audit", {audit, ceiling_name, ceiling_name}, sqlite_audit_ceiling)->Iterations(1);
}

void register_postgres() {
  const std::string batch = "(1) PostgreSQL: batch of 1,000, 1 txn";
  add_case("p1_batch", {batch, herald_name, raw_name}, pg_batch_herald)->Iterations(10);
  add_case("p1_batch", {batch, raw_name, raw_name}, pg_batch_raw)->Iterations(10);

  const std::string group = "(2) PostgreSQL: durable single appends";
  for (int threads : {group_threads, 1, 32}) {
    add_case("p2_single_appends",
             {group, "herald, " + std::to_string(threads) + " thread" + (threads > 1 ? "s" : ""),
              "raw, 1 thread"},
             concurrent_appends)
        ->Threads(threads)
        ->Iterations(threads == 1 ? single_commits_per_run
                                  : std::max<std::int64_t>(20, appends_per_thread * 8 / threads))
        ->Setup(&SharedStore::create_postgres)
        ->Teardown(&SharedStore::destroy);
  }
  add_case("p2_single_appends", {group, async_name(), "raw, 1 thread"}, concurrent_async_appends)
      ->Threads(group_threads)
      ->Iterations(async_appends_per_thread)
      ->Setup(&SharedStore::create_postgres)
      ->Teardown(&SharedStore::destroy);
  add_case("p2_single_appends", {group, "raw, 1 thread", "raw, 1 thread"}, pg_single_commits_raw)
      ->Iterations(single_commits_per_run);
  add_case("p2_single_appends", {group, group_ceiling_name, "raw, 1 thread"}, pg_group_ceiling)
      ->Iterations(1);

  const std::string read = "(3) PostgreSQL: forward read (replay)";
  add_case("p3_read", {read, herald_name, raw_name}, pg_read_herald)->Iterations(3);
  add_case("p3_read", {read, "herald, no read-ahead", raw_name}, pg_read_herald_no_read_ahead)
      ->Iterations(3);
  add_case("p3_read", {read, raw_name, raw_name}, pg_read_raw)->Iterations(3);
  add_case("p3_read", {read, read_ceiling_name, raw_name}, pg_read_raw_copy)->Iterations(3);

  const std::string audit = "(4) PostgreSQL: audit consumer catch-up";
  add_case("p4_audit", {audit, herald_name, ceiling_name}, [](benchmark::State& state) {
    pg_audit_herald(state);
  })->Iterations(1);
  add_case("p4_audit", {audit, large_batch_name, ceiling_name}, [](benchmark::State& state) {
    pg_audit_herald(state, large_audit_batch);
  })->Iterations(1);
  add_case("p4_audit", {audit, ceiling_name, ceiling_name}, pg_audit_ceiling)->Iterations(1);
}

// ---------------------------------------------------------------------------------------------
// Reporting: a reporter that records every repetition for the summary and forwards the
// aggregates (or the single run, without repetitions) to Google Benchmark's console reporter.

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

class SummaryReporter : public benchmark::BenchmarkReporter {
 public:
  explicit SummaryReporter(benchmark::ConsoleReporter::OutputOptions options) : console_(options) {}

  bool ReportContext(const Context& context) override { return console_.ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    bool forward = false;
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate || run.repetitions <= 1 || run.error_occurred) {
        forward = true;
      }
      if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
      // "s1_batch/herald/iterations:30/real_time" -> "s1_batch/herald"
      const std::string& name = run.run_name.function_name;
      auto rate = run.counters.find("items_per_second");
      if (rate != run.counters.end()) samples_[name].push_back(rate->second.value);
    }
    if (forward) console_.ReportRuns(runs);
  }

  void Finalize() override { console_.Finalize(); }

  /// The per-repetition events/s of the benchmark `name`, or nullptr when it did not run.
  const std::vector<double>* samples(const std::string& name) const {
    auto found = samples_.find(name);
    return found == samples_.end() ? nullptr : &found->second;
  }

 private:
  benchmark::ConsoleReporter console_;
  std::map<std::string, std::vector<double>> samples_;
};

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string format_rate(double value) {
  char text[64];
  if (value >= 1e6) {
    std::snprintf(text, sizeof text, "%.2f M events/s", value / 1e6);
  } else if (value >= 1e3) {
    std::snprintf(text, sizeof text, "%.1f k events/s", value / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.0f events/s", value);
  }
  return text;
}

using Medians = std::map<std::string, double>;

Medians print_table(const SummaryReporter& reporter) {
  Medians medians;
  std::printf("\nherald event store, side by side (CPU: %s, %u hardware threads)\n",
              cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf("SQLite files: %s (%s), WAL, synchronous=FULL unless the row says otherwise\n",
              place().directory.c_str(), place().filesystem.c_str());
  if (!pg_url().empty()) {
    std::string data_directory = "?";
    try {
      pqxx::connection connection(pg_url());
      pqxx::nontransaction tx(connection);
      data_directory = tx.exec1("SHOW data_directory")[0].c_str();
    } catch (const std::exception&) {
    }
    std::printf("PostgreSQL: data directory %s (%s), fsync and synchronous_commit as configured\n",
                data_directory.c_str(), filesystem_name(data_directory).c_str());
  }
  std::printf(
      "median of the repetitions (events/s, higher is better); spread = (max - min) / median;\n"
      "ratio = this / baseline\n\n");
  std::printf("%-42s %-40s %18s %7s %5s  %s\n", "scenario", "implementation", "median", "spread",
              "reps", "ratio");
  for (const auto& [name, info] : cases()) {
    const std::vector<double>* samples = reporter.samples(name);
    if (samples != nullptr && !samples->empty()) medians[name] = median(*samples);
  }
  // Grouped by scenario in the order scenarios were registered, implementations in registration
  // order within each.
  std::vector<std::string> scenarios;
  for (const auto& [name, info] : cases()) {
    if (std::find(scenarios.begin(), scenarios.end(), info.scenario) == scenarios.end()) {
      scenarios.push_back(info.scenario);
    }
  }
  std::vector<const std::pair<std::string, Case>*> ordered;
  for (const std::string& scenario : scenarios) {
    for (const auto& entry : cases()) {
      if (entry.second.scenario == scenario) ordered.push_back(&entry);
    }
  }
  std::string previous_scenario;
  for (const auto* entry : ordered) {
    const auto& [name, info] = *entry;
    auto value = medians.find(name);
    if (value == medians.end()) continue;
    const std::vector<double>& samples = *reporter.samples(name);
    const auto [low, high] = std::minmax_element(samples.begin(), samples.end());
    const double spread = value->second > 0 ? (*high - *low) / value->second * 100 : 0;
    const std::string key = name.substr(0, name.find('/'));
    auto baseline = medians.find(key + "/" + info.baseline);
    char ratio[64] = "-";
    if (baseline != medians.end() && baseline->second > 0 && info.impl != info.baseline) {
      std::snprintf(ratio, sizeof ratio, "%.2fx %s", value->second / baseline->second,
                    info.baseline.c_str());
    }
    if (info.scenario != previous_scenario && !previous_scenario.empty()) std::printf("\n");
    std::printf("%-42s %-40s %18s %6.1f%% %5zu  %s\n",
                info.scenario != previous_scenario ? info.scenario.c_str() : "", info.impl.c_str(),
                format_rate(value->second).c_str(), spread, samples.size(), ratio);
    previous_scenario = info.scenario;
  }
  return medians;
}

void print_targets(const Medians& medians) {
  std::printf("\ntargets (medians of this run; informational)\n");
  auto report = [](const std::string& target, std::optional<double> measured, double limit,
                   const char* unit) {
    const char* verdict = "n/a";
    char shown[48] = "not measured";
    if (measured) {
      verdict = *measured >= limit ? "PASS" : "MISS";
      std::snprintf(shown, sizeof shown, "%.3g%s", *measured, unit);
    }
    std::printf("  %-4s %-58s measured %s\n", verdict, target.c_str(), shown);
  };
  auto value = [&](const std::string& name) -> std::optional<double> {
    auto found = medians.find(name);
    return found == medians.end() ? std::nullopt : std::optional<double>(found->second);
  };
  auto ratio = [&](const std::string& name, const std::string& baseline) {
    auto top = value(name);
    auto bottom = value(baseline);
    return top && bottom && *bottom > 0 ? std::optional<double>(*top / *bottom) : std::nullopt;
  };
  auto millions = [&](const std::string& name) {
    auto rate = value(name);
    return rate ? std::optional<double>(*rate / 1e6) : std::nullopt;
  };
  auto thousands = [&](const std::string& name) {
    auto rate = value(name);
    return rate ? std::optional<double>(*rate / 1e3) : std::nullopt;
  };
  for (const auto& [prefix, backend] : {std::pair{std::string("s"), std::string("SQLite")},
                                        std::pair{std::string("p"), std::string("PostgreSQL")}}) {
    if (backend == "PostgreSQL" && pg_url().empty()) {
      std::printf("  n/a  PostgreSQL targets: HERALD_BENCH_PG_URL was not set\n");
      continue;
    }
    report("(1) " + backend + ": herald batch >= 0.7x raw",
           ratio(prefix + "1_batch/herald", prefix + "1_batch/raw"), 0.7, "x");
    report("(2) " + backend + ": 8 threads group commit >= 20x raw 1 thread",
           ratio(prefix + "2_single_appends/herald, 8 threads",
                 prefix + "2_single_appends/raw, 1 thread"),
           20, "x");
    report("(2) " + backend + ": 8 threads x 64 async in flight >= 20x raw 1 thread",
           ratio(prefix + "2_single_appends/" + async_name(),
                 prefix + "2_single_appends/raw, 1 thread"),
           20, "x");
    report("(3) " + backend + ": forward read >= 1 M events/s", millions(prefix + "3_read/herald"),
           1.0, " M/s");
    report("(4) " + backend + ": audit consumer >= 100k events/s",
           thousands(prefix + "4_audit/herald"), 100, "k/s");
  }
  // Where a target is out of the database's own reach on this machine, the share of the ceiling
  // measured in the same run is the figure that speaks of herald.
  std::printf("\nshare of the ceiling measured in this run (herald / ceiling)\n");
  const auto share = [&](const std::string& what, const std::string& name,
                         const std::string& ceiling) {
    if (auto measured = ratio(name, ceiling)) {
      std::printf("  %-58s %.2fx (ceiling %s)\n", what.c_str(), *measured,
                  format_rate(*value(ceiling)).c_str());
    }
  };
  share("(2) PostgreSQL: async appends / rows copied in SQL", "p2_single_appends/" + async_name(),
        std::string("p2_single_appends/") + group_ceiling_name);
  share("(3) PostgreSQL: forward read / raw binary COPY", "p3_read/herald",
        std::string("p3_read/") + read_ceiling_name);
  share("(4) SQLite: audit consumer / records copied in SQL", "s4_audit/herald",
        std::string("s4_audit/") + ceiling_name);
  share("(4) PostgreSQL: audit consumer / records copied in SQL", "p4_audit/herald",
        std::string("p4_audit/") + ceiling_name);
}

}  // namespace herald_bench

int main(int argc, char** argv) {
  using namespace herald_bench;
  // Five repetitions unless the command line says otherwise (a later flag wins).
  static char repetitions_flag[] = "--benchmark_repetitions=5";
  std::vector<char*> args{argv[0], repetitions_flag};
  bool keep_files = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--herald_keep_files") {
      keep_files = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  int arg_count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&arg_count, args.data());
  if (benchmark::ReportUnrecognizedArguments(arg_count, args.data())) return 1;

  if (!make_place()) return 1;
  std::printf("herald_store_bench: database files in %s (%s)\n", place().directory.c_str(),
              place().filesystem.c_str());
  register_sqlite();
  if (const char* url = std::getenv("HERALD_BENCH_PG_URL"); url != nullptr && *url) {
    pg_url() = url;
    register_postgres();
  } else {
    std::printf("herald_store_bench: HERALD_BENCH_PG_URL is not set; PostgreSQL is left out\n");
  }

  SummaryReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                 : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const Medians medians = print_table(reporter);
  print_targets(medians);
  benchmark::Shutdown();
  pg_read_slot().reset();
  if (keep_files) {
    std::printf("\nkept the database files in %s\n", place().directory.c_str());
  } else {
    std::error_code ignored;
    fs::remove_all(place().directory, ignored);
  }
  return 0;
}
