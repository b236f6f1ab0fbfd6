// Concurrency of the bus: run under TSan by `make test`.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "herald/event_bus.hpp"
#include "test_events.hpp"

namespace herald {
namespace {

using test::ThingCreatedEvent;
using test::ThingRenamedEvent;
using test::TickEvent;

TEST(EventBusConcurrency, CountsAreExactWithFourEmittersWhileOthersSubscribeAndUnsubscribe) {
  constexpr int emitters = 4;
  constexpr int per_emitter = 100000;
  EventBus bus;
  std::atomic<std::uint64_t> stable_calls{0};
  std::atomic<std::uint64_t> churn_calls{0};
  std::atomic<std::uint64_t> any_calls{0};
  auto stable = bus.on<TickEvent>(
      [&](const TickEvent&) { stable_calls.fetch_add(1, std::memory_order_relaxed); },
      {.priority = Priority::high, .name = "stable"});
  auto any = bus.on_any([&](EventRef) { any_calls.fetch_add(1, std::memory_order_relaxed); },
                        {.priority = Priority::low});

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> churn_cycles{0};
  std::vector<std::thread> churners;
  for (int c = 0; c < 2; ++c) {
    churners.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        auto s = bus.on<TickEvent>(
            [&](const TickEvent&) { churn_calls.fetch_add(1, std::memory_order_relaxed); });
        auto other = bus.on<ThingCreatedEvent>([](const ThingCreatedEvent&) {});
        churn_cycles.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  std::atomic<std::uint64_t> handlers_run{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < emitters; ++t) {
    workers.emplace_back([&] {
      std::uint64_t run = 0;
      for (int i = 0; i < per_emitter; ++i) run += bus.emit(TickEvent{.sequence = i}).handlers_run;
      handlers_run.fetch_add(run);
    });
  }
  for (auto& w : workers) w.join();
  stop = true;
  for (auto& c : churners) c.join();

  constexpr std::uint64_t total = std::uint64_t{emitters} * per_emitter;
  EXPECT_EQ(stable_calls.load(), total);
  EXPECT_EQ(any_calls.load(), total);
  EXPECT_EQ(handlers_run.load(), 2 * total + churn_calls.load())
      << "every handler call reported by emit happened exactly once";
  EXPECT_GT(churn_cycles.load(), 0U);
  EXPECT_EQ(bus.handler_count(), 2U);
  const auto stats = bus.handler_stats();
  ASSERT_EQ(stats.size(), 2U);
  EXPECT_EQ(stats[0].name, "stable");
  EXPECT_EQ(stats[0].calls, total);
  EXPECT_EQ(stats[1].calls, total);
  EXPECT_EQ(bus.stats().dispatched, total);
}

TEST(EventBusConcurrency, PublishersOnManyThreadsEachKeepTheirOrder) {
  constexpr int producers = 4;
  constexpr int per_producer = 50000;
  EventBus bus({.queue_capacity = 1024});
  std::vector<std::int64_t> last(producers, -1);
  std::atomic<bool> out_of_order{false};
  std::uint64_t calls = 0;  // only the dispatcher thread touches it until drain returns
  auto sub = bus.on<TickEvent>([&](const TickEvent& e) {
    const auto producer = static_cast<std::size_t>(*e.organization_id);
    if (e.sequence <= last[producer]) out_of_order = true;
    last[producer] = e.sequence;
    ++calls;
  });
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        TickEvent e;
        e.organization_id = p;
        e.sequence = i;
        ASSERT_TRUE(bus.publish(std::move(e)).has_value());
      }
    });
  }
  for (auto& t : threads) t.join();
  bus.drain();
  EXPECT_FALSE(out_of_order.load());
  EXPECT_EQ(calls, std::uint64_t{producers} * per_producer);
  EXPECT_EQ(bus.stats().published, std::uint64_t{producers} * per_producer);
}

TEST(EventBusConcurrency, EmittersAndPublishersShareHandlersSafely) {
  EventBus bus({.queue_capacity = 256});
  std::atomic<std::uint64_t> calls{0};
  auto sub = bus.on<ThingCreatedEvent>([&](const ThingCreatedEvent&) { calls.fetch_add(1); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) bus.emit(ThingCreatedEvent{});
    });
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) ASSERT_TRUE(bus.publish(ThingCreatedEvent{}).has_value());
    });
  }
  for (auto& t : threads) t.join();
  bus.drain();
  EXPECT_EQ(calls.load(), 80000U);
}

TEST(EventBusConcurrency, ManyBusesComeAndGoWhileOthersEmit) {
  EventBus shared;
  std::atomic<std::uint64_t> calls{0};
  auto sub = shared.on<ThingRenamedEvent>([&](const ThingRenamedEvent&) { calls.fetch_add(1); });
  std::atomic<bool> stop{false};
  std::thread emitter([&] {
    while (!stop.load()) shared.emit(ThingRenamedEvent{});
  });
  for (int i = 0; i < 200; ++i) {
    EventBus temporary;
    auto s = temporary.on<ThingRenamedEvent>([](const ThingRenamedEvent&) {});
    temporary.emit(ThingRenamedEvent{});
    ASSERT_TRUE(temporary.publish(ThingRenamedEvent{}).has_value());
  }
  stop = true;
  emitter.join();
  EXPECT_EQ(shared.stats().dispatched, calls.load());
}

}  // namespace
}  // namespace herald
