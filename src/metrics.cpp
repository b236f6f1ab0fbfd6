#include "herald/metrics.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>
#include <mutex>
#include <utility>
#include <variant>

// The output follows the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).

namespace herald {

namespace detail {

enum class MetricKind : std::uint8_t { counter, gauge, histogram, callback_gauge };

struct HistogramCell {
  explicit HistogramCell(const std::vector<double>& upper_bounds)
      : bounds(&upper_bounds),
        counts(std::make_unique<std::atomic<std::uint64_t>[]>(upper_bounds.size() + 1)) {}

  /// The family's bucket bounds, without +Inf.
  const std::vector<double>* bounds;
  /// Observations per bucket, not cumulative; the last one is +Inf's.
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts;
  std::atomic<double> sum{0};
};

using LabelValues = std::vector<std::string>;

struct MetricFamily {
  MetricKind kind = MetricKind::counter;
  std::string name;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  /// Counters and gauges. std::map: handles point into nodes that never move, and rendering
  /// walks children in label order.
  std::map<LabelValues, std::unique_ptr<std::atomic<double>>> values;
  std::map<LabelValues, std::unique_ptr<HistogramCell>> histograms;
  std::function<std::vector<GaugeSample>()> collect;
  /// The registry's lock, which guards the maps above.
  std::mutex* lock = nullptr;
  std::size_t max_children = 0;

  std::size_t children() const { return values.size() + histograms.size(); }

  /// Checks `label_values` against the family and returns them as a key. Caller holds `lock`.
  std::expected<LabelValues, Error> key(std::initializer_list<std::string_view> label_values) {
    if (label_values.size() != label_names.size()) {
      return std::unexpected(Error{ErrorCode::invalid_argument,
                                   fmt::format("metric '{}' has {} label(s), got {} value(s)", name,
                                               label_names.size(), label_values.size()),
                                   {}});
    }
    return LabelValues(label_values.begin(), label_values.end());
  }

  Error too_many_children() const {
    return Error{ErrorCode::too_large,
                 fmt::format("metric '{}' has reached its limit of {} label value combinations; "
                             "label it by something with fewer values",
                             name, max_children),
                 {}};
  }

  std::expected<std::atomic<double>*, Error> value_cell(
      std::initializer_list<std::string_view> label_values) {
    std::lock_guard guard(*lock);
    auto labels = key(label_values);
    if (!labels) return std::unexpected(std::move(labels.error()));
    auto it = values.find(*labels);
    if (it != values.end()) return it->second.get();
    if (children() >= max_children) return std::unexpected(too_many_children());
    auto cell = std::make_unique<std::atomic<double>>(0.0);
    return values.emplace(std::move(*labels), std::move(cell)).first->second.get();
  }

  std::expected<HistogramCell*, Error> histogram_cell(
      std::initializer_list<std::string_view> label_values) {
    std::lock_guard guard(*lock);
    auto labels = key(label_values);
    if (!labels) return std::unexpected(std::move(labels.error()));
    auto it = histograms.find(*labels);
    if (it != histograms.end()) return it->second.get();
    if (children() >= max_children) return std::unexpected(too_many_children());
    auto cell = std::make_unique<HistogramCell>(bounds);
    return histograms.emplace(std::move(*labels), std::move(cell)).first->second.get();
  }
};

}  // namespace detail

namespace {

using detail::HistogramCell;
using detail::LabelValues;
using detail::MetricFamily;
using detail::MetricKind;

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

/// A sample value as the format writes it: Go's float syntax, with +Inf, -Inf and NaN.
std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

/// A label value: backslash, double quote and line feed escaped.
void append_escaped_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

/// HELP text: backslash and line feed escaped.
std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

/// `{a="x",b="y"}`, with `le` last when given; "" when there are no labels at all.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const LabelValues& values, std::string_view le = {}) {
  if (names.empty() && le.empty()) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped_label_value(out, values[i]);
    out += '"';
  }
  if (!le.empty()) {
    if (!names.empty()) out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

void append_header(std::string& out, const MetricFamily& family) {
  std::string_view type = "gauge";
  if (family.kind == MetricKind::counter) type = "counter";
  if (family.kind == MetricKind::histogram) type = "histogram";
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, escape_help(family.help),
                     family.name, type);
}

void append_sample(std::string& out, std::string_view name, const std::vector<std::string>& names,
                   const LabelValues& values, double value, std::string_view le = {}) {
  out += name;
  append_labels(out, names, values, le);
  out += ' ';
  out += format_value(value);
  out += '\n';
}

/// A family's samples. Caller holds the registry's lock.
void append_stored(std::string& out, const MetricFamily& family) {
  append_header(out, family);
  for (const auto& [labels, cell] : family.values) {
    append_sample(out, family.name, family.label_names, labels,
                  cell->load(std::memory_order_relaxed));
  }
  for (const auto& [labels, cell] : family.histograms) {
    // _count is the +Inf bucket, so a scrape during observations is still consistent with itself.
    std::uint64_t cumulative = 0;
    const std::string bucket_name = family.name + "_bucket";
    for (std::size_t i = 0; i <= family.bounds.size(); ++i) {
      cumulative += cell->counts[i].load(std::memory_order_relaxed);
      const std::string le =
          i < family.bounds.size() ? format_value(family.bounds[i]) : std::string("+Inf");
      append_sample(out, bucket_name, family.label_names, labels, static_cast<double>(cumulative),
                    le);
    }
    append_sample(out, family.name + "_sum", family.label_names, labels,
                  cell->sum.load(std::memory_order_relaxed));
    append_sample(out, family.name + "_count", family.label_names, labels,
                  static_cast<double>(cumulative));
  }
}

}  // namespace

