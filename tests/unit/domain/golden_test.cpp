#include "herald/domain/events.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/mp11/algorithm.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "herald/detail/field_codec.hpp"
#include "herald/event_type.hpp"
#include "herald/json.hpp"

namespace {

using namespace herald::domain;

// The representative event of each category, built as a producer would; each must encode to the
// document in tests/unit/golden/<category>.json.

herald::EventId id(std::string_view text) { return *herald::EventId::parse(text); }
herald::Timestamp at(std::string_view text) { return *herald::parse_timestamp(text); }

UserCreatedEvent user_event() {
  return herald::make<UserCreatedEvent>(
      {.entity_id = 456,
       .user_id = herald::system_actor,
       .metadata = {{"request_id", "req-7f3a9c"}, {"source", "discord-login"}},
       .event_id = id("01a21c57-1a3b-752e-89a7-834df2a74de4"),
       .timestamp = at("2026-11-27T09:30:00.123456Z")},
      {.discord_id = 80351110224678912, .discord_username = "speedy_racer"});
}

OrganizationMemberPermissionChangedEvent organization_event() {
  return herald::make<OrganizationMemberPermissionChangedEvent>(
      {.entity_id = 3021,
       .user_id = 17,
       .organization_id = 789,
       .entity_data = boost::json::object{{"organization_id", 789}, {"user_id", 456}},
       .event_id = id("01a21c77-c8f0-7651-8317-1ff4a6a3a450"),
       .timestamp = at("2026-11-27T10:05:42.000001Z")},
      {.member_user_id = 456, .permission_name = "TOURNAMENT_MANAGER", .granted = true});
}

TournamentEndedEvent tournament_event() {
  return herald::make<TournamentEndedEvent>(
      {.entity_id = 12,
       .user_id = 17,
       .organization_id = 789,
       .metadata = {{"request_id", "req-0b41d2"}},
       .event_id = id("01a23375-2fa6-7128-a24b-e40ad23f0824"),
       .timestamp = at("2026-12-01T21:14:07.654321Z")},
      {.tournament_name = "Winter Async 2026", .winner_user_id = 456});
}

MatchScheduledEvent race_event() {
  return herald::make<MatchScheduledEvent>({.entity_id = 5501,
                                            .user_id = 17,
                                            .organization_id = 789,
                                            .event_id = id("01a23d10-2ef4-7181-a54c-66175d9dc9f8"),
                                            .timestamp = at("2026-12-03T18:00:00.500000Z")},
                                           {.tournament_id = 12,
                                            .scheduled_time = "2026-12-10T19:00:00Z",
                                            .participant_ids = {456, 457}});
}

InviteCreatedEvent invite_event() {
  return herald::make<InviteCreatedEvent>({.entity_id = 88,
                                           .user_id = 456,
                                           .organization_id = 789,
                                           .event_id = id("01a2401f-69ca-70ed-a079-d3bde8e25d94"),
                                           .timestamp = at("2026-12-04T08:15:30.250000Z")},
                                          {.invite_code = "JOIN-4F7Q", .inviter_user_id = 456});
}

PresetCreatedEvent other_event() {
  return herald::make<PresetCreatedEvent>(
      {.entity_id = "speedy_racer/open-boots",
       .user_id = 456,
       .entity_data = boost::json::object{{"mode", "open"}, {"boots", true}},
       .metadata = {{"source", "preset-editor"}},
       .event_id = id("01a24614-385f-736f-8580-28d6099950d8"),
       .timestamp = at("2026-12-05T12:00:59.999999Z")},
      {.preset_name = "open-boots", .namespace_ = "speedy_racer"});
}

std::string read_golden(std::string_view category) {
  const std::string path =
      std::string(HERALD_TEST_DATA_DIR) + "/" + std::string(category) + ".json";
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Every object key in document order, each as a path ("/metadata/request_id"), so that two
// documents with the same keys in another order compare unequal.
void collect_key_paths(const boost::json::value& value, const std::string& prefix,
                       std::vector<std::string>& out) {
  if (value.is_object()) {
    for (const auto& member : value.get_object()) {
      const std::string path = prefix + "/" + std::string(member.key());
      out.push_back(path);
      collect_key_paths(member.value(), path, out);
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.get_array().size(); ++i) {
      collect_key_paths(value.get_array()[i], prefix + "/" + std::to_string(i), out);
    }
  }
}

std::vector<std::string> key_paths(const boost::json::value& value) {
  std::vector<std::string> out;
  collect_key_paths(value, "", out);
  return out;
}

template <class T>
std::string json_text(const T& value) {
  boost::json::value out;
  herald::detail::FieldCodec<T>::encode(value, out);
  return boost::json::serialize(out);
}

template <class E>
void expect_encodes_to_golden(std::string_view category, const E& event) {
  SCOPED_TRACE(std::string(category) + ".json");
  const boost::json::value golden = boost::json::parse(read_golden(category));
  const std::string encoded = herald::encode_event(event);
  const boost::json::value parsed = boost::json::parse(encoded);
  EXPECT_EQ(parsed, golden) << "encoded: " << encoded;
  EXPECT_EQ(key_paths(parsed), key_paths(golden));
  // The golden document in compact form is the encoding, byte for byte.
  EXPECT_EQ(encoded, boost::json::serialize(golden));
}

template <class E>
void expect_decodes_from_golden(std::string_view category, const E& expected) {
  SCOPED_TRACE(std::string(category) + ".json");
  auto decoded = herald::decode_event(read_golden(category), platform_catalog());
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  const E* event = decoded->template get<E>();
  ASSERT_NE(event, nullptr) << "decoded as " << decoded->event_type();
  boost::mp11::mp_for_each<herald::detail::described_fields<E>>([&](auto d) {
    EXPECT_TRUE((*event).*d.pointer == expected.*d.pointer)
        << d.name << " is " << json_text((*event).*d.pointer) << ", expected "
        << json_text(expected.*d.pointer);
  });
}

TEST(GoldenWireForm, EncodingEachCategorysEventYieldsItsGoldenDocument) {
  expect_encodes_to_golden("user", user_event());
  expect_encodes_to_golden("organization", organization_event());
  expect_encodes_to_golden("tournament", tournament_event());
  expect_encodes_to_golden("race", race_event());
  expect_encodes_to_golden("invite", invite_event());
  expect_encodes_to_golden("other", other_event());
}

TEST(GoldenWireForm, DecodingEachGoldenDocumentYieldsItsCategorysEvent) {
  expect_decodes_from_golden("user", user_event());
  expect_decodes_from_golden("organization", organization_event());
  expect_decodes_from_golden("tournament", tournament_event());
  expect_decodes_from_golden("race", race_event());
  expect_decodes_from_golden("invite", invite_event());
  expect_decodes_from_golden("other", other_event());
}

TEST(GoldenWireForm, NamesThePresetNamespaceFieldExactlyNamespace) {
  const boost::json::value parsed = boost::json::parse(herald::encode_event(other_event()));
  ASSERT_TRUE(parsed.as_object().contains("namespace"));
  EXPECT_EQ(parsed.as_object().at("namespace"), "speedy_racer");
  EXPECT_FALSE(parsed.as_object().contains("namespace_"));
}

}  // namespace
