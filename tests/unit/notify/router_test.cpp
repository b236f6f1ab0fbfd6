#include "herald/notify/router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <functional>
#include <map>
#include <set>

#include "herald/domain/events.hpp"
#include "herald/json.hpp"

namespace herald::notify {
namespace {

using domain::TournamentStartedEvent;

// The directory as the notification store keeps it, in memory: the router only reads it.
class MemoryDirectory final : public Directory {
 public:
  std::map<std::int64_t, UserProfile> users;
  std::map<std::int64_t, std::vector<std::int64_t>> organization_members;
  std::map<std::string, std::vector<std::int64_t>> groups;
  std::map<std::int64_t, UserPreferences> user_preferences;
  std::map<std::int64_t, std::vector<WebhookEndpoint>> organization_endpoints;
  std::map<std::int64_t, AnnouncementChannel> announcements;
  /// Every call fails with this error when set.
  std::optional<Error> failure;
  int reads = 0;

  std::expected<std::optional<UserProfile>, Error> user(std::int64_t user_id) override {
    if (auto failed = fail()) return std::unexpected(*failed);
    const auto it = users.find(user_id);
    if (it == users.end()) return std::optional<UserProfile>();
    return it->second;
  }
  std::expected<std::vector<std::int64_t>, Error> members(std::int64_t organization_id) override {
    if (auto failed = fail()) return std::unexpected(*failed);
    return organization_members[organization_id];
  }
  std::expected<std::vector<std::int64_t>, Error> group(const std::string& name) override {
    if (auto failed = fail()) return std::unexpected(*failed);
    return groups[name];
  }
  std::expected<UserPreferences, Error> preferences(std::int64_t user_id) override {
    if (auto failed = fail()) return std::unexpected(*failed);
    const auto it = user_preferences.find(user_id);
    if (it == user_preferences.end()) return UserPreferences{.user_id = user_id};
    return it->second;
  }
  std::expected<std::vector<WebhookEndpoint>, Error> endpoints(
      std::int64_t organization_id) override {
    if (auto failed = fail()) return std::unexpected(*failed);
    return organization_endpoints[organization_id];
  }
  std::expected<std::optional<AnnouncementChannel>, Error> announcement_channel(
      std::int64_t organization_id) override {
    if (auto failed = fail()) return std::unexpected(*failed);
    const auto it = announcements.find(organization_id);
    if (it == announcements.end()) return std::optional<AnnouncementChannel>();
    return it->second;
  }

 private:
  std::optional<Error> fail() {
    ++reads;
    return failure;
  }
};

// Rules written by each test: the kinds below, and notices and changes the test chooses.
class TestRules final : public NotificationRules {
 public:
  std::vector<KindInfo> kind_list{
      {"news", "News of an organization", false, {}},
      {"personal", "Something about you", false, {Channel::in_app}},
      {"removed", "You were removed", true, {Channel::in_app}},
  };
  std::function<std::vector<DirectoryChange>(const StoredEvent&)> changes = [](const StoredEvent&) {
    return std::vector<DirectoryChange>{};
  };
  std::function<std::vector<Notice>(const StoredEvent&, Directory&)> make_notices =
      [](const StoredEvent&, Directory&) { return std::vector<Notice>{}; };

