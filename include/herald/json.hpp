#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

#include "herald/error.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_ref.hpp"

namespace herald {

/// Input larger than this is refused before parsing.
inline constexpr std::size_t max_event_json_bytes = std::size_t{1} << 20;
/// JSON nested deeper than this (objects and arrays) is refused.
inline constexpr std::size_t max_event_json_depth = 32;

/// Parses JSON text under herald's limits (size, depth, valid UTF-8) into a value.
std::expected<boost::json::value, Error> parse_json(std::string_view text);

/// Decodes one event from its wire-form object using `catalog` to find the type named by
/// `event_type`. Errors name the field: a missing or unknown `event_type`, a wrong type, an
/// unknown field.
std::expected<EventPtr, Error> decode_event(const boost::json::object& wire,
                                            const EventCatalog& catalog);
/// Parses and decodes one event from JSON text (limits as in `parse_json`).
std::expected<EventPtr, Error> decode_event(std::string_view json, const EventCatalog& catalog);

/// The wire form of `event` serialized as compact JSON.
std::string encode_event(EventRef event);

}  // namespace herald
