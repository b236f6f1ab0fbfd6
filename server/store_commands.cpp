// `herald events|audit|consumers|replay|parked`: an operator's view of the store. Every command
// opens an existing store only: a missing file, an empty file or a database without herald's
// tables is reported, never created, so a mistyped --db cannot leave a stray database behind.

#include "store_commands.hpp"
#include "cli_support.hpp"

#include <fmt/core.h>
#include <sqlite3.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <ostream>
#include <pqxx/pqxx>
#include <streambuf>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "cli_table.hpp"
#include "herald/audit_log.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event_id.hpp"
#include "herald/event_store.hpp"
#include "herald/timestamp.hpp"
#include "platform_consumers.hpp"

namespace herald::server {

bool is_postgres_url(std::string_view text) {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

namespace {

// ---------------------------------------------------------------------------------------------
// Values given on the command line. CLI11 hands them over as text; parsing them here lets every
// message name the flag, the value and what was expected, in the same words.

std::expected<std::int64_t, Failure> parse_integer(std::string_view flag, std::string_view text,
                                                   std::string_view expected) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
    return usage(fmt::format("{} '{}': expected {}", flag, text, expected));
  }
  return value;
}

std::expected<std::int64_t, Failure> parse_position(std::string_view flag, std::string_view text) {
  constexpr std::string_view expected = "a store position (a whole number, 0 or more)";
  auto value = parse_integer(flag, text, expected);
  if (value && *value < 0) return usage(fmt::format("{} '{}': expected {}", flag, text, expected));
  return value;
}

std::expected<std::size_t, Failure> parse_limit(std::string_view flag, std::string_view text,
                                                std::int64_t most) {
  const std::string expected = fmt::format("a whole number from 1 to {}", most);
  auto value = parse_integer(flag, text, expected);
  if (!value) return std::unexpected(std::move(value.error()));
  if (*value < 1 || *value > most) {
    return usage(fmt::format("{} '{}': expected {}", flag, text, expected));
  }
  return static_cast<std::size_t>(*value);
}

/// An RFC 3339 time, a date (midnight UTC), or a duration ago: "90s", "15m", "2h", "7d", "1w".
std::expected<Timestamp, Failure> parse_time(std::string_view flag, std::string_view text) {
  if (auto exact = parse_timestamp(text)) return *exact;
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    if (auto midnight = parse_timestamp(std::string(text) + "T00:00:00Z")) return *midnight;
  }
  if (text.size() >= 2 && text.size() <= 10) {
    std::int64_t count = 0;
    const char* last = text.data() + text.size() - 1;
    const auto [end, ec] = std::from_chars(text.data(), last, count);
    if (ec == std::errc{} && end == last && count >= 0) {
      std::optional<std::chrono::seconds> unit;
      switch (*last) {
        case 's':
          unit = std::chrono::seconds(1);
          break;
        case 'm':
          unit = std::chrono::minutes(1);
          break;
        case 'h':
          unit = std::chrono::hours(1);
          break;
        case 'd':
          unit = std::chrono::days(1);
          break;
        case 'w':
          unit = std::chrono::weeks(1);
          break;
        default:
          break;
      }
      if (unit) return herald::now() - count * *unit;
    }
  }
  return usage(fmt::format(
      "{} '{}': expected an RFC 3339 time (2026-11-27T09:30:00Z), a date (2026-11-27) or a "
      "time ago (90s, 15m, 2h, 7d, 1w)",
      flag, text));
}

std::expected<std::optional<Timestamp>, Failure> optional_time(std::string_view flag,
                                                               const TextFlag& value) {
  if (!value.given()) return std::nullopt;
  auto parsed = parse_time(flag, value.value);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  return *parsed;
}

std::expected<std::optional<std::int64_t>, Failure> optional_integer(std::string_view flag,
                                                                     const TextFlag& value,
                                                                     std::string_view expected) {
  if (!value.given()) return std::nullopt;
  auto parsed = parse_integer(flag, value.value, expected);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  return *parsed;
}

std::expected<std::optional<std::int64_t>, Failure> optional_position(std::string_view flag,
                                                                      const TextFlag& value) {
  if (!value.given()) return std::nullopt;
  auto parsed = parse_position(flag, value.value);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  return *parsed;
}

std::optional<std::string> optional_text(const TextFlag& value) {
  if (!value.given()) return std::nullopt;
  return value.value;
}

// ---------------------------------------------------------------------------------------------
// Opening the store

std::string with_connect_timeout(const std::string& url) {
  if (url.find("connect_timeout=") != std::string::npos) return url;
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=10";
}

// The store creates a database it does not find; the commands only read and operate an existing
// one, so they look first, without writing a byte.
Outcome check_sqlite_exists(const std::string& path, const std::string& where) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) {
    return failed(fmt::format(
        "no herald database at {}: the file does not exist; create one with 'herald demo --db "
        "{}', or name another with --db PATH or --store URL",
        where, path));
  }
  if (fs::is_directory(status)) {
    return failed(fmt::format("{} is a directory, not a herald database file", where));
  }
  if (fs::file_size(path, ec) == 0 && !ec) {
    // After a crash the database may live in its write-ahead log alone; the store recovers it.
    const std::string wal = path + "-wal";
    if (!fs::exists(wal, ec) || fs::file_size(wal, ec) == 0) {
      return failed(fmt::format(
          "{} is an empty file, not a herald database; create one with 'herald demo --db {}'",
          where, path));
    }
    return {};
  }
  // A SQLite database without tables would be adopted by the store; here it is a mistake.
  sqlite3* db = nullptr;
  Outcome outcome;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &stmt, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int64(stmt, 0) == 0) {
      outcome = failed(fmt::format(
          "{} is an empty SQLite database, not a herald database; create one with 'herald demo "
          "--db {}'",
          where, path));
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  // Anything else (not SQLite, corrupt, another program's) is for the store to name.
  return outcome;
}

