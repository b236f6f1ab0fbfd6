// herald_http_bench: `herald serve` under load over loopback, side by side with the event store's
// own append rate in the same run, so the ratio shows what HTTP costs. It starts the real server
// as a child process (one per repetition, each on a fresh SQLite file), drives it with an
// asynchronous Asio client, and prints a table of medians with ratios and PASS/MISS for each
// target of the HTTP API (informational: the exit code is 0 unless the run itself failed).
//
// Scenarios (docs/performance.md, "HTTP", explains how to read them):
//   (1) single: C keep-alive connections, each POSTing one event (~300 bytes, a fresh event_id per
//       request) and waiting for its response, for a fixed time; requests/s and latency. Baseline:
//       EventStore::append_async with C appends in flight, the store work behind such a POST.
//   (2) batch: B connections POSTing arrays of 100 events; events/s. Baseline:
//       EventStore::append_batch_async of 100 with B batches in flight.
//   (3) fan-out: N Server-Sent Events clients (raw sockets, chunked bodies parsed here), all live
//       before ingest starts; then events POSTed one per request at a fixed rate for a fixed time.
//       Every client must receive every event once, in position order. Latency is from the
//       arrival of an event's POST response to a client's receipt of that event, over every
//       (client, event) pair; the server's RSS is sampled every 100 ms.
//
// Files go to a fresh directory under $HERALD_BENCH_DIR, else the system's temporary directory
// unless that is a tmpfs (then the directory above this binary, the build directory): fsync on a
// tmpfs costs nothing and would flatter every durable write. It is removed at the end.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <expected>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/event.hpp"
#include "herald/event_id.hpp"
#include "herald/event_store.hpp"
#include "herald/json.hpp"
#include "platform_events.hpp"
#include "serve_harness.hpp"

// Events are built with designated initializers that leave members out, as herald's own code
// does; g++ 12 warns about that under -Wextra (herald_warnings turns it off for the library).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace herald_bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

/// What the command line chose.
struct Settings {
  fs::path herald;
  std::vector<std::string> scenarios{"single", "batch", "fanout"};
  int repetitions = 5;
  double seconds = 5;
  double warmup_seconds = 1;
  std::vector<std::size_t> single_connections{128};
  std::size_t batch_connections = 4;
  std::size_t batch_size = 100;
  std::size_t fanout_clients = 1000;
  double fanout_rate = 1000;
  double fanout_seconds = 60;
  std::size_t fanout_posters = 16;
  unsigned fanout_threads = 1;
  unsigned server_threads = 0;
  bool keep_files = false;
};

// ---------------------------------------------------------------------------------------------
// Statistics

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

/// Latencies from -1 s to +30 s in 10 µs bins: the fan-out has 60 million (client, event) pairs,
/// too many to keep one by one. Receipt before the POST's response (the stream can beat the
/// response to the client) is a negative latency and is counted as such.
class LatencyHistogram {
 public:
  LatencyHistogram() : bins_(static_cast<std::size_t>((high_ns - low_ns) / bin_ns) + 1) {}

  void add(std::int64_t ns) {
    ++count_;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
    if (ns < 0) ++negative_;
    const std::int64_t clamped = std::clamp(ns, low_ns, high_ns);
    ++bins_[static_cast<std::size_t>((clamped - low_ns) / bin_ns)];
  }

  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < bins_.size(); ++i) bins_[i] += other.bins_[i];
    count_ += other.count_;
    negative_ += other.negative_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  /// The upper edge of the bin holding the q-th value, in nanoseconds.
  std::int64_t percentile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bins_.size(); ++i) {
      seen += bins_[i];
      if (seen >= rank) {
        return std::min(max_, low_ns + static_cast<std::int64_t>(i + 1) * bin_ns);
      }
    }
    return max_;
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t negative() const { return negative_; }
  std::int64_t min() const { return count_ ? min_ : 0; }
  std::int64_t max() const { return count_ ? max_ : 0; }

 private:
  static constexpr std::int64_t bin_ns = 10'000;
  static constexpr std::int64_t low_ns = -1'000'000'000;
  static constexpr std::int64_t high_ns = 30'000'000'000;

  std::vector<std::uint32_t> bins_;
  std::uint64_t count_ = 0;
  std::uint64_t negative_ = 0;
  std::int64_t min_ = INT64_MAX;
  std::int64_t max_ = INT64_MIN;
};

// ---------------------------------------------------------------------------------------------
// The server, a child process

/// `herald serve` on a fresh SQLite file in its own directory, with a token made beforehand.
class ServerProcess {
 public:
  ServerProcess(const Settings& settings, const fs::path& directory,
                const std::vector<std::string>& extra_flags)
      : token_(
            create_token(settings.herald, {"--db", database(directory)}, directory / "serve.log")),
        process_(serve_argv(settings, database(directory), extra_flags), directory / "serve.log") {}

  const std::string& token() const { return token_; }
  std::uint16_t port() const { return process_.port(); }
  pid_t pid() const { return process_.pid(); }
  tcp::endpoint endpoint() const { return process_.endpoint(); }

  /// SIGTERM, then waits (SIGKILL after 60 s); returns a description of how it ended.
  std::string stop() { return process_.stop(); }

 private:
  static std::string database(const fs::path& directory) {
    fs::create_directories(directory);
    return (directory / "herald.db").string();
  }

  static std::vector<std::string> serve_argv(const Settings& settings, const std::string& db,
                                             const std::vector<std::string>& extra_flags) {
    std::vector<std::string> argv{
        settings.herald.string(), "serve", "--db",          db, "--listen", "127.0.0.1:0",
        "--rate-limit",           "0",     "--no-consumers"};
    if (settings.server_threads > 0) {
      argv.insert(argv.end(), {"--threads", std::to_string(settings.server_threads)});
    }
    argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
    return argv;
  }

  std::string token_;
  ServeProcess process_;
};

