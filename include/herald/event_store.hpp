#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "herald/api_tokens.hpp"
#include "herald/audit_record.hpp"
#include "herald/error.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_ref.hpp"
#include "herald/timestamp.hpp"

namespace herald {

/// An event as the store holds it: its global position and when it was recorded.
struct StoredEvent {
  /// 1, 2, 3, … in the order appends became visible; never reused. On PostgreSQL a rolled-back
  /// append leaves a hole (docs/store.md), so readers never count on consecutive numbers.
  std::int64_t position = 0;
  /// When the store made it durable (UTC).
  Timestamp recorded_at{};
  EventPtr event;
};

/// What `append` did with one event.
struct AppendResult {
  std::int64_t position = 0;
  /// False when an event with the same `event_id` was already stored (nothing was written and
  /// `position` is the stored event's).
  bool inserted = true;
};

/// Receives the outcome of `EventStore::append_async`: the event's result once its transaction
/// committed, or why it was not stored.
using AppendCallback = std::move_only_function<void(std::expected<AppendResult, Error>)>;
/// Receives the outcome of `EventStore::append_batch_async`: every event's result in order once
/// the transaction committed, or one error (then nothing of the batch was stored).
using BatchCallback =
    std::move_only_function<void(std::expected<std::vector<AppendResult>, Error>)>;

/// Which events a read returns. Empty members match everything.
struct EventFilter {
  /// Wire names; an event matches if its type is any of them.
  std::vector<std::string> types;
  std::optional<std::int64_t> organization_id;
  std::optional<std::string> entity_type;
  /// The entity id as text ("42" or "bold-rush-1234"); needs no entity_type to match.
  std::optional<std::string> entity_id;
  /// Events whose `timestamp` is at or after `since` and before `until`.
  std::optional<Timestamp> since;
  std::optional<Timestamp> until;
};

/// A consumer's progress as the store keeps it.
struct ConsumerCheckpoint {
  std::string name;
  /// The last position the consumer finished (0: none).
  std::int64_t position = 0;
  Timestamp updated_at{};
};

/// An event a consumer gave up on after its retries, kept for an operator.
struct ParkedEvent {
  std::string consumer;
  std::int64_t position = 0;
  EventId event_id;
  std::string event_type;
  std::string error;
  int attempts = 0;
  Timestamp parked_at{};
};

/// Which audit records a query returns, newest first. Empty members match everything.
struct AuditQuery {
  std::optional<std::int64_t> organization_id;
  std::optional<std::int64_t> actor;
  /// Exact action ("user_created"), or a prefix when it ends in '*' ("organization_member_*").
  std::optional<std::string> action;
  std::optional<std::string> entity_type;
  std::optional<std::string> entity_id;
  /// Occurred at or after `since`, before `until`.
  std::optional<Timestamp> since;
  std::optional<Timestamp> until;
  /// Cursor: only records with a position below this (the last position of the previous page).
  std::optional<std::int64_t> before_position;
  /// 1 to 1000.
  std::size_t limit = 100;
};

/// One page of audit records and the total matching the filters (ignoring the cursor).
struct AuditPage {
  std::vector<AuditRecord> items;
  std::int64_t total = 0;
};

/// Durable, append-only storage of events, with consumer checkpoints, parked events and the
/// audit log kept in the same database. Thread-safe: every member may be called from any thread.
///
/// Guarantees (docs/store.md): an event is acknowledged only once durable; appending an
/// `event_id` already stored writes nothing and returns the stored position, also when two
/// appends race; positions become visible in increasing order, so a reader that follows the
/// store by position never skips one.
class EventStore {
 public:
  virtual ~EventStore() = default;

  /// Appends one event durably; blocks until it is. Concurrent appends, blocking or not, share a
  /// transaction (group commit); a lone caller commits in its own thread.
  virtual std::expected<AppendResult, Error> append(EventRef event) = 0;
  /// Appends several events in one transaction, in order; all or none. Shares the transaction
  /// with other appends queued at the same time (a batch is never split).
  virtual std::expected<std::vector<AppendResult>, Error> append_batch(
      std::span<const EventRef> events) = 0;

  /// Appends one event durably without waiting: queues it and returns at once; `done` runs once,
  /// with the result `append` would return, after the transaction that took the event committed
  /// or failed. Appends queued together share transactions with each other and with blocking
  /// appends, and take positions in the order they were queued.
  ///
  /// `done` runs on a thread the store owns, one callback at a time, while the next transaction
  /// commits: it must not block (calling `append_async` again is fine), throw, or destroy the
  /// store. Every call gets its callback, also when the store is destroyed: destruction commits
  /// what is queued and runs every callback first.
  ///
  /// Errors, through `done`: those of `append`; `unavailable` when `StoreOptions::
  /// max_queued_events` events of asynchronous appends are queued already (nothing is written;
  /// retry once earlier appends completed), or while the store is being destroyed.
  virtual void append_async(EventPtr event, AppendCallback done) = 0;
  /// Appends `events` in order, all or none, without waiting, as `append_async`: `done` runs
  /// once with every result or one error. A batch larger than `max_queued_events` is accepted
  /// when no other asynchronous append is queued.
  virtual void append_batch_async(std::vector<EventPtr> events, BatchCallback done) = 0;

