#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_store.hpp"
#include "herald/timestamp.hpp"

namespace herald {

/// How an event reaches a consumer's handler.
struct Delivery {
  /// True when the consumer was reset (replay) and had already passed this event before: the
  /// handler has seen it once. False on a first delivery.
  bool replay = false;
  /// 1 on the first call for this event, 2 on the first retry, …
  int attempt = 1;
  /// True when an operator retries a parked event (`DurableConsumer::retry_parked`).
  bool parked = false;
};

/// A consumer's handler: returns success, or an error that makes the consumer retry the event.
/// An exception it throws counts as an error (its `what()` becomes the message).
using ConsumerHandler =
    std::function<std::expected<void, Error>(const StoredEvent&, const Delivery&)>;

/// A consumer's batch handler: handles consecutive events at once, in position order, each with
/// its delivery (`deliveries[i]` is `events[i]`'s), all or none: success means every event was
/// handled, an error that none was. An optional fast path beside the per-event handler, for a
/// handler that can do a batch's work in one go (the audit log writes it in one transaction). When
/// it fails, the consumer hands the same events to the per-event handler one at a time, whose
/// retries and parking decide what happens to a failing event. An exception counts as an error.
using ConsumerBatchHandler = std::function<std::expected<void, Error>(
    std::span<const StoredEvent> events, std::span<const Delivery> deliveries)>;

/// Configuration of a `DurableConsumer`.
struct ConsumerOptions {
  /// The checkpoint's name in the store; unique per consumer, stable across restarts. Must not
  /// be empty nor end in `replay_mark_suffix`.
  std::string name;
  /// Events read from the store per batch; the checkpoint is saved at least once per batch.
  std::size_t batch_size = 256;
  /// When a read fills its batch (the consumer is behind), the next read takes twice as many
  /// events, up to this many; a read that does not fill its batch goes back to `batch_size`.
  /// Catching up in larger batches costs fewer transactions per event, while a caught-up consumer
  /// keeps reading small ones. 0 (the default), or anything below `batch_size`: always
  /// `batch_size`.
  std::size_t max_batch_size = 0;
  /// Handler calls per event before it is parked (1 parks on the first failure; 0 never parks and
  /// retries until the handler succeeds, as the audit log must).
  int max_attempts = 5;
  /// The wait before the first retry; each further retry waits twice as long, up to `backoff_max`.
  std::chrono::milliseconds backoff_base{100};
  /// The longest wait between two attempts.
  std::chrono::milliseconds backoff_max{30'000};
  /// The longest a caught-up consumer blocks in `EventStore::wait_for` before it looks again.
  /// Appends in this process (and, on PostgreSQL, by any process) wake it at once; appends by
  /// another process to a SQLite file are seen within `StoreOptions::sqlite_poll_interval`.
  /// `stop()` wakes it at once (`EventStore::wake_waiters`).
  std::chrono::milliseconds poll_timeout{250};

  /// Called after a failed handler call that will be retried, with the attempt that failed and the
  /// wait before the next one. Runs on the consumer's thread.
  std::function<void(const StoredEvent&, int attempt, std::chrono::milliseconds delay,
                     const Error&)>
      on_retry;
  /// Called after an event was parked. Runs on the consumer's thread.
  std::function<void(const ParkedEvent&)> on_park;
  /// Called when the store fails under a running consumer (it waits `backoff_base`, growing, then
  /// tries again). Runs on the consumer's thread. Default: print to stderr.
  std::function<void(const Error&)> on_error;
  /// Called when the consumer has caught up with the store and is about to wait for new events.
  /// Runs on the consumer's thread.
  std::function<void(std::int64_t checkpoint)> on_idle;
};

/// The name suffix of the checkpoint entry that keeps a consumer's replay mark (the highest
/// position it had passed before its last reset): consumer "audit" keeps it as "audit#replay".
inline constexpr std::string_view replay_mark_suffix = "#replay";

/// True when `checkpoint_name` is a replay mark rather than a consumer (for listings).
bool is_replay_mark(std::string_view checkpoint_name) noexcept;

/// A consumer's progress as an operator sees it.
struct ConsumerStatus {
  /// The consumer's name (its checkpoint's).
  std::string name;
  /// The last position the consumer finished.
  std::int64_t checkpoint = 0;
  /// The store's head when the status was taken.
  std::int64_t head = 0;
  /// `head - checkpoint`: events appended and not yet handled.
  std::int64_t lag = 0;
  /// Events at or below this position are delivered as replays (0: not replaying).
  std::int64_t replay_until = 0;
  /// Events this consumer parked and nobody retried or discarded yet.
  std::int64_t parked = 0;
  /// When the checkpoint was last saved (the epoch when never).
  Timestamp updated_at{};
};

/// The status of every consumer whose checkpoint is in `store`, sorted by name.
std::expected<std::vector<ConsumerStatus>, Error> list_consumers(EventStore& store);
/// The status of the consumer named `name` (checkpoint 0 when it never ran).
std::expected<ConsumerStatus, Error> consumer_status(EventStore& store, const std::string& name);

/// Resets the consumer named `name` so that it delivers again every event after `position`;
/// events it had already passed are flagged as replays. For a consumer that is not running in
/// this process (the CLI); a running `DurableConsumer` picks the change up at its next batch, but
/// a reset that races its checkpoint save can be lost, so prefer `DurableConsumer::reset_to`.
std::expected<void, Error> reset_consumer(EventStore& store, const std::string& name,
                                          std::int64_t position);
/// The checkpoint that makes a consumer start at the first event whose `timestamp` is at or
/// after `since` (the event's position minus one; the head when there is none).
std::expected<std::int64_t, Error> position_before_time(EventStore& store, Timestamp since);

/// A named reader of the store that hands every event, in position order, to a handler, and keeps
/// its checkpoint in the store so a restart resumes where it stopped. Thread-safe: every member
/// may be called from any thread; the handler is never called concurrently with itself (calls
/// from the consumer's loop, `retry_parked` and a reset are serialized).
///
/// Delivery is at least once: the checkpoint moves only after the handler succeeded (or the
/// event was parked) and is saved once per batch, before a retry wait and on stop, so a crash
/// delivers again at most the events since the last save. A failing event is retried with
/// exponential backoff (`backoff_base`, doubling, capped at `backoff_max`) until
/// `max_attempts` calls failed, then parked with its error and attempt count, and the consumer
/// goes on. With a batch handler, each batch read goes to it first, and to the handler event by
/// event only when it fails. See docs/consumers.md.
///
/// The consumer runs either on its own thread (`start`/`stop`) or in the caller's thread
/// (`run_once`, `catch_up`, `run_until`); one loop at a time (another call returns `conflict`).
/// The store must outlive the consumer. The handler must not call `reset_to`, `reset_to_time`,
/// `retry_parked` or `stop` of its own consumer (they wait for the handler to return).
class DurableConsumer {
 public:
  /// Builds a stopped consumer; nothing is read until it runs. `options.name` must be set.
  DurableConsumer(EventStore& store, ConsumerOptions options, ConsumerHandler handler);
  /// Builds a stopped consumer that hands each batch it reads (up to `options.batch_size` events)
  /// to `batch_handler` first, and to `handler` event by event when that fails.
  DurableConsumer(EventStore& store, ConsumerOptions options, ConsumerHandler handler,
                  ConsumerBatchHandler batch_handler);
  /// Stops the thread if running (saving the checkpoint).
  ~DurableConsumer();
  DurableConsumer(const DurableConsumer&) = delete;
  DurableConsumer& operator=(const DurableConsumer&) = delete;

