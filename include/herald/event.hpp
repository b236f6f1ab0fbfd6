#pragma once

#include <boost/describe/class.hpp>
#include <boost/json/object.hpp>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "herald/event_id.hpp"
#include "herald/priority.hpp"
#include "herald/timestamp.hpp"

namespace herald {

/// The actor id that stands for the system itself (a scheduled job, not a person).
inline constexpr std::int64_t system_actor = -1;

/// The fields every event carries. A plain aggregate; `event_id` and `timestamp` are filled in
/// when an event is built. Events are immutable once published: handlers get `const E&`, and
/// queued or stored events are `std::shared_ptr<const E>`.
struct BaseEvent {
  /// Unique, time-ordered id (UUIDv7); the store deduplicates on it.
  EventId event_id = EventId::generate();
  /// When the fact happened (UTC, microseconds).
  Timestamp timestamp = herald::now();
  /// The actor: who caused the event. `system_actor` (-1) is the system; empty means unknown.
  std::optional<std::int64_t> user_id;
  /// The organization the event belongs to, if any.
  std::optional<std::int64_t> organization_id;
  /// The event's own importance (not the order of handlers, which is per handler).
  Priority priority = Priority::normal;
  /// Free-form context (request id, source service, …).
  boost::json::object metadata;
};

/// The id of the entity an event is about: an integer key or a string (a race-room slug).
using EntityId = std::variant<std::int64_t, std::string>;

/// Returns the id as text: "42" or "bold-rush-1234".
std::string to_string(const EntityId& id);

/// The base of every catalog event: an event about one entity. The entity's type is fixed by the
/// concrete class (`E::traits.entity_type`), so it is not a data member.
struct EntityEvent : BaseEvent {
  /// The entity's id; empty when not known.
  std::optional<EntityId> entity_id;
  /// A snapshot of the entity's state, if the producer attached one.
  std::optional<boost::json::object> entity_data;
};

BOOST_DESCRIBE_STRUCT(BaseEvent, (),
                      (event_id, timestamp, user_id, organization_id, priority, metadata))
BOOST_DESCRIBE_STRUCT(EntityEvent, (BaseEvent), (entity_id, entity_data))

/// What a concrete event type declares about itself in `static constexpr EventTraits traits`.
struct EventTraits {
  /// The wire name: the class name, e.g. "UserCreatedEvent".
  std::string_view name;
  /// The entity type fixed by the class, e.g. "User"; empty for events that are not EntityEvents.
  std::string_view entity_type;
  /// The priority events of this type get unless the producer sets one.
  Priority priority = Priority::normal;
  /// One sentence for the catalog listing and the JSON Schema description.
  std::string_view description;
};

/// A concrete event type: an aggregate derived from `BaseEvent` that declares its traits and is
/// described with BOOST_DESCRIBE_STRUCT (see docs/events.md).
template <class E>
concept Event = std::derived_from<E, BaseEvent> && requires {
  { E::traits } -> std::convertible_to<const EventTraits&>;
};

/// The common fields for building an event with `make`, in the order producers usually name them.
struct EventHeader {
  std::optional<EntityId> entity_id;
  std::optional<std::int64_t> user_id;
  std::optional<std::int64_t> organization_id;
  std::optional<boost::json::object> entity_data;
  boost::json::object metadata;
  /// Defaults to the type's `traits.priority`.
  std::optional<Priority> priority;
  /// Defaults to a new UUIDv7; set it to make a retried producer idempotent.
  std::optional<EventId> event_id;
  /// Defaults to now.
  std::optional<Timestamp> timestamp;
};

/// Builds an event from its common fields and its own fields, both with designated initializers:
///
///     auto event = herald::make<UserCreatedEvent>(
///         {.entity_id = user.id, .user_id = actor, .organization_id = org},
///         {.discord_id = user.discord_id, .discord_username = user.discord_username});
template <Event E>
E make(EventHeader header, E own = {}) {
  BaseEvent& base = own;
  if (header.event_id) base.event_id = *header.event_id;
  if (header.timestamp) base.timestamp = *header.timestamp;
  base.user_id = header.user_id;
  base.organization_id = header.organization_id;
  base.priority = header.priority.value_or(E::traits.priority);
  base.metadata = std::move(header.metadata);
  if constexpr (std::derived_from<E, EntityEvent>) {
    EntityEvent& entity = own;
    entity.entity_id = std::move(header.entity_id);
    entity.entity_data = std::move(header.entity_data);
  }
  return own;
}

}  // namespace herald
