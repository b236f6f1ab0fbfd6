// herald_notify_bench: notification fan-out and webhook delivery, each beside a naive
// implementation in the same binary, in one run. It prints a table of medians with spreads,
// ratios to each scenario's baseline and PASS/MISS for the targets (informational: exit 0).
//
// Scenarios (docs/performance.md, "Notifications", explains how to read them):
//   (1) fan-out on SQLite: 1,000 users in 10 organizations of 100, every member subscribed in-app
//       to tournament_updated, then 10,000 TournamentUpdatedEvent spread over the organizations:
//       1,000,000 inbox items. Timed: the notification consumer's `catch_up` over those events
//       (the set-up events are routed before the clock starts). Baseline: per event one
//       transaction, a query for the subscribers and a prepared single-row INSERT per inbox item
//       into a table with the same columns and keys (--baseline-events runs it over a fraction).
//   (2) webhook delivery to a Boost.Beast receiver on loopback: N deliveries to one endpoint,
//       sent by a DeliveryWorker with the real webhook sender (8 threads, and 1 to show scaling)
//       until every one is `sent`. Baseline: one thread, a new libcurl handle per request, each
//       body signed with `webhook_signature`, no queue and no store.
//
// Files go to a fresh directory under $HERALD_BENCH_DIR, else the system's temporary directory
// unless that is a tmpfs (then the current directory): fsync on a tmpfs costs nothing. Each
// repetition uses fresh files, removed when it ends (--keep-files keeps them).

#include <curl/curl.h>
#include <sqlite3.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_files.hpp"
#include "bench_report.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/domain/notification_rules.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event.hpp"
#include "herald/event_store.hpp"
#include "herald/json.hpp"
#include "herald/notify/delivery_worker.hpp"
#include "herald/notify/notification_consumer.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/notify/sender.hpp"

// Events and rows are built with designated initializers that leave members out, as herald's own
// code does; g++ 12 warns about that under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace herald_bench {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace notify = herald::notify;
namespace domain = herald::domain;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::int64_t users = 1'000;
constexpr std::int64_t organizations = 10;
constexpr std::int64_t members_per_organization = users / organizations;
constexpr double fanout_target = 50'000;
constexpr double webhook_target = 2'000;

struct Settings {
  int repetitions = 3;
  std::int64_t fanout_events = 10'000;
  std::int64_t baseline_events = 10'000;
  std::int64_t webhooks = 5'000;
  bool keep_files = false;
  bool skip_fanout = false;
  bool skip_webhooks = false;
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "herald_notify_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T need(std::expected<T, herald::Error> value, const std::string& what) {
  if (!value) fail(what + ": " + value.error().message);
  return std::move(*value);
}

void need(std::expected<void, herald::Error> value, const std::string& what) {
  if (!value) fail(what + ": " + value.error().message);
}

// ---------------------------------------------------------------------------------------------
// Where the files go

fs::path make_directory() {
  auto directory = make_bench_directory("herald-notify-bench", fs::current_path());
  if (!directory) fail(directory.error());
  return std::move(*directory);
}

/// A database file that is removed (with its WAL) when the repetition ends.
class Database {
 public:
  Database(const fs::path& directory, const std::string& name, bool keep)
      : path_(directory / (name + ".db")), keep_(keep) {}
  ~Database() {
    if (keep_) return;
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path_.string() + suffix, ignored);
  }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
  bool keep_;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------------------------------------
// (1) Fan-out

std::unique_ptr<herald::EventStore> open_event_store(const std::string& path) {
  return need(herald::open_store({.location = path, .catalog = &domain::platform_catalog()}),
              "open the event store " + path);
}

