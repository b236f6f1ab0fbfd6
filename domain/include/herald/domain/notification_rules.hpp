#pragma once

// The platform's notification rules (ORIGINAL.md, "Notifications"; docs/notifications.md): its
// kinds, how its events change the directory, and who is told what.
//
// Kinds and recipients:
//   user_permission_changed (critical)        the user (UserPermissionChangedEvent's entity)
//   organization_member_added                 the new member
//   organization_member_removed (critical)    the removed member
//   organization_member_permission_changed    the member
//   tournament_created, tournament_started,   the organization's members who subscribed, and the
//   tournament_ended, tournament_updated      organization's Discord announcement channel
//   match_scheduled, match_completed          the match's participants (and the winner)
//   race_submitted, race_approved,            the racer
//   race_rejected
//   invite_received                           the invited email address
//   invite_accepted, invite_rejected,         the inviter
//   invite_expired
//
// Defaults: every kind that concerns the user is on in-app only; Discord and email are opt-in
// (a preference rule turns them on). The four tournament kinds have no default channel: a member
// subscribes to them. invite_received goes only to an address, by email. A notice about an action
// the user took on themselves (a racer's own submission) is sent like any other.
//
// Directory: UserCreated and UserUpdated upsert the user (Discord id and name from the event, or
// from its `entity_data` snapshot), UserDeleted deletes them, member added and removed change the
// organization's members, MatchScheduled sets the group "match:<id>" to its participants and
// InviteCreated sets "invite:<code>" to the inviter.

#include "herald/notify/notification_rules.hpp"

namespace herald::domain {

/// The tournament platform's `NotificationRules`. Thread-safe: stateless, const members only.
class PlatformNotificationRules final : public herald::notify::NotificationRules {
 public:
  /// The 17 kinds above, in that order.
  std::span<const herald::notify::KindInfo> kinds() const override;
  /// The directory changes of the user, member, match and invite events; none for the others.
  std::vector<herald::notify::DirectoryChange> directory_changes(
      const herald::StoredEvent& event) const override;
  /// The notices of `event`, rendered in every form; empty for events nobody is told of and for
  /// events that lack the field naming their recipient (an entity id that is not a whole number,
  /// a missing racer). Errors: the directory's.
  std::expected<std::vector<herald::notify::Notice>, herald::Error> notices(
      const herald::StoredEvent& event, herald::notify::Directory& directory) const override;
};

/// The platform's rules, built on first use. Thread-safe.
const PlatformNotificationRules& platform_notification_rules();

}  // namespace herald::domain
