#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "fake_discord.hpp"
#include "herald/notify/sender.hpp"
#include "notify/curl_http.hpp"

namespace herald::notify {
namespace {

using namespace std::chrono_literals;
using testing::FakeDiscord;
using testing::FakeDiscordOptions;
using testing::ScriptedFailure;

DeliveryRecord dm_delivery(std::string discord_id, std::string title = "Race approved",
                           std::string markdown = "Your race **7** was approved.") {
  DeliveryRecord delivery;
  delivery.id = 5;
  delivery.event_id = EventId::generate();
  delivery.channel = Channel::discord;
  delivery.recipient = "user:42";
  delivery.kind = "race_approved";
  delivery.payload = boost::json::serialize(boost::json::object{
      {"discord_id", discord_id}, {"title", title}, {"markdown", markdown}, {"link", "/races/7"}});
  return delivery;
}

DeliveryRecord channel_delivery(std::string webhook_url) {
  DeliveryRecord delivery;
  delivery.id = 6;
  delivery.event_id = EventId::generate();
  delivery.channel = Channel::discord_channel;
  delivery.recipient = "org:3";
  delivery.kind = "tournament_started";
  delivery.payload = boost::json::serialize(boost::json::object{{"webhook_url", webhook_url},
                                                                {"title", "Tournament started"},
                                                                {"markdown", "Round 1 is on."},
                                                                {"link", "/tournaments/2"}});
  return delivery;
}

DiscordOptions options_for(const FakeDiscord& fake, std::chrono::milliseconds timeout = 5s) {
  return DiscordOptions{
      .api_base = fake.api_base(), .bot_token = "fake-bot-token", .timeout = timeout};
}

SendResult send(Sender& sender, const DeliveryRecord& delivery) {
  return sender.send(SendRequest{delivery, nullptr, now()});
}

TEST(DiscordDmSender, OpensADmChannelAndPostsTitleBodyAndLink) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  EXPECT_EQ(sender->channel(), Channel::discord);
  const SendResult result = send(*sender, dm_delivery("123456789012345678"));
  EXPECT_EQ(result.outcome, SendOutcome::sent) << result.error;
  EXPECT_EQ(result.status_code, 200);
  EXPECT_TRUE(result.error.empty());
  const auto messages = fake.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, "dm");
  EXPECT_EQ(messages[0].content, "**Race approved**\n\nYour race **7** was approved.\n\n/races/7");
  EXPECT_TRUE(messages[0].user_agent.starts_with("DiscordBot (")) << messages[0].user_agent;
  EXPECT_EQ(fake.dm_channel_requests(), 1);
}

TEST(DiscordDmSender, CachesTheDmChannelPerRecipient) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  ASSERT_EQ(send(*sender, dm_delivery("111")).outcome, SendOutcome::sent);
  ASSERT_EQ(send(*sender, dm_delivery("111")).outcome, SendOutcome::sent);
  EXPECT_EQ(fake.dm_channel_requests(), 1);
  ASSERT_EQ(send(*sender, dm_delivery("222")).outcome, SendOutcome::sent);
  EXPECT_EQ(fake.dm_channel_requests(), 2);
  const auto messages = fake.messages();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].channel_id, messages[1].channel_id);
  EXPECT_NE(messages[0].channel_id, messages[2].channel_id);
}

TEST(DiscordDmSender, ReopensACachedDmChannelThatDiscordNoLongerKnows) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  ASSERT_EQ(send(*sender, dm_delivery("111")).outcome, SendOutcome::sent);
  fake.script(ScriptedFailure{
      .status = 404, .code = 10003, .message = "Unknown Channel", .path_contains = "/messages"});
  const SendResult result = send(*sender, dm_delivery("111"));
  EXPECT_EQ(result.outcome, SendOutcome::sent) << result.error;
  EXPECT_EQ(fake.dm_channel_requests(), 2);
  EXPECT_EQ(fake.messages().size(), 2u);
}

