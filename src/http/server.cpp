// The HTTP server: the listener, the request/response sessions and the server's lifecycle. The
// sessions follow the shape of Beast's asynchronous server sessions: each operation is started by
// a `do_*` member and completed by an `on_*` member, all on the connection's strand.

#include "herald/http/server.hpp"

#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <random>

#include "herald/event_bus.hpp"
#include "herald/http/api_error.hpp"
#include "herald/json_schema.hpp"
#include "routes.hpp"
#include "server_internal.hpp"

namespace herald::http::detail {

// --- ChunkChannel ---

bool ChunkChannel::push(std::string chunk) {
  std::function<void()> wake;
  {
    std::unique_lock lock(mutex_);
    taken_.wait(lock, [&] { return !pending_ || closed_; });
    if (closed_) return false;
    pending_ = std::move(chunk);
    wake = wake_;
  }
  if (wake) wake();
  return true;
}

void ChunkChannel::finish(std::optional<std::string> error) {
  std::function<void()> wake;
  {
    std::unique_lock lock(mutex_);
    // The last piece is taken first.
    taken_.wait(lock, [&] { return !pending_ || closed_; });
    done_ = true;
    error_ = std::move(error);
    wake = wake_;
  }
  if (wake) wake();
}

ChunkChannel::Take ChunkChannel::take(std::string& chunk, std::string& error) {
  std::lock_guard lock(mutex_);
  if (pending_) {
    chunk = std::move(*pending_);
    pending_.reset();
    taken_.notify_all();
    return Take::chunk;
  }
  if (!done_) return Take::wait;
  if (error_) {
    error = *error_;
    return Take::failed;
  }
  return Take::end;
}

void ChunkChannel::on_ready(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
}

void ChunkChannel::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  wake_ = nullptr;
  taken_.notify_all();
}

// --- ConnectionSlot and ServerState ---

ConnectionSlot::ConnectionSlot(ServerState& state) : state_(state), id_(state.add_connection()) {}

ConnectionSlot::~ConnectionSlot() { state_.remove_connection(id_); }

void ConnectionSlot::attach(std::weak_ptr<Connection> connection) {
  state_.attach(id_, std::move(connection));
}

namespace {

std::string build_catalog_json(const EventCatalog& catalog) {
  boost::json::array types;
  for (const EventType* type : catalog.types()) {
    boost::json::object item;
    item["name"] = type->name();
    if (type->entity_type().empty()) {
      item["entity_type"] = nullptr;
    } else {
      item["entity_type"] = type->entity_type();
    }
    item["priority"] = to_string(type->default_priority());
    item["description"] = type->description();
    boost::json::array fields;
    for (const FieldInfo& field : type->fields()) {
      boost::json::object f;
      f["name"] = field.name;
      f["type"] = field.type_name;
      f["nullable"] = field.nullable;
      f["common"] = field.common;
      fields.push_back(std::move(f));
    }
    item["fields"] = std::move(fields);
    item["schema"] = json_schema(*type);
    types.push_back(std::move(item));
  }
  boost::json::object body;
  body["count"] = types.size();
  body["types"] = std::move(types);
  return boost::json::serialize(body);
}

/// With a feed of its own (a cluster node), the bus takes its events from the feed: each node's bus
/// then sees every node's events.
StreamHub::EventsHandler feed_to_bus(const ServerServices& services) {
  if (services.feed == nullptr || services.bus == nullptr) return {};
  EventBus* bus = services.bus;
  return [bus](std::span<const StoredEvent> events) {
    // The bus is for in-process handlers; the events are durable whatever it says.
    for (const StoredEvent& stored : events) (void)bus->publish(stored.event);
  };
}

}  // namespace

ServerState::ServerState(ServerServices services, ServerOptions options)
    : services_(std::move(services)),
      options_(std::move(options)),
      hub_(*services_.store, services_.feed, options_.stream_coalesce, feed_to_bus(services_)),
      inbox_watcher_(services_.notifications != nullptr
                         ? std::make_unique<InboxWatcher>(*services_.notifications,
                                                          std::chrono::milliseconds(250))
                         : nullptr),
      rate_limiter_(options_.limits.requests_per_second, options_.limits.request_burst),
      metrics_(std::make_unique<ServerMetrics>(services_, hub_)),
      catalog_json_(build_catalog_json(*services_.catalog)),
      io_(static_cast<int>(std::max(1U, options_.threads))),
      stream_io_(static_cast<int>(std::max(1U, options_.stream_threads))),
      blocking_(std::max(1U, options_.blocking_threads)) {
  std::random_device random;
  request_id_base_ = (static_cast<std::uint64_t>(random()) << 32) ^ random();
}

