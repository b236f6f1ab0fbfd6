#pragma once

// Waiting, in tests, for state that offers nothing to block on (a server's view of its
// sessions, work done on another thread or process), and reading the test's environment.

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

namespace herald::test {

/// Polls `condition` every millisecond until it holds or `timeout` passes; whether it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// The environment variable `name`, or "" when it is not set.
inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace herald::test
