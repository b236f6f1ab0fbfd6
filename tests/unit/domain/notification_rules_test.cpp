#include "herald/domain/notification_rules.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <map>
#include <set>

#include "herald/domain/events.hpp"
#include "herald/notify/router.hpp"
// The templates are private to the domain library; their text is checked here.
#include "../../../domain/src/notification_templates.hpp"

namespace herald::domain {
namespace {

using notify::Channel;
using notify::DirectoryChange;
using notify::Notice;
using notify::UserPreferences;
using notify::UserProfile;

// The directory as the notification store keeps it, in memory.
class MemoryDirectory final : public notify::Directory {
 public:
  std::map<std::int64_t, UserProfile> users;
  std::map<std::int64_t, std::vector<std::int64_t>> organization_members;
  std::map<std::string, std::vector<std::int64_t>> groups;
  std::map<std::int64_t, UserPreferences> user_preferences;
  std::map<std::int64_t, notify::AnnouncementChannel> announcements;

  std::expected<std::optional<UserProfile>, Error> user(std::int64_t user_id) override {
    const auto it = users.find(user_id);
    if (it == users.end()) return std::optional<UserProfile>();
    return it->second;
  }
  std::expected<std::vector<std::int64_t>, Error> members(std::int64_t organization_id) override {
    return organization_members[organization_id];
  }
  std::expected<std::vector<std::int64_t>, Error> group(const std::string& name) override {
    return groups[name];
  }
  std::expected<UserPreferences, Error> preferences(std::int64_t user_id) override {
    const auto it = user_preferences.find(user_id);
    if (it == user_preferences.end()) return UserPreferences{.user_id = user_id};
    return it->second;
  }
  std::expected<std::vector<notify::WebhookEndpoint>, Error> endpoints(std::int64_t) override {
    return std::vector<notify::WebhookEndpoint>{};
  }
  std::expected<std::optional<notify::AnnouncementChannel>, Error> announcement_channel(
      std::int64_t organization_id) override {
    const auto it = announcements.find(organization_id);
    if (it == announcements.end()) return std::optional<notify::AnnouncementChannel>();
    return it->second;
  }
};

class NotificationRules : public ::testing::Test {
 protected:
  void SetUp() override {
    base.users[5] = UserProfile{.user_id = 5, .discord_id = 111, .discord_username = "alice"};
    base.users[6] = UserProfile{.user_id = 6};
    base.users[8] = UserProfile{.user_id = 8, .discord_username = "carol"};
    base.users[42] = UserProfile{.user_id = 42, .discord_username = "dave"};
  }

  template <Event E>
  StoredEvent stored(E event) {
    return StoredEvent{.position = ++position,
                       .recorded_at = herald::now(),
                       .event = EventPtr::make(std::move(event))};
  }

  // What the rules say of `event`, after its own directory changes, as the router asks.
  template <Event E>
  std::vector<Notice> notices(E event) {
    const StoredEvent entry = stored(std::move(event));
    for (const DirectoryChange& change : rules.directory_changes(entry)) overlay.apply(change);
    auto result = rules.notices(entry, overlay);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result ? *result : std::vector<Notice>{};
  }

  template <Event E>
  Notice only_notice(E event) {
    std::vector<Notice> all = notices(std::move(event));
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? Notice{} : all.front();
  }

  template <Event E>
  notify::RoutedEvent route(E event) {
    auto routed = notify::route_event(stored(std::move(event)), rules, overlay);
    EXPECT_TRUE(routed.has_value()) << routed.error().message;
    return routed ? *routed : notify::RoutedEvent{};
  }

  static std::set<std::int64_t> inbox_users(const notify::RoutedEvent& routed) {
    std::set<std::int64_t> users;
    for (const notify::NewInboxItem& item : routed.inbox) users.insert(item.user_id);
    return users;
  }

  const PlatformNotificationRules& rules = platform_notification_rules();
  MemoryDirectory base;
  notify::DirectoryOverlay overlay{base};
  std::int64_t position = 0;
};

// --- kinds ---

TEST_F(NotificationRules, ListsTheSeventeenKindsOfThePlatform) {
  std::vector<std::string> names;
  for (const notify::KindInfo& info : rules.kinds()) {
    names.push_back(info.name);
    EXPECT_FALSE(info.description.empty()) << info.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "user_permission_changed", "organization_member_added",
                       "organization_member_removed", "organization_member_permission_changed",
                       "tournament_created", "tournament_started", "tournament_ended",
                       "tournament_updated", "match_scheduled", "match_completed", "race_submitted",
                       "race_approved", "race_rejected", "invite_received", "invite_accepted",
                       "invite_rejected", "invite_expired"}));
}

TEST_F(NotificationRules, MakesPermissionChangesAndRemovalsCritical) {
  std::vector<std::string> critical;
  for (const notify::KindInfo& info : rules.kinds()) {
    if (info.critical) critical.push_back(info.name);
  }
  EXPECT_EQ(critical,
            (std::vector<std::string>{"user_permission_changed", "organization_member_removed"}));
}