/// Samples a process's VmRSS every 100 ms on its own thread and keeps the peak.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid)
      : thread_([this, pid] {
          std::unique_lock lock(mutex_);
          while (!stopping_) {
            peak_kib_ = std::max(peak_kib_, status_kib(pid, "VmRSS"));
            wake_.wait_for(lock, std::chrono::milliseconds(100));
          }
        }) {}
  ~RssSampler() { stop(); }
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  long peak_kib() {
    std::lock_guard lock(mutex_);
    return peak_kib_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  long peak_kib_ = 0;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// One repetition's figures

struct Measurement {
  /// Requests (single) or events (batch) per second within the measuring window.
  double rate = 0;
  /// Latency of each request (or append) completed within the window, in microseconds.
  std::vector<float> latency_us;
  std::size_t failures = 0;
  std::string first_failure;
  /// The server's CPU time per request over the whole repetition (warm-up included), in µs.
  double server_cpu_us = 0;
};

/// Latency percentiles of a repetition, sorted.
struct LatencySummary {
  double p50_us = 0;
  double p99_us = 0;
};

LatencySummary summarize(std::vector<float>& latencies) {
  std::sort(latencies.begin(), latencies.end());
  return {percentile(latencies, 0.50), percentile(latencies, 0.99)};
}

/// When a repetition counts: completions between `begin` and `end`.
struct Window {
  Clock::time_point start;
  Clock::time_point begin;
  Clock::time_point end;

  static Window after_warmup(const Settings& settings) {
    const auto start = Clock::now();
    const auto begin = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(settings.warmup_seconds));
    const auto end = begin + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(settings.seconds));
    return {start, begin, end};
  }
  bool counts(Clock::time_point t) const { return t >= begin && t < end; }
  double seconds() const { return seconds_between(begin, end); }
};

// ---------------------------------------------------------------------------------------------
// In-process baselines: the store behind the server, driven from this process

std::unique_ptr<herald::EventStore> open_fresh_store(const fs::path& file) {
  fs::create_directories(file.parent_path());
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
  auto store = herald::open_store(
      {.location = file.string(), .catalog = &herald::domain::platform_catalog()});
  if (!store) die("opening " + file.string() + ": " + store.error().message);
  return std::move(*store);
}

/// Keeps `in_flight` asynchronous appends of `per_call` events going (one event through
/// append_async when `per_call` is 1, else append_batch_async), as the server does with that many
/// connections; events/s of appends completed within the window. Each callback queues the next
/// append itself (the store allows it), so no thread wake-up stands between two appends: this is
/// the store's rate with that many in flight, the ceiling for the server.
class InProcessRun {
 public:
  InProcessRun(const Settings& settings, const fs::path& file, std::size_t in_flight,
               std::size_t per_call)
      : store_(open_fresh_store(file)),
        in_flight_(in_flight),
        per_call_(per_call),
        window_(Window::after_warmup(settings)) {}

  Measurement run() {
    {
      std::lock_guard lock(mutex_);
      outstanding_ = in_flight_;
    }
    for (std::size_t i = 0; i < in_flight_; ++i) submit();
    std::unique_lock lock(mutex_);
    drained_.wait(lock, [&] { return outstanding_ == 0; });
    result_.rate = static_cast<double>(completed_) / window_.seconds();
    return std::move(result_);
  }

 private:
  // Runs on the caller's thread at first, then on the store's callback thread.
  void submit() {
    const std::int64_t first = next_.fetch_add(static_cast<std::int64_t>(per_call_));
    const auto sent = Clock::now();
    if (per_call_ == 1) {
      store_->append_async(make_event(first),
                           [this, sent](std::expected<herald::AppendResult, herald::Error> r) {
                             done(sent, r ? nullptr : &r.error());
                           });
      return;
    }
    std::vector<herald::EventPtr> events;
    events.reserve(per_call_);
    for (std::size_t i = 0; i < per_call_; ++i) {
      events.push_back(make_event(first + static_cast<std::int64_t>(i)));
    }
    store_->append_batch_async(
        std::move(events),
        [this, sent](std::expected<std::vector<herald::AppendResult>, herald::Error> r) {
          done(sent, r ? nullptr : &r.error());
        });
  }

  void done(Clock::time_point sent, const herald::Error* error) {
    const auto now = Clock::now();
    {
      std::lock_guard lock(mutex_);
      if (error != nullptr) {
        if (result_.failures++ == 0) result_.first_failure = error->message;
      } else if (window_.counts(now)) {
        completed_ += per_call_;
        result_.latency_us.push_back(
            static_cast<float>(std::chrono::duration<double, std::micro>(now - sent).count()));
      }
      if (now >= window_.end || error != nullptr) {
        if (--outstanding_ == 0) drained_.notify_all();
        return;
      }
    }
    submit();
  }

  std::unique_ptr<herald::EventStore> store_;
  std::size_t in_flight_;
  std::size_t per_call_;
  Window window_;
  std::atomic<std::int64_t> next_{0};
  std::mutex mutex_;
  std::condition_variable drained_;
  std::size_t outstanding_ = 0;
  std::size_t completed_ = 0;
  Measurement result_;
};

Measurement in_process(const Settings& settings, const fs::path& file, std::size_t in_flight,
                       std::size_t per_call) {
  return InProcessRun(settings, file, in_flight, per_call).run();
}

// ---------------------------------------------------------------------------------------------
// HTTP ingest: keep-alive connections, each with one request in flight, on one Asio thread

class IngestRun;

class IngestConnection : public std::enable_shared_from_this<IngestConnection> {
 public:
  IngestConnection(net::io_context& io, IngestRun& run, std::vector<RequestText> requests)
      : run_(run), socket_(io), requests_(std::move(requests)) {}

  void start(const tcp::endpoint& endpoint) {
    socket_.async_connect(
        endpoint, beast::bind_front_handler(&IngestConnection::on_connect, shared_from_this()));
  }
  void close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void on_connect(beast::error_code ec);
  void do_write();
  void on_write(beast::error_code ec, std::size_t);
  void on_read(beast::error_code ec, std::size_t);

