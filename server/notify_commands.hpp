#pragma once

// `herald notify …`, `herald deliveries …` and `herald webhooks …`: users' notification
// preferences, email addresses and inboxes, the delivery queue, webhook endpoints and Discord
// announcement channels (docs/notifications.md). Each finds the store through --db PATH or
// --store URL, like the store commands.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "herald/notify/notification_rules.hpp"

namespace herald::server {

/// The notification commands, registered on the executable's CLI11 app. Not thread-safe; one per
/// process, alive from parsing to running.
class NotifyCommands {
 public:
  /// Adds `notify`, `deliveries` and `webhooks` with their commands to `app`; `rules` names the
  /// platform's notification kinds and must outlive this object.
  NotifyCommands(CLI::App& app, const notify::NotificationRules& rules);
  ~NotifyCommands();
  NotifyCommands(const NotifyCommands&) = delete;
  NotifyCommands& operator=(const NotifyCommands&) = delete;

  /// True when the command line named one of these commands.
  bool parsed() const;
  /// Runs the parsed command: its output goes to `out`, a failure (one line) to `err`. Returns
  /// the exit status: 0 success, 1 failure, 2 usage error.
  int run(std::FILE* out, std::FILE* err);

 private:
  struct Commands;
  std::unique_ptr<Commands> commands_;
};

}  // namespace herald::server