TEST_F(NotificationRules, TurnsOnlyInAppOnByDefaultAndTournamentsOnlyBySubscription) {
  for (const notify::KindInfo& info : rules.kinds()) {
    if (info.name.starts_with("tournament_")) {
      EXPECT_TRUE(info.default_channels.empty()) << info.name;
    } else if (info.name == "invite_received") {
      EXPECT_EQ(info.default_channels, std::vector<Channel>{Channel::email});
    } else {
      EXPECT_EQ(info.default_channels, std::vector<Channel>{Channel::in_app}) << info.name;
    }
  }
}

// --- every kind rendered ---

TEST_F(NotificationRules, RendersAUserPermissionChange) {
  const Notice notice = only_notice(
      make<UserPermissionChangedEvent>({.entity_id = std::int64_t{42}, .user_id = 5},
                                       {.old_permission = "USER", .new_permission = "ADMIN"}));
  EXPECT_EQ(notice.kind, "user_permission_changed");
  EXPECT_EQ(notice.audience.users, std::vector<std::int64_t>{42});
  EXPECT_EQ(notice.message.title, "Your permission level changed");
  EXPECT_EQ(notice.message.text, "Your platform permission level changed from USER to ADMIN.");
  EXPECT_EQ(notice.message.markdown,
            "Your platform permission level changed from **USER** to **ADMIN**.");
  EXPECT_EQ(notice.message.html,
            "<p>Your platform permission level changed from <strong>USER</strong> to "
            "<strong>ADMIN</strong>.</p>");
  EXPECT_EQ(notice.message.link, "/users/42");
}

TEST_F(NotificationRules, RendersAMemberAdded) {
  const Notice notice = only_notice(make<OrganizationMemberAddedEvent>(
      {.entity_id = std::int64_t{300}, .user_id = 5, .organization_id = 7},
      {.member_user_id = 42, .added_by_user_id = 5}));
  EXPECT_EQ(notice.kind, "organization_member_added");
  EXPECT_EQ(notice.audience.users, std::vector<std::int64_t>{42});
  EXPECT_EQ(notice.message.title, "You were added to organization #7");
  EXPECT_EQ(notice.message.text, "You are now a member of organization #7. Added by alice.");
  EXPECT_EQ(notice.message.markdown,
            "You are now a member of organization #7. Added by **alice**.");
  EXPECT_EQ(notice.message.link, "/organizations/7");
}

TEST_F(NotificationRules, LeavesOutWhoAddedAMemberWhoJoinedThemselves) {
  const Notice notice = only_notice(make<OrganizationMemberAddedEvent>(
      {.user_id = 42, .organization_id = 7}, {.member_user_id = 42, .added_by_user_id = 42}));
  EXPECT_EQ(notice.message.text, "You are now a member of organization #7.");
}

TEST_F(NotificationRules, RendersAMemberRemovedWithTheReason) {
  const Notice notice = only_notice(make<OrganizationMemberRemovedEvent>(
      {.user_id = 5, .organization_id = 7},
      {.member_user_id = 42, .removed_by_user_id = 5, .reason = "Inactive since March"}));
  EXPECT_EQ(notice.kind, "organization_member_removed");
  EXPECT_EQ(notice.audience.users, std::vector<std::int64_t>{42});
  EXPECT_EQ(notice.message.title, "You were removed from organization #7");
  EXPECT_EQ(notice.message.text,
            "You are no longer a member of organization #7. Removed by alice.\n"
            "Reason: Inactive since March");
  EXPECT_EQ(notice.message.html,
            "<p>You are no longer a member of organization #7. Removed by "
            "<strong>alice</strong>.</p><p>Reason: Inactive since March</p>");
}

TEST_F(NotificationRules, RendersAPermissionGrantedAndRevoked) {
  const Notice granted = only_notice(make<OrganizationMemberPermissionChangedEvent>(
      {.user_id = 5, .organization_id = 7},
      {.member_user_id = 42, .permission_name = "TOURNAMENT_MANAGER", .granted = true}));
  EXPECT_EQ(granted.kind, "organization_member_permission_changed");
  EXPECT_EQ(granted.audience.users, std::vector<std::int64_t>{42});
  EXPECT_EQ(granted.message.title, "You were granted TOURNAMENT_MANAGER in organization #7");
  EXPECT_EQ(granted.message.text,
            "You were granted the permission TOURNAMENT_MANAGER in organization #7. Granted by "
            "alice.");
  EXPECT_EQ(granted.message.markdown,
            "You were granted the permission **TOURNAMENT\\_MANAGER** in organization #7. "
            "Granted by **alice**.");

  const Notice revoked = only_notice(make<OrganizationMemberPermissionChangedEvent>(
      {.user_id = herald::system_actor, .organization_id = 7},
      {.member_user_id = 42, .permission_name = "TOURNAMENT_MANAGER", .granted = false}));
  EXPECT_EQ(revoked.kind, "organization_member_permission_changed");
  EXPECT_EQ(revoked.message.title, "You lost TOURNAMENT_MANAGER in organization #7");
  EXPECT_EQ(revoked.message.text,
            "The permission TOURNAMENT_MANAGER was revoked from you in organization #7.");
}

