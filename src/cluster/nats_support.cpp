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

std::optional<std::string> check_nats_url(std::string_view url) {
  constexpr std::size_t max_url_bytes = 4096;
  if (url.empty() || url.size() > max_url_bytes) {
    return fmt::format(
        "expected a NATS URL such as nats://host:4222 (at most {} bytes), got {} "
        "bytes",
        max_url_bytes, url.size());
  }
  std::string_view rest = url;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view one = rest.substr(0, comma);
    const auto bad = [&](std::string_view why) {
      return fmt::format(
          "'{}' is not a NATS server URL ({}); expected nats://host:4222 or "
          "tls://host:4222",
          one.substr(0, 200), why);
    };
    std::size_t start = 0;
    if (const std::size_t scheme = one.find("://"); scheme != std::string_view::npos) {
      const std::string_view name = one.substr(0, scheme);
      if (name != "nats" && name != "tls") return bad("the scheme must be nats or tls");
      start = scheme + 3;
    } else {
      return bad("no scheme");
    }
    std::string_view authority = one.substr(start);
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
      authority = authority.substr(at + 1);
    }
    if (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
    std::string_view host = authority;
    std::string_view port;
    if (authority.starts_with('[')) {
      const std::size_t close = authority.find(']');
      if (close == std::string_view::npos) return bad("an unclosed IPv6 address");
      host = authority.substr(0, close + 1);
      const std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') return bad("text after the IPv6 address");
        port = after.substr(1);
        if (port.empty()) return bad("an empty port");
      }
    } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("an empty port");
    }
    if (host.empty()) return bad("no host");
    const bool host_ok = std::ranges::all_of(host, [](char c) {
      return is_token_char(c) || c == '.' || c == '[' || c == ']' || c == ':' || c == '%';
    });
    if (!host_ok) return bad("the host has characters a host name cannot");
    if (!port.empty()) {
      unsigned value = 0;
      const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
        return bad("the port must be a number from 1 to 65535");
      }
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
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

std::optional<Error> check_stream_options(std::string_view url, std::string_view stream,
                                          std::string_view subject_prefix) {
  if (auto problem = check_nats_url(url)) {
    return Error::for_field(ErrorCode::invalid_argument, "url", *problem);
  }
  if (auto problem = check_stream_name(stream)) {
    return Error::for_field(ErrorCode::invalid_argument, "stream", *problem);
  }
  if (auto problem = check_subject_prefix(subject_prefix)) {
    return Error::for_field(ErrorCode::invalid_argument, "subject_prefix", *problem);
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
