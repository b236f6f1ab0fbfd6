#include "notify/sql_notification_store.hpp"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "notify/notification_store_checks.hpp"

namespace herald::notify::detail {
namespace {

using Row = std::vector<std::optional<std::string>>;

// Most ids one mark_inbox call names.
constexpr std::size_t max_marked_ids = 1000;

// Rows per multi-row INSERT: 9 or 10 parameters each stays far below SQLite's 32766 and
// PostgreSQL's 65535 parameters per statement.
constexpr std::size_t rows_per_insert = 100;

// Builds a statement's parameters in order; each call returns the placeholder to write.
class Query {
 public:
  explicit Query(const SqlBackend& backend) : backend_(backend) {}

  std::string integer(std::int64_t value) {
    return add(SqlValue{.type = SqlType::integer, .integer = value});
  }
  std::string text(std::string_view value) {
    return add(SqlValue{.type = SqlType::text, .text = std::string(value)});
  }
  std::string timestamp(Timestamp value) {
    return add(SqlValue{.type = SqlType::timestamp, .integer = value.time_since_epoch().count()});
  }
  std::string maybe_integer(const std::optional<std::int64_t>& value) {
    return value ? integer(*value) : add(SqlValue{.type = SqlType::integer, .null = true});
  }
  std::string maybe_text(const std::optional<std::string>& value) {
    return value ? text(*value) : add(SqlValue{.type = SqlType::text, .null = true});
  }
  /// "(p1, p2, …)" for `ids`, which must not be empty.
  std::string integers(std::span<const std::int64_t> ids) {
    std::string list = "(";
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) list += ", ";
      list += integer(ids[i]);
    }
    return list + ")";
  }

  SqlResult run(SqlConnection& connection, const std::string& sql) const {
    return connection.exec(sql, values_);
  }

 private:
  std::string add(SqlValue value) {
    values_.push_back(std::move(value));
    return backend_.placeholder(values_.size(), values_.back().type);
  }

  const SqlBackend& backend_;
  std::vector<SqlValue> values_;
};

[[noreturn]] void malformed_cell(std::size_t column, std::string_view what) {
  throw SqlFailure{Error{ErrorCode::internal,
                         "notification store: column " + std::to_string(column) +
                             " of a stored row is " + std::string(what),
                         {}}};
}

std::optional<std::int64_t> opt_int_at(const Row& row, std::size_t i) {
  if (i >= row.size()) malformed_cell(i, "missing");
  if (!row[i]) return std::nullopt;
  const std::string& text = *row[i];
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    malformed_cell(i, "not an integer: '" + text.substr(0, 40) + "'");
  }
  return value;
}

std::int64_t int_at(const Row& row, std::size_t i) {
  auto value = opt_int_at(row, i);
  if (!value) malformed_cell(i, "NULL where a number was expected");
  return *value;
}

std::optional<std::string> opt_text_at(const Row& row, std::size_t i) {
  if (i >= row.size()) malformed_cell(i, "missing");
  return row[i];
}

std::string text_at(const Row& row, std::size_t i) { return opt_text_at(row, i).value_or(""); }

Timestamp ts_at(const Row& row, std::size_t i) {
  return Timestamp{std::chrono::microseconds{int_at(row, i)}};
}

std::optional<Timestamp> opt_ts_at(const Row& row, std::size_t i) {
  auto value = opt_int_at(row, i);
  if (!value) return std::nullopt;
  return Timestamp{std::chrono::microseconds{*value}};
}

EventId event_id_at(const Row& row, std::size_t i) {
  auto id = EventId::parse(text_at(row, i));
  if (!id) malformed_cell(i, "not an event id");
  return *id;
}

Channel channel_at(const Row& row, std::size_t i) {
  auto channel = parse_channel(text_at(row, i));
  if (!channel) malformed_cell(i, "not a channel name");
  return *channel;
}

DeliveryStatus status_at(const Row& row, std::size_t i) {
  auto status = parse_delivery_status(text_at(row, i));
  if (!status) malformed_cell(i, "not a delivery status");
  return *status;
}

std::string join_lines(const std::vector<std::string>& values) {
  std::string joined;
  for (const auto& value : values) {
    if (!joined.empty()) joined += '\n';
    joined += value;
  }
  return joined;
}

std::vector<std::string> split_lines(const std::string& joined) {
  std::vector<std::string> values;
  std::size_t start = 0;
  while (start < joined.size()) {
    const auto end = joined.find('\n', start);
    values.push_back(joined.substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return values;
}

std::int64_t sql_limit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, static_cast<std::size_t>(std::numeric_limits<int>::max())));
}

std::optional<std::int64_t> endpoint_of(std::string_view recipient) {
  constexpr std::string_view prefix = "endpoint:";
  if (!recipient.starts_with(prefix)) return std::nullopt;
  recipient.remove_prefix(prefix.size());
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(recipient.data(), recipient.data() + recipient.size(), id);
  if (ec != std::errc{} || end != recipient.data() + recipient.size()) return std::nullopt;
  return id;
}

std::string_view status_name(DeliveryStatus status) { return to_string(status); }

class SqlNotificationStore final : public NotificationStore {
 public:
  explicit SqlNotificationStore(std::unique_ptr<SqlBackend> backend)
      : backend_(std::move(backend)) {
    const SqlBackend& b = *backend_;
    delivery_columns_ =
        "id, event_id, position, channel, recipient, user_id, organization_id, kind, payload, "
        "status, attempts, " +
        b.micros("next_attempt_at") + ", claimed_by, last_error, last_status_code, " +
        b.micros("created_at") + ", " + b.micros("updated_at");
    inbox_columns_ = "id, user_id, kind, event_id, organization_id, title, body, link, " +
                     b.micros("created_at") + ", " + b.micros("seen_at") + ", " +
                     b.micros("read_at") + ", " + b.micros("archived_at");
    endpoint_columns_ =
        "id, organization_id, url, event_types, active, disabled_reason, consecutive_failures, " +
        b.micros("created_at");
  }

  ~SqlNotificationStore() override {
    // The backend's listener calls wake(): stop it before the members it touches go.
    backend_.reset();
  }

