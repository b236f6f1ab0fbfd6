// herald_bus_bench: herald's EventBus side by side with a naive bus (unguarded and behind a
// std::shared_mutex), Boost.Signals2 and libsigc++ 3, in one run. After Google Benchmark's own
// output it prints a table of medians with ratios to the naive baseline, a memory check, and
// PASS/MISS for each performance target of the bus (informational: the exit code stays 0).
//
// Scenarios (docs/performance.md explains how to read them):
//   (a) emit to 1 handler            (b) emit to 10 handlers
//   (c) 30 event types x 3 handlers, emitted round robin
//   (d) subscribe + unsubscribe one handler on a bus that already holds handlers
//   (e) 2 threads emitting concurrently to 3 handlers (aggregate events/s)
//   (f) publish -> dispatcher thread -> handler, then drain (events/s)
//   memory: 100k subscriptions over 100 event types (bytes allocated by the bus)
//
// Flags: Google Benchmark's (--benchmark_filter=..., --benchmark_repetitions=N; 5 repetitions by
// default), plus --herald_skip_memory to leave out the memory check.

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "baselines/naive_bus.hpp"
#include "baselines/naive_queue.hpp"
#include "baselines/signal_adapters.hpp"
#include "herald/event.hpp"
#include "herald/event_bus.hpp"

// ---------------------------------------------------------------------------------------------
// Allocation accounting for the memory check. Off except while a measurement runs, so the other
// benchmarks pay one relaxed load per allocation. Live bytes are malloc_usable_size of each block
// (what the allocator really hands out), so frees are counted exactly without a size header.

namespace {

std::atomic<bool> counting_allocations{false};
std::atomic<std::int64_t> live_bytes{0};
std::atomic<std::int64_t> peak_bytes{0};
std::atomic<std::uint64_t> allocation_count{0};

void note_allocation(void* block) noexcept {
  if (!counting_allocations.load(std::memory_order_relaxed)) return;
  const auto size = static_cast<std::int64_t>(malloc_usable_size(block));
  const std::int64_t now_live = live_bytes.fetch_add(size, std::memory_order_relaxed) + size;
  allocation_count.fetch_add(1, std::memory_order_relaxed);
  std::int64_t peak = peak_bytes.load(std::memory_order_relaxed);
  while (now_live > peak &&
         !peak_bytes.compare_exchange_weak(peak, now_live, std::memory_order_relaxed)) {
  }
}

void note_free(void* block) noexcept {
  if (block == nullptr || !counting_allocations.load(std::memory_order_relaxed)) return;
  live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(block)),
                       std::memory_order_relaxed);
}

void* allocate(std::size_t size) {
  void* block = std::malloc(size == 0 ? 1 : size);
  if (block == nullptr) throw std::bad_alloc();
  note_allocation(block);
  return block;
}

void* allocate_aligned(std::size_t size, std::align_val_t alignment) {
  const auto align = static_cast<std::size_t>(alignment);
  // aligned_alloc wants a size that is a multiple of the alignment.
  const std::size_t rounded = (std::max<std::size_t>(size, 1) + align - 1) / align * align;
  void* block = std::aligned_alloc(align, rounded);
  if (block == nullptr) throw std::bad_alloc();
  note_allocation(block);
  return block;
}

void release(void* block) noexcept {
  note_free(block);
  std::free(block);
}

}  // namespace

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  return allocate_aligned(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return allocate_aligned(size, alignment);
}
void operator delete(void* block) noexcept { release(block); }
void operator delete[](void* block) noexcept { release(block); }
void operator delete(void* block, std::size_t) noexcept { release(block); }
void operator delete[](void* block, std::size_t) noexcept { release(block); }
void operator delete(void* block, const std::nothrow_t&) noexcept { release(block); }
void operator delete[](void* block, const std::nothrow_t&) noexcept { release(block); }
void operator delete(void* block, std::align_val_t) noexcept { release(block); }
void operator delete[](void* block, std::align_val_t) noexcept { release(block); }
void operator delete(void* block, std::size_t, std::align_val_t) noexcept { release(block); }
void operator delete[](void* block, std::size_t, std::align_val_t) noexcept { release(block); }