TEST(DiscordDmSender, AnUnknownChannelRightAfterOpeningItIsPermanent) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  fake.script(ScriptedFailure{
      .status = 404, .code = 10003, .message = "Unknown Channel", .path_contains = "/messages"});
  const SendResult result = send(*sender, dm_delivery("111"));
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_EQ(result.status_code, 404);
  EXPECT_NE(result.error.find("Unknown Channel"), std::string::npos) << result.error;
}

TEST(DiscordDmSender, CutsLongMessagesTo2000CharactersWithAnEllipsis) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  std::string body;
  for (int i = 0; i < 1500; ++i) body += "\u00e9";  // Two bytes, one character.
  body += std::string(1000, 'x');
  ASSERT_EQ(send(*sender, dm_delivery("111", "T", body)).outcome, SendOutcome::sent);
  const auto messages = fake.messages();
  ASSERT_EQ(messages.size(), 1u);
  std::size_t characters = 0;
  for (const char c : messages[0].content) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++characters;
  }
  EXPECT_EQ(characters, 2000u);
  EXPECT_TRUE(messages[0].content.ends_with("\u2026"));
  EXPECT_TRUE(messages[0].content.starts_with("**T**\n\n\u00e9"));
}

TEST(DiscordDmSender, A429IsTransientWithItsRetryAfterAndTheNextCallSucceedsAfterTheWait) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  fake.script(ScriptedFailure{.status = 429, .retry_after = 0.25, .path_contains = "/messages"});
  const SendResult limited = send(*sender, dm_delivery("111"));
  EXPECT_EQ(limited.outcome, SendOutcome::transient);
  EXPECT_EQ(limited.status_code, 429);
  ASSERT_TRUE(limited.retry_after.has_value());
  EXPECT_EQ(*limited.retry_after, 250ms);
  const auto limited_at = std::chrono::steady_clock::now();

  // Before the wait is over the route is not called at all.
  const int requests = fake.api_requests();
  const SendResult early = send(*sender, dm_delivery("111"));
  EXPECT_EQ(early.outcome, SendOutcome::transient);
  ASSERT_TRUE(early.retry_after.has_value());
  EXPECT_LE(*early.retry_after, 250ms);
  EXPECT_EQ(fake.api_requests(), requests);

  // The wait itself is the behaviour under test.
  std::this_thread::sleep_until(limited_at + *limited.retry_after);
  const SendResult after = send(*sender, dm_delivery("111"));
  EXPECT_EQ(after.outcome, SendOutcome::sent) << after.error;
  EXPECT_EQ(fake.messages().size(), 1u);
}

TEST(DiscordDmSender, DoesNotCallARouteWhoseBucketIsKnownExhausted) {
  FakeDiscord fake(FakeDiscordOptions{.bucket_size = 2, .bucket_reset_after = 30.0});
  auto sender = make_discord_dm_sender(options_for(fake));
  ASSERT_EQ(send(*sender, dm_delivery("111")).outcome, SendOutcome::sent);
  ASSERT_EQ(send(*sender, dm_delivery("111")).outcome, SendOutcome::sent);
  const int requests = fake.api_requests();
  const SendResult held = send(*sender, dm_delivery("111"));
  EXPECT_EQ(held.outcome, SendOutcome::transient);
  EXPECT_FALSE(held.status_code.has_value());
  ASSERT_TRUE(held.retry_after.has_value());
  EXPECT_GT(*held.retry_after, 25s);
  EXPECT_LE(*held.retry_after, 30s);
  EXPECT_NE(held.error.find("exhausted"), std::string::npos) << held.error;
  EXPECT_EQ(fake.api_requests(), requests);
  EXPECT_EQ(fake.rate_limited_answers(), 0);
  // Another recipient's channel is another bucket: it still goes through.
  EXPECT_EQ(send(*sender, dm_delivery("222")).outcome, SendOutcome::sent);
}

