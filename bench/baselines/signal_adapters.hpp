#pragma once

// The two signal/slot libraries herald's EventBus is compared with, behind the small interface
// every implementation in bus_bench.cpp offers: `add<E>` (register and keep), `subscribe<E>` /
// `unsubscribe<E>` (a handle the caller owns), `emit`. Each event type gets its own signal, held
// in a fixed slot chosen at compile time (`E::bench_slot`), as a program using these libraries
// would hold one signal member per event type.

#include <sigc++/sigc++.h>
#include <array>
#include <boost/signals2/connection.hpp>
#include <boost/signals2/optional_last_value.hpp>
#include <boost/signals2/signal.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

namespace herald_bench {

/// Slots for the event types of the benchmark: SyntheticEvent<0..99> and BenchEvent (100).
inline constexpr std::size_t signal_slot_count = 101;

/// Boost.Signals2 with one signal per event type; the slot group is the handler's priority and
/// groups run highest first (std::greater). Thread-safe once every signal exists (the signals are
/// created by `add`/`subscribe`, which the benchmarks call before emitting from several threads).
class Signals2Bus {
 public:
  template <class E>
  using Signal = boost::signals2::signal<void(const E&), boost::signals2::optional_last_value<void>,
                                         int, std::greater<int>>;
  using Handle = boost::signals2::connection;

  template <class E, class F>
  void add(F handler, int priority) {
    signal<E>().connect(priority, std::move(handler));
  }

  template <class E, class F>
  Handle subscribe(F handler, int priority) {
    return signal<E>().connect(priority, std::move(handler));
  }

  template <class E>
  void unsubscribe(Handle& handle) {
    handle.disconnect();
  }

  template <class E>
  void emit(const E& event) {
    if (void* existing = signals_[E::bench_slot].get()) (*static_cast<Signal<E>*>(existing))(event);
  }

 private:
  template <class E>
  Signal<E>& signal() {
    std::shared_ptr<void>& slot = signals_[E::bench_slot];
    if (!slot) slot = std::make_shared<Signal<E>>();
    return *static_cast<Signal<E>*>(slot.get());
  }

  std::array<std::shared_ptr<void>, signal_slot_count> signals_;
};

/// libsigc++ 3 with one signal per event type. Not thread-safe. sigc has no priorities: slots run
/// in connection order, so `priority` is ignored (the cost of emitting does not depend on it).
class SigcBus {
 public:
  template <class E>
  using Signal = sigc::signal<void(const E&)>;
  using Handle = sigc::connection;

  template <class E, class F>
  void add(F handler, int /*priority*/) {
    signal<E>().connect(std::move(handler));
  }

  template <class E, class F>
  Handle subscribe(F handler, int /*priority*/) {
    return signal<E>().connect(std::move(handler));
  }

  template <class E>
  void unsubscribe(Handle& handle) {
    handle.disconnect();
  }

  template <class E>
  void emit(const E& event) {
    if (void* existing = signals_[E::bench_slot].get())
      static_cast<Signal<E>*>(existing)->emit(event);
  }

 private:
  template <class E>
  Signal<E>& signal() {
    std::shared_ptr<void>& slot = signals_[E::bench_slot];
    if (!slot) slot = std::make_shared<Signal<E>>();
    return *static_cast<Signal<E>*>(slot.get());
  }

  std::array<std::shared_ptr<void>, signal_slot_count> signals_;
};

}  // namespace herald_bench
