#include "server_metrics.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "herald/durable_consumer.hpp"
#include "herald/event_bus.hpp"
#include "herald/metrics.hpp"
#include "stream_hub.hpp"

namespace herald::http {
namespace {

// Latency buckets for appends and requests: a durable append takes from a few hundred
// microseconds (a shared commit on a fast disk) to seconds (a stalled disk).
const std::vector<double> latency_buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,   0.25,   0.5,   1,    2.5};

template <class T>
T must(std::expected<T, Error> value) {
  // The names below are fixed and valid; a failure here is a bug.
  if (!value) throw std::logic_error("metrics registration failed: " + value.error().message);
  return std::move(*value);
}

void must(std::expected<void, Error> done) {
  if (!done) throw std::logic_error("metrics registration failed: " + done.error().message);
}

}  // namespace

struct ServerMetrics::Impl {
  MetricsRegistry& registry;
  EventStore& store;
  EventBus* bus;
  CounterFamily requests;
  HistogramFamily request_seconds;
  CounterFamily ingested;
  Histogram append_seconds;
  Gauge stream_clients;
  CounterFamily handler_calls;
  CounterFamily handler_failures;
  CounterFamily handler_seconds;

  std::mutex mutex;
  std::map<std::pair<std::string, unsigned>, Counter, std::less<>> request_children;
  std::map<std::string, Histogram, std::less<>> duration_children;
  std::map<std::string, Counter, std::less<>> ingested_children;
  // What the bus had reported at the previous scrape, per handler id: counters only go up, so
  // each scrape adds the difference.
  struct HandlerSeen {
    Counter calls, failures, seconds;
    std::uint64_t calls_seen = 0, failures_seen = 0;
    std::chrono::nanoseconds duration_seen{0};
  };
  std::map<std::uint64_t, HandlerSeen> handlers;

  Impl(const ServerServices& services, StreamHub& hub)
      : registry(*services.metrics),
        store(*services.store),
        bus(services.bus),
        requests(must(registry.counter("herald_http_requests_total",
                                       "HTTP requests answered, by route and status",
                                       {"route", "status"}))),
        request_seconds(must(registry.histogram("herald_http_request_duration_seconds",
                                                "Time from a request's arrival to its response",
                                                latency_buckets, {"route"}))),
        ingested(must(registry.counter("herald_events_ingested_total",
                                       "Events newly stored through the API, by type", {"type"}))),
        append_seconds(
            must(must(registry.histogram("herald_append_latency_seconds",
                                         "Time to make the events of one request durable",
                                         latency_buckets))
                     .with({}))),
        stream_clients(
            must(must(registry.gauge("herald_stream_clients", "Open event streams")).with({}))),
        handler_calls(
            must(registry.counter("herald_handler_calls_total", "Calls of in-process bus handlers",
                                  {"handler", "event_type"}))),
        handler_failures(
            must(registry.counter("herald_handler_failures_total", "Bus handler calls that threw",
                                  {"handler", "event_type"}))),
        handler_seconds(
            must(registry.counter("herald_handler_duration_seconds_total",
                                  "Time spent in bus handlers", {"handler", "event_type"}))) {
    (void)hub;
    must(registry.callback_gauge("herald_consumer_lag_events",
                                 "Events appended and not yet handled, by durable consumer",
                                 {"consumer"}, [this] { return consumer_samples(false); }));
    must(registry.callback_gauge("herald_consumer_parked_events",
                                 "Events a durable consumer gave up on", {"consumer"},
                                 [this] { return consumer_samples(true); }));
    if (services.node_status) {
      must(registry.callback_gauge(
          "herald_cluster_leader", "1 while this node leads the role (docs/cluster.md)", {"role"},
          [status = services.node_status] {
            std::vector<GaugeSample> samples;
            for (const NodeRole& role : status().roles) {
              samples.push_back(
                  GaugeSample{.label_values = {role.role}, .value = role.leader ? 1.0 : 0.0});
            }
            return samples;
          }));
      must(registry.callback_gauge(
          "herald_cluster_feed_events",
          "Events this node's live stream took from the NATS stream, and from the store instead "
          "(a counter)",
          {"source"}, [status = services.node_status] {
            std::vector<GaugeSample> samples;
            if (auto nats = status().nats) {
              samples.push_back(GaugeSample{.label_values = {"stream"},
                                            .value = static_cast<double>(nats->from_stream)});
              samples.push_back(GaugeSample{.label_values = {"store"},
                                            .value = static_cast<double>(nats->from_store)});
            }
            return samples;
          }));
      must(registry.callback_gauge(
          "herald_cluster_nats_connected",
          "1 while this node's connection to NATS is up (absent without NATS)", {},
          [status = services.node_status] {
            std::vector<GaugeSample> samples;
            if (auto nats = status().nats) {
              samples.push_back(
                  GaugeSample{.label_values = {}, .value = nats->connected ? 1.0 : 0.0});
            }
            return samples;
          }));
    }
  }

