#pragma once

#include <cstdint>
#include <cstdio>
#include <expected>

#include "herald/error.hpp"

namespace herald::server {

/// Options of `herald demo`.
struct DemoOptions {
  /// Seeds the simulated day: the same seed tells the same day (event ids, dates and handler
  /// durations aside).
  std::uint64_t seed = 1;
  /// Prints only the end-of-day summary and stats, not the lines of each event.
  bool quiet = false;
};

/// Runs "a day on the platform": emits every type of the platform catalog, in a plausible order,
/// through its own EventBus with an audit handler, a notifier and a few others, and prints what
/// they do and their stats to `out`. Not thread-safe (it owns its bus for the duration). Returns
/// an `internal` error if the day did not cover the whole catalog.
std::expected<void, Error> run_demo(const DemoOptions& options, std::FILE* out);

}  // namespace herald::server
