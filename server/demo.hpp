#pragma once

#include <cstdint>
#include <cstdio>
#include <expected>
#include <string>

#include "herald/error.hpp"

namespace herald::server {

/// Options of `herald demo`.
struct DemoOptions {
  /// Seeds the simulated day: the same seed tells the same day (event ids, dates and handler
  /// durations aside).
  std::uint64_t seed = 1;
  /// Prints only the end-of-day summary and stats, not the lines of each event.
  bool quiet = false;
  /// Where to record the day: a SQLite file or a PostgreSQL URL (`StoreOptions::location`).
  /// Empty keeps it in memory, on the bus alone.
  std::string store_location;
  /// Send every event to a herald server's API instead ("http://127.0.0.1:8080"), with
  /// `token` (which needs the ingest scope). Exclusive with `store_location`.
  std::string server_url;
  std::string token;
  /// How the summary names this executable in the commands it suggests (argv[0]).
  std::string program = "herald";
};

/// Runs "a day on the platform": emits every type of the platform catalog, in a plausible order,
/// through its own EventBus with an audit handler, a notifier and a few others, and prints what
/// they do and their stats to `out`. With a `store_location`, each event is first appended to
/// that store (created if missing) and only then handed to the bus, and the platform's durable
/// consumers (the audit log, the Discord role sync) follow the store while the day runs; the
/// summary then says what the store holds. Not thread-safe (it owns its bus for the duration).
/// Returns the store's error if it cannot be opened or an append fails, and an `internal` error
/// if the day did not cover the whole catalog.
std::expected<void, Error> run_demo(const DemoOptions& options, std::FILE* out);

}  // namespace herald::server