Outcome check_postgres_has_herald(const std::string& url, const std::string& where) {
  try {
    pqxx::connection connection(with_connect_timeout(url));
    pqxx::nontransaction tx(connection);
    const pqxx::row row =
        tx.exec1("SELECT to_regclass('herald_meta') IS NOT NULL, coalesce(current_schema(), '')");
    if (!row[0].as<bool>()) {
      const std::string schema = row[1].as<std::string>();
      return failed(fmt::format(
          "the PostgreSQL database at {} has no herald tables in schema '{}'; create them with "
          "'herald demo --store URL', or check the URL's database and search_path",
          where, schema.empty() ? "(none on the search_path)" : schema));
    }
  } catch (const std::exception&) {
    // Unreachable, refused, bad credentials: the store says it better, naming the server.
  }
  return {};
}

struct OpenStore {
  std::unique_ptr<EventStore> store;
  /// 'herald.db' or the URL without password, for messages.
  std::string where;
  std::string location;
};

std::expected<OpenStore, Failure> open_existing_store(const StoreFlags& flags) {
  auto location = resolve_store_location(flags, true, "herald.db");
  if (!location) return usage(location.error().message);
  OpenStore opened{.where = describe_location(*location), .location = *location};
  const Outcome present = is_postgres_url(*location)
                              ? check_postgres_has_herald(*location, opened.where)
                              : check_sqlite_exists(*location, opened.where);
  if (!present) return std::unexpected(present.error());
  auto store = open_store({.location = *location, .catalog = &domain::platform_catalog()});
  if (!store) return failed(store.error());
  opened.store = std::move(*store);
  return opened;
}

// ---------------------------------------------------------------------------------------------
// Output

/// An ostream's buffer that writes through to a C stream, so an export can go to standard output
/// (the command's `out`) without holding it in memory.
class FileStreamBuffer : public std::streambuf {
 public:
  explicit FileStreamBuffer(std::FILE* file) : file_(file) {}

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    return std::fputc(c, file_) == EOF ? traits_type::eof() : c;
  }
  std::streamsize xsputn(const char* text, std::streamsize count) override {
    return static_cast<std::streamsize>(
        std::fwrite(text, 1, static_cast<std::size_t>(count), file_));
  }
  int sync() override { return std::fflush(file_) == 0 ? 0 : -1; }

 private:
  std::FILE* file_;
};

/// "2026-11-27 09:30:00": a time in a table, to the second (UTC).
std::string table_time(Timestamp t) {
  std::string text = format_timestamp(t).substr(0, 19);
  text[10] = ' ';
  return text;
}

std::string or_dash(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : "-";
}

std::string entity_label(EventRef event) {
  const EntityEvent* entity = event.entity();
  if (entity == nullptr) return "-";
  std::string label(event.type().entity_type());
  if (entity->entity_id) label += " " + to_string(*entity->entity_id);
  return label;
}

std::string plural(std::int64_t count, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", count, count == 1 ? one : many);
}

boost::json::object stored_event_json(const StoredEvent& stored) {
  boost::json::object json;
  json["position"] = stored.position;
  json["recorded_at"] = format_timestamp(stored.recorded_at);
  json["event"] = stored.event.ref().to_json();
  return json;
}

// ---------------------------------------------------------------------------------------------
// Consumers

std::expected<bool, Failure> consumer_exists(EventStore& store, const std::string& name) {
  auto checkpoints = store.list_checkpoints();
  if (!checkpoints) return failed(checkpoints.error());
  return std::ranges::any_of(*checkpoints, [&](const ConsumerCheckpoint& checkpoint) {
    return checkpoint.name == name && !is_replay_mark(checkpoint.name);
  });
}

std::expected<std::string, Failure> consumer_names(EventStore& store) {
  auto checkpoints = store.list_checkpoints();
  if (!checkpoints) return failed(checkpoints.error());
  std::string names;
  for (const ConsumerCheckpoint& checkpoint : *checkpoints) {
    if (is_replay_mark(checkpoint.name)) continue;
    if (!names.empty()) names += ", ";
    names += checkpoint.name;
  }
  return names;
}

/// Fails unless a consumer named `name` has a checkpoint in the store.
Outcome require_consumer(OpenStore& opened, const std::string& name) {
  auto exists = consumer_exists(*opened.store, name);
  if (!exists) return std::unexpected(std::move(exists.error()));
  if (*exists) return {};
  auto names = consumer_names(*opened.store);
  if (!names) return std::unexpected(std::move(names.error()));
  return failed(fmt::format(
      "no consumer named '{}' has run on {} ({})", name, opened.where,
      names->empty() ? "no consumer has run on it yet" : "its consumers are " + *names));
}

// ---------------------------------------------------------------------------------------------
// The commands

struct EventsListArgs {
  StoreFlags store;
  std::vector<std::string> types;
  TextFlag organization, entity_type, entity_id, since, until, after, before, limit;
  bool newest_first = false;
  bool json = false;
};

