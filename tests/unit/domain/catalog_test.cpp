#include "herald/domain/catalog.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/describe/members.hpp>
#include <boost/json/serialize.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>
#include <boost/mp11/utility.hpp>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "herald/detail/field_codec.hpp"
#include "herald/domain/events.hpp"
#include "herald/event_type.hpp"
#include "herald/json.hpp"

namespace {

using namespace herald::domain;

// Every type of the platform, in the order of the catalog table in ORIGINAL.md.
using PlatformEvents = boost::mp11::mp_list<
    UserCreatedEvent, UserUpdatedEvent, UserDeletedEvent, UserPermissionChangedEvent,
    OrganizationCreatedEvent, OrganizationUpdatedEvent, OrganizationDeletedEvent,
    OrganizationMemberAddedEvent, OrganizationMemberRemovedEvent,
    OrganizationMemberPermissionChangedEvent, TournamentCreatedEvent, TournamentUpdatedEvent,
    TournamentDeletedEvent, TournamentStartedEvent, TournamentEndedEvent, RaceSubmittedEvent,
    RaceApprovedEvent, RaceRejectedEvent, MatchScheduledEvent, MatchCompletedEvent,
    InviteCreatedEvent, InviteAcceptedEvent, InviteRejectedEvent, InviteExpiredEvent,
    DiscordGuildLinkedEvent, DiscordGuildUnlinkedEvent, PresetCreatedEvent, PresetUpdatedEvent>;

// Calls `f(boost::mp11::mp_identity<E>{})` for every platform type.
template <class F>
void for_each_platform_event(F&& f) {
  boost::mp11::mp_for_each<boost::mp11::mp_transform<boost::mp11::mp_identity, PlatformEvents>>(f);
}

// The catalog table of ORIGINAL.md, copied verbatim: type, entity_type, priority, own fields.
struct CatalogRow {
  std::string_view name;
  std::string_view entity_type;
  herald::Priority priority;
  std::string_view own_fields;
};

constexpr herald::Priority normal = herald::Priority::normal;

const std::vector<CatalogRow>& original_catalog() {
  static const std::vector<CatalogRow> rows = {
      {"UserCreatedEvent", "User", normal, "discord_id:int, discord_username:str"},
      {"UserUpdatedEvent", "User", normal, "changed_fields:[str] (default [])"},
      {"UserDeletedEvent", "User", normal, "reason:str"},
      {"UserPermissionChangedEvent", "User", normal, "old_permission:str, new_permission:str"},
      {"OrganizationCreatedEvent", "Organization", normal, "organization_name:str"},
      {"OrganizationUpdatedEvent", "Organization", normal, "changed_fields:[str]"},
      {"OrganizationDeletedEvent", "Organization", normal, "reason:str"},
      {"OrganizationMemberAddedEvent", "OrganizationMember", normal,
       "member_user_id:int, added_by_user_id:int"},
      {"OrganizationMemberRemovedEvent", "OrganizationMember", normal,
       "member_user_id:int, removed_by_user_id:int, reason:str"},
      {"OrganizationMemberPermissionChangedEvent", "OrganizationMember", normal,
       "member_user_id:int, permission_name:str, granted:bool (default false)"},
      {"TournamentCreatedEvent", "Tournament", normal, "tournament_name:str, tournament_type:str"},
      {"TournamentUpdatedEvent", "Tournament", normal, "changed_fields:[str]"},
      {"TournamentDeletedEvent", "Tournament", normal, "reason:str"},
      {"TournamentStartedEvent", "Tournament", herald::Priority::high, "tournament_name:str"},
      {"TournamentEndedEvent", "Tournament", herald::Priority::high,
       "tournament_name:str, winner_user_id:int"},
      {"RaceSubmittedEvent", "AsyncTournamentRace", normal,
       "tournament_id:int, permalink_id:int, racer_user_id:int, time_seconds:int, vod_url:str"},
      {"RaceApprovedEvent", "AsyncTournamentRace", normal,
       "tournament_id:int, racer_user_id:int, reviewer_user_id:int"},
      {"RaceRejectedEvent", "AsyncTournamentRace", normal,
       "tournament_id:int, racer_user_id:int, reviewer_user_id:int, reason:str"},
      {"MatchScheduledEvent", "MatchSchedule", normal,
       "tournament_id:int, scheduled_time:str, participant_ids:[int] (default [])"},
      {"MatchCompletedEvent", "MatchSchedule", normal, "tournament_id:int, winner_user_id:int"},
      {"InviteCreatedEvent", "OrganizationInvite", normal,
       "invite_code:str, inviter_user_id:int, invited_email:str"},
      {"InviteAcceptedEvent", "OrganizationInvite", normal,
       "invite_code:str, accepted_by_user_id:int"},
      {"InviteRejectedEvent", "OrganizationInvite", normal,
       "invite_code:str, rejected_by_user_id:int"},
      {"InviteExpiredEvent", "OrganizationInvite", herald::Priority::low, "invite_code:str"},
      {"DiscordGuildLinkedEvent", "DiscordGuild", normal, "guild_id:str, guild_name:str"},
      {"DiscordGuildUnlinkedEvent", "DiscordGuild", normal, "guild_id:str, reason:str"},
      {"PresetCreatedEvent", "RandomizerPreset", normal, "preset_name:str, namespace:str"},
      {"PresetUpdatedEvent", "RandomizerPreset", normal, "preset_name:str, changed_fields:[str]"},
  };
  return rows;
}

// One own field as the catalog lists it: its wire name, herald's type name, and nullability.
struct ExpectedField {
  std::string name;
  std::string type_name;
  bool nullable = true;

