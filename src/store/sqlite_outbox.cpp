#include "herald/sqlite_outbox.hpp"

#include <sqlite3.h>

#include <cassert>
#include <string>
#include <utility>

#include "store/sqlite_store.hpp"

namespace herald {
namespace {

std::string describe(sqlite3* db) {
  const char* file = sqlite3_db_filename(db, "main");
  return std::string("outbox database '") + (file != nullptr ? file : "") + "'";
}

/// A statement prepared on the caller's connection for one call; finalized when done.
class OneShot {
 public:
  OneShot() = default;
  OneShot(const OneShot&) = delete;
  OneShot& operator=(const OneShot&) = delete;
  ~OneShot() { sqlite3_finalize(stmt_); }
  int prepare(sqlite3* db, std::string_view sql) {
    return sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  sqlite3_stmt* get() const noexcept { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

std::expected<AppendResult, Error> append_in_transaction(sqlite3* db, EventRef event,
                                                         const OutboxOptions& options) {
  assert(db != nullptr);
  const std::string where = describe(db);
  if (sqlite3_get_autocommit(db) != 0) {
    return std::unexpected(Error{ErrorCode::invalid_argument,
                                 where + ": no transaction is open on this connection; run BEGIN "
                                         "IMMEDIATE first, so the event commits or rolls back "
                                         "with your own writes",
                                 "db"});
  }
  if (auto schema = sqlite_detail::check_schema(db, where); !schema) {
    return std::unexpected(std::move(schema.error()));
  }
  auto body =
      sqlite_detail::encode_for_append(event, options.catalog, options.max_event_bytes, where);
  if (!body) return std::unexpected(std::move(body.error()));
  OneShot insert;
  OneShot find;
  if (const int rc = insert.prepare(db, sqlite_detail::insert_event_sql); rc != SQLITE_OK) {
    return std::unexpected(sqlite_detail::failure(where, db, rc, "preparing the outbox insert"));
  }
  if (const int rc = find.prepare(db, sqlite_detail::find_event_sql); rc != SQLITE_OK) {
    return std::unexpected(sqlite_detail::failure(where, db, rc, "preparing the outbox lookup"));
  }
  return sqlite_detail::insert_event(db, insert.get(), find.get(), event, *body, herald::now(),
                                     where);
}

void notify_outbox_commit(sqlite3* db) {
  assert(db != nullptr);
  const char* file = sqlite3_db_filename(db, "main");
  if (file != nullptr && *file != '\0') sqlite_detail::notify_appended(file);
}

std::expected<OutboxTransaction, Error> OutboxTransaction::begin(sqlite3* db) {
  assert(db != nullptr);
  if (sqlite3_get_autocommit(db) == 0) {
    return std::unexpected(Error{ErrorCode::invalid_argument,
                                 describe(db) + ": a transaction is already open on this "
                                                "connection; commit or roll it back first",
                                 "db"});
  }
  if (const int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return std::unexpected(sqlite_detail::failure(describe(db), db, rc, "beginning a transaction"));
  }
  return OutboxTransaction(db);
}

OutboxTransaction::OutboxTransaction(OutboxTransaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)) {}

OutboxTransaction& OutboxTransaction::operator=(OutboxTransaction&& other) noexcept {
  if (this != &other) {
    rollback();
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

OutboxTransaction::~OutboxTransaction() { rollback(); }

std::expected<AppendResult, Error> OutboxTransaction::append(EventRef event,
                                                             const OutboxOptions& options) {
  assert(db_ != nullptr && "append on a finished OutboxTransaction");
  return append_in_transaction(db_, event, options);
}

std::expected<void, Error> OutboxTransaction::commit() {
  assert(db_ != nullptr && "commit on a finished OutboxTransaction");
  if (const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    Error error = sqlite_detail::failure(describe(db_), db_, rc, "committing");
    // SQLite may have rolled back already (a full disk); then there is nothing left to finish.
    if (sqlite3_get_autocommit(db_) != 0) db_ = nullptr;
    return std::unexpected(std::move(error));
  }
  notify_outbox_commit(db_);
  db_ = nullptr;
  return {};
}

void OutboxTransaction::rollback() noexcept {
  if (db_ == nullptr) return;
  if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  db_ = nullptr;
}

}  // namespace herald