  /// The consumer's name: its checkpoint's in the store.
  const std::string& name() const noexcept { return options_.name; }

  /// Starts following the store on a thread of its own. Errors: `conflict` when already running.
  std::expected<void, Error> start();
  /// Asks the loop to stop and waits for it: the event in hand finishes (a retry wait and a wait
  /// for new events are cut short; an event waiting for its retry stays unhandled), the checkpoint
  /// is saved. Returns once the running handler call (or store call) has finished, whatever
  /// `poll_timeout` is. Idempotent.
  void stop();
  /// True while a loop runs: the thread, or `run_once`/`catch_up`/`run_until` in some thread.
  bool running() const noexcept;

  /// Reads one batch after the checkpoint and handles it in this thread; returns how many events
  /// were handled or parked (0 when caught up). Does not wait for new events.
  std::expected<std::size_t, Error> run_once();
  /// Runs batches until the consumer has caught up with the head; returns the events handled.
  std::expected<std::size_t, Error> catch_up();
  /// Follows the store in this thread (catching up, then waiting for appends) until `done()`
  /// returns true (checked after each event, or each batch given to a batch handler, and after
  /// each wait) or `stop()` is called.
  std::expected<void, Error> run_until(const std::function<bool()>& done);

  /// Waits until the checkpoint reaches `position` (handled or parked) or `timeout` passes;
  /// true when reached. For callers that need an effect of the consumer (tests, a CLI).
  bool wait_for_checkpoint(std::int64_t position, std::chrono::milliseconds timeout);