TEST(DiscordDmSender, AGlobal429BlocksEveryRouteUntilItsEnd) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  fake.script(ScriptedFailure{.status = 429, .retry_after = 20.0, .global = true});
  const SendResult limited = send(*sender, dm_delivery("111"));
  EXPECT_EQ(limited.outcome, SendOutcome::transient);
  EXPECT_EQ(limited.status_code, 429);
  EXPECT_EQ(limited.retry_after, 20s);
  EXPECT_NE(limited.error.find("global"), std::string::npos) << limited.error;
  const int requests = fake.api_requests();
  const SendResult other = send(*sender, dm_delivery("333"));
  EXPECT_EQ(other.outcome, SendOutcome::transient);
  ASSERT_TRUE(other.retry_after.has_value());
  EXPECT_GT(*other.retry_after, 15s);
  EXPECT_EQ(fake.api_requests(), requests);
}

TEST(DiscordDmSender, ServerErrorsAreTransient) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  fake.script(ScriptedFailure{.status = 502, .message = "Bad Gateway"});
  const SendResult result = send(*sender, dm_delivery("111"));
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_EQ(result.status_code, 502);
  EXPECT_NE(result.error.find("Bad Gateway"), std::string::npos) << result.error;
  EXPECT_EQ(send(*sender, dm_delivery("111")).outcome, SendOutcome::sent);
}

TEST(DiscordDmSender, ANeverAnsweredRequestIsATransientTimeout) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake, 300ms));
  fake.script(ScriptedFailure{.hang = true});
  const auto started = std::chrono::steady_clock::now();
  const SendResult result = send(*sender, dm_delivery("111"));
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_FALSE(result.status_code.has_value());
  EXPECT_NE(result.error.find("did not answer"), std::string::npos) << result.error;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
}

TEST(DiscordDmSender, AnUnreachableApiIsTransient) {
  std::string base;
  {
    FakeDiscord gone;
    base = gone.api_base();
  }
  auto sender = make_discord_dm_sender(DiscordOptions{.api_base = base, .bot_token = "t"});
  const SendResult result = send(*sender, dm_delivery("111"));
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_FALSE(result.status_code.has_value());
  EXPECT_NE(result.error.find("unreachable"), std::string::npos) << result.error;
}

TEST(DiscordDmSender, AWrongBotTokenIsPermanentWithDiscordsMessage) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(
      DiscordOptions{.api_base = fake.api_base(), .bot_token = "wrong-token"});
  const SendResult result = send(*sender, dm_delivery("111"));
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_EQ(result.status_code, 401);
  EXPECT_NE(result.error.find("401: Unauthorized"), std::string::npos) << result.error;
  EXPECT_TRUE(fake.messages().empty());
}

TEST(DiscordDmSender, AUserWhoDoesNotAcceptDmsIsAPermanentFailure) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  fake.script(ScriptedFailure{.status = 403,
                              .code = 50007,
                              .message = "Cannot send messages to this user",
                              .path_contains = "/messages"});
  const SendResult result = send(*sender, dm_delivery("111"));
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_EQ(result.status_code, 403);
  EXPECT_NE(result.error.find("Cannot send messages to this user (code 50007)"), std::string::npos)
      << result.error;
}

TEST(DiscordDmSender, MalformedPayloadsArePermanentAndNameTheMember) {
  FakeDiscord fake;
  auto sender = make_discord_dm_sender(options_for(fake));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"\"text\"", "expected a JSON object"},
      {R"({"title":"t","markdown":"m"})", "'discord_id': missing"},
      {R"({"discord_id":"12ab","title":"t","markdown":"m"})", "'discord_id': expected a Discord"},
      {R"({"discord_id":"1/../../x","title":"t","markdown":"m"})", "'discord_id'"},
      {R"({"discord_id":12,"title":"t","markdown":"m"})", "'discord_id': expected a string"},
      {R"({"discord_id":"12","markdown":"m"})", "'title': missing"},
      {R"({"discord_id":"12","title":"t"})", "'markdown': missing"},
      {R"({"discord_id":"12","title":"","markdown":""})", "empty"},
  };
  for (const auto& [payload, expected] : cases) {
    DeliveryRecord delivery = dm_delivery("1");
    delivery.payload = payload;
    const SendResult result = send(*sender, delivery);
    EXPECT_EQ(result.outcome, SendOutcome::permanent) << payload;
    EXPECT_NE(result.error.find(expected), std::string::npos) << payload << ": " << result.error;
  }
  EXPECT_EQ(fake.api_requests(), 0);
}

