#pragma once

// A real herald HTTP server on loopback over a SQLite file, and real HTTP clients for it: a
// keep-alive client, a raw socket for malformed requests, and an SSE reader.

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/api_tokens.hpp"
#include "herald/authenticator.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/event_bus.hpp"
#include "herald/event_store.hpp"
#include "herald/http/server.hpp"
#include "herald/json.hpp"
#include "herald/metrics.hpp"

namespace herald::testing {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

/// A response as a test looks at it.
struct HttpReply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;
  std::string body;

  /// The body parsed (once; references stay valid while the reply lives).
  const boost::json::value& json() const {
    if (!parsed_) parsed_ = boost::json::parse(body);
    return *parsed_;
  }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }

 private:
  mutable std::optional<boost::json::value> parsed_;
};

/// A temporary directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "herald-http.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// One keep-alive connection.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port) : port_(port), stream_(io_) { connect(); }

  HttpReply send(bhttp::verb method, std::string_view target, std::string_view token = {},
                 std::string body = {}, std::string_view content_type = "application/json",
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    bhttp::request<bhttp::string_body> request{method, target, 11};
    request.set(bhttp::field::host, "127.0.0.1");
    if (!token.empty()) request.set(bhttp::field::authorization, "Bearer " + std::string(token));
    if (!body.empty() || method == bhttp::verb::post) {
      if (!content_type.empty()) request.set(bhttp::field::content_type, content_type);
      request.body() = std::move(body);
    }
    for (const auto& [name, value] : headers) request.set(name, value);
    request.keep_alive(true);
    request.prepare_payload();
    bhttp::response<bhttp::string_body> response;
    beast::error_code ec;
    for (int attempt = 0; attempt < 2; ++attempt) {
      // A kept-alive connection the server closed meanwhile (idle timeout) is opened again.
      if (attempt > 0) connect();
      stream_.expires_after(std::chrono::seconds(30));
      bhttp::write(stream_, request, ec);
      if (!ec) bhttp::read(stream_, buffer_, response, ec);
      if (!ec) break;
    }
    if (ec) throw beast::system_error(ec);
    HttpReply reply;
    reply.status = response.result_int();
    for (const auto& field : response) {
      reply.headers[std::string(field.name_string())] = std::string(field.value());
    }
    reply.body = std::move(response.body());
    if (!response.keep_alive()) connect();
    return reply;
  }

  HttpReply get(std::string_view target, std::string_view token = {}) {
    return send(bhttp::verb::get, target, token);
  }
  HttpReply post(std::string_view target, std::string_view token, std::string body) {
    return send(bhttp::verb::post, target, token, std::move(body));
  }

 private:
  void connect() {
    if (stream_.socket().is_open()) {
      beast::error_code ignored;
      stream_.socket().close(ignored);
    }
    buffer_.clear();
    stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
  }

  std::uint16_t port_;
  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

/// Sends `bytes` on a new connection and reads until the server closes it or `timeout` passes;
/// returns everything read.
inline std::string raw_exchange(std::uint16_t port, std::string_view bytes,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  beast::error_code ec;
  net::write(stream.socket(), net::buffer(bytes), ec);
  std::string received;
  std::array<char, 4096> chunk{};
  stream.expires_after(timeout);
  for (;;) {
    const std::size_t n = stream.read_some(net::buffer(chunk), ec);
    received.append(chunk.data(), n);
    if (ec) break;
  }
  return received;
}

