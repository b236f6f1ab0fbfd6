#include "webhook_receiver.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <charconv>
#include <sstream>

namespace herald::notify::testing {
namespace {

namespace bhttp = boost::beast::http;

std::string openssl_base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string openssl_unbase64(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return {};
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t length = static_cast<std::size_t>(n);
  if (text.ends_with("==")) {
    length -= 2;
  } else if (text.ends_with("=")) {
    length -= 1;
  }
  out.resize(length);
  return out;
}

}  // namespace

std::string WebhookReceiver::sign(const std::string& secret, const std::string& id,
                                  const std::string& timestamp, const std::string& body) {
  // Standard Webhooks, "Verifying webhooks": strip "whsec_", base64-decode the rest, and HMAC
  // "msg_id.timestamp.payload" with SHA-256.
  const std::string key = openssl_unbase64(secret.substr(secret.find('_') + 1));
  const std::string content = id + "." + timestamp + "." + body;
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac.data(), &length);
  return "v1," + openssl_base64(mac.data(), length);
}

WebhookReceiver::WebhookReceiver(std::vector<std::string> secrets) : secrets_(std::move(secrets)) {
  server_ = std::make_unique<LoopbackHttpServer>(
      [this](const HttpRequestMessage& request) { return handle(request); });
}

WebhookReceiver::~WebhookReceiver() { stop(); }

void WebhookReceiver::stop() { server_->stop(); }

std::string WebhookReceiver::url() const { return server_->origin() + "/hooks"; }

void WebhookReceiver::script(ScriptedAnswer answer) {
  std::lock_guard lock(mutex_);
  script_.push_back(std::move(answer));
}

std::vector<ReceivedWebhook> WebhookReceiver::received() const {
  std::lock_guard lock(mutex_);
  return received_;
}

std::optional<HttpResponseMessage> WebhookReceiver::handle(const HttpRequestMessage& request) {
  ReceivedWebhook got;
  got.id = std::string(request["webhook-id"]);
  got.timestamp = std::string(request["webhook-timestamp"]);
  got.signature = std::string(request["webhook-signature"]);
  got.content_type = std::string(request[bhttp::field::content_type]);
  got.body = request.body();

  // Standard Webhooks: the header is a space-delimited list of "v1,<signature>"; any match
  // verifies. Compare in constant time.
  std::istringstream entries(got.signature);
  std::string entry;
  std::vector<std::string> secrets;
  {
    std::lock_guard lock(mutex_);
    secrets = secrets_;
  }
  while (entries >> entry && !got.verified) {
    for (const auto& secret : secrets) {
      const std::string expected = sign(secret, got.id, got.timestamp, got.body);
      if (expected.size() == entry.size() &&
          CRYPTO_memcmp(expected.data(), entry.data(), entry.size()) == 0) {
        got.verified = true;
      }
    }
  }
  // The spec also asks receivers to refuse stale timestamps (replay protection): 5 minutes.
  std::int64_t timestamp = 0;
  const auto [end, ec] =
      std::from_chars(got.timestamp.data(), got.timestamp.data() + got.timestamp.size(), timestamp);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (ec != std::errc() || end != got.timestamp.data() + got.timestamp.size() ||
      std::abs(now - timestamp) > 300) {
    got.verified = false;
  }

  ScriptedAnswer answer;
  {
    std::lock_guard lock(mutex_);
    received_.push_back(got);
    if (!got.verified) return json_response(request, 401, R"({"error":"bad signature"})");
    if (!script_.empty()) {
      answer = std::move(script_.front());
      script_.pop_front();
    }
  }
  if (answer.delay.count() > 0) server_->wait_or_stop(answer.delay);
  auto response = json_response(request, answer.status, "{}");
  for (const auto& [name, value] : answer.headers) response.set(name, value);
  return response;
}

}  // namespace herald::notify::testing

namespace herald::notify::testing {

void WebhookReceiver::add_secret(std::string secret) {
  std::lock_guard lock(mutex_);
  secrets_.push_back(std::move(secret));
}

}  // namespace herald::notify::testing