std::size_t ServerState::connections() const {
  std::lock_guard lock(connections_mutex_);
  return connections_.size();
}

std::string ServerState::next_request_id() {
  // A random base plus a counter: unique in the process, unlikely to repeat across restarts.
  const std::uint64_t n = request_counter_.fetch_add(1, std::memory_order_relaxed);
  return fmt::format("{:016x}", request_id_base_ + n);
}

std::uint64_t ServerState::add_connection() {
  std::lock_guard lock(connections_mutex_);
  const std::uint64_t id = next_connection_id_++;
  connections_.emplace(id, std::weak_ptr<Connection>{});
  return id;
}

void ServerState::attach(std::uint64_t id, std::weak_ptr<Connection> connection) {
  std::lock_guard lock(connections_mutex_);
  connections_[id] = std::move(connection);
}

void ServerState::remove_connection(std::uint64_t id) {
  {
    std::lock_guard lock(connections_mutex_);
    connections_.erase(id);
  }
  connections_changed_.notify_all();
}

void finish_response(Response& response, std::string_view request_id) {
  response.set("X-Request-Id", request_id);
  // API answers are never cached; the dashboard's files set their own (revalidated by ETag).
  if (response.find(bhttp::field::cache_control) == response.end()) {
    response.set(bhttp::field::cache_control, "no-store");
  }
  response.set("X-Content-Type-Options", "nosniff");
  response.prepare_payload();
}

namespace {

// --- the request/response session ---

// What a failed read means for the client (RFC 9110 section 15.5).
ApiError read_error(const beast::error_code& ec, const ServerLimits& limits) {
  if (ec == bhttp::error::header_limit) {
    return ApiError{
        .status = bhttp::status::request_header_fields_too_large,
        .code = "headers_too_large",
        .message = fmt::format("the request line and headers exceed {} bytes", limits.header_bytes),
        .field = {}};
  }
  if (ec == bhttp::error::body_limit) {
    return ApiError{.status = bhttp::status::payload_too_large,
                    .code = "too_large",
                    .message = fmt::format("the request body exceeds {} bytes", limits.body_bytes),
                    .field = {}};
  }
  return ApiError{.status = bhttp::status::bad_request,
                  .code = "bad_request",
                  .message = fmt::format("malformed HTTP request: {}", ec.message()),
                  .field = {}};
}

class Session : public Connection, public std::enable_shared_from_this<Session> {
 public:
  Session(ServerState& state, tcp::socket socket, std::unique_ptr<ConnectionSlot> slot)
      : state_(state), stream_(std::move(socket)), slot_(std::move(slot)) {}

