#pragma once

// Small helpers for a benchmark's summary table: medians, spreads and rates people can read.

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace herald_bench {

/// The median of `values` (0 when empty).
inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

/// (max - min) / median of `values`, in percent (0 when fewer than two or a zero median).
inline double spread_percent(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double middle = median(values);
  if (middle <= 0) return 0;
  const auto [low, high] = std::minmax_element(values.begin(), values.end());
  return (*high - *low) / middle * 100;
}

/// A rate per second with a unit prefix: "1.23 M/s", "45.6 k/s", "789 /s".
inline std::string format_rate(double per_second) {
  char text[32];
  if (per_second >= 1e6) {
    std::snprintf(text, sizeof text, "%.2f M/s", per_second / 1e6);
  } else if (per_second >= 1e3) {
    std::snprintf(text, sizeof text, "%.1f k/s", per_second / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.0f /s", per_second);
  }
  return text;
}

}  // namespace herald_bench
