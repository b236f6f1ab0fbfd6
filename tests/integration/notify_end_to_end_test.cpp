// Notifications end to end: events appended to a real SQLite store, routed by the platform's rules
// through the notification consumer, sent by the delivery worker with the real senders to a fake
// Discord API, a real SMTP server (aiosmtpd) and a webhook receiver on loopback that checks
// signatures with its own code. Failures are injected at the receiving end and the attempts
// counted exactly.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../notify/fake_discord.hpp"
#include "../notify/smtp_server.hpp"
#include "../notify/webhook_receiver.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/domain/notification_rules.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event_store.hpp"
#include "herald/notify/delivery_worker.hpp"
#include "herald/notify/notification_consumer.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/notify/sender.hpp"
#include "polling.hpp"

namespace herald::notify {
namespace {

using herald::test::eventually;

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace domain = herald::domain;
using testing::FakeDiscord;
using testing::ScriptedAnswer;
using testing::ScriptedFailure;
using testing::SmtpServer;
using testing::WebhookReceiver;

constexpr std::int64_t player = 42;
constexpr std::int64_t organization = 7;

class NotifyEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/herald-notify-e2e.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    const std::string path = (dir_ / "herald.db").string();
    auto store = open_store({.location = path, .catalog = &domain::platform_catalog()});
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    auto notifications = open_notification_store(path);
    ASSERT_TRUE(notifications) << notifications.error().message;
    notifications_ = std::move(*notifications);

    // The player: a Discord account, an email address, and match notifications on Discord and
    // by email as well as in the inbox.
    ASSERT_TRUE(notifications_->set_email(player, "player@example.org"));
    UserPreferences preferences{.user_id = player};
    for (Channel channel : {Channel::discord, Channel::email}) {
      preferences.rules.push_back({.user_id = player,
                                   .kind = "match_scheduled",
                                   .channel = channel,
                                   .organization_id = std::nullopt,
                                   .enabled = true});
    }
    auto set = notifications_->set_preferences(preferences, rules().kinds());
    ASSERT_TRUE(set) << set.error().message;
  }

