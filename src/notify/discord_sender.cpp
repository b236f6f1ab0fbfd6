// Discord delivery over the REST API v10 (https://discord.com/developers/docs/reference):
// bot direct messages (Create DM, then Create Message) and channel webhooks (Execute Webhook),
// with the rate limits of docs/topics/rate-limits: per-route buckets from X-RateLimit-* headers,
// 429 bodies with `retry_after` (seconds) and `global`.

#include <fmt/core.h>

#include <boost/json.hpp>

#include <charconv>
#include <map>
#include <mutex>

#include "herald/notify/sender.hpp"
#include "notify/curl_http.hpp"
#include "notify/sender_support.hpp"

namespace herald::notify {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t max_content_characters = 2000;
constexpr std::string_view user_agent = "User-Agent: DiscordBot (https://herald.local, 0.1.0)";

bool is_snowflake(std::string_view text) {
  return !text.empty() && text.size() <= 20 &&
         text.find_first_not_of("0123456789") == std::string_view::npos;
}

// Discord counts characters, not bytes: cut on a code point boundary.
std::string cut_to_characters(std::string text, std::size_t limit) {
  std::size_t characters = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++characters;
  }
  if (characters <= limit) return text;
  std::size_t kept = 0;
  std::size_t i = 0;
  for (; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (kept == limit - 1) break;
      ++kept;
    }
  }
  text.resize(i);
  text += "\u2026";
  return text;
}

std::string message_content(std::string_view title, std::string_view markdown,
                            std::string_view link) {
  std::string content;
  const auto add = [&](std::string_view part) {
    if (part.empty()) return;
    if (!content.empty()) content += "\n\n";
    content += part;
  };
  if (!title.empty()) add("**" + std::string(title) + "**");
  add(markdown);
  add(link);
  return cut_to_characters(std::move(content), max_content_characters);
}

std::string message_body(std::string content) {
  // No mentions are parsed: text from events must not ping @everyone or a role.
  boost::json::object body{{"content", std::move(content)},
                           {"allowed_mentions", {{"parse", boost::json::array{}}}}};
  return boost::json::serialize(body);
}

std::optional<double> parse_double(std::optional<std::string_view> text) {
  if (!text) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

// Discord's error shape: {"message": "...", "code": 50007} (docs/topics/opcodes-and-status-codes).
std::string discord_error(const detail::HttpResponse& response) {
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    const auto& object = body.as_object();
    std::string message;
    if (const auto* m = object.if_contains("message"); m != nullptr && m->is_string()) {
      message = std::string(m->as_string().subview().substr(0, 300));
    }
    if (const auto* c = object.if_contains("code"); c != nullptr && c->is_int64()) {
      message += fmt::format(" (code {})", c->as_int64());
    }
    if (!message.empty()) return fmt::format("Discord answered {}: {}", response.status, message);
  }
  return fmt::format("Discord answered {}", response.status);
}

// The rate-limit state of one bot (or of the channel webhooks), shared by every thread.
class DiscordClient {
 public:
  explicit DiscordClient(DiscordOptions options) : options_(std::move(options)) {
    detail::ensure_curl_initialized();
  }

  const DiscordOptions& options() const { return options_; }

  // One REST call on `route` (the bucket key: method, path template and its major parameter).
  std::expected<detail::HttpResponse, SendResult> call(const std::string& route, std::string url,
                                                       std::string body, bool bot_auth,
                                                       Clock::time_point deadline) {
    if (auto blocked = check_limits(route)) return std::unexpected(*blocked);
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= std::chrono::milliseconds(0)) {
      return std::unexpected(detail::transient("Discord: no time left for " + route));
    }
    detail::HttpRequest http;
    http.method = "POST";
    http.url = std::move(url);
    http.body = std::move(body);
    http.timeout = left;
    http.headers = {"Content-Type: application/json", std::string(user_agent)};
    if (bot_auth) http.headers.push_back("Authorization: Bot " + options_.bot_token);

