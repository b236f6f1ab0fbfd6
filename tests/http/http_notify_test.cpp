// The notification endpoints (docs/http-api.md, "Notifications") on a real server on loopback:
// every endpoint's success path, the authorization matrix, /me/, validation of every body, and
// the inbox stream. The notification store is the real one, on the server's SQLite file.

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "herald/notify/notification_store.hpp"
#include "http_test_support.hpp"

namespace herald::testing {
namespace {

using notify::Channel;
namespace json = boost::json;

/// Three kinds, one critical.
class TestRules final : public notify::NotificationRules {
 public:
  TestRules() {
    kinds_.push_back({.name = "race_approved",
                      .description = "Your race was approved",
                      .critical = false,
                      .default_channels = {Channel::in_app, Channel::email}});
    kinds_.push_back({.name = "member_removed",
                      .description = "You were removed from an organization",
                      .critical = true,
                      .default_channels = {Channel::in_app}});
    kinds_.push_back({.name = "tournament_started",
                      .description = "A tournament started",
                      .critical = false,
                      .default_channels = {}});
  }
  std::span<const notify::KindInfo> kinds() const override { return kinds_; }
  std::vector<notify::DirectoryChange> directory_changes(const StoredEvent&) const override {
    return {};
  }
  std::expected<std::vector<notify::Notice>, Error> notices(const StoredEvent&,
                                                            notify::Directory&) const override {
    return std::vector<notify::Notice>{};
  }

 private:
  std::vector<notify::KindInfo> kinds_;
};

std::string str(const json::value& value) { return std::string(value.as_string()); }

/// Heartbeats every 200 ms: an SSE reader's wait for "nothing more" ends at the next one.
http::ServerOptions quick_heartbeat() {
  http::ServerOptions options;
  options.heartbeat = std::chrono::milliseconds(200);
  return options;
}

class NotifyApi : public ::testing::Test {
 protected:
  NotifyApi()
      : server_(quick_heartbeat(), {}, [this](EventStore&, http::ServerServices& services) {
          // Opened once the event store is (its checkpoint table is shared), on the same file.
          if (!store_) {
            auto opened = notify::open_notification_store(server_.db_path().string());
            if (!opened) throw std::runtime_error(opened.error().message);
            store_ = std::move(*opened);
          }
          services.notifications = store_.get();
          services.notification_rules = &rules_;
        }) {
    user42_ = server_.make_token("user-42", Scope::read, std::nullopt, 42);
    user43_ = server_.make_token("user-43", Scope::read, std::nullopt, 43);
    notifier_ = server_.make_token("notifier", Scope::notify);
    bound_notifier_ =
        server_.make_token("bound-notifier", Scope::notify | Scope::admin, std::nullopt, 42);
    org7_notifier_ = server_.make_token("org7-notifier", Scope::notify, 7);
  }

  /// Writes `count` inbox items for `user` through routing, as the notification consumer does;
  /// returns their ids.
  std::vector<std::int64_t> add_inbox(std::int64_t user, int count,
                                      const std::string& kind = "race_approved") {
    std::vector<std::int64_t> ids;
    for (int i = 0; i < count; ++i) {
      notify::RoutedEvent routed{.position = ++position_, .event_id = EventId::generate()};
      routed.inbox.push_back(notify::NewInboxItem{.user_id = user,
                                                  .kind = kind,
                                                  .event_id = routed.event_id,
                                                  .position = routed.position,
                                                  .organization_id = 7,
                                                  .title = "Race " + std::to_string(position_),
                                                  .body = "Your race was approved.",
                                                  .link = "/races/1",
                                                  .created_at = herald::now()});
      auto applied = store().apply_routing(std::span(&routed, 1), "notifications");
      EXPECT_TRUE(applied) << applied.error().message;
      auto head = store().inbox_head();
      EXPECT_TRUE(head);
      ids.push_back(head.value_or(0));
    }
    return ids;
  }

  /// A delivery by email to `user` of organization `organization`, left with `outcome` after
  /// one attempt (or pending when nullopt); returns its id.
  std::int64_t add_delivery(std::int64_t user, std::int64_t organization,
                            std::optional<notify::DeliveryStatus> outcome) {
    notify::RoutedEvent routed{.position = ++position_, .event_id = EventId::generate()};
    routed.deliveries.push_back(notify::NewDelivery{
        .event_id = routed.event_id,
        .position = routed.position,
        .channel = Channel::email,
        .recipient = "user:" + std::to_string(user),
        .user_id = user,
        .organization_id = organization,
        .kind = "race_approved",
        .payload = R"({"to":"a@example.org","title":"t","text":"x","html":"x","link":""})"});
    EXPECT_TRUE(store().apply_routing(std::span(&routed, 1), "notifications"));
    auto listed = store().list_deliveries({.event_id = routed.event_id});
    EXPECT_TRUE(listed && listed->size() == 1);
    const std::int64_t id = listed && !listed->empty() ? listed->front().id : 0;
    if (outcome) {
      (void)store().claim_due("test-worker", herald::now(), std::chrono::seconds(60), 100);
      auto finished = store().finish_attempt(id, "test-worker",
                                             {.status = *outcome,
                                              .next_attempt_at = herald::now(),
                                              .status_code = 550,
                                              .error = "mailbox unavailable",
                                              .started_at = herald::now(),
                                              .duration_us = 1200,
                                              .disable_endpoint = std::nullopt});
      EXPECT_TRUE(finished) << finished.error().message;
    }
    return id;
  }

