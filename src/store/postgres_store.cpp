#include "store/postgres_store.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "herald/json.hpp"
#include "store/api_token_checks.hpp"
#include "store/audit_batch.hpp"
#include "store/group_commit.hpp"
#include "store/postgres_append.hpp"
#include "store/postgres_binary.hpp"

namespace herald::detail {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Keys of the transaction-scoped advisory locks herald takes. Any bigint works; these spell
// "herald" plus a number so an operator can recognise them in pg_locks.
constexpr std::int64_t audit_lock_key = 0x6865'7261'6C64'0002;
constexpr std::int64_t migrate_lock_key = 0x6865'7261'6C64'0003;

// Idle connections kept for reuse; more are opened under load and closed when returned.
constexpr std::size_t max_idle_connections = 8;

// Stored events were checked against `max_event_bytes` when appended, so only the nesting limit
// is raised when reading them back: what was written must read back.
boost::json::parse_options stored_parse_options() {
  boost::json::parse_options options;
  options.max_depth = 10000;
  return options;
}

// How often `wait_for` re-reads the head while the LISTEN connection is down.
constexpr auto wait_poll_without_listener = 100ms;

// A timestamptz column as microseconds since the Unix epoch (exact: extract() returns numeric).
std::string micros_of(std::string_view column) {
  return "(extract(epoch FROM " + std::string(column) + ") * 1000000)::bigint";
}

Timestamp timestamp_from_micros(std::int64_t micros) {
  return Timestamp{std::chrono::microseconds{micros}};
}

std::int64_t clamp_limit(std::size_t limit) {
  return limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(limit);
}

// One line of a libpq message: they span lines ("...\n\tIs the server running...").
std::string one_line(std::string_view text) {
  std::string line;
  line.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !line.empty();
      continue;
    }
    if (space) line.push_back(' ');
    space = false;
    line.push_back(c);
  }
  return line;
}

/// Positional parameters for a statement built at run time, all passed as text (or NULL) and
/// cast in SQL, so one code path serves every type and filter combination. Built with
/// `inline_values`, it writes each value into the SQL as a literal instead, for statements that
/// take no parameters (COPY).
class SqlParams {
 public:
  SqlParams() = default;
  explicit SqlParams(bool inline_values) : inline_(inline_values) {}

  /// Adds a value and returns its placeholder ("$3"), or its literal (E'text').
  std::string add(std::string value) {
    if (inline_) return literal(value);
    values_.emplace_back(std::move(value));
    return "$" + std::to_string(values_.size());
  }
  std::string add(const std::optional<std::string>& value) {
    if (inline_) return value ? literal(*value) : std::string("NULL");
    values_.push_back(value);
    return "$" + std::to_string(values_.size());
  }
  std::string add(std::int64_t value) {
    if (inline_) return "(" + std::to_string(value) + ")::bigint";
    return add(std::to_string(value)) + "::bigint";
  }

  /// `value` as an escape string constant, whatever standard_conforming_strings says. Like a
  /// text parameter, it ends at the first NUL byte.
  static std::string literal(std::string_view value) {
    value = value.substr(0, value.find('\0'));
    std::string text = "E'";
    text.reserve(value.size() + 3);
    for (const char c : value) {
      if (c == '\'' || c == '\\') text.push_back(c);
      text.push_back(c);
    }
    text.push_back('\'');
    return text;
  }

  pqxx::result exec(pqxx::transaction_base& tx, const std::string& sql) const {
    std::vector<const char*> pointers;
    pointers.reserve(values_.size());
    for (const auto& value : values_) pointers.push_back(value ? value->c_str() : nullptr);
    return tx.exec_params(sql, pqxx::prepare::make_dynamic_params(pointers));
  }

 private:
  std::vector<std::optional<std::string>> values_;
  bool inline_ = false;
};

std::optional<std::string> optional_text(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return std::string(field.c_str());
}

std::optional<std::int64_t> optional_int(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return field.as<std::int64_t>();
}

bool is_connection_failure(const std::exception& failure) {
  if (dynamic_cast<const pqxx::broken_connection*>(&failure) != nullptr) return true;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&failure)) {
    const std::string& state = sql->sqlstate();
    // Class 08: connection exception; 57P01-57P03: the server is shutting down or starting.
    return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03";
  }
  return false;
}

// --- schema ---

// Version 1: events, checkpoints, parked events and the audit log. Positions come from a
// sequence, but only ever under the append lock (see postgres_append_rows), so commit order is
// position order.
constexpr const char* schema_v1 = R"sql(
CREATE TABLE herald_meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
CREATE SEQUENCE herald_position_seq AS bigint MINVALUE 1 START 1 NO CYCLE;
CREATE TABLE herald_events (
  position bigint PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  event_type text NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL,
  actor bigint,
  organization_id bigint,
  entity_type text,
  entity_id text,
  body json NOT NULL
);
CREATE INDEX herald_events_by_type ON herald_events (event_type, position);
CREATE INDEX herald_events_by_organization ON herald_events (organization_id, position)
  WHERE organization_id IS NOT NULL;
CREATE INDEX herald_events_by_entity ON herald_events (entity_id, position)
  WHERE entity_id IS NOT NULL;
CREATE INDEX herald_events_by_time ON herald_events (occurred_at);
CREATE TABLE herald_consumer_checkpoints (
  name text PRIMARY KEY,
  position bigint NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE TABLE herald_parked_events (
  consumer text NOT NULL,
  position bigint NOT NULL,
  event_id uuid NOT NULL,
  event_type text NOT NULL,
  error text NOT NULL,
  attempts integer NOT NULL,
  parked_at timestamptz NOT NULL,
  PRIMARY KEY (consumer, position)
);
CREATE TABLE herald_audit_records (
  position bigint PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL,
  actor bigint,
  organization_id bigint,
  action text NOT NULL,
  entity_type text NOT NULL,
  entity_id text,
  details json NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX herald_audit_by_organization ON herald_audit_records (organization_id, position);
CREATE INDEX herald_audit_by_actor ON herald_audit_records (actor, position);
CREATE INDEX herald_audit_by_action ON herald_audit_records (action, position);
CREATE INDEX herald_audit_by_entity ON herald_audit_records (entity_id, position);
CREATE INDEX herald_audit_by_time ON herald_audit_records (occurred_at);
)sql";

// Version 2: API tokens. Only a token's SHA-256 is kept; scopes as their names ("ingest,read").
constexpr const char* schema_v2 = R"sql(
CREATE TABLE herald_api_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  token_sha256 text NOT NULL UNIQUE,
  scopes text NOT NULL,
  organization_id bigint,
  created_at timestamptz NOT NULL,
  revoked_at timestamptz
);
)sql";

// Version 3: an API token may be bound to a user (their inbox, preferences and email).
constexpr const char* schema_v3 = R"sql(
ALTER TABLE herald_api_tokens ADD COLUMN user_id bigint;
)sql";

// Migration i takes the schema from version i to i + 1. Append new versions here; never edit an
// applied one.
constexpr const char* migrations[] = {schema_v1, schema_v2, schema_v3};
static_assert(std::size(migrations) == postgres_schema_version);

std::expected<void, Error> migrate(pqxx::connection& conn, std::string_view server) {
  pqxx::work tx(conn);
  // Two processes opening an empty database at once must not both create the schema.
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", migrate_lock_key);
  const pqxx::row where = tx.exec1("SELECT current_database(), current_schema()");
  const std::string place = "database '" + std::string(where[0].c_str()) + "' (schema '" +
                            (where[1].is_null() ? std::string("none") : where[1].c_str()) +
                            "') on " + std::string(server);
  if (where[1].is_null()) {
    return std::unexpected(Error{
        ErrorCode::conflict,
        place + " has no schema to create herald's tables in: set search_path to an existing one",
        {}});
  }
  int version = 0;
  const pqxx::row meta = tx.exec1("SELECT to_regclass('herald_meta') IS NOT NULL");
  if (meta[0].as<bool>()) {
    const pqxx::result row = tx.exec("SELECT value FROM herald_meta WHERE key = 'schema_version'");
    if (row.empty()) {
      return std::unexpected(
          Error{ErrorCode::conflict,
                place + " has a herald_meta table without a schema_version: not a herald database "
                        "(or a damaged one); nothing was changed",
                {}});
    }
    try {
      version = std::stoi(row[0][0].c_str());
    } catch (const std::exception&) {
      version = -1;
    }
    if (version < 1) {
      return std::unexpected(Error{ErrorCode::conflict,
                                   place + " has schema_version '" +
                                       std::string(row[0][0].c_str()) +
                                       "' in herald_meta, expected a positive integer; nothing "
                                       "was changed",
                                   {}});
    }
    if (version > postgres_schema_version) {
      return std::unexpected(Error{ErrorCode::conflict,
                                   place + " was written by a newer herald (schema version " +
                                       std::to_string(version) + "; this herald reads up to " +
                                       std::to_string(postgres_schema_version) +
                                       "): upgrade herald; nothing was changed",
                                   {}});
    }
  } else {
    // An empty schema becomes herald's; one with other tables is somebody else's.
    const pqxx::result tables = tx.exec(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
        "ORDER BY c.relname LIMIT 4");
    if (!tables.empty()) {
      std::string names;
      for (const auto& table : tables) {
        if (!names.empty()) names += ", ";
        names += table[0].c_str();
      }
      return std::unexpected(
          Error{ErrorCode::conflict,
                place + " already holds tables that are not herald's (" + names +
                    (tables.size() > 3 ? ", …" : "") +
                    "): use an empty database or schema for herald; nothing was changed",
                {}});
    }
  }
  if (version == postgres_schema_version) return {};  // the transaction rolls back: no change
  for (int next = version; next < postgres_schema_version; ++next) tx.exec(migrations[next]);
  tx.exec_params(
      "INSERT INTO herald_meta (key, value) VALUES ('schema_version', $1) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      std::to_string(postgres_schema_version));
  tx.exec(
      "INSERT INTO herald_meta (key, value) VALUES ('created_at', now()::text) "
      "ON CONFLICT (key) DO NOTHING");
  tx.commit();
  return {};
}

// --- connections ---

/// Open connections for reuse. Thread-safe. A connection is handed to one caller at a time.
class ConnectionPool {
 public:
  explicit ConnectionPool(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  /// An idle connection, or a new one (throws pqxx::broken_connection when the server cannot be
  /// reached). `reused` tells whether it sat idle, so it may have died meanwhile.
  std::unique_ptr<pqxx::connection> take(bool& reused) {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        reused = true;
        return conn;
      }
    }
    reused = false;
    return std::make_unique<pqxx::connection>(conninfo_);
  }

  void give_back(std::unique_ptr<pqxx::connection> conn) {
    if (!conn || !conn->is_open()) return;
    std::lock_guard lock(mutex_);
    if (idle_.size() < max_idle_connections) idle_.push_back(std::move(conn));
  }

  /// Drops every idle connection (after one was found dead: the others likely are too).
  void clear() {
    std::vector<std::unique_ptr<pqxx::connection>> dropped;
    std::lock_guard lock(mutex_);
    dropped.swap(idle_);
  }

  const std::string& conninfo() const { return conninfo_; }

 private:
  std::string conninfo_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
};

