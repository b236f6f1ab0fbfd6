// herald outbox with SQLite: a service keeps its own `tournaments` table in the same database file
// as herald's store, and in one transaction inserts a row and appends the TournamentCreatedEvent
// that describes it. Both commit together or not at all, so no event describes a write that did
// not happen, and no write goes unannounced (built as herald_outbox_example).
//
//   herald_outbox_example [DATABASE]        default: outbox_example.db; each run adds a tournament

#include <sqlite3.h>

#include <cstdint>
#include <expected>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/event_store.hpp"
#include "herald/sqlite_outbox.hpp"

using herald::domain::TournamentCreatedEvent;

struct Tournament {
  std::int64_t id = 0;
  std::string name;
  std::string type;
  std::int64_t organization_id = 0;
};

/// The service: it owns its connection and its table; herald's tables live in the same file.
class TournamentService {
 public:
  static std::expected<std::unique_ptr<TournamentService>, herald::Error> open(
      const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      herald::Error error{
          herald::ErrorCode::io, "cannot open " + path + ": " + sqlite3_errmsg(db), {}};
      sqlite3_close(db);
      return std::unexpected(std::move(error));
    }
    auto service = std::unique_ptr<TournamentService>(new TournamentService(db));
    // Another connection (herald's store) also writes this file: wait for its lock, don't fail.
    sqlite3_busy_timeout(db, 5000);
    if (auto created = service->exec(
            "CREATE TABLE IF NOT EXISTS tournaments (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "type TEXT NOT NULL, organization_id INTEGER NOT NULL)");
        !created) {
      return std::unexpected(std::move(created.error()));
    }
    return service;
  }

  ~TournamentService() { sqlite3_close(db_); }
  TournamentService(const TournamentService&) = delete;
  TournamentService& operator=(const TournamentService&) = delete;

  /// Stores a tournament and announces it: the row and the event commit together.
  std::expected<Tournament, herald::Error> create_tournament(std::string name, std::string type,
                                                             std::int64_t acting_user_id,
                                                             std::int64_t organization_id) {
    // BEGIN IMMEDIATE now; ROLLBACK when `tx` goes out of scope without commit().
    auto tx = herald::OutboxTransaction::begin(db_);
    if (!tx) return std::unexpected(std::move(tx.error()));

    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(db_,
                       "INSERT INTO tournaments (name, type, organization_id) VALUES (?1, ?2, ?3)",
                       -1, &insert, nullptr);
    sqlite3_bind_text(insert, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 2, type.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 3, organization_id);
    const int rc = sqlite3_step(insert);
    sqlite3_finalize(insert);
    if (rc != SQLITE_DONE) {
      return std::unexpected(
          herald::Error{herald::ErrorCode::io,
                        std::string("inserting a tournament: ") + sqlite3_errmsg(db_),
                        {}});
    }
    Tournament tournament{.id = sqlite3_last_insert_rowid(db_),
                          .name = std::move(name),
                          .type = std::move(type),
                          .organization_id = organization_id};

    // The event is written by this same connection, inside this same transaction.
    auto appended =
        tx->append(herald::make<TournamentCreatedEvent>(
                       {.entity_id = tournament.id,
                        .user_id = acting_user_id,
                        .organization_id = organization_id},
                       {.tournament_name = tournament.name, .tournament_type = tournament.type}),
                   {.catalog = &herald::domain::platform_catalog()});
    if (!appended) return std::unexpected(std::move(appended.error()));  // the row rolls back too

    // Both become durable here, and the process's stores wake their waiting consumers.
    if (auto committed = tx->commit(); !committed) {
      return std::unexpected(std::move(committed.error()));
    }
    return tournament;
  }

 private:
  explicit TournamentService(sqlite3* db) : db_(db) {}

  std::expected<void, herald::Error> exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return std::unexpected(herald::Error{herald::ErrorCode::io, sqlite3_errmsg(db_), {}});
    }
    return {};
  }

  sqlite3* db_;
};

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "outbox_example.db";

  // herald's store creates (or checks and migrates) its tables in the file. The file may already
  // hold the service's own tables: `sqlite_adopt_existing` lets herald add its tables beside them.
  auto store = herald::open_store({.location = path,
                                   .catalog = &herald::domain::platform_catalog(),
                                   .sqlite_adopt_existing = true});
  if (!store) {
    std::cerr << store.error().message << "\n";
    return 1;
  }
  auto service = TournamentService::open(path);
  if (!service) {
    std::cerr << service.error().message << "\n";
    return 1;
  }

  auto tournament = (*service)->create_tournament("Spring Cup", "async", /*acting_user_id=*/7,
                                                  /*organization_id=*/3);
  if (!tournament) {
    std::cerr << "creating the tournament failed: " << tournament.error().message << "\n";
    return 1;
  }
  std::cout << "tournament " << tournament->id << " \"" << tournament->name << "\" stored\n";

  // What a consumer reading the store sees: the event, at its position.
  auto latest = (*store)->read_backward(std::nullopt, 1, {.types = {"TournamentCreatedEvent"}});
  if (!latest || latest->empty()) {
    std::cerr << "reading the event back failed"
              << (latest ? std::string() : ": " + latest.error().message) << "\n";
    return 1;
  }
  const herald::StoredEvent& stored = latest->front();
  std::cout << "event at position " << stored.position << ": " << stored.event.ref().to_string()
            << "\n"
            << "events in " << path << ": " << (*store)->count().value_or(-1) << "\n";
  return 0;
}
