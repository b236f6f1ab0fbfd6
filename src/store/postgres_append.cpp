#include "store/postgres_append.hpp"

#include <poll.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <optional>
#include <pqxx/pqxx>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "store/postgres_binary.hpp"
#include "store/postgres_store.hpp"

namespace herald::detail {

namespace {

// One statement appends a run of rows, each event id once (repeats are taken out before), once
// the append lock is held: it finds the ids already stored, numbers the others from 1 in their
// order (k) in a block of positions above every stored one, stamps them with one recording time,
// inserts them and queues the NOTIFY. The rows travel as eight array parameters, so the text is
// the same for any number of rows and a connection prepares it once. It must run in a statement
// after the one that took the lock: a statement's snapshot is taken when it starts, and only a
// snapshot taken under the lock sees every earlier append committed (READ COMMITTED).
//
// The answer is small whatever the number of rows: a row (n, position, NULL) for each input row
// n (from 1) already stored, and, when it inserted any, one row (0, base, recorded_at in µs): the
// k-th inserted row is at base + k. One index look-up per row finds the stored ones; the insert
// itself checks uniqueness again, so a row a writer bypassing the append lock stored meanwhile
// fails the statement (SQLSTATE 23505) instead of being skipped silently.
const std::string append_rows_sql =
    "WITH input AS ("
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[],"
    " $6::text[], $7::text[], $8::json[]) WITH ORDINALITY"
    " AS t(event_id, event_type, occurred_at, actor, organization_id, entity_type, entity_id,"
    " body, n)),"
    " stored AS (SELECT i.n, e.position FROM input i JOIN herald_events e"
    " ON e.event_id = i.event_id),"
    " fresh AS (SELECT i.*, row_number() OVER (ORDER BY i.n) AS k FROM input i"
    " WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.n = i.n)),"
    " block AS (SELECT setval('herald_position_seq', greatest(nextval('herald_position_seq'),"
    " (SELECT coalesce(max(position), 0) + 1 FROM herald_events))"
    " + (SELECT count(*) FROM fresh) - 1) - (SELECT count(*) FROM fresh) AS base,"
    " clock_timestamp() AS recorded_at, pg_notify($9, '') AS notified"
    " WHERE EXISTS (SELECT 1 FROM fresh)),"
    " inserted AS (INSERT INTO herald_events (position, event_id, event_type, occurred_at,"
    " recorded_at, actor, organization_id, entity_type, entity_id, body)"
    " SELECT b.base + f.k, f.event_id, f.event_type, f.occurred_at, b.recorded_at, f.actor,"
    " f.organization_id, f.entity_type, f.entity_id, f.body FROM fresh f CROSS JOIN block b)"
    " SELECT n, position, NULL::bigint FROM stored"
    " UNION ALL SELECT 0, base, (extract(epoch FROM recorded_at) * 1000000)::bigint FROM block";

// The name of `append_rows_sql` prepared on the appender's connection.
constexpr const char* append_statement = "herald_append_rows";

// Rows per statement: bounds the size of one statement's parameters.
constexpr std::size_t append_statement_rows = 1000;

// Type OIDs (PostgreSQL's pg_type.dat) of the binary parameters.
constexpr Oid uuid_oid = 2950;
constexpr Oid text_oid = 25;
constexpr Oid timestamptz_oid = 1184;
constexpr Oid int8_oid = 20;
constexpr Oid json_oid = 114;
constexpr std::array<Oid, 9> append_parameter_types = {2951 /* uuid[] */,
                                                       1009 /* text[] */,
                                                       1185 /* timestamptz[] */,
                                                       1016 /* int8[] */,
                                                       1016,
                                                       1009,
                                                       1009,
                                                       199 /* json[] */,
                                                       text_oid};

/// Each event id of a request once, first occurrence first.
struct UniqueRows {
  /// The request's index of each unique row.
  std::vector<std::size_t> rows;
  /// For each row of the request, the unique row it is (or repeats).
  std::vector<std::size_t> unique_of;
};

template <class KeyOf>
UniqueRows unique_rows(std::size_t count, KeyOf&& key_of) {
  UniqueRows unique;
  unique.unique_of.resize(count);
  std::unordered_map<std::string_view, std::size_t> seen;
  seen.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto [at, first] = seen.emplace(key_of(i), unique.rows.size());
    if (first) unique.rows.push_back(i);
    unique.unique_of[i] = at->second;
  }
  return unique;
}

/// Every row's result from its unique row's: a repeat shares the position and inserted nothing.
std::vector<AppendResult> expand(const UniqueRows& unique,
                                 std::span<const AppendResult> unique_results) {
  std::vector<AppendResult> results(unique.unique_of.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    const std::size_t u = unique.unique_of[i];
    results[i] = unique_results[u];
    if (unique.rows[u] != i) results[i].inserted = false;
  }
  return results;
}

/// What one append statement answered (see append_rows_sql).
struct StatementAnswer {
  std::vector<std::pair<std::int64_t, std::int64_t>> stored;  // (n, position)
  std::optional<std::int64_t> base;
  std::int64_t recorded_micros = 0;

