#include "stream_hub.hpp"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "herald/json.hpp"

namespace herald::http {

FramePtr make_frame(const StoredEvent& stored) {
  auto frame = std::make_shared<StreamFrame>();
  const EventRef event = stored.event;
  frame->position = stored.position;
  frame->event_type = event.event_type();
  frame->organization_id = event->organization_id;
  frame->entity_type = event.type().entity_type();
  if (const EntityEvent* entity = event.entity(); entity != nullptr && entity->entity_id) {
    frame->entity_id = to_string(*entity->entity_id);
  }
  frame->occurred_at = event->timestamp;
  const std::string json = encode_event(event);
  frame->text.reserve(json.size() + frame->event_type.size() + 40);
  // Compact JSON has no line breaks (they are escaped inside strings), so one `data:` line holds
  // the whole event.
  fmt::format_to(std::back_inserter(frame->text), "id: {}\nevent: {}\ndata: {}\n\n",
                 stored.position, frame->event_type, json);
  return frame;
}

bool matches(const EventFilter& filter, const StreamFrame& frame) noexcept {
  if (!filter.types.empty() &&
      std::ranges::find(filter.types, frame.event_type) == filter.types.end()) {
    return false;
  }
  if (filter.organization_id && frame.organization_id != filter.organization_id) return false;
  if (filter.entity_type && *filter.entity_type != frame.entity_type) return false;
  if (filter.entity_id && *filter.entity_id != frame.entity_id) return false;
  if (filter.since && frame.occurred_at < *filter.since) return false;
  if (filter.until && !(frame.occurred_at < *filter.until)) return false;
  return true;
}

StreamHub::StreamHub(EventStore& store, EventFeed* feed, std::chrono::milliseconds coalesce,
                     EventsHandler on_events)
    : store_(store),
      store_feed_(store),
      feed_(feed != nullptr ? feed : &store_feed_),
      coalesce_(coalesce),
      on_events_(std::move(on_events)) {}

StreamHub::~StreamHub() { stop(); }

std::expected<void, Error> StreamHub::start() {
  auto head = store_.head();
  if (!head) return std::unexpected(std::move(head.error()));
  {
    std::lock_guard lock(mutex_);
    delivered_ = *head;
    stop_ = false;
    exited_ = false;
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void StreamHub::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stopped_.notify_all();
  if (thread_.joinable()) {
    // The thread may be inside the store's wait_for or the feed's next, which a wake only ends if
    // it is already waiting: wake until the thread says it has left.
    std::unique_lock lock(mutex_);
    while (!exited_) {
      lock.unlock();
      store_.wake_waiters();
      feed_->wake();
      lock.lock();
      stopped_.wait_for(lock, std::chrono::milliseconds(10), [&] { return exited_; });
    }
    lock.unlock();
    thread_.join();
  }
  std::lock_guard lock(mutex_);
  subscribers_.clear();
}

std::int64_t StreamHub::subscribe(std::shared_ptr<StreamSubscriber> subscriber) {
  std::lock_guard lock(mutex_);
  subscribers_.push_back(std::move(subscriber));
  return delivered_;
}

void StreamHub::unsubscribe(const StreamSubscriber* subscriber) {
  std::lock_guard lock(mutex_);
  std::erase_if(subscribers_, [&](const auto& s) { return s.get() == subscriber; });
}

std::size_t StreamHub::subscribers() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

void StreamHub::run() {
  run_loop();
  std::lock_guard lock(mutex_);
  exited_ = true;
  stopped_.notify_all();
}

void StreamHub::run_loop() {
  constexpr std::size_t page = 1000;
  constexpr auto poll = std::chrono::milliseconds(1000);
  std::int64_t position = 0;
  {
    std::lock_guard lock(mutex_);
    position = delivered_;
  }
  std::vector<FramePtr> frames;
  for (;;) {
    bool anyone = false;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      anyone = !subscribers_.empty();
    }
    if (!anyone && feed_->may_skip()) {
      // Nobody to hand events to: move past them without reading them. A client subscribing
      // later reads everything up to `delivered_` from the store itself.
      auto head = store_.head();
      if (head && *head > position) {
        std::lock_guard lock(mutex_);
        // Checked again under the lock: a client that subscribed meanwhile was told the old
        // position, so the events after it must still reach it.
        if (subscribers_.empty()) {
          position = *head;
          delivered_ = position;
          continue;
        }
      } else if (head) {
        if (auto waited = store_.wait_for(position, poll); !waited) {
          std::unique_lock lock(mutex_);
          stopped_.wait_for(lock, poll, [&] { return stop_; });
        }
        continue;
      }
    }
    auto events = feed_->next(position, page, poll);
    if (!events) {
      spdlog::error("event stream: reading events after position {} failed: {}", position,
                    events.error().message);
      std::unique_lock lock(mutex_);
      stopped_.wait_for(lock, poll, [&] { return stop_; });
      continue;
    }
    if (events->empty()) continue;
    if (on_events_) on_events_(*events);
    frames.clear();
    frames.reserve(events->size());
    for (const StoredEvent& event : *events) frames.push_back(make_frame(event));
    position = frames.back()->position;
    {
      // Handing out and moving `delivered_` under one lock is what makes `subscribe` exact.
      std::lock_guard lock(mutex_);
      for (const auto& subscriber : subscribers_) subscriber->deliver(frames);
      delivered_ = position;
    }
    if (events->size() < page && coalesce_.count() > 0) {
      std::unique_lock lock(mutex_);
      stopped_.wait_for(lock, coalesce_, [&] { return stop_; });
    }
  }
}

}  // namespace herald::http