  std::span<const KindInfo> kinds() const override { return kind_list; }
  std::vector<DirectoryChange> directory_changes(const StoredEvent& event) const override {
    return changes(event);
  }
  std::expected<std::vector<Notice>, Error> notices(const StoredEvent& event,
                                                    Directory& directory) const override {
    return make_notices(event, directory);
  }
};

Message message(std::string title) {
  return Message{.title = title,
                 .text = title + " (text)",
                 .markdown = title + " (markdown)",
                 .html = "<p>" + title + "</p>",
                 .link = "/tournaments/12"};
}

StoredEvent tournament_started(std::int64_t position, std::optional<std::int64_t> organization) {
  return StoredEvent{
      .position = position,
      .recorded_at = herald::now(),
      .event = EventPtr::make(herald::make<TournamentStartedEvent>(
          {.entity_id = std::int64_t{12}, .user_id = 1, .organization_id = organization},
          {.tournament_name = "Spring Cup"}))};
}

PreferenceRule rule(std::int64_t user, std::string kind, Channel channel,
                    std::optional<std::int64_t> organization, bool enabled) {
  return PreferenceRule{.user_id = user,
                        .kind = std::move(kind),
                        .channel = channel,
                        .organization_id = organization,
                        .enabled = enabled};
}

const KindInfo news{"news", "News", false, {}};
const KindInfo personal{"personal", "Personal", false, {Channel::in_app}};
const KindInfo critical{"removed", "Removed", true, {Channel::in_app}};

std::size_t count(const RoutedEvent& routed, Channel channel, const std::string& recipient) {
  return static_cast<std::size_t>(
      std::ranges::count_if(routed.deliveries, [&](const NewDelivery& delivery) {
        return delivery.channel == channel && delivery.recipient == recipient;
      }));
}

std::size_t inbox_count(const RoutedEvent& routed, std::int64_t user) {
  return static_cast<std::size_t>(std::ranges::count_if(
      routed.inbox, [&](const NewInboxItem& item) { return item.user_id == user; }));
}

boost::json::object payload(const NewDelivery& delivery) {
  return boost::json::parse(delivery.payload).as_object();
}

// --- channel_enabled ---

TEST(ChannelEnabled, UsesTheKindsDefaultChannelsWhenTheUserSetNothing) {
  const UserPreferences nothing{.user_id = 5};
  EXPECT_TRUE(channel_enabled(personal, nothing, Channel::in_app, 7));
  EXPECT_FALSE(channel_enabled(personal, nothing, Channel::discord, 7));
  EXPECT_FALSE(channel_enabled(personal, nothing, Channel::email, std::nullopt));
  EXPECT_FALSE(channel_enabled(news, nothing, Channel::in_app, 7));
}

TEST(ChannelEnabled, TurnsOffEveryKindOnAMutedChannel) {
  const UserPreferences muted{.user_id = 5,
                              .rules = {rule(5, "personal", Channel::discord, 7, true)},
                              .muted = {Channel::discord, Channel::in_app}};
  EXPECT_FALSE(channel_enabled(personal, muted, Channel::discord, 7));
  EXPECT_FALSE(channel_enabled(personal, muted, Channel::in_app, 7));
}

TEST(ChannelEnabled, KeepsACriticalKindOnInAppWhateverTheUserSet) {
  const UserPreferences off{.user_id = 5,
                            .rules = {rule(5, "removed", Channel::in_app, std::nullopt, false),
                                      rule(5, "removed", Channel::in_app, 7, false)},
                            .muted = {Channel::in_app}};
  EXPECT_TRUE(channel_enabled(critical, off, Channel::in_app, 7));
  EXPECT_TRUE(channel_enabled(critical, off, Channel::in_app, std::nullopt));
}

TEST(ChannelEnabled, LetsACriticalKindBeTurnedOffOnOtherChannels) {
  const UserPreferences off{.user_id = 5,
                            .rules = {rule(5, "removed", Channel::email, std::nullopt, false)},
                            .muted = {Channel::discord}};
  EXPECT_FALSE(channel_enabled(critical, off, Channel::email, 7));
  EXPECT_FALSE(channel_enabled(critical, off, Channel::discord, 7));
}

TEST(ChannelEnabled, LetsARuleForTheOrganizationBeatARuleForAll) {
  const UserPreferences preferences{.user_id = 5,
                                    .rules = {rule(5, "news", Channel::discord, 7, false),
                                              rule(5, "news", Channel::discord, std::nullopt, true),
                                              rule(5, "news", Channel::email, std::nullopt, false),
                                              rule(5, "news", Channel::email, 7, true)}};
  EXPECT_FALSE(channel_enabled(news, preferences, Channel::discord, 7));
  EXPECT_TRUE(channel_enabled(news, preferences, Channel::discord, 8));
  EXPECT_TRUE(channel_enabled(news, preferences, Channel::discord, std::nullopt));
  EXPECT_TRUE(channel_enabled(news, preferences, Channel::email, 7));
  EXPECT_FALSE(channel_enabled(news, preferences, Channel::email, 8));
}

TEST(ChannelEnabled, LetsARuleForAllBeatTheDefault) {
  const UserPreferences preferences{
      .user_id = 5,
      .rules = {rule(5, "personal", Channel::in_app, std::nullopt, false),
                rule(5, "news", Channel::in_app, std::nullopt, true)}};
  EXPECT_FALSE(channel_enabled(personal, preferences, Channel::in_app, 7));
  EXPECT_TRUE(channel_enabled(news, preferences, Channel::in_app, 7));
}

TEST(ChannelEnabled, IgnoresRulesOfOtherKindsAndChannels) {
  const UserPreferences preferences{
      .user_id = 5,
      .rules = {rule(5, "news", Channel::discord, std::nullopt, true),
                rule(5, "personal", Channel::email, std::nullopt, true)}};
  EXPECT_FALSE(channel_enabled(news, preferences, Channel::email, 7));
  EXPECT_FALSE(channel_enabled(personal, preferences, Channel::discord, 7));
}

TEST(ChannelEnabled, TakesTheLaterOfTwoRulesForTheSameScope) {
  const UserPreferences preferences{.user_id = 5,
                                    .rules = {rule(5, "news", Channel::email, 7, true),
                                              rule(5, "news", Channel::email, 7, false)}};
  EXPECT_FALSE(channel_enabled(news, preferences, Channel::email, 7));
}

// --- route_event ---

class RouteEvent : public ::testing::Test {
 protected:
  void SetUp() override {
    base.users[5] = UserProfile{.user_id = 5,
                                .discord_id = 111111111111111111,
                                .discord_username = "alice",
                                .email = "alice@example.org"};
    base.users[6] =
        UserProfile{.user_id = 6, .discord_id = 222222222222222222, .email = "bob@example.org"};
    base.organization_members[7] = {5, 6};
  }

