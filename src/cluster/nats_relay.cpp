#include "herald/cluster/nats_relay.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "herald/durable_consumer.hpp"
#include "herald/event.hpp"
#include "herald/json.hpp"
#include "nats_support.hpp"

namespace herald::cluster {

using namespace detail;

namespace {

constexpr std::chrono::milliseconds min_duplicate_window{1000};
constexpr std::chrono::milliseconds min_request_timeout{10};

}  // namespace

std::string relay_subject(std::string_view subject_prefix, EventRef event) {
  std::string subject(subject_prefix);
  subject += '.';
  if (event->organization_id) {
    subject += std::to_string(*event->organization_id);
  } else {
    subject += "none";
  }
  subject += '.';
  const std::string_view type = event.event_type();
  if (type.empty()) subject += '_';
  for (const char c : type) subject += is_token_char(c) ? c : '_';
  return subject;
}

class NatsRelay::Impl {
 public:
  Impl(EventStore& store, NatsRelayOptions options)
      : store_(store),
        options_(std::move(options)),
        all_subjects_(options_.subject_prefix + ".>") {}

  ~Impl() { stop(); }

  std::expected<void, Error> connect() {
    auto connected = connect_jetstream(options_.url, options_.request_timeout, "herald-relay");
    if (!connected) return std::unexpected(std::move(connected.error()));
    nats_ = std::move(*connected);
    return {};
  }

  std::expected<void, Error> start() {
    std::scoped_lock lock(mutex_);
    if (consumer_ && consumer_->running()) {
      return std::unexpected(Error{
          ErrorCode::conflict, fmt::format("relay '{}' is running", options_.consumer_name), {}});
    }
    // A fresh consumer loads the checkpoint from the store: another node may have moved it while
    // this one was not leading.
    consumer_.reset();
    prepared_ = false;
    ConsumerOptions consumer_options{
        .name = options_.consumer_name,
        .max_attempts = 0,
        .backoff_base = options_.backoff_base,
        .backoff_max = options_.backoff_max,
        .on_retry = [this](const StoredEvent&, int, std::chrono::milliseconds,
                           const Error& error) { report(error); },
        .on_error = [this](const Error& error) { report(error); },
    };
    consumer_ = std::make_shared<DurableConsumer>(
        store_, std::move(consumer_options),
        [this](const StoredEvent& stored, const Delivery&) { return publish(stored); });
    return consumer_->start();
  }

  void stop() {
    std::scoped_lock lock(mutex_);
    if (consumer_) consumer_->stop();
  }

  bool running() const {
    std::scoped_lock lock(mutex_);
    return consumer_ && consumer_->running();
  }

  bool wait_for_position(std::int64_t position, std::chrono::milliseconds timeout) {
    std::shared_ptr<DurableConsumer> consumer;
    {
      std::scoped_lock lock(mutex_);
      consumer = consumer_;
    }
    if (consumer == nullptr) return false;
    return consumer->wait_for_checkpoint(position, timeout);
  }

  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> skipped{0};

 private:
  void report(const Error& error) {
    if (options_.on_error) {
      options_.on_error(error);
    } else {
      fmt::print(stderr, "herald: relay '{}': {}\n", options_.consumer_name, error.message);
    }
  }

  // Makes sure the stream exists and learns the highest position it holds. Runs on the consumer's
  // thread before the first publish after a start, and again after a failed publish (the stream
  // may have been recreated, or the failed publish may have been stored after all).
  std::expected<void, Error> prepare() {
    jsErrCode js_error{};
    jsStreamInfo* raw_info = nullptr;
    natsStatus s = js_GetStreamInfo(&raw_info, nats_.context.get(), options_.stream.c_str(),
                                    nullptr, &js_error);
    StreamInfoPtr info(raw_info);
    if (s != NATS_OK && js_error == JSStreamNotFoundErr) {
      const char* subjects[] = {all_subjects_.c_str()};
      jsStreamConfig config;
      jsStreamConfig_Init(&config);
      config.Name = options_.stream.c_str();
      config.Subjects = subjects;
      config.SubjectsLen = 1;
      config.Storage = js_FileStorage;
      config.Duplicates =
          std::chrono::duration_cast<std::chrono::nanoseconds>(options_.duplicate_window).count();
      js_error = jsErrCode{};
      raw_info = nullptr;
      s = js_AddStream(&raw_info, nats_.context.get(), &config, nullptr, &js_error);
      info.reset(raw_info);
    }
    if (s != NATS_OK) {
      return std::unexpected(
          nats_error(fmt::format("stream '{}' on {}", options_.stream, options_.url), s, js_error));
    }

    acked_through_ = 0;
    last_sequence_ = info->State.LastSeq;
    if (info->State.Msgs > 0) {
      natsMsg* raw_last = nullptr;
      js_error = jsErrCode{};
      s = js_GetLastMsg(&raw_last, nats_.context.get(), options_.stream.c_str(),
                        all_subjects_.c_str(), nullptr, &js_error);
      MessagePtr last(raw_last);
      if (s == NATS_OK) {
        const char* value = nullptr;
        if (natsMsgHeader_Get(last.get(), std::string(position_header).c_str(), &value) ==
                NATS_OK &&
            value != nullptr) {
          auto position = position_of(last.get(), position_header);
          if (!position) {
            return std::unexpected(
                Error{ErrorCode::conflict,
                      fmt::format("stream '{}': the last message's {} header is '{}', expected a "
                                  "position; is the stream written by something other than herald?",
                                  options_.stream, position_header, value),
                      {}});
          }
          acked_through_ = *position;
        }
      } else if (js_error != JSNoMessageFoundErr && s != NATS_NOT_FOUND) {
        return std::unexpected(nats_error(
            fmt::format("the last message of stream '{}'", options_.stream), s, js_error));
      }
    }
    prepared_ = true;
    return {};
  }

