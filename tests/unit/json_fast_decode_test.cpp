#include "herald/detail/json_text.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "herald/domain/catalog.hpp"
#include "herald/event_type.hpp"
#include "herald/json.hpp"

// The direct text reader (EventType::try_decode_text, and decode_event(text) which uses it)
// against the strict path it stands in for: parse_json, then decode from the DOM. On every input
// both must agree: the same event, or the same error.

namespace {

namespace json = boost::json;

const herald::EventCatalog& catalog() { return herald::domain::platform_catalog(); }

/// The decoder as it was before the text reader: a DOM first, then the typed decode from it.
std::expected<herald::EventPtr, herald::Error> decode_strictly(std::string_view text) {
  auto value = herald::parse_json(text);
  if (!value) return std::unexpected(value.error());
  if (!value->is_object()) {
    return std::unexpected(herald::Error{
        herald::ErrorCode::invalid_argument,
        "expected a JSON object for an event, got " + herald::detail::describe_json_value(*value),
        {}});
  }
  return herald::decode_event(value->get_object(), catalog());
}

/// True when `a` and `b` are the same JSON: same kinds (int64, uint64 and double apart), same
/// values, object members in the same order.
bool same_json(const json::value& a, const json::value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::object: {
      const json::object& x = a.get_object();
      const json::object& y = b.get_object();
      if (x.size() != y.size()) return false;
      for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j) {
        if (i->key() != j->key() || !same_json(i->value(), j->value())) return false;
      }
      return true;
    }
    case json::kind::array: {
      const json::array& x = a.get_array();
      const json::array& y = b.get_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!same_json(x[i], y[i])) return false;
      }
      return true;
    }
    case json::kind::double_: {
      // Bit for bit: -0.0 and 0.0 differ.
      const double x = a.get_double(), y = b.get_double();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    default:
      return a == b;
  }
}

/// The event's wire form, without the members the decoder fills in when the input lacks them.
json::object comparable_form(const herald::EventPtr& event, std::string_view input) {
  json::object form = event.ref().to_json();
  if (input.find("\"event_id\"") == std::string_view::npos) form.erase("event_id");
  if (input.find("\"timestamp\"") == std::string_view::npos) form.erase("timestamp");
  return form;
}

/// Decodes `text` through decode_event(text) and the strict path and expects the same outcome.
/// Returns what the direct reader alone made of it (empty when it declined).
herald::EventPtr expect_same_outcome(std::string_view text, std::string_view label) {
  SCOPED_TRACE(std::string(label) + ": " + std::string(herald::detail::utf8_prefix(text, 300)));
  const auto strict = decode_strictly(text);
  const auto decoded = herald::decode_event(text, catalog());
  EXPECT_EQ(strict.has_value(), decoded.has_value())
      << (strict ? "strict accepted, fast refused: " + decoded.error().message
                 : "strict refused: " + strict.error().message);
  herald::EventPtr direct;
  if (strict && decoded) {
    EXPECT_EQ(&strict->type(), &decoded->type());
    const json::object expected = comparable_form(*strict, text);
    const json::object got = comparable_form(*decoded, text);
    EXPECT_TRUE(same_json(expected, got))
        << "strict: " << json::serialize(expected) << "\nfast:   " << json::serialize(got);
    // A missing event_id or timestamp is generated, as the strict path does.
    EXPECT_FALSE((*decoded)->event_id.is_nil());
    direct = strict->type().try_decode_text(text);
    if (direct) {
      EXPECT_TRUE(same_json(expected, comparable_form(direct, text)));
    }
  } else if (!strict && !decoded) {
    EXPECT_EQ(strict.error().code, decoded.error().code);
    EXPECT_EQ(strict.error().message, decoded.error().message);
    EXPECT_EQ(strict.error().field, decoded.error().field);
    // The direct reader declines what the strict path refuses, for any type the text names.
    // (Size is checked by decode_event before either reader runs.)
    if (text.size() <= herald::max_event_json_bytes) {
      for (const herald::EventType* type : catalog().types()) {
        if (text.find("\"" + std::string(type->name()) + "\"") == std::string_view::npos) continue;
        EXPECT_FALSE(type->try_decode_text(text)) << "accepted as " << type->name();
      }
    }
  }
  return direct;
}