// --- reads: binary COPY over libpq ---

struct PgConnCloser {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using RawConnection = std::unique_ptr<PGconn, PgConnCloser>;

struct PgResultClearer {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using RawResult = std::unique_ptr<PGresult, PgResultClearer>;

/// Why a read on a libpq connection failed: the server's message, its SQLSTATE ("" when none),
/// and whether the connection is gone.
struct RawFailure {
  std::string message;
  std::string sqlstate;
  bool connection_lost = false;
};

/// Open libpq connections for reads, kept apart from the libpqxx pool: reads stream their rows
/// as binary COPY data, which libpqxx 6 cannot fetch. Thread-safe; as `ConnectionPool`.
class RawConnectionPool {
 public:
  explicit RawConnectionPool(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  /// An idle connection, or a new one (nullptr and `failure` when the server cannot be reached).
  RawConnection take(bool& reused, std::optional<RawFailure>& failure) {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        RawConnection conn = std::move(idle_.back());
        idle_.pop_back();
        reused = true;
        return conn;
      }
    }
    reused = false;
    RawConnection conn(PQconnectdb(conninfo_.c_str()));
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
      failure = RawFailure{.message = conn ? PQerrorMessage(conn.get()) : "out of memory",
                           .connection_lost = true};
      return nullptr;
    }
    return conn;
  }

  void give_back(RawConnection conn) {
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK ||
        PQtransactionStatus(conn.get()) != PQTRANS_IDLE) {
      return;
    }
    std::lock_guard lock(mutex_);
    if (idle_.size() < max_idle_connections) idle_.push_back(std::move(conn));
  }

  void clear() {
    std::vector<RawConnection> dropped;
    std::lock_guard lock(mutex_);
    dropped.swap(idle_);
  }

 private:
  std::string conninfo_;
  std::mutex mutex_;
  std::vector<RawConnection> idle_;
};

/// The failure a result or connection reports.
RawFailure raw_failure(PGconn* conn, const PGresult* result) {
  RawFailure failure;
  const char* message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message == nullptr || *message == '\0') message = PQerrorMessage(conn);
  failure.message = message;
  if (result != nullptr) {
    if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) failure.sqlstate = state;
  }
  failure.connection_lost = PQstatus(conn) != CONNECTION_OK || failure.sqlstate.starts_with("08") ||
                            failure.sqlstate == "57P01" || failure.sqlstate == "57P02" ||
                            failure.sqlstate == "57P03";
  return failure;
}

/// One field of a binary COPY row: its bytes, or nullopt for NULL.
using CopyField = std::optional<std::string_view>;

/// Reads the rows of `COPY (query) TO STDOUT (FORMAT binary)`, one CopyData message at a time:
/// the server sends each row as one message, the file header at the start of the first, and the
/// trailer (a field count of -1) as the last.
class BinaryCopyRows {
 public:
  /// Parses `message` into `fields`, which must have as many elements as a row has columns.
  /// Returns 1 for a row, 0 for the trailer, -1 for malformed data.
  int parse(std::string_view message, std::span<CopyField> fields) {
    if (!header_seen_) {
      static constexpr std::string_view signature("PGCOPY\n\377\r\n\0", 11);
      if (!message.starts_with(signature) || message.size() < signature.size() + 8) return -1;
      message.remove_prefix(signature.size() + 4);  // the flags: none defined that matter here
      const std::uint32_t extension = read32(message.data());
      message.remove_prefix(4);
      if (message.size() < extension) return -1;
      message.remove_prefix(extension);
      header_seen_ = true;
    }
    if (message.size() < 2) return -1;
    const auto count = static_cast<std::int16_t>(read16(message.data()));
    message.remove_prefix(2);
    if (count == -1) return 0;
    if (count < 0 || static_cast<std::size_t>(count) != fields.size()) return -1;
    for (CopyField& field : fields) {
      if (message.size() < 4) return -1;
      const auto length = static_cast<std::int32_t>(read32(message.data()));
      message.remove_prefix(4);
      if (length < 0) {
        field = std::nullopt;
        continue;
      }
      if (message.size() < static_cast<std::size_t>(length)) return -1;
      field = message.substr(0, static_cast<std::size_t>(length));
      message.remove_prefix(static_cast<std::size_t>(length));
    }
    return message.empty() ? 1 : -1;
  }

  /// A big-endian int8 (or timestamptz) field.
  static std::optional<std::int64_t> int64_of(const CopyField& field) {
    if (!field || field->size() != 8) return std::nullopt;
    return static_cast<std::int64_t>((std::uint64_t{read32(field->data())} << 32) |
                                     read32(field->data() + 4));
  }

 private:
  static std::uint32_t read32(const char* bytes) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
           std::uint32_t{b[3]};
  }
  static std::uint16_t read16(const char* bytes) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes);
    return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
  }

  bool header_seen_ = false;
};

/// Reads what is left of a COPY TO STDOUT on `conn`, and its results, without looking at the
/// rows: a read sent ahead that nobody asked for. Returns whether `conn` can be used again.
bool drain_copy_out(PGconn* conn) {
  bool usable = true;
  while (const RawResult result{PQgetResult(conn)}) {
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_COPY_OUT) {
      for (;;) {
        char* data = nullptr;
        const int size = PQgetCopyData(conn, &data, 0);
        if (data != nullptr) PQfreemem(data);
        if (size < 0) break;
      }
    } else if (status != PGRES_COMMAND_OK) {
      usable = false;
    }
  }
  return usable && PQstatus(conn) == CONNECTION_OK;
}

/// What a reader paging forward has coming: events already read and decoded that it has not
/// asked for yet, and a connection on which the rows after them are being read (or nullptr).
struct PagesAhead {
  std::deque<StoredEvent> events;
  RawConnection conn;
  /// The limit of the read in flight on `conn`: fewer rows means no more after them yet.
  std::size_t conn_rows = 0;
};

/// Forward reads sent before anyone asked for them. When a reader pages forward (asks for the
/// page after a full one), the store sends the read of the rows after each full page at once,
/// so the server produces them while the reader works, and keeps what it read beyond the page
/// for the reader's next one. Entries are keyed by the COPY statement of the page the reader
/// will ask for next, which spells the position, the limit and every part of the filter. Holds
/// at most `capacity` entries (the oldest goes first); a thread of its own drops those older
/// than `max_age`, so that no server keeps a read open for a reader that went away. A dropped
/// read is read to its end and its connection pooled. Thread-safe: an entry belongs to the
/// first read that takes it.
class ReadAhead {
 public:
  static constexpr std::size_t capacity = 4;
  static constexpr std::chrono::seconds max_age{5};

  explicit ReadAhead(RawConnectionPool& pool) : pool_(pool) {}
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;
  ~ReadAhead() { close(); }

  /// What is ahead for `copy`, taken out (empty when nothing is), and whether `copy` was
  /// expected: the page after a full one.
  PagesAhead take(const std::string& copy, bool& expected) {
    std::lock_guard lock(mutex_);
    expected = false;
    for (auto entry = entries_.begin(); entry != entries_.end(); ++entry) {
      if (entry->copy != copy) continue;
      expected = true;
      PagesAhead ahead = std::move(entry->ahead);
      entries_.erase(entry);
      return ahead;
    }
    return {};
  }

  /// Records that a reader may ask for `copy` next, with `ahead` for it (possibly nothing: then
  /// asking for it only counts as paging). What this displaces is drained.
  void put(std::string copy, PagesAhead ahead) {
    std::vector<RawConnection> displaced;
    {
      std::lock_guard lock(mutex_);
      for (auto entry = entries_.begin(); entry != entries_.end(); ++entry) {
        if (entry->copy != copy) continue;
        if (entry->ahead.conn) displaced.push_back(std::move(entry->ahead.conn));
        entries_.erase(entry);
        break;
      }
      if (entries_.size() >= capacity) {
        if (entries_.front().ahead.conn) {
          displaced.push_back(std::move(entries_.front().ahead.conn));
        }
        entries_.erase(entries_.begin());
      }
      entries_.push_back(Entry{std::move(copy), std::move(ahead), Clock::now()});
      if (!stopping_ && !reaper_.joinable()) reaper_ = std::thread([this] { reap(); });
    }
    changed_.notify_one();
    drain(std::move(displaced));
  }

