// `herald notify|deliveries|webhooks`: an operator's hands on notification delivery. Every value
// from the command line is checked here first, so that a message names the flag as the user typed
// it; the store checks again and refuses anything it would not keep. Webhook secrets are printed
// only where they are made (add, rotate); listings show a hint.

#include "notify_commands.hpp"
#include "cli_support.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cli_table.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/error.hpp"
#include "herald/event_store.hpp"
#include "herald/notify/notification.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/notify/router.hpp"
#include "herald/timestamp.hpp"
#include "store_commands.hpp"

namespace herald::server {
namespace {

using notify::Channel;
using notify::DeliveryStatus;

/// How long a rotated-out webhook secret keeps signing (notify_api.md: 24 h).
constexpr std::chrono::hours rotation_overlap{24};
constexpr std::size_t max_url_bytes = 2048;
constexpr std::size_t max_reason_bytes = 200;

/// `text` for a message, cut and with control characters replaced, since it is user input.
std::string quotable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 60)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (text.size() > 60) out += "…";
  return out;
}

/// `error`'s message without the "field 'name': " the library starts it with: on the command line
/// the flag or argument is what the user typed.
std::string_view without_field(const Error& error) {
  std::string_view message = error.message;
  const std::string prefix = "field '" + error.field + "': ";
  if (!error.field.empty() && message.starts_with(prefix)) message.remove_prefix(prefix.size());
  return message;
}

/// A store error as a failure: bad input is a usage error naming `flag`; anything else (a
/// missing id, a conflict, the database) a failure.
std::unexpected<Failure> store_failure(const Error& error, std::string_view flag = {}) {
  if (error.code == ErrorCode::invalid_argument || error.code == ErrorCode::too_large) {
    return usage(flag.empty() ? error.message : about_flag(flag, error));
  }
  return failed(error.message);
}

// ---------------------------------------------------------------------------------------------
// Values given on the command line

/// An id: a whole number from 1. `noun` says what it identifies ("a user id").
std::expected<std::int64_t, Failure> parse_id(std::string_view flag, std::string_view text,
                                              std::string_view noun) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < 1) {
    return usage(fmt::format("{} '{}': expected {} (a whole number, 1 or more)", flag,
                             quotable(text), noun));
  }
  return value;
}

std::expected<std::optional<std::int64_t>, Failure> optional_id(std::string_view flag,
                                                                const TextFlag& value,
                                                                std::string_view noun) {
  if (!value.given()) return std::nullopt;
  auto parsed = parse_id(flag, value.value, noun);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  return *parsed;
}

std::expected<std::size_t, Failure> parse_limit(std::string_view flag, const TextFlag& value,
                                                std::size_t fallback) {
  if (!value.given()) return fallback;
  std::int64_t limit = 0;
  const std::string& text = value.value;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || limit < 1 ||
      limit > 1000) {
    return usage(
        fmt::format("{} '{}': expected a whole number from 1 to 1000", flag, quotable(text)));
  }
  return static_cast<std::size_t>(limit);
}

std::string channel_names() {
  std::string names;
  for (Channel channel : notify::all_channels) {
    if (!names.empty()) names += ", ";
    names += notify::to_string(channel);
  }
  return names;
}

std::expected<Channel, Failure> parse_channel(std::string_view flag, std::string_view text) {
  if (auto channel = notify::parse_channel(text)) return *channel;
  return usage(
      fmt::format("{} '{}': expected a channel: {}", flag, quotable(text), channel_names()));
}

/// The channels a user has preferences for: the ones the router sends a user's notifications on.
std::expected<Channel, Failure> parse_user_channel(std::string_view flag, std::string_view text) {
  auto channel = parse_channel(flag, text);
  if (!channel) return channel;
  if (*channel == Channel::webhook || *channel == Channel::discord_channel) {
    return usage(fmt::format(
        "{} '{}': a user's notifications go to in_app, discord or email; {} belongs to an "
        "organization",
        flag, text, text));
  }
  return channel;
}

std::expected<DeliveryStatus, Failure> parse_status(std::string_view flag, std::string_view text) {
  if (auto status = notify::parse_delivery_status(text)) return *status;
  return usage(fmt::format(
      "{} '{}': expected a delivery status: pending, sending, sent, retrying, failed or dead", flag,
      quotable(text)));
}