  IngestRun& run_;
  tcp::socket socket_;
  std::vector<RequestText> requests_;
  std::size_t next_ = 0;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  Clock::time_point sent_;
};

/// One repetition of (1) or (2) against a running server.
class IngestRun {
 public:
  IngestRun(const Settings& settings, const ServerProcess& server, std::size_t connections,
            std::size_t events_per_request)
      : settings_(settings),
        server_(server),
        connections_(connections),
        events_per_request_(events_per_request),
        stop_timer_(io_),
        abort_timer_(io_) {}

  Measurement run() {
    // Each connection sends its own copies, so no buffer is rewritten while a write reads it.
    for (std::size_t c = 0; c < connections_; ++c) {
      std::vector<RequestText> requests;
      const std::size_t variants = events_per_request_ == 1 ? 4 : 1;
      for (std::size_t v = 0; v < variants; ++v) {
        requests.push_back(make_post(static_cast<std::int64_t>(c * variants + v),
                                     events_per_request_, events_per_request_ > 1, server_.token(),
                                     server_.port()));
      }
      open_.push_back(std::make_shared<IngestConnection>(io_, *this, std::move(requests)));
    }
    const ProcessSample cpu_before = sample_process(server_.pid());
    window_ = Window::after_warmup(settings_);
    for (const auto& connection : open_) connection->start(server_.endpoint());
    stop_timer_.expires_at(window_.end);
    stop_timer_.async_wait([this](beast::error_code) { stopping_ = true; });
    // A server that stops answering must not hang the run.
    abort_timer_.expires_at(window_.end + std::chrono::seconds(30));
    abort_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      fail("no response within 30 s of the end; closing every connection");
      for (const auto& connection : open_) connection->close();
    });
    io_.run();
    const ProcessSample cpu_after = sample_process(server_.pid());
    result_.rate = static_cast<double>(in_window_ * events_per_request_) / window_.seconds();
    if (total_requests_ > 0) {
      result_.server_cpu_us = (cpu_after.cpu_seconds - cpu_before.cpu_seconds) * 1e6 /
                              static_cast<double>(total_requests_);
    }
    return std::move(result_);
  }

  bool stopping() const { return stopping_; }

  void on_response(Clock::time_point sent, Clock::time_point received, unsigned status,
                   std::string_view body) {
    if (status != 201) {
      fail(fmt::format("status {}: {}", status, body.substr(0, 300)));
      return;
    }
    ++total_requests_;
    if (window_.counts(received)) {
      ++in_window_;
      result_.latency_us.push_back(
          static_cast<float>(std::chrono::duration<double, std::micro>(received - sent).count()));
    }
  }

  void fail(std::string what) {
    if (result_.failures++ == 0) result_.first_failure = std::move(what);
  }

  /// Called when a connection is done; the last one cancels the guard timers so run() returns.
  void closed() {
    if (++closed_ == open_.size()) {
      stop_timer_.cancel();
      abort_timer_.cancel();
    }
  }

 private:
  const Settings& settings_;
  const ServerProcess& server_;
  std::size_t connections_;
  std::size_t events_per_request_;
  net::io_context io_{1};
  net::steady_timer stop_timer_;
  net::steady_timer abort_timer_;
  std::vector<std::shared_ptr<IngestConnection>> open_;
  Window window_{};
  bool stopping_ = false;
  std::size_t in_window_ = 0;
  std::size_t total_requests_ = 0;
  std::size_t closed_ = 0;
  Measurement result_;
};

void IngestConnection::on_connect(beast::error_code ec) {
  if (ec) {
    run_.fail("connecting: " + ec.message());
    return run_.closed();
  }
  socket_.set_option(tcp::no_delay(true));
  do_write();
}

void IngestConnection::do_write() {
  if (run_.stopping()) {
    close();
    return run_.closed();
  }
  RequestText& request = requests_[next_++ % requests_.size()];
  request.refresh_ids();
  sent_ = Clock::now();
  net::async_write(socket_, net::buffer(request.text),
                   beast::bind_front_handler(&IngestConnection::on_write, shared_from_this()));
}

void IngestConnection::on_write(beast::error_code ec, std::size_t) {
  if (ec) {
    run_.fail("sending a request: " + ec.message());
    return run_.closed();
  }
  parser_.emplace();
  parser_->body_limit(std::size_t{1} << 20);
  bhttp::async_read(socket_, buffer_, *parser_,
                    beast::bind_front_handler(&IngestConnection::on_read, shared_from_this()));
}

void IngestConnection::on_read(beast::error_code ec, std::size_t) {
  const auto received = Clock::now();
  if (ec) {
    run_.fail("reading a response: " + ec.message());
    return run_.closed();
  }
  const auto& response = parser_->get();
  run_.on_response(sent_, received, response.result_int(), response.body());
  if (!response.keep_alive()) {
    run_.fail("the server closed a keep-alive connection");
    close();
    return run_.closed();
  }
  do_write();
}

// ---------------------------------------------------------------------------------------------
// Fan-out: SSE clients on raw sockets, paced posters

/// When each position's POST response arrived (nanoseconds after `origin`, 0: not yet), written
/// by the poster thread and read by the client threads.
class ResponseTable {
 public:
  ResponseTable(std::int64_t base, std::size_t events, Clock::time_point origin)
      : base_(base), origin_(origin), arrived_(events) {}

  enum class Lookup : std::uint8_t { known, pending, foreign };

  bool record(std::int64_t position, Clock::time_point arrived) {
    const std::int64_t index = position - base_ - 1;
    if (index < 0 || index >= static_cast<std::int64_t>(arrived_.size())) return false;
    arrived_[static_cast<std::size_t>(index)].store((arrived - origin_).count() + 1,
                                                    std::memory_order_release);
    return true;
  }

