// `herald demo`: a simulated day on the tournament platform. Service functions write a small
// in-memory "database" and then emit the event that describes the write (the seed's rule: emit
// after the write succeeded). The bus runs the handlers the seed describes, in priority order:
// the audit log (HIGH), the notifier (NORMAL), statistics and other reactions (LOW).
//
// With a store (--db, --store) each event is appended durably before the bus sees it (a
// Recorder), and the platform's durable consumers (the hash-chained audit log, the Discord role
// sync) follow the store on their own threads, so every run adds a day to the history.

#include "demo.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api_client.hpp"
#include "herald/audit_log.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event.hpp"
#include "herald/event_bus.hpp"
#include "herald/event_store.hpp"
#include "herald/json.hpp"
#include "herald/recorder.hpp"
#include "herald/timestamp.hpp"
#include "platform_consumers.hpp"
#include "store_commands.hpp"

namespace herald::server {
namespace {

// ---------------------------------------------------------------------------------------------
// Randomness and time

// mt19937_64's output sequence is fixed by the standard (the distributions are not), so a seed
// tells the same day with any standard library.
class Dice {
 public:
  explicit Dice(std::uint64_t seed) : engine_(seed) {}

  /// A number in [low, high].
  std::int64_t between(std::int64_t low, std::int64_t high) {
    const auto span = static_cast<std::uint64_t>(high - low) + 1;
    return low + static_cast<std::int64_t>(engine_() % span);
  }

  template <class T, std::size_t N>
  const T& pick(const std::array<T, N>& items) {
    return items[index_below(N)];
  }

  /// The items in an order chosen by the seed (Fisher–Yates).
  template <class T, std::size_t N>
  std::array<T, N> shuffled(std::array<T, N> items) {
    for (std::size_t i = N - 1; i > 0; --i) std::swap(items[i], items[index_below(i + 1)]);
    return items;
  }

  /// `count` characters drawn from `alphabet`.
  std::string text(std::string_view alphabet, int count) {
    std::string out;
    for (int i = 0; i < count; ++i) out.push_back(alphabet[index_below(alphabet.size())]);
    return out;
  }

 private:
  std::size_t index_below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }

  std::mt19937_64 engine_;
};

// The simulated wall clock of the day; every event is stamped with it.
class Clock {
 public:
  explicit Clock(Timestamp midnight) : midnight_(midnight), now_(midnight) {}

  Timestamp now() const { return now_; }
  /// "2026-11-27".
  std::string date() const { return format_timestamp(midnight_).substr(0, 10); }
  /// "2026-11-27T19:00:00Z": a time of this day in ISO 8601, as `scheduled_time` carries it.
  std::string iso_time(int hour, int minute) const {
    return fmt::format("{}T{:02}:{:02}:00Z", date(), hour, minute);
  }

  /// Lets a few minutes pass, with some seconds so that times do not look machine-made.
  void pass(Dice& dice, int min_minutes, int max_minutes) {
    now_ += std::chrono::minutes(dice.between(min_minutes, max_minutes)) +
            std::chrono::seconds(dice.between(0, 59));
  }
  void pass_seconds(Dice& dice, int min_seconds, int max_seconds) {
    now_ += std::chrono::seconds(dice.between(min_seconds, max_seconds));
  }
  /// Moves on to hour:minute of the day unless that time has passed.
  void at_least(int hour, int minute) {
    const Timestamp target = midnight_ + std::chrono::hours(hour) + std::chrono::minutes(minute);
    if (now_ < target) now_ = target;
  }

 private:
  Timestamp midnight_;
  Timestamp now_;
};

/// "19:04:31" of a timestamp.
std::string clock_time(Timestamp t) { return format_timestamp(t).substr(11, 8); }

// ---------------------------------------------------------------------------------------------
// The cast and the platform's state

struct PersonName {
  std::string_view full_name;
  std::string_view handle;
  std::string_view mail_domain;
};

constexpr std::array<PersonName, 20> people = {{
    {"Ana Lima", "analima", "gmail.com"},          {"Bruno Costa", "bruno.costa", "proton.me"},
    {"Chloe Martin", "chloe_runs", "outlook.com"}, {"Diego Alvarez", "dalvarez", "gmail.com"},
    {"Emma Novak", "emmanovak", "posteo.de"},      {"Farah Haddad", "farahh", "gmail.com"},
    {"Gus Lindqvist", "gus.lq", "fastmail.com"},   {"Hugo Brandt", "hugobrandt", "web.de"},
    {"Ines Duarte", "inesduarte", "outlook.com"},  {"Jonas Weber", "jweber", "gmx.net"},
    {"Kenji Sato", "kenji.sato", "gmail.com"},     {"Lea Fontaine", "leafontaine", "orange.fr"},
    {"Mateo Rossi", "mateorossi", "libero.it"},    {"Nora Quinn", "noraquinn", "icloud.com"},
    {"Omar Farouk", "omarfarouk", "gmail.com"},    {"Priya Raman", "priyaraman", "yahoo.com"},
    {"Quentin Moreau", "qmoreau", "free.fr"},      {"Rosa Jimenez", "rosaj", "gmail.com"},
    {"Sven Olsen", "svenolsen", "proton.me"},      {"Tara Walsh", "tarawalsh", "outlook.com"},
}};

struct OrganizationName {
  std::string_view name;
  std::string_view tag;
};

constexpr std::array<OrganizationName, 5> organization_names = {{
    {"Hyrule Speedrun League", "HSL"},
    {"Kakariko Racing Club", "KRC"},
    {"Lost Woods Randomizer Society", "LWRS"},
    {"Death Mountain Async Circuit", "DMAC"},
    {"Lake Hylia Racing Collective", "LHRC"},
}};

constexpr std::array<std::string_view, 5> preset_names = {
    "open-standard", "casual-boots", "inverted-keysanity", "mystery-weighted", "swordless-hard"};
constexpr std::array<std::string_view, 8> room_adjectives = {"bold",  "clever", "daring", "swift",
                                                             "lucky", "quiet",  "brave",  "mighty"};
constexpr std::array<std::string_view, 8> room_nouns = {
    "hookshot", "boomerang", "lantern", "ocarina", "bombos", "ether", "quake", "mirror"};

/// The address a person signs up and is invited with.
std::string email_of(const PersonName& person) {
  std::string local(person.handle);
  std::erase(local, '_');
  return fmt::format("{}@{}", local, person.mail_domain);
}

enum class Channel { discord_dm, email };

std::string_view channel_name(Channel channel) {
  return channel == Channel::discord_dm ? "Discord DM" : "email";
}

struct User {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  std::optional<std::int64_t> discord_id;
  std::optional<std::string> discord_username;
};

struct Guild {
  std::int64_t id = 0;  // herald's row id; the entity id of guild events
  std::string discord_guild_id;
  std::string name;
};

struct Invite {
  std::int64_t id = 0;
  std::int64_t organization_id = 0;
  std::int64_t inviter = 0;
  std::string email;
  bool open = true;
};

struct Race {
  std::int64_t id = 0;
  std::int64_t tournament_id = 0;
  std::int64_t racer = 0;
  std::int64_t seconds = 0;
  bool approved = false;
};

/// Who asked to hear about an organization's tournaments, and how.
struct TournamentSubscription {
  std::int64_t user_id = 0;
  Channel channel = Channel::discord_dm;
};

// The platform's tables. Services write them before they emit; handlers only read them to put
// names on ids, as a real audit view would join the users table.
struct Database {
  std::map<std::int64_t, User> users;
  std::map<std::int64_t, std::string> organizations;
  std::map<std::int64_t, Guild> guilds_by_organization;
  std::map<std::int64_t, std::vector<TournamentSubscription>> tournament_subscriptions;
  std::map<std::int64_t, std::int64_t> memberships;  // membership id -> user id
  std::map<std::int64_t, std::string> tournaments;
  std::map<std::int64_t, std::int64_t> tournament_organization;
  std::map<std::string, Invite> invites;  // by invite code
  std::map<std::int64_t, Race> races;
  std::map<std::string, std::vector<std::int64_t>> match_participants;  // by match entity id