void append_all(herald::EventStore& store, const std::vector<herald::EventPtr>& events) {
  for (std::size_t done = 0; done < events.size(); done += 1'000) {
    const auto end =
        events.begin() + static_cast<std::ptrdiff_t>(std::min(done + 1'000, events.size()));
    const std::vector<herald::EventRef> refs(events.begin() + static_cast<std::ptrdiff_t>(done),
                                             end);
    need(store.append_batch(refs), "append events");
  }
}

/// Users 1..1000, each a member of organization 1 + (user - 1) / 100.
std::vector<herald::EventPtr> directory_events() {
  std::vector<herald::EventPtr> events;
  for (std::int64_t user = 1; user <= users; ++user) {
    events.push_back(herald::EventPtr::make(herald::make<domain::UserCreatedEvent>(
        {.entity_id = user, .user_id = herald::system_actor},
        {.discord_id = 180'000'000'000'000'000 + user,
         .discord_username = "racer" + std::to_string(user)})));
  }
  for (std::int64_t user = 1; user <= users; ++user) {
    const std::int64_t organization = 1 + (user - 1) / members_per_organization;
    events.push_back(herald::EventPtr::make(herald::make<domain::OrganizationMemberAddedEvent>(
        {.entity_id = user, .user_id = std::int64_t{1}, .organization_id = organization},
        {.member_user_id = user, .added_by_user_id = 1})));
  }
  return events;
}

/// Tournament update `n`, of organization 1 + n % 10.
std::vector<herald::EventPtr> tournament_events(std::int64_t count) {
  std::vector<herald::EventPtr> events;
  events.reserve(static_cast<std::size_t>(count));
  for (std::int64_t n = 0; n < count; ++n) {
    const std::int64_t organization = 1 + n % organizations;
    events.push_back(herald::EventPtr::make(herald::make<domain::TournamentUpdatedEvent>(
        {.entity_id = 100 + n % 50, .user_id = std::int64_t{1}, .organization_id = organization},
        {.changed_fields = std::vector<std::string>{"rules_url", "runs_per_racer"}})));
  }
  return events;
}

/// One repetition of herald's fan-out; returns inbox items and deliveries created per second.
double fanout_herald(const fs::path& directory, int repetition, const Settings& settings,
                     std::int64_t& created_out) {
  Database file(directory, "fanout-herald-" + std::to_string(repetition), settings.keep_files);
  auto store = open_event_store(file.path());
  auto notifications = need(notify::open_notification_store(file.path()), "open notifications");
  const auto& rules = domain::platform_notification_rules();

  append_all(*store, directory_events());
  auto consumer = notify::make_notification_consumer(*store, *notifications, rules);
  need(consumer->catch_up(), "route the directory events");
  for (std::int64_t user = 1; user <= users; ++user) {
    notify::UserPreferences preferences{.user_id = user};
    preferences.rules.push_back({.user_id = user,
                                 .kind = "tournament_updated",
                                 .channel = notify::Channel::in_app,
                                 .organization_id = std::nullopt,
                                 .enabled = true});
    need(notifications->set_preferences(preferences, rules.kinds()), "set preferences");
  }
  append_all(*store, tournament_events(settings.fanout_events));
  const std::int64_t head_before = need(notifications->inbox_head(), "read the inbox head");

  const auto start = Clock::now();
  const std::size_t handled = need(consumer->catch_up(), "catch up");
  const double elapsed = seconds_since(start);

  const std::int64_t inbox = need(notifications->inbox_head(), "read the inbox head") - head_before;
  std::int64_t deliveries = 0;
  for (const auto& count : need(notifications->count_deliveries(), "count deliveries")) {
    deliveries += count.count;
  }
  const std::int64_t expected = settings.fanout_events * members_per_organization;
  if (static_cast<std::int64_t>(handled) != settings.fanout_events || inbox != expected) {
    fail("herald fan-out: handled " + std::to_string(handled) + " events and created " +
         std::to_string(inbox) + " inbox items; expected " + std::to_string(expected));
  }
  created_out = inbox + deliveries;
  return static_cast<double>(created_out) / elapsed;
}

/// A directory that knows nothing: the baseline renders notices without one.
class EmptyDirectory final : public notify::Directory {
 public:
  std::expected<std::optional<notify::UserProfile>, herald::Error> user(std::int64_t) override {
    return std::nullopt;
  }
  std::expected<std::vector<std::int64_t>, herald::Error> members(std::int64_t) override {
    return std::vector<std::int64_t>{};
  }
  std::expected<std::vector<std::int64_t>, herald::Error> group(const std::string&) override {
    return std::vector<std::int64_t>{};
  }
  std::expected<notify::UserPreferences, herald::Error> preferences(std::int64_t user) override {
    return notify::UserPreferences{.user_id = user};
  }
  std::expected<std::vector<notify::WebhookEndpoint>, herald::Error> endpoints(
      std::int64_t) override {
    return std::vector<notify::WebhookEndpoint>{};
  }
  std::expected<std::optional<notify::AnnouncementChannel>, herald::Error> announcement_channel(
      std::int64_t) override {
    return std::nullopt;
  }
};

/// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      fail(std::string("prepare: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    fail(std::string("sqlite: ") + text + " in: " + sql);
  }
}