  std::vector<GaugeSample> consumer_samples(bool parked) {
    std::vector<GaugeSample> samples;
    auto consumers = list_consumers(store);
    if (!consumers) {
      spdlog::warn("metrics: listing consumers failed: {}", consumers.error().message);
      return samples;
    }
    for (const ConsumerStatus& status : *consumers) {
      samples.push_back(
          GaugeSample{.label_values = {status.name},
                      .value = static_cast<double>(parked ? status.parked : status.lag)});
    }
    return samples;
  }

  void sync_handlers() {
    if (bus == nullptr) return;
    std::lock_guard lock(mutex);
    for (const HandlerStats& stats : bus->handler_stats()) {
      auto it = handlers.find(stats.id);
      if (it == handlers.end()) {
        auto calls = handler_calls.with({stats.name, stats.event_type});
        auto failures = handler_failures.with({stats.name, stats.event_type});
        auto seconds = handler_seconds.with({stats.name, stats.event_type});
        if (!calls || !failures || !seconds) continue;
        it = handlers.emplace(stats.id, HandlerSeen{*calls, *failures, *seconds}).first;
      }
      HandlerSeen& seen = it->second;
      if (stats.calls > seen.calls_seen)
        seen.calls.inc(static_cast<double>(stats.calls - seen.calls_seen));
      if (stats.failures > seen.failures_seen) {
        seen.failures.inc(static_cast<double>(stats.failures - seen.failures_seen));
      }
      if (stats.total_duration > seen.duration_seen) {
        seen.seconds.inc(
            std::chrono::duration<double>(stats.total_duration - seen.duration_seen).count());
      }
      seen.calls_seen = std::max(seen.calls_seen, stats.calls);
      seen.failures_seen = std::max(seen.failures_seen, stats.failures);
      seen.duration_seen = std::max(seen.duration_seen, stats.total_duration);
    }
  }
};

ServerMetrics::ServerMetrics(const ServerServices& services, StreamHub& hub)
    : impl_(std::make_unique<Impl>(services, hub)) {}

ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::on_request(std::string_view route, unsigned status,
                               std::chrono::nanoseconds elapsed) {
  std::optional<Counter> counter;
  std::optional<Histogram> histogram;
  {
    std::lock_guard lock(impl_->mutex);
    auto key = std::make_pair(std::string(route), status);
    auto it = impl_->request_children.find(key);
    if (it == impl_->request_children.end()) {
      auto child = impl_->requests.with({route, std::to_string(status)});
      if (child) it = impl_->request_children.emplace(std::move(key), *child).first;
    }
    if (it != impl_->request_children.end()) counter = it->second;
    auto hit = impl_->duration_children.find(route);
    if (hit == impl_->duration_children.end()) {
      auto child = impl_->request_seconds.with({route});
      if (child) hit = impl_->duration_children.emplace(std::string(route), *child).first;
    }
    if (hit != impl_->duration_children.end()) histogram = hit->second;
  }
  if (counter) counter->inc();
  if (histogram) histogram->observe(std::chrono::duration<double>(elapsed).count());
}

void ServerMetrics::on_append(std::chrono::nanoseconds elapsed, std::size_t) {
  impl_->append_seconds.observe(std::chrono::duration<double>(elapsed).count());
}

void ServerMetrics::on_ingested(std::string_view type) {
  std::optional<Counter> counter;
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->ingested_children.find(type);
    if (it == impl_->ingested_children.end()) {
      auto child = impl_->ingested.with({type});
      if (!child) return;
      it = impl_->ingested_children.emplace(std::string(type), *child).first;
    }
    counter = it->second;
  }
  counter->inc();
}

void ServerMetrics::on_stream_opened() { impl_->stream_clients.inc(); }

void ServerMetrics::on_stream_closed() { impl_->stream_clients.dec(); }

std::string ServerMetrics::render() {
  impl_->sync_handlers();
  return impl_->registry.render();
}

}  // namespace herald::http
