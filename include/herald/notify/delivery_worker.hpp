#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "herald/error.hpp"
#include "herald/metrics.hpp"
#include "herald/notify/notification.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/notify/retry_policy.hpp"
#include "herald/notify/sender.hpp"
#include "herald/timestamp.hpp"

namespace herald::notify {

/// Configuration of a `DeliveryWorker`.
struct DeliveryWorkerOptions {
  /// Names this worker's claims in the store; unique per worker. Empty: `default_worker_id()`.
  std::string worker_id;
  /// Attempts made at once (sending threads). 1 to 256.
  std::size_t threads = 4;
  /// How long a claim holds before another worker may take the delivery (a crashed worker's
  /// claims expire after this). Longer than any sender's timeout. 1 s to 1 h.
  std::chrono::seconds lease{60};
  /// The most deliveries `run_once` claims at once (the threads claim only as many as are idle).
  /// 1 to 1000.
  std::size_t claim_batch = 32;
  /// The longest wait between two looks at the queue when nothing is due (a claim expired by a
  /// crashed worker, a delivery created by another process on a SQLite file). 1 ms to 1 h.
  std::chrono::milliseconds poll_interval{1000};
  /// When a transient failure is tried again, and when it is given up on.
  RetryPolicy retry;
  /// Consecutive failed attempts to a webhook endpoint that disable it. 1 or more.
  int endpoint_failure_threshold = 20;
  /// The time of attempts and of the schedule; tests inject their own. Default: `herald::now`.
  std::function<Timestamp()> clock;
  /// Seeds the jitter; nullopt: from `std::random_device`.
  std::optional<std::uint64_t> jitter_seed;
  /// Where the worker's metrics go (it registers herald_notify_deliveries_total,
  /// herald_notify_attempt_duration_seconds and herald_notify_queue_depth); nullptr: none. Must
  /// outlive the worker; one worker per registry.
  MetricsRegistry* metrics = nullptr;
  /// The sender of each channel (not owned; each must outlive the worker, its `channel()` must be
  /// its key). A delivery on a channel with no sender counts as a transient failure: it is
  /// retried on the policy's schedule, logged once per channel, and dies when the channel stays
  /// unconfigured through the whole schedule (an operator can then re-send it).
  std::map<Channel, Sender*> senders;
};

/// `hostname-pid-random`: unique across processes and restarts.
std::string default_worker_id();

/// What `run_once` did.
struct WorkerRound {
  /// Deliveries claimed (each got one attempt).
  std::size_t claimed = 0;
  /// Attempts recorded as sent.
  std::size_t sent = 0;
  /// Attempts recorded as retrying (another attempt is due later).
  std::size_t retrying = 0;
  /// Attempts recorded as failed (permanent, 410, a disabled or unknown endpoint).
  std::size_t failed = 0;
  /// Attempts recorded as dead (the retry policy gave up).
  std::size_t dead = 0;
  /// Attempts whose outcome could not be recorded because the claim was lost (it expired and
  /// another worker took the delivery) or the store failed.
  std::size_t unrecorded = 0;
};

/// Sends the deliveries of a `NotificationStore`: claims those that are due, makes one attempt
/// each through the channel's `Sender` and records the outcome with `finish_attempt`.
/// Thread-safe: `start`, `stop` and `run_once` may be called from any thread (one loop at a
/// time). The store and the senders must outlive the worker.
///
/// Outcomes: sent → sent; transient → retrying at the policy's next time (never before the
/// provider's Retry-After), or dead when the policy's attempts are spent (or the provider asked to
/// wait longer than `RetryPolicy::max_retry_after`); permanent → failed; gone (410) → failed and
/// the endpoint disabled ("410 Gone"). A webhook to an endpoint that is disabled or no longer
/// exists fails ("endpoint disabled: <reason>"); a webhook failure that makes
/// `endpoint_failure_threshold` consecutive failures fails the delivery and disables the endpoint
/// ("N consecutive failures").
///
/// Guarantee: at least once. The attempt is recorded right after the provider answers; a crash
/// in between (or a claim that expired while the provider was answering) makes another worker
/// repeat the attempt after the lease, so a Discord message or an email can, in that window
/// only, arrive twice. Webhook receivers deduplicate by `webhook-id` (the event id, the same on
/// every attempt). Any number of workers, in any number of processes, may share a database:
/// claims never hand the same delivery to two of them.
class DeliveryWorker {
 public:
  /// Builds a stopped worker over `store`. Errors: `invalid_argument` naming the option that is
  /// out of range, a null sender or one whose `channel()` is not its key; the registry's when the
  /// metrics cannot be registered (`conflict` for a second worker on one registry).
  static std::expected<std::unique_ptr<DeliveryWorker>, Error> create(
      NotificationStore& store, DeliveryWorkerOptions options);
  /// Stops the threads if running.
  ~DeliveryWorker();
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  /// This worker's id, as its claims name it.
  const std::string& worker_id() const noexcept { return options_.worker_id; }

  /// Starts `threads` sending threads and one that claims for them, waking at the earliest
  /// `next_due` (or on a new delivery, or after `poll_interval`). Errors: `conflict` when running.
  std::expected<void, Error> start();
  /// Stops claiming, lets every attempt in progress finish and be recorded, and joins the
  /// threads. Claims it holds and has not attempted stay until they expire. Idempotent.
  void stop();
  /// True between `start` and `stop`.
  bool running() const noexcept;

  /// Claims up to `claim_batch` deliveries that are due now (by the clock) and attempts each in
  /// this thread. Errors: `conflict` while the threads run; the store's when the claim fails.
  std::expected<WorkerRound, Error> run_once();

 private:
  struct Metrics;

  DeliveryWorker(NotificationStore& store, DeliveryWorkerOptions options);
  std::expected<void, Error> register_metrics();
  Timestamp now() const;
  /// Makes one attempt at `delivery` (claimed by this worker) and records it; the outcome.
  std::optional<DeliveryStatus> attempt(const DeliveryRecord& delivery);
  void claim_loop();
  void send_loop();
  double jitter_sample();

  NotificationStore& store_;
  DeliveryWorkerOptions options_;
  std::shared_ptr<Metrics> metrics_;

  /// Serializes `start` and `stop`.
  std::mutex lifecycle_mutex_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool running_ = false;
  bool claimer_exited_ = false;
  bool in_run_once_ = false;
  bool stop_requested_ = false;
  std::size_t idle_ = 0;
  std::deque<DeliveryRecord> queue_;
  std::vector<std::thread> threads_;
  std::set<Channel> unconfigured_logged_;
  std::mt19937_64 rng_;
};

}  // namespace herald::notify
