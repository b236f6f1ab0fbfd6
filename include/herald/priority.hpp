#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace herald {

/// Handler and event priority. Higher runs first. Any int value is allowed; these are the
/// named levels of the platform (security, audit, notifications, analytics).
enum class Priority : std::int32_t {
  low = 25,
  normal = 50,
  high = 75,
  critical = 100,
};

/// Returns "LOW", "NORMAL", "HIGH", "CRITICAL", or the number for other values.
std::string_view to_string(Priority priority) noexcept;

/// Parses "low"/"LOW"/… or a decimal number; nullopt if neither.
std::optional<Priority> parse_priority(std::string_view text) noexcept;

}  // namespace herald
