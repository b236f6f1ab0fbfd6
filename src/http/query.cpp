#include "herald/http/query.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <limits>

#include "herald/detail/utf8.hpp"

namespace herald::http {
namespace {

namespace http = boost::beast::http;

constexpr std::size_t max_target_bytes = 8 * 1024;
constexpr std::size_t max_text_parameter = 256;

ApiError bad_target(std::string message) {
  return ApiError{.status = http::status::bad_request,
                  .code = "invalid_target",
                  .message = std::move(message),
                  .field = {}};
}

ApiError bad_parameter(std::string_view key, std::string message) {
  return ApiError{.status = http::status::bad_request,
                  .code = "invalid_parameter",
                  .message = fmt::format("parameter '{}': {}", key, message),
                  .field = std::string(key)};
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 section 2.1. '+' stays '+' (RFC 3986 gives it no meaning; a timestamp offset such as
// +02:00 is written as is), so a space must be sent as %20.
std::expected<std::string, std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::unexpected(fmt::format("truncated percent-escape at byte {}", i));
    }
    const int high = hex_digit(text[i + 1]);
    const int low = hex_digit(text[i + 2]);
    if (high < 0 || low < 0) {
      return std::unexpected(fmt::format("invalid percent-escape at byte {}", i));
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  if (const auto bad = detail::first_invalid_utf8(out); bad != std::string::npos) {
    return std::unexpected(fmt::format("invalid UTF-8 at decoded byte {}", bad));
  }
  if (std::ranges::any_of(
          out, [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return std::unexpected(std::string("control character after decoding"));
  }
  return out;
}

std::string quoted(std::string_view value) {
  constexpr std::size_t shown = 64;
  std::string out = "'";
  out.append(value.substr(0, shown));
  if (value.size() > shown) out += "…";
  return out + "'";
}

}  // namespace

std::expected<RequestTarget, ApiError> parse_target(std::string_view target) {
  if (target.size() > max_target_bytes) {
    return std::unexpected(
        bad_target(fmt::format("the request target is {} bytes, over the limit of {} bytes",
                               target.size(), max_target_bytes)));
  }
  if (!target.starts_with('/')) {
    return std::unexpected(bad_target("the request target must be a path starting with '/'"));
  }
  if (target.find('#') != std::string_view::npos) {
    return std::unexpected(bad_target("the request target must not contain a fragment ('#')"));
  }
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);

  RequestTarget result;
  std::string_view rest = path.substr(1);
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view raw = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (raw.empty()) {
      // A trailing slash ("/api/v1/events/") is tolerated; "//" inside the path is not.
      if (rest.empty()) break;
      return std::unexpected(bad_target("the path has an empty segment ('//')"));
    }
    auto segment = percent_decode(raw);
    if (!segment) return std::unexpected(bad_target("the path has " + segment.error()));
    if (*segment == "." || *segment == "..") {
      return std::unexpected(bad_target("the path must not contain '.' or '..' segments"));
    }
    if (segment->find('/') != std::string::npos || segment->find('\\') != std::string::npos) {
      return std::unexpected(bad_target("a path segment must not contain an encoded '/' or '\\'"));
    }
    result.segments.push_back(std::move(*segment));
  }
  std::string_view remaining = query;
  while (!remaining.empty()) {
    const std::size_t amp = remaining.find('&');
    const std::string_view pair = remaining.substr(0, amp);
    remaining = amp == std::string_view::npos ? std::string_view{} : remaining.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t equals = pair.find('=');
    auto key = percent_decode(pair.substr(0, equals));
    if (!key) return std::unexpected(bad_target("a query parameter name has " + key.error()));
    auto value = percent_decode(equals == std::string_view::npos ? std::string_view{}
                                                                 : pair.substr(equals + 1));
    if (!value) {
      return std::unexpected(bad_parameter(*key, "the value has " + value.error()));
    }
    result.params.emplace_back(std::move(*key), std::move(*value));
  }
  return result;
}

QueryParams::QueryParams(std::vector<std::pair<std::string, std::string>> params)
    : params_(std::move(params)), taken_(params_.size(), false) {}

std::expected<std::optional<std::string>, ApiError> QueryParams::take(std::string_view key) {
  std::optional<std::string> value;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].first != key) continue;
    if (value) return std::unexpected(bad_parameter(key, "given more than once"));
    value = params_[i].second;
    taken_[i] = true;
  }
  return value;
}

std::vector<std::string> QueryParams::take_all(std::string_view key) {
  std::vector<std::string> values;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].first != key) continue;
    values.push_back(params_[i].second);
    taken_[i] = true;
  }
  return values;
}

std::expected<std::optional<std::int64_t>, ApiError> QueryParams::take_integer(std::string_view key,
                                                                               std::int64_t min,
                                                                               std::int64_t max) {
  auto text = take(key);
  if (!text) return std::unexpected(std::move(text.error()));
  if (!*text) return std::optional<std::int64_t>{};
  const std::string& value = **text;
  std::int64_t number = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || ec != std::errc{} || end != value.data() + value.size() || number < min ||
      number > max) {
    return std::unexpected(bad_parameter(
        key,
        fmt::format("expected a whole number from {} to {}, got {}", min, max, quoted(value))));
  }
  return std::optional<std::int64_t>{number};
}

