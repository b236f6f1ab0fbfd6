#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <random>
#include <vector>

#include "herald/error.hpp"
#include "herald/timestamp.hpp"

namespace herald::notify {

/// When a delivery is tried again after a transient failure: the first attempt is made as soon as
/// the delivery exists, each failed attempt n is followed by `delays[n - 1]` (stretched or shrunk
/// by up to `jitter`, never earlier than the provider's Retry-After), and a failure after the
/// last delay makes the delivery dead. A value type; the functions below are pure.
struct RetryPolicy {
  /// The wait after failed attempt 1, 2, …; attempts in all: `delays.size() + 1`. The default
  /// is docs/notifications.md's: 10 s, 1 min, 10 min, 1 h, 6 h, then dead (6 attempts).
  std::vector<std::chrono::milliseconds> delays{std::chrono::seconds{10}, std::chrono::minutes{1},
                                                std::chrono::minutes{10}, std::chrono::hours{1},
                                                std::chrono::hours{6}};
  /// Each delay is multiplied by a factor drawn uniformly from [1 - jitter, 1 + jitter], so that
  /// deliveries that failed together (a provider outage) do not come back together. 0 to 1.
  double jitter = 0.2;
  /// The longest `Retry-After` honoured: a provider asking for more is given up on (dead), since
  /// a delivery days late is worse than none.
  std::chrono::milliseconds max_retry_after = std::chrono::hours{24};
};

/// Attempts the policy allows in all (`delays.size() + 1`).
int max_attempts(const RetryPolicy& policy) noexcept;

/// Checks `policy`. Errors: `invalid_argument` naming the field: a negative delay, jitter outside
/// [0, 1] or not a number, a negative `max_retry_after`.
std::expected<void, Error> validate(const RetryPolicy& policy);

/// The wait after failed attempt `attempt` (1-based) before the next, without jitter; nullopt
/// when `attempt` was the last one the policy allows (or is below 1).
std::optional<std::chrono::milliseconds> base_delay(const RetryPolicy& policy,
                                                    int attempt) noexcept;

/// `delay` scaled by the jitter factor that `sample` (in [0, 1); clamped, NaN as 0.5) picks: 0
/// gives `1 - jitter`, 0.5 gives 1, values towards 1 give `1 + jitter`. Never negative.
std::chrono::milliseconds apply_jitter(std::chrono::milliseconds delay, double jitter,
                                       double sample) noexcept;

/// When the attempt after failed attempt `attempt`, which ended at `now`, is due:
/// `now + apply_jitter(base_delay(attempt), sample)`, or `now + retry_after` when that is later;
/// nullopt (dead) when no attempt is left or `retry_after` exceeds `max_retry_after`.
std::optional<Timestamp> next_attempt_at(const RetryPolicy& policy, int attempt, Timestamp now,
                                         std::optional<std::chrono::milliseconds> retry_after,
                                         double sample) noexcept;

/// `next_attempt_at` with the jitter sample drawn from `rng` (seed it in tests).
std::optional<Timestamp> next_attempt_at(const RetryPolicy& policy, int attempt, Timestamp now,
                                         std::optional<std::chrono::milliseconds> retry_after,
                                         std::mt19937_64& rng);

}  // namespace herald::notify