  std::expected<void, Error> publish(const StoredEvent& stored) {
    if (!prepared_) {
      if (auto ready = prepare(); !ready) return ready;
    }
    if (stored.position <= acked_through_) {
      skipped.fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    const EventRef event = stored.event;
    const std::string subject = relay_subject(options_.subject_prefix, event);
    const std::string body = encode_event(event);
    const std::string id = event->event_id.to_string();
    const std::string position = std::to_string(stored.position);

    natsMsg* raw_message = nullptr;
    natsStatus s = natsMsg_Create(&raw_message, subject.c_str(), nullptr, body.data(),
                                  static_cast<int>(body.size()));
    MessagePtr message(raw_message);
    if (s == NATS_OK) {
      s = natsMsgHeader_Set(message.get(), std::string(position_header).c_str(), position.c_str());
    }
    if (s != NATS_OK) return std::unexpected(nats_error("building the message", s));

    jsPubOptions publish_options;
    jsPubOptions_Init(&publish_options);
    // The client sends MsgId as the Nats-Msg-Id header (JetStream's de-duplication).
    publish_options.MsgId = id.c_str();
    publish_options.MaxWait = options_.request_timeout.count();
    // JetStream refuses the publish unless the stream's last message is the one this relay last
    // saw (nats.h: jsPubOptions.ExpectLastSeq; 0 checks nothing, for an empty stream). Two relays
    // at once (a lost lease not noticed yet) stay in order through the duplicate window alone, as
    // each publishes an event only after the one before it was stored; this check also covers a
    // relay that stalled for longer than that window and would append an old event again. The
    // refused relay reads the stream's last message again and skips what is there.
    publish_options.ExpectLastSeq = last_sequence_;
    jsErrCode js_error{};
    jsPubAck* raw_ack = nullptr;
    s = js_PublishMsg(&raw_ack, nats_.context.get(), message.get(), &publish_options, &js_error);
    PubAckPtr ack(raw_ack);
    if (s != NATS_OK) {
      // The publish may have been stored with its acknowledgment lost: learn the stream's last
      // position again before the retry.
      prepared_ = false;
      return std::unexpected(nats_error(
          fmt::format("publishing event {} (position {}) to '{}'", id, stored.position, subject), s,
          js_error));
    }
    if (ack && ack->Duplicate) {
      duplicates.fetch_add(1, std::memory_order_relaxed);
    } else {
      published.fetch_add(1, std::memory_order_relaxed);
    }
    acked_through_ = stored.position;
    if (ack) last_sequence_ = ack->Sequence;
    return {};
  }

  EventStore& store_;
  NatsRelayOptions options_;
  std::string all_subjects_;

  JetStreamConnection nats_;

  mutable std::mutex mutex_;
  // Shared with wait_for_position, which waits without holding mutex_ while start() may replace it.
  std::shared_ptr<DurableConsumer> consumer_;

  // Touched by the consumer's thread only (start() sets prepared_ before that thread runs).
  bool prepared_ = false;
  std::int64_t acked_through_ = 0;
  // The stream sequence of the stream's last message as this relay knows it (0: empty).
  std::uint64_t last_sequence_ = 0;
};

std::expected<std::unique_ptr<NatsRelay>, Error> NatsRelay::create(EventStore& store,
                                                                   NatsRelayOptions options) {
  if (options.url.empty()) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "url",
                         "expected a NATS URL such as nats://host:4222, got ''"));
  }
  if (auto problem = check_stream_name(options.stream)) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "stream", *problem));
  }
  if (auto problem = check_subject_prefix(options.subject_prefix)) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "subject_prefix", *problem));
  }
  if (options.duplicate_window < min_duplicate_window) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "duplicate_window",
        fmt::format("expected at least {} ms, got {} ms", min_duplicate_window.count(),
                    options.duplicate_window.count())));
  }
  if (options.request_timeout < min_request_timeout) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "request_timeout",
        fmt::format("expected at least {} ms, got {} ms", min_request_timeout.count(),
                    options.request_timeout.count())));
  }
  if (options.consumer_name.empty()) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "consumer_name", "expected a name, got ''"));
  }
  auto impl = std::make_unique<Impl>(store, std::move(options));
  if (auto connected = impl->connect(); !connected) return std::unexpected(connected.error());
  return std::unique_ptr<NatsRelay>(new NatsRelay(std::move(impl)));
}

NatsRelay::NatsRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NatsRelay::~NatsRelay() = default;

std::expected<void, Error> NatsRelay::start() { return impl_->start(); }

void NatsRelay::stop() { impl_->stop(); }

bool NatsRelay::running() const noexcept { return impl_->running(); }

bool NatsRelay::wait_for_position(std::int64_t position, std::chrono::milliseconds timeout) {
  return impl_->wait_for_position(position, timeout);
}

std::uint64_t NatsRelay::published() const noexcept { return impl_->published.load(); }

std::uint64_t NatsRelay::duplicates() const noexcept { return impl_->duplicates.load(); }

std::uint64_t NatsRelay::skipped() const noexcept { return impl_->skipped.load(); }

}  // namespace herald::cluster
