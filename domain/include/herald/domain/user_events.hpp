#pragma once

// The platform's user events: accounts created, changed, deleted, and their permissions.

#include <boost/describe/class.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "herald/event.hpp"

namespace herald::domain {

/// A user account was created; `entity_id` is the new user's id.
struct UserCreatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "UserCreatedEvent",
                                              .entity_type = "User",
                                              .priority = herald::Priority::normal,
                                              .description = "A user account was created."};

  /// The user's Discord account id (a snowflake).
  std::optional<std::int64_t> discord_id;
  /// The user's Discord username when the account was created.
  std::optional<std::string> discord_username;
};
BOOST_DESCRIBE_STRUCT(UserCreatedEvent, (herald::EntityEvent), (discord_id, discord_username))

/// A user account was changed; `changed_fields` names what changed.
struct UserUpdatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "UserUpdatedEvent",
                                              .entity_type = "User",
                                              .priority = herald::Priority::normal,
                                              .description = "A user account was changed."};

  /// The names of the user's fields that changed, e.g. "discord_username".
  std::vector<std::string> changed_fields;
};
BOOST_DESCRIBE_STRUCT(UserUpdatedEvent, (herald::EntityEvent), (changed_fields))

/// A user account was deleted.
struct UserDeletedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "UserDeletedEvent",
                                              .entity_type = "User",
                                              .priority = herald::Priority::normal,
                                              .description = "A user account was deleted."};

  /// Why the account was deleted, as the actor gave it.
  std::optional<std::string> reason;
};
BOOST_DESCRIBE_STRUCT(UserDeletedEvent, (herald::EntityEvent), (reason))

/// A user's platform-wide permission level changed.
struct UserPermissionChangedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "UserPermissionChangedEvent",
      .entity_type = "User",
      .priority = herald::Priority::normal,
      .description = "A user's platform permission level changed."};

  /// The permission level before the change, e.g. "USER".
  std::optional<std::string> old_permission;
  /// The permission level after the change, e.g. "ADMIN".
  std::optional<std::string> new_permission;
};
BOOST_DESCRIBE_STRUCT(UserPermissionChangedEvent, (herald::EntityEvent),
                      (old_permission, new_permission))

}  // namespace herald::domain