// ---------------------------------------------------------------------------------------------
// Event types. Every implementation receives the very same objects by const reference.

namespace herald_bench {

/// The event of scenarios (a), (b), (d), (e), (f): an int64 and a 16-character string.
struct BenchEvent : herald::BaseEvent {
  std::int64_t value = 0;
  std::string text;

  static constexpr herald::EventTraits traits{.name = "BenchEvent",
                                              .entity_type = {},
                                              .priority = herald::Priority::normal,
                                              .description = "A benchmark event."};
  /// Where Signals2Bus and SigcBus keep this type's signal.
  static constexpr std::size_t bench_slot = 100;
};

BOOST_DESCRIBE_STRUCT(BenchEvent, (herald::BaseEvent), (value, text))

/// "SyntheticEvent07" for N = 7: the wire name of SyntheticEvent<N>.
template <int N>
struct SyntheticName {
  static_assert(N >= 0 && N < 100);
  static constexpr std::array<char, 16> chars = [] {
    std::array<char, 16> name{};
    constexpr std::string_view stem = "SyntheticEvent";
    std::copy(stem.begin(), stem.end(), name.begin());
    name[14] = static_cast<char>('0' + N / 10);
    name[15] = static_cast<char>('0' + N % 10);
    return name;
  }();
  static constexpr std::string_view view{chars.data(), chars.size()};
};

/// One of 100 distinct event types with the same fields as BenchEvent, for the many-types
/// scenario (c) and the memory check. A template cannot use the namespace-scope
/// BOOST_DESCRIBE_STRUCT, so it is described in-class with BOOST_DESCRIBE_CLASS.
template <int N>
struct SyntheticEvent : herald::BaseEvent {
  std::int64_t value = 0;
  std::string text;

  static constexpr herald::EventTraits traits{.name = SyntheticName<N>::view,
                                              .entity_type = {},
                                              .priority = herald::Priority::normal,
                                              .description = "A synthetic benchmark event."};
  static constexpr std::size_t bench_slot = N;

  BOOST_DESCRIBE_CLASS(SyntheticEvent, (herald::BaseEvent), (value, text), (), ())
};

/// 16 characters: one past libstdc++'s small-string buffer, so the text lives on the heap as a
/// real payload would.
constexpr std::string_view event_text = "herald-benchmark";
static_assert(event_text.size() == 16);

template <class E>
E make_event(std::int64_t value) {
  E event;
  event.value = value;
  event.text = event_text;
  return event;
}

// ---------------------------------------------------------------------------------------------
// The handlers' work: read both fields and fold them into a per-thread sink. The sink is a
// thread_local global, so the stores are observable and cannot be optimized out, and threads in
// scenario (e) do not share (or falsely share) a counter.

thread_local std::int64_t handler_sink = 0;

template <class E>
auto make_handler(std::int64_t salt) {
  return [salt](const E& event) {
    handler_sink += (event.value ^ salt) + event.text[static_cast<std::size_t>(salt) & 15U];
  };
}

/// Handler i gets CRITICAL, HIGH, NORMAL, LOW, CRITICAL, … so every bus really orders them.
constexpr int priority_of(std::int64_t index) {
  constexpr std::array<int, 4> levels{100, 75, 50, 25};
  return levels[static_cast<std::size_t>(index % 4)];
}

// ---------------------------------------------------------------------------------------------
// Implementations, all behind the interface of signal_adapters.hpp.

/// herald's EventBus with default options.
class HeraldBus {
 public:
  using Handle = herald::Subscription;

  template <class E, class F>
  void add(F handler, int priority) {
    subscriptions_.push_back(subscribe<E>(std::move(handler), priority));
  }

  template <class E, class F>
  Handle subscribe(F handler, int priority) {
    herald::HandlerOptions options;
    options.priority = static_cast<herald::Priority>(priority);
    return bus_.on<E>(std::move(handler), std::move(options));
  }

  template <class E>
  void unsubscribe(Handle& handle) {
    handle.unsubscribe();
  }

  template <class E>
  void emit(const E& event) {
    bus_.emit(event);
  }

