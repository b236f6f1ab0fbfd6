#include "herald/event_id.hpp"

#include <chrono>
#include <mutex>
#include <random>

namespace herald {
namespace {

// RFC 9562 section 6.2, method 2 ("monotonic random"): the 74 bits after the version and
// variant are random at the start of each millisecond (with the top bit clear, leaving room to
// count), and within the millisecond each id adds a small random step to the previous one, so
// ids stay strictly increasing and still hard to guess. If those bits overflow, or the clock
// goes back, the timestamp field is advanced past the last one instead (section 6.2).
struct Generator {
  std::mutex mutex;
  std::mt19937_64 random{std::random_device{}()};
  std::uint64_t last_ms = 0;
  // 12 bits rand_a + 62 bits rand_b, treated as one 74-bit number: hi (12 bits), lo (62 bits).
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
};

Generator& generator() {
  static Generator g;
  return g;
}

constexpr std::uint64_t lo_mask = (std::uint64_t{1} << 62) - 1;
constexpr std::uint64_t hi_mask = (std::uint64_t{1} << 12) - 1;

/// The value of each hexadecimal digit, -1 for every other byte.
constexpr std::array<std::int8_t, 256> hex_values = [] {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 10; ++i) values['0' + i] = static_cast<std::int8_t>(i);
  for (int i = 0; i < 6; ++i) {
    values['a' + i] = static_cast<std::int8_t>(10 + i);
    values['A' + i] = static_cast<std::int8_t>(10 + i);
  }
  return values;
}();

/// Where each byte's two digits start in the 8-4-4-4-12 form.
constexpr std::array<std::size_t, 16> digit_pairs = {0,  2,  4,  6,  9,  11, 14, 16,
                                                     19, 21, 24, 26, 28, 30, 32, 34};

}  // namespace

EventId EventId::generate() noexcept {
  const auto now_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  Generator& g = generator();
  std::uint64_t ms = 0;
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  {
    std::lock_guard lock(g.mutex);
    if (now_ms > g.last_ms) {
      g.last_ms = now_ms;
      // Seed the counter with the top bit of rand_a clear, leaving room to count within the
      // millisecond without overflowing into the timestamp.
      const std::uint64_t r = g.random();
      g.hi = (r >> 52) & (hi_mask >> 1);
      g.lo = g.random() & lo_mask;
    } else {
      // Same millisecond (or the clock went back): count on from the last id.
      g.lo = g.lo + 1 + (g.random() & 0xff);
      if (g.lo > lo_mask) {
        g.lo &= lo_mask;
        if (++g.hi > hi_mask) {
          g.hi = 0;
          ++g.last_ms;
        }
      }
    }
    ms = g.last_ms;
    hi = g.hi;
    lo = g.lo;
  }
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<std::uint8_t>(0x70 | ((hi >> 8) & 0x0f));  // version 7 + rand_a high
  b[7] = static_cast<std::uint8_t>(hi & 0xff);
  b[8] = static_cast<std::uint8_t>(0x80 | ((lo >> 56) & 0x3f));  // variant 0b10 + rand_b high
  for (int i = 9; i < 16; ++i) b[i] = static_cast<std::uint8_t>(lo >> (8 * (15 - i)));
  return EventId(b);
}

std::optional<EventId> EventId::parse(std::string_view text) noexcept {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return std::nullopt;
  }
  std::array<std::uint8_t, 16> b{};
  int invalid = 0;  // negative once any digit was not a hexadecimal one
  for (std::size_t i = 0; i < 16; ++i) {
    const int high = hex_values[static_cast<unsigned char>(text[digit_pairs[i]])];
    const int low = hex_values[static_cast<unsigned char>(text[digit_pairs[i] + 1])];
    invalid |= high | low;
    b[i] =
        static_cast<std::uint8_t>((static_cast<unsigned>(high) << 4) | static_cast<unsigned>(low));
  }
  if (invalid < 0) return std::nullopt;
  return EventId(b);
}

std::string EventId::to_string() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(digits[bytes_[i] >> 4]);
    s.push_back(digits[bytes_[i] & 0x0f]);
  }
  return s;
}

std::string EventId::short_string() const { return to_string().substr(0, 8); }

std::int64_t EventId::unix_millis() const noexcept {
  std::int64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes_[i];
  return ms;
}

}  // namespace herald
