#include "herald/durable_consumer.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

namespace herald {

namespace {

// How long stop() waits for the loop to leave EventStore::wait_for before it wakes the store's
// waiters again: a wake that lands just before the loop enters wait_for is missed.
constexpr std::chrono::milliseconds stop_wake_interval{10};

std::string mark_name(std::string_view consumer) {
  std::string name(consumer);
  name.append(replay_mark_suffix);
  return name;
}

Error already_running_error(std::string_view name) {
  return Error{ErrorCode::conflict,
               "consumer '" + std::string(name) +
                   "' is already running; stop it before running it in this thread",
               {}};
}

// Writes the replay mark before the checkpoint: a crash between the two leaves the old
// checkpoint with a higher mark, which only flags events the consumer has indeed seen.
std::expected<std::int64_t, Error> write_reset(EventStore& store, const std::string& name,
                                               std::int64_t passed, std::int64_t replay_until,
                                               std::int64_t position) {
  const std::int64_t mark = std::max(passed, replay_until);
  if (mark > replay_until) {
    if (auto saved = store.save_checkpoint(mark_name(name), mark); !saved) {
      return std::unexpected(std::move(saved.error()));
    }
  }
  if (auto saved = store.save_checkpoint(name, position); !saved) {
    return std::unexpected(std::move(saved.error()));
  }
  return mark;
}

std::expected<void, Error> check_position(std::int64_t position) {
  if (position < 0) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "position",
                         "expected 0 or a store position, got " + std::to_string(position)));
  }
  return {};
}

}  // namespace

bool is_replay_mark(std::string_view checkpoint_name) noexcept {
  return checkpoint_name.ends_with(replay_mark_suffix);
}

std::expected<ConsumerStatus, Error> consumer_status(EventStore& store, const std::string& name) {
  auto checkpoint = store.load_checkpoint(name);
  if (!checkpoint) return std::unexpected(std::move(checkpoint.error()));
  auto mark = store.load_checkpoint(mark_name(name));
  if (!mark) return std::unexpected(std::move(mark.error()));
  auto head = store.head();
  if (!head) return std::unexpected(std::move(head.error()));
  auto parked = store.list_parked(name);
  if (!parked) return std::unexpected(std::move(parked.error()));
  ConsumerStatus status;
  status.name = name;
  status.checkpoint = checkpoint->position;
  status.head = *head;
  status.lag = std::max<std::int64_t>(0, *head - checkpoint->position);
  status.replay_until = mark->position > checkpoint->position ? mark->position : 0;
  status.parked = static_cast<std::int64_t>(parked->size());
  status.updated_at = checkpoint->updated_at;
  return status;
}

std::expected<std::vector<ConsumerStatus>, Error> list_consumers(EventStore& store) {
  auto checkpoints = store.list_checkpoints();
  if (!checkpoints) return std::unexpected(std::move(checkpoints.error()));
  std::vector<ConsumerStatus> consumers;
  for (const ConsumerCheckpoint& checkpoint : *checkpoints) {
    if (is_replay_mark(checkpoint.name)) continue;
    auto status = consumer_status(store, checkpoint.name);
    if (!status) return std::unexpected(std::move(status.error()));
    consumers.push_back(std::move(*status));
  }
  std::ranges::sort(consumers, {}, &ConsumerStatus::name);
  return consumers;
}

std::expected<void, Error> reset_consumer(EventStore& store, const std::string& name,
                                          std::int64_t position) {
  if (auto valid = check_position(position); !valid) return valid;
  auto checkpoint = store.load_checkpoint(name);
  if (!checkpoint) return std::unexpected(std::move(checkpoint.error()));
  auto mark = store.load_checkpoint(mark_name(name));
  if (!mark) return std::unexpected(std::move(mark.error()));
  auto written = write_reset(store, name, checkpoint->position, mark->position, position);
  if (!written) return std::unexpected(std::move(written.error()));
  return {};
}

std::expected<std::int64_t, Error> position_before_time(EventStore& store, Timestamp since) {
  auto first = store.read_forward(0, 1, EventFilter{.since = since});
  if (!first) return std::unexpected(std::move(first.error()));
  if (!first->empty()) return first->front().position - 1;
  return store.head();
}

