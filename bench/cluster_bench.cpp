// herald_cluster_bench: several `herald serve` nodes on one PostgreSQL store and one NATS
// JetStream server (docs/cluster.md), side by side in the same run with the baseline: one node on
// the same PostgreSQL server without NATS, whose stream hub follows the store. The ratio shows
// what the cluster path costs. All processes run on this machine, so they share its cores: the
// report gives the CPU time per event of each party (the nodes, PostgreSQL, nats-server, this
// driver) and what the rest of the machine used meanwhile.
//
// Each repetition runs every setup (the baseline; 2 nodes without NATS, each hub following the
// store, which separates what several appending processes cost the store from what NATS costs;
// then 1, 2, 3 nodes with NATS) on a fresh database and a fresh JetStream stream, one after the
// other, so they share the machine's load of the moment; ratios divide each figure by the
// baseline's of the same repetition. Each node has one stream client (GET /api/v1/events/stream).
// Two phases per setup:
//   (1) throughput: C keep-alive connections spread round-robin over the nodes, each POSTing one
//       event and waiting for its response, for a fixed time (the saturation rate); then the run
//       waits until every stream client has every event, and checks that each got each answered
//       position once, in order. CPU per event covers ingest and fan-out.
//   (2) latency: events POSTed to node A at a fixed moderate rate; latency is from the arrival of
//       an event's POST response from A to the receipt of that event by the stream client of node
//       B (B = A with one node), both on this process's steady_clock. It runs twice: (2) with a
//       client that reads as any client does, (2q) with one that acknowledges every read at once
//       (TCP_QUICKACK), which takes out the stalls of the server's Nagle delay waiting for the
//       client's delayed acknowledgment (up to 40 ms on Linux) and leaves the cluster path's own
//       latency.
//
// It needs a PostgreSQL server and a nats-server with JetStream; scripts/bench.sh runs it under
// `scripts/with_postgres.sh scripts/with_nats.sh`, whose variables it reads.

// Events are built with designated initializers that leave members out, as herald's own code
// does; g++ 12 warns about that under -Wextra (herald_warnings turns it off for the library).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <nats/nats.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_report.hpp"
#include "serve_harness.hpp"

namespace herald_bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

/// What the command line chose.
struct Settings {
  fs::path herald;
  std::string pg_url;
  fs::path pg_data;
  std::string nats_url;
  fs::path nats_pid_file;
  std::vector<std::size_t> nodes{1, 2, 3};
  std::vector<std::size_t> store_only_nodes{2};
  int repetitions = 3;
  double seconds = 5;
  double warmup_seconds = 1;
  std::size_t connections = 64;
  double rate = 500;
  double latency_seconds = 10;
  std::size_t posters = 8;
  unsigned server_threads = 0;
  bool keep_files = false;
};

/// The environment variable `name`, or `fallback` when it is unset or empty.
std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value ? value : fallback;
}

// ---------------------------------------------------------------------------------------------
// The shared servers: a fresh database per run, the JetStream stream removed after each

/// `url` with its database name replaced by `database`.
std::string with_database(const std::string& url, const std::string& database) {
  const std::size_t scheme = url.find("://");
  const std::size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos) return url + "/" + database;
  const std::size_t query = url.find('?', slash);
  return url.substr(0, slash + 1) + database +
         (query == std::string::npos ? "" : url.substr(query));
}

/// A database created on the benchmark's PostgreSQL server and dropped at the end.
class FreshDatabase {
 public:
  FreshDatabase(const std::string& admin_url, std::string name)
      : admin_url_(admin_url), name_(std::move(name)) {
    run("DROP DATABASE IF EXISTS " + name_);
    run("CREATE DATABASE " + name_);
  }
  ~FreshDatabase() {
    try {
      run("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dropping database %s: %s\n", name_.c_str(), e.what());
    }
  }
  FreshDatabase(const FreshDatabase&) = delete;
  FreshDatabase& operator=(const FreshDatabase&) = delete;

  std::string url() const { return with_database(admin_url_, name_); }

  /// The database's counters in pg_stat_database: committed transactions (reads included), rows
  /// read (tup_returned: by sequential scans and index entries; tup_fetched: rows by index) and
  /// rows inserted.
  struct Activity {
    std::int64_t commits = 0;
    std::int64_t returned = 0;
    std::int64_t fetched = 0;
    std::int64_t inserted = 0;
  };

  /// The counters once every session of the database has ended: backends report theirs when
  /// they exit, a little after their client closed, so this waits until the figures settle.
  Activity activity() const {
    Activity last{-1, -1, -1, -1};
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
      pqxx::connection connection(admin_url_);
      pqxx::nontransaction work(connection);
      const pqxx::row row = work.exec_params1(
          "SELECT xact_commit, tup_returned, tup_fetched, tup_inserted, "
          "(SELECT count(*) FROM pg_stat_activity WHERE datname = $1) "
          "FROM pg_stat_database WHERE datname = $1",
          name_);
      const Activity now{row[0].as<std::int64_t>(), row[1].as<std::int64_t>(),
                         row[2].as<std::int64_t>(), row[3].as<std::int64_t>()};
      const bool settled = row[4].as<std::int64_t>() == 0 && now.commits == last.commits &&
                           now.fetched == last.fetched;
      if (settled || Clock::now() > deadline) return now;
      last = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

 private:
  void run(const std::string& sql) const {
    pqxx::connection connection(admin_url_);
    pqxx::nontransaction work(connection);
    work.exec(sql);
  }

  std::string admin_url_;
  std::string name_;
};

/// A connection to the NATS server that reads how many messages a JetStream stream holds.
/// Not thread-safe.
class StreamWatch {
 public:
  explicit StreamWatch(const std::string& url) {
    if (natsConnection_ConnectTo(&connection_, url.c_str()) != NATS_OK) return;
    if (natsConnection_JetStream(&js_, connection_, nullptr) != NATS_OK) js_ = nullptr;
  }
  ~StreamWatch() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (connection_ != nullptr) natsConnection_Destroy(connection_);
  }
  StreamWatch(const StreamWatch&) = delete;
  StreamWatch& operator=(const StreamWatch&) = delete;

