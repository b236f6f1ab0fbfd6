#include "serve_command.hpp"

#include <fmt/core.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <unistd.h>
#include <csignal>
#include <cstring>

#include "herald/api_tokens.hpp"
#include "herald/authenticator.hpp"
#include "herald/cluster/nats_feed.hpp"
#include "herald/cluster/nats_relay.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/notification_rules.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event_bus.hpp"
#include "herald/event_store.hpp"
#include "herald/http/server.hpp"
#include "herald/metrics.hpp"
#include "herald/notify/delivery_worker.hpp"
#include "herald/notify/notification_consumer.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/notify/sender.hpp"
#include "node_roles.hpp"
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
  // Notification delivery (docs/notifications.md).
  bool no_delivery = false;
  std::size_t delivery_threads = 4;
  std::int64_t delivery_lease_s = 60;
  std::string worker_id;
  notify::DiscordOptions discord;
  notify::EmailOptions email;
  notify::WebhookOptions webhook;
  std::int64_t webhook_timeout_ms = 10'000;
  // Several nodes (docs/cluster.md).
  std::string node_id;
  std::string nats_url;
  std::string nats_stream = "HERALD_EVENTS";
  std::int64_t nats_fallback_ms = 3'000;
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
  command_
      ->add_flag("--no-delivery", f.no_delivery,
                 "Do not send notifications from this process (another herald does)")
      ->envname("HERALD_NO_DELIVERY");
  command_
      ->add_option("--delivery-threads", f.delivery_threads,
                   "Notifications sent at once (Discord, email, webhooks)")
      ->envname("HERALD_DELIVERY_THREADS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}))
      ->capture_default_str();
  command_
      ->add_option("--delivery-lease-s", f.delivery_lease_s,
                   "How long a claimed notification is held before another process may send it "
                   "(after a crash); longer than any provider's timeout")
      ->envname("HERALD_DELIVERY_LEASE_S")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{3600}))
      ->capture_default_str();
  command_
      ->add_option("--worker-id", f.worker_id,
                   "Names this process's delivery claims; default host-pid-random")
      ->envname("HERALD_WORKER_ID");
  command_->add_option("--discord-api-base", f.discord.api_base, "Discord's REST API base URL")
      ->envname("HERALD_DISCORD_API_BASE")
      ->capture_default_str();
  command_
      ->add_option("--discord-bot-token", f.discord.bot_token,
                   "The Discord bot's token; without it no Discord direct message is sent "
                   "(prefer the variable: a flag shows in the process list)")
      ->envname("HERALD_DISCORD_BOT_TOKEN");
  command_
      ->add_option("--smtp-url", f.email.smtp_url,
                   "SMTP server for email: smtp://host:587, smtps://host; without it no email "
                   "is sent")
      ->envname("HERALD_SMTP_URL");
  command_->add_option("--smtp-from", f.email.from, "The address email comes from")
      ->envname("HERALD_SMTP_FROM");
  command_->add_option("--smtp-username", f.email.username, "SMTP login")
      ->envname("HERALD_SMTP_USERNAME");
  command_
      ->add_option("--smtp-password", f.email.password,
                   "SMTP password (prefer the variable: a flag shows in the process list)")
      ->envname("HERALD_SMTP_PASSWORD");
  command_->add_flag("--smtp-starttls", f.email.starttls, "Require STARTTLS on smtp://")
      ->envname("HERALD_SMTP_STARTTLS");
  command_
      ->add_flag("--webhook-allow-private", f.webhook.allow_private_targets,
                 "Let webhooks reach loopback, private and link-local addresses (tests, a "
                 "trusted network)")
      ->envname("HERALD_WEBHOOK_ALLOW_PRIVATE");
  command_
      ->add_option("--webhook-timeout-ms", f.webhook_timeout_ms,
                   "How long a webhook receiver may take to answer")
      ->envname("HERALD_WEBHOOK_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{600'000}))
      ->capture_default_str();
  command_
      ->add_option("--node-id", f.node_id,
                   "This node's name among the nodes sharing the store (logs, /api/v1/cluster, "
                   "the default --worker-id); default host-pid")
      ->envname("HERALD_NODE_ID");
  command_
      ->add_option("--nats", f.nats_url,
                   "NATS JetStream server(s), nats://host:4222: publish the store's events to a "
                   "stream (one node at a time) and feed this node's live streams and bus from it")
      ->envname("HERALD_NATS_URL");
  command_->add_option("--nats-stream", f.nats_stream, "The JetStream stream of the events")
      ->envname("HERALD_NATS_STREAM")
      ->capture_default_str();
  command_
      ->add_option("--nats-fallback-ms", f.nats_fallback_ms,
                   "How long the store may be ahead of the stream, with nothing arriving, before "
                   "this node's live streams read the store itself")
      ->envname("HERALD_NATS_FALLBACK_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3'600'000}))
      ->capture_default_str();
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

/// "<host>-<pid>": a name that differs between the nodes of one machine and across machines.
std::string default_node_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "node");
  return fmt::format("{}-{}", host, ::getpid());
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

  auto notifications = notify::open_notification_store(*location);
  if (!notifications) {
    fmt::print(stderr, "herald serve: opening the notification tables failed: {}\n",
               notifications.error().message);
    return 1;
  }
  const notify::NotificationRules& rules = domain::platform_notification_rules();
  if (!f.email.smtp_url.empty() && f.email.from.empty()) {
    fmt::print(stderr,
               "herald serve: --smtp-url needs --smtp-from (HERALD_SMTP_FROM), the address "
               "email comes from\n");
    return 2;
  }

  f.server.limits.read_timeout = std::chrono::milliseconds(f.read_timeout_ms);
  f.server.limits.idle_timeout = std::chrono::milliseconds(f.idle_timeout_ms);
  f.server.heartbeat = std::chrono::milliseconds(f.heartbeat_ms);
  f.server.shutdown_grace = std::chrono::milliseconds(f.shutdown_grace_ms);

  EventBus bus(EventBusOptions{.name = "serve"});
  Authenticator authenticator(store);
  MetricsRegistry metrics;

  const std::string node_id = f.node_id.empty() ? default_node_id() : f.node_id;
  if (f.worker_id.empty()) f.worker_id = f.node_id;

  // Each durable consumer runs on one node at a time: the one holding its lease (on SQLite, this
  // one). They are built here and started by their lease.
  NodeRoles roles(*location, node_id);
  std::vector<std::unique_ptr<DurableConsumer>> consumers;
  if (!f.no_consumers) {
    for (std::string_view name : platform_consumer_names()) {
      consumers.push_back(make_platform_consumer(store, name));
    }
    consumers.push_back(notify::make_notification_consumer(store, **notifications, rules));
    for (const auto& consumer : consumers) {
      DurableConsumer* c = consumer.get();
      auto added = roles.add(
          "consumer:" + c->name(), [c] { return c->start(); }, [c] { c->stop(); });
      if (!added) {
        fmt::print(stderr, "herald serve: {}\n", added.error().message);
        return 1;
      }
    }
  }

  // Several nodes: one of them relays the store to JetStream; each feeds its streams and bus from
  // there.
  std::unique_ptr<cluster::NatsRelay> relay;
  std::unique_ptr<cluster::NatsFeed> feed;
  if (!f.nats_url.empty()) {
    auto made_relay = cluster::NatsRelay::create(
        store, {.url = f.nats_url, .stream = f.nats_stream, .on_error = [](const Error& error) {
                  spdlog::warn("relay: {}", error.message);
                }});
    if (!made_relay) {
      fmt::print(stderr, "herald serve: --nats/--nats-stream: {}\n", made_relay.error().message);
      return 2;
    }
    relay = std::move(*made_relay);
    cluster::NatsRelay* r = relay.get();
    if (auto added = roles.add(
            "relay:nats", [r] { return r->start(); }, [r] { r->stop(); });
        !added) {
      fmt::print(stderr, "herald serve: {}\n", added.error().message);
      return 1;
    }
    auto made_feed = cluster::NatsFeed::create(
        store, {.url = f.nats_url,
                .stream = f.nats_stream,
                .catalog = &catalog,
                .store_fallback_after = std::chrono::milliseconds(f.nats_fallback_ms),
                .on_error = [](const Error& error) { spdlog::warn("feed: {}", error.message); }});
    if (!made_feed) {
      fmt::print(stderr, "herald serve: --nats/--nats-stream: {}\n", made_feed.error().message);
      return 2;
    }
    feed = std::move(*made_feed);
  }
  if (auto started = roles.start(); !started) {
    fmt::print(stderr, "herald serve: {}\n", started.error().message);
    return 1;
  }

  // Senders for the channels that are configured; a delivery on another channel waits (and is
  // retried on the schedule) until one is.
  f.webhook.timeout = std::chrono::milliseconds(f.webhook_timeout_ms);
  std::vector<std::unique_ptr<notify::Sender>> senders;
  if (!f.discord.bot_token.empty()) senders.push_back(notify::make_discord_dm_sender(f.discord));
  senders.push_back(notify::make_discord_channel_sender(f.discord));
  if (!f.email.smtp_url.empty()) senders.push_back(notify::make_email_sender(f.email));
  senders.push_back(notify::make_webhook_sender(f.webhook));
  std::unique_ptr<notify::DeliveryWorker> worker;
  if (!f.no_delivery) {
    notify::DeliveryWorkerOptions options{.worker_id = f.worker_id,
                                          .threads = f.delivery_threads,
                                          .lease = std::chrono::seconds(f.delivery_lease_s),
                                          .metrics = &metrics};
    for (const auto& sender : senders) options.senders[sender->channel()] = sender.get();
    auto made = notify::DeliveryWorker::create(**notifications, std::move(options));
    if (!made) {
      fmt::print(stderr, "herald serve: {}\n", made.error().message);
      return 1;
    }
    worker = std::move(*made);
    if (auto started = worker->start(); !started) {
      fmt::print(stderr, "herald serve: starting the delivery worker failed: {}\n",
                 started.error().message);
      return 1;
    }
  }

  http::ServerServices services{
      .store = &store,
      .catalog = &catalog,
      .bus = &bus,
      .authenticator = &authenticator,
      .metrics = &metrics,
      .consumers = {},
      .notifications = notifications->get(),
      .notification_rules = &rules,
      .feed = feed.get(),
      .node_status =
          [&roles, &feed, &f, &node_id, &location] {
            http::NodeStatus status{
                .node_id = node_id,
                .store = is_postgres_url(*location) ? "postgresql" : "sqlite",
                .feed = feed ? "nats" : "store",
                .nats = std::nullopt,
                .roles = roles.status(),
            };
            if (feed) {
              status.nats = http::NodeNatsStatus{.url = f.nats_url,
                                                 .stream = f.nats_stream,
                                                 .connected = feed->connected(),
                                                 .from_stream = feed->from_stream(),
                                                 .from_store = feed->from_store()};
            }
            return status;
          },
  };
  for (const auto& consumer : consumers) services.consumers.push_back(consumer.get());
  auto server = http::Server::start(std::move(services), f.server);
  if (!server) {
    fmt::print(stderr, "herald serve: {}\n", server.error().message);
    return 1;
  }
  const std::string base = "http://" + f.server.listen.substr(0, f.server.listen.rfind(':') + 1) +
                           std::to_string((*server)->port());
  std::string channels;
  for (const auto& sender : senders) {
    channels += channels.empty() ? "" : ", ";
    channels += notify::to_string(sender->channel());
  }
  fmt::print(
      out, "herald serve: listening on {} (store {}, node {}, {}, {} consumers, {})\n", base,
      describe_location(*location), node_id,
      feed ? fmt::format("NATS {} stream {}", f.nats_url, f.nats_stream) : std::string("no NATS"),
      consumers.size(),
      worker ? "delivering " + channels : std::string("not delivering notifications"));
  if (!first_token.empty()) print_first_token(out, first_token, base);
  std::fflush(out);

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("{} received: stopping", received == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->stop();
  bus.drain();
  roles.stop();
  if (worker) worker->stop();
  if (feed) {
    spdlog::info("node {}: the live stream took {} events from NATS and {} from the store", node_id,
                 feed->from_stream(), feed->from_store());
  }
  fmt::print(out, "herald serve: stopped\n");
  std::fflush(out);
  return 0;
}

}  // namespace herald::server
