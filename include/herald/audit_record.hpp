#pragma once

#include <array>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "herald/event_id.hpp"
#include "herald/timestamp.hpp"

namespace herald {

/// A SHA-256 digest as 64 lower-case hexadecimal characters.
using HashHex = std::string;

/// The hash that stands before the first record of a chain: 64 zeros.
inline const HashHex genesis_hash(64, '0');

/// One line of the audit log: who did what to which entity, when. Immutable once written.
struct AuditRecord {
  /// The event's store position; also the record's place in the chain.
  std::int64_t position = 0;
  EventId event_id;
  /// When the fact happened (the event's timestamp).
  Timestamp occurred_at{};
  /// When the store recorded the event.
  Timestamp recorded_at{};
  /// The acting user (-1 the system); empty when unknown.
  std::optional<std::int64_t> actor;
  std::optional<std::int64_t> organization_id;
  /// The event name in snake_case without "Event": "user_created".
  std::string action;
  std::string entity_type;
  /// The entity id as text; empty when the event named none.
  std::optional<std::string> entity_id;
  /// The event's own fields.
  boost::json::object details;
  /// The previous record's hash (`genesis_hash` for the first).
  HashHex prev_hash;
  /// SHA-256 over the canonical encoding of this record and `prev_hash` (docs/audit.md).
  HashHex hash;
};

/// The last record of a chain: what a copy kept elsewhere compares against.
struct AuditChainHead {
  std::int64_t position = 0;
  HashHex hash = genesis_hash;
};

}  // namespace herald