  void start() {
    slot_->attach(weak_from_this());
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_wait(); });
  }

  void reject_busy() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->request_id_ = self->state_.next_request_id();
      self->route_ = "overload";
      self->close_after_write_ = true;
      self->send_error(ApiError{.status = bhttp::status::service_unavailable,
                                .code = "too_many_connections",
                                .message = "the server is at its connection limit; retry later",
                                .field = {}});
    });
  }

  void shutdown() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->shutdown_requested_ = true;
      // Waiting for a request that has not begun: nothing is lost by closing now.
      if (self->phase_ == Phase::waiting) self->close();
    });
  }

  void abort() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  enum class Phase : std::uint8_t { waiting, reading, handling, writing, closed };

  // Waits for the first byte of the next request under the idle timeout; then the whole request
  // must arrive within the read timeout (a client dribbling bytes is cut off).
  void do_wait() {
    if (shutdown_requested_ || state_.stopping()) return close();
    phase_ = Phase::waiting;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_.options().limits.header_bytes));
    parser_->body_limit(state_.options().limits.body_bytes);
    if (buffer_.size() > 0) return do_read();
    stream_.expires_after(state_.options().limits.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(4096),
        beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(beast::error_code ec, std::size_t bytes) {
    if (ec) return close();
    buffer_.commit(bytes);
    do_read();
  }

  void do_read() {
    phase_ = Phase::reading;
    stream_.expires_after(state_.options().limits.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return close();
    }
    request_id_ = state_.next_request_id();
    started_ = std::chrono::steady_clock::now();
    if (ec) {
      // The stream is out of step with the message framing: answer, then close.
      route_ = "invalid";
      close_after_write_ = true;
      return send_error(read_error(ec, state_.options().limits));
    }
    phase_ = Phase::handling;
    request_ = parser_->release();
    close_after_write_ = !request_.keep_alive();
    handle_request(RouteContext{
        .state = state_,
        .request = request_,
        .request_id = request_id_,
        .respond =
            [self = shared_from_this()](Response response, std::string route) mutable {
              auto* session = self.get();
              net::dispatch(session->stream_.get_executor(),
                            [self = std::move(self), response = std::move(response),
                             route = std::move(route)]() mutable {
                              self->route_ = std::move(route);
                              self->send(std::move(response));
                            });
            },
        .respond_chunked =
            [self = shared_from_this()](Response head, std::string route,
                                        std::shared_ptr<ChunkChannel> body) mutable {
              auto* session = self.get();
              net::dispatch(session->stream_.get_executor(),
                            [self = std::move(self), head = std::move(head),
                             route = std::move(route), body = std::move(body)]() mutable {
                              self->route_ = std::move(route);
                              self->send_chunked(std::move(head), std::move(body));
                            });
            },
        .stream =
            [self = shared_from_this()](StreamRequest stream_request) {
              auto* session = self.get();
              net::dispatch(
                  session->stream_.get_executor(),
                  [self = std::move(self), stream_request = std::move(stream_request)]() mutable {
                    self->hand_over(std::move(stream_request));
                  });
            }});
  }

  void send_error(const ApiError& error) {
    Response response{error.status, 11};
    response.set(bhttp::field::content_type, "application/json");
    response.body() = error.body();
    send(std::move(response));
  }

  void send(Response response) {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::writing;
    if (shutdown_requested_ || state_.stopping()) close_after_write_ = true;
    response.version(11);
    response.keep_alive(!close_after_write_);
    finish_response(response, request_id_);
    const auto status = static_cast<unsigned>(response.result_int());
    const auto elapsed = std::chrono::steady_clock::now() - started_;
    state_.metrics().on_request(route_, status, elapsed);
    if (status >= 500) {
      spdlog::error("request {} {} {} failed with {}: {}", request_id_,
                    std::string_view(request_.method_string()), redacted_target(), status,
                    response.body());
    } else if (state_.options().access_log) {
      spdlog::info("request {} {} {} {} {:.3f} ms", request_id_,
                   std::string_view(request_.method_string()), redacted_target(), status,
                   std::chrono::duration<double, std::milli>(elapsed).count());
    }
    response_ = std::make_unique<Response>(std::move(response));
    stream_.expires_after(state_.options().limits.write_timeout);
    bhttp::async_write(stream_, *response_,
                       beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  // A chunked body: the head goes out with the first piece (so a failure before any data is
  // still an ordinary error response), then each piece as a chunk, then the last chunk.
  void send_chunked(Response head, std::shared_ptr<ChunkChannel> body) {
    if (phase_ == Phase::closed) return body->close();
    phase_ = Phase::writing;
    chunked_head_ = std::move(head);
    chunk_body_ = std::move(body);
    chunk_body_->on_ready([weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        net::post(self->stream_.get_executor(), [self] { self->pump_chunks(); });
      }
    });
    pump_chunks();
  }

  void pump_chunks() {
    if (phase_ == Phase::closed || chunk_writing_ || !chunk_body_) return;
    std::string error;
    switch (chunk_body_->take(chunk_, error)) {
      case ChunkChannel::Take::wait:
        return;
      case ChunkChannel::Take::failed:
        chunk_body_.reset();
        if (!chunk_head_sent_) {
          return send_error(ApiError{.status = bhttp::status::internal_server_error,
                                     .code = "internal",
                                     .message = error,
                                     .field = {}});
        }
        spdlog::error("request {}: the response body failed after it began: {}", request_id_,
                      error);
        return close();
      case ChunkChannel::Take::end:
        chunk_body_.reset();
        if (!chunk_head_sent_) return send(std::move(chunked_head_));
        chunk_writing_ = true;
        stream_.expires_after(state_.options().limits.write_timeout);
        return net::async_write(stream_, bhttp::make_chunk_last(),
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                  self->chunk_writing_ = false;
                                  self->chunk_head_sent_ = false;
                                  self->on_write(ec, 0);
                                });
      case ChunkChannel::Take::chunk:
        break;
    }
    chunk_writing_ = true;
    stream_.expires_after(state_.options().limits.write_timeout);
    if (!chunk_head_sent_) {
      chunk_head_sent_ = true;
      if (shutdown_requested_ || state_.stopping()) close_after_write_ = true;
      head_.emplace(chunked_head_.result(), 11);
      for (const auto& field : chunked_head_) head_->set(field.name_string(), field.value());
      head_->keep_alive(!close_after_write_);
      head_->chunked(true);
      head_->set("X-Request-Id", request_id_);
      head_->set(bhttp::field::cache_control, "no-store");
      state_.metrics().on_request(route_, head_->result_int(),
                                  std::chrono::steady_clock::now() - started_);
      head_serializer_.emplace(*head_);
      return bhttp::async_write_header(
          stream_, *head_serializer_,
          [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_chunk_written(ec, true);
          });
    }
    net::async_write(stream_, bhttp::make_chunk(net::buffer(chunk_)),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_chunk_written(ec, false);
                     });
  }

  void on_chunk_written(beast::error_code ec, bool head_only) {
    chunk_writing_ = false;
    if (ec) {
      if (chunk_body_) chunk_body_->close();
      chunk_body_.reset();
      return close();
    }
    if (head_only) {
      // The piece taken with the head goes out now.
      chunk_writing_ = true;
      stream_.expires_after(state_.options().limits.write_timeout);
      return net::async_write(stream_, bhttp::make_chunk(net::buffer(chunk_)),
                              [self = shared_from_this()](beast::error_code e, std::size_t) {
                                self->on_chunk_written(e, false);
                              });
    }
    pump_chunks();
  }

  void on_write(beast::error_code ec, std::size_t) {
    response_.reset();
    if (ec || close_after_write_) return close();
    do_wait();
  }

  // The target with any access_token value masked: tokens never reach a log.
  std::string redacted_target() const {
    std::string target(request_.target());
    const std::size_t question = target.find('?');
    if (question == std::string::npos) return target;
    std::size_t at = target.find("access_token=", question);
    while (at != std::string::npos) {
      const std::size_t begin = at + std::string_view("access_token=").size();
      const std::size_t end = target.find('&', begin);
      target.replace(begin, (end == std::string::npos ? target.size() : end) - begin, "***");
      at = target.find("access_token=", begin);
    }
    return target;
  }

  void hand_over(StreamRequest request) {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    request.request_id = request_id_;
    const bool inbox = request.inbox_user.has_value();
    state_.metrics().on_request(
        inbox ? "GET /api/v1/users/{user_id}/inbox/stream" : "GET /api/v1/events/stream", 200,
        std::chrono::steady_clock::now() - started_);
    if (state_.options().access_log) {
      spdlog::info("request {} {} {} 200 stream", request_id_,
                   std::string_view(request_.method_string()), redacted_target());
    }
    if (inbox) {
      return start_inbox_stream(state_, std::move(stream_), std::move(slot_), std::move(request));
    }
    start_stream(state_, std::move(stream_), std::move(slot_), std::move(request));
  }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    if (chunk_body_) chunk_body_->close();
    chunk_body_.reset();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
    slot_.reset();
  }

  ServerState& state_;
  beast::tcp_stream stream_;
  std::unique_ptr<ConnectionSlot> slot_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request request_;
  std::unique_ptr<Response> response_;
  // A chunked response in progress.
  Response chunked_head_;
  std::shared_ptr<ChunkChannel> chunk_body_;
  std::optional<bhttp::response<bhttp::empty_body>> head_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> head_serializer_;
  std::string chunk_;
  bool chunk_head_sent_ = false;
  bool chunk_writing_ = false;
  std::string request_id_;
  std::string route_;
  std::chrono::steady_clock::time_point started_{};
  Phase phase_ = Phase::waiting;
  bool close_after_write_ = false;
  bool shutdown_requested_ = false;
};

}  // namespace

