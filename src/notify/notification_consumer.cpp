#include "herald/notify/notification_consumer.hpp"

#include <spdlog/spdlog.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "herald/notify/router.hpp"

namespace herald::notify {
namespace {

bool is_store_failure(const Error& error) noexcept {
  return error.code == ErrorCode::io || error.code == ErrorCode::unavailable;
}

/// Routes `event` over `overlay`, which then holds the event's directory changes for the events
/// after it.
std::expected<RoutedEvent, Error> route_one(const StoredEvent& event,
                                            const NotificationRules& rules,
                                            DirectoryOverlay& overlay) {
  // route_event applies the event's directory changes to the overlay itself, so that the events
  // after it in the batch see them.
  auto routed = route_event(event, rules, overlay);
  if (routed) return routed;
  if (is_store_failure(routed.error())) return std::unexpected(std::move(routed.error()));
  // Retrying cannot help an event the rules reject, and the consumer never parks: keep its
  // directory changes, tell nobody, and say so where an operator looks. The overlay may hold
  // part of them already; applying a change twice is harmless.
  std::vector<DirectoryChange> changes = rules.directory_changes(event);
  for (const DirectoryChange& change : changes) overlay.apply(change);
  spdlog::error(
      "notifications: event {} at position {} ({}) could not be routed and notifies nobody: {}",
      event.event->event_id.to_string(), event.position, event.event.event_type(),
      routed.error().message);
  return RoutedEvent{.position = event.position,
                     .event_id = event.event->event_id,
                     .changes = std::move(changes),
                     .inbox = {},
                     .deliveries = {}};
}

std::expected<void, Error> route_and_apply(std::span<const StoredEvent> events,
                                           NotificationStore& notifications,
                                           const NotificationRules& rules,
                                           const std::string& consumer) {
  if (events.empty()) return {};
  // One overlay per call: its reads are cached for its life, and the store changes between calls.
  DirectoryOverlay overlay(notifications);
  std::vector<RoutedEvent> routed;
  routed.reserve(events.size());
  for (const StoredEvent& event : events) {
    auto one = route_one(event, rules, overlay);
    if (!one) return std::unexpected(std::move(one.error()));
    routed.push_back(std::move(*one));
  }
  // Every event goes in, also those that notify nobody, so that the checkpoint apply_routing
  // writes is the last event's: the consumer then finds its own position in the store and does
  // not save a different one (as the audit consumer's append_audit_batch).
  auto applied = notifications.apply_routing(routed, consumer);
  if (!applied) return std::unexpected(std::move(applied.error()));
  return {};
}

}  // namespace

std::unique_ptr<DurableConsumer> make_notification_consumer(EventStore& store,
                                                            NotificationStore& notifications,
                                                            const NotificationRules& rules,
                                                            ConsumerOptions options) {
  if (options.name.empty()) options.name = std::string(notification_consumer_name);
  options.max_attempts = 0;
  const std::string consumer = options.name;
  return std::make_unique<DurableConsumer>(
      store, std::move(options),
      [&notifications, &rules, consumer](const StoredEvent& event,
                                         const Delivery&) -> std::expected<void, Error> {
        return route_and_apply(std::span<const StoredEvent>(&event, 1), notifications, rules,
                               consumer);
      },
      [&notifications, &rules, consumer](std::span<const StoredEvent> events,
                                         std::span<const Delivery>) -> std::expected<void, Error> {
        return route_and_apply(events, notifications, rules, consumer);
      });
}

}  // namespace herald::notify