    auto response = detail::perform_http(http);
    if (!response) {
      if (response.error().kind == detail::HttpFailure::Kind::timeout) {
        return std::unexpected(detail::transient(fmt::format(
            "Discord did not answer {} within {} ms", route, options_.timeout.count())));
      }
      return std::unexpected(
          detail::transient("Discord unreachable for " + route + ": " + response.error().message));
    }
    record_limits(route, *response);
    const int status = response->status;
    if (status >= 200 && status < 300) return std::move(*response);
    if (status == 429) return std::unexpected(rate_limited(route, *response));
    if (status >= 500) return std::unexpected(detail::transient(discord_error(*response), status));
    return std::unexpected(detail::permanent(discord_error(*response), status));
  }

  std::optional<std::string> cached_channel(const std::string& recipient) {
    std::lock_guard lock(mutex_);
    const auto it = dm_channels_.find(recipient);
    if (it == dm_channels_.end()) return std::nullopt;
    return it->second;
  }
  void cache_channel(const std::string& recipient, const std::string& channel) {
    std::lock_guard lock(mutex_);
    if (dm_channels_.size() > 100'000) dm_channels_.clear();
    dm_channels_[recipient] = channel;
  }
  void forget_channel(const std::string& recipient) {
    std::lock_guard lock(mutex_);
    dm_channels_.erase(recipient);
  }

 private:
  struct Bucket {
    long remaining = 1;
    Clock::time_point reset_at{};
    /// Discord's X-RateLimit-Bucket hash, for the operator's messages.
    std::string hash;
  };

  static std::chrono::milliseconds until(Clock::time_point at, Clock::time_point now) {
    return std::chrono::ceil<std::chrono::milliseconds>(at - now);
  }

  std::optional<SendResult> check_limits(const std::string& route) {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    if (global_until_ > now) {
      return detail::transient("Discord's global rate limit is exhausted", std::nullopt,
                               until(global_until_, now));
    }
    const auto it = buckets_.find(route);
    if (it != buckets_.end() && it->second.remaining <= 0 && it->second.reset_at > now) {
      return detail::transient(
          "Discord's rate limit for " + route +
              (it->second.hash.empty() ? "" : " (bucket " + it->second.hash + ")") +
              " is exhausted",
          std::nullopt, until(it->second.reset_at, now));
    }
    return std::nullopt;
  }

  void record_limits(const std::string& route, const detail::HttpResponse& response) {
    const auto remaining = parse_double(response.header("x-ratelimit-remaining"));
    const auto reset_after = parse_double(response.header("x-ratelimit-reset-after"));
    if (!remaining || !reset_after) return;
    std::lock_guard lock(mutex_);
    if (buckets_.size() > 10'000) buckets_.clear();
    std::string hash(response.header("x-ratelimit-bucket").value_or("").substr(0, 64));
    buckets_[route] = Bucket{static_cast<long>(*remaining),
                             Clock::now() + detail::seconds_to_wait(*reset_after), std::move(hash)};
  }

  SendResult rate_limited(const std::string& route, const detail::HttpResponse& response) {
    std::optional<double> wait_seconds;
    bool global = response.header("x-ratelimit-global").value_or("") == "true";
    std::string message;
    boost::system::error_code ec;
    const boost::json::value body = boost::json::parse(response.body, ec);
    if (!ec && body.is_object()) {
      const auto& object = body.as_object();
      if (const auto* r = object.if_contains("retry_after"); r != nullptr && r->is_number()) {
        wait_seconds = r->to_number<double>();
      }
      if (const auto* g = object.if_contains("global"); g != nullptr && g->is_bool()) {
        global = global || g->as_bool();
      }
      if (const auto* m = object.if_contains("message"); m != nullptr && m->is_string()) {
        message = std::string(m->as_string().subview().substr(0, 200));
      }
    }
    if (!wait_seconds) wait_seconds = parse_double(response.header("retry-after"));
    const auto wait = detail::seconds_to_wait(wait_seconds.value_or(1.0));
    {
      std::lock_guard lock(mutex_);
      const auto until_at = Clock::now() + wait;
      if (global) {
        global_until_ = std::max(global_until_, until_at);
      } else {
        auto& bucket = buckets_[route];
        bucket.remaining = 0;
        bucket.reset_at = until_at;
      }
    }
    return detail::transient(
        fmt::format("Discord rate limited {}{} for {} ms{}{}", global ? "every route" : route,
                    global ? " (global)" : "", wait.count(), message.empty() ? "" : ": ", message),
        429, wait);
  }

  DiscordOptions options_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
  Clock::time_point global_until_{};
  std::map<std::string, std::string> dm_channels_;
};

class DiscordDmSender final : public Sender {
 public:
  explicit DiscordDmSender(const DiscordOptions& options) : client_(options) {}

  Channel channel() const noexcept override { return Channel::discord; }

  SendResult send(const SendRequest& request) override {
    const auto deadline = Clock::now() + client_.options().timeout;
    auto payload = detail::parse_payload(request.delivery.payload);
    if (!payload) return payload.error();
    auto discord_id = detail::payload_string(*payload, "discord_id");
    if (!discord_id) return discord_id.error();
    if (!is_snowflake(*discord_id)) {
      return detail::permanent("payload member 'discord_id': expected a Discord snowflake");
    }
    auto title = detail::payload_string(*payload, "title");
    if (!title) return title.error();
    auto markdown = detail::payload_string(*payload, "markdown");
    if (!markdown) return markdown.error();
    auto link = detail::payload_string(*payload, "link", false);
    if (!link) return link.error();
    const std::string content = message_content(*title, *markdown, *link);
    if (content.empty()) return detail::permanent("payload: the message is empty");

    for (int attempt = 0;; ++attempt) {
      std::optional<std::string> channel_id = client_.cached_channel(*discord_id);
      const bool from_cache = channel_id.has_value();
      auto sent = post_message(*discord_id, channel_id, content, deadline);
      // A cached DM channel that vanished (404, code 10003 Unknown Channel) is opened again once.
      if (!sent && from_cache && attempt == 0 && sent.error().status_code == 404 &&
          sent.error().error.find("(code 10003)") != std::string::npos) {
        client_.forget_channel(*discord_id);
        continue;
      }
      if (!sent) return sent.error();
      return SendResult{SendOutcome::sent, sent->status, {}, {}};
    }
  }

 private:
  std::expected<detail::HttpResponse, SendResult> post_message(
      const std::string& discord_id, std::optional<std::string> channel_id,
      const std::string& content, Clock::time_point deadline) {
    const std::string& base = client_.options().api_base;
    if (!channel_id) {
      auto opened =
          client_.call("POST /users/@me/channels", base + "/users/@me/channels",
                       boost::json::serialize(boost::json::object{{"recipient_id", discord_id}}),
                       true, deadline);
      if (!opened) return std::unexpected(opened.error());
      boost::system::error_code ec;
      const boost::json::value dm = boost::json::parse(opened->body, ec);
      const boost::json::value* id =
          !ec && dm.is_object() ? dm.as_object().if_contains("id") : nullptr;
      if (id == nullptr || !id->is_string() || !is_snowflake(id->as_string())) {
        return std::unexpected(
            detail::transient("Discord's Create DM answer has no channel id", opened->status));
      }
      channel_id = std::string(id->as_string());
      client_.cache_channel(discord_id, *channel_id);
    }
    const std::string route = "POST /channels/" + *channel_id + "/messages";
    return client_.call(route, base + "/channels/" + *channel_id + "/messages",
                        message_body(content), true, deadline);
  }

  DiscordClient client_;
};

// scheme://host[:port] of a URL, or empty.
std::string_view origin_of(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  const auto path = url.find_first_of("/?#", scheme_end + 3);
  return url.substr(0, path);
}

class DiscordChannelSender final : public Sender {
 public:
  explicit DiscordChannelSender(const DiscordOptions& options) : client_(options) {}

  Channel channel() const noexcept override { return Channel::discord_channel; }

  SendResult send(const SendRequest& request) override {
    const auto deadline = Clock::now() + client_.options().timeout;
    auto payload = detail::parse_payload(request.delivery.payload);
    if (!payload) return payload.error();
    auto webhook_url = detail::payload_string(*payload, "webhook_url");
    if (!webhook_url) return webhook_url.error();
    // An organization registers the URL: it may only ever reach Discord's own webhooks.
    const std::string_view origin = origin_of(client_.options().api_base);
    const std::string_view url = *webhook_url;
    if (origin.empty() || !url.starts_with(origin) || url.size() == origin.size() ||
        url[origin.size()] != '/' || url.find("/webhooks/") == std::string_view::npos ||
        url.find_first_of(" \r\n\t#") != std::string_view::npos || url.size() > 2048) {
      return detail::permanent("payload member 'webhook_url': expected a Discord webhook URL on " +
                               std::string(origin));
    }
    auto title = detail::payload_string(*payload, "title");
    if (!title) return title.error();
    auto markdown = detail::payload_string(*payload, "markdown");
    if (!markdown) return markdown.error();
    auto link = detail::payload_string(*payload, "link", false);
    if (!link) return link.error();
    const std::string content = message_content(*title, *markdown, *link);
    if (content.empty()) return detail::permanent("payload: the message is empty");

    // The webhook is the route's major parameter; its token stays out of keys and messages.
    const auto id_at = url.find("/webhooks/") + std::string_view("/webhooks/").size();
    const std::string webhook_id(url.substr(id_at, url.find_first_of("/?", id_at) - id_at));
    const std::string target =
        std::string(url) + (url.find('?') == std::string_view::npos ? "?wait=true" : "&wait=true");
    auto sent = client_.call("POST /webhooks/" + webhook_id, target, message_body(content), false,
                             deadline);
    if (!sent) return sent.error();
    return SendResult{SendOutcome::sent, sent->status, {}, {}};
  }

 private:
  DiscordClient client_;
};

}  // namespace

std::unique_ptr<Sender> make_discord_dm_sender(const DiscordOptions& options) {
  return std::make_unique<DiscordDmSender>(options);
}

std::unique_ptr<Sender> make_discord_channel_sender(const DiscordOptions& options) {
  return std::make_unique<DiscordChannelSender>(options);
}

}  // namespace herald::notify