Outcome events_list(const EventsListArgs& args, std::FILE* out) {
  const EventCatalog& catalog = domain::platform_catalog();
  EventFilter filter;
  for (const std::string& type : args.types) {
    if (!catalog.contains(type)) {
      return usage(fmt::format(
          "--type '{}': not an event type of the catalog; run 'herald catalog' for the list, "
          "e.g. UserCreatedEvent",
          type));
    }
    filter.types.push_back(type);
  }
  auto organization = optional_integer("--org", args.organization, "an organization id");
  if (!organization) return std::unexpected(organization.error());
  filter.organization_id = *organization;
  filter.entity_type = optional_text(args.entity_type);
  filter.entity_id = optional_text(args.entity_id);
  auto since = optional_time("--since", args.since);
  if (!since) return std::unexpected(since.error());
  auto until = optional_time("--until", args.until);
  if (!until) return std::unexpected(until.error());
  filter.since = *since;
  filter.until = *until;
  auto after = optional_position("--after", args.after);
  if (!after) return std::unexpected(after.error());
  auto before = optional_position("--before", args.before);
  if (!before) return std::unexpected(before.error());
  if (*before && !args.newest_first) {
    return usage(
        "--before pages newest first: add --newest-first, or page oldest first with "
        "--after");
  }
  std::size_t limit = 50;
  if (args.limit.given()) {
    auto parsed = parse_limit("--limit", args.limit.value, 100'000);
    if (!parsed) return std::unexpected(parsed.error());
    limit = *parsed;
  }

  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  EventStore& store = *opened->store;

  // Read in pages so that a large --limit does not ask the store for one huge result.
  constexpr std::size_t page_size = 1000;
  std::vector<StoredEvent> events;
  if (args.newest_first) {
    std::optional<std::int64_t> cursor = *before;
    while (events.size() < limit) {
      auto page = store.read_backward(cursor, std::min(page_size, limit - events.size()), filter);
      if (!page) return failed(page.error());
      bool reached_after = false;
      for (StoredEvent& stored : *page) {
        if (*after && stored.position <= **after) {
          reached_after = true;
          break;
        }
        events.push_back(std::move(stored));
      }
      if (reached_after || page->empty() || events.size() >= limit) break;
      cursor = events.back().position;
    }
  } else {
    std::int64_t cursor = after->value_or(0);
    while (events.size() < limit) {
      auto page = store.read_forward(cursor, std::min(page_size, limit - events.size()), filter);
      if (!page) return failed(page.error());
      if (page->empty()) break;
      cursor = page->back().position;
      for (StoredEvent& stored : *page) events.push_back(std::move(stored));
    }
  }

  if (args.json) {
    boost::json::array items;
    for (const StoredEvent& stored : events) items.push_back(stored_event_json(stored));
    boost::json::object document;
    document["events"] = std::move(items);
    fmt::print(out, "{}\n", boost::json::serialize(document));
    return {};
  }
  if (events.empty()) {
    fmt::print(out, "no events match (in {})\n", opened->where);
    return {};
  }
  Table table({{"POSITION", true},
               {"OCCURRED (UTC)"},
               {"TYPE"},
               {"ORG", true},
               {"ENTITY"},
               {"ACTOR", true},
               {"EVENT ID"}});
  for (const StoredEvent& stored : events) {
    const EventRef event = stored.event.ref();
    table.add({std::to_string(stored.position), table_time(event->timestamp),
               std::string(event.event_type()), or_dash(event->organization_id),
               entity_label(event), or_dash(event->user_id), event->event_id.to_string()});
  }
  table.print(out);
  auto total = store.count(filter);
  if (!total) return failed(total.error());
  std::string footer =
      fmt::format("\n{} of {} matching, {}", events.size(), plural(*total, "event", "events"),
                  args.newest_first ? "newest first" : "oldest first");
  if (events.size() == limit) {
    footer += fmt::format("; next page: {} {}", args.newest_first ? "--before" : "--after",
                          events.back().position);
  }
  fmt::print(out, "{}\n", footer);
  return {};
}

struct EventsGetArgs {
  StoreFlags store;
  std::string event_id;
  bool json = false;
};

Outcome events_get(const EventsGetArgs& args, std::FILE* out) {
  const std::optional<EventId> id = EventId::parse(args.event_id);
  if (!id) {
    return usage(fmt::format(
        "'{}' is not an event id: expected a UUID such as 0193c1a2-7f3e-7b4c-9d2e-1a2b3c4d5e6f "
        "(see 'herald events list')",
        args.event_id));
  }
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  auto stored = opened->store->get(*id);
  if (!stored) return failed(stored.error());
  if (!*stored) {
    return failed(fmt::format("no event with id {} in {}", id->to_string(), opened->where));
  }
  if (args.json) {
    fmt::print(out, "{}\n", boost::json::serialize(stored_event_json(**stored)));
    return {};
  }
  const boost::json::object wire = (*stored)->event.ref().to_json();
  std::size_t width = std::string_view("recorded_at").size();
  for (const auto& member : wire) width = std::max(width, member.key().size());
  fmt::print(out, "{:<{}}  {}\n", "position", width, (*stored)->position);
  fmt::print(out, "{:<{}}  {}\n", "recorded_at", width, format_timestamp((*stored)->recorded_at));
  for (const auto& member : wire) {
    const boost::json::value& value = member.value();
    fmt::print(out, "{:<{}}  {}\n", std::string_view(member.key()), width,
               value.is_string() ? std::string(value.get_string()) : boost::json::serialize(value));
  }
  return {};
}

/// The filters `herald audit list` and `herald audit export` share.
struct AuditFilterArgs {
  TextFlag organization, actor, action, entity_type, entity_id, since, until, before;
};

void add_audit_filters(CLI::App* command, AuditFilterArgs& filters) {
  add_text(command, "--org", filters.organization, "Only records of this organization", "ID");
  add_text(command, "--actor", filters.actor, "Only records of this actor (-1: the system)", "ID");
  add_text(command, "--action", filters.action,
           "Only this action (user_created), or a prefix ending in * (organization_member_*)",
           "ACTION");
  add_text(command, "--entity-type", filters.entity_type, "Only this entity type (Tournament)",
           "TYPE");
  add_text(command, "--entity-id", filters.entity_id, "Only this entity id (42, bold-rush-1234)",
           "ID");
  add_text(command, "--since", filters.since,
           "Occurred at or after TIME (RFC 3339, a date, or a time ago: 2h, 7d)", "TIME");
  add_text(command, "--until", filters.until, "Occurred before TIME", "TIME");
  add_text(command, "--before", filters.before,
           "Only records below this position (the last position of the previous page)", "POS");
}

std::expected<AuditQuery, Failure> audit_query(const AuditFilterArgs& args) {
  AuditQuery query;
  auto organization = optional_integer("--org", args.organization, "an organization id");
  if (!organization) return std::unexpected(organization.error());
  query.organization_id = *organization;
  auto actor = optional_integer("--actor", args.actor, "a user id (a whole number; -1 the system)");
  if (!actor) return std::unexpected(actor.error());
  query.actor = *actor;
  query.action = optional_text(args.action);
  if (query.action && (query.action->empty() || *query.action == "*")) {
    return usage(
        fmt::format("--action '{}': expected an action (user_created) or a prefix "
                    "ending in * (organization_member_*)",
                    *query.action));
  }
  query.entity_type = optional_text(args.entity_type);
  query.entity_id = optional_text(args.entity_id);
  auto since = optional_time("--since", args.since);
  if (!since) return std::unexpected(since.error());
  auto until = optional_time("--until", args.until);
  if (!until) return std::unexpected(until.error());
  query.since = *since;
  query.until = *until;
  auto before = optional_position("--before", args.before);
  if (!before) return std::unexpected(before.error());
  query.before_position = *before;
  return query;
}

struct AuditListArgs {
  StoreFlags store;
  AuditFilterArgs filters;
  TextFlag limit;
  bool json = false;
};

Outcome audit_list(const AuditListArgs& args, std::FILE* out) {
  auto query = audit_query(args.filters);
  if (!query) return std::unexpected(query.error());
  query->limit = 50;
  if (args.limit.given()) {
    auto limit = parse_limit("--limit", args.limit.value, 1000);
    if (!limit) return std::unexpected(limit.error());
    query->limit = *limit;
  }
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  auto page = opened->store->query_audit(*query);
  if (!page) return failed(page.error());
  const bool more = page->items.size() == query->limit &&
                    static_cast<std::int64_t>(page->items.size()) < page->total;
  if (args.json) {
    boost::json::array records;
    for (const AuditRecord& record : page->items) records.push_back(audit_record_to_json(record));
    boost::json::object document;
    document["total"] = page->total;
    document["records"] = std::move(records);
    document["next_before"] =
        more ? boost::json::value(page->items.back().position) : boost::json::value(nullptr);
    fmt::print(out, "{}\n", boost::json::serialize(document));
    return {};
  }
  if (page->items.empty()) {
    fmt::print(out, "no audit records match (in {})\n", opened->where);
    return {};
  }
  Table table({{"POSITION", true},
               {"OCCURRED (UTC)"},
               {"ACTION"},
               {"ACTOR", true},
               {"ORG", true},
               {"ENTITY"},
               {"DETAILS"}});
  for (const AuditRecord& record : page->items) {
    std::string entity = record.entity_type;
    if (record.entity_id) entity += " " + *record.entity_id;
    table.add({std::to_string(record.position), table_time(record.occurred_at), record.action,
               or_dash(record.actor), or_dash(record.organization_id), entity,
               shorten(canonical_json(record.details), 70)});
  }
  table.print(out);
  std::string footer = fmt::format("\n{} of {} matching, newest first", page->items.size(),
                                   plural(page->total, "audit record", "audit records"));
  if (more) footer += fmt::format("; next page: --before {}", page->items.back().position);
  fmt::print(out, "{}\n", footer);
  return {};
}

struct AuditVerifyArgs {
  StoreFlags store;
  TextFlag expect_head;
};

Outcome audit_verify(const AuditVerifyArgs& args, std::FILE* out) {
  AuditVerifyOptions options;
  if (args.expect_head.given()) {
    auto head = parse_audit_head(args.expect_head.value);
    if (!head) {
      std::string_view why = head.error().message;
      if (why.starts_with("field 'head': ")) why.remove_prefix(14);
      return usage(fmt::format("--expect-head '{}': {}", args.expect_head.value, why));
    }
    options.expected_head = *head;
  }
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  auto result = verify_audit_log(*opened->store, options);
  if (!result) return failed(result.error());
  if (!result->ok()) {
    const AuditFailure& failure = *result->failure;
    return failed(fmt::format("the audit log of {} is broken at position {} ({}): {}",
                              opened->where, failure.position, to_string(failure.fault),
                              failure.message));
  }
  std::string lag;
  if (auto status = consumer_status(*opened->store, std::string(audit_consumer_name));
      status && status->lag > 0) {
    lag = fmt::format("; {} not audited yet (the audit consumer's lag)",
                      plural(status->lag, "event is", "events are"));
  }
  if (result->records == 0) {
    fmt::print(out, "audit log intact: it holds no records yet{}\n", lag);
  } else {
    fmt::print(out, "audit log intact: {} verified, head {}{}\n",
               plural(result->records, "record", "records"), to_string(result->head), lag);
  }
  return {};
}

struct AuditHeadArgs {
  StoreFlags store;
};

Outcome audit_head(const AuditHeadArgs& args, std::FILE* out) {
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  auto head = opened->store->audit_head();
  if (!head) return failed(head.error());
  fmt::print(out, "{}\n", to_string(*head));
  return {};
}

struct AuditExportArgs {
  StoreFlags store;
  AuditFilterArgs filters;
  std::string format;
  TextFlag output;
};

Outcome audit_export(const AuditExportArgs& args, std::FILE* out) {
  AuditExportFormat format = AuditExportFormat::csv;
  if (args.format == "csv") {
    format = AuditExportFormat::csv;
  } else if (args.format == "jsonl") {
    format = AuditExportFormat::json_lines;
  } else {
    return usage(fmt::format("--format '{}': expected csv or jsonl", args.format));
  }
  auto query = audit_query(args.filters);
  if (!query) return std::unexpected(query.error());
  query->limit = 1000;  // the page size of the export
  if (args.output.given() && args.output.value.empty()) {
    return usage("--output: expected a file name");
  }
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());

  if (!args.output.given()) {
    FileStreamBuffer buffer(out);
    std::ostream stream(&buffer);
    auto written = export_audit_log(*opened->store, *query, format, stream);
    if (!written) return failed(written.error());
    return {};
  }
  const std::string& path = args.output.value;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) {
    return failed(fmt::format("cannot write the export to '{}': {}", path,
                              std::error_code(errno, std::generic_category()).message()));
  }
  auto written = export_audit_log(*opened->store, *query, format, file);
  file.close();
  if (!written || !file) {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);  // a partial export would pass for a whole one
    return failed(written ? fmt::format("writing the export to '{}' failed", path)
                          : fmt::format("{}; '{}' was removed", written.error().message, path));
  }
  fmt::print(out, "exported {} to {} ({})\n", plural(*written, "audit record", "audit records"),
             path, args.format);
  return {};
}

