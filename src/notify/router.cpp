#include "herald/notify/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string_view>
#include <utility>

#include "herald/json.hpp"

namespace herald::notify {
namespace {

// The channels a user's own notifications can take; webhooks and announcements belong to
// organizations and follow no user's preferences.
constexpr Channel user_channels[] = {Channel::in_app, Channel::discord, Channel::email};

bool contains(const std::vector<Channel>& channels, Channel channel) {
  return std::ranges::find(channels, channel) != channels.end();
}

void apply_user_change(std::optional<UserProfile>& profile, const DirectoryChange& change) {
  if (!profile) profile = UserProfile{.user_id = change.user_id};
  if (change.op == DirectoryChange::Op::delete_user) {
    profile->deleted = true;
    return;
  }
  if (change.discord_id) profile->discord_id = change.discord_id;
  if (change.discord_username) profile->discord_username = change.discord_username;
  profile->deleted = false;
}

void apply_member_change(std::set<std::int64_t>& members, const DirectoryChange& change) {
  if (change.op == DirectoryChange::Op::add_member) {
    members.insert(change.user_id);
  } else {
    members.erase(change.user_id);
  }
}

// The same test the store applies to addresses set through the API: an address taken from an
// event (an invited email) must not smuggle header lines or several recipients into a message.
bool address_like(std::string_view address) {
  if (address.empty() || address.size() > 254) return false;
  const auto at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return false;
  if (address.find('@', at + 1) != std::string_view::npos) return false;
  return std::ranges::none_of(address, [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7f || c == ',' || c == ';' || c == '<' || c == '>';
  });
}

// Collects what one event decides and keeps the promise of at most one message per recipient
// and channel: the store's deliveries are unique on (event_id, recipient, channel).
class Routing {
 public:
  Routing(const StoredEvent& event, RoutedEvent& routed) : event_(event), routed_(routed) {}

  void inbox(std::int64_t user_id, const Notice& notice) {
    if (!inboxed_.insert(user_id).second) return;
    routed_.inbox.push_back(NewInboxItem{.user_id = user_id,
                                         .kind = notice.kind,
                                         .event_id = event_.event->event_id,
                                         .position = event_.position,
                                         .organization_id = event_.event->organization_id,
                                         .title = notice.message.title,
                                         .body = notice.message.text,
                                         .link = notice.message.link,
                                         .created_at = event_.event->timestamp});
  }

  void deliver(Channel channel, std::string recipient, std::optional<std::int64_t> user_id,
               std::optional<std::int64_t> organization_id, const std::string& kind,
               const boost::json::object& payload) {
    if (!delivered_.emplace(recipient, channel).second) return;
    routed_.deliveries.push_back(NewDelivery{.event_id = event_.event->event_id,
                                             .position = event_.position,
                                             .channel = channel,
                                             .recipient = std::move(recipient),
                                             .user_id = user_id,
                                             .organization_id = organization_id,
                                             .kind = kind,
                                             .payload = boost::json::serialize(payload)});
  }