void bind_text(sqlite3_stmt* stmt, int index, const std::string& text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

/// One repetition of the naive fan-out over `settings.baseline_events` events; items per second.
double fanout_naive(const fs::path& directory, int repetition, const Settings& settings) {
  Database file(directory, "fanout-naive-" + std::to_string(repetition), settings.keep_files);
  auto store = open_event_store(file.path());
  append_all(*store, tournament_events(settings.baseline_events));

  sqlite3* db = nullptr;
  if (sqlite3_open(file.path().c_str(), &db) != SQLITE_OK) fail("open " + file.path());
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> closer(db, &sqlite3_close);
  sqlite3_busy_timeout(db, 10'000);
  exec(db, "PRAGMA journal_mode = WAL");
  exec(db, "PRAGMA synchronous = FULL");
  // The same columns, unique key and per-user index as herald's notify_inbox; members and
  // preference rules as herald keeps them.
  exec(db, R"sql(
CREATE TABLE naive_inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  event_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  organization_id INTEGER,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  link TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  seen_at INTEGER,
  read_at INTEGER,
  archived_at INTEGER,
  UNIQUE (user_id, event_id, kind)
);
CREATE INDEX naive_inbox_by_user ON naive_inbox (user_id, id);
CREATE TABLE naive_members (
  organization_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  PRIMARY KEY (organization_id, user_id)
) WITHOUT ROWID;
CREATE TABLE naive_rules (
  user_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  channel TEXT NOT NULL,
  organization_id INTEGER,
  enabled INTEGER NOT NULL,
  PRIMARY KEY (user_id, kind, channel, organization_id)
);
CREATE TABLE naive_checkpoint (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
INSERT INTO naive_checkpoint VALUES ('naive', 0);
)sql");
  exec(db, "BEGIN");
  {
    Statement member(db, "INSERT INTO naive_members VALUES (?, ?)");
    Statement rule(db,
                   "INSERT INTO naive_rules VALUES (?, 'tournament_updated', 'in_app', NULL, 1)");
    for (std::int64_t user = 1; user <= users; ++user) {
      sqlite3_bind_int64(member.get(), 1, 1 + (user - 1) / members_per_organization);
      sqlite3_bind_int64(member.get(), 2, user);
      sqlite3_bind_int64(rule.get(), 1, user);
      if (sqlite3_step(member.get()) != SQLITE_DONE || sqlite3_step(rule.get()) != SQLITE_DONE) {
        fail("fill the naive directory");
      }
      sqlite3_reset(member.get());
      sqlite3_reset(rule.get());
    }
  }
  exec(db, "COMMIT");

  const auto& rules = domain::platform_notification_rules();
  EmptyDirectory nobody;
  Statement subscribers(db,
                        "SELECT m.user_id FROM naive_members m JOIN naive_rules r ON r.user_id = "
                        "m.user_id WHERE m.organization_id = ? AND r.kind = ? AND r.channel = "
                        "'in_app' AND r.enabled = 1 AND (r.organization_id IS NULL OR "
                        "r.organization_id = m.organization_id) ORDER BY m.user_id");
  Statement insert(db,
                   "INSERT OR IGNORE INTO naive_inbox (user_id, kind, event_id, position, "
                   "organization_id, title, body, link, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                   "?, ?)");
  Statement checkpoint(db, "UPDATE naive_checkpoint SET position = ? WHERE name = 'naive'");

  std::int64_t created = 0;
  std::int64_t after = 0;
  const auto start = Clock::now();
  for (;;) {
    auto events = need(store->read_forward(after, 256), "read events");
    if (events.empty()) break;
    for (const herald::StoredEvent& stored : events) {
      after = stored.position;
      auto notices = need(rules.notices(stored, nobody), "render the notices");
      exec(db, "BEGIN IMMEDIATE");
      for (const notify::Notice& notice : notices) {
        if (!notice.audience.subscribers_of) continue;
        const std::int64_t organization = *notice.audience.subscribers_of;
        sqlite3_bind_int64(subscribers.get(), 1, organization);
        bind_text(subscribers.get(), 2, notice.kind);
        std::vector<std::int64_t> recipients;
        while (sqlite3_step(subscribers.get()) == SQLITE_ROW) {
          recipients.push_back(sqlite3_column_int64(subscribers.get(), 0));
        }
        sqlite3_reset(subscribers.get());
        const std::string event_id = stored.event->event_id.to_string();
        const auto created_at = std::chrono::duration_cast<std::chrono::microseconds>(
                                    stored.event->timestamp.time_since_epoch())
                                    .count();
        for (const std::int64_t user : recipients) {
          sqlite3_stmt* row = insert.get();
          sqlite3_bind_int64(row, 1, user);
          bind_text(row, 2, notice.kind);
          bind_text(row, 3, event_id);
          sqlite3_bind_int64(row, 4, stored.position);
          sqlite3_bind_int64(row, 5, organization);
          bind_text(row, 6, notice.message.title);
          bind_text(row, 7, notice.message.text);
          bind_text(row, 8, notice.message.link);
          sqlite3_bind_int64(row, 9, created_at);
          if (sqlite3_step(row) != SQLITE_DONE) fail(std::string("insert: ") + sqlite3_errmsg(db));
          created += sqlite3_changes(db);
          sqlite3_reset(row);
        }
      }
      sqlite3_bind_int64(checkpoint.get(), 1, stored.position);
      if (sqlite3_step(checkpoint.get()) != SQLITE_DONE) fail("move the naive checkpoint");
      sqlite3_reset(checkpoint.get());
      exec(db, "COMMIT");
    }
  }
  const double elapsed = seconds_since(start);
  const std::int64_t expected = settings.baseline_events * members_per_organization;
  if (created != expected) {
    fail("naive fan-out created " + std::to_string(created) + " items; expected " +
         std::to_string(expected));
  }
  return static_cast<double>(created) / elapsed;
}

// ---------------------------------------------------------------------------------------------
// (2) Webhooks: the receiver

/// An HTTP/1.1 server on loopback that answers 200 to every request at once, keeping connections
/// alive; one thread per connection. Counts the POSTs it answered.
class Receiver {
 public:
  Receiver() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accepting_ = std::thread([this] { accept_loop(); });
  }
  ~Receiver() {
    stopping_ = true;
    // Wake the blocking accept with a connection of our own.
    try {
      asio::ip::tcp::socket poke(io_);
      poke.connect({asio::ip::make_address("127.0.0.1"), port_});
    } catch (const std::exception&) {
    }
    accepting_.join();
    std::vector<std::thread> connections;
    {
      // Senders keep their connections alive (libcurl's per-thread handle): end the reads that
      // wait on them.
      std::lock_guard lock(mutex_);
      for (asio::ip::tcp::socket* socket : open_) {
        beast::error_code ignored;
        socket->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      }
      connections.swap(connections_);
    }
    for (auto& connection : connections) connection.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::int64_t posts() const { return posts_.load(); }

 private:
  void accept_loop() {
    while (!stopping_) {
      asio::ip::tcp::socket socket(io_);
      beast::error_code error;
      acceptor_.accept(socket, error);
      if (error || stopping_) continue;
      std::lock_guard lock(mutex_);
      connections_.emplace_back(
          [this, connection = std::move(socket)]() mutable { serve(std::move(connection)); });
    }
  }

  void serve(asio::ip::tcp::socket socket) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      open_.insert(&socket);
    }
    serve_requests(socket);
    std::lock_guard lock(mutex_);
    open_.erase(&socket);
  }

  void serve_requests(asio::ip::tcp::socket& socket) {
    socket.set_option(asio::ip::tcp::no_delay(true));
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      beast::error_code error;
      http::read(socket, buffer, request, error);
      if (error) return;
      if (request.method() == http::verb::post) posts_.fetch_add(1);
      http::response<http::empty_body> response{http::status::ok, request.version()};
      response.keep_alive(request.keep_alive());
      response.content_length(0);
      http::write(socket, response, error);
      if (error || !request.keep_alive()) return;
    }
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> posts_{0};
  std::thread accepting_;
  std::mutex mutex_;
  std::vector<std::thread> connections_;
  // The sockets being served (guarded by mutex_), to shut down on stop.
  std::set<asio::ip::tcp::socket*> open_;
};

