#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "herald/error.hpp"
#include "herald/event_ref.hpp"
#include "herald/event_store.hpp"

namespace herald::cluster {

/// The header that carries an event's store position on every message the relay publishes.
inline constexpr std::string_view position_header = "Herald-Position";
/// The JetStream header the relay sets to the event's id, by which JetStream drops duplicates.
inline constexpr std::string_view message_id_header = "Nats-Msg-Id";

/// Configuration of a `NatsRelay`.
struct NatsRelayOptions {
  /// The NATS server ("nats://host:4222"); several may be given, separated by commas.
  std::string url = "nats://127.0.0.1:4222";
  /// The JetStream stream the events go to; created (file storage) when missing. 1 to 64 of
  /// [A-Za-z0-9_-].
  std::string stream = "HERALD_EVENTS";
  /// The subjects' first tokens: events go to `<prefix>.<organization_id or none>.<event_type>`,
  /// and a stream the relay creates takes `<prefix>.>`. Dot-separated tokens of [A-Za-z0-9_-].
  std::string subject_prefix = "herald.events";
  /// How long JetStream remembers a message id to drop a duplicate (the stream's duplicate
  /// window, set when the relay creates the stream). At least 1 s.
  std::chrono::milliseconds duplicate_window{std::chrono::minutes(10)};
  /// How long a publish, or a stream request, waits for JetStream's answer before it counts as
  /// failed (and is retried).
  std::chrono::milliseconds request_timeout{2000};
  /// The relay's checkpoint name in the store.
  std::string consumer_name = "nats-relay";
  /// The wait before the first retry after a failed publish; doubles, up to `backoff_max`.
  std::chrono::milliseconds backoff_base{100};
  /// The longest wait between two tries while NATS is unreachable.
  std::chrono::milliseconds backoff_max{5000};
  /// Called on the relay's thread when a publish or a stream request fails (it is retried).
  /// Default: print to stderr.
  std::function<void(const Error&)> on_error;
};

/// The subject the relay publishes `event` to: `<prefix>.<organization_id or none>.<event_type>`,
/// with any character of the event type that a NATS subject token cannot hold replaced by '_'.
std::string relay_subject(std::string_view subject_prefix, EventRef event);

/// Publishes every event of the store, in position order, to a JetStream stream. Thread-safe:
/// every member may be called from any thread.
///
/// The relay is a durable consumer (its checkpoint is `consumer_name` in the store) whose handler
/// publishes the event with `Nats-Msg-Id` = the event id and `Herald-Position` = its position, and
/// succeeds only once JetStream acknowledged it: the checkpoint never passes an event JetStream
/// has not stored. On start it also reads the stream's last message and skips the events at or
/// below its `Herald-Position`, so a checkpoint that lagged behind the acknowledged publishes
/// (a crash between publish and checkpoint save) repeats nothing; a publish whose acknowledgment
/// was lost is repeated and dropped by JetStream's duplicate window. While NATS is unreachable the
/// publish fails and is retried with backoff, forever (the consumer never parks), and the relay
/// catches up once NATS answers again; appends to the store are not affected.
///
/// Run one relay per stream at a time: under a `LeaderLease` when several nodes share the store.
/// See docs/cluster.md.
class NatsRelay {
 public:
  /// Checks `options` and builds a stopped relay over `store`, which must outlive it; connects
  /// to NATS in the background (a server that is down is not an error). Errors:
  /// `invalid_argument` naming the option that is malformed (an empty url, a stream name or
  /// subject prefix that NATS would not accept, a duplicate window under 1 s, an empty consumer
  /// name); `unavailable` when the NATS client cannot be set up.
  static std::expected<std::unique_ptr<NatsRelay>, Error> create(EventStore& store,
                                                                 NatsRelayOptions options);
  /// Stops the relay and closes the NATS connection.
  ~NatsRelay();
  NatsRelay(const NatsRelay&) = delete;
  NatsRelay& operator=(const NatsRelay&) = delete;

  /// Starts publishing on a thread of its own, from the checkpoint (or the stream's last
  /// position when that is higher). Errors: `conflict` when running.
  std::expected<void, Error> start();
  /// Stops publishing: the publish in hand finishes or fails, the checkpoint is saved. Idempotent.
  void stop();
  /// True between `start()` and `stop()`.
  bool running() const noexcept;

  /// Waits until every event up to `position` was acknowledged by JetStream (or skipped as
  /// already there) or `timeout` passes; true when reached. For tests and tools.
  bool wait_for_position(std::int64_t position, std::chrono::milliseconds timeout);
  /// Publishes JetStream acknowledged as new messages since this object was created.
  std::uint64_t published() const noexcept;
  /// Publishes JetStream acknowledged as duplicates (it already held the message id).
  std::uint64_t duplicates() const noexcept;
  /// Events skipped because the stream already held their position when the relay started.
  std::uint64_t skipped() const noexcept;

 private:
  class Impl;
  explicit NatsRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::cluster
