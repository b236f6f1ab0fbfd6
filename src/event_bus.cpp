#include "herald/event_bus.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

#include "epoch.hpp"

namespace herald {
namespace detail {
namespace {

using Clock = std::chrono::steady_clock;

// A handler whose timed call took longer than this is timed on every call from then on: the
// two clock reads are then a small fraction of its cost.
constexpr std::uint64_t always_time_threshold_ns = 2000;
// With adaptive timing, one emit in this many (per thread) times its handlers.
constexpr std::uint32_t timing_sample_mask = 63;

}  // namespace

/// A registered handler. Immutable after registration except for its timing flag.
struct Handler {
  Handler(HandlerFn f, const EventType* t, Priority p, std::uint64_t i, std::string n)
      : fn(f),
        type(t),
        priority(p),
        id(i),
        name(std::move(n)),
        slot(EpochDomain::instance().allocate_slot()) {}
  ~Handler() {
    fn.destroy(fn.object);
    EpochDomain::instance().release_slot(slot);
  }
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

  std::string display_name() const { return name.empty() ? "handler-" + std::to_string(id) : name; }

  HandlerFn fn;
  const EventType* type;  // nullptr: on_any
  Priority priority;
  std::uint64_t id;
  std::string name;
  std::uint32_t slot;
  std::atomic<bool> always_time{false};
};

/// Handlers in dispatch order: priority descending, then registration order.
struct HandlerList {
  std::vector<std::shared_ptr<Handler>> handlers;
};

struct Hooks {
  std::function<void(const HandlerError&)> on_error;
  std::function<void(EventRef)> on_unhandled;
};

/// What emitting threads read: immutable once published.
struct Snapshot {
  /// Typed handlers per type index (null when none).
  std::vector<std::shared_ptr<const HandlerList>> typed;
  /// Typed and on_any handlers merged per type index (null: use `any`).
  std::vector<std::shared_ptr<const HandlerList>> merged;
  /// on_any handlers; never null.
  std::shared_ptr<const HandlerList> any = std::make_shared<const HandlerList>();
  std::shared_ptr<const Hooks> hooks = std::make_shared<const Hooks>();
  std::size_t count = 0;

  const HandlerList& list_for(std::size_t index) const noexcept {
    if (index < merged.size() && merged[index]) return *merged[index];
    return *any;
  }
};

namespace {

bool runs_before(const Handler& a, const Handler& b) noexcept {
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.id < b.id;
}

std::shared_ptr<const HandlerList> merge(const std::shared_ptr<const HandlerList>& typed,
                                         const std::shared_ptr<const HandlerList>& any) {
  if (!typed || typed->handlers.empty()) return nullptr;
  if (any->handlers.empty()) return typed;
  auto merged = std::make_shared<HandlerList>();
  merged->handlers.reserve(typed->handlers.size() + any->handlers.size());
  std::ranges::merge(typed->handlers, any->handlers, std::back_inserter(merged->handlers),
                     [](const auto& a, const auto& b) { return runs_before(*a, *b); });
  return merged;
}

void default_error_hook(const HandlerError& error) {
  std::fprintf(stderr, "herald: handler '%.*s' failed on %s: %s\n",
               static_cast<int>(error.handler_name.size()), error.handler_name.data(),
               error.event.to_string().c_str(), error.message.c_str());
}

}  // namespace

class BusState {
 public:
  explicit BusState(EventBusOptions opts)
      : options(std::move(opts)), bus_slot(EpochDomain::instance().allocate_slot()) {
    auto initial = std::make_shared<Snapshot>();
    initial->hooks = std::make_shared<const Hooks>(Hooks{default_error_hook, nullptr});
    current_ = initial;
    snapshot_.store(initial.get(), std::memory_order_seq_cst);
  }
  ~BusState() { EpochDomain::instance().release_slot(bus_slot); }

  // --- writers (serialized by write_mutex_) ---

  template <class Change>
  void update(Change&& change) {
    std::lock_guard lock(write_mutex_);
    auto next = std::make_shared<Snapshot>(*current_);
    change(*next);
    std::shared_ptr<const Snapshot> old = std::exchange(current_, std::move(next));
    snapshot_.store(current_.get(), std::memory_order_seq_cst);
    retired_.retire(std::move(old));
  }

