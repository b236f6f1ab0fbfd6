#include "fake_discord.hpp"

#include <fmt/core.h>

#include <boost/json.hpp>

#include <cmath>

namespace herald::notify::testing {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

std::string error_body(std::string_view message, int code) {
  return json::serialize(json::object{{"message", message}, {"code", code}});
}

bool is_snowflake(std::string_view text) {
  return !text.empty() && text.size() <= 20 &&
         text.find_first_not_of("0123456789") == std::string_view::npos;
}

std::size_t characters(std::string_view text) {
  std::size_t count = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= path.size()) {
    const auto end = path.find('/', start);
    parts.emplace_back(path.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

}  // namespace

FakeDiscord::FakeDiscord(FakeDiscordOptions options) : options_(std::move(options)) {
  server_ = std::make_unique<LoopbackHttpServer>(
      [this](const HttpRequestMessage& request) { return handle(request); }, options_.port);
}

FakeDiscord::~FakeDiscord() { stop(); }

void FakeDiscord::stop() { server_->stop(); }

std::string FakeDiscord::api_base() const { return server_->origin() + "/api/v10"; }

std::string FakeDiscord::webhook_url(const std::string& webhook_id) const {
  return server_->origin() + "/api/webhooks/" + webhook_id + "/" + options_.webhook_token;
}

void FakeDiscord::script(ScriptedFailure failure) {
  std::lock_guard lock(mutex_);
  script_.push_back(std::move(failure));
}

std::vector<ReceivedMessage> FakeDiscord::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

int FakeDiscord::api_requests() const {
  std::lock_guard lock(mutex_);
  return api_requests_;
}

int FakeDiscord::dm_channel_requests() const {
  std::lock_guard lock(mutex_);
  return dm_channel_requests_;
}

int FakeDiscord::rate_limited_answers() const {
  std::lock_guard lock(mutex_);
  return rate_limited_answers_;
}

std::string FakeDiscord::messages_json() const {
  json::array out;
  for (const auto& m : messages()) {
    out.push_back(json::object{{"kind", m.kind},
                               {"channel_id", m.channel_id},
                               {"webhook_id", m.webhook_id},
                               {"content", m.content},
                               {"user_agent", m.user_agent},
                               {"wait", m.wait}});
  }
  return json::serialize(out);
}

std::optional<HttpResponseMessage> FakeDiscord::handle(const HttpRequestMessage& request) {
  const std::string target(request.target());
  const std::string path = target.substr(0, target.find('?'));
  if (path.starts_with("/_fake/")) return handle_fake(request, path);
  return handle_api(request, path);
}

std::optional<HttpResponseMessage> FakeDiscord::handle_fake(const HttpRequestMessage& request,
                                                            const std::string& path) {
  if (path == "/_fake/messages" && request.method() == bhttp::verb::get) {
    return json_response(request, 200, messages_json());
  }
  if (path == "/_fake/script" && request.method() == bhttp::verb::post) {
    boost::system::error_code ec;
    const json::value body = json::parse(request.body(), ec);
    if (ec || !body.is_object()) return json_response(request, 400, error_body("bad script", 0));
    const auto& o = body.as_object();
    ScriptedFailure failure;
    if (const auto* v = o.if_contains("status"); v && v->is_int64()) {
      failure.status = static_cast<unsigned>(v->as_int64());
    }
    if (const auto* v = o.if_contains("retry_after"); v && v->is_number()) {
      failure.retry_after = v->to_number<double>();
    }
    if (const auto* v = o.if_contains("global"); v && v->is_bool()) failure.global = v->as_bool();
    if (const auto* v = o.if_contains("hang"); v && v->is_bool()) failure.hang = v->as_bool();
    if (const auto* v = o.if_contains("code"); v && v->is_int64()) {
      failure.code = static_cast<int>(v->as_int64());
    }
    if (const auto* v = o.if_contains("message"); v && v->is_string()) {
      failure.message = std::string(v->as_string());
    }
    if (const auto* v = o.if_contains("path_contains"); v && v->is_string()) {
      failure.path_contains = std::string(v->as_string());
    }
    script(std::move(failure));
    return json_response(request, 200, "{}");
  }
  return json_response(request, 404, error_body("404: Not Found", 0));
}

std::optional<HttpResponseMessage> FakeDiscord::handle_api(const HttpRequestMessage& request,
                                                           const std::string& path) {
  std::optional<ScriptedFailure> failure;
  {
    std::lock_guard lock(mutex_);
    ++api_requests_;
    if (path.ends_with("/users/@me/channels")) ++dm_channel_requests_;
    for (auto it = script_.begin(); it != script_.end(); ++it) {
      if (it->path_contains.empty() || path.find(it->path_contains) != std::string::npos) {
        failure = std::move(*it);
        script_.erase(it);
        break;
      }
    }
  }
  if (failure) {
    if (failure->hang) {
      server_->wait_or_stop(std::chrono::minutes(5));
      return std::nullopt;
    }
    if (failure->status == 429) {
      auto response =
          json_response(request, 429,
                        json::serialize(json::object{{"message", "You are being rate limited."},
                                                     {"retry_after", failure->retry_after},
                                                     {"global", failure->global}}));
      response.set("Retry-After",
                   std::to_string(static_cast<int>(std::ceil(failure->retry_after))));
      if (failure->global) {
        response.set("X-RateLimit-Global", "true");
        response.set("X-RateLimit-Scope", "global");
      }
      return response;
    }
    return json_response(request, failure->status, error_body(failure->message, failure->code));
  }

  const std::vector<std::string> parts = split_path(path);
  const std::string user_agent(request[bhttp::field::user_agent]);
  if (request.method() != bhttp::verb::post) {
    return json_response(request, 405, error_body("405: Method Not Allowed", 0));
  }
  const bool versioned = parts.size() > 1 && parts[0] == "api" && parts[1] == "v10";
  const std::size_t first = versioned ? 2 : 1;
  // Execute Webhook: /api[/v10]/webhooks/{id}/{token}; the token in the URL is the credential.
  const bool execute_webhook =
      parts.size() == first + 3 && parts[0] == "api" && parts[first] == "webhooks";
  const bool create_dm = versioned && parts.size() == 5 && parts[2] == "users" &&
                         parts[3] == "@me" && parts[4] == "channels";
  const bool create_message =
      versioned && parts.size() == 5 && parts[2] == "channels" && parts[4] == "messages";
  std::string route;
  if (execute_webhook) {
    if (parts[first + 2] != options_.webhook_token || !is_snowflake(parts[first + 1])) {
      return json_response(request, 401, error_body("Invalid Webhook Token", 50027));
    }
    route = "webhooks/" + parts[first + 1];
  } else if (create_dm || create_message) {
    if (request[bhttp::field::authorization] != "Bot " + options_.bot_token) {
      return json_response(request, 401, error_body("401: Unauthorized", 0));
    }
    route = create_dm ? "users/@me/channels" : "channels/" + parts[3];
  } else {
    return json_response(request, 404, error_body("404: Not Found", 0));
  }
  if (request[bhttp::field::content_type] != "application/json") {
    return json_response(request, 400, error_body("Invalid Form Body", 50035));
  }
  boost::system::error_code ec;
  const json::value body = json::parse(request.body(), ec);
  if (ec || !body.is_object()) {
    return json_response(request, 400,
                         error_body("The request body contains invalid JSON.", 50109));
  }

  std::lock_guard lock(mutex_);
  auto& bucket = buckets_[route];
  const auto now = std::chrono::steady_clock::now();
  if (now >= bucket.reset_at) {
    bucket.used = 0;
    bucket.reset_at =
        now + std::chrono::milliseconds(static_cast<long>(options_.bucket_reset_after * 1000));
  }
  const double reset_after = std::chrono::duration<double>(bucket.reset_at - now).count();
  const auto limited = [&](HttpResponseMessage response) {
    response.set("X-RateLimit-Limit", std::to_string(options_.bucket_size));
    response.set("X-RateLimit-Remaining", std::to_string(options_.bucket_size - bucket.used));
    response.set("X-RateLimit-Reset-After", fmt::format("{:.3f}", reset_after));
    response.set("X-RateLimit-Bucket", fmt::format("{:x}", std::hash<std::string>{}(route)));
    return response;
  };
  if (bucket.used >= options_.bucket_size) {
    ++rate_limited_answers_;
    auto response =
        json_response(request, 429,
                      json::serialize(json::object{{"message", "You are being rate limited."},
                                                   {"retry_after", reset_after},
                                                   {"global", false}}));
    response.set("Retry-After", std::to_string(static_cast<int>(std::ceil(reset_after))));
    response.set("X-RateLimit-Scope", "user");
    return limited(std::move(response));
  }
  ++bucket.used;

  const auto& object = body.as_object();
  if (create_dm) {
    const json::value* recipient = object.if_contains("recipient_id");
    if (recipient == nullptr || !recipient->is_string() || !is_snowflake(recipient->as_string())) {
      return limited(json_response(request, 400, error_body("Invalid Form Body", 50035)));
    }
    const std::string recipient_id(recipient->as_string());
    auto [it, added] = dm_channels_.try_emplace(recipient_id, "");
    if (added) it->second = std::to_string(next_channel_++);
    return limited(
        json_response(request, 200,
                      json::serialize(json::object{
                          {"id", it->second},
                          {"type", 1},
                          {"recipients", json::array{json::object{{"id", recipient_id}}}}})));
  }
  const auto content_error = [&](const json::value* content) -> std::optional<HttpResponseMessage> {
    if (content == nullptr || !content->is_string() || content->as_string().empty()) {
      return limited(
          json_response(request, 400, error_body("Cannot send an empty message", 50006)));
    }
    if (characters(content->as_string()) > 2000) {
      return limited(json_response(
          request, 400,
          R"({"message":"Invalid Form Body","code":50035,"errors":{"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 2000 or fewer in length."}]}}})"));
    }
    return std::nullopt;
  };
  if (execute_webhook) {
    const json::value* content = object.if_contains("content");
    if (auto refused = content_error(content)) return refused;
    ReceivedMessage message;
    message.kind = "webhook";
    message.webhook_id = parts[first + 1];
    message.target = std::string(request.target());
    message.user_agent = user_agent;
    message.wait = message.target.find("wait=true") != std::string::npos;
    message.content = std::string(content->as_string());
    messages_.push_back(message);
    if (!message.wait) return limited(json_response(request, 204, ""));
    return limited(
        json_response(request, 200,
                      json::serialize(json::object{{"id", std::to_string(next_channel_++)},
                                                   {"content", message.content},
                                                   {"webhook_id", message.webhook_id}})));
  }
  bool known = false;
  for (const auto& [recipient, channel] : dm_channels_) known = known || channel == parts[3];
  if (!known) return limited(json_response(request, 404, error_body("Unknown Channel", 10003)));
  const json::value* content = object.if_contains("content");
  if (auto refused = content_error(content)) return refused;
  ReceivedMessage message;
  message.kind = "dm";
  message.channel_id = parts[3];
  message.content = std::string(content->as_string());
  message.target = std::string(request.target());
  message.user_agent = user_agent;
  messages_.push_back(message);
  return limited(json_response(request, 200,
                               json::serialize(json::object{{"id", std::to_string(next_channel_++)},
                                                            {"channel_id", message.channel_id},
                                                            {"content", message.content}})));
}

}  // namespace herald::notify::testing
