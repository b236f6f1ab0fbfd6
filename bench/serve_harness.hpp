#pragma once

// What the benchmarks that drive `herald serve` share (herald_http_bench, herald_cluster_bench):
// where their files go, the POST requests they send, the server as a child process, the kernel's
// counters of a process, and a reader for the chunked event stream of GET /api/v1/events/stream.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_files.hpp"

#include "herald/event_id.hpp"
#include "herald/json.hpp"
#include "platform_events.hpp"

extern char** environ;

namespace herald_bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// Prints "PROGRAM: message" on standard error and exits with status 1.
[[noreturn]] inline void die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
  std::exit(1);
}

/// Seconds from `from` to `to`.
inline double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

/// Nearest-rank percentile of `sorted` (q in [0, 1]).
inline double percentile(const std::vector<float>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

/// Microseconds as "850 µs" or "12.3 ms".
inline std::string format_us(double us) {
  if (us >= 1000 || us <= -1000) return fmt::format("{:.1f} ms", us / 1000);
  return fmt::format("{:.0f} µs", us);
}

/// The three load averages, "0.52 1.10 1.43".
inline std::string load_average() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) return "unknown";
  return fmt::format("{:.2f} {:.2f} {:.2f}", load[0], load[1], load[2]);
}

/// The first "model name" of /proc/cpuinfo.
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("model name")) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// ---------------------------------------------------------------------------------------------
// Where the files go

/// The directory of this executable (the build's bench/ directory).
inline fs::path own_directory() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : self.parent_path();
}

/// A fresh directory `prefix.XXXXXX` under $HERALD_BENCH_DIR, else the temporary directory unless
/// it is a tmpfs (fsync there costs nothing and would flatter every durable write), else the build
/// directory.
inline fs::path make_directory(std::string_view prefix) {
  auto directory = make_bench_directory(prefix, own_directory().parent_path());
  if (!directory) die(directory.error());
  return std::move(*directory);
}

// ---------------------------------------------------------------------------------------------
// Requests: four of the platform's types in turn, as herald_store_bench appends them

/// A whole HTTP request (line, headers, body) with the offsets of each event_id in it, so a
/// connection sends a fresh id per event by overwriting 36 bytes instead of encoding again.
struct RequestText {
  std::string text;
  std::vector<std::size_t> id_offsets;

  /// Writes a fresh event_id into every event of the request.
  void refresh_ids() {
    for (const std::size_t offset : id_offsets) {
      const std::string id = herald::EventId::generate().to_string();
      std::memcpy(text.data() + offset, id.data(), id.size());
    }
  }
};

/// POST /api/v1/events with the events made from `first`..`first + count - 1`: one object when
/// `count` is 1 and `as_array` is false, else an array.
inline RequestText make_post(std::int64_t first, std::size_t count, bool as_array,
                             const std::string& token, std::uint16_t port) {
  std::string body = as_array ? "[" : "";
  std::vector<std::pair<std::size_t, std::string>> ids;
  for (std::size_t i = 0; i < count; ++i) {
    const herald::EventPtr event = make_event(first + static_cast<std::int64_t>(i));
    const std::string encoded = herald::encode_event(event);
    const std::string id = event->event_id.to_string();
    const std::size_t at = encoded.find(id);
    if (at == std::string::npos) die("an encoded event does not hold its event_id");
    if (i > 0) body += ',';
    ids.emplace_back(body.size() + at, id);
    body += encoded;
  }
  if (as_array) body += ']';
  RequestText request;
  request.text = fmt::format(
      "POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n"
      "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
      port, token, body.size());
  const std::size_t head = request.text.size();
  request.text += body;
  for (const auto& [offset, id] : ids) request.id_offsets.push_back(head + offset);
  return request;
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A finished child's exit status and standard output.
struct ChildOutput {
  int status = -1;
  std::string out;
};

/// Starts `argv` with standard output on a new pipe (its read end returned in `stdout_fd`) and
/// standard error appended to `stderr_log`; returns the pid.
inline pid_t spawn_child(const std::vector<std::string>& argv, const fs::path& stderr_log,
                         int& stdout_fd) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) die("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) die(fmt::format("cannot start {}: {}", argv[0], std::strerror(spawned)));
  stdout_fd = pipe_fds[0];
  return pid;
}

/// Runs `argv` to completion and returns its exit status and standard output.
inline ChildOutput run_and_capture(const std::vector<std::string>& argv,
                                   const fs::path& stderr_log) {
  int stdout_fd = -1;
  const pid_t pid = spawn_child(argv, stderr_log, stdout_fd);
  ChildOutput result;
  char chunk[4096];
  for (ssize_t n; (n = read(stdout_fd, chunk, sizeof chunk)) > 0;) result.out.append(chunk, n);
  close(stdout_fd);
  waitpid(pid, &result.status, 0);
  return result;
}