  /// Events with position > `after`, oldest first, at most `limit`.
  virtual std::expected<std::vector<StoredEvent>, Error> read_forward(
      std::int64_t after, std::size_t limit, const EventFilter& filter = {}) = 0;
  /// Events with position < `before` (all when empty), newest first, at most `limit`.
  virtual std::expected<std::vector<StoredEvent>, Error> read_backward(
      std::optional<std::int64_t> before, std::size_t limit, const EventFilter& filter = {}) = 0;
  /// The stored event with this id, or nullopt.
  virtual std::expected<std::optional<StoredEvent>, Error> get(const EventId& id) = 0;
  virtual std::expected<std::int64_t, Error> count(const EventFilter& filter = {}) = 0;
  /// The highest visible position (0 when empty).
  virtual std::expected<std::int64_t, Error> head() = 0;
  /// Blocks until an event with position > `after` is visible, `timeout` passes or
  /// `wake_waiters()` is called; returns the head. Wakes at once for appends through this object;
  /// on PostgreSQL also for appends by other processes (LISTEN/NOTIFY).
  virtual std::expected<std::int64_t, Error> wait_for(std::int64_t after,
                                                      std::chrono::milliseconds timeout) = 0;
  /// Makes every `wait_for` in progress on this object return at once (with the head, whether or
  /// not it moved), so that a thread waiting for appends can be stopped without waiting out its
  /// timeout. A `wait_for` that begins after the call is not affected, so a caller that stops a
  /// waiting thread calls it until the thread has left `wait_for` (see `DurableConsumer::stop`).
  /// Other waiters of this object return early too and simply wait again.
  virtual void wake_waiters() noexcept = 0;

  // --- consumer checkpoints and parked events ---

  /// The consumer's checkpoint; position 0 when it never ran.
  virtual std::expected<ConsumerCheckpoint, Error> load_checkpoint(const std::string& name) = 0;
  /// Moves the consumer's checkpoint (forward after processing, or anywhere for a replay).
  virtual std::expected<void, Error> save_checkpoint(const std::string& name,
                                                     std::int64_t position) = 0;
  virtual std::expected<std::vector<ConsumerCheckpoint>, Error> list_checkpoints() = 0;
  /// Records that `consumer` gave up on the event at `position`.
  virtual std::expected<void, Error> park(const ParkedEvent& parked) = 0;
  virtual std::expected<std::vector<ParkedEvent>, Error> list_parked(
      const std::optional<std::string>& consumer = std::nullopt) = 0;
  /// Removes a parked entry (after a retry succeeded, or to discard it); not_found if absent.
  virtual std::expected<void, Error> unpark(const std::string& consumer, std::int64_t position) = 0;

  // --- audit log ---

  /// Appends an audit record after the current head, in the same transaction as moving
  /// `consumer`'s checkpoint to `record.position`. The record's `prev_hash` and `hash` are
  /// computed by the caller from `audit_head()`. Writes no record when a record for
  /// `record.event_id` exists (returns false; the checkpoint is still moved, so a replay
  /// advances). Errors: `conflict` when the record does not extend the head (its position is not
  /// above the head's, or its `prev_hash` is not the head's hash: another writer moved the chain).
  virtual std::expected<bool, Error> append_audit(const AuditRecord& record,
                                                  const std::string& consumer) = 0;
  /// Appends a run of audit records in one transaction and moves `consumer`'s checkpoint to the
  /// last record's position in it; returns how many records were written. `records` are in
  /// increasing position order. A record whose `event_id` is already in the log is skipped
  /// without looking at its contents (a replay, a redelivery after a crash); the others must form
  /// a chain after the head: the first of them extends the head (position above the head's,
  /// `prev_hash` the head's hash), each further one the record written before it. The checkpoint
  /// moves also when every record was skipped, so a replay advances. Errors: `invalid_argument`
  /// for an empty `consumer`, a position below 1 or positions out of order (naming the record);
  /// `conflict`, naming the first record that does not extend the chain, when another writer moved
  /// the chain or a record for an event at or below the head is missing; nothing is written then.
  virtual std::expected<std::size_t, Error> append_audit_batch(std::span<const AuditRecord> records,
                                                               const std::string& consumer) = 0;
  /// The last audit record's position and hash (position 0 and the genesis hash when empty).
  virtual std::expected<AuditChainHead, Error> audit_head() = 0;
  virtual std::expected<AuditPage, Error> query_audit(const AuditQuery& query) = 0;
  /// Every audit record with position > `after` in chain order, at most `limit`.
  virtual std::expected<std::vector<AuditRecord>, Error> read_audit_chain(std::int64_t after,
                                                                          std::size_t limit) = 0;

