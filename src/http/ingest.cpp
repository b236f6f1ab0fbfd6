#include "herald/http/ingest.hpp"

#include <fmt/core.h>
#include <boost/json/value.hpp>

#include "herald/json.hpp"

namespace herald::http {
namespace {

namespace http = boost::beast::http;

ApiError json_error(const Error& error) {
  if (error.code == ErrorCode::too_large) {
    return ApiError{.status = http::status::payload_too_large,
                    .code = "too_large",
                    .message = error.message,
                    .field = error.field};
  }
  return ApiError{.status = http::status::bad_request,
                  .code = "invalid_json",
                  .message = error.message,
                  .field = error.field};
}

ApiError event_error(const Error& error, std::optional<std::size_t> index) {
  ApiError api = json_error(error);
  if (error.code != ErrorCode::too_large) api.code = "invalid_event";
  if (index) {
    const std::string prefix = fmt::format("events[{}]", *index);
    api.message = fmt::format("{}: {}", prefix, api.message);
    api.field = api.field.empty() ? prefix : prefix + "." + api.field;
  }
  return api;
}

// The first byte that is not JSON whitespace (RFC 8259 section 2), or 0.
char first_significant(std::string_view text) {
  for (const char c : text) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c;
  }
  return 0;
}

}  // namespace

std::expected<IngestBody, ApiError> decode_ingest_body(std::string_view body,
                                                       const EventCatalog& catalog,
                                                       std::size_t max_batch) {
  if (first_significant(body) == '{') {
    // The common case, one event: decoded straight from the text.
    auto event = decode_event(body, catalog);
    if (!event) return std::unexpected(event_error(event.error(), std::nullopt));
    IngestBody result;
    result.events.push_back(std::move(*event));
    return result;
  }
  auto parsed = parse_json(body);
  if (!parsed) return std::unexpected(json_error(parsed.error()));
  if (!parsed->is_array()) {
    return std::unexpected(ApiError{
        .status = http::status::bad_request,
        .code = "invalid_json",
        .message = fmt::format("expected one event (a JSON object) or an array of up to {} events, "
                               "got {}",
                               max_batch,
                               parsed->is_null()     ? "null"
                               : parsed->is_string() ? "a string"
                               : parsed->is_bool()   ? "a boolean"
                                                     : "a number"),
        .field = {}});
  }
  const boost::json::array& items = parsed->get_array();
  if (items.empty()) {
    return std::unexpected(ApiError{.status = http::status::bad_request,
                                    .code = "invalid_json",
                                    .message = "expected at least one event, got an empty array",
                                    .field = {}});
  }
  if (items.size() > max_batch) {
    return std::unexpected(ApiError{
        .status = http::status::payload_too_large,
        .code = "too_large",
        .message = fmt::format("a request carries at most {} events, got {}; split the batch",
                               max_batch, items.size()),
        .field = {}});
  }
  IngestBody result;
  result.batch = true;
  result.events.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const boost::json::value& item = items[i];
    if (!item.is_object()) {
      return std::unexpected(
          ApiError{.status = http::status::bad_request,
                   .code = "invalid_event",
                   .message = fmt::format("events[{}]: expected an event (a JSON object), got {}",
                                          i, item.is_array() ? "an array" : "a scalar"),
                   .field = fmt::format("events[{}]", i)});
    }
    auto event = decode_event(item.get_object(), catalog);
    if (!event) return std::unexpected(event_error(event.error(), i));
    result.events.push_back(std::move(*event));
  }
  return result;
}

}  // namespace herald::http
