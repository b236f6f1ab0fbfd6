#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "herald/error.hpp"

namespace herald {

namespace detail {
struct HistogramCell;
struct MetricFamily;
}  // namespace detail

/// The buckets Prometheus clients use by default (seconds, for request durations).
inline constexpr std::array<double, 11> default_histogram_buckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/// One labelled counter. A handle: cheap to copy, valid while its registry lives. `inc` is
/// lock-free and safe from any thread.
class Counter {
 public:
  /// Adds `amount` (0 or more; a counter never goes down).
  void inc(double amount = 1.0) noexcept;
  double value() const noexcept;

 private:
  friend class CounterFamily;
  explicit Counter(std::atomic<double>* cell) noexcept : cell_(cell) {}
  std::atomic<double>* cell_;
};

/// One labelled gauge. A handle: cheap to copy, valid while its registry lives. Every member is
/// lock-free and safe from any thread.
class Gauge {
 public:
  void set(double value) noexcept;
  void inc(double amount = 1.0) noexcept;
  void dec(double amount = 1.0) noexcept;
  double value() const noexcept;

 private:
  friend class GaugeFamily;
  explicit Gauge(std::atomic<double>* cell) noexcept : cell_(cell) {}
  std::atomic<double>* cell_;
};

/// One labelled histogram. A handle: cheap to copy, valid while its registry lives. `observe` is
/// lock-free (one atomic bucket count and the atomic sum) and safe from any thread.
class Histogram {
 public:
  /// Counts `value` in the first bucket whose upper bound is at or above it (+Inf otherwise).
  void observe(double value) noexcept;
  /// Observations so far.
  std::uint64_t count() const noexcept;
  /// The sum of the observed values.
  double sum() const noexcept;

 private:
  friend class HistogramFamily;
  explicit Histogram(detail::HistogramCell* cell) noexcept : cell_(cell) {}
  detail::HistogramCell* cell_;
};

/// A counter metric and its labelled children. A handle: cheap to copy, valid while its registry
/// lives; thread-safe.
class CounterFamily {
 public:
  /// The child with these label values (one per label name, in order), created on first use.
  /// Look it up once and keep the handle: the lookup takes the registry's lock. Errors:
  /// `invalid_argument` when the number of values is not the number of labels; `too_large` when
  /// the family already has `MetricsRegistryOptions::max_children` children.
  std::expected<Counter, Error> with(std::initializer_list<std::string_view> label_values);

 private:
  friend class MetricsRegistry;
  explicit CounterFamily(detail::MetricFamily* family) noexcept : family_(family) {}
  detail::MetricFamily* family_;
};

/// A gauge metric and its labelled children; see `CounterFamily`.
class GaugeFamily {
 public:
  /// The child with these label values; errors as `CounterFamily::with`.
  std::expected<Gauge, Error> with(std::initializer_list<std::string_view> label_values);

 private:
  friend class MetricsRegistry;
  explicit GaugeFamily(detail::MetricFamily* family) noexcept : family_(family) {}
  detail::MetricFamily* family_;
};

/// A histogram metric and its labelled children; see `CounterFamily`.
class HistogramFamily {
 public:
  /// The child with these label values; errors as `CounterFamily::with`.
  std::expected<Histogram, Error> with(std::initializer_list<std::string_view> label_values);

 private:
  friend class MetricsRegistry;
  explicit HistogramFamily(detail::MetricFamily* family) noexcept : family_(family) {}
  detail::MetricFamily* family_;
};

/// One value a callback gauge reports: its label values (one per label name) and the value.
struct GaugeSample {
  std::vector<std::string> label_values;
  double value = 0;
};

/// Limits of a registry.
struct MetricsRegistryOptions {
  /// The most children (label value combinations) one family may have, so that label values
  /// taken from outside input cannot grow memory without bound.
  std::size_t max_children = 10000;
};

/// A set of metrics rendered in the Prometheus text exposition format 0.0.4. Thread-safe: every
/// member may be called from any thread. Registering and looking up children take a lock;
/// updating a child through its handle does not.
///
/// Registration errors: `invalid_argument` for a metric name that does not match
/// [a-zA-Z_:][a-zA-Z0-9_:]*, a label name that does not match [a-zA-Z_][a-zA-Z0-9_]* or starts
/// with "__", a repeated label name, "le" as a histogram label, or histogram buckets that are not
/// finite and strictly increasing; `conflict` for a name already registered.
class MetricsRegistry {
 public:
  explicit MetricsRegistry(MetricsRegistryOptions options = {});
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  /// Registers a counter. Without labels, its one child exists (at 0) from the start.
  std::expected<CounterFamily, Error> counter(std::string_view name, std::string_view help,
                                              std::vector<std::string> label_names = {});
  /// Registers a gauge. Without labels, its one child exists (at 0) from the start.
  std::expected<GaugeFamily, Error> gauge(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names = {});
  /// Registers a histogram with these bucket upper bounds (+Inf is added).
  std::expected<HistogramFamily, Error> histogram(std::string_view name, std::string_view help,
                                                  std::vector<double> buckets,
                                                  std::vector<std::string> label_names = {});
  /// Registers a gauge whose samples `collect` returns at each `render`, from the rendering
  /// thread and without the registry's lock held (it may take its own locks or query a store).
  /// A sample with the wrong number of label values is left out; a `collect` that throws leaves
  /// the family without samples in that rendering.
  std::expected<void, Error> callback_gauge(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names,
                                            std::function<std::vector<GaugeSample>()> collect);
  /// Registers an unlabelled gauge whose value `read` returns at each `render`.
  std::expected<void, Error> callback_gauge(std::string_view name, std::string_view help,
                                            std::function<double()> read);

  /// Every metric in the text exposition format 0.0.4, in registration order, children by label
  /// values: # HELP and # TYPE lines, then one line per sample.
  std::string render() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The content type of `MetricsRegistry::render`'s output, for an HTTP response.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace herald
