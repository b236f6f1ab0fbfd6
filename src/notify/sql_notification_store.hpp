#pragma once

// The notification store written once over a small SQL interface that SQLite and PostgreSQL each
// implement (src/notify/sqlite_notification_store.cpp, postgres_notification_store.cpp): the
// statements are the same on both, only placeholders, timestamps, row locks and transactions
// differ.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "herald/error.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/timestamp.hpp"

namespace herald::notify::detail {

/// The type a statement parameter has, so a backend can write its placeholder.
enum class SqlType : std::uint8_t { integer, text, timestamp };

/// One statement parameter. Value type.
struct SqlValue {
  SqlType type = SqlType::integer;
  /// SQL NULL (of `type`).
  bool null = false;
  /// For `integer`, and for `timestamp` as microseconds since the Unix epoch.
  std::int64_t integer = 0;
  std::string text;
};

/// What a statement returned: its rows (each cell as text, or nullopt for NULL) and how many rows
/// it changed.
struct SqlResult {
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::int64_t affected = 0;
};

/// A database failure thrown inside a transaction function; the backend rolls back and the
/// store returns `error`.
struct SqlFailure {
  Error error;
};

/// A connection inside a transaction. Not thread-safe: used by one transaction function.
class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  /// Runs one statement with `params` bound to its placeholders; throws `SqlFailure`.
  virtual SqlResult exec(const std::string& sql, std::span<const SqlValue> params) = 0;
  /// Runs several statements without parameters (a migration); throws `SqlFailure`.
  virtual void exec_script(const std::string& sql) = 0;
};

/// How hard a write transaction's commit pushes its data to the disk.
enum class Durability : std::uint8_t {
  /// Durable when the commit returns (SQLite synchronous=FULL, PostgreSQL's default).
  full,
  /// Survives a process crash but may be lost, whole, on power loss or an OS crash (SQLite WAL
  /// with synchronous=NORMAL, PostgreSQL synchronous_commit=off). For writes whose loss is
  /// already allowed for: a claim (it is simply not made) and an attempt's outcome (the delivery
  /// goes back to its expired claim and is tried again: at least once).
  relaxed,
};

/// A transaction function: returns an error to roll back.
using SqlWork = std::function<std::expected<void, Error>(SqlConnection&)>;

/// What a database must provide for `SqlNotificationStore`. Thread-safe.
class SqlBackend {
 public:
  virtual ~SqlBackend() = default;
  /// The placeholder of the `index`th (1-based) parameter of `type` in a statement.
  virtual std::string placeholder(std::size_t index, SqlType type) const = 0;
  /// An expression that reads the timestamp column `column` as microseconds since the epoch.
  virtual std::string micros(std::string_view column) const = 0;
  /// Appended to a SELECT whose rows a write transaction is about to change: locks them (and
  /// with `skip_locked`, skips the ones another transaction holds). Empty where a write
  /// transaction holds the whole database.
  virtual std::string_view lock_rows(bool skip_locked) const = 0;
  /// Statements that create notify_ tables, `[i]` taking the schema from version i to i + 1.
  virtual std::span<const std::string_view> migrations() const = 0;
  /// An expression true when the table named by the text parameter `name_placeholder` exists.
  virtual std::string table_exists(const std::string& name_placeholder) const = 0;
  /// Runs `work` in one write transaction (it holds out other writers of the rows it locks);
  /// commits when it returns a value, rolls back otherwise. `what` names the operation in errors.
  virtual std::expected<void, Error> write(const std::string& what, const SqlWork& work,
                                           Durability durability) = 0;
  /// Runs `work` for reading.
  virtual std::expected<void, Error> read(const std::string& what, const SqlWork& work) = 0;
  /// Called inside the migration's write transaction before anything is read: serializes
  /// migrations from several processes.
  virtual void lock_migration(SqlConnection& connection) = 0;
  /// Called inside a write transaction that made a delivery due: tells other processes' waiters
  /// when they commit (a no-op where none can listen).
  virtual void announce_due(SqlConnection& connection) = 0;
  /// Starts telling `on_due` when another process made deliveries due; false when the backend
  /// cannot (the store then relies on its callers' timeouts).
  virtual bool listen_for_due(std::function<void()> on_due) = 0;
  /// The database, for messages ("SQLite file 'x.db'", "PostgreSQL at host/db").
  virtual const std::string& where() const = 0;
};

/// The notification schema version this herald writes and reads (notify_meta 'schema_version').
inline constexpr int notify_schema_version = 1;

/// Creates or migrates the notification tables through `backend` and returns the store on it.
/// Errors: the event store's tables are missing; the tables are from a newer herald (nothing is
/// changed); the database fails.
std::expected<std::unique_ptr<NotificationStore>, Error> make_sql_notification_store(
    std::unique_ptr<SqlBackend> backend);

}  // namespace herald::notify::detail
