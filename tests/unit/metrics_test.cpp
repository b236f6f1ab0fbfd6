#include "herald/metrics.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace herald {
namespace {

TEST(MetricsRegistry, RendersAnUnlabelledCounterAtZeroThenItsValue) {
  MetricsRegistry registry;
  auto family = registry.counter("herald_events_appended_total", "Events appended.");
  ASSERT_TRUE(family) << family.error().message;
  EXPECT_EQ(registry.render(),
            "# HELP herald_events_appended_total Events appended.\n"
            "# TYPE herald_events_appended_total counter\n"
            "herald_events_appended_total 0\n");
  Counter counter = family->with({}).value();
  counter.inc();
  counter.inc(2.5);
  EXPECT_EQ(counter.value(), 3.5);
  EXPECT_EQ(registry.render(),
            "# HELP herald_events_appended_total Events appended.\n"
            "# TYPE herald_events_appended_total counter\n"
            "herald_events_appended_total 3.5\n");
}

TEST(MetricsRegistry, RendersLabelledCounterChildrenInLabelOrder) {
  MetricsRegistry registry;
  auto family =
      registry.counter("http_requests_total", "HTTP requests.", {"method", "status"}).value();
  family.with({"POST", "201"}).value().inc(3);
  family.with({"GET", "200"}).value().inc();
  family.with({"GET", "200"}).value().inc();
  EXPECT_EQ(registry.render(),
            "# HELP http_requests_total HTTP requests.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{method=\"GET\",status=\"200\"} 2\n"
            "http_requests_total{method=\"POST\",status=\"201\"} 3\n");
}

TEST(MetricsRegistry, RendersAGaugeThatGoesUpAndDown) {
  MetricsRegistry registry;
  Gauge gauge = registry.gauge("sse_clients", "Connected SSE clients.").value().with({}).value();
  gauge.inc();
  gauge.inc();
  gauge.dec();
  gauge.inc(0.25);
  EXPECT_EQ(registry.render(),
            "# HELP sse_clients Connected SSE clients.\n"
            "# TYPE sse_clients gauge\n"
            "sse_clients 1.25\n");
  gauge.set(-7);
  EXPECT_EQ(gauge.value(), -7);
  EXPECT_NE(registry.render().find("sse_clients -7\n"), std::string::npos);
}

TEST(MetricsRegistry, RendersHistogramBucketsCumulativeWithInfSumAndCount) {
  MetricsRegistry registry;
  auto family =
      registry.histogram("request_seconds", "Request duration.", {0.1, 0.5, 1}, {"route"}).value();
  Histogram events = family.with({"events"}).value();
  events.observe(0.05);
  events.observe(0.1);  // on a bound: counted in that bucket (le is "less or equal")
  events.observe(0.3);
  events.observe(2);
  EXPECT_EQ(events.count(), 4U);
  EXPECT_DOUBLE_EQ(events.sum(), 2.45);
  EXPECT_EQ(registry.render(),
            "# HELP request_seconds Request duration.\n"
            "# TYPE request_seconds histogram\n"
            "request_seconds_bucket{route=\"events\",le=\"0.1\"} 2\n"
            "request_seconds_bucket{route=\"events\",le=\"0.5\"} 3\n"
            "request_seconds_bucket{route=\"events\",le=\"1\"} 3\n"
            "request_seconds_bucket{route=\"events\",le=\"+Inf\"} 4\n"
            "request_seconds_sum{route=\"events\"} 2.45\n"
            "request_seconds_count{route=\"events\"} 4\n");
}

TEST(MetricsRegistry, RendersAnUnlabelledHistogramWithDefaultBucketsFromTheStart) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.histogram(
      "append_seconds", "Append latency.",
      std::vector<double>(default_histogram_buckets.begin(), default_histogram_buckets.end())));
  const std::string text = registry.render();
  EXPECT_NE(text.find("append_seconds_bucket{le=\"0.005\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("append_seconds_bucket{le=\"10\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("append_seconds_bucket{le=\"+Inf\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("append_seconds_sum 0\nappend_seconds_count 0\n"), std::string::npos);
}

TEST(MetricsRegistry, EscapesBackslashQuoteAndNewlineInLabelValuesAndHelp) {
  MetricsRegistry registry;
  auto family = registry.counter("odd_total", "Line one\nback\\slash \"quoted\"", {"path"}).value();
  family.with({"C:\\dir\n\"x\""}).value().inc();
  EXPECT_EQ(registry.render(),
            "# HELP odd_total Line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE odd_total counter\n"
            "odd_total{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n");
}

TEST(MetricsRegistry, RendersSpecialValuesAsThePrometheusFormatSpellsThem) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.callback_gauge("special", "Special values.", {"kind"}, [] {
    return std::vector<GaugeSample>{
        {{"inf"}, std::numeric_limits<double>::infinity()},
        {{"nan"}, std::numeric_limits<double>::quiet_NaN()},
        {{"ninf"}, -std::numeric_limits<double>::infinity()},
        {{"small"}, 1e-9},
    };
  }));
  EXPECT_EQ(registry.render(),
            "# HELP special Special values.\n"
            "# TYPE special gauge\n"
            "special{kind=\"inf\"} +Inf\n"
            "special{kind=\"nan\"} NaN\n"
            "special{kind=\"ninf\"} -Inf\n"
            "special{kind=\"small\"} 1e-09\n");
}

TEST(MetricsRegistry, EvaluatesCallbackGaugesAtEachRender) {
  MetricsRegistry registry;
  std::atomic<int> parked{2};
  ASSERT_TRUE(registry.callback_gauge("parked_events", "Parked events.",
                                      [&] { return static_cast<double>(parked.load()); }));
  ASSERT_TRUE(registry.callback_gauge("consumer_lag", "Lag per consumer.", {"consumer"}, [] {
    return std::vector<GaugeSample>{{{"mailer"}, 7}, {{"audit"}, 0}, {{"too", "many"}, 1}};
  }));
  EXPECT_EQ(registry.render(),
            "# HELP parked_events Parked events.\n"
            "# TYPE parked_events gauge\n"
            "parked_events 2\n"
            "# HELP consumer_lag Lag per consumer.\n"
            "# TYPE consumer_lag gauge\n"
            "consumer_lag{consumer=\"audit\"} 0\n"
            "consumer_lag{consumer=\"mailer\"} 7\n");
  parked = 5;
  EXPECT_NE(registry.render().find("parked_events 5\n"), std::string::npos);
}

TEST(MetricsRegistry, ACallbackThatThrowsLeavesItsFamilyWithoutSamplesAndTheRestIntact) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.callback_gauge("broken", "Throws.",
                                      []() -> double { throw std::runtime_error("store down"); }));
  ASSERT_TRUE(registry.gauge("fine", "Fine."));
  EXPECT_EQ(registry.render(),
            "# HELP broken Throws.\n"
            "# TYPE broken gauge\n"
            "# HELP fine Fine.\n"
            "# TYPE fine gauge\n"
            "fine 0\n");
}