// ---------------------------------------------------------------------------------------------
// (2) Webhooks: herald's worker

/// Passes each attempt to the real sender and counts the ones that were sent.
class CountingSender final : public notify::Sender {
 public:
  explicit CountingSender(notify::Sender& inner) : inner_(inner) {}
  notify::Channel channel() const noexcept override { return inner_.channel(); }
  notify::SendResult send(const notify::SendRequest& request) override {
    notify::SendResult result = inner_.send(request);
    std::lock_guard lock(mutex_);
    if (result.outcome == notify::SendOutcome::sent) {
      ++sent_;
    } else if (first_error_.empty()) {
      first_error_ = result.error;
    }
    changed_.notify_all();
    return result;
  }
  /// Waits until `count` attempts were sent or `timeout` passes; true when they were.
  bool wait_for(std::int64_t count, std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return sent_ >= count; });
  }
  std::string first_error() {
    std::lock_guard lock(mutex_);
    return first_error_;
  }

 private:
  notify::Sender& inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::int64_t sent_ = 0;
  std::string first_error_;
};

std::string webhook_body(std::int64_t n) {
  const auto event = herald::EventPtr::make(herald::make<domain::TournamentUpdatedEvent>(
      {.entity_id = 100 + n % 50, .user_id = std::int64_t{1}, .organization_id = std::int64_t{1}},
      {.changed_fields = std::vector<std::string>{"rules_url", "runs_per_racer"}}));
  return herald::encode_event(event.ref());
}

