#include <memory>

#include "herald/event_store.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

namespace herald {

std::expected<std::unique_ptr<EventStore>, Error> open_store(const StoreOptions& options) {
  // "postgresql://…" or "postgres://…" is a server; anything else a SQLite file path.
  if (detail::is_postgres_url(options.location)) return detail::make_postgres_store(options);
  auto store = open_sqlite_store(options);
  if (!store) return std::unexpected(std::move(store.error()));
  return std::unique_ptr<EventStore>(std::move(*store));
}

}  // namespace herald