/// A value of the field's kind with something to get wrong in it: escapes, non-ASCII text,
/// numbers at the int64 limits, nested metadata.
std::string full_value(const herald::FieldInfo& field, int variant) {
  const bool low = variant % 2 == 1;
  static const std::map<std::string_view, std::string_view> values = {
      {"string",
       R"("tab\there \"quoted\" back\\slash \/ \b\f\n\r é中😀 \u00e9\u4e2d\ud83d\ude00 \u0000 end")"},
      {"boolean", "true"},
      {"[string]", R"(["a","","lange Straße — ✓","\u0041\n"])"},
      {"[integer]", "[1,-2,9223372036854775807,-9223372036854775808,0]"},
      {"object",
       R"({"k":{"nested":[1,"two",null,true,false,{"x":[]}]},"n":-0,"f":1.5,"e":1e3,"u":18446744073709551615,"big":123456789012345678901234,"neg":-9223372036854775808,"s":"\u00e9","":{}})"},
      {"uuid", R"("01a21c57-1a3b-752e-89a7-834df2a74de4")"},
      {"timestamp", R"("2026-11-27T09:30:00.123456Z")"},
      {"priority", "100"},
  };
  if (field.type_name == "integer") return low ? "-9223372036854775808" : "9223372036854775807";
  if (field.type_name == "integer|string") return low ? R"("bold-rush-\u0031234")" : "-42";
  if (field.type_name == "timestamp" && low) return R"("2026-11-27 09:30:00.5+02:00")";
  if (field.type_name == "uuid" && low) return R"("01A21C57-1A3B-752E-89A7-834DF2A74DE4")";
  if (field.type_name == "priority" && low) return "-7";
  if (field.type_name == "boolean" && low) return "false";
  return std::string(values.at(field.type_name));
}

/// `{"event_type":…,<fields in described order>}` with each field as `value_of` gives it
/// (fields for which it gives "" are left out); `entity_type` where herald puts it.
template <class ValueOf>
std::string wire_text(const herald::EventType& type, ValueOf value_of) {
  std::string text = "{\"event_type\":\"" + std::string(type.name()) + "\"";
  for (const herald::FieldInfo& field : type.fields()) {
    if (field.name == "entity_id") {
      text += ",\"entity_type\":\"" + std::string(type.entity_type()) + "\"";
    }
    const std::string value = value_of(field);
    if (!value.empty()) text += ",\"" + std::string(field.name) + "\":" + value;
  }
  return text + "}";
}

std::string full_event(const herald::EventType& type, int variant = 0) {
  return wire_text(type,
                   [&](const herald::FieldInfo& field) { return full_value(field, variant); });
}

/// The same members in reverse order, with whitespace around every token.
std::string reordered_and_spaced(std::string_view text) {
  json::object forward = json::parse(text).as_object();
  std::vector<std::pair<std::string, std::string>> members;
  for (const auto& member : forward) {
    members.emplace_back(json::serialize(json::string(member.key())),
                         json::serialize(member.value()));
  }
  std::string out = " \n{ ";
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    if (it != members.rbegin()) out += " ,\r\n\t";
    out += it->first + " :  " + it->second;
  }
  return out + " } \n";
}

TEST(JsonFastDecode, ReadsEveryCatalogTypeWithEveryFieldSetAsTheStrictDecoderDoes) {
  for (const herald::EventType* type : catalog().types()) {
    for (int variant : {0, 1}) {
      const std::string text = full_event(*type, variant);
      EXPECT_TRUE(expect_same_outcome(text, type->name())) << "declined " << text;
    }
  }
}

TEST(JsonFastDecode, ReadsEveryCatalogTypeWithNullsAndMissingFieldsAsTheStrictDecoderDoes) {
  for (const herald::EventType* type : catalog().types()) {
    const std::string nulls = wire_text(*type, [](const herald::FieldInfo& field) {
      return field.nullable ? std::string("null") : std::string();
    });
    EXPECT_TRUE(expect_same_outcome(nulls, type->name())) << "declined " << nulls;
    const std::string bare = "{\"event_type\":\"" + std::string(type->name()) + "\"}";
    EXPECT_TRUE(expect_same_outcome(bare, type->name())) << "declined " << bare;
  }
}

