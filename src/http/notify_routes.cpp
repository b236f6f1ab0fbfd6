// The notification endpoints (docs/http-api.md, "Notifications").
//
// Authorization: the kinds are open to any valid token. A user's inbox, preferences and email
// are open to a token bound to that user (whatever its scopes: the binding confines it) and to
// unbound `admin` and `notify` tokens; deliveries, webhook endpoints and announcement channels
// need an unbound `admin` or `notify` token, and one bound to an organization sees only that
// organization's. Every other endpoint refuses a user-bound token (routes.cpp).
//
// Bodies are JSON objects; a member the endpoint does not know is refused (400 naming it), so a
// misspelt member never passes silently.

#include "notify_routes.hpp"

#include <fmt/core.h>
#include <boost/asio/post.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <initializer_list>
#include <set>
#include <span>
#include <tuple>

#include "herald/authenticator.hpp"
#include "herald/notify/notification.hpp"
#include "herald/notify/notification_rules.hpp"
#include "herald/notify/notification_store.hpp"

namespace herald::http::detail {
namespace {

namespace json = boost::json;
using notify::Channel;

/// How long a rotated webhook secret keeps signing.
constexpr std::chrono::hours secret_overlap{24};
/// The most rules one preferences document may hold, and ids one mark may name.
constexpr std::size_t max_rules = 1000;
constexpr std::size_t max_mark_ids = 1000;
/// The most event types one webhook endpoint may name.
constexpr std::size_t max_event_types = 256;
/// The largest id accepted in a path, a parameter or a body (JSON's exact integers).
constexpr std::int64_t max_id = (std::int64_t{1} << 53) - 1;

ApiError error(bhttp::status status, std::string code, std::string message,
               std::string field = {}) {
  return ApiError{.status = status,
                  .code = std::move(code),
                  .message = std::move(message),
                  .field = std::move(field)};
}

ApiError bad_body(std::string field, std::string message) {
  return error(bhttp::status::bad_request, "invalid_body",
               fmt::format("field '{}': {}", field, message), std::move(field));
}

/// User input for a message: cut, with control characters shown as '?'.
std::string quotable(std::string_view text, std::size_t most = 64) {
  std::string out;
  for (char c : text.substr(0, most)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (text.size() > most) out += "…";
  return out;
}

std::string_view kind_of(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "value";
}

json::value optional_time(const std::optional<Timestamp>& t) {
  return t ? json::value(format_timestamp(*t)) : json::value(nullptr);
}

json::value optional_int(const std::optional<std::int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

// --- the request being handled ---

class NotifyCall {
 public:
  explicit NotifyCall(RouteContext context) : context_(std::move(context)) {}

  ServerState& state() { return context_.state; }
  const Request& request() { return context_.request; }
  notify::NotificationStore& store() { return *context_.state.services().notifications; }
  const notify::NotificationRules& rules() { return *context_.state.services().notification_rules; }

  void set_route(std::string route) { route_ = std::move(route); }
  void reply(Response response) { context_.respond(std::move(response), route_); }
  void fail(const ApiError& api) { reply(error_response(api)); }
  void reply_json(bhttp::status status, const json::value& body) {
    reply(json_response(status, json::serialize(body)));
  }
  void stream(StreamRequest request) { context_.stream(std::move(request)); }

  /// Runs `work` on the blocking pool; it answers through this call (copied into it).
  template <class Work>
  void off_loop(Work work) {
    net::post(state().blocking(), [call = *this, work = std::move(work)]() mutable {
      try {
        work(call);
      } catch (const std::exception& failure) {
        call.fail(error(bhttp::status::internal_server_error, "internal",
                        fmt::format("internal error: {}", failure.what())));
      }
    });
  }

 private:
  RouteContext context_;
  std::string route_ = "unmatched";
};

// --- authorization ---

/// A token bound to a user is confined to that user whatever its scopes; an unbound one manages
/// notifications with `admin` or `notify`.
bool manages_notifications(const ApiToken& token) {
  return !token.user_id && (allows(token, Scope::admin) || allows(token, Scope::notify));
}

std::optional<ApiError> require_manager(const ApiToken& token) {
  if (manages_notifications(token)) return std::nullopt;
  if (token.user_id) {
    return error(bhttp::status::forbidden, "forbidden",
                 fmt::format("token '{}' is bound to user {} and may use only that user's "
                             "inbox, preferences and email",
                             token.name, *token.user_id));
  }
  return error(bhttp::status::forbidden, "forbidden",
               fmt::format("token '{}' lacks the 'admin' or 'notify' scope this endpoint needs",
                           token.name));
}

std::optional<ApiError> require_user(const ApiToken& token, std::int64_t user_id) {
  if (token.user_id) {
    if (*token.user_id == user_id) return std::nullopt;
    return error(bhttp::status::forbidden, "forbidden",
                 fmt::format("token '{}' is bound to user {} and may not act for user {}",
                             token.name, *token.user_id, user_id),
                 "user_id");
  }
  if (manages_notifications(token)) return std::nullopt;
  return error(bhttp::status::forbidden, "forbidden",
               fmt::format("token '{}' is bound to no user and lacks the 'admin' or 'notify' "
                           "scope; a user's inbox needs a token bound to that user",
                           token.name));
}

/// An organization-bound token's confinement of an organization filter or target.
std::optional<ApiError> confine(const ApiToken& token, std::optional<std::int64_t>& organization,
                                std::string_view field) {
  if (!token.organization_id) return std::nullopt;
  if (organization && *organization != *token.organization_id) {
    return error(bhttp::status::forbidden, "forbidden",
                 fmt::format("token '{}' is bound to organization {} and may not act for "
                             "organization {}",
                             token.name, *token.organization_id, *organization),
                 std::string(field));
  }
  organization = token.organization_id;
  return std::nullopt;
}

/// Whether `token` may see something of `organization` (404 otherwise, so that nothing leaks).
bool may_touch(const ApiToken& token, std::optional<std::int64_t> organization) {
  return may_see(token, organization);
}

// --- input ---

std::expected<std::int64_t, ApiError> path_id(const std::string& text, std::string_view field) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < 1 ||
      value > max_id) {
    return std::unexpected(
        error(bhttp::status::bad_request, "invalid_parameter",
              fmt::format("{} '{}' in the path: expected a whole number from 1 to {}", field,
                          quotable(text), max_id),
              std::string(field)));
  }
  return value;
}

std::expected<bool, ApiError> take_bool(QueryParams& params, std::string_view key) {
  auto text = params.take(key);
  if (!text) return std::unexpected(std::move(text.error()));
  if (!*text || **text == "false") return false;
  if (**text == "true" || text->value().empty()) return true;
  return std::unexpected(
      error(bhttp::status::bad_request, "invalid_parameter",
            fmt::format("parameter '{}': expected true or false, got '{}'", key, quotable(**text)),
            std::string(key)));
}

/// The request body as a JSON object whose members are all among `allowed`.
std::expected<json::object, ApiError> body_object(const Request& request,
                                                  std::initializer_list<std::string_view> allowed) {
  const std::string& body = request.body();
  if (body.empty()) {
    return std::unexpected(error(bhttp::status::bad_request, "invalid_json",
                                 "the request body is empty; send a JSON object"));
  }
  json::parse_options options;
  options.max_depth = 16;
  boost::system::error_code ec;
  json::value value = json::parse(body, ec, {}, options);
  if (ec) {
    return std::unexpected(error(bhttp::status::bad_request, "invalid_json",
                                 fmt::format("the request body is not JSON: {}", ec.message())));
  }
  if (!value.is_object()) {
    return std::unexpected(
        error(bhttp::status::bad_request, "invalid_json",
              fmt::format("the request body must be a JSON object, got {}", kind_of(value))));
  }
  for (const auto& member : value.as_object()) {
    const std::string_view key = member.key();
    if (std::ranges::find(allowed, key) == allowed.end()) {
      std::string known;
      for (std::string_view name : allowed)
        known += (known.empty() ? "" : ", ") + std::string(name);
      return std::unexpected(bad_body(quotable(key), "unknown member; expected " + known));
    }
  }
  return std::move(value.as_object());
}

std::expected<std::int64_t, ApiError> json_id(const json::value& value, const std::string& field) {
  if (value.is_int64() && value.as_int64() >= 1 && value.as_int64() <= max_id) {
    return value.as_int64();
  }
  if (value.is_number()) {
    return std::unexpected(
        bad_body(field, fmt::format("expected a whole number from 1 to {}", max_id)));
  }
  return std::unexpected(bad_body(field, fmt::format("expected a number, got {}", kind_of(value))));
}

std::expected<std::optional<std::int64_t>, ApiError> json_optional_id(const json::object& object,
                                                                      std::string_view key,
                                                                      const std::string& field) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) return std::nullopt;
  auto id = json_id(*value, field);
  if (!id) return std::unexpected(std::move(id.error()));
  return *id;
}

