#include "herald/event_bus.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "epoch.hpp"

namespace herald {
namespace detail {
namespace {

using Clock = std::chrono::steady_clock;

// A thread times every call of a handler while its moving average of timed calls on that thread
// is above this: the two clock reads are then a small part of the handler's cost. A single slow
// call (an interrupt, a page fault) raises the average only briefly.
constexpr std::uint64_t always_time_threshold_ns = 2000;
// With adaptive timing, one dispatched event in this many (per thread) has its handlers timed.
constexpr std::uint32_t timing_sample_mask = 63;

}  // namespace

/// A registered handler. Owned by the bus's writer side; lists refer to it by pointer, and a
/// removed handler is retired and freed once no emitting thread can still hold a list with it.
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
};

/// What the dispatch loop needs of a handler, flat, so a list is one contiguous array.
struct HandlerEntry {
  HandlerFn::Call call;
  void* object;
  std::uint32_t slot;
  const Handler* handler;
};

/// Handlers in dispatch order: priority descending, then registration order. Immutable.
struct HandlerList {
  std::vector<HandlerEntry> entries;
};

struct Hooks {
  std::function<void(const HandlerError&)> on_error;
  std::function<void(EventRef)> on_unhandled;
};

/// What emitting threads read: immutable once published. Plain pointers: the writer side owns
/// every list and hook set, and retires them with the snapshot that last referred to them.
struct Snapshot {
  /// Typed handlers per type index (null when none).
  std::vector<const HandlerList*> typed;
  /// Typed and on_any handlers merged per type index (null: use `any`).
  std::vector<const HandlerList*> merged;
  /// on_any handlers; never null.
  const HandlerList* any = nullptr;
  const Hooks* hooks = nullptr;
  std::size_t count = 0;

  const HandlerList& list_for(std::size_t index) const noexcept {
    if (index < merged.size() && merged[index] != nullptr) return *merged[index];
    return *any;
  }
};

namespace {

bool runs_before(const Handler& a, const Handler& b) noexcept {
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.id < b.id;
}

using ListPtr = std::shared_ptr<const HandlerList>;

const ListPtr& empty_list() {
  static const ListPtr empty = std::make_shared<const HandlerList>();
  return empty;
}

ListPtr merge(const ListPtr& typed, const ListPtr& any) {
  if (!typed || typed->entries.empty()) return nullptr;
  if (any->entries.empty()) return typed;
  auto merged = std::make_shared<HandlerList>();
  merged->entries.reserve(typed->entries.size() + any->entries.size());
  std::ranges::merge(typed->entries, any->entries, std::back_inserter(merged->entries),
                     [](const HandlerEntry& a, const HandlerEntry& b) {
                       return runs_before(*a.handler, *b.handler);
                     });
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
    hooks_ = std::make_shared<const Hooks>(Hooks{default_error_hook, nullptr});
    any_ = empty_list();
    std::lock_guard lock(write_mutex_);
    publish_locked();
  }
  ~BusState() {
    delete snapshot_.load(std::memory_order_relaxed);
    EpochDomain::instance().release_slot(bus_slot);
  }

  // --- writers (serialized by write_mutex_) ---

  std::uint64_t next_id() {
    std::lock_guard lock(write_mutex_);
    return next_id_++;
  }

  void add(std::unique_ptr<Handler> owned) {
    std::lock_guard lock(write_mutex_);
    const Handler* handler = owned.get();
    handlers_.emplace(handler->id, std::move(owned));
    const HandlerEntry entry{handler->fn.call, handler->fn.object, handler->slot, handler};
    auto insert = [&](const ListPtr& old) {
      auto list = std::make_shared<HandlerList>();
      list->entries.reserve((old ? old->entries.size() : 0) + 1);
      if (old) list->entries = old->entries;
      auto pos = std::ranges::find_if(
          list->entries, [&](const HandlerEntry& e) { return runs_before(*handler, *e.handler); });
      list->entries.insert(pos, entry);
      return ListPtr(std::move(list));
    };
    if (handler->type == nullptr) {
      replace(any_, insert(any_));
      remerge_all();
    } else {
      const std::size_t i = handler->type->index();
      if (typed_.size() <= i) {
        typed_.resize(i + 1);
        merged_.resize(i + 1);
      }
      replace(typed_[i], insert(typed_[i]));
      replace(merged_[i], merge(typed_[i], any_));
    }
    publish_locked();
  }