 private:
  const StoredEvent& event_;
  RoutedEvent& routed_;
  std::set<std::int64_t> inboxed_;
  std::set<std::pair<std::string, Channel>> delivered_;
};

std::string user_recipient(std::int64_t user_id) { return "user:" + std::to_string(user_id); }

// Sends `notice` to one user on each channel their preferences turn on. `named` tells whether the
// audience names the user (an unknown user still has an inbox) or they came as a subscriber.
std::expected<void, Error> route_to_user(std::int64_t user_id, bool named, const Notice& notice,
                                         const KindInfo& kind,
                                         std::optional<std::int64_t> organization_id,
                                         DirectoryOverlay& directory, Routing& routing) {
  auto user = directory.user(user_id);
  if (!user) return std::unexpected(std::move(user.error()));
  const std::optional<UserProfile>& profile = *user;
  if (profile && profile->deleted) return {};
  if (!profile && !named) return {};
  auto preferences = directory.preferences(user_id);
  if (!preferences) return std::unexpected(std::move(preferences.error()));
  const Message& message = notice.message;
  for (const Channel channel : user_channels) {
    if (!channel_enabled(kind, *preferences, channel, organization_id)) continue;
    if (channel == Channel::in_app) {
      routing.inbox(user_id, notice);
    } else if (!profile) {
      continue;
    } else if (channel == Channel::discord && profile->discord_id) {
      routing.deliver(channel, user_recipient(user_id), user_id, organization_id, notice.kind,
                      {{"discord_id", std::to_string(*profile->discord_id)},
                       {"title", message.title},
                       {"markdown", message.markdown},
                       {"link", message.link}});
    } else if (channel == Channel::email && profile->email) {
      boost::json::object payload{{"to", *profile->email}};
      if (profile->discord_username) payload["to_name"] = *profile->discord_username;
      payload["title"] = message.title;
      payload["text"] = message.text;
      payload["html"] = message.html;
      payload["link"] = message.link;
      routing.deliver(channel, user_recipient(user_id), user_id, organization_id, notice.kind,
                      payload);
    }
  }
  return {};
}

// Whether the member turned `kind` on for some channel of their own.
bool subscribed(const KindInfo& kind, const UserPreferences& preferences,
                std::optional<std::int64_t> organization_id) {
  return std::ranges::any_of(user_channels, [&](Channel channel) {
    return channel_enabled(kind, preferences, channel, organization_id);
  });
}

std::expected<void, Error> route_notice(const Notice& notice, const KindInfo& kind,
                                        std::optional<std::int64_t> event_organization,
                                        DirectoryOverlay& directory, Routing& routing) {
  const Audience& audience = notice.audience;
  // Preferences are scoped to the organization whose members subscribed, else the event's.
  const std::optional<std::int64_t> scope =
      audience.subscribers_of ? audience.subscribers_of : event_organization;

  std::vector<std::pair<std::int64_t, bool>> recipients;
  std::set<std::int64_t> seen;
  for (const std::int64_t user_id : audience.users) {
    if (seen.insert(user_id).second) recipients.emplace_back(user_id, true);
  }
  if (audience.subscribers_of) {
    auto members = directory.members(*audience.subscribers_of);
    if (!members) return std::unexpected(std::move(members.error()));
    for (const std::int64_t member : *members) {
      if (seen.contains(member)) continue;
      auto preferences = directory.preferences(member);
      if (!preferences) return std::unexpected(std::move(preferences.error()));
      if (!subscribed(kind, *preferences, scope)) continue;
      seen.insert(member);
      recipients.emplace_back(member, false);
    }
  }
  for (const auto& [user_id, named] : recipients) {
    auto routed = route_to_user(user_id, named, notice, kind, scope, directory, routing);
    if (!routed) return routed;
  }

  const Message& message = notice.message;
  if (audience.email) {
    if (address_like(*audience.email)) {
      routing.deliver(Channel::email, "email:" + *audience.email, std::nullopt, event_organization,
                      notice.kind,
                      {{"to", *audience.email},
                       {"title", message.title},
                       {"text", message.text},
                       {"html", message.html},
                       {"link", message.link}});
    } else {
      // The address itself stays out of the log: it may carry line breaks.
      spdlog::warn(
          "notify: a '{}' notice names an address that is not an email address ({} bytes); no "
          "email is sent to it",
          notice.kind, audience.email->size());
    }
  }
  if (audience.announce_to) {
    auto channel = directory.announcement_channel(*audience.announce_to);
    if (!channel) return std::unexpected(std::move(channel.error()));
    if (*channel) {
      routing.deliver(Channel::discord_channel, "org:" + std::to_string(*audience.announce_to),
                      std::nullopt, audience.announce_to, notice.kind,
                      {{"webhook_url", (*channel)->webhook_url},
                       {"title", message.title},
                       {"markdown", message.markdown},
                       {"link", message.link}});
    }
  }
  return {};
}

}  // namespace

void DirectoryOverlay::apply(const DirectoryChange& change) {
  switch (change.op) {
    case DirectoryChange::Op::upsert_user:
    case DirectoryChange::Op::delete_user:
      if (auto it = users_.find(change.user_id); it != users_.end()) {
        apply_user_change(it->second, change);
      } else {
        pending_users_[change.user_id].push_back(change);
      }
      break;
    case DirectoryChange::Op::add_member:
    case DirectoryChange::Op::remove_member:
      if (!change.organization_id) break;
      if (auto it = members_.find(*change.organization_id); it != members_.end()) {
        apply_member_change(it->second, change);
      } else {
        pending_members_[*change.organization_id].push_back(change);
      }
      break;
    case DirectoryChange::Op::set_group: {
      std::vector<std::int64_t> members = change.members;
      std::ranges::sort(members);
      const auto duplicates = std::ranges::unique(members);
      members.erase(duplicates.begin(), duplicates.end());
      groups_[change.group] = std::move(members);
      break;
    }
  }
}

std::expected<std::optional<UserProfile>, Error> DirectoryOverlay::user(std::int64_t user_id) {
  if (auto it = users_.find(user_id); it != users_.end()) return it->second;
  auto stored = base_.user(user_id);
  if (!stored) return std::unexpected(std::move(stored.error()));
  std::optional<UserProfile> profile = std::move(*stored);
  if (auto pending = pending_users_.find(user_id); pending != pending_users_.end()) {
    for (const DirectoryChange& change : pending->second) apply_user_change(profile, change);
    pending_users_.erase(pending);
  }
  users_.emplace(user_id, profile);
  return profile;
}

std::expected<std::vector<std::int64_t>, Error> DirectoryOverlay::members(
    std::int64_t organization_id) {
  auto it = members_.find(organization_id);
  if (it == members_.end()) {
    auto stored = base_.members(organization_id);
    if (!stored) return std::unexpected(std::move(stored.error()));
    std::set<std::int64_t> members(stored->begin(), stored->end());
    if (auto pending = pending_members_.find(organization_id); pending != pending_members_.end()) {
      for (const DirectoryChange& change : pending->second) apply_member_change(members, change);
      pending_members_.erase(pending);
    }
    it = members_.emplace(organization_id, std::move(members)).first;
  }
  return std::vector<std::int64_t>(it->second.begin(), it->second.end());
}

std::expected<std::vector<std::int64_t>, Error> DirectoryOverlay::group(const std::string& group) {
  if (auto it = groups_.find(group); it != groups_.end()) return it->second;
  auto stored = base_.group(group);
  if (!stored) return std::unexpected(std::move(stored.error()));
  return groups_.emplace(group, std::move(*stored)).first->second;
}

std::expected<UserPreferences, Error> DirectoryOverlay::preferences(std::int64_t user_id) {
  if (auto it = preferences_.find(user_id); it != preferences_.end()) return it->second;
  auto stored = base_.preferences(user_id);
  if (!stored) return std::unexpected(std::move(stored.error()));
  return preferences_.emplace(user_id, std::move(*stored)).first->second;
}

std::expected<std::vector<WebhookEndpoint>, Error> DirectoryOverlay::endpoints(
    std::int64_t organization_id) {
  if (auto it = endpoints_.find(organization_id); it != endpoints_.end()) return it->second;
  auto stored = base_.endpoints(organization_id);
  if (!stored) return std::unexpected(std::move(stored.error()));
  return endpoints_.emplace(organization_id, std::move(*stored)).first->second;
}

std::expected<std::optional<AnnouncementChannel>, Error> DirectoryOverlay::announcement_channel(
    std::int64_t organization_id) {
  if (auto it = announcement_channels_.find(organization_id); it != announcement_channels_.end()) {
    return it->second;
  }
  auto stored = base_.announcement_channel(organization_id);
  if (!stored) return std::unexpected(std::move(stored.error()));
  return announcement_channels_.emplace(organization_id, std::move(*stored)).first->second;
}

bool channel_enabled(const KindInfo& kind, const UserPreferences& preferences, Channel channel,
                     std::optional<std::int64_t> organization_id) noexcept {
  if (kind.critical && channel == Channel::in_app) return true;
  if (contains(preferences.muted, channel)) return false;
  std::optional<bool> organization_rule;
  std::optional<bool> global_rule;
  // Rules come as the user saved them; should two say different things for the same scope, the
  // later one is what they meant last.
  for (const PreferenceRule& rule : preferences.rules) {
    if (rule.channel != channel || rule.kind != kind.name) continue;
    if (!rule.organization_id) {
      global_rule = rule.enabled;
    } else if (organization_id && *rule.organization_id == *organization_id) {
      organization_rule = rule.enabled;
    }
  }
  if (organization_rule) return *organization_rule;
  if (global_rule) return *global_rule;
  return contains(kind.default_channels, channel);
}

std::expected<RoutedEvent, Error> route_event(const StoredEvent& event,
                                              const NotificationRules& rules,
                                              DirectoryOverlay& directory) {
  RoutedEvent routed{.position = event.position,
                     .event_id = event.event->event_id,
                     .changes = rules.directory_changes(event)};
  for (const DirectoryChange& change : routed.changes) directory.apply(change);

  auto notices = rules.notices(event, directory);
  if (!notices) return std::unexpected(std::move(notices.error()));

  const std::optional<std::int64_t> organization_id = event.event->organization_id;
  const std::span<const KindInfo> kinds = rules.kinds();
  Routing routing(event, routed);
  for (const Notice& notice : *notices) {
    const auto kind =
        std::ranges::find_if(kinds, [&](const KindInfo& info) { return info.name == notice.kind; });
    if (kind == kinds.end()) {
      return std::unexpected(Error{.code = ErrorCode::internal,
                                   .message = "the rules gave a notice of kind '" + notice.kind +
                                              "' for " + std::string(event.event.event_type()) +
                                              " at position " + std::to_string(event.position) +
                                              ", but list no such kind",
                                   .field = "kind"});
    }
    auto done = route_notice(notice, *kind, organization_id, directory, routing);
    if (!done) return std::unexpected(std::move(done.error()));
  }

  if (organization_id) {
    auto endpoints = directory.endpoints(*organization_id);
    if (!endpoints) return std::unexpected(std::move(endpoints.error()));
    const std::string event_type(event.event.event_type());
    std::string body;
    for (const WebhookEndpoint& endpoint : *endpoints) {
      // The store lists only active endpoints; an endpoint disabled since then is skipped anyway.
      if (!endpoint.active) continue;
      if (!endpoint.event_types.empty() &&
          std::ranges::find(endpoint.event_types, event_type) == endpoint.event_types.end()) {
        continue;
      }
      if (body.empty()) body = encode_event(event.event);
      routing.deliver(Channel::webhook, "endpoint:" + std::to_string(endpoint.id), std::nullopt,
                      organization_id, event_type, {{"event_type", event_type}, {"body", body}});
    }
  }
  return routed;
}

}  // namespace herald::notify
