#pragma once

// A small synchronous HTTP client over one libcurl easy handle per request: what the senders need
// and nothing more (no redirects, no proxies from the environment, a bounded response body).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::notify::detail {

/// Initializes libcurl once per process; safe to call from any thread, any number of times.
void ensure_curl_initialized();

/// One HTTP request to make.
struct HttpRequest {
  std::string method = "POST";
  std::string url;
  /// Complete header lines without CRLF: "Content-Type: application/json".
  std::vector<std::string> headers;
  std::string body;
  std::chrono::milliseconds timeout{10'000};
  /// CURLOPT_RESOLVE entries ("host:port:address") that pin the address a checked host resolved
  /// to, so a second DNS answer cannot take the request elsewhere.
  std::vector<std::string> resolve;
  /// When set, every address the connection goes to must pass this check (a second guard next
  /// to `resolve`, against a resolver that ignores the pin).
  bool (*address_allowed)(const void* sockaddr_bytes, std::size_t length) = nullptr;
  /// Responses whose body is larger are cut here (the rest is read and dropped).
  std::size_t max_response_body = 64 * 1024;
};

/// An HTTP response; header names are stored lower-case.
struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The value of the first header named `name` (lower-case), if present.
  std::optional<std::string_view> header(std::string_view name) const;
};

/// Why a request got no HTTP response.
struct HttpFailure {
  enum class Kind : std::uint8_t {
    timeout,  ///< The deadline passed.
    connect,  ///< No connection (refused, unreachable, DNS failure, TLS handshake).
    refused,  ///< The address check refused the target.
    other,    ///< Anything else libcurl reports.
  };
  Kind kind = Kind::other;
  std::string message;
};

/// Makes the request; blocks for at most `request.timeout`.
std::expected<HttpResponse, HttpFailure> perform_http(const HttpRequest& request);

}  // namespace herald::notify::detail