DurableConsumer::DurableConsumer(EventStore& store, ConsumerOptions options,
                                 ConsumerHandler handler)
    : DurableConsumer(store, std::move(options), std::move(handler), ConsumerBatchHandler{}) {}

DurableConsumer::DurableConsumer(EventStore& store, ConsumerOptions options,
                                 ConsumerHandler handler, ConsumerBatchHandler batch_handler)
    : store_(store),
      options_(std::move(options)),
      handler_(std::move(handler)),
      batch_handler_(std::move(batch_handler)) {
  assert(!options_.name.empty() && "a durable consumer needs a name for its checkpoint");
  assert(!is_replay_mark(options_.name) && "a consumer name must not end in the replay suffix");
  assert(options_.batch_size > 0);
  assert(options_.max_attempts >= 0);
  assert(handler_);
  mark_name_ = mark_name(options_.name);
  read_size_ = options_.batch_size;
  if (!options_.on_error) {
    options_.on_error = [name = options_.name](const Error& error) {
      std::fprintf(stderr, "herald: consumer '%s': %s\n", name.c_str(), error.message.c_str());
    };
  }
}

DurableConsumer::~DurableConsumer() { stop(); }

bool DurableConsumer::running() const noexcept {
  std::lock_guard lock(mutex_);
  return in_loop_;
}

std::expected<void, Error> DurableConsumer::enter_loop() {
  std::lock_guard lock(mutex_);
  if (in_loop_) return std::unexpected(already_running_error(options_.name));
  in_loop_ = true;
  stop_requested_ = false;
  return {};
}

void DurableConsumer::leave_loop() noexcept {
  std::lock_guard lock(mutex_);
  if (auto saved = save_locked(); !saved) options_.on_error(saved.error());
  in_loop_ = false;
  changed_.notify_all();
}

std::expected<void, Error> DurableConsumer::start() {
  std::thread previous;
  {
    std::lock_guard lock(mutex_);
    if (in_loop_) return std::unexpected(already_running_error(options_.name));
    in_loop_ = true;
    stop_requested_ = false;
    previous = std::move(thread_);
  }
  // A thread that left its loop on its own is finished but still joinable.
  if (previous.joinable()) previous.join();
  std::lock_guard lock(mutex_);
  thread_ = std::thread([this] { thread_main(); });
  return {};
}

void DurableConsumer::stop() {
  std::thread thread;
  {
    std::unique_lock lock(mutex_);
    stop_requested_ = true;
    changed_.notify_all();
    // A loop blocked in the store's wait_for would sleep out its poll_timeout. The loop sets the
    // flag under this mutex after it last looked at stop_requested_, so it is seen here; but the
    // wake can still land before the loop is inside wait_for, where it would be lost, so it is
    // repeated until the loop has left the wait.
    while (waiting_for_appends_) {
      lock.unlock();
      store_.wake_waiters();
      lock.lock();
      changed_.wait_for(lock, stop_wake_interval, [&] { return !waiting_for_appends_; });
    }
    changed_.wait(lock, [&] { return !in_loop_; });
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

void DurableConsumer::thread_main() {
  int failures = 0;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stop_requested_) break;
    }
    auto stepped = step(true, nullptr);
    if (stepped) {
      failures = 0;
      continue;
    }
    options_.on_error(stepped.error());
    // The store is failing (a restarting server, a full disk): wait longer each time so as not
    // to spin, and try again until stopped.
    std::uint64_t generation;
    {
      std::lock_guard lock(mutex_);
      generation = generation_;
    }
    interruptible_wait(backoff(++failures), generation);
  }
  leave_loop();
}

std::expected<std::size_t, Error> DurableConsumer::run_once() {
  if (auto entered = enter_loop(); !entered) return std::unexpected(std::move(entered.error()));
  auto handled = step(false, nullptr);
  leave_loop();
  return handled;
}

std::expected<std::size_t, Error> DurableConsumer::catch_up() {
  if (auto entered = enter_loop(); !entered) return std::unexpected(std::move(entered.error()));
  std::size_t total = 0;
  std::expected<std::size_t, Error> result = 0;
  for (;;) {
    auto handled = step(false, nullptr);
    if (!handled) {
      result = std::unexpected(std::move(handled.error()));
      break;
    }
    total += *handled;
    std::lock_guard lock(mutex_);
    if (*handled == 0 || stop_requested_) {
      result = total;
      break;
    }
  }
  leave_loop();
  return result;
}

