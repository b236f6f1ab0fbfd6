#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"

namespace herald {

/// One appender's event as the commit callback sees it.
struct GroupCommitRequest {
  EventRef event;
  /// The event's wire form, encoded by the appender before it queued (outside any lock).
  std::string_view body;
};

/// Counters of a `GroupCommit`, for tests and metrics.
struct GroupCommitStats {
  /// Calls of the commit callback (each one transaction, successful or not).
  std::uint64_t transactions = 0;
  /// Requests completed (with a result or an error).
  std::uint64_t requests = 0;
  /// The most requests one transaction took.
  std::size_t largest_group = 0;
  /// Requests queued now, the one being committed included.
  std::size_t queued = 0;
};

/// Group commit for single appends: concurrent appenders that each wait for durability share one
/// transaction, so N waiting threads cost one commit (one fsync) instead of N.
///
/// Thread-safe. The scheme is LevelDB's writer queue: `submit` queues the request and waits. The
/// request at the front of the queue is the leader: it takes every queued request, up to
/// `max_group`, in queue order, calls `commit` once for all of them without holding the queue
/// lock, then completes each waiter with its own result and wakes the next front request, which
/// leads the next group. So there is no committer thread and a lone appender commits in its own
/// thread with no hand-off; while a commit runs, new appenders queue and form the next group.
///
/// The callback owns the transaction: it must commit all of `group` or none of it. It returns one
/// `AppendResult` per request, in order, or one error for the whole group (after rolling back).
/// When a group of several fails with an error that may come from one request's content
/// (`invalid_argument`, `too_large`, `conflict`, `internal`), each request is retried alone in
/// its own transaction, so one bad event does not fail the others; `unavailable` (database full
/// or locked) and `io` errors fail the whole group at once, since retrying would only repeat them.
/// Retrying is safe because appends are idempotent by `event_id`.
///
/// To reuse it in a backend: encode the event, check its size, then
/// `return group_commit_.submit({.event = event, .body = encoded});` with a callback that runs
/// BEGIN, inserts each request (ON CONFLICT DO NOTHING, looking up the stored position on
/// conflict), and COMMITs.
class GroupCommit {
 public:
  using Outcome = std::expected<AppendResult, Error>;
  using CommitFn = std::function<std::expected<std::vector<AppendResult>, Error>(
      std::span<const GroupCommitRequest>)>;

  /// `commit` is called from appenders' threads, one call at a time. `max_group` >= 1.
  GroupCommit(CommitFn commit, std::size_t max_group);
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;
  /// Must not be destroyed while a `submit` is running.
  ~GroupCommit();

  /// Appends `request` durably, sharing a transaction with concurrent callers; blocks until its
  /// transaction committed or failed. `request` must stay valid until the call returns.
  Outcome submit(const GroupCommitRequest& request);

  GroupCommitStats stats() const;

 private:
  struct Waiter;

  std::vector<Outcome> run_group(std::span<const GroupCommitRequest> group);
  std::expected<std::vector<AppendResult>, Error> guarded_commit(
      std::span<const GroupCommitRequest> group);

  CommitFn commit_;
  std::size_t max_group_;
  mutable std::mutex mutex_;
  std::deque<Waiter*> queue_;
  GroupCommitStats stats_;
};

}  // namespace herald
