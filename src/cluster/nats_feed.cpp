#include "herald/cluster/nats_feed.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

#include "herald/cluster/nats_relay.hpp"
#include "herald/json.hpp"
#include "nats_support.hpp"

namespace herald::cluster {

using namespace detail;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds min_store_fallback{100};
// The longest a wait on the stream lasts before the feed looks at its flags and the store again.
constexpr milliseconds slice{100};
// How often a feed without a subscription tries to make one; sooner while the stream does not
// exist yet (a new cluster, whose relay creates it with its first publish).
constexpr milliseconds subscribe_interval{500};
constexpr milliseconds missing_stream_interval{50};

}  // namespace

struct NatsFeed::Impl {
  Impl(EventStore& s, NatsFeedOptions o)
      : store(s), options(std::move(o)), subjects(options.subject_prefix + ".>") {}

  ~Impl() { drop_subscription(); }

  EventStore& store;
  NatsFeedOptions options;
  std::string subjects;
  JetStreamConnection nats;
  SubscriptionPtr subscription;
  // The stream sequence the next message should carry; 0 when unknown (a jump to fill).
  std::uint64_t expected_sequence = 0;
  // A message whose predecessors from the store did not fit in the last batch.
  std::optional<StoredEvent> held;
  // Since when the store has been ahead with nothing arriving from the stream.
  std::optional<Clock::time_point> behind_since;
  bool store_mode = false;
  Clock::time_point next_subscribe{};
  bool failing = false;

  std::mutex wake_mutex;
  std::condition_variable wake_signal;
  std::atomic<bool> woken{false};
  std::atomic<std::uint64_t> stream_events{0};
  std::atomic<std::uint64_t> store_events{0};

  void report(const Error& error) {
    if (failing) return;
    failing = true;
    if (options.on_error) {
      options.on_error(error);
    } else {
      fmt::print(stderr, "herald: NATS feed of stream '{}': {}\n", options.stream, error.message);
    }
  }

  void drop_subscription() {
    if (subscription) (void)natsSubscription_Unsubscribe(subscription.get());
    subscription.reset();
    expected_sequence = 0;
  }

  void try_subscribe() {
    const auto now = Clock::now();
    if (now < next_subscribe) return;
    next_subscribe = now + subscribe_interval;
    if (!nats.connected()) return;
    jsSubOptions sub_options;
    jsSubOptions_Init(&sub_options);
    sub_options.Stream = options.stream.c_str();
    sub_options.Ordered = true;
    // From the stream's last message on: what came before is in the store, and the first message
    // is a jump that `fill` completes from there.
    sub_options.Config.DeliverPolicy = js_DeliverLast;
    jsErrCode js_error{};
    natsSubscription* raw = nullptr;
    const natsStatus s = js_SubscribeSync(&raw, nats.context.get(), subjects.c_str(), nullptr,
                                          &sub_options, &js_error);
    if (s != NATS_OK) {
      // Until a relay has published, the stream may not exist yet: nothing to report.
      if (js_error == JSStreamNotFoundErr) {
        next_subscribe = Clock::now() + missing_stream_interval;
      } else {
        report(nats_error(fmt::format("subscribing to stream '{}'", options.stream), s, js_error));
      }
      return;
    }
    subscription.reset(raw);
    expected_sequence = 0;
    failing = false;
  }

  void wait_for_wake(milliseconds duration) {
    std::unique_lock lock(wake_mutex);
    wake_signal.wait_for(lock, duration, [&] { return woken.load(); });
  }

  // Appends to `out` the store's events after `from` and before `until`, up to `budget` of them;
  // true when none is left before `until`.
  std::expected<bool, Error> fill(std::int64_t from, std::int64_t until, std::size_t budget,
                                  std::vector<StoredEvent>& out) {
    if (until <= from + 1) return true;
    if (budget == 0) return false;
    auto events = store.read_forward(from, budget);
    if (!events) return std::unexpected(std::move(events.error()));
    bool reached = events->size() < budget;
    for (StoredEvent& event : *events) {
      if (event.position >= until) {
        reached = true;
        break;
      }
      out.push_back(std::move(event));
      store_events.fetch_add(1, std::memory_order_relaxed);
    }
    return reached;
  }

  // When the store is ahead of `after` and the stream has brought nothing for a while, the store's
  // events after `after`; otherwise none.
  std::expected<std::vector<StoredEvent>, Error> from_store_if_behind(std::int64_t after,
                                                                      std::size_t max) {
    auto head = store.head();
    if (!head) return std::unexpected(std::move(head.error()));
    if (*head <= after) {
      behind_since.reset();
      return std::vector<StoredEvent>{};
    }
    const auto now = Clock::now();
    if (!behind_since) behind_since = now;
    if (!store_mode && now - *behind_since < options.store_fallback_after) {
      return std::vector<StoredEvent>{};
    }
    store_mode = true;
    auto events = store.read_forward(after, max);
    if (events) store_events.fetch_add(events->size(), std::memory_order_relaxed);
    return events;
  }