/// The last 2,000 characters of `file`.
inline std::string tail_of(const fs::path& file) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

/// Kernel counters of one process, read from /proc.
struct ProcessSample {
  double cpu_seconds = 0;
  pid_t parent = 0;
};

/// The user and system CPU time of `pid` so far and its parent (zeros when it is gone).
inline ProcessSample sample_process(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const std::size_t close = text.rfind(')');
  ProcessSample sample;
  if (close == std::string::npos) return sample;
  std::vector<std::string> fields;
  std::size_t at = close + 2;
  while (at < text.size()) {
    const std::size_t space = text.find(' ', at);
    fields.push_back(text.substr(at, space - at));
    if (space == std::string::npos) break;
    at = space + 1;
  }
  // utime and stime are fields 14 and 15 of stat(5); the list starts at field 3.
  if (fields.size() > 12) {
    sample.parent = static_cast<pid_t>(std::strtol(fields[1].c_str(), nullptr, 10));
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    sample.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
  }
  return sample;
}

/// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); 0 when unreadable.
inline long status_kib(pid_t pid, std::string_view field) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

/// Creates an API token with the scopes ingest and read in the store `store_flags` names
/// ({"--db", FILE} or {"--store", URL}) with `herald token create`, which also creates the store;
/// returns the token.
inline std::string create_token(const fs::path& herald, const std::vector<std::string>& store_flags,
                                const fs::path& log) {
  std::vector<std::string> argv{herald.string(), "token",    "create",     "--name",
                                "bench",         "--scopes", "ingest,read"};
  argv.insert(argv.end(), store_flags.begin(), store_flags.end());
  const ChildOutput token = run_and_capture(argv, log);
  if (token.status != 0) {
    die(fmt::format("herald token create failed (status {}):\n{}", token.status, tail_of(log)));
  }
  std::string text = token.out.substr(0, token.out.find('\n'));
  if (text.empty()) die("herald token create printed no token");
  return text;
}

/// A running `herald serve` (or any program printing "listening on http://HOST:PORT"): the
/// constructor starts `argv` with standard error appended to `log` and returns once the line
/// is printed, exiting the benchmark if it is not within 30 s. Not thread-safe.
class ServeProcess {
 public:
  ServeProcess(const std::vector<std::string>& argv, fs::path log) : log_(std::move(log)) {
    pid_ = spawn_child(argv, log_, stdout_fd_);
    // The server prints "herald serve: listening on http://127.0.0.1:PORT (...)" once it
    // accepts connections.
    constexpr std::string_view marker = "listening on http://";
    std::string out;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (out.find('\n', out.find(marker)) == std::string::npos || out.find(marker) == out.npos) {
      pollfd ready{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0 || poll(&ready, 1, static_cast<int>(left.count())) <= 0) {
        die("herald serve did not say where it listens within 30 s:\n" + out + tail_of(log_));
      }
      char chunk[1024];
      const ssize_t n = read(stdout_fd_, chunk, sizeof chunk);
      if (n <= 0) die("herald serve ended before listening:\n" + out + tail_of(log_));
      out.append(chunk, static_cast<std::size_t>(n));
    }
    const std::size_t at = out.find(marker) + marker.size();
    const std::size_t colon = out.find(':', at);
    port_ = static_cast<std::uint16_t>(std::strtoul(out.c_str() + colon + 1, nullptr, 10));
    if (port_ == 0) die("cannot read the port from: " + out);
  }