  void add(std::int64_t n, std::int64_t position, std::optional<std::int64_t> micros) {
    if (n == 0) {
      base = position;
      recorded_micros = micros.value_or(0);
    } else {
      stored.emplace_back(n, position);
    }
  }

  /// Fills the results of the statement's rows; false when the answer does not fit them.
  bool apply(std::span<AppendResult> results) const {
    std::vector<bool> known(results.size(), false);
    for (const auto& [n, position] : stored) {
      if (n < 1 || static_cast<std::size_t>(n) > results.size()) return false;
      const auto i = static_cast<std::size_t>(n - 1);
      results[i] = AppendResult{.position = position, .inserted = false};
      known[i] = true;
    }
    std::int64_t next = base.value_or(0);
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (known[i]) continue;
      if (!base) return false;
      results[i] = AppendResult{.position = ++next, .inserted = true};
    }
    return true;
  }
};

Error unexpected_answer(std::string_view server) {
  return Error{ErrorCode::internal,
               "append on PostgreSQL at " + std::string(server) +
                   ": the append statement's answer does not match its rows",
               {}};
}

/// A PostgreSQL array literal built element by element: {"a","b",NULL}.
class ArrayLiteral {
 public:
  ArrayLiteral() { text_.push_back('{'); }
  void add(std::optional<std::string_view> value) {
    if (text_.size() > 1) text_.push_back(',');
    if (!value) {
      text_ += "NULL";
      return;
    }
    text_.push_back('"');
    for (const char c : *value) {
      if (c == '"' || c == '\\') text_.push_back('\\');
      text_.push_back(c);
    }
    text_.push_back('"');
  }
  std::string finish() {
    text_.push_back('}');
    return std::move(text_);
  }

 private:
  std::string text_;
};

std::optional<std::string_view> view(const std::optional<std::string>& value) {
  if (!value) return std::nullopt;
  return std::string_view(*value);
}

/// A one-dimensional array parameter in PostgreSQL's binary form (what array_recv reads): the
/// number of dimensions, whether an element is NULL, the element type, the length and lower
/// bound, then each element as its length (-1 for NULL) and its bytes.
class BinaryArray : public BinaryValues {
 public:
  BinaryArray(Oid element, std::size_t count) {
    data_.reserve(20 + count * 12);
    put32(1);  // dimensions
    put32(0);  // has NULLs: set by data()
    put32(element);
    put32(static_cast<std::uint32_t>(count));
    put32(1);  // lower bound
  }
  const std::string& data() {
    data_[7] = has_null_ ? 1 : 0;
    return data_;
  }
};

/// The eight array parameters of one append statement, from the unique rows `unique`.
struct BinaryParameters {
  std::array<BinaryArray, 8> arrays;
  std::string channel = events_channel;

