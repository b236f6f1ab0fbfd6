#include "herald/audit_log.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/describe/members.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "herald/domain/audit_rules.hpp"
#include "herald/domain/events.hpp"
#include "herald/event_store.hpp"
#include "postgres_database.hpp"

namespace {

namespace domain = herald::domain;
using herald::AuditFault;
using herald::AuditRecord;
using herald::EventPtr;
using namespace std::chrono_literals;

// --- backends -------------------------------------------------------------------------------

using herald::test::backend_name;
using herald::test::PostgresDatabase;

/// A fresh store per test, on the backend the parameter names.
class AuditLog : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      const char* url = std::getenv("HERALD_TEST_PG_URL");
      if (url == nullptr) {
        GTEST_SKIP() << "HERALD_TEST_PG_URL is not set; run the tests through "
                        "scripts/with_postgres.sh to test against PostgreSQL";
      }
      postgres_ = std::make_unique<PostgresDatabase>(url, "herald_audit");
      location_ = postgres_->url();
    } else {
      static std::atomic<int> counter{0};
      directory_ = std::filesystem::temp_directory_path() /
                   ("herald-audit-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
      std::filesystem::remove_all(directory_);
      std::filesystem::create_directories(directory_);
      location_ = (directory_ / "herald.db").string();
    }
    store_ = open();
  }

  void TearDown() override {
    store_.reset();
    postgres_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  std::unique_ptr<herald::EventStore> open() {
    auto store =
        herald::open_store({.location = location_, .catalog = &domain::platform_catalog()});
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  /// Appends `event` and returns its position.
  std::int64_t append(const EventPtr& event) {
    auto appended = store_->append(event);
    EXPECT_TRUE(appended) << appended.error().message;
    return appended ? appended->position : 0;
  }

  /// Runs the audit consumer until it has caught up.
  void audit_everything() {
    auto consumer = herald::make_audit_consumer(*store_, domain::audit_mapping());
    auto handled = consumer->catch_up();
    ASSERT_TRUE(handled) << handled.error().message;
  }

  /// Every record in chain order.
  std::vector<AuditRecord> chain() {
    auto records = store_->read_audit_chain(0, 10'000);
    EXPECT_TRUE(records) << records.error().message;
    return records ? std::move(*records) : std::vector<AuditRecord>{};
  }

  herald::AuditVerification verify(herald::AuditVerifyOptions options = {}) {
    auto result = herald::verify_audit_log(*store_, options);
    EXPECT_TRUE(result) << result.error().message;
    return result ? std::move(*result) : herald::AuditVerification{};
  }

  std::string location_;
  std::unique_ptr<herald::EventStore> store_;

 private:
  std::filesystem::path directory_;
  std::unique_ptr<PostgresDatabase> postgres_;
};

INSTANTIATE_TEST_SUITE_P(Backends, AuditLog, ::testing::Values("sqlite", "postgres"), backend_name);

// --- helpers ----------------------------------------------------------------------------------

herald::Timestamp at_minute(int minute) {
  return *herald::parse_timestamp("2026-11-27T09:00:00Z") + std::chrono::minutes(minute);
}

template <class E>
EventPtr event(herald::EventHeader header, E own = {}) {
  return EventPtr::make(herald::make<E>(std::move(header), std::move(own)));
}

/// A small log with several types, organizations and actors, in time order a minute apart.
std::vector<EventPtr> varied_events() {
  return {
      event<domain::UserCreatedEvent>({.entity_id = 10, .user_id = 10, .timestamp = at_minute(0)},
                                      {.discord_id = 501, .discord_username = "ada"}),
      event<domain::OrganizationCreatedEvent>(
          {.entity_id = 1, .user_id = 10, .organization_id = 1, .timestamp = at_minute(1)},
          {.organization_name = "Speedrunners"}),
      event<domain::OrganizationMemberAddedEvent>(
          {.entity_id = 100, .user_id = 10, .organization_id = 1, .timestamp = at_minute(2)},
          {.member_user_id = 11, .added_by_user_id = 10}),
      event<domain::UserCreatedEvent>({.entity_id = 11, .user_id = 11, .timestamp = at_minute(3)},
                                      {.discord_id = 502, .discord_username = "bob"}),
      event<domain::OrganizationCreatedEvent>(
          {.entity_id = 2, .user_id = 11, .organization_id = 2, .timestamp = at_minute(4)},
          {.organization_name = "Randomizers"}),
      event<domain::OrganizationMemberAddedEvent>(
          {.entity_id = 101, .user_id = 11, .organization_id = 2, .timestamp = at_minute(5)},
          {.member_user_id = 10, .added_by_user_id = 11}),
      event<domain::OrganizationMemberRemovedEvent>(
          {.entity_id = 100, .user_id = 10, .organization_id = 1, .timestamp = at_minute(6)},
          {.member_user_id = 11, .removed_by_user_id = 10, .reason = "left"}),
      event<domain::TournamentCreatedEvent>(
          {.entity_id = 7, .user_id = 11, .organization_id = 2, .timestamp = at_minute(7)},
          {.tournament_name = "Winter Cup", .tournament_type = "async"}),
      event<domain::RaceSubmittedEvent>(
          {.entity_id = "bold-rush-1234",
           .user_id = 11,
           .organization_id = 2,
           .timestamp = at_minute(8)},
          {.tournament_id = 7, .racer_user_id = 11, .time_seconds = 5400}),
      event<domain::UserDeletedEvent>(
          {.entity_id = 11, .user_id = herald::system_actor, .timestamp = at_minute(9)},
          {.reason = "requested"}),
  };
}

std::vector<std::int64_t> positions_of(const std::vector<AuditRecord>& records) {
  std::vector<std::int64_t> positions;
  for (const AuditRecord& record : records) positions.push_back(record.position);
  return positions;
}

// --- the canonical encoding ---------------------------------------------------------------------

TEST(AuditEncoding, IsSortedCompactJsonAndHashesWithSha256) {
  AuditRecord record;
  record.position = 7;
  record.event_id = *herald::EventId::parse("01890f3c-4d5e-7abc-8def-0123456789ab");
  record.occurred_at = *herald::parse_timestamp("2026-11-27T09:30:00.123456Z");
  record.recorded_at = *herald::parse_timestamp("2026-11-27T09:30:01.000001Z");
  record.actor = 42;
  record.action = "race_submitted";
  record.entity_type = "AsyncTournamentRace";
  record.entity_id = "bold-rush-1234";
  record.details =
      boost::json::parse(
          R"({"vod_url":"https://x/\"q\"","time_seconds":5400,"racer_user_id":42,)"
          R"("note":"a\nb\u0001","name":"Zo\u00eb","nested":{"b":1,"a":[true,null,1.5]}})")
          .as_object();
  record.prev_hash = herald::genesis_hash;

  // The same text as Python's json.dumps(record, sort_keys=True, separators=(",", ":"),
  // ensure_ascii=False), and its SHA-256 as hashlib computes it.
  const std::string expected =
      R"({"action":"race_submitted","actor":42,"details":{"name":"Zo)"
      "\xc3\xab"
      R"(","nested":{"a":[true,null,1.5],"b":1},"note":"a\nb\u0001","racer_user_id":42,)"
      R"("time_seconds":5400,"vod_url":"https://x/\"q\""},"entity_id":"bold-rush-1234",)"
      R"("entity_type":"AsyncTournamentRace","event_id":"01890f3c-4d5e-7abc-8def-0123456789ab",)"
      R"("occurred_at":"2026-11-27T09:30:00.123456Z","organization_id":null,"position":7,)"
      R"("prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",)"
      R"("recorded_at":"2026-11-27T09:30:01.000001Z"})";
  EXPECT_EQ(herald::canonical_audit_encoding(record), expected);
  EXPECT_EQ(herald::audit_hash(record),
            "93f49fa5a29dec82cb5ddf73cc6a86d8a44d2c9e0e2e193ac98748f9dcc03429");

  // The stored hash is not part of what is hashed; every other field is.
  record.hash = "ignored";
  EXPECT_EQ(herald::canonical_audit_encoding(record), expected);
  AuditRecord changed = record;
  changed.position = 8;
  EXPECT_NE(herald::audit_hash(changed), herald::audit_hash(record));
  changed = record;
  changed.prev_hash = std::string(63, '0') + "1";
  EXPECT_NE(herald::audit_hash(changed), herald::audit_hash(record));
}

