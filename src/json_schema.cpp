#include "herald/json_schema.hpp"

#include <string>

namespace herald {
namespace {

constexpr std::string_view schema_dialect = "https://json-schema.org/draft/2020-12/schema";

boost::json::object type_schema(const EventType& type) {
  boost::json::object schema;
  schema["title"] = type.name();
  if (!type.description().empty()) schema["description"] = type.description();
  schema["type"] = "object";
  boost::json::object properties;
  // Draft 2020-12 section 6.1.3 ("const") pins the discriminator.
  properties["event_type"] = {{"const", type.name()}};
  boost::json::array required{"event_type"};
  for (const FieldInfo& field : type.fields()) {
    if (field.name == "entity_id") {
      properties["entity_type"] = {{"const", type.entity_type()}};
    }
    boost::json::object property;
    field.schema(property);
    properties[field.name] = std::move(property);
  }
  schema["properties"] = std::move(properties);
  schema["required"] = std::move(required);
  schema["additionalProperties"] = false;
  return schema;
}

}  // namespace

boost::json::object json_schema(const EventType& type) {
  boost::json::object schema;
  schema["$schema"] = schema_dialect;
  schema["$id"] = "urn:herald:event:" + std::string(type.name());
  for (auto& [key, value] : type_schema(type)) schema[key] = value;
  return schema;
}

boost::json::object json_schema(const EventCatalog& catalog) {
  boost::json::object schema;
  schema["$schema"] = schema_dialect;
  schema["$id"] = "urn:herald:events";
  schema["title"] = "herald event";
  boost::json::object defs;
  boost::json::array one_of;
  for (const EventType* type : catalog.types()) {
    defs[type->name()] = type_schema(*type);
    boost::json::object ref;
    ref["$ref"] = "#/$defs/" + std::string(type->name());
    one_of.emplace_back(std::move(ref));
  }
  schema["$defs"] = std::move(defs);
  schema["oneOf"] = std::move(one_of);
  return schema;
}

}  // namespace herald
