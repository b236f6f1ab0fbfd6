#include "herald/json.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "test_events.hpp"

namespace herald {
namespace {

using test::ThingCreatedEvent;
using test::ThingRenamedEvent;
using test::TickEvent;

EventCatalog test_catalog() {
  EventCatalog catalog;
  catalog.add<ThingCreatedEvent>().add<ThingRenamedEvent>().add<TickEvent>();
  return catalog;
}

TEST(Json, EncodesEveryFieldIncludingTheSubclassFields) {
  auto event = make<ThingRenamedEvent>({.entity_id = "slug-1",
                                        .user_id = 3,
                                        .organization_id = 4,
                                        .entity_data = boost::json::object{{"name", "new"}},
                                        .metadata = boost::json::object{{"request_id", "r-1"}}},
                                       {.changed_fields = {"name", "color"},
                                        .urgent = true,
                                        .watchers = std::vector<std::int64_t>{1, 2},
                                        .namespace_ = "alttpr"});
  const boost::json::object wire = EventRef(event).to_json();
  EXPECT_EQ(wire.at("event_type"), "ThingRenamedEvent");
  EXPECT_EQ(std::string_view(wire.at("event_id").as_string()), event.event_id.to_string());
  EXPECT_EQ(std::string_view(wire.at("timestamp").as_string()), format_timestamp(event.timestamp));
  EXPECT_EQ(wire.at("user_id"), 3);
  EXPECT_EQ(wire.at("organization_id"), 4);
  EXPECT_EQ(wire.at("priority"), 75);
  EXPECT_EQ(wire.at("metadata"), (boost::json::object{{"request_id", "r-1"}}));
  EXPECT_EQ(wire.at("entity_type"), "Thing");
  EXPECT_EQ(wire.at("entity_id"), "slug-1");
  EXPECT_EQ(wire.at("entity_data"), (boost::json::object{{"name", "new"}}));
  EXPECT_EQ(wire.at("changed_fields"), (boost::json::array{"name", "color"}));
  EXPECT_EQ(wire.at("urgent"), true);
  EXPECT_EQ(wire.at("watchers"), (boost::json::array{1, 2}));
  EXPECT_EQ(wire.at("namespace"), "alttpr");
  EXPECT_EQ(wire.size(), 14U);
}

TEST(Json, EncodesAbsentOptionalFieldsAsNull) {
  const boost::json::object wire = EventRef(ThingCreatedEvent{}).to_json();
  EXPECT_TRUE(wire.at("user_id").is_null());
  EXPECT_TRUE(wire.at("entity_id").is_null());
  EXPECT_TRUE(wire.at("size").is_null());
  EXPECT_TRUE(wire.at("label").is_null());
}

TEST(Json, PutsEventTypeFirst) {
  const std::string text = encode_event(ThingCreatedEvent{});
  EXPECT_EQ(text.rfind("{\"event_type\":\"ThingCreatedEvent\"", 0), 0U) << text;
}

TEST(Json, NonEntityEventsHaveNoEntityFields) {
  const boost::json::object wire = EventRef(TickEvent{.sequence = 5}).to_json();
  EXPECT_FALSE(wire.contains("entity_type"));
  EXPECT_FALSE(wire.contains("entity_id"));
  EXPECT_EQ(wire.at("sequence"), 5);
}

TEST(Json, RoundTripsEveryField) {
  const EventCatalog catalog = test_catalog();
  auto event = make<ThingRenamedEvent>(
      {.entity_id = 42,
       .user_id = system_actor,
       .organization_id = 4,
       .entity_data = boost::json::object{{"a", boost::json::array{1, "b", nullptr}}},
       .metadata = boost::json::object{{"source", "test"}},
       .priority = Priority{60}},
      {.changed_fields = {"x"},
       .urgent = true,
       .watchers = std::vector<std::int64_t>{-1},
       .namespace_ = "ns"});
  const auto decoded = decode_event(encode_event(event), catalog);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  const auto* back = decoded->get<ThingRenamedEvent>();
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->event_id, event.event_id);
  EXPECT_EQ(back->timestamp, event.timestamp);
  EXPECT_EQ(back->user_id, event.user_id);
  EXPECT_EQ(back->organization_id, event.organization_id);
  EXPECT_EQ(back->priority, Priority{60});
  EXPECT_EQ(back->metadata, event.metadata);
  EXPECT_EQ(back->entity_id, event.entity_id);
  EXPECT_EQ(back->entity_data, event.entity_data);
  EXPECT_EQ(back->changed_fields, event.changed_fields);
  EXPECT_EQ(back->urgent, event.urgent);
  EXPECT_EQ(back->watchers, event.watchers);
  EXPECT_EQ(back->namespace_, event.namespace_);
}

TEST(Json, DecodingFillsWhatIsMissingWithDefaults) {
  const auto decoded = decode_event(R"({"event_type":"ThingRenamedEvent"})", test_catalog());
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->base().priority, Priority::high);
  EXPECT_EQ(decoded->base().event_id.version(), 7);
  EXPECT_TRUE(decoded->get<ThingRenamedEvent>()->changed_fields.empty());
  EXPECT_FALSE(decoded->get<ThingRenamedEvent>()->urgent);
}

