#pragma once

// Shared by the multi-node tests: `herald serve` nodes and the fake Discord API as processes, a
// live-stream client that records the positions it receives, a background ingester, and the
// reads of the HTTP API the tests compare against.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../http/http_test_support.hpp"
#include "cluster_test_support.hpp"

namespace herald::cluster_test {

using Clock = std::chrono::steady_clock;

/// How one `herald serve` node is started.
struct NodeOptions {
  /// The executable.
  std::string herald;
  /// `--node-id`.
  std::string node_id;
  /// `--store`: the PostgreSQL URL every node shares.
  std::string store;
  /// `--nats`; empty for a node that follows the store.
  std::string nats;
  /// `--nats-stream`.
  std::string nats_stream;
  /// Where the node's standard error (its log) goes.
  std::filesystem::path log;
  /// `--bootstrap-admin-token`: the node prints the first token.
  bool bootstrap_admin = false;
  /// Further flags.
  std::vector<std::string> extra;
};

/// A `herald serve` process on a free loopback port; killed with SIGKILL at scope end. Not
/// thread-safe.
class HeraldNode {
 public:
  /// Starts the node and waits until it says where it listens; throws when it does not.
  explicit HeraldNode(NodeOptions options)
      : options_(std::move(options)), process_(arguments(options_), options_.log.string()) {
    std::optional<int> exit_status;
    const bool printed = wait_until(
        [&] {
          if (process_.wait_for_text("\n", std::chrono::milliseconds(0))) return true;
          exit_status = process_.wait_exit(std::chrono::milliseconds(0));
          return exit_status.has_value();
        },
        std::chrono::seconds(30));
    if (!printed || exit_status) {
      throw std::runtime_error("node " + options_.node_id + " did not start (" +
                               (exit_status ? "exit status " + std::to_string(*exit_status)
                                            : std::string("nothing printed in 30 s")) +
                               "); its log:\n" + log_tail());
    }
    static const std::regex listening(R"(listening on (http://\S+))");
    std::smatch match;
    const std::string output = process_.output();
    if (!std::regex_search(output, match, listening)) {
      throw std::runtime_error("node " + options_.node_id + " did not start: '" + output +
                               "'; log:\n" + log_tail());
    }
    base_ = match[1].str();
    port_ = static_cast<std::uint16_t>(std::stoi(base_.substr(base_.rfind(':') + 1)));
    if (options_.bootstrap_admin) {
      // The first token follows the address, indented, in the same write.
      static const std::regex token(R"(\n  (hrld_\S+)\n)");
      if (!process_.wait_for_text("Try it:", std::chrono::seconds(10)) ||
          !std::regex_search(process_.output(), match, token)) {
        throw std::runtime_error("node " + options_.node_id + " printed no first token: '" +
                                 process_.output() + "'");
      }
      token_ = match[1].str();
    }
  }

  /// The node's id.
  const std::string& id() const { return options_.node_id; }
  /// The port it listens on.
  std::uint16_t port() const { return port_; }
  /// `http://127.0.0.1:PORT`.
  const std::string& base() const { return base_; }
  /// The first API token, for a node started with `bootstrap_admin`.
  const std::string& token() const { return token_; }
  /// False once the node was killed.
  bool alive() const { return alive_; }

  /// Kills the node with SIGKILL (kill -9) and reaps it.
  void kill() {
    process_.kill();
    alive_ = false;
  }

  /// The last `lines` lines of the node's log.
  std::string log_tail(std::size_t lines = 40) const {
    std::ifstream in(options_.log);
    std::vector<std::string> all;
    for (std::string line; std::getline(in, line);) all.push_back(line);
    std::string out;
    for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
      out += all[i] + "\n";
    }
    return out;
  }

 private:
  static std::vector<std::string> arguments(const NodeOptions& options) {
    std::vector<std::string> args = {options.herald, "serve",         "--store",  options.store,
                                     "--node-id",    options.node_id, "--listen", "127.0.0.1:0"};
    if (!options.nats.empty()) {
      args.insert(args.end(), {"--nats", options.nats, "--nats-stream", options.nats_stream});
    }
    if (options.bootstrap_admin) args.emplace_back("--bootstrap-admin-token");
    args.insert(args.end(), options.extra.begin(), options.extra.end());
    return args;
  }