  /// The messages of `stream` (-1 when it cannot be read).
  std::int64_t messages(const std::string& stream) const {
    if (js_ == nullptr) return -1;
    jsStreamInfo* info = nullptr;
    jsErrCode code{};
    if (js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code) != NATS_OK) return -1;
    const auto count = static_cast<std::int64_t>(info->State.Msgs);
    jsStreamInfo_Destroy(info);
    return count;
  }

  /// Deletes `stream`, so that the next run's relay starts on an empty stream.
  void remove(const std::string& stream) const {
    jsErrCode code{};
    if (js_ != nullptr) js_DeleteStream(js_, stream.c_str(), nullptr, &code);
  }

 private:
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// CPU: each party's time, and the machine's

/// CPU seconds so far of the nodes, PostgreSQL (postmaster and children), nats-server, this
/// process and the whole machine, with the wall-clock time of the reading.
struct CpuReading {
  Clock::time_point at;
  double nodes = 0;
  std::map<pid_t, double> postgres;
  double nats = 0;
  double driver = 0;
  double machine = 0;
};

/// CPU seconds spent between two readings.
struct CpuSpent {
  double wall = 0;
  double nodes = 0;
  double postgres = -1;
  double nats = -1;
  double driver = 0;
  double machine = 0;

  /// What the rest of the machine (other work on it) used.
  double others() const {
    return std::max(0.0, machine - nodes - std::max(0.0, postgres) - std::max(0.0, nats) - driver);
  }
};

/// Busy time of all cores from /proc/stat (everything but idle and iowait).
double machine_busy_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// The pid written at the start of `file` (a pid file, postmaster.pid), or -1.
pid_t pid_from_file(const fs::path& file) {
  if (file.empty()) return -1;
  std::ifstream in(file);
  long pid = -1;
  in >> pid;
  return in ? static_cast<pid_t>(pid) : -1;
}

/// Reads the CPU time of the run's parties: the nodes, PostgreSQL (when its postmaster is known),
/// nats-server (when known), this process and the machine. Thread-compatible.
class CpuMeter {
 public:
  CpuMeter(std::vector<pid_t> nodes, pid_t postmaster, pid_t nats)
      : nodes_(std::move(nodes)), postmaster_(postmaster), nats_(nats) {}

  CpuReading read() const {
    CpuReading reading;
    reading.at = Clock::now();
    for (const pid_t pid : nodes_) reading.nodes += sample_process(pid).cpu_seconds;
    if (postmaster_ > 0) {
      // Backends come and go with connections: each is counted from when it is first seen.
      reading.postgres[postmaster_] = sample_process(postmaster_).cpu_seconds;
      // Processes end while /proc is listed: errors end the listing instead of throwing.
      std::error_code ec;
      for (auto entry = fs::directory_iterator("/proc", ec);
           !ec && entry != fs::directory_iterator(); entry.increment(ec)) {
        const std::string name = entry->path().filename().string();
        if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
        const auto pid = static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10));
        const ProcessSample sample = sample_process(pid);
        if (sample.parent == postmaster_) reading.postgres[pid] = sample.cpu_seconds;
      }
    }
    if (nats_ > 0) reading.nats = sample_process(nats_).cpu_seconds;
    reading.driver = sample_process(getpid()).cpu_seconds;
    reading.machine = machine_busy_seconds();
    return reading;
  }

  CpuSpent spent(const CpuReading& before, const CpuReading& after) const {
    CpuSpent spent;
    spent.wall = seconds_between(before.at, after.at);
    spent.nodes = after.nodes - before.nodes;
    if (postmaster_ > 0) {
      spent.postgres = 0;
      for (const auto& [pid, seconds] : after.postgres) {
        const auto earlier = before.postgres.find(pid);
        spent.postgres += seconds - (earlier == before.postgres.end() ? 0 : earlier->second);
      }
    }
    if (nats_ > 0) spent.nats = after.nats - before.nats;
    spent.driver = after.driver - before.driver;
    spent.machine = after.machine - before.machine;
    return spent;
  }

 private:
  std::vector<pid_t> nodes_;
  pid_t postmaster_;
  pid_t nats_;
};

// ---------------------------------------------------------------------------------------------
// A node's GET /api/v1/cluster

