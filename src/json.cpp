#include "herald/json.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>

namespace herald {

std::expected<boost::json::value, Error> parse_json(std::string_view text) {
  if (text.size() > max_event_json_bytes) {
    return std::unexpected(Error{ErrorCode::too_large,
                                 "JSON input of " + std::to_string(text.size()) +
                                     " bytes is over the limit of " +
                                     std::to_string(max_event_json_bytes) + " bytes",
                                 {}});
  }
  boost::json::parse_options options;
  options.max_depth = max_event_json_depth;
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec, {}, options);
  if (ec) {
    if (ec == boost::json::error::too_deep) {
      return std::unexpected(
          Error{ErrorCode::too_large,
                "JSON nested deeper than " + std::to_string(max_event_json_depth) + " levels",
                {}});
    }
    return std::unexpected(Error{ErrorCode::invalid_argument, "invalid JSON: " + ec.message(), {}});
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
    std::string shown(name.substr(0, 64));
    if (name.size() > 64) shown.append("…");
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "event_type",
                                            "unknown event type \"" + shown + "\""));
  }
  return type->decode(wire);
}

std::expected<EventPtr, Error> decode_event(std::string_view json, const EventCatalog& catalog) {
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