struct ConsumersArgs {
  StoreFlags store;
  bool json = false;
};

Outcome consumers(const ConsumersArgs& args, std::FILE* out) {
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  auto statuses = list_consumers(*opened->store);
  if (!statuses) return failed(statuses.error());
  if (args.json) {
    boost::json::array items;
    for (const ConsumerStatus& status : *statuses) {
      boost::json::object item;
      item["name"] = status.name;
      item["checkpoint"] = status.checkpoint;
      item["head"] = status.head;
      item["lag"] = status.lag;
      item["parked"] = status.parked;
      item["replay_until"] = status.replay_until;
      item["updated_at"] = format_timestamp(status.updated_at);
      items.push_back(std::move(item));
    }
    boost::json::object document;
    document["consumers"] = std::move(items);
    fmt::print(out, "{}\n", boost::json::serialize(document));
    return {};
  }
  if (statuses->empty()) {
    auto head = opened->store->head();
    if (!head) return failed(head.error());
    fmt::print(out, "no consumer has run on {} yet (its head is at position {})\n", opened->where,
               *head);
    return {};
  }
  Table table({{"NAME"},
               {"CHECKPOINT", true},
               {"HEAD", true},
               {"LAG", true},
               {"PARKED", true},
               {"REPLAYING"},
               {"UPDATED (UTC)"}});
  for (const ConsumerStatus& status : *statuses) {
    table.add({status.name, std::to_string(status.checkpoint), std::to_string(status.head),
               std::to_string(status.lag), std::to_string(status.parked),
               status.replay_until > 0 ? fmt::format("up to {}", status.replay_until) : "-",
               table_time(status.updated_at)});
  }
  table.print(out);
  return {};
}