  std::expected<RoutedEvent, Error> route(const StoredEvent& event) {
    return route_event(event, rules, overlay);
  }

  void notify(std::vector<Notice> notices) {
    rules.make_notices = [notices](const StoredEvent&, Directory&) { return notices; };
  }

  void enable_all(std::int64_t user, const std::string& kind) {
    for (const Channel channel : {Channel::in_app, Channel::discord, Channel::email}) {
      base.user_preferences[user].user_id = user;
      base.user_preferences[user].rules.push_back(rule(user, kind, channel, std::nullopt, true));
    }
  }

  MemoryDirectory base;
  DirectoryOverlay overlay{base};
  TestRules rules;
};

TEST_F(RouteEvent, SendsOneMessagePerChannelToAUserWhoIsNamedAndSubscribed) {
  enable_all(5, "news");
  notify({Notice{.kind = "news",
                 .audience = {.users = {5, 5}, .subscribers_of = 7},
                 .message = message("Spring Cup started")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_EQ(inbox_count(*routed, 5), 1u);
  EXPECT_EQ(count(*routed, Channel::discord, "user:5"), 1u);
  EXPECT_EQ(count(*routed, Channel::email, "user:5"), 1u);
  EXPECT_EQ(routed->deliveries.size(), 2u);
}

TEST_F(RouteEvent, SendsOneMessagePerChannelWhenTwoNoticesOfTheSameKindMatch) {
  enable_all(5, "personal");
  notify({Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("first")},
          Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("second")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  ASSERT_EQ(routed->inbox.size(), 1u);
  EXPECT_EQ(routed->inbox[0].title, "first");
  EXPECT_EQ(count(*routed, Channel::discord, "user:5"), 1u);
  EXPECT_EQ(count(*routed, Channel::email, "user:5"), 1u);
  EXPECT_EQ(payload(routed->deliveries[0]).at("title").as_string(), "first");
}

TEST_F(RouteEvent, SendsToSubscribersOnlyTheChannelsTheyTurnedOn) {
  base.user_preferences[6] =
      UserPreferences{.user_id = 6, .rules = {rule(6, "news", Channel::email, 7, true)}};
  notify({Notice{.kind = "news",
                 .audience = {.subscribers_of = 7},
                 .message = message("Spring Cup started")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  // 5 turned nothing on: "news" has no default channel, so they are no subscriber.
  EXPECT_EQ(inbox_count(*routed, 5), 0u);
  EXPECT_EQ(count(*routed, Channel::email, "user:5"), 0u);
  EXPECT_TRUE(routed->inbox.empty());
  ASSERT_EQ(routed->deliveries.size(), 1u);
  EXPECT_EQ(routed->deliveries[0].recipient, "user:6");
  EXPECT_EQ(routed->deliveries[0].channel, Channel::email);
  EXPECT_EQ(routed->deliveries[0].user_id, 6);
  EXPECT_EQ(routed->deliveries[0].organization_id, 7);
  EXPECT_EQ(routed->deliveries[0].kind, "news");
}

TEST_F(RouteEvent, SendsNothingToADeletedUser) {
  enable_all(5, "personal");
  enable_all(5, "news");
  base.users[5].deleted = true;
  notify({Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("a")},
          Notice{.kind = "news", .audience = {.subscribers_of = 7}, .message = message("b")},
          Notice{.kind = "removed", .audience = {.users = {5}}, .message = message("c")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_TRUE(routed->inbox.empty());
  EXPECT_TRUE(routed->deliveries.empty());
}

TEST_F(RouteEvent, GivesAUserUnknownToTheDirectoryOnlyAnInboxItem) {
  enable_all(99, "personal");
  base.organization_members[7].push_back(98);
  enable_all(98, "news");
  notify({Notice{.kind = "personal", .audience = {.users = {99}}, .message = message("a")},
          Notice{.kind = "news", .audience = {.subscribers_of = 7}, .message = message("b")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_EQ(inbox_count(*routed, 99), 1u);
  // An unknown member is no subscriber: nothing says who they are.
  EXPECT_EQ(inbox_count(*routed, 98), 0u);
  EXPECT_TRUE(routed->deliveries.empty());
}

TEST_F(RouteEvent, SendsNoDiscordMessageToAUserWithoutADiscordId) {
  base.users[5].discord_id.reset();
  enable_all(5, "personal");
  notify({Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("a")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_EQ(count(*routed, Channel::discord, "user:5"), 0u);
  EXPECT_EQ(count(*routed, Channel::email, "user:5"), 1u);
  EXPECT_EQ(inbox_count(*routed, 5), 1u);
}

TEST_F(RouteEvent, SendsNoEmailToAUserWithoutAnAddress) {
  base.users[5].email.reset();
  enable_all(5, "personal");
  notify({Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("a")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_EQ(count(*routed, Channel::email, "user:5"), 0u);
  EXPECT_EQ(count(*routed, Channel::discord, "user:5"), 1u);
}

TEST_F(RouteEvent, SendsOnlyTheDefaultChannelsToAUserWhoSetNothing) {
  notify({Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("a")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_EQ(inbox_count(*routed, 5), 1u);
  EXPECT_TRUE(routed->deliveries.empty());
}

TEST_F(RouteEvent, FillsTheInboxItemFromTheEventAndTheMessage) {
  notify({Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("a")}});
  const StoredEvent event = tournament_started(41, 7);
  const auto routed = route(event);
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  ASSERT_EQ(routed->inbox.size(), 1u);
  const NewInboxItem& item = routed->inbox[0];
  EXPECT_EQ(item.kind, "personal");
  EXPECT_EQ(item.event_id, event.event->event_id);
  EXPECT_EQ(item.position, 41);
  EXPECT_EQ(item.organization_id, 7);
  EXPECT_EQ(item.title, "a");
  EXPECT_EQ(item.body, "a (text)");
  EXPECT_EQ(item.link, "/tournaments/12");
  EXPECT_EQ(item.created_at, event.event->timestamp);
  EXPECT_EQ(routed->position, 41);
  EXPECT_EQ(routed->event_id, event.event->event_id);
}

TEST_F(RouteEvent, BuildsDiscordAndEmailPayloadsWithTheDocumentedMembers) {
  enable_all(5, "personal");
  notify(
      {Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("Hi \"there\"")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  ASSERT_EQ(routed->deliveries.size(), 2u);
  for (const NewDelivery& delivery : routed->deliveries) {
    const boost::json::object body = payload(delivery);
    EXPECT_EQ(body.at("title").as_string(), "Hi \"there\"");
    EXPECT_EQ(body.at("link").as_string(), "/tournaments/12");
    if (delivery.channel == Channel::discord) {
      EXPECT_EQ(body.size(), 4u);
      // A snowflake does not fit a double: it travels as text.
      EXPECT_EQ(body.at("discord_id").as_string(), "111111111111111111");
      EXPECT_EQ(body.at("markdown").as_string(), "Hi \"there\" (markdown)");
    } else {
      ASSERT_EQ(delivery.channel, Channel::email);
      EXPECT_EQ(body.size(), 6u);
      EXPECT_EQ(body.at("to").as_string(), "alice@example.org");
      EXPECT_EQ(body.at("to_name").as_string(), "alice");
      EXPECT_EQ(body.at("text").as_string(), "Hi \"there\" (text)");
      EXPECT_EQ(body.at("html").as_string(), "<p>Hi \"there\"</p>");
    }
  }
}

TEST_F(RouteEvent, LeavesOutTheEmailNameOfAUserWithoutOne) {
  enable_all(6, "personal");
  notify({Notice{.kind = "personal", .audience = {.users = {6}}, .message = message("a")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  ASSERT_EQ(count(*routed, Channel::email, "user:6"), 1u);
  const auto email = std::ranges::find(routed->deliveries, Channel::email, &NewDelivery::channel);
  EXPECT_FALSE(payload(*email).contains("to_name"));
}

TEST_F(RouteEvent, SendsOneEmailToAnInvitedAddress) {
  notify({Notice{.kind = "personal",
                 .audience = {.email = "carol@example.org"},
                 .message = message("You are invited")},
          Notice{.kind = "personal",
                 .audience = {.email = "carol@example.org"},
                 .message = message("again")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  ASSERT_EQ(routed->deliveries.size(), 1u);
  const NewDelivery& delivery = routed->deliveries[0];
  EXPECT_EQ(delivery.recipient, "email:carol@example.org");
  EXPECT_EQ(delivery.channel, Channel::email);
  EXPECT_FALSE(delivery.user_id.has_value());
  const boost::json::object body = payload(delivery);
  EXPECT_EQ(body.at("to").as_string(), "carol@example.org");
  EXPECT_EQ(body.at("title").as_string(), "You are invited");
  EXPECT_FALSE(body.contains("to_name"));
  EXPECT_TRUE(routed->inbox.empty());
}

TEST_F(RouteEvent, SendsNoEmailToAnInvitedAddressThatIsNoAddress) {
  std::vector<Notice> notices;
  for (const std::string& bad : std::vector<std::string>{
           "", "carol", "@example.org", "carol@", "a@b@c", "carol@example.org\r\nBcc: x@evil.test",
           "carol@example.org, dave@example.org", "carol @example.org",
           std::string(250, 'a') + "@example.org"}) {
    notices.push_back(
        Notice{.kind = "personal", .audience = {.email = bad}, .message = message("a")});
  }
  notify(notices);
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_TRUE(routed->deliveries.empty());
}

TEST_F(RouteEvent, PostsAnAnnouncementToTheOrganizationsDiscordChannel) {
  base.announcements[7] = {.organization_id = 7,
                           .webhook_url = "https://discord.com/api/webhooks/1/token"};
  notify({Notice{.kind = "news",
                 .audience = {.subscribers_of = 7, .announce_to = 7},
                 .message = message("Spring Cup started")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  ASSERT_EQ(routed->deliveries.size(), 1u);
  const NewDelivery& delivery = routed->deliveries[0];
  EXPECT_EQ(delivery.channel, Channel::discord_channel);
  EXPECT_EQ(delivery.recipient, "org:7");
  EXPECT_EQ(delivery.organization_id, 7);
  EXPECT_FALSE(delivery.user_id.has_value());
  const boost::json::object body = payload(delivery);
  EXPECT_EQ(body.size(), 4u);
  EXPECT_EQ(body.at("webhook_url").as_string(), "https://discord.com/api/webhooks/1/token");
  EXPECT_EQ(body.at("markdown").as_string(), "Spring Cup started (markdown)");
}

TEST_F(RouteEvent, PostsNoAnnouncementForAnOrganizationWithoutAChannel) {
  notify({Notice{.kind = "news", .audience = {.announce_to = 7}, .message = message("a")}});
  const auto routed = route(tournament_started(1, 7));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_TRUE(routed->deliveries.empty());
}

TEST_F(RouteEvent, SendsTheEventToTheOrganizationsEndpointsThatWantItsType) {
  base.organization_endpoints[7] = {
      WebhookEndpoint{.id = 1, .organization_id = 7, .url = "https://a.example/hook"},
      WebhookEndpoint{.id = 2,
                      .organization_id = 7,
                      .url = "https://b.example/hook",
                      .event_types = {"TournamentStartedEvent", "UserCreatedEvent"}},
      WebhookEndpoint{.id = 3,
                      .organization_id = 7,
                      .url = "https://c.example/hook",
                      .event_types = {"TournamentEndedEvent"}},
      WebhookEndpoint{
          .id = 4, .organization_id = 7, .url = "https://d.example/hook", .active = false}};
  const StoredEvent event = tournament_started(1, 7);
  const auto routed = route(event);
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  ASSERT_EQ(routed->deliveries.size(), 2u);
  EXPECT_EQ(routed->deliveries[0].recipient, "endpoint:1");
  EXPECT_EQ(routed->deliveries[1].recipient, "endpoint:2");
  for (const NewDelivery& delivery : routed->deliveries) {
    EXPECT_EQ(delivery.channel, Channel::webhook);
    EXPECT_EQ(delivery.kind, "TournamentStartedEvent");
    EXPECT_EQ(delivery.organization_id, 7);
    const boost::json::object body = payload(delivery);
    EXPECT_EQ(body.size(), 2u);
    EXPECT_EQ(body.at("event_type").as_string(), "TournamentStartedEvent");
    // The body is the event's wire form, exactly as the HTTP API encodes it.
    EXPECT_EQ(body.at("body").as_string(), encode_event(event.event));
    const boost::json::object wire = boost::json::parse(body.at("body").as_string()).as_object();
    EXPECT_EQ(wire.at("tournament_name").as_string(), "Spring Cup");
    EXPECT_EQ(wire.at("event_id").as_string(), event.event->event_id.to_string());
  }
}

TEST_F(RouteEvent, SendsNoWebhookForAnEventWithoutAnOrganization) {
  base.organization_endpoints[7] = {WebhookEndpoint{.id = 1, .organization_id = 7}};
  const auto routed = route(tournament_started(1, std::nullopt));
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_TRUE(routed->deliveries.empty());
}

TEST_F(RouteEvent, AppliesTheEventsChangesBeforeAskingForNotices) {
  rules.changes = [](const StoredEvent& event) {
    std::vector<DirectoryChange> changes;
    if (event.position == 1) {
      changes.push_back({.op = DirectoryChange::Op::upsert_user,
                         .user_id = 8,
                         .discord_id = 333333333333333333,
                         .discord_username = "carol"});
      changes.push_back(
          {.op = DirectoryChange::Op::add_member, .user_id = 8, .organization_id = 7});
    }
    return changes;
  };
  std::optional<std::string> name_seen;
  rules.make_notices = [&](const StoredEvent& event, Directory& directory) {
    if (auto user = directory.user(8); user && *user) name_seen = (*user)->discord_username;
    if (event.position != 2) return std::vector<Notice>{};
    return std::vector<Notice>{
        Notice{.kind = "news", .audience = {.subscribers_of = 7}, .message = message("a")}};
  };
  base.user_preferences[8] =
      UserPreferences{.user_id = 8, .rules = {rule(8, "news", Channel::discord, 7, true)}};

  const auto first = route(tournament_started(1, 7));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(name_seen, "carol");
  ASSERT_EQ(first->changes.size(), 2u);
  EXPECT_EQ(first->changes[0].op, DirectoryChange::Op::upsert_user);
  EXPECT_TRUE(first->deliveries.empty());

  // The store has not been written: only the overlay knows carol, and that she is a member.
  const auto second = route(tournament_started(2, 7));
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_TRUE(second->changes.empty());
  ASSERT_EQ(second->deliveries.size(), 1u);
  EXPECT_EQ(second->deliveries[0].recipient, "user:8");
  EXPECT_EQ(payload(second->deliveries[0]).at("discord_id").as_string(), "333333333333333333");
}

TEST_F(RouteEvent, RefusesANoticeOfAKindTheRulesDoNotList) {
  notify({Notice{.kind = "unheard_of", .audience = {.users = {5}}, .message = message("a")}});
  const auto routed = route(tournament_started(3, 7));
  ASSERT_FALSE(routed.has_value());
  EXPECT_EQ(routed.error().code, ErrorCode::internal);
  EXPECT_NE(routed.error().message.find("'unheard_of'"), std::string::npos);
  EXPECT_NE(routed.error().message.find("position 3"), std::string::npos);
}

TEST_F(RouteEvent, ReturnsTheDirectorysError) {
  notify({Notice{.kind = "personal", .audience = {.users = {5}}, .message = message("a")}});
  base.failure = Error{.code = ErrorCode::io, .message = "database is locked"};
  const auto routed = route(tournament_started(1, 7));
  ASSERT_FALSE(routed.has_value());
  EXPECT_EQ(routed.error().code, ErrorCode::io);
  EXPECT_EQ(routed.error().message, "database is locked");
}

// --- DirectoryOverlay ---

TEST(DirectoryOverlay, ReadsThroughToItsBaseOnceAndCaches) {
  MemoryDirectory base;
  base.users[5] = UserProfile{.user_id = 5, .discord_username = "alice"};
  DirectoryOverlay overlay(base);
  ASSERT_EQ((*overlay.user(5))->discord_username, "alice");
  base.users[5].discord_username = "changed behind its back";
  const int reads = base.reads;
  EXPECT_EQ((*overlay.user(5))->discord_username, "alice");
  EXPECT_EQ(base.reads, reads);
}

TEST(DirectoryOverlay, KeepsWhatTheBaseKnowsWhenAnUpsertCameFirst) {
  MemoryDirectory base;
  base.users[5] = UserProfile{.user_id = 5, .discord_id = 1, .email = "alice@example.org"};
  DirectoryOverlay overlay(base);
  overlay.apply({.op = DirectoryChange::Op::upsert_user, .user_id = 5, .discord_username = "al"});
  const auto user = overlay.user(5);
  ASSERT_TRUE(user.has_value() && user->has_value());
  EXPECT_EQ((*user)->discord_id, 1);
  EXPECT_EQ((*user)->discord_username, "al");
  EXPECT_EQ((*user)->email, "alice@example.org");
}

TEST(DirectoryOverlay, DeletesAndRestoresUsers) {
  MemoryDirectory base;
  DirectoryOverlay overlay(base);
  overlay.apply({.op = DirectoryChange::Op::upsert_user, .user_id = 5, .discord_id = 9});
  overlay.apply({.op = DirectoryChange::Op::delete_user, .user_id = 5});
  ASSERT_TRUE((*overlay.user(5))->deleted);
  overlay.apply({.op = DirectoryChange::Op::upsert_user, .user_id = 5});
  EXPECT_FALSE((*overlay.user(5))->deleted);
  EXPECT_EQ((*overlay.user(5))->discord_id, 9);
  EXPECT_FALSE(overlay.user(6)->has_value());
}

TEST(DirectoryOverlay, AddsAndRemovesMembersBeforeAndAfterReadingThem) {
  MemoryDirectory base;
  base.organization_members[7] = {1, 2, 3};
  DirectoryOverlay overlay(base);
  overlay.apply({.op = DirectoryChange::Op::remove_member, .user_id = 2, .organization_id = 7});
  overlay.apply({.op = DirectoryChange::Op::add_member, .user_id = 9, .organization_id = 7});
  EXPECT_EQ(*overlay.members(7), (std::vector<std::int64_t>{1, 3, 9}));
  overlay.apply({.op = DirectoryChange::Op::add_member, .user_id = 4, .organization_id = 7});
  overlay.apply({.op = DirectoryChange::Op::add_member, .user_id = 4, .organization_id = 7});
  overlay.apply({.op = DirectoryChange::Op::remove_member, .user_id = 1, .organization_id = 7});
  EXPECT_EQ(*overlay.members(7), (std::vector<std::int64_t>{3, 4, 9}));
  EXPECT_TRUE(overlay.members(8)->empty());
}

TEST(DirectoryOverlay, ReplacesAndRemovesGroups) {
  MemoryDirectory base;
  base.groups["match:1"] = {1, 2};
  DirectoryOverlay overlay(base);
  EXPECT_EQ(*overlay.group("match:1"), (std::vector<std::int64_t>{1, 2}));
  overlay.apply({.op = DirectoryChange::Op::set_group, .group = "match:1", .members = {4, 3, 4}});
  EXPECT_EQ(*overlay.group("match:1"), (std::vector<std::int64_t>{3, 4}));
  overlay.apply({.op = DirectoryChange::Op::set_group, .group = "match:1"});
  EXPECT_TRUE(overlay.group("match:1")->empty());
}

TEST(DirectoryOverlay, PassesOnTheBasesErrors) {
  MemoryDirectory base;
  base.failure = Error{.code = ErrorCode::io, .message = "connection lost"};
  DirectoryOverlay overlay(base);
  EXPECT_EQ(overlay.user(1).error().code, ErrorCode::io);
  EXPECT_EQ(overlay.members(1).error().code, ErrorCode::io);
  EXPECT_EQ(overlay.group("g").error().code, ErrorCode::io);
  EXPECT_EQ(overlay.preferences(1).error().code, ErrorCode::io);
  EXPECT_EQ(overlay.endpoints(1).error().code, ErrorCode::io);
  EXPECT_EQ(overlay.announcement_channel(1).error().code, ErrorCode::io);
}

}  // namespace
}  // namespace herald::notify
