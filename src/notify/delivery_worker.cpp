#include "herald/notify/delivery_worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cstdio>
#include <exception>
#include <string_view>
#include <utility>

namespace herald::notify {
namespace {

using std::chrono::milliseconds;

/// The shortest wait between two rounds that found nothing to claim although `next_due` said
/// something was due (another process took it in between): keeps the loop from spinning.
constexpr milliseconds min_round_wait{10};

constexpr std::array<Channel, 4> delivery_channels = {Channel::discord, Channel::email,
                                                      Channel::webhook, Channel::discord_channel};
constexpr std::array<DeliveryStatus, 4> attempt_outcomes = {
    DeliveryStatus::sent, DeliveryStatus::retrying, DeliveryStatus::failed, DeliveryStatus::dead};

std::size_t channel_index(Channel channel) noexcept { return static_cast<std::size_t>(channel); }

std::size_t outcome_index(DeliveryStatus status) noexcept {
  for (std::size_t i = 0; i < attempt_outcomes.size(); ++i) {
    if (attempt_outcomes[i] == status) return i;
  }
  return 0;
}

/// The endpoint id of a webhook delivery's recipient ("endpoint:7").
std::optional<std::int64_t> endpoint_id(std::string_view recipient) noexcept {
  constexpr std::string_view prefix = "endpoint:";
  if (!recipient.starts_with(prefix)) return std::nullopt;
  recipient.remove_prefix(prefix.size());
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(recipient.data(), recipient.data() + recipient.size(), id);
  if (ec != std::errc{} || end != recipient.data() + recipient.size() || id <= 0) {
    return std::nullopt;
  }
  return id;
}

std::expected<void, Error> out_of_range(std::string_view field, const std::string& expected,
                                        const std::string& got) {
  return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                          "expected " + expected + ", got " + got));
}

std::expected<void, Error> validate(const DeliveryWorkerOptions& options) {
  if (options.threads < 1 || options.threads > 256) {
    return out_of_range("threads", "1 to 256", std::to_string(options.threads));
  }
  if (options.lease < std::chrono::seconds{1} || options.lease > std::chrono::hours{1}) {
    return out_of_range("lease", "1 s to 1 h", std::to_string(options.lease.count()) + " s");
  }
  if (options.claim_batch < 1 || options.claim_batch > 1000) {
    return out_of_range("claim_batch", "1 to 1000", std::to_string(options.claim_batch));
  }
  if (options.poll_interval < milliseconds{1} || options.poll_interval > std::chrono::hours{1}) {
    return out_of_range("poll_interval", "1 ms to 1 h",
                        std::to_string(options.poll_interval.count()) + " ms");
  }
  if (options.endpoint_failure_threshold < 1) {
    return out_of_range("endpoint_failure_threshold", "1 or more",
                        std::to_string(options.endpoint_failure_threshold));
  }
  if (options.worker_id.size() > 200) {
    return out_of_range("worker_id", "at most 200 bytes",
                        std::to_string(options.worker_id.size()) + " bytes");
  }
  if (auto policy = validate(options.retry); !policy) {
    Error error = std::move(policy.error());
    error.message = "retry policy: " + error.message;
    error.field = "retry." + error.field;
    return std::unexpected(std::move(error));
  }
  for (const auto& [channel, sender] : options.senders) {
    const std::string field = "senders[" + std::string(to_string(channel)) + "]";
    if (sender == nullptr) return out_of_range(field, "a sender", "null");
    if (sender->channel() != channel) {
      return out_of_range(field, "a sender for that channel",
                          "one for " + std::string(to_string(sender->channel())));
    }
  }
  return {};
}

}  // namespace

std::string default_worker_id() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  std::random_device device;
  const unsigned random = device();
  std::array<char, 9> suffix{};
  std::snprintf(suffix.data(), suffix.size(), "%08x", random);
  const std::string name = host[0] != '\0' ? std::string(host.data()) : std::string("herald");
  return name + "-" + std::to_string(::getpid()) + "-" + suffix.data();
}

// The metric handles, looked up once. The queue depth gauge is rendered by the registry, which
// may outlive the worker: it reaches the store through `source`, cleared when the worker goes.
struct DeliveryWorker::Metrics {
  struct Source {
    std::mutex mutex;
    NotificationStore* store = nullptr;
  };
  std::array<std::array<std::optional<Counter>, attempt_outcomes.size()>, 5> deliveries;
  std::array<std::optional<Histogram>, 5> latency;
  std::shared_ptr<Source> source = std::make_shared<Source>();
};

DeliveryWorker::DeliveryWorker(NotificationStore& store, DeliveryWorkerOptions options)
    : store_(store), options_(std::move(options)) {
  if (options_.worker_id.empty()) options_.worker_id = default_worker_id();
  if (!options_.clock) options_.clock = [] { return herald::now(); };
  rng_.seed(options_.jitter_seed ? *options_.jitter_seed : std::random_device{}());
}

