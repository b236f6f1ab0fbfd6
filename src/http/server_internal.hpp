#pragma once

// Shared by the pieces of the HTTP server: the server state every connection refers to.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "herald/http/rate_limiter.hpp"
#include "herald/http/server.hpp"
#include "inbox_stream.hpp"
#include "server_metrics.hpp"
#include "stream_hub.hpp"

namespace herald::http::detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

/// A connection the server can ask to end (on stop).
class Connection {
 public:
  virtual ~Connection() = default;
  /// Ends the connection gracefully: a request in flight is answered first, a stream gets its
  /// final chunk. Posts to the connection's strand; callable from any thread.
  virtual void shutdown() = 0;
  /// Closes the socket at once. Callable from any thread.
  virtual void abort() = 0;
};

class ServerState;

/// One open connection's place in the server's count and registry; released on destruction.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(ServerState& state);
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot();

  /// Registers (or re-registers, after a hand-over) the connection to end on stop.
  void attach(std::weak_ptr<Connection> connection);

 private:
  ServerState& state_;
  std::uint64_t id_;
};

/// Everything the connections share. Thread-safe.
class ServerState {
 public:
  ServerState(ServerServices services, ServerOptions options);

  const ServerServices& services() const noexcept { return services_; }
  const ServerOptions& options() const noexcept { return options_; }
  net::io_context& io() noexcept { return io_; }
  /// The streams' own I/O context: stream writes never queue ahead of requests' responses.
  net::io_context& stream_io() noexcept { return stream_io_; }
  net::thread_pool& blocking() noexcept { return blocking_; }
  StreamHub& hub() noexcept { return hub_; }
  /// Wakes the inbox streams; null when the server has no notification store.
  InboxWatcher* inbox_watcher() noexcept { return inbox_watcher_.get(); }
  RateLimiter& rate_limiter() noexcept { return rate_limiter_; }
  ServerMetrics& metrics() noexcept { return *metrics_; }
  /// The cached body of GET /api/v1/catalog.
  const std::string& catalog_json() const noexcept { return catalog_json_; }

  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  std::size_t connections() const;
  /// A new request id: 16 hexadecimal digits, unique within the process.
  std::string next_request_id();

 protected:
  friend class ConnectionSlot;
  std::uint64_t add_connection();
  void attach(std::uint64_t id, std::weak_ptr<Connection> connection);
  void remove_connection(std::uint64_t id);

  // Declared in this order so that connections (destroyed with the I/O context, whose pending
  // handlers own them) find the registry, the hub and the metrics still alive.
  ServerServices services_;
  ServerOptions options_;
  mutable std::mutex connections_mutex_;
  std::condition_variable connections_changed_;
  std::uint64_t next_connection_id_ = 1;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> connections_;
  StreamHub hub_;
  std::unique_ptr<InboxWatcher> inbox_watcher_;
  RateLimiter rate_limiter_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::string catalog_json_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> request_counter_{0};
  std::uint64_t request_id_base_ = 0;
  net::io_context io_;
  net::io_context stream_io_;
  net::thread_pool blocking_;
};

/// A response body made piece by piece off the I/O threads (an export) and written as chunks
/// (RFC 9112 section 7.1) as it comes, with at most one piece waiting: the producer runs no
/// further ahead of the client than that. Thread-safe.
class ChunkChannel {
 public:
  /// Producer: hands over `chunk`, waiting while the previous one is still pending. False when
  /// the connection is gone (the producer should stop).
  bool push(std::string chunk);
  /// Producer: the body is complete, or (with an error) failed.
  void finish(std::optional<std::string> error = std::nullopt);

  enum class Take : std::uint8_t { chunk, wait, end, failed };
  /// Connection: the next piece, if one is ready.
  Take take(std::string& chunk, std::string& error);
  /// Connection: call `wake` (from the producer's thread) whenever there is something to take.
  void on_ready(std::function<void()> wake);
  /// Connection: the client is gone; a waiting or later `push` returns false.
  void close();

 private:
  std::mutex mutex_;
  std::condition_variable taken_;
  std::optional<std::string> pending_;
  std::optional<std::string> error_;
  std::function<void()> wake_;
  bool done_ = false;
  bool closed_ = false;
};

/// Starts serving a connection just accepted.
void start_session(ServerState& state, tcp::socket socket);

/// Starts a stream on `stream` for the request already parsed (GET /api/v1/events/stream).
struct StreamRequest {
  EventFilter filter;
  /// Replay from the store after this position before going live; none: live only.
  std::optional<std::int64_t> resume_after;
  std::string request_id;
  bool keep_alive = true;
  unsigned version = 11;
  /// Set for a user's inbox stream (GET /api/v1/users/{user_id}/inbox/stream): `resume_after` is
  /// then an inbox item id, and `filter` is unused.
  std::optional<std::int64_t> inbox_user;
};
void start_stream(ServerState& state, beast::tcp_stream stream,
                  std::unique_ptr<ConnectionSlot> slot, StreamRequest request);

/// Starts a user's inbox stream on `stream` (see inbox_stream.cpp); `request.inbox_user` is set.
void start_inbox_stream(ServerState& state, beast::tcp_stream stream,
                        std::unique_ptr<ConnectionSlot> slot, StreamRequest request);

/// Common response headers.
void finish_response(Response& response, std::string_view request_id);

}  // namespace herald::http::detail
