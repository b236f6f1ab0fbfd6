#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace herald::http {

/// Request rate per key (an API token): a token bucket of `burst` requests refilled at `rate`
/// per second. Thread-safe.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  /// `rate` <= 0 turns limiting off. `burst` >= 1 (the bucket's size).
  RateLimiter(double rate, double burst);

  /// Takes one request from `key`'s bucket at `now`: nullopt when allowed, otherwise how long
  /// until one request would be (for `Retry-After`).
  std::optional<std::chrono::milliseconds> acquire(std::int64_t key, Clock::time_point now);

  bool enabled() const noexcept { return rate_ > 0; }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };

  double rate_;
  double burst_;
  std::mutex mutex_;
  std::unordered_map<std::int64_t, Bucket> buckets_;
};

}  // namespace herald::http
