#include "herald/domain/audit_rules.hpp"

#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "herald/detail/field_codec.hpp"
#include "herald/domain/events.hpp"
#include "herald/event_type.hpp"

namespace herald::domain {

namespace {

/// The own fields of an event of type `E`, encoded one by one from its description: the same
/// members and values as in its wire form (`EventType::encode`), without encoding the common
/// fields (the event id, the timestamp, metadata) only to drop them again.
template <class E>
boost::json::object own_fields_of(const herald::BaseEvent& base) {
  const E& event = static_cast<const E&>(base);
  using Fields = herald::detail::described_fields<E>;
  boost::json::object details;
  details.reserve(boost::mp11::mp_size<Fields>::value);
  boost::mp11::mp_for_each<Fields>([&](auto member) {
    using D = decltype(member);
    if constexpr (!herald::detail::is_common_field<D>()) {
      using T = std::remove_cvref_t<decltype(event.*D::pointer)>;
      herald::detail::FieldCodec<T>::encode(event.*D::pointer,
                                            details[herald::detail::wire_name(D::name)]);
    }
  });
  return details;
}

using OwnFields = boost::json::object (*)(const herald::BaseEvent&);

/// `own_fields_of<E>` of every platform event type, by `EventType::index()`.
const std::vector<OwnFields>& own_fields_by_type() {
  static const std::vector<OwnFields> table = [] {
    std::vector<OwnFields> built;
    boost::mp11::mp_for_each<boost::mp11::mp_transform<boost::mp11::mp_identity, PlatformEvents>>(
        [&](auto identity) {
          using E = typename decltype(identity)::type;
          const std::size_t index = herald::type_of<E>().index();
          if (built.size() <= index) built.resize(index + 1, nullptr);
          built[index] = &own_fields_of<E>;
        });
    return built;
  }();
  return table;
}

}  // namespace

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
  const std::vector<OwnFields>& fast = own_fields_by_type();
  if (const std::size_t index = event.type().index(); index < fast.size() && fast[index]) {
    return fast[index](event.base());
  }
  // A type outside the platform's list: its own fields, taken from its whole wire form.
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
