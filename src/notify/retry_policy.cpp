#include "herald/notify/retry_policy.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace herald::notify {

int max_attempts(const RetryPolicy& policy) noexcept {
  return static_cast<int>(policy.delays.size()) + 1;
}

std::expected<void, Error> validate(const RetryPolicy& policy) {
  for (std::size_t i = 0; i < policy.delays.size(); ++i) {
    if (policy.delays[i].count() < 0) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "delays",
                                              "expected non-negative waits, got " +
                                                  std::to_string(policy.delays[i].count()) +
                                                  " ms after attempt " + std::to_string(i + 1)));
    }
  }
  if (!(policy.jitter >= 0.0 && policy.jitter <= 1.0)) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "jitter",
                         "expected a fraction from 0 to 1, got " + std::to_string(policy.jitter)));
  }
  if (policy.max_retry_after.count() < 0) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "max_retry_after",
                                            "expected a non-negative duration, got " +
                                                std::to_string(policy.max_retry_after.count()) +
                                                " ms"));
  }
  return {};
}

std::optional<std::chrono::milliseconds> base_delay(const RetryPolicy& policy,
                                                    int attempt) noexcept {
  if (attempt < 1 || attempt > static_cast<int>(policy.delays.size())) return std::nullopt;
  return policy.delays[static_cast<std::size_t>(attempt - 1)];
}

std::chrono::milliseconds apply_jitter(std::chrono::milliseconds delay, double jitter,
                                       double sample) noexcept {
  // A sample that is not a number means no jitter rather than a nonsense delay.
  const double clamped_sample = std::isnan(sample) ? 0.5 : std::clamp(sample, 0.0, 1.0);
  const double clamped_jitter = std::isfinite(jitter) ? std::clamp(jitter, 0.0, 1.0) : 0.0;
  const double factor = 1.0 + clamped_jitter * (2.0 * clamped_sample - 1.0);
  const double scaled = std::round(static_cast<double>(delay.count()) * factor);
  return std::chrono::milliseconds{std::max<std::int64_t>(0, static_cast<std::int64_t>(scaled))};
}

std::optional<Timestamp> next_attempt_at(const RetryPolicy& policy, int attempt, Timestamp now,
                                         std::optional<std::chrono::milliseconds> retry_after,
                                         double sample) noexcept {
  const auto delay = base_delay(policy, attempt);
  if (!delay) return std::nullopt;
  if (retry_after && *retry_after > policy.max_retry_after) return std::nullopt;
  Timestamp due = now + apply_jitter(*delay, policy.jitter, sample);
  // Jitter may shorten a delay, but never below what the provider asked for (RFC 9110 §10.2.3).
  if (retry_after && retry_after->count() > 0) due = std::max(due, now + *retry_after);
  return due;
}

std::optional<Timestamp> next_attempt_at(const RetryPolicy& policy, int attempt, Timestamp now,
                                         std::optional<std::chrono::milliseconds> retry_after,
                                         std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return next_attempt_at(policy, attempt, now, retry_after, unit(rng));
}

}  // namespace herald::notify