TEST_F(NotificationRules, RendersTheFourTournamentKinds) {
  const Notice created = only_notice(make<TournamentCreatedEvent>(
      {.entity_id = std::int64_t{12}, .user_id = 5, .organization_id = 7},
      {.tournament_name = "Spring Cup", .tournament_type = "async"}));
  EXPECT_EQ(created.kind, "tournament_created");
  EXPECT_EQ(created.message.title, "New tournament: Spring Cup");
  EXPECT_EQ(created.message.text,
            "A new tournament, Spring Cup, was created in organization #7. Format: async.");
  EXPECT_EQ(created.message.link, "/tournaments/12");

  const Notice started = only_notice(make<TournamentStartedEvent>(
      {.entity_id = std::int64_t{12}, .organization_id = 7}, {.tournament_name = "Spring Cup"}));
  EXPECT_EQ(started.kind, "tournament_started");
  EXPECT_EQ(started.message.title, "Tournament started: Spring Cup");
  EXPECT_EQ(started.message.text, "The tournament Spring Cup in organization #7 has started.");
  EXPECT_EQ(started.message.markdown,
            "The tournament **Spring Cup** in organization #7 has started.");

  const Notice ended = only_notice(
      make<TournamentEndedEvent>({.entity_id = std::int64_t{12}, .organization_id = 7},
                                 {.tournament_name = "Spring Cup", .winner_user_id = 5}));
  EXPECT_EQ(ended.kind, "tournament_ended");
  EXPECT_EQ(ended.message.title, "Tournament ended: Spring Cup");
  EXPECT_EQ(ended.message.text,
            "The tournament Spring Cup in organization #7 has ended. Winner: alice.");

  const Notice updated = only_notice(make<TournamentUpdatedEvent>(
      {.entity_id = std::int64_t{12}, .organization_id = 7},
      {.changed_fields = std::vector<std::string>{"name", "starts_at"}}));
  EXPECT_EQ(updated.kind, "tournament_updated");
  EXPECT_EQ(updated.message.title, "Tournament updated: #12");
  EXPECT_EQ(updated.message.text,
            "The tournament #12 in organization #7 was updated. Changed: name, starts_at.");
  EXPECT_EQ(updated.message.markdown,
            "The tournament **#12** in organization #7 was updated. Changed: name, starts\\_at.");

  for (const Notice& notice : {created, started, ended, updated}) {
    EXPECT_TRUE(notice.audience.users.empty()) << notice.kind;
    EXPECT_EQ(notice.audience.subscribers_of, 7) << notice.kind;
    EXPECT_EQ(notice.audience.announce_to, 7) << notice.kind;
    EXPECT_EQ(notice.message.link, "/tournaments/12") << notice.kind;
  }
}

TEST_F(NotificationRules, RendersAMatchScheduledAndCompleted) {
  const Notice scheduled = only_notice(make<MatchScheduledEvent>(
      {.entity_id = std::int64_t{9}, .organization_id = 7},
      {.tournament_id = 12, .scheduled_time = "2026-12-01T19:00:00Z", .participant_ids = {5, 6}}));
  EXPECT_EQ(scheduled.kind, "match_scheduled");
  EXPECT_EQ(scheduled.audience.users, (std::vector<std::int64_t>{5, 6}));
  EXPECT_EQ(scheduled.message.title, "Your match is scheduled for 2026-12-01T19:00:00Z");
  EXPECT_EQ(scheduled.message.text,
            "Your match #9 in tournament #12 is scheduled for 2026-12-01T19:00:00Z.\n"
            "Players: alice, user #6");
  EXPECT_EQ(scheduled.message.markdown,
            "Your match #9 in tournament #12 is scheduled for **2026-12-01T19:00:00Z**.\n"
            "Players: alice, user #6");
  EXPECT_EQ(scheduled.message.link, "/matches/9");

  const Notice completed =
      only_notice(make<MatchCompletedEvent>({.entity_id = std::int64_t{9}, .organization_id = 7},
                                            {.tournament_id = 12, .winner_user_id = 6}));
  EXPECT_EQ(completed.kind, "match_completed");
  EXPECT_EQ(completed.audience.users, (std::vector<std::int64_t>{5, 6}));
  EXPECT_EQ(completed.message.title, "Your match is complete");
  EXPECT_EQ(completed.message.text,
            "Your match #9 in tournament #12 is complete. Winner: user #6.");
  EXPECT_EQ(completed.message.link, "/matches/9");
}