  std::uint64_t next_id() {
    std::lock_guard lock(write_mutex_);
    return next_id_++;
  }

  void add(std::shared_ptr<Handler> handler) {
    update([&](Snapshot& s) {
      ++s.count;
      auto insert = [&](const std::shared_ptr<const HandlerList>& old) {
        auto list = std::make_shared<HandlerList>();
        if (old) list->handlers = old->handlers;
        auto pos = std::ranges::find_if(list->handlers,
                                        [&](const auto& h) { return runs_before(*handler, *h); });
        list->handlers.insert(pos, handler);
        return std::shared_ptr<const HandlerList>(std::move(list));
      };
      if (handler->type == nullptr) {
        s.any = insert(s.any);
        for (std::size_t i = 0; i < s.typed.size(); ++i) s.merged[i] = merge(s.typed[i], s.any);
      } else {
        const std::size_t i = handler->type->index();
        if (s.typed.size() <= i) {
          s.typed.resize(i + 1);
          s.merged.resize(i + 1);
        }
        s.typed[i] = insert(s.typed[i]);
        s.merged[i] = merge(s.typed[i], s.any);
      }
    });
  }

  /// Removes the handler `id` registered for `type` (nullptr: on_any); false if not there.
  bool remove(const EventType* type, std::uint64_t id) {
    bool removed = false;
    update([&](Snapshot& s) {
      auto without =
          [&](const std::shared_ptr<const HandlerList>& old) -> std::shared_ptr<const HandlerList> {
        if (!old) return old;
        auto it = std::ranges::find_if(old->handlers, [&](const auto& h) { return h->id == id; });
        if (it == old->handlers.end()) return old;
        removed = true;
        auto list = std::make_shared<HandlerList>();
        list->handlers.reserve(old->handlers.size() - 1);
        for (const auto& h : old->handlers) {
          if (h->id != id) list->handlers.push_back(h);
        }
        return list;
      };
      if (type == nullptr) {
        s.any = without(s.any);
        if (removed) {
          for (std::size_t i = 0; i < s.typed.size(); ++i) s.merged[i] = merge(s.typed[i], s.any);
        }
      } else if (type->index() < s.typed.size()) {
        const std::size_t i = type->index();
        s.typed[i] = without(s.typed[i]);
        if (removed) s.merged[i] = merge(s.typed[i], s.any);
      }
      if (removed) --s.count;
    });
    return removed;
  }

  std::size_t remove_type(const EventType& type) {
    std::size_t removed = 0;
    update([&](Snapshot& s) {
      const std::size_t i = type.index();
      if (i >= s.typed.size() || !s.typed[i]) return;
      removed = s.typed[i]->handlers.size();
      s.typed[i] = nullptr;
      s.merged[i] = nullptr;
      s.count -= removed;
    });
    return removed;
  }

  void remove_all() {
    update([](Snapshot& s) {
      s.typed.clear();
      s.merged.clear();
      s.any = std::make_shared<const HandlerList>();
      s.count = 0;
    });
  }

  void set_hooks(std::function<void(Hooks&)> change) {
    update([&](Snapshot& s) {
      Hooks hooks = *s.hooks;
      change(hooks);
      s.hooks = std::make_shared<const Hooks>(std::move(hooks));
    });
  }

  /// Drops every handler now; only when no thread can be emitting (destruction).
  void shut_down() {
    std::lock_guard lock(write_mutex_);
    auto empty = std::make_shared<Snapshot>();
    std::shared_ptr<const Snapshot> old = std::exchange(current_, std::move(empty));
    snapshot_.store(current_.get(), std::memory_order_seq_cst);
    retired_.retire(std::move(old));
    retired_.reclaim();
  }

  // --- readers (inside a ReadSection) ---

  const Snapshot& snapshot() const noexcept { return *snapshot_.load(std::memory_order_seq_cst); }