/// A JSON string literal of `text`.
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct WebhookRun {
  double rate = 0;
  std::vector<double> latencies_us;
};

std::vector<double> attempt_durations(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    fail("open " + path + " to read the attempts");
  }
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> closer(db, &sqlite3_close);
  Statement select(db, "SELECT duration_us FROM notify_attempts");
  std::vector<double> durations;
  while (sqlite3_step(select.get()) == SQLITE_ROW) {
    durations.push_back(static_cast<double>(sqlite3_column_int64(select.get(), 0)));
  }
  return durations;
}

/// One repetition of herald's worker with `threads` sending threads; deliveries sent per second.
WebhookRun webhooks_herald(const fs::path& directory, int repetition, std::size_t threads,
                           const Settings& settings) {
  Database file(directory, "webhooks-" + std::to_string(threads) + "-" + std::to_string(repetition),
                settings.keep_files);
  auto store = open_event_store(file.path());
  auto notifications = need(notify::open_notification_store(file.path()), "open notifications");
  Receiver receiver;
  const auto endpoint =
      need(notifications->create_endpoint(1, receiver.url(), {}), "create the endpoint");

  const std::string recipient = "endpoint:" + std::to_string(endpoint.id);
  for (std::int64_t done = 0; done < settings.webhooks;) {
    std::vector<notify::RoutedEvent> routed;
    for (; done < settings.webhooks && routed.size() < 1'000; ++done) {
      const auto id = herald::EventId::generate();
      notify::NewDelivery delivery{.event_id = id,
                                   .position = done + 1,
                                   .channel = notify::Channel::webhook,
                                   .recipient = recipient,
                                   .user_id = std::nullopt,
                                   .organization_id = 1,
                                   .kind = "TournamentUpdatedEvent",
                                   .payload = R"({"event_type":"TournamentUpdatedEvent","body":)" +
                                              json_string(webhook_body(done)) + "}"};
      routed.push_back({.position = done + 1, .event_id = id, .deliveries = {std::move(delivery)}});
    }
    need(notifications->apply_routing(routed, "bench-webhooks"), "create deliveries");
  }

  auto sender = notify::make_webhook_sender({.timeout = 10s, .allow_private_targets = true});
  CountingSender counting(*sender);
  notify::DeliveryWorkerOptions options{.worker_id = "bench", .threads = threads, .lease = 300s};
  options.senders[notify::Channel::webhook] = &counting;
  auto worker =
      need(notify::DeliveryWorker::create(*notifications, std::move(options)), "create the worker");

  const auto start = Clock::now();
  need(worker->start(), "start the worker");
  if (!counting.wait_for(settings.webhooks, 600s)) {
    fail("the worker did not send every webhook: " + counting.first_error());
  }
  // Sent by the sender; now wait until the last outcomes are recorded.
  const auto deadline = Clock::now() + 60s;
  for (;;) {
    std::int64_t sent = 0;
    for (const auto& count : need(notifications->count_deliveries(), "count deliveries")) {
      if (count.status == notify::DeliveryStatus::sent) sent += count.count;
    }
    if (sent == settings.webhooks) break;
    if (Clock::now() > deadline) fail("outcomes were not recorded");
    std::this_thread::sleep_for(1ms);
  }
  const double elapsed = seconds_since(start);
  worker->stop();
  if (receiver.posts() < settings.webhooks) fail("the receiver got fewer POSTs than were sent");
  return {.rate = static_cast<double>(settings.webhooks) / elapsed,
          .latencies_us = attempt_durations(file.path())};
}

