#include "store/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "herald/json.hpp"
#include "store/api_token_checks.hpp"
#include "store/audit_batch.hpp"
#include "store/group_commit.hpp"

namespace herald {
namespace {

namespace fs = std::filesystem;
using sqlite_detail::failure;
using store_detail::check_token_arguments;
using store_detail::token_hash_taken;
using store_detail::token_name_taken;
using store_detail::token_not_found;

// --- schema -----------------------------------------------------------------------------------

// Each migration takes the schema from `version - 1` to `version`; they run in order inside one
// write transaction at open. Tables carry a herald_ prefix because a service may keep its own
// tables in the same file (the outbox). Times are microseconds since the Unix epoch (UTC).
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration migrations[] = {
    {1, R"sql(
CREATE TABLE herald_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE herald_events (
  position INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  event_type TEXT NOT NULL,
  organization_id INTEGER,
  entity_type TEXT,
  entity_id TEXT,
  occurred_at INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX herald_events_by_type ON herald_events (event_type, position);
CREATE INDEX herald_events_by_organization ON herald_events (organization_id, position);
CREATE INDEX herald_events_by_entity ON herald_events (entity_id, entity_type, position);
CREATE INDEX herald_events_by_time ON herald_events (occurred_at);
CREATE TABLE herald_consumer_checkpoints (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE herald_parked_events (
  consumer TEXT NOT NULL,
  position INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  error TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  parked_at INTEGER NOT NULL,
  PRIMARY KEY (consumer, position)
);
CREATE TABLE herald_audit_records (
  position INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  occurred_at INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL,
  actor INTEGER,
  organization_id INTEGER,
  action TEXT NOT NULL,
  entity_type TEXT NOT NULL,
  entity_id TEXT,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX herald_audit_by_organization ON herald_audit_records (organization_id, position);
CREATE INDEX herald_audit_by_actor ON herald_audit_records (actor, position);
CREATE INDEX herald_audit_by_action ON herald_audit_records (action);
CREATE INDEX herald_audit_by_entity ON herald_audit_records (entity_type, entity_id, position);
CREATE INDEX herald_audit_by_time ON herald_audit_records (occurred_at);
)sql"},
    // API tokens: only a token's SHA-256 is kept; scopes as their names ("ingest,read").
    {2, R"sql(
CREATE TABLE herald_api_tokens (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  token_sha256 TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  organization_id INTEGER,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
)sql"},
    // An API token may be bound to a user (their inbox, preferences and email).
    {3, R"sql(
ALTER TABLE herald_api_tokens ADD COLUMN user_id INTEGER;
)sql"},
};
static_assert(std::size(migrations) == sqlite_schema_version);

constexpr std::string_view sqlite_magic{"SQLite format 3\0", 16};

std::int64_t to_micros(Timestamp t) { return t.time_since_epoch().count(); }
Timestamp from_micros(std::int64_t us) { return Timestamp{std::chrono::microseconds{us}}; }

std::int64_t to_sql_limit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

std::string single_quoted(std::string_view path) { return "'" + std::string(path) + "'"; }

/// How errors name a store's database: "herald store 'events.db'".
std::string describe(std::string_view path) { return "herald store " + single_quoted(path); }

// --- statements and connections ---------------------------------------------------------------

using Bind = std::variant<std::int64_t, std::string>;

/// A prepared statement in use: resets it and clears its bindings when it goes out of scope, so
/// a cached statement is always ready for its next use.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  void bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  /// Binds text without copying: `value` must outlive the statement's use.
  void bind(int index, std::string_view value) {
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  }
  void bind(int index, const std::string& value) { bind(index, std::string_view(value)); }
  void bind(int index, const std::optional<std::int64_t>& value) {
    if (value) {
      bind(index, *value);
    } else {
      sqlite3_bind_null(stmt_, index);
    }
  }
  void bind(int index, const std::optional<std::string>& value) {
    if (value) {
      bind(index, std::string_view(*value));
    } else {
      sqlite3_bind_null(stmt_, index);
    }
  }
  void bind_all(const std::vector<Bind>& binds, int first = 1) {
    int index = first;
    for (const Bind& b : binds) {
      std::visit([&](const auto& v) { bind(index, v); }, b);
      ++index;
    }
  }

  int step() { return sqlite3_step(stmt_); }
  /// Makes the statement ready to run again with new bindings.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t int64(int column) { return sqlite3_column_int64(stmt_, column); }
  bool is_null(int column) { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::optional<std::int64_t> optional_int64(int column) {
    if (is_null(column)) return std::nullopt;
    return int64(column);
  }
  std::string_view text(int column) {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    if (data == nullptr) return {};
    return {data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  std::optional<std::string> optional_text(int column) {
    if (is_null(column)) return std::nullopt;
    return std::string(text(column));
  }
  sqlite3_stmt* get() const noexcept { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

/// One SQLite connection with its prepared statements, used by one thread at a time.
class Connection {
 public:
  /// `where` names the database in errors ("herald store 'events.db'").
  Connection(sqlite3* db, std::string where) noexcept : db_(db), where_(std::move(where)) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  sqlite3* db() const noexcept { return db_; }

  /// The cached statement for `sql`, prepared on first use.
  std::expected<Statement, Error> prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return std::unexpected(failure(where_, db_, rc, "preparing a query"));
      it = cache_.emplace(sql, stmt).first;
    }
    return Statement(it->second);
  }

  /// Runs statements that return no rows.
  std::expected<void, Error> exec(const char* sql, std::string_view doing) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return std::unexpected(failure(where_, db_, rc, doing));
    return {};
  }

  /// Runs `body` in a write transaction (BEGIN IMMEDIATE, so the write lock is taken up front
  /// and a commit never fails for a lock another writer took meanwhile); commits if it
  /// succeeds, rolls back otherwise.
  template <class Body>
  auto write_transaction(std::string_view doing, Body&& body) -> decltype(body()) {
    if (auto begun = exec("BEGIN IMMEDIATE", doing); !begun) {
      return std::unexpected(std::move(begun.error()));
    }
    auto result = body();
    if (result) {
      const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return result;
      result = std::unexpected(failure(where_, db_, rc, doing));
    }
    // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR); roll back only
    // what is still open.
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return result;
  }

  /// Runs `body` in a read transaction, so several queries see one snapshot.
  template <class Body>
  auto read_transaction(std::string_view doing, Body&& body) -> decltype(body()) {
    if (auto begun = exec("BEGIN", doing); !begun) return std::unexpected(std::move(begun.error()));
    auto result = body();
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    return result;
  }

  Error error(int rc, std::string_view doing) const { return failure(where_, db_, rc, doing); }

 private:
  sqlite3* db_;
  std::string where_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// --- wake-ups ---------------------------------------------------------------------------------

/// What `wait_for` sleeps on: a counter bumped after every commit that appended events.
struct AppendSignal {
  std::mutex mutex;
  std::condition_variable appended;
  std::uint64_t sequence = 0;
  /// Bumped by the store's wake_waiters(): every wait_for that began before returns. Each store
  /// has its own signal, so this wakes only that store's waiters.
  std::uint64_t interrupts = 0;

  void bump() {
    {
      std::lock_guard lock(mutex);
      ++sequence;
    }
    appended.notify_all();
  }
};

/// Every store of this process by database file, so an append through one store, or through the
/// outbox on a connection of its own, wakes the waiters of all of them at once.
class SignalRegistry {
 public:
  static SignalRegistry& instance() {
    static SignalRegistry registry;
    return registry;
  }
  void add(const std::string& key, const std::shared_ptr<AppendSignal>& signal) {
    std::lock_guard lock(mutex_);
    by_file_.emplace(key, signal);
  }
  void remove(const std::string& key, const AppendSignal* signal) {
    std::lock_guard lock(mutex_);
    auto [first, last] = by_file_.equal_range(key);
    for (auto it = first; it != last;) {
      auto held = it->second.lock();
      it = (held == nullptr || held.get() == signal) ? by_file_.erase(it) : std::next(it);
    }
  }
  void notify(const std::string& key) {
    std::vector<std::shared_ptr<AppendSignal>> signals;
    {
      std::lock_guard lock(mutex_);
      auto [first, last] = by_file_.equal_range(key);
      for (auto it = first; it != last; ++it) {
        if (auto held = it->second.lock()) signals.push_back(std::move(held));
      }
    }
    for (const auto& signal : signals) signal->bump();
  }

 private:
  std::mutex mutex_;
  std::multimap<std::string, std::weak_ptr<AppendSignal>> by_file_;
};

/// The key a database file is known by in `SignalRegistry`: its canonical absolute path.
std::string file_key(std::string_view path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(fs::absolute(fs::path(path), ec), ec);
  return ec ? std::string(path) : canonical.string();
}

// --- opening ----------------------------------------------------------------------------------

/// What a look at an existing file found, before anything is written to it.
struct Probe {
  /// No herald schema yet (a new file, an empty one, or one being adopted).
  bool fresh = true;
  int version = 0;
};

Error open_refusal(ErrorCode code, std::string_view path, std::string_view what,
                   std::string_view todo) {
  return Error{code,
               "cannot open herald store " + single_quoted(path) + ": " + std::string(what) +
                   "; herald left the file untouched. " + std::string(todo),
               "location"};
}

std::string list_tables(const std::vector<std::string>& tables) {
  std::string out;
  for (std::size_t i = 0; i < tables.size() && i < 5; ++i) {
    if (i > 0) out += ", ";
    out += tables[i];
  }
  if (tables.size() > 5) out += ", …";
  return out;
}

/// Reads herald's marker and schema version through `db` without writing anything.
std::expected<Probe, Error> read_marker(sqlite3* db, std::string_view path, bool adopt) {
  auto corrupt = [&](int rc) {
    std::string says = sqlite3_errmsg(db);
    if (says != sqlite3_errstr(rc)) says += std::string(", ") + sqlite3_errstr(rc);
    return open_refusal(ErrorCode::io, path,
                        "the file is not a readable SQLite database (SQLite: \"" + says +
                            "\"): it is corrupt or not a database",
                        "Restore it from a backup, or point the store at another file.");
  };

  std::int64_t app_id = 0;
  std::vector<std::string> tables;
  {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) app_id = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) {
      const int primary = rc & 0xff;
      if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
        return std::unexpected(corrupt(rc));
      return std::unexpected(failure(describe(path), db, rc, "reading the database header"));
    }
  }
  {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(
        db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", -1,
        &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      const int primary = rc & 0xff;
      if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
        return std::unexpected(corrupt(rc));
      return std::unexpected(failure(describe(path), db, rc, "reading the schema"));
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return std::unexpected(corrupt(rc));
  }
  const bool has_meta = std::ranges::find(tables, "herald_meta") != tables.end();

  if (app_id == 0) {
    if (tables.empty()) return Probe{.fresh = true, .version = 0};
    if (adopt && !has_meta) return Probe{.fresh = true, .version = 0};
    return std::unexpected(open_refusal(
        ErrorCode::conflict, path,
        "it is a SQLite database that is not herald's (no herald marker, and it has tables: " +
            list_tables(tables) + ")",
        "Point the store at a new file, or set StoreOptions::sqlite_adopt_existing to add "
        "herald's tables to this database (for the outbox)."));
  }
  if (app_id != sqlite_application_id) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08llx",
                  static_cast<unsigned long long>(static_cast<std::uint32_t>(app_id)));
    return std::unexpected(open_refusal(
        ErrorCode::conflict, path,
        std::string("it is a SQLite database of another application (application_id ") + hex +
            ", herald's is 0x48524c44)",
        "Point the store at a new file."));
  }
  if (!has_meta) {
    return std::unexpected(open_refusal(ErrorCode::io, path,
                                        "it is marked as herald's but has no herald_meta table",
                                        "Restore it from a backup."));
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT value FROM herald_meta WHERE key = 'schema_version'", -1,
                              &stmt, nullptr);
  std::optional<int> version;
  if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    version = sqlite3_column_int(stmt, 0);
  }
  sqlite3_finalize(stmt);
  if (!version) {
    return std::unexpected(open_refusal(ErrorCode::io, path,
                                        "it is marked as herald's but records no schema version",
                                        "Restore it from a backup."));
  }
  if (*version > sqlite_schema_version) {
    return std::unexpected(open_refusal(
        ErrorCode::conflict, path,
        "it was written by a newer herald (schema version " + std::to_string(*version) +
            "; this herald knows up to " + std::to_string(sqlite_schema_version) + ")",
        "Open it with that newer herald, or restore a backup taken before the upgrade."));
  }
  return Probe{.fresh = *version == 0, .version = *version};
}

/// Looks at the file through a read-only connection, so that refusing it cannot change a byte:
/// a read-only connection neither writes pages nor checkpoints a WAL file when it closes.
std::expected<Probe, Error> probe(const std::string& path, bool adopt) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) return Probe{};
  if (fs::is_directory(status)) {
    return std::unexpected(Error{ErrorCode::invalid_argument,
                                 "cannot open herald store " + single_quoted(path) +
                                     ": it is a directory; give the path of a database file",
                                 "location"});
  }
  const auto size = fs::file_size(path, ec);
  if (!ec && size == 0) return Probe{};
  {
    std::ifstream in(path, std::ios::binary);
    std::array<char, 16> header{};
    in.read(header.data(), header.size());
    if (!in) {
      if (!std::ifstream(path)) {
        return std::unexpected(open_refusal(ErrorCode::io, path,
                                            "the file cannot be read by this process",
                                            "Check its permissions."));
      }
      return std::unexpected(open_refusal(ErrorCode::io, path,
                                          "the file is too short to be a SQLite database",
                                          "Restore it from a backup, or point the store at "
                                          "another file."));
    }
    if (std::string_view(header.data(), header.size()) != sqlite_magic) {
      return std::unexpected(open_refusal(
          ErrorCode::io, path,
          "the file does not start with SQLite's header: it is corrupt or not a database",
          "Restore it from a backup, or point the store at another file."));
    }
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error = failure(describe(path), db, rc, "opening the database");
    sqlite3_close_v2(db);
    return std::unexpected(std::move(error));
  }
  sqlite3_busy_timeout(db, 5000);
  auto result = read_marker(db, path, adopt);
  sqlite3_close_v2(db);
  return result;
}

std::expected<std::unique_ptr<Connection>, Error> open_connection(const std::string& path,
                                                                  int flags,
                                                                  const StoreOptions& options) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error = failure(describe(path), db, rc, "opening the database");
    sqlite3_close_v2(db);
    return std::unexpected(std::move(error));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(
      db, static_cast<int>(std::clamp<std::int64_t>(options.sqlite_busy_timeout.count(), 0,
                                                    std::numeric_limits<int>::max())));
  return std::make_unique<Connection>(db, describe(path));
}

/// Applies the pragmas herald writes with. Runs only after the probe accepted the file, since
/// switching to WAL rewrites the header.
std::expected<void, Error> configure_writer(Connection& writer, const std::string& path,
                                            const StoreOptions& options) {
  if (sqlite3_db_readonly(writer.db(), "main") == 1) {
    return std::unexpected(
        Error{ErrorCode::io,
              "cannot open herald store " + single_quoted(path) +
                  " for writing: the file is read-only for this process. herald needs to write "
                  "the file and to create its -wal and -shm files beside it: check the "
                  "permissions of the file and its directory",
              "location"});
  }
  {
    auto mode = writer.prepare("PRAGMA journal_mode = WAL");
    if (!mode) return std::unexpected(std::move(mode.error()));
    const int rc = mode->step();
    if (rc != SQLITE_ROW) return std::unexpected(writer.error(rc, "switching to WAL mode"));
    if (mode->text(0) != "wal") {
      return std::unexpected(Error{ErrorCode::io,
                                   "herald store " + single_quoted(path) +
                                       ": SQLite could not switch the database to WAL mode "
                                       "(it stays in \"" +
                                       std::string(mode->text(0)) +
                                       "\" mode); another connection may hold it open",
                                   "location"});
    }
  }
  const char* sync = options.sqlite_sync == SqliteSync::full ? "PRAGMA synchronous = FULL"
                                                             : "PRAGMA synchronous = NORMAL";
  if (auto set = writer.exec(sync, "setting synchronous"); !set) return set;
  if (options.sqlite_max_pages > 0) {
    const std::string limit = "PRAGMA max_page_count = " + std::to_string(options.sqlite_max_pages);
    auto stmt = writer.prepare(limit);
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    if (const int rc = stmt->step(); rc != SQLITE_ROW) {
      return std::unexpected(writer.error(rc, "setting max_page_count"));
    }
  }
  return {};
}

/// Brings the schema to `sqlite_schema_version`, re-reading the marker under the write lock in
/// case another process created or migrated the file since the probe.
std::expected<void, Error> migrate(Connection& writer, const std::string& path, bool adopt) {
  return writer.write_transaction(
      "applying schema migrations", [&]() -> std::expected<void, Error> {
        auto found = read_marker(writer.db(), path, adopt);
        if (!found) return std::unexpected(std::move(found.error()));
        for (const Migration& migration : migrations) {
          if (migration.version <= found->version) continue;
          if (auto applied = writer.exec(
                  migration.sql, "applying schema migration " + std::to_string(migration.version));
              !applied) {
            return applied;
          }
        }
        if (found->version == sqlite_schema_version) return {};
        const std::string marker =
            "PRAGMA application_id = " + std::to_string(sqlite_application_id) +
            ";"
            "INSERT INTO herald_meta (key, value) VALUES ('application', 'herald') "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value;"
            "INSERT INTO herald_meta (key, value) VALUES ('schema_version', '" +
            std::to_string(sqlite_schema_version) +
            "') ON CONFLICT (key) DO UPDATE SET value = excluded.value;";
        return writer.exec(marker.c_str(), "recording the schema version");
      });
}

// --- reading ----------------------------------------------------------------------------------

/// A WHERE clause and its parameters, built from a filter.
struct Where {
  std::string sql;
  std::vector<Bind> binds;