/// A connection that sends a byte at a time and watches for the server closing it.
class SlowClient {
 public:
  explicit SlowClient(std::uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  /// False once the connection is broken.
  bool send_byte(char byte) {
    beast::error_code ec;
    net::write(socket_, net::buffer(&byte, 1), ec);
    return !ec;
  }

  /// True when the server has closed the connection (checked without waiting).
  bool closed_by_server() {
    socket_.non_blocking(true);
    char byte = 0;
    beast::error_code ec;
    socket_.read_some(net::buffer(&byte, 1), ec);
    socket_.non_blocking(false);
    return ec && ec != net::error::would_block && ec != net::error::try_again;
  }

  /// Waits up to `timeout` for the server to close the connection.
  bool wait_closed_by_server(std::chrono::milliseconds timeout) {
    beast::tcp_stream stream(std::move(socket_));
    stream.expires_after(timeout);
    char byte = 0;
    beast::error_code ec;
    stream.read_some(net::buffer(&byte, 1), ec);
    const bool closed = ec == net::error::eof || ec == net::error::connection_reset;
    socket_ = stream.release_socket();
    return closed;
  }

 private:
  net::io_context io_;
  tcp::socket socket_;
};

/// The status code of the first response in raw bytes, or 0.
inline unsigned status_of(std::string_view raw) {
  if (!raw.starts_with("HTTP/1.1 ") || raw.size() < 12) return 0;
  return static_cast<unsigned>(std::atoi(std::string(raw.substr(9, 3)).c_str()));
}

/// One event of an SSE stream, as received.
struct SseEvent {
  std::string id;
  std::string event;
  std::string data;
};

/// Reads an SSE stream over a raw connection: sends the GET, checks the head, then parses the
/// chunked body into events and comments.
class SseReader {
 public:
  SseReader(std::uint16_t port, std::string_view target, std::string_view token = {},
            std::optional<std::string> last_event_id = std::nullopt, int receive_buffer = 0)
      : stream_(io_) {
    if (receive_buffer > 0) {
      stream_.socket().open(tcp::v4());
      stream_.socket().set_option(net::socket_base::receive_buffer_size(receive_buffer));
    }
    stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    std::string request = "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token.empty()) request += "Authorization: Bearer " + std::string(token) + "\r\n";
    if (last_event_id) request += "Last-Event-ID: " + *last_event_id + "\r\n";
    request += "Accept: text/event-stream\r\n\r\n";
    net::write(stream_.socket(), net::buffer(request));
    parser_.body_limit(boost::none);
    on_chunk_ = [this](std::uint64_t, beast::string_view body, beast::error_code&) {
      text_.append(body.data(), body.size());
      return body.size();
    };
    parser_.on_chunk_body(on_chunk_);
    stream_.expires_after(std::chrono::seconds(10));
    bhttp::read_header(stream_, buffer_, parser_);
    status_ = parser_.get().result_int();
    for (const auto& field : parser_.get()) {
      headers_[std::string(field.name_string())] = std::string(field.value());
    }
  }

  unsigned status() const { return status_; }
  std::string header(const std::string& name) const {
    auto it = headers_.find(name);
    return it == headers_.end() ? std::string() : it->second;
  }

  /// The next event (comments skipped, but remembered in `comments()`), or nullopt when the
  /// stream ended or `timeout` passed.
  std::optional<SseEvent> next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto event = take_event()) return event;
      if (ended_) return std::nullopt;
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::milliseconds(0)) return std::nullopt;
      if (!read_more(std::chrono::duration_cast<std::chrono::milliseconds>(left))) {
        if (auto event = take_event()) return event;
        return std::nullopt;
      }
    }
  }

  /// Reads until a comment whose text starts with `prefix` arrives, or `timeout`.
  bool wait_for_comment(std::string_view prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      while (take_event()) {
      }
      for (const std::string& comment : comments_) {
        if (comment.starts_with(prefix)) return true;
      }
      const auto left = deadline - std::chrono::steady_clock::now();
      if (ended_ || left <= std::chrono::milliseconds(0)) return false;
      read_more(std::chrono::duration_cast<std::chrono::milliseconds>(left));
    }
  }

  /// True once the server ended the stream (the final chunk, or the connection closed).
  bool ended() const { return ended_; }
  /// True when the stream ended with its final chunk (a clean end), not a bare close.
  bool ended_cleanly() const { return clean_end_; }
  const std::vector<std::string>& comments() const { return comments_; }
  const std::string& retry() const { return retry_; }

 private:
  bool read_more(std::chrono::milliseconds timeout) {
    beast::error_code ec;
    stream_.expires_after(timeout);
    bhttp::read_some(stream_, buffer_, parser_, ec);
    if (parser_.is_done()) {
      ended_ = true;
      clean_end_ = true;
      return false;
    }
    if (ec == beast::error::timeout) return false;
    if (ec) {
      ended_ = true;
      return false;
    }
    return true;
  }

  std::optional<SseEvent> take_event() {
    for (;;) {
      const std::size_t end = text_.find("\n\n");
      if (end == std::string::npos) return std::nullopt;
      const std::string block = text_.substr(0, end);
      text_.erase(0, end + 2);
      SseEvent event;
      bool has_field = false;
      std::size_t start = 0;
      while (start <= block.size()) {
        std::size_t line_end = block.find('\n', start);
        if (line_end == std::string::npos) line_end = block.size();
        const std::string line = block.substr(start, line_end - start);
        start = line_end + 1;
        if (line.starts_with(":")) {
          comments_.push_back(line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1));
        } else if (line.starts_with("id: ")) {
          event.id = line.substr(4);
          has_field = true;
        } else if (line.starts_with("event: ")) {
          event.event = line.substr(7);
          has_field = true;
        } else if (line.starts_with("data: ")) {
          event.data += line.substr(6);
          has_field = true;
        } else if (line.starts_with("retry: ")) {
          retry_ = line.substr(7);
        }
        if (line_end == block.size()) break;
      }
      if (has_field) return event;
    }
  }

  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::empty_body> parser_;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;
  unsigned status_ = 0;
  std::map<std::string, std::string> headers_;
  std::string text_;
  std::vector<std::string> comments_;
  std::string retry_;
  bool ended_ = false;
  bool clean_end_ = false;
};

