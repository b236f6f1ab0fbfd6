#include "epoch.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <limits>

namespace herald::detail {
namespace {

[[maybe_unused]] long membarrier(int command) noexcept {
  return ::syscall(__NR_membarrier, command, 0U, 0);
}

}  // namespace

ThreadRecord::~ThreadRecord() {
  for (std::size_t i = 0; i < counter_chunk_count; ++i) delete[] chunks[i].load();
}

CounterBlock* ThreadRecord::allocate_chunk(std::uint32_t slot) {
  auto* blocks = new CounterBlock[counter_chunk_size]();
  chunks[slot / counter_chunk_size].store(blocks, std::memory_order_release);
  return blocks;
}

const CounterBlock* ThreadRecord::find_counters(std::uint32_t slot) const noexcept {
  const CounterBlock* blocks = chunks[slot / counter_chunk_size].load(std::memory_order_acquire);
  return blocks == nullptr ? nullptr : &blocks[slot % counter_chunk_size];
}

EpochDomain& EpochDomain::instance() noexcept {
  // Leaked on purpose: threads may end (and release their records) after static destruction.
  static EpochDomain* domain = new EpochDomain();
  return *domain;
}

EpochDomain::EpochDomain() {
#if !defined(HERALD_TSAN)
  // membarrier(2): registration is required once per process before PRIVATE_EXPEDITED.
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported > 0 && (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
      membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
    light_readers_ = true;
  }
#endif
}

EpochDomain::LocalHandle::LocalHandle() : record(instance().acquire_record()) {}

EpochDomain::LocalHandle::~LocalHandle() {
  assert(record->depth == 0);
  record->active.store(0, std::memory_order_release);
  record->in_use.store(false, std::memory_order_release);
}

ThreadRecord* EpochDomain::acquire_record() {
  for (ThreadRecord* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    bool expected = false;
    if (!r->in_use.load(std::memory_order_relaxed) &&
        r->in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      return r;
    }
  }
  auto* record = new ThreadRecord();
  record->in_use.store(true, std::memory_order_relaxed);
  ThreadRecord* head = head_.load(std::memory_order_relaxed);
  do {
    record->next = head;
  } while (!head_.compare_exchange_weak(head, record, std::memory_order_acq_rel));
  return record;
}

std::uint64_t EpochDomain::oldest_active() noexcept {
#if !defined(HERALD_TSAN)
  if (light_readers_) {
    // Forces a full barrier on every running thread of the process, so each reader's relaxed
    // announcement is visible before we look (membarrier(2), MEMBARRIER_CMD_PRIVATE_EXPEDITED).
    // Registration succeeded, so the command cannot fail for lack of it.
    [[maybe_unused]] const long result = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    assert(result == 0);
  }
#endif
  std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
  for (ThreadRecord* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    const std::uint64_t active = r->active.load(std::memory_order_seq_cst);
    if (active != 0) oldest = std::min(oldest, active);
  }
  return oldest;
}

std::uint32_t EpochDomain::allocate_slot() {
  std::lock_guard lock(slots_mutex_);
  if (!free_slots_.empty()) {
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  assert(next_slot_ < counter_chunk_size * counter_chunk_count && "too many handlers");
  return next_slot_++;
}

void EpochDomain::release_slot(std::uint32_t slot) noexcept {
  for (ThreadRecord* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    if (const CounterBlock* block = r->find_counters(slot)) {
      auto& writable = const_cast<CounterBlock&>(*block);
      for (auto& v : writable.value) v.store(0, std::memory_order_relaxed);
    }
  }
  std::lock_guard lock(slots_mutex_);
  free_slots_.push_back(slot);
}

std::uint64_t EpochDomain::sum(std::uint32_t slot, std::size_t index) const noexcept {
  std::uint64_t total = 0;
  for (ThreadRecord* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    if (const CounterBlock* block = r->find_counters(slot)) {
      total += block->value[index].load(std::memory_order_relaxed);
    }
  }
  return total;
}

std::uint64_t EpochDomain::max(std::uint32_t slot, std::size_t index) const noexcept {
  std::uint64_t result = 0;
  for (ThreadRecord* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    if (const CounterBlock* block = r->find_counters(slot)) {
      result = std::max(result, block->value[index].load(std::memory_order_relaxed));
    }
  }
  return result;
}

void RetireList::retire(std::shared_ptr<const void> garbage) {
  // Readers that announced this epoch or an earlier one may still hold `garbage`.
  items_.push_back(Item{EpochDomain::instance().advance(), std::move(garbage)});
  if (items_.size() >= 32) reclaim();
}

void RetireList::reclaim() {
  if (items_.empty()) return;
  const std::uint64_t oldest = EpochDomain::instance().oldest_active();
  std::erase_if(items_, [oldest](const Item& item) { return item.epoch < oldest; });
}

}  // namespace herald::detail