  std::expected<void, Error> migrate() {
    return backend_->write(
        "open the notification tables",
        [&](SqlConnection& c) -> std::expected<void, Error> {
          backend_->lock_migration(c);
          if (!table_exists(c, "herald_consumer_checkpoints")) {
            return std::unexpected(Error{
                ErrorCode::invalid_argument,
                backend_->where() +
                    " holds no herald event store (no table herald_consumer_checkpoints): open "
                    "the event store on it first, then the notification tables",
                "location"});
          }
          int version = 0;
          if (table_exists(c, "notify_meta")) {
            Query q(*backend_);
            auto rows =
                q.run(c, "SELECT value FROM notify_meta WHERE key = " + q.text("schema_version"));
            if (!rows.rows.empty()) version = static_cast<int>(int_at(rows.rows[0], 0));
          }
          if (version > notify_schema_version) {
            return std::unexpected(
                Error{ErrorCode::conflict,
                      backend_->where() + " holds notification tables of schema version " +
                          std::to_string(version) + "; this herald knows up to " +
                          std::to_string(notify_schema_version) +
                          ": run a newer herald (nothing was changed)",
                      "location"});
          }
          if (version == notify_schema_version) return {};
          const auto steps = backend_->migrations();
          for (int step = version; step < notify_schema_version; ++step) {
            c.exec_script(std::string(steps[static_cast<std::size_t>(step)]));
          }
          Query q(*backend_);
          q.run(c, "INSERT INTO notify_meta (key, value) VALUES (" + q.text("schema_version") +
                       ", " + q.text(std::to_string(notify_schema_version)) +
                       ") ON CONFLICT (key) DO UPDATE SET value = excluded.value");
          return {};
        },
        Durability::full);
  }

  void start_listening() {
    backend_->listen_for_due([this] { wake(); });
  }

  // --- Directory ---

  std::expected<std::optional<UserProfile>, Error> user(std::int64_t user_id) override {
    return in_read<std::optional<UserProfile>>(
        "read user " + std::to_string(user_id),
        [&](SqlConnection& c) -> std::expected<std::optional<UserProfile>, Error> {
          return load_user(c, user_id);
        });
  }

  std::expected<std::vector<std::int64_t>, Error> members(std::int64_t organization_id) override {
    return in_read<std::vector<std::int64_t>>(
        "read the members of organization " + std::to_string(organization_id),
        [&](SqlConnection& c) -> std::expected<std::vector<std::int64_t>, Error> {
          Query q(*backend_);
          auto result = q.run(c, "SELECT user_id FROM notify_members WHERE organization_id = " +
                                     q.integer(organization_id) + " ORDER BY user_id");
          std::vector<std::int64_t> ids;
          for (const auto& row : result.rows) ids.push_back(int_at(row, 0));
          return ids;
        });
  }

  std::expected<std::vector<std::int64_t>, Error> group(const std::string& name) override {
    if (auto checked = check_text("group", name, max_name_bytes, false); !checked) {
      return std::unexpected(checked.error());
    }
    return in_read<std::vector<std::int64_t>>(
        "read group '" + name + "'",
        [&](SqlConnection& c) -> std::expected<std::vector<std::int64_t>, Error> {
          Query q(*backend_);
          auto result = q.run(c, "SELECT user_id FROM notify_groups WHERE name = " + q.text(name) +
                                     " ORDER BY seq");
          std::vector<std::int64_t> ids;
          for (const auto& row : result.rows) ids.push_back(int_at(row, 0));
          return ids;
        });
  }

  std::expected<UserPreferences, Error> preferences(std::int64_t user_id) override {
    return in_read<UserPreferences>(
        "read the preferences of user " + std::to_string(user_id),
        [&](SqlConnection& c) -> std::expected<UserPreferences, Error> {
          UserPreferences preferences{.user_id = user_id};
          Query q(*backend_);
          auto rules = q.run(c,
                             "SELECT kind, channel, organization_id, enabled FROM "
                             "notify_preference_rules WHERE user_id = " +
                                 q.integer(user_id) + " ORDER BY seq");
          for (const auto& row : rules.rows) {
            preferences.rules.push_back(PreferenceRule{.user_id = user_id,
                                                       .kind = text_at(row, 0),
                                                       .channel = channel_at(row, 1),
                                                       .organization_id = opt_int_at(row, 2),
                                                       .enabled = int_at(row, 3) != 0});
          }
          Query m(*backend_);
          auto mutes =
              m.run(c, "SELECT channel FROM notify_mutes WHERE user_id = " + m.integer(user_id) +
                           " ORDER BY channel");
          for (const auto& row : mutes.rows) preferences.muted.push_back(channel_at(row, 0));
          return preferences;
        });
  }

  std::expected<std::vector<WebhookEndpoint>, Error> endpoints(
      std::int64_t organization_id) override {
    return in_read<std::vector<WebhookEndpoint>>(
        "read the endpoints of organization " + std::to_string(organization_id),
        [&](SqlConnection& c) -> std::expected<std::vector<WebhookEndpoint>, Error> {
          Query q(*backend_);
          return load_endpoints(
              c, "organization_id = " + q.integer(organization_id) + " AND active = 1", q);
        });
  }

  std::expected<std::optional<AnnouncementChannel>, Error> announcement_channel(
      std::int64_t organization_id) override {
    return in_read<std::optional<AnnouncementChannel>>(
        "read the announcement channel of organization " + std::to_string(organization_id),
        [&](SqlConnection& c) -> std::expected<std::optional<AnnouncementChannel>, Error> {
          Query q(*backend_);
          auto result = q.run(c,
                              "SELECT webhook_url FROM notify_announcement_channels WHERE "
                              "organization_id = " +
                                  q.integer(organization_id));
          if (result.rows.empty()) return std::optional<AnnouncementChannel>{};
          return std::optional<AnnouncementChannel>{AnnouncementChannel{
              .organization_id = organization_id, .webhook_url = text_at(result.rows[0], 0)}};
        });
  }

  // --- routing ---

