#pragma once

// What both backends' `EventStore::append_audit_batch` share: checking the records before a
// transaction begins, and deciding inside it, from the head and the records already in the log,
// which records to write. Only the SQL differs between the backends.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

#include "herald/audit_record.hpp"
#include "herald/error.hpp"

namespace herald::detail {

/// Checks what needs no database: a consumer name, and positions of 1 or more in increasing
/// order. Errors name the record ("records[3].position").
inline std::expected<void, Error> check_audit_batch(std::span<const AuditRecord> records,
                                                    const std::string& consumer) {
  if (consumer.empty()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "consumer",
                                            "expected a consumer name, got an empty string"));
  }
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::int64_t position = records[i].position;
    const std::string field = "records[" + std::to_string(i) + "].position";
    if (position <= 0) {
      return std::unexpected(Error::for_field(
          ErrorCode::invalid_argument, field,
          "expected the event's store position (1 or more), got " + std::to_string(position)));
    }
    if (i > 0 && position <= records[i - 1].position) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                              "expected a position above the previous record's " +
                                                  std::to_string(records[i - 1].position) +
                                                  " (records in chain order), got " +
                                                  std::to_string(position)));
    }
  }
  return {};
}

/// True when `record` can follow `chain`: a position above it and `prev_hash` its hash.
inline bool extends_chain(const AuditRecord& record, const AuditChainHead& chain) {
  return record.position > chain.position && record.prev_hash == chain.hash;
}

/// The `conflict` for `records[index]`, whose event has no record in the log and which does not
/// extend `chain`: the head, or when `after_written` the last record this batch wrote.
inline Error audit_batch_conflict(const AuditRecord& record, std::size_t index,
                                  const AuditChainHead& chain, bool after_written) {
  const std::string before =
      after_written         ? "record " + std::to_string(chain.position) + " of this batch"
      : chain.position == 0 ? std::string("the start of the empty audit log")
                            : "the audit head at position " + std::to_string(chain.position);
  const std::string what = "audit record for event " + record.event_id.to_string() +
                           " at position " + std::to_string(record.position);
  if (record.position <= chain.position) {
    return Error::for_field(ErrorCode::conflict, "records[" + std::to_string(index) + "].position",
                            what + " does not come after " + before +
                                " and its event has no record: it cannot join the chain; nothing "
                                "was written");
  }
  return Error::for_field(ErrorCode::conflict, "records[" + std::to_string(index) + "].prev_hash",
                          what + " links to " + record.prev_hash.substr(0, 12) + "… but " + before +
                              " has hash " + chain.hash.substr(0, 12) +
                              "… (another writer moved the chain: rebuild the records from "
                              "audit_head()); nothing was written");
}

/// The indices of `records` to write after `head`: those whose event is not in the log yet
/// (`stored[i]` false), each of which must extend the chain as it stands when the ones before it
/// are written. Errors: `conflict` naming the first record that does not; nothing may be written
/// then.
inline std::expected<std::vector<std::size_t>, Error> plan_audit_batch(
    std::span<const AuditRecord> records, const std::vector<bool>& stored,
    const AuditChainHead& head) {
  std::vector<std::size_t> to_write;
  to_write.reserve(records.size());
  AuditChainHead chain = head;
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (stored[i]) continue;
    if (!extends_chain(records[i], chain)) {
      return std::unexpected(audit_batch_conflict(records[i], i, chain, !to_write.empty()));
    }
    to_write.push_back(i);
    chain = AuditChainHead{.position = records[i].position, .hash = records[i].hash};
  }
  return to_write;
}

}  // namespace herald::detail