TEST(AuditEncoding, EscapesEveryCharacterThatNeedsItAtAnyOffsetInTheString) {
  struct Special {
    char c;
    std::string_view escaped;
  };
  for (const Special& special :
       {Special{'"', R"(\")"}, Special{'\\', R"(\\)"}, Special{'\n', R"(\n)"},
        Special{'\t', R"(\t)"}, Special{'\x01', R"(\u0001)"}, Special{'\x1f', R"(\u001f)"}}) {
    for (std::size_t before = 0; before < 20; ++before) {
      const std::string head = std::string(before, 'a') + "\xc3\xab";
      const std::string text = head + special.c + "tail-of-some-length";
      EXPECT_EQ(herald::canonical_json(boost::json::value(text)),
                "\"" + head + std::string(special.escaped) + "tail-of-some-length\"")
          << "offset " << before;
    }
  }
  // Bytes at and above 0x20, UTF-8 included, are written as they are.
  std::string plain;
  for (int c = 0x20; c < 0x100; ++c) {
    if (c != '"' && c != '\\') plain.push_back(static_cast<char>(c));
  }
  EXPECT_EQ(herald::canonical_json(boost::json::value(plain)), "\"" + plain + "\"");
}

TEST(AuditEncoding, WritesIntegralNumbersAsIntegers) {
  EXPECT_EQ(herald::canonical_json(boost::json::parse(R"({"b":2.0,"a":-3,"c":9007199254740993})")),
            R"({"a":-3,"b":2,"c":9007199254740993})");
}

// --- the records of the platform's events, pinned ------------------------------------------

/// Sets every own field of `own` to a value derived from `seed`: strings with characters that
/// need escaping and non-ASCII UTF-8, numbers of several sizes, lists of two elements.
template <class E>
void fill_own_fields(E& own, std::int64_t seed) {
  using Members = boost::describe::describe_members<E, boost::describe::mod_public>;
  boost::mp11::mp_for_each<Members>([&](auto member) {
    auto& field = own.*member.pointer;
    using T = std::remove_cvref_t<decltype(field)>;
    ++seed;
    if constexpr (std::is_same_v<T, bool>) {
      field = seed % 2 == 0;
    } else if constexpr (std::is_same_v<T, std::optional<std::int64_t>>) {
      field = seed * 1'000'003 - 500;
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
      field = "Zo\xc3\xab \"q\" \\ tab\there\nline\x01 #" + std::to_string(seed);
    } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
      field = {seed, -seed};
    } else if constexpr (std::is_same_v<T, std::vector<std::string>> ||
                         std::is_same_v<T, std::optional<std::vector<std::string>>>) {
      field = std::vector<std::string>{"a/" + std::to_string(seed), "\xe2\x82\xac"};
    } else {
      static_assert(sizeof(T) == 0, "a platform event field type this test does not fill");
    }
  });
}

/// Two events of every platform type: own fields left at their defaults (nulls) and all set;
/// fixed ids and times, so their records hash the same in every run.
std::vector<herald::StoredEvent> pinned_events();

TEST_P(AuditLog, HashesTheRecordsOfEveryPlatformEventAsBefore) {
  // The head of a chain of the records of pinned_events(), as computed when the audit log was
  // first released: a change here means records written before would no longer verify.
  ASSERT_TRUE(store_);
  herald::AuditWriter writer(*store_, domain::audit_mapping(), "audit");
  herald::AuditChainHead head;
  for (const herald::StoredEvent& stored : pinned_events()) {
    const AuditRecord record = writer.record_for(stored, head);
    EXPECT_EQ(record.hash, herald::audit_hash(record));
    head = {.position = record.position, .hash = record.hash};
  }
  EXPECT_EQ(head.position, 56);
  EXPECT_EQ(head.hash, "70ce9cf7a9e022446a167268a284fb71978836372c66618bb84c79760f38f4d4");
}