TEST_F(NotificationRules, RendersTheThreeRaceKinds) {
  const Notice submitted = only_notice(
      make<RaceSubmittedEvent>({.entity_id = std::int64_t{31}, .user_id = 42, .organization_id = 7},
                               {.tournament_id = 12,
                                .permalink_id = 77,
                                .racer_user_id = 42,
                                .time_seconds = 3725,
                                .vod_url = "https://twitch.tv/videos/123"}));
  EXPECT_EQ(submitted.kind, "race_submitted");
  EXPECT_EQ(submitted.audience.users, std::vector<std::int64_t>{42});
  EXPECT_EQ(submitted.message.title, "Your race was submitted");
  EXPECT_EQ(submitted.message.text,
            "Your race #31 in tournament #12 was submitted for review. Time: 1:02:05.\n"
            "VOD: https://twitch.tv/videos/123");
  EXPECT_EQ(submitted.message.markdown,
            "Your race #31 in tournament #12 was submitted for review. Time: **1:02:05**.\n"
            "VOD: <https://twitch.tv/videos/123>");
  EXPECT_EQ(submitted.message.html,
            "<p>Your race #31 in tournament #12 was submitted for review. Time: "
            "<strong>1:02:05</strong>.</p><p>VOD: <a href=\"https://twitch.tv/videos/123\">"
            "https://twitch.tv/videos/123</a></p>");
  EXPECT_EQ(submitted.message.link, "/races/31");

  const Notice approved = only_notice(
      make<RaceApprovedEvent>({.entity_id = std::int64_t{31}, .organization_id = 7},
                              {.tournament_id = 12, .racer_user_id = 42, .reviewer_user_id = 5}));
  EXPECT_EQ(approved.kind, "race_approved");
  EXPECT_EQ(approved.audience.users, std::vector<std::int64_t>{42});
  EXPECT_EQ(approved.message.title, "Your race was approved");
  EXPECT_EQ(approved.message.text, "Your race #31 in tournament #12 was approved by alice.");

  const Notice rejected = only_notice(make<RaceRejectedEvent>(
      {.entity_id = std::int64_t{31}, .organization_id = 7},
      {.tournament_id = 12, .racer_user_id = 42, .reviewer_user_id = 5, .reason = "Wrong seed"}));
  EXPECT_EQ(rejected.kind, "race_rejected");
  EXPECT_EQ(rejected.message.title, "Your race was rejected");
  EXPECT_EQ(rejected.message.text,
            "Your race #31 in tournament #12 was rejected by alice.\nReason: Wrong seed");
  EXPECT_EQ(rejected.message.link, "/races/31");
}

TEST_F(NotificationRules, RendersShortRaceTimesWithoutHours) {
  const Notice submitted = only_notice(make<RaceSubmittedEvent>(
      {.entity_id = std::int64_t{31}}, {.racer_user_id = 42, .time_seconds = 754}));
  EXPECT_EQ(submitted.message.text, "Your race #31 was submitted for review. Time: 12:34.");
}

TEST_F(NotificationRules, RendersTheFourInviteKinds) {
  const Notice received = only_notice(make<InviteCreatedEvent>(
      {.entity_id = std::int64_t{70}, .user_id = 5, .organization_id = 7},
      {.invite_code = "ABC123", .inviter_user_id = 5, .invited_email = "erin@example.org"}));
  EXPECT_EQ(received.kind, "invite_received");
  EXPECT_TRUE(received.audience.users.empty());
  EXPECT_EQ(received.audience.email, "erin@example.org");
  EXPECT_EQ(received.message.title, "You are invited to join organization #7");
  EXPECT_EQ(received.message.text,
            "You are invited to join organization #7 by alice.\nYour invitation code: ABC123");
  EXPECT_EQ(received.message.link, "/invites/ABC123");

  const Notice accepted = only_notice(
      make<InviteAcceptedEvent>({.entity_id = std::int64_t{70}, .user_id = 8, .organization_id = 7},
                                {.invite_code = "ABC123", .accepted_by_user_id = 8}));
  EXPECT_EQ(accepted.kind, "invite_accepted");
  EXPECT_EQ(accepted.audience.users, std::vector<std::int64_t>{5});
  EXPECT_EQ(accepted.message.title, "Your invitation was accepted");
  EXPECT_EQ(accepted.message.text,
            "Your invitation ABC123 to join organization #7 was accepted by carol.");
  EXPECT_EQ(accepted.message.link, "/invites/ABC123");

  const Notice rejected =
      only_notice(make<InviteRejectedEvent>({.entity_id = std::int64_t{70}, .organization_id = 7},
                                            {.invite_code = "ABC123", .rejected_by_user_id = 8}));
  EXPECT_EQ(rejected.kind, "invite_rejected");
  EXPECT_EQ(rejected.audience.users, std::vector<std::int64_t>{5});
  EXPECT_EQ(rejected.message.title, "Your invitation was declined");
  EXPECT_EQ(rejected.message.text,
            "Your invitation ABC123 to join organization #7 was declined by carol.");

  const Notice expired = only_notice(make<InviteExpiredEvent>(
      {.entity_id = std::int64_t{70}, .user_id = herald::system_actor, .organization_id = 7},
      {.invite_code = "ABC123"}));
  EXPECT_EQ(expired.kind, "invite_expired");
  EXPECT_EQ(expired.audience.users, std::vector<std::int64_t>{5});
  EXPECT_EQ(expired.message.title, "Your invitation expired");
  EXPECT_EQ(expired.message.text,
            "Your invitation ABC123 to join organization #7 expired unanswered.");
}

