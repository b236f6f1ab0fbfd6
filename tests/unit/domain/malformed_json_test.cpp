#include "herald/json.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "herald/domain/events.hpp"

namespace {

using herald::ErrorCode;
using namespace herald::domain;

// One input that decoding must refuse, and exactly how: the error's code, its message, and the
// field it names ("" when the problem is not one field's).
struct MalformedCase {
  std::string name;
  std::string input;
  ErrorCode code;
  std::string message;
  std::string field;
};

// Keeps a failure report short: the inputs include a megabyte of padding.
void PrintTo(const MalformedCase& c, std::ostream* out) { *out << c.name; }

// `{"event_type":"<type>",<members>}`.
std::string event_json(std::string_view type, std::string_view members = {}) {
  std::string json = "{\"event_type\":\"" + std::string(type) + "\"";
  if (!members.empty()) json.append(",").append(members);
  return json + "}";
}

// A UserCreatedEvent whose metadata nests `depth` levels below the event object itself.
std::string nested_metadata(std::size_t depth) {
  std::string members = "\"metadata\":";
  for (std::size_t i = 0; i < depth; ++i) members += "{\"a\":";
  members += "1";
  for (std::size_t i = 0; i < depth; ++i) members += "}";
  return event_json("UserCreatedEvent", members);
}

// A UserCreatedEvent with `padding` bytes of padding in metadata.
std::string padded_event(std::size_t padding) {
  return event_json("UserCreatedEvent",
                    "\"metadata\":{\"padding\":\"" + std::string(padding, 'x') + "\"}");
}

// A UserCreatedEvent exactly `size` bytes long.
std::string event_of_size(std::size_t size) { return padded_event(size - padded_event(0).size()); }

const std::string long_name(100, 'k');
const std::string long_name_shown = std::string(64, 'k') + "…";

constexpr ErrorCode invalid = ErrorCode::invalid_argument;
constexpr ErrorCode too_large = ErrorCode::too_large;

std::vector<MalformedCase> malformed_cases() {
  const std::string user = "UserCreatedEvent";
  const std::string member_permission = "OrganizationMemberPermissionChangedEvent";
  const std::string match = "MatchScheduledEvent";
  const std::string priority_expected =
      "expected integer priority (LOW 25, NORMAL 50, HIGH 75, CRITICAL 100)";
  return {
      // Not JSON at all.
      {"NotJson", "nope", invalid, "invalid JSON at byte 0: syntax error", ""},
      {"EmptyInput", "", invalid, "invalid JSON: empty input", ""},
      {"WhitespaceOnly", " \n\t ", invalid, "invalid JSON: empty input", ""},
      {"TruncatedObject", "{\"event_type\":\"UserCreatedEvent\"", invalid,
       "invalid JSON: unexpected end of input", ""},
      {"TrailingGarbage", event_json(user) + " x", invalid,
       "invalid JSON at byte 34: unexpected data after the JSON document", ""},
      {"TwoDocuments", event_json(user) + event_json(user), invalid,
       "invalid JSON at byte 33: unexpected data after the JSON document", ""},
      {"TrailingComma", "{\"event_type\":\"UserCreatedEvent\",}", invalid,
       "invalid JSON at byte 33: syntax error", ""},
      {"SingleQuotes", "{'event_type':'UserCreatedEvent'}", invalid,
       "invalid JSON at byte 1: syntax error", ""},
      {"Comment", "{/* a comment */\"event_type\":\"UserCreatedEvent\"}", invalid,
       "invalid JSON at byte 1: syntax error", ""},
      {"NotANumberLiteral", event_json(user, "\"discord_id\":NaN"), invalid,
       "invalid JSON at byte 46: syntax error", ""},
      {"InvalidUtf8InAValue", event_json(user, "\"discord_username\":\"a\xff\""), invalid,
       "invalid JSON at byte 54: invalid UTF-8", ""},
      {"InvalidUtf8InAKey", event_json(user, "\"discord_\xc3\":1"), invalid,
       "invalid JSON at byte 42: invalid UTF-8", ""},
      {"LoneSurrogateEscape", event_json(user, "\"discord_username\":\"\\ud800\""), invalid,
       "invalid JSON at byte 59: syntax error", ""},

      // JSON, but not an object.
      {"TopLevelArray", "[" + event_json(user) + "]", invalid,
       "expected a JSON object for an event, got array", ""},
      {"TopLevelString", "\"UserCreatedEvent\"", invalid,
       "expected a JSON object for an event, got string \"UserCreatedEvent\"", ""},
      {"TopLevelNumber", "42", invalid, "expected a JSON object for an event, got integer 42", ""},
      {"TopLevelNull", "null", invalid, "expected a JSON object for an event, got null", ""},

      // The envelope: event_type and entity_type.
      {"MissingEventType", "{\"entity_id\":1}", invalid,
       "field 'event_type': missing; expected the event's type name, e.g. \"UserCreatedEvent\"",
       "event_type"},
      {"EventTypeNotAString", "{\"event_type\":42}", invalid,
       "field 'event_type': expected string naming an event type, got integer 42", "event_type"},
      {"EventTypeNull", "{\"event_type\":null}", invalid,
       "field 'event_type': expected string naming an event type, got null", "event_type"},
      {"UnknownEventType", event_json("UserExplodedEvent"), invalid,
       "field 'event_type': unknown event type \"UserExplodedEvent\"", "event_type"},
      {"LongUnknownEventTypeIsTruncated", event_json(long_name), invalid,
       "field 'event_type': unknown event type \"" + std::string(64, 'k') + "\"…", "event_type"},
      {"EntityTypeMismatch", event_json(user, "\"entity_type\":\"Tournament\""), invalid,
       "field 'entity_type': expected \"User\" for UserCreatedEvent, got string \"Tournament\"",
       "entity_type"},
      {"EntityTypeNotAString", event_json(user, "\"entity_type\":5"), invalid,
       "field 'entity_type': expected \"User\" for UserCreatedEvent, got integer 5", "entity_type"},

      // Fields the type does not have.
      {"UnknownField", event_json(user, "\"favourite_colour\":\"blue\""), invalid,
       "field 'favourite_colour': unknown field for UserCreatedEvent", "favourite_colour"},
      {"FieldOfAnotherType", event_json(user, "\"reason\":\"spam\""), invalid,
       "field 'reason': unknown field for UserCreatedEvent", "reason"},
      {"LongUnknownFieldIsTruncated", event_json(user, "\"" + long_name + "\":1"), invalid,
       "field '" + long_name_shown + "': unknown field for UserCreatedEvent", long_name_shown},

      // Own fields of the wrong type.
      {"StringForInteger", event_json(user, "\"discord_id\":\"80351110224678912\""), invalid,
       "field 'discord_id': expected integer, got string \"80351110224678912\"", "discord_id"},
      {"IntegerForString", event_json(user, "\"discord_username\":42"), invalid,
       "field 'discord_username': expected string, got integer 42", "discord_username"},
      {"ObjectForString", event_json(user, "\"discord_username\":{}"), invalid,
       "field 'discord_username': expected string, got object", "discord_username"},
      {"StringForBoolean", event_json(member_permission, "\"granted\":\"yes\""), invalid,
       "field 'granted': expected boolean, got string \"yes\"", "granted"},
      {"IntegerForBoolean", event_json(member_permission, "\"granted\":1"), invalid,
       "field 'granted': expected boolean, got integer 1", "granted"},
      {"NullForBoolean", event_json(member_permission, "\"granted\":null"), invalid,
       "field 'granted': expected boolean, got null", "granted"},
      {"StringForStringArray", event_json("UserUpdatedEvent", "\"changed_fields\":\"name\""),
       invalid, "field 'changed_fields': expected array of strings, got string \"name\"",
       "changed_fields"},
      {"IntegerInStringArray", event_json("UserUpdatedEvent", "\"changed_fields\":[\"name\",7]"),
       invalid, "field 'changed_fields': expected array of strings, got array", "changed_fields"},
      {"NullForDefaultedStringArray", event_json("UserUpdatedEvent", "\"changed_fields\":null"),
       invalid, "field 'changed_fields': expected array of strings, got null", "changed_fields"},
      {"StringInIntegerArray", event_json(match, "\"participant_ids\":[1,\"2\"]"), invalid,
       "field 'participant_ids': expected array of integers, got array", "participant_ids"},
      {"FloatInIntegerArray", event_json(match, "\"participant_ids\":[1,2.5]"), invalid,
       "field 'participant_ids': expected array of integers, got array", "participant_ids"},
      {"ObjectForIntegerArray", event_json(match, "\"participant_ids\":{\"0\":1}"), invalid,
       "field 'participant_ids': expected array of integers, got object", "participant_ids"},
      {"NullForIntegerArray", event_json(match, "\"participant_ids\":null"), invalid,
       "field 'participant_ids': expected array of integers, got null", "participant_ids"},

      // entity_id: an integer or a string, nothing else.
      {"EntityIdArray", event_json(user, "\"entity_id\":[1]"), invalid,
       "field 'entity_id': expected integer or string, got array", "entity_id"},
      {"EntityIdObject", event_json(user, "\"entity_id\":{\"id\":1}"), invalid,
       "field 'entity_id': expected integer or string, got object", "entity_id"},
      {"EntityIdFloat", event_json(user, "\"entity_id\":1.5"), invalid,
       "field 'entity_id': expected integer or string, got number 1.5", "entity_id"},
      {"EntityIdBoolean", event_json(user, "\"entity_id\":true"), invalid,
       "field 'entity_id': expected integer or string, got boolean true", "entity_id"},
      {"EntityIdOutOfRange", event_json(user, "\"entity_id\":9223372036854775808"), invalid,
       "field 'entity_id': expected integer or string, got integer out of range", "entity_id"},

      // Integers: int64 only, never a float.
      {"IntegerJustAboveInt64", event_json(user, "\"user_id\":9223372036854775808"), invalid,
       "field 'user_id': expected integer, got integer out of range", "user_id"},
      {"IntegerAboveUint64", event_json(user, "\"user_id\":99999999999999999999"), invalid,
       "field 'user_id': expected integer, got integer out of range", "user_id"},
      {"IntegerJustBelowInt64", event_json(user, "\"user_id\":-9223372036854775809"), invalid,
       "field 'user_id': expected integer, got integer out of range", "user_id"},
      {"FloatWithZeroFraction", event_json(user, "\"organization_id\":7.0"), invalid,
       "field 'organization_id': expected integer, got number 7.0", "organization_id"},
      {"FloatInExponentForm", event_json(user, "\"discord_id\":1e3"), invalid,
       "field 'discord_id': expected integer, got number 1000.0", "discord_id"},

      // event_id: a UUID in canonical form.
      {"EventIdNotAUuid", event_json(user, "\"event_id\":\"not-a-uuid\""), invalid,
       "field 'event_id': expected UUID string, got string \"not-a-uuid\"", "event_id"},
      {"EventIdWithoutDashes",
       event_json(user, "\"event_id\":\"01a21c571a3b752e89a7834df2a74de4\""), invalid,
       "field 'event_id': expected UUID string, got string \"01a21c571a3b752e89a7834df2a74de4\"",
       "event_id"},
      {"EventIdWithANonHexDigit",
       event_json(user, "\"event_id\":\"01a21c57-1a3b-752e-89a7-834df2a74deg\""), invalid,
       "field 'event_id': expected UUID string, got string "
       "\"01a21c57-1a3b-752e-89a7-834df2a74deg\"",
       "event_id"},
      {"EventIdInteger", event_json(user, "\"event_id\":1"), invalid,
       "field 'event_id': expected UUID string, got integer 1", "event_id"},
      {"EventIdNull", event_json(user, "\"event_id\":null"), invalid,
       "field 'event_id': expected UUID string, got null", "event_id"},

      // timestamp: RFC 3339 with a zone.
      {"TimestampWithoutZone", event_json(user, "\"timestamp\":\"2026-11-27T09:30:00.123456\""),
       invalid,
       "field 'timestamp': expected RFC 3339 timestamp string, got string "
       "\"2026-11-27T09:30:00.123456\" (missing time zone; expected 'Z' or ±hh:mm)",
       "timestamp"},
      {"TimestampWithMonth13", event_json(user, "\"timestamp\":\"2026-13-27T09:30:00Z\""), invalid,
       "field 'timestamp': expected RFC 3339 timestamp string, got string "
       "\"2026-13-27T09:30:00Z\" (no such date)",
       "timestamp"},
      {"TimestampOnFebruary30", event_json(user, "\"timestamp\":\"2026-02-30T09:30:00Z\""), invalid,
       "field 'timestamp': expected RFC 3339 timestamp string, got string "
       "\"2026-02-30T09:30:00Z\" (no such date)",
       "timestamp"},
      {"TimestampInWords", event_json(user, "\"timestamp\":\"yesterday\""), invalid,
       "field 'timestamp': expected RFC 3339 timestamp string, got string \"yesterday\" "
       "(expected YYYY-MM-DD at the start)",
       "timestamp"},
      {"TimestampAsUnixSeconds", event_json(user, "\"timestamp\":1795771800"), invalid,
       "field 'timestamp': expected RFC 3339 timestamp string, got integer 1795771800",
       "timestamp"},
      {"TimestampWithTextAfterTheZone",
       event_json(user, "\"timestamp\":\"2026-11-27T09:30:00Z junk\""), invalid,
       "field 'timestamp': expected RFC 3339 timestamp string, got string "
       "\"2026-11-27T09:30:00Z junk\" (unexpected text after the zone)",
       "timestamp"},

      // metadata and entity_data: objects.
      {"MetadataArray", event_json(user, "\"metadata\":[]"), invalid,
       "field 'metadata': expected object, got array", "metadata"},
      {"MetadataNull", event_json(user, "\"metadata\":null"), invalid,
       "field 'metadata': expected object, got null", "metadata"},
      {"EntityDataString", event_json(user, "\"entity_data\":\"x\""), invalid,
       "field 'entity_data': expected object, got string \"x\"", "entity_data"},

      // priority: an int32.
      {"PriorityName", event_json(user, "\"priority\":\"HIGH\""), invalid,
       "field 'priority': " + priority_expected + ", got string \"HIGH\"", "priority"},
      {"PriorityFloat", event_json(user, "\"priority\":50.5"), invalid,
       "field 'priority': " + priority_expected + ", got number 50.5", "priority"},
      {"PriorityBeyondInt32", event_json(user, "\"priority\":3000000000"), invalid,
       "field 'priority': " + priority_expected + ", got integer 3000000000", "priority"},
      {"PriorityNull", event_json(user, "\"priority\":null"), invalid,
       "field 'priority': " + priority_expected + ", got null", "priority"},

      // Limits.
      {"InputOverOneMebibyte", event_of_size(herald::max_event_json_bytes + 1), too_large,
       "JSON input of 1048577 bytes is over the limit of 1048576 bytes", ""},
      {"NestingDeeperThan32InMetadata", nested_metadata(herald::max_event_json_depth), too_large,
       "JSON nested deeper than 32 levels", ""},
  };
}

class MalformedEventJson : public testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedEventJson, IsRejectedWithTheExactErrorCodeMessageAndField) {
  const MalformedCase& c = GetParam();
  auto decoded = herald::decode_event(c.input, platform_catalog());
  ASSERT_FALSE(decoded.has_value()) << "decoded as " << decoded->event_type();
  EXPECT_EQ(herald::to_string(decoded.error().code), herald::to_string(c.code));
  EXPECT_EQ(decoded.error().message, c.message);
  EXPECT_EQ(decoded.error().field, c.field);
}

