#pragma once

// The notification tables in a PostgreSQL database: the SQL backend of the notification store.

#include <expected>
#include <memory>
#include <string>

#include "herald/error.hpp"
#include "notify/sql_notification_store.hpp"

namespace herald::notify::detail {

/// Opens the PostgreSQL backend on the server `url` names, with a connection of its own.
/// Errors: `unavailable` when the server cannot be reached.
std::expected<std::unique_ptr<SqlBackend>, Error> open_postgres_backend(const std::string& url);

}  // namespace herald::notify::detail
