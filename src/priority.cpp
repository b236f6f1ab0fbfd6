#include "herald/priority.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

namespace herald {

std::string_view to_string(Priority priority) noexcept {
  switch (priority) {
    case Priority::low:
      return "LOW";
    case Priority::normal:
      return "NORMAL";
    case Priority::high:
      return "HIGH";
    case Priority::critical:
      return "CRITICAL";
  }
  // Custom levels print as their number; a small table keeps the returned view alive.
  thread_local std::string number;
  number = std::to_string(static_cast<int>(priority));
  return number;
}

std::optional<Priority> parse_priority(std::string_view text) noexcept {
  std::string upper(text);
  std::ranges::transform(upper, upper.begin(),
                         [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "LOW") return Priority::low;
  if (upper == "NORMAL") return Priority::normal;
  if (upper == "HIGH") return Priority::high;
  if (upper == "CRITICAL") return Priority::critical;
  int value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || text.empty()) return std::nullopt;
  return static_cast<Priority>(value);
}

}  // namespace herald