// --- handles ------------------------------------------------------------------------------------

void Counter::inc(double amount) noexcept {
  assert(amount >= 0 && "a counter only goes up");
  cell_->fetch_add(amount, std::memory_order_relaxed);
}
double Counter::value() const noexcept { return cell_->load(std::memory_order_relaxed); }

void Gauge::set(double value) noexcept { cell_->store(value, std::memory_order_relaxed); }
void Gauge::inc(double amount) noexcept { cell_->fetch_add(amount, std::memory_order_relaxed); }
void Gauge::dec(double amount) noexcept { cell_->fetch_sub(amount, std::memory_order_relaxed); }
double Gauge::value() const noexcept { return cell_->load(std::memory_order_relaxed); }

void Histogram::observe(double value) noexcept {
  const std::vector<double>& bounds = *cell_->bounds;
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  cell_->counts[bucket].fetch_add(1, std::memory_order_relaxed);
  cell_->sum.fetch_add(value, std::memory_order_relaxed);
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= cell_->bounds->size(); ++i) {
    total += cell_->counts[i].load(std::memory_order_relaxed);
  }
  return total;
}

double Histogram::sum() const noexcept { return cell_->sum.load(std::memory_order_relaxed); }

std::expected<Counter, Error> CounterFamily::with(
    std::initializer_list<std::string_view> label_values) {
  auto cell = family_->value_cell(label_values);
  if (!cell) return std::unexpected(std::move(cell.error()));
  return Counter(*cell);
}

std::expected<Gauge, Error> GaugeFamily::with(
    std::initializer_list<std::string_view> label_values) {
  auto cell = family_->value_cell(label_values);
  if (!cell) return std::unexpected(std::move(cell.error()));
  return Gauge(*cell);
}

std::expected<Histogram, Error> HistogramFamily::with(
    std::initializer_list<std::string_view> label_values) {
  auto cell = family_->histogram_cell(label_values);
  if (!cell) return std::unexpected(std::move(cell.error()));
  return Histogram(*cell);
}

// --- the registry -------------------------------------------------------------------------------

struct MetricsRegistry::State {
  MetricsRegistryOptions options;
  mutable std::mutex mutex;
  /// In registration order; never removed, so family pointers stay valid.
  std::vector<std::unique_ptr<MetricFamily>> families;

  /// Checks and adds a family; returns it. Takes the lock.
  std::expected<MetricFamily*, Error> add(MetricKind kind, std::string_view name,
                                          std::string_view help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds = {}) {
    const auto invalid = [&](std::string what) {
      return std::unexpected(
          Error{ErrorCode::invalid_argument, fmt::format("metric '{}': {}", name, what), "name"});
    };
    if (!valid_metric_name(name)) {
      return invalid("expected a name of letters, digits, '_' and ':', not starting with a digit");
    }
    for (std::size_t i = 0; i < label_names.size(); ++i) {
      const std::string& label = label_names[i];
      if (!valid_label_name(label)) {
        return invalid(fmt::format(
            "label '{}': expected letters, digits and '_', not starting with a digit or '__'",
            label));
      }
      if (std::find(label_names.begin(), label_names.begin() + static_cast<std::ptrdiff_t>(i),
                    label) != label_names.begin() + static_cast<std::ptrdiff_t>(i)) {
        return invalid(fmt::format("label '{}' is given twice", label));
      }
      if (kind == MetricKind::histogram && label == "le") {
        return invalid("label 'le' is reserved for histogram buckets");
      }
    }
    if (kind == MetricKind::histogram) {
      for (std::size_t i = 0; i < bounds.size(); ++i) {
        if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
          return invalid("expected finite, strictly increasing bucket bounds (+Inf is added)");
        }
      }
    }
    std::lock_guard guard(mutex);
    for (const auto& family : families) {
      if (family->name == name) {
        return std::unexpected(Error{
            ErrorCode::conflict, fmt::format("metric '{}' is already registered", name), "name"});
      }
    }
    auto family = std::make_unique<MetricFamily>();
    family->kind = kind;
    family->name = std::string(name);
    family->help = std::string(help);
    family->label_names = std::move(label_names);
    family->bounds = std::move(bounds);
    family->lock = &mutex;
    family->max_children = options.max_children;
    // An unlabelled metric has its one sample from the start, so a scrape shows it at zero.
    if (family->label_names.empty() && kind != MetricKind::callback_gauge) {
      if (kind == MetricKind::histogram) {
        family->histograms.emplace(LabelValues{}, std::make_unique<HistogramCell>(family->bounds));
      } else {
        family->values.emplace(LabelValues{}, std::make_unique<std::atomic<double>>(0.0));
      }
    }
    families.push_back(std::move(family));
    return families.back().get();
  }
};