TEST(MetricsRegistry, RendersFamiliesInRegistrationOrder) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.gauge("zeta", "Z."));
  ASSERT_TRUE(registry.counter("alpha_total", "A."));
  const std::string text = registry.render();
  EXPECT_LT(text.find("zeta"), text.find("alpha_total"));
}

TEST(MetricsRegistry, RefusesInvalidMetricAndLabelNames) {
  MetricsRegistry registry;
  for (const char* name : {"", "1abc", "has-dash", "has space", "ünï", "a{b}"}) {
    auto family = registry.counter(name, "x");
    ASSERT_FALSE(family) << "accepted metric name '" << name << "'";
    EXPECT_EQ(family.error().code, ErrorCode::invalid_argument);
  }
  EXPECT_TRUE(registry.counter("ns:sub_name_total", "Colons are allowed."));
  int n = 0;
  for (const char* label : {"", "9lives", "__reserved", "has:colon", "has-dash"}) {
    auto family = registry.gauge("gauge_" + std::to_string(n++), "x", {label});
    ASSERT_FALSE(family) << "accepted label name '" << label << "'";
    EXPECT_NE(family.error().message.find("label '" + std::string(label) + "'"), std::string::npos)
        << family.error().message;
  }
  EXPECT_FALSE(registry.counter("twice_total", "x", {"a", "a"}));
  EXPECT_FALSE(registry.histogram("h_le", "x", {1}, {"le"}));
  EXPECT_TRUE(registry.counter("le_is_fine_on_a_counter_total", "x", {"le"}));
}