  explicit BinaryParameters(std::size_t count)
      : arrays{BinaryArray(uuid_oid, count),        BinaryArray(text_oid, count),
               BinaryArray(timestamptz_oid, count), BinaryArray(int8_oid, count),
               BinaryArray(int8_oid, count),        BinaryArray(text_oid, count),
               BinaryArray(text_oid, count),        BinaryArray(json_oid, count)} {}

  void add(const GroupCommitRequest& row) {
    const EventRef event = row.event;
    arrays[0].uuid(event->event_id);
    arrays[1].text(event.event_type());
    arrays[2].timestamp(event->timestamp);
    arrays[3].int64(event->user_id);
    arrays[4].int64(event->organization_id);
    if (const EntityEvent* entity = event.entity()) {
      arrays[5].text(event.type().entity_type());
      if (entity->entity_id) {
        arrays[6].text(to_string(*entity->entity_id));
      } else {
        arrays[6].null();
      }
    } else {
      arrays[5].null();
      arrays[6].null();
    }
    arrays[7].text(row.body);
  }
};

std::optional<std::int64_t> int_field(const PGresult* result, int row, int column) {
  if (PQgetisnull(result, row, column) != 0) return std::nullopt;
  const char* text = PQgetvalue(result, row, column);
  const char* end = text + std::strlen(text);
  std::int64_t value = 0;
  if (std::from_chars(text, end, value).ptr != end) return std::nullopt;
  return value;
}

bool readable(int fd) {
  pollfd ready{fd, POLLIN, 0};
  return ::poll(&ready, 1, 0) > 0;
}

}  // namespace

// --- the store's appends: libpq, pipeline mode, binary arrays ---

struct PostgresAppender::Outcome {
  std::vector<AppendResult> results;  // for each unique row
  bool failed = false;
  bool connection_lost = false;
  // COMMIT left for the server and no answer to it came: it may have committed.
  bool in_doubt = false;
  std::string message;
  std::string sqlstate;
};

PostgresAppender::PostgresAppender(std::string conninfo, std::string server)
    : conninfo_(std::move(conninfo)), server_(std::move(server)) {}

PostgresAppender::~PostgresAppender() = default;

bool PostgresAppender::usable() const {
  // An idle connection has nothing to read: something readable is the server's goodbye (it
  // restarted or ended the session since the last append), and sending into it would fail.
  return conn_ && PQstatus(conn_.get()) == CONNECTION_OK &&
         PQpipelineStatus(conn_.get()) == PQ_PIPELINE_ON && !readable(PQsocket(conn_.get()));
}

std::expected<std::vector<AppendResult>, Error> PostgresAppender::append(
    std::span<const GroupCommitRequest> rows) {
  if (rows.empty()) return std::vector<AppendResult>{};
  const std::string what =
      rows.size() == 1 ? "append event " + rows.front().event->event_id.to_string()
                       : "append " + std::to_string(rows.size()) + " events in one transaction";
  const UniqueRows unique = unique_rows(rows.size(), [&](std::size_t i) {
    const auto& bytes = rows[i].event->event_id.bytes();
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  });
  for (int attempt = 0;; ++attempt) {
    const bool reused = usable();
    if (!reused) {
      prepared_ = false;
      conn_.reset(PQconnectdb(conninfo_.c_str()));
      if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK ||
          PQenterPipelineMode(conn_.get()) != 1) {
        const std::string message = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
        conn_.reset();
        return std::unexpected(postgres_error(pqxx::broken_connection(message), what, server_));
      }
    }
    Outcome outcome = run_pipeline(rows, unique.rows);
    if (!outcome.failed) return expand(unique, outcome.results);
    if (outcome.connection_lost) {
      conn_.reset();
      if (outcome.in_doubt) {
        return std::unexpected(
            postgres_error(pqxx::in_doubt_error(outcome.message), what, server_));
      }
      // A connection that was idle in the pool can have died with a server restart since.
      if (reused && attempt == 0) continue;
      return std::unexpected(
          postgres_error(pqxx::broken_connection(outcome.message), what, server_));
    }
    Error error = postgres_error(
        pqxx::sql_error(outcome.message, append_statement,
                        outcome.sqlstate.empty() ? nullptr : outcome.sqlstate.c_str()),
        what, server_);
    // A row the server refuses (SQLSTATE classes 22, data exception, and 23, integrity
    // constraint violation, e.g. a constraint or trigger of the operator's) is the content's
    // fault, not the server's: group commit then retries each request alone.
    if (outcome.sqlstate.starts_with("22") || outcome.sqlstate.starts_with("23")) {
      error.code = ErrorCode::invalid_argument;
    }
    return std::unexpected(std::move(error));
  }
}