  NodeOptions options_;
  ChildProcess process_;
  std::string base_;
  std::uint16_t port_ = 0;
  std::string token_;
  bool alive_ = true;
};

/// The fake Discord API (`herald_fake_discord`) as a process on a free loopback port.
class FakeDiscordProcess {
 public:
  /// Starts `executable` with `args` and waits for the port it prints.
  FakeDiscordProcess(const std::string& executable, std::vector<std::string> args)
      : process_(with_executable(executable, std::move(args))) {
    if (!process_.wait_for_text("\n", std::chrono::seconds(10))) {
      throw std::runtime_error("the fake Discord printed no port");
    }
    port_ = static_cast<std::uint16_t>(std::stoi(process_.output()));
  }

  /// The port it listens on.
  std::uint16_t port() const { return port_; }
  /// The base URL to give `--discord-api-base`.
  std::string api_base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/api/v10"; }

 private:
  static std::vector<std::string> with_executable(const std::string& executable,
                                                  std::vector<std::string> args) {
    args.insert(args.begin(), executable);
    return args;
  }

  ChildProcess process_;
  std::uint16_t port_ = 0;
};

/// A client of GET /api/v1/events/stream over a raw socket, read on a thread of its own: records
/// the position (`id:`) of every event and when it arrived, until the stream ends or `stop()`.
/// Thread-safe.
class StreamRecorder {
 public:
  /// Opens `target` (e.g. `/api/v1/events/stream?after=0`) on 127.0.0.1:`port` with `token`, and
  /// `Last-Event-ID: last_event_id` when given; throws when the connection fails.
  StreamRecorder(std::uint16_t port, const std::string& token, const std::string& target,
                 std::optional<std::int64_t> last_event_id = std::nullopt) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot connect to port " + std::to_string(port));
    }
    std::string request = "GET " + target +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                          "Authorization: Bearer " +
                          token + "\r\n";
    if (last_event_id) request += "Last-Event-ID: " + std::to_string(*last_event_id) + "\r\n";
    request += "\r\n";
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      ::close(fd_);
      throw std::runtime_error("cannot send the stream request");
    }
    reader_ = std::thread([this] { run(); });
  }
  ~StreamRecorder() {
    stop();
    ::close(fd_);
  }
  StreamRecorder(const StreamRecorder&) = delete;
  StreamRecorder& operator=(const StreamRecorder&) = delete;

  /// Stops reading and waits for the reading thread. Idempotent.
  void stop() {
    stopping_ = true;
    if (reader_.joinable()) reader_.join();
  }

  /// The response's status code, 0 before the head arrived.
  unsigned status() const { return status_; }
  /// True once the server closed the stream (or the connection broke, or it was malformed).
  bool ended() const { return ended_; }
  /// True when reading stopped at a chunk size or an `id:` that is not a number.
  bool malformed() const { return malformed_; }

  /// Every position received, in the order received.
  std::vector<std::int64_t> positions() const {
    std::lock_guard lock(mutex_);
    return positions_;
  }
  /// The last position received, 0 before any.
  std::int64_t last() const {
    std::lock_guard lock(mutex_);
    return positions_.empty() ? 0 : positions_.back();
  }
  /// When `position` was received, or nullopt.
  std::optional<Clock::time_point> received_at(std::int64_t position) const {
    std::lock_guard lock(mutex_);
    const auto it = received_at_.find(position);
    if (it == received_at_.end()) return std::nullopt;
    return it->second;
  }

  /// Waits until a position at or after `position` arrived; true when one did in time.
  bool wait_for_position(std::int64_t position, std::chrono::milliseconds timeout) const {
    return wait_until([&] { return last() >= position; }, timeout);
  }
  /// Waits until `count` events arrived; true when they did in time.
  bool wait_for_count(std::size_t count, std::chrono::milliseconds timeout) const {
    return wait_until([&] { return positions().size() >= count; }, timeout);
  }
  /// Waits until the stream answered with its head; true when it did in time.
  bool wait_for_head(std::chrono::milliseconds timeout) const {
    return wait_until([&] { return status_ != 0; }, timeout);
  }

 private:
  void run() {
    std::string raw;   // bytes not decoded yet
    std::string text;  // the decoded body, not yet split into events
    bool head_done = false;
    bool chunked = false;
    char buffer[16384];
    while (!stopping_) {
      pollfd readable{.fd = fd_, .events = POLLIN, .revents = 0};
      const int ready = ::poll(&readable, 1, 50);
      if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
      if (ready < 0) break;
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      const Clock::time_point now = Clock::now();
      raw.append(buffer, static_cast<std::size_t>(n));
      if (!head_done) {
        const std::size_t end = raw.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        std::string head = raw.substr(0, end);
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        chunked = head.find("\r\ntransfer-encoding: chunked") != std::string::npos;
        raw.erase(0, end + 4);
        head_done = true;
        status_ =
            head.size() >= 12 ? static_cast<unsigned>(std::atoi(head.substr(9, 3).c_str())) : 999;
      }
      bool finished = false;
      try {
        if (chunked) {
          finished = !decode_chunks(raw, text);
        } else {
          text += raw;
          raw.clear();
        }
        take_events(text, now);
      } catch (const std::exception&) {
        // A chunk size or an id that is not a number: the stream is broken; stop reading it.
        malformed_ = true;
        break;
      }
      if (finished) break;
    }
    ended_ = true;
  }

  // Moves the complete chunks of `raw` to `text` (RFC 9112, section 7.1); false after the last
  // chunk.
  static bool decode_chunks(std::string& raw, std::string& text) {
    for (;;) {
      const std::size_t line_end = raw.find("\r\n");
      if (line_end == std::string::npos) return true;
      const std::size_t size = std::stoul(raw.substr(0, raw.find(';')), nullptr, 16);
      if (size == 0) return false;
      if (raw.size() < line_end + 2 + size + 2) return true;
      text.append(raw, line_end + 2, size);
      raw.erase(0, line_end + 2 + size + 2);
    }
  }

  // Records the `id:` of every complete event in `text` (the SSE format: fields on lines, an
  // empty line ends an event).
  void take_events(std::string& text, Clock::time_point now) {
    for (;;) {
      const std::size_t end = text.find("\n\n");
      if (end == std::string::npos) return;
      std::istringstream block(text.substr(0, end));
      text.erase(0, end + 2);
      for (std::string line; std::getline(block, line);) {
        if (!line.starts_with("id:")) continue;
        const std::size_t value = line.size() > 3 && line[3] == ' ' ? 4 : 3;
        const std::int64_t position = std::stoll(line.substr(value));
        std::lock_guard lock(mutex_);
        positions_.push_back(position);
        received_at_.emplace(position, now);
      }
    }
  }

  int fd_ = -1;
  std::thread reader_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> ended_{false};
  std::atomic<bool> malformed_{false};
  std::atomic<unsigned> status_{0};
  mutable std::mutex mutex_;
  std::vector<std::int64_t> positions_;
  std::map<std::int64_t, Clock::time_point> received_at_;
};

