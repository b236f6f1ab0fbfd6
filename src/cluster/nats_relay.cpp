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
    auto connected = connect_jetstream(options_.url, options_.request_timeout, "herald-relay",
                                       [this](jsOptions& js) {
                                         js.PublishAsync.AckHandler = &Impl::on_ack;
                                         js.PublishAsync.AckHandlerClosure = this;
                                         js.PublishAsync.MaxPending = 1024;
                                       });
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
    // Create the stream now rather than at the first publish, so that the nodes' feeds can
    // subscribe before any event arrives. Best effort: NATS may not answer yet, and the consumer's
    // thread prepares again before it publishes.
    if (nats_.connected()) (void)prepare();
    consumer_ = std::make_shared<DurableConsumer>(
        store_, std::move(consumer_options),
        [this](const StoredEvent& stored, const Delivery&) { return publish(stored); },
        [this](std::span<const StoredEvent> events, std::span<const Delivery>) {
          return publish_batch(events);
        });
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
        // The sequence and the position of one and the same message: the stream info's LastSeq
        // may already be newer (another relay's publish in between), and publishing with a
        // sequence older than the position would let a refused message be followed by an
        // accepted one, leaving a hole.
        last_sequence_ = natsMsg_GetSequence(last.get());
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
    const std::string id = stored.event->event_id.to_string();
    auto built = make_message(stored);
    if (!built) return std::unexpected(std::move(built.error()));
    MessagePtr message = std::move(*built);
    natsStatus s = NATS_OK;

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
      return std::unexpected(
          nats_error(fmt::format("publishing event {} (position {}) to '{}'", id, stored.position,
                                 natsMsg_GetSubject(message.get())),
                     s, js_error));
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

  // The message of `stored`: its subject, the event's JSON, the position header.
  std::expected<MessagePtr, Error> make_message(const StoredEvent& stored) const {
    const EventRef event = stored.event;
    const std::string subject = relay_subject(options_.subject_prefix, event);
    const std::string body = encode_event(event);
    const std::string position = std::to_string(stored.position);
    natsMsg* raw_message = nullptr;
    natsStatus s = natsMsg_Create(&raw_message, subject.c_str(), nullptr, body.data(),
                                  static_cast<int>(body.size()));
    MessagePtr message(raw_message);
    if (s == NATS_OK) {
      s = natsMsgHeader_Set(message.get(), std::string(position_header).c_str(), position.c_str());
    }
    if (s != NATS_OK) return std::unexpected(nats_error("building the message", s));
    return message;
  }

  // One acknowledgment of an asynchronous publish.
  struct Ack {
    std::int64_t position = 0;
    std::uint64_t sequence = 0;
    bool duplicate = false;
    std::string error;
  };

  // Called by the client's thread for each asynchronous publish: its acknowledgment or its error
  // (a refusal, or no answer within the publish's MaxWait).
  static void on_ack(jsCtx*, natsMsg* message, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    Ack out;
    out.position = position_of(message, position_header).value_or(0);
    if (ack != nullptr && error == nullptr) {
      out.sequence = ack->Sequence;
      out.duplicate = ack->Duplicate;
    } else if (error != nullptr) {
      out.error = nats_failure(fmt::format("publishing position {}", out.position), error->Err,
                               error->ErrCode);
      if (error->ErrText != nullptr) out.error += fmt::format(" ({})", error->ErrText);
    } else {
      out.error = "no acknowledgment";
    }
    natsMsg_Destroy(message);
    std::scoped_lock lock(self->acks_mutex_);
    self->acks_.push_back(std::move(out));
  }

  // A batch published without waiting for each acknowledgment in turn: every message carries
  // ExpectLastSeq = the sequence it will get if every one before it is stored, so the stream
  // still takes them only in order; the batch succeeds when every one was acknowledged. Anything
  // else (a duplicate in the middle shifts the sequences, NATS down, a timeout) fails the batch,
  // and the consumer hands its events to `publish` one at a time, which learns the stream's last
  // message again and skips what it holds.
  std::expected<void, Error> publish_batch(std::span<const StoredEvent> events) {
    if (!prepared_) {
      if (auto ready = prepare(); !ready) return ready;
    }
    std::size_t first = 0;
    while (first < events.size() && events[first].position <= acked_through_) ++first;
    if (first == events.size()) {
      skipped.fetch_add(events.size(), std::memory_order_relaxed);
      return {};
    }
    // The sequences expected below hold only if the first event to publish comes right after the
    // stream's last message. The consumer may have moved past events this relay did not publish
    // (another relay in the leadership window saved the shared checkpoint, and this one adopted
    // it): then this relay's view of the stream is old, and the batch would be refused in part,
    // leaving holes. Check against the store, and hand such a batch to `publish` one by one.
    if (first == 0) {
      auto previous = store_.read_backward(events.front().position, 1);
      if (!previous) return std::unexpected(std::move(previous.error()));
      const std::int64_t before = previous->empty() ? 0 : previous->front().position;
      if (before != acked_through_) {
        prepared_ = false;
        return std::unexpected(Error{
            ErrorCode::conflict,
            fmt::format("position {} follows {}, not {} (the stream's last message as this relay "
                        "knows it): publishing one by one",
                        events.front().position, before, acked_through_),
            {}});
      }
    }
    {
      std::scoped_lock lock(acks_mutex_);
      acks_.clear();
    }
    std::size_t sent = 0;
    std::optional<Error> failure;
    for (std::size_t i = first; i < events.size(); ++i) {
      const std::string id = events[i].event->event_id.to_string();
      auto built = make_message(events[i]);
      if (!built) {
        failure = std::move(built.error());
        break;
      }
      natsMsg* raw = built->release();
      jsPubOptions publish_options;
      jsPubOptions_Init(&publish_options);
      publish_options.MsgId = id.c_str();
      publish_options.MaxWait = options_.request_timeout.count();
      publish_options.ExpectLastSeq = last_sequence_ + sent;
      const natsStatus s = js_PublishMsgAsync(nats_.context.get(), &raw, &publish_options);
      natsMsg_Destroy(raw);  // null once the client took it
      if (s != NATS_OK) {
        failure = nats_error(fmt::format("publishing position {}", events[i].position), s);
        break;
      }
      ++sent;
    }
    jsPubOptions wait_options;
    jsPubOptions_Init(&wait_options);
    wait_options.MaxWait = options_.request_timeout.count() * 2;
    if (js_PublishAsyncComplete(nats_.context.get(), &wait_options) != NATS_OK) {
      // Each publish times out by its own MaxWait: wait for all of them to be settled, so that no
      // late acknowledgment lands in the next batch.
      (void)js_PublishAsyncComplete(nats_.context.get(), nullptr);
    }
    std::vector<Ack> acks;
    {
      std::scoped_lock lock(acks_mutex_);
      acks.swap(acks_);
    }
    std::uint64_t last_sequence = last_sequence_;
    std::uint64_t stored_count = 0;
    std::uint64_t duplicate_count = 0;
    for (const Ack& ack : acks) {
      if (!ack.error.empty()) {
        if (!failure) failure = Error{ErrorCode::io, ack.error, {}};
        continue;
      }
      ++(ack.duplicate ? duplicate_count : stored_count);
      last_sequence = std::max(last_sequence, ack.sequence);
    }
    // Counted whatever happens to the batch: the events the stream took now are skipped when
    // the batch goes to `publish` one by one.
    published.fetch_add(stored_count, std::memory_order_relaxed);
    duplicates.fetch_add(duplicate_count, std::memory_order_relaxed);
    if (!failure && (acks.size() != sent || duplicate_count > 0)) {
      failure = Error{ErrorCode::io,
                      fmt::format("a batch of {} publishes got {} acknowledgments, {} duplicates",
                                  sent, acks.size(), duplicate_count),
                      {}};
    }
    if (failure) {
      prepared_ = false;
      return std::unexpected(std::move(*failure));
    }
    skipped.fetch_add(first, std::memory_order_relaxed);
    acked_through_ = events.back().position;
    last_sequence_ = last_sequence;
    return {};
  }

  EventStore& store_;
  NatsRelayOptions options_;
  std::string all_subjects_;
  std::mutex acks_mutex_;
  std::vector<Ack> acks_;

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
  if (auto problem = check_stream_options(options.url, options.stream, options.subject_prefix)) {
    return std::unexpected(std::move(*problem));
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
