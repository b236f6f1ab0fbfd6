#pragma once

#include <memory>
#include <string_view>

#include "herald/durable_consumer.hpp"
#include "herald/event_store.hpp"
#include "herald/notify/notification_rules.hpp"
#include "herald/notify/notification_store.hpp"

namespace herald::notify {

/// The notification consumer's default name (its checkpoint in the event store).
inline constexpr std::string_view notification_consumer_name = "notifications";

/// The durable consumer that turns events into inbox items and deliveries: for each batch it
/// reads, it routes the events in position order over one `DirectoryOverlay` of `notifications`
/// (each event's directory changes are applied to the overlay before the event is routed, so a
/// user created earlier in the batch is known to a later event) and writes the whole batch with
/// `NotificationStore::apply_routing`, in the transaction that moves the consumer's checkpoint;
/// when that fails it does the same one event at a time. A replay or a redelivery after a crash
/// creates nothing new (`apply_routing` skips what exists).
///
/// `options.name` defaults to `notification_consumer_name`. Like the audit consumer it never
/// parks (`max_attempts` is forced to 0): directory changes must apply in position order, and a
/// parked event retried later would move the checkpoint back. A store failure is retried with
/// backoff until it succeeds. An event the rules reject (an error that is not `io` or
/// `unavailable`) is logged and passed with its directory changes and no notifications, so that
/// one malformed event does not stop everyone's notifications. Both stores and `rules` must
/// outlive the consumer.
std::unique_ptr<DurableConsumer> make_notification_consumer(EventStore& store,
                                                            NotificationStore& notifications,
                                                            const NotificationRules& rules,
                                                            ConsumerOptions options = {});

}  // namespace herald::notify
