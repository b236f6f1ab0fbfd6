#include "api_client.hpp"

#include <fmt/core.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <optional>

namespace herald::server {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct ApiClient::Connection {
  std::string base_url;
  std::string host;
  std::string port;
  std::string token;
  net::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  std::expected<void, Error> connect() {
    stream.reset();
    buffer.clear();
    beast::error_code ec;
    tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return failure("cannot resolve", ec);
    stream.emplace(io);
    stream->expires_after(std::chrono::seconds(10));
    stream->connect(endpoints, ec);
    if (ec) return failure("cannot connect to", ec);
    return {};
  }

  std::unexpected<Error> failure(std::string_view what, const beast::error_code& ec) const {
    return std::unexpected(
        Error{ErrorCode::io, fmt::format("{} {}: {}", what, base_url, ec.message()), {}});
  }

  std::expected<ApiResponse, Error> exchange(std::string_view target, const std::string& body) {
    bhttp::request<bhttp::string_body> request{bhttp::verb::post, target, 11};
    request.set(bhttp::field::host, host + ":" + port);
    request.set(bhttp::field::authorization, "Bearer " + token);
    request.set(bhttp::field::content_type, "application/json");
    request.set(bhttp::field::user_agent, "herald-demo");
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();
    beast::error_code ec;
    stream->expires_after(std::chrono::seconds(10));
    bhttp::write(*stream, request, ec);
    if (ec) return failure("sending to", ec);
    bhttp::response<bhttp::string_body> response;
    bhttp::read(*stream, buffer, response, ec);
    if (ec) return failure("reading the response of", ec);
    if (!response.keep_alive()) stream.reset();
    return ApiResponse{.status = response.result_int(), .body = std::move(response.body())};
  }
};

ApiClient::ApiClient(std::unique_ptr<Connection> connection) : connection_(std::move(connection)) {}

ApiClient::~ApiClient() = default;

std::expected<std::unique_ptr<ApiClient>, Error> ApiClient::open(std::string_view base_url,
                                                                 std::string token) {
  const auto invalid = [&] {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "--to",
        fmt::format("expected http://HOST:PORT such as http://127.0.0.1:8080, got '{}'",
                    base_url.substr(0, 200))));
  };
  std::string_view rest = base_url;
  if (!rest.starts_with("http://")) return invalid();
  rest.remove_prefix(7);
  while (rest.ends_with('/')) rest.remove_suffix(1);
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return invalid();
  std::string_view host = rest.substr(0, colon);
  const std::string_view port = rest.substr(colon + 1);
  unsigned number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || number == 0 ||
      number > 65535) {
    return invalid();
  }
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  if (host.find('/') != std::string_view::npos || host.find('@') != std::string_view::npos) {
    return invalid();
  }
  auto connection = std::make_unique<Connection>();
  connection->base_url = fmt::format("http://{}", rest);
  connection->host = std::string(host);
  connection->port = std::string(port);
  connection->token = std::move(token);
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(connection)));
}

std::expected<ApiResponse, Error> ApiClient::post_json(std::string_view target, std::string body) {
  Connection& c = *connection_;
  const bool reused = c.stream.has_value();
  if (!reused) {
    if (auto connected = c.connect(); !connected) return std::unexpected(connected.error());
  }
  auto response = c.exchange(target, body);
  if (response || !reused) return response;
  // The server may have closed an idle keep-alive connection: once more on a new one.
  if (auto connected = c.connect(); !connected) return std::unexpected(connected.error());
  return c.exchange(target, body);
}

const std::string& ApiClient::base_url() const noexcept { return connection_->base_url; }

}  // namespace herald::server