void start_session(ServerState& state, tcp::socket socket) {
  // Responses and stream frames are written whole: sending them at once matters more than
  // coalescing small segments (with Nagle, a stream's next frame could wait for the client's
  // delayed acknowledgment of the previous one, tens of milliseconds).
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  const bool over = state.connections() >= state.options().limits.connections;
  auto slot = std::make_unique<ConnectionSlot>(state);
  auto session = std::make_shared<Session>(state, std::move(socket), std::move(slot));
  if (over) {
    session->reject_busy();
    return;
  }
  session->start();
}

namespace {

// --- the server ---

std::expected<tcp::endpoint, Error> parse_listen(std::string_view listen) {
  const auto bad = [&](std::string_view why) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "listen",
        fmt::format("expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080, got '{}' ({})",
                    listen, why)));
  };
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = listen.substr(0, colon);
  const std::string_view port_text = listen.substr(colon + 1);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  if (host.empty()) return bad("no host");
  beast::error_code error;
  const auto address = net::ip::make_address(std::string(host), error);
  if (error) return bad("the host must be an IP address");
  return tcp::endpoint(address, static_cast<std::uint16_t>(port));
}

class ServerImpl final : public Server, public ServerState {
 public:
  ServerImpl(ServerServices services, ServerOptions options)
      : ServerState(std::move(services), std::move(options)), acceptor_(net::make_strand(io_)) {}