  /// Reads what is left of reads nobody takes to their end, and pools their connections.
  void drain(std::vector<RawConnection> connections) {
    for (RawConnection& conn : connections) {
      if (drain_copy_out(conn.get())) pool_.give_back(std::move(conn));
    }
  }

  /// Stops the thread and drains every entry; nothing is kept afterwards.
  void close() {
    std::vector<RawConnection> all;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (reaper_.joinable()) reaper_.join();
    {
      std::lock_guard lock(mutex_);
      for (Entry& entry : entries_) {
        if (entry.ahead.conn) all.push_back(std::move(entry.ahead.conn));
      }
      entries_.clear();
    }
    drain(std::move(all));
  }

 private:
  struct Entry {
    std::string copy;
    PagesAhead ahead;
    Clock::time_point made;
  };

  // The thread: drops each entry when it turns `max_age`.
  void reap() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (entries_.empty()) {
        changed_.wait(lock);
        continue;
      }
      const auto due = entries_.front().made + max_age;
      if (Clock::now() < due) {
        changed_.wait_until(lock, due);
        continue;
      }
      std::vector<RawConnection> old;
      while (!entries_.empty() && entries_.front().made + max_age <= Clock::now()) {
        if (entries_.front().ahead.conn) old.push_back(std::move(entries_.front().ahead.conn));
        entries_.erase(entries_.begin());
      }
      lock.unlock();
      drain(std::move(old));
      lock.lock();
    }
  }

  RawConnectionPool& pool_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Entry> entries_;  // oldest first
  bool stopping_ = false;
  std::thread reaper_;
};

/// Rows for `COPY … FROM STDIN (FORMAT binary)`, built in memory: the file header, then per row
/// its field count and each field as a length and the type's binary form.
class BinaryCopyWriter : public BinaryValues {
 public:
  BinaryCopyWriter() {
    data_.append("PGCOPY\n\377\r\n\0", 11);
    put32(0);  // flags
    put32(0);  // no header extension
  }
  void row(std::int16_t fields) { put16(static_cast<std::uint16_t>(fields)); }
  /// The data with the trailer.
  std::string finish() {
    put16(0xFFFF);
    return std::move(data_);
  }
};

/// The libpq connection under a libpqxx transaction (libpqxx 6 hands it only to large objects).
struct TransactionConnection : pqxx::largeobject {
  static PGconn* of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

/// Throws what libpqxx would for `failure` of the statement `sql`.
[[noreturn]] void throw_failure(const RawFailure& failure, const std::string& sql) {
  if (failure.connection_lost) throw pqxx::broken_connection(failure.message);
  throw pqxx::sql_error(failure.message, sql,
                        failure.sqlstate.empty() ? nullptr : failure.sqlstate.c_str());
}

/// Reads the results left on `conn` (after an error), so that the connection can go on.
void drain_results(PGconn* conn) {
  while (const RawResult rest{PQgetResult(conn)}) {
  }
}

/// Runs `COPY … FROM STDIN` (`sql`) inside `tx` with `data` as its input.
void copy_in(pqxx::dbtransaction& tx, const std::string& sql, const std::string& data) {
  PGconn* conn = TransactionConnection::of(tx);
  {
    const RawResult started(PQexec(conn, sql.c_str()));
    if (!started || PQresultStatus(started.get()) != PGRES_COPY_IN) {
      const RawFailure failure = raw_failure(conn, started.get());
      drain_results(conn);
      throw_failure(failure, sql);
    }
  }
  // In pieces, each well below what an int counts.
  constexpr std::size_t piece = std::size_t{1} << 20;
  for (std::size_t at = 0; at < data.size(); at += piece) {
    const std::size_t size = std::min(piece, data.size() - at);
    if (PQputCopyData(conn, data.data() + at, static_cast<int>(size)) != 1) {
      throw pqxx::broken_connection(PQerrorMessage(conn));
    }
  }
  if (PQputCopyEnd(conn, nullptr) != 1) throw pqxx::broken_connection(PQerrorMessage(conn));
  const RawResult finished(PQgetResult(conn));
  std::optional<RawFailure> failure;
  if (!finished || PQresultStatus(finished.get()) != PGRES_COMMAND_OK) {
    failure = raw_failure(conn, finished.get());
  }
  drain_results(conn);
  if (failure) throw_failure(*failure, sql);
}

/// Calls back for every notification on its channel.
class WakeReceiver final : public pqxx::notification_receiver {
 public:
  WakeReceiver(pqxx::connection_base& conn, const std::string& channel,
               std::function<void()> on_notify)
      : pqxx::notification_receiver(conn, channel), on_notify_(std::move(on_notify)) {}
  void operator()(const std::string&, int) override { on_notify_(); }

 private:
  std::function<void()> on_notify_;
};

/// Swallows libpq notices on the LISTEN connection (a lost connection's UNLISTEN complains).
class QuietErrors final : public pqxx::errorhandler {
 public:
  explicit QuietErrors(pqxx::connection_base& conn) : pqxx::errorhandler(conn) {}
  bool operator()(const char[]) noexcept override { return false; }
};

// --- the store ---

class PostgresStore final : public EventStore {
 public:
  PostgresStore(const StoreOptions& options, std::string conninfo, std::string server)
      : options_(options),
        server_(std::move(server)),
        pool_(conninfo),
        raw_pool_(conninfo),
        appender_(std::move(conninfo), server_),
        group_commit_(
            [this](std::span<const GroupCommitRequest> rows) { return commit_group(rows); },
            {.max_group_events = options.max_group,
             .max_group_bytes = options.max_group_bytes,
             .max_queued_events = options.max_queued_events,
             .where = "PostgreSQL at " + server_}) {
    if (::pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) stop_pipe_[0] = stop_pipe_[1] = -1;
  }

  ~PostgresStore() override {
    // Queued appends still commit (and wake waiters): before any member goes.
    group_commit_.close();
    {
      std::lock_guard lock(wake_mutex_);
      stopping_ = true;
    }
    wake_cv_.notify_all();
    if (stop_pipe_[1] >= 0) {
      const char byte = 1;
      [[maybe_unused]] auto written = ::write(stop_pipe_[1], &byte, 1);
    }
    if (listener_.joinable()) listener_.join();
    for (int fd : stop_pipe_) {
      if (fd >= 0) ::close(fd);
    }
    // Reads sent ahead that nobody took: read to their end, so the server sees no broken pipe.
    read_ahead_.close();
  }

  std::expected<void, Error> open() {
    auto migrated = with_connection<void>(
        "open", [&](pqxx::connection& conn) { return migrate(conn, server_); });
    if (!migrated) return std::unexpected(migrated.error());
    if (stop_pipe_[0] < 0) {
      return std::unexpected(
          Error{ErrorCode::internal, "cannot create the listener's wake-up pipe", {}});
    }
    listener_ = std::thread([this] { listen_loop(); });
    return {};
  }

  // --- appends ---

  std::expected<AppendResult, Error> append(EventRef event) override {
    auto body = encode_for_postgres(event, options_.catalog, options_.max_event_bytes, server_);
    if (!body) return std::unexpected(body.error());
    return group_commit_.submit(GroupCommitRequest{.event = event, .body = *body});
  }

  std::expected<std::vector<AppendResult>, Error> append_batch(
      std::span<const EventRef> events) override {
    auto bodies = encode_batch(events);
    if (!bodies) return std::unexpected(std::move(bodies.error()));
    if (events.empty()) return std::vector<AppendResult>{};
    std::vector<GroupCommitRequest> rows;
    rows.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) rows.push_back({events[i], (*bodies)[i]});
    return group_commit_.submit_batch(rows);
  }

  void append_async(EventPtr event, AppendCallback done) override {
    auto body = encode_for_postgres(event, options_.catalog, options_.max_event_bytes, server_);
    if (!body) return group_commit_.fail_async(std::move(done), std::move(body.error()));
    group_commit_.submit_async(std::move(event), std::move(*body), std::move(done));
  }

  void append_batch_async(std::vector<EventPtr> events, BatchCallback done) override {
    std::vector<EventRef> refs(events.begin(), events.end());
    auto bodies = encode_batch(refs);
    if (!bodies) return group_commit_.fail_async(std::move(done), std::move(bodies.error()));
    group_commit_.submit_batch_async(std::move(events), std::move(*bodies), std::move(done));
  }

