#pragma once

// `herald serve`: the HTTP API and live stream over a store, with the platform's durable
// consumers running beside it (docs/http-api.md, docs/operations.md).

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

namespace herald::server {

/// The serve command, registered on the executable's CLI11 app. One per process.
class ServeCommand {
 public:
  /// Adds `serve` and its flags (each also read from a HERALD_* environment variable).
  explicit ServeCommand(CLI::App& app);
  ~ServeCommand();
  ServeCommand(const ServeCommand&) = delete;
  ServeCommand& operator=(const ServeCommand&) = delete;

  /// True when the command line named `serve`.
  bool parsed() const;
  /// Serves until SIGTERM or SIGINT, then stops gracefully. Returns the exit status: 0 after a
  /// clean stop, 1 when the store cannot be opened or the address bound, 2 on a usage error.
  int run(std::FILE* out);

 private:
  struct Flags;
  std::unique_ptr<Flags> flags_;
  CLI::App* command_ = nullptr;
};

}  // namespace herald::server