  ~ServeProcess() {
    if (pid_ > 0) stop();
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  /// The child's pid (-1 once stopped).
  pid_t pid() const { return pid_; }
  /// The port it listens on.
  std::uint16_t port() const { return port_; }
  /// 127.0.0.1:port.
  boost::asio::ip::tcp::endpoint endpoint() const {
    return {boost::asio::ip::make_address_v4("127.0.0.1"), port_};
  }
  /// The file its standard error goes to.
  const fs::path& log() const { return log_; }

  /// SIGTERM, then waits (SIGKILL after 60 s); returns a description of how it ended.
  std::string stop() {
    if (pid_ <= 0) return "not running";
    kill(pid_, SIGTERM);
    int status = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    std::string how;
    for (;;) {
      const pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        how = "killed after 60 s; ";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    close(stdout_fd_);
    if (WIFEXITED(status)) return how + fmt::format("exit status {}", WEXITSTATUS(status));
    return how + fmt::format("ended by signal {}", WTERMSIG(status));
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The event stream's body

/// Reads the response of GET /api/v1/events/stream as it arrives: the head, then the chunked
/// body (RFC 9112 section 7.1), cut into the lines of the event stream (HTML standard, section
/// 9.2.6). Not thread-safe: one per connection.
class SseStreamReader {
 public:
  /// Feeds `size` received bytes and calls `on_line(std::string_view)` for each complete line
  /// (without its CR, at most its first 64 bytes: only a line's start matters here, so a long
  /// data line is not copied); returns false once the response is malformed (see error()).
  template <typename OnLine>
  bool consume(const char* data, std::size_t size, OnLine&& on_line) {
    while (size > 0 && error_.empty()) {
      switch (reading_) {
        case Reading::head: {
          head_.append(data, size);
          const std::size_t end = head_.find("\r\n\r\n");
          if (end == std::string::npos) {
            if (head_.size() > 64 * 1024) error_ = "response headers over 64 KiB";
            return error_.empty();
          }
          if (!head_.starts_with("HTTP/1.1 200")) {
            error_ = "the stream answered " + head_.substr(0, head_.find('\r'));
            return false;
          }
          std::string lower = head_.substr(0, end);
          std::transform(lower.begin(), lower.end(), lower.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
          if (lower.find("transfer-encoding: chunked") == std::string::npos) {
            error_ = "the stream is not chunked";
            return false;
          }
          const std::string rest = head_.substr(end + 4);
          head_.clear();
          reading_ = Reading::chunk_size;
          return consume(rest.data(), rest.size(), on_line);
        }
        case Reading::chunk_size: {
          const auto* newline = static_cast<const char*>(std::memchr(data, '\n', size));
          const std::size_t length = newline ? static_cast<std::size_t>(newline - data) : size;
          head_.append(data, length);
          if (newline == nullptr) return true;
          data += length + 1;
          size -= length + 1;
          char* end = nullptr;
          chunk_left_ = std::strtoull(head_.c_str(), &end, 16);
          if (end == head_.c_str()) {
            error_ = "bad chunk size line '" + head_ + "'";
            return false;
          }
          head_.clear();
          reading_ = chunk_left_ == 0 ? Reading::trailer : Reading::chunk_data;
          break;
        }
        case Reading::chunk_data: {
          const std::size_t take = std::min<std::size_t>(size, chunk_left_);
          take_lines(data, take, on_line);
          data += take;
          size -= take;
          chunk_left_ -= take;
          if (chunk_left_ == 0) {
            reading_ = Reading::chunk_end;
            crlf_left_ = 2;
          }
          break;
        }
        case Reading::chunk_end: {
          const std::size_t take = std::min(size, crlf_left_);
          data += take;
          size -= take;
          crlf_left_ -= take;
          if (crlf_left_ == 0) reading_ = Reading::chunk_size;
          break;
        }
        case Reading::trailer:
          return true;
      }
    }
    return error_.empty();
  }

  /// Whether the final (zero-size) chunk arrived: the server ended the stream cleanly.
  bool ended_cleanly() const { return reading_ == Reading::trailer; }
  /// What was wrong with the response (empty while it is well formed).
  const std::string& error() const { return error_; }

 private:
  enum class Reading : std::uint8_t { head, chunk_size, chunk_data, chunk_end, trailer };

  template <typename OnLine>
  void take_lines(const char* data, std::size_t size, OnLine& on_line) {
    constexpr std::size_t kept = 64;
    while (size > 0) {
      const auto* newline = static_cast<const char*>(std::memchr(data, '\n', size));
      const std::size_t length = newline ? static_cast<std::size_t>(newline - data) : size;
      if (line_.size() < kept) line_.append(data, std::min(length, kept - line_.size()));
      if (newline == nullptr) return;
      std::string_view line = line_;
      if (line.ends_with('\r')) line.remove_suffix(1);
      on_line(line);
      line_.clear();
      data += length + 1;
      size -= length + 1;
    }
  }

  Reading reading_ = Reading::head;
  std::string head_;
  std::uint64_t chunk_left_ = 0;
  std::size_t crlf_left_ = 0;
  std::string line_;
  std::string error_;
};

/// The position of an SSE `id:` line, or -1 when `line` is not one.
inline std::int64_t sse_id(std::string_view line) {
  if (!line.starts_with("id:")) return -1;
  line.remove_prefix(line.starts_with("id: ") ? 4 : 3);
  return std::strtoll(std::string(line).c_str(), nullptr, 10);
}

/// The N of the stream's `: live after position N` comment, or -1 when `line` is not it.
inline std::int64_t sse_live_after(std::string_view line) {
  constexpr std::string_view live = ": live after position ";
  if (!line.starts_with(live)) return -1;
  return std::strtoll(std::string(line.substr(live.size())).c_str(), nullptr, 10);
}

}  // namespace herald_bench
