#include "herald/postgres_outbox.hpp"

#include <exception>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "store/postgres_store.hpp"

namespace herald {
namespace {

// "database 'shop' on 127.0.0.1:5432", or less when the connection is gone.
std::string describe_server(pqxx::transaction_base& tx) noexcept {
  try {
    pqxx::connection_base& conn = tx.conn();
    if (!conn.is_open()) return "the outbox transaction's server";
    const char* db = conn.dbname();
    const char* host = conn.hostname();
    const char* port = conn.port();
    return "database '" + std::string(db != nullptr ? db : "?") + "' on " +
           std::string(host != nullptr && *host != '\0' ? host : "localhost") + ":" +
           std::string(port != nullptr ? port : "?");
  } catch (...) {
    return "the outbox transaction's server";
  }
}

}  // namespace

std::expected<AppendResult, Error> append_in_transaction(pqxx::transaction_base& tx, EventRef event,
                                                         const OutboxOptions& options) {
  auto results = append_batch_in_transaction(tx, std::span<const EventRef>(&event, 1), options);
  if (!results) return std::unexpected(std::move(results.error()));
  return results->front();
}

std::expected<std::vector<AppendResult>, Error> append_batch_in_transaction(
    pqxx::transaction_base& tx, std::span<const EventRef> events, const OutboxOptions& options) {
  const std::string server = describe_server(tx);
  // Every event is checked before anything is sent, so a refused one leaves `tx` intact.
  std::vector<std::string> bodies;
  bodies.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto body =
        detail::encode_for_postgres(events[i], options.catalog, options.max_event_bytes, server);
    if (!body) {
      Error error = std::move(body.error());
      if (events.size() > 1) {
        error.message = "batch event " + std::to_string(i) + " of " +
                        std::to_string(events.size()) + ": " + error.message;
      }
      return std::unexpected(std::move(error));
    }
    bodies.push_back(std::move(*body));
  }
  if (events.empty()) return std::vector<AppendResult>{};
  std::vector<detail::PostgresEventRow> rows;
  rows.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    rows.push_back(detail::postgres_row(events[i], bodies[i]));
  }
  std::vector<const detail::PostgresEventRow*> pointers;
  pointers.reserve(rows.size());
  for (const auto& row : rows) pointers.push_back(&row);

  try {
    auto appended = detail::postgres_append_rows(tx, pointers, /*check_schema=*/true);
    if (!appended) {
      Error error = std::move(appended.error());
      error.message = server + ": " + error.message;
      return std::unexpected(std::move(error));
    }
    return appended;
  } catch (const std::exception& failure) {
    const std::string what = events.size() == 1
                                 ? "outbox append of event " + rows.front().event_id
                                 : "outbox append of " + std::to_string(events.size()) + " events";
    return std::unexpected(detail::postgres_error(failure, what, server));
  }
}

}  // namespace herald