  void add(std::string_view condition) {
    sql += sql.empty() ? " WHERE " : " AND ";
    sql += condition;
  }
  void add(std::string_view condition, Bind value) {
    add(condition);
    binds.push_back(std::move(value));
  }
};

Where event_where(const EventFilter& filter) {
  Where where;
  if (!filter.types.empty()) {
    std::string in = "event_type IN (";
    for (std::size_t i = 0; i < filter.types.size(); ++i) {
      in += i == 0 ? "?" : ", ?";
      where.binds.emplace_back(filter.types[i]);
    }
    in += ")";
    where.add(in);
  }
  if (filter.organization_id) where.add("organization_id = ?", *filter.organization_id);
  if (filter.entity_type) where.add("entity_type = ?", *filter.entity_type);
  if (filter.entity_id) where.add("entity_id = ?", *filter.entity_id);
  if (filter.since) where.add("occurred_at >= ?", to_micros(*filter.since));
  if (filter.until) where.add("occurred_at < ?", to_micros(*filter.until));
  return where;
}

/// `prefix` as a GLOB pattern that matches it literally, followed by anything. GLOB rather than
/// LIKE because GLOB is case-sensitive, as action names are, and can use the action index.
std::string glob_prefix(std::string_view prefix) {
  std::string pattern;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[') {
      pattern += '[';
      pattern += c;
      pattern += ']';
    } else {
      pattern += c;
    }
  }
  pattern += '*';
  return pattern;
}

