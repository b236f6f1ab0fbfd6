#include "notify/sqlite_notification_store.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace herald::notify::detail {
namespace {

// Version 1. Times are microseconds since the Unix epoch (UTC), as the event store keeps them.
constexpr std::string_view sqlite_schema_v1 = R"sql(
CREATE TABLE notify_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE notify_users (
  user_id INTEGER PRIMARY KEY,
  discord_id INTEGER,
  discord_username TEXT,
  email TEXT,
  deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE notify_members (
  organization_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  PRIMARY KEY (organization_id, user_id)
) WITHOUT ROWID;
CREATE TABLE notify_groups (
  name TEXT NOT NULL,
  seq INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  PRIMARY KEY (name, seq)
);
CREATE TABLE notify_preference_rules (
  user_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  channel TEXT NOT NULL,
  organization_id INTEGER,
  enabled INTEGER NOT NULL,
  PRIMARY KEY (user_id, seq)
);
CREATE TABLE notify_mutes (
  user_id INTEGER NOT NULL,
  channel TEXT NOT NULL,
  PRIMARY KEY (user_id, channel)
);
CREATE TABLE notify_endpoints (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  organization_id INTEGER NOT NULL,
  url TEXT NOT NULL,
  event_types TEXT NOT NULL,
  active INTEGER NOT NULL,
  disabled_reason TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX notify_endpoints_by_organization ON notify_endpoints (organization_id, id);
CREATE TABLE notify_endpoint_secrets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  endpoint_id INTEGER NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);
CREATE INDEX notify_endpoint_secrets_by_endpoint ON notify_endpoint_secrets (endpoint_id, id);
CREATE TABLE notify_announcement_channels (
  organization_id INTEGER PRIMARY KEY,
  webhook_url TEXT NOT NULL
);
CREATE TABLE notify_inbox (
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
CREATE INDEX notify_inbox_by_user ON notify_inbox (user_id, id);
CREATE TABLE notify_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  channel TEXT NOT NULL,
  recipient TEXT NOT NULL,
  user_id INTEGER,
  organization_id INTEGER,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  claimed_by TEXT NOT NULL,
  last_error TEXT NOT NULL,
  last_status_code INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (event_id, recipient, channel)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (next_attempt_at, id)
  WHERE status IN ('pending', 'retrying', 'sending');
CREATE INDEX notify_deliveries_by_status ON notify_deliveries (status, id);
CREATE TABLE notify_attempts (
  delivery_id INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  duration_us INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  status_code INTEGER,
  error TEXT NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
);
)sql";

constexpr std::string_view sqlite_migrations[] = {sqlite_schema_v1};

// Prepared statements kept per connection; dynamic statements (id lists) make this bounded.
constexpr std::size_t max_cached_statements = 128;

// How long a write waits for the event store's (or another process's) write lock.
constexpr int busy_timeout_ms = 10000;

class SqliteConnection final : public SqlConnection {
 public:
  SqliteConnection(sqlite3* db, std::string where) : db_(db), where_(std::move(where)) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  SqlResult exec(const std::string& sql, std::span<const SqlValue> params) override {
    sqlite3_stmt* stmt = prepare(sql);
    // Reset on every way out, so the statement holds no read lock between calls.
    struct Reset {
      sqlite3_stmt* stmt;
      ~Reset() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{stmt};
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      const SqlValue& value = params[i];
      int rc = SQLITE_OK;
      if (value.null) {
        rc = sqlite3_bind_null(stmt, index);
      } else if (value.type == SqlType::text) {
        rc = sqlite3_bind_text64(stmt, index, value.text.data(), value.text.size(), SQLITE_STATIC,
                                 SQLITE_UTF8);
      } else {
        rc = sqlite3_bind_int64(stmt, index, value.integer);
      }
      if (rc != SQLITE_OK) fail(rc, "binding a parameter");
    }
    SqlResult result;
    const int columns = sqlite3_column_count(stmt);
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail(rc, "running a statement");
      auto& row = result.rows.emplace_back();
      row.reserve(static_cast<std::size_t>(columns));
      for (int col = 0; col < columns; ++col) {
        if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
          continue;
        }
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
        const int bytes = sqlite3_column_bytes(stmt, col);
        row.emplace_back(std::string(text != nullptr ? text : "", static_cast<std::size_t>(bytes)));
      }
    }
    result.affected = sqlite3_changes64(db_);
    return result;
  }

