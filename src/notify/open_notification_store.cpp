#include <memory>

#include "herald/notify/notification_store.hpp"
#include "notify/postgres_notification_store.hpp"
#include "notify/sql_notification_store.hpp"
#include "notify/sqlite_notification_store.hpp"
#include "store/postgres_store.hpp"

namespace herald::notify {

std::expected<std::unique_ptr<NotificationStore>, Error> open_notification_store(
    const std::string& location) {
  if (location.empty()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "location",
                                            "expected a SQLite file path or a PostgreSQL URL"));
  }
  // As open_store decides: "postgresql://…" or "postgres://…" is a server, anything else a file.
  auto backend = herald::detail::is_postgres_url(location) ? detail::open_postgres_backend(location)
                                                           : detail::open_sqlite_backend(location);
  if (!backend) return std::unexpected(std::move(backend.error()));
  return detail::make_sql_notification_store(std::move(*backend));
}

}  // namespace herald::notify