TEST_F(NotificationRules, KeepsMarkupOutOfTheTemplatesThemselves) {
  // Only values are escaped, so the fixed text must mean the same in every form.
  for (const templates::MessageTemplate& entry : templates::message_templates()) {
    for (const std::string_view text : {entry.title, entry.body}) {
      std::string fixed;
      bool in_value = false;
      for (const char c : text) {
        if (c == '{') in_value = true;
        if (!in_value) fixed += c;
        if (c == '}') in_value = false;
      }
      EXPECT_EQ(fixed.find_first_of("<>&\"'*_~`|\\@()"), std::string::npos)
          << entry.id << ": " << text;
    }
  }
}

TEST_F(NotificationRules, HasATemplateForEveryKind) {
  for (const notify::KindInfo& info : rules.kinds()) {
    const auto templates = templates::message_templates();
    const bool found = std::ranges::any_of(templates, [&](const templates::MessageTemplate& entry) {
      return entry.id == info.name || (info.name == "organization_member_permission_changed" &&
                                       entry.id.starts_with("organization_member_permission_"));
    });
    EXPECT_TRUE(found) << info.name;
  }
}

// --- hostile values ---

TEST_F(NotificationRules, LeavesOutAnOptionalPartWhoseValueIsBlank) {
  const Notice notice = only_notice(make<OrganizationMemberRemovedEvent>(
      {.organization_id = 7}, {.member_user_id = 42, .reason = " \r\n\t"}));
  EXPECT_EQ(notice.message.text, "You are no longer a member of organization #7.");
  EXPECT_EQ(notice.message.html, "<p>You are no longer a member of organization #7.</p>");
}

TEST_F(NotificationRules, EscapesHtmlInEveryValue) {
  const Notice notice = only_notice(
      make<TournamentStartedEvent>({.entity_id = std::int64_t{12}, .organization_id = 7},
                                   {.tournament_name = "<script>alert(\"x\")</script> & 'co'"}));
  EXPECT_EQ(notice.message.html,
            "<p>The tournament <strong>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
            "&#39;co&#39;</strong> in organization #7 has started.</p>");
  EXPECT_EQ(notice.message.html.find("<script"), std::string::npos);
  // Plain text carries the value as is: it is never interpreted.
  EXPECT_EQ(notice.message.title, "Tournament started: <script>alert(\"x\")</script> & 'co'");
}

TEST_F(NotificationRules, NeutralisesMarkdownAndMentionsInValues) {
  const Notice notice = only_notice(make<OrganizationMemberRemovedEvent>(
      {.organization_id = 7},
      {.member_user_id = 42,
       .reason = "**spam** @everyone @here <@123> [click](https://evil.test) `x` ~~y~~ |z| _w_"}));
  const std::string& markdown = notice.message.markdown;
  EXPECT_NE(markdown.find("Reason: \\*\\*spam\\*\\* @\u200Beveryone @\u200Bhere \\<@\u200B123\\> "
                          "\\[click\\]\\(https://evil.test\\) \\`x\\` \\~\\~y\\~\\~ \\|z\\| "
                          "\\_w\\_"),
            std::string::npos)
      << markdown;
  EXPECT_EQ(markdown.find("@everyone"), std::string::npos);
  EXPECT_EQ(markdown.find("@here"), std::string::npos);
  EXPECT_EQ(markdown.find("**spam"), std::string::npos);
}

TEST_F(NotificationRules, EscapesNamesFromTheDirectory) {
  base.users[5].discord_username = "**@everyone**";
  const Notice notice = only_notice(make<RaceApprovedEvent>(
      {.entity_id = std::int64_t{31}}, {.racer_user_id = 42, .reviewer_user_id = 5}));
  EXPECT_EQ(notice.message.markdown,
            "Your race #31 was approved by **\\*\\*@\u200Beveryone\\*\\***.");
  EXPECT_EQ(notice.message.html,
            "<p>Your race #31 was approved by <strong>**@everyone**</strong>.</p>");
}