Where audit_where(const AuditQuery& query) {
  Where where;
  if (query.organization_id) where.add("organization_id = ?", *query.organization_id);
  if (query.actor) where.add("actor = ?", *query.actor);
  if (query.action) {
    const std::string& action = *query.action;
    if (!action.empty() && action.back() == '*') {
      if (action.size() > 1) {
        where.add("action GLOB ?",
                  glob_prefix(std::string_view(action).substr(0, action.size() - 1)));
      }
    } else {
      where.add("action = ?", action);
    }
  }
  if (query.entity_type) where.add("entity_type = ?", *query.entity_type);
  if (query.entity_id) where.add("entity_id = ?", *query.entity_id);
  if (query.since) where.add("occurred_at >= ?", to_micros(*query.since));
  if (query.until) where.add("occurred_at < ?", to_micros(*query.until));
  return where;
}

constexpr std::string_view event_columns = "position, recorded_at, event_type, body";
constexpr std::string_view audit_columns =
    "position, event_id, occurred_at, recorded_at, actor, organization_id, action, entity_type, "
    "entity_id, details, prev_hash, hash";

/// Parses stored JSON texts, one after another, into a reused arena, which keeps the read path
/// free of per-node allocations. A parsed value lives until the next `parse`. That is safe for
/// decoding: the field codecs assign into default-constructed members, which copies into the
/// default memory resource, so a decoded event never points into the arena.
class StoredJsonParser {
 public:
  StoredJsonParser() : parser_(boost::json::storage_ptr(), options()) {}
  StoredJsonParser(const StoredJsonParser&) = delete;
  StoredJsonParser& operator=(const StoredJsonParser&) = delete;

  std::expected<boost::json::value, std::string> parse(std::string_view text) {
    arena_.release();
    parser_.reset(boost::json::storage_ptr(&arena_));
    boost::system::error_code ec;
    parser_.write(text.data(), text.size(), ec);
    if (ec) return std::unexpected(ec.message());
    return parser_.release();
  }

 private:
  /// Stored events were held to `max_event_bytes` when appended; only the nesting limit is
  /// raised, so that whatever was written reads back.
  static boost::json::parse_options options() {
    boost::json::parse_options o;
    o.max_depth = 10000;
    return o;
  }

  std::array<unsigned char, 16384> buffer_{};
  boost::json::monotonic_resource arena_{buffer_.data(), buffer_.size()};
  boost::json::parser parser_;
};

// --- the store --------------------------------------------------------------------------------

class SqliteStoreImpl final : public SqliteStore {
 public:
  SqliteStoreImpl(const StoreOptions& options, std::unique_ptr<Connection> writer)
      : options_(options),
        path_(options.location),
        where_(describe(options.location)),
        key_(file_key(options.location)),
        writer_(std::move(writer)),
        signal_(std::make_shared<AppendSignal>()),
        group_commit_(
            [this](std::span<const GroupCommitRequest> rows) { return commit_group(rows); },
            {.max_group_events = options.max_group,
             .max_group_bytes = options.max_group_bytes,
             .max_queued_events = options.max_queued_events,
             .where = where_}) {
    SignalRegistry::instance().add(key_, signal_);
  }

  ~SqliteStoreImpl() override {
    // Queued appends still commit, through the writer: before any member goes.
    group_commit_.close();
    SignalRegistry::instance().remove(key_, signal_.get());
  }

  // --- appending ---

  std::expected<AppendResult, Error> append(EventRef event) override {
    auto body = encode(event);
    if (!body) return std::unexpected(std::move(body.error()));
    return group_commit_.submit({.event = event, .body = *body});
  }

