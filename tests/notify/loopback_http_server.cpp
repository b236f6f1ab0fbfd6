#include "loopback_http_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>

namespace herald::notify::testing {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

LoopbackHttpServer::LoopbackHttpServer(Handler handler, std::uint16_t port)
    : handler_(std::move(handler)), acceptor_(io_) {
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen();
  port_ = acceptor_.local_endpoint().port();
  accept_thread_ = std::thread([this] { accept_loop(); });
}

LoopbackHttpServer::~LoopbackHttpServer() { stop(); }

std::string LoopbackHttpServer::origin() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void LoopbackHttpServer::wait_or_stop(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  stopped_.wait_for(lock, duration, [&] { return stopping_.load(); });
}

void LoopbackHttpServer::stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    stopped_.notify_all();
  }
  // Wake the blocking accept with a connection of our own, then close every open socket.
  {
    net::io_context wake_io;
    tcp::socket wake(wake_io);
    boost::system::error_code ignored;
    wake.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ignored);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    for (auto& weak : sockets_) {
      if (auto socket = weak.lock()) {
        boost::system::error_code ignored;
        socket->shutdown(tcp::socket::shutdown_both, ignored);
      }
    }
    threads.swap(connection_threads_);
  }
  for (auto& thread : threads) thread.join();
}

void LoopbackHttpServer::accept_loop() {
  while (!stopping_) {
    auto socket = std::make_shared<tcp::socket>(io_);
    boost::system::error_code ec;
    acceptor_.accept(*socket, ec);
    if (ec || stopping_) break;
    std::lock_guard lock(mutex_);
    sockets_.remove_if([](const auto& weak) { return weak.expired(); });
    sockets_.push_back(socket);
    connection_threads_.emplace_back([this, socket] { serve(socket); });
  }
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void LoopbackHttpServer::serve(std::shared_ptr<tcp::socket> socket) {
  boost::beast::flat_buffer buffer;
  while (!stopping_) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(8 * 1024 * 1024);
    boost::system::error_code ec;
    bhttp::read(*socket, buffer, parser, ec);
    if (ec) break;
    HttpRequestMessage request = parser.release();
    std::optional<HttpResponseMessage> response = handler_(request);
    if (!response || stopping_) break;
    response->prepare_payload();
    const bool keep_alive = response->keep_alive();
    bhttp::write(*socket, *response, ec);
    if (ec || !keep_alive) break;
  }
  // Under the lock: `stop` may be shutting the same socket down.
  std::lock_guard lock(mutex_);
  boost::system::error_code ignored;
  socket->shutdown(tcp::socket::shutdown_both, ignored);
  socket->close(ignored);
}

HttpResponseMessage json_response(const HttpRequestMessage& request, unsigned status,
                                  std::string body) {
  HttpResponseMessage response(static_cast<bhttp::status>(status), request.version());
  response.set(bhttp::field::content_type, "application/json");
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  return response;
}

}  // namespace herald::notify::testing
