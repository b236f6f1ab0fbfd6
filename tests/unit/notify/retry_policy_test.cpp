#include "herald/notify/retry_policy.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

namespace herald::notify {
namespace {

using namespace std::chrono_literals;

const Timestamp t0 = Timestamp{std::chrono::seconds{1'800'000'000}};

TEST(RetryPolicy, DefaultScheduleIsTenSecondsOneMinuteTenMinutesOneHourSixHoursThenDead) {
  const RetryPolicy policy;
  EXPECT_EQ(max_attempts(policy), 6);
  EXPECT_EQ(base_delay(policy, 1), std::chrono::milliseconds{10s});
  EXPECT_EQ(base_delay(policy, 2), std::chrono::milliseconds{1min});
  EXPECT_EQ(base_delay(policy, 3), std::chrono::milliseconds{10min});
  EXPECT_EQ(base_delay(policy, 4), std::chrono::milliseconds{1h});
  EXPECT_EQ(base_delay(policy, 5), std::chrono::milliseconds{6h});
  EXPECT_EQ(base_delay(policy, 6), std::nullopt);
  EXPECT_EQ(base_delay(policy, 0), std::nullopt);
  EXPECT_EQ(base_delay(policy, -3), std::nullopt);
}

TEST(RetryPolicy, MidpointSampleGivesTheExactScheduleAndTheLastAttemptIsDead) {
  const RetryPolicy policy;
  EXPECT_EQ(next_attempt_at(policy, 1, t0, std::nullopt, 0.5), t0 + 10s);
  EXPECT_EQ(next_attempt_at(policy, 2, t0, std::nullopt, 0.5), t0 + 1min);
  EXPECT_EQ(next_attempt_at(policy, 3, t0, std::nullopt, 0.5), t0 + 10min);
  EXPECT_EQ(next_attempt_at(policy, 4, t0, std::nullopt, 0.5), t0 + 1h);
  EXPECT_EQ(next_attempt_at(policy, 5, t0, std::nullopt, 0.5), t0 + 6h);
  EXPECT_EQ(next_attempt_at(policy, 6, t0, std::nullopt, 0.5), std::nullopt);
}

TEST(RetryPolicy, JitterScalesTheDelayLinearlyBetweenItsBounds) {
  EXPECT_EQ(apply_jitter(10s, 0.2, 0.0), 8s);
  EXPECT_EQ(apply_jitter(10s, 0.2, 0.25), 9s);
  EXPECT_EQ(apply_jitter(10s, 0.2, 0.5), 10s);
  EXPECT_EQ(apply_jitter(10s, 0.2, 0.75), 11s);
  EXPECT_EQ(apply_jitter(10s, 0.2, 1.0), 12s);
  EXPECT_EQ(apply_jitter(10s, 0.0, 0.9), 10s);
}

TEST(RetryPolicy, JitterClampsHostileSamplesAndFactors) {
  EXPECT_EQ(apply_jitter(10s, 0.2, -5.0), 8s);
  EXPECT_EQ(apply_jitter(10s, 0.2, 7.0), 12s);
  EXPECT_EQ(apply_jitter(10s, 0.2, std::numeric_limits<double>::quiet_NaN()), 10s);
  EXPECT_EQ(apply_jitter(10s, std::numeric_limits<double>::infinity(), 0.0), 10s);
  EXPECT_EQ(apply_jitter(10s, 3.0, 0.0), 0s);
}

TEST(RetryPolicy, SeededJitterStaysWithinTwentyPercentAndSpreadsOverTheRange) {
  const RetryPolicy policy;
  std::mt19937_64 rng(42);
  std::chrono::milliseconds low = 1h;
  std::chrono::milliseconds high = 0ms;
  for (int i = 0; i < 2000; ++i) {
    auto due = next_attempt_at(policy, 1, t0, std::nullopt, rng);
    ASSERT_TRUE(due.has_value());
    const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*due - t0);
    ASSERT_GE(delay, 8s);
    ASSERT_LE(delay, 12s);
    low = std::min(low, delay);
    high = std::max(high, delay);
  }
  // 2000 uniform draws cover nearly all of [8 s, 12 s].
  EXPECT_LT(low, 8100ms);
  EXPECT_GT(high, 11900ms);
}

TEST(RetryPolicy, SameSeedGivesTheSameSchedule) {
  const RetryPolicy policy;
  std::mt19937_64 first(7);
  std::mt19937_64 second(7);
  for (int attempt = 1; attempt <= 5; ++attempt) {
    EXPECT_EQ(next_attempt_at(policy, attempt, t0, std::nullopt, first),
              next_attempt_at(policy, attempt, t0, std::nullopt, second));
  }
}

TEST(RetryPolicy, RetryAfterLongerThanTheJitteredDelayWins) {
  const RetryPolicy policy;
  EXPECT_EQ(next_attempt_at(policy, 1, t0, 30s, 0.5), t0 + 30s);
  // Jitter never brings the attempt before what the provider asked for.
  EXPECT_EQ(next_attempt_at(policy, 1, t0, 9500ms, 0.0), t0 + 9500ms);
}

TEST(RetryPolicy, RetryAfterShorterThanTheDelayKeepsTheDelay) {
  const RetryPolicy policy;
  EXPECT_EQ(next_attempt_at(policy, 2, t0, 2s, 0.5), t0 + 1min);
  EXPECT_EQ(next_attempt_at(policy, 1, t0, 0ms, 0.0), t0 + 8s);
}

TEST(RetryPolicy, RetryAfterDoesNotGrantAnAttemptBeyondTheLast) {
  const RetryPolicy policy;
  EXPECT_EQ(next_attempt_at(policy, 6, t0, 1s, 0.5), std::nullopt);
}

TEST(RetryPolicy, RetryAfterBeyondTheLimitGivesUp) {
  RetryPolicy policy;
  policy.max_retry_after = 1h;
  EXPECT_EQ(next_attempt_at(policy, 1, t0, 1h, 0.5), t0 + 1h);
  EXPECT_EQ(next_attempt_at(policy, 1, t0, 1h + 1ms, 0.5), std::nullopt);
}

TEST(RetryPolicy, CustomDelaysSetTheAttemptCount) {
  RetryPolicy policy;
  policy.delays = {1s};
  policy.jitter = 0;
  EXPECT_EQ(max_attempts(policy), 2);
  EXPECT_EQ(next_attempt_at(policy, 1, t0, std::nullopt, 0.3), t0 + 1s);
  EXPECT_EQ(next_attempt_at(policy, 2, t0, std::nullopt, 0.3), std::nullopt);
  policy.delays.clear();
  EXPECT_EQ(max_attempts(policy), 1);
  EXPECT_EQ(next_attempt_at(policy, 1, t0, std::nullopt, 0.3), std::nullopt);
}

TEST(RetryPolicy, ValidateAcceptsTheDefault) { EXPECT_TRUE(validate(RetryPolicy{}).has_value()); }

TEST(RetryPolicy, ValidateNamesANegativeDelay) {
  RetryPolicy policy;
  policy.delays[2] = -1ms;
  auto checked = validate(policy);
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(checked.error().field, "delays");
  EXPECT_NE(checked.error().message.find("after attempt 3"), std::string::npos)
      << checked.error().message;
}

TEST(RetryPolicy, ValidateNamesJitterOutsideZeroToOne) {
  for (double jitter : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    RetryPolicy policy;
    policy.jitter = jitter;
    auto checked = validate(policy);
    ASSERT_FALSE(checked.has_value()) << jitter;
    EXPECT_EQ(checked.error().field, "jitter");
  }
}

TEST(RetryPolicy, ValidateNamesANegativeRetryAfterLimit) {
  RetryPolicy policy;
  policy.max_retry_after = -1s;
  auto checked = validate(policy);
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().field, "max_retry_after");
}

}  // namespace
}  // namespace herald::notify
