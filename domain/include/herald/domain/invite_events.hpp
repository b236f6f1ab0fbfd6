#pragma once

// The platform's invite events: invitations to join an organization, from creation to answer.

#include <boost/describe/class.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "herald/event.hpp"

namespace herald::domain {

/// A member invited someone to join an organization.
struct InviteCreatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "InviteCreatedEvent",
      .entity_type = "OrganizationInvite",
      .priority = herald::Priority::normal,
      .description = "An invitation to join an organization was created."};

  /// The code the invitee uses to accept.
  std::optional<std::string> invite_code;
  /// The user who sent the invitation.
  std::optional<std::int64_t> inviter_user_id;
  /// The address the invitation was sent to, if it went by email.
  std::optional<std::string> invited_email;
};
BOOST_DESCRIBE_STRUCT(InviteCreatedEvent, (herald::EntityEvent),
                      (invite_code, inviter_user_id, invited_email))

/// An invitation was accepted and its user joined the organization.
struct InviteAcceptedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "InviteAcceptedEvent",
      .entity_type = "OrganizationInvite",
      .priority = herald::Priority::normal,
      .description = "An invitation to join an organization was accepted."};

  /// The code of the accepted invitation.
  std::optional<std::string> invite_code;
  /// The user who accepted it.
  std::optional<std::int64_t> accepted_by_user_id;
};
BOOST_DESCRIBE_STRUCT(InviteAcceptedEvent, (herald::EntityEvent),
                      (invite_code, accepted_by_user_id))

/// An invitation was declined.
struct InviteRejectedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "InviteRejectedEvent",
      .entity_type = "OrganizationInvite",
      .priority = herald::Priority::normal,
      .description = "An invitation to join an organization was declined."};

  /// The code of the declined invitation.
  std::optional<std::string> invite_code;
  /// The user who declined it.
  std::optional<std::int64_t> rejected_by_user_id;
};
BOOST_DESCRIBE_STRUCT(InviteRejectedEvent, (herald::EntityEvent),
                      (invite_code, rejected_by_user_id))

/// An invitation ran out before anyone answered it.
struct InviteExpiredEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "InviteExpiredEvent",
      .entity_type = "OrganizationInvite",
      .priority = herald::Priority::low,
      .description = "An invitation to join an organization expired unanswered."};

  /// The code of the expired invitation.
  std::optional<std::string> invite_code;
};
BOOST_DESCRIBE_STRUCT(InviteExpiredEvent, (herald::EntityEvent), (invite_code))

}  // namespace herald::domain
