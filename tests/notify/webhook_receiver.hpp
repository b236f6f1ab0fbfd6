#pragma once

// A webhook receiver for tests that checks Standard Webhooks signatures with its own HMAC code
// (written from the spec, independent of herald's), rejects bad ones with 401, records what it
// accepted and answers scripted statuses and delays.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "loopback_http_server.hpp"

namespace herald::notify::testing {

/// A request the receiver got.
struct ReceivedWebhook {
  std::string id;
  std::string timestamp;
  std::string signature;
  std::string content_type;
  std::string body;
  /// Whether one of the signatures matched one of the receiver's secrets.
  bool verified = false;
};

/// A scripted answer to the next request.
struct ScriptedAnswer {
  unsigned status = 200;
  /// Wait this long before answering.
  std::chrono::milliseconds delay{0};
  /// Extra headers ("Retry-After" → "7").
  std::map<std::string, std::string> headers;
};

/// The receiver; thread-safe.
class WebhookReceiver {
 public:
  /// Accepts signatures made with any of `secrets` ("whsec_…").
  explicit WebhookReceiver(std::vector<std::string> secrets);
  ~WebhookReceiver();

  /// "http://127.0.0.1:<port>/hooks".
  std::string url() const;
  std::uint16_t port() const noexcept { return server_->port(); }
  /// Accepts signatures made with `secret` too (an endpoint registered after the receiver
  /// started, since its URL names the receiver's port).
  void add_secret(std::string secret);
  /// Queues an answer for the next verified request.
  void script(ScriptedAnswer answer);
  /// Every request received, verified or not.
  std::vector<ReceivedWebhook> received() const;
  void stop();

  /// "v1," + base64(HMAC-SHA256(base64-decoded secret, "<id>.<timestamp>.<body>")).
  static std::string sign(const std::string& secret, const std::string& id,
                          const std::string& timestamp, const std::string& body);

 private:
  std::optional<HttpResponseMessage> handle(const HttpRequestMessage& request);

  std::vector<std::string> secrets_;
  mutable std::mutex mutex_;
  std::deque<ScriptedAnswer> script_;
  std::vector<ReceivedWebhook> received_;
  std::unique_ptr<LoopbackHttpServer> server_;
};

}  // namespace herald::notify::testing