std::expected<std::unique_ptr<DeliveryWorker>, Error> DeliveryWorker::create(
    NotificationStore& store, DeliveryWorkerOptions options) {
  if (auto valid = validate(options); !valid) return std::unexpected(std::move(valid.error()));
  std::unique_ptr<DeliveryWorker> worker(new DeliveryWorker(store, std::move(options)));
  if (auto registered = worker->register_metrics(); !registered) {
    return std::unexpected(std::move(registered.error()));
  }
  return worker;
}

DeliveryWorker::~DeliveryWorker() {
  stop();
  if (metrics_) {
    std::lock_guard lock(metrics_->source->mutex);
    metrics_->source->store = nullptr;
  }
}

std::expected<void, Error> DeliveryWorker::register_metrics() {
  MetricsRegistry* registry = options_.metrics;
  if (registry == nullptr) return {};
  auto metrics = std::make_shared<Metrics>();
  auto deliveries = registry->counter("herald_notify_deliveries_total",
                                      "Delivery attempts recorded, by channel and outcome.",
                                      {"channel", "outcome"});
  if (!deliveries) return std::unexpected(std::move(deliveries.error()));
  auto latency = registry->histogram(
      "herald_notify_attempt_duration_seconds",
      "How long the provider took to answer a delivery attempt, by channel.",
      {default_histogram_buckets.begin(), default_histogram_buckets.end()}, {"channel"});
  if (!latency) return std::unexpected(std::move(latency.error()));
  for (Channel channel : delivery_channels) {
    for (DeliveryStatus outcome : attempt_outcomes) {
      auto counter = deliveries->with({to_string(channel), to_string(outcome)});
      if (!counter) return std::unexpected(std::move(counter.error()));
      metrics->deliveries[channel_index(channel)][outcome_index(outcome)] = *counter;
    }
    auto histogram = latency->with({to_string(channel)});
    if (!histogram) return std::unexpected(std::move(histogram.error()));
    metrics->latency[channel_index(channel)] = *histogram;
  }
  metrics->source->store = &store_;
  auto depth = registry->callback_gauge(
      "herald_notify_queue_depth", "Deliveries waiting for an attempt, by channel and status.",
      {"channel", "status"}, [source = metrics->source] {
        std::vector<GaugeSample> samples;
        std::lock_guard lock(source->mutex);
        if (source->store == nullptr) return samples;
        auto counts = source->store->count_deliveries();
        if (!counts) return samples;
        for (Channel channel : delivery_channels) {
          for (DeliveryStatus status : {DeliveryStatus::pending, DeliveryStatus::retrying}) {
            double value = 0;
            for (const DeliveryCount& count : *counts) {
              if (count.channel == channel && count.status == status) {
                value += static_cast<double>(count.count);
              }
            }
            samples.push_back(GaugeSample{
                .label_values = {std::string(to_string(channel)), std::string(to_string(status))},
                .value = value});
          }
        }
        return samples;
      });
  if (!depth) return std::unexpected(std::move(depth.error()));
  metrics_ = std::move(metrics);
  return {};
}

Timestamp DeliveryWorker::now() const { return options_.clock(); }