/// The body of GET `target` on `endpoint` (nullopt unless 200), with a 5 s timeout.
std::optional<std::string> http_get(const tcp::endpoint& endpoint, const std::string& target,
                                    const std::string& token) {
  net::io_context io;
  tcp::socket socket(io);
  beast::error_code ec;
  socket.connect(endpoint, ec);
  if (ec) return std::nullopt;
  const timeval timeout{.tv_sec = 5, .tv_usec = 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  bhttp::request<bhttp::empty_body> request{bhttp::verb::get, target, 11};
  request.set(bhttp::field::host, fmt::format("127.0.0.1:{}", endpoint.port()));
  request.set(bhttp::field::authorization, "Bearer " + token);
  bhttp::write(socket, request, ec);
  if (ec) return std::nullopt;
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(socket, buffer, response, ec);
  if (ec || response.result_int() != 200) return std::nullopt;
  return response.body();
}

/// What a node says of itself on GET /api/v1/cluster.
struct NodeState {
  bool nats_connected = false;
  bool relay_leader = false;
  std::string feed;
};

/// GET /api/v1/cluster of the node at `endpoint`, or nullopt when it does not answer 200 with an
/// object.
std::optional<NodeState> node_state(const tcp::endpoint& endpoint, const std::string& token) {
  const auto body = http_get(endpoint, "/api/v1/cluster", token);
  if (!body) return std::nullopt;
  boost::system::error_code ec;
  const boost::json::value document = boost::json::parse(*body, ec);
  if (ec || !document.is_object()) return std::nullopt;
  NodeState state;
  const auto& object = document.as_object();
  if (const auto* feed = object.if_contains("feed"); feed && feed->is_string()) {
    state.feed = std::string(feed->as_string());
  }
  if (const auto* nats = object.if_contains("nats"); nats && nats->is_object()) {
    const auto* connected = nats->as_object().if_contains("connected");
    state.nats_connected = connected && connected->is_bool() && connected->as_bool();
  }
  if (const auto* roles = object.if_contains("roles"); roles && roles->is_array()) {
    for (const auto& role : roles->as_array()) {
      if (!role.is_object()) continue;
      const auto* name = role.as_object().if_contains("role");
      const auto* leader = role.as_object().if_contains("leader");
      if (name && name->is_string() && name->as_string() == "relay:nats" && leader &&
          leader->is_bool() && leader->as_bool()) {
        state.relay_leader = true;
      }
    }
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// Stream clients: one per node, on a thread of their own

/// One stream client's receipts, read after its thread has ended.
struct Receipt {
  std::int64_t position;
  Clock::time_point at;
};

/// A client of GET /api/v1/events/stream that records when each event arrives. Runs on one
/// io_context thread; the atomics may be read from any thread.
class StreamClient : public std::enable_shared_from_this<StreamClient> {
 public:
  StreamClient(net::io_context& io, const tcp::endpoint& endpoint, const std::string& token,
               bool quick_ack)
      : socket_(io), endpoint_(endpoint), quick_ack_(quick_ack), buffer_(16 * 1024) {
    request_ = fmt::format(
        "GET /api/v1/events/stream?access_token={} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n"
        "Accept: text/event-stream\r\n\r\n",
        token, endpoint.port());
    receipts_.reserve(1 << 18);
  }

  void start() {
    socket_.async_connect(endpoint_,
                          beast::bind_front_handler(&StreamClient::on_connect, shared_from_this()));
  }
  void close() {
    beast::error_code ignored;
    socket_.close(ignored);
  }

  /// Whether the stream said `: live after position N` (thread-safe).
  bool live() const { return live_after_.load() >= 0; }
  /// Events received so far (thread-safe).
  std::size_t received() const { return received_.load(); }
  /// The first error (read once the client's thread has ended).
  const std::string& error() const { return error_; }
  /// Every receipt in arrival order (read once the client's thread has ended).
  const std::vector<Receipt>& receipts() const { return receipts_; }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return fail("connecting: " + ec.message());
    net::async_write(socket_, net::buffer(request_),
                     beast::bind_front_handler(&StreamClient::on_write, shared_from_this()));
  }
  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return fail("sending the request: " + ec.message());
    do_read();
  }
  void do_read() {
    socket_.async_read_some(net::buffer(buffer_),
                            beast::bind_front_handler(&StreamClient::on_read, shared_from_this()));
  }
  void on_read(beast::error_code ec, std::size_t size) {
    const auto now = Clock::now();
    if (ec) {
      if (ec != net::error::operation_aborted) fail("reading: " + ec.message());
      return;
    }
    if (quick_ack_) {
      // Linux turns quick acknowledgments off again by itself: set it after every read.
      const int on = 1;
      setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
    }
    const bool fine = reader_.consume(buffer_.data(), size, [&](std::string_view line) {
      if (const std::int64_t position = sse_id(line); position >= 0) {
        receipts_.push_back({position, now});
        received_.fetch_add(1, std::memory_order_release);
      } else if (const std::int64_t live = sse_live_after(line); live >= 0) {
        live_after_.store(live);
      }
    });
    if (!fine) return fail(reader_.error());
    do_read();
  }
  void fail(std::string what) {
    if (error_.empty()) error_ = std::move(what);
    close();
  }

  tcp::socket socket_;
  tcp::endpoint endpoint_;
  bool quick_ack_;
  std::string request_;
  std::vector<char> buffer_;
  SseStreamReader reader_;
  std::atomic<std::int64_t> live_after_{-1};
  std::atomic<std::size_t> received_{0};
  std::vector<Receipt> receipts_;
  std::string error_;
};

/// A stream client on each of `endpoints`, read by one thread; the destructor closes them.
class StreamClients {
 public:
  StreamClients(const std::vector<tcp::endpoint>& endpoints, const std::string& token,
                bool quick_ack) {
    for (const auto& endpoint : endpoints) {
      clients_.push_back(std::make_shared<StreamClient>(io_, endpoint, token, quick_ack));
      clients_.back()->start();
    }
    thread_ = std::thread([this] { io_.run(); });
  }
  ~StreamClients() { stop(); }
  StreamClients(const StreamClients&) = delete;
  StreamClients& operator=(const StreamClients&) = delete;

  /// Waits until every client is live; false after `timeout`.
  bool wait_live(std::chrono::seconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (std::all_of(clients_.begin(), clients_.end(), [](const auto& c) { return c->live(); })) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  /// Waits until every client has received `events`; the time it took, or nullopt after
  /// `timeout`.
  std::optional<double> wait_received(std::size_t events, std::chrono::seconds timeout) const {
    const auto start = Clock::now();
    while (Clock::now() < start + timeout) {
      if (std::all_of(clients_.begin(), clients_.end(),
                      [&](const auto& c) { return c->received() >= events; })) {
        return seconds_between(start, Clock::now());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::nullopt;
  }

  /// Closes the connections and ends the thread; the clients can be read afterwards.
  void stop() {
    if (!thread_.joinable()) return;
    net::post(io_, [this] {
      for (const auto& client : clients_) client->close();
    });
    thread_.join();
  }

  const std::vector<std::shared_ptr<StreamClient>>& clients() const { return clients_; }

 private:
  net::io_context io_{1};
  std::vector<std::shared_ptr<StreamClient>> clients_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Posting: keep-alive connections, one request in flight each, on this thread

/// One answered POST.
struct Answer {
  std::int64_t position;
  Clock::time_point sent;
  Clock::time_point answered;
};

/// POSTs single events over keep-alive connections, either as fast as answers come until `until`
/// (closed loop), or paced: event k due `k / rate` seconds after the start, `total` in all.
class Posting {
 public:
  struct Plan {
    std::vector<tcp::endpoint> endpoints;  ///< connection i goes to endpoints[i % size]
    std::size_t connections = 1;
    Clock::time_point until{};  ///< closed loop: stop sending at this time
    double rate = 0;            ///< paced when > 0
    std::size_t total = 0;      ///< paced: events in all
  };

  Posting(Plan plan, const std::string& token) : plan_(std::move(plan)) {
    for (std::size_t c = 0; c < plan_.connections; ++c) {
      const tcp::endpoint& endpoint = plan_.endpoints[c % plan_.endpoints.size()];
      std::vector<RequestText> requests;
      for (std::size_t v = 0; v < 4; ++v) {
        requests.push_back(
            make_post(static_cast<std::int64_t>(c * 4 + v), 1, false, token, endpoint.port()));
      }
      connections_.push_back(std::make_shared<Connection>(*this, endpoint, std::move(requests)));
    }
    answers_.reserve(1 << 18);
  }

  /// Runs to the end of the plan; returns the answers in arrival order.
  std::vector<Answer>& run() {
    start_ = Clock::now();
    for (const auto& connection : connections_) connection->start();
    io_.run();
    return answers_;
  }

  Clock::time_point start() const { return start_; }
  std::size_t failures() const { return failures_; }
  const std::string& first_failure() const { return first_failure_; }

 private:
  class Connection : public std::enable_shared_from_this<Connection> {
   public:
    Connection(Posting& posting, const tcp::endpoint& endpoint, std::vector<RequestText> requests)
        : posting_(posting),
          endpoint_(endpoint),
          socket_(posting.io_),
          timer_(posting.io_),
          requests_(std::move(requests)) {}

    void start() {
      socket_.async_connect(endpoint_,
                            beast::bind_front_handler(&Connection::on_connect, shared_from_this()));
    }

   private:
    void on_connect(beast::error_code ec) {
      if (ec) return posting_.fail("connecting: " + ec.message());
      socket_.set_option(tcp::no_delay(true));
      next();
    }

    void next() {
      const Plan& plan = posting_.plan_;
      const bool paced = plan.rate > 0;
      if (paced ? posting_.issued_ >= plan.total : Clock::now() >= plan.until) {
        beast::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        return;
      }
      if (!paced) return send();
      const std::size_t index = posting_.issued_++;
      timer_.expires_at(posting_.start_ +
                        std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(static_cast<double>(index) / plan.rate)));
      timer_.async_wait([self = shared_from_this()](beast::error_code) { self->send(); });
    }

    void send() {
      RequestText& request = requests_[next_request_++ % requests_.size()];
      request.refresh_ids();
      sent_ = Clock::now();
      net::async_write(socket_, net::buffer(request.text),
                       beast::bind_front_handler(&Connection::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t) {
      if (ec) return posting_.fail("sending: " + ec.message());
      parser_.emplace();
      bhttp::async_read(socket_, buffer_, *parser_,
                        beast::bind_front_handler(&Connection::on_read, shared_from_this()));
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
      posting_.answers_.push_back(
          {std::strtoll(response.body().c_str() + at + key.size(), nullptr, 10), sent_, now});
      next();
    }

    Posting& posting_;
    tcp::endpoint endpoint_;
    tcp::socket socket_;
    net::steady_timer timer_;
    std::vector<RequestText> requests_;
    std::size_t next_request_ = 0;
    beast::flat_buffer buffer_;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
    Clock::time_point sent_;
  };

  void fail(std::string what) {
    if (failures_++ == 0) first_failure_ = std::move(what);
  }

  Plan plan_;
  net::io_context io_{1};
  std::vector<std::shared_ptr<Connection>> connections_;
  Clock::time_point start_;
  std::size_t issued_ = 0;
  std::vector<Answer> answers_;
  std::size_t failures_ = 0;
  std::string first_failure_;
};

// ---------------------------------------------------------------------------------------------
// One setup, one repetition

/// Which positions a stream client got wrong, against the answered ones.
struct Completeness {
  std::size_t missing = 0;
  std::size_t duplicates = 0;
  std::size_t out_of_order = 0;
  std::size_t unknown = 0;

  bool clean() const { return missing + duplicates + out_of_order + unknown == 0; }
};

/// Compares a stream client's `receipts` with the `answered` positions (sorted).
Completeness check(const std::vector<Receipt>& receipts,
                   const std::vector<std::int64_t>& answered) {
  Completeness result;
  std::vector<std::int64_t> got;
  std::int64_t last = -1;
  for (const Receipt& receipt : receipts) {
    if (receipt.position <= last) ++result.out_of_order;
    last = std::max(last, receipt.position);
    got.push_back(receipt.position);
  }
  std::sort(got.begin(), got.end());
  for (std::size_t i = 1; i < got.size(); ++i) result.duplicates += got[i] == got[i - 1];
  got.erase(std::unique(got.begin(), got.end()), got.end());
  std::vector<std::int64_t> gone;
  std::set_difference(answered.begin(), answered.end(), got.begin(), got.end(),
                      std::back_inserter(gone));
  result.missing = gone.size();
  std::vector<std::int64_t> extra;
  std::set_difference(got.begin(), got.end(), answered.begin(), answered.end(),
                      std::back_inserter(extra));
  result.unknown = extra.size();
  return result;
}

/// Phase (2) of one run.
struct LatencyResult {
  double rate = 0;
  std::size_t events = 0;
  std::size_t missing = 0;
  std::vector<float> us;  ///< sorted
  double post_p99_us = 0;
};

/// What one repetition of one setup measured.
struct RunResult {
  std::string leader;  ///< the relay's node ("-" without NATS)
  // (1)
  double rate = 0;
  double post_p50_us = 0;
  double post_p99_us = 0;
  std::size_t events = 0;
  std::optional<double> drain_seconds;        ///< last response to every client complete
  std::optional<double> relay_drain_seconds;  ///< last response to the stream holding every event
  CpuSpent cpu;
  std::string load_before;
  std::string load_after;
  Completeness completeness;
  std::int64_t stream_messages = -1;
  std::size_t stream_expected = 0;   ///< events answered in the whole run
  FreshDatabase::Activity database;  ///< the database's counters over the whole run
  // (2)
  /// [0]: as any client reads; [1]: the client acknowledging at once (TCP_QUICKACK).
  LatencyResult latency[2];
  std::size_t failures = 0;
  std::string first_failure;
  std::string exits;
};

/// POSTs `settings.rate` events per second to `a` for `settings.latency_seconds` and times
/// each from its response to its receipt by a stream client of `b`.
template <typename Fail>
LatencyResult measure_latency(const Settings& settings, const tcp::endpoint& a,
                              const tcp::endpoint& b, const std::string& token, bool quick_ack,
                              Fail& fail) {
  LatencyResult result;
  StreamClients streams({b}, token, quick_ack);
  if (!streams.wait_live(std::chrono::seconds(30))) {
    die("the latency stream client did not go live within 30 s");
  }
  const auto total = static_cast<std::size_t>(settings.rate * settings.latency_seconds);
  Posting posting(
      {.endpoints = {a}, .connections = settings.posters, .rate = settings.rate, .total = total},
      token);
  const std::vector<Answer>& answers = posting.run();
  fail(posting.failures(), posting.first_failure());
  result.events = answers.size();
  if (!answers.empty()) {
    const double span = seconds_between(posting.start(), answers.back().answered);
    result.rate = span > 0 ? static_cast<double>(answers.size()) / span : 0;
  }
  streams.wait_received(answers.size(), std::chrono::seconds(60));
  streams.stop();
  std::map<std::int64_t, Clock::time_point> answered_at;
  std::vector<float> post_latency;
  for (const Answer& answer : answers) {
    answered_at[answer.position] = answer.answered;
    post_latency.push_back(static_cast<float>(
        std::chrono::duration<double, std::micro>(answer.answered - answer.sent).count()));
  }
  std::sort(post_latency.begin(), post_latency.end());
  result.post_p99_us = percentile(post_latency, 0.99);
  const auto& client = *streams.clients().front();
  std::size_t matched = 0;
  for (const Receipt& receipt : client.receipts()) {
    const auto found = answered_at.find(receipt.position);
    if (found == answered_at.end()) continue;
    ++matched;
    result.us.push_back(static_cast<float>(
        std::chrono::duration<double, std::micro>(receipt.at - found->second).count()));
  }
  result.missing = answers.size() - std::min(answers.size(), matched);
  std::sort(result.us.begin(), result.us.end());
  if (!client.error().empty()) fail(1, "latency stream: " + client.error());
  return result;
}

std::string node_name(std::size_t i) { return std::string(1, static_cast<char>('a' + i)); }

/// Starts `nodes` nodes (with NATS or not) on a fresh database, runs phases (1) and (2), stops
/// them.
RunResult run_setup(const Settings& settings, std::size_t nodes, bool nats, const fs::path& dir,
                    int run_number) {
  RunResult result;
  fs::create_directories(dir);
  FreshDatabase database(settings.pg_url,
                         fmt::format("herald_cluster_bench_{}_{}", getpid(), run_number));
  const std::string store = database.url();
  const std::string stream = "HERALD_CLUSTER_BENCH";
  const std::string token = create_token(settings.herald, {"--store", store}, dir / "token.log");

  std::vector<std::unique_ptr<ServeProcess>> servers;
  std::vector<tcp::endpoint> endpoints;
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < nodes; ++i) {
    std::vector<std::string> argv{
        settings.herald.string(), "serve", "--store",       store, "--listen", "127.0.0.1:0",
        "--rate-limit",           "0",     "--no-consumers"};
    if (nats) {
      argv.insert(argv.end(), {"--nats", settings.nats_url, "--nats-stream", stream, "--node-id",
                               node_name(i)});
    }
    if (settings.server_threads > 0) {
      argv.insert(argv.end(), {"--threads", std::to_string(settings.server_threads)});
    }
    servers.push_back(
        std::make_unique<ServeProcess>(argv, dir / fmt::format("node-{}.log", node_name(i))));
    endpoints.push_back(servers.back()->endpoint());
    pids.push_back(servers.back()->pid());
  }

  // With NATS, wait until every node is connected and one of them runs the relay.
  result.leader = "-";
  const auto ready_deadline = Clock::now() + std::chrono::seconds(30);
  for (bool ready = !nats; !ready;) {
    ready = true;
    std::string leader;
    for (std::size_t i = 0; i < nodes; ++i) {
      const auto state = node_state(endpoints[i], token);
      if (!state) {
        ready = false;
        continue;
      }
      if (!state->nats_connected) ready = false;
      if (state->relay_leader) leader += node_name(i);
    }
    if (leader.size() != 1) ready = false;
    if (ready) result.leader = leader;
    if (!ready && Clock::now() > ready_deadline) {
      die(
          fmt::format("{} node(s) not ready within 30 s (GET /api/v1/cluster: every node "
                      "connected to NATS, one relay leader; leaders seen: '{}'); logs in {}",
                      nodes, leader, dir.string()));
    }
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::optional<StreamWatch> watch;
  if (nats) watch.emplace(settings.nats_url);
  const CpuMeter meter(pids, pid_from_file(settings.pg_data / "postmaster.pid"),
                       nats ? pid_from_file(settings.nats_pid_file) : -1);
  auto fail = [&](std::size_t count, const std::string& first) {
    if (count > 0 && result.failures == 0) result.first_failure = first;
    result.failures += count;
  };

  // (1) Saturation: every node takes POSTs, every node streams.
  {
    StreamClients streams(endpoints, token, false);
    if (!streams.wait_live(std::chrono::seconds(30))) {
      die("the stream clients did not go live within 30 s; logs in " + dir.string());
    }
    result.load_before = load_average();
    const CpuReading before = meter.read();
    const auto measure_from =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(settings.warmup_seconds));
    const auto measure_to = measure_from + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(settings.seconds));
    Posting posting(
        {.endpoints = endpoints, .connections = settings.connections, .until = measure_to}, token);
    const std::vector<Answer>& answers = posting.run();
    fail(posting.failures(), posting.first_failure());
    result.events = answers.size();
    result.stream_expected = answers.size();
    std::vector<float> latency;
    std::size_t in_window = 0;
    for (const Answer& answer : answers) {
      if (answer.answered < measure_from || answer.answered >= measure_to) continue;
      ++in_window;
      latency.push_back(static_cast<float>(
          std::chrono::duration<double, std::micro>(answer.answered - answer.sent).count()));
    }
    result.rate = static_cast<double>(in_window) / settings.seconds;
    std::sort(latency.begin(), latency.end());
    result.post_p50_us = percentile(latency, 0.5);
    result.post_p99_us = percentile(latency, 0.99);
    if (watch) {
      // The relay publishes one event at a time: how long after the last response the stream
      // holds them all (the clients' drain includes it).
      const auto posted = Clock::now();
      while (watch->messages(stream) < static_cast<std::int64_t>(answers.size()) &&
             Clock::now() < posted + std::chrono::seconds(120)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      result.relay_drain_seconds = seconds_between(posted, Clock::now());
    }
    result.drain_seconds = streams.wait_received(answers.size(), std::chrono::seconds(120));
    if (result.drain_seconds && result.relay_drain_seconds) {
      *result.drain_seconds += *result.relay_drain_seconds;
    }
    const CpuReading after = meter.read();
    result.cpu = meter.spent(before, after);
    result.load_after = load_average();
    streams.stop();
    std::vector<std::int64_t> answered;
    for (const Answer& answer : answers) answered.push_back(answer.position);
    std::sort(answered.begin(), answered.end());
    for (const auto& client : streams.clients()) {
      const Completeness c = check(client->receipts(), answered);
      result.completeness.missing += c.missing;
      result.completeness.duplicates += c.duplicates;
      result.completeness.out_of_order += c.out_of_order;
      result.completeness.unknown += c.unknown;
      if (!client->error().empty()) fail(1, "stream: " + client->error());
    }
  }

  // (2) Latency at a moderate rate: POSTs to node a, receipt at node b (a with one node), read
  // as any client reads, then by a client that acknowledges at once.
  for (const bool quick_ack : {false, true}) {
    LatencyResult& latency = result.latency[quick_ack ? 1 : 0];
    latency = measure_latency(settings, endpoints[0], endpoints[nodes > 1 ? 1 : 0], token,
                              quick_ack, fail);
    result.stream_expected += latency.events;
  }
  if (result.latency[0].events == 0) die("no POST of (2) was answered; logs in " + dir.string());

  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (i > 0) result.exits += ", ";
    result.exits += servers[i]->stop();
  }
  result.database = database.activity();
  if (watch) {
    result.stream_messages = watch->messages(stream);
    watch->remove(stream);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

/// The repetitions of one setup.
struct Setup {
  std::string name;
  std::size_t nodes = 1;
  bool nats = false;
  std::vector<RunResult> runs;

  std::vector<double> each(double (*of)(const RunResult&)) const {
    std::vector<double> values;
    for (const RunResult& run : runs) values.push_back(of(run));
    return values;
  }
  double med(double (*of)(const RunResult&)) const { return median(each(of)); }
};

/// The median over repetitions of `setup`'s figure divided by the baseline's of the same
/// repetition (run just before it, under about the same load of the machine).
double paired_ratio(const Setup& setup, const Setup& base, double (*of)(const RunResult&)) {
  std::vector<double> ratios;
  for (std::size_t i = 0; i < setup.runs.size() && i < base.runs.size(); ++i) {
    const double divisor = of(base.runs[i]);
    if (divisor != 0) ratios.push_back(of(setup.runs[i]) / divisor);
  }
  return median(ratios);
}

double rate_of(const RunResult& r) { return r.rate; }
double p50_of(const RunResult& r) { return percentile(r.latency[0].us, 0.5); }
double p99_of(const RunResult& r) { return percentile(r.latency[0].us, 0.99); }
double quick_p50_of(const RunResult& r) { return percentile(r.latency[1].us, 0.5); }
double quick_p99_of(const RunResult& r) { return percentile(r.latency[1].us, 0.99); }

/// `seconds` per event as "12 µs", or "-" when unknown.
std::string per_event(double seconds, std::size_t events) {
  if (seconds < 0 || events == 0) return "-";
  return format_us(seconds * 1e6 / static_cast<double>(events));
}

/// One line (and details) per repetition of a setup, as it ends.
void print_run(const Setup& setup, const RunResult& r, int rep) {
  auto drain = [](const std::optional<double>& seconds) {
    return seconds ? fmt::format("{:.2f} s", *seconds) : std::string("-");
  };
  fmt::print(
      "rep {} {:<22} {} (POST p50 {} p99 {}); streams complete {} after the last response (relay "
      "{}); CPU per event: nodes {}, postgres {}, nats {}, driver {}, others {}; {:.2f} cores "
      "busy; relay on {}; stream holds {} of {}; load {} -> {}; {}\n",
      rep, setup.name, format_rate(r.rate), format_us(r.post_p50_us), format_us(r.post_p99_us),
      drain(r.drain_seconds), drain(r.relay_drain_seconds), per_event(r.cpu.nodes, r.events),
      per_event(r.cpu.postgres, r.events), per_event(r.cpu.nats, r.events),
      per_event(r.cpu.driver, r.events), per_event(r.cpu.others(), r.events),
      r.cpu.wall > 0 ? r.cpu.machine / r.cpu.wall : 0.0, r.leader, r.stream_messages,
      r.stream_expected, r.load_before, r.load_after, r.exits);
  for (int quick = 0; quick < 2; ++quick) {
    const LatencyResult& l = r.latency[quick];
    fmt::print("      latency{}: p50 {} p99 {} max {} ({} events at {:.0f}/s, {} missing)\n",
               quick ? " (quick ack)" : "", format_us(percentile(l.us, 0.5)),
               format_us(percentile(l.us, 0.99)), format_us(l.us.empty() ? 0.0 : l.us.back()),
               l.events, l.rate, l.missing);
  }
  const auto events = static_cast<double>(std::max<std::size_t>(1, r.stream_expected));
  fmt::print("      database, per event: {:.2f} transactions, {:.2f} rows fetched by index\n",
             static_cast<double>(r.database.commits) / events,
             static_cast<double>(r.database.fetched) / events);
  if (!r.completeness.clean()) {
    fmt::print("      streams: {} missing, {} duplicates, {} out of order, {} unknown\n",
               r.completeness.missing, r.completeness.duplicates, r.completeness.out_of_order,
               r.completeness.unknown);
  }
  if (r.failures > 0) fmt::print("      {} failures; first: {}\n", r.failures, r.first_failure);
  std::fflush(stdout);
}

/// The tables of medians and ratios.
void print_summary(const std::vector<Setup>& setups, const Settings& settings) {
  const Setup& base = setups.front();
  std::printf(
      "\n(1) saturation: %zu connections POSTing one event each, round-robin over the nodes; "
      "medians of %d repetitions of %.1f s\n",
      settings.connections, settings.repetitions, settings.seconds);
  std::printf("%-24s %12s %7s %8s %9s %9s %9s %9s %10s %10s %10s %10s %10s %6s\n", "setup",
              "events/s", "spread", "ratio", "POST p50", "POST p99", "fan-out", "relay", "nodes",
              "postgres", "nats", "driver", "others", "cores");
  for (const Setup& s : setups) {
    const double rate = s.med([](const RunResult& r) { return r.rate; });
    auto cpu = [&](double CpuSpent::*part) {
      std::vector<double> values;
      for (const RunResult& r : s.runs) {
        const double seconds = r.cpu.*part;
        if (seconds < 0 || r.events == 0) return std::string("-");
        values.push_back(seconds * 1e6 / static_cast<double>(r.events));
      }
      return format_us(median(values));
    };
    std::vector<double> others;
    std::vector<double> drains;
    std::vector<double> relay;
    bool all_drained = true;
    for (const RunResult& r : s.runs) {
      if (r.relay_drain_seconds) relay.push_back(*r.relay_drain_seconds);
      others.push_back(r.cpu.others() * 1e6 /
                       static_cast<double>(std::max<std::size_t>(1, r.events)));
      if (r.drain_seconds) {
        drains.push_back(*r.drain_seconds);
      } else {
        all_drained = false;
      }
    }
    std::printf("%-24s %12s %6.1f%% %7.2fx %9s %9s %9s %9s %10s %10s %10s %10s %10s %6.2f\n",
                s.name.c_str(), format_rate(rate).c_str(),
                spread_percent(s.each([](const RunResult& r) { return r.rate; })),
                paired_ratio(s, base, rate_of),
                format_us(s.med([](const RunResult& r) { return r.post_p50_us; })).c_str(),
                format_us(s.med([](const RunResult& r) { return r.post_p99_us; })).c_str(),
                all_drained ? fmt::format("{:.2f} s", median(drains)).c_str() : "timeout",
                relay.empty() ? "-" : fmt::format("{:.2f} s", median(relay)).c_str(),
                cpu(&CpuSpent::nodes).c_str(), cpu(&CpuSpent::postgres).c_str(),
                cpu(&CpuSpent::nats).c_str(), cpu(&CpuSpent::driver).c_str(),
                format_us(median(others)).c_str(), s.med([](const RunResult& r) {
                  return r.cpu.wall > 0 ? r.cpu.machine / r.cpu.wall : 0.0;
                }));
  }
  std::printf(
      "  CPU columns: CPU time per event answered, from the start of posting until every stream "
      "client had every event; 'fan-out': from the last POST response until then; 'relay': until "
      "the JetStream stream held every event; 'others': the rest of the machine; 'cores': the "
      "machine's busy cores over that time (of %u); 'ratio' (here and below): the median of each "
      "repetition's figure divided by the baseline's of the same repetition\n",
      std::thread::hardware_concurrency());

  for (int quick = 0; quick < 2; ++quick) {
    fmt::print(
        "\n(2{}) latency: {:.0f} events/s POSTed to node a for {:.1f} s over {} connections; from "
        "a's response to the receipt by a stream client of node b (a with one node){}; medians\n",
        quick ? "q" : "", settings.rate, settings.latency_seconds, settings.posters,
        quick ? ", the client acknowledging every read at once (TCP_QUICKACK)" : "");
    fmt::print("{:<24} {:>8} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>6}\n", "setup", "relay on",
               "p50", "ratio", "p99", "ratio", "max", "missing", "rate");
    const auto p50 = quick ? quick_p50_of : p50_of;
    const auto p99 = quick ? quick_p99_of : p99_of;
    for (const Setup& s : setups) {
      std::vector<double> highs;
      std::string leaders;
      std::size_t missing = 0;
      std::vector<double> rates;
      for (const RunResult& r : s.runs) {
        const LatencyResult& l = r.latency[quick];
        highs.push_back(l.us.empty() ? 0.0 : l.us.back());
        leaders += r.leader;
        missing += l.missing;
        rates.push_back(l.rate);
      }
      fmt::print("{:<24} {:>8} {:>10} {:>7.2f}x {:>10} {:>7.2f}x {:>10} {:>8} {:>6.0f}\n", s.name,
                 leaders, format_us(s.med(p50)), paired_ratio(s, base, p50), format_us(s.med(p99)),
                 paired_ratio(s, base, p99), format_us(median(highs)), missing, median(rates));
    }
  }

  std::printf(
      "\n(3) PostgreSQL's work per event answered in the whole run (pg_stat_database of the run's "
      "database, "
      "read after the nodes stopped); medians\n");
  std::printf("%-24s %13s %13s %13s\n", "setup", "transactions", "rows fetched", "rows inserted");
  for (const Setup& s : setups) {
    auto per_event = [&](std::int64_t FreshDatabase::Activity::*counter) {
      std::vector<double> values;
      for (const RunResult& r : s.runs) {
        values.push_back(static_cast<double>(r.database.*counter) /
                         static_cast<double>(std::max<std::size_t>(1, r.stream_expected)));
      }
      return median(values);
    };
    std::printf("%-24s %13.2f %13.2f %13.2f\n", s.name.c_str(),
                per_event(&FreshDatabase::Activity::commits),
                per_event(&FreshDatabase::Activity::fetched),
                per_event(&FreshDatabase::Activity::inserted));
  }
}

}  // namespace herald_bench

int main(int argc, char** argv) {
  using namespace herald_bench;
  Settings settings;
  settings.herald = own_directory().parent_path() / "herald";
  settings.pg_url = env_or("HERALD_BENCH_PG_URL", env_or("HERALD_TEST_PG_URL", ""));
  settings.pg_data = env_or("HERALD_TEST_PG_DATA", "");
  settings.nats_url = env_or("HERALD_TEST_NATS_URL", "");
  settings.nats_pid_file = env_or("HERALD_TEST_NATS_PID_FILE", "");
  CLI::App app(
      "herald_cluster_bench: herald serve nodes on one PostgreSQL store and one NATS JetStream "
      "server, beside one node without NATS (docs/performance.md, \"Several nodes\")");
  app.add_option("--herald", settings.herald, "The herald executable to serve with")
      ->capture_default_str();
  app.add_option("--pg-url", settings.pg_url,
                 "PostgreSQL URL whose user may create databases (default: $HERALD_BENCH_PG_URL, "
                 "else $HERALD_TEST_PG_URL)");
  app.add_option("--pg-data", settings.pg_data,
                 "The server's data directory, to count its CPU (default: $HERALD_TEST_PG_DATA)");
  app.add_option("--nats-url", settings.nats_url,
                 "nats-server -js (default: $HERALD_TEST_NATS_URL)");
  app.add_option("--nats-pid-file", settings.nats_pid_file,
                 "nats-server's pid file, to count its CPU (default: $HERALD_TEST_NATS_PID_FILE)");
  app.add_option("--store-only-nodes", settings.store_only_nodes,
                 "Node counts above 1 to run without NATS too, every hub following the store "
                 "(separates the store's cost of several appending processes from NATS's); 0: none")
      ->delimiter(',')
      ->check(CLI::Range(std::size_t{0}, std::size_t{26}))
      ->capture_default_str();
  app.add_option("--nodes", settings.nodes, "Cluster sizes to run, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(std::size_t{1}, std::size_t{26}))
      ->capture_default_str();
  app.add_option("--repetitions", settings.repetitions, "Repetitions of every setup")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--seconds", settings.seconds, "Measured seconds of (1)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--warmup", settings.warmup_seconds, "Seconds of (1) before measuring")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--connections", settings.connections, "POSTing connections of (1), in all")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  app.add_option("--rate", settings.rate, "Events per second POSTed in (2)")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--latency-seconds", settings.latency_seconds, "How long (2) POSTs")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--posters", settings.posters, "POSTing connections of (2)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}))
      ->capture_default_str();
  app.add_option("--server-threads", settings.server_threads,
                 "herald serve --threads (0: the server's default, one per core)")
      ->capture_default_str();
  app.add_flag("--keep-files", settings.keep_files, "Keep the nodes' logs");
  CLI11_PARSE(app, argc, argv);

  if (!fs::exists(settings.herald)) {
    die(settings.herald.string() + " does not exist; build the herald target or pass --herald");
  }
  if (settings.pg_url.empty() || settings.nats_url.empty()) {
    die("needs a PostgreSQL server and a nats-server -js: run it under "
        "`scripts/with_postgres.sh scripts/with_nats.sh`, or pass --pg-url and --nats-url");
  }
  signal(SIGPIPE, SIG_IGN);
  const fs::path directory = make_directory("herald-cluster-bench");
  std::printf("herald_cluster_bench: logs in %s; server %s\n", directory.c_str(),
              settings.herald.c_str());
  std::printf(
      "CPU: %s, %u hardware threads; %d repetitions; PostgreSQL %s (CPU counted: %s), NATS %s "
      "(CPU counted: %s); load average %s\n",
      cpu_model().c_str(), std::thread::hardware_concurrency(), settings.repetitions,
      settings.pg_url.c_str(), settings.pg_data.empty() ? "no" : "yes", settings.nats_url.c_str(),
      settings.nats_pid_file.empty() ? "no" : "yes", load_average().c_str());
  std::fflush(stdout);

  std::vector<Setup> setups;
  setups.push_back({.name = "1 node, no NATS (base)", .nodes = 1, .nats = false});
  for (const std::size_t n : settings.store_only_nodes) {
    if (n > 1) setups.push_back({.name = fmt::format("{} nodes, no NATS", n), .nodes = n});
  }
  for (const std::size_t n : settings.nodes) {
    setups.push_back(
        {.name = fmt::format("{} node{}, NATS", n, n > 1 ? "s" : ""), .nodes = n, .nats = true});
  }
  int run_number = 0;
  for (int rep = 1; rep <= settings.repetitions; ++rep) {
    for (Setup& setup : setups) {
      const fs::path dir = directory / fmt::format("run-{}", run_number);
      setup.runs.push_back(run_setup(settings, setup.nodes, setup.nats, dir, run_number));
      ++run_number;
      print_run(setup, setup.runs.back(), rep);
    }
  }
  std::printf("\nload average now %s\n", load_average().c_str());
  print_summary(setups, settings);

  if (settings.keep_files) {
    std::printf("\nkept the logs in %s\n", directory.c_str());
  } else {
    std::error_code ignored;
    fs::remove_all(directory, ignored);
  }
  return 0;
}