PostgresAppender::Outcome PostgresAppender::run_pipeline(std::span<const GroupCommitRequest> rows,
                                                         std::span<const std::size_t> unique) {
  PGconn* conn = conn_.get();
  Outcome outcome;
  outcome.results.resize(unique.size());

  // What is sent, in order; each step answers with one result.
  enum class Step { prepare, begin, lock, statement, commit };
  std::vector<Step> steps;
  bool commit_sent = false;
  const auto lost_while_sending = [&] {
    outcome.failed = outcome.connection_lost = true;
    outcome.in_doubt = commit_sent;
    outcome.message = PQerrorMessage(conn);
    return std::move(outcome);
  };
  const auto send = [&](const char* sql) {
    return PQsendQueryParams(conn, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  };

  if (!prepared_) {
    if (PQsendPrepare(conn, append_statement, append_rows_sql.c_str(),
                      static_cast<int>(append_parameter_types.size()),
                      append_parameter_types.data()) != 1) {
      return lost_while_sending();
    }
    steps.push_back(Step::prepare);
  }
  static const std::string lock_sql =
      "SELECT pg_advisory_xact_lock(" + std::to_string(append_lock_key) + ")";
  if (!send("BEGIN")) return lost_while_sending();
  steps.push_back(Step::begin);
  if (!send(lock_sql.c_str())) return lost_while_sending();
  steps.push_back(Step::lock);
  std::vector<std::pair<std::size_t, std::size_t>> chunks;  // [start, end) of unique rows
  for (std::size_t start = 0; start < unique.size(); start += append_statement_rows) {
    const std::size_t end = std::min(unique.size(), start + append_statement_rows);
    BinaryParameters parameters(end - start);
    for (std::size_t i = start; i < end; ++i) parameters.add(rows[unique[i]]);
    std::array<const char*, 9> values{};
    std::array<int, 9> lengths{};
    std::array<int, 9> formats{};
    for (std::size_t p = 0; p < parameters.arrays.size(); ++p) {
      values[p] = parameters.arrays[p].data().data();
      lengths[p] = static_cast<int>(parameters.arrays[p].data().size());
      formats[p] = 1;
    }
    values[8] = parameters.channel.c_str();
    if (PQsendQueryPrepared(conn, append_statement, static_cast<int>(values.size()), values.data(),
                            lengths.data(), formats.data(), 0) != 1) {
      return lost_while_sending();
    }
    steps.push_back(Step::statement);
    chunks.emplace_back(start, end);
  }
  if (!send("COMMIT")) return lost_while_sending();
  commit_sent = true;
  steps.push_back(Step::commit);
  if (PQpipelineSync(conn) != 1) return lost_while_sending();

  // The answers, in the order sent, up to the sync. After an error the server skips the rest
  // (PGRES_PIPELINE_ABORTED); COMMIT is then one of them and the transaction block stays open
  // in its failed state, to be rolled back below.
  std::size_t step = 0;
  std::size_t chunk = 0;
  bool committed = false;
  int idle = 0;
  for (;;) {
    PGresult* raw = PQgetResult(conn);
    if (raw == nullptr) {
      // Between two steps' answers; twice in a row, or a broken connection, means no more come.
      if (PQstatus(conn) == CONNECTION_BAD || ++idle > 1) {
        outcome.failed = outcome.connection_lost = true;
        outcome.in_doubt = !committed && outcome.sqlstate.empty() && outcome.message.empty();
        if (outcome.message.empty()) outcome.message = PQerrorMessage(conn);
        return outcome;
      }
      continue;
    }
    idle = 0;
    const std::unique_ptr<PGresult, decltype(&PQclear)> result(raw, &PQclear);
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_PIPELINE_SYNC) break;
    const Step current = step < steps.size() ? steps[step] : Step::commit;
    ++step;
    if (status == PGRES_PIPELINE_ABORTED) continue;
    if (status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR ||
        status == PGRES_BAD_RESPONSE) {
      if (!outcome.failed) {
        outcome.failed = true;
        const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
        outcome.sqlstate = state != nullptr ? state : "";
        outcome.message = PQresultErrorMessage(raw);
      }
      if (PQstatus(conn) == CONNECTION_BAD) {
        outcome.connection_lost = true;
        // The server reported why it ended the session before answering COMMIT, or COMMIT
        // itself failed: in either case whether it took effect cannot be told from here.
        outcome.in_doubt = current == Step::commit ||
                           (current != Step::prepare && !committed && outcome.sqlstate.empty());
        return outcome;
      }
      continue;
    }
    switch (current) {
      case Step::prepare:
        prepared_ = true;
        break;
      case Step::begin:
      case Step::lock:
        break;
      case Step::statement: {
        StatementAnswer answer;
        for (int r = 0; r < PQntuples(raw); ++r) {
          const auto n = int_field(raw, r, 0);
          const auto position = int_field(raw, r, 1);
          if (!n || !position) {
            outcome.failed = true;
            outcome.message = unexpected_answer(server_).message;
            break;
          }
          answer.add(*n, *position, int_field(raw, r, 2));
        }
        if (chunk < chunks.size()) {
          const auto [start, end] = chunks[chunk];
          if (!outcome.failed &&
              !answer.apply(std::span(outcome.results).subspan(start, end - start))) {
            outcome.failed = true;
            outcome.message = unexpected_answer(server_).message;
          }
        }
        ++chunk;
        break;
      }
      case Step::commit:
        committed = std::strcmp(PQcmdStatus(raw), "COMMIT") == 0;
        if (!committed && !outcome.failed) {
          outcome.failed = true;
          outcome.message = std::string("COMMIT answered ") + PQcmdStatus(raw);
        }
        break;
    }
  }
  if (!committed) {
    // End the failed transaction block, so the connection can go on; drop it if that fails.
    bool rolled_back = false;
    if (send("ROLLBACK") && PQpipelineSync(conn) == 1) {
      for (int nulls = 0; nulls < 2;) {
        PGresult* raw = PQgetResult(conn);
        if (raw == nullptr) {
          if (PQstatus(conn) == CONNECTION_BAD) break;
          ++nulls;
          continue;
        }
        nulls = 0;
        const ExecStatusType status = PQresultStatus(raw);
        PQclear(raw);
        if (status == PGRES_COMMAND_OK) rolled_back = true;
        if (status == PGRES_PIPELINE_SYNC) break;
      }
    }
    if (!rolled_back || PQtransactionStatus(conn) != PQTRANS_IDLE) conn_.reset();
    if (!outcome.failed) {
      outcome.failed = true;
      outcome.message = "the append transaction did not commit";
    }
  }
  return outcome;
}