  ~ServerImpl() override { stop(); }

  std::expected<void, Error> listen(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return std::unexpected(
          Error{ErrorCode::io,
                fmt::format("cannot listen on {}:{}: {}", endpoint.address().to_string(),
                            endpoint.port(), ec.message()),
                "listen"});
    }
    port_ = acceptor_.local_endpoint().port();
    return {};
  }

  std::expected<void, Error> run() {
    if (auto started = hub_.start(); !started) return started;
    // Keeps the streams' context running while it has no stream.
    stream_work_.emplace(net::make_work_guard(stream_io_));
    do_accept();
    const unsigned threads =
        options_.threads > 0 ? options_.threads : std::max(1U, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    for (unsigned i = 0; i < std::max(1U, options_.stream_threads); ++i) {
      threads_.emplace_back([this] { stream_io_.run(); });
    }
    return {};
  }

  std::uint16_t port() const noexcept override { return port_; }

  void stop() override {
    std::unique_lock lock(stop_mutex_);
    if (stop_started_) {
      stopped_cv_.wait(lock, [&] { return stopped_; });
      return;
    }
    stop_started_ = true;
    lock.unlock();

    stopping_.store(true, std::memory_order_release);
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
    // Ask every connection to end: idle ones close, requests in flight are answered, streams get
    // their final chunk. Then give them the grace period, and close what is left.
    for_each_connection([](Connection& connection) { connection.shutdown(); });
    if (!await_no_connections(options_.shutdown_grace)) {
      spdlog::warn("{} connections still open after {} ms; closing them", connections(),
                   options_.shutdown_grace.count());
      for_each_connection([](Connection& connection) { connection.abort(); });
      await_no_connections(std::chrono::milliseconds(2000));
    }
    hub_.stop();
    if (inbox_watcher_) inbox_watcher_->stop();
    io_.stop();
    stream_io_.stop();
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    blocking_.join();

    lock.lock();
    stopped_ = true;
    stopped_cv_.notify_all();
  }

  void wait() override {
    std::unique_lock lock(stop_mutex_);
    stopped_cv_.wait(lock, [&] { return stopped_; });
  }

 private:
  void for_each_connection(const std::function<void(Connection&)>& action) {
    std::vector<std::shared_ptr<Connection>> open;
    {
      std::lock_guard lock(connections_mutex_);
      for (const auto& [id, weak] : connections_) {
        if (auto connection = weak.lock()) open.push_back(std::move(connection));
      }
    }
    for (const auto& connection : open) action(*connection);
  }

  bool await_no_connections(std::chrono::milliseconds timeout) {
    std::unique_lock lock(connections_mutex_);
    return connections_changed_.wait_for(lock, timeout, [&] { return connections_.empty(); });
  }

  void do_accept() {
    acceptor_.async_accept(net::make_strand(io_),
                           beast::bind_front_handler(&ServerImpl::on_accept, this));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (stopping() || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors and the like: keep accepting, the condition may pass.
      spdlog::warn("accept failed: {}", ec.message());
    } else {
      start_session(*this, std::move(socket));
    }
    do_accept();
  }

  tcp::acceptor acceptor_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> stream_work_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
  std::mutex stop_mutex_;
  std::condition_variable stopped_cv_;
  bool stop_started_ = false;
  bool stopped_ = false;
};

}  // namespace
}  // namespace herald::http::detail

namespace herald::http {

std::expected<std::unique_ptr<Server>, Error> Server::start(ServerServices services,
                                                            ServerOptions options) {
  if (services.store == nullptr || services.catalog == nullptr ||
      services.authenticator == nullptr || services.metrics == nullptr) {
    return std::unexpected(
        Error{ErrorCode::invalid_argument,
              "the server needs a store, a catalog, an authenticator and a metrics registry",
              {}});
  }
  auto endpoint = detail::parse_listen(options.listen);
  if (!endpoint) return std::unexpected(std::move(endpoint.error()));
  auto server = std::make_unique<detail::ServerImpl>(std::move(services), std::move(options));
  if (auto listening = server->listen(*endpoint); !listening) {
    return std::unexpected(std::move(listening.error()));
  }
  if (auto running = server->run(); !running) return std::unexpected(std::move(running.error()));
  return server;
}

}  // namespace herald::http