  /// Checks every event of a batch before anything is queued, so a refused one writes nothing.
  std::expected<std::vector<std::string>, Error> encode_batch(std::span<const EventRef> events) {
    std::vector<std::string> bodies;
    bodies.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      auto body =
          encode_for_postgres(events[i], options_.catalog, options_.max_event_bytes, server_);
      if (!body) {
        Error error = body.error();
        error.message = "batch event " + std::to_string(i) + ": " + error.message +
                        "; nothing of the batch was stored";
        return std::unexpected(std::move(error));
      }
      bodies.push_back(std::move(*body));
    }
    return bodies;
  }

  // --- reads ---

  std::expected<std::vector<StoredEvent>, Error> read_forward(std::int64_t after, std::size_t limit,
                                                              const EventFilter& filter) override {
    if (limit == 0) return std::vector<StoredEvent>{};
    const std::string copy = forward_copy(after, limit, filter);
    if (!options_.postgres_read_ahead) return read_events("read forward", copy, limit);
    bool paging = false;
    PagesAhead ahead = read_ahead_.take(copy, paging);
    const NextPage next{.filter = &filter, .limit = limit, .pages = paging ? 1u : 0u};
    if (ahead.events.size() < limit && ahead.conn) receive_ahead(ahead, next);
    if (ahead.events.size() >= limit) {
      // Events read ahead are what a read now returns: positions are taken in commit order, so
      // no event can appear among or before those read. Only a whole page is answered from
      // them: a shorter one may miss events appended since.
      std::vector<StoredEvent> page;
      page.reserve(limit);
      for (std::size_t i = 0; i < limit; ++i) {
        page.push_back(std::move(ahead.events.front()));
        ahead.events.pop_front();
      }
      read_ahead_.put(forward_copy(page.back().position, limit, filter), std::move(ahead));
      return page;
    }
    return read_events("read forward", copy, limit, &next);
  }

  std::expected<std::vector<StoredEvent>, Error> read_backward(std::optional<std::int64_t> before,
                                                               std::size_t limit,
                                                               const EventFilter& filter) override {
    if (limit == 0) return std::vector<StoredEvent>{};
    SqlParams params(/*inline_values=*/true);
    std::string sql = select_events_sql() + " WHERE true";
    if (before) sql += " AND position < " + params.add(*before);
    sql += filter_sql(filter, params) + " ORDER BY position DESC LIMIT " +
           params.add(clamp_limit(limit));
    return read_events("read backward", copy_of(sql), limit);
  }

  std::expected<std::optional<StoredEvent>, Error> get(const EventId& id) override {
    SqlParams params(/*inline_values=*/true);
    std::string sql =
        select_events_sql() + " WHERE event_id = " + params.add(id.to_string()) + "::uuid";
    auto events = read_events("get event " + id.to_string(), copy_of(sql), 1);
    if (!events) return std::unexpected(events.error());
    if (events->empty()) return std::optional<StoredEvent>{};
    return std::optional<StoredEvent>{std::move(events->front())};
  }

  std::expected<std::int64_t, Error> count(const EventFilter& filter) override {
    SqlParams params;
    std::string sql = "SELECT count(*) FROM herald_events WHERE true" + filter_sql(filter, params);
    return with_connection<std::int64_t>(
        "count events", [&](pqxx::connection& conn) -> std::expected<std::int64_t, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          return params.exec(tx, sql)[0][0].as<std::int64_t>();
        });
  }

  std::expected<std::int64_t, Error> head() override {
    return with_connection<std::int64_t>(
        "read the head", [&](pqxx::connection& conn) -> std::expected<std::int64_t, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          return tx.exec1("SELECT coalesce(max(position), 0) FROM herald_events")[0]
              .as<std::int64_t>();
        });
  }

  std::expected<std::int64_t, Error> wait_for(std::int64_t after,
                                              std::chrono::milliseconds timeout) override {
    const auto deadline = Clock::now() + timeout;
    std::uint64_t interrupts_seen;
    {
      std::lock_guard lock(wake_mutex_);
      interrupts_seen = interrupts_;
    }
    for (;;) {
      std::uint64_t seen;
      {
        std::lock_guard lock(wake_mutex_);
        seen = generation_;
      }
      // Read the head after noting the generation: an append that commits in between bumps the
      // generation, so the wait below returns at once instead of missing it.
      auto current = head();
      if (!current || *current > after) return current;
      std::unique_lock lock(wake_mutex_);
      const auto interrupted = [&] { return stopping_ || interrupts_ != interrupts_seen; };
      const auto changed = [&] { return generation_ != seen || interrupted(); };
      if (listening_) {
        wake_cv_.wait_until(lock, deadline, changed);
      } else {
        wake_cv_.wait_until(lock, std::min(deadline, Clock::now() + wait_poll_without_listener),
                            changed);
      }
      if (interrupted() || Clock::now() >= deadline) {
        lock.unlock();
        return head();
      }
    }
  }

  void wake_waiters() noexcept override {
    {
      std::lock_guard lock(wake_mutex_);
      ++interrupts_;
    }
    wake_cv_.notify_all();
  }

  // --- checkpoints and parked events ---

  std::expected<ConsumerCheckpoint, Error> load_checkpoint(const std::string& name) override {
    return with_connection<ConsumerCheckpoint>(
        "load checkpoint '" + name + "'",
        [&](pqxx::connection& conn) -> std::expected<ConsumerCheckpoint, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          const pqxx::result rows =
              tx.exec_params("SELECT position, " + micros_of("updated_at") +
                                 " FROM herald_consumer_checkpoints WHERE name = $1",
                             name);
          ConsumerCheckpoint checkpoint{.name = name};
          if (!rows.empty()) {
            checkpoint.position = rows[0][0].as<std::int64_t>();
            checkpoint.updated_at = timestamp_from_micros(rows[0][1].as<std::int64_t>());
          }
          return checkpoint;
        });
  }

  std::expected<void, Error> save_checkpoint(const std::string& name,
                                             std::int64_t position) override {
    if (auto valid = check_consumer(name, position); !valid) return valid;
    return with_connection<void>("save checkpoint '" + name + "'",
                                 [&](pqxx::connection& conn) -> std::expected<void, Error> {
                                   pqxx::work tx(conn);
                                   upsert_checkpoint(tx, name, position);
                                   tx.commit();
                                   return {};
                                 });
  }

  std::expected<std::vector<ConsumerCheckpoint>, Error> list_checkpoints() override {
    return with_connection<std::vector<ConsumerCheckpoint>>(
        "list checkpoints",
        [&](pqxx::connection& conn) -> std::expected<std::vector<ConsumerCheckpoint>, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          std::vector<ConsumerCheckpoint> checkpoints;
          for (const auto& row : tx.exec("SELECT name, position, " + micros_of("updated_at") +
                                         " FROM herald_consumer_checkpoints ORDER BY name")) {
            checkpoints.push_back(
                ConsumerCheckpoint{.name = row[0].c_str(),
                                   .position = row[1].as<std::int64_t>(),
                                   .updated_at = timestamp_from_micros(row[2].as<std::int64_t>())});
          }
          return checkpoints;
        });
  }

  std::expected<void, Error> park(const ParkedEvent& parked) override {
    if (auto valid = check_consumer(parked.consumer, parked.position); !valid) return valid;
    return with_connection<void>(
        "park position " + std::to_string(parked.position) + " of consumer '" + parked.consumer +
            "'",
        [&](pqxx::connection& conn) -> std::expected<void, Error> {
          pqxx::work tx(conn);
          tx.exec_params(
              "INSERT INTO herald_parked_events (consumer, position, event_id, event_type, error, "
              "attempts, parked_at) VALUES ($1, $2, $3::uuid, $4, $5, $6, $7::timestamptz) "
              "ON CONFLICT (consumer, position) DO UPDATE SET event_id = excluded.event_id, "
              "event_type = excluded.event_type, error = excluded.error, "
              "attempts = excluded.attempts, parked_at = excluded.parked_at",
              parked.consumer, parked.position, parked.event_id.to_string(), parked.event_type,
              parked.error, parked.attempts,
              format_timestamp(parked.parked_at == Timestamp{} ? herald::now() : parked.parked_at));
          tx.commit();
          return {};
        });
  }

  std::expected<std::vector<ParkedEvent>, Error> list_parked(
      const std::optional<std::string>& consumer) override {
    return with_connection<std::vector<ParkedEvent>>(
        "list parked events",
        [&](pqxx::connection& conn) -> std::expected<std::vector<ParkedEvent>, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          SqlParams params;
          std::string sql =
              "SELECT consumer, position, event_id::text, event_type, error, "
              "attempts, " +
              micros_of("parked_at") + " FROM herald_parked_events";
          if (consumer) sql += " WHERE consumer = " + params.add(*consumer);
          sql += " ORDER BY consumer, position";
          std::vector<ParkedEvent> parked;
          for (const auto& row : params.exec(tx, sql)) {
            parked.push_back(
                ParkedEvent{.consumer = row[0].c_str(),
                            .position = row[1].as<std::int64_t>(),
                            .event_id = EventId::parse(row[2].c_str()).value_or(EventId{}),
                            .event_type = row[3].c_str(),
                            .error = row[4].c_str(),
                            .attempts = row[5].as<int>(),
                            .parked_at = timestamp_from_micros(row[6].as<std::int64_t>())});
          }
          return parked;
        });
  }

  std::expected<void, Error> unpark(const std::string& consumer, std::int64_t position) override {
    const std::string what =
        "unpark position " + std::to_string(position) + " of consumer '" + consumer + "'";
    return with_connection<void>(what, [&](pqxx::connection& conn) -> std::expected<void, Error> {
      pqxx::work tx(conn);
      const pqxx::result removed =
          tx.exec_params("DELETE FROM herald_parked_events WHERE consumer = $1 AND position = $2",
                         consumer, position);
      tx.commit();
      if (removed.affected_rows() == 0) {
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
    return with_connection<bool>(
        "append the audit record for event " + record.event_id.to_string(),
        [&](pqxx::connection& conn) -> std::expected<bool, Error> {
          pqxx::work tx(conn);
          // One chain writer at a time, also across processes: the record's prev_hash was
          // computed from the head, which must not move before it is written.
          tx.exec_params("SELECT pg_advisory_xact_lock($1)", audit_lock_key);
          const pqxx::result existing =
              tx.exec_params("SELECT 1 FROM herald_audit_records WHERE event_id = $1::uuid",
                             record.event_id.to_string());
          if (!existing.empty()) {
            upsert_checkpoint(tx, consumer, record.position);
            tx.commit();
            return false;
          }
          const pqxx::result last = tx.exec(
              "SELECT position, hash FROM herald_audit_records ORDER BY position DESC LIMIT 1");
          const std::int64_t head_position = last.empty() ? 0 : last[0][0].as<std::int64_t>();
          const std::string head_hash = last.empty() ? genesis_hash : last[0][1].c_str();
          if (record.position <= head_position) {
            return std::unexpected(
                Error{ErrorCode::conflict,
                      "audit record for event " + record.event_id.to_string() + " at position " +
                          std::to_string(record.position) + " does not come after the audit head " +
                          std::to_string(head_position) + "; nothing was written",
                      {}});
          }
          if (record.prev_hash != head_hash) {
            return std::unexpected(
                Error{ErrorCode::conflict,
                      "audit record at position " + std::to_string(record.position) +
                          ": prev_hash does not match the hash of the audit head at position " +
                          std::to_string(head_position) +
                          " (another writer appended meanwhile?); nothing was written",
                      {}});
          }
          SqlParams params;
          const std::string values = audit_values(record, params);
          params.exec(
              tx,
              "INSERT INTO herald_audit_records (position, event_id, occurred_at, recorded_at, "
              "actor, organization_id, action, entity_type, entity_id, details, "
              "prev_hash, hash) VALUES (" +
                  values + ")");
          upsert_checkpoint(tx, consumer, record.position);
          tx.commit();
          return true;
        });
  }

  std::expected<std::size_t, Error> append_audit_batch(std::span<const AuditRecord> records,
                                                       const std::string& consumer) override {
    if (auto valid = check_audit_batch(records, consumer); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    if (records.empty()) return std::size_t{0};
    return with_connection<std::size_t>(
        "append the audit records of positions " + std::to_string(records.front().position) +
            " to " + std::to_string(records.back().position),
        [&](pqxx::connection& conn) -> std::expected<std::size_t, Error> {
          pqxx::work tx(conn);
          // The same writer lock as append_audit: the records were chained to the head, which
          // must not move before they are written.
          tx.exec_params("SELECT pg_advisory_xact_lock($1)", audit_lock_key);
          // The ids already recorded, looked up with one array parameter ({id,id,...}).
          std::vector<bool> stored(records.size(), false);
          std::unordered_map<std::string, std::size_t> index_of;
          std::string ids = "{";
          for (std::size_t i = 0; i < records.size(); ++i) {
            std::string id = records[i].event_id.to_string();
            if (i > 0) ids.push_back(',');
            ids += id;
            index_of.emplace(std::move(id), i);
          }
          ids.push_back('}');
          for (const auto& row :
               tx.exec_params("SELECT event_id::text FROM herald_audit_records WHERE event_id = "
                              "ANY($1::uuid[])",
                              ids)) {
            if (auto it = index_of.find(row[0].c_str()); it != index_of.end()) {
              stored[it->second] = true;
            }
          }
          const pqxx::result last = tx.exec(
              "SELECT position, hash FROM herald_audit_records ORDER BY position DESC LIMIT 1");
          const AuditChainHead head =
              last.empty() ? AuditChainHead{}
                           : AuditChainHead{.position = last[0][0].as<std::int64_t>(),
                                            .hash = last[0][1].c_str()};
          auto to_write = plan_audit_batch(records, stored, head);
          if (!to_write) return std::unexpected(std::move(to_write.error()));
          // COPY, not INSERT … ON CONFLICT DO NOTHING: under the lock no herald writer can have
          // added these ids since the lookup, and a row silently left out would cut the chain (a
          // duplicate fails the COPY, and the transaction, as a plain INSERT would). Binary COPY
          // costs the server no statement to parse and no text to convert.
          if (!to_write->empty()) {
            BinaryCopyWriter copy;
            for (const std::size_t index : *to_write) audit_copy_row(copy, records[index]);
            copy_in(tx,
                    "COPY herald_audit_records (position, event_id, occurred_at, recorded_at, "
                    "actor, organization_id, action, entity_type, entity_id, details, prev_hash, "
                    "hash) FROM STDIN (FORMAT binary)",
                    copy.finish());
          }
          upsert_checkpoint(tx, consumer, records.back().position);
          tx.commit();
          return to_write->size();
        });
  }

  std::expected<AuditChainHead, Error> audit_head() override {
    return with_connection<AuditChainHead>(
        "read the audit head", [&](pqxx::connection& conn) -> std::expected<AuditChainHead, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          const pqxx::result last = tx.exec(
              "SELECT position, hash FROM herald_audit_records ORDER BY position DESC LIMIT 1");
          if (last.empty()) return AuditChainHead{};
          return AuditChainHead{.position = last[0][0].as<std::int64_t>(),
                                .hash = last[0][1].c_str()};
        });
  }

  std::expected<AuditPage, Error> query_audit(const AuditQuery& query) override {
    if (query.limit < 1 || query.limit > 1000) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, "limit",
                           "expected 1 to 1000, got " + std::to_string(query.limit)));
    }
    SqlParams params;
    SqlParams count_params;
    const std::string where = audit_where(query, params);
    audit_where(query, count_params);
    const std::string count_sql = "SELECT count(*) FROM herald_audit_records" + where;
    std::string items_sql = select_audit_sql() + where;
    if (query.before_position) {
      items_sql += " AND position < " + params.add(*query.before_position);
    }
    items_sql += " ORDER BY position DESC LIMIT " + params.add(clamp_limit(query.limit));
    return with_connection<AuditPage>(
        "query the audit log", [&](pqxx::connection& conn) -> std::expected<AuditPage, Error> {
          // One snapshot for the page and its total.
          pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
          AuditPage page;
          auto items = audit_records(params.exec(tx, items_sql));
          if (!items) return std::unexpected(items.error());
          page.items = std::move(*items);
          // The total ignores the cursor and the limit, so it has its own parameters.
          page.total = count_params.exec(tx, count_sql)[0][0].as<std::int64_t>();
          return page;
        });
  }

  std::expected<std::vector<AuditRecord>, Error> read_audit_chain(std::int64_t after,
                                                                  std::size_t limit) override {
    if (limit == 0) return std::vector<AuditRecord>{};
    return with_connection<std::vector<AuditRecord>>(
        "read the audit chain",
        [&](pqxx::connection& conn) -> std::expected<std::vector<AuditRecord>, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          return audit_records(
              tx.exec_params(select_audit_sql() + " WHERE position > $1 ORDER BY position LIMIT $2",
                             after, clamp_limit(limit)));
        });
  }

  // --- API tokens ---

  std::expected<ApiToken, Error> create_token(const std::string& name,
                                              const std::string& token_sha256, Scopes scopes,
                                              std::optional<std::int64_t> organization_id,
                                              std::optional<std::int64_t> user_id) override {
    if (auto valid = store_detail::check_token_arguments(name, token_sha256, scopes); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    return with_connection<ApiToken>(
        "create API token '" + name + "'",
        [&](pqxx::connection& conn) -> std::expected<ApiToken, Error> {
          pqxx::work tx(conn);
          // ON CONFLICT DO NOTHING rather than catching the violation, so that a race between
          // two creators ends in the same clear conflict as a plain duplicate.
          SqlParams params;
          const std::string sql =
              "INSERT INTO herald_api_tokens (name, token_sha256, scopes, organization_id, "
              "user_id, created_at) VALUES (" +
              params.add(name) + ", " + params.add(token_sha256) + ", " +
              params.add(format_scopes(scopes)) + ", " + params.add(text_or_null(organization_id)) +
              "::bigint, " + params.add(text_or_null(user_id)) +
              "::bigint, now()) ON CONFLICT DO NOTHING RETURNING id, " + micros_of("created_at");
          const pqxx::result inserted = params.exec(tx, sql);
          if (inserted.empty()) {
            auto taken = token_where(tx, "name = $1", name);
            if (!taken) return std::unexpected(std::move(taken.error()));
            if (*taken)
              return std::unexpected(store_detail::token_name_taken(taken->value().token));
            return std::unexpected(store_detail::token_hash_taken());
          }
          tx.commit();
          return ApiToken{.id = inserted[0][0].as<std::int64_t>(),
                          .name = name,
                          .scopes = scopes,
                          .organization_id = organization_id,
                          .user_id = user_id,
                          .created_at = timestamp_from_micros(inserted[0][1].as<std::int64_t>()),
                          .revoked_at = std::nullopt};
        });
  }

  std::expected<std::vector<ApiToken>, Error> list_tokens() override {
    return with_connection<std::vector<ApiToken>>(
        "list API tokens",
        [&](pqxx::connection& conn) -> std::expected<std::vector<ApiToken>, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          std::vector<ApiToken> tokens;
          for (const auto& row : tx.exec(select_token_sql() + " ORDER BY name")) {
            auto token = token_row(row);
            if (!token) return std::unexpected(std::move(token.error()));
            tokens.push_back(std::move(token->token));
          }
          return tokens;
        });
  }

  std::expected<ApiToken, Error> revoke_token(const std::string& name) override {
    if (auto valid = check_api_token_name(name); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    return with_connection<ApiToken>(
        "revoke API token '" + name + "'",
        [&](pqxx::connection& conn) -> std::expected<ApiToken, Error> {
          pqxx::work tx(conn);
          tx.exec_params(
              "UPDATE herald_api_tokens SET revoked_at = now() "
              "WHERE name = $1 AND revoked_at IS NULL",
              name);
          auto found = token_where(tx, "name = $1", name);
          if (!found) return std::unexpected(std::move(found.error()));
          if (!*found) return std::unexpected(store_detail::token_not_found(name));
          tx.commit();
          return std::move(found->value().token);
        });
  }

  std::expected<std::optional<StoredApiToken>, Error> find_token(
      const std::string& token_sha256) override {
    if (auto valid = check_api_token_sha256(token_sha256); !valid) {
      return std::unexpected(std::move(valid.error()));
    }
    return with_connection<std::optional<StoredApiToken>>(
        "look up an API token",
        [&](pqxx::connection& conn) -> std::expected<std::optional<StoredApiToken>, Error> {
          pqxx::nontransaction tx(conn);  // one statement: atomic by itself
          return token_where(tx, "token_sha256 = $1", token_sha256);
        });
  }

 private:
  static std::string select_token_sql() {
    return "SELECT id, name, scopes, organization_id, " + micros_of("created_at") + ", " +
           micros_of("revoked_at") + ", token_sha256, user_id FROM herald_api_tokens";
  }

  /// The token in a row of `select_token_sql()`.
  std::expected<StoredApiToken, Error> token_row(const pqxx::row& row) const {
    StoredApiToken stored;
    ApiToken& token = stored.token;
    token.id = row[0].as<std::int64_t>();
    token.name = row[1].c_str();
    auto scopes = parse_scopes(row[2].c_str());
    if (!scopes) {
      return std::unexpected(Error{ErrorCode::internal,
                                   server_ + ": API token '" + token.name +
                                       "' has unreadable stored scopes: " + scopes.error().message,
                                   "scopes"});
    }
    token.scopes = *scopes;
    token.organization_id = optional_int(row[3]);
    token.created_at = timestamp_from_micros(row[4].as<std::int64_t>());
    if (auto revoked = optional_int(row[5])) token.revoked_at = timestamp_from_micros(*revoked);
    stored.token_sha256 = row[6].c_str();
    token.user_id = optional_int(row[7]);
    return stored;
  }

  /// The one token matching `condition` (on $1 = `value`) in `tx`, or nullopt.
  std::expected<std::optional<StoredApiToken>, Error> token_where(pqxx::transaction_base& tx,
                                                                  std::string_view condition,
                                                                  const std::string& value) const {
    const pqxx::result rows =
        tx.exec_params(select_token_sql() + " WHERE " + std::string(condition), value);
    if (rows.empty()) return std::optional<StoredApiToken>{};
    auto token = token_row(rows[0]);
    if (!token) return std::unexpected(std::move(token.error()));
    return std::optional<StoredApiToken>(std::move(*token));
  }

  static std::optional<std::string> text_or_null(const std::optional<std::int64_t>& value) {
    if (!value) return std::nullopt;
    return std::to_string(*value);
  }

  // An audit record's row for the binary COPY, in herald_audit_records' column order.
  static void audit_copy_row(BinaryCopyWriter& copy, const AuditRecord& record) {
    copy.row(12);
    copy.int64(record.position);
    copy.uuid(record.event_id);
    copy.timestamp(record.occurred_at);
    copy.timestamp(record.recorded_at);
    copy.int64(record.actor);
    copy.int64(record.organization_id);
    copy.text(record.action);
    copy.text(record.entity_type);
    copy.optional_text(record.entity_id);
    copy.text(boost::json::serialize(record.details));
    copy.text(record.prev_hash);
    copy.text(record.hash);
  }

  // The twelve values of an audit record's row, in herald_audit_records' column order.
  static std::string audit_values(const AuditRecord& record, SqlParams& params) {
    return params.add(record.position) + ", " + params.add(record.event_id.to_string()) +
           "::uuid, " + params.add(format_timestamp(record.occurred_at)) + "::timestamptz, " +
           params.add(format_timestamp(record.recorded_at)) + "::timestamptz, " +
           params.add(text_or_null(record.actor)) + "::bigint, " +
           params.add(text_or_null(record.organization_id)) + "::bigint, " +
           params.add(record.action) + ", " + params.add(record.entity_type) + ", " +
           params.add(record.entity_id) + ", " +
           params.add(boost::json::serialize(record.details)) + "::json, " +
           params.add(record.prev_hash) + ", " + params.add(record.hash);
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

  static void upsert_checkpoint(pqxx::transaction_base& tx, const std::string& name,
                                std::int64_t position) {
    tx.exec_params(
        "INSERT INTO herald_consumer_checkpoints (name, position, updated_at) VALUES ($1, $2, "
        "now()) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
        "updated_at = excluded.updated_at",
        name, position);
  }

  // The columns `read_events` reads, in its order. recorded_at comes as the server's binary
  // timestamptz (microseconds from 2000), which costs the server nothing to send.
  static std::string select_events_sql() {
    return "SELECT position, recorded_at, event_type, body FROM herald_events";
  }

  static std::string select_audit_sql() {
    return "SELECT position, event_id::text, " + micros_of("occurred_at") + ", " +
           micros_of("recorded_at") +
           ", actor, organization_id, action, entity_type, entity_id, details, prev_hash, hash "
           "FROM herald_audit_records";
  }

  static std::string audit_where(const AuditQuery& query, SqlParams& params) {
    std::string where = " WHERE true";
    if (query.organization_id) {
      where += " AND organization_id = " + params.add(*query.organization_id);
    }
    if (query.actor) where += " AND actor = " + params.add(*query.actor);
    if (query.action) {
      if (query.action->ends_with('*')) {
        where += " AND starts_with(action, " +
                 params.add(query.action->substr(0, query.action->size() - 1)) + ")";
      } else {
        where += " AND action = " + params.add(*query.action);
      }
    }
    if (query.entity_type) where += " AND entity_type = " + params.add(*query.entity_type);
    if (query.entity_id) where += " AND entity_id = " + params.add(*query.entity_id);
    if (query.since) {
      where +=
          " AND occurred_at >= " + params.add(format_timestamp(*query.since)) + "::timestamptz";
    }
    if (query.until) {
      where += " AND occurred_at < " + params.add(format_timestamp(*query.until)) + "::timestamptz";
    }
    return where;
  }

  static std::string filter_sql(const EventFilter& filter, SqlParams& params) {
    std::string sql;
    if (!filter.types.empty()) {
      sql += " AND event_type IN (";
      for (std::size_t i = 0; i < filter.types.size(); ++i) {
        if (i > 0) sql += ", ";
        sql += params.add(filter.types[i]);
      }
      sql += ")";
    }
    if (filter.organization_id) {
      sql += " AND organization_id = " + params.add(*filter.organization_id);
    }
    if (filter.entity_type) sql += " AND entity_type = " + params.add(*filter.entity_type);
    if (filter.entity_id) sql += " AND entity_id = " + params.add(*filter.entity_id);
    if (filter.since) {
      sql += " AND occurred_at >= " + params.add(format_timestamp(*filter.since)) + "::timestamptz";
    }
    if (filter.until) {
      sql += " AND occurred_at < " + params.add(format_timestamp(*filter.until)) + "::timestamptz";
    }
    return sql;
  }

  // The binary COPY of `sql` (a select_events_sql() query with its values inline).
  static std::string copy_of(const std::string& sql) {
    return "COPY (" + sql + ") TO STDOUT (FORMAT binary)";
  }

  // The statement of read_forward(after, limit, filter): also the key of a read sent ahead.
  static std::string forward_copy(std::int64_t after, std::size_t limit,
                                  const EventFilter& filter) {
    SqlParams params(/*inline_values=*/true);
    return copy_of(select_events_sql() + " WHERE position > " + params.add(after) +
                   filter_sql(filter, params) + " ORDER BY position LIMIT " +
                   params.add(clamp_limit(limit)));
  }

  // What a forward read does after a full page: the reader's filter and page limit, and how many
  // pages after it to read ahead on its connection at once (0: none, the reader is not paging).
  // The first read ahead is one page, so that a reader that stops costs the server little; once
  // the reader took it, 8.
  struct NextPage {
    const EventFilter* filter = nullptr;
    std::size_t limit = 0;
    std::size_t pages = 0;
  };

  // How many rows to read ahead for `pages` pages of `limit`, after rows of about `row_bytes`
  // each: at most 8,192 rows (unless one page is more) and about 8 MiB, at least one page.
  static std::size_t rows_ahead(std::size_t limit, std::size_t pages, std::size_t row_bytes) {
    constexpr std::size_t most_rows = 8192;
    constexpr std::size_t most_bytes = std::size_t{8} << 20;
    std::size_t rows = limit <= most_rows / pages ? limit * pages : std::max(limit, most_rows);
    rows = std::min(rows, most_bytes / std::max<std::size_t>(row_bytes, 1));
    return std::max(rows, limit);
  }

  // The outcome of one COPY.
  struct CopyRead {
    std::expected<std::vector<StoredEvent>, Error> events = std::vector<StoredEvent>{};
    // The server or the connection failed; `events` is then meaningless.
    std::optional<RawFailure> failure;
    // The rows the server sent.
    std::size_t rows = 0;
    // For a full page read with a NextPage: the statement of the reader's next page.
    std::string next_key;
    // The rows after this read's are being read on the connection, at most `next_rows`.
    bool sent_next = false;
    std::size_t next_rows = 0;
  };

  // Runs the COPY `copy` on a pooled libpq connection and decodes each row as it arrives, while
  // the server still produces the next ones: the rows stream instead of arriving as one result,
  // and the server formats no text. When a pooled connection turns out dead, the read runs once
  // more on a new one, as in `with_connection`.
  std::expected<std::vector<StoredEvent>, Error> read_events(const std::string& what,
                                                             const std::string& copy,
                                                             std::size_t limit,
                                                             const NextPage* next = nullptr) {
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      std::optional<RawFailure> failure;
      RawConnection conn = raw_pool_.take(reused, failure);
      CopyRead read;
      if (!conn) {
        read.failure = std::move(failure);
      } else if (PQsendQuery(conn.get(), copy.c_str()) == 0) {
        read.failure = raw_failure(conn.get(), nullptr);
        read.failure->connection_lost = true;  // nothing could be sent: do not reuse it
      } else {
        read = read_rows(conn.get(), limit, next);
      }
      if (!read.failure) return settle(std::move(conn), read);  // or an event does not decode
      if (read.failure->connection_lost) {
        raw_pool_.clear();
        if (reused && attempt == 0) continue;
        return std::unexpected(Error{ErrorCode::unavailable,
                                     what + ": PostgreSQL at " + server_ +
                                         " is unavailable: " + one_line(read.failure->message) +
                                         " (herald reconnects on the next call)",
                                     {}});
      }
      raw_pool_.give_back(std::move(conn));
      return std::unexpected(Error{
          ErrorCode::io,
          what + " on PostgreSQL at " + server_ + " failed: " + one_line(read.failure->message) +
              (read.failure->sqlstate.empty() ? "" : " (SQLSTATE " + read.failure->sqlstate + ")"),
          {}});
    }
  }

  // Hands the connection of a successful `read` on: to the read-ahead entries when the rows
  // after it are in flight on it, otherwise back to the pool; and returns the events.
  std::expected<std::vector<StoredEvent>, Error> settle(RawConnection conn, CopyRead& read) {
    if (!read.next_key.empty()) {
      PagesAhead ahead;
      if (read.sent_next) {
        ahead.conn = std::move(conn);
        ahead.conn_rows = read.next_rows;
      }
      read_ahead_.put(std::move(read.next_key), std::move(ahead));
    }
    if (conn) raw_pool_.give_back(std::move(conn));
    return std::move(read.events);
  }

  // Reads the rows in flight on `ahead.conn` into `ahead.events`; when they were as many as
  // asked for, the rows after them go to the server on the same connection at once. On a
  // failure `ahead` is left empty: the reader's page is then read as a plain read would.
  void receive_ahead(PagesAhead& ahead, const NextPage& next) {
    RawConnection conn = std::move(ahead.conn);
    const NextPage more{.filter = next.filter, .limit = next.limit, .pages = 8};
    CopyRead read = read_rows(conn.get(), ahead.conn_rows, &more);
    ahead.conn_rows = 0;
    if (read.failure) {
      if (read.failure->connection_lost) {
        raw_pool_.clear();
      } else {
        raw_pool_.give_back(std::move(conn));
      }
      ahead.events.clear();
      return;
    }
    const bool whole = read.events && read.events->size() == read.rows;
    if (read.events) std::ranges::move(*read.events, std::back_inserter(ahead.events));
    if (read.sent_next && whole) {
      ahead.conn = std::move(conn);
      ahead.conn_rows = read.next_rows;
    } else if (read.sent_next) {
      // An event did not decode: the rows after it are missing, so what was sent after them
      // cannot follow. The plain read reports the event once the reader gets to it.
      std::vector<RawConnection> unused;
      unused.push_back(std::move(conn));
      read_ahead_.drain(std::move(unused));
    } else {
      raw_pool_.give_back(std::move(conn));
    }
  }

  // Reads the rows of the COPY sent on `conn`. Rows are taken off the connection first and
  // decoded while the server has sent nothing new, so that the end of a page is seen as soon as
  // it arrives: for a full page (`limit` rows) with `next`, the statement of the reader's next
  // page is noted and the read of `next->pages` pages after it sent at once, so the server
  // produces them while this one decodes. Without `failure` in the outcome, an error is an event
  // that does not decode. `conn` is left idle (or reading ahead) unless it is lost.
  CopyRead read_rows(PGconn* conn, std::size_t limit, const NextPage* next) {
    CopyRead read;
    {
      const RawResult started(PQgetResult(conn));
      if (!started || PQresultStatus(started.get()) != PGRES_COPY_OUT) {
        read.failure = raw_failure(conn, started.get());
        drain_results(conn);
        return read;
      }
    }
    struct Row {
      std::unique_ptr<char, decltype(&PQfreemem)> data;
      std::array<CopyField, 4> fields;
    };
    std::vector<Row> rows;
    rows.reserve(std::min<std::size_t>(limit, 1024));
    std::size_t decoded = 0;
    std::size_t bytes = 0;
    std::vector<StoredEvent> events;
    events.reserve(std::min<std::size_t>(limit, 1024));
    std::optional<Error> undecodable;
    bool malformed = false;
    BinaryCopyRows copy_rows;
    boost::json::parser parser({}, stored_parse_options());
    const auto decode_next = [&] {
      Row& row = rows[decoded++];
      if (!undecodable) {
        const std::int64_t position = *BinaryCopyRows::int64_of(row.fields[0]);
        auto event = decode_stored(parser, position, *row.fields[2], *row.fields[3]);
        if (event) {
          const std::int64_t recorded = *BinaryCopyRows::int64_of(row.fields[1]);
          events.push_back(
              StoredEvent{.position = position,
                          .recorded_at = timestamp_from_micros(recorded + postgres_epoch_micros),
                          .event = std::move(*event)});
        } else {
          undecodable = std::move(event.error());
        }
      }
      row.data.reset();
    };
    for (;;) {
      char* data = nullptr;
      const int size = PQgetCopyData(conn, &data, /*async=*/1);
      if (size > 0) {
        Row row{.data = {data, &PQfreemem}, .fields = {}};
        if (malformed) continue;  // drain the rest, so the connection stays usable
        const int parsed =
            copy_rows.parse(std::string_view(data, static_cast<std::size_t>(size)), row.fields);
        if (parsed == 0) continue;
        if (parsed < 0 || !BinaryCopyRows::int64_of(row.fields[0]) ||
            !BinaryCopyRows::int64_of(row.fields[1]) || !row.fields[2] || !row.fields[3]) {
          malformed = true;
          continue;
        }
        rows.push_back(std::move(row));
        bytes += static_cast<std::size_t>(size);
        continue;
      }
      if (size < 0) break;  // -1: the COPY is done; -2: an error, reported by PQgetResult
      // No whole row has arrived: decode some of those that have, or wait for more.
      if (decoded < rows.size() && !malformed) {
        for (int i = 0; i < 16 && decoded < rows.size(); ++i) decode_next();
      } else {
        pollfd ready{.fd = PQsocket(conn), .events = POLLIN, .revents = 0};
        if (ready.fd < 0 || (::poll(&ready, 1, -1) < 0 && errno != EINTR)) {
          read.failure = raw_failure(conn, nullptr);
          read.failure->connection_lost = true;
          return read;
        }
      }
      if (PQconsumeInput(conn) == 0) break;  // the connection failed: PQgetResult says how
    }
    {
      const RawResult finished(PQgetResult(conn));
      if (!finished || PQresultStatus(finished.get()) != PGRES_COMMAND_OK) {
        read.failure = raw_failure(conn, finished.get());
      }
    }
    drain_results(conn);
    if (read.failure) return read;
    if (malformed) {
      read.failure = RawFailure{.message = "the server sent malformed binary COPY data"};
      return read;
    }
    read.rows = rows.size();
    if (next != nullptr && rows.size() == limit) {
      const std::int64_t last = *BinaryCopyRows::int64_of(rows.back().fields[0]);
      read.next_key = forward_copy(last, next->limit, *next->filter);
      if (next->pages > 0) {
        read.next_rows = rows_ahead(next->limit, next->pages, bytes / rows.size());
        const std::string ahead = forward_copy(last, read.next_rows, *next->filter);
        read.sent_next = PQsendQuery(conn, ahead.c_str()) != 0;
      }
    }
    while (decoded < rows.size()) decode_next();
    // The events before an unreadable one are still a valid answer ("at most `limit`"); the
    // error comes back when the unreadable event is the first one left.
    if (undecodable && events.empty()) {
      read.events = std::unexpected(std::move(*undecodable));
    } else {
      read.events = std::move(events);
    }
    return read;
  }

  std::expected<EventPtr, Error> decode_stored(boost::json::parser& parser, std::int64_t position,
                                               std::string_view type_name, std::string_view body) {
    const EventType* type = options_.catalog->find(type_name);
    if (type != nullptr) {
      // Bodies herald wrote are read straight into the event; anything the direct reader
      // declines takes the DOM path below, which reports the errors.
      if (EventPtr event = type->try_decode_text(body)) return event;
    }
    const std::string at = "event at position " + std::to_string(position) + " on " + server_;
    if (type == nullptr) {
      return std::unexpected(Error::for_field(
          ErrorCode::invalid_argument, "event_type",
          "unknown event type \"" + std::string(type_name) + "\" (" + at +
              "); add the type to the catalog given in StoreOptions::catalog to read it"));
    }
    parser.reset();
    boost::system::error_code ec;
    parser.write(body.data(), body.size(), ec);
    if (ec) {
      return std::unexpected(
          Error{ErrorCode::internal, at + ": stored body is not JSON (" + ec.message() + ")", {}});
    }
    boost::json::value value = parser.release();
    if (!value.is_object()) {
      return std::unexpected(
          Error{ErrorCode::internal, at + ": stored body is not a JSON object", {}});
    }
    auto event = type->decode(value.get_object());
    if (!event) {
      Error error = std::move(event.error());
      error.message = at + " (" + std::string(type_name) + ") does not decode: " + error.message;
      return std::unexpected(std::move(error));
    }
    return event;
  }

  std::expected<std::vector<AuditRecord>, Error> audit_records(const pqxx::result& rows) const {
    std::vector<AuditRecord> records;
    records.reserve(rows.size());
    boost::json::parser parser({}, stored_parse_options());
    for (const auto& row : rows) {
      AuditRecord record;
      record.position = row[0].as<std::int64_t>();
      record.event_id = EventId::parse(row[1].c_str()).value_or(EventId{});
      record.occurred_at = timestamp_from_micros(row[2].as<std::int64_t>());
      record.recorded_at = timestamp_from_micros(row[3].as<std::int64_t>());
      record.actor = optional_int(row[4]);
      record.organization_id = optional_int(row[5]);
      record.action = row[6].c_str();
      record.entity_type = row[7].c_str();
      record.entity_id = optional_text(row[8]);
      boost::system::error_code ec;
      parser.reset();
      parser.write(std::string_view(row[9].c_str()), ec);
      boost::json::value details = ec ? boost::json::value() : parser.release();
      if (ec || !details.is_object()) {
        return std::unexpected(Error{ErrorCode::internal,
                                     server_ + ": audit record at position " +
                                         std::to_string(record.position) +
                                         " has details that are not a JSON object",
                                     {}});
      }
      record.details = std::move(details.as_object());
      record.prev_hash = row[10].c_str();
      record.hash = row[11].c_str();
      records.push_back(std::move(record));
    }
    return records;
  }

  /// Runs `fn` on a pooled connection and turns what libpqxx throws into an Error. When a pooled
  /// connection turns out dead (the server restarted since it was last used), `fn` runs once
  /// more on a new one: the server rolled back whatever the dead one had begun, and a connection
  /// lost during COMMIT, whose outcome is unknown, is `in_doubt_error`, which is not retried.
  template <class T, class Fn>
  std::expected<T, Error> with_connection(const std::string& what, Fn&& fn) {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<pqxx::connection> conn;
      bool reused = false;
      try {
        conn = pool_.take(reused);
        std::expected<T, Error> result = fn(*conn);
        pool_.give_back(std::move(conn));
        return result;
      } catch (const pqxx::in_doubt_error& failure) {
        return std::unexpected(postgres_error(failure, what, server_));
      } catch (const std::exception& failure) {
        const bool lost = conn == nullptr || !conn->is_open() || is_connection_failure(failure);
        if (lost) {
          pool_.clear();
          if (reused && attempt == 0) continue;
        } else {
          pool_.give_back(std::move(conn));
        }
        return std::unexpected(postgres_error(failure, what, server_));
      }
    }
  }

  // Group commit (src/store/group_commit.hpp): the rows of every request queued together, in one
  // transaction; this process's waiters are woken once it committed.
  std::expected<std::vector<AppendResult>, Error> commit_group(
      std::span<const GroupCommitRequest> requests) {
    auto results = appender_.append(requests);
    if (results) wake();
    return results;
  }

  // --- wake-ups ---

  void wake() {
    {
      std::lock_guard lock(wake_mutex_);
      ++generation_;
    }
    wake_cv_.notify_all();
  }

  void set_listening(bool listening) {
    {
      std::lock_guard lock(wake_mutex_);
      listening_ = listening;
      ++generation_;  // appends may have been missed while not listening: look again
    }
    wake_cv_.notify_all();
  }

  bool wait_stop(std::chrono::milliseconds delay) {
    std::unique_lock lock(wake_mutex_);
    return wake_cv_.wait_for(lock, delay, [&] { return stopping_; });
  }

  bool stopping() {
    std::lock_guard lock(wake_mutex_);
    return stopping_;
  }

  // LISTENs for appends by every process on the events channel and wakes `wait_for`. Reconnects
  // with backoff when the server goes away; meanwhile `wait_for` falls back to polling.
  void listen_loop() {
    auto backoff = 50ms;
    while (!stopping()) {
      try {
        pqxx::connection conn(pool_.conninfo());
        QuietErrors quiet(conn);
        WakeReceiver receiver(conn, events_channel, [this] { wake(); });
        conn.get_notifs();  // LISTEN takes effect with the receiver's registration
        set_listening(true);
        backoff = 50ms;
        for (;;) {
          pollfd fds[2] = {{conn.sock(), POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
          if (fds[0].fd < 0) break;
          const int ready = ::poll(fds, 2, -1);
          if (ready < 0 && errno != EINTR) break;
          if (fds[1].revents != 0) return;
          if (fds[0].revents != 0) {
            conn.get_notifs();
            if (!conn.is_open()) break;
            if ((fds[0].revents & (POLLHUP | POLLERR)) != 0) break;
          }
        }
      } catch (const std::exception&) {
        // The server is down or restarting: retry below.
      }
      set_listening(false);
      if (wait_stop(backoff)) return;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
    }
  }

  StoreOptions options_;
  std::string server_;
  ConnectionPool pool_;
  RawConnectionPool raw_pool_;
  // Used by the group commit's leader only (one at a time): declared before group_commit_, whose
  // destructor still commits what is queued.
  PostgresAppender appender_;
  GroupCommit group_commit_;

  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  std::uint64_t generation_ = 0;
  // Bumped by wake_waiters(): every wait_for that began before returns.
  std::uint64_t interrupts_ = 0;
  bool listening_ = false;
  bool stopping_ = false;
  int stop_pipe_[2] = {-1, -1};
  std::thread listener_;
  // Forward reads sent ahead for readers paging forward.
  ReadAhead read_ahead_{raw_pool_};
};

// Adds libpq parameters herald relies on unless the URL sets them.
std::string connection_string(std::string_view url) {
  std::string conninfo(url);
  const auto add = [&](std::string_view key, std::string_view value) {
    if (conninfo.find(std::string(key) + "=") != std::string::npos) return;
    conninfo += conninfo.find('?') == std::string::npos ? '?' : '&';
    conninfo.append(key).append("=").append(value);
  };
  add("connect_timeout", "10");
  add("application_name", "herald");
  // Notice a server that vanished without closing the connection (the LISTEN connection idles
  // for long stretches) within about a minute instead of the kernel's two hours.
  add("keepalives_idle", "30");
  add("keepalives_interval", "10");
  add("keepalives_count", "3");
  return conninfo;
}

}  // namespace