TEST_F(NotificationRules, NamesATournamentWithABlankNameByItsId) {
  const Notice notice = only_notice(make<TournamentStartedEvent>(
      {.entity_id = std::int64_t{12}, .organization_id = 7}, {.tournament_name = " \n "}));
  EXPECT_EQ(notice.message.title, "Tournament started: #12");
}

TEST_F(NotificationRules, CutsVeryLongValues) {
  const std::string long_name(5000, 'x');
  const Notice notice = only_notice(make<TournamentStartedEvent>(
      {.entity_id = std::int64_t{12}, .organization_id = 7}, {.tournament_name = long_name}));
  const std::string cut = std::string(120, 'x') + "\u2026";
  EXPECT_EQ(notice.message.title, "Tournament started: " + cut);
  EXPECT_EQ(notice.message.text, "The tournament " + cut + " in organization #7 has started.");
  EXPECT_LT(notice.message.html.size(), 300u);
}

TEST_F(NotificationRules, CutsLongValuesOnlyBetweenCharacters) {
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\u00e9";  // two bytes each
  const Notice notice = only_notice(make<TournamentStartedEvent>(
      {.entity_id = std::int64_t{12}, .organization_id = 7}, {.tournament_name = name}));
  std::string cut;
  for (int i = 0; i < 120; ++i) cut += "\u00e9";
  EXPECT_EQ(notice.message.title, "Tournament started: " + cut + "\u2026");
}

TEST_F(NotificationRules, TurnsLineBreaksControlsAndBadUtf8InValuesIntoHarmlessText) {
  const Notice notice = only_notice(make<OrganizationMemberRemovedEvent>(
      {.organization_id = 7},
      {.member_user_id = 42,
       .reason = "line\r\nBcc: x@evil.test\x01\xff\xc3(end\u202e)txt.exe\u202c"}));
  EXPECT_EQ(notice.message.text,
            "You are no longer a member of organization #7.\n"
            "Reason: line  Bcc: x@evil.test \uFFFD\uFFFD(end)txt.exe");
}

TEST_F(NotificationRules, LinksOnlyPlainWebAddresses) {
  const Notice hostile = only_notice(
      make<RaceSubmittedEvent>({.entity_id = std::int64_t{31}},
                               {.racer_user_id = 42, .vod_url = "javascript:alert(1)//\"><b>"}));
  EXPECT_EQ(hostile.message.html.find("<a "), std::string::npos);
  EXPECT_NE(hostile.message.html.find("VOD: javascript:alert(1)//&quot;&gt;&lt;b&gt;</p>"),
            std::string::npos)
      << hostile.message.html;
  EXPECT_NE(hostile.message.markdown.find("VOD: javascript:alert\\(1\\)//\"\\>\\<b\\>"),
            std::string::npos)
      << hostile.message.markdown;

  const Notice quoted = only_notice(make<RaceSubmittedEvent>(
      {.entity_id = std::int64_t{31}},
      {.racer_user_id = 42, .vod_url = "https://x.test/a\"onmouseover=\"alert(1)"}));
  EXPECT_EQ(quoted.message.html.find("<a "), std::string::npos);
}

TEST_F(NotificationRules, EncodesIdsInLinks) {
  const Notice notice = only_notice(make<InviteCreatedEvent>(
      {.organization_id = 7},
      {.invite_code = "../../admin?x=1#y", .inviter_user_id = 5, .invited_email = "e@x.org"}));
  EXPECT_EQ(notice.message.link, "/invites/..%2F..%2Fadmin%3Fx%3D1%23y");
}

// --- recipients, through the router ---

TEST_F(NotificationRules, TellsTheAffectedUserOfAPermissionChangeEvenWithInAppOff) {
  base.user_preferences[42] = UserPreferences{.user_id = 42, .muted = {Channel::in_app}};
  const auto routed = route(make<UserPermissionChangedEvent>(
      {.entity_id = std::int64_t{42}}, {.old_permission = "USER", .new_permission = "ADMIN"}));
  EXPECT_EQ(inbox_users(routed), std::set<std::int64_t>{42});
}

TEST_F(NotificationRules, TellsARemovedMemberThoughTheyAreNoLongerAMember) {
  base.organization_members[7] = {5, 42};
  const auto routed = route(make<OrganizationMemberRemovedEvent>(
      {.organization_id = 7}, {.member_user_id = 42, .removed_by_user_id = 5}));
  EXPECT_EQ(inbox_users(routed), std::set<std::int64_t>{42});
  EXPECT_EQ(*overlay.members(7), std::vector<std::int64_t>{5});
}