const notify::KindInfo* find_kind(std::span<const notify::KindInfo> kinds, std::string_view name) {
  for (const notify::KindInfo& kind : kinds) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

std::string kind_names(std::span<const notify::KindInfo> kinds) {
  std::string names;
  for (const notify::KindInfo& kind : kinds) {
    if (!names.empty()) names += ", ";
    names += kind.name;
  }
  return names;
}

/// An http(s) URL with a host and nothing a URL cannot hold (spaces, control characters).
Outcome check_url(std::string_view flag, std::string_view url) {
  const bool http = url.starts_with("http://");
  const bool https = url.starts_with("https://");
  if (!http && !https) {
    return usage(fmt::format("{} '{}': expected an http:// or https:// URL", flag, quotable(url)));
  }
  if (url.size() > max_url_bytes) {
    return usage(fmt::format("{}: the URL has {} bytes; at most {} are accepted", flag, url.size(),
                             max_url_bytes));
  }
  for (char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) {
      return usage(fmt::format("{} '{}': a URL cannot hold spaces or control characters", flag,
                               quotable(url)));
    }
  }
  const std::string_view rest = url.substr(http ? 7 : 8);
  const std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.starts_with(':') || host.starts_with('@')) {
    return usage(fmt::format("{} '{}': the URL has no host", flag, quotable(url)));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Opening the stores

struct Stores {
  std::unique_ptr<EventStore> events;
  std::unique_ptr<notify::NotificationStore> notify;
  /// 'herald.db' or the URL without password, for messages.
  std::string where;
};

/// Opens an existing herald database (never creating one) and its notification tables.
std::expected<Stores, Failure> open_stores(const StoreFlags& flags) {
  auto location = resolve_store_location(flags, true, "herald.db");
  if (!location) return usage(location.error().message);
  Stores stores{.where = describe_location(*location)};
  // The event store first: it checks that the database is herald's, and the notification tables
  // share its checkpoint table.
  auto events = open_existing_store_of(flags);
  if (!events) {
    return std::unexpected(
        Failure{events.error().code == ErrorCode::invalid_argument ? exit_usage : exit_failure,
                std::move(events.error().message)});
  }
  stores.events = std::move(*events);
  auto notify_store = notify::open_notification_store(*location);
  if (!notify_store) {
    return failed(
        fmt::format("{} (notification tables in {})", notify_store.error().message, stores.where));
  }
  stores.notify = std::move(*notify_store);
  return stores;
}

// ---------------------------------------------------------------------------------------------
// Output

/// `text` on one line, cut to at most `most` code points, ending in "…" when cut.
std::string cell(std::string_view text, std::size_t most) {
  std::string line;
  for (char c : text) line += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  return shorten(line, most);
}

/// "2026-11-27 09:30:00": a time in a table, to the second (UTC).
std::string table_time(Timestamp t) {
  std::string text = format_timestamp(t).substr(0, 19);
  text[10] = ' ';
  return text;
}

std::string or_dash(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : "-";
}

std::string plural(std::size_t count, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", count, count == 1 ? one : many);
}

void print_json(std::FILE* out, const boost::json::object& document) {
  fmt::print(out, "{}\n", boost::json::serialize(document));
}

boost::json::value json_time(const std::optional<Timestamp>& t) {
  return t ? boost::json::value(format_timestamp(*t)) : boost::json::value(nullptr);
}

boost::json::value json_id(const std::optional<std::int64_t>& id) {
  return id ? boost::json::value(*id) : boost::json::value(nullptr);
}

/// "whsec_ab12…": enough to tell secrets apart, never enough to sign.
std::string secret_hint(const notify::WebhookEndpoint& endpoint) {
  if (endpoint.secrets.empty()) return "-";
  const std::string& secret = endpoint.secrets.front().secret;
  return secret.substr(0, std::min<std::size_t>(secret.size(), 10)) + "…";
}

/// A Discord webhook URL without its last path segment (the token that lets anyone post).
std::string masked_webhook_url(std::string_view url) {
  const std::size_t slash = url.rfind('/');
  if (slash == std::string_view::npos || slash + 1 >= url.size()) return std::string(url);
  return std::string(url.substr(0, slash + 1)) + "…";
}

std::string scope(const std::optional<std::int64_t>& organization_id) {
  return organization_id ? fmt::format("organization {}", *organization_id)
                         : std::string("every organization");
}

boost::json::object preferences_json(const notify::UserPreferences& preferences) {
  boost::json::array rules;
  for (const notify::PreferenceRule& rule : preferences.rules) {
    boost::json::object item;
    item["kind"] = rule.kind;
    item["channel"] = notify::to_string(rule.channel);
    item["organization_id"] = json_id(rule.organization_id);
    item["enabled"] = rule.enabled;
    rules.push_back(std::move(item));
  }
  boost::json::array muted;
  for (Channel channel : preferences.muted) muted.emplace_back(notify::to_string(channel));
  boost::json::object document;
  document["user_id"] = preferences.user_id;
  document["rules"] = std::move(rules);
  document["muted"] = std::move(muted);
  return document;
}

boost::json::object inbox_item_json(const notify::InboxItem& item) {
  boost::json::object json;
  json["id"] = item.id;
  json["kind"] = item.kind;
  json["title"] = item.title;
  json["body"] = item.body;
  json["link"] = item.link;
  json["event_id"] = item.event_id.to_string();
  json["organization_id"] = json_id(item.organization_id);
  json["created_at"] = format_timestamp(item.created_at);
  json["seen_at"] = json_time(item.seen_at);
  json["read_at"] = json_time(item.read_at);
  json["archived_at"] = json_time(item.archived_at);
  return json;
}

boost::json::object delivery_json(const notify::DeliveryRecord& delivery) {
  boost::json::object json;
  json["id"] = delivery.id;
  json["event_id"] = delivery.event_id.to_string();
  json["position"] = delivery.position;
  json["channel"] = notify::to_string(delivery.channel);
  json["recipient"] = delivery.recipient;
  json["user_id"] = json_id(delivery.user_id);
  json["organization_id"] = json_id(delivery.organization_id);
  json["kind"] = delivery.kind;
  json["status"] = notify::to_string(delivery.status);
  json["attempts"] = delivery.attempts;
  json["next_attempt_at"] = format_timestamp(delivery.next_attempt_at);
  json["last_error"] = delivery.last_error;
  json["last_status_code"] =
      delivery.last_status_code ? boost::json::value(*delivery.last_status_code) : nullptr;
  json["created_at"] = format_timestamp(delivery.created_at);
  json["updated_at"] = format_timestamp(delivery.updated_at);
  return json;
}

boost::json::object attempt_json(const notify::DeliveryAttempt& attempt) {
  boost::json::object json;
  json["attempt"] = attempt.attempt;
  json["started_at"] = format_timestamp(attempt.started_at);
  json["duration_us"] = attempt.duration_us;
  json["outcome"] = notify::to_string(attempt.outcome);
  json["status_code"] = attempt.status_code ? boost::json::value(*attempt.status_code) : nullptr;
  json["error"] = attempt.error;
  return json;
}

boost::json::object endpoint_json(const notify::WebhookEndpoint& endpoint) {
  boost::json::object json;
  json["id"] = endpoint.id;
  json["organization_id"] = endpoint.organization_id;
  json["url"] = endpoint.url;
  boost::json::array types;
  for (const std::string& type : endpoint.event_types) types.emplace_back(type);
  json["event_types"] = std::move(types);
  json["active"] = endpoint.active;
  json["disabled_reason"] = endpoint.disabled_reason;
  json["consecutive_failures"] = endpoint.consecutive_failures;
  json["created_at"] = format_timestamp(endpoint.created_at);
  json["secret_hint"] = secret_hint(endpoint);
  return json;
}

std::string event_types_text(const notify::WebhookEndpoint& endpoint) {
  if (endpoint.event_types.empty()) return "every type";
  std::string text;
  for (const std::string& type : endpoint.event_types) {
    if (!text.empty()) text += ",";
    text += type;
  }
  return text;
}

/// Whether a delivery waits for an attempt, so that its `next_attempt_at` means something.
bool waiting(DeliveryStatus status) {
  return status == DeliveryStatus::pending || status == DeliveryStatus::retrying ||
         status == DeliveryStatus::sending;
}

// ---------------------------------------------------------------------------------------------
// herald notify kinds

struct KindsArgs {
  bool json = false;
};

Outcome kinds(const KindsArgs& args, std::span<const notify::KindInfo> kinds, std::FILE* out) {
  auto channels_of = [](const notify::KindInfo& kind) {
    std::vector<std::string_view> names;
    for (Channel channel : kind.default_channels) names.push_back(notify::to_string(channel));
    return names;
  };
  if (args.json) {
    boost::json::array items;
    for (const notify::KindInfo& kind : kinds) {
      boost::json::object item;
      item["name"] = kind.name;
      item["description"] = kind.description;
      item["critical"] = kind.critical;
      boost::json::array defaults;
      for (std::string_view name : channels_of(kind)) defaults.emplace_back(name);
      item["default_channels"] = std::move(defaults);
      items.push_back(std::move(item));
    }
    boost::json::array channels;
    for (Channel channel : notify::all_channels) channels.emplace_back(notify::to_string(channel));
    boost::json::object document;
    document["kinds"] = std::move(items);
    document["channels"] = std::move(channels);
    print_json(out, document);
    return {};
  }
  Table table({{"KIND"}, {"CRITICAL"}, {"DEFAULT CHANNELS"}, {"DESCRIPTION"}});
  for (const notify::KindInfo& kind : kinds) {
    std::string defaults;
    for (std::string_view name : channels_of(kind)) {
      if (!defaults.empty()) defaults += ",";
      defaults += name;
    }
    table.add({kind.name, kind.critical ? "yes" : "no",
               defaults.empty() ? "- (subscribe)" : defaults, kind.description});
  }
  table.print(out);
  return {};
}

// ---------------------------------------------------------------------------------------------
// herald notify prefs get|set, mute, unmute

struct PrefsGetArgs {
  StoreFlags store;
  std::string user;
  TextFlag organization;
  bool json = false;
};

/// What the user's preferences let through, kind by kind, for notifications of `organization_id`
/// (the router's own rule, `channel_enabled`), and what keeps a channel from reaching them.
void print_effective(std::FILE* out, std::int64_t user, const notify::UserPreferences& preferences,
                     std::span<const notify::KindInfo> kinds,
                     std::optional<std::int64_t> organization_id,
                     const std::optional<notify::UserProfile>& profile) {
  fmt::print(out, "\nwhat user {} is told, for {}:\n", user, scope(organization_id));
  Table table({{"KIND"}, {"IN_APP"}, {"DISCORD"}, {"EMAIL"}});
  for (const notify::KindInfo& kind : kinds) {
    std::vector<std::string> row{kind.name};
    for (Channel channel : {Channel::in_app, Channel::discord, Channel::email}) {
      row.emplace_back(notify::channel_enabled(kind, preferences, channel, organization_id) ? "on"
                                                                                            : "-");
    }
    table.add(std::move(row));
  }
  table.print(out);
  if (!profile) {
    fmt::print(out,
               "note: no event has created user {} yet: only their inbox gets notifications that "
               "name them\n",
               user);
    return;
  }
  if (profile->deleted) fmt::print(out, "note: user {} is deleted: they are told nothing\n", user);
  if (!profile->discord_id) {
    fmt::print(out, "note: user {} has no Discord id: no Discord message reaches them\n", user);
  }
  if (!profile->email) {
    fmt::print(out,
               "note: user {} has no email address: no email reaches them ('herald notify email "
               "{} ADDRESS' sets one)\n",
               user, user);
  }
}

Outcome prefs_get(const PrefsGetArgs& args, std::span<const notify::KindInfo> kinds,
                  std::FILE* out) {
  auto user = parse_id("USER", args.user, "a user id");
  if (!user) return std::unexpected(std::move(user.error()));
  auto organization = optional_id("--org", args.organization, "an organization id");
  if (!organization) return std::unexpected(std::move(organization.error()));
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto preferences = stores->notify->preferences(*user);
  if (!preferences) return store_failure(preferences.error());
  preferences->user_id = *user;
  if (args.json) {
    print_json(out, preferences_json(*preferences));
    return {};
  }
  auto profile = stores->notify->user(*user);
  if (!profile) return store_failure(profile.error());
  if (preferences->rules.empty() && preferences->muted.empty()) {
    fmt::print(out,
               "user {} has set no preferences: every kind goes to its default channels (see "
               "'herald notify kinds')\n",
               *user);
  } else {
    if (!preferences->rules.empty()) {
      Table table({{"KIND"}, {"CHANNEL"}, {"ORGANIZATION"}, {"ENABLED"}});
      for (const notify::PreferenceRule& rule : preferences->rules) {
        table.add({rule.kind, std::string(notify::to_string(rule.channel)),
                   rule.organization_id ? std::to_string(*rule.organization_id) : "all",
                   rule.enabled ? "on" : "off"});
      }
      table.print(out);
    }
    std::string muted;
    for (Channel channel : preferences->muted) {
      if (!muted.empty()) muted += ", ";
      muted += notify::to_string(channel);
    }
    fmt::print(out, "muted: {}\n", muted.empty() ? "nothing" : muted);
  }
  print_effective(out, *user, *preferences, kinds, *organization, *profile);
  return {};
}

struct PrefsSetArgs {
  StoreFlags store;
  std::string user;
  std::string kind;
  std::string channel;
  TextFlag organization;
  bool on = false;
  bool off = false;
};

Outcome prefs_set(const PrefsSetArgs& args, std::span<const notify::KindInfo> kinds,
                  std::FILE* out) {
  auto user = parse_id("USER", args.user, "a user id");
  if (!user) return std::unexpected(std::move(user.error()));
  const notify::KindInfo* kind = find_kind(kinds, args.kind);
  if (kind == nullptr) {
    return usage(
        fmt::format("--kind '{}': expected a notification kind: {} (see 'herald notify "
                    "kinds')",
                    quotable(args.kind), kind_names(kinds)));
  }
  auto channel = parse_user_channel("--channel", args.channel);
  if (!channel) return std::unexpected(std::move(channel.error()));
  auto organization = optional_id("--org", args.organization, "an organization id");
  if (!organization) return std::unexpected(std::move(organization.error()));
  if (args.on == args.off) return usage("give either --on or --off");
  if (args.off && kind->critical && *channel == Channel::in_app) {
    return usage(fmt::format(
        "--off: '{}' is a critical kind: it always reaches the inbox (in_app); it can be turned "
        "off on discord and email only",
        kind->name));
  }

  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto preferences = stores->notify->preferences(*user);
  if (!preferences) return store_failure(preferences.error());
  preferences->user_id = *user;
  auto same = std::ranges::find_if(preferences->rules, [&](const notify::PreferenceRule& rule) {
    return rule.kind == kind->name && rule.channel == *channel &&
           rule.organization_id == *organization;
  });
  if (same != preferences->rules.end()) {
    same->enabled = args.on;
  } else {
    preferences->rules.push_back({.user_id = *user,
                                  .kind = kind->name,
                                  .channel = *channel,
                                  .organization_id = *organization,
                                  .enabled = args.on});
  }
  if (auto stored = stores->notify->set_preferences(*preferences, kinds); !stored) {
    return store_failure(stored.error());
  }
  fmt::print(out, "user {}: {} on {} for {}: {}\n", *user, kind->name, notify::to_string(*channel),
             scope(*organization), args.on ? "on" : "off");
  if (args.on && std::ranges::find(preferences->muted, *channel) != preferences->muted.end()) {
    fmt::print(out, "note: user {} has muted {}; 'herald notify unmute {} {}' lifts it\n", *user,
               notify::to_string(*channel), *user, notify::to_string(*channel));
  }
  return {};
}

struct MuteArgs {
  StoreFlags store;
  std::string user;
  std::string channel;
};

Outcome mute(const MuteArgs& args, bool muting, std::span<const notify::KindInfo> kinds,
             std::FILE* out) {
  auto user = parse_id("USER", args.user, "a user id");
  if (!user) return std::unexpected(std::move(user.error()));
  auto channel = parse_user_channel("CHANNEL", args.channel);
  if (!channel) return std::unexpected(std::move(channel.error()));
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto preferences = stores->notify->preferences(*user);
  if (!preferences) return store_failure(preferences.error());
  preferences->user_id = *user;
  const std::string_view name = notify::to_string(*channel);
  const bool muted = std::ranges::find(preferences->muted, *channel) != preferences->muted.end();
  if (muted == muting) {
    fmt::print(out, "user {} {} {} already; nothing changed\n", *user,
               muting ? "has muted" : "has not muted", name);
    return {};
  }
  if (muting) {
    preferences->muted.push_back(*channel);
  } else {
    std::erase(preferences->muted, *channel);
  }
  if (auto stored = stores->notify->set_preferences(*preferences, kinds); !stored) {
    return store_failure(stored.error());
  }
  if (!muting) {
    fmt::print(out, "user {} unmuted {}\n", *user, name);
  } else if (*channel == Channel::in_app) {
    fmt::print(out, "user {} muted in_app; critical kinds still reach the inbox\n", *user);
  } else {
    fmt::print(out, "user {} muted {}: nothing goes there until 'herald notify unmute {} {}'\n",
               *user, name, *user, name);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// herald notify email

struct EmailArgs {
  StoreFlags store;
  std::string user;
  TextFlag address;
  bool clear = false;
};

Outcome email(const EmailArgs& args, std::FILE* out) {
  auto user = parse_id("USER", args.user, "a user id");
  if (!user) return std::unexpected(std::move(user.error()));
  if (args.address.given() == args.clear) {
    return usage("give either an ADDRESS (a@example.org) or --clear");
  }
  std::optional<std::string> address;
  if (args.address.given()) address = args.address.value;
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto profile = stores->notify->set_email(*user, address);
  if (!profile) {
    if (profile.error().code == ErrorCode::invalid_argument ||
        profile.error().code == ErrorCode::too_large) {
      return usage(fmt::format("ADDRESS '{}': {}", quotable(args.address.value),
                               without_field(profile.error())));
    }
    return store_failure(profile.error());
  }
  if (profile->email) {
    fmt::print(out, "user {}'s email address is {}\n", *user, *profile->email);
  } else {
    fmt::print(out, "user {} has no email address now: no email goes to them\n", *user);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// herald notify inbox

struct InboxArgs {
  StoreFlags store;
  std::string user;
  bool unread = false;
  bool archived = false;
  TextFlag before, limit;
  bool json = false;
};

Outcome inbox(const InboxArgs& args, std::FILE* out) {
  auto user = parse_id("USER", args.user, "a user id");
  if (!user) return std::unexpected(std::move(user.error()));
  auto before = optional_id("--before", args.before, "an inbox item id");
  if (!before) return std::unexpected(std::move(before.error()));
  auto limit = parse_limit("--limit", args.limit, 50);
  if (!limit) return std::unexpected(std::move(limit.error()));
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto items = stores->notify->list_inbox({.user_id = *user,
                                           .unread_only = args.unread,
                                           .archived = args.archived,
                                           .before_id = *before,
                                           .limit = *limit});
  if (!items) return store_failure(items.error());
  auto unread = stores->notify->unread_count(*user);
  if (!unread) return store_failure(unread.error());
  const std::optional<std::int64_t> next_before =
      items->size() == *limit && !items->empty() ? std::optional(items->back().id) : std::nullopt;

  if (args.json) {
    boost::json::array list;
    for (const notify::InboxItem& item : *items) list.push_back(inbox_item_json(item));
    boost::json::object document;
    document["items"] = std::move(list);
    document["next_before"] = json_id(next_before);
    document["unread"] = *unread;
    print_json(out, document);
    return {};
  }
  if (items->empty()) {
    fmt::print(out, "user {} has no {}inbox items{}\n", *user,
               args.archived ? "archived " : (args.unread ? "unread " : ""),
               before->has_value() ? fmt::format(" below id {}", **before) : "");
  } else {
    Table table(
        {{"ID", true}, {"CREATED (UTC)"}, {"KIND"}, {"ORGANIZATION"}, {"STATE"}, {"TITLE"}});
    for (const notify::InboxItem& item : *items) {
      const std::string state = item.archived_at ? "archived"
                                : item.read_at   ? "read"
                                : item.seen_at   ? "seen"
                                                 : "unread";
      table.add({std::to_string(item.id), table_time(item.created_at), item.kind,
                 or_dash(item.organization_id), state, cell(item.title, 60)});
    }
    table.print(out);
  }
  fmt::print(out, "{} unread\n", *unread);
  if (next_before) {
    fmt::print(out, "more: herald notify inbox {} --before {}\n", *user, *next_before);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// herald notify announce

struct AnnounceArgs {
  StoreFlags store;
  std::string organization;
  TextFlag url;
  bool clear = false;
};

Outcome announce(const AnnounceArgs& args, std::FILE* out) {
  auto organization = parse_id("ORG", args.organization, "an organization id");
  if (!organization) return std::unexpected(std::move(organization.error()));
  if (args.url.given() == args.clear) {
    return usage(
        "give either a Discord channel webhook URL (https://discord.com/api/webhooks/ID/TOKEN) or "
        "--clear");
  }
  std::optional<std::string> url;
  if (args.url.given()) {
    if (auto valid = check_url("URL", args.url.value); !valid) return valid;
    url = args.url.value;
  }
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  if (auto stored = stores->notify->set_announcement_channel(*organization, url); !stored) {
    return store_failure(stored.error(), "URL");
  }
  if (url) {
    fmt::print(out, "organization {} announces its tournaments in Discord through {}\n",
               *organization, masked_webhook_url(*url));
  } else {
    fmt::print(out, "organization {} has no Discord announcement channel now\n", *organization);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// herald deliveries list|show|resend

struct DeliveriesListArgs {
  StoreFlags store;
  TextFlag status, channel, organization, user, event, before, limit;
  bool json = false;
};

Outcome deliveries_list(const DeliveriesListArgs& args, std::FILE* out) {
  notify::DeliveryQuery query;
  if (args.status.given()) {
    auto status = parse_status("--status", args.status.value);
    if (!status) return std::unexpected(std::move(status.error()));
    query.status = *status;
  }
  if (args.channel.given()) {
    auto channel = parse_channel("--channel", args.channel.value);
    if (!channel) return std::unexpected(std::move(channel.error()));
    if (*channel == Channel::in_app) {
      return usage(
          "--channel 'in_app': in-app notifications are inbox items, not deliveries; see "
          "'herald notify inbox USER'");
    }
    query.channel = *channel;
  }
  auto organization = optional_id("--org", args.organization, "an organization id");
  if (!organization) return std::unexpected(std::move(organization.error()));
  query.organization_id = *organization;
  auto user = optional_id("--user", args.user, "a user id");
  if (!user) return std::unexpected(std::move(user.error()));
  query.user_id = *user;
  if (args.event.given()) {
    auto id = EventId::parse(args.event.value);
    if (!id) {
      return usage(
          fmt::format("--event '{}': expected an event id (a UUID)", quotable(args.event.value)));
    }
    query.event_id = *id;
  }
  auto before = optional_id("--before", args.before, "a delivery id");
  if (!before) return std::unexpected(std::move(before.error()));
  query.before_id = *before;
  auto limit = parse_limit("--limit", args.limit, 50);
  if (!limit) return std::unexpected(std::move(limit.error()));
  query.limit = *limit;

  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto deliveries = stores->notify->list_deliveries(query);
  if (!deliveries) return store_failure(deliveries.error());
  const std::optional<std::int64_t> next_before =
      deliveries->size() == *limit && !deliveries->empty() ? std::optional(deliveries->back().id)
                                                           : std::nullopt;
  if (args.json) {
    boost::json::array items;
    for (const notify::DeliveryRecord& delivery : *deliveries) {
      items.push_back(delivery_json(delivery));
    }
    boost::json::object document;
    document["items"] = std::move(items);
    document["next_before"] = json_id(next_before);
    print_json(out, document);
    return {};
  }
  if (deliveries->empty()) {
    fmt::print(out, "no deliveries in {} match\n", stores->where);
    return {};
  }
  Table table({{"ID", true},
               {"CREATED (UTC)"},
               {"CHANNEL"},
               {"RECIPIENT"},
               {"KIND"},
               {"STATUS"},
               {"ATTEMPTS", true},
               {"NEXT ATTEMPT (UTC)"},
               {"LAST ERROR"}});
  for (const notify::DeliveryRecord& delivery : *deliveries) {
    table.add({std::to_string(delivery.id), table_time(delivery.created_at),
               std::string(notify::to_string(delivery.channel)), cell(delivery.recipient, 40),
               delivery.kind, std::string(notify::to_string(delivery.status)),
               std::to_string(delivery.attempts),
               waiting(delivery.status) ? table_time(delivery.next_attempt_at) : "-",
               delivery.last_error.empty() ? "-" : cell(delivery.last_error, 50)});
  }
  table.print(out);
  if (next_before) fmt::print(out, "more: add --before {}\n", *next_before);
  return {};
}

struct DeliveryIdArgs {
  StoreFlags store;
  std::string id;
  bool json = false;
};

/// "no delivery 99 in 'herald.db'" for a missing id; the store's message otherwise.
std::unexpected<Failure> delivery_failure(const Error& error, std::int64_t id,
                                          const std::string& where) {
  if (error.code == ErrorCode::not_found) {
    return failed(fmt::format("no delivery {} in {} (see 'herald deliveries list')", id, where));
  }
  return store_failure(error);
}

Outcome deliveries_show(const DeliveryIdArgs& args, std::FILE* out) {
  auto id = parse_id("ID", args.id, "a delivery id");
  if (!id) return std::unexpected(std::move(id.error()));
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto delivery = stores->notify->get_delivery(*id);
  if (!delivery) return delivery_failure(delivery.error(), *id, stores->where);
  auto attempts = stores->notify->list_attempts(*id);
  if (!attempts) return store_failure(attempts.error());
  if (args.json) {
    boost::json::object document = delivery_json(*delivery);
    boost::json::array list;
    for (const notify::DeliveryAttempt& attempt : *attempts) list.push_back(attempt_json(attempt));
    document["attempts"] = std::move(list);
    print_json(out, document);
    return {};
  }
  const notify::DeliveryRecord& d = *delivery;
  fmt::print(out, "delivery {}\n", d.id);
  fmt::print(out, "  status:        {}\n", notify::to_string(d.status));
  fmt::print(out, "  channel:       {}\n", notify::to_string(d.channel));
  fmt::print(out, "  recipient:     {}\n", cell(d.recipient, 200));
  fmt::print(out, "  kind:          {}\n", d.kind);
  fmt::print(out, "  event:         {} (position {})\n", d.event_id.to_string(), d.position);
  fmt::print(out, "  user:          {}\n", or_dash(d.user_id));
  fmt::print(out, "  organization:  {}\n", or_dash(d.organization_id));
  fmt::print(out, "  attempts:      {}\n", d.attempts);
  if (waiting(d.status)) {
    fmt::print(out, "  next attempt:  {}\n", format_timestamp(d.next_attempt_at));
  }
  if (d.last_status_code) fmt::print(out, "  last status:   {}\n", *d.last_status_code);
  if (!d.last_error.empty()) fmt::print(out, "  last error:    {}\n", cell(d.last_error, 500));
  fmt::print(out, "  created:       {}\n", format_timestamp(d.created_at));
  fmt::print(out, "  updated:       {}\n", format_timestamp(d.updated_at));
  if (attempts->empty()) {
    fmt::print(out, "no attempts yet\n");
    return {};
  }
  Table table({{"ATTEMPT", true},
               {"STARTED (UTC)"},
               {"DURATION", true},
               {"OUTCOME"},
               {"CODE", true},
               {"ERROR"}});
  for (const notify::DeliveryAttempt& attempt : *attempts) {
    table.add({std::to_string(attempt.attempt), table_time(attempt.started_at),
               fmt::format("{} ms", attempt.duration_us / 1000),
               std::string(notify::to_string(attempt.outcome)),
               attempt.status_code ? std::to_string(*attempt.status_code) : "-",
               attempt.error.empty() ? "-" : cell(attempt.error, 80)});
  }
  table.print(out);
  return {};
}

Outcome deliveries_resend(const DeliveryIdArgs& args, std::FILE* out) {
  auto id = parse_id("ID", args.id, "a delivery id");
  if (!id) return std::unexpected(std::move(id.error()));
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto resent = stores->notify->resend(*id, herald::now());
  if (!resent) {
    if (resent.error().code == ErrorCode::conflict) {
      auto current = stores->notify->get_delivery(*id);
      if (current) {
        return failed(fmt::format(
            "delivery {} is {}; only a dead or failed delivery is re-sent (nothing changed)", *id,
            notify::to_string(current->status)));
      }
    }
    return delivery_failure(resent.error(), *id, stores->where);
  }
  fmt::print(out,
             "delivery {} ({} to {}) is pending again, due now, after {}; the delivery workers "
             "send it\n",
             resent->id, notify::to_string(resent->channel), cell(resent->recipient, 80),
             plural(static_cast<std::size_t>(resent->attempts), "attempt", "attempts"));
  return {};
}

// ---------------------------------------------------------------------------------------------
// herald webhooks add|list|disable|enable|rotate

struct WebhooksAddArgs {
  StoreFlags store;
  std::string organization;
  std::string url;
  TextFlag types;
  bool json = false;
};

void print_secret(std::FILE* out, const notify::WebhookEndpoint& endpoint, bool json) {
  const std::string secret = endpoint.secrets.empty() ? "" : endpoint.secrets.front().secret;
  if (json) {
    boost::json::object document = endpoint_json(endpoint);
    document["secret"] = secret;
    print_json(out, document);
    return;
  }
  fmt::print(out, "secret: {}\n", secret);
  fmt::print(out,
             "Keep it with the receiver, which checks every request's webhook-signature with it; "
             "herald shows it only now.\n");
}

Outcome webhooks_add(const WebhooksAddArgs& args, std::FILE* out) {
  auto organization = parse_id("--org", args.organization, "an organization id");
  if (!organization) return std::unexpected(std::move(organization.error()));
  if (auto valid = check_url("--url", args.url); !valid) return valid;
  std::vector<std::string> types;
  if (args.types.given()) {
    std::string_view rest = args.types.value;
    while (true) {
      const std::size_t comma = rest.find(',');
      const std::string_view type = rest.substr(0, comma);
      if (type.empty()) {
        return usage(
            fmt::format("--types '{}': expected event types separated by commas, e.g. "
                        "TournamentStartedEvent,MatchCompletedEvent",
                        quotable(args.types.value)));
      }
      if (!domain::platform_catalog().contains(type)) {
        return usage(fmt::format("--types: '{}' is not an event type (see 'herald catalog')",
                                 quotable(type)));
      }
      if (std::ranges::find(types, type) == types.end()) types.emplace_back(type);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto endpoint = stores->notify->create_endpoint(*organization, args.url, types);
  if (!endpoint) return store_failure(endpoint.error(), "--url");
  if (!args.json) {
    fmt::print(out, "created webhook endpoint {} for organization {}: {} ({})\n", endpoint->id,
               endpoint->organization_id, endpoint->url, event_types_text(*endpoint));
  }
  print_secret(out, *endpoint, args.json);
  return {};
}

struct WebhooksListArgs {
  StoreFlags store;
  TextFlag organization;
  bool json = false;
};

Outcome webhooks_list(const WebhooksListArgs& args, std::FILE* out) {
  auto organization = optional_id("--org", args.organization, "an organization id");
  if (!organization) return std::unexpected(std::move(organization.error()));
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto endpoints = stores->notify->list_endpoints(*organization);
  if (!endpoints) return store_failure(endpoints.error());
  if (args.json) {
    boost::json::array items;
    for (const notify::WebhookEndpoint& endpoint : *endpoints) {
      items.push_back(endpoint_json(endpoint));
    }
    boost::json::object document;
    document["items"] = std::move(items);
    print_json(out, document);
    return {};
  }
  if (endpoints->empty()) {
    fmt::print(out,
               "no webhook endpoints{}; register one with 'herald webhooks add --org N --url "
               "URL'\n",
               organization->has_value() ? fmt::format(" for organization {}", **organization)
                                         : std::string());
    return {};
  }
  Table table({{"ID", true},
               {"ORGANIZATION", true},
               {"URL"},
               {"EVENT TYPES"},
               {"ACTIVE"},
               {"FAILURES", true},
               {"SECRET"},
               {"CREATED (UTC)"}});
  for (const notify::WebhookEndpoint& endpoint : *endpoints) {
    table.add({std::to_string(endpoint.id), std::to_string(endpoint.organization_id),
               cell(endpoint.url, 60), cell(event_types_text(endpoint), 50),
               endpoint.active ? "yes" : "no: " + cell(endpoint.disabled_reason, 50),
               std::to_string(endpoint.consecutive_failures), secret_hint(endpoint),
               table_time(endpoint.created_at)});
  }
  table.print(out);
  return {};
}

struct WebhookIdArgs {
  StoreFlags store;
  std::string id;
  TextFlag reason;
  bool json = false;
};

/// "no webhook endpoint 99 in 'herald.db'" for a missing id; the store's message otherwise.
std::unexpected<Failure> endpoint_failure(const Error& error, std::int64_t id,
                                          const std::string& where) {
  if (error.code == ErrorCode::not_found) {
    return failed(
        fmt::format("no webhook endpoint {} in {} (see 'herald webhooks list')", id, where));
  }
  return store_failure(error);
}

Outcome webhooks_set_active(const WebhookIdArgs& args, bool active, std::FILE* out) {
  auto id = parse_id("ID", args.id, "a webhook endpoint id");
  if (!id) return std::unexpected(std::move(id.error()));
  std::string reason;
  if (!active) {
    reason = args.reason.given() ? args.reason.value : "disabled by an operator";
    if (reason.empty() || reason.size() > max_reason_bytes ||
        std::ranges::any_of(
            reason, [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      return usage(fmt::format(
          "--reason '{}': expected 1 to {} bytes of text on one line, without control characters",
          quotable(reason), max_reason_bytes));
    }
  }
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  auto endpoint = stores->notify->set_endpoint_active(*id, active, reason);
  if (!endpoint) return endpoint_failure(endpoint.error(), *id, stores->where);
  if (active) {
    fmt::print(out,
               "webhook endpoint {} ({}) is active again; its failure count is reset; deliveries "
               "that died while it was disabled can be re-sent with 'herald deliveries resend'\n",
               endpoint->id, endpoint->url);
  } else {
    fmt::print(out, "webhook endpoint {} ({}) is disabled: {}\n", endpoint->id, endpoint->url,
               reason);
  }
  return {};
}

Outcome webhooks_rotate(const WebhookIdArgs& args, std::FILE* out) {
  auto id = parse_id("ID", args.id, "a webhook endpoint id");
  if (!id) return std::unexpected(std::move(id.error()));
  auto stores = open_stores(args.store);
  if (!stores) return std::unexpected(std::move(stores.error()));
  const Timestamp now = herald::now();
  auto endpoint = stores->notify->rotate_secret(
      *id, now, std::chrono::duration_cast<std::chrono::seconds>(rotation_overlap));
  if (!endpoint) return endpoint_failure(endpoint.error(), *id, stores->where);
  if (!args.json) {
    fmt::print(out,
               "webhook endpoint {} has a new secret; the previous one also signs until {} "
               "(24 hours), so the receiver can switch meanwhile\n",
               endpoint->id, format_timestamp(now + rotation_overlap));
  }
  print_secret(out, *endpoint, args.json);
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Registration

struct NotifyCommands::Commands {
  struct Leaf {
    CLI::App* app = nullptr;
    std::string name;
    std::function<Outcome(std::FILE*)> run;
  };
  explicit Commands(const notify::NotificationRules& r) : rules(r) {}
  const notify::NotificationRules& rules;
  std::vector<Leaf> leaves;

  KindsArgs kinds;
  PrefsGetArgs prefs_get;
  PrefsSetArgs prefs_set;
  MuteArgs mute;
  MuteArgs unmute;
  EmailArgs email;
  InboxArgs inbox;
  AnnounceArgs announce;
  DeliveriesListArgs deliveries_list;
  DeliveryIdArgs deliveries_show;
  DeliveryIdArgs deliveries_resend;
  WebhooksAddArgs webhooks_add;
  WebhooksListArgs webhooks_list;
  WebhookIdArgs webhooks_disable;
  WebhookIdArgs webhooks_enable;
  WebhookIdArgs webhooks_rotate;
};

namespace {

constexpr std::string_view db_help = "SQLite store (env HERALD_DB; default ./herald.db)";

}  // namespace

NotifyCommands::NotifyCommands(CLI::App& app, const notify::NotificationRules& rules)
    : commands_(std::make_unique<Commands>(rules)) {
  Commands& c = *commands_;
  // A command of the group `parent`; `flags` null for one that needs no store.
  auto leaf = [&](CLI::App* parent, const std::string& name, const std::string& description,
                  StoreFlags* flags, std::function<Outcome(std::FILE*)> run) {
    CLI::App* command = parent->add_subcommand(name, description);
    if (flags != nullptr) add_store_flags(*command, *flags, db_help);
    std::string full = "herald";
    for (const CLI::App* at = command; at->get_parent() != nullptr; at = at->get_parent()) {
      full.insert(6, " " + at->get_name());
    }
    c.leaves.push_back({command, full, std::move(run)});
    return command;
  };
  auto kinds_of = [&c] { return c.rules.kinds(); };

  CLI::App* notify_group = app.add_subcommand(
      "notify", "Notifications: kinds, users' preferences, email addresses and inboxes");
  notify_group->require_subcommand(1);

  CLI::App* kinds_command =
      leaf(notify_group, "kinds", "List the notification kinds, their defaults and channels",
           nullptr, [&c, kinds_of](std::FILE* out) { return kinds(c.kinds, kinds_of(), out); });
  kinds_command->add_flag("--json", c.kinds.json, "One JSON document instead of a table");

  CLI::App* prefs =
      notify_group->add_subcommand("prefs", "A user's notification preferences: get, set");
  prefs->require_subcommand(1);
  CLI::App* prefs_get_command =
      leaf(prefs, "get", "Show a user's rules, muted channels and what they are told",
           &c.prefs_get.store,
           [&c, kinds_of](std::FILE* out) { return prefs_get(c.prefs_get, kinds_of(), out); });
  prefs_get_command->add_option("USER", c.prefs_get.user, "The user's id")->required();
  add_text(prefs_get_command, "--org", c.prefs_get.organization,
           "Show what they are told of this organization (default: of every organization)", "ID");
  prefs_get_command->add_flag("--json", c.prefs_get.json, "One JSON document instead of a table");

  CLI::App* prefs_set_command =
      leaf(prefs, "set", "Turn one kind on or off on one channel, for one organization or all",
           &c.prefs_set.store,
           [&c, kinds_of](std::FILE* out) { return prefs_set(c.prefs_set, kinds_of(), out); });
  prefs_set_command->add_option("USER", c.prefs_set.user, "The user's id")->required();
  prefs_set_command->add_option("--kind", c.prefs_set.kind, "The kind (see 'herald notify kinds')")
      ->type_name("KIND")
      ->required();
  prefs_set_command->add_option("--channel", c.prefs_set.channel, "in_app, discord or email")
      ->type_name("CHANNEL")
      ->required();
  add_text(prefs_set_command, "--org", c.prefs_set.organization,
           "Only for this organization (a rule for one organization beats a rule for all)", "ID");
  prefs_set_command->add_flag("--on", c.prefs_set.on, "Turn it on");
  prefs_set_command->add_flag("--off", c.prefs_set.off, "Turn it off");
  prefs_set_command->footer(
      "Example: herald notify prefs set 42 --kind tournament_started --channel discord --org 7 "
      "--on");

  for (auto [name, description, args, muting] :
       {std::tuple{"mute", "Mute a channel for a user: nothing of theirs goes there", &c.mute,
                   true},
        std::tuple{"unmute", "Lift a user's mute of a channel", &c.unmute, false}}) {
    CLI::App* command = leaf(notify_group, name, description, &args->store,
                             [&c, args, muting, kinds_of](std::FILE* out) {
                               return mute(*args, muting, kinds_of(), out);
                             });
    command->add_option("USER", args->user, "The user's id")->required();
    command->add_option("CHANNEL", args->channel, "in_app, discord or email")->required();
  }

  CLI::App* email_command =
      leaf(notify_group, "email", "Set or clear the address a user's email notifications go to",
           &c.email.store, [&c](std::FILE* out) { return email(c.email, out); });
  email_command->add_option("USER", c.email.user, "The user's id")->required();
  add_text(email_command, "ADDRESS", c.email.address, "The address, e.g. a@example.org", "ADDRESS");
  email_command->add_flag("--clear", c.email.clear, "Remove the user's address");

  CLI::App* inbox_command =
      leaf(notify_group, "inbox", "List a user's inbox, newest first, and the unread count",
           &c.inbox.store, [&c](std::FILE* out) { return inbox(c.inbox, out); });
  inbox_command->add_option("USER", c.inbox.user, "The user's id")->required();
  inbox_command->add_flag("--unread", c.inbox.unread, "Only unread items");
  inbox_command->add_flag("--archived", c.inbox.archived, "Archived items (instead of the others)");
  add_text(inbox_command, "--before", c.inbox.before, "Only items below this id (the next page)",
           "ID");
  add_text(inbox_command, "--limit", c.inbox.limit, "At most N items, 1 to 1000 (default 50)", "N");
  inbox_command->add_flag("--json", c.inbox.json, "One JSON document instead of a table");

  CLI::App* announce_command =
      leaf(notify_group, "announce", "Set or clear an organization's Discord announcement channel",
           &c.announce.store, [&c](std::FILE* out) { return announce(c.announce, out); });
  announce_command->add_option("ORG", c.announce.organization, "The organization's id")->required();
  add_text(announce_command, "URL", c.announce.url,
           "The Discord channel webhook URL, https://discord.com/api/webhooks/ID/TOKEN", "URL");
  announce_command->add_flag("--clear", c.announce.clear, "Remove the announcement channel");

  CLI::App* deliveries =
      app.add_subcommand("deliveries", "The notification delivery queue: list, show, resend");
  deliveries->require_subcommand(1);
  CLI::App* list_command = leaf(
      deliveries, "list", "List deliveries, newest first, with filters", &c.deliveries_list.store,
      [&c](std::FILE* out) { return deliveries_list(c.deliveries_list, out); });
  add_text(list_command, "--status", c.deliveries_list.status,
           "pending, sending, sent, retrying, failed or dead", "STATUS");
  add_text(list_command, "--channel", c.deliveries_list.channel,
           "discord, email, webhook or discord_channel", "CHANNEL");
  add_text(list_command, "--org", c.deliveries_list.organization, "Only this organization's", "ID");
  add_text(list_command, "--user", c.deliveries_list.user, "Only this user's", "ID");
  add_text(list_command, "--event", c.deliveries_list.event, "Only this event's", "EVENT_ID");
  add_text(list_command, "--before", c.deliveries_list.before,
           "Only deliveries below this id (the next page)", "ID");
  add_text(list_command, "--limit", c.deliveries_list.limit,
           "At most N deliveries, 1 to 1000 (default 50)", "N");
  list_command->add_flag("--json", c.deliveries_list.json, "One JSON document instead of a table");
  list_command->footer("Example: herald deliveries list --status dead --channel email");

  CLI::App* show_command =
      leaf(deliveries, "show", "Show one delivery and its attempts", &c.deliveries_show.store,
           [&c](std::FILE* out) { return deliveries_show(c.deliveries_show, out); });
  show_command->add_option("ID", c.deliveries_show.id, "The delivery's id")->required();
  show_command->add_flag("--json", c.deliveries_show.json, "One JSON document");

  CLI::App* resend_command =
      leaf(deliveries, "resend", "Make a dead or failed delivery pending again, due now",
           &c.deliveries_resend.store,
           [&c](std::FILE* out) { return deliveries_resend(c.deliveries_resend, out); });
  resend_command->add_option("ID", c.deliveries_resend.id, "The delivery's id")->required();

  CLI::App* webhooks = app.add_subcommand(
      "webhooks", "Organizations' webhook endpoints: add, list, disable, enable, rotate");
  webhooks->require_subcommand(1);
  CLI::App* add_command = leaf(
      webhooks, "add", "Register an endpoint and print its signing secret (shown only here)",
      &c.webhooks_add.store, [&c](std::FILE* out) { return webhooks_add(c.webhooks_add, out); });
  add_command->add_option("--org", c.webhooks_add.organization, "The organization's id")
      ->type_name("ID")
      ->required();
  add_command->add_option("--url", c.webhooks_add.url, "Where to POST, an http(s) URL")
      ->type_name("URL")
      ->required();
  add_text(add_command, "--types", c.webhooks_add.types,
           "Only these event types, comma-separated (default: every type)", "TYPE,...");
  add_command->add_flag("--json", c.webhooks_add.json, "One JSON document, with the secret");
  add_command->footer(
      "Example: herald webhooks add --org 7 --url https://example.org/hooks/herald --types "
      "TournamentStartedEvent,TournamentEndedEvent");

  CLI::App* webhooks_list_command =
      leaf(webhooks, "list", "List webhook endpoints, active or not", &c.webhooks_list.store,
           [&c](std::FILE* out) { return webhooks_list(c.webhooks_list, out); });
  add_text(webhooks_list_command, "--org", c.webhooks_list.organization, "Only this organization's",
           "ID");
  webhooks_list_command->add_flag("--json", c.webhooks_list.json,
                                  "One JSON document instead of a table");

  CLI::App* disable_command =
      leaf(webhooks, "disable", "Stop delivering to an endpoint", &c.webhooks_disable.store,
           [&c](std::FILE* out) { return webhooks_set_active(c.webhooks_disable, false, out); });
  disable_command->add_option("ID", c.webhooks_disable.id, "The endpoint's id")->required();
  add_text(disable_command, "--reason", c.webhooks_disable.reason,
           "Why (shown in listings; default 'disabled by an operator')", "TEXT");
  CLI::App* enable_command =
      leaf(webhooks, "enable", "Deliver to an endpoint again and reset its failure count",
           &c.webhooks_enable.store,
           [&c](std::FILE* out) { return webhooks_set_active(c.webhooks_enable, true, out); });
  enable_command->add_option("ID", c.webhooks_enable.id, "The endpoint's id")->required();

  CLI::App* rotate_command =
      leaf(webhooks, "rotate", "Give an endpoint a new secret; the old one signs for 24 more hours",
           &c.webhooks_rotate.store,
           [&c](std::FILE* out) { return webhooks_rotate(c.webhooks_rotate, out); });
  rotate_command->add_option("ID", c.webhooks_rotate.id, "The endpoint's id")->required();
  rotate_command->add_flag("--json", c.webhooks_rotate.json, "One JSON document, with the secret");
}

NotifyCommands::~NotifyCommands() = default;

bool NotifyCommands::parsed() const {
  return std::ranges::any_of(commands_->leaves,
                             [](const Commands::Leaf& leaf) { return leaf.app->parsed(); });
}

int NotifyCommands::run(std::FILE* out, std::FILE* err) {
  for (const Commands::Leaf& leaf : commands_->leaves) {
    if (!leaf.app->parsed()) continue;
    const Outcome outcome = leaf.run(out);
    if (outcome) return 0;
    std::string message = outcome.error().message;
    if (outcome.error().status == exit_usage) {
      message += fmt::format(" (run '{} --help' for usage)", leaf.name);
    }
    std::fflush(out);
    fmt::print(err, "{}: {}\n", leaf.name, message);
    return outcome.error().status;
  }
  return 0;
}

}  // namespace herald::server