  // Decodes `message` into `event`; false (reported) when it is not one of the relay's.
  bool decode(natsMsg* message, std::int64_t position, const jsMsgMetaData& meta,
              StoredEvent& event) {
    const char* data = natsMsg_GetData(message);
    const auto size = static_cast<std::size_t>(std::max(0, natsMsg_GetDataLength(message)));
    auto decoded =
        decode_event(std::string_view(data == nullptr ? "" : data, size), *options.catalog);
    if (!decoded) {
      report(Error{ErrorCode::invalid_argument,
                   fmt::format("stream '{}' sequence {}: the body is not an event of the catalog "
                               "({}); reading the store instead",
                               options.stream, meta.Sequence.Stream, decoded.error().message),
                   {}});
      return false;
    }
    event.position = position;
    event.recorded_at = Timestamp(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::nanoseconds(meta.Timestamp)));
    event.event = std::move(*decoded);
    return true;
  }

  std::expected<std::vector<StoredEvent>, Error> next(std::int64_t after, std::size_t max,
                                                      milliseconds timeout) {
    std::vector<StoredEvent> out;
    if (max == 0) return out;
    woken.store(false);
    if (held) {
      if (held->position <= after) {
        held.reset();
      } else {
        auto complete = fill(after, held->position, max, out);
        if (!complete) return std::unexpected(std::move(complete.error()));
        if (*complete && out.size() < max) {
          out.push_back(std::move(*held));
          held.reset();
          stream_events.fetch_add(1, std::memory_order_relaxed);
        }
        return out;
      }
    }
    std::int64_t last = after;
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (out.size() >= max || woken.load()) return out;
      const auto now = Clock::now();
      if (!out.empty()) {
        // Take what has already arrived, without waiting.
        int pending = 0;
        int bytes = 0;
        if (!subscription ||
            natsSubscription_GetPending(subscription.get(), &pending, &bytes) != NATS_OK ||
            pending <= 0) {
          return out;
        }
      } else if (now >= deadline || store_mode) {
        auto stored = from_store_if_behind(after, max);
        if (!stored || !stored->empty() || now >= deadline) return stored;
      }
      if (!subscription) {
        try_subscribe();
        if (!subscription) {
          wait_for_wake(std::min<milliseconds>(
              slice, std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1)));
          continue;
        }
      }
      const milliseconds wait =
          out.empty() ? std::clamp(std::chrono::duration_cast<milliseconds>(deadline - now),
                                   milliseconds(1), slice)
                      : milliseconds(1);
      natsMsg* raw = nullptr;
      const natsStatus s = natsSubscription_NextMsg(&raw, subscription.get(), wait.count());
      MessagePtr message(raw);
      if (s == NATS_TIMEOUT || s == NATS_SLOW_CONSUMER) continue;  // a drop shows as a jump
      if (s != NATS_OK) {
        report(nats_error(fmt::format("reading stream '{}'", options.stream), s));
        drop_subscription();
        continue;
      }
      jsMsgMetaData* raw_meta = nullptr;
      if (natsMsg_GetMetaData(&raw_meta, message.get()) != NATS_OK) continue;
      MetaDataPtr meta(raw_meta);
      const std::uint64_t sequence = meta->Sequence.Stream;
      if (expected_sequence != 0 && sequence < expected_sequence) continue;  // seen already
      const bool jump = expected_sequence == 0 || sequence != expected_sequence;
      expected_sequence = sequence + 1;
      const auto position = position_of(message.get(), position_header);
      if (!position) {
        report(Error{ErrorCode::invalid_argument,
                     fmt::format("stream '{}' sequence {}: no {} header with a position; is the "
                                 "stream written by something other than herald?",
                                 options.stream, sequence, position_header),
                     {}});
        expected_sequence = 0;
        continue;
      }
      if (*position <= last) continue;
      StoredEvent event;
      if (!decode(message.get(), *position, *meta, event)) {
        // The store has it: the next message fills the jump, this event included.
        expected_sequence = 0;
        continue;
      }
      if (jump) {
        auto complete = fill(last, *position, max - out.size(), out);
        if (!complete) {
          expected_sequence = 0;
          return std::unexpected(std::move(complete.error()));
        }
        if (!*complete || out.size() >= max) {
          held = std::move(event);
          return out;
        }
      }
      out.push_back(std::move(event));
      last = *position;
      stream_events.fetch_add(1, std::memory_order_relaxed);
      behind_since.reset();
      store_mode = false;
    }
  }
};

std::expected<std::unique_ptr<NatsFeed>, Error> NatsFeed::create(EventStore& store,
                                                                 NatsFeedOptions options) {
  if (auto problem = check_stream_options(options.url, options.stream, options.subject_prefix)) {
    return std::unexpected(std::move(*problem));
  }
  if (options.catalog == nullptr) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "catalog",
                                            "expected the catalog that decodes the events"));
  }
  if (options.store_fallback_after < min_store_fallback) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "store_fallback_after",
        fmt::format("expected at least {} ms, got {} ms", min_store_fallback.count(),
                    options.store_fallback_after.count())));
  }
  auto impl = std::make_unique<Impl>(store, std::move(options));
  auto connected =
      connect_jetstream(impl->options.url, impl->options.request_timeout, "herald-feed");
  if (!connected) return std::unexpected(std::move(connected.error()));
  impl->nats = std::move(*connected);
  return std::unique_ptr<NatsFeed>(new NatsFeed(std::move(impl)));
}

NatsFeed::NatsFeed(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NatsFeed::~NatsFeed() = default;

std::expected<std::vector<StoredEvent>, Error> NatsFeed::next(std::int64_t after, std::size_t max,
                                                              std::chrono::milliseconds timeout) {
  return impl_->next(after, max, timeout);
}

void NatsFeed::wake() noexcept {
  {
    std::lock_guard lock(impl_->wake_mutex);
    impl_->woken.store(true);
  }
  impl_->wake_signal.notify_all();
}

bool NatsFeed::connected() const noexcept { return impl_->nats.connected(); }

std::uint64_t NatsFeed::from_stream() const noexcept { return impl_->stream_events.load(); }

std::uint64_t NatsFeed::from_store() const noexcept { return impl_->store_events.load(); }

}  // namespace herald::cluster