  std::expected<std::vector<AppendResult>, Error> append_batch(
      std::span<const EventRef> events) override {
    if (events.empty()) return std::vector<AppendResult>{};
    auto bodies = encode_batch(events);
    if (!bodies) return std::unexpected(std::move(bodies.error()));
    std::vector<GroupCommitRequest> rows;
    rows.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) rows.push_back({events[i], (*bodies)[i]});
    return group_commit_.submit_batch(rows);
  }

  void append_async(EventPtr event, AppendCallback done) override {
    auto body = encode(event.ref());
    if (!body) return group_commit_.fail_async(std::move(done), std::move(body.error()));
    group_commit_.submit_async(std::move(event), std::move(*body), std::move(done));
  }

  void append_batch_async(std::vector<EventPtr> events, BatchCallback done) override {
    std::vector<EventRef> refs(events.begin(), events.end());
    auto bodies = encode_batch(refs);
    if (!bodies) return group_commit_.fail_async(std::move(done), std::move(bodies.error()));
    group_commit_.submit_batch_async(std::move(events), std::move(*bodies), std::move(done));
  }

  // --- reading ---

  std::expected<std::vector<StoredEvent>, Error> read_forward(std::int64_t after, std::size_t limit,
                                                              const EventFilter& filter) override {
    Where where = event_where(filter);
    where.add("position > ?", after);
    return read_events(where, "ASC", limit);
  }

  std::expected<std::vector<StoredEvent>, Error> read_backward(std::optional<std::int64_t> before,
                                                               std::size_t limit,
                                                               const EventFilter& filter) override {
    Where where = event_where(filter);
    if (before) where.add("position < ?", *before);
    return read_events(where, "DESC", limit);
  }

  std::expected<std::optional<StoredEvent>, Error> get(const EventId& id) override {
    Where where;
    where.add("event_id = ?", id.to_string());
    auto found = read_events(where, "ASC", 1);
    if (!found) return std::unexpected(std::move(found.error()));
    if (found->empty()) return std::optional<StoredEvent>{};
    return std::optional<StoredEvent>(std::move(found->front()));
  }

  std::expected<std::int64_t, Error> count(const EventFilter& filter) override {
    Where where = event_where(filter);
    return read_scalar("SELECT count(*) FROM herald_events" + where.sql, where.binds,
                       "counting events");
  }

  std::expected<std::int64_t, Error> head() override {
    return read_scalar("SELECT coalesce(max(position), 0) FROM herald_events", {},
                       "reading the head");
  }

  std::expected<std::int64_t, Error> wait_for(std::int64_t after,
                                              std::chrono::milliseconds timeout) override {
    // In-process appends wake the signal at once; anything else (another process, the outbox on
    // a connection whose commit nobody announced) is seen by re-reading the head every
    // `sqlite_poll_interval`.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto poll = std::max(options_.sqlite_poll_interval, std::chrono::milliseconds(1));
    std::uint64_t interrupts_seen = 0;
    {
      std::lock_guard lock(signal_->mutex);
      interrupts_seen = signal_->interrupts;
    }
    for (;;) {
      std::uint64_t seen = 0;
      {
        std::lock_guard lock(signal_->mutex);
        seen = signal_->sequence;
        if (signal_->interrupts != interrupts_seen) break;
      }
      auto current = head();
      if (!current || *current > after) return current;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return current;
      std::unique_lock lock(signal_->mutex);
      signal_->appended.wait_until(lock, std::min(deadline, now + poll), [&] {
        return signal_->sequence != seen || signal_->interrupts != interrupts_seen;
      });
    }
    return head();
  }

  void wake_waiters() noexcept override {
    {
      std::lock_guard lock(signal_->mutex);
      ++signal_->interrupts;
    }
    signal_->appended.notify_all();
  }

  // --- checkpoints and parked events ---

  std::expected<ConsumerCheckpoint, Error> load_checkpoint(const std::string& name) override {
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    auto stmt = (*reader)->prepare(
        "SELECT position, updated_at FROM herald_consumer_checkpoints WHERE name = ?1");
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    stmt->bind(1, std::string_view(name));
    const int rc = stmt->step();
    if (rc == SQLITE_ROW) {
      return ConsumerCheckpoint{
          .name = name, .position = stmt->int64(0), .updated_at = from_micros(stmt->int64(1))};
    }
    if (rc != SQLITE_DONE) return std::unexpected((*reader)->error(rc, "reading a checkpoint"));
    return ConsumerCheckpoint{.name = name, .position = 0, .updated_at = {}};
  }

  std::expected<void, Error> save_checkpoint(const std::string& name,
                                             std::int64_t position) override {
    if (auto valid = check_consumer(name, position); !valid) return valid;
    std::lock_guard lock(writer_mutex_);
    return writer_->write_transaction("saving checkpoint of consumer '" + name + "'",
                                      [&] { return upsert_checkpoint(name, position); });
  }

  std::expected<std::vector<ConsumerCheckpoint>, Error> list_checkpoints() override {
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    auto stmt = (*reader)->prepare(
        "SELECT name, position, updated_at FROM herald_consumer_checkpoints ORDER BY name");
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    std::vector<ConsumerCheckpoint> out;
    int rc = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      out.push_back({.name = std::string(stmt->text(0)),
                     .position = stmt->int64(1),
                     .updated_at = from_micros(stmt->int64(2))});
    }
    if (rc != SQLITE_DONE) return std::unexpected((*reader)->error(rc, "listing checkpoints"));
    return out;
  }

  std::expected<void, Error> park(const ParkedEvent& parked) override {
    if (auto valid = check_consumer(parked.consumer, parked.position); !valid) return valid;
    const std::string event_id = parked.event_id.to_string();
    const Timestamp parked_at = parked.parked_at == Timestamp{} ? herald::now() : parked.parked_at;
    std::lock_guard lock(writer_mutex_);
    return writer_->write_transaction("parking an event", [&]() -> std::expected<void, Error> {
      auto stmt = writer_->prepare(
          "INSERT INTO herald_parked_events (consumer, position, event_id, event_type, "
          "error, attempts, parked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
          "ON CONFLICT (consumer, position) DO UPDATE SET event_id = excluded.event_id, "
          "event_type = excluded.event_type, error = excluded.error, "
          "attempts = excluded.attempts, parked_at = excluded.parked_at");
      if (!stmt) return std::unexpected(std::move(stmt.error()));
      stmt->bind(1, std::string_view(parked.consumer));
      stmt->bind(2, parked.position);
      stmt->bind(3, std::string_view(event_id));
      stmt->bind(4, std::string_view(parked.event_type));
      stmt->bind(5, std::string_view(parked.error));
      stmt->bind(6, std::int64_t{parked.attempts});
      stmt->bind(7, to_micros(parked_at));
      if (const int rc = stmt->step(); rc != SQLITE_DONE) {
        return std::unexpected(writer_->error(rc, "parking an event"));
      }
      return {};
    });
  }

  std::expected<std::vector<ParkedEvent>, Error> list_parked(
      const std::optional<std::string>& consumer) override {
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    std::string sql =
        "SELECT consumer, position, event_id, event_type, error, attempts, parked_at "
        "FROM herald_parked_events";
    if (consumer) sql += " WHERE consumer = ?1";
    sql += " ORDER BY consumer, position";
    auto stmt = (*reader)->prepare(sql);
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    if (consumer) stmt->bind(1, std::string_view(*consumer));
    std::vector<ParkedEvent> out;
    int rc = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      out.push_back({.consumer = std::string(stmt->text(0)),
                     .position = stmt->int64(1),
                     .event_id = EventId::parse(stmt->text(2)).value_or(EventId{}),
                     .event_type = std::string(stmt->text(3)),
                     .error = std::string(stmt->text(4)),
                     .attempts = static_cast<int>(stmt->int64(5)),
                     .parked_at = from_micros(stmt->int64(6))});
    }
    if (rc != SQLITE_DONE) return std::unexpected((*reader)->error(rc, "listing parked events"));
    return out;
  }

  std::expected<void, Error> unpark(const std::string& consumer, std::int64_t position) override {
    std::lock_guard lock(writer_mutex_);
    return writer_->write_transaction("unparking an event", [&]() -> std::expected<void, Error> {
      auto stmt = writer_->prepare(
          "DELETE FROM herald_parked_events WHERE consumer = ?1 AND position = ?2");
      if (!stmt) return std::unexpected(std::move(stmt.error()));
      stmt->bind(1, std::string_view(consumer));
      stmt->bind(2, position);
      if (const int rc = stmt->step(); rc != SQLITE_DONE) {
        return std::unexpected(writer_->error(rc, "unparking an event"));
      }
      if (sqlite3_changes(writer_->db()) == 0) {
        return std::unexpected(Error{ErrorCode::not_found,
                                     "no parked event at position " + std::to_string(position) +
                                         " for consumer '" + consumer + "'",
                                     "position"});
      }
      return {};
    });
  }

  // --- audit log ---

  std::expected<bool, Error> append_audit(const AuditRecord& record,
                                          const std::string& consumer) override {
    if (auto valid = check_consumer(consumer, record.position); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    if (record.position <= 0) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, "position",
                           "expected the event's store position (1 or more), got " +
                               std::to_string(record.position)));
    }
    const std::string event_id = record.event_id.to_string();
    const std::string details = boost::json::serialize(record.details);
    std::lock_guard lock(writer_mutex_);
    return writer_->write_transaction(
        "appending an audit record", [&]() -> std::expected<bool, Error> {
          auto exists = writer_->prepare("SELECT 1 FROM herald_audit_records WHERE event_id = ?1");
          if (!exists) return std::unexpected(std::move(exists.error()));
          exists->bind(1, std::string_view(event_id));
          const int found = exists->step();
          if (found != SQLITE_ROW && found != SQLITE_DONE) {
            return std::unexpected(writer_->error(found, "looking up an audit record"));
          }
          if (found == SQLITE_ROW) {
            // Already recorded (a retry after a crash, or a replay): the consumer still moves on.
            if (auto moved = upsert_checkpoint(consumer, record.position); !moved) {
              return std::unexpected(std::move(moved.error()));
            }
            return false;
          }
          auto chain_head = audit_head_on(*writer_);
          if (!chain_head) return std::unexpected(std::move(chain_head.error()));
          if (record.position <= chain_head->position) {
            return std::unexpected(Error::for_field(
                ErrorCode::conflict, "position",
                "audit record for event " + event_id + " at position " +
                    std::to_string(record.position) +
                    " does not extend the audit chain, whose head is at position " +
                    std::to_string(chain_head->position)));
          }
          if (record.prev_hash != chain_head->hash) {
            return std::unexpected(Error::for_field(
                ErrorCode::conflict, "prev_hash",
                "audit record for event " + event_id + " links to " + record.prev_hash +
                    " but the chain's head (position " + std::to_string(chain_head->position) +
                    ") has hash " + chain_head->hash +
                    "; another writer moved the chain: recompute from audit_head()"));
          }
          auto insert = writer_->prepare(insert_audit_sql);
          if (!insert) return std::unexpected(std::move(insert.error()));
          bind_audit_record(*insert, record, event_id, details);
          if (const int rc = insert->step(); rc != SQLITE_DONE) {
            return std::unexpected(writer_->error(rc, "appending an audit record"));
          }
          if (auto moved = upsert_checkpoint(consumer, record.position); !moved) {
            return std::unexpected(std::move(moved.error()));
          }
          return true;
        });
  }

  std::expected<std::size_t, Error> append_audit_batch(std::span<const AuditRecord> records,
                                                       const std::string& consumer) override {
    if (auto valid = detail::check_audit_batch(records, consumer); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    if (records.empty()) return std::size_t{0};
    // Encoded outside the write lock: the statements bind these without copying.
    std::vector<std::string> event_ids;
    std::vector<std::string> details;
    event_ids.reserve(records.size());
    details.reserve(records.size());
    for (const AuditRecord& record : records) {
      event_ids.push_back(record.event_id.to_string());
      details.push_back(boost::json::serialize(record.details));
    }
    std::lock_guard lock(writer_mutex_);
    // A batch as AuditWriter builds it (each record extending the one before, none audited
    // before) goes in multi-row INSERTs: a statement's own work (opening the table's and the six
    // indexes' cursors, halting, freeing) cost as much as a third of a one-row INSERT. If any
    // record turns out to be in the log already, that transaction is rolled back and the batch
    // is decided again record by record.
    if (is_audit_chain(records)) {
      bool decide_each = false;
      auto inserted = writer_->write_transaction(
          "appending audit records", [&]() -> std::expected<std::size_t, Error> {
            auto chain_head = audit_head_on(*writer_);
            if (!chain_head) return std::unexpected(std::move(chain_head.error()));
            if (!detail::extends_chain(records.front(), *chain_head)) {
              decide_each = true;
              return std::unexpected(Error{ErrorCode::conflict, "not a continuation", {}});
            }
            auto rows = insert_audit_rows(records, event_ids, details);
            if (!rows) return std::unexpected(std::move(rows.error()));
            if (*rows != records.size()) {
              decide_each = true;
              return std::unexpected(Error{ErrorCode::conflict, "audited before", {}});
            }
            if (auto moved = upsert_checkpoint(consumer, records.back().position); !moved) {
              return std::unexpected(std::move(moved.error()));
            }
            return records.size();
          });
      if (!decide_each) return inserted;
    }
    return writer_->write_transaction(
        "appending audit records", [&]() -> std::expected<std::size_t, Error> {
          auto chain_head = audit_head_on(*writer_);
          if (!chain_head) return std::unexpected(std::move(chain_head.error()));
          auto insert = writer_->prepare(insert_new_audit_sql);
          if (!insert) return std::unexpected(std::move(insert.error()));
          auto exists = writer_->prepare("SELECT 1 FROM herald_audit_records WHERE event_id = ?1");
          if (!exists) return std::unexpected(std::move(exists.error()));
          // The same decisions as detail::plan_audit_batch, taken record by record: a record that
          // extends the chain is inserted unless its event has a record (the INSERT's own unique
          // check, so the common case costs no separate lookup); any other record must have one.
          AuditChainHead chain = *chain_head;
          std::size_t written = 0;
          for (std::size_t i = 0; i < records.size(); ++i) {
            const AuditRecord& record = records[i];
            if (detail::extends_chain(record, chain)) {
              // Nothing is stored above the head, so only the event_id can conflict.
              bind_audit_record(*insert, record, event_ids[i], details[i]);
              if (const int rc = insert->step(); rc != SQLITE_DONE) {
                return std::unexpected(writer_->error(rc, "appending an audit record"));
              }
              insert->reset();
              if (sqlite3_changes(writer_->db()) == 1) {
                chain = AuditChainHead{.position = record.position, .hash = record.hash};
                ++written;
              }
              continue;
            }
            exists->bind(1, std::string_view(event_ids[i]));
            const int found = exists->step();
            exists->reset();
            if (found != SQLITE_ROW && found != SQLITE_DONE) {
              return std::unexpected(writer_->error(found, "looking up an audit record"));
            }
            if (found == SQLITE_DONE) {
              return std::unexpected(detail::audit_batch_conflict(record, i, chain, written > 0));
            }
          }
          if (auto moved = upsert_checkpoint(consumer, records.back().position); !moved) {
            return std::unexpected(std::move(moved.error()));
          }
          return written;
        });
  }

  std::expected<AuditChainHead, Error> audit_head() override {
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    return audit_head_on(**reader);
  }

  std::expected<AuditPage, Error> query_audit(const AuditQuery& query) override {
    if (query.limit < 1 || query.limit > 1000) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, "limit",
                           "expected 1 to 1000, got " + std::to_string(query.limit)));
    }
    Where where = audit_where(query);
    Where page = where;
    if (query.before_position) page.add("position < ?", *query.before_position);
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    Connection& conn = **reader;
    // One snapshot for the page and the total, so they agree even while records are added.
    return conn.read_transaction(
        "querying the audit log", [&]() -> std::expected<AuditPage, Error> {
          AuditPage out;
          auto items = read_audit(conn, page, "DESC", query.limit);
          if (!items) return std::unexpected(std::move(items.error()));
          out.items = std::move(*items);
          auto total = scalar_on(conn, "SELECT count(*) FROM herald_audit_records" + where.sql,
                                 where.binds, "counting audit records");
          if (!total) return std::unexpected(std::move(total.error()));
          out.total = *total;
          return out;
        });
  }

  std::expected<std::vector<AuditRecord>, Error> read_audit_chain(std::int64_t after,
                                                                  std::size_t limit) override {
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    Where where;
    where.add("position > ?", after);
    return read_audit(**reader, where, "ASC", limit);
  }

  // --- API tokens ---

  std::expected<ApiToken, Error> create_token(const std::string& name,
                                              const std::string& token_sha256, Scopes scopes,
                                              std::optional<std::int64_t> organization_id,
                                              std::optional<std::int64_t> user_id) override {
    if (auto valid = check_token_arguments(name, token_sha256, scopes); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    const Timestamp created_at = herald::now();
    const std::string scope_names = format_scopes(scopes);
    std::lock_guard lock(writer_mutex_);
    return writer_->write_transaction(
        "creating API token '" + name + "'", [&]() -> std::expected<ApiToken, Error> {
          // Looked up first, under the write lock, so that a clash names what clashed.
          auto taken = token_where(*writer_, "name = ?1", name);
          if (!taken) return std::unexpected(std::move(taken.error()));
          if (*taken) return std::unexpected(token_name_taken(taken->value().token));
          auto same_hash = token_where(*writer_, "token_sha256 = ?1", token_sha256);
          if (!same_hash) return std::unexpected(std::move(same_hash.error()));
          if (*same_hash) return std::unexpected(token_hash_taken());
          auto insert = writer_->prepare(
              "INSERT INTO herald_api_tokens (name, token_sha256, scopes, organization_id, "
              "created_at, user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
          if (!insert) return std::unexpected(std::move(insert.error()));
          insert->bind(1, std::string_view(name));
          insert->bind(2, std::string_view(token_sha256));
          insert->bind(3, std::string_view(scope_names));
          insert->bind(4, organization_id);
          insert->bind(5, to_micros(created_at));
          insert->bind(6, user_id);
          if (const int rc = insert->step(); rc != SQLITE_DONE) {
            return std::unexpected(writer_->error(rc, "creating API token '" + name + "'"));
          }
          return ApiToken{.id = sqlite3_last_insert_rowid(writer_->db()),
                          .name = name,
                          .scopes = scopes,
                          .organization_id = organization_id,
                          .user_id = user_id,
                          .created_at = created_at,
                          .revoked_at = std::nullopt};
        });
  }

  std::expected<std::vector<ApiToken>, Error> list_tokens() override {
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    auto stmt = (*reader)->prepare(std::string(select_token_sql) + " ORDER BY name");
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    std::vector<ApiToken> out;
    int rc = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      auto token = token_row(*stmt);
      if (!token) return std::unexpected(std::move(token.error()));
      out.push_back(std::move(token->token));
    }
    if (rc != SQLITE_DONE) return std::unexpected((*reader)->error(rc, "listing API tokens"));
    return out;
  }

  std::expected<ApiToken, Error> revoke_token(const std::string& name) override {
    if (auto valid = check_api_token_name(name); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    const std::string doing = "revoking API token '" + name + "'";
    std::lock_guard lock(writer_mutex_);
    return writer_->write_transaction(doing, [&]() -> std::expected<ApiToken, Error> {
      auto update = writer_->prepare(
          "UPDATE herald_api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL");
      if (!update) return std::unexpected(std::move(update.error()));
      update->bind(1, std::string_view(name));
      update->bind(2, to_micros(herald::now()));
      if (const int rc = update->step(); rc != SQLITE_DONE) {
        return std::unexpected(writer_->error(rc, doing));
      }
      update->reset();
      auto found = token_where(*writer_, "name = ?1", name);
      if (!found) return std::unexpected(std::move(found.error()));
      if (!*found) return std::unexpected(token_not_found(name));
      return std::move(found->value().token);
    });
  }

  std::expected<std::optional<StoredApiToken>, Error> find_token(
      const std::string& token_sha256) override {
    if (auto valid = check_api_token_sha256(token_sha256); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    return token_where(**reader, "token_sha256 = ?1", token_sha256);
  }

  // --- SqliteStore ---

  SqliteStoreStats stats() const override {
    const GroupCommitStats group = group_commit_.stats();
    return {.append_transactions = group.transactions,
            .group_transactions = group.transactions,
            .single_appends = group.single_requests,
            .largest_group = group.largest_group,
            .queued = group.queued};
  }

  std::expected<SqliteSettings, Error> settings() override {
    std::lock_guard lock(writer_mutex_);
    SqliteSettings out;
    auto text = [&](const char* pragma) -> std::expected<std::string, Error> {
      auto stmt = writer_->prepare(pragma);
      if (!stmt) return std::unexpected(std::move(stmt.error()));
      if (const int rc = stmt->step(); rc != SQLITE_ROW) {
        return std::unexpected(writer_->error(rc, "reading a pragma"));
      }
      return std::string(stmt->text(0));
    };
    auto mode = text("PRAGMA journal_mode");
    auto sync = text("PRAGMA synchronous");
    auto pages = text("PRAGMA max_page_count");
    auto busy = text("PRAGMA busy_timeout");
    for (auto* v : {&mode, &sync, &pages, &busy}) {
      if (!*v) return std::unexpected(std::move(v->error()));
    }
    out.journal_mode = *mode;
    out.synchronous = std::stoi(*sync);
    out.max_page_count = std::stoll(*pages);
    out.busy_timeout_ms = std::stoi(*busy);
    return out;
  }

  const std::string& path() const override { return path_; }

 private:
  /// A reading connection borrowed from the pool; returned when the lease ends.
  class ReaderLease {
   public:
    ReaderLease(SqliteStoreImpl& store, std::unique_ptr<Connection> conn)
        : store_(&store), conn_(std::move(conn)) {}
    ReaderLease(ReaderLease&&) noexcept = default;
    ReaderLease& operator=(ReaderLease&&) noexcept = default;
    ~ReaderLease() {
      if (conn_ == nullptr) return;
      std::lock_guard lock(store_->readers_mutex_);
      store_->idle_readers_.push_back(std::move(conn_));
    }
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    SqliteStoreImpl* store_;
    std::unique_ptr<Connection> conn_;
  };

  std::expected<ReaderLease, Error> lease_reader() {
    {
      std::lock_guard lock(readers_mutex_);
      if (!idle_readers_.empty()) {
        auto conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return ReaderLease(*this, std::move(conn));
      }
    }
    auto conn = open_connection(path_, SQLITE_OPEN_READONLY, options_);
    if (!conn) return std::unexpected(std::move(conn.error()));
    return ReaderLease(*this, std::move(*conn));
  }

  std::expected<std::string, Error> encode(EventRef event) const {
    return sqlite_detail::encode_for_append(event, options_.catalog, options_.max_event_bytes,
                                            where_);
  }

  /// Checks every event of a batch before anything is queued, so a refused one writes nothing.
  std::expected<std::vector<std::string>, Error> encode_batch(std::span<const EventRef> events) {
    std::vector<std::string> bodies;
    bodies.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      auto body = encode(events[i]);
      if (!body) {
        Error error = std::move(body.error());
        error.message = "batch event " + std::to_string(i) + " of " +
                        std::to_string(events.size()) + ": " + error.message +
                        " (nothing of the batch was written)";
        return std::unexpected(std::move(error));
      }
      bodies.push_back(std::move(*body));
    }
    return bodies;
  }

  /// Group commit (src/store/group_commit.hpp): the rows of every request queued together.
  std::expected<std::vector<AppendResult>, Error> commit_group(
      std::span<const GroupCommitRequest> rows) {
    std::lock_guard lock(writer_mutex_);
    auto results = writer_->write_transaction("appending", [&] { return insert_rows(rows); });
    if (results) sqlite_detail::notify_appended(key_);
    return results;
  }

  /// Writes `rows` in the writer's open transaction. Caller holds `writer_mutex_`.
  std::expected<std::vector<AppendResult>, Error> insert_rows(
      std::span<const GroupCommitRequest> rows) {
    auto insert = writer_->prepare(std::string(sqlite_detail::insert_event_sql));
    if (!insert) return std::unexpected(std::move(insert.error()));
    auto find = writer_->prepare(std::string(sqlite_detail::find_event_sql));
    if (!find) return std::unexpected(std::move(find.error()));
    const Timestamp recorded_at = herald::now();
    std::vector<AppendResult> results;
    results.reserve(rows.size());
    for (const GroupCommitRequest& row : rows) {
      auto result = sqlite_detail::insert_event(writer_->db(), insert->get(), find->get(),
                                                row.event, row.body, recorded_at, where_);
      if (!result) return std::unexpected(std::move(result.error()));
      results.push_back(*result);
    }
    return results;
  }

  static constexpr const char* insert_audit_sql =
      "INSERT INTO herald_audit_records (position, event_id, occurred_at, recorded_at, actor, "
      "organization_id, action, entity_type, entity_id, details, prev_hash, hash) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
  /// The same, inserting nothing when the event already has a record.
  static inline const std::string insert_new_audit_sql =
      std::string(insert_audit_sql) + " ON CONFLICT (event_id) DO NOTHING";

  /// Binds `record` to `insert_audit_sql`; `event_id` and `details` are its encoded forms, and
  /// they and `record` must outlive the statement's use.
  static void bind_audit_record(Statement& insert, const AuditRecord& record,
                                std::string_view event_id, std::string_view details,
                                int first = 1) {
    insert.bind(first, record.position);
    insert.bind(first + 1, event_id);
    insert.bind(first + 2, to_micros(record.occurred_at));
    insert.bind(first + 3, to_micros(record.recorded_at));
    insert.bind(first + 4, record.actor);
    insert.bind(first + 5, record.organization_id);
    insert.bind(first + 6, std::string_view(record.action));
    insert.bind(first + 7, std::string_view(record.entity_type));
    insert.bind(first + 8, record.entity_id);
    insert.bind(first + 9, details);
    insert.bind(first + 10, std::string_view(record.prev_hash));
    insert.bind(first + 11, std::string_view(record.hash));
  }

  /// Rows of the largest multi-row INSERT of audit records: 12 parameters a row stays far below
  /// SQLite's limit of 32766, and the statement program stays small.
  static constexpr std::size_t audit_rows_per_insert = 64;

  /// True when each record extends the one before it: positions increase and each `prev_hash`
  /// is the hash of the record before.
  static bool is_audit_chain(std::span<const AuditRecord> records) {
    for (std::size_t i = 1; i < records.size(); ++i) {
      if (!detail::extends_chain(records[i], AuditChainHead{.position = records[i - 1].position,
                                                            .hash = records[i - 1].hash})) {
        return false;
      }
    }
    return true;
  }

  /// `INSERT … ON CONFLICT (event_id) DO NOTHING` of `rows` records at once.
  static std::string insert_audit_rows_sql(std::size_t rows) {
    std::string sql =
        "INSERT INTO herald_audit_records (position, event_id, occurred_at, recorded_at, actor, "
        "organization_id, action, entity_type, entity_id, details, prev_hash, hash) VALUES ";
    for (std::size_t row = 0; row < rows; ++row) {
      if (row > 0) sql += ", ";
      sql += "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    }
    sql += " ON CONFLICT (event_id) DO NOTHING";
    return sql;
  }

  /// Inserts `records` (with their encoded `event_ids` and `details`) in multi-row INSERTs of
  /// `audit_rows_per_insert` rows, the rest in halving sizes (32, 16, … 1), so that at most seven
  /// statements are ever prepared. Returns how many rows were inserted: fewer than the records
  /// when some event_id was in the log already.
  std::expected<std::size_t, Error> insert_audit_rows(std::span<const AuditRecord> records,
                                                      const std::vector<std::string>& event_ids,
                                                      const std::vector<std::string>& details) {
    std::size_t inserted = 0;
    std::size_t next = 0;
    for (std::size_t rows = audit_rows_per_insert; rows > 0; rows /= 2) {
      if (records.size() - next < rows) continue;
      // The texts are built once: the statement cache looks them up on every batch.
      static const std::array<std::string, 7> sql_by_size = [] {
        std::array<std::string, 7> texts;
        for (std::size_t k = 0; k < texts.size(); ++k) texts[k] = insert_audit_rows_sql(1U << k);
        return texts;
      }();
      static_assert(audit_rows_per_insert == 1U << 6);
      auto insert = writer_->prepare(sql_by_size[static_cast<std::size_t>(std::countr_zero(rows))]);
      if (!insert) return std::unexpected(std::move(insert.error()));
      while (records.size() - next >= rows) {
        for (std::size_t row = 0; row < rows; ++row) {
          const std::size_t i = next + row;
          bind_audit_record(*insert, records[i], event_ids[i], details[i],
                            static_cast<int>(row * 12 + 1));
        }
        if (const int rc = insert->step(); rc != SQLITE_DONE) {
          return std::unexpected(writer_->error(rc, "appending audit records"));
        }
        insert->reset();
        inserted += static_cast<std::size_t>(sqlite3_changes(writer_->db()));
        next += rows;
      }
    }
    return inserted;
  }

  std::expected<void, Error> upsert_checkpoint(const std::string& name, std::int64_t position) {
    auto stmt = writer_->prepare(
        "INSERT INTO herald_consumer_checkpoints (name, position, updated_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
        "updated_at = excluded.updated_at");
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    stmt->bind(1, std::string_view(name));
    stmt->bind(2, position);
    stmt->bind(3, to_micros(herald::now()));
    if (const int rc = stmt->step(); rc != SQLITE_DONE) {
      return std::unexpected(writer_->error(rc, "saving checkpoint of consumer '" + name + "'"));
    }
    return {};
  }

  static constexpr std::string_view select_token_sql =
      "SELECT id, name, scopes, organization_id, created_at, revoked_at, token_sha256, user_id "
      "FROM herald_api_tokens";

  /// The token in the current row of a `select_token_sql` statement.
  std::expected<StoredApiToken, Error> token_row(Statement& stmt) const {
    StoredApiToken stored;
    ApiToken& token = stored.token;
    token.id = stmt.int64(0);
    token.name = std::string(stmt.text(1));
    auto scopes = parse_scopes(stmt.text(2));
    if (!scopes) {
      return std::unexpected(Error{ErrorCode::internal,
                                   where_ + ": API token '" + token.name +
                                       "' has unreadable stored scopes: " + scopes.error().message,
                                   "scopes"});
    }
    token.scopes = *scopes;
    token.organization_id = stmt.optional_int64(3);
    token.created_at = from_micros(stmt.int64(4));
    if (auto revoked = stmt.optional_int64(5)) token.revoked_at = from_micros(*revoked);
    stored.token_sha256 = std::string(stmt.text(6));
    token.user_id = stmt.optional_int64(7);
    return stored;
  }

  /// The one token matching `condition` (on ?1 = `value`), through `conn`, or nullopt.
  std::expected<std::optional<StoredApiToken>, Error> token_where(Connection& conn,
                                                                  std::string_view condition,
                                                                  const std::string& value) const {
    auto stmt = conn.prepare(std::string(select_token_sql) + " WHERE " + std::string(condition));
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    stmt->bind(1, std::string_view(value));
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return std::optional<StoredApiToken>{};
    if (rc != SQLITE_ROW) return std::unexpected(conn.error(rc, "looking up an API token"));
    auto token = token_row(*stmt);
    if (!token) return std::unexpected(std::move(token.error()));
    return std::optional<StoredApiToken>(std::move(*token));
  }

  static std::expected<void, Error> check_consumer(const std::string& name, std::int64_t position) {
    if (name.empty()) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "consumer",
                                              "expected a consumer name, got an empty string"));
    }
    if (position < 0) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, "position",
                           "expected 0 or more, got " + std::to_string(position)));
    }
    return {};
  }

  std::expected<std::int64_t, Error> read_scalar(const std::string& sql,
                                                 const std::vector<Bind>& binds,
                                                 std::string_view doing) {
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    return scalar_on(**reader, sql, binds, doing);
  }

  static std::expected<std::int64_t, Error> scalar_on(Connection& conn, const std::string& sql,
                                                      const std::vector<Bind>& binds,
                                                      std::string_view doing) {
    auto stmt = conn.prepare(sql);
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    stmt->bind_all(binds);
    const int rc = stmt->step();
    if (rc != SQLITE_ROW) return std::unexpected(conn.error(rc, doing));
    return stmt->int64(0);
  }

  std::expected<std::vector<StoredEvent>, Error> read_events(const Where& where,
                                                             std::string_view order,
                                                             std::size_t limit) {
    std::vector<StoredEvent> out;
    if (limit == 0) return out;
    auto reader = lease_reader();
    if (!reader) return std::unexpected(std::move(reader.error()));
    const std::string sql = "SELECT " + std::string(event_columns) + " FROM herald_events" +
                            where.sql + " ORDER BY position " + std::string(order) + " LIMIT ?";
    auto stmt = (*reader)->prepare(sql);
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    stmt->bind_all(where.binds);
    stmt->bind(static_cast<int>(where.binds.size()) + 1, to_sql_limit(limit));
    out.reserve(std::min<std::size_t>(limit, 4096));
    StoredJsonParser parser;
    int rc = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      const std::int64_t position = stmt->int64(0);
      auto event = decode_stored(parser, position, stmt->text(2), stmt->text(3));
      if (!event) {
        // The events before the unreadable one are still a valid answer ("at most `limit`"); the
        // error comes back when the unreadable event is the first one left.
        if (!out.empty()) return out;
        return std::unexpected(std::move(event.error()));
      }
      out.push_back(StoredEvent{.position = position,
                                .recorded_at = from_micros(stmt->int64(1)),
                                .event = std::move(*event)});
    }
    if (rc != SQLITE_DONE) return std::unexpected((*reader)->error(rc, "reading events"));
    return out;
  }

  std::expected<EventPtr, Error> decode_stored(StoredJsonParser& parser, std::int64_t position,
                                               std::string_view type_name, std::string_view body) {
    auto at = [&] { return where_ + ": event at position " + std::to_string(position); };
    const EventType* type = options_.catalog->find(type_name);
    if (type == nullptr) {
      return std::unexpected(Error::for_field(
          ErrorCode::invalid_argument, "event_type",
          "unknown event type \"" + std::string(type_name) + "\" (" + at() +
              "); add the type to the catalog given in StoreOptions::catalog to read it"));
    }
    // Bodies herald wrote are read straight into the event; anything the direct reader declines
    // takes the DOM path below, which reports the errors.
    if (EventPtr event = type->try_decode_text(body)) return event;
    auto value = parser.parse(body);
    if (!value || !value->is_object()) {
      return std::unexpected(Error{ErrorCode::internal,
                                   at() + ": stored body is not a JSON object" +
                                       (value ? std::string() : " (" + value.error() + ")"),
                                   {}});
    }
    auto event = type->decode(value->get_object());
    if (!event) {
      Error error = std::move(event.error());
      error.message = at() + " (" + std::string(type_name) + ") does not decode: " + error.message;
      return std::unexpected(std::move(error));
    }
    return event;
  }

  std::expected<AuditChainHead, Error> audit_head_on(Connection& conn) {
    auto stmt = conn.prepare(
        "SELECT position, hash FROM herald_audit_records ORDER BY position DESC LIMIT 1");
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return AuditChainHead{};
    if (rc != SQLITE_ROW) return std::unexpected(conn.error(rc, "reading the audit head"));
    return AuditChainHead{.position = stmt->int64(0), .hash = std::string(stmt->text(1))};
  }

  std::expected<std::vector<AuditRecord>, Error> read_audit(Connection& conn, const Where& where,
                                                            std::string_view order,
                                                            std::size_t limit) {
    std::vector<AuditRecord> out;
    if (limit == 0) return out;
    const std::string sql = "SELECT " + std::string(audit_columns) + " FROM herald_audit_records" +
                            where.sql + " ORDER BY position " + std::string(order) + " LIMIT ?";
    auto stmt = conn.prepare(sql);
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    stmt->bind_all(where.binds);
    stmt->bind(static_cast<int>(where.binds.size()) + 1, to_sql_limit(limit));
    StoredJsonParser parser;
    int rc = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      AuditRecord record;
      record.position = stmt->int64(0);
      record.event_id = EventId::parse(stmt->text(1)).value_or(EventId{});
      record.occurred_at = from_micros(stmt->int64(2));
      record.recorded_at = from_micros(stmt->int64(3));
      record.actor = stmt->optional_int64(4);
      record.organization_id = stmt->optional_int64(5);
      record.action = stmt->text(6);
      record.entity_type = stmt->text(7);
      record.entity_id = stmt->optional_text(8);
      auto details = parser.parse(stmt->text(9));
      if (!details || !details->is_object()) {
        return std::unexpected(Error{ErrorCode::internal,
                                     where_ + ": audit record at position " +
                                         std::to_string(record.position) +
                                         " has details that are not a JSON object",
                                     {}});
      }
      // A copy into the default memory resource: the parsed value lives in the parser's arena.
      record.details = boost::json::object(details->get_object(), boost::json::storage_ptr());
      record.prev_hash = stmt->text(10);
      record.hash = stmt->text(11);
      out.push_back(std::move(record));
    }
    if (rc != SQLITE_DONE) return std::unexpected(conn.error(rc, "reading audit records"));
    return out;
  }

  StoreOptions options_;
  std::string path_;
  /// How errors name this store: "herald store 'events.db'".
  std::string where_;
  std::string key_;
  mutable std::mutex writer_mutex_;
  std::unique_ptr<Connection> writer_;
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  std::shared_ptr<AppendSignal> signal_;
  GroupCommit group_commit_;
};

}  // namespace