TEST(JsonFastDecode, ReadsEventsWrittenByHeraldItself) {
  for (const herald::EventType* type : catalog().types()) {
    auto decoded = decode_strictly(full_event(*type));
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
    const std::string written = herald::encode_event(*decoded);
    EXPECT_TRUE(expect_same_outcome(written, type->name())) << "declined " << written;
  }
}

TEST(JsonFastDecode, ReadsOtherKeyOrdersWhitespaceAndEscapedKeysAsTheStrictDecoderDoes) {
  for (const herald::EventType* type : catalog().types()) {
    const std::string text = full_event(*type);
    EXPECT_TRUE(expect_same_outcome(reordered_and_spaced(text), type->name()));
    std::string escaped_keys = text;
    for (std::size_t at = 0; (at = escaped_keys.find("_id\":", at)) != std::string::npos;) {
      escaped_keys.replace(at, 1, "\\u005f");
      at += 6;
    }
    EXPECT_TRUE(expect_same_outcome(escaped_keys, type->name()));
  }
}

TEST(JsonFastDecode, ReadsMetadataNestedToItsDepthLimitAndLeavesDeeperToTheStrictDecoder) {
  auto nested = [](int levels) {
    // The event object is level 1; metadata (an object) is level 2, then arrays and objects in
    // turn.
    std::string open, close;
    for (int level = 2; level <= levels; ++level) {
      const bool object = level % 2 == 0;
      open += object ? R"({"a":)" : "[";
      close.insert(0, object ? "}" : "]");
    }
    return R"({"event_type":"UserCreatedEvent","metadata":)" + open + "1" + close + "}";
  };
  for (int levels = 2; levels <= herald::detail::text_reader_max_depth; ++levels) {
    EXPECT_TRUE(expect_same_outcome(nested(levels), "nested"));
  }
  for (int levels = herald::detail::text_reader_max_depth + 1; levels <= 40; ++levels) {
    EXPECT_FALSE(expect_same_outcome(nested(levels), "nested deeper"));
  }
}

TEST(JsonFastDecode, ReadsNumbersAtTheInt64LimitsAndLeavesOthersToTheStrictDecoder) {
  const std::string prefix = R"({"event_type":"UserCreatedEvent","discord_id":)";
  for (std::string_view number : {"0", "-1", "9223372036854775807", "-9223372036854775808"}) {
    EXPECT_TRUE(expect_same_outcome(prefix + std::string(number) + "}", number));
  }
  for (std::string_view number : {"9223372036854775808",
                                  "-9223372036854775809",
                                  "18446744073709551615",
                                  "18446744073709551616",
                                  "99999999999999999999999",
                                  "-0",
                                  "0.0",
                                  "1e3",
                                  "1E3",
                                  "1.5",
                                  "-1.5e-3",
                                  "01",
                                  "-01",
                                  "+1",
                                  "1.",
                                  ".5",
                                  "-",
                                  "1e",
                                  "1e400",
                                  "-1e400",
                                  "0x10",
                                  "1_000",
                                  "Infinity",
                                  "NaN",
                                  "1 2"}) {
    EXPECT_FALSE(expect_same_outcome(prefix + std::string(number) + "}", number));
  }
  // In metadata every number is fine, and keeps the kind the strict parser gives it.
  for (std::string_view number :
       {"0", "-0", "-0.0", "0.1", "1e3", "9223372036854775808", "18446744073709551615",
        "18446744073709551616", "-9223372036854775809", "2.2250738585072014e-308", "5e-324",
        "1.7976931348623157e308", "123456789.123456789e-5"}) {
    const std::string text =
        R"({"event_type":"UserCreatedEvent","metadata":{"n":)" + std::string(number) + "}}";
    EXPECT_TRUE(expect_same_outcome(text, number));
  }
  for (std::string_view number : {"1e400", "-1e999", "01", "1.e5", "--1", "1e+"}) {
    const std::string text =
        R"({"event_type":"UserCreatedEvent","metadata":{"n":)" + std::string(number) + "}}";
    EXPECT_FALSE(expect_same_outcome(text, number));
  }
}

