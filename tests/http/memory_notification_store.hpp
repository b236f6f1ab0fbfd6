#pragma once

// A NotificationStore in memory, for the HTTP tests until the SQLite one is on this branch. It
// keeps the contract of include/herald/notify/notification_store.hpp that the endpoints rely on.

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "herald/notify/notification_store.hpp"

namespace herald::testing {

/// A distinct secret of the real form for `n`.
inline std::string test_secret(std::int64_t n) {
  std::string digits = std::to_string(n);
  return "whsec_" + std::string(32 - digits.size(), 'A') + digits;
}

class MemoryNotificationStore final : public notify::NotificationStore {
 public:
  std::expected<std::optional<notify::UserProfile>, Error> user(std::int64_t user_id) override {
    std::lock_guard lock(mutex_);
    auto it = users_.find(user_id);
    if (it == users_.end()) return std::optional<notify::UserProfile>{};
    return std::optional<notify::UserProfile>(it->second);
  }
  std::expected<std::vector<std::int64_t>, Error> members(std::int64_t) override {
    return std::vector<std::int64_t>{};
  }
  std::expected<std::vector<std::int64_t>, Error> group(const std::string&) override {
    return std::vector<std::int64_t>{};
  }
  std::expected<notify::UserPreferences, Error> preferences(std::int64_t user_id) override {
    std::lock_guard lock(mutex_);
    auto it = preferences_.find(user_id);
    if (it == preferences_.end()) return notify::UserPreferences{.user_id = user_id};
    return it->second;
  }
  std::expected<std::vector<notify::WebhookEndpoint>, Error> endpoints(std::int64_t org) override {
    auto all = list_endpoints(org);
    if (!all) return all;
    std::erase_if(*all, [](const auto& e) { return !e.active; });
    return all;
  }
  std::expected<std::optional<notify::AnnouncementChannel>, Error> announcement_channel(
      std::int64_t organization_id) override {
    std::lock_guard lock(mutex_);
    auto it = announcements_.find(organization_id);
    if (it == announcements_.end()) return std::optional<notify::AnnouncementChannel>{};
    return std::optional<notify::AnnouncementChannel>(
        notify::AnnouncementChannel{organization_id, it->second});
  }

  std::expected<std::size_t, Error> apply_routing(std::span<const notify::RoutedEvent> events,
                                                  const std::string&) override {
    std::lock_guard lock(mutex_);
    std::size_t created = 0;
    for (const notify::RoutedEvent& event : events) {
      for (const notify::NewInboxItem& item : event.inbox) {
        inbox_.push_back(notify::InboxItem{.id = ++inbox_id_,
                                           .user_id = item.user_id,
                                           .kind = item.kind,
                                           .event_id = item.event_id,
                                           .organization_id = item.organization_id,
                                           .title = item.title,
                                           .body = item.body,
                                           .link = item.link,
                                           .created_at = item.created_at});
        ++created;
      }
      for (const notify::NewDelivery& d : event.deliveries) {
        const Timestamp now = herald::now();
        deliveries_.push_back(notify::DeliveryRecord{.id = ++delivery_id_,
                                                     .event_id = d.event_id,
                                                     .position = d.position,
                                                     .channel = d.channel,
                                                     .recipient = d.recipient,
                                                     .user_id = d.user_id,
                                                     .organization_id = d.organization_id,
                                                     .kind = d.kind,
                                                     .payload = d.payload,
                                                     .next_attempt_at = now,
                                                     .created_at = now,
                                                     .updated_at = now});
        ++created;
      }
    }
    return created;
  }

  std::expected<std::vector<notify::DeliveryRecord>, Error> claim_due(const std::string&, Timestamp,
                                                                      std::chrono::seconds,
                                                                      std::size_t) override {
    return std::vector<notify::DeliveryRecord>{};
  }
  std::expected<void, Error> finish_attempt(std::int64_t id, const std::string&,
                                            const notify::AttemptOutcome& outcome) override {
    std::lock_guard lock(mutex_);
    for (auto& d : deliveries_) {
      if (d.id != id) continue;
      d.status = outcome.status;
      ++d.attempts;
      d.last_error = outcome.error;
      d.last_status_code = outcome.status_code;
      attempts_[id].push_back(notify::DeliveryAttempt{.delivery_id = id,
                                                      .attempt = d.attempts,
                                                      .started_at = outcome.started_at,
                                                      .duration_us = outcome.duration_us,
                                                      .outcome = outcome.status,
                                                      .status_code = outcome.status_code,
                                                      .error = outcome.error});
      return {};
    }
    return std::unexpected(Error{ErrorCode::not_found, "no delivery", "delivery_id"});
  }
  void wait_for_due(std::chrono::milliseconds) override {}
  void wake() noexcept override {}
  std::expected<std::optional<Timestamp>, Error> next_due() override {
    return std::optional<Timestamp>{};
  }