  std::expected<std::size_t, Error> apply_routing(std::span<const RoutedEvent> events,
                                                  const std::string& consumer) override {
    if (auto checked = check_text("consumer", consumer, max_name_bytes, false); !checked) {
      return std::unexpected(checked.error());
    }
    if (auto checked = check_routed_events(events); !checked) {
      return std::unexpected(checked.error());
    }
    if (events.empty()) return 0;
    bool any_delivery = false;
    auto created = in_write<std::size_t>(
        "apply routing for consumer '" + consumer + "'",
        [&](SqlConnection& c) -> std::expected<std::size_t, Error> {
          std::size_t count = 0;
          const Timestamp now = herald::now();
          // Directory changes in order; inbox items and deliveries depend on none of them, so
          // they go in multi-row statements (one round trip per chunk on PostgreSQL).
          std::vector<const NewInboxItem*> inbox;
          std::vector<const NewDelivery*> deliveries;
          for (const RoutedEvent& event : events) {
            for (const DirectoryChange& change : event.changes) apply_change(c, change);
            for (const NewInboxItem& item : event.inbox) inbox.push_back(&item);
            for (const NewDelivery& delivery : event.deliveries) deliveries.push_back(&delivery);
          }
          for (std::size_t i = 0; i < inbox.size(); i += rows_per_insert) {
            count += insert_inbox(
                c, std::span(inbox).subspan(i, std::min(rows_per_insert, inbox.size() - i)));
          }
          for (std::size_t i = 0; i < deliveries.size(); i += rows_per_insert) {
            const std::size_t added = insert_deliveries(
                c,
                std::span(deliveries).subspan(i, std::min(rows_per_insert, deliveries.size() - i)),
                now);
            count += added;
            any_delivery = any_delivery || added > 0;
          }
          Query q(*backend_);
          q.run(c, "INSERT INTO herald_consumer_checkpoints (name, position, updated_at) VALUES (" +
                       q.text(consumer) + ", " + q.integer(events.back().position) + ", " +
                       q.timestamp(now) +
                       ") ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                       "updated_at = excluded.updated_at");
          if (any_delivery) backend_->announce_due(c);
          return count;
        });
    if (created && any_delivery) wake();
    return created;
  }

  // --- delivery queue ---

  std::expected<std::vector<DeliveryRecord>, Error> claim_due(const std::string& worker,
                                                              Timestamp now,
                                                              std::chrono::seconds lease,
                                                              std::size_t limit) override {
    if (auto checked = check_text("worker", worker, max_name_bytes, false); !checked) {
      return std::unexpected(checked.error());
    }
    if (auto checked = check_limit("limit", limit); !checked) {
      return std::unexpected(checked.error());
    }
    if (lease.count() <= 0 || lease > std::chrono::hours(24 * 365)) {
      return std::unexpected(Error::for_field(
          ErrorCode::invalid_argument, "lease",
          "expected 1 second to a year, got " + std::to_string(lease.count()) + " s"));
    }
    if (auto checked = check_timestamp("now", now); !checked) {
      return std::unexpected(checked.error());
    }
    if (auto checked = check_timestamp("lease", now + lease); !checked) {
      return std::unexpected(checked.error());
    }
    remember_generation();
    return in_write<std::vector<DeliveryRecord>>(
        "claim due deliveries for worker '" + worker + "'",
        [&](SqlConnection& c) -> std::expected<std::vector<DeliveryRecord>, Error> {
          Query q(*backend_);
          auto due = q.run(c,
                           "SELECT id FROM notify_deliveries WHERE status IN ('pending', "
                           "'retrying', 'sending') AND next_attempt_at <= " +
                               q.timestamp(now) + " ORDER BY next_attempt_at, id LIMIT " +
                               q.integer(sql_limit(limit)) +
                               std::string(backend_->lock_rows(/*skip_locked=*/true)));
          std::vector<std::int64_t> ids;
          for (const auto& row : due.rows) ids.push_back(int_at(row, 0));
          if (ids.empty()) return std::vector<DeliveryRecord>{};
          Query u(*backend_);
          auto claimed = u.run(
              c, "UPDATE notify_deliveries SET status = 'sending', claimed_by = " + u.text(worker) +
                     ", next_attempt_at = " + u.timestamp(now + lease) +
                     ", attempts = attempts + 1, updated_at = " + u.timestamp(now) +
                     " WHERE id IN " + u.integers(ids) + " RETURNING " + delivery_columns_);
          std::map<std::int64_t, DeliveryRecord> by_id;
          for (const auto& row : claimed.rows) {
            auto record = delivery_from(row);
            by_id.emplace(record.id, std::move(record));
          }
          std::vector<DeliveryRecord> records;
          for (std::int64_t id : ids) {
            if (auto found = by_id.find(id); found != by_id.end()) {
              records.push_back(std::move(found->second));
            }
          }
          return records;
        },
        Durability::relaxed);
  }

  std::expected<void, Error> finish_attempt(std::int64_t delivery_id, const std::string& worker,
                                            const AttemptOutcome& outcome) override {
    if (auto checked = check_text("worker", worker, max_name_bytes, false); !checked) {
      return std::unexpected(checked.error());
    }
    if (outcome.status == DeliveryStatus::pending || outcome.status == DeliveryStatus::sending) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "outcome.status",
                                              "expected sent, retrying, failed or dead, got " +
                                                  std::string(to_string(outcome.status))));
    }
    if (outcome.duration_us < 0) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, "outcome.duration_us",
                           "expected 0 or more, got " + std::to_string(outcome.duration_us)));
    }
    if (auto checked = check_timestamp("outcome.started_at", outcome.started_at); !checked) {
      return checked;
    }
    if (auto checked = check_timestamp("outcome.next_attempt_at", outcome.next_attempt_at);
        !checked) {
      return checked;
    }
    const std::string error_text = sanitize_text(outcome.error, max_error_bytes);
    std::optional<std::string> disable_reason;
    if (outcome.disable_endpoint) {
      disable_reason = sanitize_text(*outcome.disable_endpoint, max_reason_bytes);
    }
    return in_write_void(
        "finish an attempt at delivery " + std::to_string(delivery_id),
        [&](SqlConnection& c) -> std::expected<void, Error> {
          const Timestamp now = herald::now();
          Query q(*backend_);
          auto found = q.run(c,
                             "SELECT status, claimed_by, attempts, channel, recipient FROM "
                             "notify_deliveries WHERE id = " +
                                 q.integer(delivery_id) + std::string(backend_->lock_rows(false)));
          if (found.rows.empty()) return std::unexpected(delivery_not_found(delivery_id));
          const Row& row = found.rows[0];
          if (text_at(row, 0) != "sending" || text_at(row, 1) != worker) {
            return std::unexpected(
                Error{ErrorCode::conflict,
                      "delivery " + std::to_string(delivery_id) + " is not claimed by worker '" +
                          worker + "' (it is " + text_at(row, 0) +
                          (text_at(row, 1).empty() ? std::string()
                                                   : ", claimed by '" + text_at(row, 1) + "'") +
                          "): its claim expired and another worker took it; nothing was recorded",
                      "worker"});
          }
          const std::int64_t attempt = int_at(row, 2);
          Query a(*backend_);
          a.run(c,
                "INSERT INTO notify_attempts (delivery_id, attempt, started_at, duration_us, "
                "outcome, status_code, error) VALUES (" +
                    a.integer(delivery_id) + ", " + a.integer(attempt) + ", " +
                    a.timestamp(outcome.started_at) + ", " + a.integer(outcome.duration_us) + ", " +
                    a.text(status_name(outcome.status)) + ", " +
                    a.maybe_integer(outcome.status_code
                                        ? std::optional<std::int64_t>(*outcome.status_code)
                                        : std::nullopt) +
                    ", " + a.text(error_text) +
                    ") ON CONFLICT (delivery_id, attempt) DO UPDATE SET "
                    "started_at = excluded.started_at, duration_us = excluded.duration_us, "
                    "outcome = excluded.outcome, status_code = excluded.status_code, "
                    "error = excluded.error");
          Query u(*backend_);
          std::string sql =
              "UPDATE notify_deliveries SET status = " + u.text(status_name(outcome.status)) +
              ", claimed_by = '', last_error = " + u.text(error_text) + ", last_status_code = " +
              u.maybe_integer(outcome.status_code
                                  ? std::optional<std::int64_t>(*outcome.status_code)
                                  : std::nullopt) +
              ", updated_at = " + u.timestamp(now);
          if (outcome.status == DeliveryStatus::retrying) {
            sql += ", next_attempt_at = " + u.timestamp(outcome.next_attempt_at);
          }
          sql += " WHERE id = " + u.integer(delivery_id);
          u.run(c, sql);
          if (text_at(row, 3) == "webhook") {
            if (auto endpoint = endpoint_of(text_at(row, 4))) {
              Query e(*backend_);
              std::string update = "UPDATE notify_endpoints SET consecutive_failures = ";
              update += outcome.status == DeliveryStatus::sent ? "0" : "consecutive_failures + 1";
              if (disable_reason) {
                update += ", active = 0, disabled_reason = " + e.text(*disable_reason);
              }
              update += " WHERE id = " + e.integer(*endpoint);
              e.run(c, update);
            }
          }
          if (outcome.status == DeliveryStatus::retrying) backend_->announce_due(c);
          return {};
        },
        Durability::relaxed);
  }

  void wait_for_due(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(wake_mutex_);
    std::uint64_t seen = wake_generation_;
    if (auto mine = seen_by_thread_.find(std::this_thread::get_id());
        mine != seen_by_thread_.end()) {
      seen = mine->second;
      seen_by_thread_.erase(mine);
    }
    wake_cv_.wait_for(lock, timeout, [&] { return wake_generation_ != seen; });
  }

  void wake() noexcept override {
    {
      std::lock_guard lock(wake_mutex_);
      ++wake_generation_;
    }
    wake_cv_.notify_all();
  }

  std::expected<std::optional<Timestamp>, Error> next_due() override {
    return in_read<std::optional<Timestamp>>(
        "read the next due delivery",
        [&](SqlConnection& c) -> std::expected<std::optional<Timestamp>, Error> {
          Query q(*backend_);
          auto result = q.run(c, "SELECT " + backend_->micros("min(next_attempt_at)") +
                                     " FROM notify_deliveries WHERE status IN ('pending', "
                                     "'retrying')");
          if (result.rows.empty()) return std::optional<Timestamp>{};
          return opt_ts_at(result.rows[0], 0);
        });
  }

  std::expected<std::vector<DeliveryRecord>, Error> list_deliveries(
      const DeliveryQuery& query) override {
    if (auto checked = check_limit("limit", query.limit); !checked) {
      return std::unexpected(checked.error());
    }
    return in_read<std::vector<DeliveryRecord>>(
        "list deliveries",
        [&](SqlConnection& c) -> std::expected<std::vector<DeliveryRecord>, Error> {
          Query q(*backend_);
          std::string sql = "SELECT " + delivery_columns_ + " FROM notify_deliveries WHERE 1 = 1";
          if (query.status) sql += " AND status = " + q.text(status_name(*query.status));
          if (query.channel) sql += " AND channel = " + q.text(to_string(*query.channel));
          if (query.organization_id) {
            sql += " AND organization_id = " + q.integer(*query.organization_id);
          }
          if (query.user_id) sql += " AND user_id = " + q.integer(*query.user_id);
          if (query.event_id) sql += " AND event_id = " + q.text(query.event_id->to_string());
          if (query.before_id) sql += " AND id < " + q.integer(*query.before_id);
          sql += " ORDER BY id DESC LIMIT " + q.integer(sql_limit(query.limit));
          std::vector<DeliveryRecord> records;
          for (const auto& row : q.run(c, sql).rows) records.push_back(delivery_from(row));
          return records;
        });
  }

  std::expected<DeliveryRecord, Error> get_delivery(std::int64_t id) override {
    return in_read<DeliveryRecord>("read delivery " + std::to_string(id),
                                   [&](SqlConnection& c) -> std::expected<DeliveryRecord, Error> {
                                     return load_delivery(c, id);
                                   });
  }

  std::expected<std::vector<DeliveryAttempt>, Error> list_attempts(
      std::int64_t delivery_id) override {
    return in_read<std::vector<DeliveryAttempt>>(
        "list the attempts of delivery " + std::to_string(delivery_id),
        [&](SqlConnection& c) -> std::expected<std::vector<DeliveryAttempt>, Error> {
          if (auto found = load_delivery(c, delivery_id); !found) {
            return std::unexpected(found.error());
          }
          Query q(*backend_);
          auto result = q.run(c, "SELECT attempt, " + backend_->micros("started_at") +
                                     ", duration_us, outcome, status_code, error FROM "
                                     "notify_attempts WHERE delivery_id = " +
                                     q.integer(delivery_id) + " ORDER BY attempt");
          std::vector<DeliveryAttempt> attempts;
          for (const auto& row : result.rows) {
            const auto code = opt_int_at(row, 4);
            attempts.push_back(DeliveryAttempt{
                .delivery_id = delivery_id,
                .attempt = static_cast<int>(int_at(row, 0)),
                .started_at = ts_at(row, 1),
                .duration_us = int_at(row, 2),
                .outcome = status_at(row, 3),
                .status_code = code ? std::optional<int>(static_cast<int>(*code)) : std::nullopt,
                .error = text_at(row, 5)});
          }
          return attempts;
        });
  }

  std::expected<DeliveryRecord, Error> resend(std::int64_t id, Timestamp now) override {
    if (auto checked = check_timestamp("now", now); !checked) {
      return std::unexpected(checked.error());
    }
    auto record = in_write<DeliveryRecord>(
        "re-send delivery " + std::to_string(id),
        [&](SqlConnection& c) -> std::expected<DeliveryRecord, Error> {
          Query q(*backend_);
          auto found = q.run(c, "SELECT status FROM notify_deliveries WHERE id = " + q.integer(id) +
                                    std::string(backend_->lock_rows(false)));
          if (found.rows.empty()) return std::unexpected(delivery_not_found(id));
          const std::string status = text_at(found.rows[0], 0);
          if (status != "dead" && status != "failed") {
            return std::unexpected(Error{ErrorCode::conflict,
                                         "delivery " + std::to_string(id) + " is " + status +
                                             ": only a dead or failed delivery can be re-sent",
                                         "id"});
          }
          Query u(*backend_);
          u.run(c,
                "UPDATE notify_deliveries SET status = 'pending', claimed_by = '', "
                "next_attempt_at = " +
                    u.timestamp(now) + ", updated_at = " + u.timestamp(herald::now()) +
                    " WHERE id = " + u.integer(id));
          backend_->announce_due(c);
          return load_delivery(c, id);
        });
    if (record) wake();
    return record;
  }

  std::expected<std::vector<DeliveryCount>, Error> count_deliveries() override {
    return in_read<std::vector<DeliveryCount>>(
        "count deliveries",
        [&](SqlConnection& c) -> std::expected<std::vector<DeliveryCount>, Error> {
          Query q(*backend_);
          auto result = q.run(c,
                              "SELECT channel, status, count(*) FROM notify_deliveries GROUP BY "
                              "channel, status ORDER BY channel, status");
          std::vector<DeliveryCount> counts;
          for (const auto& row : result.rows) {
            counts.push_back(DeliveryCount{.channel = channel_at(row, 0),
                                           .status = status_at(row, 1),
                                           .count = int_at(row, 2)});
          }
          return counts;
        });
  }

  // --- inbox ---

  std::expected<std::vector<InboxItem>, Error> list_inbox(const InboxQuery& query) override {
    if (auto checked = check_limit("limit", query.limit); !checked) {
      return std::unexpected(checked.error());
    }
    return in_read<std::vector<InboxItem>>(
        "list the inbox of user " + std::to_string(query.user_id),
        [&](SqlConnection& c) -> std::expected<std::vector<InboxItem>, Error> {
          Query q(*backend_);
          std::string sql =
              "SELECT " + inbox_columns_ +
              " FROM notify_inbox WHERE user_id = " + q.integer(query.user_id) +
              (query.archived ? " AND archived_at IS NOT NULL" : " AND archived_at IS NULL");
          if (query.unread_only) sql += " AND read_at IS NULL";
          if (query.before_id) sql += " AND id < " + q.integer(*query.before_id);
          sql += " ORDER BY id DESC LIMIT " + q.integer(sql_limit(query.limit));
          std::vector<InboxItem> items;
          for (const auto& row : q.run(c, sql).rows) items.push_back(inbox_from(row));
          return items;
        });
  }

  std::expected<std::int64_t, Error> unread_count(std::int64_t user_id) override {
    return in_read<std::int64_t>(
        "count the unread items of user " + std::to_string(user_id),
        [&](SqlConnection& c) -> std::expected<std::int64_t, Error> {
          Query q(*backend_);
          auto result =
              q.run(c, "SELECT count(*) FROM notify_inbox WHERE user_id = " + q.integer(user_id) +
                           " AND read_at IS NULL AND archived_at IS NULL");
          return int_at(result.rows.at(0), 0);
        });
  }

  std::expected<std::size_t, Error> mark_inbox(std::int64_t user_id,
                                               std::span<const std::int64_t> ids, InboxMark mark,
                                               Timestamp now) override {
    if (ids.size() > max_marked_ids) {
      return std::unexpected(Error::for_field(ErrorCode::too_large, "ids",
                                              "at most " + std::to_string(max_marked_ids) +
                                                  " ids at once, got " +
                                                  std::to_string(ids.size())));
    }
    if (auto checked = check_timestamp("now", now); !checked) {
      return std::unexpected(checked.error());
    }
    const std::set<std::int64_t> wanted(ids.begin(), ids.end());
    const std::vector<std::int64_t> unique(wanted.begin(), wanted.end());
    return in_write<std::size_t>(
        "mark the inbox of user " + std::to_string(user_id),
        [&](SqlConnection& c) -> std::expected<std::size_t, Error> {
          if (!unique.empty()) {
            Query q(*backend_);
            auto found =
                q.run(c, "SELECT id FROM notify_inbox WHERE user_id = " + q.integer(user_id) +
                             " AND id IN " + q.integers(unique));
            std::set<std::int64_t> present;
            for (const auto& row : found.rows) present.insert(int_at(row, 0));
            for (std::int64_t id : unique) {
              if (!present.contains(id)) {
                return std::unexpected(Error::for_field(
                    ErrorCode::not_found, "ids",
                    "inbox item " + std::to_string(id) + " is not an item of user " +
                        std::to_string(user_id) + "; nothing was marked"));
              }
            }
          }
          Query u(*backend_);
          std::string sql = "UPDATE notify_inbox SET ";
          switch (mark) {
            case InboxMark::seen:
              sql += "seen_at = " + u.timestamp(now) + " WHERE seen_at IS NULL";
              break;
            case InboxMark::read:
              sql += "read_at = " + u.timestamp(now) + ", seen_at = coalesce(seen_at, " +
                     u.timestamp(now) + ") WHERE read_at IS NULL";
              break;
            case InboxMark::unread:
              sql += "read_at = NULL WHERE read_at IS NOT NULL";
              break;
            case InboxMark::archived:
              sql += "archived_at = " + u.timestamp(now) + " WHERE archived_at IS NULL";
              break;
            case InboxMark::unarchived:
              sql += "archived_at = NULL WHERE archived_at IS NOT NULL";
              break;
          }
          sql += " AND user_id = " + u.integer(user_id);
          if (!unique.empty()) sql += " AND id IN " + u.integers(unique);
          return static_cast<std::size_t>(u.run(c, sql).affected);
        });
  }

  std::expected<std::vector<InboxItem>, Error> inbox_after(std::int64_t user_id,
                                                           std::int64_t after_id,
                                                           std::size_t limit) override {
    if (auto checked = check_limit("limit", limit); !checked) {
      return std::unexpected(checked.error());
    }
    return in_read<std::vector<InboxItem>>(
        "read the inbox of user " + std::to_string(user_id),
        [&](SqlConnection& c) -> std::expected<std::vector<InboxItem>, Error> {
          Query q(*backend_);
          auto result = q.run(c, "SELECT " + inbox_columns_ +
                                     " FROM notify_inbox WHERE user_id = " + q.integer(user_id) +
                                     " AND id > " + q.integer(after_id) + " ORDER BY id LIMIT " +
                                     q.integer(sql_limit(limit)));
          std::vector<InboxItem> items;
          for (const auto& row : result.rows) items.push_back(inbox_from(row));
          return items;
        });
  }

  std::expected<std::int64_t, Error> inbox_head() override {
    return in_read<std::int64_t>(
        "read the inbox head", [&](SqlConnection& c) -> std::expected<std::int64_t, Error> {
          Query q(*backend_);
          auto result = q.run(c, "SELECT coalesce(max(id), 0) FROM notify_inbox");
          return int_at(result.rows.at(0), 0);
        });
  }

  // --- contacts and preferences ---

  std::expected<UserProfile, Error> set_email(std::int64_t user_id,
                                              const std::optional<std::string>& email) override {
    if (auto checked = check_id("user_id", user_id); !checked) {
      return std::unexpected(checked.error());
    }
    if (email) {
      if (auto checked = check_email("email", *email); !checked) {
        return std::unexpected(checked.error());
      }
    }
    return in_write<UserProfile>(
        "set the email address of user " + std::to_string(user_id),
        [&](SqlConnection& c) -> std::expected<UserProfile, Error> {
          Query q(*backend_);
          q.run(c, "INSERT INTO notify_users (user_id, email, deleted) VALUES (" +
                       q.integer(user_id) + ", " + q.maybe_text(email) +
                       ", 0) ON CONFLICT (user_id) DO UPDATE SET email = excluded.email");
          auto profile = load_user(c, user_id);
          if (!profile || !*profile) return std::unexpected(user_vanished(user_id));
          return **profile;
        });
  }

  std::expected<void, Error> set_preferences(const UserPreferences& preferences,
                                             std::span<const KindInfo> kinds) override {
    if (auto checked = check_preferences(preferences, kinds); !checked) return checked;
    std::vector<Channel> muted(preferences.muted);
    std::ranges::sort(muted);
    muted.erase(std::unique(muted.begin(), muted.end()), muted.end());
    return in_write_void(
        "set the preferences of user " + std::to_string(preferences.user_id),
        [&](SqlConnection& c) -> std::expected<void, Error> {
          const std::int64_t user_id = preferences.user_id;
          Query d(*backend_);
          d.run(c, "DELETE FROM notify_preference_rules WHERE user_id = " + d.integer(user_id));
          Query m(*backend_);
          m.run(c, "DELETE FROM notify_mutes WHERE user_id = " + m.integer(user_id));
          std::int64_t seq = 0;
          for (const PreferenceRule& rule : preferences.rules) {
            Query q(*backend_);
            q.run(c,
                  "INSERT INTO notify_preference_rules (user_id, seq, kind, channel, "
                  "organization_id, enabled) VALUES (" +
                      q.integer(user_id) + ", " + q.integer(seq++) + ", " + q.text(rule.kind) +
                      ", " + q.text(to_string(rule.channel)) + ", " +
                      q.maybe_integer(rule.organization_id) + ", " +
                      q.integer(std::int64_t{rule.enabled ? 1 : 0}) + ")");
          }
          for (Channel channel : muted) {
            Query q(*backend_);
            q.run(c, "INSERT INTO notify_mutes (user_id, channel) VALUES (" + q.integer(user_id) +
                         ", " + q.text(to_string(channel)) + ")");
          }
          return {};
        });
  }

  // --- endpoints ---

  std::expected<WebhookEndpoint, Error> create_endpoint(
      std::int64_t organization_id, const std::string& url,
      const std::vector<std::string>& event_types) override {
    if (auto checked = check_id("organization_id", organization_id); !checked) {
      return std::unexpected(checked.error());
    }
    if (auto checked = check_url("url", url); !checked) return std::unexpected(checked.error());
    if (auto checked = check_event_types("event_types", event_types); !checked) {
      return std::unexpected(checked.error());
    }
    auto secret = generate_webhook_secret();
    if (!secret) return std::unexpected(secret.error());
    return in_write<WebhookEndpoint>(
        "create a webhook endpoint for organization " + std::to_string(organization_id),
        [&](SqlConnection& c) -> std::expected<WebhookEndpoint, Error> {
          const Timestamp now = herald::now();
          Query q(*backend_);
          auto inserted =
              q.run(c,
                    "INSERT INTO notify_endpoints (organization_id, url, event_types, active, "
                    "disabled_reason, consecutive_failures, created_at) VALUES (" +
                        q.integer(organization_id) + ", " + q.text(url) + ", " +
                        q.text(join_lines(event_types)) + ", 1, '', 0, " + q.timestamp(now) +
                        ") RETURNING id");
          const std::int64_t id = int_at(inserted.rows.at(0), 0);
          Query s(*backend_);
          s.run(c,
                "INSERT INTO notify_endpoint_secrets (endpoint_id, secret, created_at) VALUES (" +
                    s.integer(id) + ", " + s.text(*secret) + ", " + s.timestamp(now) + ")");
          return load_endpoint(c, id);
        });
  }

  std::expected<std::vector<WebhookEndpoint>, Error> list_endpoints(
      std::optional<std::int64_t> organization_id) override {
    return in_read<std::vector<WebhookEndpoint>>(
        "list webhook endpoints",
        [&](SqlConnection& c) -> std::expected<std::vector<WebhookEndpoint>, Error> {
          Query q(*backend_);
          return load_endpoints(
              c, organization_id ? "organization_id = " + q.integer(*organization_id) : "1 = 1", q);
        });
  }

  std::expected<WebhookEndpoint, Error> get_endpoint(std::int64_t id) override {
    return in_read<WebhookEndpoint>("read webhook endpoint " + std::to_string(id),
                                    [&](SqlConnection& c) -> std::expected<WebhookEndpoint, Error> {
                                      return load_endpoint(c, id);
                                    });
  }

  std::expected<WebhookEndpoint, Error> set_endpoint_active(std::int64_t id, bool active,
                                                            const std::string& reason) override {
    if (auto checked = check_text("reason", reason, max_reason_bytes, true); !checked) {
      return std::unexpected(checked.error());
    }
    return in_write<WebhookEndpoint>(
        std::string(active ? "activate" : "disable") + " webhook endpoint " + std::to_string(id),
        [&](SqlConnection& c) -> std::expected<WebhookEndpoint, Error> {
          Query q(*backend_);
          const std::string sql =
              active
                  ? "UPDATE notify_endpoints SET active = 1, disabled_reason = '', "
                    "consecutive_failures = 0 WHERE id = " +
                        q.integer(id)
                  : "UPDATE notify_endpoints SET active = 0, disabled_reason = " +
                        q.text(reason.empty() ? std::string("disabled by an operator") : reason) +
                        " WHERE id = " + q.integer(id);
          if (q.run(c, sql).affected == 0) return std::unexpected(endpoint_not_found(id));
          return load_endpoint(c, id);
        });
  }

  std::expected<WebhookEndpoint, Error> rotate_secret(std::int64_t id, Timestamp now,
                                                      std::chrono::seconds overlap) override {
    if (overlap.count() < 0 || overlap > std::chrono::hours(24 * 365)) {
      return std::unexpected(Error::for_field(
          ErrorCode::invalid_argument, "overlap",
          "expected 0 seconds to a year, got " + std::to_string(overlap.count()) + " s"));
    }
    if (auto checked = check_timestamp("now", now); !checked) {
      return std::unexpected(checked.error());
    }
    if (auto checked = check_timestamp("overlap", now + overlap); !checked) {
      return std::unexpected(checked.error());
    }
    auto secret = generate_webhook_secret();
    if (!secret) return std::unexpected(secret.error());
    return in_write<WebhookEndpoint>(
        "rotate the secret of webhook endpoint " + std::to_string(id),
        [&](SqlConnection& c) -> std::expected<WebhookEndpoint, Error> {
          Query q(*backend_);
          auto found = q.run(c, "SELECT id FROM notify_endpoints WHERE id = " + q.integer(id) +
                                    std::string(backend_->lock_rows(false)));
          if (found.rows.empty()) return std::unexpected(endpoint_not_found(id));
          const Timestamp until = now + overlap;
          Query e(*backend_);
          e.run(c, "UPDATE notify_endpoint_secrets SET expires_at = " + e.timestamp(until) +
                       " WHERE endpoint_id = " + e.integer(id) +
                       " AND (expires_at IS NULL OR expires_at > " + e.timestamp(until) + ")");
          Query p(*backend_);
          p.run(c, "DELETE FROM notify_endpoint_secrets WHERE endpoint_id = " + p.integer(id) +
                       " AND expires_at <= " + p.timestamp(now));
          Query s(*backend_);
          s.run(c,
                "INSERT INTO notify_endpoint_secrets (endpoint_id, secret, created_at) VALUES (" +
                    s.integer(id) + ", " + s.text(*secret) + ", " + s.timestamp(now) + ")");
          return load_endpoint(c, id, now);
        });
  }

  std::expected<void, Error> set_announcement_channel(
      std::int64_t organization_id, const std::optional<std::string>& webhook_url) override {
    if (auto checked = check_id("organization_id", organization_id); !checked) return checked;
    if (webhook_url) {
      if (auto checked = check_url("webhook_url", *webhook_url); !checked) return checked;
    }
    return in_write_void(
        "set the announcement channel of organization " + std::to_string(organization_id),
        [&](SqlConnection& c) -> std::expected<void, Error> {
          Query q(*backend_);
          if (webhook_url) {
            q.run(c,
                  "INSERT INTO notify_announcement_channels (organization_id, webhook_url) "
                  "VALUES (" +
                      q.integer(organization_id) + ", " + q.text(*webhook_url) +
                      ") ON CONFLICT (organization_id) DO UPDATE SET webhook_url = "
                      "excluded.webhook_url");
          } else {
            q.run(c, "DELETE FROM notify_announcement_channels WHERE organization_id = " +
                         q.integer(organization_id));
          }
          return {};
        });
  }

 private:
  template <typename T, typename Fn>
  std::expected<T, Error> in_write(const std::string& what, Fn&& fn,
                                   Durability durability = Durability::full) {
    return run<T>(/*write=*/true, what, std::forward<Fn>(fn), durability);
  }

  template <typename T, typename Fn>
  std::expected<T, Error> in_read(const std::string& what, Fn&& fn) {
    return run<T>(/*write=*/false, what, std::forward<Fn>(fn));
  }

  template <typename T, typename Fn>
  std::expected<T, Error> run(bool write, const std::string& what, Fn&& fn,
                              Durability durability = Durability::full) {
    std::optional<T> out;
    const SqlWork work = [&](SqlConnection& c) -> std::expected<void, Error> {
      auto result = fn(c);
      if (!result) return std::unexpected(std::move(result.error()));
      out.emplace(std::move(*result));
      return {};
    };
    auto done = write ? backend_->write(what, work, durability) : backend_->read(what, work);
    if (!done) return std::unexpected(std::move(done.error()));
    return std::move(*out);
  }

  template <typename Fn>
  std::expected<void, Error> in_write_void(const std::string& what, Fn&& fn,
                                           Durability durability = Durability::full) {
    return backend_->write(what, SqlWork(std::forward<Fn>(fn)), durability);
  }

  void remember_generation() {
    std::lock_guard lock(wake_mutex_);
    // Threads that claimed and ended without waiting leave entries behind: keep the map small.
    if (seen_by_thread_.size() >= 1024) seen_by_thread_.clear();
    seen_by_thread_[std::this_thread::get_id()] = wake_generation_;
  }

  bool table_exists(SqlConnection& c, const std::string& name) {
    Query q(*backend_);
    const std::string placeholder = q.text(name);
    auto result = q.run(c, "SELECT " + backend_->table_exists(placeholder));
    return !result.rows.empty() && int_at(result.rows[0], 0) != 0;
  }

  // Routing writes: each throws SqlFailure on a database error.

  void apply_change(SqlConnection& c, const DirectoryChange& change) {
    Query q(*backend_);
    switch (change.op) {
      case DirectoryChange::Op::upsert_user:
        q.run(
            c,
            "INSERT INTO notify_users (user_id, discord_id, discord_username, deleted) VALUES (" +
                q.integer(change.user_id) + ", " + q.maybe_integer(change.discord_id) + ", " +
                q.maybe_text(change.discord_username) +
                ", 0) ON CONFLICT (user_id) DO UPDATE SET discord_id = "
                "coalesce(excluded.discord_id, notify_users.discord_id), discord_username = "
                "coalesce(excluded.discord_username, notify_users.discord_username), deleted = 0");
        return;
      case DirectoryChange::Op::delete_user:
        q.run(c, "INSERT INTO notify_users (user_id, deleted) VALUES (" +
                     q.integer(change.user_id) +
                     ", 1) ON CONFLICT (user_id) DO UPDATE SET deleted = 1");
        return;
      case DirectoryChange::Op::add_member:
        q.run(c, "INSERT INTO notify_members (organization_id, user_id) VALUES (" +
                     q.integer(change.organization_id.value_or(0)) + ", " +
                     q.integer(change.user_id) +
                     ") ON CONFLICT (organization_id, user_id) DO NOTHING");
        return;
      case DirectoryChange::Op::remove_member:
        q.run(c, "DELETE FROM notify_members WHERE organization_id = " +
                     q.integer(change.organization_id.value_or(0)) +
                     " AND user_id = " + q.integer(change.user_id));
        return;
      case DirectoryChange::Op::set_group: {
        q.run(c, "DELETE FROM notify_groups WHERE name = " + q.text(change.group));
        std::set<std::int64_t> seen;
        std::int64_t seq = 0;
        for (std::int64_t member : change.members) {
          if (!seen.insert(member).second) continue;
          Query m(*backend_);
          m.run(c, "INSERT INTO notify_groups (name, seq, user_id) VALUES (" +
                       m.text(change.group) + ", " + m.integer(seq++) + ", " + m.integer(member) +
                       ")");
        }
        return;
      }
    }
  }

  std::size_t insert_inbox(SqlConnection& c, std::span<const NewInboxItem* const> items) {
    Query q(*backend_);
    std::string sql =
        "INSERT INTO notify_inbox (user_id, kind, event_id, position, organization_id, title, "
        "body, link, created_at) VALUES ";
    for (std::size_t i = 0; i < items.size(); ++i) {
      const NewInboxItem& item = *items[i];
      if (i > 0) sql += ", ";
      sql += "(" + q.integer(item.user_id) + ", " + q.text(item.kind) + ", " +
             q.text(item.event_id.to_string()) + ", " + q.integer(item.position) + ", " +
             q.maybe_integer(item.organization_id) + ", " + q.text(item.title) + ", " +
             q.text(item.body) + ", " + q.text(item.link) + ", " + q.timestamp(item.created_at) +
             ")";
    }
    sql += " ON CONFLICT (user_id, event_id, kind) DO NOTHING";
    return static_cast<std::size_t>(q.run(c, sql).affected);
  }

  std::size_t insert_deliveries(SqlConnection& c, std::span<const NewDelivery* const> deliveries,
                                Timestamp now) {
    Query q(*backend_);
    std::string sql =
        "INSERT INTO notify_deliveries (event_id, position, channel, recipient, user_id, "
        "organization_id, kind, payload, status, attempts, next_attempt_at, claimed_by, "
        "last_error, created_at, updated_at) VALUES ";
    const std::string at = q.timestamp(now);
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      const NewDelivery& delivery = *deliveries[i];
      if (i > 0) sql += ", ";
      sql += "(" + q.text(delivery.event_id.to_string()) + ", " + q.integer(delivery.position) +
             ", " + q.text(to_string(delivery.channel)) + ", " + q.text(delivery.recipient) + ", " +
             q.maybe_integer(delivery.user_id) + ", " + q.maybe_integer(delivery.organization_id) +
             ", " + q.text(delivery.kind) + ", " + q.text(delivery.payload) + ", 'pending', 0, " +
             at + ", '', '', " + at + ", " + at + ")";
    }
    sql += " ON CONFLICT (event_id, recipient, channel) DO NOTHING";
    return static_cast<std::size_t>(q.run(c, sql).affected);
  }

  // Reads.

  std::expected<std::optional<UserProfile>, Error> load_user(SqlConnection& c,
                                                             std::int64_t user_id) {
    Query q(*backend_);
    auto result = q.run(c,
                        "SELECT discord_id, discord_username, email, deleted FROM notify_users "
                        "WHERE user_id = " +
                            q.integer(user_id));
    if (result.rows.empty()) return std::optional<UserProfile>{};
    const Row& row = result.rows[0];
    return std::optional<UserProfile>{UserProfile{.user_id = user_id,
                                                  .discord_id = opt_int_at(row, 0),
                                                  .discord_username = opt_text_at(row, 1),
                                                  .email = opt_text_at(row, 2),
                                                  .deleted = int_at(row, 3) != 0}};
  }

  std::expected<DeliveryRecord, Error> load_delivery(SqlConnection& c, std::int64_t id) {
    Query q(*backend_);
    auto result = q.run(
        c, "SELECT " + delivery_columns_ + " FROM notify_deliveries WHERE id = " + q.integer(id));
    if (result.rows.empty()) return std::unexpected(delivery_not_found(id));
    return delivery_from(result.rows[0]);
  }

  std::expected<WebhookEndpoint, Error> load_endpoint(SqlConnection& c, std::int64_t id,
                                                      std::optional<Timestamp> now = {}) {
    Query q(*backend_);
    auto found = load_endpoints(c, "id = " + q.integer(id), q, now);
    if (!found) return std::unexpected(found.error());
    if (found->empty()) return std::unexpected(endpoint_not_found(id));
    return std::move(found->front());
  }

  // Endpoints matching `where` (whose placeholders `q` holds), with their unexpired secrets.
  std::expected<std::vector<WebhookEndpoint>, Error> load_endpoints(
      SqlConnection& c, const std::string& where, Query& q, std::optional<Timestamp> now = {}) {
    auto result = q.run(c, "SELECT " + endpoint_columns_ + " FROM notify_endpoints WHERE " + where +
                               " ORDER BY id");
    std::vector<WebhookEndpoint> endpoints;
    std::vector<std::int64_t> ids;
    for (const auto& row : result.rows) {
      endpoints.push_back(WebhookEndpoint{.id = int_at(row, 0),
                                          .organization_id = int_at(row, 1),
                                          .url = text_at(row, 2),
                                          .event_types = split_lines(text_at(row, 3)),
                                          .secrets = {},
                                          .active = int_at(row, 4) != 0,
                                          .disabled_reason = text_at(row, 5),
                                          .consecutive_failures = static_cast<int>(int_at(row, 6)),
                                          .created_at = ts_at(row, 7)});
      ids.push_back(endpoints.back().id);
    }
    if (ids.empty()) return endpoints;
    Query s(*backend_);
    auto secrets = s.run(c, "SELECT endpoint_id, secret, " + backend_->micros("created_at") + ", " +
                                backend_->micros("expires_at") +
                                " FROM notify_endpoint_secrets WHERE endpoint_id IN " +
                                s.integers(ids) + " AND (expires_at IS NULL OR expires_at > " +
                                s.timestamp(now.value_or(herald::now())) + ") ORDER BY id DESC");
    std::unordered_map<std::int64_t, WebhookEndpoint*> by_id;
    for (auto& endpoint : endpoints) by_id[endpoint.id] = &endpoint;
    for (const auto& row : secrets.rows) {
      if (auto found = by_id.find(int_at(row, 0)); found != by_id.end()) {
        found->second->secrets.push_back(WebhookSecret{.secret = text_at(row, 1),
                                                       .created_at = ts_at(row, 2),
                                                       .expires_at = opt_ts_at(row, 3)});
      }
    }
    return endpoints;
  }

  static DeliveryRecord delivery_from(const Row& row) {
    const auto code = opt_int_at(row, 14);
    return DeliveryRecord{
        .id = int_at(row, 0),
        .event_id = event_id_at(row, 1),
        .position = int_at(row, 2),
        .channel = channel_at(row, 3),
        .recipient = text_at(row, 4),
        .user_id = opt_int_at(row, 5),
        .organization_id = opt_int_at(row, 6),
        .kind = text_at(row, 7),
        .payload = text_at(row, 8),
        .status = status_at(row, 9),
        .attempts = static_cast<int>(int_at(row, 10)),
        .next_attempt_at = ts_at(row, 11),
        .claimed_by = text_at(row, 12),
        .last_error = text_at(row, 13),
        .last_status_code = code ? std::optional<int>(static_cast<int>(*code)) : std::nullopt,
        .created_at = ts_at(row, 15),
        .updated_at = ts_at(row, 16)};
  }

  static InboxItem inbox_from(const Row& row) {
    return InboxItem{.id = int_at(row, 0),
                     .user_id = int_at(row, 1),
                     .kind = text_at(row, 2),
                     .event_id = event_id_at(row, 3),
                     .organization_id = opt_int_at(row, 4),
                     .title = text_at(row, 5),
                     .body = text_at(row, 6),
                     .link = text_at(row, 7),
                     .created_at = ts_at(row, 8),
                     .seen_at = opt_ts_at(row, 9),
                     .read_at = opt_ts_at(row, 10),
                     .archived_at = opt_ts_at(row, 11)};
  }

  static Error delivery_not_found(std::int64_t id) {
    return Error{ErrorCode::not_found, "no delivery with id " + std::to_string(id), "id"};
  }
  static Error endpoint_not_found(std::int64_t id) {
    return Error{ErrorCode::not_found, "no webhook endpoint with id " + std::to_string(id), "id"};
  }
  static Error user_vanished(std::int64_t id) {
    return Error{ErrorCode::internal,
                 "user " + std::to_string(id) + " was written but cannot be read back",
                 {}};
  }

  std::unique_ptr<SqlBackend> backend_;
  std::string delivery_columns_;
  std::string inbox_columns_;
  std::string endpoint_columns_;

  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  std::uint64_t wake_generation_ = 0;
  // The generation each thread saw when it last claimed, so that a delivery made due between a
  // claim and the wait that follows it is not slept through.
  std::unordered_map<std::thread::id, std::uint64_t> seen_by_thread_;
};

}  // namespace

std::expected<std::unique_ptr<NotificationStore>, Error> make_sql_notification_store(
    std::unique_ptr<SqlBackend> backend) {
  auto store = std::make_unique<SqlNotificationStore>(std::move(backend));
  if (auto migrated = store->migrate(); !migrated) return std::unexpected(migrated.error());
  store->start_listening();
  return std::unique_ptr<NotificationStore>(std::move(store));
}

}  // namespace herald::notify::detail