  friend bool operator==(const ExpectedField&, const ExpectedField&) = default;
  friend std::ostream& operator<<(std::ostream& out, const ExpectedField& f) {
    return out << f.name << ':' << f.type_name << (f.nullable ? "?" : "");
  }
};

// Reads "discord_id:int, changed_fields:[str] (default [])": a field with a default is not
// nullable; every other field is.
std::vector<ExpectedField> parse_own_fields(std::string_view text) {
  static const std::map<std::string_view, std::string_view> type_names = {{"int", "integer"},
                                                                          {"str", "string"},
                                                                          {"bool", "boolean"},
                                                                          {"[str]", "[string]"},
                                                                          {"[int]", "[integer]"}};
  std::vector<ExpectedField> fields;
  while (!text.empty()) {
    const std::size_t comma = text.find(", ");
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 2);
    ExpectedField field;
    if (const std::size_t paren = item.find(" (default "); paren != std::string_view::npos) {
      field.nullable = false;
      item = item.substr(0, paren);
    }
    const std::size_t colon = item.find(':');
    field.name = item.substr(0, colon);
    field.type_name = type_names.at(item.substr(colon + 1));
    fields.push_back(std::move(field));
  }
  return fields;
}

// One row of a catalog table in docs/events.md: "| `Type` | `Entity` | NORMAL | `f`: integer |".
struct DocumentedType {
  std::string name;
  std::string entity_type;
  std::string priority;
  std::vector<ExpectedField> own_fields;
};

std::string without_backticks(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c != '`') out.push_back(c);
  }
  return out;
}

// Reads "`discord_id`: integer, `changed_fields`: [string] = []": a field with a default is not
// nullable; every other field is.
std::vector<ExpectedField> parse_documented_fields(std::string_view text) {
  std::vector<ExpectedField> fields;
  const std::string plain = without_backticks(text);
  std::string_view rest = plain;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(", ");
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
    ExpectedField field;
    if (const std::size_t equals = item.find(" = "); equals != std::string_view::npos) {
      field.nullable = false;
      item = item.substr(0, equals);
    }
    const std::size_t colon = item.find(": ");
    field.name = item.substr(0, colon);
    field.type_name = item.substr(colon + 2);
    fields.push_back(std::move(field));
  }
  return fields;
}

// Every row of docs/events.md whose first cell is an event type's name.
std::vector<DocumentedType> documented_catalog() {
  const std::string path = std::string(HERALD_TEST_DATA_DIR) + "/../../../docs/events.md";
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  std::vector<DocumentedType> types;
  for (std::string line; std::getline(file, line);) {
    if (!line.starts_with("| `") || !line.ends_with(" |")) continue;
    std::vector<std::string> cells;
    std::string_view rest = std::string_view(line).substr(2, line.size() - 4);
    for (std::size_t bar; (bar = rest.find(" | ")) != std::string_view::npos;
         rest = rest.substr(bar + 3)) {
      cells.emplace_back(rest.substr(0, bar));
    }
    cells.emplace_back(rest);
    const std::string name = without_backticks(cells[0]);
    if (cells.size() != 4 || !name.ends_with("Event") || name.find(' ') != std::string::npos) {
      continue;
    }
    types.push_back(
        {name, without_backticks(cells[1]), cells[2], parse_documented_fields(cells[3])});
  }
  return types;
}

std::vector<ExpectedField> own_fields_of(const herald::EventType& type) {
  std::vector<ExpectedField> fields;
  for (const herald::FieldInfo& field : type.fields()) {
    if (field.common) continue;
    fields.push_back({std::string(field.name), std::string(field.type_name), field.nullable});
  }
  return fields;
}

// The JSON form of one field value, for failure messages.
template <class T>
std::string json_text(const T& value) {
  boost::json::value out;
  herald::detail::FieldCodec<T>::encode(value, out);
  return boost::json::serialize(out);
}

