#pragma once

// The notification tables in a SQLite file: the SQL backend of the notification store.

#include <expected>
#include <memory>
#include <string>

#include "herald/error.hpp"
#include "notify/sql_notification_store.hpp"

namespace herald::notify::detail {

/// Opens the SQLite backend on the file at `path`, which the event store created, with a
/// connection of its own (WAL, busy timeout). Errors: the file cannot be opened.
std::expected<std::unique_ptr<SqlBackend>, Error> open_sqlite_backend(const std::string& path);

}  // namespace herald::notify::detail
