#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "herald/error.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"
#include "herald/timestamp.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace herald {

/// PRAGMA application_id of a herald database: "HRLD" in ASCII.
inline constexpr std::int32_t sqlite_application_id = 0x48524c44;
/// The schema version this herald writes; a database with a higher one is refused.
inline constexpr int sqlite_schema_version = 3;

/// Append counters of a SQLite store, for tests and metrics.
struct SqliteStoreStats {
  /// Transactions that appended events (each group commit, and each retry of a request alone).
  std::uint64_t append_transactions = 0;
  /// The same: every append, single or batch, blocking or not, goes through group commit.
  std::uint64_t group_transactions = 0;
  /// Single appends completed (blocking and asynchronous).
  std::uint64_t single_appends = 0;
  /// The most events one transaction took.
  std::size_t largest_group = 0;
  /// Events queued for group commit now (the group being committed included).
  std::size_t queued = 0;
};

/// The settings a store's writing connection runs with, as SQLite reports them.
struct SqliteSettings {
  /// "wal".
  std::string journal_mode;
  /// PRAGMA synchronous: 2 FULL, 1 NORMAL.
  int synchronous = 0;
  std::int64_t max_page_count = 0;
  int busy_timeout_ms = 0;
};

/// The SQLite backend of `EventStore`: one database file in WAL mode, one writing connection
/// (single appends share its transactions through `GroupCommit`) and a pool of reading
/// connections. Thread-safe, like every `EventStore`.
class SqliteStore : public EventStore {
 public:
  /// Append counters (group commit).
  virtual SqliteStoreStats stats() const = 0;
  /// The writing connection's pragmas.
  virtual std::expected<SqliteSettings, Error> settings() = 0;
  /// The database file as given in `StoreOptions::location`.
  virtual const std::string& path() const = 0;
};

/// Opens, creating and migrating as needed, the SQLite database at `options.location`. Errors
/// name the file and say what to do: not a SQLite file or corrupt (`io`), another program's
/// SQLite database or one written by a newer herald (`conflict`), a directory or file this
/// process may not write (`io`). In each of those cases the file is left byte-for-byte as it was.
std::expected<std::unique_ptr<SqliteStore>, Error> open_sqlite_store(const StoreOptions& options);

/// What the outbox (sqlite_outbox.cpp) shares with the store: the one way an event row is
/// written, so both produce identical rows.
namespace sqlite_detail {

/// INSERT of one event row; a stored `event_id` inserts nothing.
inline constexpr std::string_view insert_event_sql =
    "INSERT INTO herald_events (event_id, event_type, organization_id, entity_type, entity_id, "
    "occurred_at, recorded_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
    "ON CONFLICT (event_id) DO NOTHING";
/// The position of a stored `event_id`.
inline constexpr std::string_view find_event_sql =
    "SELECT position FROM herald_events WHERE event_id = ?1";

/// Checks that `event` may be appended (a real id, a type `catalog` knows when given, at most
/// `max_bytes` encoded) and returns its wire form. `where` names the store in errors.
std::expected<std::string, Error> encode_for_append(EventRef event, const EventCatalog* catalog,
                                                    std::size_t max_bytes, std::string_view where);

/// Writes one event row with prepared `insert_event_sql` and `find_event_sql` statements of
/// `db`, inside the caller's transaction. Resets both statements.
std::expected<AppendResult, Error> insert_event(sqlite3* db, sqlite3_stmt* insert,
                                                sqlite3_stmt* find, EventRef event,
                                                std::string_view body, Timestamp recorded_at,
                                                std::string_view where);

/// Checks that `db` holds herald's schema at the version this herald writes.
std::expected<void, Error> check_schema(sqlite3* db, std::string_view where);

/// Wakes `wait_for` of every store of this process open on the database file `path`.
void notify_appended(std::string_view path);

/// The error for SQLite result `rc` while `doing` something to the database `where`.
Error failure(std::string_view where, sqlite3* db, int rc, std::string_view doing);

}  // namespace sqlite_detail

}  // namespace herald