  std::expected<std::vector<notify::DeliveryRecord>, Error> list_deliveries(
      const notify::DeliveryQuery& q) override {
    std::lock_guard lock(mutex_);
    std::vector<notify::DeliveryRecord> out;
    for (auto it = deliveries_.rbegin(); it != deliveries_.rend() && out.size() < q.limit; ++it) {
      if (q.status && it->status != *q.status) continue;
      if (q.channel && it->channel != *q.channel) continue;
      if (q.organization_id && it->organization_id != q.organization_id) continue;
      if (q.user_id && it->user_id != q.user_id) continue;
      if (q.event_id && it->event_id != *q.event_id) continue;
      if (q.before_id && it->id >= *q.before_id) continue;
      out.push_back(*it);
    }
    return out;
  }
  std::expected<notify::DeliveryRecord, Error> get_delivery(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    for (const auto& d : deliveries_) {
      if (d.id == id) return d;
    }
    return std::unexpected(Error{ErrorCode::not_found, "no delivery", "delivery_id"});
  }
  std::expected<std::vector<notify::DeliveryAttempt>, Error> list_attempts(
      std::int64_t id) override {
    std::lock_guard lock(mutex_);
    return attempts_[id];
  }
  std::expected<notify::DeliveryRecord, Error> resend(std::int64_t id, Timestamp now) override {
    std::lock_guard lock(mutex_);
    for (auto& d : deliveries_) {
      if (d.id != id) continue;
      if (d.status != notify::DeliveryStatus::dead && d.status != notify::DeliveryStatus::failed) {
        return std::unexpected(Error{ErrorCode::conflict, "not dead or failed", "status"});
      }
      d.status = notify::DeliveryStatus::pending;
      d.next_attempt_at = now;
      return d;
    }
    return std::unexpected(Error{ErrorCode::not_found, "no delivery", "delivery_id"});
  }
  std::expected<std::vector<notify::DeliveryCount>, Error> count_deliveries() override {
    std::lock_guard lock(mutex_);
    std::map<std::pair<notify::Channel, notify::DeliveryStatus>, std::int64_t> counts;
    for (const auto& d : deliveries_) ++counts[{d.channel, d.status}];
    std::vector<notify::DeliveryCount> out;
    for (const auto& [key, count] : counts) out.push_back({key.first, key.second, count});
    return out;
  }

  std::expected<std::vector<notify::InboxItem>, Error> list_inbox(
      const notify::InboxQuery& q) override {
    std::lock_guard lock(mutex_);
    std::vector<notify::InboxItem> out;
    for (auto it = inbox_.rbegin(); it != inbox_.rend() && out.size() < q.limit; ++it) {
      if (it->user_id != q.user_id) continue;
      if (q.unread_only && it->read_at) continue;
      if (q.archived != it->archived_at.has_value()) continue;
      if (q.before_id && it->id >= *q.before_id) continue;
      out.push_back(*it);
    }
    return out;
  }
  std::expected<std::int64_t, Error> unread_count(std::int64_t user_id) override {
    std::lock_guard lock(mutex_);
    return static_cast<std::int64_t>(std::ranges::count_if(inbox_, [&](const auto& i) {
      return i.user_id == user_id && !i.read_at && !i.archived_at;
    }));
  }
  std::expected<std::size_t, Error> mark_inbox(std::int64_t user_id,
                                               std::span<const std::int64_t> ids,
                                               notify::InboxMark mark, Timestamp now) override {
    std::lock_guard lock(mutex_);
    for (std::int64_t id : ids) {
      if (std::ranges::none_of(inbox_,
                               [&](const auto& i) { return i.id == id && i.user_id == user_id; })) {
        return std::unexpected(
            Error{ErrorCode::not_found, "no inbox item " + std::to_string(id) + " of user", "ids"});
      }
    }
    std::size_t changed = 0;
    for (auto& item : inbox_) {
      if (item.user_id != user_id) continue;
      if (!ids.empty() && std::ranges::find(ids, item.id) == ids.end()) continue;
      auto set = [&](std::optional<Timestamp>& field, bool on) {
        if (field.has_value() == on) return;
        field = on ? std::optional<Timestamp>(now) : std::nullopt;
        ++changed;
      };
      switch (mark) {
        case notify::InboxMark::seen:
          set(item.seen_at, true);
          break;
        case notify::InboxMark::read:
          set(item.read_at, true);
          break;
        case notify::InboxMark::unread:
          set(item.read_at, false);
          break;
        case notify::InboxMark::archived:
          set(item.archived_at, true);
          break;
        case notify::InboxMark::unarchived:
          set(item.archived_at, false);
          break;
      }
    }
    return changed;
  }
  std::expected<std::vector<notify::InboxItem>, Error> inbox_after(std::int64_t user_id,
                                                                   std::int64_t after_id,
                                                                   std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::vector<notify::InboxItem> out;
    for (const auto& item : inbox_) {
      if (item.user_id == user_id && item.id > after_id && out.size() < limit) out.push_back(item);
    }
    return out;
  }
  std::expected<std::int64_t, Error> inbox_head() override {
    std::lock_guard lock(mutex_);
    return inbox_id_;
  }

