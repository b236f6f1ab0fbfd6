#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "herald/event_feed.hpp"
#include "herald/event_store.hpp"

namespace herald::http {

/// One stored event as a stream sends it (the SSE spec, "Interpreting an event stream"): the
/// frame `id: <position>\nevent: <type>\ndata: <event JSON>\n\n`, encoded once for every client,
/// with what the filters look at.
struct StreamFrame {
  std::int64_t position = 0;
  std::string_view event_type;
  std::optional<std::int64_t> organization_id;
  std::string_view entity_type;
  /// The entity id as text; empty when the event has none.
  std::string entity_id;
  Timestamp occurred_at{};
  std::string text;
};

using FramePtr = std::shared_ptr<const StreamFrame>;

/// Builds the frame of `event`.
FramePtr make_frame(const StoredEvent& event);

/// Whether `frame` passes `filter` (the store's filter semantics).
bool matches(const EventFilter& filter, const StreamFrame& frame) noexcept;

/// A live stream client, as the hub sees it.
class StreamSubscriber {
 public:
  virtual ~StreamSubscriber() = default;
  /// New frames in position order. Called on the hub's thread with the hub's lock held: must
  /// not block and must not call back into the hub.
  virtual void deliver(std::span<const FramePtr> frames) = 0;
};

/// Follows a feed of the store's events (the store itself, or the stream that carries them between
/// nodes) from the store's head and hands every new event, encoded once, to every subscribed
/// stream. A feed hands out events by position without skipping any; `subscribe` tells a new
/// client the last position handed out, so the client reads the store up to there and takes the
/// hub's frames after it: no gap and no duplicate at the seam. Thread-safe.
class StreamHub {
 public:
  /// Called on the hub's thread with every batch of events the hub reads, before they reach the
  /// streams (the node's in-process bus). Must not call back into the hub.
  using EventsHandler = std::function<void(std::span<const StoredEvent>)>;

  /// `feed`: where new events come from; null follows `store` itself. `coalesce`: after a batch,
  /// wait at least this long before the next one, so a burst of appends reaches each client in one
  /// write. `on_events`: may be empty.
  StreamHub(EventStore& store, EventFeed* feed, std::chrono::milliseconds coalesce,
            EventsHandler on_events = {});
  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;
  ~StreamHub();

  /// Starts following from the store's head. Errors: the store's.
  std::expected<void, Error> start();
  void stop();

  /// Adds `subscriber`; returns the last position handed out before it was added (every later
  /// one reaches it).
  std::int64_t subscribe(std::shared_ptr<StreamSubscriber> subscriber);
  void unsubscribe(const StreamSubscriber* subscriber);
  std::size_t subscribers() const;

 private:
  void run();
  void run_loop();

  EventStore& store_;
  StoreFeed store_feed_;
  EventFeed* feed_;
  std::chrono::milliseconds coalesce_;
  EventsHandler on_events_;
  mutable std::mutex mutex_;
  std::condition_variable stopped_;
  std::vector<std::shared_ptr<StreamSubscriber>> subscribers_;
  std::int64_t delivered_ = 0;
  bool stop_ = false;
  bool exited_ = true;
  std::thread thread_;
};

}  // namespace herald::http