TEST(AuditHead, RoundTripsThroughItsTextForm) {
  const herald::AuditChainHead head{.position = 1042, .hash = std::string(64, 'a')};
  EXPECT_EQ(herald::to_string(head), "1042:" + std::string(64, 'a'));
  auto parsed = herald::parse_audit_head(herald::to_string(head));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->position, 1042);
  EXPECT_EQ(parsed->hash, head.hash);
  EXPECT_FALSE(herald::parse_audit_head("1042"));
  EXPECT_FALSE(herald::parse_audit_head("x:" + std::string(64, 'a')));
  EXPECT_FALSE(herald::parse_audit_head("-1:" + std::string(64, 'a')));
  EXPECT_FALSE(herald::parse_audit_head("1:" + std::string(64, 'A')));
  EXPECT_EQ(herald::parse_audit_head("1:abc").error().field, "head");
}

// --- records ------------------------------------------------------------------------------------

TEST_P(AuditLog, WritesOneRecordPerEventWithTheActorRules) {
  ASSERT_TRUE(store_);
  const std::vector<EventPtr> events = {
      event<domain::UserCreatedEvent>({.entity_id = 10, .user_id = 1},
                                      {.discord_id = 501, .discord_username = "ada"}),
      event<domain::OrganizationMemberAddedEvent>(
          {.entity_id = 20, .user_id = 1, .organization_id = 5},
          {.member_user_id = 30, .added_by_user_id = 31}),
      event<domain::OrganizationMemberRemovedEvent>(
          {.entity_id = 20, .user_id = 1, .organization_id = 5},
          {.member_user_id = 30, .removed_by_user_id = 32, .reason = "spam"}),
      event<domain::RaceSubmittedEvent>(
          {.entity_id = "bold-rush-1234", .user_id = 1, .organization_id = 5},
          {.tournament_id = 3,
           .permalink_id = 9,
           .racer_user_id = 40,
           .time_seconds = 5400,
           .vod_url = "https://vods/1"}),
      event<domain::RaceApprovedEvent>(
          {.entity_id = 60, .user_id = 1, .organization_id = 5},
          {.tournament_id = 3, .racer_user_id = 40, .reviewer_user_id = 41}),
      event<domain::RaceRejectedEvent>(
          {.entity_id = 61, .user_id = 1, .organization_id = 5},
          {.tournament_id = 3, .racer_user_id = 40, .reviewer_user_id = 42, .reason = "no vod"}),
      // An actor field left null falls back to user_id.
      event<domain::OrganizationMemberAddedEvent>(
          {.entity_id = 21, .user_id = 7, .organization_id = 5}, {.member_user_id = 33}),
      event<domain::TournamentStartedEvent>(
          {.entity_id = 3, .user_id = herald::system_actor, .organization_id = 5},
          {.tournament_name = "Winter Cup"}),
      // No actor known at all.
      event<domain::InviteExpiredEvent>({.entity_id = 70, .organization_id = 5},
                                        {.invite_code = "abc"}),
  };
  for (const EventPtr& e : events) append(e);
  audit_everything();

  const std::vector<AuditRecord> records = chain();
  ASSERT_EQ(records.size(), events.size());
  struct Expected {
    std::string action;
    std::optional<std::int64_t> actor;
  };
  const std::vector<Expected> expected = {
      {"user_created", 1},
      {"organization_member_added", 31},
      {"organization_member_removed", 32},
      {"race_submitted", 40},
      {"race_approved", 41},
      {"race_rejected", 42},
      {"organization_member_added", 7},
      {"tournament_started", herald::system_actor},
      {"invite_expired", std::nullopt},
  };
  for (std::size_t i = 0; i < records.size(); ++i) {
    SCOPED_TRACE(expected[i].action);
    const AuditRecord& record = records[i];
    EXPECT_EQ(record.position, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(record.event_id, events[i]->event_id);
    EXPECT_EQ(record.occurred_at, events[i]->timestamp);
    EXPECT_EQ(record.action, expected[i].action);
    EXPECT_EQ(record.actor, expected[i].actor);
    EXPECT_EQ(record.organization_id, events[i]->organization_id);
    EXPECT_EQ(record.entity_type, events[i].type().entity_type());
  }
  // Details are the event's own fields, nulls included, and none of the common ones.
  EXPECT_EQ(boost::json::serialize(records[0].details),
            R"({"discord_id":501,"discord_username":"ada"})");
  EXPECT_EQ(herald::canonical_json(records[3].details),
            R"({"permalink_id":9,"racer_user_id":40,"time_seconds":5400,"tournament_id":3,)"
            R"("vod_url":"https://vods/1"})");
  EXPECT_EQ(herald::canonical_json(records[6].details),
            R"({"added_by_user_id":null,"member_user_id":33})");
  EXPECT_EQ(records[3].entity_id, "bold-rush-1234");
  EXPECT_EQ(records[4].entity_id, "60");
  // recorded_at is the store's time for the event.
  auto stored = store_->get(events[0]->event_id);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ(records[0].recorded_at, (*stored)->recorded_at);
}

using PlatformEvents = boost::mp11::mp_list<
    domain::UserCreatedEvent, domain::UserUpdatedEvent, domain::UserDeletedEvent,
    domain::UserPermissionChangedEvent, domain::OrganizationCreatedEvent,
    domain::OrganizationUpdatedEvent, domain::OrganizationDeletedEvent,
    domain::OrganizationMemberAddedEvent, domain::OrganizationMemberRemovedEvent,
    domain::OrganizationMemberPermissionChangedEvent, domain::TournamentCreatedEvent,
    domain::TournamentUpdatedEvent, domain::TournamentDeletedEvent, domain::TournamentStartedEvent,
    domain::TournamentEndedEvent, domain::RaceSubmittedEvent, domain::RaceApprovedEvent,
    domain::RaceRejectedEvent, domain::MatchScheduledEvent, domain::MatchCompletedEvent,
    domain::InviteCreatedEvent, domain::InviteAcceptedEvent, domain::InviteRejectedEvent,
    domain::InviteExpiredEvent, domain::DiscordGuildLinkedEvent, domain::DiscordGuildUnlinkedEvent,
    domain::PresetCreatedEvent, domain::PresetUpdatedEvent>;

std::vector<herald::StoredEvent> pinned_events() {
  const herald::Timestamp start = *herald::parse_timestamp("2026-11-27T09:30:00.123456Z");
  std::vector<herald::StoredEvent> events;
  std::int64_t position = 0;
  boost::mp11::mp_for_each<PlatformEvents>([&](auto type) {
    using E = decltype(type);
    for (const bool filled : {false, true}) {
      ++position;
      E own;
      if (filled) fill_own_fields(own, position);
      char id[37];
      std::snprintf(id, sizeof id, "01890f3c-4d5e-7abc-8def-%012llx",
                    static_cast<unsigned long long>(position));
      herald::EventHeader header{
          .user_id = position % 3 == 0 ? std::nullopt : std::optional<std::int64_t>(position),
          .organization_id =
              position % 4 == 0 ? std::nullopt : std::optional<std::int64_t>(position * 7),
          .metadata = {{"request_id", "req-" + std::to_string(position)}},
          .event_id = *herald::EventId::parse(id),
          .timestamp = start + std::chrono::microseconds(position * 1'234'567)};
      if (position % 2 == 0) {
        header.entity_id = "entity-" + std::to_string(position);
      } else if (position % 5 != 0) {
        header.entity_id = position * 11;
      }
      events.push_back(herald::StoredEvent{
          .position = position,
          .recorded_at = start + std::chrono::seconds(position) + std::chrono::microseconds(1),
          .event = event<E>(std::move(header), std::move(own))});
    }
  });
  return events;
}

TEST(AuditRules, DetailsAreTheOwnFieldsOfTheWireFormWithNulls) {
  for (const herald::StoredEvent& stored : pinned_events()) {
    const herald::EventRef ref = stored.event.ref();
    SCOPED_TRACE(std::string(ref.event_type()) + " at " + std::to_string(stored.position));
    const boost::json::object wire = ref.to_json();
    boost::json::object expected;
    for (const herald::FieldInfo& field : ref.type().fields()) {
      if (field.common) continue;
      const boost::json::value* value = wire.if_contains(field.name);
      expected[field.name] = value != nullptr ? *value : boost::json::value(nullptr);
    }
    const boost::json::object details = domain::audit_details(ref);
    EXPECT_EQ(details, expected);
    EXPECT_EQ(herald::canonical_json(details), herald::canonical_json(expected));
  }
}

TEST_P(AuditLog, NamesTheActionOfEveryPlatformEvent) {
  ASSERT_TRUE(store_);
  boost::mp11::mp_for_each<PlatformEvents>([&](auto type) {
    using E = decltype(type);
    append(event<E>({.entity_id = 1, .user_id = 2, .organization_id = 3}));
  });
  audit_everything();
  std::vector<std::string> actions;
  for (const AuditRecord& record : chain()) actions.push_back(record.action);
  EXPECT_EQ(actions, (std::vector<std::string>{"user_created",
                                               "user_updated",
                                               "user_deleted",
                                               "user_permission_changed",
                                               "organization_created",
                                               "organization_updated",
                                               "organization_deleted",
                                               "organization_member_added",
                                               "organization_member_removed",
                                               "organization_member_permission_changed",
                                               "tournament_created",
                                               "tournament_updated",
                                               "tournament_deleted",
                                               "tournament_started",
                                               "tournament_ended",
                                               "race_submitted",
                                               "race_approved",
                                               "race_rejected",
                                               "match_scheduled",
                                               "match_completed",
                                               "invite_created",
                                               "invite_accepted",
                                               "invite_rejected",
                                               "invite_expired",
                                               "discord_guild_linked",
                                               "discord_guild_unlinked",
                                               "preset_created",
                                               "preset_updated"}));
  // PresetCreatedEvent's C++ member `namespace_` is "namespace" in the details, as on the wire.
  EXPECT_TRUE(chain()[26].details.contains("namespace"));
}

TEST_P(AuditLog, ChainsEachRecordToThePreviousOne) {
  ASSERT_TRUE(store_);
  for (const EventPtr& e : varied_events()) append(e);
  audit_everything();
  const std::vector<AuditRecord> records = chain();
  ASSERT_EQ(records.size(), 10u);
  EXPECT_EQ(records[0].prev_hash, herald::genesis_hash);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].hash, herald::audit_hash(records[i]));
    EXPECT_EQ(records[i].hash.size(), 64u);
    EXPECT_EQ(records[i].hash.find_first_not_of("0123456789abcdef"), std::string::npos);
    if (i > 0) {
      EXPECT_EQ(records[i].prev_hash, records[i - 1].hash);
    }
  }
  auto head = store_->audit_head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->position, 10);
  EXPECT_EQ(head->hash, records.back().hash);
}