std::expected<void, Error> DurableConsumer::run_until(const std::function<bool()>& done) {
  if (auto entered = enter_loop(); !entered) return entered;
  std::expected<void, Error> result;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stop_requested_) break;
    }
    if (done()) break;
    if (auto handled = step(true, &done); !handled) {
      result = std::unexpected(std::move(handled.error()));
      break;
    }
  }
  leave_loop();
  return result;
}

std::expected<std::size_t, Error> DurableConsumer::step(bool wait,
                                                        const std::function<bool()>* done) {
  std::uint64_t generation;
  std::int64_t from;
  {
    std::lock_guard lock(mutex_);
    if (auto synced = sync_from_store_locked(); !synced) {
      return std::unexpected(std::move(synced.error()));
    }
    generation = generation_;
    from = checkpoint_;
  }
  const std::size_t wanted = read_size_;
  auto events = store_.read_forward(from, wanted);
  if (!events) return std::unexpected(std::move(events.error()));
  // Behind: read more at once next time; caught up: back to the configured batch.
  read_size_ = events->size() == wanted
                   ? std::max(options_.batch_size, std::min(wanted * 2, options_.max_batch_size))
                   : options_.batch_size;
  if (events->empty()) {
    if (wait) {
      if (options_.on_idle) options_.on_idle(from);
      {
        std::lock_guard lock(mutex_);
        if (stop_requested_ || generation_ != generation) return 0;
        waiting_for_appends_ = true;
      }
      auto head = store_.wait_for(from, options_.poll_timeout);
      {
        std::lock_guard lock(mutex_);
        waiting_for_appends_ = false;
        changed_.notify_all();
      }
      if (!head) return std::unexpected(std::move(head.error()));
    }
    return 0;
  }

  std::size_t handled = 0;
  std::expected<void, Error> failure;
  if (batch_handler_ && deliver_batch(*events, generation)) {
    advance(events->back().position, generation);
    handled = events->size();
  } else {
    for (const StoredEvent& event : *events) {
      {
        std::lock_guard lock(mutex_);
        if (stop_requested_ || generation_ != generation) break;
      }
      auto outcome = deliver(event, generation);
      if (!outcome) {
        failure = std::unexpected(std::move(outcome.error()));
        break;
      }
      if (*outcome == Outcome::interrupted) break;
      advance(event.position, generation);
      ++handled;
      if (done != nullptr && (*done)()) break;
    }
  }

  std::lock_guard lock(mutex_);
  if (generation_ == generation) {
    if (auto saved = save_locked(); !saved && failure) failure = std::move(saved);
  }
  if (!failure) return std::unexpected(std::move(failure.error()));
  return handled;
}

std::expected<DurableConsumer::Outcome, Error> DurableConsumer::deliver(const StoredEvent& event,
                                                                        std::uint64_t generation) {
  for (int attempt = 1;; ++attempt) {
    std::expected<void, Error> result;
    {
      // Checked under the handler lock so that a reset, which takes it too, cannot slip in
      // between the check and the call: a handler that moves the checkpoint itself (the audit
      // log) would otherwise undo the reset.
      std::lock_guard handler_lock(handler_mutex_);
      bool replay;
      {
        std::lock_guard lock(mutex_);
        if (generation_ != generation || stop_requested_) return Outcome::interrupted;
        replay = event.position <= replay_until_;
      }
      result = invoke(event, Delivery{.replay = replay, .attempt = attempt});
    }
    if (result) return Outcome::handled;

    if (options_.max_attempts > 0 && attempt >= options_.max_attempts) {
      ParkedEvent parked{.consumer = options_.name,
                         .position = event.position,
                         .event_id = event.event->event_id,
                         .event_type = std::string(event.event.event_type()),
                         .error = result.error().message,
                         .attempts = attempt,
                         .parked_at = now()};
      if (auto stored = store_.park(parked); !stored) {
        return std::unexpected(std::move(stored.error()));
      }
      if (options_.on_park) options_.on_park(parked);
      return Outcome::parked;
    }

    const std::chrono::milliseconds delay = backoff(attempt);
    if (options_.on_retry) options_.on_retry(event, attempt, delay, result.error());
    if (attempt == 1) {
      // Keep what the batch achieved before this event: a crash during a long backoff should
      // not deliver it all again.
      std::lock_guard lock(mutex_);
      if (generation_ == generation) {
        if (auto saved = save_locked(); !saved) return std::unexpected(std::move(saved.error()));
      }
    }
    if (!interruptible_wait(delay, generation)) return Outcome::interrupted;
  }
}