double DeliveryWorker::jitter_sample() {
  std::lock_guard lock(mutex_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

std::optional<DeliveryStatus> DeliveryWorker::attempt(const DeliveryRecord& delivery) {
  AttemptOutcome outcome;
  outcome.started_at = now();
  const std::string channel_name(to_string(delivery.channel));

  SendResult result;
  bool provider_asked = false;
  std::optional<WebhookEndpoint> endpoint;
  if (delivery.channel == Channel::webhook) {
    const auto id = endpoint_id(delivery.recipient);
    if (!id) {
      result = SendResult{.outcome = SendOutcome::permanent,
                          .error = "recipient '" + delivery.recipient +
                                   "' does not name a webhook endpoint (expected endpoint:<id>)"};
    } else if (auto loaded = store_.get_endpoint(*id); !loaded) {
      if (loaded.error().code == ErrorCode::not_found) {
        result = SendResult{.outcome = SendOutcome::permanent,
                            .error = "endpoint " + std::to_string(*id) + " no longer exists"};
      } else {
        result = SendResult{.outcome = SendOutcome::transient,
                            .error = "loading endpoint " + std::to_string(*id) +
                                     " failed: " + loaded.error().message};
      }
    } else if (!loaded->active) {
      result = SendResult{.outcome = SendOutcome::permanent,
                          .error = "endpoint disabled: " + loaded->disabled_reason};
    } else {
      endpoint = std::move(*loaded);
    }
  }

  const bool ready = delivery.channel != Channel::webhook || endpoint.has_value();
  if (ready) {
    const auto sender = options_.senders.find(delivery.channel);
    if (sender == options_.senders.end()) {
      bool first = false;
      {
        std::lock_guard lock(mutex_);
        first = unconfigured_logged_.insert(delivery.channel).second;
      }
      if (first) {
        spdlog::warn(
            "delivery worker {}: no sender is configured for channel '{}'; its deliveries are "
            "retried on the retry schedule and die if it stays unconfigured",
            options_.worker_id, channel_name);
      }
      result = SendResult{.outcome = SendOutcome::transient,
                          .error = "no sender is configured for channel '" + channel_name +
                                   "' on worker " + options_.worker_id};
    } else {
      const auto started = std::chrono::steady_clock::now();
      // Senders promise not to throw; one that does must not take a sending thread down with
      // it, and its attempt is worth another try.
      try {
        result = sender->second->send(SendRequest{.delivery = delivery,
                                                  .endpoint = endpoint ? &*endpoint : nullptr,
                                                  .now = outcome.started_at});
      } catch (const std::exception& e) {
        result = SendResult{.outcome = SendOutcome::transient,
                            .error = std::string("the sender threw: ") + e.what()};
      } catch (...) {
        result =
            SendResult{.outcome = SendOutcome::transient,
                       .error = "the sender threw an exception not derived from std::exception"};
      }
      const auto took = std::chrono::steady_clock::now() - started;
      outcome.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
      provider_asked = true;
    }
  }

  outcome.status_code = result.status_code;
  outcome.error = result.error;
  switch (result.outcome) {
    case SendOutcome::sent:
      outcome.status = DeliveryStatus::sent;
      outcome.error.clear();
      break;
    case SendOutcome::transient: {
      const auto next = next_attempt_at(options_.retry, delivery.attempts, now(),
                                        result.retry_after, jitter_sample());
      if (next) {
        outcome.status = DeliveryStatus::retrying;
        outcome.next_attempt_at = *next;
      } else {
        outcome.status = DeliveryStatus::dead;
        if (result.retry_after && *result.retry_after > options_.retry.max_retry_after &&
            delivery.attempts < max_attempts(options_.retry)) {
          outcome.error += "; the provider asked to wait " +
                           std::to_string(result.retry_after->count()) +
                           " ms, longer than the retry policy allows";
        }
      }
      break;
    }
    case SendOutcome::permanent:
      outcome.status = DeliveryStatus::failed;
      break;
    case SendOutcome::gone:
      outcome.status = DeliveryStatus::failed;
      if (endpoint) outcome.disable_endpoint = "410 Gone";
      break;
  }
  if (outcome.status != DeliveryStatus::sent && outcome.error.empty()) {
    outcome.error = "the sender reported a failure without a reason";
  }
  // Only failures the endpoint itself answered count towards its run (finish_attempt extends
  // it); a run that reaches the threshold disables it and ends this delivery with it.
  if (endpoint && provider_asked && outcome.status != DeliveryStatus::sent &&
      !outcome.disable_endpoint &&
      endpoint->consecutive_failures + 1 >= options_.endpoint_failure_threshold) {
    const int run = endpoint->consecutive_failures + 1;
    outcome.disable_endpoint = std::to_string(run) + " consecutive failures";
    outcome.status = DeliveryStatus::failed;
    outcome.error += "; endpoint disabled after " + std::to_string(run) + " consecutive failures";
  }

  // Recorded at once: the window in which a crash repeats an accepted message is this call.
  auto finished = store_.finish_attempt(delivery.id, options_.worker_id, outcome);
  if (!finished) {
    if (finished.error().code == ErrorCode::conflict) {
      spdlog::warn(
          "delivery worker {}: delivery {} ({}) attempt {} ended {} but its claim was lost (it "
          "expired and another worker took it): {}",
          options_.worker_id, delivery.id, channel_name, delivery.attempts,
          to_string(outcome.status), finished.error().message);
    } else {
      spdlog::error(
          "delivery worker {}: recording attempt {} of delivery {} ({}, {}) failed; the claim "
          "expires and the delivery is tried again: {}",
          options_.worker_id, delivery.attempts, delivery.id, channel_name,
          to_string(outcome.status), finished.error().message);
    }
    return std::nullopt;
  }
  if (outcome.status == DeliveryStatus::retrying) {
    // A new due time that next_due did not know of when the claiming thread computed its wait
    // (the delivery was still sending then). The store remembers a wake between a thread's claim
    // and its next wait_for_due, so this is not lost when it comes before the wait.
    store_.wake();
  }
  if (metrics_) {
    if (auto& counter =
            metrics_->deliveries[channel_index(delivery.channel)][outcome_index(outcome.status)]) {
      counter->inc();
    }
    if (auto& histogram = metrics_->latency[channel_index(delivery.channel)];
        histogram && provider_asked) {
      histogram->observe(static_cast<double>(outcome.duration_us) / 1e6);
    }
  }
  return outcome.status;
}

std::expected<WorkerRound, Error> DeliveryWorker::run_once() {
  {
    std::lock_guard lock(mutex_);
    if (running_ || in_run_once_) {
      return std::unexpected(Error{ErrorCode::conflict,
                                   "delivery worker " + options_.worker_id +
                                       " is already running; run_once needs it stopped",
                                   {}});
    }
    in_run_once_ = true;
  }
  WorkerRound round;
  auto claimed = store_.claim_due(options_.worker_id, now(), options_.lease, options_.claim_batch);
  if (claimed) {
    round.claimed = claimed->size();
    for (const DeliveryRecord& delivery : *claimed) {
      const auto status = attempt(delivery);
      if (!status) {
        ++round.unrecorded;
        continue;
      }
      switch (*status) {
        case DeliveryStatus::sent:
          ++round.sent;
          break;
        case DeliveryStatus::retrying:
          ++round.retrying;
          break;
        case DeliveryStatus::failed:
          ++round.failed;
          break;
        case DeliveryStatus::dead:
          ++round.dead;
          break;
        default:
          break;
      }
    }
  }
  {
    std::lock_guard lock(mutex_);
    in_run_once_ = false;
  }
  if (!claimed) return std::unexpected(std::move(claimed.error()));
  return round;
}

std::expected<void, Error> DeliveryWorker::start() {
  std::lock_guard lifecycle(lifecycle_mutex_);
  std::lock_guard lock(mutex_);
  if (running_ || in_run_once_) {
    return std::unexpected(Error{
        ErrorCode::conflict, "delivery worker " + options_.worker_id + " is already running", {}});
  }
  running_ = true;
  stop_requested_ = false;
  claimer_exited_ = false;
  idle_ = 0;
  queue_.clear();
  for (std::size_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { send_loop(); });
  threads_.emplace_back([this] { claim_loop(); });
  return {};
}

void DeliveryWorker::stop() {
  std::lock_guard lifecycle(lifecycle_mutex_);
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(mutex_);
    if (!running_) return;
    stop_requested_ = true;
    changed_.notify_all();
    // The claiming thread may be inside wait_for_due, or about to enter it: wake the store until
    // it has left, so that stop does not wait for a whole poll interval.
    while (!claimer_exited_) {
      lock.unlock();
      store_.wake();
      lock.lock();
      changed_.wait_for(lock, std::chrono::milliseconds{5}, [&] { return claimer_exited_; });
    }
    threads = std::move(threads_);
    threads_.clear();
  }
  for (std::thread& thread : threads) thread.join();
  std::lock_guard lock(mutex_);
  running_ = false;
}

bool DeliveryWorker::running() const noexcept {
  std::lock_guard lock(mutex_);
  return running_;
}

void DeliveryWorker::claim_loop() {
  std::unique_lock lock(mutex_);
  int failures = 0;
  while (!stop_requested_) {
    // Claim only for threads that are idle, so that no claim waits in a queue while its lease
    // runs out.
    changed_.wait(lock, [&] { return stop_requested_ || idle_ > queue_.size(); });
    if (stop_requested_) break;
    const std::size_t free_threads = idle_ - queue_.size();
    lock.unlock();

    auto claimed = store_.claim_due(options_.worker_id, now(), options_.lease,
                                    std::min(free_threads, options_.claim_batch));
    if (!claimed) {
      spdlog::error("delivery worker {}: claiming deliveries failed: {}", options_.worker_id,
                    claimed.error().message);
      // Longer each time, up to the poll interval: a failing database is not hammered.
      const auto backoff = std::min<milliseconds>(options_.poll_interval,
                                                  min_round_wait * (1 << std::min(++failures, 10)));
      lock.lock();
      changed_.wait_for(lock, backoff, [&] { return stop_requested_; });
      continue;
    }
    failures = 0;
    if (!claimed->empty()) {
      lock.lock();
      // Claimed deliveries are attempted even when stop came meanwhile: their attempt is counted.
      for (DeliveryRecord& delivery : *claimed) queue_.push_back(std::move(delivery));
      changed_.notify_all();
      continue;
    }

    milliseconds wait = options_.poll_interval;
    if (auto next = store_.next_due(); next && next->has_value()) {
      const auto until = std::chrono::ceil<milliseconds>(**next - now());
      wait = std::clamp(until, min_round_wait, options_.poll_interval);
    }
    store_.wait_for_due(wait);
    lock.lock();
  }
  claimer_exited_ = true;
  changed_.notify_all();
}

void DeliveryWorker::send_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !queue_.empty() || claimer_exited_; });
    --idle_;
    if (queue_.empty()) break;
    DeliveryRecord delivery = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    attempt(delivery);
    lock.lock();
  }
}

}  // namespace herald::notify
