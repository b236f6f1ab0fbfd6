#pragma once

// The queued counterpart of the naive bus: a std::deque guarded by a std::mutex, a
// std::condition_variable to wake one consumer thread, and the naive dispatcher on that thread.
// The baseline for herald's `publish` → dispatcher thread → handler path.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <typeindex>
#include <typeinfo>
#include <utility>

#include "naive_bus.hpp"

namespace herald_bench {

/// An unbounded FIFO of events feeding `dispatcher` on one consumer thread it owns. Thread-safe
/// for `publish` and `drain`; `dispatcher` must be fully set up before the first `publish` and
/// is used only by the consumer thread afterwards.
class NaiveQueue {
 public:
  explicit NaiveQueue(NaiveBus& dispatcher)
      : dispatcher_(dispatcher), consumer_([this] { run(); }) {}
  NaiveQueue(const NaiveQueue&) = delete;
  NaiveQueue& operator=(const NaiveQueue&) = delete;

  /// Dispatches what is still queued, then stops the consumer thread.
  ~NaiveQueue() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    consumer_.join();
  }

  /// Queues a shared event for the consumer thread and returns at once.
  template <class E>
  void publish(std::shared_ptr<const E> event) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(Item{std::type_index(typeid(E)), std::move(event)});
    }
    ready_.notify_one();
  }

  /// Waits until everything published before the call has been dispatched.
  void drain() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return queue_.empty() && !dispatching_; });
  }

 private:
  struct Item {
    std::type_index type;
    std::shared_ptr<const void> event;
  };

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // Stopping, and nothing is left.
      Item item = std::move(queue_.front());
      queue_.pop_front();
      dispatching_ = true;
      lock.unlock();
      dispatcher_.dispatch(item.type, item.event.get());
      item.event.reset();
      lock.lock();
      dispatching_ = false;
      if (queue_.empty()) idle_.notify_all();
    }
  }

  NaiveBus& dispatcher_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable idle_;
  std::deque<Item> queue_;
  bool dispatching_ = false;
  bool stopping_ = false;
  // Last: started once every other member is constructed.
  std::thread consumer_;
};

}  // namespace herald_bench