struct ReplayArgs {
  StoreFlags store;
  std::string consumer;
  TextFlag from, since;
};

Outcome replay(const ReplayArgs& args, std::FILE* out) {
  if (args.from.given() == args.since.given()) {
    return usage("give either --from POSITION or --since TIME (where the replay starts)");
  }
  std::optional<std::int64_t> from;
  std::optional<Timestamp> since;
  if (args.from.given()) {
    auto position = parse_position("--from", args.from.value);
    if (!position) return std::unexpected(position.error());
    from = *position;
  } else {
    auto time = parse_time("--since", args.since.value);
    if (!time) return std::unexpected(time.error());
    since = *time;
  }
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  EventStore& store = *opened->store;
  if (auto known = require_consumer(*opened, args.consumer); !known) return known;
  auto head = store.head();
  if (!head) return failed(head.error());
  if (from && *from > *head) {
    return failed(
        fmt::format("--from {} is past the head of {} (position {}); replay from a "
                    "position from 0 to {}",
                    *from, opened->where, *head, *head));
  }
  if (since) {
    auto position = position_before_time(store, *since);
    if (!position) return failed(position.error());
    from = *position;
  }
  auto before = consumer_status(store, args.consumer);
  if (!before) return failed(before.error());
  if (auto reset = reset_consumer(store, args.consumer, *from); !reset)
    return failed(reset.error());
  auto after = consumer_status(store, args.consumer);
  if (!after) return failed(after.error());
  fmt::print(out,
             "consumer '{}' moved from position {} to {}: it delivers the {} after position {} "
             "the next time it runs",
             args.consumer, before->checkpoint, *from, plural(after->lag, "event", "events"),
             *from);
  if (after->replay_until > 0) {
    fmt::print(out, ", flagged as replays up to position {}", after->replay_until);
  }
  fmt::print(out, "\n");
  return {};
}

struct ParkedListArgs {
  StoreFlags store;
  TextFlag consumer;
  bool json = false;
};

