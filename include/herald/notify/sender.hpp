#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/error.hpp"
#include "herald/notify/notification.hpp"
#include "herald/timestamp.hpp"

namespace herald::notify {

/// How an attempt ended, as the channel's provider answered.
enum class SendOutcome : std::uint8_t {
  sent,       ///< Accepted (2xx, SMTP 250).
  transient,  ///< Worth retrying: 408, 429, 5xx, a timeout, no connection, SMTP 4xx.
  permanent,  ///< Never worth retrying: another 4xx, an invalid address, SMTP 5xx.
  gone,       ///< The target is gone for good (webhook 410): fail, and disable the endpoint.
};

/// What one attempt did.
struct SendResult {
  SendOutcome outcome = SendOutcome::sent;
  /// HTTP status or SMTP reply code, when the provider answered.
  std::optional<int> status_code;
  /// Why it failed, for the attempt record and the operator; empty when sent.
  std::string error;
  /// The provider asked to wait this long (Retry-After, Discord's `retry_after`, an exhausted
  /// rate-limit bucket); the next attempt is not made before.
  std::optional<std::chrono::milliseconds> retry_after;
};

/// One attempt to make: the delivery, and for a webhook its endpoint (with the current secrets).
struct SendRequest {
  const DeliveryRecord& delivery;
  /// Set for `Channel::webhook`.
  const WebhookEndpoint* endpoint = nullptr;
  /// The time of the attempt (the webhook timestamp, the email Date).
  Timestamp now{};
};

/// A channel's sender: makes one attempt at a delivery and says how it went. Thread-safe: the
/// worker calls `send` from several threads at once. Never throws; every failure is a result.
class Sender {
 public:
  virtual ~Sender() = default;
  virtual Channel channel() const noexcept = 0;
  /// Blocks for at most the sender's timeout.
  virtual SendResult send(const SendRequest& request) = 0;
};

/// Discord: bot direct messages (`Channel::discord`: POST /users/@me/channels, then POST
/// /channels/{id}/messages) and channel webhooks (`Channel::discord_channel`: POST to the
/// webhook URL).
struct DiscordOptions {
  /// The REST API base; tests point it at a fake server on loopback.
  std::string api_base = "https://discord.com/api/v10";
  /// The bot token, sent as "Authorization: Bot <token>".
  std::string bot_token;
  std::chrono::milliseconds timeout{10'000};
};

/// Email over SMTP (libcurl): smtp:// (with STARTTLS when `starttls`), smtps://, login.
struct EmailOptions {
  /// "smtp://mail.example.org:587", "smtps://mail.example.org", "smtp://127.0.0.1:2525".
  std::string smtp_url;
  /// The envelope and header sender: "herald@example.org".
  std::string from;
  /// The From display name.
  std::string from_name = "herald";
  std::string username;
  std::string password;
  /// Require STARTTLS on smtp:// (CURLUSESSL_ALL); off for a local relay.
  bool starttls = false;
  /// The domain of Message-ID values ("<uuid@domain>").
  std::string message_id_domain = "herald.local";
  std::chrono::milliseconds timeout{30'000};
};

/// Webhooks (Standard Webhooks): POST the event JSON with webhook-id, webhook-timestamp and
/// webhook-signature.
struct WebhookOptions {
  std::chrono::milliseconds timeout{10'000};
  /// Allow targets on loopback, private (RFC 1918, fc00::/7) and link-local addresses. Off by
  /// default: a registered URL must not reach the operator's own network.
  bool allow_private_targets = false;
  std::string user_agent = "herald-webhooks/1";
};

std::unique_ptr<Sender> make_discord_dm_sender(const DiscordOptions& options);
std::unique_ptr<Sender> make_discord_channel_sender(const DiscordOptions& options);
std::unique_ptr<Sender> make_email_sender(const EmailOptions& options);
std::unique_ptr<Sender> make_webhook_sender(const WebhookOptions& options);

/// The Standard Webhooks signature of one message under one secret ("whsec_…"): "v1," + base64
/// of HMAC-SHA256 over "<id>.<timestamp>.<body>" keyed with the secret's base64-decoded bytes.
/// Errors: `invalid_argument` for a secret without the prefix or with bad base64.
std::expected<std::string, Error> webhook_signature(std::string_view secret, std::string_view id,
                                                    std::int64_t timestamp, std::string_view body);

}  // namespace herald::notify