/// The tokens a test server holds: one per scope, one with every scope, one bound to
/// organization 7 with every scope.
struct TestTokens {
  std::string ingest, read, audit, admin, all, org7;
};

/// A herald server on 127.0.0.1 (a free port) over a SQLite file in a temporary directory.
class TestServer {
 public:
  /// `configure` adds to the services before each start (the notification store, for one).
  explicit TestServer(http::ServerOptions options = {}, std::filesystem::path db = {},
                      std::function<void(EventStore&, http::ServerServices&)> configure = {})
      : configure_(std::move(configure)) {
    db_path_ = db.empty() ? dir_.path() / "herald.db" : std::move(db);
    auto store = open_store(
        StoreOptions{.location = db_path_.string(), .catalog = &domain::platform_catalog()});
    if (!store) throw std::runtime_error(store.error().message);
    store_ = std::move(*store);
    authenticator_ = std::make_unique<Authenticator>(*store_);
    tokens_.ingest = make_token("ingest", Scope::ingest);
    tokens_.read = make_token("read", Scope::read);
    tokens_.audit = make_token("audit", Scope::audit);
    tokens_.admin = make_token("admin", Scope::admin);
    tokens_.all = make_token("all", Scope::ingest | Scope::read | Scope::audit | Scope::admin);
    tokens_.org7 = make_token("org7", Scope::ingest | Scope::read | Scope::audit | Scope::admin, 7);
    options.listen = "127.0.0.1:0";
    if (options.threads == 0) options.threads = 2;
    start(options);
  }

  ~TestServer() { stop(); }

  void start(const http::ServerOptions& options) {
    options_ = options;
    // The server registers its metrics; each server gets a registry of its own.
    metrics_ = std::make_unique<MetricsRegistry>();
    http::ServerServices services{.store = store_.get(),
                                  .catalog = &domain::platform_catalog(),
                                  .bus = &bus_,
                                  .authenticator = authenticator_.get(),
                                  .metrics = metrics_.get(),
                                  .consumers = {}};
    if (configure_) configure_(*store_, services);
    auto server = http::Server::start(std::move(services), options);
    if (!server) throw std::runtime_error(server.error().message);
    server_ = std::move(*server);
  }

  void stop() {
    if (server_) server_->stop();
    server_.reset();
  }

  /// Stops the server and starts a new one over the same store (a restart).
  void restart() {
    stop();
    start(options_);
  }

  std::string make_token(const std::string& name, Scopes scopes,
                         std::optional<std::int64_t> organization = std::nullopt,
                         std::optional<std::int64_t> user = std::nullopt) {
    auto token = generate_api_token();
    if (!token) throw std::runtime_error(token.error().message);
    auto created = store_->create_token(name, api_token_sha256(*token), scopes, organization, user);
    if (!created) throw std::runtime_error(created.error().message);
    return *token;
  }

  std::uint16_t port() const { return server_->port(); }
  EventStore& store() { return *store_; }
  const TestTokens& tokens() const { return tokens_; }
  MetricsRegistry& metrics() { return *metrics_; }
  EventBus& bus() { return bus_; }
  const std::filesystem::path& db_path() const { return db_path_; }

 private:
  std::function<void(EventStore&, http::ServerServices&)> configure_;
  TempDir dir_;
  std::filesystem::path db_path_;
  std::unique_ptr<EventStore> store_;
  EventBus bus_{EventBusOptions{.name = "http-test"}};
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<MetricsRegistry> metrics_;
  TestTokens tokens_;
  http::ServerOptions options_;
  std::unique_ptr<http::Server> server_;
};

/// A UserCreatedEvent of `organization` as JSON, with a fresh event id.
inline std::string user_created_json(std::int64_t user, std::optional<std::int64_t> organization,
                                     std::optional<std::string> event_id = std::nullopt) {
  auto event = make<domain::UserCreatedEvent>(
      {.entity_id = user, .user_id = user, .organization_id = organization},
      {.discord_id = 100000 + user, .discord_username = "racer" + std::to_string(user)});
  std::string json = encode_event(EventRef(event));
  if (event_id) {
    const std::string current = event.event_id.to_string();
    json.replace(json.find(current), current.size(), *event_id);
  }
  return json;
}

}  // namespace herald::testing
