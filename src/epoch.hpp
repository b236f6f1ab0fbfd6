#pragma once

// Epoch-based reclamation for the bus's handler snapshots, and per-thread counters.
//
// Readers (emitting threads) announce the epoch they started in; a writer that replaced a
// snapshot retires the old one with the epoch current at that time, and frees it once every
// thread is either quiescent or announced a later epoch. Reading costs a thread-local access and
// one store: where the kernel offers membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED), writers
// issue the memory barrier on the readers' behalf, so readers need only a compiler barrier
// (the technique of userspace RCU's "memb" flavour); otherwise readers use a full fence.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace herald::detail {

/// Counters of one handler (or one bus) written by one thread. Only the owning thread writes
/// them while they are in use, so plain load-then-store updates are exact and need no lock.
struct alignas(64) CounterBlock {
  std::atomic<std::uint64_t> value[6];

  void add(std::size_t i, std::uint64_t n) noexcept {
    value[i].store(value[i].load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void raise_to(std::size_t i, std::uint64_t n) noexcept {
    if (n > value[i].load(std::memory_order_relaxed)) value[i].store(n, std::memory_order_relaxed);
  }
};

/// What each counter of a handler's block means. `recent_ns` is this thread's moving average of
/// the handler's timed calls, which decides whether every call is timed.
enum HandlerCounter : std::size_t { calls = 0, failures, timed_calls, timed_ns, max_ns, recent_ns };
/// What each counter of a bus's block means.
enum BusCounter : std::size_t {
  dispatched = 0,
  dropped_disabled,
  unhandled,
  refused_full,
  handler_failures,
};

inline constexpr std::size_t counter_chunk_size = 256;
inline constexpr std::size_t counter_chunk_count = 4096;  // 1M counter slots in all

/// The per-thread state: the announced epoch, nesting depth, and counter blocks.
struct alignas(64) ThreadRecord {
  /// The epoch this thread entered its outermost read section in; 0 when quiescent.
  std::atomic<std::uint64_t> active{0};
  /// Nesting of read sections (a handler that emits); owner-only.
  std::uint32_t depth = 0;
  /// Emit counter for sampling handler timings; owner-only.
  std::uint32_t tick = 0;
  std::atomic<bool> in_use{false};
  ThreadRecord* next = nullptr;
  std::unique_ptr<std::atomic<CounterBlock*>[]> chunks {
    new std::atomic<CounterBlock*>[ counter_chunk_count ]()
  };

  ~ThreadRecord();
  /// This thread's block for `slot`, allocated on first use. Owner-only.
  CounterBlock& counters(std::uint32_t slot) {
    CounterBlock* blocks = chunks[slot / counter_chunk_size].load(std::memory_order_relaxed);
    if (blocks == nullptr) [[unlikely]]
      blocks = allocate_chunk(slot);
    return blocks[slot % counter_chunk_size];
  }
  /// Allocates and publishes the chunk holding `slot`.
  CounterBlock* allocate_chunk(std::uint32_t slot);
  /// The block for `slot` if it was ever allocated; any thread.
  const CounterBlock* find_counters(std::uint32_t slot) const noexcept;
};

/// The process-wide reclamation domain. Thread-safe.
class EpochDomain {
 public:
  static EpochDomain& instance() noexcept;

  /// The calling thread's record (registered on first use, released when the thread ends).
  static ThreadRecord& local() noexcept {
    thread_local LocalHandle handle;
    return *handle.record;
  }

  std::uint64_t current() const noexcept { return epoch_.load(std::memory_order_acquire); }
  bool light_readers() const noexcept { return light_readers_; }

  /// Starts a new epoch; returns the one that ended (objects retired in it may still be read).
  std::uint64_t advance() noexcept { return epoch_.fetch_add(1, std::memory_order_seq_cst); }
  /// Makes every reader's announcement visible (membarrier where readers are light), then returns
  /// the smallest epoch announced by a thread inside a read section, or UINT64_MAX.
  std::uint64_t oldest_active() noexcept;

  /// Allocates a counter slot; slots are process-wide so thread records can index them densely.
  std::uint32_t allocate_slot();
  /// Zeroes `slot` in every thread's counters and makes it available again. Call only when no
  /// thread can still write it (after its handler was reclaimed).
  void release_slot(std::uint32_t slot) noexcept;
  /// Sums `index` of `slot` over every thread (or takes the maximum).
  std::uint64_t sum(std::uint32_t slot, std::size_t index) const noexcept;
  std::uint64_t max(std::uint32_t slot, std::size_t index) const noexcept;

 private:
  struct LocalHandle {
    LocalHandle();
    ~LocalHandle();
    ThreadRecord* record;
  };

  EpochDomain();
  ThreadRecord* acquire_record();

  std::atomic<std::uint64_t> epoch_{1};
  std::atomic<ThreadRecord*> head_{nullptr};
  bool light_readers_ = false;
  std::mutex slots_mutex_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t next_slot_ = 0;
};

/// A read section: while it lives, snapshots loaded in it are not freed. Nestable.
class ReadSection {
 public:
  ReadSection() noexcept : record_(EpochDomain::local()) {
    if (record_.depth++ == 0) {
      EpochDomain& domain = EpochDomain::instance();
      const std::uint64_t epoch = domain.current();
#if defined(HERALD_TSAN)
      record_.active.exchange(epoch, std::memory_order_seq_cst);
#else
      if (domain.light_readers()) {
        record_.active.store(epoch, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);
      } else {
        record_.active.exchange(epoch, std::memory_order_seq_cst);
      }
#endif
    }
  }
  ~ReadSection() {
    if (--record_.depth == 0) record_.active.store(0, std::memory_order_release);
  }
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;

  ThreadRecord& record() const noexcept { return record_; }

 private:
  ThreadRecord& record_;
};

/// Objects a writer replaced, kept until no reader can hold them. Not thread-safe: owned by one
/// writer at a time (the bus's mutex).
class RetireList {
 public:
  ~RetireList() = default;
  /// Keeps `garbage` until the current epoch has passed; reclaims in batches.
  void retire(std::shared_ptr<const void> garbage);
  /// Frees what no reader can hold any more.
  void reclaim();
  std::size_t size() const noexcept { return items_.size(); }

 private:
  struct Item {
    std::uint64_t epoch;
    std::shared_ptr<const void> garbage;
  };
  std::vector<Item> items_;
};

}  // namespace herald::detail
