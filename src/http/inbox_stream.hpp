#pragma once

// What wakes the users' inbox streams: one thread that watches the newest inbox item id.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace herald::notify {
class NotificationStore;
}  // namespace herald::notify

namespace herald::http::detail {

/// Watches `NotificationStore::inbox_head` while any inbox stream is open (polling it every
/// `interval`, waiting on a condition variable in between) and calls every subscriber's wake-up
/// when it moved. The store gives no notification of inbox writes, and one query for every open
/// stream would cost far more than one for them all. Thread-safe.
class InboxWatcher {
 public:
  InboxWatcher(notify::NotificationStore& store, std::chrono::milliseconds interval);
  InboxWatcher(const InboxWatcher&) = delete;
  InboxWatcher& operator=(const InboxWatcher&) = delete;
  ~InboxWatcher();

  /// A registration; unsubscribes when destroyed.
  class Subscription;
  /// Calls `wake` (on the watcher's thread; it must not block) whenever the head moves, until
  /// the returned subscription is destroyed.
  std::unique_ptr<Subscription> subscribe(std::function<void()> wake);
  /// Ends the thread; subscriptions are no longer woken. Idempotent.
  void stop();

 private:
  struct Entry {
    std::uint64_t id = 0;
    std::function<void()> wake;
  };
  void run();
  void unsubscribe(std::uint64_t id);

  notify::NotificationStore& store_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Entry> entries_;
  std::uint64_t next_id_ = 1;
  bool stop_ = false;
  std::thread thread_;
};

class InboxWatcher::Subscription {
 public:
  Subscription(InboxWatcher& watcher, std::uint64_t id) : watcher_(watcher), id_(id) {}
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { watcher_.unsubscribe(id_); }

 private:
  InboxWatcher& watcher_;
  std::uint64_t id_;
};

}  // namespace herald::http::detail
