#pragma once

// The API's endpoints (docs/http-api.md): routing, authentication, authorization and the
// handlers.

#include <functional>
#include <string>

#include "herald/api_tokens.hpp"
#include "herald/http/query.hpp"
#include "server_internal.hpp"

namespace herald::http::detail {

/// One request being handled, and how to answer it.
struct RouteContext {
  ServerState& state;
  /// Owned by the session, which stays alive until `respond` or `stream` is called.
  const Request& request;
  std::string request_id;
  /// Sends the response; `route` names the endpoint in metrics ("GET /api/v1/events"). Callable
  /// from any thread, once.
  std::function<void(Response response, std::string route)> respond;
  /// Sends `head` (its body ignored) with a chunked body that `body` produces. Callable from any
  /// thread, once, instead of `respond`.
  std::function<void(Response head, std::string route, std::shared_ptr<ChunkChannel> body)>
      respond_chunked;
  /// Turns the connection into an event stream. Callable from any thread, once, instead of
  /// `respond`.
  std::function<void(StreamRequest request)> stream;
};

/// Routes the request and answers it, now or later (from the store's threads).
void handle_request(RouteContext context);

/// A response with a JSON body.
Response json_response(bhttp::status status, std::string body);
/// The response for `error` (with WWW-Authenticate on 401 and Retry-After when it says).
Response error_response(const ApiError& error);
/// The caller's token (from the Authorization header, or with `params` also ?access_token=),
/// authenticated and rate-limited; no scope is checked.
std::expected<ApiToken, ApiError> authenticate_request(ServerState& state, const Request& request,
                                                       QueryParams* params);

}  // namespace herald::http::detail