 private:
  herald::EventBus bus_;
  // After bus_, so the subscriptions end before the bus does.
  std::vector<herald::Subscription> subscriptions_;
};

/// NaiveBus or SharedMutexNaiveBus.
template <class Bus>
class NaiveAdapter {
 public:
  using Handle = NaiveBus::HandlerId;

  template <class E, class F>
  void add(F handler, int priority) {
    bus_.template on<E>(std::move(handler), priority);
  }

  template <class E, class F>
  Handle subscribe(F handler, int priority) {
    return bus_.template on<E>(std::move(handler), priority);
  }

  template <class E>
  void unsubscribe(Handle& handle) {
    bus_.template off<E>(handle);
  }

  template <class E>
  void emit(const E& event) {
    bus_.emit(event);
  }

 private:
  Bus bus_;
};

using NaiveUnguarded = NaiveAdapter<NaiveBus>;
using NaiveSharedMutex = NaiveAdapter<SharedMutexNaiveBus>;

// Implementation names as the table shows them.
constexpr const char* herald_name = "herald";
constexpr const char* naive_name = "naive";
constexpr const char* naive_shared_name = "naive+shared_mutex";
constexpr const char* signals2_name = "boost.signals2";
constexpr const char* sigc_name = "libsigc++3";
constexpr const char* naive_queue_name = "naive mutex+cv queue";

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// (a), (b): one type, `handlers` handlers, emit one event per iteration.
template <class Impl>
void emit_to_handlers(benchmark::State& state, int handlers) {
  Impl impl;
  for (int i = 0; i < handlers; ++i)
    impl.template add<BenchEvent>(make_handler<BenchEvent>(i), priority_of(i));
  const BenchEvent event = make_event<BenchEvent>(42);
  for (auto _ : state) impl.emit(event);
  state.SetItemsProcessed(state.iterations());
  benchmark::DoNotOptimize(handler_sink);
}

constexpr int round_robin_types = 30;
constexpr int round_robin_handlers = 3;

/// (c): 30 types with 3 handlers each; one iteration emits one event of each type in turn.
template <class Impl, int... N>
void emit_round_robin_types(benchmark::State& state, std::integer_sequence<int, N...>) {
  Impl impl;
  for (int h = 0; h < round_robin_handlers; ++h) {
    (impl.template add<SyntheticEvent<N>>(make_handler<SyntheticEvent<N>>(N * 3 + h),
                                          priority_of(h)),
     ...);
  }
  const std::tuple<SyntheticEvent<N>...> events{make_event<SyntheticEvent<N>>(N)...};
  for (auto _ : state) {
    (impl.emit(std::get<N>(events)), ...);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(sizeof...(N)));
  benchmark::DoNotOptimize(handler_sink);
}

template <class Impl>
void emit_round_robin(benchmark::State& state) {
  emit_round_robin_types<Impl>(state, std::make_integer_sequence<int, round_robin_types>{});
}

/// (d): a bus holding 10 handlers of BenchEvent and 3 of each of 10 other types; one iteration
/// subscribes one more BenchEvent handler and unsubscribes it.
template <class Impl, int... N>
void subscribe_unsubscribe_types(benchmark::State& state, std::integer_sequence<int, N...>) {
  Impl impl;
  for (int i = 0; i < 10; ++i)
    impl.template add<BenchEvent>(make_handler<BenchEvent>(i), priority_of(i));
  for (int h = 0; h < 3; ++h) {
    (impl.template add<SyntheticEvent<N>>(make_handler<SyntheticEvent<N>>(h), priority_of(h)), ...);
  }
  for (auto _ : state) {
    auto handle = impl.template subscribe<BenchEvent>(make_handler<BenchEvent>(7), 50);
    impl.template unsubscribe<BenchEvent>(handle);
  }
  state.SetItemsProcessed(state.iterations());
}

template <class Impl>
void subscribe_unsubscribe(benchmark::State& state) {
  subscribe_unsubscribe_types<Impl>(state, std::make_integer_sequence<int, 10>{});
}

/// (e): one bus shared by two emitting threads, created by `Setup` before they start.
template <class Impl>
struct SharedBus {
  static inline Impl* instance = nullptr;

