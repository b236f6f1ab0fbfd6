#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "herald/error.hpp"
#include "herald/notify/notification.hpp"
#include "herald/notify/notification_rules.hpp"
#include "herald/notify/router.hpp"
#include "herald/timestamp.hpp"

namespace herald::notify {

/// Which inbox items a listing returns, newest first.
struct InboxQuery {
  std::int64_t user_id = 0;
  /// Only unread items.
  bool unread_only = false;
  /// false: items not archived; true: archived items only.
  bool archived = false;
  /// Cursor: only items with an id below this (the last id of the previous page).
  std::optional<std::int64_t> before_id;
  /// 1 to 1000.
  std::size_t limit = 50;
};

/// What to mark on inbox items.
enum class InboxMark : std::uint8_t { seen, read, unread, archived, unarchived };

/// Which deliveries a listing returns, newest first.
struct DeliveryQuery {
  std::optional<DeliveryStatus> status;
  std::optional<Channel> channel;
  std::optional<std::int64_t> organization_id;
  std::optional<std::int64_t> user_id;
  std::optional<EventId> event_id;
  /// Cursor: only deliveries with an id below this.
  std::optional<std::int64_t> before_id;
  /// 1 to 1000.
  std::size_t limit = 100;
};

/// What an attempt led to, as the worker records it.
struct AttemptOutcome {
  /// sent, retrying, failed or dead.
  DeliveryStatus status = DeliveryStatus::sent;
  /// When `retrying`: when the next attempt is due.
  Timestamp next_attempt_at{};
  std::optional<int> status_code;
  std::string error;
  Timestamp started_at{};
  std::int64_t duration_us = 0;
  /// For a webhook: disable the endpoint with this reason (410, a run of failures).
  std::optional<std::string> disable_endpoint;
};

/// Counts of deliveries by channel and status, for metrics and the dashboard.
struct DeliveryCount {
  Channel channel = Channel::email;
  DeliveryStatus status = DeliveryStatus::pending;
  std::int64_t count = 0;
};

/// The notification tables: the directory kept from the events, users' contact addresses and
/// preferences, webhook endpoints, the inbox, and the delivery queue with its attempts. Lives in
/// the same database as the event store (SQLite file or PostgreSQL), in tables of its own.
/// Thread-safe: every member may be called from any thread.
///
/// Errors: `invalid_argument` naming the field for bad input, `not_found` for an unknown id,
/// `io` when the database fails.
class NotificationStore : public Directory {
 public:
  ~NotificationStore() override = default;

  // --- routing (the notification consumer) ---

  /// Writes what routing decided for consecutive events, in one transaction, and moves
  /// `consumer`'s checkpoint (in the event store's checkpoint table) to the last event's position.
  /// Directory changes apply in order; an inbox item or delivery that exists already (same
  /// event, recipient and channel; for the inbox, same user, event and kind) is skipped, so a
  /// replay or a redelivery after a crash creates nothing new. Returns how many inbox items and
  /// deliveries were created. Wakes `wait_for_due`.
  virtual std::expected<std::size_t, Error> apply_routing(std::span<const RoutedEvent> events,
                                                          const std::string& consumer) = 0;

  // --- delivery queue (the workers) ---

  /// Claims up to `limit` deliveries that are due (pending or retrying with `next_attempt_at` at
  /// or before `now`, or sending with an expired claim, which a crashed worker left), oldest due
  /// first: marks them sending, claimed by `worker` until `now + lease`, attempts + 1, and returns
  /// them. Concurrent claims by any number of processes never return the same delivery (on
  /// PostgreSQL `FOR UPDATE SKIP LOCKED`; on SQLite one write transaction at a time).
  virtual std::expected<std::vector<DeliveryRecord>, Error> claim_due(const std::string& worker,
                                                                      Timestamp now,
                                                                      std::chrono::seconds lease,
                                                                      std::size_t limit) = 0;
  /// Records the attempt the claim made and sets the delivery's status from `outcome`; for a
  /// webhook, success resets the endpoint's failure run, failure extends it (and disables the
  /// endpoint when `outcome.disable_endpoint` is set). Errors: `conflict` when `worker` no longer
  /// holds the claim (it expired and another worker took the delivery): nothing is written.
  virtual std::expected<void, Error> finish_attempt(std::int64_t delivery_id,
                                                    const std::string& worker,
                                                    const AttemptOutcome& outcome) = 0;
  /// Blocks until a delivery may be due (one was created or re-sent through this object), or
  /// `timeout` passes. Returns at once on `wake()`, also for a wake (or a routing or re-send)
  /// that came after the calling thread's last `claim_due` and before this call, so a claimer
  /// that claims, then waits, never misses one.
  virtual void wait_for_due(std::chrono::milliseconds timeout) = 0;
  /// Makes every `wait_for_due` in progress return.
  virtual void wake() noexcept = 0;
  /// The earliest `next_attempt_at` of a pending or retrying delivery, or nullopt.
  virtual std::expected<std::optional<Timestamp>, Error> next_due() = 0;