bool DurableConsumer::deliver_batch(std::span<const StoredEvent> events, std::uint64_t generation) {
  // The same handler lock and checks as deliver(): a reset must not slip in between.
  std::lock_guard handler_lock(handler_mutex_);
  std::vector<Delivery> deliveries;
  deliveries.reserve(events.size());
  {
    std::lock_guard lock(mutex_);
    if (generation_ != generation || stop_requested_) return false;
    for (const StoredEvent& event : events) {
      deliveries.push_back(Delivery{.replay = event.position <= replay_until_, .attempt = 1});
    }
  }
  // A failed batch is not reported here: the events go to the per-event handler next, whose
  // failures take the usual path (on_retry, backoff, parking).
  return invoke_batch(events, deliveries).has_value();
}

std::expected<void, Error> DurableConsumer::invoke_batch(std::span<const StoredEvent> events,
                                                         std::span<const Delivery> deliveries) {
  try {
    return batch_handler_(events, deliveries);
  } catch (const std::exception& e) {
    return std::unexpected(
        Error{ErrorCode::internal, std::string("batch handler threw: ") + e.what(), {}});
  } catch (...) {
    return std::unexpected(Error{ErrorCode::internal,
                                 "batch handler threw an exception not derived from std::exception",
                                 {}});
  }
}

std::expected<void, Error> DurableConsumer::invoke(const StoredEvent& event,
                                                   const Delivery& delivery) {
  // The consumer is a boundary like the bus: a handler's exception is its failure, not ours.
  try {
    return handler_(event, delivery);
  } catch (const std::exception& e) {
    return std::unexpected(
        Error{ErrorCode::internal, std::string("handler threw: ") + e.what(), {}});
  } catch (...) {
    return std::unexpected(Error{
        ErrorCode::internal, "handler threw an exception not derived from std::exception", {}});
  }
}

std::chrono::milliseconds DurableConsumer::backoff(int attempt) const noexcept {
  std::chrono::milliseconds delay = options_.backoff_base;
  for (int i = 1; i < attempt && delay < options_.backoff_max; ++i) delay *= 2;
  return std::min(delay, options_.backoff_max);
}

bool DurableConsumer::interruptible_wait(std::chrono::milliseconds delay,
                                         std::uint64_t generation) {
  std::unique_lock lock(mutex_);
  return !changed_.wait_for(lock, delay,
                            [&] { return stop_requested_ || generation_ != generation; });
}

void DurableConsumer::advance(std::int64_t position, std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (generation_ != generation) return;
  checkpoint_ = std::max(checkpoint_, position);
  changed_.notify_all();
}

std::expected<void, Error> DurableConsumer::sync_from_store_locked() {
  auto stored = store_.load_checkpoint(options_.name);
  if (!stored) return std::unexpected(std::move(stored.error()));
  if (loaded_ && (stored->position == saved_ || stored->position == checkpoint_)) {
    // Ours: either what we saved, or where a handler that moves the checkpoint itself (the
    // audit log) put it.
    saved_ = stored->position;
    return {};
  }
  // First load, or someone else (`reset_consumer` from the CLI) moved it: adopt theirs.
  auto mark = store_.load_checkpoint(mark_name_);
  if (!mark) return std::unexpected(std::move(mark.error()));
  if (loaded_) ++generation_;
  loaded_ = true;
  checkpoint_ = saved_ = stored->position;
  replay_until_ = mark->position;
  changed_.notify_all();
  return {};
}

std::expected<void, Error> DurableConsumer::save_locked() {
  if (!loaded_ || checkpoint_ == saved_) return {};
  // A reset made by another process since our last save wins over our progress.
  auto stored = store_.load_checkpoint(options_.name);
  if (!stored) return std::unexpected(std::move(stored.error()));
  if (stored->position != saved_ && stored->position != checkpoint_) {
    return sync_from_store_locked();
  }
  if (stored->position != checkpoint_) {
    if (auto saved = store_.save_checkpoint(options_.name, checkpoint_); !saved) return saved;
  }
  saved_ = checkpoint_;
  return {};
}