  Lookup find(std::int64_t position, std::int64_t& ns) const {
    const std::int64_t index = position - base_ - 1;
    if (index < 0 || index >= static_cast<std::int64_t>(arrived_.size())) return Lookup::foreign;
    const std::int64_t value =
        arrived_[static_cast<std::size_t>(index)].load(std::memory_order_acquire);
    if (value == 0) return Lookup::pending;
    ns = value - 1;
    return Lookup::known;
  }

  Clock::time_point origin() const { return origin_; }

 private:
  std::int64_t base_;
  Clock::time_point origin_;
  std::vector<std::atomic<std::int64_t>> arrived_;
};

/// What the clients of one thread share: the table, the histogram, counters.
struct FanoutShard {
  net::io_context io{1};
  std::atomic<ResponseTable*> table{nullptr};
  std::atomic<std::size_t>* live = nullptr;
  std::atomic<std::size_t>* complete = nullptr;
  std::size_t expected_events = 0;
  LatencyHistogram latency;
};

class SseClient : public std::enable_shared_from_this<SseClient> {
 public:
  SseClient(FanoutShard& shard, std::string request)
      : shard_(shard), socket_(shard.io), request_(std::move(request)), buffer_(16 * 1024) {}

  void start(const tcp::endpoint& endpoint) {
    endpoint_ = endpoint;
    socket_.async_connect(endpoint,
                          beast::bind_front_handler(&SseClient::on_connect, shared_from_this()));
  }

  /// Latencies of receipts whose response time is now known go to the histogram; at the end
  /// (`final`) whatever is left is a position nobody POSTed.
  void settle(bool final) {
    ResponseTable* table = shard_.table.load(std::memory_order_acquire);
    while (!pending_.empty() && table != nullptr) {
      const auto [position, received] = pending_.front();
      std::int64_t arrived_ns = 0;
      const auto found = table->find(position, arrived_ns);
      if (found == ResponseTable::Lookup::pending && !final) break;
      if (found == ResponseTable::Lookup::known) {
        shard_.latency.add((received - table->origin()).count() - arrived_ns);
      } else {
        ++unexpected_;
      }
      pending_.pop_front();
    }
    if (final) unexpected_ += pending_.size();
  }