  void TearDown() override {
    if (worker_) worker_->stop();
    if (consumer_) consumer_->stop();
    worker_.reset();
    consumer_.reset();
    senders_.clear();
    notifications_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  static const NotificationRules& rules() { return domain::platform_notification_rules(); }

  /// Registers a webhook endpoint of the organization at the receiver, which learns its secret.
  WebhookEndpoint register_endpoint(WebhookReceiver& receiver) {
    auto endpoint = notifications_->create_endpoint(organization, receiver.url(), {});
    EXPECT_TRUE(endpoint) << endpoint.error().message;
    receiver.add_secret(endpoint->secrets.front().secret);
    return *endpoint;
  }

  /// Starts the consumer and a worker with the real senders; short retry delays so that a test
  /// sees a whole schedule.
  void start(const std::string& smtp_url,
             RetryPolicy retry = {.delays = {100ms, 100ms}, .jitter = 0.0}) {
    senders_.push_back(make_discord_dm_sender(
        {.api_base = discord_.api_base(), .bot_token = "fake-bot-token", .timeout = 2s}));
    senders_.push_back(make_discord_channel_sender(
        {.api_base = discord_.api_base(), .bot_token = "fake-bot-token", .timeout = 2s}));
    senders_.push_back(make_email_sender({.smtp_url = smtp_url,
                                          .from = "herald@example.org",
                                          .message_id_domain = "example.org",
                                          .timeout = 5s}));
    senders_.push_back(make_webhook_sender({.timeout = 500ms, .allow_private_targets = true}));
    DeliveryWorkerOptions options{.worker_id = "e2e",
                                  .threads = 2,
                                  .lease = 5s,
                                  .poll_interval = 50ms,
                                  .retry = std::move(retry)};
    for (const auto& sender : senders_) options.senders[sender->channel()] = sender.get();
    auto worker = DeliveryWorker::create(*notifications_, std::move(options));
    ASSERT_TRUE(worker) << worker.error().message;
    worker_ = std::move(*worker);
    consumer_ = make_notification_consumer(*store_, *notifications_, rules());
    ASSERT_TRUE(consumer_->start());
    ASSERT_TRUE(worker_->start());
  }

  std::int64_t append(EventPtr event) {
    auto appended = store_->append(event);
    EXPECT_TRUE(appended) << appended.error().message;
    return appended ? appended->position : 0;
  }

  void append_player() {
    append(EventPtr::make(
        make<domain::UserCreatedEvent>({.entity_id = player, .user_id = system_actor},
                                       {.discord_id = 1042, .discord_username = "swift_runner"})));
  }

  EventPtr match_scheduled() {
    return EventPtr::make(make<domain::MatchScheduledEvent>(
        {.entity_id = std::int64_t{9}, .user_id = std::int64_t{5}, .organization_id = organization},
        {.tournament_id = 3,
         .scheduled_time = "2026-12-01T19:00:00Z",
         .participant_ids = {player}}));
  }

  std::vector<DeliveryRecord> deliveries(std::optional<Channel> channel = std::nullopt) {
    auto listed = notifications_->list_deliveries({.channel = channel, .limit = 1000});
    EXPECT_TRUE(listed) << listed.error().message;
    return listed ? *listed : std::vector<DeliveryRecord>{};
  }

  /// The single delivery on `channel` once it reached a final status (sent, failed or dead).
  std::optional<DeliveryRecord> settled(Channel channel) {
    std::optional<DeliveryRecord> found;
    eventually([&] {
      auto listed = deliveries(channel);
      if (listed.size() != 1) return false;
      const auto status = listed.front().status;
      if (status != DeliveryStatus::sent && status != DeliveryStatus::failed &&
          status != DeliveryStatus::dead) {
        return false;
      }
      found = listed.front();
      return true;
    });
    return found;
  }

  std::vector<DeliveryAttempt> attempts(std::int64_t delivery) {
    auto listed = notifications_->list_attempts(delivery);
    EXPECT_TRUE(listed) << listed.error().message;
    return listed ? *listed : std::vector<DeliveryAttempt>{};
  }

  fs::path dir_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<NotificationStore> notifications_;
  FakeDiscord discord_;
  std::vector<std::unique_ptr<Sender>> senders_;
  std::unique_ptr<DeliveryWorker> worker_;
  std::unique_ptr<DurableConsumer> consumer_;
};

TEST_F(NotifyEndToEnd, DeliversAnEventToTheInboxDiscordEmailAWebhookAndTheAnnouncementChannel) {
  SmtpServer smtp;
  ASSERT_TRUE(smtp.ready()) << "aiosmtpd did not start (python3-aiosmtpd installed?)";
  WebhookReceiver receiver({});
  const WebhookEndpoint endpoint = register_endpoint(receiver);
  ASSERT_TRUE(notifications_->set_announcement_channel(organization, discord_.webhook_url("555")));
  start(smtp.url());

  append_player();
  const EventPtr started = EventPtr::make(make<domain::TournamentStartedEvent>(
      {.entity_id = std::int64_t{3}, .user_id = std::int64_t{5}, .organization_id = organization},
      {.tournament_name = "Winter Cup"}));
  append(started);
  const EventPtr match = match_scheduled();
  append(match);

  // Discord: the direct message to the player, and the tournament's announcement.
  ASSERT_TRUE(eventually([&] { return discord_.messages().size() == 2; }))
      << discord_.messages_json();
  const auto discord = settled(Channel::discord);
  ASSERT_TRUE(discord);
  EXPECT_EQ(discord->status, DeliveryStatus::sent);
  EXPECT_EQ(discord->attempts, 1);
  bool dm = false;
  bool announcement = false;
  for (const auto& message : discord_.messages()) {
    if (message.kind == "dm") {
      dm = true;
      EXPECT_NE(message.content.find("Your match #9 in tournament #3"), std::string::npos)
          << message.content;
    } else {
      announcement = true;
      EXPECT_NE(message.content.find("Winter Cup"), std::string::npos) << message.content;
    }
  }
  EXPECT_TRUE(dm);
  EXPECT_TRUE(announcement);

  // Email: one message to the player's address with both parts.
  ASSERT_TRUE(eventually([&] { return smtp.messages().size() == 1; }));
  const std::string mail = smtp.messages().front();
  EXPECT_NE(mail.find("To: player@example.org"), std::string::npos) << mail;
  EXPECT_NE(mail.find("Content-Type: text/plain"), std::string::npos) << mail;
  EXPECT_NE(mail.find("Content-Type: text/html"), std::string::npos) << mail;
  const auto email = settled(Channel::email);
  ASSERT_TRUE(email);
  EXPECT_EQ(email->status, DeliveryStatus::sent);

  // Webhooks: every event of the organization, signed, its id the event id.
  ASSERT_TRUE(eventually([&] { return receiver.received().size() == 2; }));
  std::vector<std::string> ids;
  for (const auto& got : receiver.received()) {
    EXPECT_TRUE(got.verified) << got.signature;
    EXPECT_EQ(got.content_type, "application/json");
    ids.push_back(got.id);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> expected{started->event_id.to_string(), match->event_id.to_string()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(endpoint.organization_id, organization);

  // The inbox: one item about the match.
  auto inbox = notifications_->list_inbox({.user_id = player});
  ASSERT_TRUE(inbox) << inbox.error().message;
  ASSERT_EQ(inbox->size(), 1u);
  EXPECT_EQ((*inbox)[0].kind, "match_scheduled");
  EXPECT_EQ((*inbox)[0].event_id, match->event_id);
}

TEST_F(NotifyEndToEnd, DiscordRateLimitedOnceIsSentOnTheSecondAttempt) {
  start("smtp://127.0.0.1:1");
  discord_.script(ScriptedFailure{.status = 429, .retry_after = 0.3, .path_contains = "messages"});
  append_player();
  append(match_scheduled());

  const auto delivery = settled(Channel::discord);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->status, DeliveryStatus::sent);
  EXPECT_EQ(delivery->attempts, 2);
  const auto tried = attempts(delivery->id);
  ASSERT_EQ(tried.size(), 2u);
  EXPECT_EQ(tried[0].outcome, DeliveryStatus::retrying);
  EXPECT_EQ(tried[0].status_code, 429);
  // Discord asked for 300 ms: the second attempt did not come earlier.
  EXPECT_GE(tried[1].started_at - tried[0].started_at, 300ms);
  EXPECT_EQ(tried[1].outcome, DeliveryStatus::sent);
  EXPECT_EQ(discord_.messages().size(), 1u);
}

TEST_F(NotifyEndToEnd, DiscordFailingWithServerErrorsIsDeadAfterEveryAttempt) {
  start("smtp://127.0.0.1:1");
  for (int i = 0; i < 3; ++i) {
    discord_.script(ScriptedFailure{.status = 502, .path_contains = "messages"});
  }
  append_player();
  append(match_scheduled());

  const auto delivery = settled(Channel::discord);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->status, DeliveryStatus::dead);
  EXPECT_EQ(delivery->attempts, 3);
  const auto tried = attempts(delivery->id);
  ASSERT_EQ(tried.size(), 3u);
  EXPECT_EQ(tried[0].outcome, DeliveryStatus::retrying);
  EXPECT_EQ(tried[1].outcome, DeliveryStatus::retrying);
  EXPECT_EQ(tried[2].outcome, DeliveryStatus::dead);
  for (const auto& attempt : tried) EXPECT_EQ(attempt.status_code, 502);
  EXPECT_TRUE(discord_.messages().empty());

  // An operator re-sends it once Discord is back: it is sent, with its history kept.
  auto resent = notifications_->resend(delivery->id, herald::now());
  ASSERT_TRUE(resent) << resent.error().message;
  notifications_->wake();
  ASSERT_TRUE(eventually([&] {
    auto again = notifications_->get_delivery(delivery->id);
    return again && again->status == DeliveryStatus::sent;
  }));
  EXPECT_EQ(attempts(delivery->id).size(), 4u);
  EXPECT_EQ(discord_.messages().size(), 1u);
}

TEST_F(NotifyEndToEnd, EmailWaitsForAnSmtpServerThatIsDownAndIsSentOnceItIsUp) {
  const std::uint16_t port = testing::free_port();
  // Long enough a schedule that the server comes up before it runs out.
  RetryPolicy patient{.delays = std::vector<std::chrono::milliseconds>(50, 200ms), .jitter = 0.0};
  start("smtp://127.0.0.1:" + std::to_string(port), std::move(patient));
  append_player();
  append(match_scheduled());

  // The first attempt finds nobody listening: a transient failure.
  ASSERT_TRUE(eventually([&] {
    auto listed = deliveries(Channel::email);
    return listed.size() == 1 && listed.front().status == DeliveryStatus::retrying;
  }));
  SmtpServer smtp(port);
  ASSERT_TRUE(smtp.ready());

  const auto delivery = settled(Channel::email);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->status, DeliveryStatus::sent);
  EXPECT_GE(delivery->attempts, 2);
  const auto tried = attempts(delivery->id);
  ASSERT_EQ(tried.size(), static_cast<std::size_t>(delivery->attempts));
  for (std::size_t i = 0; i + 1 < tried.size(); ++i) {
    EXPECT_EQ(tried[i].outcome, DeliveryStatus::retrying);
  }
  EXPECT_EQ(tried.back().outcome, DeliveryStatus::sent);
  ASSERT_TRUE(eventually([&] { return smtp.messages().size() == 1; }));
}