  static void create(const benchmark::State&) {
    instance = new Impl();
    for (int i = 0; i < 3; ++i) {
      instance->template add<BenchEvent>(make_handler<BenchEvent>(i), priority_of(i));
    }
  }
  static void destroy(const benchmark::State&) {
    delete instance;
    instance = nullptr;
  }
};

template <class Impl>
void emit_concurrently(benchmark::State& state) {
  Impl& impl = *SharedBus<Impl>::instance;
  const BenchEvent event = make_event<BenchEvent>(state.thread_index());
  for (auto _ : state) impl.emit(event);
  // Summed over the threads; with UseRealTime, items_per_second is the aggregate rate.
  state.SetItemsProcessed(state.iterations());
  benchmark::DoNotOptimize(handler_sink);
}

/// Events one iteration of (f) publishes before it drains.
constexpr int queue_batch = 10'000;

/// The events (f) publishes: `queue_batch` distinct shared events, built once, so that the
/// producer's reference-count increments and the dispatcher's decrements touch a different event
/// each time (as with fresh events) instead of fighting over one control block, and so that
/// building events is not part of what is measured.
template <class Ptr, class Make>
std::vector<Ptr> make_event_pool(Make make) {
  std::vector<Ptr> pool;
  pool.reserve(queue_batch);
  for (int i = 0; i < queue_batch; ++i) pool.push_back(make(i));
  return pool;
}

/// (f) herald: publish a batch of shared events (never copied), then drain().
void publish_herald(benchmark::State& state) {
  herald::EventBus bus;
  auto subscription = bus.on<BenchEvent>(make_handler<BenchEvent>(1));
  const auto pool = make_event_pool<herald::EventPtr>(
      [](int i) { return herald::EventPtr::make(make_event<BenchEvent>(i)); });
  // Start the dispatcher thread before timing.
  if (!bus.publish(pool.front())) state.SkipWithError("publish refused the warm-up event");
  bus.drain();
  for (auto _ : state) {
    for (const herald::EventPtr& event : pool) {
      if (!bus.publish(event)) {
        state.SkipWithError("publish refused an event");
        break;
      }
    }
    bus.drain();
  }
  state.SetItemsProcessed(state.iterations() * queue_batch);
  benchmark::DoNotOptimize(handler_sink);
}

/// (f) baseline: the same batches through NaiveQueue into the naive dispatcher.
void publish_naive_queue(benchmark::State& state) {
  NaiveBus dispatcher;
  dispatcher.on<BenchEvent>(make_handler<BenchEvent>(1), 50);
  const auto pool = make_event_pool<std::shared_ptr<const BenchEvent>>(
      [](int i) { return std::make_shared<const BenchEvent>(make_event<BenchEvent>(i)); });
  NaiveQueue queue(dispatcher);
  queue.publish(pool.front());
  queue.drain();
  for (auto _ : state) {
    for (const auto& event : pool) queue.publish(event);
    queue.drain();
  }
  state.SetItemsProcessed(state.iterations() * queue_batch);
  benchmark::DoNotOptimize(handler_sink);
}

/// Checks that `Impl` calls every handler once per emit, so no implementation is timed doing
/// less work than the others. Returns false (after saying which) when it does not.
template <class Impl>
bool runs_every_handler(const char* impl_name) {
  constexpr int handlers = 10;
  Impl impl;
  for (int i = 0; i < handlers; ++i) {
    impl.template add<BenchEvent>(make_handler<BenchEvent>(i), priority_of(i));
  }
  const BenchEvent event = make_event<BenchEvent>(42);
  std::int64_t expected = handler_sink;
  for (int i = 0; i < handlers; ++i) make_handler<BenchEvent>(i)(event);
  expected = handler_sink - expected;
  const std::int64_t before = handler_sink;
  impl.emit(event);
  if (handler_sink - before == expected) return true;
  std::fprintf(stderr, "herald_bus_bench: %s did not run each of its %d handlers once\n", impl_name,
               handlers);
  return false;
}

bool verify_implementations() {
  bool ok = runs_every_handler<HeraldBus>(herald_name);
  ok = runs_every_handler<NaiveUnguarded>(naive_name) && ok;
  ok = runs_every_handler<NaiveSharedMutex>(naive_shared_name) && ok;
  ok = runs_every_handler<Signals2Bus>(signals2_name) && ok;
  ok = runs_every_handler<SigcBus>(sigc_name) && ok;
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Registration, with what the summary table needs to know about each benchmark.

enum class Metric { nanoseconds_per_event, events_per_second };

struct Case {
  std::string scenario;  // "(a) emit -> 1 handler"
  std::string impl;      // "herald"
  std::string baseline;  // the implementation the ratio is taken against
  Metric metric = Metric::nanoseconds_per_event;
  double events_per_iteration = 1;
};

/// Registered benchmarks by name, in registration order.
std::vector<std::pair<std::string, Case>>& cases() {
  static std::vector<std::pair<std::string, Case>> registered;
  return registered;
}

template <class Fn>
benchmark::internal::Benchmark* add_case(std::string_view key, Case info, Fn&& fn) {
  std::string name = std::string(key) + "/" + info.impl;
  cases().emplace_back(name, std::move(info));
  return benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn))
      ->Unit(benchmark::kNanosecond);
}

