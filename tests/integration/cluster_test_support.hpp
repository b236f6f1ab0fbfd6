#pragma once

// Shared by the cluster tests: the servers the wrappers started (scripts/with_postgres.sh,
// scripts/with_nats.sh), a JetStream reader that reads a stream back with a consumer, and
// restarting nats-server by pid on the same port and store directory.

#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace herald::cluster_test {

using namespace std::chrono_literals;

/// The value of environment variable `name`, or nullopt when unset or empty.
inline std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

/// Polls `condition` every `interval` until it holds or `timeout` passes; true when it held.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds interval = 10ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
inline bool port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool open = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return open;
}

/// One message as the stream holds it.
struct StreamMessage {
  std::string subject;
  std::string body;
  std::string message_id;
  std::string position;
  std::uint64_t sequence = 0;
};

/// A NATS connection of the test's own, to inspect and write JetStream streams.
class JetStreamClient {
 public:
  explicit JetStreamClient(const std::string& url) {
    natsOptions* options = nullptr;
    check(natsOptions_Create(&options), "options");
    natsOptions_SetURL(options, url.c_str());
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 100);
    const natsStatus s = natsConnection_Connect(&connection_, options);
    natsOptions_Destroy(options);
    check(s, "connect to " + url);
    check(natsConnection_JetStream(&context_, connection_, nullptr), "JetStream context");
  }
  ~JetStreamClient() {
    jsCtx_Destroy(context_);
    natsConnection_Destroy(connection_);
  }
  JetStreamClient(const JetStreamClient&) = delete;
  JetStreamClient& operator=(const JetStreamClient&) = delete;

  /// How many messages `stream` holds (nullopt when the stream does not exist or NATS is down).
  std::optional<std::uint64_t> message_count(const std::string& stream) {
    jsStreamInfo* info = nullptr;
    if (js_GetStreamInfo(&info, context_, stream.c_str(), nullptr, nullptr) != NATS_OK) {
      return std::nullopt;
    }
    const std::uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return count;
  }

  /// The duplicate window `stream` was created with.
  std::chrono::nanoseconds duplicate_window(const std::string& stream) {
    jsStreamInfo* info = nullptr;
    check(js_GetStreamInfo(&info, context_, stream.c_str(), nullptr, nullptr), "stream info");
    const std::chrono::nanoseconds window(info->Config->Duplicates);
    jsStreamInfo_Destroy(info);
    return window;
  }

  /// Reads `stream` from its first message with an ephemeral push consumer (deliver all, no
  /// acks) until `count` messages arrived or `timeout` passed, then for `quiet` more to catch any
  /// message beyond `count`.
  std::vector<StreamMessage> read(const std::string& stream, const std::string& subjects,
                                  std::size_t count, std::chrono::milliseconds timeout = 10s,
                                  std::chrono::milliseconds quiet = 200ms) {
    jsSubOptions sub_options;
    jsSubOptions_Init(&sub_options);
    sub_options.Stream = stream.c_str();
    sub_options.Config.DeliverPolicy = js_DeliverAll;
    sub_options.Config.AckPolicy = js_AckNone;
    natsSubscription* sub = nullptr;
    jsErrCode js_error{};
    check(js_SubscribeSync(&sub, context_, subjects.c_str(), nullptr, &sub_options, &js_error),
          "subscribe to " + stream);
    std::vector<StreamMessage> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const bool counted = out.size() >= count;
      const auto now = std::chrono::steady_clock::now();
      if (!counted && now >= deadline) break;
      const auto wait =
          counted ? quiet
                  : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) + 1ms;
      natsMsg* message = nullptr;
      if (natsSubscription_NextMsg(&message, sub, wait.count()) != NATS_OK) {
        if (counted) break;
        continue;
      }
      StreamMessage read_message;
      read_message.subject = natsMsg_GetSubject(message);
      read_message.body.assign(natsMsg_GetData(message),
                               static_cast<std::size_t>(natsMsg_GetDataLength(message)));
      const char* value = nullptr;
      if (natsMsgHeader_Get(message, "Nats-Msg-Id", &value) == NATS_OK) {
        read_message.message_id = value;
      }
      if (natsMsgHeader_Get(message, "Herald-Position", &value) == NATS_OK) {
        read_message.position = value;
      }
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, message) == NATS_OK) {
        read_message.sequence = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
      }
      natsMsg_Destroy(message);
      out.push_back(std::move(read_message));
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return out;
  }

  /// Publishes `body` to `subject` with the given headers and waits for JetStream's ack.
  void publish(const std::string& subject, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers) {
    natsMsg* message = nullptr;
    check(natsMsg_Create(&message, subject.c_str(), nullptr, body.data(),
                         static_cast<int>(body.size())),
          "message");
    for (const auto& [key, value] : headers) natsMsgHeader_Set(message, key.c_str(), value.c_str());
    const natsStatus s = js_PublishMsg(nullptr, context_, message, nullptr, nullptr);
    natsMsg_Destroy(message);
    check(s, "publish to " + subject);
  }

  /// Deletes `stream`; false when it does not exist or NATS does not answer.
  bool delete_stream(const std::string& stream) {
    return js_DeleteStream(context_, stream.c_str(), nullptr, nullptr) == NATS_OK;
  }

  /// Creates `stream` over `subjects` (file storage, defaults otherwise).
  void add_stream(const std::string& stream, const std::string& subjects) {
    const char* list[] = {subjects.c_str()};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = stream.c_str();
    config.Subjects = list;
    config.SubjectsLen = 1;
    jsStreamInfo* info = nullptr;
    check(js_AddStream(&info, context_, &config, nullptr, nullptr), "add stream " + stream);
    jsStreamInfo_Destroy(info);
  }

 private:
  static void check(natsStatus s, const std::string& what) {
    if (s != NATS_OK) {
      throw std::runtime_error("NATS " + what + ": " + natsStatus_GetText(s));
    }
  }

  natsConnection* connection_ = nullptr;
  jsCtx* context_ = nullptr;
};