TEST_F(NotifyEndToEnd, WebhookReceiverSlowerThanTheTimeoutIsRetriedWithTheSameWebhookId) {
  WebhookReceiver receiver({});
  register_endpoint(receiver);
  receiver.script(ScriptedAnswer{.status = 200, .delay = 2s});
  start("smtp://127.0.0.1:1");
  const EventPtr match = match_scheduled();
  append(match);

  const auto delivery = settled(Channel::webhook);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->status, DeliveryStatus::sent);
  EXPECT_EQ(delivery->attempts, 2);
  const auto tried = attempts(delivery->id);
  ASSERT_EQ(tried.size(), 2u);
  EXPECT_EQ(tried[0].outcome, DeliveryStatus::retrying);
  EXPECT_FALSE(tried[0].status_code.has_value());
  EXPECT_LT(tried[0].duration_us, 2'000'000) << "the attempt waited for the slow answer";
  ASSERT_TRUE(eventually([&] { return receiver.received().size() == 2; }));
  for (const auto& got : receiver.received()) EXPECT_EQ(got.id, match->event_id.to_string());
}

TEST_F(NotifyEndToEnd, WebhookAnswered410FailsAtOnceAndDisablesTheEndpoint) {
  WebhookReceiver receiver({});
  const WebhookEndpoint endpoint = register_endpoint(receiver);
  receiver.script(ScriptedAnswer{.status = 410});
  start("smtp://127.0.0.1:1");
  append(match_scheduled());

  const auto delivery = settled(Channel::webhook);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->status, DeliveryStatus::failed);
  EXPECT_EQ(delivery->attempts, 1);
  auto disabled = notifications_->get_endpoint(endpoint.id);
  ASSERT_TRUE(disabled) << disabled.error().message;
  EXPECT_FALSE(disabled->active);
  EXPECT_NE(disabled->disabled_reason.find("410"), std::string::npos) << disabled->disabled_reason;

  // The next event of the organization goes to no disabled endpoint.
  const std::int64_t position = append(match_scheduled());
  ASSERT_TRUE(consumer_->wait_for_checkpoint(position, 20s));
  EXPECT_EQ(deliveries(Channel::webhook).size(), 1u);
  EXPECT_EQ(receiver.received().size(), 1u);
}

