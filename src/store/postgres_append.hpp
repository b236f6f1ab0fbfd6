#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_store.hpp"
#include "store/group_commit.hpp"

namespace herald::detail {

/// Key of the transaction-scoped advisory lock every append holds from before it takes positions
/// until it commits ("herald" and 1, recognisable in pg_locks).
inline constexpr std::int64_t append_lock_key = 0x6865'7261'6C64'0001;

/// The channel appends NOTIFY when they commit; every store LISTENs on it.
inline constexpr const char* events_channel = "herald_events";

/// The store's appends: each group of rows in one transaction and one round trip, over a libpq
/// connection of its own in pipeline mode. BEGIN, the append lock, the append statement (prepared
/// once per connection, the rows sent as binary arrays) and COMMIT leave together, so the server
/// runs the transaction without waiting for the client between statements. Not thread-safe: the
/// group commit's leader, one at a time, is its only user.
class PostgresAppender {
 public:
  /// `conninfo` is what libpq connects with; `server` names the store in errors.
  PostgresAppender(std::string conninfo, std::string server);
  ~PostgresAppender();
  PostgresAppender(const PostgresAppender&) = delete;
  PostgresAppender& operator=(const PostgresAppender&) = delete;

  /// Appends `rows` (checked and encoded by the caller) in one transaction and returns each one's
  /// result; an event id already stored or repeated earlier in `rows` is not written again and
  /// gets the stored position. Errors: `invalid_argument` when the server refuses the content
  /// (SQLSTATE classes 22 and 23), `unavailable` when the server cannot be reached and nothing
  /// was committed, `io` when the connection was lost after COMMIT left (the outcome is unknown;
  /// retrying is safe) or for any other failure.
  std::expected<std::vector<AppendResult>, Error> append(std::span<const GroupCommitRequest> rows);

 private:
  struct ConnCloser {
    void operator()(PGconn* conn) const { PQfinish(conn); }
  };
  using Connection = std::unique_ptr<PGconn, ConnCloser>;

  struct Outcome;
  Outcome run_pipeline(std::span<const GroupCommitRequest> rows,
                       std::span<const std::size_t> unique);
  bool usable() const;

  std::string conninfo_;
  std::string server_;
  Connection conn_;
  bool prepared_ = false;
};

}  // namespace herald::detail
