#pragma once

#include <cstddef>
#include <expected>

#include "herald/error.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"

struct sqlite3;

namespace herald {

/// How the outbox checks what it appends.
struct OutboxOptions {
  /// When set, an event whose type it does not list is refused, as the store refuses it (it could
  /// not be read back). Pass the store's catalog.
  const EventCatalog* catalog = nullptr;
  /// Largest encoded event accepted (bytes); keep it equal to the store's `max_event_bytes`.
  std::size_t max_event_bytes = std::size_t{1} << 20;
};

/// Appends `event` to the herald store kept in the database of `db`, the caller's own connection,
/// inside the transaction the caller has open on it: the event becomes durable and visible when
/// the caller commits, together with the caller's own writes, and vanishes if they roll back (or
/// the process dies before the commit).
///
/// The database must have been opened once with `open_store` (which creates herald's tables; a
/// file that already holds the service's tables needs `StoreOptions::sqlite_adopt_existing`).
/// Begin the transaction with BEGIN IMMEDIATE, so that its reads and the append cannot fail later
/// with SQLITE_BUSY for a write another connection committed meanwhile.
///
/// Idempotent by `event_id`, like `EventStore::append`: an id already stored (or appended earlier
/// in this transaction) writes nothing and returns the stored position with `inserted == false`.
/// The position is final once the caller commits: SQLite admits one writer at a time, so
/// positions commit in order whichever connection appends.
///
/// Stores of this process notice the commit within `StoreOptions::sqlite_poll_interval`; call
/// `notify_outbox_commit` after committing (or use `OutboxTransaction`, which does) to wake them
/// at once. Errors: no transaction open (`invalid_argument`), no herald schema or another schema
/// version (`conflict`), an event that is too large or of a type `options.catalog` lacks, and
/// SQLite failures (a full database is `unavailable`). A failed append leaves the caller's
/// transaction open and the caller's own writes in it untouched. Not thread-safe beyond what the
/// connection `db` allows: use it from the thread that owns the transaction.
std::expected<AppendResult, Error> append_in_transaction(sqlite3* db, EventRef event,
                                                         const OutboxOptions& options = {});

/// Wakes `wait_for` of every store of this process open on the database file of `db`. Call it
/// after committing a transaction that appended through `append_in_transaction`.
void notify_outbox_commit(sqlite3* db);

/// A write transaction on the caller's connection that holds the caller's writes and their events:
/// BEGIN IMMEDIATE when made, COMMIT (then `notify_outbox_commit`) on `commit()`, ROLLBACK when
/// destroyed uncommitted. Movable, not copyable; used by one thread.
class OutboxTransaction {
 public:
  /// Begins the transaction on `db`. Errors: a transaction already open (`invalid_argument`),
  /// the write lock not obtained within the connection's busy timeout (`unavailable`).
  static std::expected<OutboxTransaction, Error> begin(sqlite3* db);

  OutboxTransaction(OutboxTransaction&& other) noexcept;
  OutboxTransaction& operator=(OutboxTransaction&& other) noexcept;
  OutboxTransaction(const OutboxTransaction&) = delete;
  OutboxTransaction& operator=(const OutboxTransaction&) = delete;
  /// Rolls back when neither `commit` nor `rollback` ran.
  ~OutboxTransaction();

  /// `append_in_transaction(db(), event, options)`.
  std::expected<AppendResult, Error> append(EventRef event, const OutboxOptions& options = {});
  /// Commits the caller's writes and the events together, then wakes this process's stores. On an
  /// error the transaction is still open (roll it back, or retry the commit).
  std::expected<void, Error> commit();
  /// Discards the caller's writes and the events.
  void rollback() noexcept;

  /// The connection the transaction runs on, for the caller's own statements.
  sqlite3* db() const noexcept { return db_; }

 private:
  explicit OutboxTransaction(sqlite3* db) noexcept : db_(db) {}
  sqlite3* db_ = nullptr;
};

}  // namespace herald