template <class Impl>
void register_single_threaded(const char* impl) {
  add_case("a_emit_1_handler", {"(a) emit -> 1 handler", impl, naive_name},
           [](benchmark::State& s) { emit_to_handlers<Impl>(s, 1); });
  add_case("b_emit_10_handlers", {"(b) emit -> 10 handlers", impl, naive_name},
           [](benchmark::State& s) { emit_to_handlers<Impl>(s, 10); });
  add_case("c_round_robin_30_types",
           {"(c) 30 types x 3 handlers, round robin", impl, naive_name,
            Metric::nanoseconds_per_event, round_robin_types},
           [](benchmark::State& s) { emit_round_robin<Impl>(s); });
  add_case("d_subscribe_unsubscribe", {"(d) subscribe + unsubscribe", impl, naive_name},
           [](benchmark::State& s) { subscribe_unsubscribe<Impl>(s); });
}

template <class Impl>
void register_concurrent(const char* impl) {
  add_case("e_two_threads_3_handlers",
           {"(e) 2 threads emit -> 3 handlers", impl, naive_shared_name, Metric::events_per_second},
           [](benchmark::State& s) { emit_concurrently<Impl>(s); })
      ->Threads(2)
      ->UseRealTime()
      ->Setup(&SharedBus<Impl>::create)
      ->Teardown(&SharedBus<Impl>::destroy);
}

void register_benchmarks() {
  register_single_threaded<HeraldBus>(herald_name);
  register_single_threaded<NaiveUnguarded>(naive_name);
  register_single_threaded<NaiveSharedMutex>(naive_shared_name);
  register_single_threaded<Signals2Bus>(signals2_name);
  register_single_threaded<SigcBus>(sigc_name);
  // The unguarded naive bus and libsigc++ are not thread-safe, so they sit (e) out.
  register_concurrent<HeraldBus>(herald_name);
  register_concurrent<NaiveSharedMutex>(naive_shared_name);
  register_concurrent<Signals2Bus>(signals2_name);
  add_case("f_publish_drain",
           {"(f) publish -> dispatcher -> handler", herald_name, naive_queue_name,
            Metric::events_per_second},
           publish_herald)
      ->UseRealTime();
  add_case("f_publish_drain",
           {"(f) publish -> dispatcher -> handler", naive_queue_name, naive_queue_name,
            Metric::events_per_second},
           publish_naive_queue)
      ->UseRealTime();
}

// ---------------------------------------------------------------------------------------------
// Memory check: 100 000 subscriptions, 1 000 on each of 100 types, registered round robin over
// the types (as modules registering at start-up would). Counts what the bus allocates; the
// caller's own vector of handles is reserved beforehand and not counted.

constexpr int memory_types = 100;
constexpr int memory_handlers_per_type = 1'000;