std::expected<std::unique_ptr<SqliteStore>, Error> open_sqlite_store(const StoreOptions& options) {
  const std::string& path = options.location;
  if (path.empty()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "location",
                                            "expected a database file path, got an empty string"));
  }
  if (options.catalog == nullptr) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "catalog",
        "a store needs the catalog of the event types it reads back (StoreOptions::catalog)"));
  }
  auto probed = probe(path, options.sqlite_adopt_existing);
  if (!probed) return std::unexpected(std::move(probed.error()));

  auto writer = open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options);
  if (!writer) return std::unexpected(std::move(writer.error()));
  if (auto configured = configure_writer(**writer, path, options); !configured) {
    return std::unexpected(std::move(configured.error()));
  }
  if (probed->fresh || probed->version < sqlite_schema_version) {
    if (auto migrated = migrate(**writer, path, options.sqlite_adopt_existing); !migrated) {
      return std::unexpected(std::move(migrated.error()));
    }
  }
  return std::make_unique<SqliteStoreImpl>(options, std::move(*writer));
}

namespace sqlite_detail {

std::expected<std::string, Error> encode_for_append(EventRef event, const EventCatalog* catalog,
                                                    std::size_t max_bytes, std::string_view where) {
  if (event->event_id.is_nil()) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "event_id",
        "the nil UUID is not an event id (" + std::string(event.event_type()) + ")"));
  }
  if (catalog != nullptr && !catalog->contains(event.event_type())) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "event_type",
        std::string(where) + ": event type \"" + std::string(event.event_type()) +
            "\" is not in the store's catalog, so it could not be read back; add it to the "
            "catalog given in StoreOptions::catalog"));
  }
  std::string body = encode_event(event);
  if (body.size() > max_bytes) {
    return std::unexpected(Error{ErrorCode::too_large,
                                 std::string(where) + ": event " + event->event_id.to_string() +
                                     " (" + std::string(event.event_type()) + ") encodes to " +
                                     std::to_string(body.size()) + " bytes, over the limit of " +
                                     std::to_string(max_bytes) +
                                     " bytes (StoreOptions::max_event_bytes); nothing was written",
                                 "event"});
  }
  return body;
}

