#pragma once

// The commands that read and operate the event store: `herald events`, `herald audit`,
// `herald consumers`, `herald replay` and `herald parked` (docs/store.md, docs/audit.md,
// docs/consumers.md). Each finds the store through --db PATH or --store URL.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "herald/error.hpp"
#include "herald/event_store.hpp"

namespace herald::server {

/// The --db and --store flags of one command, as parsed.
struct StoreFlags {
  /// --db PATH: a SQLite file.
  std::string db;
  /// --store URL: a PostgreSQL URL.
  std::string store;
  CLI::Option* db_option = nullptr;
  CLI::Option* store_option = nullptr;
};

/// Adds --db PATH and --store URL to `command`; `db_help` describes --db (its default).
void add_store_flags(CLI::App& command, StoreFlags& flags, std::string_view db_help);

/// The store location the flags name: --db's path or --store's URL; when neither is given, and
/// `use_environment` is set, HERALD_DB or HERALD_STORE; else `fallback`. Errors
/// (`invalid_argument`, a usage error): both flags (or both variables), an empty path, a URL
/// given to --db or a path given to --store.
std::expected<std::string, Error> resolve_store_location(const StoreFlags& flags,
                                                         bool use_environment,
                                                         std::string_view fallback);

/// How messages name a location: 'herald.db', or the PostgreSQL URL without its password and
/// parameters.
std::string describe_location(std::string_view location);

/// True when `text` is a PostgreSQL URL (postgresql:// or postgres://) rather than a SQLite path.
bool is_postgres_url(std::string_view text);

/// Opens the store the flags name (as `resolve_store_location` with the environment and
/// ./herald.db) only when it already holds herald's tables: a missing or empty file, or a
/// database without herald's tables, is reported and never created. Errors: `invalid_argument`
/// for the flags themselves (a usage error); `io` naming the location for anything else.
std::expected<std::unique_ptr<EventStore>, Error> open_existing_store_of(const StoreFlags& flags);

/// The store commands, registered on the executable's CLI11 app. Not thread-safe; one per
/// process, alive from parsing to running.
class StoreCommands {
 public:
  /// Adds the commands and their options to `app`.
  explicit StoreCommands(CLI::App& app);
  ~StoreCommands();
  StoreCommands(const StoreCommands&) = delete;
  StoreCommands& operator=(const StoreCommands&) = delete;

  /// True when the command line named one of these commands.
  bool parsed() const;
  /// Runs the parsed command, printing its output to `out` and a failure as one line on stderr.
  /// Returns the exit status: 0 success, 1 failure, 2 usage error.
  int run(std::FILE* out);

 private:
  struct Commands;
  std::unique_ptr<Commands> commands_;
};

}  // namespace herald::server