// --- appends inside a caller's transaction (the outbox): libpqxx, text arrays ---

std::expected<std::vector<AppendResult>, Error> postgres_append_rows(
    pqxx::transaction_base& tx, std::span<const PostgresEventRow* const> rows, bool check_schema,
    Timestamp* recorded_at) {
  if (rows.empty()) return std::vector<AppendResult>{};
  // The append lock is transaction-scoped. Outside a transaction block (pqxx::nontransaction,
  // autocommit) it would be released as soon as the statement that takes it ends, and every later
  // statement would commit on its own: positions taken and committed with no lock held, which is
  // exactly how a later position becomes visible before an earlier one.
  if (dynamic_cast<const pqxx::dbtransaction*>(&tx) == nullptr) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "tx",
        "expected a transaction (pqxx::work, or another pqxx::dbtransaction), got one that "
        "runs each statement on its own (autocommit), under which positions could become "
        "visible out of order; nothing was written"));
  }
  if (check_schema) {
    const pqxx::row meta = tx.exec1("SELECT to_regclass('herald_meta') IS NOT NULL");
    if (!meta[0].as<bool>()) {
      return std::unexpected(Error{ErrorCode::not_found,
                                   "database has no herald schema: open the store once "
                                   "(herald::open_store) to create it",
                                   {}});
    }
    const pqxx::result version =
        tx.exec("SELECT value FROM herald_meta WHERE key = 'schema_version'");
    if (version.empty() || version[0][0].c_str() != std::to_string(postgres_schema_version)) {
      return std::unexpected(
          Error{ErrorCode::conflict,
                "database holds herald schema version " +
                    (version.empty() ? std::string("(none)") : std::string(version[0][0].c_str())) +
                    ", this herald writes version " + std::to_string(postgres_schema_version) +
                    ": open the store with this herald to migrate it, or upgrade herald",
                {}});
    }
  }

  // Visibility order: every appending transaction holds this lock from before it takes
  // positions until it commits, so a transaction with higher positions cannot commit (and
  // become visible) before one with lower positions. PostgreSQL marks a transaction committed
  // before releasing its locks, so a reader that sees position n also sees everything below.
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", append_lock_key);

  const UniqueRows unique =
      unique_rows(rows.size(), [&](std::size_t i) { return std::string_view(rows[i]->event_id); });
  std::vector<AppendResult> unique_results(unique.rows.size());
  bool stamped = false;
  for (std::size_t start = 0; start < unique.rows.size(); start += append_statement_rows) {
    const std::size_t end = std::min(unique.rows.size(), start + append_statement_rows);
    ArrayLiteral ids, types, occurred, actors, organizations, entity_types, entity_ids, bodies;
    for (std::size_t i = start; i < end; ++i) {
      const PostgresEventRow& row = *rows[unique.rows[i]];
      ids.add(row.event_id);
      types.add(row.event_type);
      occurred.add(row.occurred_at);
      actors.add(view(row.actor));
      organizations.add(view(row.organization_id));
      entity_types.add(view(row.entity_type));
      entity_ids.add(view(row.entity_id));
      bodies.add(row.body);
    }
    const std::string channel = events_channel;
    const pqxx::result out =
        tx.exec_params(append_rows_sql, ids.finish(), types.finish(), occurred.finish(),
                       actors.finish(), organizations.finish(), entity_types.finish(),
                       entity_ids.finish(), bodies.finish(), channel);
    StatementAnswer answer;
    for (const auto& row : out) {
      answer.add(
          row[0].as<std::int64_t>(), row[1].as<std::int64_t>(),
          row[2].is_null() ? std::nullopt : std::optional<std::int64_t>(row[2].as<std::int64_t>()));
    }
    if (!answer.apply(std::span(unique_results).subspan(start, end - start))) {
      return std::unexpected(unexpected_answer("the outbox transaction's server"));
    }
    if (answer.base && recorded_at != nullptr && !stamped) {
      *recorded_at = Timestamp{std::chrono::microseconds{answer.recorded_micros}};
      stamped = true;
    }
  }
  return expand(unique, unique_results);
}

}  // namespace herald::detail
