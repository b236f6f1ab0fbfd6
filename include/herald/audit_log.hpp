#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "herald/audit_record.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/error.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"
#include "herald/timestamp.hpp"

namespace herald {

/// Turns a stored event into its audit record: the domain's rules (action, actor, details). It
/// fills `occurred_at`, `actor`, `organization_id`, `action`, `entity_type`, `entity_id` and
/// `details`; the audit consumer sets `position`, `event_id` and `recorded_at` from the stored
/// event and computes `prev_hash` and `hash`. Must be a pure function of its arguments (verify
/// does not call it, but a replay must write the same record) and must not throw for any event the
/// store can hold. Called from the consumer's thread.
using AuditMapping =
    std::function<AuditRecord(EventRef event, std::int64_t position, Timestamp recorded_at)>;

/// The canonical encoding of `record` that its hash covers (docs/audit.md, "Canonical encoding"):
/// a JSON object with the members action, actor, details, entity_id, entity_type, event_id,
/// occurred_at, organization_id, position, prev_hash, recorded_at, in that (byte-wise sorted)
/// order, keys of nested objects sorted the same way, no whitespace, null written out, integers
/// in decimal, strings escaping only `"`, `\` and control characters (UTF-8 as is): what
/// Python's `json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes for
/// a record without floating-point details. `hash` is not part of it.
std::string canonical_audit_encoding(const AuditRecord& record);

/// SHA-256 of `canonical_audit_encoding(record)` as 64 lower-case hexadecimal characters.
HashHex audit_hash(const AuditRecord& record);

/// `details` (or any JSON value) in the canonical form: sorted keys, no whitespace.
std::string canonical_json(const boost::json::value& value);

/// The audit consumer's default name (its checkpoint in the store).
inline constexpr std::string_view audit_consumer_name = "audit";

/// Writes one audit record per event: maps the event, chains it to the audit head and stores it
/// in the same transaction as the consumer's checkpoint, one event at a time
/// (`EventStore::append_audit`) or a run of events at once (`EventStore::append_audit_batch`). An
/// event already audited (a replay, a redelivery after a crash) writes nothing. Thread-safe to
/// call from one consumer; the store serializes writers.
class AuditWriter {
 public:
  /// Writes to `store` (which must outlive it), moving `consumer_name`'s checkpoint with each
  /// record.
  AuditWriter(EventStore& store, AuditMapping mapping, std::string consumer_name);

  /// Audits `event`, chained to `audit_head()`; returns true when a record was written, false
  /// when it existed. Errors: the store's; `conflict` when the event is at or below the head
  /// without a record, or another writer moved the head meanwhile.
  std::expected<bool, Error> write(const StoredEvent& event);
  /// Audits `events` (consecutive store events in position order) in one transaction: reads
  /// `audit_head()` once, builds the records of the events above it in memory as a chain (each
  /// record's `prev_hash` the hash of the one before it) and writes them with
  /// `append_audit_batch`, which skips the events already audited and moves the checkpoint to the
  /// last event. Returns how many records were written. Errors as `write`'s; on an error nothing
  /// was written.
  std::expected<std::size_t, Error> write_batch(std::span<const StoredEvent> events);
  /// The record `write` would store for `event` after `head` (hashes included).
  AuditRecord record_for(const StoredEvent& event, const AuditChainHead& head) const;

