#include "herald/timestamp.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

namespace herald {
namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t count, int& out) noexcept {
  if (pos + count > s.size()) return false;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    value = value * 10 + (s[i] - '0');
  }
  out = value;
  return true;
}

Error bad_timestamp(std::string_view text, std::string_view why) {
  std::string message = "invalid RFC 3339 timestamp \"";
  message.append(text.substr(0, 64)).append("\": ").append(why);
  return Error{ErrorCode::invalid_argument, std::move(message), {}};
}

/// Writes `value`'s last `count` decimal digits, zero-padded, into `out`.
void put_digits(char* out, std::uint64_t value, int count) noexcept {
  for (int i = count - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

Timestamp now() noexcept {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

std::size_t format_timestamp_to(Timestamp t,
                                std::span<char, timestamp_text_capacity> out) noexcept {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd(day);
  const int year_number = static_cast<int>(ymd.year());
  const auto micros = static_cast<std::uint64_t>((t - day).count());
  if (year_number < 0 || year_number > 9999) {
    // Years without four digits keep the form format_timestamp always gave them (printf's %04d:
    // "-001", "12345"), so records hashed with them still verify.
    const hh_mm_ss<microseconds> tod(t - day);
    const int n = std::snprintf(
        out.data(), out.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", year_number,
        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
        static_cast<int>(tod.hours().count()), static_cast<int>(tod.minutes().count()),
        static_cast<int>(tod.seconds().count()), static_cast<long long>(tod.subseconds().count()));
    return static_cast<std::size_t>(n);
  }
  // "YYYY-MM-DDThh:mm:ss.uuuuuuZ", digits written by hand: snprintf was a tenth of the audit
  // consumer's cost.
  char* p = out.data();
  put_digits(p, static_cast<std::uint64_t>(year_number), 4);
  p[4] = '-';
  put_digits(p + 5, static_cast<unsigned>(ymd.month()), 2);
  p[7] = '-';
  put_digits(p + 8, static_cast<unsigned>(ymd.day()), 2);
  p[10] = 'T';
  const std::uint64_t seconds_of_day = micros / 1'000'000;
  put_digits(p + 11, seconds_of_day / 3600, 2);
  p[13] = ':';
  put_digits(p + 14, seconds_of_day / 60 % 60, 2);
  p[16] = ':';
  put_digits(p + 17, seconds_of_day % 60, 2);
  p[19] = '.';
  put_digits(p + 20, micros % 1'000'000, 6);
  p[26] = 'Z';
  return 27;
}

std::string format_timestamp(Timestamp t) {
  std::array<char, timestamp_text_capacity> text;
  return std::string(text.data(), format_timestamp_to(t, text));
}

// RFC 3339 section 5.6: full-date "T" full-time, where time-offset is "Z" or ("+"/"-") hh:mm.
// Section 5.6's note allows a space for "T"; lower-case "t" and "z" are accepted too.
std::expected<Timestamp, Error> parse_timestamp(std::string_view s) {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d)) {
    return std::unexpected(bad_timestamp(s, "expected YYYY-MM-DD at the start"));
  }
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
    return std::unexpected(bad_timestamp(s, "expected 'T' between date and time"));
  }
  if (!digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, sec)) {
    return std::unexpected(bad_timestamp(s, "expected hh:mm:ss after the date"));
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::unexpected(bad_timestamp(s, "no such date"));
  // A leap second (60) is folded into the next second; time points cannot name it.
  if (h > 23 || mi > 59 || sec > 60) return std::unexpected(bad_timestamp(s, "no such time"));
  std::size_t pos = 19;
  long long micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    int scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (scale > 0) {
        micros += (s[pos] - '0') * scale;
        scale /= 10;
      }
      ++pos;
    }
    if (pos == start) return std::unexpected(bad_timestamp(s, "expected digits after '.'"));
  }
  if (pos >= s.size()) {
    return std::unexpected(bad_timestamp(s, "missing time zone; expected 'Z' or ±hh:mm"));
  }
  minutes offset{0};
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::unexpected(bad_timestamp(s, "bad offset; expected ±hh:mm"));
    }
    offset = hours{oh} + minutes{om};
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::unexpected(bad_timestamp(s, "expected 'Z' or ±hh:mm after the time"));
  }
  if (pos != s.size()) return std::unexpected(bad_timestamp(s, "unexpected text after the zone"));
  const Timestamp local =
      sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} + microseconds{micros};
  return local - offset;
}

}  // namespace herald