struct BadCase {
  const char* json;
  ErrorCode code;
  const char* message;
};

class JsonRejects : public testing::TestWithParam<BadCase> {};

TEST_P(JsonRejects, WithAMessageNamingTheProblem) {
  const auto decoded = decode_event(GetParam().json, test_catalog());
  ASSERT_FALSE(decoded.has_value()) << GetParam().json;
  EXPECT_EQ(decoded.error().message, GetParam().message);
  EXPECT_EQ(decoded.error().code, GetParam().code);
}

INSTANTIATE_TEST_SUITE_P(
    CoreCases, JsonRejects,
    testing::Values(
        BadCase{
            R"({"size":1})", ErrorCode::invalid_argument,
            R"(field 'event_type': missing; expected the event's type name, e.g. "UserCreatedEvent")"},
        BadCase{R"({"event_type":"NoSuchEvent"})", ErrorCode::invalid_argument,
                R"(field 'event_type': unknown event type "NoSuchEvent")"},
        BadCase{R"({"event_type":7})", ErrorCode::invalid_argument,
                "field 'event_type': expected string naming an event type, got integer 7"},
        BadCase{R"({"event_type":"ThingCreatedEvent","size":"big"})", ErrorCode::invalid_argument,
                R"(field 'size': expected integer, got string "big")"},
        BadCase{R"({"event_type":"ThingCreatedEvent","entity_id":[1]})",
                ErrorCode::invalid_argument,
                "field 'entity_id': expected integer or string, got array"},
        BadCase{R"({"event_type":"ThingCreatedEvent","colour":"red"})", ErrorCode::invalid_argument,
                "field 'colour': unknown field for ThingCreatedEvent"},
        BadCase{
            R"({"event_type":"ThingCreatedEvent","entity_type":"User"})",
            ErrorCode::invalid_argument,
            R"(field 'entity_type': expected "Thing" for ThingCreatedEvent, got string "User")"},
        BadCase{R"({"event_type":"TickEvent","entity_type":"Thing"})", ErrorCode::invalid_argument,
                "field 'entity_type': unknown field for TickEvent"},
        BadCase{R"({"event_type":"ThingRenamedEvent","changed_fields":null})",
                ErrorCode::invalid_argument,
                "field 'changed_fields': expected array of strings, got null"},
        BadCase{R"({"event_type":"ThingCreatedEvent","size":9223372036854775808})",
                ErrorCode::invalid_argument,
                "field 'size': expected integer, got integer out of range"},
        BadCase{R"([1,2])", ErrorCode::invalid_argument,
                "expected a JSON object for an event, got array"},
        BadCase{R"({"event_type":)", ErrorCode::invalid_argument,
                "invalid JSON: unexpected end of input"}));

TEST(Json, RefusesInputOverOneMebibyte) {
  std::string big = R"({"event_type":"ThingCreatedEvent","label":")";
  big.append(max_event_json_bytes, 'x');
  big.append("\"}");
  const auto decoded = decode_event(big, test_catalog());
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, ErrorCode::too_large);
  EXPECT_EQ(decoded.error().message, "JSON input of " + std::to_string(big.size()) +
                                         " bytes is over the limit of 1048576 bytes");
}

TEST(Json, AcceptsNestingUpTo32LevelsAndRefusesDeeper) {
  auto nested = [](int levels) {
    // The event object is level 1; metadata adds the rest.
    std::string s = R"({"event_type":"ThingCreatedEvent","metadata":)";
    for (int i = 1; i < levels; ++i) s += (i + 1 < levels) ? R"({"a":)" : "{}";
    for (int i = 2; i < levels; ++i) s += "}";
    return s + "}";
  };
  EXPECT_TRUE(decode_event(nested(32), test_catalog()).has_value());
  const auto deep = decode_event(nested(33), test_catalog());
  ASSERT_FALSE(deep.has_value());
  EXPECT_EQ(deep.error().code, ErrorCode::too_large);
  EXPECT_EQ(deep.error().message, "JSON nested deeper than 32 levels");
}

TEST(Json, RefusesInvalidUtf8) {
  const std::string bad = "{\"event_type\":\"ThingCreatedEvent\",\"label\":\"\xC3\x28\"}";
  const auto decoded = decode_event(bad, test_catalog());
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(decoded.error().message.find("invalid JSON"), std::string::npos);
}

TEST(Json, EchoesAtMost64BytesOfAHostileFieldName) {
  const std::string key(5000, 'k');
  const auto decoded =
      decode_event(R"({"event_type":"ThingCreatedEvent",")" + key + R"(":1})", test_catalog());
  ASSERT_FALSE(decoded.has_value());
  EXPECT_LT(decoded.error().message.size(), 150U);
  EXPECT_EQ(decoded.error().field.size(), 64U + std::string("…").size());
}

}  // namespace
}  // namespace herald