 private:
  EventStore& store_;
  AuditMapping mapping_;
  std::string consumer_name_;
};

/// The largest batch the audit consumer grows to while it catches up, unless
/// `ConsumerOptions::max_batch_size` says otherwise.
inline constexpr std::size_t audit_max_batch_size = 1024;

/// The durable consumer that keeps the audit log: an `AuditWriter` behind a `DurableConsumer`,
/// which writes each batch it reads (`options.batch_size` events) in one transaction
/// (`AuditWriter::write_batch`), and falls back to one event at a time when that fails.
/// `options.name` defaults to `audit_consumer_name`. It never parks (`max_attempts` is forced to
/// 0): a record missing from the chain could not be added later in position order, so a failing
/// write is retried with backoff until it succeeds.
std::unique_ptr<DurableConsumer> make_audit_consumer(EventStore& store, AuditMapping mapping,
                                                     ConsumerOptions options = {});

/// What is wrong with the first failing record of an audit chain.
enum class AuditFault : std::uint8_t {
  /// The record's contents do not hash to its `hash`: it was edited after it was written.
  edited,
  /// An event the audit consumer has passed has no record: the record was deleted.
  deleted,
  /// The record names an event that is not in the store: it was inserted.
  inserted,
  /// The record's event is stored at another position: records were moved or swapped.
  moved,
  /// `prev_hash` is not the previous record's `hash`: a record before it was deleted, or this one
  /// was inserted or moved (reported when events are not cross-checked).
  broken_link,
  /// The record at the exported head's position has another hash: the log was rewritten.
  head_mismatch,
  /// There is no record at the exported head's position: records were deleted from the end, or
  /// the log was rewritten.
  head_missing,
};

/// Returns the lower-case name of `fault`, e.g. "broken_link".
std::string_view to_string(AuditFault fault) noexcept;

/// The first record that fails verification, and why.
struct AuditFailure {
  /// The position of the failing record (for `deleted`, of the event whose record is missing).
  std::int64_t position = 0;
  /// The failing record's event (for `deleted`, the event without a record); empty for
  /// `head_missing`.
  std::optional<EventId> event_id;
  AuditFault fault = AuditFault::edited;
  /// One sentence naming the record and what was found, for an operator.
  std::string message;
};

/// The result of verifying an audit chain.
struct AuditVerification {
  /// Records checked (up to and including the failing one).
  std::int64_t records = 0;
  /// The last record checked: what to export and compare against next time.
  AuditChainHead head;
  /// Empty when the chain verified.
  std::optional<AuditFailure> failure;

  /// True when every record verified.
  bool ok() const noexcept { return !failure.has_value(); }
};

/// How to verify an audit chain.
struct AuditVerifyOptions {
  /// Also check each record against the event stored at its position, and that every event the
  /// audit consumer has passed has a record; names deletions, insertions and moves exactly.
  bool check_events = true;
  /// The audit consumer whose checkpoint says which events must have a record.
  std::string consumer = std::string(audit_consumer_name);
  /// A head exported earlier (`audit_head`): the record at its position must still have its hash.
  std::optional<AuditChainHead> expected_head;
  /// Records (and events) read per page.
  std::size_t page_size = 1000;
};

/// Recomputes the whole chain in `store` page by page and names the first record that fails: its
/// hash (edited), its link to the previous record, its event (inserted, moved, deleted), and the
/// exported head if one is given. Errors: only the store's (a failed chain is a result).
std::expected<AuditVerification, Error> verify_audit_log(EventStore& store,
                                                         const AuditVerifyOptions& options = {});

/// "position:hash", e.g. "1042:9f86d0…", the form a head is exported in.
std::string to_string(const AuditChainHead& head);
/// Parses "position:hash". Errors: `invalid_argument` naming what is wrong.
std::expected<AuditChainHead, Error> parse_audit_head(std::string_view text);

/// The record as one JSON object: the canonical members plus `hash` (the JSON lines export).
boost::json::object audit_record_to_json(const AuditRecord& record);

/// Export formats of the audit log.
enum class AuditExportFormat : std::uint8_t {
  /// RFC 4180: a header line, CRLF line ends, fields quoted when they hold `,` `"` CR or LF.
  csv,
  /// One JSON object per line (`audit_record_to_json`), LF line ends.
  json_lines,
};

/// Writes every record matching `query` (its cursor and limit are where to start and the page
/// size), newest first, page by page, to `out`. Returns how many were written. Errors: the
/// store's, and `io` when `out` fails.
std::expected<std::int64_t, Error> export_audit_log(EventStore& store, AuditQuery query,
                                                    AuditExportFormat format, std::ostream& out);

}  // namespace herald
