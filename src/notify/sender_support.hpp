#pragma once

// What the senders share: reading a delivery's payload and building results.

#include <boost/json.hpp>

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "herald/notify/sender.hpp"

namespace herald::notify::detail {

/// Payloads larger than this are refused before parsing (they come from our own router, so a
/// larger one is a bug or tampering).
inline constexpr std::size_t max_payload_bytes = 1024 * 1024;

/// A permanent failure with `error`.
inline SendResult permanent(std::string error, std::optional<int> status = std::nullopt) {
  return SendResult{SendOutcome::permanent, status, std::move(error), std::nullopt};
}

/// A transient failure with `error`, and the wait the provider asked for.
inline SendResult transient(std::string error, std::optional<int> status = std::nullopt,
                            std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
  return SendResult{SendOutcome::transient, status, std::move(error), retry_after};
}

/// The delivery payload parsed as a JSON object, or the permanent failure that says why not.
inline std::expected<boost::json::object, SendResult> parse_payload(std::string_view payload) {
  if (payload.size() > max_payload_bytes) {
    return std::unexpected(permanent("payload: larger than 1 MiB"));
  }
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(payload, ec);
  if (ec) return std::unexpected(permanent("payload: not valid JSON (" + ec.message() + ")"));
  if (!value.is_object()) return std::unexpected(permanent("payload: expected a JSON object"));
  return std::move(value.as_object());
}

/// The string member `name` of `payload`, or the permanent failure naming it.
inline std::expected<std::string, SendResult> payload_string(const boost::json::object& payload,
                                                             std::string_view name,
                                                             bool required = true) {
  const boost::json::value* member = payload.if_contains(name);
  if (member == nullptr || member->is_null()) {
    if (!required) return std::string();
    return std::unexpected(permanent("payload member '" + std::string(name) + "': missing"));
  }
  if (!member->is_string()) {
    return std::unexpected(
        permanent("payload member '" + std::string(name) + "': expected a string"));
  }
  return std::string(member->as_string());
}

/// Milliseconds from a count of seconds (possibly fractional), rounded up, capped at a year.
inline std::chrono::milliseconds seconds_to_wait(double seconds) {
  if (!(seconds > 0)) return std::chrono::milliseconds(0);
  // Only a bound against overflow: whether a long wait is honoured is the retry policy's call
  // (RetryPolicy::max_retry_after gives up on a provider that asks for more than it allows).
  if (seconds > 365.0 * 86'400) seconds = 365.0 * 86'400;
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.999));
}

}  // namespace herald::notify::detail
