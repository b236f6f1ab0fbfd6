// Webhook delivery after Standard Webhooks (https://www.standardwebhooks.com): the event JSON as
// the body, `webhook-id` (the event id, so a retry is recognisable), `webhook-timestamp` and
// one `webhook-signature` entry per unexpired secret (section "Signature scheme", rotation).

#include <curl/curl.h>
#include <fmt/core.h>

#include <charconv>

#include "herald/notify/sender.hpp"
#include "notify/curl_http.hpp"
#include "notify/sender_support.hpp"
#include "notify/target_guard.hpp"

namespace herald::notify {
namespace {

// RFC 9110 section 10.2.3: delay-seconds or an HTTP-date.
std::optional<std::chrono::milliseconds> parse_retry_after(std::optional<std::string_view> value,
                                                           Timestamp now) {
  if (!value || value->empty() || value->size() > 64) return std::nullopt;
  std::int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (ec == std::errc() && end == value->data() + value->size()) {
    return detail::seconds_to_wait(static_cast<double>(seconds));
  }
  const std::string text(*value);
  const time_t at = curl_getdate(text.c_str(), nullptr);
  if (at < 0) return std::nullopt;
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  return detail::seconds_to_wait(static_cast<double>(at - now_s.count()));
}

std::string body_excerpt(std::string_view body) {
  std::string out;
  for (const char c : body.substr(0, 200)) {
    out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  return out;
}

class WebhookSender final : public Sender {
 public:
  explicit WebhookSender(WebhookOptions options) : options_(std::move(options)) {
    detail::ensure_curl_initialized();
  }

  Channel channel() const noexcept override { return Channel::webhook; }

  SendResult send(const SendRequest& request) override {
    if (request.endpoint == nullptr) {
      return detail::permanent("webhook delivery " + std::to_string(request.delivery.id) +
                               " has no endpoint");
    }
    const WebhookEndpoint& endpoint = *request.endpoint;
    auto payload = detail::parse_payload(request.delivery.payload);
    if (!payload) return payload.error();
    // `body` is the event's JSON text in a string, sent byte for byte; an object is accepted too
    // (serialized compactly), so a router that embeds the event still works.
    std::string body;
    if (const auto* member = payload->if_contains("body");
        member != nullptr && member->is_object()) {
      body = boost::json::serialize(*member);
    } else {
      auto text = detail::payload_string(*payload, "body");
      if (!text) return text.error();
      body = std::move(*text);
    }
    auto event_type = detail::payload_string(*payload, "event_type");
    if (!event_type) return event_type.error();

    const std::string id = request.delivery.event_id.to_string();
    const std::int64_t timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(request.now.time_since_epoch()).count();
    std::string signatures;
    for (const WebhookSecret& secret : endpoint.secrets) {
      if (secret.expires_at && *secret.expires_at <= request.now) continue;
      auto signature = webhook_signature(secret.secret, id, timestamp, body);
      if (!signature) {
        return detail::permanent("webhook endpoint " + std::to_string(endpoint.id) +
                                 ": a secret is malformed: " + signature.error().message);
      }
      if (!signatures.empty()) signatures += ' ';
      signatures += *signature;
    }
    if (signatures.empty()) {
      return detail::permanent("webhook endpoint " + std::to_string(endpoint.id) +
                               " has no unexpired signing secret");
    }

    auto target = detail::check_target(endpoint.url, options_.allow_private_targets);
    if (!target && target.error().code == ErrorCode::unavailable) {
      // DNS may answer again later; the endpoint may just be briefly unresolvable.
      return detail::transient("webhook endpoint " + std::to_string(endpoint.id) + ": " +
                               target.error().message);
    }
    if (!target) {
      return detail::permanent("webhook endpoint " + std::to_string(endpoint.id) + " (" +
                               endpoint.url + "): " + target.error().message);
    }

    detail::HttpRequest http;
    http.method = "POST";
    http.url = endpoint.url;
    http.body = std::move(body);
    http.timeout = options_.timeout;
    http.resolve = std::move(target->resolve);
    if (!options_.allow_private_targets) http.address_allowed = detail::is_allowed_socket_address;
    http.headers = {
        "Content-Type: application/json",
        "User-Agent: " + options_.user_agent,
        "webhook-id: " + id,
        "webhook-timestamp: " + std::to_string(timestamp),
        "webhook-signature: " + signatures,
    };
    auto response = detail::perform_http(http);
    if (!response) {
      const auto& failure = response.error();
      switch (failure.kind) {
        case detail::HttpFailure::Kind::refused:
          return detail::permanent("webhook endpoint " + std::to_string(endpoint.id) + " (" +
                                   endpoint.url + "): " + failure.message);
        case detail::HttpFailure::Kind::timeout:
          return detail::transient("timed out after " + std::to_string(options_.timeout.count()) +
                                   " ms: " + failure.message);
        default:
          return detail::transient("no response: " + failure.message);
      }
    }
    const int status = response->status;
    if (status >= 200 && status < 300) return SendResult{SendOutcome::sent, status, {}, {}};
    const std::string what =
        fmt::format("the endpoint answered {}: {}", status, body_excerpt(response->body));
    if (status == 410) return SendResult{SendOutcome::gone, status, what, {}};
    if (status == 408 || status == 429 || status >= 500) {
      return detail::transient(what, status,
                               parse_retry_after(response->header("retry-after"), request.now));
    }
    if (status >= 300 && status < 400) {
      return detail::permanent(
          fmt::format("the endpoint answered {} (a redirect, which is not followed)", status),
          status);
    }
    return detail::permanent(what, status);
  }

 private:
  WebhookOptions options_;
};

}  // namespace

std::unique_ptr<Sender> make_webhook_sender(const WebhookOptions& options) {
  return std::make_unique<WebhookSender>(options);
}

}  // namespace herald::notify