TEST(DiscordChannelSender, PostsToTheWebhookAndWaitsForTheMessage) {
  FakeDiscord fake;
  auto sender = make_discord_channel_sender(options_for(fake));
  EXPECT_EQ(sender->channel(), Channel::discord_channel);
  const SendResult result = send(*sender, channel_delivery(fake.webhook_url("5550001")));
  EXPECT_EQ(result.outcome, SendOutcome::sent) << result.error;
  EXPECT_EQ(result.status_code, 200);
  const auto messages = fake.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, "webhook");
  EXPECT_EQ(messages[0].webhook_id, "5550001");
  EXPECT_TRUE(messages[0].wait);
  EXPECT_EQ(messages[0].content, "**Tournament started**\n\nRound 1 is on.\n\n/tournaments/2");
}

TEST(DiscordChannelSender, AnInvalidWebhookTokenIsPermanent) {
  FakeDiscord fake;
  auto sender = make_discord_channel_sender(options_for(fake));
  std::string url = fake.webhook_url("5550001");
  url.replace(url.rfind('/') + 1, std::string::npos, "revoked");
  const SendResult result = send(*sender, channel_delivery(url));
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_EQ(result.status_code, 401);
  EXPECT_NE(result.error.find("Invalid Webhook Token"), std::string::npos) << result.error;
  EXPECT_EQ(result.error.find("revoked"), std::string::npos) << "the token stays out of errors";
}

TEST(DiscordChannelSender, AnExhaustedWebhookBucketIsNotCalled) {
  FakeDiscord fake(FakeDiscordOptions{.bucket_size = 1, .bucket_reset_after = 30.0});
  auto sender = make_discord_channel_sender(options_for(fake));
  ASSERT_EQ(send(*sender, channel_delivery(fake.webhook_url("5550001"))).outcome,
            SendOutcome::sent);
  const int requests = fake.api_requests();
  const SendResult held = send(*sender, channel_delivery(fake.webhook_url("5550001")));
  EXPECT_EQ(held.outcome, SendOutcome::transient);
  ASSERT_TRUE(held.retry_after.has_value());
  EXPECT_GT(*held.retry_after, 25s);
  EXPECT_EQ(fake.api_requests(), requests);
}

TEST(DiscordChannelSender, RefusesWebhookUrlsOffTheDiscordApi) {
  FakeDiscord fake;
  auto sender = make_discord_channel_sender(options_for(fake));
  const std::string origin = "http://127.0.0.1:" + std::to_string(fake.port());
  for (const std::string& url : std::vector<std::string>{
           "http://169.254.169.254/api/webhooks/1/t", "https://evil.example/api/webhooks/1/t",
           origin + ".evil.example/api/webhooks/1/t", origin + "/api/v10/users/@me/channels",
           origin + "@evil.example/api/webhooks/1/t", "", "webhooks/1/t",
           origin + "/api/webhooks/1/t\r\nX-Injected: 1"}) {
    const SendResult result = send(*sender, channel_delivery(url));
    EXPECT_EQ(result.outcome, SendOutcome::permanent) << url;
    EXPECT_NE(result.error.find("'webhook_url'"), std::string::npos) << url << ": " << result.error;
  }
  EXPECT_EQ(fake.api_requests(), 0);
}