// Gives each own field a value unlike its default and unlike every other field's, so that a
// field lost, swapped or truncated on the way shows up. `n` numbers the field.
void set_non_default(std::int64_t& v, std::int64_t n) {
  // Above 2^53, so a detour through double would change the value; odd fields are negative.
  v = (n % 2 == 0 ? 1 : -1) * (std::int64_t{9'007'199'254'740'993} + n);
}
void set_non_default(std::string& v, std::int64_t n) {
  v = "value " + std::to_string(n) + " with \"quotes\", a \\ backslash, ünïcödé ✓ and a\nnewline";
}
void set_non_default(bool& v, std::int64_t) { v = true; }
void set_non_default(std::vector<std::string>& v, std::int64_t n) {
  v = {"first " + std::to_string(n), "", "third"};
}
void set_non_default(std::vector<std::int64_t>& v, std::int64_t n) {
  v = {n, -n - 1, std::numeric_limits<std::int64_t>::max(),
       std::numeric_limits<std::int64_t>::min()};
}
template <class T>
void set_non_default(std::optional<T>& v, std::int64_t n) {
  T inner{};
  set_non_default(inner, n);
  v = std::move(inner);
}

// An event of type E with every field, common and own, set to a non-default value.
template <class E>
E with_every_field_set(herald::EntityId entity_id) {
  boost::json::object entity_data;
  entity_data["name"] = "Entity ✓";
  entity_data["nested"] = {{"list", {1, 2.5, "three", nullptr, true}}};
  boost::json::object metadata;
  metadata["request_id"] = "req-7f3a";
  metadata["source"] = {{"service", "tournaments"}, {"attempt", 2}};
  E event =
      herald::make<E>({.entity_id = std::move(entity_id),
                       .user_id = 123456789012,
                       .organization_id = -42,
                       .entity_data = std::move(entity_data),
                       .metadata = std::move(metadata),
                       .priority = herald::Priority::critical,
                       .event_id = herald::EventId::parse("01967b3c-8a2d-7f41-b5e6-0c9d8e7f6a5b"),
                       .timestamp = *herald::parse_timestamp("2026-11-27T09:30:00.123456Z")});
  std::int64_t n = 0;
  boost::mp11::mp_for_each<boost::describe::describe_members<E, boost::describe::mod_public>>(
      [&](auto d) { set_non_default(event.*d.pointer, ++n); });
  return event;
}

// Expects every described field of `actual` to equal the same field of `expected`.
template <class E>
void expect_same_fields(const E& actual, const E& expected) {
  boost::mp11::mp_for_each<herald::detail::described_fields<E>>([&](auto d) {
    EXPECT_TRUE(actual.*d.pointer == expected.*d.pointer)
        << E::traits.name << "::" << d.name << " is " << json_text(actual.*d.pointer)
        << ", expected " << json_text(expected.*d.pointer);
  });
}

TEST(PlatformCatalog, HoldsExactlyTheTwentyEightTypesOfTheOriginalCatalog) {
  const herald::EventCatalog& catalog = platform_catalog();
  std::vector<std::string> names;
  for (const herald::EventType* type : catalog.types()) names.emplace_back(type->name());
  std::vector<std::string> expected;
  for (const CatalogRow& row : original_catalog()) expected.emplace_back(row.name);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(catalog.size(), 28u);
  EXPECT_EQ(names, expected);
}

TEST(PlatformCatalog, RegistersEachTypeUnderItsOwnName) {
  const herald::EventCatalog& catalog = platform_catalog();
  std::size_t count = 0;
  for_each_platform_event([&](auto tag) {
    using E = typename decltype(tag)::type;
    ++count;
    EXPECT_EQ(catalog.find(E::traits.name), &herald::type_of<E>()) << E::traits.name;
  });
  EXPECT_EQ(count, 28u);
}

TEST(PlatformCatalog, FixesEachTypesEntityTypeAndDefaultPriority) {
  const herald::EventCatalog& catalog = platform_catalog();
  for (const CatalogRow& row : original_catalog()) {
    SCOPED_TRACE(row.name);
    const herald::EventType* type = catalog.find(row.name);
    ASSERT_NE(type, nullptr);
    EXPECT_TRUE(type->is_entity_event());
    EXPECT_EQ(type->entity_type(), row.entity_type);
    EXPECT_EQ(type->default_priority(), row.priority);
    EXPECT_FALSE(type->description().empty());
  }
}

TEST(PlatformCatalog, ListsEachTypesOwnFieldsWithTheirNamesAndTypes) {
  const herald::EventCatalog& catalog = platform_catalog();
  for (const CatalogRow& row : original_catalog()) {
    SCOPED_TRACE(row.name);
    const herald::EventType* type = catalog.find(row.name);
    ASSERT_NE(type, nullptr);
    EXPECT_EQ(own_fields_of(*type), parse_own_fields(row.own_fields));
  }
}

TEST(PlatformCatalog, ListsTheCommonFieldsFirstInWireOrder) {
  const std::vector<std::string_view> common = {"event_id",        "timestamp",  "user_id",
                                                "organization_id", "priority",   "metadata",
                                                "entity_id",       "entity_data"};
  for (const herald::EventType* type : platform_catalog().types()) {
    SCOPED_TRACE(type->name());
    ASSERT_GT(type->fields().size(), common.size());
    for (std::size_t i = 0; i < common.size(); ++i) {
      EXPECT_EQ(type->fields()[i].name, common[i]);
      EXPECT_TRUE(type->fields()[i].common);
    }
  }
}

TEST(PlatformCatalog, MatchesTheCatalogTablesOfTheEventsGuide) {
  const herald::EventCatalog& catalog = platform_catalog();
  const std::vector<DocumentedType> documented = documented_catalog();
  EXPECT_EQ(documented.size(), catalog.size());
  std::set<std::string> names;
  for (const DocumentedType& row : documented) {
    SCOPED_TRACE(row.name);
    names.insert(row.name);
    const herald::EventType* type = catalog.find(row.name);
    ASSERT_NE(type, nullptr);
    EXPECT_EQ(row.entity_type, type->entity_type());
    EXPECT_EQ(row.priority, herald::to_string(type->default_priority()));
    EXPECT_EQ(row.own_fields, own_fields_of(*type));
  }
  EXPECT_EQ(names.size(), documented.size()) << "a type is documented twice";
}

TEST(PlatformCatalog, RoundTripsEveryTypeWithEveryFieldSet) {
  const herald::EventCatalog& catalog = platform_catalog();
  for_each_platform_event([&](auto tag) {
    using E = typename decltype(tag)::type;
    for (const herald::EntityId& id : {herald::EntityId{std::int64_t{-9'007'199'254'740'993}},
                                       herald::EntityId{"bold-rush-1234 ✓"}}) {
      SCOPED_TRACE(std::string(E::traits.name) + " with entity_id " + herald::to_string(id));
      const E original = with_every_field_set<E>(id);
      const E blank{};
      boost::mp11::mp_for_each<herald::detail::described_fields<E>>([&](auto d) {
        EXPECT_FALSE(original.*d.pointer == blank.*d.pointer) << d.name << " is not set";
      });

      const std::string json = herald::encode_event(original);
      auto decoded = herald::decode_event(json, catalog);
      ASSERT_TRUE(decoded.has_value()) << decoded.error().message << "\n" << json;
      EXPECT_EQ(decoded->event_type(), E::traits.name);
      const E* event = decoded->template get<E>();
      ASSERT_NE(event, nullptr);
      expect_same_fields(*event, original);
      EXPECT_EQ(herald::encode_event(*decoded), json);
    }
  });
}

TEST(PlatformCatalog, MakeAppliesEachTypesDefaultPriority) {
  for_each_platform_event([](auto tag) {
    using E = typename decltype(tag)::type;
    SCOPED_TRACE(E::traits.name);
    EXPECT_EQ(herald::make<E>({.entity_id = 7}).priority, E::traits.priority);
    EXPECT_EQ(herald::make<E>({.entity_id = 7, .priority = herald::Priority::critical}).priority,
              herald::Priority::critical);
  });
  EXPECT_EQ(herald::make<TournamentStartedEvent>({}).priority, herald::Priority::high);
  EXPECT_EQ(herald::make<TournamentEndedEvent>({}).priority, herald::Priority::high);
  EXPECT_EQ(herald::make<InviteExpiredEvent>({}).priority, herald::Priority::low);
  EXPECT_EQ(herald::make<UserCreatedEvent>({}).priority, herald::Priority::normal);
}

TEST(PlatformCatalog, DecodesAMissingPriorityAsTheTypesDefault) {
  for (const CatalogRow& row : original_catalog()) {
    SCOPED_TRACE(row.name);
    auto decoded = herald::decode_event(
        "{\"event_type\":\"" + std::string(row.name) + "\",\"entity_id\":1}", platform_catalog());
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
    EXPECT_EQ((*decoded)->priority, row.priority);
  }
}

TEST(PlatformCatalog, RegisteringTheTypesTwiceKeepsTwentyEight) {
  herald::EventCatalog catalog;
  register_platform_events(catalog);
  register_platform_events(catalog);
  EXPECT_EQ(catalog.size(), 28u);
}

}  // namespace