TEST_P(AuditLog, WritesNothingTwiceOnReplayOrRedelivery) {
  ASSERT_TRUE(store_);
  for (const EventPtr& e : varied_events()) append(e);
  auto consumer = herald::make_audit_consumer(*store_, domain::audit_mapping());
  ASSERT_TRUE(consumer->catch_up());
  const std::vector<AuditRecord> before = chain();
  ASSERT_TRUE(consumer->reset_to(0));
  auto replayed = consumer->catch_up();
  ASSERT_TRUE(replayed) << replayed.error().message;
  EXPECT_EQ(*replayed, 10u);
  const std::vector<AuditRecord> after = chain();
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].hash, before[i].hash);

  herald::AuditWriter writer(*store_, domain::audit_mapping(), "audit");
  auto again = writer.write(store_->read_forward(4, 1)->front());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(*again);
  EXPECT_TRUE(verify().ok());
}

TEST_P(AuditLog, AfterAReplayWritesOnlyTheEventsOfABatchNotYetAudited) {
  ASSERT_TRUE(store_);
  const std::vector<EventPtr> events = varied_events();
  for (std::size_t i = 0; i < 5; ++i) append(events[i]);
  auto consumer = herald::make_audit_consumer(*store_, domain::audit_mapping());
  ASSERT_TRUE(consumer->catch_up());
  const std::vector<AuditRecord> before = chain();
  ASSERT_EQ(before.size(), 5u);

  for (std::size_t i = 5; i < events.size(); ++i) append(events[i]);
  ASSERT_TRUE(consumer->reset_to(2));
  // One batch holds events 3 to 10: 3 to 5 have records, 6 to 10 get theirs after record 5.
  auto handled = consumer->catch_up();
  ASSERT_TRUE(handled) << handled.error().message;
  EXPECT_EQ(*handled, 8u);
  const std::vector<AuditRecord> after = chain();
  ASSERT_EQ(after.size(), 10u);
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i].hash, before[i].hash);
  EXPECT_EQ(after[5].prev_hash, before[4].hash);
  EXPECT_EQ(store_->load_checkpoint("audit")->position, 10);
  const herald::AuditVerification result = verify();
  EXPECT_TRUE(result.ok()) << result.failure->message;
  EXPECT_EQ(result.records, 10);
}