  EmitSummary dispatch(const BaseEvent& event, const EventType& type, ThreadRecord& record) {
    const Snapshot& s = snapshot();
    const HandlerList& list = s.list_for(type.index());
    CounterBlock& bus = record.counters(bus_slot);
    bus.add(BusCounter::dispatched, 1);
    EmitSummary summary;
    if (list.handlers.empty()) [[unlikely]] {
      bus.add(BusCounter::unhandled, 1);
      if (s.hooks->on_unhandled) {
        try {
          s.hooks->on_unhandled(EventRef(event, type));
        } catch (...) {  // A hook must not break the emitter; nothing else can report it.
        }
      }
      return summary;
    }
    const bool sample =
        options.timing == HandlerTiming::every_call || (++record.tick & timing_sample_mask) == 0;
    for (const auto& entry : list.handlers) {
      Handler& handler = *entry;
      CounterBlock& counters = record.counters(handler.slot);
      const bool timed = sample || handler.always_time.load(std::memory_order_relaxed);
      Clock::time_point start;
      if (timed) start = Clock::now();
      bool failed = false;
      try {
        handler.fn.call(handler.fn.object, event, type);
      } catch (const std::exception& e) {
        failed = true;
        report(s, handler, event, type, e.what());
      } catch (...) {
        failed = true;
        report(s, handler, event, type, "an exception not derived from std::exception was thrown");
      }
      counters.add(HandlerCounter::calls, 1);
      if (timed) {
        const auto ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
        counters.add(HandlerCounter::timed_calls, 1);
        counters.add(HandlerCounter::timed_ns, ns);
        counters.raise_to(HandlerCounter::max_ns, ns);
        if (ns > always_time_threshold_ns)
          handler.always_time.store(true, std::memory_order_relaxed);
      }
      ++summary.handlers_run;
      if (failed) {
        counters.add(HandlerCounter::failures, 1);
        bus.add(BusCounter::handler_failures, 1);
        ++summary.failed;
      }
    }
    return summary;
  }

  void report(const Snapshot& s, const Handler& handler, const BaseEvent& event,
              const EventType& type, std::string message) {
    if (!s.hooks->on_error) return;
    const std::string name = handler.display_name();
    try {
      s.hooks->on_error(HandlerError{EventRef(event, type), name, std::move(message)});
    } catch (...) {  // The error hook is the last place a failure can go.
    }
  }

  void count(std::size_t counter) {
    ReadSection section;
    section.record().counters(bus_slot).add(counter, 1);
  }

  // --- queue ---

  std::expected<void, Error> enqueue(EventPtr event) {
    std::unique_lock lock(queue_mutex_);
    if (stopping_) {
      return std::unexpected(Error{ErrorCode::unavailable,
                                   "bus '" + options.name + "' is shutting down; event " +
                                       event.ref().to_string() + " was not queued",
                                   {}});
    }
    const bool on_dispatcher = std::this_thread::get_id() == dispatcher_id_;
    while (outstanding_ >= options.queue_capacity && !on_dispatcher) {
      if (options.when_full == QueueFullPolicy::refuse) {
        lock.unlock();
        count(BusCounter::refused_full);
        return std::unexpected(Error{
            ErrorCode::unavailable,
            "bus '" + options.name + "' queue is full (" + std::to_string(options.queue_capacity) +
                " events); event " + event.ref().to_string() + " was not queued",
            {}});
      }
      space_.wait(lock);
      if (stopping_) {
        return std::unexpected(Error{ErrorCode::unavailable,
                                     "bus '" + options.name + "' shut down while " +
                                         event.ref().to_string() + " waited for queue space",
                                     {}});
      }
    }
    if (!dispatcher_.joinable()) {
      dispatcher_ = std::thread([this] { run_dispatcher(); });
      dispatcher_id_ = dispatcher_.get_id();
    }
    pending_.push_back(std::move(event));
    ++outstanding_;
    ++accepted_;
    const bool wake = dispatcher_waiting_;
    lock.unlock();
    if (wake) work_.notify_one();
    count(BusCounter::published);
    return {};
  }

  void run_dispatcher() {
    std::vector<EventPtr> batch;
    std::unique_lock lock(queue_mutex_);
    for (;;) {
      while (pending_.empty() && !stopping_) {
        dispatcher_waiting_ = true;
        work_.wait(lock);
        dispatcher_waiting_ = false;
      }
      if (pending_.empty()) return;  // stopping, and everything accepted was dispatched
      batch.swap(pending_);
      lock.unlock();
      {
        ReadSection section;
        for (const EventPtr& event : batch) {
          dispatch(event.base(), event.type(), section.record());
        }
      }
      const std::size_t n = batch.size();
      batch.clear();
      lock.lock();
      outstanding_ -= n;
      completed_ += n;
      space_.notify_all();
      drained_.notify_all();
    }
  }

