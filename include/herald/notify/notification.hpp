#pragma once

// The value types of notification delivery (docs/notifications.md): channels, kinds, what the
// router decides, deliveries and their attempts, inbox items, preferences and webhook endpoints.
// Nothing here knows the tournament platform: the platform's kinds and recipients live in domain/.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event_id.hpp"
#include "herald/timestamp.hpp"

namespace herald::notify {

/// Where a notification goes.
enum class Channel : std::uint8_t {
  in_app,           ///< The user's inbox in herald (stored, pushed on the user's stream).
  discord,          ///< A Discord direct message from the bot to the user.
  email,            ///< An email to the user's (or an invited) address.
  webhook,          ///< An organization's registered HTTP endpoint (Standard Webhooks).
  discord_channel,  ///< An organization's Discord channel webhook (announcements).
};

/// Every channel, in declaration order.
inline constexpr Channel all_channels[] = {Channel::in_app, Channel::discord, Channel::email,
                                           Channel::webhook, Channel::discord_channel};

/// "in_app", "discord", "email", "webhook" or "discord_channel".
std::string_view to_string(Channel channel) noexcept;
/// The channel named `name` (as `to_string` spells it), or nullopt.
std::optional<Channel> parse_channel(std::string_view name) noexcept;

/// Where a delivery stands (docs/notifications.md, "Delivery").
enum class DeliveryStatus : std::uint8_t {
  pending,   ///< Waiting for its first attempt.
  sending,   ///< Claimed by a worker; an attempt is in progress.
  sent,      ///< The provider accepted it. Final.
  retrying,  ///< An attempt failed transiently; another is due at `next_attempt_at`.
  failed,    ///< A permanent error (a 4xx, an invalid address): not retried. Final.
  dead,      ///< Every retry failed. Final until an operator re-sends it.
};

/// "pending", "sending", "sent", "retrying", "failed" or "dead".
std::string_view to_string(DeliveryStatus status) noexcept;
/// The status named `name`, or nullopt.
std::optional<DeliveryStatus> parse_delivery_status(std::string_view name) noexcept;

/// A kind of notification, as the rules describe it ("race_approved").
struct KindInfo {
  /// snake_case, stable: preferences name it.
  std::string name;
  /// One line for people: "Your race was approved".
  std::string description;
  /// A critical kind cannot be turned off in the inbox (a permission change, being removed).
  bool critical = false;
  /// Channels on when the user set nothing for this kind (in-app for everything that concerns
  /// the user; subscription kinds have none: a member subscribes to them).
  std::vector<Channel> default_channels;
};

/// A notification's text, rendered from the event alone, in each form a channel needs.
struct Message {
  std::string title;
  /// Plain text (email's text part, the inbox body).
  std::string text;
  /// Discord markdown.
  std::string markdown;
  /// An HTML fragment (email's HTML part); every value from the event is escaped.
  std::string html;
  /// A path in the platform the notification points to ("/tournaments/7"); may be empty.
  std::string link;
};

/// Who a notice is for.
struct Audience {
  /// These users, whatever their subscriptions (the affected user, match participants).
  std::vector<std::int64_t> users;
  /// The members of this organization who turned the notice's kind on (subscribers).
  std::optional<std::int64_t> subscribers_of;
  /// An address that belongs to no user yet (an invited email). Email only.
  std::optional<std::string> email;
  /// Also post to the organization's Discord announcement channel, when it has one.
  std::optional<std::int64_t> announce_to;
};

/// What the rules say an event means for people: a kind, an audience and the text.
struct Notice {
  std::string kind;
  Audience audience;
  Message message;
};

/// A user as the directory (kept from the events) knows them.
struct UserProfile {
  std::int64_t user_id = 0;
  std::optional<std::int64_t> discord_id;
  std::optional<std::string> discord_username;
  /// Set through the API or CLI, never from events.
  std::optional<std::string> email;
  /// A deleted user is told nothing.
  bool deleted = false;
};

/// A change to the directory that an event implies (user created, member added, …).
struct DirectoryChange {
  enum class Op : std::uint8_t {
    upsert_user,    ///< Sets discord_id/discord_username (when given) and clears `deleted`.
    delete_user,    ///< Marks the user deleted.
    add_member,     ///< Adds `user_id` to `organization_id`.
    remove_member,  ///< Removes `user_id` from `organization_id`.
    set_group,      ///< Sets the group named `group` to `members` (replacing it; empty removes).
  };
  Op op = Op::upsert_user;
  std::int64_t user_id = 0;
  std::optional<std::int64_t> organization_id;
  std::optional<std::int64_t> discord_id;
  std::optional<std::string> discord_username;
  /// For `set_group`: a name the rules choose ("match:12", "invite:ABC123"): a set of users an
  /// event later refers to without naming them (a match's participants, an invite's inviter).
  std::string group;
  /// For `set_group`.
  std::vector<std::int64_t> members;
};

/// One preference of one user: a kind on a channel, for one organization or for all, on or off.
/// A rule for one organization beats a rule for all.
struct PreferenceRule {
  std::int64_t user_id = 0;
  std::string kind;
  Channel channel = Channel::in_app;
  /// nullopt: every organization (and notifications that belong to none).
  std::optional<std::int64_t> organization_id;
  bool enabled = true;
};

/// A user's preferences: their rules and the channels they muted.
struct UserPreferences {
  std::int64_t user_id = 0;
  std::vector<PreferenceRule> rules;
  /// A muted channel gets nothing from this user's notifications (in-app cannot be muted for
  /// critical kinds).
  std::vector<Channel> muted;
};

/// A delivery the router creates: one message to one recipient on one channel (not in-app: the
/// inbox is written directly). Unique per (`event_id`, `recipient`, `channel`).
struct NewDelivery {
  EventId event_id;
  /// The event's store position.
  std::int64_t position = 0;
  Channel channel = Channel::email;
  /// Who or where: "user:42" (discord, email to a user), "email:a@example.org" (an address that
  /// belongs to no user), "endpoint:7" (a webhook endpoint), "org:3" (a Discord announcement).
  std::string recipient;
  std::optional<std::int64_t> user_id;
  std::optional<std::int64_t> organization_id;
  /// The kind, or for a webhook the event type.
  std::string kind;
  /// What the sender needs, as a JSON object in text (`payload_*` below name the members):
  ///   discord:         {"discord_id":"<snowflake>","title","markdown","link"}
  ///   discord_channel: {"webhook_url","title","markdown","link"}
  ///   email:           {"to","to_name"?,"title","text","html","link"}
  ///   webhook:         {"event_type","body"} where body is the event's JSON text, sent as is
  std::string payload;
};

/// A new inbox item, written by the router.
struct NewInboxItem {
  std::int64_t user_id = 0;
  std::string kind;
  EventId event_id;
  std::int64_t position = 0;
  std::optional<std::int64_t> organization_id;
  std::string title;
  std::string body;
  std::string link;
  /// When the event happened.
  Timestamp created_at{};
};

/// An item of a user's inbox.
struct InboxItem {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string kind;
  EventId event_id;
  std::optional<std::int64_t> organization_id;
  std::string title;
  std::string body;
  std::string link;
  Timestamp created_at{};
  std::optional<Timestamp> seen_at;
  std::optional<Timestamp> read_at;
  std::optional<Timestamp> archived_at;
};

/// A stored delivery.
struct DeliveryRecord {
  std::int64_t id = 0;
  EventId event_id;
  std::int64_t position = 0;
  Channel channel = Channel::email;
  std::string recipient;
  std::optional<std::int64_t> user_id;
  std::optional<std::int64_t> organization_id;
  std::string kind;
  std::string payload;
  DeliveryStatus status = DeliveryStatus::pending;
  /// Attempts made so far.
  int attempts = 0;
  /// When the next attempt is due (pending, retrying), or the claim expires (sending).
  Timestamp next_attempt_at{};
  /// The worker holding the claim while sending; empty otherwise.
  std::string claimed_by;
  std::string last_error;
  std::optional<int> last_status_code;
  Timestamp created_at{};
  Timestamp updated_at{};
};

/// One attempt at a delivery, as recorded.
struct DeliveryAttempt {
  std::int64_t delivery_id = 0;
  /// 1, 2, …
  int attempt = 0;
  Timestamp started_at{};
  /// How long the provider took to answer (or to fail), in microseconds.
  std::int64_t duration_us = 0;
  /// What the attempt led to: sent, retrying, failed or dead.
  DeliveryStatus outcome = DeliveryStatus::sent;
  /// The provider's status code (HTTP status, SMTP reply code) when it answered.
  std::optional<int> status_code;
  /// Empty when sent.
  std::string error;
};

/// A webhook endpoint's signing secret ("whsec_" + base64 of 24 random bytes).
struct WebhookSecret {
  std::string secret;
  Timestamp created_at{};
  /// While a secret is rotated, the old one still signs until this time.
  std::optional<Timestamp> expires_at;
};

/// An organization's registered webhook endpoint.
struct WebhookEndpoint {
  std::int64_t id = 0;
  std::int64_t organization_id = 0;
  std::string url;
  /// Event types (wire names) it receives; empty: every type.
  std::vector<std::string> event_types;
  /// Newest first; every unexpired one signs.
  std::vector<WebhookSecret> secrets;
  bool active = true;
  /// Why it was disabled (410, a run of failures, an operator); empty while active.
  std::string disabled_reason;
  /// Failed attempts since the last success.
  int consecutive_failures = 0;
  Timestamp created_at{};
};

/// An organization's Discord announcement channel (a Discord channel webhook URL).
struct AnnouncementChannel {
  std::int64_t organization_id = 0;
  /// "https://discord.com/api/webhooks/ID/TOKEN" (the API base is configurable).
  std::string webhook_url;
};

}  // namespace herald::notify
