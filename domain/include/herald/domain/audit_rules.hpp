#pragma once

// The platform's audit rules: what the audit log records for each of its events
// (ORIGINAL.md, "Audit"; docs/audit.md).

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "herald/audit_log.hpp"
#include "herald/audit_record.hpp"
#include "herald/event_ref.hpp"
#include "herald/timestamp.hpp"

namespace herald::domain {

/// The audit action of an event type: its name in snake_case without the "Event" suffix,
/// "OrganizationMemberAddedEvent" -> "organization_member_added".
std::string audit_action(std::string_view event_type);

/// Who acted: the own field that names the actor where the event has one (`added_by_user_id` for
/// a member added, `removed_by_user_id` for a member removed, `racer_user_id` for a race
/// submitted, `reviewer_user_id` for a race approved or rejected), else `user_id`. When that
/// own field is null the event's `user_id` is used. Empty when neither is known.
std::optional<std::int64_t> audit_actor(herald::EventRef event);

/// The event's own fields (not the common ones) as they appear on the wire, nulls included.
boost::json::object audit_details(herald::EventRef event);

/// The audit record of `event` under these rules; `prev_hash` and `hash` are left empty for the
/// audit consumer to fill.
herald::AuditRecord audit_record(herald::EventRef event, std::int64_t position,
                                 herald::Timestamp recorded_at);

/// `audit_record` as the mapping `herald::make_audit_consumer` takes. Thread-safe; stateless.
herald::AuditMapping audit_mapping();

}  // namespace herald::domain