/// The naive sender: one thread, a new libcurl handle per request, signed; deliveries per second.
WebhookRun webhooks_naive(const Settings& settings) {
  Receiver receiver;
  const std::string secret = need(notify::generate_webhook_secret(), "generate a secret");
  const std::string url = receiver.url();
  std::vector<std::string> bodies;
  std::vector<std::string> ids;
  for (std::int64_t n = 0; n < settings.webhooks; ++n) {
    bodies.push_back(webhook_body(n));
    ids.push_back(herald::EventId::generate().to_string());
  }
  WebhookRun run;
  run.latencies_us.reserve(bodies.size());
  const auto start = Clock::now();
  for (std::size_t n = 0; n < bodies.size(); ++n) {
    const auto attempt = Clock::now();
    const std::int64_t timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
    const std::string signature =
        need(notify::webhook_signature(secret, ids[n], timestamp, bodies[n]), "sign");
    CURL* curl = curl_easy_init();
    if (curl == nullptr) fail("curl_easy_init");
    curl_slist* headers = nullptr;
    const std::string id_header = "webhook-id: " + ids[n];
    const std::string timestamp_header = "webhook-timestamp: " + std::to_string(timestamp);
    const std::string signature_header = "webhook-signature: " + signature;
    for (const std::string* line : {&id_header, &timestamp_header, &signature_header}) {
      headers = curl_slist_append(headers, line->c_str());
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, bodies[n].c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(bodies[n].size()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10'000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    const CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (code != CURLE_OK || status != 200) {
      fail(std::string("naive webhook: ") + curl_easy_strerror(code) + ", status " +
           std::to_string(status));
    }
    run.latencies_us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - attempt).count());
  }
  run.rate = static_cast<double>(settings.webhooks) / seconds_since(start);
  return run;
}

/// herald's webhook sender alone: one thread calls `send` for each delivery in turn, with no
/// queue and no store; deliveries sent per second. Separates the sender's cost from the store's.
WebhookRun webhooks_sender_only(const Settings& settings) {
  Receiver receiver;
  notify::WebhookEndpoint endpoint{.id = 1, .organization_id = 1, .url = receiver.url()};
  endpoint.secrets.push_back(
      {.secret = need(notify::generate_webhook_secret(), "generate a secret")});
  std::vector<notify::DeliveryRecord> deliveries;
  for (std::int64_t n = 0; n < settings.webhooks; ++n) {
    deliveries.push_back({.id = n + 1,
                          .event_id = herald::EventId::generate(),
                          .position = n + 1,
                          .channel = notify::Channel::webhook,
                          .recipient = "endpoint:1",
                          .organization_id = 1,
                          .kind = "TournamentUpdatedEvent",
                          .payload = R"({"event_type":"TournamentUpdatedEvent","body":)" +
                                     json_string(webhook_body(n)) + "}"});
  }
  auto sender = notify::make_webhook_sender({.timeout = 10s, .allow_private_targets = true});
  WebhookRun run;
  run.latencies_us.reserve(deliveries.size());
  const auto start = Clock::now();
  for (const notify::DeliveryRecord& delivery : deliveries) {
    const auto attempt = Clock::now();
    const notify::SendResult result =
        sender->send({.delivery = delivery, .endpoint = &endpoint, .now = herald::now()});
    if (result.outcome != notify::SendOutcome::sent) fail("sender alone: " + result.error);
    run.latencies_us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - attempt).count());
  }
  run.rate = static_cast<double>(settings.webhooks) / seconds_since(start);
  return run;
}