/// A UserCreatedEvent of organization 7 as JSON, without an event id (the server gives one).
inline std::string user_created_json(std::int64_t user) {
  const std::string id = std::to_string(user);
  return R"({"event_type":"UserCreatedEvent","entity_type":"User","entity_id":)" + id +
         R"(,"user_id":-1,"organization_id":7,"discord_id":)" + std::to_string(1000000 + user) +
         R"(,"discord_username":"racer)" + id + R"("})";
}

/// The positions a POST /api/v1/events answered (one event or a batch).
inline std::vector<std::int64_t> posted_positions(const herald::testing::HttpReply& reply) {
  std::vector<std::int64_t> out;
  const auto& body = reply.json().as_object();
  if (const auto* results = body.if_contains("results")) {
    for (const auto& result : results->as_array()) {
      out.push_back(result.at("position").to_number<std::int64_t>());
    }
  } else {
    out.push_back(body.at("position").to_number<std::int64_t>());
  }
  return out;
}

/// Posts batches of UserCreatedEvents on a thread of its own, to the given nodes in turn, until
/// `stop()`; records the positions the nodes answered and every failure. Thread-safe.
class Ingester {
 public:
  /// Starts posting `batch` events at a time to `ports` in turn, `pause` between batches.
  Ingester(std::vector<std::uint16_t> ports, std::string token, std::size_t batch = 5,
           std::chrono::milliseconds pause = std::chrono::milliseconds(20))
      : ports_(std::move(ports)), token_(std::move(token)), batch_(batch), pause_(pause) {
    poster_ = std::thread([this] { run(); });
  }
  ~Ingester() { stop(); }
  Ingester(const Ingester&) = delete;
  Ingester& operator=(const Ingester&) = delete;

