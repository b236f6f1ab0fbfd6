#pragma once

// A fake of Discord's REST API v10 for tests: Create DM, Create Message and Execute Webhook,
// with Discord's error bodies, per-route rate-limit buckets (X-RateLimit-* headers, 429 with
// `retry_after`) and scripted failures (429, global 429, any status, a request never answered).

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "loopback_http_server.hpp"

namespace herald::notify::testing {

/// How the fake behaves.
struct FakeDiscordOptions {
  std::uint16_t port = 0;
  /// The bot token it accepts ("Authorization: Bot <token>").
  std::string bot_token = "fake-bot-token";
  /// The token of every channel webhook it accepts (/webhooks/<id>/<token>).
  std::string webhook_token = "fake-webhook-token";
  /// Requests per route before a bucket is exhausted.
  int bucket_size = 5;
  /// Seconds until an exhausted bucket refills.
  double bucket_reset_after = 1.0;
};

/// A failure to answer the next matching request with.
struct ScriptedFailure {
  /// 429, 500, 403, …
  unsigned status = 500;
  /// For 429: the body's `retry_after`, in seconds.
  double retry_after = 0.5;
  /// For 429: a global rate limit.
  bool global = false;
  /// Discord's error code and message for the body ({"message","code"}).
  int code = 0;
  std::string message = "Internal Server Error";
  /// Never answer (the connection stays open until the fake stops).
  bool hang = false;
  /// Only requests whose path contains this; empty: any request.
  std::string path_contains;
};

/// What the fake received and accepted.
struct ReceivedMessage {
  /// "dm" or "webhook".
  std::string kind;
  std::string channel_id;
  std::string webhook_id;
  std::string content;
  std::string target;
  std::string user_agent;
  bool wait = false;
};

/// The fake server; thread-safe.
class FakeDiscord {
 public:
  explicit FakeDiscord(FakeDiscordOptions options = {});
  ~FakeDiscord();

  std::uint16_t port() const noexcept { return server_->port(); }
  /// "http://127.0.0.1:<port>/api/v10".
  std::string api_base() const;
  /// A channel webhook URL the fake accepts.
  std::string webhook_url(const std::string& webhook_id) const;
  /// Queues a failure.
  void script(ScriptedFailure failure);
  /// Messages accepted so far.
  std::vector<ReceivedMessage> messages() const;
  /// Requests seen on the API (not /_fake), answered or not.
  int api_requests() const;
  /// Create DM requests seen.
  int dm_channel_requests() const;
  /// 429s sent because a bucket ran out (not scripted ones).
  int rate_limited_answers() const;
  /// `messages()` as JSON (what GET /_fake/messages returns).
  std::string messages_json() const;
  void stop();

 private:
  struct Bucket {
    int used = 0;
    std::chrono::steady_clock::time_point reset_at{};
  };

  std::optional<HttpResponseMessage> handle(const HttpRequestMessage& request);
  std::optional<HttpResponseMessage> handle_api(const HttpRequestMessage& request,
                                                const std::string& path);
  std::optional<HttpResponseMessage> handle_fake(const HttpRequestMessage& request,
                                                 const std::string& path);

  FakeDiscordOptions options_;
  mutable std::mutex mutex_;
  std::deque<ScriptedFailure> script_;
  std::vector<ReceivedMessage> messages_;
  std::map<std::string, Bucket> buckets_;
  std::map<std::string, std::string> dm_channels_;
  std::uint64_t next_channel_ = 900000000000000000ULL;
  int api_requests_ = 0;
  int dm_channel_requests_ = 0;
  int rate_limited_answers_ = 0;
  std::unique_ptr<LoopbackHttpServer> server_;
};

}  // namespace herald::notify::testing
