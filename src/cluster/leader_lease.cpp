#include "herald/cluster/leader_lease.hpp"

#include <fmt/core.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>
#include <utility>

#include "store/postgres_store.hpp"

namespace herald::cluster {

namespace {

constexpr std::size_t max_role_bytes = 200;
constexpr std::chrono::milliseconds min_retry_interval{10};

// libpq connection parameters (PostgreSQL 15 docs, 34.1.2) that bound how long a try or a check
// can block when the server or the network stops answering: without them a leader whose network
// hangs would keep running its role long after the server dropped its session.
constexpr std::string_view lease_connection_parameters =
    "connect_timeout=5&keepalives=1&keepalives_idle=5&keepalives_interval=2&keepalives_count=2"
    "&tcp_user_timeout=5000&application_name=herald-lease";

std::string lease_url(const std::string& location) {
  return location + (location.find('?') == std::string::npos ? "?" : "&") +
         std::string(lease_connection_parameters);
}

}  // namespace

std::int64_t advisory_lock_key(std::string_view role) noexcept {
  // FNV-1a, 64 bits: fixed constants, so every node and every release agrees on the key.
  std::uint64_t hash = 14695981039346656037ULL;
  for (const char c : std::string_view("herald:")) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  for (const char c : role) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return static_cast<std::int64_t>(hash);
}

struct LeaderLease::State {
  LeaderLeaseOptions options;
  bool postgres = false;
  std::int64_t key = 0;

  std::mutex mutex;
  std::condition_variable wake;
  bool stop_requested = false;
  bool started = false;
  std::thread thread;

  // Touched by the lease's thread only, and by stop() once that thread has ended.
  std::unique_ptr<pqxx::connection> connection;
  bool failing = false;

  std::atomic<bool> leader{false};

  void report(const Error& error) {
    if (options.on_error) {
      options.on_error(error);
    } else if (!failing) {
      fmt::print(stderr, "herald: lease '{}': {}\n", options.role, error.message);
    }
    failing = true;
  }

  void become_leader() {
    leader.store(true);
    if (options.on_acquired) options.on_acquired();
  }

  void lose_leadership() {
    if (!leader.exchange(false)) return;
    if (options.on_lost) options.on_lost();
  }

  void tick() {
    if (!postgres) {
      if (!leader.load()) become_leader();
      return;
    }
    bool acquired = false;
    try {
      if (!connection) connection = std::make_unique<pqxx::connection>(lease_url(options.location));
      pqxx::nontransaction tx(*connection);
      if (!leader.load()) {
        const pqxx::result got = tx.exec_params("SELECT pg_try_advisory_lock($1)", key);
        acquired = got[0][0].as<bool>();
      } else {
        // The lock lives as long as the session: a query that succeeds proves both.
        tx.exec("SELECT 1");
      }
      failing = false;
    } catch (const std::exception& e) {
      connection.reset();
      // The session is gone or unusable, so the server has dropped (or will drop) the lock and
      // another node may take it: stop the role before anything else.
      lose_leadership();
      report(Error{ErrorCode::unavailable,
                   fmt::format("the lock connection to {} failed: {}",
                               detail::redact_postgres_url(options.location), e.what()),
                   {}});
      return;
    }
    // Outside the try: a failure inside the role's own start is not a broken lock connection.
    if (acquired) become_leader();
  }

  void run() {
    std::unique_lock lock(mutex);
    while (!stop_requested) {
      lock.unlock();
      tick();
      lock.lock();
      wake.wait_for(lock, options.retry_interval, [&] { return stop_requested; });
    }
  }
};

std::expected<std::unique_ptr<LeaderLease>, Error> LeaderLease::create(LeaderLeaseOptions options) {
  if (options.location.empty()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "location",
                                            "expected a PostgreSQL URL or a SQLite path, got ''"));
  }
  if (options.role.empty() || options.role.size() > max_role_bytes) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "role",
        fmt::format("expected 1 to {} characters, got {}", max_role_bytes, options.role.size())));
  }
  for (const char c : options.role) {
    if (c < 0x21 || c > 0x7e) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, "role",
                           fmt::format("expected printable ASCII without spaces, got byte 0x{:02x}",
                                       static_cast<unsigned char>(c))));
    }
  }
  if (options.retry_interval < min_retry_interval) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "retry_interval",
                         fmt::format("expected at least {} ms, got {} ms",
                                     min_retry_interval.count(), options.retry_interval.count())));
  }
  auto state = std::make_unique<State>();
  state->postgres = detail::is_postgres_url(options.location);
  state->key = advisory_lock_key(options.role);
  state->options = std::move(options);
  return std::unique_ptr<LeaderLease>(new LeaderLease(std::move(state)));
}

LeaderLease::LeaderLease(std::unique_ptr<State> state) : state_(std::move(state)) {}

LeaderLease::~LeaderLease() { stop(); }

std::expected<void, Error> LeaderLease::start() {
  std::scoped_lock lock(state_->mutex);
  if (state_->started) {
    return std::unexpected(Error{ErrorCode::conflict,
                                 fmt::format("lease '{}' is already started", state_->options.role),
                                 {}});
  }
  state_->started = true;
  state_->stop_requested = false;
  state_->thread = std::thread([state = state_.get()] { state->run(); });
  return {};
}

void LeaderLease::stop() {
  {
    std::scoped_lock lock(state_->mutex);
    if (!state_->started) return;
    state_->stop_requested = true;
    state_->started = false;
  }
  state_->wake.notify_all();
  if (state_->thread.joinable()) state_->thread.join();
  // The role stops before the lock goes, so that no other node runs it while this one still does.
  state_->lose_leadership();
  state_->connection.reset();
}

bool LeaderLease::is_leader() const noexcept { return state_->leader.load(); }

const std::string& LeaderLease::role() const noexcept { return state_->options.role; }

}  // namespace herald::cluster
