#pragma once

#include <boost/json/object.hpp>

#include "herald/event_catalog.hpp"
#include "herald/event_type.hpp"

namespace herald {

/// JSON Schema (draft 2020-12) of one event type's wire form, generated from its field
/// description: every field with its type, `event_type` fixed to the type's name, no other
/// properties allowed.
boost::json::object json_schema(const EventType& type);

/// One schema document whose `$defs` hold every type of `catalog` and whose `oneOf` accepts any.
boost::json::object json_schema(const EventCatalog& catalog);

}  // namespace herald