  void exec_script(const std::string& sql) override {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      std::string text = message != nullptr ? message : sqlite3_errstr(rc);
      sqlite3_free(message);
      throw SqlFailure{
          Error{ErrorCode::io, where_ + ": creating the notification tables: " + text, {}}};
    }
  }

  /// Runs a statement that must succeed outside `exec` (BEGIN, COMMIT, ROLLBACK).
  int simple(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

  Error error(int rc, std::string_view what) const {
    const ErrorCode code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED
                               ? ErrorCode::unavailable
                               : ErrorCode::io;
    return Error{code,
                 where_ + ": " + std::string(what) + " failed: " + sqlite3_errmsg(db_) + " (" +
                     sqlite3_errstr(rc) + ")",
                 {}};
  }

 private:
  sqlite3_stmt* prepare(const std::string& sql) {
    if (auto found = cache_.find(sql); found != cache_.end()) return found->second;
    if (cache_.size() >= max_cached_statements) {
      for (auto& [text, stmt] : cache_) sqlite3_finalize(stmt);
      cache_.clear();
    }
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      fail(rc, "preparing a statement");
    }
    cache_.emplace(sql, stmt);
    return stmt;
  }

  [[noreturn]] void fail(int rc, std::string_view what) const { throw SqlFailure{error(rc, what)}; }

  sqlite3* db_;
  std::string where_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class SqliteBackend final : public SqlBackend {
 public:
  SqliteBackend(std::unique_ptr<SqliteConnection> connection, std::string where)
      : connection_(std::move(connection)), where_(std::move(where)) {}

  std::string placeholder(std::size_t index, SqlType) const override {
    return "?" + std::to_string(index);
  }
  std::string micros(std::string_view column) const override { return std::string(column); }
  std::string_view lock_rows(bool) const override { return {}; }
  std::span<const std::string_view> migrations() const override { return sqlite_migrations; }
  std::string table_exists(const std::string& name_placeholder) const override {
    return "EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = " +
           name_placeholder + ")";
  }

  // BEGIN IMMEDIATE takes the write lock at once: a deferred transaction that reads first and
  // then writes can fail with SQLITE_BUSY_SNAPSHOT in WAL mode instead of waiting.
  std::expected<void, Error> write(const std::string& what, const SqlWork& work,
                                   Durability durability) override {
    return transaction("BEGIN IMMEDIATE", what, work, durability);
  }
  std::expected<void, Error> read(const std::string& what, const SqlWork& work) override {
    return transaction("BEGIN", what, work, std::nullopt);
  }

  void lock_migration(SqlConnection&) override {}
  void announce_due(SqlConnection&) override {}
  bool listen_for_due(std::function<void()>) override { return false; }
  const std::string& where() const override { return where_; }

 private:
  std::expected<void, Error> transaction(const char* begin, const std::string& what,
                                         const SqlWork& work,
                                         std::optional<Durability> durability) {
    std::lock_guard lock(mutex_);
    // synchronous is the connection's and cannot change inside a transaction: set it before.
    if (durability && *durability != durability_) {
      const char* pragma = *durability == Durability::relaxed ? "PRAGMA synchronous = NORMAL"
                                                              : "PRAGMA synchronous = FULL";
      if (const int rc = connection_->simple(pragma); rc != SQLITE_OK) {
        return std::unexpected(connection_->error(rc, what + ": setting durability"));
      }
      durability_ = *durability;
    }
    if (const int rc = connection_->simple(begin); rc != SQLITE_OK) {
      return std::unexpected(connection_->error(rc, what + ": starting a transaction"));
    }
    std::expected<void, Error> result;
    try {
      result = work(*connection_);
    } catch (const SqlFailure& failure) {
      result = std::unexpected(failure.error);
      result.error().message = what + ": " + result.error().message;
    } catch (const std::exception& failure) {
      result = std::unexpected(
          Error{ErrorCode::internal, where_ + ": " + what + ": " + failure.what(), {}});
    }
    if (!result) {
      connection_->simple("ROLLBACK");
      return result;
    }
    if (const int rc = connection_->simple("COMMIT"); rc != SQLITE_OK) {
      Error error = connection_->error(rc, what + ": committing");
      connection_->simple("ROLLBACK");
      return std::unexpected(std::move(error));
    }
    return {};
  }

  std::mutex mutex_;
  std::unique_ptr<SqliteConnection> connection_;
  // What the connection's synchronous setting is now (FULL when opened).
  Durability durability_ = Durability::full;
  std::string where_;
};

}  // namespace

std::expected<std::unique_ptr<SqlBackend>, Error> open_sqlite_backend(const std::string& path) {
  const std::string where = "SQLite file '" + path + "'";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return std::unexpected(Error{ErrorCode::invalid_argument,
                                 where + " does not exist: open the event store on it first, "
                                         "then the notification tables",
                                 "location"});
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error{ErrorCode::io,
                where + ": opening the database failed: " +
                    (db != nullptr ? std::string(sqlite3_errmsg(db)) : sqlite3_errstr(rc)),
                "location"};
    sqlite3_close_v2(db);
    return std::unexpected(std::move(error));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  auto connection = std::make_unique<SqliteConnection>(db, where);
  // The event store switched the file to WAL; the pragmas below are per connection.
  // A larger page cache than the 2 MiB default: fan-out writes touch many index pages.
  for (const char* pragma :
       {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA cache_size = -32768"}) {
    try {
      connection->exec(pragma, {});
    } catch (const SqlFailure& failure) {
      return std::unexpected(failure.error);
    }
  }
  return std::unique_ptr<SqlBackend>(std::make_unique<SqliteBackend>(std::move(connection), where));
}

}  // namespace herald::notify::detail
