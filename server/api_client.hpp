#pragma once

// A small blocking HTTP/1.1 client of herald's own API, for `herald demo --to`.

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "herald/error.hpp"

namespace herald::server {

/// A response from the API.
struct ApiResponse {
  unsigned status = 0;
  std::string body;
};

/// One keep-alive connection to a herald server, reconnecting when the server closed it. Not
/// thread-safe.
class ApiClient {
 public:
  /// `base_url` is "http://HOST:PORT" (an IP address or a name); `token` goes into every
  /// request's Authorization header. Errors: `invalid_argument` for a URL of another form.
  static std::expected<std::unique_ptr<ApiClient>, Error> open(std::string_view base_url,
                                                               std::string token);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  /// Sends a JSON POST and returns the response. A request that fails on a reused connection
  /// is sent once more on a new one (POSTs of events are idempotent by event_id). Errors: `io`
  /// naming the server when it cannot be reached or does not answer within 10 s.
  std::expected<ApiResponse, Error> post_json(std::string_view target, std::string body);

  /// "http://HOST:PORT".
  const std::string& base_url() const noexcept;

 private:
  struct Connection;
  explicit ApiClient(std::unique_ptr<Connection> connection);
  std::unique_ptr<Connection> connection_;
};

}  // namespace herald::server
