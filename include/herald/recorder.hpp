#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "herald/error.hpp"
#include "herald/event.hpp"
#include "herald/event_bus.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"

namespace herald {

/// How a `Recorder` hands a newly stored event to the bus.
enum class RecordDispatch : std::uint8_t {
  /// `EventBus::publish`: queued for the bus's dispatcher; `record` returns at once.
  publish,
  /// `EventBus::emit`: the handlers run in the caller's thread before `record` returns.
  emit,
};

/// Configuration of a `Recorder`.
struct RecorderOptions {
  /// Queue the event for the dispatcher (the default) or run the handlers in the caller's thread.
  RecordDispatch dispatch = RecordDispatch::publish;
  /// Called when a stored event could not be published (the bus disabled, or full under
  /// `QueueFullPolicy::refuse`). The event is durable and durable consumers still get it; only
  /// in-process handlers miss it. Default: print to stderr.
  std::function<void(EventRef, const Error&)> on_publish_error;
};

/// Receives the outcome of `Recorder::record_async`: the event's position, or the store's error.
using RecordCallback = std::move_only_function<void(std::expected<std::int64_t, Error>)>;

/// The one call for services: stores an event durably, then hands it to the bus, so an event
/// is never seen by handlers before it is safe (ORIGINAL.md, weakness 6). Thread-safe: the store
/// and the bus are; the recorder keeps no state of its own besides its options. The store and
/// the bus must outlive it.
class Recorder {
 public:
  /// Records into `store` and dispatches on `bus`.
  Recorder(EventStore& store, EventBus& bus, RecorderOptions options = {});

  /// Appends `event` and, when it was newly stored, publishes it; returns its position. An event
  /// whose `event_id` is already stored (a retried request) is not published again and its
  /// stored position is returned. Errors: the store's (nothing was published).
  std::expected<std::int64_t, Error> record(EventPtr event);
  template <Event E>
  std::expected<std::int64_t, Error> record(E event) {
    return record(EventPtr::make(std::move(event)));
  }

  /// Appends `events` in one transaction (all or none), then publishes the newly stored ones in
  /// order; returns their positions in order.
  std::expected<std::vector<std::int64_t>, Error> record_batch(std::span<const EventPtr> events);

  /// Like `record`, without waiting: appends `event` with `EventStore::append_async`; once it is
  /// durable, publishes it when newly stored, then calls `done` with its position. On an error
  /// nothing is published and `done` gets the store's error. Both run on the store's completion
  /// thread, so `done` must not block (with `RecordDispatch::emit` the handlers run there too,
  /// and must not block either). The recorder may be destroyed while calls are pending; the bus
  /// must outlive them (destroying the store completes them).
  void record_async(EventPtr event, RecordCallback done);

 private:
  /// What pending `record_async` calls share with the recorder.
  struct Target {
    EventBus& bus;
    RecorderOptions options;
  };

  static void dispatch(const Target& target, const EventPtr& event);

  EventStore& store_;
  std::shared_ptr<const Target> target_;
};

}  // namespace herald
