#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "herald/event_catalog.hpp"
#include "herald/event_store.hpp"
#include "herald/http/api_error.hpp"

namespace herald::http {

/// A request target (RFC 9112 section 3.2.1, origin form) split into its path segments and its
/// query parameters, both percent-decoded.
struct RequestTarget {
  /// "/api/v1/events/abc" → {"api", "v1", "events", "abc"}.
  std::vector<std::string> segments;
  /// In the order given; a key may repeat.
  std::vector<std::pair<std::string, std::string>> params;
};

/// Parses an origin-form target. Errors (400 `invalid_target`): not starting with '/', bad
/// percent-encoding, a `.` or `..` segment, an empty segment inside the path, a decoded '/' or NUL
/// inside a segment, a target over 8 KiB.
std::expected<RequestTarget, ApiError> parse_target(std::string_view target);

/// The query parameters of one request, taken one by one by the handler; whatever was not taken
/// is an unknown parameter (400 `invalid_parameter` naming it). Not thread-safe.
class QueryParams {
 public:
  explicit QueryParams(std::vector<std::pair<std::string, std::string>> params);

  /// The value of `key`; 400 when it is given more than once.
  std::expected<std::optional<std::string>, ApiError> take(std::string_view key);
  /// Every value of a repeatable `key`, in order.
  std::vector<std::string> take_all(std::string_view key);
  /// A whole number in [min, max]; 400 naming `key` otherwise.
  std::expected<std::optional<std::int64_t>, ApiError> take_integer(std::string_view key,
                                                                    std::int64_t min,
                                                                    std::int64_t max);
  /// An RFC 3339 timestamp; 400 naming `key` otherwise.
  std::expected<std::optional<Timestamp>, ApiError> take_timestamp(std::string_view key);
  /// 400 naming the first parameter nobody took.
  std::expected<void, ApiError> reject_unknown() const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
  std::vector<bool> taken_;
};

/// The most items one page of a list returns.
inline constexpr std::size_t max_page_size = 1000;

/// `GET /api/v1/events` and the stream: the filters, the cursor and the page size.
struct EventQuery {
  EventFilter filter;
  /// Forward from this position (exclusive).
  std::optional<std::int64_t> after;
  /// Backward from this position (exclusive), newest first.
  std::optional<std::int64_t> before;
  std::size_t limit = 100;
};

/// Takes the event filters (`type` repeatable and checked against `catalog`, `organization`,
/// `entity_type`, `entity_id`, `since`, `until`) and, when `paged`, `after`, `before` and `limit`
/// (1 to 1000, default 100). Errors: 400 naming the parameter.
std::expected<EventQuery, ApiError> take_event_query(QueryParams& params,
                                                     const EventCatalog& catalog, bool paged);

/// `GET /api/v1/audit`: `organization`, `actor`, `action` (exact or a `prefix*`), `entity_type`,
/// `entity_id`, `since`, `until`, `before` (the cursor), `limit` (1 to 1000, default 100).
std::expected<AuditQuery, ApiError> take_audit_query(QueryParams& params);

}  // namespace herald::http
