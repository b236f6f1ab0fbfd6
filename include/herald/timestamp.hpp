#pragma once

#include <chrono>
#include <cstddef>
#include <expected>
#include <span>
#include <string>
#include <string_view>

#include "herald/error.hpp"

namespace herald {

/// A UTC point in time with microsecond resolution, as events carry it.
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

/// The current UTC time, truncated to microseconds.
Timestamp now() noexcept;

/// RFC 3339 with exactly six fractional digits and `Z`: "2026-11-27T09:30:00.000000Z".
std::string format_timestamp(Timestamp t);

/// Room for any text `format_timestamp` writes: 27 characters for the years 0 to 9999, a few more
/// outside them.
inline constexpr std::size_t timestamp_text_capacity = 40;

/// Writes what `format_timestamp(t)` returns into `out`, without allocating; returns its length.
std::size_t format_timestamp_to(Timestamp t, std::span<char, timestamp_text_capacity> out) noexcept;

/// Parses RFC 3339 (section 5.6): a date, `T` or a space, a time with optional fraction
/// (digits beyond microseconds are truncated), then `Z` or a `±hh:mm` offset.
std::expected<Timestamp, Error> parse_timestamp(std::string_view text);

}  // namespace herald