Outcome parked_list(const ParkedListArgs& args, std::FILE* out) {
  if (args.consumer.given() && args.consumer.value.empty()) {
    return usage("--consumer: expected a consumer name (see 'herald consumers')");
  }
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  const std::optional<std::string> consumer = optional_text(args.consumer);
  if (consumer) {
    if (auto known = require_consumer(*opened, *consumer); !known) return known;
  }
  auto parked = opened->store->list_parked(consumer);
  if (!parked) return failed(parked.error());
  if (args.json) {
    boost::json::array items;
    for (const ParkedEvent& entry : *parked) {
      boost::json::object item;
      item["consumer"] = entry.consumer;
      item["position"] = entry.position;
      item["event_id"] = entry.event_id.to_string();
      item["event_type"] = entry.event_type;
      item["attempts"] = entry.attempts;
      item["error"] = entry.error;
      item["parked_at"] = format_timestamp(entry.parked_at);
      items.push_back(std::move(item));
    }
    boost::json::object document;
    document["parked"] = std::move(items);
    fmt::print(out, "{}\n", boost::json::serialize(document));
    return {};
  }
  if (parked->empty()) {
    fmt::print(out, "no parked events{}\n",
               consumer ? fmt::format(" for consumer '{}'", *consumer) : std::string());
    return {};
  }
  Table table({{"CONSUMER"},
               {"POSITION", true},
               {"EVENT ID"},
               {"TYPE"},
               {"ATTEMPTS", true},
               {"PARKED (UTC)"},
               {"ERROR"}});
  for (const ParkedEvent& entry : *parked) {
    table.add({entry.consumer, std::to_string(entry.position), entry.event_id.to_string(),
               entry.event_type, std::to_string(entry.attempts), table_time(entry.parked_at),
               entry.error});
  }
  table.print(out);
  fmt::print(out,
             "\nretry one with 'herald parked retry CONSUMER POSITION', or drop it with 'herald "
             "parked discard CONSUMER POSITION'\n");
  return {};
}

struct ParkedEntryArgs {
  StoreFlags store;
  std::string consumer;
  std::string position;
};

/// The parked entry the arguments name, with the store it is in.
struct ParkedEntry {
  OpenStore opened;
  ParkedEvent entry;
};

std::expected<ParkedEntry, Failure> find_parked(const ParkedEntryArgs& args) {
  auto position = parse_position("POSITION", args.position);
  if (!position) return std::unexpected(position.error());
  auto opened = open_existing_store(args.store);
  if (!opened) return std::unexpected(opened.error());
  if (auto known = require_consumer(*opened, args.consumer); !known) {
    return std::unexpected(known.error());
  }
  auto parked = opened->store->list_parked(args.consumer);
  if (!parked) return failed(parked.error());
  const auto found = std::ranges::find(*parked, *position, &ParkedEvent::position);
  if (found == parked->end()) {
    return failed(fmt::format(
        "nothing is parked for consumer '{}' at position {} (see 'herald parked list --consumer "
        "{}')",
        args.consumer, *position, args.consumer));
  }
  return ParkedEntry{.opened = std::move(*opened), .entry = *found};
}

Outcome parked_retry(const ParkedEntryArgs& args, std::FILE* out) {
  auto found = find_parked(args);
  if (!found) return std::unexpected(found.error());
  EventStore& store = *found->opened.store;
  const ParkedEvent& entry = found->entry;
  std::unique_ptr<DurableConsumer> consumer = make_platform_consumer(store, args.consumer);
  if (consumer == nullptr) {
    std::string ours;
    for (std::string_view name : platform_consumer_names()) {
      if (!ours.empty()) ours += ", ";
      ours += name;
    }
    return failed(fmt::format(
        "consumer '{}' runs in another program, so herald cannot run its handler (it runs {}); "
        "retry it there with DurableConsumer::retry_parked, or drop it with 'herald parked "
        "discard {} {}'",
        args.consumer, ours, args.consumer, entry.position));
  }
  if (auto retried = consumer->retry_parked(entry.position); !retried) {
    return failed(
        fmt::format("{} at position {} failed again for consumer '{}' (attempt {}): {}; "
                    "it stays parked",
                    entry.event_type, entry.position, args.consumer, entry.attempts + 1,
                    retried.error().message));
  }
  fmt::print(out, "consumer '{}' handled {} {} at position {}; it is no longer parked\n",
             args.consumer, entry.event_type, entry.event_id.to_string(), entry.position);
  return {};
}