bool DurableConsumer::wait_for_checkpoint(std::int64_t position,
                                          std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!loaded_) {
    if (auto synced = sync_from_store_locked(); !synced) return false;
  }
  return changed_.wait_for(lock, timeout, [&] { return checkpoint_ >= position; });
}

std::expected<std::int64_t, Error> DurableConsumer::checkpoint() {
  std::lock_guard lock(mutex_);
  if (!loaded_) {
    if (auto synced = sync_from_store_locked(); !synced) {
      return std::unexpected(std::move(synced.error()));
    }
  }
  return checkpoint_;
}

std::expected<std::int64_t, Error> DurableConsumer::lag() {
  auto position = checkpoint();
  if (!position) return position;
  auto head = store_.head();
  if (!head) return head;
  return std::max<std::int64_t>(0, *head - *position);
}

std::expected<ConsumerStatus, Error> DurableConsumer::status() {
  auto status = consumer_status(store_, options_.name);
  if (!status) return status;
  // This object may be ahead of the store by the events handled since its last save.
  std::lock_guard lock(mutex_);
  if (loaded_) {
    status->checkpoint = checkpoint_;
    status->lag = std::max<std::int64_t>(0, status->head - checkpoint_);
    status->replay_until = replay_until_ > checkpoint_ ? replay_until_ : 0;
  }
  return status;
}

std::expected<void, Error> DurableConsumer::reset_to(std::int64_t position) {
  if (auto valid = check_position(position); !valid) return valid;
  std::lock_guard handler_lock(handler_mutex_);
  std::lock_guard lock(mutex_);
  if (!loaded_) {
    if (auto synced = sync_from_store_locked(); !synced) return synced;
  }
  auto mark = write_reset(store_, options_.name, checkpoint_, replay_until_, position);
  if (!mark) return std::unexpected(std::move(mark.error()));
  replay_until_ = *mark;
  checkpoint_ = saved_ = position;
  ++generation_;
  changed_.notify_all();
  return {};
}

std::expected<void, Error> DurableConsumer::reset_to_time(Timestamp since) {
  auto position = position_before_time(store_, since);
  if (!position) return std::unexpected(std::move(position.error()));
  return reset_to(*position);
}

std::expected<std::vector<ParkedEvent>, Error> DurableConsumer::parked() {
  auto parked = store_.list_parked(options_.name);
  if (!parked) return parked;
  std::ranges::sort(*parked, {}, &ParkedEvent::position);
  return parked;
}

std::expected<void, Error> DurableConsumer::retry_parked(std::int64_t position) {
  auto parked = store_.list_parked(options_.name);
  if (!parked) return std::unexpected(std::move(parked.error()));
  auto entry = std::ranges::find(*parked, position, &ParkedEvent::position);
  if (entry == parked->end()) {
    return std::unexpected(Error{ErrorCode::not_found,
                                 "consumer '" + options_.name +
                                     "' has no parked event at position " +
                                     std::to_string(position),
                                 {}});
  }
  auto events = store_.read_forward(position - 1, 1);
  if (!events) return std::unexpected(std::move(events.error()));
  if (events->empty() || events->front().position != position) {
    return std::unexpected(Error{ErrorCode::not_found,
                                 "the parked event at position " + std::to_string(position) +
                                     " is no longer in the store; discard it",
                                 {}});
  }
  std::expected<void, Error> result;
  {
    std::lock_guard handler_lock(handler_mutex_);
    result = invoke(events->front(),
                    Delivery{.replay = false, .attempt = entry->attempts + 1, .parked = true});
  }
  if (result) return store_.unpark(options_.name, position);

  // Keep the entry with what happened this time. `park` replaces the entry for this position.
  ParkedEvent again = *entry;
  again.error = result.error().message;
  again.attempts = entry->attempts + 1;
  again.parked_at = now();
  if (auto stored = store_.park(again); !stored) return stored;
  return result;
}

std::expected<void, Error> DurableConsumer::discard_parked(std::int64_t position) {
  return store_.unpark(options_.name, position);
}

}  // namespace herald
