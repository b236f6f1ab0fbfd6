#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_store.hpp"

namespace herald {

/// Where a node's live stream takes new events from: the store itself (one node), or a copy of the
/// store's events carried between nodes (`herald::cluster::NatsFeed`). Whatever carries them, a
/// feed hands out the store's events by position: in position order, none skipped, so a follower
/// that knows the last position it handed out can switch between feeds, or fill a gap from the
/// store, without a seam.
class EventFeed {
 public:
  virtual ~EventFeed() = default;

  /// Waits up to `timeout` for events after position `after` and returns up to `max` of them in
  /// position order, every stored event after `after` up to the last one returned included; an
  /// empty vector when none came in time (or `wake()` was called). Called from one thread.
  virtual std::expected<std::vector<StoredEvent>, Error> next(
      std::int64_t after, std::size_t max, std::chrono::milliseconds timeout) = 0;
  /// Makes a `next` in progress return soon (empty), so its caller can stop. Any thread.
  virtual void wake() noexcept = 0;
  /// True when a follower with nobody to hand events to may jump to the store's head instead of
  /// reading every event (the store feed); false when every event must pass through `next` (a
  /// feed whose events also go to the node's in-process bus).
  virtual bool may_skip() const noexcept = 0;
};

/// The feed of one node: reads the store after `after` and waits for appends
/// (`EventStore::wait_for`: in-process wake-up, and LISTEN/NOTIFY on PostgreSQL).
class StoreFeed final : public EventFeed {
 public:
  /// Follows `store`, which must outlive the feed.
  explicit StoreFeed(EventStore& store) : store_(store) {}

  std::expected<std::vector<StoredEvent>, Error> next(std::int64_t after, std::size_t max,
                                                      std::chrono::milliseconds timeout) override {
    auto events = store_.read_forward(after, max);
    if (!events || !events->empty()) return events;
    auto head = store_.wait_for(after, timeout);
    if (!head) return std::unexpected(std::move(head.error()));
    if (*head <= after) return std::vector<StoredEvent>{};
    return store_.read_forward(after, max);
  }
  void wake() noexcept override { store_.wake_waiters(); }
  bool may_skip() const noexcept override { return true; }

 private:
  EventStore& store_;
};

}  // namespace herald