Outcome parked_discard(const ParkedEntryArgs& args, std::FILE* out) {
  auto found = find_parked(args);
  if (!found) return std::unexpected(found.error());
  const ParkedEvent& entry = found->entry;
  if (auto dropped = found->opened.store->unpark(args.consumer, entry.position); !dropped) {
    return failed(dropped.error());
  }
  fmt::print(out,
             "discarded {} {} at position {} for consumer '{}': it will not be delivered to it "
             "again (the event stays in the store)\n",
             entry.event_type, entry.event_id.to_string(), entry.position, args.consumer);
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Flags and locations

void add_store_flags(CLI::App& command, StoreFlags& flags, std::string_view db_help) {
  flags.db_option = command.add_option("--db", flags.db, std::string(db_help))->type_name("PATH");
  flags.store_option =
      command
          .add_option("--store", flags.store,
                      "PostgreSQL store, e.g. postgresql://herald@localhost:5432/events "
                      "(env HERALD_STORE)")
          ->type_name("URL");
}

std::expected<std::string, Error> resolve_store_location(const StoreFlags& flags,
                                                         bool use_environment,
                                                         std::string_view fallback) {
  const auto invalid = [](std::string message) {
    return std::unexpected(Error{ErrorCode::invalid_argument, std::move(message), {}});
  };
  const bool db_given = flags.db_option != nullptr && flags.db_option->count() > 0;
  const bool store_given = flags.store_option != nullptr && flags.store_option->count() > 0;
  if (db_given && store_given) {
    return invalid("give either --db PATH (a SQLite file) or --store URL (PostgreSQL), not both");
  }
  std::string db;
  std::string store;
  std::string_view db_name = "--db";
  std::string_view store_name = "--store";
  if (db_given) {
    db = flags.db;
    if (db.empty()) return invalid("--db: expected the path of a SQLite file, got ''");
  } else if (store_given) {
    store = flags.store;
  } else if (use_environment) {
    const char* env_db = std::getenv("HERALD_DB");
    const char* env_store = std::getenv("HERALD_STORE");
    const bool has_db = env_db != nullptr && *env_db != '\0';
    const bool has_store = env_store != nullptr && *env_store != '\0';
    if (has_db && has_store) {
      return invalid(
          "HERALD_DB and HERALD_STORE are both set; unset one, or choose with --db or --store");
    }
    db_name = "HERALD_DB";
    store_name = "HERALD_STORE";
    if (has_db) db = env_db;
    if (has_store) store = env_store;
  }
  if (!db.empty()) {
    if (is_postgres_url(db)) {
      return invalid(
          fmt::format("{} '{}': a PostgreSQL URL goes to --store (or HERALD_STORE); "
                      "{} takes a SQLite file path",
                      db_name, describe_location(db), db_name));
    }
    return db;
  }
  if (store_given || !store.empty()) {
    if (!is_postgres_url(store)) {
      return invalid(
          fmt::format("{} '{}': expected a postgresql:// URL; for a SQLite file use --db PATH",
                      store_name, store));
    }
    return store;
  }
  return std::string(fallback);
}

std::string describe_location(std::string_view location) {
  if (!is_postgres_url(location)) return fmt::format("'{}'", location);
  std::string url(location.substr(0, location.find('?')));
  // postgresql://user:password@host/db -> postgresql://user@host/db
  const std::size_t scheme_end = url.find("://") + 3;
  const std::size_t at = url.find('@', scheme_end);
  const std::size_t slash = url.find('/', scheme_end);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    const std::size_t colon = url.find(':', scheme_end);
    if (colon != std::string::npos && colon < at) url.erase(colon, at - colon);
  }
  return url;
}

std::expected<std::unique_ptr<EventStore>, Error> open_existing_store_of(const StoreFlags& flags) {
  auto opened = open_existing_store(flags);
  if (!opened) {
    const ErrorCode code =
        opened.error().status == exit_usage ? ErrorCode::invalid_argument : ErrorCode::io;
    return std::unexpected(Error{code, std::move(opened.error().message), {}});
  }
  return std::move(opened->store);
}

// ---------------------------------------------------------------------------------------------
// Registration

struct StoreCommands::Commands {
  struct Leaf {
    CLI::App* app = nullptr;
    std::string name;
    std::function<Outcome(std::FILE*)> run;
  };
  std::vector<Leaf> leaves;

  EventsListArgs events_list;
  EventsGetArgs events_get;
  AuditListArgs audit_list;
  AuditVerifyArgs audit_verify;
  AuditHeadArgs audit_head;
  AuditExportArgs audit_export;
  ConsumersArgs consumers;
  ReplayArgs replay;
  ParkedListArgs parked_list;
  ParkedEntryArgs parked_retry;
  ParkedEntryArgs parked_discard;
};

namespace {

constexpr std::string_view db_help = "SQLite store (env HERALD_DB; default ./herald.db)";

}  // namespace