  // --- API tokens (docs/security.md) ---

  /// Stores a new API token under `name`, of which the store keeps only `token_sha256` (see
  /// `api_token_sha256`), and returns it. Errors: `invalid_argument` for a name that is not 1 to
  /// 64 of [A-Za-z0-9._-], a hash that is not 64 lower-case hexadecimal characters, or no scopes;
  /// `conflict` when a token (revoked ones included) already has the name or the hash. A token
  /// with a `user_id` is bound to that user (see `ApiToken::user_id`).
  virtual std::expected<ApiToken, Error> create_token(const std::string& name,
                                                      const std::string& token_sha256,
                                                      Scopes scopes,
                                                      std::optional<std::int64_t> organization_id,
                                                      std::optional<std::int64_t> user_id) = 0;
  /// Every token, revoked ones included, by name.
  virtual std::expected<std::vector<ApiToken>, Error> list_tokens() = 0;
  /// Revokes the token named `name` and returns it. Revoking a revoked token changes nothing and
  /// returns it with its first `revoked_at`. Errors: `not_found` when no token has the name.
  virtual std::expected<ApiToken, Error> revoke_token(const std::string& name) = 0;
  /// The token whose stored hash is `token_sha256`, revoked or not, or nullopt. Errors:
  /// `invalid_argument` for a hash that is not 64 lower-case hexadecimal characters.
  virtual std::expected<std::optional<StoredApiToken>, Error> find_token(
      const std::string& token_sha256) = 0;
};

/// SQLite durability: how hard a commit pushes data to the disk (PRAGMA synchronous).
enum class SqliteSync : std::uint8_t {
  full,    ///< fsync on every commit: survives power loss (the default).
  normal,  ///< WAL fsync at checkpoints only: survives a process crash, not power loss.
};

/// How to open a store.
struct StoreOptions {
  /// A SQLite file path ("herald.db", "/var/lib/herald/events.db") or a PostgreSQL URL
  /// ("postgresql://user@host:5432/db").
  std::string location = "herald.db";
  /// Types known when reading events back; an unknown stored type is an error on read.
  const EventCatalog* catalog = nullptr;
  SqliteSync sqlite_sync = SqliteSync::full;
  /// SQLite only: cap the database size (PRAGMA max_page_count); 0 leaves SQLite's default.
  std::int64_t sqlite_max_pages = 0;
  /// Largest encoded event accepted by append (bytes).
  std::size_t max_event_bytes = std::size_t{1} << 20;
  /// Group commit: the most events one shared transaction takes (a larger batch goes alone).
  std::size_t max_group = 1024;
  /// Group commit: the most encoded bytes one shared transaction takes (a larger event or batch
  /// goes alone).
  std::size_t max_group_bytes = std::size_t{4} << 20;
  /// The most events of `append_async` and `append_batch_async` calls queued or being committed
  /// (until their callbacks start) at once; further calls fail at once with `unavailable`.
  /// Blocking appends are not counted: their callers wait.
  std::size_t max_queued_events = 10000;
  /// SQLite only: how long a write waits for another connection's write lock (busy_timeout).
  std::chrono::milliseconds sqlite_busy_timeout{5000};
  /// SQLite only: how often `wait_for` checks the head for appends it was not woken for (made by
  /// another process, or through the outbox on another connection).
  std::chrono::milliseconds sqlite_poll_interval{50};
  /// SQLite only: create herald's tables in an existing SQLite database that already holds other
  /// tables (a service's own database, for the outbox). Without it such a file is refused as not
  /// herald's. A file marked by another application (a non-zero application_id) is always refused.
  bool sqlite_adopt_existing = false;
  /// PostgreSQL only: while a reader pages forward (asks for the page after a full one), send
  /// the read of the page after each full page at once, so the server produces it meanwhile.
  bool postgres_read_ahead = true;
};

/// Opens (creating or migrating as needed) the store at `options.location`. Errors: a file that
/// is not a herald database, a database written by a newer herald, a corrupt file, or a server
/// that cannot be reached; the database is left untouched in each case.
std::expected<std::unique_ptr<EventStore>, Error> open_store(const StoreOptions& options);

}  // namespace herald