TEST_P(AuditLog, WriterWritesABatchAsOneChainInOneCall) {
  ASSERT_TRUE(store_);
  for (const EventPtr& e : varied_events()) append(e);
  const auto events = store_->read_forward(0, 100);
  ASSERT_TRUE(events);
  herald::AuditWriter writer(*store_, domain::audit_mapping(), "audit");
  auto written = writer.write_batch(*events);
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_EQ(*written, 10u);
  const std::vector<AuditRecord> records = chain();
  ASSERT_EQ(records.size(), 10u);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].position, (*events)[i].position);
    EXPECT_EQ(records[i].prev_hash, i == 0 ? herald::genesis_hash : records[i - 1].hash);
    EXPECT_EQ(records[i].hash, herald::audit_hash(records[i]));
  }
  EXPECT_EQ(store_->load_checkpoint("audit")->position, 10);
  EXPECT_TRUE(verify().ok());
}

TEST_P(AuditLog, WriterBatchWithAnUnauditedEventBelowTheHeadWritesNothing) {
  ASSERT_TRUE(store_);
  for (const EventPtr& e : varied_events()) append(e);
  const auto events = store_->read_forward(0, 100);
  ASSERT_TRUE(events);
  herald::AuditWriter writer(*store_, domain::audit_mapping(), "audit");
  ASSERT_TRUE(writer.write_batch(std::span(*events).subspan(0, 2)));
  ASSERT_TRUE(writer.write_batch(std::span(*events).subspan(3, 1)));  // event 3 left out
  const std::vector<AuditRecord> before = chain();
  ASSERT_EQ(positions_of(before), (std::vector<std::int64_t>{1, 2, 4}));

  // Event 3 lies below the head (4) and has no record; event 5 would extend the chain.
  const std::vector<herald::StoredEvent> batch{(*events)[2], (*events)[4]};
  auto refused = writer.write_batch(batch);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, herald::ErrorCode::conflict);
  EXPECT_NE(refused.error().message.find("position 3"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(positions_of(chain()), (std::vector<std::int64_t>{1, 2, 4}));
  EXPECT_EQ(store_->load_checkpoint("audit")->position, 4);
}

TEST_P(AuditLog, FollowsNewEventsOnItsThread) {
  ASSERT_TRUE(store_);
  auto consumer = herald::make_audit_consumer(*store_, domain::audit_mapping());
  ASSERT_TRUE(consumer->start());
  std::int64_t last = 0;
  for (const EventPtr& e : varied_events()) last = append(e);
  ASSERT_TRUE(consumer->wait_for_checkpoint(last, 10s));
  consumer->stop();
  EXPECT_EQ(chain().size(), 10u);
  EXPECT_EQ(store_->load_checkpoint("audit")->position, last);
  EXPECT_TRUE(verify().ok());
}

// --- verify -------------------------------------------------------------------------------------

TEST_P(AuditLog, VerifiesAnUntouchedLog) {
  ASSERT_TRUE(store_);
  for (const EventPtr& e : varied_events()) append(e);
  audit_everything();
  const herald::AuditVerification result = verify();
  EXPECT_TRUE(result.ok()) << result.failure->message;
  EXPECT_EQ(result.records, 10);
  EXPECT_EQ(result.head.position, 10);
  EXPECT_EQ(result.head.hash, store_->audit_head()->hash);
  // Against its own exported head, and page by page.
  const herald::AuditVerification paged =
      verify({.expected_head = store_->audit_head().value(), .page_size = 3});
  EXPECT_TRUE(paged.ok()) << paged.failure->message;
  EXPECT_EQ(paged.records, 10);
}

TEST_P(AuditLog, VerifiesAnEmptyLog) {
  ASSERT_TRUE(store_);
  const herald::AuditVerification result = verify();
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.records, 0);
  EXPECT_EQ(result.head.hash, herald::genesis_hash);
}

/// Runs `sql` on the SQLite file at `path` through its own connection, as an attacker would.
void tamper(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  const std::string error = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << error << "\n" << sql;
}

std::string sql_text(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') quoted.push_back('\'');
    quoted.push_back(c);
  }
  return quoted + "'";
}

std::string sql_int(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : "NULL";
}

/// The INSERT that puts `record` into the audit table as the SQLite store lays it out.
std::string insert_sql(const AuditRecord& record) {
  return "INSERT INTO herald_audit_records (position, event_id, occurred_at, recorded_at, actor, "
         "organization_id, action, entity_type, entity_id, details, prev_hash, hash) VALUES (" +
         std::to_string(record.position) + ", " + sql_text(record.event_id.to_string()) + ", " +
         std::to_string(record.occurred_at.time_since_epoch().count()) + ", " +
         std::to_string(record.recorded_at.time_since_epoch().count()) + ", " +
         sql_int(record.actor) + ", " + sql_int(record.organization_id) + ", " +
         sql_text(record.action) + ", " + sql_text(record.entity_type) + ", " +
         (record.entity_id ? sql_text(*record.entity_id) : "NULL") + ", " +
         sql_text(boost::json::serialize(record.details)) + ", " + sql_text(record.prev_hash) +
         ", " + sql_text(record.hash) + ")";
}

