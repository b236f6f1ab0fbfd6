#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "herald/notify/sender.hpp"
#include "webhook_receiver.hpp"

namespace herald::notify {
namespace {

using testing::ScriptedAnswer;
using testing::WebhookReceiver;

constexpr std::string_view spec_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view new_secret = "whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLTI0Ynk=";
constexpr std::string_view event_body = R"({"type":"RaceApprovedEvent","race_id":7})";

struct WebhookCase {
  DeliveryRecord delivery;
  WebhookEndpoint endpoint;

  explicit WebhookCase(std::string url) {
    delivery.id = 41;
    delivery.event_id = EventId::generate();
    delivery.channel = Channel::webhook;
    delivery.recipient = "endpoint:3";
    delivery.kind = "RaceApprovedEvent";
    delivery.payload = boost::json::serialize(
        boost::json::object{{"event_type", "RaceApprovedEvent"}, {"body", event_body}});
    endpoint.id = 3;
    endpoint.organization_id = 9;
    endpoint.url = std::move(url);
    endpoint.secrets.push_back(WebhookSecret{std::string(spec_secret), now(), std::nullopt});
  }

  SendResult send(Sender& sender, Timestamp at = now()) const {
    return sender.send(SendRequest{delivery, &endpoint, at});
  }
};

std::unique_ptr<Sender> loopback_sender(
    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  return make_webhook_sender(WebhookOptions{.timeout = timeout, .allow_private_targets = true});
}

TEST(WebhookSignature, MatchesTheStandardWebhooksExample) {
  // key=$(echo -n MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p -c 256)
  // printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' |
  //   openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64
  const auto signature = webhook_signature(spec_secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                           R"({"test": 2432232314})");
  ASSERT_TRUE(signature.has_value()) << signature.error().message;
  EXPECT_EQ(*signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, RefusesSecretsWithoutThePrefixOrWithBadBase64) {
  for (const std::string_view secret :
       {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_abc",
        "whsec_ab=c", "Whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}) {
    const auto signature = webhook_signature(secret, "id", 1, "{}");
    ASSERT_FALSE(signature.has_value()) << secret;
    EXPECT_EQ(signature.error().code, ErrorCode::invalid_argument);
    EXPECT_EQ(signature.error().field, "secret");
  }
}

TEST(WebhookSender, DeliversTheBodyAsIsWithHeadersTheReceiverVerifies) {
  WebhookReceiver receiver({std::string(spec_secret)});
  WebhookCase webhook(receiver.url());
  auto sender = loopback_sender();
  EXPECT_EQ(sender->channel(), Channel::webhook);
  const Timestamp at = now();
  const SendResult result = webhook.send(*sender, at);
  EXPECT_EQ(result.outcome, SendOutcome::sent) << result.error;
  EXPECT_EQ(result.status_code, 200);
  const auto received = receiver.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_TRUE(received[0].verified);
  EXPECT_EQ(received[0].body, event_body);
  EXPECT_EQ(received[0].content_type, "application/json");
  EXPECT_EQ(received[0].id, webhook.delivery.event_id.to_string());
  EXPECT_EQ(received[0].timestamp,
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count()));
}

TEST(WebhookSender, AcceptsTheEventBodyAsAnEmbeddedObject) {
  WebhookReceiver receiver({std::string(spec_secret)});
  WebhookCase webhook(receiver.url());
  webhook.delivery.payload = R"({"event_type":"RaceApprovedEvent","body":{"race_id":7}})";
  EXPECT_EQ(webhook.send(*loopback_sender()).outcome, SendOutcome::sent);
  ASSERT_EQ(receiver.received().size(), 1u);
  EXPECT_EQ(receiver.received()[0].body, R"({"race_id":7})");
  EXPECT_TRUE(receiver.received()[0].verified);
}

TEST(WebhookSender, KeepsTheSameWebhookIdOnEveryRetry) {
  WebhookReceiver receiver({std::string(spec_secret)});
  receiver.script(ScriptedAnswer{.status = 500});
  WebhookCase webhook(receiver.url());
  auto sender = loopback_sender();
  EXPECT_EQ(webhook.send(*sender).outcome, SendOutcome::transient);
  EXPECT_EQ(webhook.send(*sender).outcome, SendOutcome::sent);
  const auto received = receiver.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].id, received[1].id);
}

TEST(WebhookSender, SignsWithEveryUnexpiredSecretWhileRotating) {
  WebhookCase webhook("");
  webhook.endpoint.secrets = {
      WebhookSecret{std::string(new_secret), now(), std::nullopt},
      WebhookSecret{std::string(spec_secret), now(), now() + std::chrono::hours(24)},
      WebhookSecret{"whsec_ZXhwaXJlZC1zZWNyZXQtMjQtYnl0ZXMtbG9uZw==", now(),
                    now() - std::chrono::seconds(1)},
  };
  auto sender = loopback_sender();
  // A receiver that only knows the old secret and one that only knows the new one both accept.
  for (const std::string_view known : {spec_secret, new_secret}) {
    WebhookReceiver receiver({std::string(known)});
    webhook.endpoint.url = receiver.url();
    const SendResult result = webhook.send(*sender);
    EXPECT_EQ(result.outcome, SendOutcome::sent) << known << ": " << result.error;
    const auto received = receiver.received();
    ASSERT_EQ(received.size(), 1u);
    EXPECT_TRUE(received[0].verified);
    // Two signatures: the expired third secret no longer signs.
    EXPECT_EQ(std::count(received[0].signature.begin(), received[0].signature.end(), ' '), 1)
        << received[0].signature;
  }
}

TEST(WebhookSender, AReceiverWithAnotherSecretRejectsAndTheFailureIsPermanent) {
  WebhookReceiver receiver({std::string(new_secret)});
  WebhookCase webhook(receiver.url());
  auto sender = loopback_sender();
  const SendResult result = webhook.send(*sender);
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_EQ(result.status_code, 401);
  ASSERT_EQ(receiver.received().size(), 1u);
  EXPECT_FALSE(receiver.received()[0].verified);
}

TEST(WebhookSender, GoneIsReportedFor410) {
  WebhookReceiver receiver({std::string(spec_secret)});
  receiver.script(ScriptedAnswer{.status = 410});
  WebhookCase webhook(receiver.url());
  const SendResult result = webhook.send(*loopback_sender());
  EXPECT_EQ(result.outcome, SendOutcome::gone);
  EXPECT_EQ(result.status_code, 410);
}

TEST(WebhookSender, ServiceUnavailableWithRetryAfterSecondsIsTransientWithTheWait) {
  WebhookReceiver receiver({std::string(spec_secret)});
  receiver.script(ScriptedAnswer{.status = 503, .headers = {{"Retry-After", "120"}}});
  WebhookCase webhook(receiver.url());
  const SendResult result = webhook.send(*loopback_sender());
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_EQ(result.status_code, 503);
  EXPECT_EQ(result.retry_after, std::chrono::milliseconds(120'000));
}

TEST(WebhookSender, TooManyRequestsWithAnHttpDateIsTransientUntilThatDate) {
  const auto at = std::chrono::floor<std::chrono::seconds>(now());
  // An HTTP-date (RFC 9110 section 5.6.7) 90 seconds after the attempt.
  const std::time_t later = std::chrono::system_clock::to_time_t(at + std::chrono::seconds(90));
  std::tm tm{};
  gmtime_r(&later, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  WebhookReceiver receiver({std::string(spec_secret)});
  receiver.script(ScriptedAnswer{.status = 429, .headers = {{"Retry-After", date}}});
  WebhookCase webhook(receiver.url());
  const SendResult result = webhook.send(*loopback_sender(), at);
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_EQ(result.status_code, 429);
  EXPECT_EQ(result.retry_after, std::chrono::milliseconds(90'000)) << date;
}

TEST(WebhookSender, RequestTimeoutAndServerErrorsAreTransient) {
  for (const unsigned status : {408u, 500u, 502u}) {
    WebhookReceiver receiver({std::string(spec_secret)});
    receiver.script(ScriptedAnswer{.status = status});
    WebhookCase webhook(receiver.url());
    const SendResult result = webhook.send(*loopback_sender());
    EXPECT_EQ(result.outcome, SendOutcome::transient) << status;
    EXPECT_EQ(result.status_code, static_cast<int>(status));
    EXPECT_FALSE(result.retry_after.has_value());
  }
}

TEST(WebhookSender, OtherClientErrorsAndRedirectsArePermanent) {
  for (const unsigned status : {400u, 404u, 422u, 301u, 302u, 307u}) {
    WebhookReceiver receiver({std::string(spec_secret)});
    ScriptedAnswer answer{.status = status};
    if (status >= 300 && status < 400) answer.headers["Location"] = "http://127.0.0.1:1/elsewhere";
    receiver.script(answer);
    WebhookCase webhook(receiver.url());
    const SendResult result = webhook.send(*loopback_sender());
    EXPECT_EQ(result.outcome, SendOutcome::permanent) << status;
    EXPECT_EQ(result.status_code, static_cast<int>(status));
    EXPECT_EQ(receiver.received().size(), 1u) << "a redirect is never followed";
  }
}

TEST(WebhookSender, ASlowReceiverPastTheTimeoutIsTransient) {
  WebhookReceiver receiver({std::string(spec_secret)});
  receiver.script(ScriptedAnswer{.status = 200, .delay = std::chrono::seconds(10)});
  WebhookCase webhook(receiver.url());
  const auto started = std::chrono::steady_clock::now();
  const SendResult result = webhook.send(*loopback_sender(std::chrono::milliseconds(300)));
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_FALSE(result.status_code.has_value());
  EXPECT_NE(result.error.find("timed out"), std::string::npos) << result.error;
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(WebhookSender, NoConnectionIsTransient) {
  std::uint16_t closed_port = 0;
  {
    WebhookReceiver receiver({std::string(spec_secret)});
    closed_port = receiver.port();
  }
  WebhookCase webhook("http://127.0.0.1:" + std::to_string(closed_port) + "/hooks");
  const SendResult result = webhook.send(*loopback_sender());
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_FALSE(result.status_code.has_value());
  EXPECT_FALSE(result.error.empty());
}

TEST(WebhookSender, RefusesLoopbackUnlessAllowed) {
  WebhookReceiver receiver({std::string(spec_secret)});
  WebhookCase webhook(receiver.url());
  auto guarded = make_webhook_sender(WebhookOptions{});
  const SendResult result = webhook.send(*guarded);
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_NE(result.error.find("127.0.0.1"), std::string::npos) << result.error;
  EXPECT_NE(result.error.find("not allowed"), std::string::npos) << result.error;
  EXPECT_TRUE(receiver.received().empty());
  EXPECT_EQ(webhook.send(*loopback_sender()).outcome, SendOutcome::sent);
}

TEST(WebhookSender, RefusesLocalhostPrivateLinkLocalAndIpv6Literals) {
  WebhookReceiver receiver({std::string(spec_secret)});
  auto guarded = make_webhook_sender(WebhookOptions{.timeout = std::chrono::seconds(2)});
  const std::string port = std::to_string(receiver.port());
  for (const std::string& url : std::vector<std::string>{
           "http://localhost:" + port + "/hooks", "http://[::1]:" + port + "/hooks",
           "http://[::ffff:127.0.0.1]:" + port + "/hooks", "http://10.0.0.5/hooks",
           "http://192.168.0.10/hooks", "http://169.254.169.254/latest/meta-data",
           "http://100.64.1.1/", "http://[fe80::1]/", "http://[fd00::1]/",
           "http://0.0.0.0:" + port}) {
    WebhookCase webhook(url);
    const SendResult result = webhook.send(*guarded);
    EXPECT_EQ(result.outcome, SendOutcome::permanent) << url << ": " << result.error;
    EXPECT_NE(result.error.find("not allowed"), std::string::npos) << url << ": " << result.error;
  }
  EXPECT_TRUE(receiver.received().empty());
}

TEST(WebhookSender, MalformedPayloadsArePermanentAndNameTheMember) {
  WebhookReceiver receiver({std::string(spec_secret)});
  auto sender = loopback_sender();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON"},
      {"[1,2]", "expected a JSON object"},
      {R"({"event_type":"X"})", "'body'"},
      {R"({"body":"{}"})", "'event_type'"},
      {R"({"event_type":"X","body":5})", "'body': expected a string"},
      {std::string(2 * 1024 * 1024, ' '), "larger than"},
  };
  for (const auto& [payload, expected] : cases) {
    WebhookCase webhook(receiver.url());
    webhook.delivery.payload = payload;
    const SendResult result = webhook.send(*sender);
    EXPECT_EQ(result.outcome, SendOutcome::permanent);
    EXPECT_NE(result.error.find(expected), std::string::npos) << result.error;
  }
  EXPECT_TRUE(receiver.received().empty());
}

TEST(WebhookSender, AnEndpointWithoutAnUnexpiredSecretOrWithAMalformedOneIsPermanent) {
  WebhookReceiver receiver({std::string(spec_secret)});
  auto sender = loopback_sender();
  WebhookCase expired(receiver.url());
  expired.endpoint.secrets[0].expires_at = now() - std::chrono::seconds(5);
  EXPECT_EQ(expired.send(*sender).outcome, SendOutcome::permanent);
  WebhookCase malformed(receiver.url());
  malformed.endpoint.secrets[0].secret = "plain-text";
  const SendResult result = malformed.send(*sender);
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_NE(result.error.find("secret"), std::string::npos);
  const SendResult no_endpoint = sender->send(SendRequest{expired.delivery, nullptr, now()});
  EXPECT_EQ(no_endpoint.outcome, SendOutcome::permanent);
  EXPECT_TRUE(receiver.received().empty());
}

}  // namespace
}  // namespace herald::notify