  /// Removes the handler `id` registered for `type` (nullptr: on_any); false if not there.
  bool remove(const EventType* type, std::uint64_t id) {
    std::lock_guard lock(write_mutex_);
    auto without = [&](ListPtr& list) {
      if (!list) return false;
      auto it = std::ranges::find_if(list->entries,
                                     [&](const HandlerEntry& e) { return e.handler->id == id; });
      if (it == list->entries.end()) return false;
      auto copy = std::make_shared<HandlerList>();
      copy->entries.reserve(list->entries.size() - 1);
      for (const HandlerEntry& e : list->entries) {
        if (e.handler->id != id) copy->entries.push_back(e);
      }
      replace(list, copy->entries.empty() && type != nullptr ? nullptr : ListPtr(std::move(copy)));
      return true;
    };
    bool removed = false;
    if (type == nullptr) {
      removed = without(any_);
      if (removed) remerge_all();
    } else if (type->index() < typed_.size()) {
      const std::size_t i = type->index();
      removed = without(typed_[i]);
      if (removed) replace(merged_[i], merge(typed_[i], any_));
    }
    if (!removed) return false;
    retire_handler(id);
    publish_locked();
    return true;
  }

  std::size_t remove_type(const EventType& type) {
    std::lock_guard lock(write_mutex_);
    const std::size_t i = type.index();
    if (i >= typed_.size() || !typed_[i]) return 0;
    const std::size_t removed = typed_[i]->entries.size();
    for (const HandlerEntry& e : typed_[i]->entries) retire_handler(e.handler->id);
    replace(typed_[i], nullptr);
    replace(merged_[i], nullptr);
    publish_locked();
    return removed;
  }

  void remove_all() {
    std::lock_guard lock(write_mutex_);
    for (auto& list : typed_) replace(list, nullptr);
    for (auto& list : merged_) replace(list, nullptr);
    replace(any_, empty_list());
    while (!handlers_.empty()) retire_handler(handlers_.begin()->first);
    publish_locked();
  }

  void set_hooks(const std::function<void(Hooks&)>& change) {
    std::lock_guard lock(write_mutex_);
    Hooks hooks = *hooks_;
    change(hooks);
    garbage_.push_back(std::exchange(hooks_, std::make_shared<const Hooks>(std::move(hooks))));
    publish_locked();
  }

  /// Drops every handler now; only when no thread can be emitting (destruction).
  void shut_down() {
    remove_all();
    std::lock_guard lock(write_mutex_);
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
    if (list.entries.empty()) [[unlikely]] {
      bus.add(BusCounter::unhandled, 1);
      if (s.hooks->on_unhandled) {
        try {
          s.hooks->on_unhandled(EventRef(event, type));
        } catch (...) {  // A hook must not break the emitter; nothing else can report it.
        }
      }
      return summary;
    }
    const bool every_call = options.timing == HandlerTiming::every_call;
    const bool sample = every_call || (++record.tick & timing_sample_mask) == 0;
    for (const HandlerEntry& entry : list.entries) {
      CounterBlock& counters = record.counters(entry.slot);
      const bool timed = sample || counters.value[HandlerCounter::recent_ns].load(
                                       std::memory_order_relaxed) > always_time_threshold_ns;
      Clock::time_point start;
      if (timed) start = Clock::now();
      bool failed = false;
      try {
        entry.call(entry.object, event, type);
      } catch (const std::exception& e) {
        failed = true;
        report(s, *entry.handler, event, type, e.what());
      } catch (...) {
        failed = true;
        report(s, *entry.handler, event, type,
               "an exception not derived from std::exception was thrown");
      }
      counters.add(HandlerCounter::calls, 1);
      if (timed) {
        const auto ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
        counters.add(HandlerCounter::timed_calls, 1);
        counters.add(HandlerCounter::timed_ns, ns);
        counters.raise_to(HandlerCounter::max_ns, ns);
        if (!every_call) {
          // Moving average with weight 1/8: a lone slow call lifts it above the threshold for
          // a few calls at most; a handler that is slow on average keeps it there.
          auto& recent = counters.value[HandlerCounter::recent_ns];
          const std::uint64_t before = recent.load(std::memory_order_relaxed);
          recent.store(before - before / 8 + ns / 8, std::memory_order_relaxed);
        }
      }
      if (failed) [[unlikely]] {
        counters.add(HandlerCounter::failures, 1);
        bus.add(BusCounter::handler_failures, 1);
        ++summary.failed;
      }
    }
    summary.handlers_run = list.entries.size();
    return summary;
  }