TEST(JsonFastDecode, ReadsStringsWithAnyCharacterAtAnyOffsetAsTheStrictDecoderDoes) {
  // The reader scans 16 and 8 bytes at a time, then byte by byte: put each kind of byte that
  // ends a plain run at every offset of strings of every length around those widths.
  const std::vector<std::string> specials = {
      "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00", "é", "中", "😀", "\x7f", "~",
      // Those above are valid, those below not.
      std::string("\x01"), "\x1f", "\xff", "\xc3", "\xed\xa0\x80", "\\", "\""};
  const std::size_t first_invalid_special = 10;
  for (std::size_t length = 0; length <= 40; ++length) {
    for (std::size_t at = 0; at <= length; ++at) {
      for (std::size_t i = 0; i < specials.size(); ++i) {
        std::string value(length, 'a');
        value.insert(at, specials[i]);
        const std::string text =
            R"({"event_type":"UserCreatedEvent","discord_username":")" + value + "\"}";
        const bool valid = i < first_invalid_special;
        EXPECT_EQ(valid, static_cast<bool>(expect_same_outcome(text, "special")))
            << "special " << i << " at " << at << " of " << length;
      }
    }
  }
}

TEST(JsonFastDecode, LeavesMalformedAndHostileInputToTheStrictDecoderWithItsErrors) {
  const std::string user = R"({"event_type":"UserCreatedEvent")";
  const std::vector<std::string> inputs = {
      "",
      "   ",
      "nope",
      "[]",
      "\"UserCreatedEvent\"",
      "42",
      "null",
      "{}",
      "{\"entity_id\":1}",
      R"({"event_type":42})",
      R"({"event_type":"UserExplodedEvent"})",
      user + R"(,"event_type":"UserCreatedEvent"})",
      user + R"(,"event_type":"UserDeletedEvent"})",
      R"({"event_type":"UserDeletedEvent","event_type":"UserCreatedEvent"})",
      user + R"(,"user_id":1,"user_id":2})",
      user + R"(,"user_id":1,"user\u005fid":2})",
      user + R"(,"metadata":{"a":1,"a":2}})",
      user + R"(,"metadata":{"a":{"b":1,"b":1}}})",
      user + R"(,"entity_type":"User","entity_type":"User"})",
      user + R"(,"entity_type":"Tournament"})",
      user + R"(,"entity_type":5})",
      R"({"event_type":"SystemMaintenanceEvent","entity_type":"System"})",
      user + R"(,"favourite_colour":"blue"})",
      user + R"(,"reason":"spam"})",
      user + ",\"" + std::string(5000, 'k') + "\":1}",
      user + R"(,"discord_username":"a)" + std::string("\xff") + "\"}",
      user + R"(,"discord_)" + std::string("\xc3") + "\":1}",
      user + R"(,"discord_username":")" + std::string("\xc0\x80") + "\"}",
      user + R"(,"discord_username":")" + std::string("\xed\xa0\x80") + "\"}",
      user + R"(,"discord_username":")" + std::string("\xf4\x90\x80\x80") + "\"}",
      user + R"(,"discord_username":")" + std::string("\xe4\xb8") + "\"}",
      user + R"(,"discord_username":")" + std::string("\x80") + "\"}",
      user + R"(,"discord_username":"abcdefghijklmno)" + std::string("\xf5") + "\"}",
      user + R"(,"metadata":{"k":")" + std::string("\xfe") + "\"}}",
      user + R"(,"metadata":{")" + std::string("\xc3\x28") + "\":1}}",
      user + R"(,"discord_username":"\ud800"})",
      user + R"(,"discord_username":"\udc00"})",
      user + R"(,"discord_username":"\ud800\u0041"})",
      user + R"(,"discord_username":"\ud800x"})",
      user + R"(,"discord_username":"\x41"})",
      user + R"(,"discord_username":"\u12"})",
      user + R"(,"discord_username":"\u12g4"})",
      user + ",\"discord_username\":\"raw\ttab\"}",
      user + ",\"discord_username\":\"raw\nnewline\"}",
      user + ",\"discord_username\":\"0123456789abcdef\x01\"}",
      user + R"(,"discord_username":"unterminated})",
      user + R"(,"discord_username":42})",
      user + R"(,"discord_username":{}})",
      user + R"(,"discord_username":["a"]})",
      user + R"(,"discord_id":"80351110224678912"})",
      user + R"(,"discord_id":true})",
      R"({"event_type":"OrganizationMemberPermissionChangedEvent","granted":null})",
      user + R"(,"user_id":7.0})",
      user + R"(,"entity_id":[1]})",
      user + R"(,"entity_id":{"id":1}})",
      user + R"(,"entity_id":1.5})",
      user + R"(,"entity_id":true})",
      user + R"(,"entity_id":9223372036854775808})",
      user + R"(,"event_id":"not-a-uuid"})",
      user + R"(,"event_id":"01a21c571a3b752e89a7834df2a74de4"})",
      user + R"(,"event_id":1})",
      user + R"(,"event_id":null})",
      user + R"(,"timestamp":"2026-11-27T09:30:00.123456"})",
      user + R"(,"timestamp":"2026-02-30T09:30:00Z"})",
      user + R"(,"timestamp":1795771800})",
      user + R"(,"timestamp":"2026-11-27T09:30:00Z junk"})",
      user + R"(,"metadata":[]})",
      user + R"(,"metadata":null})",
      user + R"(,"metadata":"x"})",
      user + R"(,"entity_data":"x"})",
      user + R"(,"priority":"HIGH"})",
      user + R"(,"priority":50.5})",
      user + R"(,"priority":3000000000})",
      user + R"(,"priority":null})",
      R"({"event_type":"UserUpdatedEvent","changed_fields":"name"})",
      R"({"event_type":"UserUpdatedEvent","changed_fields":["name",7]})",
      R"({"event_type":"UserUpdatedEvent","changed_fields":null})",
      R"({"event_type":"UserUpdatedEvent","changed_fields":["a",]})",
      R"({"event_type":"MatchScheduledEvent","participant_ids":[1,"2"]})",
      R"({"event_type":"MatchScheduledEvent","participant_ids":[1,2.5]})",
      R"({"event_type":"MatchScheduledEvent","participant_ids":[1,2)",
      R"({"event_type":"OrganizationMemberPermissionChangedEvent","granted":"yes"})",
      R"({"event_type":"OrganizationMemberPermissionChangedEvent","granted":1})",
      R"({"event_type":"OrganizationMemberPermissionChangedEvent","granted":tru})",
      user + ",}",
      user + " x",
      user + "}" + user + "}",
      user + "}}",
      "{'event_type':'UserCreatedEvent'}",
      "{/* a comment */\"event_type\":\"UserCreatedEvent\"}",
      user + R"(,"discord_id":NaN})",
      user + R"(,"metadata":{"a":nul}})",
      user + R"(,"metadata":{"a":[1,]}})",
      user + R"(,"metadata":{"a" 1}})",
      user + R"(,"metadata":{1:1}})",
      std::string("\xef\xbb\xbf") + user + "}",
      user + std::string("}\0", 2),
      user + R"(,"metadata":{"padding":")" + std::string(herald::max_event_json_bytes, 'x') +
          "\"}}",
  };
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_FALSE(expect_same_outcome(inputs[i], "input " + std::to_string(i)))
        << "input " << i << " was read by the direct reader: " << inputs[i];
  }
}

TEST(JsonFastDecode, AgreesWithTheStrictDecoderOnEveryTruncationOfAnEvent) {
  for (const herald::EventType* type : catalog().types()) {
    const std::string text = full_event(*type);
    for (std::size_t length = 0; length < text.size(); ++length) {
      EXPECT_FALSE(expect_same_outcome(text.substr(0, length), "truncated"));
    }
  }
}

TEST(JsonFastDecode, AgreesWithTheStrictDecoderWhenAnyByteOfAnEventIsReplaced) {
  // Every byte of three events replaced by each of a few bytes that matter to a JSON reader:
  // some replacements still decode (a digit for a digit), most do not.
  const std::string replacements = std::string("\"\\{}[],:0 x-.eu\x01\x80\xff", 19);
  for (std::string_view name :
       {"UserCreatedEvent", "MatchScheduledEvent", "OrganizationMemberPermissionChangedEvent"}) {
    const std::string text = full_event(*catalog().find(name));
    for (std::size_t at = 0; at < text.size(); ++at) {
      for (char replacement : replacements) {
        if (text[at] == replacement) continue;
        std::string mutated = text;
        mutated[at] = replacement;
        expect_same_outcome(mutated, "mutated");
      }
    }
  }
}

}  // namespace
