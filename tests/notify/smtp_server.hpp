#pragma once

// A real SMTP server for tests: aiosmtpd (Debian python3-aiosmtpd) with the Maildir handler in
// smtp_test_handler.py (answers 550 for unknown@ and 451 for busy@), started as a process on
// loopback and stopped by pid.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef HERALD_NOTIFY_TEST_DIR
#error "HERALD_NOTIFY_TEST_DIR must name tests/notify (where smtp_test_handler.py is)"
#endif

namespace herald::notify::testing {

namespace smtp_detail {
namespace fs = std::filesystem;
namespace net = boost::asio;
using tcp = net::ip::tcp;
}  // namespace smtp_detail

/// A loopback port that was free a moment ago.
inline std::uint16_t free_port() {
  smtp_detail::net::io_context io;
  smtp_detail::tcp::acceptor acceptor(
      io, smtp_detail::tcp::endpoint(smtp_detail::net::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

/// True when something listens on the loopback port.
inline bool accepts_connections(std::uint16_t port) {
  smtp_detail::net::io_context io;
  smtp_detail::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect(smtp_detail::tcp::endpoint(smtp_detail::net::ip::make_address("127.0.0.1"), port),
                 ec);
  return !ec;
}

/// A real SMTP server (aiosmtpd) writing to a Maildir, stopped by pid. `port` 0 picks a free
/// port; a given port lets a test start the server where a sender already points (down, then up).
class SmtpServer {
 public:
  explicit SmtpServer(std::uint16_t port = 0) {
    char pattern[] = "/tmp/herald-smtp.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    maildir_ = dir_ / "Maildir";
    port_ = port != 0 ? port : free_port();
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    const std::string maildir = maildir_.string();
    const std::string pythonpath = std::string("PYTHONPATH=") + HERALD_NOTIFY_TEST_DIR;
    const char* argv[] = {"/usr/bin/python3",
                          "-m",
                          "aiosmtpd",
                          "-n",
                          "-l",
                          listen.c_str(),
                          "-c",
                          "smtp_test_handler.RecordingMailbox",
                          maildir.c_str(),
                          nullptr};
    const char* envp[] = {pythonpath.c_str(), "PYTHONDONTWRITEBYTECODE=1", "PATH=/usr/bin:/bin",
                          nullptr};
    if (posix_spawn(&pid_, argv[0], nullptr, nullptr, const_cast<char* const*>(argv),
                    const_cast<char* const*>(envp)) != 0) {
      pid_ = 0;
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      if (accepts_connections(port_)) {
        ready_ = true;
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(50));  // Polling a TCP connect until the server listens.
    }
  }
  ~SmtpServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    smtp_detail::fs::remove_all(dir_, ignored);
  }

  bool ready() const { return ready_; }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }

  /// The raw messages delivered so far (Maildir new/), in no particular order.
  std::vector<std::string> messages() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : smtp_detail::fs::directory_iterator(maildir_ / "new", ec)) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      out.push_back(text.str());
    }
    return out;
  }

 private:
  smtp_detail::fs::path dir_;
  smtp_detail::fs::path maildir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = 0;
  bool ready_ = false;
};

}  // namespace herald::notify::testing
