#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "herald/error.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_feed.hpp"
#include "herald/event_store.hpp"

namespace herald::cluster {

/// Configuration of a `NatsFeed`.
struct NatsFeedOptions {
  /// The NATS server ("nats://host:4222"); several may be given, separated by commas.
  std::string url = "nats://127.0.0.1:4222";
  /// The JetStream stream the relay (`NatsRelay`) writes.
  std::string stream = "HERALD_EVENTS";
  /// The relay's subject prefix: the feed reads `<prefix>.>`.
  std::string subject_prefix = "herald.events";
  /// Decodes the messages' bodies; must outlive the feed.
  const EventCatalog* catalog = nullptr;
  /// How long a JetStream request (creating the subscription) waits for an answer.
  std::chrono::milliseconds request_timeout{2000};
  /// How long the store may stay ahead of the stream, with nothing arriving from it, before the
  /// feed reads the store itself (NATS down, or no relay running). At least 100 ms.
  std::chrono::milliseconds store_fallback_after{3000};
  /// Called on the caller's thread when the subscription fails or a message is not one of the
  /// relay's. Default: print to stderr once per failure streak.
  std::function<void(const Error&)> on_error;
};

/// A node's feed of the store's events from the JetStream stream the relay writes, so that every
/// node serves every node's events while the store is read once, by the relay.
///
/// It follows the stream with an ordered consumer (no acknowledgments; the client recreates it
/// after a gap or missed heartbeats) starting at the stream's last message. Each message carries
/// its store position (`Herald-Position`); the feed hands out events by position, skipping what
/// it already handed out, and whenever the stream's sequence jumps (the first message after a
/// (re)subscription, messages the client dropped) it reads the events in between from the store,
/// so nothing is skipped. When nothing arrives from the stream while the store has events after
/// the caller's position for longer than `store_fallback_after` (NATS down, no relay running), it
/// reads the store itself, and takes the stream again when it delivers: a stream that lags or
/// stops delays a node's live events but never loses them. Not thread-safe, except `wake` and
/// the counters.
class NatsFeed final : public EventFeed {
 public:
  /// Checks `options` and connects in the background (a server that is down is not an error).
  /// Errors: `invalid_argument` naming a malformed option (url, stream, subject_prefix, a missing
  /// catalog, a fallback under 100 ms); `unavailable` when the client cannot be set up.
  static std::expected<std::unique_ptr<NatsFeed>, Error> create(EventStore& store,
                                                                NatsFeedOptions options);
  ~NatsFeed() override;
  NatsFeed(const NatsFeed&) = delete;
  NatsFeed& operator=(const NatsFeed&) = delete;

  std::expected<std::vector<StoredEvent>, Error> next(std::int64_t after, std::size_t max,
                                                      std::chrono::milliseconds timeout) override;
  void wake() noexcept override;
  bool may_skip() const noexcept override { return false; }

  /// True while connected to a NATS server.
  bool connected() const noexcept;
  /// Events handed out as the stream delivered them.
  std::uint64_t from_stream() const noexcept;
  /// Events handed out from the store (filling a jump in the stream, or while it lagged).
  std::uint64_t from_store() const noexcept;

 private:
  struct Impl;
  explicit NatsFeed(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::cluster
