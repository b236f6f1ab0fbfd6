#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_store.hpp"

namespace herald::notify {
class NotificationStore;
class NotificationRules;
}  // namespace herald::notify

namespace herald {
class Authenticator;
class DurableConsumer;
class EventBus;
class EventFeed;
class MetricsRegistry;
}  // namespace herald

namespace herald::http {

/// What the server accepts before it refuses (docs/security.md, "Limits"). Each is a flag of
/// `herald serve`.
struct ServerLimits {
  /// Request line and headers together.
  std::size_t header_bytes = 16 * 1024;
  /// A request body (an event, or a batch of up to 1,000).
  std::size_t body_bytes = std::size_t{1} << 20;
  /// Open connections, streams included; more are answered 503 and closed.
  std::size_t connections = 10'000;
  /// How long one request may take to arrive once its first byte did: a client sending a byte a
  /// second is cut off when it passes.
  std::chrono::milliseconds read_timeout{10'000};
  /// How long a keep-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout{60'000};
  /// How long one response write may take (a client that stops reading is cut off).
  std::chrono::milliseconds write_timeout{30'000};
  /// Requests per second per token (a token bucket); 0 turns limiting off.
  double requests_per_second = 1000;
  /// The bucket's size: how many requests a token may send at once after a quiet spell.
  double request_burst = 2000;
  /// Events a stream client may have queued, not yet written, before it is cut off (it resumes
  /// with Last-Event-ID and loses nothing).
  std::size_t stream_queue_events = 8192;
};

/// How `herald serve` runs.
struct ServerOptions {
  /// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80"; port 0 picks a free port (see `port()`).
  std::string listen = "127.0.0.1:8080";
  /// Threads of the I/O pool; 0 means one per core.
  unsigned threads = 0;
  /// Threads that write the live streams (their own I/O context, so that stream writes do not
  /// queue ahead of responses).
  unsigned stream_threads = 1;
  /// Threads that run store reads and other blocking work off the I/O pool.
  unsigned blocking_threads = 4;
  ServerLimits limits;
  /// Interval of the `: heartbeat` comment on idle streams.
  std::chrono::milliseconds heartbeat{15'000};
  /// The `retry:` hint sent to stream clients: how long a browser waits before reconnecting.
  std::chrono::milliseconds stream_retry{2'000};
  /// The most a stream waits to batch new events into one write.
  std::chrono::milliseconds stream_coalesce{5};
  /// How long a stop waits for requests in flight before closing their connections.
  std::chrono::milliseconds shutdown_grace{10'000};
  /// Log every request (method, target with tokens masked, status, time, request id) at info
  /// level; 5xx responses are logged at error level either way.
  bool access_log = false;
  /// Serve GET /metrics without a token (for a scraper on a private network).
  bool public_metrics = false;
};

/// A role this node can lead among the nodes that share a store (docs/cluster.md).
struct NodeRole {
  std::string role;
  bool leader = false;
};

/// The NATS side of a node: where its stream's events come from.
struct NodeNatsStatus {
  /// The server's URL with any user and password removed.
  std::string url;
  std::string stream;
  bool connected = false;
  /// Events this node's feed handed out as the stream delivered them, and read from the store
  /// instead (filling a jump in the stream, or while it lagged).
  std::uint64_t from_stream = 0;
  std::uint64_t from_store = 0;
};

/// What GET /api/v1/cluster reports about this node.
struct NodeStatus {
  std::string node_id;
  /// "sqlite" or "postgresql".
  std::string store;
  /// Where the live stream takes events from: "store" or "nats".
  std::string feed = "store";
  std::optional<NodeNatsStatus> nats;
  std::vector<NodeRole> roles;
};

/// What the server serves. Everything must outlive the server.
struct ServerServices {
  EventStore* store = nullptr;
  const EventCatalog* catalog = nullptr;
  /// Events newly stored through the API are published here (for in-process handlers), and its
  /// handler statistics appear in /metrics. May be null.
  EventBus* bus = nullptr;
  Authenticator* authenticator = nullptr;
  /// The server registers its metrics here (docs/http-api.md, "GET /metrics"): one server per
  /// registry.
  MetricsRegistry* metrics = nullptr;
  /// The durable consumers running in this process: a replay of one of them goes through it
  /// (`DurableConsumer::reset_to`); a replay of any other goes through the store.
  std::vector<DurableConsumer*> consumers;
  /// The notification tables behind the /api/v1 notification endpoints (docs/http-api.md,
  /// "Notifications"); null: those endpoints answer 503.
  notify::NotificationStore* notifications = nullptr;
  /// The notification kinds preferences are checked against; null: the notification endpoints
  /// answer 503.
  const notify::NotificationRules* notification_rules = nullptr;
  /// Where the live stream (and, when set, the bus) takes new events from; null: the store. When
  /// set, every event the feed hands out is published to `bus` (events ingested here are not
  /// published on their own), so every node's bus sees every node's events once, in position
  /// order.
  EventFeed* feed = nullptr;
  /// This node's place in a cluster for GET /api/v1/cluster and the `herald_cluster_*` metrics;
  /// empty: a single node. Called from the server's threads.
  std::function<NodeStatus()> node_status;
};

/// The HTTP API and the live event stream (docs/http-api.md) on a Boost.Asio thread pool.
/// Thread-safe: `stop` may be called from any thread, also from a signal handler's thread.
class Server {
 public:
  /// Binds, listens and starts serving. Errors: `invalid_argument` for a bad `listen`, `io` when
  /// the address cannot be bound (naming it).
  static std::expected<std::unique_ptr<Server>, Error> start(ServerServices services,
                                                             ServerOptions options);
  virtual ~Server() = default;

  /// The port bound (the one picked when `listen` asked for 0).
  virtual std::uint16_t port() const noexcept = 0;
  /// Stops accepting, lets requests in flight finish (up to `shutdown_grace`), ends every stream
  /// with its final chunk and closes every connection; returns when all of that is done.
  /// Idempotent.
  virtual void stop() = 0;
  /// Blocks until `stop` has completed.
  virtual void wait() = 0;
};

}  // namespace herald::http
