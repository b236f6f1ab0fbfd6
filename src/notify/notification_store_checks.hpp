#pragma once

// The input checks of the notification store, the same on every backend: each error names the
// field that was wrong and what was expected.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "herald/error.hpp"
#include "herald/notify/notification.hpp"
#include "herald/notify/router.hpp"
#include "herald/timestamp.hpp"

namespace herald::notify::detail {

/// Longest name (consumer, worker, group, kind, event type), in bytes.
inline constexpr std::size_t max_name_bytes = 256;
/// Longest attempt error kept, in bytes (longer ones are cut).
inline constexpr std::size_t max_error_bytes = 4096;
/// Longest reason for disabling an endpoint, in bytes.
inline constexpr std::size_t max_reason_bytes = 1024;
/// Longest email address (RFC 5321's path limit less the angle brackets).
inline constexpr std::size_t max_email_bytes = 254;
/// Longest URL, in bytes.
inline constexpr std::size_t max_url_bytes = 2048;

/// Checks that `value` is UTF-8 without NUL bytes, at most `max_bytes` long, and not empty unless
/// `allow_empty`.
std::expected<void, Error> check_text(std::string_view field, std::string_view value,
                                      std::size_t max_bytes, bool allow_empty);
/// `value` cut to at most `max_bytes` at a character boundary, with NUL bytes and invalid UTF-8
/// replaced by '?': for provider errors, which are kept whatever they hold.
std::string sanitize_text(std::string_view value, std::size_t max_bytes);
/// Checks that `value` lies in the years 1 to 9999 (what both databases can store).
std::expected<void, Error> check_timestamp(std::string_view field, Timestamp value);
/// Checks a listing limit: 1 to 1000.
std::expected<void, Error> check_limit(std::string_view field, std::size_t limit);
/// Checks that an id is positive.
std::expected<void, Error> check_id(std::string_view field, std::int64_t id);
/// Checks an email address: one '@' with text on both sides, no spaces or control characters,
/// at most 254 bytes.
std::expected<void, Error> check_email(std::string_view field, std::string_view email);
/// Checks an http or https URL with a host, at most 2048 bytes.
std::expected<void, Error> check_url(std::string_view field, std::string_view url);
/// Checks a webhook endpoint's event type filter.
std::expected<void, Error> check_event_types(std::string_view field,
                                             const std::vector<std::string>& event_types);
/// Checks everything `apply_routing` would write, before anything is.
std::expected<void, Error> check_routed_events(std::span<const RoutedEvent> events);
/// Checks a user's preferences against the kinds the rules know.
std::expected<void, Error> check_preferences(const UserPreferences& preferences,
                                             std::span<const KindInfo> kinds);

}  // namespace herald::notify::detail
