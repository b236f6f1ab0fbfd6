#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

/// A UUIDv7 event identifier (RFC 9562 section 5.7): 48-bit Unix milliseconds, version 7,
/// variant 0b10, then random bits. Thread-safe value type; ordered by bytes, which is time order.
class EventId {
 public:
  /// The nil UUID (all zero).
  constexpr EventId() noexcept = default;
  /// Wraps 16 raw bytes (network order).
  explicit constexpr EventId(const std::array<std::uint8_t, 16>& bytes) noexcept : bytes_(bytes) {}

  /// Returns a new UUIDv7. Within a process every id is strictly greater than the previous
  /// one, also within one millisecond (RFC 9562 section 6.2, method 3: a monotonic counter in
  /// the random bits). Thread-safe.
  static EventId generate() noexcept;

  /// Parses the canonical 8-4-4-4-12 hexadecimal form (either case); nullopt otherwise.
  static std::optional<EventId> parse(std::string_view text) noexcept;

  /// Canonical lower-case 36-character form.
  std::string to_string() const;
  /// The first 8 hexadecimal digits, used in short log lines.
  std::string short_string() const;

  /// The 48-bit Unix millisecond timestamp embedded in a v7 id.
  std::int64_t unix_millis() const noexcept;
  /// The version nibble (7 for generated ids).
  int version() const noexcept { return bytes_[6] >> 4; }
  /// True for the nil UUID.
  bool is_nil() const noexcept { return *this == EventId{}; }

  const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }

  friend constexpr auto operator<=>(const EventId&, const EventId&) noexcept = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
};

}  // namespace herald
