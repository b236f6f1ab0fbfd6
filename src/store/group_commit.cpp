#include "store/group_commit.hpp"

#include <algorithm>
#include <cassert>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace herald {

struct GroupCommit::Entry {
  /// The rows to write: the caller's (blocking) or `owned_rows` (asynchronous).
  std::span<const GroupCommitRequest> rows;
  std::size_t bytes = 0;
  bool single = true;
  /// Asynchronous requests own their events, wire forms and the rows viewing them.
  std::vector<EventPtr> events;
  std::vector<std::string> bodies;
  std::vector<GroupCommitRequest> owned_rows;
  /// Empty for a blocking request.
  std::variant<std::monostate, AppendCallback, BatchCallback> callback;
  /// A blocking request's outcome, set by the leader, which then wakes `wake`.
  std::optional<BatchOutcome> outcome;
  std::condition_variable wake;

  bool async() const { return !std::holds_alternative<std::monostate>(callback); }
};

struct GroupCommit::Completion {
  std::variant<AppendCallback, BatchCallback> callback;
  BatchOutcome outcome;
  /// Events this request holds of `max_queued_events`, released as its callback starts.
  std::size_t async_events = 0;
  /// The request, freed on the completion thread rather than in the leader's.
  std::unique_ptr<Entry> entry;
};

namespace {

std::size_t bytes_of(std::span<const GroupCommitRequest> rows) {
  std::size_t bytes = 0;
  for (const GroupCommitRequest& row : rows) bytes += row.body.size();
  return bytes;
}

}  // namespace

GroupCommit::GroupCommit(CommitFn commit, GroupCommitOptions options)
    : commit_(std::move(commit)), options_(std::move(options)) {
  options_.max_group_events = std::max<std::size_t>(options_.max_group_events, 1);
  options_.max_queued_events = std::max<std::size_t>(options_.max_queued_events, 1);
  committer_ = std::thread([this] { committer_loop(); });
  completer_ = std::thread([this] { completion_loop(); });
}

GroupCommit::~GroupCommit() { close(); }

void GroupCommit::close() {
  assert(std::this_thread::get_id() != completer_.get_id() &&
         "a store must not be closed from an append callback");
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  committer_wake_.notify_one();
  if (committer_.joinable()) committer_.join();
  {
    std::lock_guard lock(mutex_);
    committer_done_ = true;
  }
  completion_wake_.notify_one();
  if (completer_.joinable()) completer_.join();
}

Error GroupCommit::refusal(std::string_view why) const {
  return Error{ErrorCode::unavailable, options_.where + ": " + std::string(why), {}};
}

// --- blocking requests ---

GroupCommit::Outcome GroupCommit::submit(const GroupCommitRequest& request) {
  Entry entry;
  entry.rows = std::span(&request, 1);
  entry.bytes = request.body.size();
  auto outcome = submit_blocking(entry);
  if (!outcome) return std::unexpected(std::move(outcome.error()));
  return outcome->front();
}

GroupCommit::BatchOutcome GroupCommit::submit_batch(std::span<const GroupCommitRequest> rows) {
  if (rows.empty()) return std::vector<AppendResult>{};
  Entry entry;
  entry.rows = rows;
  entry.bytes = bytes_of(rows);
  entry.single = false;
  return submit_blocking(entry);
}

GroupCommit::BatchOutcome GroupCommit::submit_blocking(Entry& entry) {
  std::unique_lock lock(mutex_);
  if (closed_) return std::unexpected(refusal("the store is closed; nothing was written"));
  queue_.push_back(&entry);
  queued_events_ += entry.rows.size();
  if (leading_) {
    // Someone commits now; the committer thread takes this request in a later group.
    entry.wake.wait(lock, [&] { return entry.outcome.has_value(); });
    return std::move(*entry.outcome);
  }
  // Nobody commits: lead here, without handing over to another thread, until this request is
  // done (requests queued before it go first).
  leading_ = true;
  while (!entry.outcome) lead_one(lock);
  leading_ = false;
  if (!queue_.empty()) committer_wake_.notify_one();
  return std::move(*entry.outcome);
}

// --- asynchronous requests ---