  std::expected<notify::UserProfile, Error> set_email(
      std::int64_t user_id, const std::optional<std::string>& email) override {
    if (email && (email->find('@') == std::string::npos || email->find(' ') != std::string::npos ||
                  email->size() > 254)) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, "email", "not an email address"));
    }
    std::lock_guard lock(mutex_);
    notify::UserProfile& profile = users_[user_id];
    profile.user_id = user_id;
    profile.email = email;
    return profile;
  }
  std::expected<void, Error> set_preferences(const notify::UserPreferences& preferences,
                                             std::span<const notify::KindInfo>) override {
    std::lock_guard lock(mutex_);
    preferences_[preferences.user_id] = preferences;
    return {};
  }

  std::expected<notify::WebhookEndpoint, Error> create_endpoint(
      std::int64_t organization_id, const std::string& url,
      const std::vector<std::string>& event_types) override {
    std::lock_guard lock(mutex_);
    notify::WebhookEndpoint endpoint{
        .id = ++endpoint_id_,
        .organization_id = organization_id,
        .url = url,
        .event_types = event_types,
        .secrets = {{test_secret(endpoint_id_), herald::now(), std::nullopt}},
        .created_at = herald::now()};
    endpoints_.push_back(endpoint);
    return endpoint;
  }
  std::expected<std::vector<notify::WebhookEndpoint>, Error> list_endpoints(
      std::optional<std::int64_t> organization_id) override {
    std::lock_guard lock(mutex_);
    std::vector<notify::WebhookEndpoint> out;
    for (const auto& e : endpoints_) {
      if (!organization_id || e.organization_id == *organization_id) out.push_back(e);
    }
    return out;
  }
  std::expected<notify::WebhookEndpoint, Error> get_endpoint(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    for (const auto& e : endpoints_) {
      if (e.id == id) return e;
    }
    return std::unexpected(Error{ErrorCode::not_found, "no endpoint", "id"});
  }
  std::expected<notify::WebhookEndpoint, Error> set_endpoint_active(
      std::int64_t id, bool active, const std::string& reason) override {
    std::lock_guard lock(mutex_);
    for (auto& e : endpoints_) {
      if (e.id != id) continue;
      e.active = active;
      e.disabled_reason = active ? "" : reason;
      if (active) e.consecutive_failures = 0;
      return e;
    }
    return std::unexpected(Error{ErrorCode::not_found, "no endpoint", "id"});
  }
  std::expected<notify::WebhookEndpoint, Error> rotate_secret(
      std::int64_t id, Timestamp now, std::chrono::seconds overlap) override {
    std::lock_guard lock(mutex_);
    for (auto& e : endpoints_) {
      if (e.id != id) continue;
      for (auto& s : e.secrets) {
        if (!s.expires_at) s.expires_at = now + overlap;
      }
      const std::int64_t n = id * 1000 + static_cast<std::int64_t>(e.secrets.size());
      e.secrets.insert(e.secrets.begin(), notify::WebhookSecret{test_secret(n), now, std::nullopt});
      return e;
    }
    return std::unexpected(Error{ErrorCode::not_found, "no endpoint", "id"});
  }
  std::expected<void, Error> set_announcement_channel(
      std::int64_t organization_id, const std::optional<std::string>& webhook_url) override {
    std::lock_guard lock(mutex_);
    if (webhook_url) {
      announcements_[organization_id] = *webhook_url;
    } else {
      announcements_.erase(organization_id);
    }
    return {};
  }

 private:
  std::mutex mutex_;
  std::map<std::int64_t, notify::UserProfile> users_;
  std::map<std::int64_t, notify::UserPreferences> preferences_;
  std::map<std::int64_t, std::string> announcements_;
  std::vector<notify::InboxItem> inbox_;
  std::vector<notify::DeliveryRecord> deliveries_;
  std::map<std::int64_t, std::vector<notify::DeliveryAttempt>> attempts_;
  std::vector<notify::WebhookEndpoint> endpoints_;
  std::int64_t inbox_id_ = 0;
  std::int64_t delivery_id_ = 0;
  std::int64_t endpoint_id_ = 0;
};

}  // namespace herald::testing
