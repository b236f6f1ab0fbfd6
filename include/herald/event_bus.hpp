#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "herald/error.hpp"
#include "herald/event.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_type.hpp"
#include "herald/priority.hpp"

namespace herald {

namespace detail {
class BusState;

/// A type-erased handler callable: an owned object and a thunk that calls it.
struct HandlerFn {
  using Call = void (*)(void* object, const BaseEvent& event, const EventType& type);
  using Destroy = void (*)(void* object) noexcept;
  void* object = nullptr;
  Call call = nullptr;
  Destroy destroy = nullptr;
};

template <class Fn, class F>
HandlerFn make_handler_fn(F&& f, HandlerFn::Call call) {
  return HandlerFn{new Fn(std::forward<F>(f)), call,
                   [](void* object) noexcept { delete static_cast<Fn*>(object); }};
}
}  // namespace detail

/// A callable that handles events of type `E`: invocable, as an lvalue of its decayed type, with
/// a `const E&`.
template <class F, class E>
concept HandlerOf = std::invocable<std::add_lvalue_reference_t<std::decay_t<F>>,
                                   std::add_lvalue_reference_t<const E>>;

/// A callable that handles events of any type through an `EventRef`.
template <class F>
concept AnyEventHandler = std::invocable<std::add_lvalue_reference_t<std::decay_t<F>>, EventRef>;

/// How a handler is registered.
struct HandlerOptions {
  /// Higher runs first; equal priorities run in registration order.
  Priority priority = Priority::normal;
  /// Shown in error reports and stats; defaults to "handler-<id>".
  std::string name;
};

/// What happens when `publish` finds the queue full.
enum class QueueFullPolicy : std::uint8_t {
  block,   ///< Wait for room (a handler on the dispatcher thread never waits: see docs/bus.md).
  refuse,  ///< Return an `unavailable` error at once.
};

/// How handler durations are measured for `handler_stats()`.
enum class HandlerTiming : std::uint8_t {
  /// Time every handler of one dispatched event in 64 (per thread), and every call of a handler
  /// once one of its timed calls took over 2 µs. Counts are always exact; durations of fast
  /// handlers are estimates from the timed calls.
  adaptive,
  /// Time every call (two clock reads per handler call).
  every_call,
};

/// Configuration of an `EventBus`.
struct EventBusOptions {
  /// Shown in error messages and stats.
  std::string name = "bus";
  /// Most events `publish` may have queued and not yet dispatched.
  std::size_t queue_capacity = 65536;
  QueueFullPolicy when_full = QueueFullPolicy::block;
  HandlerTiming timing = HandlerTiming::adaptive;
};

/// What `emit` did.
struct EmitSummary {
  /// Handlers called (including those that failed).
  std::size_t handlers_run = 0;
  /// Handlers that threw.
  std::size_t failed = 0;
  /// True when the bus was disabled and the event was dropped (and counted).
  bool dropped = false;
};

/// A handler failure as the error hook receives it.
struct HandlerError {
  EventRef event;
  std::string_view handler_name;
  /// `what()` of a std::exception, or a note that a non-standard exception was thrown.
  std::string message;
};

/// Counters of one handler, summed over every thread.
struct HandlerStats {
  std::uint64_t id = 0;
  std::string name;
  /// The handler's event type, or "*" for an `on_any` handler.
  std::string_view event_type;
  Priority priority = Priority::normal;
  std::uint64_t calls = 0;
  std::uint64_t failures = 0;
  /// Calls whose duration was measured (all of them with `HandlerTiming::every_call`).
  std::uint64_t timed_calls = 0;
  /// Total time in the handler (estimated from the timed calls when not all were timed).
  std::chrono::nanoseconds total_duration{0};
  /// Longest timed call.
  std::chrono::nanoseconds max_duration{0};
};

/// Counters of a bus, summed over every thread.
struct BusStats {
  /// Events dispatched (by `emit` or from the queue).
  std::uint64_t dispatched = 0;
  /// Events accepted by `publish`.
  std::uint64_t published = 0;
  /// Events dropped because the bus was disabled.
  std::uint64_t dropped_disabled = 0;
  /// Events `publish` refused because the queue was full (`QueueFullPolicy::refuse`).
  std::uint64_t refused_full = 0;
  /// Events no handler took.
  std::uint64_t unhandled = 0;
  /// Handler calls that threw.
  std::uint64_t handler_failures = 0;
  /// Events queued and not yet dispatched.
  std::size_t queue_depth = 0;
};

/// A registration on a bus: unsubscribes on `unsubscribe()` or destruction. Movable, not
/// copyable. Safe to keep after the bus is gone (it then does nothing). Not thread-safe itself:
/// one owner uses it; the bus it talks to is thread-safe.
class Subscription {
 public:
  Subscription() noexcept = default;
  Subscription(Subscription&& other) noexcept;
  Subscription& operator=(Subscription&& other) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription();

