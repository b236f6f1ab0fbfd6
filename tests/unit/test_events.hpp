#pragma once

// Event types for the core tests: the library's tests do not depend on the platform's catalog.

#include <boost/describe/class.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "herald/event.hpp"

namespace herald::test {

struct ThingCreatedEvent : EntityEvent {
  static constexpr EventTraits traits{
      .name = "ThingCreatedEvent", .entity_type = "Thing", .description = "A thing was created."};
  std::optional<std::int64_t> size;
  std::optional<std::string> label;
};
BOOST_DESCRIBE_STRUCT(ThingCreatedEvent, (EntityEvent), (size, label))

struct ThingRenamedEvent : EntityEvent {
  static constexpr EventTraits traits{
      .name = "ThingRenamedEvent", .entity_type = "Thing", .priority = Priority::high};
  std::vector<std::string> changed_fields;
  bool urgent = false;
  std::optional<std::vector<std::int64_t>> watchers;
  std::optional<std::string> namespace_;
};
BOOST_DESCRIBE_STRUCT(ThingRenamedEvent, (EntityEvent),
                      (changed_fields, urgent, watchers, namespace_))

/// Not an entity event: only the base fields plus its own.
struct TickEvent : BaseEvent {
  static constexpr EventTraits traits{.name = "TickEvent", .priority = Priority::low};
  std::int64_t sequence = 0;
};
BOOST_DESCRIBE_STRUCT(TickEvent, (BaseEvent), (sequence))

}  // namespace herald::test