  /// Deliveries matching `query`, newest first.
  virtual std::expected<std::vector<DeliveryRecord>, Error> list_deliveries(
      const DeliveryQuery& query) = 0;
  virtual std::expected<DeliveryRecord, Error> get_delivery(std::int64_t id) = 0;
  /// The delivery's attempts, first first.
  virtual std::expected<std::vector<DeliveryAttempt>, Error> list_attempts(
      std::int64_t delivery_id) = 0;
  /// Makes a dead or failed delivery pending again, due now, keeping its attempts. Errors:
  /// `not_found`; `conflict` when it is not dead or failed.
  virtual std::expected<DeliveryRecord, Error> resend(std::int64_t id, Timestamp now) = 0;
  /// Deliveries by channel and status (only non-zero counts).
  virtual std::expected<std::vector<DeliveryCount>, Error> count_deliveries() = 0;

  // --- the inbox ---

  virtual std::expected<std::vector<InboxItem>, Error> list_inbox(const InboxQuery& query) = 0;
  /// Unread items that are not archived.
  virtual std::expected<std::int64_t, Error> unread_count(std::int64_t user_id) = 0;
  /// Marks the user's items `ids` (all of the user's items when empty); returns how many changed.
  /// Errors: `not_found` when an id is not one of the user's items (nothing is changed).
  virtual std::expected<std::size_t, Error> mark_inbox(std::int64_t user_id,
                                                       std::span<const std::int64_t> ids,
                                                       InboxMark mark, Timestamp now) = 0;
  /// The user's items with an id above `after_id`, oldest first (the user's stream follows these).
  virtual std::expected<std::vector<InboxItem>, Error> inbox_after(std::int64_t user_id,
                                                                   std::int64_t after_id,
                                                                   std::size_t limit) = 0;
  /// The highest inbox item id of any user (0 when empty).
  virtual std::expected<std::int64_t, Error> inbox_head() = 0;

  // --- contacts and preferences ---

  /// Sets (or with nullopt clears) the user's email address; creates the user in the directory
  /// when no event did yet. Errors: `invalid_argument` for an address that is not addr-spec-like
  /// (one '@', no spaces or control characters, at most 254 bytes).
  virtual std::expected<UserProfile, Error> set_email(std::int64_t user_id,
                                                      const std::optional<std::string>& email) = 0;
  /// Replaces the user's rules and mutes with `preferences`. Errors: `invalid_argument` for a
  /// rule whose kind is not in `kinds`, or an in-app rule that turns a critical kind off.
  virtual std::expected<void, Error> set_preferences(const UserPreferences& preferences,
                                                     std::span<const KindInfo> kinds) = 0;

  // --- webhook endpoints and announcement channels ---

  /// Registers an endpoint with a fresh secret and returns it (the secret is shown once here and
  /// kept for signing). Errors: `invalid_argument` for a URL that is not http(s) or longer than
  /// 2048 bytes.
  virtual std::expected<WebhookEndpoint, Error> create_endpoint(
      std::int64_t organization_id, const std::string& url,
      const std::vector<std::string>& event_types) = 0;
  /// Every endpoint (of one organization when given), active or not.
  virtual std::expected<std::vector<WebhookEndpoint>, Error> list_endpoints(
      std::optional<std::int64_t> organization_id) = 0;
  virtual std::expected<WebhookEndpoint, Error> get_endpoint(std::int64_t id) = 0;
  /// Activates or disables (with `reason`) the endpoint; activating clears the failure run.
  virtual std::expected<WebhookEndpoint, Error> set_endpoint_active(std::int64_t id, bool active,
                                                                    const std::string& reason) = 0;
  /// Adds a new secret; the previous ones keep signing until `now + overlap`.
  virtual std::expected<WebhookEndpoint, Error> rotate_secret(std::int64_t id, Timestamp now,
                                                              std::chrono::seconds overlap) = 0;
  /// Sets (or with nullopt removes) the organization's Discord announcement channel.
  virtual std::expected<void, Error> set_announcement_channel(
      std::int64_t organization_id, const std::optional<std::string>& webhook_url) = 0;
};

/// Opens the notification tables in the database at `location` (a SQLite path or a PostgreSQL
/// URL, as `StoreOptions::location`), creating or migrating them. The event store must have been
/// opened on it first (its checkpoint table is shared). Errors: a database that cannot be opened,
/// or notification tables from a newer herald.
std::expected<std::unique_ptr<NotificationStore>, Error> open_notification_store(
    const std::string& location);

/// A new webhook secret: "whsec_" and base64 of 24 bytes from OpenSSL's CSPRNG.
std::expected<std::string, Error> generate_webhook_secret();

}  // namespace herald::notify