  /// Removes the handler; the change applies from the next event. Idempotent.
  void unsubscribe() noexcept;
  /// True while the handler is registered and this subscription manages it (false after
  /// unsubscribe, `release`, `off`, `clear`, or the bus's destruction).
  bool active() const noexcept;
  /// The handler's id (as in `HandlerStats::id`); 0 for an empty subscription.
  std::uint64_t id() const noexcept { return id_; }
  /// Lets the handler live as long as the bus: the subscription no longer unsubscribes.
  void release() noexcept;

 private:
  friend class EventBus;
  Subscription(std::weak_ptr<detail::BusState> bus, const EventType* type,
               std::uint64_t id) noexcept
      : bus_(std::move(bus)), type_(type), id_(id) {}
  std::weak_ptr<detail::BusState> bus_;
  const EventType* type_ = nullptr;  // nullptr for an on_any handler
  std::uint64_t id_ = 0;
};

/// An in-process, priority-ordered event dispatcher. Thread-safe: every public member may be
/// called from any thread, including from inside a handler.
///
/// `emit` runs the handlers in the caller's thread, highest priority first, each finishing
/// before the next starts; a handler that throws is reported to the error hook and the rest
/// still run. `publish` queues the event for the bus's dispatcher thread (started on first use)
/// and returns at once. Emitting takes no lock: handler lists are immutable snapshots replaced
/// on change and reclaimed once no thread can still be reading them. See docs/bus.md.
class EventBus {
 public:
  explicit EventBus(EventBusOptions options = {});
  /// Dispatches everything already queued, stops the dispatcher, and ends every subscription.
  /// No other thread may use the bus while it is destroyed.
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  /// Registers `handler` for events of type `E`; it is called with `const E&`.
  template <Event E, HandlerOf<E> F>
  [[nodiscard]] Subscription on(F&& handler, HandlerOptions options = {}) {
    using Fn = std::decay_t<F>;
    return subscribe(&type_of<E>(),
                     detail::make_handler_fn<Fn>(
                         std::forward<F>(handler),
                         [](void* object, const BaseEvent& event, const EventType&) {
                           std::invoke(*static_cast<Fn*>(object), static_cast<const E&>(event));
                         }),
                     std::move(options));
  }

  /// Registers `handler` for every event; it is called with an `EventRef`.
  template <AnyEventHandler F>
  [[nodiscard]] Subscription on_any(F&& handler, HandlerOptions options = {}) {
    using Fn = std::decay_t<F>;
    return subscribe(nullptr,
                     detail::make_handler_fn<Fn>(
                         std::forward<F>(handler),
                         [](void* object, const BaseEvent& event, const EventType& type) {
                           std::invoke(*static_cast<Fn*>(object), EventRef(event, type));
                         }),
                     std::move(options));
  }

  /// Runs the handlers of `event` now, in this thread, and reports what ran.
  EmitSummary emit(EventRef event);
  template <Event E>
  EmitSummary emit(const E& event) {
    return emit(EventRef(event));
  }

  /// Queues `event` for the dispatcher thread. Errors: `unavailable` when the bus is disabled
  /// (the event is dropped and counted), when the queue is full under
  /// `QueueFullPolicy::refuse`, or when the bus is being destroyed.
  [[nodiscard]] std::expected<void, Error> publish(EventPtr event);
  template <Event E>
  [[nodiscard]] std::expected<void, Error> publish(E event) {
    return publish(EventPtr::make(std::move(event)));
  }

  /// Waits until every event published before this call has been dispatched. Called from a
  /// handler running on the dispatcher thread it returns at once, since waiting there for the
  /// dispatcher would never end.
  void drain();

  void enable() noexcept;
  /// While disabled, `emit` and `publish` drop events and count them; queued events still run.
  void disable() noexcept;
  bool is_enabled() const noexcept;

  /// Handlers registered, typed and `on_any`.
  std::size_t handler_count() const noexcept;
  /// Handlers registered for `E` (not counting `on_any` handlers).
  template <Event E>
  std::size_t handler_count() const noexcept {
    return handler_count(type_of<E>());
  }
  std::size_t handler_count(const EventType& type) const noexcept;

  /// Removes every handler of `E`; returns how many.
  template <Event E>
  std::size_t off() {
    return off(type_of<E>());
  }
  std::size_t off(const EventType& type);
  /// Removes every handler, typed and `on_any`.
  void clear();

  /// Called for each handler that throws. Runs in the thread that ran the handler; exceptions it
  /// throws are swallowed. Replaces the previous hook; the default logs to stderr.
  void set_error_hook(std::function<void(const HandlerError&)> hook);
  /// Called for an event no handler took (after it is counted).
  void set_unhandled_hook(std::function<void(EventRef)> hook);

  /// Stats of every registered handler, in dispatch order per type.
  std::vector<HandlerStats> handler_stats() const;
  BusStats stats() const;
  const std::string& name() const noexcept;

 private:
  Subscription subscribe(const EventType* type, detail::HandlerFn fn, HandlerOptions options);
  std::shared_ptr<detail::BusState> state_;
};

/// The process-wide bus, for code written in the seed's style (`EventBus.emit(...)`). Tests and
/// libraries should make their own `EventBus` instead.
EventBus& default_bus();

}  // namespace herald