std::expected<AppendResult, Error> insert_event(sqlite3* db, sqlite3_stmt* insert_stmt,
                                                sqlite3_stmt* find_stmt, EventRef event,
                                                std::string_view body, Timestamp recorded_at,
                                                std::string_view where) {
  const std::string event_id = event->event_id.to_string();
  const EntityEvent* entity = event.entity();
  std::optional<std::string> entity_type;
  std::optional<std::string> entity_id;
  if (entity != nullptr) {
    entity_type = std::string(event.type().entity_type());
    if (entity->entity_id) entity_id = to_string(*entity->entity_id);
  }
  Statement insert(insert_stmt);
  insert.bind(1, std::string_view(event_id));
  insert.bind(2, event.event_type());
  insert.bind(3, event->organization_id);
  insert.bind(4, entity_type);
  insert.bind(5, entity_id);
  insert.bind(6, to_micros(event->timestamp));
  insert.bind(7, to_micros(recorded_at));
  insert.bind(8, body);
  if (const int rc = insert.step(); rc != SQLITE_DONE) {
    return std::unexpected(failure(where, db, rc, "appending event " + event_id));
  }
  if (sqlite3_changes(db) == 1) {
    return AppendResult{.position = sqlite3_last_insert_rowid(db), .inserted = true};
  }
  // The id is stored already (earlier, or earlier in this very batch): report its position.
  Statement find(find_stmt);
  find.bind(1, std::string_view(event_id));
  const int rc = find.step();
  if (rc != SQLITE_ROW)
    return std::unexpected(failure(where, db, rc, "looking up event " + event_id));
  return AppendResult{.position = find.int64(0), .inserted = false};
}