  /// Stops posting after the batch in flight and waits for it. Idempotent.
  void stop() {
    stopping_ = true;
    if (poster_.joinable()) poster_.join();
  }

  /// How many events the nodes acknowledged.
  std::size_t stored() const {
    std::lock_guard lock(mutex_);
    return positions_.size();
  }
  /// The positions acknowledged, in the order the answers came.
  std::vector<std::int64_t> positions() const {
    std::lock_guard lock(mutex_);
    return positions_;
  }
  /// Every failed POST, described.
  std::vector<std::string> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  /// Waits until `count` events in all were acknowledged; true when they were in time.
  bool wait_for_stored(std::size_t count, std::chrono::milliseconds timeout) const {
    return wait_until([&] { return stored() >= count; }, timeout);
  }

 private:
  void run() {
    std::map<std::uint16_t, std::unique_ptr<herald::testing::HttpClient>> clients;
    std::int64_t user = 1;
    for (std::size_t turn = 0; !stopping_; ++turn) {
      const std::uint16_t port = ports_[turn % ports_.size()];
      std::string body = "[";
      for (std::size_t i = 0; i < batch_; ++i) body += (i ? "," : "") + user_created_json(user++);
      body += "]";
      try {
        auto& client = clients[port];
        if (!client) client = std::make_unique<herald::testing::HttpClient>(port);
        const herald::testing::HttpReply reply = client->post("/api/v1/events", token_, body);
        std::lock_guard lock(mutex_);
        if (reply.status == 201) {
          for (std::int64_t position : posted_positions(reply)) positions_.push_back(position);
        } else {
          errors_.push_back("POST to port " + std::to_string(port) + ": " +
                            std::to_string(reply.status) + " " + reply.body);
        }
      } catch (const std::exception& e) {
        clients.erase(port);
        std::lock_guard lock(mutex_);
        errors_.push_back("POST to port " + std::to_string(port) + ": " + e.what());
      }
      std::this_thread::sleep_for(pause_);
    }
  }

  std::vector<std::uint16_t> ports_;
  std::string token_;
  std::size_t batch_;
  std::chrono::milliseconds pause_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<std::int64_t> positions_;
  std::vector<std::string> errors_;
  std::thread poster_;
};

/// Every position the store holds, oldest first, read through GET /api/v1/events a page at a
/// time.
inline std::vector<std::int64_t> store_positions(std::uint16_t port, const std::string& token) {
  herald::testing::HttpClient client(port);
  std::vector<std::int64_t> out;
  std::int64_t after = 0;
  for (;;) {
    const herald::testing::HttpReply reply =
        client.get("/api/v1/events?limit=1000&after=" + std::to_string(after), token);
    if (reply.status != 200) throw std::runtime_error("GET /api/v1/events: " + reply.body);
    const auto& body = reply.json().as_object();
    for (const auto& event : body.at("events").as_array()) {
      out.push_back(event.at("position").to_number<std::int64_t>());
    }
    const auto& next = body.at("next_after");
    if (next.is_null()) return out;
    after = next.to_number<std::int64_t>();
  }
}

/// What GET /api/v1/cluster says of the roles: the role's name and whether this node leads it.
inline std::map<std::string, bool> cluster_roles(const boost::json::value& cluster) {
  std::map<std::string, bool> out;
  for (const auto& role : cluster.at("roles").as_array()) {
    out[std::string(role.at("role").as_string())] = role.at("leader").as_bool();
  }
  return out;
}

}  // namespace herald::cluster_test
