#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"

namespace herald {

/// One event as the commit callback sees it.
struct GroupCommitRequest {
  EventRef event;
  /// The event's wire form, encoded by the appender before it queued (outside any lock).
  std::string_view body;
};

/// Counters of a `GroupCommit`, for tests and metrics.
struct GroupCommitStats {
  /// Calls of the commit callback (each one transaction, successful or not).
  std::uint64_t transactions = 0;
  /// Requests completed (with a result or an error): single appends and batches, blocking or not.
  std::uint64_t requests = 0;
  /// Of those, single appends.
  std::uint64_t single_requests = 0;
  /// Events of the completed requests.
  std::uint64_t events = 0;
  /// The most events one transaction took.
  std::size_t largest_group = 0;
  /// Events queued now, the ones being committed included.
  std::size_t queued = 0;
  /// Of those, the events of asynchronous requests (what `max_queued_events` bounds).
  std::size_t queued_async = 0;
};

/// Limits of a `GroupCommit`.
struct GroupCommitOptions {
  /// The most events one transaction takes (a larger batch still goes, alone). At least 1.
  std::size_t max_group_events = 1024;
  /// The most encoded bytes one transaction takes (a larger request still goes, alone).
  std::size_t max_group_bytes = std::size_t{4} << 20;
  /// The most events of asynchronous requests queued or being committed at once.
  std::size_t max_queued_events = 10000;
  /// How errors name the store: "herald store 'events.db'".
  std::string where;
};

/// Group commit: appends queued together share one transaction, so N appends waiting at once
/// cost one commit (one fsync) instead of N. Blocking and asynchronous requests share the queue.
///
/// Thread-safe. Requests are committed one group at a time, in queue order, by whichever thread
/// holds the lead: a blocking caller that finds nobody committing leads itself (so a lone
/// `submit` commits in its own thread with no hand-off, as in LevelDB's writer queue); otherwise
/// the store-owned committer thread leads as soon as requests are queued, with no timer, so a
/// lone asynchronous request is committed at once and, while a commit runs, new requests queue
/// up and form the next group. A group takes queued requests in order up to `max_group_events`
/// events and `max_group_bytes` bytes; a batch is never split.
///
/// The commit callback owns the transaction: it must commit all of `rows` or none of them. It
/// returns one `AppendResult` per row, in order, or one error for all (after rolling back). When
/// a group of several requests fails with an error that may come from one request's content
/// (`invalid_argument`, `too_large`, `conflict`, `internal`), each request is retried alone in
/// its own transaction, so one bad event does not fail the others (a batch stays all or none);
/// `unavailable` (database full or locked) and `io` errors fail the whole group at once, since
/// retrying would only repeat them. Retrying is safe because appends are idempotent by
/// `event_id`.
///
/// Asynchronous callbacks run on a second store-owned thread, the completion thread, one at a
/// time, so the next group commits while they run; they must not block. Blocking callers are
/// woken by the leader directly.
class GroupCommit {
 public:
  using Outcome = std::expected<AppendResult, Error>;
  using BatchOutcome = std::expected<std::vector<AppendResult>, Error>;
  using CommitFn = std::function<BatchOutcome(std::span<const GroupCommitRequest> rows)>;

  /// Starts the committer and completion threads. `commit` is called one call at a time, from
  /// the committer thread or a blocking caller's.
  GroupCommit(CommitFn commit, GroupCommitOptions options);
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;
  /// Closes (see `close`).
  ~GroupCommit();

  /// Appends `request` durably; blocks until its transaction committed or failed. `request`
  /// must stay valid until the call returns.
  Outcome submit(const GroupCommitRequest& request);
  /// Appends `rows` in order, all or none, sharing a transaction with other requests; blocks
  /// until it committed or failed.
  BatchOutcome submit_batch(std::span<const GroupCommitRequest> rows);

  /// Queues `event` (whose wire form is `body`) and returns; `done` runs on the completion
  /// thread once its transaction committed or failed. When `max_queued_events` events of
  /// asynchronous requests are queued already, or after `close`, `done` gets `unavailable`
  /// instead (also on the completion thread) and nothing is written.
  void submit_async(EventPtr event, std::string body, AppendCallback done);
  /// Queues `events` (wire forms `bodies`) as one all-or-none request; as `submit_async`. A batch
  /// larger than `max_queued_events` is accepted when no other asynchronous request is queued.
  void submit_batch_async(std::vector<EventPtr> events, std::vector<std::string> bodies,
                          BatchCallback done);

  /// Hands `error` to `done` on the completion thread (a request refused before queuing).
  void fail_async(AppendCallback done, Error error);
  void fail_async(BatchCallback done, Error error);

  /// Stops accepting requests (later ones get `unavailable`), commits every queued request,
  /// runs every callback, then ends both threads. Idempotent. Must not be called from a callback
  /// or while a blocking `submit` is running.
  void close();

  GroupCommitStats stats() const;

 private:
  struct Entry;
  struct Completion;

  BatchOutcome submit_blocking(Entry& entry);
  void submit_entry(std::unique_ptr<Entry> entry);
  void push_completion(Completion completion);
  void lead_one(std::unique_lock<std::mutex>& lock);
  std::vector<BatchOutcome> run_group(std::span<Entry* const> group);
  BatchOutcome guarded_commit(std::span<const GroupCommitRequest> rows);
  void committer_loop();
  void completion_loop();
  Error refusal(std::string_view why) const;

  CommitFn commit_;
  GroupCommitOptions options_;

  mutable std::mutex mutex_;
  /// Wakes the committer thread: requests queued while nobody leads, or closing.
  std::condition_variable committer_wake_;
  /// Wakes the completion thread: callbacks to run, or the committer has ended.
  std::condition_variable completion_wake_;
  std::deque<Entry*> queue_;
  /// Callbacks whose requests are done, in completion order.
  std::deque<Completion> completions_;
  /// A thread is committing a group (only one at a time, so groups commit in queue order).
  bool leading_ = false;
  bool closed_ = false;
  bool committer_done_ = false;
  std::size_t queued_events_ = 0;
  /// Events of asynchronous requests accepted whose callbacks have not started yet.
  std::atomic<std::size_t> queued_async_events_{0};
  GroupCommitStats stats_;

  std::thread committer_;
  std::thread completer_;
};

}  // namespace herald