  HttpReply send(bhttp::verb method, const std::string& target, const std::string& token,
                 std::string body = {}) {
    return client_.send(method, target, token, std::move(body));
  }
  HttpReply get(const std::string& target, const std::string& token) {
    return client_.get(target, token);
  }

  notify::NotificationStore& store() { return *store_; }

  std::unique_ptr<notify::NotificationStore> store_;
  TestRules rules_;
  TestServer server_;
  HttpClient client_{server_.port()};
  std::string user42_, user43_, notifier_, org7_notifier_, bound_notifier_;
  std::int64_t position_ = 0;
};

// --- kinds ---

TEST_F(NotifyApi, KindsListEveryKindWithItsDefaultsAndEveryChannelForAnyValidToken) {
  for (const std::string& token : {user42_, server_.tokens().read, server_.tokens().ingest}) {
    const HttpReply reply = get("/api/v1/notification-kinds", token);
    ASSERT_EQ(reply.status, 200U) << reply.body;
    const json::array& kinds = reply.json().at("kinds").as_array();
    ASSERT_EQ(kinds.size(), 3U);
    EXPECT_EQ(str(kinds[0].at("name")), "race_approved");
    EXPECT_EQ(str(kinds[0].at("description")), "Your race was approved");
    EXPECT_EQ(kinds[0].at("critical").as_bool(), false);
    EXPECT_EQ(json::serialize(kinds[0].at("default_channels")), R"(["in_app","email"])");
    EXPECT_EQ(kinds[1].at("critical").as_bool(), true);
    EXPECT_EQ(json::serialize(reply.json().at("channels")),
              R"(["in_app","discord","email","webhook","discord_channel"])");
  }
  EXPECT_EQ(get("/api/v1/notification-kinds", "").status, 401U);
}

// --- preferences and email ---

TEST_F(NotifyApi, PreferencesPutThenGetReturnTheStoredRulesAndMutes) {
  const HttpReply empty = get("/api/v1/users/42/preferences", user42_);
  ASSERT_EQ(empty.status, 200U) << empty.body;
  EXPECT_EQ(json::serialize(empty.json()), R"({"user_id":42,"rules":[],"muted":[]})");

  const std::string body =
      R"({"user_id":42,"rules":[{"kind":"race_approved","channel":"email","organization_id":7,"enabled":false},)"
      R"({"kind":"tournament_started","channel":"discord","organization_id":null,"enabled":true}],"muted":["email"]})";
  const HttpReply put = send(bhttp::verb::put, "/api/v1/users/42/preferences", user42_, body);
  ASSERT_EQ(put.status, 200U) << put.body;
  EXPECT_EQ(json::serialize(put.json()), body);
  const HttpReply got = get("/api/v1/users/42/preferences", user42_);
  ASSERT_EQ(got.status, 200U);
  EXPECT_EQ(json::serialize(got.json()), body);
  // user_id may be left out; organization_id too.
  const HttpReply again =
      send(bhttp::verb::put, "/api/v1/users/42/preferences", user42_,
           R"({"rules":[{"kind":"race_approved","channel":"in_app","enabled":false}]})");
  ASSERT_EQ(again.status, 200U) << again.body;
  EXPECT_EQ(
      json::serialize(again.json()),
      R"({"user_id":42,"rules":[{"kind":"race_approved","channel":"in_app","organization_id":null,"enabled":false}],"muted":[]})");
}

TEST_F(NotifyApi,
       PreferencesRefuseUnknownKindsUnknownChannelsAndACriticalKindOffInAppNamingTheField) {
  struct Case {
    std::string body;
    std::string field;
  };
  const std::string ok = R"({"kind":"race_approved","channel":"email","enabled":true})";
  const std::string ok_discord = R"({"kind":"race_approved","channel":"discord","enabled":true})";
  const std::string ok_in_app = R"({"kind":"race_approved","channel":"in_app","enabled":true})";
  const std::vector<Case> cases = {
      {R"({"rules":[)" + ok + "," + ok_discord + "," + ok_in_app + "," +
           R"({"kind":"no_such_kind","channel":"email","enabled":true}]})",
       "rules[3].kind"},
      {R"({"rules":[{"kind":"race_approved","channel":"pigeon","enabled":true}]})",
       "rules[0].channel"},
      {R"({"rules":[{"kind":"member_removed","channel":"in_app","enabled":false}]})",
       "rules[0].enabled"},
      {R"({"rules":[{"kind":"race_approved","channel":"email"}]})", "rules[0].enabled"},
      {R"({"rules":[{"kind":"race_approved","channel":"email","enabled":"yes"}]})",
       "rules[0].enabled"},
      {R"({"rules":[{"kind":"race_approved","channel":"email","enabled":true,"colour":1}]})",
       "rules[0].colour"},
      {R"({"rules":[)" + ok + "," + ok + "]}", "rules[1]"},
      {R"({"rules":[],"muted":["smoke"]})", "muted[0]"},
      {R"({"rules":{}})", "rules"},
      {R"({"muted":[]})", "rules"},
      {R"({"user_id":43,"rules":[]})", "user_id"},
  };
  for (const Case& c : cases) {
    const HttpReply reply = send(bhttp::verb::put, "/api/v1/users/42/preferences", user42_, c.body);
    EXPECT_EQ(reply.status, 400U) << c.body << " → " << reply.body;
    EXPECT_EQ(str(reply.json().at("error").at("field")), c.field) << c.body;
  }
  // Nothing was stored, and a critical kind may be turned on in-app and off elsewhere.
  EXPECT_EQ(json::serialize(get("/api/v1/users/42/preferences", user42_).json().at("rules")), "[]");
  const HttpReply fine = send(
      bhttp::verb::put, "/api/v1/users/42/preferences", user42_,
      R"({"rules":[{"kind":"member_removed","channel":"email","enabled":false}],"muted":["in_app"]})");
  EXPECT_EQ(fine.status, 200U) << fine.body;
}

TEST_F(NotifyApi, EmailIsSetAndClearedAndABadAddressIsRefused) {
  HttpReply set =
      send(bhttp::verb::put, "/api/v1/users/42/email", user42_, R"({"email":"a@example.org"})");
  ASSERT_EQ(set.status, 200U) << set.body;
  EXPECT_EQ(json::serialize(set.json()), R"({"user_id":42,"email":"a@example.org"})");
  EXPECT_EQ(store().user(42).value()->email, "a@example.org");
  const HttpReply cleared =
      send(bhttp::verb::put, "/api/v1/users/42/email", user42_, R"({"email":null})");
  ASSERT_EQ(cleared.status, 200U) << cleared.body;
  EXPECT_EQ(json::serialize(cleared.json()), R"({"user_id":42,"email":null})");
  EXPECT_EQ(store().user(42).value()->email, std::nullopt);
  for (const char* body : {R"({"email":"not an address"})", R"({"email":7})", R"({})"}) {
    const HttpReply bad = send(bhttp::verb::put, "/api/v1/users/42/email", user42_, body);
    EXPECT_EQ(bad.status, 400U) << body << " → " << bad.body;
    EXPECT_EQ(str(bad.json().at("error").at("field")), "email") << body;
  }
}

// --- the inbox ---

TEST_F(NotifyApi, InboxListsTheUsersItemsNewestFirstInPagesWithTheUnreadCount) {
  const auto ids = add_inbox(42, 5);
  add_inbox(43, 2);
  const HttpReply first = get("/api/v1/users/42/inbox?limit=3", user42_);
  ASSERT_EQ(first.status, 200U) << first.body;
  const json::array& items = first.json().at("items").as_array();
  ASSERT_EQ(items.size(), 3U);
  EXPECT_EQ(items[0].at("id").as_int64(), ids[4]);
  EXPECT_EQ(items[2].at("id").as_int64(), ids[2]);
  EXPECT_EQ(str(items[0].at("kind")), "race_approved");
  EXPECT_EQ(str(items[0].at("body")), "Your race was approved.");
  EXPECT_EQ(str(items[0].at("link")), "/races/1");
  EXPECT_EQ(items[0].at("organization_id").as_int64(), 7);
  EXPECT_TRUE(items[0].at("read_at").is_null());
  EXPECT_EQ(str(items[0].at("created_at")).size(), 27U);  // 2026-01-01T00:00:00.000000Z
  EXPECT_EQ(first.json().at("next_before").as_int64(), ids[2]);
  EXPECT_EQ(first.json().at("unread").as_int64(), 5);
  const HttpReply second =
      get("/api/v1/users/42/inbox?limit=3&before=" + std::to_string(ids[2]), user42_);
  ASSERT_EQ(second.status, 200U);
  ASSERT_EQ(second.json().at("items").as_array().size(), 2U);
  EXPECT_EQ(second.json().at("items").as_array()[1].at("id").as_int64(), ids[0]);
  EXPECT_TRUE(second.json().at("next_before").is_null());
}

TEST_F(NotifyApi, MarkChangesTheNamedItemsOrAllAndAnswersTheUnreadCount) {
  const auto ids = add_inbox(42, 4);
  const auto others = add_inbox(43, 1);
  HttpReply read = send(bhttp::verb::post, "/api/v1/users/42/inbox/mark", user42_,
                        R"({"ids":[)" + std::to_string(ids[0]) + "," + std::to_string(ids[1]) +
                            R"(],"mark":"read"})");
  ASSERT_EQ(read.status, 200U) << read.body;
  EXPECT_EQ(json::serialize(read.json()), R"({"changed":2,"unread":2})");
  EXPECT_EQ(get("/api/v1/users/42/inbox/unread-count", user42_).body, R"({"unread":2})");
  const HttpReply unread_only = get("/api/v1/users/42/inbox?unread=true", user42_);
  EXPECT_EQ(unread_only.json().at("items").as_array().size(), 2U);

  const HttpReply archived =
      send(bhttp::verb::post, "/api/v1/users/42/inbox/mark", user42_, R"({"mark":"archived"})");
  ASSERT_EQ(archived.status, 200U) << archived.body;
  EXPECT_EQ(archived.json().at("changed").as_int64(), 4);
  EXPECT_EQ(archived.json().at("unread").as_int64(), 0);
  EXPECT_EQ(get("/api/v1/users/42/inbox", user42_).json().at("items").as_array().size(), 0U);
  EXPECT_EQ(
      get("/api/v1/users/42/inbox?archived=true", user42_).json().at("items").as_array().size(),
      4U);

  // Another user's item: 404, and nothing changes.
  const HttpReply foreign = send(bhttp::verb::post, "/api/v1/users/42/inbox/mark", user42_,
                                 R"({"ids":[)" + std::to_string(others[0]) + R"(],"mark":"read"})");
  EXPECT_EQ(foreign.status, 404U) << foreign.body;
  EXPECT_EQ(get("/api/v1/users/43/inbox/unread-count", user43_).body, R"({"unread":1})");
}

TEST_F(NotifyApi, MePathsActForTheTokensUserAndNeedAUserBoundToken) {
  add_inbox(42, 2);
  add_inbox(43, 1);
  const HttpReply inbox = get("/api/v1/me/inbox", user42_);
  ASSERT_EQ(inbox.status, 200U) << inbox.body;
  EXPECT_EQ(inbox.json().at("items").as_array().size(), 2U);
  EXPECT_EQ(get("/api/v1/me/inbox/unread-count", user43_).body, R"({"unread":1})");
  const HttpReply email =
      send(bhttp::verb::put, "/api/v1/me/email", user43_, R"({"email":"b@example.org"})");
  EXPECT_EQ(json::serialize(email.json()), R"({"user_id":43,"email":"b@example.org"})");
  EXPECT_EQ(get("/api/v1/me/preferences", user42_).json().at("user_id").as_int64(), 42);

  for (const std::string& token : {notifier_, server_.tokens().admin}) {
    const HttpReply no_user = get("/api/v1/me/inbox", token);
    EXPECT_EQ(no_user.status, 400U) << no_user.body;
    EXPECT_EQ(str(no_user.json().at("error").at("code")), "no_user");
  }
}

// --- authorization ---

TEST_F(NotifyApi, AuthorizationMatrixOfUserBoundNotifyReadOnlyAndMissingTokens) {
  add_inbox(42, 1);
  add_inbox(43, 1);
  const std::int64_t delivery = add_delivery(42, 7, std::nullopt);
  struct Probe {
    bhttp::verb method;
    std::string target;
    std::string body;
  };
  const Probe own_inbox{bhttp::verb::get, "/api/v1/users/42/inbox", ""};
  const Probe other_inbox{bhttp::verb::get, "/api/v1/users/43/inbox", ""};
  const Probe other_prefs{bhttp::verb::put, "/api/v1/users/43/preferences", R"({"rules":[]})"};
  const Probe webhooks{bhttp::verb::get, "/api/v1/webhooks", ""};
  const Probe new_webhook{bhttp::verb::post, "/api/v1/webhooks",
                          R"({"organization_id":7,"url":"https://example.org/hook"})"};
  const Probe deliveries{bhttp::verb::get, "/api/v1/deliveries", ""};
  const Probe one_delivery{bhttp::verb::get, "/api/v1/deliveries/" + std::to_string(delivery), ""};
  const Probe summary{bhttp::verb::get, "/api/v1/deliveries/summary", ""};
  const Probe events{bhttp::verb::get, "/api/v1/events", ""};
  const Probe announce{bhttp::verb::put, "/api/v1/organizations/7/announcement-channel",
                       R"({"webhook_url":null})"};
  struct Expectation {
    std::string who;
    std::string token;
    const Probe* probe;
    unsigned status;
  };
  const std::string& read = server_.tokens().read;
  const std::string& admin = server_.tokens().admin;
  const std::vector<Expectation> matrix = {
      {"user 42", user42_, &own_inbox, 200},
      {"user 42", user42_, &other_inbox, 403},
      {"user 42", user42_, &other_prefs, 403},
      {"user 42", user42_, &webhooks, 403},
      {"user 42", user42_, &new_webhook, 403},
      {"user 42", user42_, &deliveries, 403},
      {"user 42", user42_, &one_delivery, 403},
      {"user 42", user42_, &summary, 403},
      {"user 42", user42_, &announce, 403},
      {"notify", notifier_, &own_inbox, 200},
      {"notify", notifier_, &other_inbox, 200},
      {"notify", notifier_, &other_prefs, 200},
      {"notify", notifier_, &webhooks, 200},
      {"notify", notifier_, &new_webhook, 201},
      {"notify", notifier_, &deliveries, 200},
      {"notify", notifier_, &one_delivery, 200},
      {"notify", notifier_, &summary, 200},
      {"notify", notifier_, &announce, 200},
      {"admin", admin, &other_inbox, 200},
      {"admin", admin, &webhooks, 200},
      {"admin", admin, &deliveries, 200},
      {"read", read, &own_inbox, 403},
      {"read", read, &webhooks, 403},
      {"read", read, &deliveries, 403},
      {"read", read, &new_webhook, 403},
      {"none", "", &own_inbox, 401},
      {"none", "", &webhooks, 401},
      {"none", "", &deliveries, 401},
      {"none", "", &announce, 401},
      // The binding confines a token whatever its scopes.
      {"bound notify", bound_notifier_, &own_inbox, 200},
      {"bound notify", bound_notifier_, &other_inbox, 403},
      {"bound notify", bound_notifier_, &webhooks, 403},
      {"bound notify", bound_notifier_, &deliveries, 403},
      // Other endpoints refuse a user-bound token.
      {"user 42", user42_, &events, 403},
      {"bound notify", bound_notifier_, &events, 403},
      {"read", read, &events, 200},
  };
  for (const Expectation& e : matrix) {
    const HttpReply reply = send(e.probe->method, e.probe->target, e.token, e.probe->body);
    EXPECT_EQ(reply.status, e.status) << e.who << " " << e.probe->target << " → " << reply.body;
    if (e.status == 401) {
      EXPECT_EQ(reply.header("WWW-Authenticate"), "Bearer realm=\"herald\"");
    }
  }
}

TEST_F(NotifyApi, AnOrganizationBoundNotifyTokenSeesOnlyItsOrganization) {
  const std::int64_t ours = add_delivery(42, 7, std::nullopt);
  const std::int64_t theirs = add_delivery(42, 8, std::nullopt);
  const HttpReply listed = get("/api/v1/deliveries", org7_notifier_);
  ASSERT_EQ(listed.status, 200U) << listed.body;
  ASSERT_EQ(listed.json().at("items").as_array().size(), 1U);
  EXPECT_EQ(listed.json().at("items").as_array()[0].at("id").as_int64(), ours);
  EXPECT_EQ(get("/api/v1/deliveries?organization_id=8", org7_notifier_).status, 403U);
  EXPECT_EQ(get("/api/v1/deliveries/" + std::to_string(theirs), org7_notifier_).status, 404U);
  EXPECT_EQ(send(bhttp::verb::post, "/api/v1/webhooks", org7_notifier_,
                 R"({"organization_id":8,"url":"https://example.org/hook"})")
                .status,
            403U);
  const HttpReply foreign = send(bhttp::verb::post, "/api/v1/webhooks", notifier_,
                                 R"({"organization_id":8,"url":"https://example.org/hook"})");
  ASSERT_EQ(foreign.status, 201U);
  EXPECT_EQ(
      get("/api/v1/webhooks/" + std::to_string(foreign.json().at("id").as_int64()), org7_notifier_)
          .status,
      404U);
  EXPECT_EQ(send(bhttp::verb::put, "/api/v1/organizations/8/announcement-channel", org7_notifier_,
                 R"({"webhook_url":null})")
                .status,
            403U);
}

// --- deliveries ---

TEST_F(NotifyApi, DeliveriesAreListedFilteredSummarizedAndShownWithTheirAttempts) {
  // The dead one first: its attempt claims every due delivery.
  const std::int64_t dead = add_delivery(43, 7, notify::DeliveryStatus::dead);
  const std::int64_t pending = add_delivery(42, 7, std::nullopt);
  const HttpReply all = get("/api/v1/deliveries", notifier_);
  ASSERT_EQ(all.status, 200U) << all.body;
  const json::array& items = all.json().at("items").as_array();
  ASSERT_EQ(items.size(), 2U);
  EXPECT_EQ(items[0].at("id").as_int64(), pending);
  EXPECT_EQ(str(items[0].at("status")), "pending");
  EXPECT_EQ(items[1].at("id").as_int64(), dead);
  EXPECT_EQ(str(items[1].at("status")), "dead");
  EXPECT_EQ(str(items[1].at("channel")), "email");
  EXPECT_EQ(str(items[1].at("recipient")), "user:43");
  EXPECT_EQ(items[1].at("attempts").as_int64(), 1);
  EXPECT_EQ(items[1].at("last_status_code").as_int64(), 550);
  EXPECT_EQ(str(items[1].at("last_error")), "mailbox unavailable");
  EXPECT_FALSE(items[0].as_object().contains("payload"));
  EXPECT_TRUE(all.json().at("next_before").is_null());

  const HttpReply filtered =
      get("/api/v1/deliveries?status=pending&channel=email&user_id=42", notifier_);
  ASSERT_EQ(filtered.json().at("items").as_array().size(), 1U);
  EXPECT_EQ(filtered.json().at("items").as_array()[0].at("id").as_int64(), pending);
  const HttpReply paged = get("/api/v1/deliveries?limit=1", notifier_);
  EXPECT_EQ(paged.json().at("next_before").as_int64(), pending);

  const HttpReply summary = get("/api/v1/deliveries/summary", notifier_);
  ASSERT_EQ(summary.status, 200U) << summary.body;
  EXPECT_EQ(summary.json().at("items").as_array().size(), 2U);

  const HttpReply shown = get("/api/v1/deliveries/" + std::to_string(dead), notifier_);
  ASSERT_EQ(shown.status, 200U) << shown.body;
  const json::array& attempts = shown.json().at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 1U);
  EXPECT_EQ(attempts[0].at("attempt").as_int64(), 1);
  EXPECT_EQ(str(attempts[0].at("outcome")), "dead");
  EXPECT_EQ(str(attempts[0].at("error")), "mailbox unavailable");
  EXPECT_EQ(attempts[0].at("duration_us").as_int64(), 1200);
  EXPECT_EQ(get("/api/v1/deliveries/999999", notifier_).status, 404U);
}

TEST_F(NotifyApi, ResendMakesADeadDeliveryPendingAndAnswers409ForOneThatIsNot) {
  const std::int64_t dead = add_delivery(42, 7, notify::DeliveryStatus::dead);
  const std::int64_t pending = add_delivery(42, 7, std::nullopt);
  const std::string resend = "/api/v1/deliveries/" + std::to_string(dead) + "/resend";
  const HttpReply resent = send(bhttp::verb::post, resend, notifier_);
  ASSERT_EQ(resent.status, 200U) << resent.body;
  EXPECT_EQ(str(resent.json().at("status")), "pending");
  EXPECT_EQ(store().get_delivery(dead).value().status, notify::DeliveryStatus::pending);
  // Now pending: a second resend conflicts, as does one of a delivery never tried.
  EXPECT_EQ(send(bhttp::verb::post, resend, notifier_).status, 409U);
  const HttpReply conflict = send(
      bhttp::verb::post, "/api/v1/deliveries/" + std::to_string(pending) + "/resend", notifier_);
  EXPECT_EQ(conflict.status, 409U) << conflict.body;
  EXPECT_EQ(str(conflict.json().at("error").at("code")), "conflict");
  EXPECT_EQ(send(bhttp::verb::post, "/api/v1/deliveries/424242/resend", notifier_).status, 404U);
}

// --- webhooks and announcement channels ---

TEST_F(NotifyApi, WebhooksAreCreatedListedShownDisabledAndRotatedShowingTheSecretOnlyTwice) {
  const HttpReply created = send(
      bhttp::verb::post, "/api/v1/webhooks", notifier_,
      R"({"organization_id":7,"url":"https://example.org/hook","event_types":["TournamentStartedEvent"]})");
  ASSERT_EQ(created.status, 201U) << created.body;
  const std::int64_t id = created.json().at("id").as_int64();
  const std::string secret = str(created.json().at("secret"));
  EXPECT_TRUE(secret.starts_with("whsec_")) << secret;
  EXPECT_EQ(str(created.json().at("secret_hint")), secret.substr(0, 10) + "…");
  EXPECT_EQ(json::serialize(created.json().at("event_types")), R"(["TournamentStartedEvent"])");
  EXPECT_TRUE(created.json().at("active").as_bool());

  const HttpReply listed = get("/api/v1/webhooks?organization_id=7", notifier_);
  ASSERT_EQ(listed.status, 200U) << listed.body;
  ASSERT_EQ(listed.json().at("items").as_array().size(), 1U);
  EXPECT_EQ(listed.body.find(secret), std::string::npos);
  EXPECT_EQ(
      get("/api/v1/webhooks?organization_id=8", notifier_).json().at("items").as_array().size(),
      0U);
  const HttpReply shown = get("/api/v1/webhooks/" + std::to_string(id), notifier_);
  ASSERT_EQ(shown.status, 200U);
  EXPECT_EQ(str(shown.json().at("url")), "https://example.org/hook");
  EXPECT_FALSE(shown.json().as_object().contains("secret"));

  const HttpReply disabled = send(bhttp::verb::patch, "/api/v1/webhooks/" + std::to_string(id),
                                  notifier_, R"({"active":false})");
  ASSERT_EQ(disabled.status, 200U) << disabled.body;
  EXPECT_FALSE(disabled.json().at("active").as_bool());
  EXPECT_FALSE(str(disabled.json().at("disabled_reason")).empty());
  const HttpReply enabled = send(bhttp::verb::patch, "/api/v1/webhooks/" + std::to_string(id),
                                 notifier_, R"({"active":true})");
  EXPECT_TRUE(enabled.json().at("active").as_bool());

  const HttpReply rotated =
      send(bhttp::verb::post, "/api/v1/webhooks/" + std::to_string(id) + "/rotate", notifier_);
  ASSERT_EQ(rotated.status, 200U) << rotated.body;
  const std::string fresh = str(rotated.json().at("secret"));
  EXPECT_TRUE(fresh.starts_with("whsec_"));
  EXPECT_NE(fresh, secret);
  // The old secret keeps signing for 24 hours.
  const auto endpoint = store().get_endpoint(id).value();
  ASSERT_EQ(endpoint.secrets.size(), 2U);
  ASSERT_TRUE(endpoint.secrets[1].expires_at);
  EXPECT_GT(*endpoint.secrets[1].expires_at, herald::now() + std::chrono::hours(23));
  EXPECT_EQ(get("/api/v1/webhooks/31337", notifier_).status, 404U);
}

TEST_F(NotifyApi, AnnouncementChannelIsSetAndCleared) {
  const std::string url = "https://discord.com/api/webhooks/1/abc";
  const HttpReply set = send(bhttp::verb::put, "/api/v1/organizations/7/announcement-channel",
                             notifier_, R"({"webhook_url":")" + url + R"("})");
  ASSERT_EQ(set.status, 200U) << set.body;
  EXPECT_EQ(json::serialize(set.json()), R"({"organization_id":7,"webhook_url":")" + url + R"("})");
  EXPECT_EQ(store().announcement_channel(7).value()->webhook_url, url);
  const HttpReply cleared = send(bhttp::verb::put, "/api/v1/organizations/7/announcement-channel",
                                 notifier_, R"({"webhook_url":null})");
  ASSERT_EQ(cleared.status, 200U) << cleared.body;
  EXPECT_FALSE(store().announcement_channel(7).value());
}

// --- hostile input ---

TEST_F(NotifyApi, MalformedOversizedAndHostileBodiesAreRefusedWithTheirStatusAndTheServerServesOn) {
  add_inbox(42, 1);
  const std::int64_t webhook = [&] {
    const HttpReply created = send(bhttp::verb::post, "/api/v1/webhooks", notifier_,
                                   R"({"organization_id":7,"url":"https://example.org/h"})");
    return created.json().at("id").as_int64();
  }();
  const std::string near_mib(1'000'000, 'a');
  const std::string over_mib((1U << 20) + 10, 'a');
  struct Case {
    bhttp::verb method;
    std::string target;
    std::string body;
    unsigned status;
    std::string field;  // empty: not checked
  };
  const std::string prefs = "/api/v1/users/42/preferences";
  const std::string email = "/api/v1/users/42/email";
  const std::string mark = "/api/v1/users/42/inbox/mark";
  const std::string hooks = "/api/v1/webhooks";
  const std::string hook = "/api/v1/webhooks/" + std::to_string(webhook);
  const std::string announce = "/api/v1/organizations/7/announcement-channel";
  const std::vector<Case> cases = {
      // Not JSON, not an object, empty.
      {bhttp::verb::put, prefs, "{", 400, ""},
      {bhttp::verb::put, prefs, "[]", 400, ""},
      {bhttp::verb::put, prefs, "", 400, ""},
      {bhttp::verb::put, email, "\"a@b\"", 400, ""},
      {bhttp::verb::post, mark, "{\"mark\":\"read\"", 400, ""},
      {bhttp::verb::post, hooks, "nonsense", 400, ""},
      {bhttp::verb::patch, hook, "null", 400, ""},
      {bhttp::verb::put, announce, "{]", 400, ""},
      // Deeply nested.
      {bhttp::verb::put, prefs, std::string(5000, '[') + std::string(5000, ']'), 400, ""},
      // Wrong types.
      {bhttp::verb::put, prefs, R"({"rules":"all"})", 400, "rules"},
      {bhttp::verb::put, email, R"({"email":["a@b"]})", 400, "email"},
      {bhttp::verb::post, mark, R"({"mark":1})", 400, "mark"},
      {bhttp::verb::post, mark, R"({"ids":"1","mark":"read"})", 400, "ids"},
      {bhttp::verb::post, mark, R"({"ids":[],"mark":"read"})", 400, "ids"},
      {bhttp::verb::post, mark, R"({"mark":"burnt"})", 400, "mark"},
      {bhttp::verb::post, hooks, R"({"organization_id":"7","url":"https://e.org"})", 400,
       "organization_id"},
      {bhttp::verb::post, hooks, R"({"organization_id":7,"url":"ftp://e.org"})", 400, "url"},
      {bhttp::verb::post, hooks, R"({"organization_id":7,"url":"https://e.org/a b"})", 400, "url"},
      {bhttp::verb::post, hooks, R"({"organization_id":7})", 400, "url"},
      {bhttp::verb::post, hooks,
       R"({"organization_id":7,"url":"https://e.org","event_types":["Nope"]})", 400,
       "event_types[0]"},
      {bhttp::verb::patch, hook, R"({"active":"no"})", 400, "active"},
      {bhttp::verb::put, announce, R"({"webhook_url":42})", 400, "webhook_url"},
      {bhttp::verb::put, announce, R"x({"webhook_url":"javascript:alert(1)"})x", 400,
       "webhook_url"},
      // 1 MB strings inside the body limit, and a body over it.
      {bhttp::verb::put, email, R"({"email":")" + near_mib + R"("})", 400, "email"},
      {bhttp::verb::post, hooks, R"({"organization_id":7,"url":"https://)" + near_mib + R"("})",
       400, "url"},
      {bhttp::verb::put, prefs,
       R"({"rules":[{"kind":")" + near_mib + R"(","channel":"email","enabled":true}]})", 400,
       "rules[0].kind"},
      {bhttp::verb::post, mark, R"({"mark":")" + near_mib + R"("})", 400, "mark"},
      {bhttp::verb::put, email, R"({"email":")" + over_mib + R"("})", 413, ""},
      // Huge and negative ids.
      {bhttp::verb::post, mark, R"({"ids":[99999999999999999999],"mark":"read"})", 400, "ids[0]"},
      {bhttp::verb::post, mark, R"({"ids":[-1],"mark":"read"})", 400, "ids[0]"},
      {bhttp::verb::post, mark, R"({"ids":[1.5],"mark":"read"})", 400, "ids[0]"},
      {bhttp::verb::post, hooks, R"({"organization_id":1e300,"url":"https://e.org"})", 400,
       "organization_id"},
      {bhttp::verb::put, prefs,
       R"({"rules":[{"kind":"race_approved","channel":"email","organization_id":-7,"enabled":true}]})",
       400, "rules[0].organization_id"},
      {bhttp::verb::put, "/api/v1/users/99999999999999999999999/email", R"({"email":null})", 400,
       "user_id"},
      {bhttp::verb::put, "/api/v1/users/-4/email", R"({"email":null})", 400, "user_id"},
      {bhttp::verb::post, "/api/v1/deliveries/0/resend", "", 400, "delivery_id"},
      {bhttp::verb::put, "/api/v1/organizations/x/announcement-channel", R"({"webhook_url":null})",
       400, "organization_id"},
      // Unknown members are refused, naming them.
      {bhttp::verb::put, email, R"({"email":null,"admin":true})", 400, "admin"},
      {bhttp::verb::post, mark, R"({"mark":"read","user_id":43})", 400, "user_id"},
      {bhttp::verb::post, hooks, R"({"organization_id":7,"url":"https://e.org","secret":"x"})", 400,
       "secret"},
      {bhttp::verb::patch, hook, R"({"active":true,"url":"https://evil.example"})", 400, "url"},
      {bhttp::verb::put, announce, R"({"webhook_url":null,"x":1})", 400, "x"},
      // Control characters in a name come back escaped, never raw.
      {bhttp::verb::put, email, "{\"em\\u0000ail\":null}", 400, ""},
  };
  for (const Case& c : cases) {
    const HttpReply reply = send(c.method, c.target, notifier_, c.body);
    EXPECT_EQ(reply.status, c.status)
        << c.target << " " << c.body.substr(0, 120) << " → " << reply.body.substr(0, 300);
    if (reply.status == 400 || reply.status == 413) {
      ASSERT_TRUE(reply.json().is_object()) << reply.body;
      EXPECT_FALSE(str(reply.json().at("error").at("message")).empty());
      if (!c.field.empty()) {
        EXPECT_EQ(str(reply.json().at("error").at("field")), c.field)
            << c.target << " " << c.body.substr(0, 120);
      }
    }
    // Still serving, on a fresh connection too.
    HttpClient fresh(server_.port());
    ASSERT_EQ(fresh.get("/api/v1/users/42/inbox/unread-count", user42_).status, 200U);
  }
  // Nothing of it was stored.
  EXPECT_EQ(store().user(42).value(), std::nullopt);
  EXPECT_EQ(store().list_endpoints(std::nullopt).value().size(), 1U);
  EXPECT_FALSE(store().announcement_channel(7).value());
}

TEST_F(NotifyApi, BadQueryParametersAndMethodsAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/v1/users/42/inbox?limit=-1", "limit"},
      {"/api/v1/users/42/inbox?limit=0", "limit"},
      {"/api/v1/users/42/inbox?limit=1001", "limit"},
      {"/api/v1/users/42/inbox?before=99999999999999999999", "before"},
      {"/api/v1/users/42/inbox?unread=maybe", "unread"},
      {"/api/v1/users/42/inbox?colour=red", "colour"},
      {"/api/v1/deliveries?status=lost", "status"},
      {"/api/v1/deliveries?channel=fax", "channel"},
      {"/api/v1/deliveries?event_id=nope", "event_id"},
      {"/api/v1/deliveries?limit=-5", "limit"},
      {"/api/v1/webhooks?organization_id=abc", "organization_id"},
  };
  for (const auto& [target, field] : cases) {
    const HttpReply reply = get(target, notifier_);
    EXPECT_EQ(reply.status, 400U) << target << " → " << reply.body;
    EXPECT_EQ(str(reply.json().at("error").at("field")), field) << target;
  }
  const HttpReply wrong = send(bhttp::verb::delete_, "/api/v1/webhooks", notifier_);
  EXPECT_EQ(wrong.status, 405U);
  EXPECT_EQ(wrong.header("Allow"), "GET, POST");
  EXPECT_EQ(send(bhttp::verb::post, "/api/v1/users/42/inbox", user42_, "{}").status, 405U);
  EXPECT_EQ(get("/api/v1/users/42/nothing", user42_).status, 404U);
}

TEST(NotifyApiUnconfigured, NotificationEndpointsAnswer503WhenTheServerHasNoNotificationStore) {
  TestServer server;
  HttpClient client(server.port());
  const std::string& admin = server.tokens().admin;
  for (const char* target : {"/api/v1/notification-kinds", "/api/v1/users/1/inbox",
                             "/api/v1/deliveries", "/api/v1/webhooks"}) {
    const HttpReply reply = client.get(target, admin);
    EXPECT_EQ(reply.status, 503U) << target << " → " << reply.body;
    EXPECT_EQ(std::string(reply.json().at("error").at("code").as_string()),
              "notifications_unavailable");
  }
  EXPECT_EQ(client.get("/api/v1/deliveries", "").status, 401U);
}

// --- the inbox stream ---

TEST_F(NotifyApi, InboxStreamPushesANewItemWithinASecondAndResumesWithoutGapOrDuplicate) {
  const auto before = add_inbox(42, 1);
  std::int64_t first = 0;
  {
    SseReader stream(server_.port(), "/api/v1/users/42/inbox/stream", user42_);
    ASSERT_EQ(stream.status(), 200U);
    EXPECT_EQ(stream.header("Content-Type"), "text/event-stream; charset=utf-8");
    ASSERT_TRUE(stream.wait_for_comment("inbox of user 42", std::chrono::seconds(5)));
    add_inbox(43, 1);  // another user's: never on this stream
    const auto written = std::chrono::steady_clock::now();
    first = add_inbox(42, 1)[0];
    auto event = stream.next(std::chrono::seconds(5));
    ASSERT_TRUE(event);
    EXPECT_LT(std::chrono::steady_clock::now() - written, std::chrono::seconds(1));
    EXPECT_EQ(event->id, std::to_string(first));
    EXPECT_EQ(event->event, "notification");
    const json::value item = json::parse(event->data);
    EXPECT_EQ(item.at("id").as_int64(), first);
    EXPECT_EQ(str(item.at("kind")), "race_approved");
    EXPECT_NE(first, before[0]);
  }
  // Written while no stream was open; a resume from the first picks them up in order, once.
  const auto missed = add_inbox(42, 3);
  SseReader resumed(server_.port(), "/api/v1/users/42/inbox/stream", user42_,
                    std::to_string(first));
  ASSERT_EQ(resumed.status(), 200U);
  for (std::int64_t id : missed) {
    auto event = resumed.next(std::chrono::seconds(5));
    ASSERT_TRUE(event);
    EXPECT_EQ(event->id, std::to_string(id));
  }
  const auto live = add_inbox(42, 1)[0];
  auto event = resumed.next(std::chrono::seconds(5));
  ASSERT_TRUE(event);
  EXPECT_EQ(event->id, std::to_string(live));
  EXPECT_FALSE(resumed.next(std::chrono::milliseconds(600)));

  // ?after= with the token in the query, as a browser's EventSource sends it.
  SseReader after(server_.port(), "/api/v1/users/42/inbox/stream?after=" +
                                      std::to_string(missed[1]) + "&access_token=" + user42_);
  ASSERT_EQ(after.status(), 200U);
  auto next = after.next(std::chrono::seconds(5));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->id, std::to_string(missed[2]));
}

TEST_F(NotifyApi, InboxStreamRefusesAnotherUsersTokenAndABadLastEventId) {
  SseReader other(server_.port(), "/api/v1/users/43/inbox/stream", user42_);
  EXPECT_EQ(other.status(), 403U);
  SseReader bad(server_.port(), "/api/v1/users/42/inbox/stream", user42_, std::string("abc"));
  EXPECT_EQ(bad.status(), 400U);
  SseReader me(server_.port(), "/api/v1/me/inbox/stream", user42_);
  EXPECT_EQ(me.status(), 200U);
}

TEST_F(NotifyApi, InboxStreamSendsHeartbeatsAndEndsCleanlyWhenTheServerStops) {
  SseReader stream(server_.port(), "/api/v1/users/42/inbox/stream", user42_);
  ASSERT_EQ(stream.status(), 200U);
  EXPECT_TRUE(stream.wait_for_comment("heartbeat", std::chrono::seconds(5)));
  std::thread stopper([&] { server_.stop(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!stream.ended() && std::chrono::steady_clock::now() < deadline) {
    (void)stream.next(std::chrono::milliseconds(200));
  }
  stopper.join();
  EXPECT_TRUE(stream.ended_cleanly());
}

}  // namespace
}  // namespace herald::testing