StoreCommands::StoreCommands(CLI::App& app) : commands_(std::make_unique<Commands>()) {
  Commands& c = *commands_;
  auto leaf = [&](CLI::App* parent, const std::string& name, const std::string& description,
                  StoreFlags& flags, std::function<Outcome(std::FILE*)> run) {
    CLI::App* command = parent->add_subcommand(name, description);
    add_store_flags(*command, flags, db_help);
    std::string full = "herald";
    for (const CLI::App* at = command; at->get_parent() != nullptr; at = at->get_parent()) {
      full.insert(6, " " + at->get_name());
    }
    c.leaves.push_back({command, full, std::move(run)});
    return command;
  };

  CLI::App* events = app.add_subcommand("events", "Read the event store: list events, get one");
  events->require_subcommand(1);

  CLI::App* list =
      leaf(events, "list", "List stored events, oldest first, with filters", c.events_list.store,
           [&c](std::FILE* out) { return herald::server::events_list(c.events_list, out); });
  list->add_option("--type", c.events_list.types, "Only this event type (repeat for several)")
      ->type_name("TYPE");
  add_text(list, "--org", c.events_list.organization, "Only events of this organization", "ID");
  add_text(list, "--entity-type", c.events_list.entity_type, "Only this entity type (User)",
           "TYPE");
  add_text(list, "--entity-id", c.events_list.entity_id, "Only this entity id (42, bold-rush-1234)",
           "ID");
  add_text(list, "--since", c.events_list.since,
           "Occurred at or after TIME (RFC 3339, a date, or a time ago: 2h, 7d)", "TIME");
  add_text(list, "--until", c.events_list.until, "Occurred before TIME", "TIME");
  add_text(list, "--after", c.events_list.after, "Only events after this position", "POS");
  add_text(list, "--before", c.events_list.before,
           "With --newest-first: only events below this position (the next page)", "POS");
  add_text(list, "--limit", c.events_list.limit, "At most N events (default 50)", "N");
  list->add_flag("--newest-first", c.events_list.newest_first, "Newest first");
  list->add_flag("--json", c.events_list.json, "One JSON document instead of a table");
  list->footer("Example: herald events list --db herald.db --type UserCreatedEvent --since 1d");

  CLI::App* get =
      leaf(events, "get", "Show one stored event by its id", c.events_get.store,
           [&c](std::FILE* out) { return herald::server::events_get(c.events_get, out); });
  get->add_option("EVENT_ID", c.events_get.event_id, "The event's id (a UUID)")->required();
  get->add_flag("--json", c.events_get.json, "One JSON document instead of a listing");

  CLI::App* audit =
      app.add_subcommand("audit", "The tamper-evident audit log: list, verify, head, export");
  audit->require_subcommand(1);

  CLI::App* audit_list_command =
      leaf(audit, "list", "List audit records, newest first", c.audit_list.store,
           [&c](std::FILE* out) { return herald::server::audit_list(c.audit_list, out); });
  add_audit_filters(audit_list_command, c.audit_list.filters);
  add_text(audit_list_command, "--limit", c.audit_list.limit,
           "At most N records, 1 to 1000 (default 50)", "N");
  audit_list_command->add_flag("--json", c.audit_list.json, "One JSON document instead of a table");
  audit_list_command->footer(
      "Example: herald audit list --action 'organization_member_*' --org 42");

  CLI::App* verify =
      leaf(audit, "verify", "Recompute the hash chain; exit 1 naming the first record that fails",
           c.audit_verify.store,
           [&c](std::FILE* out) { return herald::server::audit_verify(c.audit_verify, out); });
  add_text(verify, "--expect-head", c.audit_verify.expect_head,
           "A head exported earlier with 'herald audit head': its record must be unchanged",
           "POS:HASH");

  leaf(audit, "head", "Print the chain head as POSITION:HASH, to keep a copy elsewhere",
       c.audit_head.store,
       [&c](std::FILE* out) { return herald::server::audit_head(c.audit_head, out); });

  CLI::App* export_command =
      leaf(audit, "export", "Write audit records as CSV or JSON lines", c.audit_export.store,
           [&c](std::FILE* out) { return herald::server::audit_export(c.audit_export, out); });
  export_command->add_option("--format", c.audit_export.format, "csv or jsonl")
      ->type_name("FORMAT")
      ->required();
  add_audit_filters(export_command, c.audit_export.filters);
  add_text(export_command, "--output", c.audit_export.output,
           "Write to FILE instead of standard output", "FILE");

  CLI::App* consumers_command =
      leaf(&app, "consumers", "List durable consumers: checkpoint, lag, parked events",
           c.consumers.store,
           [&c](std::FILE* out) { return herald::server::consumers(c.consumers, out); });
  consumers_command->add_flag("--json", c.consumers.json, "One JSON document instead of a table");

  CLI::App* replay_command =
      leaf(&app, "replay", "Make a consumer deliver events again from a position or a time",
           c.replay.store, [&c](std::FILE* out) { return herald::server::replay(c.replay, out); });
  replay_command->add_option("CONSUMER", c.replay.consumer, "The consumer's name")->required();
  add_text(replay_command, "--from", c.replay.from, "Deliver again every event after POSITION",
           "POSITION");
  add_text(replay_command, "--since", c.replay.since,
           "Deliver again every event that occurred at or after TIME", "TIME");
  replay_command->footer("Example: herald replay audit --from 0");

  CLI::App* parked =
      app.add_subcommand("parked", "Events a consumer gave up on: list them, retry or discard one");
  parked->require_subcommand(1);
  CLI::App* parked_list_command =
      leaf(parked, "list", "List parked events", c.parked_list.store,
           [&c](std::FILE* out) { return herald::server::parked_list(c.parked_list, out); });
  add_text(parked_list_command, "--consumer", c.parked_list.consumer, "Only this consumer's",
           "NAME");
  parked_list_command->add_flag("--json", c.parked_list.json,
                                "One JSON document instead of a table");
  for (auto [name, description, args, run] :
       {std::tuple{"retry", "Run the consumer's handler again for a parked event", &c.parked_retry,
                   &parked_retry},
        std::tuple{"discard", "Drop a parked event without handling it", &c.parked_discard,
                   &parked_discard}}) {
    CLI::App* command = leaf(parked, name, description, args->store,
                             [args, run](std::FILE* out) { return run(*args, out); });
    command->add_option("CONSUMER", args->consumer, "The consumer's name")->required();
    command->add_option("POSITION", args->position, "The parked event's position")->required();
  }
}

StoreCommands::~StoreCommands() = default;

bool StoreCommands::parsed() const {
  return std::ranges::any_of(commands_->leaves,
                             [](const Commands::Leaf& leaf) { return leaf.app->parsed(); });
}

int StoreCommands::run(std::FILE* out) {
  for (const Commands::Leaf& leaf : commands_->leaves) {
    if (!leaf.app->parsed()) continue;
    const Outcome outcome = leaf.run(out);
    if (outcome) return 0;
    std::string message = outcome.error().message;
    if (outcome.error().status == exit_usage) {
      message += fmt::format(" (run '{} --help' for usage)", leaf.name);
    }
    std::fflush(out);
    fmt::print(stderr, "{}: {}\n", leaf.name, message);
    return outcome.error().status;
  }
  return 0;
}

}  // namespace herald::server
