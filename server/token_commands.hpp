#pragma once

// `herald token create|list|revoke`: the API tokens `herald serve` accepts (docs/security.md).
// Each finds the store through --db PATH or --store URL, like the store commands.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

namespace herald::server {

/// The token commands, registered on the executable's CLI11 app. Not thread-safe; one per
/// process, alive from parsing to running.
class TokenCommands {
 public:
  /// Adds `token` and its commands to `app`.
  explicit TokenCommands(CLI::App& app);
  ~TokenCommands();
  TokenCommands(const TokenCommands&) = delete;
  TokenCommands& operator=(const TokenCommands&) = delete;

  /// True when the command line named one of these commands.
  bool parsed() const;
  /// Runs the parsed command: its output goes to `out` (a created token alone on the first
  /// line), notes and a failure (one line) to `err`. Returns the exit status: 0 success,
  /// 1 failure, 2 usage error.
  int run(std::FILE* out, std::FILE* err);

 private:
  struct Commands;
  std::unique_ptr<Commands> commands_;
};

}  // namespace herald::server