std::expected<std::string, ApiError> json_string(const json::value& value, const std::string& field,
                                                 std::size_t most) {
  if (!value.is_string()) {
    return std::unexpected(
        bad_body(field, fmt::format("expected a string, got {}", kind_of(value))));
  }
  const json::string& text = value.as_string();
  if (text.size() > most) {
    return std::unexpected(
        bad_body(field, fmt::format("{} bytes long; at most {}", text.size(), most)));
  }
  return std::string(text);
}

std::expected<Channel, ApiError> json_channel(const json::value& value, const std::string& field) {
  auto name = json_string(value, field, 64);
  if (!name) return std::unexpected(std::move(name.error()));
  auto channel = notify::parse_channel(*name);
  if (!channel) {
    return std::unexpected(bad_body(
        field, fmt::format("unknown channel '{}'; expected in_app, discord, email, webhook or "
                           "discord_channel",
                           quotable(*name))));
  }
  return *channel;
}

/// An http(s) URL of at most 2048 bytes without spaces or control characters.
std::expected<std::string, ApiError> json_url(const json::value& value, const std::string& field) {
  auto url = json_string(value, field, 2048);
  if (!url) return url;
  const bool scheme = url->starts_with("https://") || url->starts_with("http://");
  const bool clean = std::ranges::none_of(
      *url, [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
  if (!scheme || !clean || url->size() <= std::string_view("https://").size()) {
    return std::unexpected(
        bad_body(field, fmt::format("'{}' is not an http(s) URL without spaces", quotable(*url))));
  }
  return url;
}

/// A store error as the API reports it; `invalid_argument` keeps the store's field.
ApiError store_error(const Error& failure) { return to_api_error(failure); }

// --- JSON of the notification types ---

json::object kind_json(const notify::KindInfo& kind) {
  json::array channels;
  for (Channel channel : kind.default_channels) channels.emplace_back(notify::to_string(channel));
  return json::object{{"name", kind.name},
                      {"description", kind.description},
                      {"critical", kind.critical},
                      {"default_channels", std::move(channels)}};
}

json::object preferences_json(const notify::UserPreferences& preferences) {
  json::array rules;
  for (const notify::PreferenceRule& rule : preferences.rules) {
    rules.push_back(json::object{{"kind", rule.kind},
                                 {"channel", notify::to_string(rule.channel)},
                                 {"organization_id", optional_int(rule.organization_id)},
                                 {"enabled", rule.enabled}});
  }
  json::array muted;
  for (Channel channel : preferences.muted) muted.emplace_back(notify::to_string(channel));
  return json::object{
      {"user_id", preferences.user_id}, {"rules", std::move(rules)}, {"muted", std::move(muted)}};
}

json::object inbox_item_json(const notify::InboxItem& item) {
  return json::object{{"id", item.id},
                      {"kind", item.kind},
                      {"title", item.title},
                      {"body", item.body},
                      {"link", item.link},
                      {"event_id", item.event_id.to_string()},
                      {"organization_id", optional_int(item.organization_id)},
                      {"created_at", format_timestamp(item.created_at)},
                      {"seen_at", optional_time(item.seen_at)},
                      {"read_at", optional_time(item.read_at)},
                      {"archived_at", optional_time(item.archived_at)}};
}

json::object delivery_json(const notify::DeliveryRecord& delivery) {
  return json::object{
      {"id", delivery.id},
      {"event_id", delivery.event_id.to_string()},
      {"position", delivery.position},
      {"channel", notify::to_string(delivery.channel)},
      {"recipient", delivery.recipient},
      {"user_id", optional_int(delivery.user_id)},
      {"organization_id", optional_int(delivery.organization_id)},
      {"kind", delivery.kind},
      {"status", notify::to_string(delivery.status)},
      {"attempts", delivery.attempts},
      {"next_attempt_at", format_timestamp(delivery.next_attempt_at)},
      {"last_error", delivery.last_error},
      {"last_status_code",
       delivery.last_status_code ? json::value(*delivery.last_status_code) : json::value(nullptr)},
      {"created_at", format_timestamp(delivery.created_at)},
      {"updated_at", format_timestamp(delivery.updated_at)}};
}

json::object attempt_json(const notify::DeliveryAttempt& attempt) {
  return json::object{{"attempt", attempt.attempt},
                      {"started_at", format_timestamp(attempt.started_at)},
                      {"duration_us", attempt.duration_us},
                      {"outcome", notify::to_string(attempt.outcome)},
                      {"status_code", attempt.status_code ? json::value(*attempt.status_code)
                                                          : json::value(nullptr)},
                      {"error", attempt.error}};
}

/// The start of the newest secret, enough to tell secrets apart and not enough to use one.
std::string secret_hint(const notify::WebhookEndpoint& endpoint) {
  if (endpoint.secrets.empty()) return {};
  const std::string& secret = endpoint.secrets.front().secret;
  constexpr std::size_t shown = std::string_view("whsec_").size() + 4;
  return secret.substr(0, std::min(shown, secret.size())) + "…";
}

json::object endpoint_json(const notify::WebhookEndpoint& endpoint) {
  json::array types;
  for (const std::string& type : endpoint.event_types) types.emplace_back(type);
  return json::object{{"id", endpoint.id},
                      {"organization_id", endpoint.organization_id},
                      {"url", endpoint.url},
                      {"event_types", std::move(types)},
                      {"active", endpoint.active},
                      {"disabled_reason", endpoint.disabled_reason},
                      {"consecutive_failures", endpoint.consecutive_failures},
                      {"created_at", format_timestamp(endpoint.created_at)},
                      {"secret_hint", secret_hint(endpoint)}};
}

json::object endpoint_with_secret(const notify::WebhookEndpoint& endpoint) {
  json::object out = endpoint_json(endpoint);
  out["secret"] = endpoint.secrets.empty() ? std::string() : endpoint.secrets.front().secret;
  return out;
}

// --- kinds ---

void get_kinds(NotifyCall& call) {
  json::array kinds;
  for (const notify::KindInfo& kind : call.rules().kinds()) kinds.push_back(kind_json(kind));
  json::array channels;
  for (Channel channel : notify::all_channels) channels.emplace_back(notify::to_string(channel));
  call.reply_json(bhttp::status::ok,
                  json::object{{"kinds", std::move(kinds)}, {"channels", std::move(channels)}});
}

// --- preferences and email ---

void get_preferences(NotifyCall& call, std::int64_t user_id) {
  call.off_loop([user_id](NotifyCall& job) {
    auto preferences = job.store().preferences(user_id);
    if (!preferences) return job.fail(store_error(preferences.error()));
    preferences->user_id = user_id;
    job.reply_json(bhttp::status::ok, preferences_json(*preferences));
  });
}

/// The preferences in a PUT body, checked against the rules' kinds.
std::expected<notify::UserPreferences, ApiError> parse_preferences(
    const json::object& body, std::int64_t user_id, std::span<const notify::KindInfo> kinds) {
  notify::UserPreferences preferences{.user_id = user_id, .rules = {}, .muted = {}};
  auto given_user = json_optional_id(body, "user_id", "user_id");
  if (!given_user) return std::unexpected(std::move(given_user.error()));
  if (*given_user && **given_user != user_id) {
    return std::unexpected(bad_body(
        "user_id", fmt::format("{} does not match user {} of the path", **given_user, user_id)));
  }
  const json::value* rules = body.if_contains("rules");
  if (rules == nullptr) return std::unexpected(bad_body("rules", "missing; expected an array"));
  if (!rules->is_array()) {
    return std::unexpected(
        bad_body("rules", fmt::format("expected an array, got {}", kind_of(*rules))));
  }
  if (rules->as_array().size() > max_rules) {
    return std::unexpected(bad_body(
        "rules", fmt::format("{} rules; at most {}", rules->as_array().size(), max_rules)));
  }
  std::set<std::tuple<std::string, Channel, std::optional<std::int64_t>>> seen;
  std::size_t i = 0;
  for (const json::value& item : rules->as_array()) {
    const std::string at = fmt::format("rules[{}]", i++);
    if (!item.is_object()) {
      return std::unexpected(
          bad_body(at, fmt::format("expected an object, got {}", kind_of(item))));
    }
    const json::object& rule = item.as_object();
    for (const auto& member : rule) {
      const std::string_view key = member.key();
      if (key != "kind" && key != "channel" && key != "organization_id" && key != "enabled") {
        return std::unexpected(bad_body(at + "." + quotable(key),
                                        "unknown member; expected kind, channel, "
                                        "organization_id, enabled"));
      }
    }
    notify::PreferenceRule parsed{.user_id = user_id};
    const json::value* kind = rule.if_contains("kind");
    if (kind == nullptr) return std::unexpected(bad_body(at + ".kind", "missing"));
    auto name = json_string(*kind, at + ".kind", 64);
    if (!name) return std::unexpected(std::move(name.error()));
    const auto known = std::ranges::find(kinds, *name, &notify::KindInfo::name);
    if (known == kinds.end()) {
      return std::unexpected(bad_body(
          at + ".kind", fmt::format("unknown kind '{}'; GET /api/v1/notification-kinds lists them",
                                    quotable(*name))));
    }
    parsed.kind = std::move(*name);
    const json::value* channel = rule.if_contains("channel");
    if (channel == nullptr) return std::unexpected(bad_body(at + ".channel", "missing"));
    auto parsed_channel = json_channel(*channel, at + ".channel");
    if (!parsed_channel) return std::unexpected(std::move(parsed_channel.error()));
    parsed.channel = *parsed_channel;
    auto organization = json_optional_id(rule, "organization_id", at + ".organization_id");
    if (!organization) return std::unexpected(std::move(organization.error()));
    parsed.organization_id = *organization;
    const json::value* enabled = rule.if_contains("enabled");
    if (enabled == nullptr) return std::unexpected(bad_body(at + ".enabled", "missing"));
    if (!enabled->is_bool()) {
      return std::unexpected(bad_body(
          at + ".enabled", fmt::format("expected true or false, got {}", kind_of(*enabled))));
    }
    parsed.enabled = enabled->as_bool();
    if (known->critical && parsed.channel == Channel::in_app && !parsed.enabled) {
      return std::unexpected(bad_body(
          at + ".enabled",
          fmt::format("'{}' is critical and cannot be turned off in the inbox", parsed.kind)));
    }
    if (!seen.emplace(parsed.kind, parsed.channel, parsed.organization_id).second) {
      return std::unexpected(
          bad_body(at, "repeats the kind, channel and organization of an earlier rule"));
    }
    preferences.rules.push_back(std::move(parsed));
  }
  if (const json::value* muted = body.if_contains("muted"); muted != nullptr && !muted->is_null()) {
    if (!muted->is_array()) {
      return std::unexpected(
          bad_body("muted", fmt::format("expected an array, got {}", kind_of(*muted))));
    }
    if (muted->as_array().size() > std::size(notify::all_channels)) {
      return std::unexpected(bad_body("muted", "more channels than there are"));
    }
    std::size_t j = 0;
    for (const json::value& item : muted->as_array()) {
      auto channel = json_channel(item, fmt::format("muted[{}]", j++));
      if (!channel) return std::unexpected(std::move(channel.error()));
      if (std::ranges::find(preferences.muted, *channel) == preferences.muted.end()) {
        preferences.muted.push_back(*channel);
      }
    }
  }
  return preferences;
}

void put_preferences(NotifyCall& call, std::int64_t user_id) {
  auto body = body_object(call.request(), {"user_id", "rules", "muted"});
  if (!body) return call.fail(body.error());
  auto preferences = parse_preferences(*body, user_id, call.rules().kinds());
  if (!preferences) return call.fail(preferences.error());
  call.off_loop([preferences = std::move(*preferences)](NotifyCall& job) {
    auto stored = job.store().set_preferences(preferences, job.rules().kinds());
    if (!stored) return job.fail(store_error(stored.error()));
    auto now_stored = job.store().preferences(preferences.user_id);
    if (!now_stored) return job.fail(store_error(now_stored.error()));
    now_stored->user_id = preferences.user_id;
    job.reply_json(bhttp::status::ok, preferences_json(*now_stored));
  });
}

void put_email(NotifyCall& call, std::int64_t user_id) {
  auto body = body_object(call.request(), {"email"});
  if (!body) return call.fail(body.error());
  const json::value* email = body->if_contains("email");
  if (email == nullptr) {
    return call.fail(bad_body("email", "missing; expected an address or null to clear it"));
  }
  std::optional<std::string> address;
  if (!email->is_null()) {
    auto text = json_string(*email, "email", 254);
    if (!text) return call.fail(text.error());
    address = std::move(*text);
  }
  call.off_loop([user_id, address = std::move(address)](NotifyCall& job) {
    auto profile = job.store().set_email(user_id, address);
    if (!profile) return job.fail(store_error(profile.error()));
    job.reply_json(bhttp::status::ok,
                   json::object{{"user_id", user_id},
                                {"email", profile->email ? json::value(*profile->email)
                                                         : json::value(nullptr)}});
  });
}

// --- the inbox ---

void get_inbox(NotifyCall& call, std::int64_t user_id, QueryParams& params) {
  notify::InboxQuery query{.user_id = user_id};
  auto unread = take_bool(params, "unread");
  if (!unread) return call.fail(unread.error());
  auto archived = take_bool(params, "archived");
  if (!archived) return call.fail(archived.error());
  auto before = params.take_integer("before", 1, max_id);
  if (!before) return call.fail(before.error());
  auto limit = params.take_integer("limit", 1, static_cast<std::int64_t>(max_page_size));
  if (!limit) return call.fail(limit.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  query.unread_only = *unread;
  query.archived = *archived;
  query.before_id = *before;
  if (*limit) query.limit = static_cast<std::size_t>(**limit);
  call.off_loop([query](NotifyCall& job) {
    auto items = job.store().list_inbox(query);
    if (!items) return job.fail(store_error(items.error()));
    auto unread_count = job.store().unread_count(query.user_id);
    if (!unread_count) return job.fail(store_error(unread_count.error()));
    json::array out;
    for (const notify::InboxItem& item : *items) out.push_back(inbox_item_json(item));
    const bool full = items->size() == query.limit && !items->empty();
    job.reply_json(
        bhttp::status::ok,
        json::object{{"items", std::move(out)},
                     {"next_before", full ? json::value(items->back().id) : json::value(nullptr)},
                     {"unread", *unread_count}});
  });
}

void get_unread_count(NotifyCall& call, std::int64_t user_id) {
  call.off_loop([user_id](NotifyCall& job) {
    auto unread = job.store().unread_count(user_id);
    if (!unread) return job.fail(store_error(unread.error()));
    job.reply_json(bhttp::status::ok, json::object{{"unread", *unread}});
  });
}

std::optional<notify::InboxMark> parse_mark(std::string_view name) {
  using notify::InboxMark;
  for (auto [mark, text] :
       {std::pair{InboxMark::seen, "seen"}, std::pair{InboxMark::read, "read"},
        std::pair{InboxMark::unread, "unread"}, std::pair{InboxMark::archived, "archived"},
        std::pair{InboxMark::unarchived, "unarchived"}}) {
    if (name == text) return mark;
  }
  return std::nullopt;
}

void post_mark(NotifyCall& call, std::int64_t user_id) {
  auto body = body_object(call.request(), {"ids", "mark"});
  if (!body) return call.fail(body.error());
  const json::value* mark_value = body->if_contains("mark");
  if (mark_value == nullptr) {
    return call.fail(bad_body("mark",
                              "missing; expected seen, read, unread, archived or "
                              "unarchived"));
  }
  auto mark_name = json_string(*mark_value, "mark", 32);
  if (!mark_name) return call.fail(mark_name.error());
  const auto mark = parse_mark(*mark_name);
  if (!mark) {
    return call.fail(bad_body("mark", fmt::format("unknown mark '{}'; expected seen, read, "
                                                  "unread, archived or unarchived",
                                                  quotable(*mark_name))));
  }
  std::vector<std::int64_t> ids;
  if (const json::value* given = body->if_contains("ids"); given != nullptr && !given->is_null()) {
    if (!given->is_array()) {
      return call.fail(bad_body("ids", fmt::format("expected an array, got {}", kind_of(*given))));
    }
    const json::array& array = given->as_array();
    if (array.empty()) {
      // The store marks everything for no ids; an empty list from a client means nothing.
      return call.fail(bad_body("ids", "empty; omit ids to mark every item of the user"));
    }
    if (array.size() > max_mark_ids) {
      return call.fail(
          bad_body("ids", fmt::format("{} ids; at most {}", array.size(), max_mark_ids)));
    }
    for (std::size_t i = 0; i < array.size(); ++i) {
      auto id = json_id(array[i], fmt::format("ids[{}]", i));
      if (!id) return call.fail(id.error());
      ids.push_back(*id);
    }
    std::ranges::sort(ids);
    ids.erase(std::ranges::unique(ids).begin(), ids.end());
  }
  call.off_loop([user_id, ids = std::move(ids), mark = *mark](NotifyCall& job) {
    auto changed = job.store().mark_inbox(user_id, ids, mark, herald::now());
    if (!changed) {
      ApiError api = store_error(changed.error());
      if (changed.error().code == ErrorCode::not_found && api.field.empty()) api.field = "ids";
      return job.fail(api);
    }
    auto unread = job.store().unread_count(user_id);
    if (!unread) return job.fail(store_error(unread.error()));
    job.reply_json(bhttp::status::ok, json::object{{"changed", *changed}, {"unread", *unread}});
  });
}

void get_inbox_stream(NotifyCall& call, std::int64_t user_id, QueryParams& params) {
  auto after = params.take_integer("after", 0, max_id);
  if (!after) return call.fail(after.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  std::optional<std::int64_t> resume = *after;
  // The SSE spec's reconnection: the browser sends the last id it saw (section 9.2.4).
  if (const auto last = call.request().find("Last-Event-ID"); last != call.request().end()) {
    const std::string_view text = last->value();
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || id < 0 ||
        id > max_id) {
      return call.fail(error(bhttp::status::bad_request, "invalid_parameter",
                             "Last-Event-ID must be an inbox item id (a whole number) from an "
                             "earlier stream",
                             "Last-Event-ID"));
    }
    if (!resume || id > *resume) resume = id;
  }
  StreamRequest request{.filter = {},
                        .resume_after = resume,
                        .request_id = {},
                        .keep_alive = call.request().keep_alive(),
                        .version = call.request().version(),
                        .inbox_user = user_id};
  if (resume) return call.stream(std::move(request));
  // Live only: from the newest item of any user, which is at or past this user's newest.
  call.off_loop([request = std::move(request)](NotifyCall& job) mutable {
    auto head = job.store().inbox_head();
    if (!head) return job.fail(store_error(head.error()));
    request.resume_after = *head;
    job.stream(std::move(request));
  });
}

// --- deliveries ---

void get_deliveries(NotifyCall& call, const ApiToken& token, QueryParams& params) {
  notify::DeliveryQuery query;
  auto status = params.take("status");
  if (!status) return call.fail(status.error());
  if (*status) {
    query.status = notify::parse_delivery_status(**status);
    if (!query.status) {
      return call.fail(error(bhttp::status::bad_request, "invalid_parameter",
                             fmt::format("parameter 'status': unknown status '{}'; expected "
                                         "pending, sending, sent, retrying, failed or dead",
                                         quotable(**status)),
                             "status"));
    }
  }
  auto channel = params.take("channel");
  if (!channel) return call.fail(channel.error());
  if (*channel) {
    query.channel = notify::parse_channel(**channel);
    if (!query.channel) {
      return call.fail(error(bhttp::status::bad_request, "invalid_parameter",
                             fmt::format("parameter 'channel': unknown channel '{}'; expected "
                                         "in_app, discord, email, webhook or discord_channel",
                                         quotable(**channel)),
                             "channel"));
    }
  }
  auto organization = params.take_integer("organization_id", 1, max_id);
  if (!organization) return call.fail(organization.error());
  query.organization_id = *organization;
  auto user = params.take_integer("user_id", 1, max_id);
  if (!user) return call.fail(user.error());
  query.user_id = *user;
  auto event = params.take("event_id");
  if (!event) return call.fail(event.error());
  if (*event) {
    auto id = EventId::parse(**event);
    if (!id) {
      return call.fail(error(bhttp::status::bad_request, "invalid_parameter",
                             "parameter 'event_id': expected a UUID such as "
                             "0193c1a2-7b4e-7c3d-9f00-1a2b3c4d5e6f",
                             "event_id"));
    }
    query.event_id = *id;
  }
  auto before = params.take_integer("before", 1, max_id);
  if (!before) return call.fail(before.error());
  query.before_id = *before;
  auto limit = params.take_integer("limit", 1, static_cast<std::int64_t>(max_page_size));
  if (!limit) return call.fail(limit.error());
  if (*limit) query.limit = static_cast<std::size_t>(**limit);
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  if (auto refused = confine(token, query.organization_id, "organization_id")) {
    return call.fail(*refused);
  }
  call.off_loop([query](NotifyCall& job) {
    auto deliveries = job.store().list_deliveries(query);
    if (!deliveries) return job.fail(store_error(deliveries.error()));
    json::array items;
    for (const notify::DeliveryRecord& delivery : *deliveries) {
      items.push_back(delivery_json(delivery));
    }
    const bool full = deliveries->size() == query.limit && !deliveries->empty();
    job.reply_json(bhttp::status::ok,
                   json::object{{"items", std::move(items)},
                                {"next_before", full ? json::value(deliveries->back().id)
                                                     : json::value(nullptr)}});
  });
}

void get_delivery_summary(NotifyCall& call, const ApiToken& token) {
  if (token.organization_id) {
    return call.fail(error(bhttp::status::forbidden, "forbidden",
                           fmt::format("token '{}' is bound to an organization; the summary of "
                                       "every delivery needs an unbound token",
                                       token.name)));
  }
  call.off_loop([](NotifyCall& job) {
    auto counts = job.store().count_deliveries();
    if (!counts) return job.fail(store_error(counts.error()));
    json::array items;
    for (const notify::DeliveryCount& count : *counts) {
      items.push_back(json::object{{"channel", notify::to_string(count.channel)},
                                   {"status", notify::to_string(count.status)},
                                   {"count", count.count}});
    }
    job.reply_json(bhttp::status::ok, json::object{{"items", std::move(items)}});
  });
}

ApiError no_delivery(std::int64_t id) {
  return error(bhttp::status::not_found, "not_found", fmt::format("no delivery with id {}", id),
               "delivery_id");
}

void get_delivery(NotifyCall& call, const ApiToken& token, std::int64_t id) {
  call.off_loop([token, id](NotifyCall& job) {
    auto delivery = job.store().get_delivery(id);
    if (!delivery) {
      if (delivery.error().code == ErrorCode::not_found) return job.fail(no_delivery(id));
      return job.fail(store_error(delivery.error()));
    }
    if (!may_touch(token, delivery->organization_id)) return job.fail(no_delivery(id));
    auto attempts = job.store().list_attempts(id);
    if (!attempts) return job.fail(store_error(attempts.error()));
    json::object out = delivery_json(*delivery);
    json::array list;
    for (const notify::DeliveryAttempt& attempt : *attempts) list.push_back(attempt_json(attempt));
    out["attempts"] = std::move(list);
    job.reply_json(bhttp::status::ok, out);
  });
}

void post_resend(NotifyCall& call, const ApiToken& token, std::int64_t id) {
  call.off_loop([token, id](NotifyCall& job) {
    auto delivery = job.store().get_delivery(id);
    if (!delivery) {
      if (delivery.error().code == ErrorCode::not_found) return job.fail(no_delivery(id));
      return job.fail(store_error(delivery.error()));
    }
    if (!may_touch(token, delivery->organization_id)) return job.fail(no_delivery(id));
    auto resent = job.store().resend(id, herald::now());
    if (!resent) {
      if (resent.error().code == ErrorCode::conflict) {
        return job.fail(error(bhttp::status::conflict, "conflict",
                              fmt::format("delivery {} is {}; only a dead or failed delivery can "
                                          "be re-sent",
                                          id, notify::to_string(delivery->status)),
                              "status"));
      }
      return job.fail(store_error(resent.error()));
    }
    job.reply_json(bhttp::status::ok, delivery_json(*resent));
  });
}

// --- webhook endpoints and announcement channels ---

void get_webhooks(NotifyCall& call, const ApiToken& token, QueryParams& params) {
  auto organization = params.take_integer("organization_id", 1, max_id);
  if (!organization) return call.fail(organization.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  std::optional<std::int64_t> filter = *organization;
  if (auto refused = confine(token, filter, "organization_id")) return call.fail(*refused);
  call.off_loop([filter](NotifyCall& job) {
    auto endpoints = job.store().list_endpoints(filter);
    if (!endpoints) return job.fail(store_error(endpoints.error()));
    json::array items;
    for (const notify::WebhookEndpoint& endpoint : *endpoints) {
      items.push_back(endpoint_json(endpoint));
    }
    job.reply_json(bhttp::status::ok, json::object{{"items", std::move(items)}});
  });
}

void post_webhook(NotifyCall& call, const ApiToken& token) {
  auto body = body_object(call.request(), {"organization_id", "url", "event_types"});
  if (!body) return call.fail(body.error());
  const json::value* organization_value = body->if_contains("organization_id");
  if (organization_value == nullptr) {
    return call.fail(bad_body("organization_id", "missing; expected the organization's id"));
  }
  auto organization = json_id(*organization_value, "organization_id");
  if (!organization) return call.fail(organization.error());
  std::optional<std::int64_t> target = *organization;
  if (auto refused = confine(token, target, "organization_id")) return call.fail(*refused);
  const json::value* url_value = body->if_contains("url");
  if (url_value == nullptr) return call.fail(bad_body("url", "missing; expected an http(s) URL"));
  auto url = json_url(*url_value, "url");
  if (!url) return call.fail(url.error());
  std::vector<std::string> types;
  if (const json::value* given = body->if_contains("event_types");
      given != nullptr && !given->is_null()) {
    if (!given->is_array()) {
      return call.fail(
          bad_body("event_types", fmt::format("expected an array, got {}", kind_of(*given))));
    }
    if (given->as_array().size() > max_event_types) {
      return call.fail(bad_body("event_types", fmt::format("at most {} types", max_event_types)));
    }
    std::size_t i = 0;
    for (const json::value& item : given->as_array()) {
      const std::string field = fmt::format("event_types[{}]", i++);
      auto type = json_string(item, field, 128);
      if (!type) return call.fail(type.error());
      if (!call.state().services().catalog->contains(*type)) {
        return call.fail(
            bad_body(field, fmt::format("unknown event type '{}'; GET /api/v1/catalog lists them",
                                        quotable(*type))));
      }
      if (std::ranges::find(types, *type) == types.end()) types.push_back(std::move(*type));
    }
  }
  call.off_loop([organization = *organization, url = std::move(*url),
                 types = std::move(types)](NotifyCall& job) {
    auto created = job.store().create_endpoint(organization, url, types);
    if (!created) return job.fail(store_error(created.error()));
    job.reply_json(bhttp::status::created, endpoint_with_secret(*created));
  });
}

ApiError no_endpoint(std::int64_t id) {
  return error(bhttp::status::not_found, "not_found",
               fmt::format("no webhook endpoint with id {}", id), "webhook_id");
}

/// Runs `then(job, endpoint)` with the endpoint `id` when `token` may touch it; 404 otherwise.
template <class Then>
void with_endpoint(NotifyCall& call, const ApiToken& token, std::int64_t id, Then then) {
  call.off_loop([token, id, then = std::move(then)](NotifyCall& job) mutable {
    auto endpoint = job.store().get_endpoint(id);
    if (!endpoint) {
      if (endpoint.error().code == ErrorCode::not_found) return job.fail(no_endpoint(id));
      return job.fail(store_error(endpoint.error()));
    }
    if (!may_touch(token, endpoint->organization_id)) return job.fail(no_endpoint(id));
    then(job, *endpoint);
  });
}

void get_webhook(NotifyCall& call, const ApiToken& token, std::int64_t id) {
  with_endpoint(call, token, id, [](NotifyCall& job, const notify::WebhookEndpoint& endpoint) {
    job.reply_json(bhttp::status::ok, endpoint_json(endpoint));
  });
}

void patch_webhook(NotifyCall& call, const ApiToken& token, std::int64_t id) {
  auto body = body_object(call.request(), {"active"});
  if (!body) return call.fail(body.error());
  const json::value* active = body->if_contains("active");
  if (active == nullptr) return call.fail(bad_body("active", "missing; expected true or false"));
  if (!active->is_bool()) {
    return call.fail(
        bad_body("active", fmt::format("expected true or false, got {}", kind_of(*active))));
  }
  with_endpoint(call, token, id,
                [active = active->as_bool(), id](NotifyCall& job, const notify::WebhookEndpoint&) {
                  auto changed = job.store().set_endpoint_active(
                      id, active, active ? std::string() : std::string("disabled by an operator"));
                  if (!changed) return job.fail(store_error(changed.error()));
                  job.reply_json(bhttp::status::ok, endpoint_json(*changed));
                });
}

void post_rotate(NotifyCall& call, const ApiToken& token, std::int64_t id) {
  with_endpoint(call, token, id, [id](NotifyCall& job, const notify::WebhookEndpoint&) {
    auto rotated = job.store().rotate_secret(
        id, herald::now(), std::chrono::duration_cast<std::chrono::seconds>(secret_overlap));
    if (!rotated) return job.fail(store_error(rotated.error()));
    job.reply_json(bhttp::status::ok, endpoint_with_secret(*rotated));
  });
}

void put_announcement(NotifyCall& call, const ApiToken& token, std::int64_t organization_id) {
  std::optional<std::int64_t> target = organization_id;
  if (auto refused = confine(token, target, "organization_id")) return call.fail(*refused);
  auto body = body_object(call.request(), {"webhook_url"});
  if (!body) return call.fail(body.error());
  const json::value* url_value = body->if_contains("webhook_url");
  if (url_value == nullptr) {
    return call.fail(
        bad_body("webhook_url", "missing; expected a Discord channel webhook URL or null"));
  }
  std::optional<std::string> url;
  if (!url_value->is_null()) {
    auto checked = json_url(*url_value, "webhook_url");
    if (!checked) return call.fail(checked.error());
    url = std::move(*checked);
  }
  call.off_loop([organization_id, url = std::move(url)](NotifyCall& job) {
    auto set = job.store().set_announcement_channel(organization_id, url);
    if (!set) return job.fail(store_error(set.error()));
    job.reply_json(bhttp::status::ok,
                   json::object{{"organization_id", organization_id},
                                {"webhook_url", url ? json::value(*url) : json::value(nullptr)}});
  });
}

// --- routing ---

void method_not_allowed(NotifyCall& call, std::string_view allow) {
  Response response = error_response(
      error(bhttp::status::method_not_allowed, "method_not_allowed",
            fmt::format("{} is not allowed here; allowed: {}",
                        std::string_view(call.request().method_string()).substr(0, 16), allow)));
  response.set(bhttp::field::allow, allow);
  call.reply(std::move(response));
}

ApiError not_configured() {
  return error(bhttp::status::service_unavailable, "notifications_unavailable",
               "notifications are not configured on this server (herald serve runs them with a "
               "notification store and rules)");
}

ApiError no_endpoint_here(const Request& request) {
  return error(bhttp::status::not_found, "not_found",
               fmt::format("no endpoint {} (docs/http-api.md lists them)",
                           std::string_view(request.target()).substr(0, 128)));
}

/// The routes under /api/v1/users/{user_id}/ (and /api/v1/me/): `rest` follows the user.
void route_user(NotifyCall& call, std::span<const std::string> rest, std::string_view prefix,
                std::optional<std::int64_t> user_id, bool me, QueryParams& params) {
  const bhttp::verb method = call.request().method();
  const bool get = method == bhttp::verb::get || method == bhttp::verb::head;
  std::string joined;
  for (const std::string& segment : rest) joined += "/" + segment;
  if (joined != "/preferences" && joined != "/email" && joined != "/inbox" &&
      joined != "/inbox/unread-count" && joined != "/inbox/mark" && joined != "/inbox/stream") {
    return call.fail(no_endpoint_here(call.request()));
  }
  call.set_route(std::string(method == bhttp::verb::put    ? "PUT "
                             : method == bhttp::verb::post ? "POST "
                                                           : "GET ") +
                 std::string(prefix) + joined);
  std::string_view allow = "GET";
  bool allowed = get;
  if (joined == "/preferences") {
    allow = "GET, PUT";
    allowed = get || method == bhttp::verb::put;
  } else if (joined == "/email") {
    allow = "PUT";
    allowed = method == bhttp::verb::put;
  } else if (joined == "/inbox/mark") {
    allow = "POST";
    allowed = method == bhttp::verb::post;
  }
  if (!allowed) return method_not_allowed(call, allow);

  const bool stream = joined == "/inbox/stream";
  auto token = authenticate_request(call.state(), call.request(), stream ? &params : nullptr);
  if (!token) return call.fail(token.error());
  if (me) {
    if (!token->user_id) {
      return call.fail(error(bhttp::status::bad_request, "no_user",
                             fmt::format("token '{}' is bound to no user; /api/v1/me/ needs a "
                                         "token created with 'herald token create --user ID'",
                                         token->name)));
    }
    user_id = token->user_id;
  }
  if (auto refused = require_user(*token, *user_id)) return call.fail(*refused);
  if (call.state().services().notifications == nullptr ||
      call.state().services().notification_rules == nullptr) {
    return call.fail(not_configured());
  }
  if (!stream) {
    if (joined != "/inbox") {
      if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
    }
  }
  if (joined == "/preferences") {
    return get ? get_preferences(call, *user_id) : put_preferences(call, *user_id);
  }
  if (joined == "/email") return put_email(call, *user_id);
  if (joined == "/inbox") return get_inbox(call, *user_id, params);
  if (joined == "/inbox/unread-count") return get_unread_count(call, *user_id);
  if (joined == "/inbox/mark") return post_mark(call, *user_id);
  return get_inbox_stream(call, *user_id, params);
}

/// Authenticates a management request; false when it was answered.
std::optional<ApiToken> manager(NotifyCall& call, QueryParams& params, bool takes_params) {
  auto token = authenticate_request(call.state(), call.request(), nullptr);
  if (!token) {
    call.fail(token.error());
    return std::nullopt;
  }
  if (auto refused = require_manager(*token)) {
    call.fail(*refused);
    return std::nullopt;
  }
  if (call.state().services().notifications == nullptr) {
    call.fail(not_configured());
    return std::nullopt;
  }
  if (!takes_params) {
    if (auto unknown = params.reject_unknown(); !unknown) {
      call.fail(unknown.error());
      return std::nullopt;
    }
  }
  return std::move(*token);
}

}  // namespace

bool is_notification_resource(std::string_view resource) noexcept {
  return resource == "notification-kinds" || resource == "users" || resource == "me" ||
         resource == "deliveries" || resource == "webhooks" || resource == "organizations";
}

void handle_notification_request(RouteContext context, const std::vector<std::string>& s,
                                 QueryParams& params) {
  NotifyCall call(std::move(context));
  const bhttp::verb method = call.request().method();
  const bool get = method == bhttp::verb::get || method == bhttp::verb::head;
  const bool post = method == bhttp::verb::post;
  const std::string& resource = s[2];
  const std::span<const std::string> path(s);

  if (resource == "notification-kinds" && s.size() == 3) {
    call.set_route("GET /api/v1/notification-kinds");
    if (!get) return method_not_allowed(call, "GET");
    auto token = authenticate_request(call.state(), call.request(), nullptr);
    if (!token) return call.fail(token.error());
    if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
    if (call.state().services().notification_rules == nullptr) return call.fail(not_configured());
    return get_kinds(call);
  }
  if (resource == "me" && s.size() >= 4) {
    return route_user(call, path.subspan(3), "/api/v1/me", std::nullopt, true, params);
  }
  if (resource == "users" && s.size() >= 5) {
    call.set_route("/api/v1/users/{user_id}");
    auto user_id = path_id(s[3], "user_id");
    if (!user_id) return call.fail(user_id.error());
    return route_user(call, path.subspan(4), "/api/v1/users/{user_id}", *user_id, false, params);
  }
  if (resource == "deliveries") {
    if (s.size() == 3) {
      call.set_route("GET /api/v1/deliveries");
      if (!get) return method_not_allowed(call, "GET");
      auto token = manager(call, params, true);
      if (!token) return;
      return get_deliveries(call, *token, params);
    }
    if (s.size() == 4 && s[3] == "summary") {
      call.set_route("GET /api/v1/deliveries/summary");
      if (!get) return method_not_allowed(call, "GET");
      auto token = manager(call, params, false);
      if (!token) return;
      return get_delivery_summary(call, *token);
    }
    if (s.size() == 4 || (s.size() == 5 && s[4] == "resend")) {
      const bool resend = s.size() == 5;
      call.set_route(resend ? "POST /api/v1/deliveries/{id}/resend"
                            : "GET /api/v1/deliveries/{id}");
      if (resend ? !post : !get) return method_not_allowed(call, resend ? "POST" : "GET");
      auto token = manager(call, params, false);
      if (!token) return;
      auto id = path_id(s[3], "delivery_id");
      if (!id) return call.fail(id.error());
      return resend ? post_resend(call, *token, *id) : get_delivery(call, *token, *id);
    }
  }
  if (resource == "webhooks") {
    if (s.size() == 3) {
      call.set_route(post ? "POST /api/v1/webhooks" : "GET /api/v1/webhooks");
      if (!get && !post) return method_not_allowed(call, "GET, POST");
      auto token = manager(call, params, get);
      if (!token) return;
      return get ? get_webhooks(call, *token, params) : post_webhook(call, *token);
    }
    if (s.size() == 4 || (s.size() == 5 && s[4] == "rotate")) {
      const bool rotate = s.size() == 5;
      const bool patch = method == bhttp::verb::patch;
      call.set_route(rotate  ? "POST /api/v1/webhooks/{id}/rotate"
                     : patch ? "PATCH /api/v1/webhooks/{id}"
                             : "GET /api/v1/webhooks/{id}");
      if (rotate ? !post : !(get || patch)) {
        return method_not_allowed(call, rotate ? "POST" : "GET, PATCH");
      }
      auto token = manager(call, params, false);
      if (!token) return;
      auto id = path_id(s[3], "webhook_id");
      if (!id) return call.fail(id.error());
      if (rotate) return post_rotate(call, *token, *id);
      return patch ? patch_webhook(call, *token, *id) : get_webhook(call, *token, *id);
    }
  }
  if (resource == "organizations" && s.size() == 5 && s[4] == "announcement-channel") {
    call.set_route("PUT /api/v1/organizations/{id}/announcement-channel");
    if (method != bhttp::verb::put) return method_not_allowed(call, "PUT");
    auto token = manager(call, params, false);
    if (!token) return;
    auto id = path_id(s[3], "organization_id");
    if (!id) return call.fail(id.error());
    return put_announcement(call, *token, *id);
  }
  call.fail(no_endpoint_here(call.request()));
}

}  // namespace herald::http::detail
