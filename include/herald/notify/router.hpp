#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_store.hpp"
#include "herald/notify/notification.hpp"
#include "herald/notify/notification_rules.hpp"

namespace herald::notify {

/// Everything routing one event decided, written in one transaction with the consumer's
/// checkpoint (`NotificationStore::apply_routing`).
struct RoutedEvent {
  std::int64_t position = 0;
  EventId event_id;
  std::vector<DirectoryChange> changes;
  std::vector<NewInboxItem> inbox;
  std::vector<NewDelivery> deliveries;
};

/// A directory that reads through to another (the store) and holds the changes of the events routed
/// so far in a batch, so that each event sees the ones before it before they are written. Not
/// thread-safe. Reads are cached for the overlay's life: build one per batch.
class DirectoryOverlay final : public Directory {
 public:
  explicit DirectoryOverlay(Directory& base) : base_(base) {}
  /// Applies `change` in memory.
  void apply(const DirectoryChange& change);

  std::expected<std::optional<UserProfile>, Error> user(std::int64_t user_id) override;
  std::expected<std::vector<std::int64_t>, Error> members(std::int64_t organization_id) override;
  std::expected<std::vector<std::int64_t>, Error> group(const std::string& group) override;
  std::expected<UserPreferences, Error> preferences(std::int64_t user_id) override;
  std::expected<std::vector<WebhookEndpoint>, Error> endpoints(
      std::int64_t organization_id) override;
  std::expected<std::optional<AnnouncementChannel>, Error> announcement_channel(
      std::int64_t organization_id) override;

 private:
  Directory& base_;
  std::map<std::int64_t, std::optional<UserProfile>> users_;
  /// User changes applied before the user was read from `base_`; replayed on the first read.
  std::map<std::int64_t, std::vector<DirectoryChange>> pending_users_;
  std::map<std::int64_t, std::set<std::int64_t>> members_;
  /// Membership changes applied before the organization's members were read from `base_`.
  std::map<std::int64_t, std::vector<DirectoryChange>> pending_members_;
  std::map<std::string, std::vector<std::int64_t>> groups_;
  std::map<std::int64_t, UserPreferences> preferences_;
  std::map<std::int64_t, std::vector<WebhookEndpoint>> endpoints_;
  std::map<std::int64_t, std::optional<AnnouncementChannel>> announcement_channels_;
};

/// Whether `user`'s `kind` notification on `channel` for `organization_id` is on, by the rules of
/// docs/notifications.md: a muted channel is off (except in-app for a critical kind); a rule for
/// the organization beats a rule for all; with no rule, the kind's default; a critical kind is
/// always on in-app.
bool channel_enabled(const KindInfo& kind, const UserPreferences& preferences, Channel channel,
                     std::optional<std::int64_t> organization_id) noexcept;

/// Routes one event. First it applies the event's directory changes (`rules.directory_changes`)
/// to `directory` in memory, so that the rules and the recipients see them (and so do later events
/// routed through the same overlay), and returns them for the caller to write; applying a change
/// twice is harmless. Then each notice reaches its audience on every enabled channel, at most one
/// message per user and channel for the event however many notices or subscriptions match (the
/// first notice wins); deleted users get nothing; a user unknown to the directory gets only
/// in-app items, and only when named in `Audience::users`; a user with no Discord id gets no
/// Discord message, one with no email address no email. Every event of an organization also goes
/// to that organization's matching active webhook endpoints. Errors: the directory's or the
/// rules', and `internal` for a notice whose kind is not among `rules.kinds()`.
std::expected<RoutedEvent, Error> route_event(const StoredEvent& event,
                                              const NotificationRules& rules,
                                              DirectoryOverlay& directory);

}  // namespace herald::notify