  /// The last position handled, as this object knows it (loaded from the store on first use).
  std::expected<std::int64_t, Error> checkpoint();
  /// `head - checkpoint`.
  std::expected<std::int64_t, Error> lag();
  /// Checkpoint, head, lag, replay mark and parked count, with this object's checkpoint.
  std::expected<ConsumerStatus, Error> status();

  /// Replays every event after `position`: the checkpoint moves there and events at or below the
  /// highest position passed so far are delivered with `Delivery::replay`. The replay mark is
  /// kept in the store, so the flag survives a restart. Takes effect before the next event, also
  /// while running; waits for a handler call in progress to finish.
  std::expected<void, Error> reset_to(std::int64_t position);
  /// Replays from the first event whose `timestamp` is at or after `since`.
  std::expected<void, Error> reset_to_time(Timestamp since);

  /// This consumer's parked events, oldest position first.
  std::expected<std::vector<ParkedEvent>, Error> parked();
  /// Runs the handler once now, in this thread, for the parked event at `position`
  /// (`Delivery::parked` set); on success it is unparked. Errors: `not_found` when nothing is
  /// parked there; the handler's error when it failed again (the entry stays, with the new error
  /// and one more attempt).
  std::expected<void, Error> retry_parked(std::int64_t position);
  /// Drops the parked event at `position` without handling it. Errors: `not_found`.
  std::expected<void, Error> discard_parked(std::int64_t position);

 private:
  enum class Outcome : std::uint8_t { handled, parked, interrupted };

  std::expected<void, Error> enter_loop();
  void leave_loop() noexcept;
  std::expected<std::size_t, Error> step(bool wait, const std::function<bool()>* done);
  std::expected<Outcome, Error> deliver(const StoredEvent& event, std::uint64_t generation);
  bool deliver_batch(std::span<const StoredEvent> events, std::uint64_t generation);
  std::expected<void, Error> invoke(const StoredEvent& event, const Delivery& delivery);
  std::expected<void, Error> invoke_batch(std::span<const StoredEvent> events,
                                          std::span<const Delivery> deliveries);
  std::expected<void, Error> sync_from_store_locked();
  std::expected<void, Error> save_locked();
  void advance(std::int64_t position, std::uint64_t generation);
  bool interruptible_wait(std::chrono::milliseconds delay, std::uint64_t generation);
  std::chrono::milliseconds backoff(int attempt) const noexcept;
  void thread_main();

  EventStore& store_;
  ConsumerOptions options_;
  ConsumerHandler handler_;
  ConsumerBatchHandler batch_handler_;
  std::string mark_name_;

  // Serializes handler calls with resets and parked retries.
  std::mutex handler_mutex_;

  // Guards the fields below; taken after handler_mutex_ when both are needed.
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool loaded_ = false;
  std::int64_t checkpoint_ = 0;
  std::int64_t saved_ = 0;
  std::int64_t replay_until_ = 0;
  std::uint64_t generation_ = 0;
  bool in_loop_ = false;
  // Events the next read asks for (batch_size, doubled while reads fill their batches). Touched
  // by the loop only, one loop at a time.
  std::size_t read_size_ = 0;
  bool stop_requested_ = false;
  // True while the loop is blocked (or about to block) in EventStore::wait_for, which stop()
  // then interrupts.
  bool waiting_for_appends_ = false;
  std::thread thread_;
};

}  // namespace herald