void GroupCommit::submit_async(EventPtr event, std::string body, AppendCallback done) {
  auto entry = std::make_unique<Entry>();
  entry->bytes = body.size();
  entry->events.push_back(std::move(event));
  entry->bodies.push_back(std::move(body));
  entry->owned_rows.push_back({entry->events.front().ref(), entry->bodies.front()});
  entry->rows = entry->owned_rows;
  entry->callback = std::move(done);
  submit_entry(std::move(entry));
}

void GroupCommit::submit_batch_async(std::vector<EventPtr> events, std::vector<std::string> bodies,
                                     BatchCallback done) {
  assert(events.size() == bodies.size());
  if (events.empty()) {
    push_completion({.callback = std::move(done), .outcome = std::vector<AppendResult>{}});
    return;
  }
  auto entry = std::make_unique<Entry>();
  entry->single = false;
  entry->events = std::move(events);
  entry->bodies = std::move(bodies);
  entry->owned_rows.reserve(entry->events.size());
  for (std::size_t i = 0; i < entry->events.size(); ++i) {
    entry->owned_rows.push_back({entry->events[i].ref(), entry->bodies[i]});
  }
  entry->rows = entry->owned_rows;
  entry->bytes = bytes_of(entry->rows);
  entry->callback = std::move(done);
  submit_entry(std::move(entry));
}

void GroupCommit::submit_entry(std::unique_ptr<Entry> entry) {
  const std::size_t events = entry->rows.size();
  std::optional<Error> refused;
  bool wake_committer = false;
  {
    std::lock_guard lock(mutex_);
    const std::size_t held = queued_async_events_.load();
    if (closed_) {
      refused = refusal("the store is closed; nothing was written");
    } else if (held > 0 && held + events > options_.max_queued_events) {
      refused = refusal(std::to_string(held) + " events of asynchronous appends are queued and " +
                        std::to_string(events) + " more would pass the limit of " +
                        std::to_string(options_.max_queued_events) +
                        " (StoreOptions::max_queued_events); nothing was written: retry once "
                        "earlier appends have completed, or raise the limit");
    } else {
      queued_async_events_ += events;
      queued_events_ += events;
      queue_.push_back(entry.release());
      wake_committer = !leading_;
    }
  }
  if (refused) {
    Completion completion{.outcome = std::unexpected(std::move(*refused))};
    if (auto* single = std::get_if<AppendCallback>(&entry->callback)) {
      completion.callback = std::move(*single);
    } else {
      completion.callback = std::move(std::get<BatchCallback>(entry->callback));
    }
    completion.entry = std::move(entry);
    push_completion(std::move(completion));
    return;
  }
  if (wake_committer) committer_wake_.notify_one();
}

void GroupCommit::fail_async(AppendCallback done, Error error) {
  push_completion({.callback = std::move(done), .outcome = std::unexpected(std::move(error))});
}

void GroupCommit::fail_async(BatchCallback done, Error error) {
  push_completion({.callback = std::move(done), .outcome = std::unexpected(std::move(error))});
}

void GroupCommit::push_completion(Completion completion) {
  {
    std::lock_guard lock(mutex_);
    completions_.push_back(std::move(completion));
  }
  completion_wake_.notify_one();
}

// --- committing ---

