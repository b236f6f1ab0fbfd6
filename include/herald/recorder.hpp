#pragma once

#include <cstdint>
#include <expected>
#include <functional>
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

 private:
  void dispatch(const EventPtr& event);

  EventStore& store_;
  EventBus& bus_;
  RecorderOptions options_;
};

}  // namespace herald