  void drain() {
    std::unique_lock lock(queue_mutex_);
    if (std::this_thread::get_id() == dispatcher_id_) return;
    const std::uint64_t target = accepted_;
    drained_.wait(lock, [&] { return completed_ >= target; });
  }

  void stop_dispatcher() {
    {
      std::lock_guard lock(queue_mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    space_.notify_all();
    if (dispatcher_.joinable()) {
      assert(std::this_thread::get_id() != dispatcher_id_ && "a bus destroyed by its own handler");
      dispatcher_.join();
    }
  }

  std::size_t queue_depth() {
    std::lock_guard lock(queue_mutex_);
    return outstanding_;
  }

  const EventBusOptions options;
  const std::uint32_t bus_slot;
  std::atomic<bool> enabled{true};

 private:
  std::mutex write_mutex_;
  std::shared_ptr<const Snapshot> current_;
  std::atomic<const Snapshot*> snapshot_{nullptr};
  RetireList retired_;
  std::uint64_t next_id_ = 1;

  std::mutex queue_mutex_;
  std::condition_variable work_;
  std::condition_variable space_;
  std::condition_variable drained_;
  std::vector<EventPtr> pending_;
  std::size_t outstanding_ = 0;
  std::uint64_t accepted_ = 0;
  std::uint64_t completed_ = 0;
  bool dispatcher_waiting_ = false;
  bool stopping_ = false;
  std::thread dispatcher_;
  std::thread::id dispatcher_id_;
};

}  // namespace detail

// --- Subscription ---

Subscription::Subscription(Subscription&& other) noexcept
    : bus_(std::move(other.bus_)), type_(other.type_), id_(std::exchange(other.id_, 0)) {}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    unsubscribe();
    bus_ = std::move(other.bus_);
    type_ = other.type_;
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

Subscription::~Subscription() { unsubscribe(); }

void Subscription::unsubscribe() noexcept {
  if (auto bus = bus_.lock()) {
    try {
      bus->remove(type_, id_);
    } catch (...) {  // Out of memory while rebuilding a list: the handler stays registered.
    }
  }
  bus_.reset();
}

void Subscription::release() noexcept { bus_.reset(); }

bool Subscription::active() const noexcept {
  auto bus = bus_.lock();
  if (!bus) return false;
  detail::ReadSection section;
  const detail::Snapshot& s = bus->snapshot();
  const detail::HandlerList* list = nullptr;
  if (type_ == nullptr) {
    list = s.any.get();
  } else if (type_->index() < s.typed.size()) {
    list = s.typed[type_->index()].get();
  }
  if (list == nullptr) return false;
  return std::ranges::any_of(list->handlers, [&](const auto& h) { return h->id == id_; });
}

// --- EventBus ---

EventBus::EventBus(EventBusOptions options)
    : state_(std::make_shared<detail::BusState>(std::move(options))) {}

EventBus::~EventBus() {
  state_->stop_dispatcher();
  state_->shut_down();
}

Subscription EventBus::subscribe(const EventType* type, detail::HandlerFn fn,
                                 HandlerOptions options) {
  // Own the callable before anything can throw.
  std::unique_ptr<void, detail::HandlerFn::Destroy> guard(fn.object, fn.destroy);
  const std::uint64_t id = state_->next_id();
  auto handler =
      std::make_shared<detail::Handler>(fn, type, options.priority, id, std::move(options.name));
  guard.release();
  state_->add(std::move(handler));
  return Subscription(state_, type, id);
}

EmitSummary EventBus::emit(EventRef event) {
  detail::BusState& s = *state_;
  if (!s.enabled.load(std::memory_order_relaxed)) [[unlikely]] {
    s.count(detail::BusCounter::dropped_disabled);
    return EmitSummary{.dropped = true};
  }
  detail::ReadSection section;
  return s.dispatch(event.base(), event.type(), section.record());
}

std::expected<void, Error> EventBus::publish(EventPtr event) {
  assert(event && "publish of an empty EventPtr");
  if (!state_->enabled.load(std::memory_order_relaxed)) {
    state_->count(detail::BusCounter::dropped_disabled);
    return std::unexpected(Error{ErrorCode::unavailable,
                                 "bus '" + state_->options.name + "' is disabled; event " +
                                     event.ref().to_string() + " was dropped",
                                 {}});
  }
  return state_->enqueue(std::move(event));
}

void EventBus::drain() { state_->drain(); }

void EventBus::enable() noexcept { state_->enabled.store(true, std::memory_order_relaxed); }
void EventBus::disable() noexcept { state_->enabled.store(false, std::memory_order_relaxed); }
bool EventBus::is_enabled() const noexcept {
  return state_->enabled.load(std::memory_order_relaxed);
}

std::size_t EventBus::handler_count() const noexcept {
  detail::ReadSection section;
  return state_->snapshot().count;
}

std::size_t EventBus::handler_count(const EventType& type) const noexcept {
  detail::ReadSection section;
  const detail::Snapshot& s = state_->snapshot();
  if (type.index() >= s.typed.size() || !s.typed[type.index()]) return 0;
  return s.typed[type.index()]->handlers.size();
}

std::size_t EventBus::off(const EventType& type) { return state_->remove_type(type); }

void EventBus::clear() { state_->remove_all(); }

void EventBus::set_error_hook(std::function<void(const HandlerError&)> hook) {
  state_->set_hooks([&](detail::Hooks& h) { h.on_error = std::move(hook); });
}

void EventBus::set_unhandled_hook(std::function<void(EventRef)> hook) {
  state_->set_hooks([&](detail::Hooks& h) { h.on_unhandled = std::move(hook); });
}

std::vector<HandlerStats> EventBus::handler_stats() const {
  detail::ReadSection section;
  const detail::Snapshot& s = state_->snapshot();
  const detail::EpochDomain& domain = detail::EpochDomain::instance();
  std::vector<HandlerStats> out;
  out.reserve(s.count);
  auto add = [&](const detail::Handler& h) {
    HandlerStats st;
    st.id = h.id;
    st.name = h.display_name();
    st.event_type = h.type != nullptr ? h.type->name() : std::string_view("*");
    st.priority = h.priority;
    st.calls = domain.sum(h.slot, detail::HandlerCounter::calls);
    st.failures = domain.sum(h.slot, detail::HandlerCounter::failures);
    st.timed_calls = domain.sum(h.slot, detail::HandlerCounter::timed_calls);
    const std::uint64_t timed_ns = domain.sum(h.slot, detail::HandlerCounter::timed_ns);
    // Untimed calls are estimated at the mean of the timed ones.
    std::uint64_t total = timed_ns;
    if (st.timed_calls > 0 && st.calls > st.timed_calls) {
      total += static_cast<std::uint64_t>(static_cast<double>(timed_ns) /
                                          static_cast<double>(st.timed_calls) *
                                          static_cast<double>(st.calls - st.timed_calls));
    }
    st.total_duration = std::chrono::nanoseconds(total);
    st.max_duration = std::chrono::nanoseconds(domain.max(h.slot, detail::HandlerCounter::max_ns));
    out.push_back(std::move(st));
  };
  for (const auto& list : s.typed) {
    if (!list) continue;
    for (const auto& h : list->handlers) add(*h);
  }
  for (const auto& h : s.any->handlers) add(*h);
  return out;
}

BusStats EventBus::stats() const {
  const detail::EpochDomain& domain = detail::EpochDomain::instance();
  const std::uint32_t slot = state_->bus_slot;
  BusStats st;
  st.dispatched = domain.sum(slot, detail::BusCounter::dispatched);
  st.published = domain.sum(slot, detail::BusCounter::published);
  st.dropped_disabled = domain.sum(slot, detail::BusCounter::dropped_disabled);
  st.refused_full = domain.sum(slot, detail::BusCounter::refused_full);
  st.unhandled = domain.sum(slot, detail::BusCounter::unhandled);
  st.handler_failures = domain.sum(slot, detail::BusCounter::handler_failures);
  st.queue_depth = state_->queue_depth();
  return st;
}

const std::string& EventBus::name() const noexcept { return state_->options.name; }

EventBus& default_bus() {
  static EventBus bus(EventBusOptions{.name = "default"});
  return bus;
}

}  // namespace herald
