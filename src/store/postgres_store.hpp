#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <pqxx/transaction_base>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_store.hpp"

namespace herald::detail {

/// Opens the PostgreSQL store at `options.location` (a "postgresql://" or "postgres://" URL),
/// creating or migrating its schema. Errors: `unavailable` when the server cannot be reached,
/// `conflict` when the database holds a newer herald schema or tables that are not herald's.
std::expected<std::unique_ptr<EventStore>, Error> make_postgres_store(const StoreOptions& options);

/// True when `location` names a PostgreSQL server rather than a SQLite file.
bool is_postgres_url(std::string_view location) noexcept;

/// `url` without its password, for messages and logs: "postgresql://herald@db:5432/events".
std::string redact_postgres_url(std::string_view url);

// --- shared by the store and the outbox (src/store/postgres_outbox.cpp) ---

/// The schema version this herald writes and reads (the herald_meta row 'schema_version').
inline constexpr int postgres_schema_version = 3;

/// A timestamptz in PostgreSQL's binary form counts microseconds from 2000-01-01 00:00 UTC: this
/// many microseconds after the Unix epoch.
inline constexpr std::int64_t postgres_epoch_micros = 946'684'800'000'000;

/// One event encoded for an INSERT into herald_events.
struct PostgresEventRow {
  std::string event_id;  ///< Canonical UUID text.
  std::string event_type;
  std::string occurred_at;  ///< RFC 3339, microseconds.
  std::optional<std::string> actor;
  std::optional<std::string> organization_id;
  std::optional<std::string> entity_type;
  std::optional<std::string> entity_id;
  std::string_view body;  ///< The wire form, owned by the caller.
};

/// Checks that `event` may be appended (a real id, a type `catalog` knows when given, at most
/// `max_event_bytes` encoded) and returns its wire form. `server` names the store in errors.
std::expected<std::string, Error> encode_for_postgres(EventRef event, const EventCatalog* catalog,
                                                      std::size_t max_event_bytes,
                                                      std::string_view server);

/// The row of `event`, whose wire form `body` must outlive it.
PostgresEventRow postgres_row(EventRef event, std::string_view body);

/// Appends `rows` in order inside `tx`: takes the transaction-scoped append lock (so commit
/// order is position order), skips event ids already stored or repeated earlier in `rows`, takes
/// positions above every stored one, and queues a NOTIFY on the events channel, delivered when
/// `tx` commits. With `check_schema`, first checks that the database holds herald's current
/// schema. Returns each row's result and sets `recorded_at` when given. Errors: `invalid_argument`
/// when `tx` is not a transaction block (a pqxx::nontransaction, whose statements each commit on
/// their own), before anything is sent. Throws what libpqxx throws; on an error from the server
/// the transaction is unusable.
std::expected<std::vector<AppendResult>, Error> postgres_append_rows(
    pqxx::transaction_base& tx, std::span<const PostgresEventRow* const> rows, bool check_schema,
    Timestamp* recorded_at = nullptr);

/// Turns a libpqxx or standard exception thrown while `what` ran against `server` (a redacted
/// URL) into an Error: `unavailable` for a lost or refused connection, `io` otherwise.
Error postgres_error(const std::exception& failure, std::string_view what, std::string_view server);

}  // namespace herald::detail
