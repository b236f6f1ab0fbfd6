#pragma once

// What the store tests share: temporary directories, file digests, the events they append and a
// type that a catalog may lack.

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <boost/describe/class.hpp>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/error.hpp"
#include "herald/event.hpp"
#include "herald/event_catalog.hpp"
#include "herald/event_ref.hpp"

namespace herald::store_test {

/// An event type the platform catalog does not list, as if a newer service had written it or an
/// older type had been removed.
struct LegacyScoreEvent : EntityEvent {
  static constexpr EventTraits traits{.name = "LegacyScoreEvent",
                                      .entity_type = "Score",
                                      .priority = Priority::normal,
                                      .description = "A score of a retired scoring system."};
  std::optional<std::int64_t> score;
};
BOOST_DESCRIBE_STRUCT(LegacyScoreEvent, (EntityEvent), (score))

/// The platform catalog plus `LegacyScoreEvent`.
inline const EventCatalog& catalog_with_legacy() {
  static const EventCatalog catalog = [] {
    EventCatalog c;
    domain::register_platform_events(c);
    c.add<LegacyScoreEvent>();
    return c;
  }();
  return catalog;
}

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/herald-store-test.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// SHA-256 of `bytes` in hex.
inline std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

/// SHA-256 of a file's bytes in hex ("" when it cannot be read): what "left untouched" compares.
inline std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return sha256_hex(bytes);
}

/// A raw SQLite connection, closed at scope end: what a service or an operator would use.
class RawDb {
 public:
  explicit RawDb(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + path + ": " + sqlite3_errmsg(db_));
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close_v2(db_); }
  sqlite3* get() const noexcept { return db_; }

  /// Runs SQL; returns SQLite's error message, or "" on success.
  std::string exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) == SQLITE_OK) return {};
    std::string out = message != nullptr ? message : "error";
    sqlite3_free(message);
    return out;
  }
  /// The first column of the first row as text ("NULL" for null, "" for no row).
  std::string scalar(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out = text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

/// A tournament created by user 7 in `organization`.
inline EventPtr tournament_created(std::int64_t tournament_id, std::int64_t organization = 1,
                                   std::string name = "Spring Cup") {
  return EventPtr::make(make<domain::TournamentCreatedEvent>(
      {.entity_id = tournament_id, .user_id = 7, .organization_id = organization},
      {.tournament_name = std::move(name), .tournament_type = "async"}));
}

/// A user created by the system, with no organization.
inline EventPtr user_created(std::int64_t user_id) {
  return EventPtr::make(make<domain::UserCreatedEvent>(
      {.entity_id = user_id, .user_id = system_actor},
      {.discord_id = 100000 + user_id, .discord_username = "user" + std::to_string(user_id)}));
}

/// A race submitted in a race room with a string id ("bold-rush-1234").
inline EventPtr race_submitted(std::string room, std::int64_t organization = 1) {
  return EventPtr::make(make<domain::RaceSubmittedEvent>(
      {.entity_id = EntityId(std::move(room)), .user_id = 11, .organization_id = organization},
      {.tournament_id = 5, .racer_user_id = 11, .time_seconds = 5400}));
}

/// A `LegacyScoreEvent` for entity `id`.
inline EventPtr legacy_score(std::int64_t id) {
  return EventPtr::make(
      make<LegacyScoreEvent>({.entity_id = id, .organization_id = 1}, {.score = 10 * id}));
}

/// The value of a store call; a failure throws, which fails the test with the store's message.
template <class T>
T must(std::expected<T, Error> result, std::string_view what = "store call") {
  if (!result) throw std::runtime_error(std::string(what) + " failed: " + result.error().message);
  return std::move(*result);
}
inline void must(std::expected<void, Error> result, std::string_view what = "store call") {
  if (!result) throw std::runtime_error(std::string(what) + " failed: " + result.error().message);
}

/// Views of `events`, for `append_batch`.
inline std::vector<EventRef> refs(const std::vector<EventPtr>& events) {
  std::vector<EventRef> out;
  out.reserve(events.size());
  for (const EventPtr& e : events) out.push_back(e.ref());
  return out;
}

}  // namespace herald::store_test
