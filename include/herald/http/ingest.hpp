#pragma once

#include <cstddef>
#include <expected>
#include <string_view>
#include <vector>

#include "herald/event_catalog.hpp"
#include "herald/event_ref.hpp"
#include "herald/http/api_error.hpp"

namespace herald::http {

/// The most events one `POST /api/v1/events` may carry.
inline constexpr std::size_t max_ingest_batch = 1000;

/// What a `POST /api/v1/events` body holds, decoded.
struct IngestBody {
  std::vector<EventPtr> events;
  /// True when the body was an array (the response is then an array too).
  bool batch = false;
};

/// Decodes the body of `POST /api/v1/events`: one event object, or an array of 1 to `max_batch`
/// event objects, each validated against `catalog` (docs/http-api.md). Errors name what was wrong:
/// 400 `invalid_json` (with the byte offset), 400 `invalid_event` naming the field, as
/// `events[3].user_id` inside an array, 413 `too_large` for a body over herald's JSON limits or an
/// array over `max_batch`. An array may repeat an `event_id`: the store keeps the first. Pure: safe
/// to call from any thread, on any bytes.
std::expected<IngestBody, ApiError> decode_ingest_body(std::string_view body,
                                                       const EventCatalog& catalog,
                                                       std::size_t max_batch = max_ingest_batch);

}  // namespace herald::http