std::expected<std::optional<Timestamp>, ApiError> QueryParams::take_timestamp(
    std::string_view key) {
  auto text = take(key);
  if (!text) return std::unexpected(std::move(text.error()));
  if (!*text) return std::optional<Timestamp>{};
  auto parsed = parse_timestamp(**text);
  if (!parsed) {
    return std::unexpected(bad_parameter(key, fmt::format("expected an RFC 3339 timestamp such as "
                                                          "2026-03-01T18:00:00Z, got {}",
                                                          quoted(**text))));
  }
  return std::optional<Timestamp>{*parsed};
}

std::expected<void, ApiError> QueryParams::reject_unknown() const {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (taken_[i]) continue;
    return std::unexpected(
        ApiError{.status = http::status::bad_request,
                 .code = "invalid_parameter",
                 .message = fmt::format("unknown query parameter {}", quoted(params_[i].first)),
                 .field = params_[i].first});
  }
  return {};
}

namespace {

std::expected<std::optional<std::string>, ApiError> take_text(QueryParams& params,
                                                              std::string_view key) {
  auto value = params.take(key);
  if (!value || !*value) return value;
  if ((*value)->empty() || (*value)->size() > max_text_parameter) {
    return std::unexpected(bad_parameter(
        key, fmt::format("expected 1 to {} bytes, got {}", max_text_parameter, (*value)->size())));
  }
  return value;
}

}  // namespace

std::expected<EventQuery, ApiError> take_event_query(QueryParams& params,
                                                     const EventCatalog& catalog, bool paged) {
  EventQuery query;
  for (std::string& type : params.take_all("type")) {
    if (!catalog.contains(type)) {
      return std::unexpected(bad_parameter(
          "type",
          fmt::format("unknown event type {}; GET /api/v1/catalog lists them", quoted(type))));
    }
    query.filter.types.push_back(std::move(type));
  }
  constexpr std::int64_t max_id = std::numeric_limits<std::int64_t>::max();
  auto organization = params.take_integer("organization", 0, max_id);
  if (!organization) return std::unexpected(std::move(organization.error()));
  query.filter.organization_id = *organization;
  auto entity_type = take_text(params, "entity_type");
  if (!entity_type) return std::unexpected(std::move(entity_type.error()));
  query.filter.entity_type = std::move(*entity_type);
  auto entity_id = take_text(params, "entity_id");
  if (!entity_id) return std::unexpected(std::move(entity_id.error()));
  query.filter.entity_id = std::move(*entity_id);
  auto since = params.take_timestamp("since");
  if (!since) return std::unexpected(std::move(since.error()));
  query.filter.since = *since;
  auto until = params.take_timestamp("until");
  if (!until) return std::unexpected(std::move(until.error()));
  query.filter.until = *until;
  if (query.filter.since && query.filter.until && *query.filter.until < *query.filter.since) {
    return std::unexpected(bad_parameter("until", "must not be before 'since'"));
  }
  auto after = params.take_integer("after", 0, max_id);
  if (!after) return std::unexpected(std::move(after.error()));
  query.after = *after;
  if (!paged) return query;
  auto before = params.take_integer("before", 1, max_id);
  if (!before) return std::unexpected(std::move(before.error()));
  query.before = *before;
  if (query.after && query.before) {
    return std::unexpected(bad_parameter(
        "before", "give either 'after' (oldest first) or 'before' (newest first), not both"));
  }
  auto limit = params.take_integer("limit", 1, static_cast<std::int64_t>(max_page_size));
  if (!limit) return std::unexpected(std::move(limit.error()));
  if (*limit) query.limit = static_cast<std::size_t>(**limit);
  return query;
}

std::expected<AuditQuery, ApiError> take_audit_query(QueryParams& params) {
  AuditQuery query;
  constexpr std::int64_t max_id = std::numeric_limits<std::int64_t>::max();
  auto organization = params.take_integer("organization", 0, max_id);
  if (!organization) return std::unexpected(std::move(organization.error()));
  query.organization_id = *organization;
  auto actor = params.take_integer("actor", std::numeric_limits<std::int64_t>::min(), max_id);
  if (!actor) return std::unexpected(std::move(actor.error()));
  query.actor = *actor;
  auto action = take_text(params, "action");
  if (!action) return std::unexpected(std::move(action.error()));
  query.action = std::move(*action);
  auto entity_type = take_text(params, "entity_type");
  if (!entity_type) return std::unexpected(std::move(entity_type.error()));
  query.entity_type = std::move(*entity_type);
  auto entity_id = take_text(params, "entity_id");
  if (!entity_id) return std::unexpected(std::move(entity_id.error()));
  query.entity_id = std::move(*entity_id);
  auto since = params.take_timestamp("since");
  if (!since) return std::unexpected(std::move(since.error()));
  query.since = *since;
  auto until = params.take_timestamp("until");
  if (!until) return std::unexpected(std::move(until.error()));
  query.until = *until;
  auto before = params.take_integer("before", 1, max_id);
  if (!before) return std::unexpected(std::move(before.error()));
  query.before_position = *before;
  auto limit = params.take_integer("limit", 1, static_cast<std::int64_t>(max_page_size));
  if (!limit) return std::unexpected(std::move(limit.error()));
  if (*limit) query.limit = static_cast<std::size_t>(**limit);
  return query;
}

}  // namespace herald::http