TEST_F(NotificationRules, TellsOnlySubscribedMembersOfATournamentAndAnnouncesIt) {
  base.organization_members[7] = {5, 6, 8};
  base.user_preferences[6] = UserPreferences{
      .user_id = 6,
      .rules = {{.user_id = 6, .kind = "tournament_started", .channel = Channel::in_app}}};
  base.user_preferences[8] = UserPreferences{
      .user_id = 8,
      .rules = {{.user_id = 8, .kind = "tournament_created", .channel = Channel::in_app}}};
  base.announcements[7] = {.organization_id = 7, .webhook_url = "https://discord.test/w/1/t"};
  const auto routed = route(make<TournamentStartedEvent>(
      {.entity_id = std::int64_t{12}, .organization_id = 7}, {.tournament_name = "Spring Cup"}));
  EXPECT_EQ(inbox_users(routed), std::set<std::int64_t>{6});
  ASSERT_EQ(routed.deliveries.size(), 1u);
  EXPECT_EQ(routed.deliveries[0].channel, Channel::discord_channel);
  EXPECT_EQ(routed.deliveries[0].recipient, "org:7");
}

TEST_F(NotificationRules, TellsTheMatchParticipantsAndTheWinner) {
  route(make<MatchScheduledEvent>({.entity_id = std::int64_t{9}, .organization_id = 7},
                                  {.tournament_id = 12, .participant_ids = {5, 6}}));
  const auto routed = route(make<MatchCompletedEvent>(
      {.entity_id = std::int64_t{9}, .organization_id = 7}, {.winner_user_id = 8}));
  EXPECT_EQ(inbox_users(routed), (std::set<std::int64_t>{5, 6, 8}));
}

TEST_F(NotificationRules, TellsTheRacerOfTheirRace) {
  const auto routed = route(make<RaceRejectedEvent>(
      {.entity_id = std::int64_t{31}, .user_id = 5},
      {.racer_user_id = 42, .reviewer_user_id = 5, .reason = "Wrong seed"}));
  EXPECT_EQ(inbox_users(routed), std::set<std::int64_t>{42});
}

TEST_F(NotificationRules, EmailsTheInvitedAddressAndTellsTheInviterOfTheAnswer) {
  const auto invited = route(make<InviteCreatedEvent>(
      {.organization_id = 7},
      {.invite_code = "ABC123", .inviter_user_id = 5, .invited_email = "erin@example.org"}));
  EXPECT_TRUE(invited.inbox.empty());
  ASSERT_EQ(invited.deliveries.size(), 1u);
  EXPECT_EQ(invited.deliveries[0].recipient, "email:erin@example.org");
  const auto body = boost::json::parse(invited.deliveries[0].payload).as_object();
  EXPECT_EQ(body.at("title").as_string(), "You are invited to join organization #7");

  const auto accepted = route(make<InviteAcceptedEvent>(
      {.organization_id = 7}, {.invite_code = "ABC123", .accepted_by_user_id = 8}));
  EXPECT_EQ(inbox_users(accepted), std::set<std::int64_t>{5});
}

TEST_F(NotificationRules, TellsNobodyOfAnInviteAnswerWhoseInviteItNeverSaw) {
  EXPECT_TRUE(
      notices(make<InviteExpiredEvent>({.organization_id = 7}, {.invite_code = "ZZZ"})).empty());
  EXPECT_TRUE(notices(make<InviteAcceptedEvent>({.organization_id = 7}, {})).empty());
}

TEST_F(NotificationRules, TellsNobodyOfEventsThatConcernNoOne) {
  EXPECT_TRUE(notices(make<UserCreatedEvent>({.entity_id = std::int64_t{9}},
                                             {.discord_id = 1, .discord_username = "x"}))
                  .empty());
  EXPECT_TRUE(notices(make<UserUpdatedEvent>({.entity_id = std::int64_t{9}}, {})).empty());
  EXPECT_TRUE(notices(make<UserDeletedEvent>({.entity_id = std::int64_t{9}}, {})).empty());
  EXPECT_TRUE(notices(make<OrganizationCreatedEvent>({.entity_id = std::int64_t{7}},
                                                     {.organization_name = "Org"}))
                  .empty());
  EXPECT_TRUE(notices(make<OrganizationUpdatedEvent>({.organization_id = 7}, {})).empty());
  EXPECT_TRUE(notices(make<OrganizationDeletedEvent>({.organization_id = 7}, {})).empty());
  EXPECT_TRUE(notices(make<TournamentDeletedEvent>({.organization_id = 7}, {})).empty());
  EXPECT_TRUE(notices(make<DiscordGuildLinkedEvent>({.organization_id = 7}, {})).empty());
  EXPECT_TRUE(notices(make<DiscordGuildUnlinkedEvent>({.organization_id = 7}, {})).empty());
  EXPECT_TRUE(notices(make<PresetCreatedEvent>({}, {})).empty());
  EXPECT_TRUE(notices(make<PresetUpdatedEvent>({}, {})).empty());
}

