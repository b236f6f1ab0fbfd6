#include "store/group_commit.hpp"

#include <algorithm>
#include <cassert>
#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace herald {

struct GroupCommit::Waiter {
  const GroupCommitRequest* request;
  std::optional<Outcome> outcome;
  // Each waiter has its own condition variable so that completing a group wakes exactly its
  // members and the next leader, not every queued thread.
  std::condition_variable wake;
};

GroupCommit::GroupCommit(CommitFn commit, std::size_t max_group)
    : commit_(std::move(commit)), max_group_(std::max<std::size_t>(max_group, 1)) {}

GroupCommit::~GroupCommit() {
  std::lock_guard lock(mutex_);
  assert(queue_.empty() && "GroupCommit destroyed while appends are waiting");
}

GroupCommit::Outcome GroupCommit::submit(const GroupCommitRequest& request) {
  Waiter self{.request = &request, .outcome = std::nullopt, .wake = {}};
  std::unique_lock lock(mutex_);
  queue_.push_back(&self);
  self.wake.wait(lock, [&] { return self.outcome.has_value() || queue_.front() == &self; });
  if (self.outcome) return std::move(*self.outcome);

  // This thread leads: the group is the front of the queue, which stays queued (and so keeps
  // later arrivals behind it) until the outcomes are handed out.
  const std::size_t size = std::min(queue_.size(), max_group_);
  std::vector<GroupCommitRequest> group;
  group.reserve(size);
  for (std::size_t i = 0; i < size; ++i) group.push_back(*queue_[i]->request);
  lock.unlock();

  std::vector<Outcome> outcomes = run_group(group);

  lock.lock();
  stats_.requests += size;
  stats_.largest_group = std::max(stats_.largest_group, size);
  for (std::size_t i = 0; i < size; ++i) {
    Waiter* member = queue_.front();
    queue_.pop_front();
    member->outcome = std::move(outcomes[i]);
    if (member != &self) member->wake.notify_one();
  }
  if (!queue_.empty()) queue_.front()->wake.notify_one();
  return std::move(*self.outcome);
}

std::expected<std::vector<AppendResult>, Error> GroupCommit::guarded_commit(
    std::span<const GroupCommitRequest> group) {
  // An exception escaping here would leave every waiter of the group blocked for good.
  try {
    return commit_(group);
  } catch (const std::exception& e) {
    return std::unexpected(
        Error{ErrorCode::internal, std::string("group commit failed: ") + e.what(), {}});
  }
}

std::vector<GroupCommit::Outcome> GroupCommit::run_group(
    std::span<const GroupCommitRequest> group) {
  auto count_transaction = [this] {
    std::lock_guard lock(mutex_);
    ++stats_.transactions;
  };
  std::vector<Outcome> outcomes;
  outcomes.reserve(group.size());
  count_transaction();
  auto committed = guarded_commit(group);
  if (committed) {
    assert(committed->size() == group.size());
    for (AppendResult& result : *committed) outcomes.emplace_back(result);
    return outcomes;
  }
  const ErrorCode code = committed.error().code;
  const bool whole_store_failed = code == ErrorCode::unavailable || code == ErrorCode::io;
  if (group.size() == 1 || whole_store_failed) {
    for (std::size_t i = 0; i < group.size(); ++i) {
      outcomes.emplace_back(std::unexpected(committed.error()));
    }
    return outcomes;
  }
  // One request may have failed the group: give each its own transaction and its own answer.
  for (const GroupCommitRequest& request : group) {
    count_transaction();
    auto alone = guarded_commit(std::span(&request, 1));
    if (alone) {
      outcomes.emplace_back(alone->front());
    } else {
      outcomes.emplace_back(std::unexpected(std::move(alone.error())));
    }
  }
  return outcomes;
}

GroupCommitStats GroupCommit::stats() const {
  std::lock_guard lock(mutex_);
  GroupCommitStats stats = stats_;
  stats.queued = queue_.size();
  return stats;
}

}  // namespace herald