// The fake answers like Discord: the error shape for a missing token, empty and oversized
// content, and X-RateLimit-* headers on every answer.
TEST(FakeDiscord, AnswersBadRequestsWithDiscordsErrorShapes) {
  FakeDiscord fake;
  const auto post = [&](const std::string& path, const std::string& body, bool auth) {
    detail::HttpRequest request;
    request.url = fake.api_base() + path;
    request.headers = {"Content-Type: application/json"};
    if (auth) request.headers.push_back("Authorization: Bot fake-bot-token");
    request.body = body;
    auto response = detail::perform_http(request);
    EXPECT_TRUE(response.has_value());
    return response.value_or(detail::HttpResponse{});
  };
  const auto unauthorized = post("/users/@me/channels", R"({"recipient_id":"1"})", false);
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_EQ(boost::json::parse(unauthorized.body).at("message").as_string(), "401: Unauthorized");
  const auto opened = post("/users/@me/channels", R"({"recipient_id":"1"})", true);
  ASSERT_EQ(opened.status, 200);
  EXPECT_TRUE(opened.header("x-ratelimit-remaining").has_value());
  EXPECT_TRUE(opened.header("x-ratelimit-reset-after").has_value());
  EXPECT_TRUE(opened.header("x-ratelimit-bucket").has_value());
  const std::string channel(boost::json::parse(opened.body).at("id").as_string());
  const auto empty = post("/channels/" + channel + "/messages", R"({"content":""})", true);
  EXPECT_EQ(empty.status, 400);
  EXPECT_EQ(boost::json::parse(empty.body).at("code").as_int64(), 50006);
  const auto oversized = post("/channels/" + channel + "/messages",
                              R"({"content":")" + std::string(2001, 'x') + R"("})", true);
  EXPECT_EQ(oversized.status, 400);
  EXPECT_EQ(boost::json::parse(oversized.body).at("code").as_int64(), 50035);
  const auto unknown = post("/channels/42/messages", R"({"content":"hi"})", true);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(boost::json::parse(unknown.body).at("code").as_int64(), 10003);
  EXPECT_TRUE(fake.messages().empty());
}

// The fake as a process, as cluster tests run it: the port on stdout's first line, the messages
// at GET /_fake/messages, failures queued with POST /_fake/script.
TEST(FakeDiscordProcess, PrintsItsPortAndServesTheApiAndItsControlRoutes) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const char* argv[] = {HERALD_FAKE_DISCORD, "--port", "0", "--bot-token", "proc-token", nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, HERALD_FAKE_DISCORD, &actions, nullptr,
                        const_cast<char* const*>(argv), environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  FILE* stream = fdopen(out[0], "r");
  char line[32] = {};
  const bool got_line = std::fgets(line, sizeof line, stream) != nullptr;
  const int port = got_line ? std::atoi(line) : 0;
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);

  if (got_line && port > 0) {
    detail::HttpRequest script;
    script.url = origin + "/_fake/script";
    script.headers = {"Content-Type: application/json"};
    script.body = R"({"status":503,"message":"Service Unavailable"})";
    const auto scripted = detail::perform_http(script);
    EXPECT_TRUE(scripted.has_value() && scripted->status == 200);

    auto sender = make_discord_dm_sender(
        DiscordOptions{.api_base = origin + "/api/v10", .bot_token = "proc-token"});
    EXPECT_EQ(send(*sender, dm_delivery("777")).status_code, 503);
    EXPECT_EQ(send(*sender, dm_delivery("777")).outcome, SendOutcome::sent);

    detail::HttpRequest list;
    list.method = "GET";
    list.url = origin + "/_fake/messages";
    const auto listed = detail::perform_http(list);
    ASSERT_TRUE(listed.has_value());
    const auto messages = boost::json::parse(listed->body).as_array();
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].at("kind").as_string(), "dm");
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::fclose(stream);
  ASSERT_TRUE(got_line);
  EXPECT_GT(port, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace herald::notify