  [[gnu::cold, gnu::noinline]] void report(const Snapshot& s, const Handler& handler,
                                           const BaseEvent& event, const EventType& type,
                                           std::string message) {
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
    // Signal a sleeping dispatcher once; later publishes before it wakes need not.
    const bool wake = std::exchange(dispatcher_waiting_, false);
    lock.unlock();
    if (wake) work_.notify_one();
    return {};
  }

  void run_dispatcher() {
    std::vector<EventPtr> batch;
    std::unique_lock lock(queue_mutex_);
    for (;;) {
      while (pending_.empty() && !stopping_) {
        dispatcher_waiting_ = true;
        work_.wait(lock);
      }
      dispatcher_waiting_ = false;
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

  std::uint64_t accepted() {
    std::lock_guard lock(queue_mutex_);
    return accepted_;
  }

  std::size_t queue_depth() {
    std::lock_guard lock(queue_mutex_);
    return outstanding_;
  }

  const EventBusOptions options;
  const std::uint32_t bus_slot;
  std::atomic<bool> enabled{true};

 private:
  /// Keeps `list` until no reader can hold it, and puts `next` in its place.
  void replace(ListPtr& list, ListPtr next) {
    if (list == next) return;
    if (list && list != empty_list()) garbage_.push_back(std::move(list));
    list = std::move(next);
  }

  void remerge_all() {
    for (std::size_t i = 0; i < typed_.size(); ++i) replace(merged_[i], merge(typed_[i], any_));
  }

  void retire_handler(std::uint64_t id) {
    auto it = handlers_.find(id);
    if (it == handlers_.end()) return;
    garbage_.push_back(std::shared_ptr<const Handler>(std::move(it->second)));
    handlers_.erase(it);
  }

  /// Builds a snapshot of the writer side's lists and makes it the one emitters read.
  void publish_locked() {
    auto next = std::make_unique<Snapshot>();
    next->typed.reserve(typed_.size());
    next->merged.reserve(merged_.size());
    for (const auto& list : typed_) next->typed.push_back(list.get());
    for (const auto& list : merged_) next->merged.push_back(list.get());
    next->any = any_.get();
    next->hooks = hooks_.get();
    next->count = handlers_.size();
    const Snapshot* old = snapshot_.exchange(next.release(), std::memory_order_seq_cst);
    // Only now can no new reader reach what the change replaced: retire it with the old
    // snapshot, in the epoch that ends here.
    if (old != nullptr) garbage_.push_back(std::shared_ptr<const Snapshot>(old));
    if (!garbage_.empty()) {
      retired_.retire(
          std::make_shared<const std::vector<std::shared_ptr<const void>>>(std::move(garbage_)));
      garbage_.clear();
    }
  }

  std::mutex write_mutex_;
  // The writer side: what the current snapshot points into. Guarded by write_mutex_.
  std::vector<ListPtr> typed_;
  std::vector<ListPtr> merged_;
  ListPtr any_;
  std::shared_ptr<const Hooks> hooks_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Handler>> handlers_;
  // What the change in progress replaced, retired once the next snapshot is published.
  std::vector<std::shared_ptr<const void>> garbage_;
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
    list = s.any;
  } else if (type_->index() < s.typed.size()) {
    list = s.typed[type_->index()];
  }
  if (list == nullptr) return false;
  return std::ranges::any_of(list->entries,
                             [&](const detail::HandlerEntry& e) { return e.handler->id == id_; });
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
      std::make_unique<detail::Handler>(fn, type, options.priority, id, std::move(options.name));
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
  return s.typed[type.index()]->entries.size();
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
    for (const detail::HandlerEntry& e : list->entries) add(*e.handler);
  }
  for (const detail::HandlerEntry& e : s.any->entries) add(*e.handler);
  return out;
}

BusStats EventBus::stats() const {
  const detail::EpochDomain& domain = detail::EpochDomain::instance();
  const std::uint32_t slot = state_->bus_slot;
  BusStats st;
  st.dispatched = domain.sum(slot, detail::BusCounter::dispatched);
  st.published = state_->accepted();
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
