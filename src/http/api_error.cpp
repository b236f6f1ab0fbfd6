#include "herald/http/api_error.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace herald::http {

namespace http = boost::beast::http;

std::string ApiError::body() const {
  boost::json::object inner;
  inner["code"] = code;
  inner["message"] = message;
  if (!field.empty()) inner["field"] = field;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  return boost::json::serialize(outer);
}

ApiError to_api_error(const Error& error, std::string_view code) {
  ApiError api{.status = http::status::internal_server_error,
               .code = std::string(code),
               .message = error.message,
               .field = error.field};
  std::string_view derived = "internal";
  switch (error.code) {
    case ErrorCode::invalid_argument:
      api.status = http::status::bad_request;
      derived = "invalid_argument";
      break;
    case ErrorCode::too_large:
      api.status = http::status::payload_too_large;
      derived = "too_large";
      break;
    case ErrorCode::not_found:
      api.status = http::status::not_found;
      derived = "not_found";
      break;
    case ErrorCode::conflict:
      api.status = http::status::conflict;
      derived = "conflict";
      break;
    case ErrorCode::unauthenticated:
      api.status = http::status::unauthorized;
      derived = "unauthorized";
      break;
    case ErrorCode::unavailable:
      api.status = http::status::service_unavailable;
      derived = "unavailable";
      break;
    case ErrorCode::io:
    case ErrorCode::internal:
      break;
  }
  if (api.code.empty()) api.code = derived;
  return api;
}

}  // namespace herald::http