void GroupCommit::lead_one(std::unique_lock<std::mutex>& lock) {
  assert(leading_ && !queue_.empty());
  // The group: queued requests in order while they fit, and always the first one.
  std::vector<Entry*> group;
  std::size_t events = 0;
  std::size_t bytes = 0;
  while (!queue_.empty()) {
    Entry* next = queue_.front();
    const bool fits = events + next->rows.size() <= options_.max_group_events &&
                      bytes + next->bytes <= options_.max_group_bytes;
    if (!group.empty() && !fits) break;
    group.push_back(next);
    events += next->rows.size();
    bytes += next->bytes;
    queue_.pop_front();
  }
  lock.unlock();

  std::vector<BatchOutcome> outcomes = run_group(group);

  lock.lock();
  queued_events_ -= events;
  stats_.events += events;
  stats_.requests += group.size();
  stats_.largest_group = std::max(stats_.largest_group, events);
  bool completed_async = false;
  for (std::size_t i = 0; i < group.size(); ++i) {
    Entry* entry = group[i];
    if (entry->single) ++stats_.single_requests;
    if (!entry->async()) {
      // The caller owns the entry and returns once it sees the outcome; touch it no more.
      entry->outcome = std::move(outcomes[i]);
      entry->wake.notify_one();
      continue;
    }
    Completion completion{.outcome = std::move(outcomes[i]), .async_events = entry->rows.size()};
    if (auto* single = std::get_if<AppendCallback>(&entry->callback)) {
      completion.callback = std::move(*single);
    } else {
      completion.callback = std::move(std::get<BatchCallback>(entry->callback));
    }
    completion.entry.reset(entry);
    completions_.push_back(std::move(completion));
    completed_async = true;
  }
  if (completed_async) completion_wake_.notify_one();
}

GroupCommit::BatchOutcome GroupCommit::guarded_commit(std::span<const GroupCommitRequest> rows) {
  {
    std::lock_guard lock(mutex_);
    ++stats_.transactions;
  }
  // An exception escaping here would leave the group's callers waiting for good.
  try {
    auto committed = commit_(rows);
    assert(!committed || committed->size() == rows.size());
    return committed;
  } catch (const std::exception& e) {
    return std::unexpected(
        Error{ErrorCode::internal, std::string("group commit failed: ") + e.what(), {}});
  }
}

std::vector<GroupCommit::BatchOutcome> GroupCommit::run_group(std::span<Entry* const> group) {
  std::vector<BatchOutcome> outcomes;
  outcomes.reserve(group.size());
  if (group.size() == 1) {
    outcomes.push_back(guarded_commit(group.front()->rows));
    return outcomes;
  }
  std::vector<GroupCommitRequest> rows;
  for (const Entry* entry : group) rows.insert(rows.end(), entry->rows.begin(), entry->rows.end());
  auto committed = guarded_commit(rows);
  if (committed) {
    auto next = committed->begin();
    for (const Entry* entry : group) {
      const auto end = next + static_cast<std::ptrdiff_t>(entry->rows.size());
      outcomes.emplace_back(std::vector<AppendResult>(next, end));
      next = end;
    }
    return outcomes;
  }
  const ErrorCode code = committed.error().code;
  if (code == ErrorCode::unavailable || code == ErrorCode::io) {
    for (std::size_t i = 0; i < group.size(); ++i) {
      outcomes.emplace_back(std::unexpected(committed.error()));
    }
    return outcomes;
  }
  // One request may have failed the group: give each its own transaction and its own answer.
  for (const Entry* entry : group) outcomes.push_back(guarded_commit(entry->rows));
  return outcomes;
}

void GroupCommit::committer_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    committer_wake_.wait(
        lock, [&] { return (!queue_.empty() && !leading_) || (closed_ && queue_.empty()); });
    if (queue_.empty()) return;  // closed, and every request committed
    leading_ = true;
    lead_one(lock);
    leading_ = false;
  }
}

void GroupCommit::completion_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    completion_wake_.wait(lock, [&] { return !completions_.empty() || committer_done_; });
    if (completions_.empty()) return;  // the committer has ended: no more will come
    std::deque<Completion> ready;
    ready.swap(completions_);
    lock.unlock();
    for (Completion& completion : ready) {
      queued_async_events_ -= completion.async_events;
      if (auto* single = std::get_if<AppendCallback>(&completion.callback)) {
        if (completion.outcome) {
          (*single)(completion.outcome->front());
        } else {
          (*single)(std::unexpected(std::move(completion.outcome.error())));
        }
      } else {
        std::get<BatchCallback>(completion.callback)(std::move(completion.outcome));
      }
      completion.entry.reset();
    }
    ready.clear();
    lock.lock();
  }
}

GroupCommitStats GroupCommit::stats() const {
  std::lock_guard lock(mutex_);
  GroupCommitStats stats = stats_;
  stats.queued = queued_events_;
  stats.queued_async = queued_async_events_.load();
  return stats;
}

}  // namespace herald