TEST_F(NotificationRules, TellsNobodyWhenTheEventLacksItsRecipient) {
  EXPECT_TRUE(notices(make<UserPermissionChangedEvent>({}, {.new_permission = "ADMIN"})).empty());
  EXPECT_TRUE(notices(make<UserPermissionChangedEvent>({.entity_id = std::string("not-a-number")},
                                                       {.new_permission = "ADMIN"}))
                  .empty());
  EXPECT_TRUE(notices(make<OrganizationMemberAddedEvent>({.organization_id = 7}, {})).empty());
  EXPECT_TRUE(notices(make<RaceApprovedEvent>({.entity_id = std::int64_t{31}}, {})).empty());
  EXPECT_TRUE(notices(make<MatchScheduledEvent>({.entity_id = std::int64_t{9}}, {})).empty());
  EXPECT_TRUE(
      notices(make<InviteCreatedEvent>({.organization_id = 7}, {.invite_code = "A"})).empty());
  // A tournament outside any organization has no members to tell.
  EXPECT_TRUE(notices(make<TournamentStartedEvent>({.entity_id = std::int64_t{12}}, {})).empty());
}

TEST_F(NotificationRules, AcceptsAUserIdSentAsText) {
  const Notice notice = only_notice(make<UserPermissionChangedEvent>(
      {.entity_id = std::string("42")}, {.new_permission = "ADMIN"}));
  EXPECT_EQ(notice.audience.users, std::vector<std::int64_t>{42});
  EXPECT_EQ(notice.message.text, "Your platform permission level changed to ADMIN.");
}

// --- directory changes ---

TEST_F(NotificationRules, KeepsUsersFromTheirEvents) {
  const auto created = rules.directory_changes(
      stored(make<UserCreatedEvent>({.entity_id = std::int64_t{9}},
                                    {.discord_id = 123456789012345678, .discord_username = "x"})));
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].op, DirectoryChange::Op::upsert_user);
  EXPECT_EQ(created[0].user_id, 9);
  EXPECT_EQ(created[0].discord_id, 123456789012345678);
  EXPECT_EQ(created[0].discord_username, "x");

  boost::json::object snapshot{{"discord_username", "new name"}, {"discord_id", "42"}};
  const auto updated = rules.directory_changes(
      stored(make<UserUpdatedEvent>({.entity_id = std::int64_t{9}, .entity_data = snapshot},
                                    {.changed_fields = {"discord_username"}})));
  ASSERT_EQ(updated.size(), 1u);
  EXPECT_EQ(updated[0].op, DirectoryChange::Op::upsert_user);
  EXPECT_EQ(updated[0].discord_username, "new name");
  EXPECT_EQ(updated[0].discord_id, 42);

  const auto deleted =
      rules.directory_changes(stored(make<UserDeletedEvent>({.entity_id = std::int64_t{9}}, {})));
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0].op, DirectoryChange::Op::delete_user);
  EXPECT_EQ(deleted[0].user_id, 9);
}

TEST_F(NotificationRules, KeepsMembershipsFromTheirEvents) {
  const auto added = rules.directory_changes(stored(make<OrganizationMemberAddedEvent>(
      {.organization_id = 7}, {.member_user_id = 42, .added_by_user_id = 5})));
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0].op, DirectoryChange::Op::add_member);
  EXPECT_EQ(added[0].user_id, 42);
  EXPECT_EQ(added[0].organization_id, 7);

  const auto removed = rules.directory_changes(
      stored(make<OrganizationMemberRemovedEvent>({.organization_id = 7}, {.member_user_id = 42})));
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].op, DirectoryChange::Op::remove_member);

  // Without an organization there is nothing to change.
  EXPECT_TRUE(
      rules
          .directory_changes(stored(make<OrganizationMemberAddedEvent>({}, {.member_user_id = 42})))
          .empty());
}

TEST_F(NotificationRules, KeepsMatchAndInviteGroups) {
  const auto match = rules.directory_changes(stored(
      make<MatchScheduledEvent>({.entity_id = std::int64_t{9}}, {.participant_ids = {5, 6}})));
  ASSERT_EQ(match.size(), 1u);
  EXPECT_EQ(match[0].op, DirectoryChange::Op::set_group);
  EXPECT_EQ(match[0].group, "match:9");
  EXPECT_EQ(match[0].members, (std::vector<std::int64_t>{5, 6}));

  const auto invite = rules.directory_changes(stored(make<InviteCreatedEvent>(
      {}, {.invite_code = "ABC123", .inviter_user_id = 5, .invited_email = "e@x.org"})));
  ASSERT_EQ(invite.size(), 1u);
  EXPECT_EQ(invite[0].group, "invite:ABC123");
  EXPECT_EQ(invite[0].members, std::vector<std::int64_t>{5});

  EXPECT_TRUE(rules
                  .directory_changes(stored(make<TournamentStartedEvent>(
                      {.entity_id = std::int64_t{12}, .organization_id = 7}, {})))
                  .empty());
}

}  // namespace
}  // namespace herald::domain