// ---------------------------------------------------------------------------------------------
// The report

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(fraction * static_cast<double>(values.size() - 1));
  return values[index];
}

struct Row {
  std::string scenario;
  std::string implementation;
  std::vector<double> rates;
  std::string baseline;  // the implementation this row is compared with
  std::optional<double> target;
  std::string note;
};

void print_table(const std::vector<Row>& rows) {
  std::printf(
      "\nmedians of the repetitions (items/s, higher is better); spread = (max - min) / "
      "median; ratio = median / the baseline's median\n");
  std::printf("%-34s %-26s %12s %8s %4s %10s  %s\n", "scenario", "implementation", "median",
              "spread", "n", "ratio", "target");
  for (const Row& row : rows) {
    const double middle = median(row.rates);
    std::string ratio = "-";
    for (const Row& other : rows) {
      if (other.scenario == row.scenario && other.implementation == row.baseline) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2fx", middle / median(other.rates));
        ratio = text;
      }
    }
    std::string verdict;
    if (row.target) {
      verdict =
          (middle >= *row.target ? "PASS (>= " : "MISS (>= ") + format_rate(*row.target) + ")";
    }
    std::printf("%-34s %-26s %12s %7.1f%% %4zu %10s  %s\n", row.scenario.c_str(),
                row.implementation.c_str(), format_rate(middle).c_str(), spread_percent(row.rates),
                row.rates.size(), ratio.c_str(), verdict.c_str());
    if (!row.note.empty()) std::printf("    %s\n", row.note.c_str());
  }
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  std::string five;
  std::string fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

Settings parse(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto number = [&](std::string_view name) -> std::optional<std::int64_t> {
      if (!arg.starts_with(name) || arg.size() <= name.size() || arg[name.size()] != '=') {
        return std::nullopt;
      }
      const std::string text(arg.substr(name.size() + 1));
      char* end = nullptr;
      const long long value = std::strtoll(text.c_str(), &end, 10);
      if (end == text.c_str() || *end != '\0' || value < 1) {
        fail("--" + std::string(name.substr(2)) + " wants a positive whole number, not '" + text +
             "'");
      }
      return value;
    };
    if (auto n = number("--repetitions")) {
      settings.repetitions = static_cast<int>(std::min<std::int64_t>(*n, 100));
    } else if (auto events = number("--fanout-events")) {
      settings.fanout_events = *events;
    } else if (auto baseline = number("--baseline-events")) {
      settings.baseline_events = *baseline;
    } else if (auto webhooks = number("--webhooks")) {
      settings.webhooks = *webhooks;
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "herald_notify_bench: notification fan-out and webhook delivery beside naive "
          "implementations (docs/performance.md, \"Notifications\").\n"
          "  --repetitions=N      repetitions of each scenario (3)\n"
          "  --fanout-events=N    tournament updates routed to 100 subscribers each (10000)\n"
          "  --baseline-events=N  the naive fan-out's events (10000)\n"
          "  --webhooks=N         webhook deliveries per repetition (5000)\n"
          "  --skip-fanout, --skip-webhooks, --keep-files\n");
      std::exit(0);
    } else if (arg == "--keep-files") {
      settings.keep_files = true;
    } else if (arg == "--skip-fanout") {
      settings.skip_fanout = true;
    } else if (arg == "--skip-webhooks") {
      settings.skip_webhooks = true;
    } else {
      fail("unknown argument '" + std::string(arg) +
           "' (flags: --repetitions=N --fanout-events=N --baseline-events=N --webhooks=N "
           "--keep-files --skip-fanout --skip-webhooks)");
    }
  }
  return settings;
}