INSTANTIATE_TEST_SUITE_P(EveryKindOfMistake, MalformedEventJson,
                         testing::ValuesIn(malformed_cases()),
                         [](const testing::TestParamInfo<MalformedCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(MalformedEventJsonTable, CoversAtLeastThirtyDistinctInputs) {
  const std::vector<MalformedCase> cases = malformed_cases();
  std::set<std::string> inputs;
  for (const MalformedCase& c : cases) inputs.insert(c.input);
  EXPECT_GE(inputs.size(), 30u);
  EXPECT_EQ(inputs.size(), cases.size());
}

TEST(EventJsonLimits, AcceptInputOfExactlyTheSizeLimit) {
  const std::string input = event_of_size(herald::max_event_json_bytes);
  ASSERT_EQ(input.size(), herald::max_event_json_bytes);
  auto decoded = herald::decode_event(input, platform_catalog());
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ((*decoded)->metadata.at("padding").as_string().size(),
            herald::max_event_json_bytes - padded_event(0).size());
}

TEST(EventJsonLimits, AcceptNestingOfExactly32Levels) {
  // The event object is level 1, so metadata may nest 31 objects below it.
  auto decoded =
      herald::decode_event(nested_metadata(herald::max_event_json_depth - 1), platform_catalog());
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
}

TEST(EventJsonDuplicateKeys, AreRefusedWithTheKeyNamed) {
  // RFC 8259 section 4 leaves duplicate names to the parser and RFC 7493 section 2.3 forbids
  // them: two readers could disagree on the value, so herald refuses the document.
  auto decoded = herald::decode_event(
      event_json("UserCreatedEvent", "\"discord_id\":1,\"discord_id\":2"), platform_catalog());
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(decoded.error().message, "invalid JSON at byte 59: duplicate key \"discord_id\"");
}

TEST(EventJsonDuplicateKeys, CannotSmuggleASecondEventType) {
  auto decoded = herald::decode_event(
      "{\"event_type\":\"UserDeletedEvent\",\"event_type\":\"UserCreatedEvent\"}",
      platform_catalog());
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().message, "invalid JSON at byte 44: duplicate key \"event_type\"");
}

TEST(EventJsonDuplicateKeys, AreAllowedInSeparateObjects) {
  auto decoded = herald::decode_event(
      event_json("UserCreatedEvent", "\"metadata\":{\"a\":{\"k\":1},\"b\":{\"k\":2}}"),
      platform_catalog());
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
}

TEST(EventJsonErrors, EchoLongMultibyteInputAsValidUtf8) {
  // Each echoed value is cut short; the cut must fall between characters, or the message cannot
  // be sent in a JSON error body.
  std::string accents;
  for (int i = 0; i < 50; ++i) accents += "é";
  for (const std::string& input : {
           event_json("UserCreatedEvent", "\"discord_id\":\"a" + accents + "\""),
           event_json("UserCreatedEvent", "\"a" + accents + "\":1"),
           event_json("a" + accents),
       }) {
    auto decoded = herald::decode_event(input, platform_catalog());
    ASSERT_FALSE(decoded.has_value());
    const std::string body = boost::json::serialize(boost::json::value(decoded.error().message));
    boost::system::error_code ec;
    (void)boost::json::parse(body, ec);
    EXPECT_FALSE(ec) << "not valid UTF-8: " << decoded.error().message;
  }
}

TEST(EventJsonNumbers, NeverDecodeAnEventWhoseEncodingIsNotJson) {
  // 1e400 overflows a double; whatever decoding does with it, the event it accepts must encode
  // back to JSON that parses.
  auto decoded = herald::decode_event(
      event_json("UserCreatedEvent", "\"metadata\":{\"ratio\":1e400}"), platform_catalog());
  if (!decoded) SUCCEED() << "refused: " << decoded.error().message;
  if (decoded) {
    const std::string encoded = herald::encode_event(*decoded);
    boost::system::error_code ec;
    (void)boost::json::parse(encoded, ec);
    EXPECT_FALSE(ec) << "encoded as " << encoded;
  }
}

}  // namespace
