#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "herald/http/server.hpp"

namespace herald::http {

class StreamHub;

/// The server's metrics in the registry of `ServerServices::metrics`: requests by route and
/// status, events ingested by type, append latency, stream clients; and, computed when scraped,
/// consumer lag and parked events (from the store) and handler calls, failures and time (from
/// the bus). Thread-safe.
class ServerMetrics {
 public:
  ServerMetrics(const ServerServices& services, StreamHub& hub);
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  void on_request(std::string_view route, unsigned status, std::chrono::nanoseconds elapsed);
  /// One durable append of `events` events took `elapsed`.
  void on_append(std::chrono::nanoseconds elapsed, std::size_t events);
  /// An event of `type` was newly stored through the API.
  void on_ingested(std::string_view type);
  void on_stream_opened();
  void on_stream_closed();

  /// The registry in the Prometheus text format (version 0.0.4).
  std::string render();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::http