/// Tamper tests edit the SQLite file directly, as someone with access to it could; PostgreSQL's
/// tables are covered by the same verify code.
class AuditTamper : public AuditLog {
 protected:
  /// Ten audited events; the store is closed so the test can edit the file.
  void build() {
    ASSERT_TRUE(store_);
    for (const EventPtr& e : varied_events()) append(e);
    audit_everything();
    original_ = chain();
    ASSERT_EQ(original_.size(), 10u);
    exported_head_ = store_->audit_head().value();
    store_.reset();
  }
  void reopen() {
    store_ = open();
    ASSERT_TRUE(store_);
  }

  std::vector<AuditRecord> original_;
  herald::AuditChainHead exported_head_;
};
INSTANTIATE_TEST_SUITE_P(Sqlite, AuditTamper, ::testing::Values("sqlite"), backend_name);

TEST_P(AuditTamper, CatchesAnEditedRecordAtItsPosition) {
  ASSERT_NO_FATAL_FAILURE(build());
  tamper(location_, "UPDATE herald_audit_records SET actor = 666 WHERE position = 3");
  reopen();
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 3);
  EXPECT_EQ(result.failure->fault, AuditFault::edited);
  EXPECT_EQ(result.failure->event_id, original_[2].event_id);
  EXPECT_NE(result.failure->message.find("edited"), std::string::npos);
  EXPECT_EQ(result.records, 3);
  EXPECT_EQ(result.head.position, 2);  // the last record that verified
}

TEST_P(AuditTamper, CatchesEditedDetails) {
  ASSERT_NO_FATAL_FAILURE(build());
  tamper(
      location_,
      R"(UPDATE herald_audit_records SET details = '{"reason":"innocent"}' WHERE position = 10)");
  reopen();
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 10);
  EXPECT_EQ(result.failure->fault, AuditFault::edited);
}

TEST_P(AuditTamper, CatchesADeletedRecordAtThePositionItHeld) {
  ASSERT_NO_FATAL_FAILURE(build());
  tamper(location_, "DELETE FROM herald_audit_records WHERE position = 3");
  reopen();
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 3);
  EXPECT_EQ(result.failure->fault, AuditFault::deleted);
  EXPECT_EQ(result.failure->event_id, original_[2].event_id);
  // The chain alone sees it at the next record, whose link no longer matches.
  const herald::AuditVerification chain_only = verify({.check_events = false});
  ASSERT_FALSE(chain_only.ok());
  EXPECT_EQ(chain_only.failure->position, 4);
  EXPECT_EQ(chain_only.failure->fault, AuditFault::broken_link);
}

TEST_P(AuditTamper, CatchesTheFirstRecordDeleted) {
  ASSERT_NO_FATAL_FAILURE(build());
  tamper(location_, "DELETE FROM herald_audit_records WHERE position = 1");
  reopen();
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 1);
  EXPECT_EQ(result.failure->fault, AuditFault::deleted);
  const herald::AuditVerification chain_only = verify({.check_events = false});
  ASSERT_FALSE(chain_only.ok());
  EXPECT_EQ(chain_only.failure->position, 2);
  EXPECT_EQ(chain_only.failure->fault, AuditFault::broken_link);
}

TEST_P(AuditTamper, CatchesTheLastRecordDeleted) {
  ASSERT_NO_FATAL_FAILURE(build());
  tamper(location_, "DELETE FROM herald_audit_records WHERE position = 10");
  reopen();
  // The consumer's checkpoint says event 10 was audited.
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 10);
  EXPECT_EQ(result.failure->fault, AuditFault::deleted);
  // Without the events, only an exported head can tell.
  EXPECT_TRUE(verify({.check_events = false}).ok());
  const herald::AuditVerification against_head =
      verify({.check_events = false, .expected_head = exported_head_});
  ASSERT_FALSE(against_head.ok());
  EXPECT_EQ(against_head.failure->position, 10);
  EXPECT_EQ(against_head.failure->fault, AuditFault::head_missing);
}

TEST_P(AuditTamper, CatchesAnInsertedRecordAtItsPosition) {
  ASSERT_NO_FATAL_FAILURE(build());
  // A careful forger: makes room at position 3 and writes a record that links to record 2 and
  // carries a correct hash of its own.
  AuditRecord forged = original_[2];
  forged.event_id = herald::EventId::generate();
  forged.actor = 666;
  forged.prev_hash = original_[1].hash;
  forged.hash = herald::audit_hash(forged);
  tamper(location_,
         "UPDATE herald_audit_records SET position = -position WHERE position >= 3;"
         "UPDATE herald_audit_records SET position = 1 - position WHERE position < 0;" +
             insert_sql(forged));
  reopen();
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 3);
  EXPECT_EQ(result.failure->fault, AuditFault::inserted);
  EXPECT_EQ(result.failure->event_id, forged.event_id);
  EXPECT_NE(result.failure->message.find("not in the store"), std::string::npos);
  // The chain alone: the forged record verifies; the one after it no longer links.
  const herald::AuditVerification chain_only = verify({.check_events = false});
  ASSERT_FALSE(chain_only.ok());
  EXPECT_EQ(chain_only.failure->position, 4);
  EXPECT_EQ(chain_only.failure->fault, AuditFault::broken_link);
}

TEST_P(AuditTamper, CatchesARecordAppendedAfterTheLast) {
  ASSERT_NO_FATAL_FAILURE(build());
  AuditRecord forged = original_.back();
  forged.position = 11;
  forged.event_id = herald::EventId::generate();
  forged.prev_hash = original_.back().hash;
  forged.hash = herald::audit_hash(forged);
  tamper(location_, insert_sql(forged));
  reopen();
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 11);
  EXPECT_EQ(result.failure->fault, AuditFault::inserted);
}