struct MemoryResult {
  std::string impl;
  std::int64_t live_bytes = 0;        // held by the bus once the 100k subscriptions are in
  std::int64_t peak_bytes = 0;        // most held at any moment while subscribing
  std::int64_t after_emit_bytes = 0;  // held after this thread emitted one event of each type
  std::uint64_t allocations = 0;
  double seconds = 0;  // time to subscribe all of them
};

template <class Impl, int... N>
void subscribe_one_per_type(Impl& impl, std::vector<typename Impl::Handle>& handles, int round,
                            std::integer_sequence<int, N...>) {
  (handles.push_back(impl.template subscribe<SyntheticEvent<N>>(
       make_handler<SyntheticEvent<N>>(round), priority_of(round))),
   ...);
}

template <class Impl, int... N>
void emit_one_per_type(Impl& impl, const std::tuple<SyntheticEvent<N>...>& events,
                       std::integer_sequence<int, N...>) {
  (impl.emit(std::get<N>(events)), ...);
}

template <int... N>
auto make_one_event_per_type(std::integer_sequence<int, N...>) {
  return std::make_unique<std::tuple<SyntheticEvent<N>...>>(make_event<SyntheticEvent<N>>(N)...);
}

template <class Impl>
MemoryResult measure_subscriptions(const char* impl_name) {
  constexpr auto types = std::make_integer_sequence<int, memory_types>{};
  std::vector<typename Impl::Handle> handles;
  handles.reserve(static_cast<std::size_t>(memory_types) * memory_handlers_per_type);
  const auto events = make_one_event_per_type(types);
  live_bytes = 0;
  peak_bytes = 0;
  allocation_count = 0;
  MemoryResult result{.impl = impl_name};
  counting_allocations = true;
  const auto start = std::chrono::steady_clock::now();
  auto impl = std::make_unique<Impl>();
  for (int round = 0; round < memory_handlers_per_type; ++round) {
    subscribe_one_per_type(*impl, handles, round, types);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.live_bytes = live_bytes;
  result.peak_bytes = peak_bytes;
  result.allocations = allocation_count;
  // Per-thread state a bus may build on first dispatch (herald: per-thread counter blocks).
  emit_one_per_type(*impl, *events, types);
  result.after_emit_bytes = live_bytes;
  counting_allocations = false;
  // The bus first: herald's subscriptions then find it gone and do nothing, instead of each
  // unsubscribing one by one.
  impl.reset();
  handles.clear();
  return result;
}

template <int... N>
void register_types_with_herald(std::integer_sequence<int, N...>) {
  // type_of<E>() builds a process-wide descriptor on first use; build them all before counting so
  // the bus is charged only for what it allocates itself.
  (static_cast<void>(herald::type_of<SyntheticEvent<N>>()), ...);
  static_cast<void>(herald::type_of<BenchEvent>());
}

std::vector<MemoryResult> run_memory_check() {
  register_types_with_herald(std::make_integer_sequence<int, memory_types>{});
  std::vector<MemoryResult> results;
  results.push_back(measure_subscriptions<HeraldBus>(herald_name));
  results.push_back(measure_subscriptions<NaiveUnguarded>(naive_name));
  results.push_back(measure_subscriptions<Signals2Bus>(signals2_name));
  results.push_back(measure_subscriptions<SigcBus>(sigc_name));
  return results;
}

// ---------------------------------------------------------------------------------------------
// Reporting: a reporter that records every repetition for the summary and forwards the
// aggregates (or the single run, without repetitions) to Google Benchmark's console reporter.

struct Samples {
  std::vector<double> values;  // ns per event, or events per second, one per repetition
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

class SummaryReporter : public benchmark::BenchmarkReporter {
 public:
  explicit SummaryReporter(benchmark::ConsoleReporter::OutputOptions options) : console_(options) {}

  bool ReportContext(const Context& context) override { return console_.ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    bool forward = false;
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate || run.repetitions <= 1 || run.error_occurred) {
        forward = true;
      }
      if (run.run_type == Run::RT_Iteration && !run.error_occurred) record(run);
    }
    if (forward) console_.ReportRuns(runs);
  }

  void Finalize() override { console_.Finalize(); }

  /// The per-repetition values of the benchmark `name`, or nullptr when it did not run.
  const Samples* samples(const std::string& name) const {
    auto found = samples_.find(name);
    return found == samples_.end() ? nullptr : &found->second;
  }

 private:
  void record(const Run& run) {
    const std::string& name = run.run_name.function_name;
    auto info = std::find_if(cases().begin(), cases().end(),
                             [&](const auto& entry) { return entry.first == name; });
    if (info == cases().end()) return;
    if (info->second.metric == Metric::events_per_second) {
      auto rate = run.counters.find("items_per_second");
      if (rate != run.counters.end()) samples_[name].values.push_back(rate->second.value);
    } else {
      const double ns =
          run.GetAdjustedCPUTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
      samples_[name].values.push_back(ns / info->second.events_per_iteration);
    }
  }

  benchmark::ConsoleReporter console_;
  std::map<std::string, Samples> samples_;
};

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string format_value(Metric metric, double value) {
  char text[64];
  if (metric == Metric::events_per_second) {
    std::snprintf(text, sizeof text, "%.2f M events/s", value / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.1f ns/event", value);
  }
  return text;
}

struct Summary {
  std::map<std::string, double> medians;  // by benchmark name

  std::optional<double> median_of(const std::string& name) const {
    auto found = medians.find(name);
    return found == medians.end() ? std::nullopt : std::optional<double>(found->second);
  }
};

Summary print_table(const SummaryReporter& reporter) {
  Summary summary;
  std::printf("\nherald event bus, side by side (CPU: %s, %u hardware threads)\n",
              cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf(
      "median of the repetitions; spread = (max - min) / median; ratio = this / baseline\n");
  std::printf("(ns/event: lower is better; events/s: higher is better)\n\n");
  std::printf("%-40s %-22s %20s %7s %5s  %s\n", "scenario", "implementation", "median", "spread",
              "reps", "ratio");
  std::string previous_scenario;
  for (const auto& [name, info] : cases()) {
    const Samples* samples = reporter.samples(name);
    if (samples == nullptr || samples->values.empty()) continue;
    const double value = median(samples->values);
    summary.medians[name] = value;
  }
  // Grouped by scenario (the name's prefix), implementations in registration order.
  std::vector<const std::pair<std::string, Case>*> ordered;
  for (const auto& entry : cases()) ordered.push_back(&entry);
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto* left, const auto* right) {
    return left->first.substr(0, left->first.find('/')) <
           right->first.substr(0, right->first.find('/'));
  });
  for (const auto* entry : ordered) {
    const auto& [name, info] = *entry;
    auto value = summary.median_of(name);
    if (!value) continue;
    const Samples& samples = *reporter.samples(name);
    const auto [low, high] = std::minmax_element(samples.values.begin(), samples.values.end());
    const double spread = *value > 0 ? (*high - *low) / *value * 100 : 0;
    const std::string key = name.substr(0, name.find('/'));
    auto baseline = summary.median_of(key + "/" + info.baseline);
    char ratio[64] = "-";
    if (baseline && *baseline > 0) {
      std::snprintf(ratio, sizeof ratio, "%.2fx %s", *value / *baseline, info.baseline.c_str());
    }
    if (info.scenario != previous_scenario && !previous_scenario.empty()) std::printf("\n");
    std::printf("%-40s %-22s %20s %6.1f%% %5zu  %s\n",
                info.scenario != previous_scenario ? info.scenario.c_str() : "", info.impl.c_str(),
                format_value(info.metric, *value).c_str(), spread, samples.values.size(), ratio);
    previous_scenario = info.scenario;
  }
  return summary;
}

