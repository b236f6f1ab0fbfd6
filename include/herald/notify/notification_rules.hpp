#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_store.hpp"
#include "herald/notify/notification.hpp"

namespace herald::notify {

/// What the router may look up while it decides who is told: the directory kept from the events,
/// each user's preferences and each organization's webhook endpoints and announcement channel.
/// Not thread-safe: one router uses it at a time. Errors are the store's.
class Directory {
 public:
  virtual ~Directory() = default;
  /// The user, or nullopt when no event created them.
  virtual std::expected<std::optional<UserProfile>, Error> user(std::int64_t user_id) = 0;
  /// The organization's members, ascending.
  virtual std::expected<std::vector<std::int64_t>, Error> members(std::int64_t organization_id) = 0;
  /// The members of the group named `group` (see `DirectoryChange::set_group`); empty when unknown.
  virtual std::expected<std::vector<std::int64_t>, Error> group(const std::string& group) = 0;
  /// The user's preferences (no rules and no mutes when they set nothing).
  virtual std::expected<UserPreferences, Error> preferences(std::int64_t user_id) = 0;
  /// The organization's active webhook endpoints.
  virtual std::expected<std::vector<WebhookEndpoint>, Error> endpoints(
      std::int64_t organization_id) = 0;
  /// The organization's Discord announcement channel, or nullopt.
  virtual std::expected<std::optional<AnnouncementChannel>, Error> announcement_channel(
      std::int64_t organization_id) = 0;
};

/// The platform's rules: which kinds exist, how events change the directory, and what each event
/// means for whom. Implemented by a domain (domain/: the tournament platform). Thread-safe: const
/// members only, called from any thread.
class NotificationRules {
 public:
  virtual ~NotificationRules() = default;
  /// Every kind, with its defaults and whether it is critical.
  virtual std::span<const KindInfo> kinds() const = 0;
  /// How `event` changes the directory (user created, member removed, …); applied before
  /// `notices` is asked about the same event.
  virtual std::vector<DirectoryChange> directory_changes(const StoredEvent& event) const = 0;
  /// Who is told what about `event`; empty for events nobody is told of. `directory` already
  /// holds `event`'s own changes; the rules use it for names only (rendering from the event and
  /// the directory, nothing else).
  virtual std::expected<std::vector<Notice>, Error> notices(const StoredEvent& event,
                                                            Directory& directory) const = 0;
};

}  // namespace herald::notify