bool is_postgres_url(std::string_view location) noexcept {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string redact_postgres_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const std::string_view scheme = url.substr(0, scheme_end + 3);
  std::string_view rest = url.substr(scheme_end + 3);
  // Drop the query: it may hold a password (?password=...) and says nothing about the server.
  rest = rest.substr(0, rest.find('?'));
  std::string redacted(scheme);
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    redacted.append(userinfo.substr(0, userinfo.find(':')));
    if (userinfo.find(':') != std::string_view::npos) redacted.append(":***");
    redacted.push_back('@');
    rest = rest.substr(at + 1);
  }
  redacted.append(rest);
  return redacted;
}

std::expected<std::string, Error> encode_for_postgres(EventRef event, const EventCatalog* catalog,
                                                      std::size_t max_event_bytes,
                                                      std::string_view server) {
  const std::string id = event->event_id.to_string();
  if (event->event_id.is_nil()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "event_id",
                                            "expected a UUID, got the nil UUID"));
  }
  if (catalog != nullptr && !catalog->contains(event.event_type())) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "event_type",
                         "event " + id + ": type '" + std::string(event.event_type()) +
                             "' is not in the catalog of the store at " + std::string(server) +
                             ", so it could not be read back; register it first"));
  }
  std::string body = encode_event(event);
  if (body.size() > max_event_bytes) {
    return std::unexpected(Error{ErrorCode::too_large,
                                 std::string(server) + ": event " + id + " (" +
                                     std::string(event.event_type()) + "): encoded size " +
                                     std::to_string(body.size()) + " bytes exceeds the limit of " +
                                     std::to_string(max_event_bytes) +
                                     " bytes (StoreOptions::max_event_bytes); nothing was written",
                                 "event"});
  }
  return body;
}

