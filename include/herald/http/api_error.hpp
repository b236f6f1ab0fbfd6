#pragma once

#include <boost/beast/http/status.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "herald/error.hpp"

namespace herald::http {

/// An error as the HTTP API reports it: a status and the body
/// `{"error": {"code": …, "message": …, "field": …}}` (`field` only when there is one).
struct ApiError {
  boost::beast::http::status status = boost::beast::http::status::internal_server_error;
  /// Stable, machine-readable: "invalid_json", "invalid_event", "forbidden", …
  std::string code;
  /// One sentence for a person: what was wrong and, where it helps, what to do.
  std::string message;
  /// The offending field or parameter ("events[3].user_id", "limit"); empty when none.
  std::string field;
  /// For 429 and 503: when to retry, sent as `Retry-After` (whole seconds); 0 sends none.
  std::int64_t retry_after_seconds = 0;

  /// The JSON body.
  std::string body() const;
};

/// `error` (from the store, a decoder, …) as the API reports it: `invalid_argument` → 400,
/// `too_large` → 413, `not_found` → 404, `conflict` → 409, `unavailable` → 503, `io` and
/// `internal` → 500. `code` overrides the code derived from the status when not empty.
ApiError to_api_error(const Error& error, std::string_view code = {});

}  // namespace herald::http