  std::string user_label(std::optional<std::int64_t> id) const {
    if (!id) return "unknown";
    if (*id == system_actor) return "system";
    const auto it = users.find(*id);
    return it == users.end() ? fmt::format("user {}", *id)
                             : fmt::format("{} ({})", it->second.name, *id);
  }

  std::string organization_label(std::int64_t id) const {
    const auto it = organizations.find(id);
    return it == organizations.end() ? fmt::format("organization {}", id)
                                     : fmt::format("{} ({})", it->second, id);
  }
};

std::optional<std::int64_t> integer_id(const std::optional<EntityId>& id) {
  if (!id) return std::nullopt;
  if (const auto* n = std::get_if<std::int64_t>(&*id)) return *n;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Output

// Writes the lines of the day; with --quiet only the end-of-day summary.
class Report {
 public:
  Report(std::FILE* out, bool quiet) : out_(out), quiet_(quiet) {}

  template <class... Args>
  void event_line(fmt::format_string<Args...> format, Args&&... args) {
    if (!quiet_) fmt::print(out_, format, std::forward<Args>(args)...);
  }
  template <class... Args>
  void summary_line(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(out_, format, std::forward<Args>(args)...);
  }

 private:
  std::FILE* out_;
  bool quiet_;
};

/// The indentation of lines that follow an event's audit line.
constexpr std::string_view under_audit = "         ";

/// "OrganizationMemberAddedEvent" -> "organization_member_added", the audit trail's action name.
std::string action_name(std::string_view type_name) {
  if (type_name.ends_with("Event")) type_name.remove_suffix(5);
  std::string action;
  for (char c : type_name) {
    if (c >= 'A' && c <= 'Z') {
      if (!action.empty()) action.push_back('_');
      action.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      action.push_back(c);
    }
  }
  return action;
}

std::string format_duration(std::chrono::nanoseconds duration) {
  const auto ns = static_cast<double>(duration.count());
  if (duration < std::chrono::microseconds(1)) return fmt::format("{} ns", duration.count());
  if (duration < std::chrono::milliseconds(1)) return fmt::format("{:.1f} µs", ns / 1e3);
  if (duration < std::chrono::seconds(1)) return fmt::format("{:.2f} ms", ns / 1e6);
  return fmt::format("{:.2f} s", ns / 1e9);
}

std::string format_race_time(std::int64_t seconds) {
  return fmt::format("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

// ---------------------------------------------------------------------------------------------
// Handlers

// Fields that name the actor when an event has one; they override `user_id` (ORIGINAL.md,
// "Audit"). The reviewer comes before the racer: a race review names both, and the reviewer
// acted.
constexpr std::array<std::string_view, 4> actor_fields = {"reviewer_user_id", "added_by_user_id",
                                                          "removed_by_user_id", "racer_user_id"};

/// One audit line: time, action, actor, organization, entity, and the event's own fields.
void audit(EventRef event, const Database& db, Report& report) {
  const boost::json::object wire = event.to_json();
  std::optional<std::int64_t> actor = event->user_id;
  for (std::string_view field : actor_fields) {
    if (const boost::json::value* value = wire.if_contains(field); value && value->is_int64()) {
      actor = value->get_int64();
      break;
    }
  }
  std::string line = fmt::format("{} audit  {} | by {}", clock_time(event->timestamp),
                                 action_name(event.event_type()), db.user_label(actor));
  if (event->organization_id) {
    line += fmt::format(" | in {}", db.organization_label(*event->organization_id));
  }
  if (const EntityEvent* entity = event.entity(); entity != nullptr && entity->entity_id) {
    line += fmt::format(" | {} {}", event.type().entity_type(), to_string(*entity->entity_id));
  }
  std::string details;
  for (const FieldInfo& field : event.type().fields()) {
    const boost::json::value* value = wire.if_contains(field.name);
    if (field.common || value == nullptr || value->is_null()) continue;
    // "by Ana Lima (1042)" already says it: no "added_by_user_id=1042" after it.
    const bool names_actor = field.name.ends_with("_user_id") && value->is_int64() && actor &&
                             value->get_int64() == *actor;
    if (names_actor) continue;
    if (!details.empty()) details += ", ";
    details += fmt::format("{}={}", field.name, boost::json::serialize(*value));
  }
  if (!details.empty()) line += " | " + details;
  report.event_line("{}\n", line);
}

// The recipients of one notification, each once (ORIGINAL.md weakness 8: a user subscribed
// twice got the same message twice).
class Recipients {
 public:
  explicit Recipients(const Database& db) : db_(db) {}

  /// The affected user, by Discord DM when they linked Discord, else by email.
  void user(std::optional<std::int64_t> id) {
    if (!id) return;
    const auto it = db_.users.find(*id);
    const bool has_discord = it != db_.users.end() && it->second.discord_id.has_value();
    add(db_.user_label(id), has_discord ? Channel::discord_dm : Channel::email);
  }
  void users(const std::vector<std::int64_t>& ids) {
    for (std::int64_t id : ids) user(id);
  }
  /// The members of the organization who subscribed to its tournament notifications.
  void tournament_subscribers(std::optional<std::int64_t> organization_id) {
    if (!organization_id) return;
    const auto it = db_.tournament_subscriptions.find(*organization_id);
    if (it == db_.tournament_subscriptions.end()) return;
    for (const TournamentSubscription& s : it->second) add(db_.user_label(s.user_id), s.channel);
  }
  /// Someone who has no account yet.
  void email(const std::optional<std::string>& address) {
    if (address) add(*address, Channel::email);
  }
  /// The person who sent the invite with this code.
  void inviter(const std::optional<std::string>& code) {
    if (!code) return;
    if (const auto it = db_.invites.find(*code); it != db_.invites.end()) user(it->second.inviter);
  }

  const std::vector<std::string>& lines() const { return lines_; }

 private:
  void add(const std::string& who, Channel channel) {
    std::string line = fmt::format("{} via {}", who, channel_name(channel));
    for (const std::string& existing : lines_) {
      if (existing == line) return;
    }
    lines_.push_back(std::move(line));
  }

  const Database& db_;
  std::vector<std::string> lines_;
};

/// Who would be notified of `event` (ORIGINAL.md, "Notifications"); empty for event types that
/// are not a notification kind.
std::vector<std::string> recipients_of(EventRef event, const Database& db) {
  Recipients to(db);
  if (const auto* e = event.get<domain::UserPermissionChangedEvent>()) {
    to.user(integer_id(e->entity_id));
  }
  if (const auto* e = event.get<domain::OrganizationMemberAddedEvent>()) to.user(e->member_user_id);
  if (const auto* e = event.get<domain::OrganizationMemberRemovedEvent>()) {
    to.user(e->member_user_id);
  }
  if (const auto* e = event.get<domain::OrganizationMemberPermissionChangedEvent>()) {
    to.user(e->member_user_id);
  }
  if (event.get<domain::TournamentCreatedEvent>() != nullptr ||
      event.get<domain::TournamentUpdatedEvent>() != nullptr ||
      event.get<domain::TournamentStartedEvent>() != nullptr ||
      event.get<domain::TournamentEndedEvent>() != nullptr) {
    to.tournament_subscribers(event->organization_id);
  }
  if (const auto* e = event.get<domain::MatchScheduledEvent>()) to.users(e->participant_ids);
  if (const auto* e = event.get<domain::MatchCompletedEvent>(); e != nullptr && e->entity_id) {
    const auto it = db.match_participants.find(to_string(*e->entity_id));
    if (it != db.match_participants.end()) to.users(it->second);
  }
  if (const auto* e = event.get<domain::RaceSubmittedEvent>()) to.user(e->racer_user_id);
  if (const auto* e = event.get<domain::RaceApprovedEvent>()) to.user(e->racer_user_id);
  if (const auto* e = event.get<domain::RaceRejectedEvent>()) to.user(e->racer_user_id);
  if (const auto* e = event.get<domain::InviteCreatedEvent>()) to.email(e->invited_email);
  if (const auto* e = event.get<domain::InviteAcceptedEvent>()) to.inviter(e->invite_code);
  if (const auto* e = event.get<domain::InviteRejectedEvent>()) to.inviter(e->invite_code);
  if (const auto* e = event.get<domain::InviteExpiredEvent>()) to.inviter(e->invite_code);
  return to.lines();
}

void notify(EventRef event, const Database& db, Report& report) {
  const std::vector<std::string> recipients = recipients_of(event, db);
  if (recipients.empty()) return;
  std::string line;
  for (const std::string& recipient : recipients) {
    if (!line.empty()) line += ", ";
    line += recipient;
  }
  report.event_line("{}notify {}\n", under_audit, line);
}

/// Grants the organization's Discord role to a new member: what a bot would do on this event.
void sync_discord_role(const domain::OrganizationMemberAddedEvent& event, const Database& db,
                       Report& report) {
  const auto guild = event.organization_id ? db.guilds_by_organization.find(*event.organization_id)
                                           : db.guilds_by_organization.end();
  if (guild == db.guilds_by_organization.end() || !event.member_user_id) return;
  const auto member = db.users.find(*event.member_user_id);
  if (member == db.users.end() || !member->second.discord_username) {
    throw std::runtime_error(
        fmt::format("{} has no linked Discord account; the member role in '{}' is granted once "
                    "they link one",
                    db.user_label(event.member_user_id), guild->second.name));
  }
  report.event_line("{}discord gave @{} the member role in '{}'\n", under_audit,
                    *member->second.discord_username, guild->second.name);
}

// Approved runs of async tournaments, built from the race events alone (the seed's rule: put in
// the event what handlers need, do not make them query the database).
struct Leaderboard {
  struct Run {
    std::int64_t tournament_id = 0;
    std::int64_t racer = 0;
    std::int64_t seconds = 0;
  };
  std::map<std::string, Run> submitted;  // by race entity id
  std::vector<Run> approved;

  void on_submitted(const domain::RaceSubmittedEvent& event) {
    if (!event.entity_id || !event.tournament_id || !event.racer_user_id || !event.time_seconds) {
      return;
    }
    submitted[to_string(*event.entity_id)] =
        Run{*event.tournament_id, *event.racer_user_id, *event.time_seconds};
  }
  void on_approved(const domain::RaceApprovedEvent& event) {
    if (!event.entity_id) return;
    const auto it = submitted.find(to_string(*event.entity_id));
    if (it != submitted.end()) approved.push_back(it->second);
  }
};

// ---------------------------------------------------------------------------------------------
// Where the services' events go

// To the bus alone (in memory), or through a Recorder: appended durably to the store first and
// handed to the bus only once stored, so no handler sees an event that could still be lost.
class EventSink {
 public:
  /// Sends an event somewhere before the bus sees it (to a herald server's API).
  using Forward = std::function<std::expected<void, Error>(const EventPtr&)>;

  /// Without a store (nullptr) events go straight to `bus`, after `forward` when it is set.
  EventSink(EventBus& bus, EventStore* store, Forward forward = {})
      : bus_(bus), forward_(std::move(forward)) {
    if (store != nullptr) {
      emit_recorder_.emplace(*store, bus, RecorderOptions{.dispatch = RecordDispatch::emit});
      publish_recorder_.emplace(*store, bus, RecorderOptions{.dispatch = RecordDispatch::publish});
    }
  }

  /// Runs the handlers in this thread. After a failed append nothing more is recorded, so the day
  /// stops adding to the store at the first failure (`failure()`).
  void emit(EventPtr event) {
    if (failure_) return;
    if (forward_) {
      if (auto sent = forward_(event); !sent) {
        failure_ = std::move(sent.error());
        return;
      }
    }
    if (!emit_recorder_) {
      bus_.emit(event.ref());
      return;
    }
    if (auto recorded = emit_recorder_->record(std::move(event)); !recorded) {
      failure_ = std::move(recorded.error());
    }
  }

  /// Queues the event for the bus's dispatcher thread.
  std::expected<void, Error> publish(EventPtr event) {
    if (failure_) return std::unexpected(*failure_);
    if (forward_) {
      if (auto sent = forward_(event); !sent) {
        failure_ = sent.error();
        return std::unexpected(std::move(sent.error()));
      }
    }
    if (!publish_recorder_) return bus_.publish(std::move(event));
    auto recorded = publish_recorder_->record(std::move(event));
    if (!recorded) return std::unexpected(std::move(recorded.error()));
    return {};
  }

  /// Waits for the published events to be handled.
  void drain() { bus_.drain(); }

  /// The first append that failed, if one did.
  const std::optional<Error>& failure() const { return failure_; }

 private:
  EventBus& bus_;
  Forward forward_;
  std::optional<Recorder> emit_recorder_;
  std::optional<Recorder> publish_recorder_;
  std::optional<Error> failure_;
};

// ---------------------------------------------------------------------------------------------
// The platform's services

// Each service writes the database first and emits afterwards, as a real service would once its
// transaction committed.
class Platform {
 public:
  Platform(EventSink& sink, Database& db, Dice& dice, Clock& clock)
      : sink_(sink), db_(db), dice_(dice), clock_(clock) {
    // Ids continue from wherever the seed says yesterday ended.
    next_user_ = dice.between(1200, 4800);
    next_organization_ = dice.between(20, 90);
    next_membership_ = dice.between(300, 900);
    next_guild_ = dice.between(10, 60);
    next_invite_ = dice.between(700, 1500);
    next_preset_ = dice.between(40, 200);
    next_tournament_ = dice.between(100, 400);
    next_race_ = dice.between(5000, 9000);
  }

  Dice& dice() { return dice_; }
  Clock& clock() { return clock_; }
  const Database& db() const { return db_; }

  /// A user who signed up before today (no event: that happened on another day).
  std::int64_t existing_user(const PersonName& person) {
    const std::int64_t id = dice_.between(2, 400);
    db_.users[id] = User{.id = id,
                         .name = std::string(person.full_name),
                         .email = email_of(person),
                         .discord_id = snowflake(),
                         .discord_username = std::string(person.handle)};
    return id;
  }

  std::int64_t sign_up(const PersonName& person, bool with_discord) {
    const std::int64_t id = take(next_user_);
    User user{.id = id, .name = std::string(person.full_name), .email = email_of(person)};
    if (with_discord) {
      user.discord_id = snowflake();
      user.discord_username = std::string(person.handle);
    }
    db_.users[id] = user;
    record<domain::UserCreatedEvent>(
        {.entity_id = id, .user_id = id},
        {.discord_id = user.discord_id, .discord_username = user.discord_username});
    return id;
  }

  void update_profile(std::int64_t user, std::vector<std::string> changed_fields) {
    record<domain::UserUpdatedEvent>({.entity_id = user, .user_id = user},
                                     {.changed_fields = std::move(changed_fields)});
  }

  void change_permission(std::int64_t admin, std::int64_t user, std::string old_permission,
                         std::string new_permission) {
    record<domain::UserPermissionChangedEvent>(
        {.entity_id = user, .user_id = admin},
        {.old_permission = std::move(old_permission), .new_permission = std::move(new_permission)});
  }

  void delete_user(std::int64_t user, std::string reason) {
    record<domain::UserDeletedEvent>({.entity_id = user, .user_id = user},
                                     {.reason = std::move(reason)});
  }

  std::int64_t create_organization(std::int64_t owner, std::string name) {
    const std::int64_t id = take(next_organization_);
    db_.organizations[id] = name;
    record<domain::OrganizationCreatedEvent>(
        {.entity_id = id, .user_id = owner, .organization_id = id},
        {.organization_name = std::move(name)});
    return id;
  }

  void update_organization(std::int64_t admin, std::int64_t organization,
                           std::vector<std::string> changed_fields) {
    record<domain::OrganizationUpdatedEvent>(
        {.entity_id = organization, .user_id = admin, .organization_id = organization},
        {.changed_fields = std::move(changed_fields)});
  }

  void delete_organization(std::int64_t admin, std::int64_t organization, std::string reason) {
    record<domain::OrganizationDeletedEvent>(
        {.entity_id = organization, .user_id = admin, .organization_id = organization},
        {.reason = std::move(reason)});
  }

  /// Adds a member; `tournament_news` is how they asked to hear about tournaments, if at all.
  void add_member(std::int64_t admin, std::int64_t organization, std::int64_t user,
                  std::optional<Channel> tournament_news) {
    const std::int64_t membership = take(next_membership_);
    db_.memberships[membership] = user;
    if (tournament_news) {
      db_.tournament_subscriptions[organization].push_back({user, *tournament_news});
    }
    record<domain::OrganizationMemberAddedEvent>(
        {.entity_id = membership, .user_id = admin, .organization_id = organization},
        {.member_user_id = user, .added_by_user_id = admin});
  }

  void remove_member(std::int64_t admin, std::int64_t organization, std::int64_t user,
                     std::string reason) {
    std::int64_t membership = 0;
    for (const auto& [id, member] : db_.memberships) {
      if (member == user) membership = id;
    }
    db_.memberships.erase(membership);
    std::erase_if(db_.tournament_subscriptions[organization],
                  [user](const TournamentSubscription& s) { return s.user_id == user; });
    record<domain::OrganizationMemberRemovedEvent>(
        {.entity_id = membership, .user_id = admin, .organization_id = organization},
        {.member_user_id = user, .removed_by_user_id = admin, .reason = std::move(reason)});
  }

  void set_member_permission(std::int64_t admin, std::int64_t organization, std::int64_t user,
                             std::string permission, bool granted) {
    std::int64_t membership = 0;
    for (const auto& [id, member] : db_.memberships) {
      if (member == user) membership = id;
    }
    record<domain::OrganizationMemberPermissionChangedEvent>(
        {.entity_id = membership, .user_id = admin, .organization_id = organization},
        {.member_user_id = user, .permission_name = std::move(permission), .granted = granted});
  }

  std::int64_t link_guild(std::int64_t admin, std::int64_t organization, std::string name) {
    const Guild guild{.id = take(next_guild_),
                      .discord_guild_id = std::to_string(snowflake()),
                      .name = std::move(name)};
    db_.guilds_by_organization[organization] = guild;
    record<domain::DiscordGuildLinkedEvent>(
        {.entity_id = guild.id, .user_id = admin, .organization_id = organization},
        {.guild_id = guild.discord_guild_id, .guild_name = guild.name});
    return guild.id;
  }

  void unlink_guild(std::int64_t admin, std::int64_t organization, std::string reason) {
    const Guild guild = db_.guilds_by_organization[organization];
    db_.guilds_by_organization.erase(organization);
    record<domain::DiscordGuildUnlinkedEvent>(
        {.entity_id = guild.id, .user_id = admin, .organization_id = organization},
        {.guild_id = guild.discord_guild_id, .reason = std::move(reason)});
  }

  std::string invite(std::int64_t inviter, std::int64_t organization, std::string email) {
    const std::string code = dice_.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 4) + "-" +
                             dice_.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 4);
    const Invite invite{.id = take(next_invite_),
                        .organization_id = organization,
                        .inviter = inviter,
                        .email = std::move(email)};
    db_.invites[code] = invite;
    record<domain::InviteCreatedEvent>(
        {.entity_id = invite.id, .user_id = inviter, .organization_id = organization},
        {.invite_code = code, .inviter_user_id = inviter, .invited_email = invite.email});
    return code;
  }

  /// Accepting makes the user a member; the inviter counts as the one who added them.
  void accept_invite(const std::string& code, std::int64_t user) {
    Invite& invite = db_.invites.at(code);
    invite.open = false;
    record<domain::InviteAcceptedEvent>(
        {.entity_id = invite.id, .user_id = user, .organization_id = invite.organization_id},
        {.invite_code = code, .accepted_by_user_id = user});
    clock_.pass(dice_, 0, 1);
    add_member(invite.inviter, invite.organization_id, user, Channel::email);
  }

  void reject_invite(const std::string& code, std::int64_t user) {
    Invite& invite = db_.invites.at(code);
    invite.open = false;
    record<domain::InviteRejectedEvent>(
        {.entity_id = invite.id, .user_id = user, .organization_id = invite.organization_id},
        {.invite_code = code, .rejected_by_user_id = user});
  }

  /// The nightly job: queues an InviteExpiredEvent per invite nobody answered, for the bus's
  /// dispatcher thread, and waits for them to be handled.
  std::expected<void, Error> expire_open_invites() {
    for (auto& [code, invite] : db_.invites) {
      if (!invite.open) continue;
      invite.open = false;
      auto queued = sink_.publish(EventPtr::make(
          make<domain::InviteExpiredEvent>({.entity_id = invite.id,
                                            .user_id = system_actor,
                                            .organization_id = invite.organization_id,
                                            .timestamp = clock_.now()},
                                           {.invite_code = code})));
      if (!queued) return queued;
    }
    sink_.drain();
    return {};
  }

  std::int64_t create_preset(std::int64_t author, std::int64_t organization, std::string name,
                             std::string preset_namespace) {
    const std::int64_t id = take(next_preset_);
    record<domain::PresetCreatedEvent>(
        {.entity_id = id, .user_id = author, .organization_id = organization},
        {.preset_name = std::move(name), .namespace_ = std::move(preset_namespace)});
    return id;
  }

  void update_preset(std::int64_t author, std::int64_t organization, std::int64_t preset,
                     std::string name, std::vector<std::string> changed_fields) {
    record<domain::PresetUpdatedEvent>(
        {.entity_id = preset, .user_id = author, .organization_id = organization},
        {.preset_name = std::move(name), .changed_fields = std::move(changed_fields)});
  }

  std::int64_t create_tournament(std::int64_t admin, std::int64_t organization, std::string name,
                                 std::string type) {
    const std::int64_t id = take(next_tournament_);
    db_.tournaments[id] = name;
    db_.tournament_organization[id] = organization;
    record<domain::TournamentCreatedEvent>(
        {.entity_id = id, .user_id = admin, .organization_id = organization},
        {.tournament_name = std::move(name), .tournament_type = std::move(type)});
    return id;
  }

  void update_tournament(std::int64_t admin, std::int64_t tournament,
                         std::vector<std::string> changed_fields) {
    record<domain::TournamentUpdatedEvent>(
        {.entity_id = tournament,
         .user_id = admin,
         .organization_id = db_.tournament_organization.at(tournament)},
        {.changed_fields = std::move(changed_fields)});
  }

  void delete_tournament(std::int64_t admin, std::int64_t tournament, std::string reason) {
    record<domain::TournamentDeletedEvent>(
        {.entity_id = tournament,
         .user_id = admin,
         .organization_id = db_.tournament_organization.at(tournament)},
        {.reason = std::move(reason)});
  }

  void start_tournament(std::int64_t admin, std::int64_t tournament) {
    record<domain::TournamentStartedEvent>(
        {.entity_id = tournament,
         .user_id = admin,
         .organization_id = db_.tournament_organization.at(tournament)},
        {.tournament_name = db_.tournaments.at(tournament)});
  }

  /// Ends an async tournament; the fastest approved run wins.
  void end_tournament(std::int64_t admin, std::int64_t tournament) {
    std::optional<std::int64_t> winner;
    std::int64_t best = 0;
    for (const auto& [id, race] : db_.races) {
      if (race.tournament_id != tournament || !race.approved) continue;
      if (!winner || race.seconds < best) {
        winner = race.racer;
        best = race.seconds;
      }
    }
    record<domain::TournamentEndedEvent>(
        {.entity_id = tournament,
         .user_id = admin,
         .organization_id = db_.tournament_organization.at(tournament)},
        {.tournament_name = db_.tournaments.at(tournament), .winner_user_id = winner});
  }

  /// A racer submits a run of one of the tournament's seeds, with its VOD.
  std::int64_t submit_race(std::int64_t tournament, std::int64_t racer, std::int64_t permalink) {
    const Race race{.id = take(next_race_),
                    .tournament_id = tournament,
                    .racer = racer,
                    .seconds = dice_.between(5400, 7800)};
    db_.races[race.id] = race;
    record<domain::RaceSubmittedEvent>(
        {.entity_id = race.id,
         .user_id = racer,
         .organization_id = db_.tournament_organization.at(tournament)},
        {.tournament_id = tournament,
         .permalink_id = permalink,
         .racer_user_id = racer,
         .time_seconds = race.seconds,
         .vod_url = vod_url()});
    return race.id;
  }

  void approve_race(std::int64_t race_id, std::int64_t reviewer) {
    Race& race = db_.races.at(race_id);
    race.approved = true;
    record<domain::RaceApprovedEvent>(
        {.entity_id = race.id,
         .user_id = reviewer,
         .organization_id = db_.tournament_organization.at(race.tournament_id)},
        {.tournament_id = race.tournament_id,
         .racer_user_id = race.racer,
         .reviewer_user_id = reviewer});
  }

  void reject_race(std::int64_t race_id, std::int64_t reviewer, std::string reason) {
    const Race& race = db_.races.at(race_id);
    record<domain::RaceRejectedEvent>(
        {.entity_id = race.id,
         .user_id = reviewer,
         .organization_id = db_.tournament_organization.at(race.tournament_id)},
        {.tournament_id = race.tournament_id,
         .racer_user_id = race.racer,
         .reviewer_user_id = reviewer,
         .reason = std::move(reason)});
  }

  /// Schedules a match in a race room named like racetime.gg's ("clever-hookshot-4821"): a
  /// string entity id.
  std::string schedule_match(std::int64_t admin, std::int64_t tournament,
                             std::vector<std::int64_t> participants, std::string scheduled_time) {
    const std::string room = fmt::format("{}-{}-{}", dice_.pick(room_adjectives),
                                         dice_.pick(room_nouns), dice_.between(1000, 9999));
    db_.match_participants[room] = participants;
    record<domain::MatchScheduledEvent>(
        {.entity_id = room,
         .user_id = admin,
         .organization_id = db_.tournament_organization.at(tournament)},
        {.tournament_id = tournament,
         .scheduled_time = std::move(scheduled_time),
         .participant_ids = std::move(participants)});
    return room;
  }

  void complete_match(std::int64_t admin, std::int64_t tournament, const std::string& room,
                      std::int64_t winner) {
    record<domain::MatchCompletedEvent>(
        {.entity_id = room,
         .user_id = admin,
         .organization_id = db_.tournament_organization.at(tournament)},
        {.tournament_id = tournament, .winner_user_id = winner});
  }

 private:
  template <Event E>
  void record(EventHeader header, E own) {
    clock_.pass_seconds(dice_, 2, 40);  // no two things happen in the same second
    header.timestamp = clock_.now();
    sink_.emit(EventPtr::make(make<E>(std::move(header), std::move(own))));
  }

  std::int64_t take(std::int64_t& next) {
    const std::int64_t id = next;
    next += dice_.between(1, 7);
    return id;
  }

  // A Discord id: a 64-bit snowflake of an account or server created in recent years.
  std::int64_t snowflake() {
    return dice_.between(150'000'000'000'000'000, 1'199'999'999'999'999'999);
  }

  std::string vod_url() {
    if (dice_.between(0, 2) == 0) {
      return "https://youtu.be/" +
             dice_.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 11);
    }
    return fmt::format("https://www.twitch.tv/videos/{}",
                       dice_.between(1'900'000'000, 2'299'999'999));
  }

  EventSink& sink_;
  Database& db_;
  Dice& dice_;
  Clock& clock_;
  std::int64_t next_user_ = 0;
  std::int64_t next_organization_ = 0;
  std::int64_t next_membership_ = 0;
  std::int64_t next_guild_ = 0;
  std::int64_t next_invite_ = 0;
  std::int64_t next_preset_ = 0;
  std::int64_t next_tournament_ = 0;
  std::int64_t next_race_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The day

struct DayResult {
  std::int64_t async_tournament = 0;
};

std::expected<DayResult, Error> live_the_day(Platform& p, Report& report) {
  Dice& dice = p.dice();
  Clock& clock = p.clock();
  const auto cast = dice.shuffled(people);
  const OrganizationName& league = dice.pick(organization_names);
  const std::string year = clock.date().substr(0, 4);
  const auto chapter = [&](std::string_view title) { report.event_line("\n-- {} --\n", title); };
  const auto pause = [&] { clock.pass(dice, 2, 14); };

  // The cast, by role; cast[8] is invited and never answers.
  const std::int64_t platform_admin = p.existing_user(cast[9]);

  chapter("Morning: a league opens its doors");
  clock.at_least(7, 30);
  const std::int64_t founder = p.sign_up(cast[0], true);
  pause();
  const std::int64_t org = p.create_organization(founder, std::string(league.name));
  pause();
  p.link_guild(founder, org, std::string(league.name));
  pause();
  const std::int64_t sandbox = p.create_organization(
      founder,
      fmt::format("{}'s sandbox", cast[0].full_name.substr(0, cast[0].full_name.find(' '))));
  p.link_guild(founder, sandbox, fmt::format("{} test server", cast[0].handle));
  pause();
  p.change_permission(platform_admin, founder, "user", "organizer");

  chapter("Mid-morning: the first members");
  clock.at_least(9, 0);
  const std::int64_t organizer = p.sign_up(cast[1], true);
  const std::int64_t first_racer = p.sign_up(cast[2], true);
  pause();
  const std::int64_t second_racer = p.sign_up(cast[3], true);
  const std::int64_t third_racer = p.sign_up(cast[4], true);
  const std::int64_t leaver = p.sign_up(cast[7], true);
  pause();
  p.add_member(founder, org, organizer, std::nullopt);
  p.add_member(founder, org, first_racer, Channel::discord_dm);
  p.add_member(founder, org, second_racer, Channel::discord_dm);
  pause();
  p.add_member(founder, org, third_racer, Channel::email);
  p.add_member(founder, org, leaver, Channel::discord_dm);
  pause();
  p.set_member_permission(founder, org, organizer, "manage_tournaments", true);
  p.set_member_permission(founder, org, organizer, "review_races", true);

  chapter("Late morning: presets and tournaments");
  clock.at_least(10, 30);
  const std::string tag(league.tag);
  const std::string preset_name(dice.pick(preset_names));
  std::string preset_namespace = tag;  // presets live in the league's namespace: "hsl"
  std::ranges::transform(preset_namespace, preset_namespace.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::int64_t preset = p.create_preset(organizer, org, preset_name, preset_namespace);
  pause();
  p.update_preset(organizer, org, preset, preset_name, {"settings", "description"});
  pause();
  const std::int64_t async =
      p.create_tournament(organizer, org, fmt::format("{} Async Qualifier {}", tag, year), "async");
  pause();
  p.update_tournament(organizer, async, {"rules_url", "runs_per_racer"});
  pause();
  const std::string cup_name = fmt::format("{} Swiss Cup {}", tag, year);
  const std::int64_t cup = p.create_tournament(founder, org, cup_name, "swiss");
  const std::int64_t duplicate = p.create_tournament(founder, org, cup_name, "swiss");
  pause();
  p.delete_tournament(founder, duplicate,
                      fmt::format("Duplicate of tournament {}, created by a double click", cup));
  pause();
  p.start_tournament(organizer, async);

  chapter("Noon: invitations");
  clock.at_least(12, 0);
  const std::string joiner_invite = p.invite(founder, org, email_of(cast[5]));
  const std::string decliner_invite = p.invite(founder, org, email_of(cast[6]));
  pause();
  p.invite(organizer, org, email_of(cast[8]));
  pause();
  const std::int64_t joiner = p.sign_up(cast[5], false);  // by email: no Discord account
  p.accept_invite(joiner_invite, joiner);
  pause();
  const std::int64_t decliner = p.sign_up(cast[6], true);
  p.reject_invite(decliner_invite, decliner);

  chapter("Afternoon: async races come in");
  clock.at_least(14, 0);
  const std::int64_t permalink = dice.between(100'000, 999'999);
  const std::int64_t first_run = p.submit_race(async, first_racer, permalink);
  pause();
  const std::int64_t second_run = p.submit_race(async, second_racer, permalink);
  pause();
  const std::int64_t third_run = p.submit_race(async, third_racer, permalink + 1);
  pause();
  p.approve_race(first_run, organizer);
  p.reject_race(second_run, organizer,
                "The VOD stops before the final boss; please upload the full run");
  pause();
  p.approve_race(third_run, organizer);
  clock.pass(dice, 30, 50);
  const std::int64_t second_rerun = p.submit_race(async, second_racer, permalink);
  pause();
  p.approve_race(second_rerun, organizer);
  pause();
  p.update_profile(third_racer, {"display_name", "twitch_channel"});

  chapter("Evening: Swiss Cup, round 1");
  clock.at_least(17, 30);
  p.start_tournament(founder, cup);
  pause();
  const std::string room =
      p.schedule_match(founder, cup, {first_racer, third_racer}, clock.iso_time(19, 0));
  clock.at_least(20, 40);
  p.complete_match(founder, cup, room, dice.between(0, 1) == 0 ? first_racer : third_racer);
  pause();
  p.update_organization(founder, org, {"description", "logo_url"});
  pause();
  p.remove_member(founder, org, leaver, "Asked to leave: moving to another league");
  pause();
  p.end_tournament(organizer, async);

  chapter("Night: clean-up and the nightly job");
  clock.at_least(22, 15);
  p.unlink_guild(founder, sandbox, "The bot was removed from the server");
  pause();
  p.delete_organization(founder, sandbox, "Test organization from onboarding; no longer needed");
  pause();
  p.delete_user(decliner, "Account deletion requested by the user");
  clock.at_least(23, 55);
  report.event_line("{}(queued with publish() by the nightly job; drain() waits for it)\n",
                    under_audit);
  if (auto expired = p.expire_open_invites(); !expired) return std::unexpected(expired.error());
  return DayResult{.async_tournament = async};
}

// ---------------------------------------------------------------------------------------------
// End of day

void print_event_counts(const EventCatalog& catalog,
                        const std::map<std::string_view, std::uint64_t>& counts, Report& report) {
  std::uint64_t total = 0;
  for (const auto& [name, count] : counts) total += count;
  report.summary_line("\nEvents by type ({} events, {} of {} catalog types)\n", total,
                      counts.size(), catalog.size());
  const std::vector<const EventType*> types = catalog.types();
  const std::size_t rows = (types.size() + 1) / 2;
  for (std::size_t row = 0; row < rows; ++row) {
    std::string line;
    for (std::size_t column = 0; column < 2; ++column) {
      const std::size_t index = row + column * rows;
      if (index >= types.size()) break;
      const auto it = counts.find(types[index]->name());
      line +=
          fmt::format("  {:<42}{:>3}", types[index]->name(), it == counts.end() ? 0 : it->second);
    }
    report.summary_line("{}\n", line);
  }
}

void print_leaderboard(const Leaderboard& leaderboard, std::int64_t tournament, const Database& db,
                       Report& report) {
  std::vector<Leaderboard::Run> runs;
  for (const Leaderboard::Run& run : leaderboard.approved) {
    if (run.tournament_id == tournament) runs.push_back(run);
  }
  std::ranges::sort(runs, {}, &Leaderboard::Run::seconds);
  report.summary_line("\nLeaderboard of {} (approved runs)\n", db.tournaments.at(tournament));
  for (std::size_t i = 0; i < runs.size(); ++i) {
    report.summary_line("  {}. {:<32} {}\n", i + 1, db.user_label(runs[i].racer),
                        format_race_time(runs[i].seconds));
  }
}

void print_stats(const EventBus& bus, Report& report) {
  report.summary_line("\nHandler stats (every call timed)\n");
  report.summary_line("  {:<18} {:<29} {:<8} {:>6} {:>8} {:>10} {:>10}\n", "handler", "type",
                      "priority", "calls", "failures", "total", "max");
  std::vector<HandlerStats> handlers = bus.handler_stats();
  // The order the bus runs them in: highest priority first, ties in registration (id) order.
  std::ranges::sort(handlers, [](const HandlerStats& a, const HandlerStats& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
  });
  for (const HandlerStats& h : handlers) {
    report.summary_line("  {:<18} {:<29} {:<8} {:>6} {:>8} {:>10} {:>10}\n", h.name, h.event_type,
                        to_string(h.priority), h.calls, h.failures,
                        format_duration(h.total_duration), format_duration(h.max_duration));
  }
  const BusStats s = bus.stats();
  report.summary_line(
      "\nBus '{}': {} events dispatched, {} published to the queue, {} dropped while disabled,\n"
      "  {} refused because the queue was full, {} unhandled, {} handler failures, "
      "{} still queued\n",
      bus.name(), s.dispatched, s.published, s.dropped_disabled, s.refused_full, s.unhandled,
      s.handler_failures, s.queue_depth);
}

// ---------------------------------------------------------------------------------------------
// The history: the store and its durable consumers

struct History {
  std::unique_ptr<EventStore> store;
  // Declared after the store, so that they stop before it closes.
  std::vector<std::unique_ptr<DurableConsumer>> consumers;
  std::int64_t events_before = 0;
};

std::expected<History, Error> open_history(const std::string& location,
                                           const EventCatalog& catalog) {
  History history;
  auto store = open_store({.location = location, .catalog = &catalog});
  if (!store) return std::unexpected(std::move(store.error()));
  history.store = std::move(*store);
  auto count = history.store->count();
  if (!count) return std::unexpected(std::move(count.error()));
  history.events_before = *count;
  for (std::string_view name : platform_consumer_names()) {
    // Quick retries, so that the role sync parks a member without Discord within the day.
    auto consumer = make_platform_consumer(*history.store, name,
                                           {.max_attempts = 3,
                                            .backoff_base = std::chrono::milliseconds(10),
                                            .backoff_max = std::chrono::milliseconds(100)});
    if (auto started = consumer->start(); !started) {
      return std::unexpected(std::move(started.error()));
    }
    history.consumers.push_back(std::move(consumer));
  }
  return history;
}

/// `text` as one shell word: quoted when it holds anything but safe characters.
std::string shell_word(std::string_view text) {
  const bool safe = !text.empty() && std::ranges::all_of(text, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("/._-+:@%=,").find(c) != std::string_view::npos;
  });
  if (safe) return std::string(text);
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// Waits for the consumers to handle the whole day, stops them, and says what the store holds.
std::expected<void, Error> finish_history(History& history, const DemoOptions& options,
                                          Report& report) {
  EventStore& store = *history.store;
  auto head = store.head();
  if (!head) return std::unexpected(std::move(head.error()));
  constexpr auto catch_up_limit = std::chrono::seconds(60);
  for (const auto& consumer : history.consumers) {
    if (!consumer->wait_for_checkpoint(*head, catch_up_limit)) {
      return std::unexpected(Error{
          ErrorCode::unavailable,
          fmt::format("consumer '{}' did not reach the store's head (position {}) within {} s; "
                      "see 'herald consumers'",
                      consumer->name(), *head, catch_up_limit.count()),
          {}});
    }
    consumer->stop();
  }
  auto count = store.count();
  if (!count) return std::unexpected(std::move(count.error()));
  const std::string where = describe_location(options.store_location);
  report.summary_line("\nHistory in {}: this day added {} events; it holds {} in all (head {})\n",
                      where, *count - history.events_before, *count, *head);

  auto verified = verify_audit_log(store);
  if (!verified) return std::unexpected(std::move(verified.error()));
  if (verified->ok()) {
    report.summary_line("  audit log: {} records, hash chain verified, head {}:{}…\n",
                        verified->records, verified->head.position,
                        verified->head.hash.substr(0, 16));
  } else {
    report.summary_line("  audit log: BROKEN at position {} ({}): {}\n",
                        verified->failure->position, to_string(verified->failure->fault),
                        verified->failure->message);
  }
  auto consumers = list_consumers(store);
  if (!consumers) return std::unexpected(std::move(consumers.error()));
  std::string line;
  for (const ConsumerStatus& status : *consumers) {
    if (!line.empty()) line += ", ";
    line += fmt::format("{} at {} (lag {}", status.name, status.checkpoint, status.lag);
    if (status.parked > 0) line += fmt::format(", {} parked", status.parked);
    line += ")";
  }
  report.summary_line("  consumers: {}\n", line);

  const std::string program = shell_word(options.program);
  const std::string flag =
      fmt::format("{} {}", options.store_location.starts_with("postgres") ? "--store" : "--db",
                  shell_word(options.store_location));
  report.summary_line("\nLook at the history (each run adds a day):\n");
  for (std::string_view command : {"events list --newest-first --limit 20", "audit list",
                                   "audit verify", "consumers", "parked list"}) {
    report.summary_line("  {} {} {}\n", program, command, flag);
  }
  return {};
}

}  // namespace

std::expected<void, Error> run_demo(const DemoOptions& options, std::FILE* out) {
  const EventCatalog& catalog = domain::platform_catalog();
  Report report(out, options.quiet);
  Dice dice(options.seed);
  Clock clock(std::chrono::floor<std::chrono::days>(herald::now()));
  Database db;
  Leaderboard leaderboard;
  std::map<std::string_view, std::uint64_t> counts;

  std::optional<History> history;
  if (!options.store_location.empty()) {
    auto opened = open_history(options.store_location, catalog);
    if (!opened) return std::unexpected(std::move(opened.error()));
    history = std::move(*opened);
  }

  // Declared after the state its handlers use, so that it is destroyed (and drained) first.
  EventBus bus(EventBusOptions{.name = "demo", .timing = HandlerTiming::every_call});
  bus.set_error_hook([&](const HandlerError& error) {
    std::string entity;
    if (const EntityEvent* e = error.event.entity(); e != nullptr && e->entity_id) {
      entity = fmt::format(" ({} {})", error.event.type().entity_type(), to_string(*e->entity_id));
    }
    report.event_line("{}error  handler '{}' failed on {}{}: {} (the other handlers still ran)\n",
                      under_audit, error.handler_name, action_name(error.event.event_type()),
                      entity, error.message);
  });

  std::vector<Subscription> subscriptions;
  subscriptions.push_back(bus.on_any([&](EventRef event) { audit(event, db, report); },
                                     {.priority = Priority::high, .name = "audit-log"}));
  subscriptions.push_back(bus.on_any([&](EventRef event) { notify(event, db, report); },
                                     {.priority = Priority::normal, .name = "notifier"}));
  subscriptions.push_back(bus.on_any([&](EventRef event) { ++counts[event.event_type()]; },
                                     {.priority = Priority::low, .name = "statistics"}));
  subscriptions.push_back(bus.on<domain::RaceSubmittedEvent>(
      [&](const domain::RaceSubmittedEvent& event) { leaderboard.on_submitted(event); },
      {.priority = Priority::low, .name = "leaderboard"}));
  subscriptions.push_back(bus.on<domain::RaceApprovedEvent>(
      [&](const domain::RaceApprovedEvent& event) { leaderboard.on_approved(event); },
      {.priority = Priority::low, .name = "leaderboard"}));
  subscriptions.push_back(bus.on<domain::OrganizationMemberAddedEvent>(
      [&](const domain::OrganizationMemberAddedEvent& event) {
        sync_discord_role(event, db, report);
      },
      {.priority = Priority::low, .name = "discord-role-sync"}));

  report.summary_line("herald demo: a day on the platform, {} UTC (seed {})\n", clock.date(),
                      options.seed);
  report.event_line(
      "Handlers: audit-log (HIGH, every event), notifier (NORMAL, every event), statistics,\n"
      "leaderboard and discord-role-sync (LOW). Each event prints its audit line first; the\n"
      "indented lines under it come from the lower-priority handlers.\n");

  std::unique_ptr<ApiClient> client;
  std::uint64_t posted = 0;
  EventSink::Forward forward;
  if (!options.server_url.empty()) {
    auto opened = ApiClient::open(options.server_url, options.token);
    if (!opened) return std::unexpected(std::move(opened.error()));
    client = std::move(*opened);
    forward = [&](const EventPtr& event) -> std::expected<void, Error> {
      auto response = client->post_json("/api/v1/events", encode_event(event));
      if (!response) return std::unexpected(std::move(response.error()));
      if (response->status != 201 && response->status != 200) {
        return std::unexpected(
            Error{ErrorCode::io,
                  fmt::format("{} answered {} to {}: {}", client->base_url(), response->status,
                              event.event_type(), response->body.substr(0, 500)),
                  {}});
      }
      ++posted;
      return {};
    };
  }
  EventSink sink(bus, history ? history->store.get() : nullptr, std::move(forward));
  Platform platform(sink, db, dice, clock);
  const auto day = live_the_day(platform, report);
  if (sink.failure()) return std::unexpected(*sink.failure());
  if (!day) return std::unexpected(day.error());

  print_event_counts(catalog, counts, report);
  print_leaderboard(leaderboard, day->async_tournament, db, report);
  print_stats(bus, report);
  if (history) {
    if (auto finished = finish_history(*history, options, report); !finished) return finished;
  }
  if (client) {
    report.summary_line(
        "\nPosted {} events to {}. Look at them:\n"
        "  curl -s -H 'Authorization: Bearer $TOKEN' '{}/api/v1/events?limit=5'\n"
        "  curl -N -H 'Authorization: Bearer $TOKEN' '{}/api/v1/events/stream?after=0'\n",
        posted, client->base_url(), client->base_url(), client->base_url());
  }

  std::string missing;
  for (const EventType* type : catalog.types()) {
    if (counts.contains(type->name())) continue;
    if (!missing.empty()) missing += ", ";
    missing += type->name();
  }
  if (!missing.empty()) {
    return std::unexpected(Error{
        .code = ErrorCode::internal,
        .message = fmt::format("the demo day emitted no {}; the demo is behind the catalog and "
                               "needs a service call for each missing type",
                               missing)});
  }
  return {};
}

}  // namespace herald::server
