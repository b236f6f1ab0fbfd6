#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "herald/error.hpp"

namespace herald::cluster {

/// Configuration of a `LeaderLease`.
struct LeaderLeaseOptions {
  /// The store the nodes share: a PostgreSQL URL ("postgresql://user@host/db"), where the lease
  /// is an advisory lock, or a SQLite file path, where the one process is always the leader.
  std::string location;
  /// The role the lease is for, e.g. "consumer:audit"; 1 to 200 printable ASCII characters. Every
  /// node uses the same name for the same role.
  std::string role;
  /// How often a follower tries to take the lock, and a leader checks that its connection holds.
  std::chrono::milliseconds retry_interval{500};
  /// Called on the lease's thread when this process becomes the leader: start the role here.
  /// Must not throw.
  std::function<void()> on_acquired;
  /// Called when this process stops being the leader: on the lease's thread when its lock
  /// connection broke, on the caller's thread in `stop()` (before the lock is released). Stop the
  /// role here, at once. Must not throw.
  std::function<void()> on_lost;
  /// Called on the lease's thread when a try or a check fails (the server is unreachable, a query
  /// failed). Default: print to stderr once per failure streak.
  std::function<void(const Error&)> on_error;
};

/// The PostgreSQL advisory lock key of `role`: a stable 64-bit FNV-1a hash of "herald:" + role,
/// the same on every node and across releases.
std::int64_t advisory_lock_key(std::string_view role) noexcept;

/// Leadership of one role among the processes that share a store: at most one process holds it at
/// a time. Thread-safe: every member may be called from any thread except from the callbacks,
/// which must not call `stop()`.
///
/// On PostgreSQL the lease is a session-level advisory lock (`pg_try_advisory_lock`) taken on a
/// connection of its own that the holder keeps open. When the holder's process dies, the server
/// ends its session and drops the lock, and another process's next try takes it. A holder checks
/// its connection every `retry_interval`; when the connection breaks it calls `on_lost` at once,
/// since the server may already have given the lock to another process. On SQLite (one machine,
/// one process writing) the lease is held from `start()` to `stop()`. See docs/cluster.md.
class LeaderLease {
 public:
  /// Checks `options` and builds a stopped lease. Errors: `invalid_argument` for an empty
  /// location, a role that is empty, too long or not printable ASCII, or a retry interval below
  /// 10 ms.
  static std::expected<std::unique_ptr<LeaderLease>, Error> create(LeaderLeaseOptions options);
  /// Stops the lease (`stop()`).
  ~LeaderLease();
  LeaderLease(const LeaderLease&) = delete;
  LeaderLease& operator=(const LeaderLease&) = delete;

  /// Starts trying for the lock on a thread of its own. Errors: `conflict` when already started.
  std::expected<void, Error> start();
  /// Stops trying; when leading, calls `on_lost` and then releases the lock (closes the
  /// connection). Idempotent.
  void stop();
  /// True while this process holds the lease (between `on_acquired` and `on_lost`).
  bool is_leader() const noexcept;
  /// The role's name.
  const std::string& role() const noexcept;

 private:
  struct State;
  explicit LeaderLease(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace herald::cluster
