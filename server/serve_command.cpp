#include "serve_command.hpp"

#include <fmt/core.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <csignal>

#include "herald/api_tokens.hpp"
#include "herald/authenticator.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event_bus.hpp"
#include "herald/event_store.hpp"
#include "herald/http/server.hpp"
#include "herald/metrics.hpp"
#include "platform_consumers.hpp"
#include "store_commands.hpp"

namespace herald::server {

struct ServeCommand::Flags {
  StoreFlags store;
  http::ServerOptions server;
  std::int64_t read_timeout_ms = 10'000;
  std::int64_t idle_timeout_ms = 60'000;
  std::int64_t heartbeat_ms = 15'000;
  std::int64_t shutdown_grace_ms = 10'000;
  bool bootstrap_admin = false;
  bool no_consumers = false;
};

ServeCommand::ServeCommand(CLI::App& app) : flags_(std::make_unique<Flags>()) {
  Flags& f = *flags_;
  command_ = app.add_subcommand("serve",
                                "Serve the HTTP API and the live event stream (docs/http-api.md)");
  add_store_flags(*command_, f.store,
                  "The SQLite file to serve (created if missing; default herald.db)");
  f.store.db_option->envname("HERALD_DB");
  f.store.store_option->envname("HERALD_STORE");
  command_->add_option("--listen", f.server.listen, "Address and port to listen on")
      ->envname("HERALD_LISTEN")
      ->capture_default_str();
  command_->add_option("--threads", f.server.threads, "I/O threads; 0 means one per core")
      ->envname("HERALD_THREADS")
      ->check(CLI::Range(0U, 256U))
      ->capture_default_str();
  auto& limits = f.server.limits;
  command_
      ->add_option("--max-header-bytes", limits.header_bytes, "Largest request line and headers")
      ->envname("HERALD_MAX_HEADER_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20))
      ->capture_default_str();
  command_->add_option("--max-body-bytes", limits.body_bytes, "Largest request body")
      ->envname("HERALD_MAX_BODY_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20))
      ->capture_default_str();
  command_
      ->add_option("--max-connections", limits.connections, "Open connections, streams included")
      ->envname("HERALD_MAX_CONNECTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  command_
      ->add_option("--read-timeout-ms", f.read_timeout_ms,
                   "Time a request may take to arrive once it began")
      ->envname("HERALD_READ_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3'600'000}))
      ->capture_default_str();
  command_
      ->add_option("--idle-timeout-ms", f.idle_timeout_ms,
                   "Time a keep-alive connection may wait for its next request")
      ->envname("HERALD_IDLE_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3'600'000}))
      ->capture_default_str();
  command_
      ->add_option("--rate-limit", limits.requests_per_second,
                   "Requests per second per token; 0 turns limiting off")
      ->envname("HERALD_RATE_LIMIT")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  command_
      ->add_option("--rate-burst", limits.request_burst,
                   "Requests a token may send at once after a quiet spell")
      ->envname("HERALD_RATE_BURST")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  command_
      ->add_option("--stream-queue", limits.stream_queue_events,
                   "Events a stream client may fall behind before it is cut off")
      ->envname("HERALD_STREAM_QUEUE")
      ->check(CLI::Range(std::size_t{16}, std::size_t{10'000'000}))
      ->capture_default_str();
  command_->add_option("--heartbeat-ms", f.heartbeat_ms, "Heartbeat interval of idle streams")
      ->envname("HERALD_HEARTBEAT_MS")
      ->check(CLI::Range(std::int64_t{10}, std::int64_t{3'600'000}))
      ->capture_default_str();
  command_
      ->add_option("--shutdown-grace-ms", f.shutdown_grace_ms,
                   "How long a stop waits for requests in flight")
      ->envname("HERALD_SHUTDOWN_GRACE_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{600'000}))
      ->capture_default_str();
  command_->add_flag("--public-metrics", f.server.public_metrics, "Serve /metrics without a token")
      ->envname("HERALD_PUBLIC_METRICS");
  command_->add_flag("--access-log", f.server.access_log, "Log every request on stderr")
      ->envname("HERALD_ACCESS_LOG");
  command_->add_flag("--bootstrap-admin-token", f.bootstrap_admin,
                     "When the store has no token yet, create one named 'admin' with every "
                     "scope and print it once");
  command_
      ->add_flag("--no-consumers", f.no_consumers,
                 "Do not run the platform's durable consumers (the audit log) here")
      ->envname("HERALD_NO_CONSUMERS");
  command_->footer(
      "Stops gracefully on SIGTERM or SIGINT: no new connections, requests in flight answered,\n"
      "streams ended, consumers' checkpoints saved; exit status 0.\n"
      "Example: herald serve --listen 127.0.0.1:8080 --db herald.db");
}

ServeCommand::~ServeCommand() = default;

bool ServeCommand::parsed() const { return command_->parsed(); }

namespace {

/// Creates the first token when the store has none; returns it (empty when tokens existed).
std::expected<std::string, Error> bootstrap_admin(EventStore& store) {
  auto tokens = store.list_tokens();
  if (!tokens) return std::unexpected(std::move(tokens.error()));
  if (!tokens->empty()) return std::string();
  auto token = generate_api_token();
  if (!token) return std::unexpected(std::move(token.error()));
  auto created = store.create_token("admin", api_token_sha256(*token),
                                    Scope::ingest | Scope::read | Scope::audit | Scope::admin,
                                    std::nullopt, std::nullopt);
  if (!created) return std::unexpected(std::move(created.error()));
  return std::move(*token);
}

void print_first_token(std::FILE* out, const std::string& token, const std::string& base) {
  fmt::print(out,
             "Created the first API token, 'admin' (every scope). It is shown only now; keep it:\n"
             "\n  {}\n\n"
             "Try it:\n"
             "  curl -s -H 'Authorization: Bearer {}' '{}/api/v1/events?limit=5'\n"
             "  curl -N '{}/api/v1/events/stream?access_token={}'\n"
             "  herald demo --to {} --token {}\n"
             "More tokens: herald token create --name NAME --scopes ingest,read\n\n",
             token, token, base, base, token, base, token);
  std::fflush(out);
}

}  // namespace

int ServeCommand::run(std::FILE* out) {
  Flags& f = *flags_;
  // Signals are taken by this thread alone (sigwait below); every thread started from here on
  // inherits the mask, so none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Logs go to stderr; stdout carries what the command reports (the address, the first token).
  spdlog::set_default_logger(spdlog::stderr_color_mt("herald"));

  auto location = resolve_store_location(f.store, true, "herald.db");
  if (!location) {
    fmt::print(stderr, "herald serve: {}\n", location.error().message);
    return 2;
  }
  const EventCatalog& catalog = domain::platform_catalog();
  auto opened = open_store(StoreOptions{.location = *location, .catalog = &catalog});
  if (!opened) {
    fmt::print(stderr, "herald serve: {}\n", opened.error().message);
    return 1;
  }
  EventStore& store = **opened;
  std::string first_token;
  if (f.bootstrap_admin) {
    auto made = bootstrap_admin(store);
    if (!made) {
      fmt::print(stderr, "herald serve: creating the first token failed: {}\n",
                 made.error().message);
      return 1;
    }
    first_token = std::move(*made);
  }

  f.server.limits.read_timeout = std::chrono::milliseconds(f.read_timeout_ms);
  f.server.limits.idle_timeout = std::chrono::milliseconds(f.idle_timeout_ms);
  f.server.heartbeat = std::chrono::milliseconds(f.heartbeat_ms);
  f.server.shutdown_grace = std::chrono::milliseconds(f.shutdown_grace_ms);

  EventBus bus(EventBusOptions{.name = "serve"});
  Authenticator authenticator(store);
  MetricsRegistry metrics;

  std::vector<std::unique_ptr<DurableConsumer>> consumers;
  if (!f.no_consumers) {
    for (std::string_view name : platform_consumer_names()) {
      auto consumer = make_platform_consumer(store, name);
      if (auto started = consumer->start(); !started) {
        fmt::print(stderr, "herald serve: starting consumer '{}' failed: {}\n", name,
                   started.error().message);
        return 1;
      }
      consumers.push_back(std::move(consumer));
    }
  }

  http::ServerServices services{
      .store = &store,
      .catalog = &catalog,
      .bus = &bus,
      .authenticator = &authenticator,
      .metrics = &metrics,
      .consumers = {},
  };
  for (const auto& consumer : consumers) services.consumers.push_back(consumer.get());
  auto server = http::Server::start(std::move(services), f.server);
  if (!server) {
    fmt::print(stderr, "herald serve: {}\n", server.error().message);
    for (auto& consumer : consumers) consumer->stop();
    return 1;
  }
  const std::string base = "http://" + f.server.listen.substr(0, f.server.listen.rfind(':') + 1) +
                           std::to_string((*server)->port());
  fmt::print(out, "herald serve: listening on {} (store {}, {} consumers)\n", base,
             describe_location(*location), consumers.size());
  if (!first_token.empty()) print_first_token(out, first_token, base);
  std::fflush(out);

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("{} received: stopping", received == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->stop();
  bus.drain();
  for (auto& consumer : consumers) consumer->stop();
  fmt::print(out, "herald serve: stopped\n");
  std::fflush(out);
  return 0;
}

}  // namespace herald::server
