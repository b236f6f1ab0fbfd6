#include "herald/domain/audit_rules.hpp"

#include "herald/domain/organization_events.hpp"
#include "herald/domain/race_events.hpp"
#include "herald/event_type.hpp"

namespace herald::domain {

std::string audit_action(std::string_view event_type) {
  if (event_type.ends_with("Event")) event_type.remove_suffix(5);
  std::string action;
  action.reserve(event_type.size() + 4);
  for (char c : event_type) {
    if (c >= 'A' && c <= 'Z') {
      if (!action.empty()) action.push_back('_');
      action.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      action.push_back(c);
    }
  }
  return action;
}

std::optional<std::int64_t> audit_actor(herald::EventRef event) {
  // The events that name their actor in an own field (ORIGINAL.md, "Audit"). A race review
  // names the racer too, but the reviewer is who acted.
  std::optional<std::int64_t> named;
  if (const auto* added = event.get<OrganizationMemberAddedEvent>()) {
    named = added->added_by_user_id;
  } else if (const auto* removed = event.get<OrganizationMemberRemovedEvent>()) {
    named = removed->removed_by_user_id;
  } else if (const auto* submitted = event.get<RaceSubmittedEvent>()) {
    named = submitted->racer_user_id;
  } else if (const auto* approved = event.get<RaceApprovedEvent>()) {
    named = approved->reviewer_user_id;
  } else if (const auto* rejected = event.get<RaceRejectedEvent>()) {
    named = rejected->reviewer_user_id;
  }
  return named ? named : event->user_id;
}

boost::json::object audit_details(herald::EventRef event) {
  boost::json::object wire = event.to_json();
  boost::json::object details;
  for (const herald::FieldInfo& field : event.type().fields()) {
    if (field.common) continue;
    if (auto* value = wire.if_contains(field.name)) {
      details[field.name] = std::move(*value);
    } else {
      details[field.name] = nullptr;
    }
  }
  return details;
}

herald::AuditRecord audit_record(herald::EventRef event, std::int64_t position,
                                 herald::Timestamp recorded_at) {
  herald::AuditRecord record;
  record.position = position;
  record.event_id = event->event_id;
  record.occurred_at = event->timestamp;
  record.recorded_at = recorded_at;
  record.actor = audit_actor(event);
  record.organization_id = event->organization_id;
  record.action = audit_action(event.event_type());
  record.entity_type = std::string(event.type().entity_type());
  if (const herald::EntityEvent* entity = event.entity(); entity != nullptr && entity->entity_id) {
    record.entity_id = herald::to_string(*entity->entity_id);
  }
  record.details = audit_details(event);
  return record;
}

herald::AuditMapping audit_mapping() { return &audit_record; }

}  // namespace herald::domain