std::expected<void, Error> check_schema(sqlite3* db, std::string_view where) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT value FROM herald_meta WHERE key = 'schema_version'", -1,
                              &stmt, nullptr);
  std::optional<int> version;
  if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    version = sqlite3_column_int(stmt, 0);
  }
  sqlite3_finalize(stmt);
  if (!version) {
    return std::unexpected(Error{ErrorCode::conflict,
                                 std::string(where) +
                                     " has no herald schema; open it once with open_store "
                                     "(which creates herald's tables) before appending to it",
                                 {}});
  }
  if (*version != sqlite_schema_version) {
    return std::unexpected(Error{ErrorCode::conflict,
                                 std::string(where) + " has herald schema version " +
                                     std::to_string(*version) + ", this herald writes version " +
                                     std::to_string(sqlite_schema_version) +
                                     "; open it with open_store to migrate it, or use the herald "
                                     "that wrote it",
                                 {}});
  }
  return {};
}

void notify_appended(std::string_view path) { SignalRegistry::instance().notify(file_key(path)); }

Error failure(std::string_view where, sqlite3* db, int rc, std::string_view doing) {
  const std::string sqlite_says =
      db != nullptr ? std::string(sqlite3_errmsg(db)) : std::string(sqlite3_errstr(rc));
  const std::string what = std::string(where) + ": " + std::string(doing) + " failed: ";
  const std::string raw = " (SQLite: \"" + sqlite_says + "\")";
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Error{ErrorCode::unavailable,
                   what + "the database is full" + raw +
                       "; free disk space, or raise StoreOptions::sqlite_max_pages",
                   {}};
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error{ErrorCode::unavailable,
                   what + "the database is locked by another connection" + raw +
                       "; retry, or raise StoreOptions::sqlite_busy_timeout",
                   {}};
    case SQLITE_READONLY:
      return Error{ErrorCode::io,
                   what + "the database is read-only for this process" + raw +
                       "; herald needs to write the file and its -wal and -shm files beside it: "
                       "check the permissions of the file and its directory",
                   {}};
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Error{ErrorCode::io,
                   what + "the file cannot be opened" + raw +
                       "; check that its directory exists and that this process may write it "
                       "(SQLite creates -wal and -shm files beside the database)",
                   {}};
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error{ErrorCode::io,
                   what + "the database file is corrupt" + raw + "; restore it from a backup",
                   {}};
    case SQLITE_IOERR:
      return Error{ErrorCode::io, what + "disk I/O error" + raw, {}};
    case SQLITE_CONSTRAINT:
      return Error{ErrorCode::conflict, what + "a constraint was violated" + raw, {}};
    default:
      return Error{ErrorCode::internal, what + sqlite_says, {}};
  }
}

}  // namespace sqlite_detail

}  // namespace herald
