#pragma once

// A small synchronous HTTP/1.1 server on loopback for the notify tests' fakes (Discord, a webhook
// receiver): a thread per connection, a handler per request. Thread-safe.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace herald::notify::testing {

using HttpRequestMessage = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;

/// A loopback HTTP server calling a handler for every request; a handler that returns nullopt
/// closes the connection without answering. Thread-safe; `stop` (and the destructor) wakes
/// handlers blocked in `wait_or_stop` and joins every thread.
class LoopbackHttpServer {
 public:
  using Handler = std::function<std::optional<HttpResponseMessage>(const HttpRequestMessage&)>;

  /// Listens on 127.0.0.1:`port` (0: any free port).
  explicit LoopbackHttpServer(Handler handler, std::uint16_t port = 0);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  /// The port it listens on.
  std::uint16_t port() const noexcept { return port_; }
  /// "http://127.0.0.1:<port>".
  std::string origin() const;
  /// Blocks for `duration` or until the server stops, whichever comes first.
  void wait_or_stop(std::chrono::milliseconds duration);
  /// Stops accepting, closes every connection and joins the threads. Idempotent.
  void stop();

 private:
  void accept_loop();
  void serve(std::shared_ptr<boost::asio::ip::tcp::socket> socket);

  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable stopped_;
  std::list<std::weak_ptr<boost::asio::ip::tcp::socket>> sockets_;
  std::list<std::thread> connection_threads_;
  std::thread accept_thread_;
};

/// A response with `status`, a JSON content type and `body`.
HttpResponseMessage json_response(const HttpRequestMessage& request, unsigned status,
                                  std::string body);

}  // namespace herald::notify::testing
