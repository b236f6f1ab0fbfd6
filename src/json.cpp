#include "herald/json.hpp"

#include "herald/detail/utf8.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

#include "herald/detail/json_text.hpp"

namespace herald {
namespace {

/// The type named by the top-level `event_type` member of `text`, found without parsing the rest
/// (herald writes it first; other orders are looked for member by member). nullptr when there is
/// none, or the text is not simple enough to tell: the strict path then reports.
const EventType* find_event_type(std::string_view text, const EventCatalog& catalog) {
  detail::JsonTextReader in(text);
  if (!in.consume('{')) return nullptr;
  do {
    std::string_view key;
    if (!in.read_key(key)) return nullptr;
    if (key == "event_type") {
      std::string_view name;
      return in.read_string(name) ? catalog.find(name) : nullptr;
    }
    if (!in.skip_value()) return nullptr;
  } while (in.consume(','));
  return nullptr;
}

/// A first pass over the text that checks what Boost.JSON 1.81 lets through or reports
/// vaguely: duplicate keys (RFC 8259 section 4 leaves them undefined; RFC 7493 section 2.3
/// forbids them, and two readers disagreeing on `event_type` is a smuggling risk), numbers that
/// overflow a double (they would be re-encoded as the non-JSON `Infinity`), and the byte offset
/// of any error.
class ValidatingHandler {
 public:
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  /// Why the handler stopped the parse, when it did.
  std::string problem;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, boost::system::error_code&) {
    keys_.pop_back();
    return true;
  }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
    key_.append(s.data(), s.size());
    if (!keys_.back().insert(key_).second) {
      problem = "duplicate key " + detail::quote_for_message(key_, 64);
      ec = boost::json::error::syntax;
      return false;
    }
    key_.clear();
    return true;
  }
  bool on_string_part(boost::json::string_view, std::size_t, boost::system::error_code&) {
    return true;
  }
  bool on_string(boost::json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(std::uint64_t, boost::json::string_view, boost::system::error_code&) {
    return true;
  }
  bool on_double(double d, boost::json::string_view, boost::system::error_code& ec) {
    if (std::isfinite(d)) return true;
    problem = "number out of range for a double";
    ec = boost::json::error::exponent_overflow;
    return false;
  }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }

 private:
  std::vector<std::unordered_set<std::string>> keys_;
  std::string key_;
};

}  // namespace

std::size_t detail::first_invalid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

namespace {

using detail::first_invalid_utf8;

bool only_whitespace(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

std::expected<boost::json::value, Error> parse_json(std::string_view text) {
  if (text.size() > max_event_json_bytes) {
    return std::unexpected(Error{ErrorCode::too_large,
                                 "JSON input of " + std::to_string(text.size()) +
                                     " bytes is over the limit of " +
                                     std::to_string(max_event_json_bytes) + " bytes",
                                 {}});
  }
  if (only_whitespace(text)) {
    return std::unexpected(Error{ErrorCode::invalid_argument, "invalid JSON: empty input", {}});
  }
  boost::json::parse_options options;
  options.max_depth = max_event_json_depth;
  {
    boost::json::basic_parser<ValidatingHandler> checker(options);
    boost::system::error_code ec;
    const std::size_t consumed = checker.write_some(false, text.data(), text.size(), ec);
    if (ec) {
      if (ec == boost::json::error::too_deep) {
        return std::unexpected(
            Error{ErrorCode::too_large,
                  "JSON nested deeper than " + std::to_string(max_event_json_depth) + " levels",
                  {}});
      }
      if (ec == boost::json::error::incomplete) {
        return std::unexpected(
            Error{ErrorCode::invalid_argument, "invalid JSON: unexpected end of input", {}});
      }
      const std::string& problem = checker.handler().problem;
      if (problem.empty()) {
        if (const std::size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
          return std::unexpected(
              Error{ErrorCode::invalid_argument,
                    "invalid JSON at byte " + std::to_string(bad) + ": invalid UTF-8",
                    {}});
        }
      }
      return std::unexpected(Error{ErrorCode::invalid_argument,
                                   "invalid JSON at byte " + std::to_string(consumed) + ": " +
                                       (problem.empty() ? ec.message() : problem),
                                   {}});
    }
    if (consumed < text.size() && !only_whitespace(text.substr(consumed))) {
      return std::unexpected(Error{ErrorCode::invalid_argument,
                                   "invalid JSON at byte " + std::to_string(consumed) +
                                       ": unexpected data after the JSON document",
                                   {}});
    }
  }
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec, {}, options);
  if (ec) {  // The first pass accepted it, so only an allocation failure can land here.
    return std::unexpected(Error{ErrorCode::internal, "JSON parse failed: " + ec.message(), {}});
  }
  return value;
}

std::expected<EventPtr, Error> decode_event(const boost::json::object& wire,
                                            const EventCatalog& catalog) {
  const auto* it = wire.find("event_type");
  if (it == wire.end()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "event_type",
                                            "missing; expected the event's type name, e.g. "
                                            "\"UserCreatedEvent\""));
  }
  if (!it->value().is_string()) {
    return std::unexpected(
        detail::field_type_error("event_type", "string naming an event type", it->value()));
  }
  const std::string_view name = it->value().get_string();
  const EventType* type = catalog.find(name);
  if (type == nullptr) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "event_type",
                         "unknown event type " + detail::quote_for_message(name, 64)));
  }
  return type->decode(wire);
}

std::expected<EventPtr, Error> decode_event(std::string_view json, const EventCatalog& catalog) {
  // The direct reader accepts only what the strict path below accepts, and declines the rest,
  // so every error still comes from one place.
  if (json.size() <= max_event_json_bytes) {
    if (const EventType* type = find_event_type(json, catalog)) {
      if (EventPtr event = type->try_decode_text(json)) return event;
    }
  }
  auto value = parse_json(json);
  if (!value) return std::unexpected(std::move(value.error()));
  if (!value->is_object()) {
    return std::unexpected(
        Error{ErrorCode::invalid_argument,
              "expected a JSON object for an event, got " + detail::describe_json_value(*value),
              {}});
  }
  return decode_event(value->get_object(), catalog);
}

std::string encode_event(EventRef event) { return boost::json::serialize(event.to_json()); }

}  // namespace herald
