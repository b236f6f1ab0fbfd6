#pragma once

// What the relay and the feed share of the NATS C client: owning pointers, error text, subject
// checks and one way to connect.

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "herald/error.hpp"

namespace herald::cluster::detail {

/// Owns one C object of the client and destroys it with its own function.
template <class T, void (*destroy)(T*)>
struct CDeleter {
  void operator()(T* p) const noexcept {
    if (p != nullptr) destroy(p);
  }
};
using OptionsPtr = std::unique_ptr<natsOptions, CDeleter<natsOptions, natsOptions_Destroy>>;
using ConnectionPtr =
    std::unique_ptr<natsConnection, CDeleter<natsConnection, natsConnection_Destroy>>;
using ContextPtr = std::unique_ptr<jsCtx, CDeleter<jsCtx, jsCtx_Destroy>>;
using MessagePtr = std::unique_ptr<natsMsg, CDeleter<natsMsg, natsMsg_Destroy>>;
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, CDeleter<jsStreamInfo, jsStreamInfo_Destroy>>;
using PubAckPtr = std::unique_ptr<jsPubAck, CDeleter<jsPubAck, jsPubAck_Destroy>>;
using SubscriptionPtr =
    std::unique_ptr<natsSubscription, CDeleter<natsSubscription, natsSubscription_Destroy>>;
using MetaDataPtr = std::unique_ptr<jsMsgMetaData, CDeleter<jsMsgMetaData, jsMsgMetaData_Destroy>>;

/// The longest stream name accepted.
inline constexpr std::size_t max_stream_name_bytes = 64;

/// True for a character a subject token or stream name may hold here: [A-Za-z0-9_-].
bool is_token_char(char c) noexcept;
/// Why `prefix` is not dot-separated tokens of [A-Za-z0-9_-]; nullopt when it is.
std::optional<std::string> check_subject_prefix(std::string_view prefix);
/// Why `url` is not a comma-separated list of NATS server URLs (`nats://` or `tls://`, an optional
/// `user:password@`, a host, an optional numeric port); nullopt when it is. The client library
/// accepts nearly anything when the option is set and fails only when it connects.
std::optional<std::string> check_nats_url(std::string_view url);
/// Why `stream` is not 1 to 64 of [A-Za-z0-9_-]; nullopt when it is.
std::optional<std::string> check_stream_name(std::string_view stream);
/// An `invalid_argument` error naming the first of `url`, `stream` and `subject_prefix` that is
/// malformed (the options the relay and the feed share); nullopt when all three are well formed.
std::optional<Error> check_stream_options(std::string_view url, std::string_view stream,
                                          std::string_view subject_prefix);
/// "what: status text (status N), JetStream error E: the client's last error".
std::string nats_failure(std::string_view what, natsStatus status, jsErrCode js_error = {});
/// An `io` error carrying `nats_failure`.
Error nats_error(std::string_view what, natsStatus status, jsErrCode js_error = {});
/// The value of header `name` of `message` as a position; nullopt when missing or not one.
std::optional<std::int64_t> position_of(natsMsg* message, std::string_view name);

/// A connection that reconnects forever and whose first connect goes on in the background, with
/// its JetStream context.
struct JetStreamConnection {
  OptionsPtr options;
  ConnectionPtr connection;
  ContextPtr context;

  JetStreamConnection() = default;
  JetStreamConnection(JetStreamConnection&&) noexcept = default;
  JetStreamConnection& operator=(JetStreamConnection&&) noexcept = default;
  /// Closes the connection (the context first, which uses it).
  ~JetStreamConnection();
  /// True while connected to a server.
  bool connected() const noexcept;
};

/// Connects to `url` (several separated by commas) as `client_name`; a server that is down is not
/// an error; `configure` may set more of the JetStream context's options. Errors:
/// `invalid_argument` (field "url") for a malformed URL, `unavailable` when the client cannot be
/// set up.
std::expected<JetStreamConnection, Error> connect_jetstream(
    const std::string& url, std::chrono::milliseconds timeout, const char* client_name,
    const std::function<void(jsOptions&)>& configure = {});

}  // namespace herald::cluster::detail