void print_memory(const std::vector<MemoryResult>& results) {
  std::printf(
      "\nmemory: %d subscriptions over %d types (bytes the bus holds, malloc_usable_size)\n",
      memory_types * memory_handlers_per_type, memory_types);
  std::printf("%-22s %10s %10s %16s %10s %10s %12s\n", "implementation", "live MiB", "peak MiB",
              "after emit MiB", "bytes/sub", "allocs", "subscribe s");
  for (const MemoryResult& result : results) {
    std::printf("%-22s %10.2f %10.2f %16.2f %10.1f %10llu %12.3f\n", result.impl.c_str(),
                static_cast<double>(result.live_bytes) / (1 << 20),
                static_cast<double>(result.peak_bytes) / (1 << 20),
                static_cast<double>(result.after_emit_bytes) / (1 << 20),
                static_cast<double>(result.live_bytes) / (memory_types * memory_handlers_per_type),
                static_cast<unsigned long long>(result.allocations), result.seconds);
  }
  std::printf(
      "(live: after subscribing; after emit: once this thread emitted one event of each "
      "type)\n");
}

void print_targets(const Summary& summary, const std::vector<MemoryResult>& memory) {
  std::printf("\ntargets (medians of this run; informational)\n");
  auto report = [](const char* target, std::optional<double> measured, double limit, bool at_most,
                   const char* unit) {
    const char* verdict = "n/a";
    char shown[48] = "not measured";
    if (measured) {
      verdict = (at_most ? *measured <= limit : *measured >= limit) ? "PASS" : "MISS";
      std::snprintf(shown, sizeof shown, "%.3g%s", *measured, unit);
    }
    std::printf("  %-4s %-52s measured %s\n", verdict, target, shown);
  };
  auto ratio = [&](const std::string& key, const char* impl, const char* baseline) {
    auto value = summary.median_of(key + "/" + impl);
    auto base = summary.median_of(key + "/" + baseline);
    return value && base && *base > 0 ? std::optional<double>(*value / *base) : std::nullopt;
  };
  report("(a) herald <= 1.0x naive (ns/event)", ratio("a_emit_1_handler", herald_name, naive_name),
         1.0, true, "x");
  report("(b) herald <= 1.0x naive (ns/event)",
         ratio("b_emit_10_handlers", herald_name, naive_name), 1.0, true, "x");
  report("(c) herald <= 1.0x naive (ns/event)",
         ratio("c_round_robin_30_types", herald_name, naive_name), 1.0, true, "x");
  report("(a) herald <= 0.35x boost.signals2 (ns/event)",
         ratio("a_emit_1_handler", herald_name, signals2_name), 0.35, true, "x");
  report("(e) herald >= 1.5x naive+shared_mutex (events/s)",
         ratio("e_two_threads_3_handlers", herald_name, naive_shared_name), 1.5, false, "x");
  auto queue_rate = summary.median_of(std::string("f_publish_drain/") + herald_name);
  report("(f) herald publish->handler >= 5 M events/s",
         queue_rate ? std::optional<double>(*queue_rate / 1e6) : std::nullopt, 5.0, false, " M/s");
  std::optional<double> herald_mib;
  for (const MemoryResult& result : memory) {
    // The larger of the two: what the bus holds once it has actually dispatched.
    if (result.impl == herald_name) {
      herald_mib =
          static_cast<double>(std::max(result.live_bytes, result.after_emit_bytes)) / (1 << 20);
    }
  }
  report("memory: herald 100k subscriptions / 100 types <= 32 MiB", herald_mib, 32.0, true, " MiB");
}

}  // namespace herald_bench

int main(int argc, char** argv) {
  using namespace herald_bench;
  // Five repetitions unless the command line says otherwise (a later flag wins).
  static char repetitions_flag[] = "--benchmark_repetitions=5";
  std::vector<char*> args{argv[0], repetitions_flag};
  bool memory_check = true;
  for (int i = 1; i < argc; ++i) {
    // Ours, not Google Benchmark's: skips the memory check (useful under a profiler).
    if (std::string_view(argv[i]) == "--herald_skip_memory") {
      memory_check = false;
    } else {
      args.push_back(argv[i]);
    }
  }
  int arg_count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&arg_count, args.data());
  if (benchmark::ReportUnrecognizedArguments(arg_count, args.data())) return 1;

  if (!verify_implementations()) return 1;
  register_benchmarks();
  SummaryReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                 : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const Summary summary = print_table(reporter);
  std::vector<MemoryResult> memory;
  if (memory_check) {
    memory = run_memory_check();
    print_memory(memory);
  }
  print_targets(summary, memory);
  std::printf("\nsink %lld\n", static_cast<long long>(handler_sink));
  benchmark::Shutdown();
  return 0;
}
