#include "herald/json_schema.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "herald/domain/catalog.hpp"
#include "herald/json.hpp"

namespace {

namespace json = boost::json;

constexpr std::string_view draft_2020_12 = "https://json-schema.org/draft/2020-12/schema";

// A checker for the part of JSON Schema 2020-12 that herald's schemas use: type (6.1.1),
// const (6.1.3), enum (6.1.2), required (6.5.3), properties and additionalProperties
// (Core 10.3.2.1, 10.3.2.3), items (Core 10.3.1.2), oneOf (Core 10.2.1.3) and $ref to
// "#/$defs/…" (Core 8.2.3.1). Annotations such as "format" are ignored, as the default
// vocabulary says (Validation 7.2.1).
class SchemaChecker {
 public:
  explicit SchemaChecker(const json::object& root) : root_(root) {}

  // The first violation as "<JSON Pointer fragment of the instance>: <what>", or "" when `instance`
  // conforms.
  std::string check(const json::value& instance) const { return check(instance, root_, "#"); }

 private:
  static bool has_type(const json::value& v, std::string_view type) {
    if (type == "null") return v.is_null();
    if (type == "boolean") return v.is_bool();
    if (type == "string") return v.is_string();
    if (type == "array") return v.is_array();
    if (type == "object") return v.is_object();
    if (type == "number") return v.is_number();
    if (type == "integer") {
      if (v.is_int64() || v.is_uint64()) return true;
      return v.is_double() && std::isfinite(v.get_double()) &&
             std::trunc(v.get_double()) == v.get_double();
    }
    ADD_FAILURE() << "unknown JSON Schema type " << type;
    return false;
  }

  std::string check(const json::value& v, const json::object& schema,
                    const std::string& path) const {
    if (const auto* ref = schema.if_contains("$ref")) {
      const std::string_view target = ref->as_string();
      const std::string_view prefix = "#/$defs/";
      if (!target.starts_with(prefix)) return path + ": unsupported $ref " + std::string(target);
      const auto& defs = root_.at("$defs").as_object();
      const auto* def = defs.if_contains(target.substr(prefix.size()));
      if (def == nullptr) return path + ": dangling $ref " + std::string(target);
      if (auto error = check(v, def->as_object(), path); !error.empty()) return error;
    }
    if (const auto* type = schema.if_contains("type")) {
      bool matched = false;
      if (type->is_string()) {
        matched = has_type(v, type->as_string());
      } else {
        for (const auto& t : type->as_array()) matched = matched || has_type(v, t.as_string());
      }
      if (!matched) {
        return path + ": type " + json::serialize(*type) + " does not admit " + json::serialize(v);
      }
    }
    if (const auto* constant = schema.if_contains("const"); constant && *constant != v) {
      return path + ": expected const " + json::serialize(*constant);
    }
    if (const auto* choices = schema.if_contains("enum")) {
      bool found = false;
      for (const auto& choice : choices->as_array()) found = found || choice == v;
      if (!found) return path + ": not in enum";
    }
    if (const auto* one_of = schema.if_contains("oneOf")) {
      int passing = 0;
      for (const auto& branch : one_of->as_array()) {
        if (check(v, branch.as_object(), path).empty()) ++passing;
      }
      if (passing != 1) return path + ": matches " + std::to_string(passing) + " oneOf branches";
    }
    if (v.is_object()) {
      const json::object& object = v.as_object();
      if (const auto* required = schema.if_contains("required")) {
        for (const auto& name : required->as_array()) {
          if (!object.contains(name.as_string())) {
            return path + ": missing required " + std::string(name.as_string());
          }
        }
      }
      const json::object* properties = nullptr;
      if (const auto* p = schema.if_contains("properties")) properties = &p->as_object();
      const json::value* additional = schema.if_contains("additionalProperties");
      for (const auto& member : object) {
        const std::string member_path = path + "/" + std::string(member.key());
        const json::value* property = properties ? properties->if_contains(member.key()) : nullptr;
        if (property != nullptr) {
          if (auto error = check(member.value(), property->as_object(), member_path);
              !error.empty()) {
            return error;
          }
        } else if (additional != nullptr) {
          if (additional->is_bool() && !additional->as_bool()) {
            return member_path + ": additional property not allowed";
          }
          if (additional->is_object()) {
            if (auto error = check(member.value(), additional->as_object(), member_path);
                !error.empty()) {
              return error;
            }
          }
        }
      }
    }
    if (v.is_array()) {
      if (const auto* items = schema.if_contains("items")) {
        const json::array& array = v.as_array();
        for (std::size_t i = 0; i < array.size(); ++i) {
          if (auto error = check(array[i], items->as_object(), path + "/" + std::to_string(i));
              !error.empty()) {
            return error;
          }
        }
      }
    }
    return "";
  }

