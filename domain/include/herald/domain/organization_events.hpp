#pragma once

// The platform's organization events: organizations and their members.

#include <boost/describe/class.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "herald/event.hpp"

namespace herald::domain {

/// An organization was created; `entity_id` is the new organization's id.
struct OrganizationCreatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "OrganizationCreatedEvent",
                                              .entity_type = "Organization",
                                              .priority = herald::Priority::normal,
                                              .description = "An organization was created."};

  /// The organization's display name.
  std::optional<std::string> organization_name;
};
BOOST_DESCRIBE_STRUCT(OrganizationCreatedEvent, (herald::EntityEvent), (organization_name))

/// An organization's settings changed; `changed_fields` names what changed.
struct OrganizationUpdatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "OrganizationUpdatedEvent",
                                              .entity_type = "Organization",
                                              .priority = herald::Priority::normal,
                                              .description = "An organization's settings changed."};

  /// The names of the organization's fields that changed, if the producer listed them.
  std::optional<std::vector<std::string>> changed_fields;
};
BOOST_DESCRIBE_STRUCT(OrganizationUpdatedEvent, (herald::EntityEvent), (changed_fields))

/// An organization was deleted.
struct OrganizationDeletedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "OrganizationDeletedEvent",
                                              .entity_type = "Organization",
                                              .priority = herald::Priority::normal,
                                              .description = "An organization was deleted."};

  /// Why the organization was deleted, as the actor gave it.
  std::optional<std::string> reason;
};
BOOST_DESCRIBE_STRUCT(OrganizationDeletedEvent, (herald::EntityEvent), (reason))

/// A user joined an organization; `entity_id` is the membership's id.
struct OrganizationMemberAddedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "OrganizationMemberAddedEvent",
      .entity_type = "OrganizationMember",
      .priority = herald::Priority::normal,
      .description = "A user was added to an organization."};

  /// The user who became a member.
  std::optional<std::int64_t> member_user_id;
  /// The user who added them; the audit trail's actor for this event.
  std::optional<std::int64_t> added_by_user_id;
};
BOOST_DESCRIBE_STRUCT(OrganizationMemberAddedEvent, (herald::EntityEvent),
                      (member_user_id, added_by_user_id))

/// A user left or was removed from an organization.
struct OrganizationMemberRemovedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "OrganizationMemberRemovedEvent",
      .entity_type = "OrganizationMember",
      .priority = herald::Priority::normal,
      .description = "A user was removed from an organization."};

  /// The user who is no longer a member.
  std::optional<std::int64_t> member_user_id;
  /// The user who removed them; the audit trail's actor for this event.
  std::optional<std::int64_t> removed_by_user_id;
  /// Why the member was removed, as the actor gave it.
  std::optional<std::string> reason;
};
BOOST_DESCRIBE_STRUCT(OrganizationMemberRemovedEvent, (herald::EntityEvent),
                      (member_user_id, removed_by_user_id, reason))

/// A member was granted or lost one permission within an organization.
struct OrganizationMemberPermissionChangedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "OrganizationMemberPermissionChangedEvent",
      .entity_type = "OrganizationMember",
      .priority = herald::Priority::normal,
      .description = "An organization member was granted or lost a permission."};

  /// The member whose permission changed.
  std::optional<std::int64_t> member_user_id;
  /// The permission, e.g. "TOURNAMENT_MANAGER".
  std::optional<std::string> permission_name;
  /// True when the permission was granted, false when it was revoked.
  bool granted = false;
};
BOOST_DESCRIBE_STRUCT(OrganizationMemberPermissionChangedEvent, (herald::EntityEvent),
                      (member_user_id, permission_name, granted))

}  // namespace herald::domain