TEST_P(AuditTamper, CatchesTwoSwappedRecordsAtTheFirstOfThem) {
  ASSERT_NO_FATAL_FAILURE(build());
  tamper(location_,
         "UPDATE herald_audit_records SET position = -3 WHERE position = 3;"
         "UPDATE herald_audit_records SET position = 3 WHERE position = 5;"
         "UPDATE herald_audit_records SET position = 5 WHERE position = -3;");
  reopen();
  const herald::AuditVerification result = verify();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 3);
  EXPECT_EQ(result.failure->fault, AuditFault::moved);
  EXPECT_EQ(result.failure->event_id, original_[4].event_id);
  EXPECT_NE(result.failure->message.find("stored at position 5"), std::string::npos);
  const herald::AuditVerification chain_only = verify({.check_events = false});
  ASSERT_FALSE(chain_only.ok());
  EXPECT_EQ(chain_only.failure->position, 3);
  EXPECT_EQ(chain_only.failure->fault, AuditFault::broken_link);
}

TEST_P(AuditTamper, CatchesARewriteOfTheWholeLogOnlyAgainstAnExportedHead) {
  ASSERT_NO_FATAL_FAILURE(build());
  // Edit record 2, then recompute every hash from there on, so the chain is consistent again.
  std::vector<AuditRecord> rewritten = original_;
  rewritten[1].actor = 666;
  std::string sql;
  for (std::size_t i = 1; i < rewritten.size(); ++i) {
    rewritten[i].prev_hash = rewritten[i - 1].hash;
    rewritten[i].hash = herald::audit_hash(rewritten[i]);
    sql += "UPDATE herald_audit_records SET actor = " + sql_int(rewritten[i].actor) +
           ", prev_hash = " + sql_text(rewritten[i].prev_hash) +
           ", hash = " + sql_text(rewritten[i].hash) +
           " WHERE position = " + std::to_string(rewritten[i].position) + ";";
  }
  tamper(location_, sql);
  reopen();
  EXPECT_TRUE(verify().ok());
  const herald::AuditVerification result = verify({.expected_head = exported_head_});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.failure->position, 10);
  EXPECT_EQ(result.failure->fault, AuditFault::head_mismatch);
  EXPECT_NE(result.failure->message.find("rewritten"), std::string::npos);
}

// --- queries ------------------------------------------------------------------------------------

class AuditQueries : public AuditLog {
 protected:
  void build() {
    ASSERT_TRUE(store_);
    for (const EventPtr& e : varied_events()) append(e);
    audit_everything();
    all_ = chain();
    ASSERT_EQ(all_.size(), 10u);
  }

  /// The positions of the records `keep` selects, newest first: what a query must answer.
  std::vector<std::int64_t> expected(const std::function<bool(const AuditRecord&)>& keep) const {
    std::vector<std::int64_t> out;
    for (auto it = all_.rbegin(); it != all_.rend(); ++it) {
      if (keep(*it)) out.push_back(it->position);
    }
    return out;
  }

  /// Checks that `query` answers exactly what `keep` selects, with the total.
  void expect_query(const herald::AuditQuery& query,
                    const std::function<bool(const AuditRecord&)>& keep) {
    auto page = store_->query_audit(query);
    ASSERT_TRUE(page) << page.error().message;
    const std::vector<std::int64_t> want = expected(keep);
    EXPECT_FALSE(want.empty()) << "the test data should match something";
    EXPECT_EQ(positions_of(page->items), want);
    EXPECT_EQ(page->total, static_cast<std::int64_t>(want.size()));
  }

  std::vector<AuditRecord> all_;
};
INSTANTIATE_TEST_SUITE_P(Backends, AuditQueries, ::testing::Values("sqlite", "postgres"),
                         backend_name);

TEST_P(AuditQueries, ListsNewestFirstWithTheTotal) {
  ASSERT_NO_FATAL_FAILURE(build());
  expect_query({}, [](const AuditRecord&) { return true; });
}

TEST_P(AuditQueries, FiltersOnEachField) {
  ASSERT_NO_FATAL_FAILURE(build());
  {
    SCOPED_TRACE("organization");
    expect_query({.organization_id = 2},
                 [](const AuditRecord& r) { return r.organization_id == 2; });
  }
  {
    SCOPED_TRACE("actor");
    expect_query({.actor = 10}, [](const AuditRecord& r) { return r.actor == 10; });
  }
  {
    SCOPED_TRACE("system actor");
    expect_query({.actor = herald::system_actor},
                 [](const AuditRecord& r) { return r.actor == herald::system_actor; });
  }
  {
    SCOPED_TRACE("exact action");
    expect_query({.action = "user_created"},
                 [](const AuditRecord& r) { return r.action == "user_created"; });
  }
  {
    SCOPED_TRACE("action prefix");
    expect_query({.action = "organization_member_*"},
                 [](const AuditRecord& r) { return r.action.starts_with("organization_member_"); });
  }
  {
    SCOPED_TRACE("entity type");
    expect_query({.entity_type = "User"},
                 [](const AuditRecord& r) { return r.entity_type == "User"; });
  }
  {
    SCOPED_TRACE("entity");
    expect_query({.entity_type = "User", .entity_id = "11"}, [](const AuditRecord& r) {
      return r.entity_type == "User" && r.entity_id == "11";
    });
  }
  {
    SCOPED_TRACE("string entity id");
    expect_query({.entity_id = "bold-rush-1234"},
                 [](const AuditRecord& r) { return r.entity_id == "bold-rush-1234"; });
  }
  {
    SCOPED_TRACE("time range");
    expect_query({.since = at_minute(3), .until = at_minute(7)}, [](const AuditRecord& r) {
      return r.occurred_at >= at_minute(3) && r.occurred_at < at_minute(7);
    });
  }
  {
    SCOPED_TRACE("combined");
    expect_query({.organization_id = 1, .action = "organization_*", .since = at_minute(2)},
                 [](const AuditRecord& r) {
                   return r.organization_id == 1 && r.action.starts_with("organization_") &&
                          r.occurred_at >= at_minute(2);
                 });
  }
  // An exact action does not match as a prefix.
  auto none = store_->query_audit({.action = "organization"});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->items.empty());
  EXPECT_EQ(none->total, 0);
}