  const json::object& root_;
};

// What the schema of a field must say, written from FieldInfo::type_name's documented meaning.
json::object expected_property(const herald::FieldInfo& field) {
  static const std::map<std::string_view, std::string_view> object_types = {
      {"integer", R"({"type":"integer"})"},
      {"string", R"({"type":"string"})"},
      {"boolean", R"({"type":"boolean"})"},
      {"[string]", R"({"type":"array","items":{"type":"string"}})"},
      {"[integer]", R"({"type":"array","items":{"type":"integer"}})"},
      {"object", R"({"type":"object"})"},
      {"integer|string", R"({"type":["integer","string"]})"},
      {"uuid", R"({"type":"string","format":"uuid"})"},
      {"timestamp", R"({"type":"string","format":"date-time"})"},
      {"priority", R"({"type":"integer"})"},
  };
  json::object property = json::parse(object_types.at(field.type_name)).as_object();
  if (field.nullable) {
    json::value& type = property["type"];
    if (type.is_string())
      type = json::array{type, "null"};
    else
      type.as_array().emplace_back("null");
  }
  return property;
}

// A wire value of the field's type that is not its default.
json::value sample_value(const herald::FieldInfo& field) {
  static const std::map<std::string_view, std::string_view> samples = {
      {"integer", "-9007199254740993"},
      {"string", R"("sample ✓")"},
      {"boolean", "true"},
      {"[string]", R"(["a",""])"},
      {"[integer]", "[1,-2,9223372036854775807]"},
      {"object", R"({"k":{"nested":[1,"two",null]}})"},
      {"integer|string", R"("bold-rush-1234")"},
      {"uuid", R"("01a21c57-1a3b-752e-89a7-834df2a74de4")"},
      {"timestamp", R"("2026-11-27T09:30:00.123456Z")"},
      {"priority", "75"},
  };
  return json::parse(samples.at(field.type_name));
}

// The wire form of every catalog type twice: with only `event_type` given (so every other field
// takes its default), and with every field set. Both are decoded and encoded again by herald.
std::vector<json::object> wire_forms(const herald::EventType& type) {
  json::object every_field{{"event_type", type.name()}};
  for (const herald::FieldInfo& field : type.fields())
    every_field[field.name] = sample_value(field);
  std::vector<json::object> forms;
  for (const json::object& input : {json::object{{"event_type", type.name()}}, every_field}) {
    auto decoded = herald::decode_event(input, herald::domain::platform_catalog());
    EXPECT_TRUE(decoded.has_value()) << decoded.error().message;
    if (decoded) forms.push_back(json::parse(herald::encode_event(*decoded)).as_object());
  }
  return forms;
}

const herald::EventCatalog& catalog() { return herald::domain::platform_catalog(); }

TEST(JsonSchema, DeclaresDraft2020_12ForEveryCatalogType) {
  for (const herald::EventType* type : catalog().types()) {
    SCOPED_TRACE(type->name());
    const json::object schema = herald::json_schema(*type);
    EXPECT_EQ(schema.at("$schema").as_string(), draft_2020_12);
    EXPECT_EQ(schema.at("type"), "object");
    EXPECT_EQ(schema.at("title").as_string(), type->name());
  }
}

TEST(JsonSchema, FixesEventTypeAndEntityTypeAsRequiredConstants) {
  for (const herald::EventType* type : catalog().types()) {
    SCOPED_TRACE(type->name());
    const json::object schema = herald::json_schema(*type);
    const json::object& properties = schema.at("properties").as_object();
    EXPECT_EQ(properties.at("event_type"), (json::object{{"const", type->name()}}));
    EXPECT_EQ(properties.at("entity_type"), (json::object{{"const", type->entity_type()}}));
    const json::array& required = schema.at("required").as_array();
    EXPECT_NE(std::find(required.begin(), required.end(), json::value("event_type")),
              required.end());
  }
}

TEST(JsonSchema, DescribesEveryFieldAndNothingElseWithItsJsonType) {
  for (const herald::EventType* type : catalog().types()) {
    SCOPED_TRACE(type->name());
    const json::object schema = herald::json_schema(*type);
    const json::object& properties = schema.at("properties").as_object();
    EXPECT_EQ(properties.size(), type->fields().size() + 2);  // + event_type, entity_type
    for (const herald::FieldInfo& field : type->fields()) {
      SCOPED_TRACE(field.name);
      ASSERT_TRUE(properties.contains(field.name));
      EXPECT_EQ(properties.at(field.name), expected_property(field));
    }
  }
}

TEST(JsonSchema, GivesNullableFieldsATypeListWithNull) {
  auto property = [](std::string_view type, std::string_view field) {
    return herald::json_schema(*catalog().find(type)).at("properties").at(field);
  };
  EXPECT_EQ(property("UserCreatedEvent", "discord_id"),
            json::parse(R"({"type":["integer","null"]})"));
  EXPECT_EQ(property("UserCreatedEvent", "discord_username"),
            json::parse(R"({"type":["string","null"]})"));
  EXPECT_EQ(property("UserCreatedEvent", "user_id"), json::parse(R"({"type":["integer","null"]})"));
  EXPECT_EQ(property("UserCreatedEvent", "entity_id"),
            json::parse(R"({"type":["integer","string","null"]})"));
  EXPECT_EQ(property("UserCreatedEvent", "entity_data"),
            json::parse(R"({"type":["object","null"]})"));
  EXPECT_EQ(property("OrganizationUpdatedEvent", "changed_fields"),
            json::parse(R"({"type":["array","null"],"items":{"type":"string"}})"));
  EXPECT_EQ(property("PresetCreatedEvent", "namespace"),
            json::parse(R"({"type":["string","null"]})"));
}

TEST(JsonSchema, GivesDefaultedAndCommonFieldsASingleType) {
  auto property = [](std::string_view type, std::string_view field) {
    return herald::json_schema(*catalog().find(type)).at("properties").at(field);
  };
  EXPECT_EQ(property("UserUpdatedEvent", "changed_fields"),
            json::parse(R"({"type":"array","items":{"type":"string"}})"));
  EXPECT_EQ(property("MatchScheduledEvent", "participant_ids"),
            json::parse(R"({"type":"array","items":{"type":"integer"}})"));
  EXPECT_EQ(property("OrganizationMemberPermissionChangedEvent", "granted"),
            json::parse(R"({"type":"boolean"})"));
  EXPECT_EQ(property("UserCreatedEvent", "event_id"),
            json::parse(R"({"type":"string","format":"uuid"})"));
  EXPECT_EQ(property("UserCreatedEvent", "timestamp"),
            json::parse(R"({"type":"string","format":"date-time"})"));
  EXPECT_EQ(property("UserCreatedEvent", "priority"), json::parse(R"({"type":"integer"})"));
  EXPECT_EQ(property("UserCreatedEvent", "metadata"), json::parse(R"({"type":"object"})"));
}

TEST(JsonSchema, ForbidsAdditionalProperties) {
  for (const herald::EventType* type : catalog().types()) {
    EXPECT_EQ(herald::json_schema(*type).at("additionalProperties"), false) << type->name();
  }
}

TEST(JsonSchema, AcceptsTheWireFormOfEveryCatalogType) {
  for (const herald::EventType* type : catalog().types()) {
    SCOPED_TRACE(type->name());
    const json::object schema = herald::json_schema(*type);
    const SchemaChecker checker(schema);
    const std::vector<json::object> forms = wire_forms(*type);
    EXPECT_EQ(forms.size(), 2u);
    for (const json::object& wire : forms) {
      EXPECT_EQ(checker.check(wire), "") << json::serialize(wire);
    }
  }
}

TEST(JsonSchema, RejectsMalformedDocuments) {
  const json::object schema = herald::json_schema(*catalog().find("MatchScheduledEvent"));
  const SchemaChecker checker(schema);
  const json::object valid = wire_forms(*catalog().find("MatchScheduledEvent")).at(1);
  ASSERT_EQ(checker.check(valid), "");

  auto with = [&](std::string_view key, json::value value) {
    json::object changed = valid;
    changed[key] = std::move(value);
    return changed;
  };
  json::object without_event_type = valid;
  without_event_type.erase("event_type");

  EXPECT_EQ(checker.check(with("colour", "blue")), "#/colour: additional property not allowed");
  EXPECT_EQ(checker.check(with("event_type", "MatchCompletedEvent")),
            "#/event_type: expected const \"MatchScheduledEvent\"");
  EXPECT_EQ(checker.check(with("entity_type", "Tournament")),
            "#/entity_type: expected const \"MatchSchedule\"");
  EXPECT_EQ(checker.check(without_event_type), "#: missing required event_type");
  EXPECT_EQ(checker.check(with("tournament_id", "12")),
            "#/tournament_id: type [\"integer\",\"null\"] does not admit \"12\"");
  EXPECT_EQ(checker.check(with("entity_id", 1.5)),
            "#/entity_id: type [\"integer\",\"string\",\"null\"] does not admit 1.5E0");
  EXPECT_EQ(checker.check(with("participant_ids", json::array{1, "2"})),
            "#/participant_ids/1: type \"integer\" does not admit \"2\"");
  EXPECT_EQ(checker.check(with("participant_ids", nullptr)),
            "#/participant_ids: type \"array\" does not admit null");
  EXPECT_EQ(checker.check(with("metadata", json::array{})),
            "#/metadata: type \"object\" does not admit []");
  EXPECT_EQ(checker.check(json::value("MatchScheduledEvent")),
            "#: type \"object\" does not admit \"MatchScheduledEvent\"");
}

TEST(JsonSchema, CatalogSchemaAcceptsEachTypeThroughExactlyOneBranch) {
  const json::object schema = herald::json_schema(catalog());
  EXPECT_EQ(schema.at("$schema").as_string(), draft_2020_12);
  EXPECT_EQ(schema.at("$defs").as_object().size(), 28u);
  EXPECT_EQ(schema.at("oneOf").as_array().size(), 28u);
  const SchemaChecker checker(schema);
  for (const herald::EventType* type : catalog().types()) {
    SCOPED_TRACE(type->name());
    for (const json::object& wire : wire_forms(*type)) EXPECT_EQ(checker.check(wire), "");
  }
  EXPECT_EQ(checker.check(json::object{{"event_type", "UserExplodedEvent"}}),
            "#: matches 0 oneOf branches");
}

}  // namespace