TEST_F(NotifyEndToEnd, ReplayingTheConsumerCreatesAndSendsNothingNew) {
  SmtpServer smtp;
  ASSERT_TRUE(smtp.ready());
  WebhookReceiver receiver({});
  register_endpoint(receiver);
  start(smtp.url());
  append_player();
  const std::int64_t head = append(match_scheduled());
  ASSERT_TRUE(consumer_->wait_for_checkpoint(head, 20s));
  ASSERT_TRUE(eventually([&] {
    for (const auto& delivery : deliveries()) {
      if (delivery.status != DeliveryStatus::sent) return false;
    }
    return true;
  }));
  const std::size_t delivered = deliveries().size();
  ASSERT_EQ(delivered, 3u);  // Discord, email, webhook
  const auto inbox_before = notifications_->list_inbox({.user_id = player});
  ASSERT_TRUE(inbox_before);

  ASSERT_TRUE(consumer_->reset_to(0));
  ASSERT_TRUE(consumer_->wait_for_checkpoint(head, 20s));
  auto status = consumer_->status();
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->checkpoint, head);
  EXPECT_EQ(deliveries().size(), delivered);
  for (const auto& delivery : deliveries()) {
    EXPECT_EQ(delivery.status, DeliveryStatus::sent);
    EXPECT_EQ(delivery.attempts, 1);
  }
  auto inbox_after = notifications_->list_inbox({.user_id = player});
  ASSERT_TRUE(inbox_after);
  EXPECT_EQ(inbox_after->size(), inbox_before->size());
  auto due = notifications_->next_due();
  ASSERT_TRUE(due);
  EXPECT_FALSE(due->has_value()) << "the replay queued a delivery";
  EXPECT_EQ(discord_.messages().size(), 1u);
  EXPECT_EQ(smtp.messages().size(), 1u);
  EXPECT_EQ(receiver.received().size(), 1u);
}

}  // namespace
}  // namespace herald::notify