TEST_P(AuditQueries, PagesWithACursorThatStaysStableWhileRecordsAreAdded) {
  ASSERT_NO_FATAL_FAILURE(build());
  auto first = store_->query_audit({.limit = 4});
  ASSERT_TRUE(first);
  EXPECT_EQ(positions_of(first->items), (std::vector<std::int64_t>{10, 9, 8, 7}));
  EXPECT_EQ(first->total, 10);

  // Three more records arrive between pages.
  for (int i = 0; i < 3; ++i) {
    append(event<domain::UserUpdatedEvent>({.entity_id = 20 + i, .user_id = 1},
                                           {.changed_fields = {"discord_username"}}));
  }
  audit_everything();

  std::vector<std::int64_t> seen = positions_of(first->items);
  std::optional<std::int64_t> cursor = first->items.back().position;
  while (cursor) {
    auto page = store_->query_audit({.before_position = cursor, .limit = 4});
    ASSERT_TRUE(page) << page.error().message;
    EXPECT_EQ(page->total, 13);
    for (const AuditRecord& record : page->items) seen.push_back(record.position);
    cursor = page->items.size() == 4 ? std::optional(page->items.back().position) : std::nullopt;
  }
  // Every record that existed when paging began, once each, newest first; none of the new ones.
  EXPECT_EQ(seen, (std::vector<std::int64_t>{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}));
}

TEST_P(AuditQueries, RefusesALimitOutOfRange) {
  ASSERT_NO_FATAL_FAILURE(build());
  auto zero = store_->query_audit({.limit = 0});
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, herald::ErrorCode::invalid_argument);
  EXPECT_FALSE(store_->query_audit({.limit = 1001}));
}

// --- export -------------------------------------------------------------------------------------

std::string csv_quoted(std::string_view field) {
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

TEST_P(AuditLog, ExportsCsvWithRfc4180Quoting) {
  ASSERT_TRUE(store_);
  append(
      event<domain::UserCreatedEvent>({.entity_id = 10, .user_id = 10, .timestamp = at_minute(0)},
                                      {.discord_id = 501, .discord_username = "ada"}));
  append(event<domain::RaceSubmittedEvent>(
      {.entity_id = "room,\"7\"\r\nb",
       .user_id = 11,
       .organization_id = 2,
       .timestamp = at_minute(1)},
      {.racer_user_id = 11, .vod_url = "https://v/?a=1,b=\"2\""}));
  audit_everything();
  const std::vector<AuditRecord> records = chain();
  ASSERT_EQ(records.size(), 2u);

  std::ostringstream out;
  auto written =
      herald::export_audit_log(*store_, {.limit = 1}, herald::AuditExportFormat::csv, out);
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_EQ(*written, 2);

  const AuditRecord& race = records[1];
  const AuditRecord& user = records[0];
  const std::string expected =
      "position,event_id,occurred_at,recorded_at,actor,organization_id,action,entity_type,"
      "entity_id,details,prev_hash,hash\r\n"
      // Newest first. The entity id holds a comma, quotes and CRLF, the details quotes and
      // commas: both quoted, quotes doubled.
      "2," +
      race.event_id.to_string() + ",2026-11-27T09:01:00.000000Z," +
      herald::format_timestamp(race.recorded_at) + ",11,2,race_submitted,AsyncTournamentRace," +
      csv_quoted("room,\"7\"\r\nb") + "," +
      csv_quoted(R"({"permalink_id":null,"racer_user_id":11,"time_seconds":null,)"
                 R"("tournament_id":null,"vod_url":"https://v/?a=1,b=\"2\""})") +
      "," + race.prev_hash + "," + race.hash + "\r\n" +
      // A null organization is an empty field; plain fields are not quoted.
      "1," + user.event_id.to_string() + ",2026-11-27T09:00:00.000000Z," +
      herald::format_timestamp(user.recorded_at) + ",10,,user_created,User,10," +
      csv_quoted(R"({"discord_id":501,"discord_username":"ada"})") + "," + user.prev_hash + "," +
      user.hash + "\r\n";
  EXPECT_EQ(out.str(), expected);
}

TEST_P(AuditLog, ExportsJsonLinesPageByPage) {
  ASSERT_TRUE(store_);
  for (const EventPtr& e : varied_events()) append(e);
  audit_everything();
  const std::vector<AuditRecord> records = chain();

  std::ostringstream out;
  auto written = herald::export_audit_log(*store_, {.action = "organization_*", .limit = 2},
                                          herald::AuditExportFormat::json_lines, out);
  ASSERT_TRUE(written) << written.error().message;
  std::vector<const AuditRecord*> matching;
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if (it->action.starts_with("organization_")) matching.push_back(&*it);
  }
  EXPECT_EQ(*written, static_cast<std::int64_t>(matching.size()));

  std::istringstream lines(out.str());
  std::string line;
  std::size_t index = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(index, matching.size());
    const boost::json::value parsed = boost::json::parse(line);
    EXPECT_EQ(parsed, boost::json::value(herald::audit_record_to_json(*matching[index])));
    EXPECT_EQ(parsed.at("position").as_int64(), matching[index]->position);
    EXPECT_EQ(parsed.at("hash").as_string(), matching[index]->hash);
    ++index;
  }
  EXPECT_EQ(index, matching.size());
  EXPECT_TRUE(out.str().ends_with("\n"));
  // Each line carries what its hash covers: a reader can recompute it.
  const boost::json::object first =
      boost::json::parse(out.str().substr(0, out.str().find('\n'))).as_object();
  EXPECT_EQ(first.at("prev_hash").as_string(), matching[0]->prev_hash);
  EXPECT_EQ(first.at("details").as_object(), matching[0]->details);
}

}  // namespace