  std::int64_t live_after() const { return live_after_; }
  std::size_t received() const { return received_; }
  std::size_t out_of_order() const { return out_of_order_; }
  std::size_t unexpected() const { return unexpected_; }
  bool ended_cleanly() const { return reader_.ended_cleanly(); }
  const std::string& error() const { return error_; }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) {
      // A full accept queue refuses some of a thousand simultaneous connects: try again.
      if (++connect_attempts_ < 20) {
        socket_.close(ec);
        socket_ = tcp::socket(shard_.io);
        return start(endpoint_);
      }
      return fail("connecting: " + ec.message());
    }
    net::async_write(socket_, net::buffer(request_),
                     beast::bind_front_handler(&SseClient::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return fail("sending the request: " + ec.message());
    do_read();
  }

  void do_read() {
    socket_.async_read_some(net::buffer(buffer_),
                            beast::bind_front_handler(&SseClient::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t size) {
    const auto now = Clock::now();
    if (ec) {
      if (ec != net::error::eof || !reader_.ended_cleanly()) {
        fail(ec == net::error::eof ? "the server closed the stream without its final chunk"
                                   : "reading: " + ec.message());
      }
      return;
    }
    if (!reader_.consume(buffer_.data(), size,
                         [&](std::string_view line) { on_line(line, now); })) {
      fail(reader_.error());
    }
    settle(false);
    if (error_.empty()) do_read();
  }

  void fail(std::string what) {
    if (error_.empty()) error_ = std::move(what);
    beast::error_code ignored;
    socket_.close(ignored);
  }

  void on_line(std::string_view line, Clock::time_point now) {
    if (const std::int64_t position = sse_id(line); position >= 0) {
      if (position <= last_position_) ++out_of_order_;
      last_position_ = std::max(last_position_, position);
      pending_.emplace_back(position, now);
      if (++received_ == shard_.expected_events) shard_.complete->fetch_add(1);
      return;
    }
    if (const std::int64_t live = sse_live_after(line); live >= 0 && live_after_ < 0) {
      live_after_ = live;
      last_position_ = live_after_;
      shard_.live->fetch_add(1);
    }
  }

  FanoutShard& shard_;
  tcp::socket socket_;
  tcp::endpoint endpoint_;
  int connect_attempts_ = 0;
  std::string request_;
  std::vector<char> buffer_;
  SseStreamReader reader_;
  std::int64_t live_after_ = -1;
  std::int64_t last_position_ = -1;
  std::size_t received_ = 0;
  std::size_t out_of_order_ = 0;
  std::size_t unexpected_ = 0;
  std::deque<std::pair<std::int64_t, Clock::time_point>> pending_;
  std::string error_;
};

/// POSTs `total` single events at a fixed rate over a few keep-alive connections (event k is due
/// `k / rate` seconds after the start; a connection still waiting for a response sends late).
class PacedPosting {
 public:
  PacedPosting(const ServerProcess& server, ResponseTable& table, std::size_t total, double rate,
               std::size_t connections)
      : server_(server), table_(table), total_(total), interval_(1.0 / rate) {
    for (std::size_t c = 0; c < connections; ++c) {
      std::vector<RequestText> requests;
      for (std::size_t v = 0; v < 4; ++v) {
        requests.push_back(make_post(static_cast<std::int64_t>(c * 4 + v), 1, false,
                                     server_.token(), server_.port()));
      }
      posters_.push_back(std::make_shared<Poster>(*this, std::move(requests)));
    }
  }

  void run() {
    start_ = Clock::now();
    for (const auto& poster : posters_) poster->start(server_.endpoint());
    io_.run();
  }

  std::size_t sent() const { return next_; }
  std::size_t answered() const { return answered_; }
  std::size_t failures() const { return failures_; }
  const std::string& first_failure() const { return first_failure_; }
  Clock::time_point start() const { return start_; }
  Clock::time_point last_answer() const { return last_answer_; }
  std::vector<float>& latency_us() { return latency_us_; }

 private:
  class Poster : public std::enable_shared_from_this<Poster> {
   public:
    Poster(PacedPosting& posting, std::vector<RequestText> requests)
        : posting_(posting),
          socket_(posting.io_),
          timer_(posting.io_),
          requests_(std::move(requests)) {}

    void start(const tcp::endpoint& endpoint) {
      socket_.async_connect(endpoint,
                            beast::bind_front_handler(&Poster::on_connect, shared_from_this()));
    }

   private:
    void on_connect(beast::error_code ec) {
      if (ec) return posting_.fail("connecting: " + ec.message());
      socket_.set_option(tcp::no_delay(true));
      wait_turn();
    }

    void wait_turn() {
      if (posting_.next_ >= posting_.total_) {
        beast::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        return;
      }
      const std::size_t index = posting_.next_++;
      timer_.expires_at(posting_.start_ +
                        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                            static_cast<double>(index) * posting_.interval_)));
      timer_.async_wait(beast::bind_front_handler(&Poster::on_turn, shared_from_this()));
    }

    void on_turn(beast::error_code) {
      RequestText& request = requests_[next_++ % requests_.size()];
      request.refresh_ids();
      sent_ = Clock::now();
      net::async_write(socket_, net::buffer(request.text),
                       beast::bind_front_handler(&Poster::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t) {
      if (ec) return posting_.fail("sending: " + ec.message());
      parser_.emplace();
      bhttp::async_read(socket_, buffer_, *parser_,
                        beast::bind_front_handler(&Poster::on_read, shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t) {
      const auto now = Clock::now();
      if (ec) return posting_.fail("reading a response: " + ec.message());
      const auto& response = parser_->get();
      if (response.result_int() != 201) {
        return posting_.fail(
            fmt::format("status {}: {}", response.result_int(), response.body().substr(0, 300)));
      }
      constexpr std::string_view key = "\"position\":";
      const std::size_t at = response.body().find(key);
      if (at == std::string::npos) return posting_.fail("no position in " + response.body());
      const std::int64_t position =
          std::strtoll(response.body().c_str() + at + key.size(), nullptr, 10);
      if (!posting_.table_.record(position, now)) {
        return posting_.fail(fmt::format("position {} is outside the expected range", position));
      }
      ++posting_.answered_;
      posting_.last_answer_ = now;
      posting_.latency_us_.push_back(
          static_cast<float>(std::chrono::duration<double, std::micro>(now - sent_).count()));
      wait_turn();
    }

    PacedPosting& posting_;
    tcp::socket socket_;
    net::steady_timer timer_;
    std::vector<RequestText> requests_;
    std::size_t next_ = 0;
    beast::flat_buffer buffer_;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
    Clock::time_point sent_;
  };

  void fail(std::string what) {
    if (failures_++ == 0) first_failure_ = std::move(what);
  }

  const ServerProcess& server_;
  ResponseTable& table_;
  std::size_t total_;
  double interval_;
  net::io_context io_{1};
  std::vector<std::shared_ptr<Poster>> posters_;
  Clock::time_point start_;
  Clock::time_point last_answer_;
  std::size_t next_ = 0;
  std::size_t answered_ = 0;
  std::size_t failures_ = 0;
  std::string first_failure_;
  std::vector<float> latency_us_;
};

struct FanoutResult {
  std::size_t clients = 0;
  std::size_t clients_live = 0;
  double connect_seconds = 0;
  std::size_t events = 0;
  std::size_t events_answered = 0;
  double ingest_seconds = 0;
  double post_p50_us = 0;
  double post_p99_us = 0;
  std::size_t post_failures = 0;
  std::string post_first_failure;
  std::size_t clients_complete = 0;
  std::size_t out_of_order = 0;
  std::size_t unexpected = 0;
  std::size_t missing = 0;
  std::size_t client_errors = 0;
  std::string first_client_error;
  std::size_t ended_cleanly = 0;
  double delivery_wait_seconds = 0;
  LatencyHistogram latency;
  long rss_idle_kib = 0;
  long rss_peak_kib = 0;
  long rss_hwm_kib = 0;
  double server_cpu_seconds = 0;
  double client_cpu_seconds = 0;
  std::string server_exit;
};

FanoutResult fanout(const Settings& settings, const fs::path& directory) {
  FanoutResult result;
  result.clients = settings.fanout_clients;
  result.events = static_cast<std::size_t>(settings.fanout_rate * settings.fanout_seconds);
  ServerProcess server(settings, directory,
                       {"--max-connections",
                        std::to_string(settings.fanout_clients + settings.fanout_posters + 100)});
  RssSampler rss(server.pid());

  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> complete{0};
  const unsigned threads = std::max(1U, settings.fanout_threads);
  std::vector<std::unique_ptr<FanoutShard>> shards;
  std::vector<std::vector<std::shared_ptr<SseClient>>> clients(threads);
  const std::string request = fmt::format(
      "GET /api/v1/events/stream?access_token={} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n"
      "Accept: text/event-stream\r\n\r\n",
      server.token(), server.port());
  for (unsigned t = 0; t < threads; ++t) {
    auto shard = std::make_unique<FanoutShard>();
    shard->live = &live;
    shard->complete = &complete;
    shard->expected_events = result.events;
    shards.push_back(std::move(shard));
  }
  const auto connect_start = Clock::now();
  for (std::size_t i = 0; i < settings.fanout_clients; ++i) {
    auto client = std::make_shared<SseClient>(*shards[i % threads], request);
    client->start(server.endpoint());
    clients[i % threads].push_back(std::move(client));
  }
  std::vector<std::thread> runners;
  for (auto& shard : shards) runners.emplace_back([&io = shard->io] { io.run(); });

  const auto live_deadline = Clock::now() + std::chrono::seconds(120);
  while (live.load() < settings.fanout_clients && Clock::now() < live_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  result.connect_seconds = seconds_between(connect_start, Clock::now());
  result.clients_live = live.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  result.rss_idle_kib = status_kib(server.pid(), "VmRSS");

  if (result.clients_live == settings.fanout_clients) {
    // Every client is live after the same head: nothing was appended yet.
    std::int64_t base = 0;
    for (const auto& group : clients) {
      for (const auto& client : group) base = std::max(base, client->live_after());
    }
    ResponseTable table(base, result.events, Clock::now());
    for (auto& shard : shards) shard->table.store(&table, std::memory_order_release);

    const ProcessSample cpu_before = sample_process(server.pid());
    const ProcessSample own_before = sample_process(getpid());
    PacedPosting posting(server, table, result.events, settings.fanout_rate,
                         settings.fanout_posters);
    posting.run();
    result.events_answered = posting.answered();
    result.ingest_seconds = seconds_between(posting.start(), posting.last_answer());
    result.post_failures = posting.failures();
    result.post_first_failure = posting.first_failure();
    const LatencySummary post = summarize(posting.latency_us());
    result.post_p50_us = post.p50_us;
    result.post_p99_us = post.p99_us;

    const auto wait_start = Clock::now();
    const auto delivery_deadline = wait_start + std::chrono::seconds(60);
    while (complete.load() < settings.fanout_clients && Clock::now() < delivery_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    result.delivery_wait_seconds = seconds_between(wait_start, Clock::now());
    result.server_cpu_seconds = sample_process(server.pid()).cpu_seconds - cpu_before.cpu_seconds;
    result.client_cpu_seconds = sample_process(getpid()).cpu_seconds - own_before.cpu_seconds;
    result.rss_hwm_kib = status_kib(server.pid(), "VmHWM");
    rss.stop();
    result.rss_peak_kib = rss.peak_kib();
    // A clean stop ends each stream with its final chunk; the clients then see end of file.
    result.server_exit = server.stop();
    for (auto& runner : runners) runner.join();
    for (unsigned t = 0; t < threads; ++t) {
      for (const auto& client : clients[t]) {
        client->settle(true);
        result.clients_complete += client->received() == result.events;
        result.missing +=
            result.events > client->received() ? result.events - client->received() : 0;
        result.out_of_order += client->out_of_order();
        result.unexpected += client->unexpected();
        result.ended_cleanly += client->ended_cleanly();
        if (!client->error().empty() && result.client_errors++ == 0) {
          result.first_client_error = client->error();
        }
      }
      result.latency.merge(shards[t]->latency);
    }
    for (auto& shard : shards) shard->table.store(nullptr);
    return result;
  }
  rss.stop();
  result.rss_peak_kib = rss.peak_kib();
  result.server_exit = server.stop();
  for (auto& runner : runners) runner.join();
  for (const auto& group : clients) {
    for (const auto& client : group) {
      if (!client->error().empty() && result.client_errors++ == 0) {
        result.first_client_error = client->error();
      }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

std::string format_rate(double value, const char* unit) {
  if (value >= 1e6) return fmt::format("{:.2f} M {}", value / 1e6, unit);
  if (value >= 1e3) return fmt::format("{:.1f} k {}", value / 1e3, unit);
  return fmt::format("{:.0f} {}", value, unit);
}

/// The repetitions of one implementation of one scenario.
struct Row {
  std::string scenario;
  std::string implementation;
  const char* unit = "events/s";
  std::vector<double> rates;
  std::vector<double> p50_us;
  std::vector<double> p99_us;
  std::vector<double> server_cpu_us;
  std::size_t failures = 0;
  std::string first_failure;
  /// The row this one is divided by, or -1.
  int baseline = -1;

  void add(Measurement& m, bool from_server) {
    rates.push_back(m.rate);
    const LatencySummary latency = summarize(m.latency_us);
    p50_us.push_back(latency.p50_us);
    p99_us.push_back(latency.p99_us);
    if (from_server) server_cpu_us.push_back(m.server_cpu_us);
    if (m.failures > 0 && failures == 0) first_failure = m.first_failure;
    failures += m.failures;
  }
};

void print_rows(const std::vector<Row>& rows) {
  std::printf("\n%-36s %-40s %18s %7s %4s %9s %9s %12s  %s\n", "scenario", "implementation",
              "median", "spread", "reps", "p50", "p99", "server CPU", "ratio");
  std::string previous;
  for (const Row& row : rows) {
    if (row.rates.empty()) continue;
    const double value = median(row.rates);
    const auto [low, high] = std::minmax_element(row.rates.begin(), row.rates.end());
    const double spread = value > 0 ? (*high - *low) / value * 100 : 0;
    std::string ratio = "-";
    if (row.baseline >= 0 && !rows[static_cast<std::size_t>(row.baseline)].rates.empty()) {
      const Row& base = rows[static_cast<std::size_t>(row.baseline)];
      ratio = fmt::format("{:.2f}x {}", value / median(base.rates), base.implementation);
    }
    const std::string cpu = row.server_cpu_us.empty()
                                ? std::string("-")
                                : format_us(median(row.server_cpu_us)) + "/req";
    if (!previous.empty() && row.scenario != previous) std::printf("\n");
    std::printf("%-36s %-40s %18s %6.1f%% %4zu %9s %9s %12s  %s\n",
                row.scenario != previous ? row.scenario.c_str() : "", row.implementation.c_str(),
                format_rate(value, row.unit).c_str(), spread, row.rates.size(),
                format_us(median(row.p50_us)).c_str(), format_us(median(row.p99_us)).c_str(),
                cpu.c_str(), ratio.c_str());
    if (row.failures > 0) {
      std::printf("%-36s   %zu failures; first: %s\n", "", row.failures, row.first_failure.c_str());
    }
    previous = row.scenario;
  }
}

void print_verdict(bool pass, const std::string& target, const std::string& measured) {
  std::printf("  %-4s %-62s measured %s\n", pass ? "PASS" : "MISS", target.c_str(),
              measured.c_str());
}

double ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

void print_fanout(const FanoutResult& f, const Settings& settings) {
  std::printf("\n(3) fan-out: %zu SSE clients, %zu events POSTed at %.0f/s over %zu connections\n",
              f.clients, f.events, settings.fanout_rate, settings.fanout_posters);
  std::printf("  clients live                %zu of %zu after %.2f s\n", f.clients_live, f.clients,
              f.connect_seconds);
  if (f.clients_live != f.clients) return;
  std::printf(
      "  POSTs answered              %zu of %zu in %.2f s (%.0f/s), p50 %s, p99 %s\n",
      f.events_answered, f.events, f.ingest_seconds,
      f.ingest_seconds > 0 ? static_cast<double>(f.events_answered) / f.ingest_seconds : 0.0,
      format_us(f.post_p50_us).c_str(), format_us(f.post_p99_us).c_str());
  if (f.post_failures > 0) {
    std::printf("  POST failures               %zu; first: %s\n", f.post_failures,
                f.post_first_failure.c_str());
  }
  std::printf("  clients with every event    %zu of %zu (%.2f s after the last response)\n",
              f.clients_complete, f.clients, f.delivery_wait_seconds);
  std::printf("  missing / out of order / unknown  %zu / %zu / %zu\n", f.missing, f.out_of_order,
              f.unexpected);
  std::printf(
      "  delivery latency            p50 %.2f ms, p99 %.2f ms, max %.2f ms over %llu "
      "(client, event) pairs; %.1f%% arrived before the POST's response (min %.2f ms)\n",
      ms(f.latency.percentile(0.50)), ms(f.latency.percentile(0.99)), ms(f.latency.max()),
      static_cast<unsigned long long>(f.latency.count()),
      f.latency.count() ? 100.0 * static_cast<double>(f.latency.negative()) /
                              static_cast<double>(f.latency.count())
                        : 0.0,
      ms(f.latency.min()));
  std::printf(
      "  server RSS                  %.1f MiB with the clients idle, peak %.1f MiB "
      "(sampled every 100 ms), VmHWM %.1f MiB\n",
      f.rss_idle_kib / 1024.0, f.rss_peak_kib / 1024.0, f.rss_hwm_kib / 1024.0);
  const double busy = std::max(1e-9, f.ingest_seconds + f.delivery_wait_seconds);
  std::printf(
      "  CPU                         server %.1f s, this driver %.1f s over %.1f s of "
      "ingest and delivery (%.0f%% and %.0f%% of one core)\n",
      f.server_cpu_seconds, f.client_cpu_seconds, busy, 100 * f.server_cpu_seconds / busy,
      100 * f.client_cpu_seconds / busy);
  std::printf("  streams ended cleanly       %zu of %zu; server %s\n", f.ended_cleanly, f.clients,
              f.server_exit.c_str());
  if (f.client_errors > 0) {
    std::printf("  client errors               %zu; first: %s\n", f.client_errors,
                f.first_client_error.c_str());
  }
}

bool wants(const Settings& settings, std::string_view scenario) {
  return std::find(settings.scenarios.begin(), settings.scenarios.end(), scenario) !=
         settings.scenarios.end();
}

void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace herald_bench

int main(int argc, char** argv) {
  using namespace herald_bench;
  Settings settings;
  settings.herald = own_directory().parent_path() / "herald";
  CLI::App app(
      "herald_http_bench: herald serve under load, beside the store's own append rate "
      "(docs/performance.md, \"HTTP\")");
  app.add_option("--herald", settings.herald, "The herald executable to serve with")
      ->capture_default_str();
  app.add_option("--scenarios", settings.scenarios, "Which to run: single, batch, fanout")
      ->delimiter(',')
      ->check(CLI::IsMember({"single", "batch", "fanout"}))
      ->capture_default_str();
  app.add_option("--repetitions", settings.repetitions, "Repetitions of (1) and (2)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--seconds", settings.seconds, "Measured seconds per repetition of (1) and (2)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--warmup", settings.warmup_seconds, "Seconds before measuring starts")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--connections", settings.single_connections,
                 "Connections of (1), several comma-separated for a sweep")
      ->delimiter(',')
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  app.add_option("--batch-connections", settings.batch_connections, "Connections of (2)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  app.add_option("--batch-size", settings.batch_size, "Events per request in (2)")
      ->check(CLI::Range(std::size_t{2}, std::size_t{1000}))
      ->capture_default_str();
  app.add_option("--clients", settings.fanout_clients, "SSE clients of (3)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}))
      ->capture_default_str();
  app.add_option("--rate", settings.fanout_rate, "Events per second POSTed in (3)")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--fanout-seconds", settings.fanout_seconds, "How long (3) POSTs")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--posters", settings.fanout_posters, "Connections POSTing in (3)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}))
      ->capture_default_str();
  app.add_option("--client-threads", settings.fanout_threads, "Threads reading the SSE clients")
      ->check(CLI::Range(1U, 64U))
      ->capture_default_str();
  app.add_option("--server-threads", settings.server_threads,
                 "herald serve --threads (0: the server's default, one per core)")
      ->capture_default_str();
  app.add_flag("--keep-files", settings.keep_files, "Keep the databases and server logs");
  CLI11_PARSE(app, argc, argv);

  if (!fs::exists(settings.herald)) {
    die(settings.herald.string() + " does not exist; build the herald target or pass --herald");
  }
  raise_file_limit();
  signal(SIGPIPE, SIG_IGN);
  const fs::path directory = make_directory("herald-http-bench");
  std::printf("herald_http_bench: files in %s (%s); server %s\n", directory.c_str(),
              filesystem_name(directory).c_str(), settings.herald.c_str());
  std::printf(
      "CPU: %s, %u hardware threads; %d repetitions of %.1f s after %.1f s of warm-up; "
      "load average %s\n",
      cpu_model().c_str(), std::thread::hardware_concurrency(), settings.repetitions,
      settings.seconds, settings.warmup_seconds, load_average().c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  int run_number = 0;
  auto next_dir = [&](std::string_view what) {
    return directory / fmt::format("{}-{}", what, run_number++);
  };
  // Each repetition runs the baseline and then the server back to back, so both see the same
  // load on the shared machine.
  if (wants(settings, "single")) {
    for (const std::size_t connections : settings.single_connections) {
      const std::size_t base_row = rows.size();
      rows.push_back({.scenario = "(1) one event per request",
                      .implementation = fmt::format("append_async, {} in flight", connections)});
      rows.push_back({.scenario = "(1) one event per request",
                      .implementation = fmt::format("HTTP POST, {} connections", connections),
                      .unit = "requests/s",
                      .baseline = static_cast<int>(base_row)});
      for (int rep = 0; rep < settings.repetitions; ++rep) {
        Measurement local = in_process(settings, next_dir("append") / "herald.db", connections, 1);
        ServerProcess server(settings, next_dir("serve"), {});
        Measurement http = IngestRun(settings, server, connections, 1).run();
        const std::string exit = server.stop();
        std::printf(
            "(1) rep %d, %zu connections: in-process %s, HTTP %s (p50 %s, p99 %s, server "
            "%s/request%s); server %s\n",
            rep + 1, connections, format_rate(local.rate, "events/s").c_str(),
            format_rate(http.rate, "requests/s").c_str(),
            format_us(summarize(http.latency_us).p50_us).c_str(),
            format_us(summarize(http.latency_us).p99_us).c_str(),
            format_us(http.server_cpu_us).c_str(),
            http.failures ? fmt::format(", {} failures", http.failures).c_str() : "", exit.c_str());
        std::fflush(stdout);
        rows[base_row].add(local, false);
        rows[base_row + 1].add(http, true);
      }
    }
  }
  if (wants(settings, "batch")) {
    const std::size_t base_row = rows.size();
    const std::string scenario = fmt::format("(2) batches of {}", settings.batch_size);
    rows.push_back({.scenario = scenario,
                    .implementation = fmt::format("append_batch_async, {} in flight",
                                                  settings.batch_connections)});
    rows.push_back(
        {.scenario = scenario,
         .implementation = fmt::format("HTTP POST, {} connections", settings.batch_connections),
         .baseline = static_cast<int>(base_row)});
    for (int rep = 0; rep < settings.repetitions; ++rep) {
      Measurement local = in_process(settings, next_dir("append") / "herald.db",
                                     settings.batch_connections, settings.batch_size);
      ServerProcess server(settings, next_dir("serve"), {});
      Measurement http =
          IngestRun(settings, server, settings.batch_connections, settings.batch_size).run();
      const std::string exit = server.stop();
      std::printf(
          "(2) rep %d: in-process %s, HTTP %s (p50 %s, p99 %s per request, server "
          "%s/request%s); server %s\n",
          rep + 1, format_rate(local.rate, "events/s").c_str(),
          format_rate(http.rate, "events/s").c_str(),
          format_us(summarize(http.latency_us).p50_us).c_str(),
          format_us(summarize(http.latency_us).p99_us).c_str(),
          format_us(http.server_cpu_us).c_str(),
          http.failures ? fmt::format(", {} failures", http.failures).c_str() : "", exit.c_str());
      std::fflush(stdout);
      rows[base_row].add(local, false);
      rows[base_row + 1].add(http, true);
    }
  }
  std::optional<FanoutResult> fanned;
  if (wants(settings, "fanout")) {
    std::printf("(3) fan-out: connecting %zu clients, then %.0f s of ingest...\n",
                settings.fanout_clients, settings.fanout_seconds);
    std::fflush(stdout);
    fanned = fanout(settings, next_dir("fanout"));
  }

  std::printf(
      "\nherald serve over loopback, side by side with the store in-process (SQLite, "
      "WAL, synchronous=FULL; files on %s); load average now %s\n",
      filesystem_name(directory).c_str(), load_average().c_str());
  print_rows(rows);
  if (fanned) print_fanout(*fanned, settings);

  std::printf("\ntargets (medians of this run; informational)\n");
  for (const Row& row : rows) {
    if (row.baseline < 0 || row.rates.empty()) continue;
    const double value = median(row.rates);
    if (row.scenario.starts_with("(1)")) {
      print_verdict(value >= 15'000, "(1) HTTP single >= 15k requests/s, " + row.implementation,
                    format_rate(value, "requests/s"));
    } else {
      print_verdict(value >= 150'000, "(2) HTTP batched >= 150k events/s, " + row.implementation,
                    format_rate(value, "events/s"));
    }
  }
  if (fanned) {
    const FanoutResult& f = *fanned;
    const bool all = f.clients_live == f.clients && f.clients_complete == f.clients &&
                     f.out_of_order == 0 && f.unexpected == 0 && f.post_failures == 0 &&
                     f.events_answered == f.events;
    print_verdict(all, "(3) every client receives every event, in order",
                  fmt::format("{} of {} clients complete, {} out of order, {} unknown",
                              f.clients_complete, f.clients, f.out_of_order, f.unexpected));
    const double p99 = ms(f.latency.percentile(0.99));
    print_verdict(f.latency.count() > 0 && p99 <= 100, "(3) delivery latency p99 <= 100 ms",
                  fmt::format("{:.2f} ms", p99));
    const double peak = static_cast<double>(std::max(f.rss_peak_kib, f.rss_hwm_kib)) / 1024;
    print_verdict(peak > 0 && peak <= 150, "(3) server RSS <= 150 MiB",
                  fmt::format("{:.1f} MiB", peak));
  }

  if (settings.keep_files) {
    std::printf("\nkept the files in %s\n", directory.c_str());
  } else {
    std::error_code ignored;
    fs::remove_all(directory, ignored);
  }
  return 0;
}