MetricsRegistry::MetricsRegistry(MetricsRegistryOptions options)
    : state_(std::make_unique<State>()) {
  state_->options = options;
}

MetricsRegistry::~MetricsRegistry() = default;

std::expected<CounterFamily, Error> MetricsRegistry::counter(std::string_view name,
                                                             std::string_view help,
                                                             std::vector<std::string> label_names) {
  auto family = state_->add(MetricKind::counter, name, help, std::move(label_names));
  if (!family) return std::unexpected(std::move(family.error()));
  return CounterFamily(*family);
}

std::expected<GaugeFamily, Error> MetricsRegistry::gauge(std::string_view name,
                                                         std::string_view help,
                                                         std::vector<std::string> label_names) {
  auto family = state_->add(MetricKind::gauge, name, help, std::move(label_names));
  if (!family) return std::unexpected(std::move(family.error()));
  return GaugeFamily(*family);
}

std::expected<HistogramFamily, Error> MetricsRegistry::histogram(
    std::string_view name, std::string_view help, std::vector<double> buckets,
    std::vector<std::string> label_names) {
  auto family =
      state_->add(MetricKind::histogram, name, help, std::move(label_names), std::move(buckets));
  if (!family) return std::unexpected(std::move(family.error()));
  return HistogramFamily(*family);
}

std::expected<void, Error> MetricsRegistry::callback_gauge(
    std::string_view name, std::string_view help, std::vector<std::string> label_names,
    std::function<std::vector<GaugeSample>()> collect) {
  assert(collect && "a callback gauge needs a callback");
  auto family = state_->add(MetricKind::callback_gauge, name, help, std::move(label_names));
  if (!family) return std::unexpected(std::move(family.error()));
  // Set under the lock: render reads it under the same lock.
  std::lock_guard guard(state_->mutex);
  (*family)->collect = std::move(collect);
  return {};
}

std::expected<void, Error> MetricsRegistry::callback_gauge(std::string_view name,
                                                           std::string_view help,
                                                           std::function<double()> read) {
  assert(read && "a callback gauge needs a callback");
  return callback_gauge(name, help, {}, [read = std::move(read)] {
    return std::vector<GaugeSample>{GaugeSample{.label_values = {}, .value = read()}};
  });
}

std::string MetricsRegistry::render() const {
  // Stored families are written under the lock; callback families are only noted, and their
  // callbacks run after it is released, so a slow callback does not hold up the hot paths' lookups.
  struct Pending {
    const MetricFamily* family;
    std::function<std::vector<GaugeSample>()> collect;
  };
  std::vector<std::variant<std::string, Pending>> parts;
  {
    std::lock_guard guard(state_->mutex);
    for (const auto& family : state_->families) {
      if (family->kind == MetricKind::callback_gauge) {
        parts.emplace_back(Pending{family.get(), family->collect});
      } else {
        std::string text;
        append_stored(text, *family);
        parts.emplace_back(std::move(text));
      }
    }
  }
  std::string out;
  for (auto& part : parts) {
    if (auto* text = std::get_if<std::string>(&part)) {
      out += *text;
      continue;
    }
    const Pending& pending = std::get<Pending>(part);
    const MetricFamily& family = *pending.family;
    append_header(out, family);
    std::vector<GaugeSample> samples;
    try {
      if (pending.collect) samples = pending.collect();
    } catch (...) {
      samples.clear();
    }
    std::sort(samples.begin(), samples.end(), [](const GaugeSample& a, const GaugeSample& b) {
      return a.label_values < b.label_values;
    });
    for (const GaugeSample& sample : samples) {
      if (sample.label_values.size() != family.label_names.size()) continue;
      append_sample(out, family.name, family.label_names, sample.label_values, sample.value);
    }
  }
  return out;
}

}  // namespace herald