/// A helper process whose standard output the test reads; killed with SIGKILL at scope end if it
/// still runs.
class ChildProcess {
 public:
  /// Starts `args` (the first one a path); its standard error goes to the file `stderr_path`
  /// when one is given, else to the test's.
  explicit ChildProcess(std::vector<std::string> args, const std::string& stderr_path = {}) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    if (!stderr_path.empty()) {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (spawned != 0) {
      ::close(out[0]);
      throw std::runtime_error("cannot start " + args[0]);
    }
    output_fd_ = out[0];
  }
  ~ChildProcess() {
    kill();
    ::close(output_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// Waits until the process printed `line` on a line of its own; true when it did in time.
  bool wait_for_line(const std::string& line, std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
          read_available();
          return ("\n" + output_).find("\n" + line + "\n") != std::string::npos;
        },
        timeout);
  }

  /// Waits until the process printed `text` anywhere in its output; true when it did in time.
  bool wait_for_text(const std::string& text, std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
          read_available();
          return output_.find(text) != std::string::npos;
        },
        timeout);
  }

  /// Waits up to `timeout` for the process to exit and reaps it: its exit status (128 + the
  /// signal when a signal ended it), or nullopt when it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return exit_status_;
    wait_until(
        [&] {
          int status = 0;
          if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
          exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          pid_ = -1;
          return true;
        },
        timeout);
    read_available();
    return exit_status_;
  }

  /// What the process printed so far.
  const std::string& output() const noexcept { return output_; }

  /// Kills the process with SIGKILL and reaps it. Idempotent.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  // Appends what the process wrote and the pipe holds now, without waiting.
  void read_available() {
    pollfd readable{.fd = output_fd_, .events = POLLIN, .revents = 0};
    while (::poll(&readable, 1, 0) > 0 && (readable.revents & POLLIN) != 0) {
      char buffer[4096];
      const ssize_t n = ::read(output_fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      output_.append(buffer, static_cast<std::size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int output_fd_ = -1;
  std::string output_;
  std::optional<int> exit_status_;
};

/// The nats-server that scripts/with_nats.sh started: kill it by pid, start it again on the same
/// port and store directory (with the same pid file, so that the wrapper stops the new one).
class NatsServer {
 public:
  NatsServer()
      : port_(std::stoi(env("HERALD_TEST_NATS_PORT").value())),
        store_dir_(env("HERALD_TEST_NATS_STORE_DIR").value()),
        pid_file_(env("HERALD_TEST_NATS_PID_FILE").value()) {}

  /// The pid the pid file names.
  pid_t pid() const {
    std::ifstream in(pid_file_);
    long pid = 0;
    in >> pid;
    if (pid <= 0) throw std::runtime_error("no pid in " + pid_file_);
    return static_cast<pid_t>(pid);
  }

  /// Kills the server with SIGKILL and waits until its port refuses connections.
  void kill() {
    const pid_t server = pid();
    if (::kill(server, SIGKILL) != 0) throw std::runtime_error("kill nats-server failed");
    // A server this process started is reaped here; the wrapper's is its own to reap.
    if (server == child_) {
      ::waitpid(child_, nullptr, 0);
      child_ = -1;
    }
    if (!wait_until([&] { return !port_open(port_); }, 10s)) {
      throw std::runtime_error("nats-server still answers after SIGKILL");
    }
  }

  /// Starts nats-server again with the same port, store directory and pid file, and waits until
  /// it accepts connections.
  void start() {
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {
        "nats-server", "-js",      "-a", "127.0.0.1", "-p", port,
        "-sd",         store_dir_, "-P", pid_file_,   "-l", store_dir_ + "/../nats-restarted.log"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t child = -1;
    if (posix_spawnp(&child, "nats-server", nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start nats-server");
    }
    child_ = child;
    if (!wait_until([&] { return port_open(port_); }, 10s)) {
      throw std::runtime_error("restarted nats-server does not answer on port " + port);
    }
  }

 private:
  int port_;
  std::string store_dir_;
  std::string pid_file_;
  pid_t child_ = -1;
};

}  // namespace herald::cluster_test
