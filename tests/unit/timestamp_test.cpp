#include "herald/timestamp.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace herald {
namespace {

using namespace std::chrono;

Timestamp at(int y, unsigned mo, unsigned d, int h, int mi, int s, int us) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} +
         microseconds{us};
}

TEST(Timestamp, FormatsRfc3339WithSixFractionalDigitsAndZ) {
  EXPECT_EQ(format_timestamp(at(2026, 11, 27, 9, 30, 5, 42)), "2026-11-27T09:30:05.000042Z");
  EXPECT_EQ(format_timestamp(at(1999, 1, 1, 0, 0, 0, 0)), "1999-01-01T00:00:00.000000Z");
}

TEST(Timestamp, FormatsEveryFieldZeroPaddedAcrossTheFourDigitYears) {
  EXPECT_EQ(format_timestamp(at(0, 1, 1, 0, 0, 0, 0)), "0000-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp(at(9999, 12, 31, 23, 59, 59, 999999)), "9999-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(at(1969, 12, 31, 23, 59, 59, 999999)), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(at(2024, 2, 29, 7, 8, 9, 10)), "2024-02-29T07:08:09.000010Z");
}

TEST(Timestamp, FormatsYearsWithoutFourDigitsAsPrintfDoes) {
  EXPECT_EQ(format_timestamp(at(10000, 1, 1, 0, 0, 0, 1)), "10000-01-01T00:00:00.000001Z");
  EXPECT_EQ(format_timestamp(at(-1, 12, 31, 23, 0, 0, 0)), "-001-12-31T23:00:00.000000Z");
}

TEST(Timestamp, FormatsIntoABufferTheSameTextAsFormatTimestamp) {
  std::array<char, timestamp_text_capacity> text{};
  for (const Timestamp t : {at(2026, 11, 27, 9, 30, 5, 42), at(1, 1, 1, 0, 0, 0, 0),
                            at(10000, 1, 1, 0, 0, 0, 0), now()}) {
    const std::size_t length = format_timestamp_to(t, text);
    EXPECT_EQ(std::string(text.data(), length), format_timestamp(t));
  }
}

TEST(Timestamp, ParsesWhatItFormats) {
  const Timestamp t = now();
  const auto parsed = parse_timestamp(format_timestamp(t));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(*parsed, t);
}

TEST(Timestamp, AppliesOffsetsToUtc) {
  const auto parsed = parse_timestamp("2026-11-27T10:30:00+01:00");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, at(2026, 11, 27, 9, 30, 0, 0));
  const auto negative = parse_timestamp("2026-11-27T04:00:00.5-05:30");
  ASSERT_TRUE(negative.has_value());
  EXPECT_EQ(*negative, at(2026, 11, 27, 9, 30, 0, 500000));
}

TEST(Timestamp, TruncatesDigitsBeyondMicroseconds) {
  const auto parsed = parse_timestamp("2026-11-27T09:30:00.123456789Z");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, at(2026, 11, 27, 9, 30, 0, 123456));
}

TEST(Timestamp, RejectsMalformedTextWithAReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& c :
       {Case{"", "expected YYYY-MM-DD"}, Case{"2026-11-27", "expected YYYY-MM-DD"},
        Case{"2026-13-01T00:00:00Z", "no such date"}, Case{"2026-02-30T00:00:00Z", "no such date"},
        Case{"2026-11-27X09:30:00Z", "expected 'T'"}, Case{"2026-11-27T25:00:00Z", "no such time"},
        Case{"2026-11-27T09:30:00", "missing time zone"},
        Case{"2026-11-27T09:30:00.Z", "expected digits after '.'"},
        Case{"2026-11-27T09:30:00+0100", "bad offset"},
        Case{"2026-11-27T09:30:00Zjunk", "unexpected text"},
        Case{"yesterday at noon!!!", "expected YYYY-MM-DD"}}) {
    const auto parsed = parse_timestamp(c.text);
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_NE(parsed.error().message.find(c.reason), std::string::npos)
        << c.text << " -> " << parsed.error().message;
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument);
  }
}

}  // namespace
}  // namespace herald
