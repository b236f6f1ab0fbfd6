#include "nats_support.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>

namespace herald::cluster::detail {

namespace {

constexpr std::size_t max_subject_prefix_bytes = 200;
constexpr std::chrono::milliseconds reconnect_wait{250};

// With a connected callback the first connect is asynchronous; the connection's users learn of it
// by their next request succeeding.
void on_connected(natsConnection*, void*) {}

}  // namespace

bool is_token_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::optional<std::string> check_subject_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > max_subject_prefix_bytes) {
    return fmt::format("expected 1 to {} characters, got {}", max_subject_prefix_bytes,
                       prefix.size());
  }
  std::size_t token_start = 0;
  for (std::size_t i = 0; i <= prefix.size(); ++i) {
    if (i == prefix.size() || prefix[i] == '.') {
      if (i == token_start) {
        return fmt::format("expected dot-separated non-empty tokens, got '{}'", prefix);
      }
      token_start = i + 1;
    } else if (!is_token_char(prefix[i])) {
      return fmt::format("expected tokens of [A-Za-z0-9_-], got '{}'", prefix);
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_stream_name(std::string_view stream) {
  if (stream.empty() || stream.size() > max_stream_name_bytes ||
      !std::ranges::all_of(stream, is_token_char)) {
    return fmt::format("expected 1 to {} of [A-Za-z0-9_-], got '{}'", max_stream_name_bytes,
                       stream.substr(0, max_stream_name_bytes + 1));
  }
  return std::nullopt;
}

std::string nats_failure(std::string_view what, natsStatus status, jsErrCode js_error) {
  std::string message =
      fmt::format("{}: {} (status {})", what, natsStatus_GetText(status), static_cast<int>(status));
  if (js_error != 0) message += fmt::format(", JetStream error {}", static_cast<int>(js_error));
  if (const char* detail = nats_GetLastError(nullptr); detail != nullptr && *detail != '\0') {
    message += fmt::format(": {}", detail);
  }
  return message;
}

Error nats_error(std::string_view what, natsStatus status, jsErrCode js_error) {
  return Error{ErrorCode::io, nats_failure(what, status, js_error), {}};
}

std::optional<std::int64_t> position_of(natsMsg* message, std::string_view name) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(message, std::string(name).c_str(), &value) != NATS_OK ||
      value == nullptr) {
    return std::nullopt;
  }
  const std::string_view text(value);
  std::int64_t position = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), position);
  if (ec != std::errc{} || end != text.data() + text.size() || position < 0) return std::nullopt;
  return position;
}

JetStreamConnection::~JetStreamConnection() {
  context.reset();
  if (connection) natsConnection_Close(connection.get());
  connection.reset();
  options.reset();
}

bool JetStreamConnection::connected() const noexcept {
  return connection && natsConnection_Status(connection.get()) == NATS_CONN_STATUS_CONNECTED;
}

std::expected<JetStreamConnection, Error> connect_jetstream(
    const std::string& url, std::chrono::milliseconds timeout, const char* client_name,
    const std::function<void(jsOptions&)>& configure) {
  JetStreamConnection out;
  natsOptions* raw_options = nullptr;
  if (const natsStatus s = natsOptions_Create(&raw_options); s != NATS_OK) {
    return std::unexpected(nats_error("creating the NATS client options", s));
  }
  out.options.reset(raw_options);
  natsOptions* o = out.options.get();
  natsStatus s = natsOptions_SetURL(o, url.c_str());
  if (s != NATS_OK) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "url",
                                            nats_failure("not a NATS server URL list", s)));
  }
  // Reconnect forever, and let the first connect go on in the background: NATS being down must
  // not stop the node.
  if (s = natsOptions_SetMaxReconnect(o, -1); s == NATS_OK) {
    s = natsOptions_SetReconnectWait(o, reconnect_wait.count());
  }
  // With a connected callback the first connect is asynchronous (nats.h:
  // natsOptions_SetRetryOnFailedConnect); without one it would block until a server answers.
  if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, nullptr);
  if (s == NATS_OK) s = natsOptions_SetTimeout(o, timeout.count());
  if (s == NATS_OK) s = natsOptions_SetName(o, client_name);
  if (s != NATS_OK) return std::unexpected(nats_error("setting the NATS client options", s));

  natsConnection* raw_connection = nullptr;
  s = natsConnection_Connect(&raw_connection, o);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return std::unexpected(
        Error{ErrorCode::unavailable, nats_failure("connecting to " + url, s), {}});
  }
  out.connection.reset(raw_connection);

  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = timeout.count();
  if (configure) configure(js_options);
  jsCtx* raw_context = nullptr;
  if (s = natsConnection_JetStream(&raw_context, out.connection.get(), &js_options); s != NATS_OK) {
    return std::unexpected(nats_error("creating the JetStream context", s));
  }
  out.context.reset(raw_context);
  return out;
}

}  // namespace herald::cluster::detail
