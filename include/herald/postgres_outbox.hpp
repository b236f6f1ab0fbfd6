#pragma once

#include <expected>
#include <pqxx/transaction_base>
#include <span>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"
#include "herald/sqlite_outbox.hpp"  // OutboxOptions, shared by both backends' outboxes

namespace herald {

/// Appends `event` to the herald store kept in the PostgreSQL database of `tx`, inside that
/// transaction, which the caller owns: the event becomes durable and visible when the caller
/// commits, together with the caller's own writes, and vanishes if they roll back or the
/// connection dies before the commit (the transactional outbox).
///
///     pqxx::work tx(conn);
///     tx.exec_params("UPDATE users SET name = $1 WHERE id = $2", name, id);
///     auto appended = herald::append_in_transaction(tx, renamed, {.catalog = &catalog});
///     if (!appended) return appended.error();  // tx rolls back when destroyed
///     tx.commit();                             // the row and the event, or neither
///
/// The database must have been opened once with `open_store` (which creates herald's tables), and
/// herald's tables must be on the connection's search_path (docs/operations.md).
///
/// Idempotent by `event_id`, like `EventStore::append`: an id already stored (or appended earlier
/// in this transaction) writes nothing and returns the stored position with `inserted == false`.
/// Appending takes herald's append lock, which the transaction then holds until it ends, so that
/// positions commit in order (docs/store.md): other appends to the store wait meanwhile, so append
/// last, just before committing. Stores of every process are woken (LISTEN/NOTIFY) when the
/// transaction commits; nothing else needs to be called. Use READ COMMITTED (libpqxx's default):
/// under REPEATABLE READ or SERIALIZABLE, an id another transaction stored meanwhile fails the
/// append with a serialization error, which a retry of the whole transaction resolves.
///
/// Errors: an event too large or of a type `options.catalog` lacks, or a `tx` that is not a
/// transaction block (`invalid_argument`: a pqxx::nontransaction, under which the append lock
/// would not last until the commit); in these cases nothing was sent to the server and the
/// transaction is intact. No herald schema (`not_found`) or another schema version (`conflict`);
/// a lost connection (`unavailable`); anything else the server refused (`io`). After a
/// server-side error the transaction is aborted: roll it back. Not thread-safe beyond libpqxx:
/// use it from the thread that owns the transaction.
std::expected<AppendResult, Error> append_in_transaction(pqxx::transaction_base& tx, EventRef event,
                                                         const OutboxOptions& options = {});

/// Appends several events inside `tx`, in order, as `append_in_transaction` does one; they commit
/// or roll back with `tx`, all or none.
std::expected<std::vector<AppendResult>, Error> append_batch_in_transaction(
    pqxx::transaction_base& tx, std::span<const EventRef> events,
    const OutboxOptions& options = {});

}  // namespace herald