int run(int argc, char** argv) {
  const Settings settings = parse(argc, argv);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const fs::path directory = make_directory();
  std::printf(
      "herald_notify_bench: files in %s (%s); %d repetitions; event body %zu bytes; "
      "load average %s\n",
      directory.c_str(), filesystem_name(directory).c_str(), settings.repetitions,
      webhook_body(0).size(), load_average().c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  if (!settings.skip_fanout) {
    Row herald_row{.scenario = "(1) fan-out to inboxes (SQLite)",
                   .implementation = "herald consumer",
                   .baseline = "naive per-event tx"};
    Row naive_row{.scenario = herald_row.scenario, .implementation = "naive per-event tx"};
    herald_row.target = fanout_target;
    for (int r = 0; r < settings.repetitions; ++r) {
      std::int64_t created = 0;
      const double herald_rate = fanout_herald(directory, r, settings, created);
      const double naive_rate = fanout_naive(directory, r, settings);
      std::printf("  fan-out %d: herald %s (%lld items), naive %s (%lld items)  [load %s]\n", r + 1,
                  format_rate(herald_rate).c_str(), static_cast<long long>(created),
                  format_rate(naive_rate).c_str(),
                  static_cast<long long>(settings.baseline_events * members_per_organization),
                  load_average().c_str());
      std::fflush(stdout);
      herald_row.rates.push_back(herald_rate);
      naive_row.rates.push_back(naive_rate);
    }
    herald_row.note = std::to_string(settings.fanout_events) + " events x 100 subscribers";
    naive_row.note = std::to_string(settings.baseline_events) + " events x 100 subscribers";
    rows.push_back(std::move(herald_row));
    rows.push_back(std::move(naive_row));
  }
  if (!settings.skip_webhooks) {
    const std::string scenario = "(2) webhooks to loopback";
    Row eight{.scenario = scenario,
              .implementation = "herald worker, 8 threads",
              .baseline = "naive, 1 thread"};
    eight.target = webhook_target;
    Row one{.scenario = scenario,
            .implementation = "herald worker, 1 thread",
            .baseline = "naive, 1 thread"};
    Row alone{.scenario = scenario,
              .implementation = "herald sender alone",
              .baseline = "naive, 1 thread"};
    Row naive{.scenario = scenario, .implementation = "naive, 1 thread"};
    std::vector<double> latency_eight;
    std::vector<double> latency_one;
    std::vector<double> latency_naive;
    std::vector<double> latency_alone;
    for (int r = 0; r < settings.repetitions; ++r) {
      auto run8 = webhooks_herald(directory, r, 8, settings);
      auto run1 = webhooks_herald(directory, r, 1, settings);
      auto run0 = webhooks_naive(settings);
      auto run_alone = webhooks_sender_only(settings);
      std::printf("  webhooks %d: 8 threads %s, 1 thread %s, naive %s  [load %s]\n", r + 1,
                  format_rate(run8.rate).c_str(), format_rate(run1.rate).c_str(),
                  format_rate(run0.rate).c_str(), load_average().c_str());
      std::printf("             herald sender alone %s\n", format_rate(run_alone.rate).c_str());
      std::fflush(stdout);
      alone.rates.push_back(run_alone.rate);
      latency_alone.insert(latency_alone.end(), run_alone.latencies_us.begin(),
                           run_alone.latencies_us.end());
      eight.rates.push_back(run8.rate);
      one.rates.push_back(run1.rate);
      naive.rates.push_back(run0.rate);
      latency_eight.insert(latency_eight.end(), run8.latencies_us.begin(), run8.latencies_us.end());
      latency_one.insert(latency_one.end(), run1.latencies_us.begin(), run1.latencies_us.end());
      latency_naive.insert(latency_naive.end(), run0.latencies_us.begin(), run0.latencies_us.end());
    }
    auto latency = [](const std::vector<double>& values, const char* what) {
      char text[160];
      std::snprintf(text, sizeof text, "%s p50 %.0f us, p99 %.0f us (%zu attempts)", what,
                    percentile(values, 0.50), percentile(values, 0.99), values.size());
      return std::string(text);
    };
    eight.note = latency(latency_eight, "attempt (notify_attempts.duration_us)");
    one.note = latency(latency_one, "attempt (notify_attempts.duration_us)");
    naive.note = latency(latency_naive, "request incl. signing");
    alone.note = latency(latency_alone, "send() (no queue, no store)");
    rows.push_back(std::move(eight));
    rows.push_back(std::move(one));
    rows.push_back(std::move(alone));
    rows.push_back(std::move(naive));
  }

  print_table(rows);
  std::printf("\nload average at the end: %s\n", load_average().c_str());
  if (!settings.keep_files) {
    std::error_code ignored;
    fs::remove_all(directory, ignored);
  }
  curl_global_cleanup();
  return 0;
}

}  // namespace
}  // namespace herald_bench

int main(int argc, char** argv) { return herald_bench::run(argc, argv); }