TEST(MetricsRegistry, RefusesHistogramBucketsThatAreNotFiniteAndStrictlyIncreasing) {
  MetricsRegistry registry;
  EXPECT_FALSE(registry.histogram("h1", "x", {1, 1}));
  EXPECT_FALSE(registry.histogram("h2", "x", {2, 1}));
  EXPECT_FALSE(registry.histogram("h3", "x", {1, std::numeric_limits<double>::infinity()}));
  EXPECT_FALSE(registry.histogram("h4", "x", {std::numeric_limits<double>::quiet_NaN()}));
  EXPECT_TRUE(registry.histogram("h5", "x", {}));
}

TEST(MetricsRegistry, RefusesANameRegisteredTwiceAsAConflict) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.counter("dup_total", "x"));
  auto again = registry.gauge("dup_total", "y");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::conflict);
  EXPECT_NE(again.error().message.find("'dup_total'"), std::string::npos);
}

TEST(MetricsRegistry, WithRefusesTheWrongNumberOfLabelValues) {
  MetricsRegistry registry;
  auto family = registry.counter("labelled_total", "x", {"a", "b"}).value();
  auto child = family.with({"only-one"});
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(child.error().message.find("has 2 label(s), got 1"), std::string::npos);
}

TEST(MetricsRegistry, WithRefusesChildrenBeyondTheLimitButReturnsExistingOnes) {
  MetricsRegistry registry({.max_children = 3});
  auto family = registry.counter("paths_total", "x", {"path"}).value();
  for (const char* path : {"/a", "/b", "/c"}) ASSERT_TRUE(family.with({path}));
  auto fourth = family.with({"/d"});
  ASSERT_FALSE(fourth);
  EXPECT_EQ(fourth.error().code, ErrorCode::too_large);
  EXPECT_TRUE(family.with({"/a"}));
}

TEST(MetricsRegistry, TheSameLabelValuesGiveTheSameChild) {
  MetricsRegistry registry;
  auto family = registry.gauge("same", "x", {"k"}).value();
  family.with({"v"}).value().set(4);
  EXPECT_EQ(family.with({"v"}).value().value(), 4);
}

TEST(MetricsRegistry, ConcurrentIncrementsAndObservationsAreCountedExactly) {
  constexpr int threads = 8;
  constexpr int per_thread = 20000;
  MetricsRegistry registry;
  auto counters = registry.counter("hits_total", "x", {"shard"}).value();
  auto histograms = registry.histogram("sizes", "x", {1, 10}).value();
  Gauge gauge = registry.gauge("level", "x").value().with({}).value();
  Counter shared = counters.with({"shared"}).value();
  Histogram sizes = histograms.with({}).value();

  std::latch start(threads + 1);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      // Each thread also creates its own child while others update theirs.
      Counter own = counters.with({"thread-" + std::to_string(t)}).value();
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        shared.inc();
        own.inc();
        gauge.inc();
        gauge.dec();
        sizes.observe(static_cast<double>(i % 3) * 5);  // 0, 5, 10: buckets 1, 10, 10
      }
    });
  }
  // Scrape while the workers run: rendering must not race with the updates.
  std::thread scraper([&] {
    start.arrive_and_wait();
    for (int i = 0; i < 50; ++i) EXPECT_FALSE(registry.render().empty());
  });
  for (std::thread& worker : workers) worker.join();
  scraper.join();

  EXPECT_EQ(shared.value(), threads * per_thread);
  for (int t = 0; t < threads; ++t) {
    EXPECT_EQ(counters.with({"thread-" + std::to_string(t)}).value().value(), per_thread);
  }
  EXPECT_EQ(gauge.value(), 0);
  EXPECT_EQ(sizes.count(), static_cast<std::uint64_t>(threads) * per_thread);
  const std::string text = registry.render();
  const int zeros = threads * ((per_thread + 2) / 3);
  EXPECT_NE(text.find("sizes_bucket{le=\"1\"} " + std::to_string(zeros) + "\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sizes_bucket{le=\"10\"} " + std::to_string(threads * per_thread) + "\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace herald
