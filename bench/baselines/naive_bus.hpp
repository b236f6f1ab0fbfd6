#pragma once

// The event bus most teams write first, used as the baseline herald's EventBus is measured
// against: one std::unordered_map from std::type_index to a vector of {priority, std::function},
// kept sorted by priority when a handler subscribes, with a try/catch around each handler call.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

namespace herald_bench {

/// A naive in-process event bus. NOT thread-safe: one thread subscribes and emits, or the caller
/// serializes every call. Handlers of higher priority run first; equal priorities run in
/// registration order. A handler that throws is counted and the rest still run.
class NaiveBus {
 public:
  using HandlerId = std::uint64_t;

  /// Registers `handler` (callable with `const E&`) for events of type `E`.
  template <class E, class F>
  HandlerId on(F handler, int priority) {
    return add(std::type_index(typeid(E)), priority,
               [handler = std::move(handler)](const void* event) {
                 handler(*static_cast<const E*>(event));
               });
  }

  /// Removes the handler `id` registered for `E`; false when there is none.
  template <class E>
  bool off(HandlerId id) {
    return remove(std::type_index(typeid(E)), id);
  }

  /// Runs every handler of `E` in this thread; returns how many ran.
  template <class E>
  std::size_t emit(const E& event) {
    return dispatch(std::type_index(typeid(E)), &event);
  }

  /// Runs every handler registered for `type` on `event` (an object of that type).
  std::size_t dispatch(std::type_index type, const void* event) {
    auto found = handlers_.find(type);
    if (found == handlers_.end()) return 0;
    for (const Entry& entry : found->second) {
      try {
        entry.call(event);
      } catch (...) {
        failures_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    return found->second.size();
  }

  /// Handler calls that threw.
  std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    int priority;
    HandlerId id;
    std::function<void(const void*)> call;
  };

  HandlerId add(std::type_index type, int priority, std::function<void(const void*)> call) {
    std::vector<Entry>& list = handlers_[type];
    // After every handler of the same or a higher priority: registration order within a level.
    auto at =
        std::upper_bound(list.begin(), list.end(), priority,
                         [](int value, const Entry& entry) { return value > entry.priority; });
    const HandlerId id = ++last_id_;
    list.insert(at, Entry{priority, id, std::move(call)});
    return id;
  }

  bool remove(std::type_index type, HandlerId id) {
    auto found = handlers_.find(type);
    if (found == handlers_.end()) return false;
    std::vector<Entry>& list = found->second;
    auto at =
        std::find_if(list.begin(), list.end(), [id](const Entry& entry) { return entry.id == id; });
    if (at == list.end()) return false;
    list.erase(at);
    return true;
  }

  std::unordered_map<std::type_index, std::vector<Entry>> handlers_;
  HandlerId last_id_ = 0;
  // Atomic so that SharedMutexNaiveBus, which dispatches under a shared lock, stays race-free.
  std::atomic<std::uint64_t> failures_{0};
};

/// The naive bus made thread-safe the usual way: a std::shared_mutex, shared while emitting and
/// exclusive while subscribing or unsubscribing. Thread-safe. A handler must not subscribe or
/// unsubscribe (it would deadlock), which herald's bus allows.
class SharedMutexNaiveBus {
 public:
  using HandlerId = NaiveBus::HandlerId;

  template <class E, class F>
  HandlerId on(F handler, int priority) {
    std::unique_lock lock(mutex_);
    return bus_.on<E>(std::move(handler), priority);
  }

  template <class E>
  bool off(HandlerId id) {
    std::unique_lock lock(mutex_);
    return bus_.off<E>(id);
  }

  template <class E>
  std::size_t emit(const E& event) {
    std::shared_lock lock(mutex_);
    return bus_.emit(event);
  }

 private:
  mutable std::shared_mutex mutex_;
  NaiveBus bus_;
};

}  // namespace herald_bench