PostgresEventRow postgres_row(EventRef event, std::string_view body) {
  PostgresEventRow row;
  row.event_id = event->event_id.to_string();
  row.event_type = std::string(event.event_type());
  row.occurred_at = format_timestamp(event->timestamp);
  if (event->user_id) row.actor = std::to_string(*event->user_id);
  if (event->organization_id) row.organization_id = std::to_string(*event->organization_id);
  if (const EntityEvent* entity = event.entity()) {
    row.entity_type = std::string(event.type().entity_type());
    if (entity->entity_id) row.entity_id = to_string(*entity->entity_id);
  }
  row.body = body;
  return row;
}

Error postgres_error(const std::exception& failure, std::string_view what,
                     std::string_view server) {
  const std::string detail = one_line(failure.what());
  if (dynamic_cast<const pqxx::in_doubt_error*>(&failure) != nullptr) {
    return Error{ErrorCode::io,
                 std::string(what) + ": the connection to PostgreSQL at " + std::string(server) +
                     " was lost while committing, so whether it took effect is unknown (" + detail +
                     "); retrying an append is safe: it is idempotent by event_id",
                 {}};
  }
  if (is_connection_failure(failure)) {
    return Error{ErrorCode::unavailable,
                 std::string(what) + ": PostgreSQL at " + std::string(server) +
                     " is unavailable: " + detail + " (herald reconnects on the next call)",
                 {}};
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&failure)) {
    return Error{ErrorCode::io,
                 std::string(what) + " on PostgreSQL at " + std::string(server) +
                     " failed: " + detail + " (SQLSTATE " + sql->sqlstate() + ")",
                 {}};
  }
  return Error{
      ErrorCode::io,
      std::string(what) + " on PostgreSQL at " + std::string(server) + " failed: " + detail,
      {}};
}

std::expected<std::unique_ptr<EventStore>, Error> make_postgres_store(const StoreOptions& options) {
  if (!is_postgres_url(options.location)) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "location",
        "expected a postgresql:// URL, got '" + redact_postgres_url(options.location) + "'"));
  }
  if (options.catalog == nullptr) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "catalog",
        "a store needs the catalog of the event types it reads back (StoreOptions::catalog)"));
  }
  auto store = std::make_unique<PostgresStore>(options, connection_string(options.location),
                                               redact_postgres_url(options.location));
  if (auto opened = store->open(); !opened) return std::unexpected(opened.error());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace herald::detail
