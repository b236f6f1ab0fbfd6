#include "herald/domain/notification_rules.hpp"

#include <array>
#include <charconv>
#include <string_view>
#include <utility>

#include "herald/domain/events.hpp"
#include "notification_templates.hpp"

namespace herald::domain {
namespace {

using herald::notify::Audience;
using herald::notify::Channel;
using herald::notify::DirectoryChange;
using herald::notify::KindInfo;
using herald::notify::Notice;
using templates::TemplateValue;

using Notices = std::vector<Notice>;

const std::vector<KindInfo>& kind_table() {
  static const std::vector<KindInfo> kinds = [] {
    const std::vector<Channel> in_app{Channel::in_app};
    const std::vector<Channel> subscribed{};
    return std::vector<KindInfo>{
        {"user_permission_changed", "Your platform permission level changed", true, in_app},
        {"organization_member_added", "You were added to an organization", false, in_app},
        {"organization_member_removed", "You were removed from an organization", true, in_app},
        {"organization_member_permission_changed",
         "You were granted or lost a permission in an organization", false, in_app},
        {"tournament_created", "A tournament was created in your organization", false, subscribed},
        {"tournament_started", "A tournament of your organization started", false, subscribed},
        {"tournament_ended", "A tournament of your organization ended", false, subscribed},
        {"tournament_updated", "A tournament of your organization was changed", false, subscribed},
        {"match_scheduled", "A match you play in was scheduled", false, in_app},
        {"match_completed", "A match you played in was completed", false, in_app},
        {"race_submitted", "Your race was submitted for review", false, in_app},
        {"race_approved", "Your race was approved", false, in_app},
        {"race_rejected", "Your race was rejected", false, in_app},
        // Sent only to an invited address, which belongs to no user yet: by email.
        {"invite_received", "You were invited to join an organization", false, {Channel::email}},
        {"invite_accepted", "Someone accepted your invitation", false, in_app},
        {"invite_rejected", "Someone declined your invitation", false, in_app},
        {"invite_expired", "Your invitation expired unanswered", false, in_app},
    };
  }();
  return kinds;
}

// A user id from an entity id: an integer, or text that is one (some producers send ids as text).
std::optional<std::int64_t> user_id_of(const std::optional<EntityId>& id) {
  if (!id) return std::nullopt;
  if (const auto* number = std::get_if<std::int64_t>(&*id)) return *number;
  const std::string& text = std::get<std::string>(*id);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::string> text_of(const std::optional<EntityId>& id) {
  if (!id) return std::nullopt;
  return herald::to_string(*id);
}

std::optional<std::string> number_text(std::optional<std::int64_t> value) {
  if (!value) return std::nullopt;
  return std::to_string(*value);
}

std::string link_to(std::string_view collection, const std::optional<std::string>& id) {
  if (!id) return {};
  return "/" + std::string(collection) + "/" + templates::escape_path_segment(*id);
}

std::string organization_phrase(std::optional<std::int64_t> organization_id) {
  if (!organization_id) return "an organization";
  return "organization #" + std::to_string(*organization_id);
}

std::string organization_link(std::optional<std::int64_t> organization_id) {
  return link_to("organizations", number_text(organization_id));
}

// "1:02:03" or "12:34".
std::string race_time(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  const std::int64_t hours = seconds / 3600;
  const std::int64_t minutes = seconds / 60 % 60;
  const std::int64_t rest = seconds % 60;
  const auto two = [](std::int64_t n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  if (hours > 0) return std::to_string(hours) + ":" + two(minutes) + ":" + two(rest);
  return std::to_string(minutes) + ":" + two(rest);
}

std::optional<std::string> joined(const std::vector<std::string>& items) {
  if (items.empty()) return std::nullopt;
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// Names come from the directory (what UserCreated and UserUpdated said); a user it does not know
// is "user #42".
class Names {
 public:
  explicit Names(herald::notify::Directory& directory) : directory_(directory) {}

  std::expected<std::string, Error> of(std::int64_t user_id) {
    auto user = directory_.user(user_id);
    if (!user) return std::unexpected(std::move(user.error()));
    if (*user && (*user)->discord_username && !(*user)->discord_username->empty()) {
      return *(*user)->discord_username;
    }
    return "user #" + std::to_string(user_id);
  }

  std::expected<std::optional<std::string>, Error> of(std::optional<std::int64_t> user_id) {
    if (!user_id) return std::optional<std::string>();
    auto name = of(*user_id);
    if (!name) return std::unexpected(std::move(name.error()));
    return std::optional<std::string>(std::move(*name));
  }

 private:
  herald::notify::Directory& directory_;
};

Notice notice(std::string kind, Audience audience, std::string_view template_id,
              std::span<const TemplateValue> values, std::string link) {
  return Notice{.kind = std::move(kind),
                .audience = std::move(audience),
                .message = templates::render(template_id, values, std::move(link))};
}

Notice notice(std::string kind, Audience audience, std::span<const TemplateValue> values,
              std::string link) {
  const std::string template_id = kind;
  return notice(std::move(kind), std::move(audience), template_id, values, std::move(link));
}

// --- the events people are told of ---

using Result = std::expected<Notices, Error>;

Result user_permission_changed(const UserPermissionChangedEvent& event) {
  const auto user = user_id_of(event.entity_id);
  if (!user) return Notices{};
  const std::array values{TemplateValue{"old", event.old_permission},
                          TemplateValue{"new", event.new_permission}};
  Notices out;
  out.push_back(notice("user_permission_changed", {.users = {*user}}, values,
                       link_to("users", number_text(user))));
  return out;
}

Result member_added(const OrganizationMemberAddedEvent& event, Names& names) {
  if (!event.member_user_id) return Notices{};
  // Being added by oneself (joining) needs no "added by".
  std::optional<std::int64_t> actor = event.added_by_user_id;
  if (actor == event.member_user_id) actor.reset();
  auto actor_name = names.of(actor);
  if (!actor_name) return std::unexpected(std::move(actor_name.error()));
  const std::array values{TemplateValue{"org", organization_phrase(event.organization_id)},
                          TemplateValue{"actor", *actor_name}};
  Notices out;
  out.push_back(notice("organization_member_added", {.users = {*event.member_user_id}}, values,
                       organization_link(event.organization_id)));
  return out;
}

Result member_removed(const OrganizationMemberRemovedEvent& event, Names& names) {
  if (!event.member_user_id) return Notices{};
  std::optional<std::int64_t> actor = event.removed_by_user_id;
  if (actor == event.member_user_id) actor.reset();
  auto actor_name = names.of(actor);
  if (!actor_name) return std::unexpected(std::move(actor_name.error()));
  const std::array values{TemplateValue{"org", organization_phrase(event.organization_id)},
                          TemplateValue{"actor", *actor_name},
                          TemplateValue{"reason", event.reason}};
  Notices out;
  out.push_back(notice("organization_member_removed", {.users = {*event.member_user_id}}, values,
                       organization_link(event.organization_id)));
  return out;
}

Result member_permission_changed(const OrganizationMemberPermissionChangedEvent& event,
                                 Names& names) {
  if (!event.member_user_id) return Notices{};
  std::optional<std::int64_t> actor = event.user_id;
  if (actor == event.member_user_id || actor == herald::system_actor) actor.reset();
  auto actor_name = names.of(actor);
  if (!actor_name) return std::unexpected(std::move(actor_name.error()));
  const std::array values{
      TemplateValue{"org", organization_phrase(event.organization_id)},
      TemplateValue{"permission",
                    event.permission_name && !templates::clean_value(*event.permission_name).empty()
                        ? *event.permission_name
                        : "a permission"},
      TemplateValue{"actor", *actor_name}};
  Notices out;
  out.push_back(notice("organization_member_permission_changed", {.users = {*event.member_user_id}},
                       event.granted ? "organization_member_permission_granted"
                                     : "organization_member_permission_revoked",
                       values, organization_link(event.organization_id)));
  return out;
}

// The tournament kinds go to the organization's subscribers and its announcement channel; a
// tournament outside any organization has neither.
Result tournament_notice(std::string kind, const EntityEvent& event,
                         const std::optional<std::string>& name, std::optional<std::string> format,
                         std::optional<std::string> winner, std::optional<std::string> changed) {
  if (!event.organization_id) return Notices{};
  const std::optional<std::string> id = text_of(event.entity_id);
  std::string tournament =
      name && !templates::clean_value(*name).empty() ? *name : "#" + id.value_or("?");
  const std::array values{TemplateValue{"tournament", std::move(tournament)},
                          TemplateValue{"org", organization_phrase(event.organization_id)},
                          TemplateValue{"format", std::move(format)},
                          TemplateValue{"winner", std::move(winner)},
                          TemplateValue{"changed", std::move(changed)}};
  Notices out;
  out.push_back(
      notice(std::move(kind),
             {.subscribers_of = event.organization_id, .announce_to = event.organization_id},
             values, link_to("tournaments", id)));
  return out;
}

Result match_scheduled(const MatchScheduledEvent& event, Names& names) {
  if (event.participant_ids.empty()) return Notices{};
  std::vector<std::string> players;
  for (const std::int64_t participant : event.participant_ids) {
    auto name = names.of(participant);
    if (!name) return std::unexpected(std::move(name.error()));
    players.push_back(std::move(*name));
  }
  const std::optional<std::string> id = text_of(event.entity_id);
  const std::array values{
      TemplateValue{"match", id}, TemplateValue{"tournament", number_text(event.tournament_id)},
      TemplateValue{"time", event.scheduled_time}, TemplateValue{"players", joined(players)}};
  Notices out;
  out.push_back(
      notice("match_scheduled", {.users = event.participant_ids}, values, link_to("matches", id)));
  return out;
}

std::string match_group(const EntityId& id) { return "match:" + herald::to_string(id); }
std::string invite_group(const std::string& code) { return "invite:" + code; }

Result match_completed(const MatchCompletedEvent& event, herald::notify::Directory& directory,
                       Names& names) {
  std::vector<std::int64_t> users;
  if (event.entity_id) {
    auto participants = directory.group(match_group(*event.entity_id));
    if (!participants) return std::unexpected(std::move(participants.error()));
    users = std::move(*participants);
  }
  if (event.winner_user_id && std::ranges::find(users, *event.winner_user_id) == users.end()) {
    users.push_back(*event.winner_user_id);
  }
  if (users.empty()) return Notices{};
  auto winner = names.of(event.winner_user_id);
  if (!winner) return std::unexpected(std::move(winner.error()));
  const std::optional<std::string> id = text_of(event.entity_id);
  const std::array values{TemplateValue{"match", id},
                          TemplateValue{"tournament", number_text(event.tournament_id)},
                          TemplateValue{"winner", *winner}};
  Notices out;
  out.push_back(
      notice("match_completed", {.users = std::move(users)}, values, link_to("matches", id)));
  return out;
}

Result race_submitted(const RaceSubmittedEvent& event) {
  if (!event.racer_user_id) return Notices{};
  const std::optional<std::string> id = text_of(event.entity_id);
  std::optional<std::string> time;
  if (event.time_seconds) time = race_time(*event.time_seconds);
  const std::array values{
      TemplateValue{"race", id}, TemplateValue{"tournament", number_text(event.tournament_id)},
      TemplateValue{"time", std::move(time)}, TemplateValue{"vod", event.vod_url}};
  Notices out;
  out.push_back(
      notice("race_submitted", {.users = {*event.racer_user_id}}, values, link_to("races", id)));
  return out;
}

template <class E>
Result race_reviewed(std::string kind, const E& event, std::optional<std::string> reason,
                     Names& names) {
  if (!event.racer_user_id) return Notices{};
  auto reviewer = names.of(event.reviewer_user_id);
  if (!reviewer) return std::unexpected(std::move(reviewer.error()));
  const std::optional<std::string> id = text_of(event.entity_id);
  const std::array values{
      TemplateValue{"race", id}, TemplateValue{"tournament", number_text(event.tournament_id)},
      TemplateValue{"reviewer", *reviewer}, TemplateValue{"reason", std::move(reason)}};
  Notices out;
  out.push_back(
      notice(std::move(kind), {.users = {*event.racer_user_id}}, values, link_to("races", id)));
  return out;
}

Result invite_received(const InviteCreatedEvent& event, Names& names) {
  if (!event.invited_email || event.invited_email->empty()) return Notices{};
  auto inviter = names.of(event.inviter_user_id);
  if (!inviter) return std::unexpected(std::move(inviter.error()));
  const std::array values{TemplateValue{"org", organization_phrase(event.organization_id)},
                          TemplateValue{"inviter", *inviter},
                          TemplateValue{"code", event.invite_code}};
  Notices out;
  out.push_back(notice("invite_received", {.email = event.invited_email}, values,
                       link_to("invites", event.invite_code)));
  return out;
}

// Tells the inviter, whom InviteCreated put in the invite's group, how their invitation ended.
Result invite_answered(std::string kind, const EntityEvent& event,
                       const std::optional<std::string>& code,
                       std::optional<std::int64_t> answered_by,
                       herald::notify::Directory& directory, Names& names) {
  if (!code || code->empty()) return Notices{};
  auto inviters = directory.group(invite_group(*code));
  if (!inviters) return std::unexpected(std::move(inviters.error()));
  if (inviters->empty()) return Notices{};
  auto user = names.of(answered_by);
  if (!user) return std::unexpected(std::move(user.error()));
  const std::array values{TemplateValue{"org", organization_phrase(event.organization_id)},
                          TemplateValue{"code", code}, TemplateValue{"user", *user}};
  Notices out;
  out.push_back(
      notice(std::move(kind), {.users = std::move(*inviters)}, values, link_to("invites", code)));
  return out;
}

// --- the directory ---

// UserUpdated carries only the names of changed fields; the new values, when the producer sent
// them, are in the entity snapshot.
void from_snapshot(const std::optional<boost::json::object>& snapshot, DirectoryChange& change) {
  if (!snapshot) return;
  if (const auto* id = snapshot->if_contains("discord_id")) {
    if (id->is_int64()) {
      change.discord_id = id->get_int64();
    } else if (id->is_string()) {
      change.discord_id = user_id_of(EntityId(std::string(id->get_string())));
    }
  }
  if (const auto* name = snapshot->if_contains("discord_username"); name && name->is_string()) {
    change.discord_username = std::string(name->get_string());
  }
}

}  // namespace

std::span<const KindInfo> PlatformNotificationRules::kinds() const { return kind_table(); }

std::vector<DirectoryChange> PlatformNotificationRules::directory_changes(
    const StoredEvent& stored) const {
  const EventPtr& event = stored.event;
  std::vector<DirectoryChange> changes;
  if (const auto* created = event.get<UserCreatedEvent>()) {
    if (const auto user = user_id_of(created->entity_id)) {
      DirectoryChange change{.op = DirectoryChange::Op::upsert_user, .user_id = *user};
      from_snapshot(created->entity_data, change);
      if (created->discord_id) change.discord_id = created->discord_id;
      if (created->discord_username) change.discord_username = created->discord_username;
      changes.push_back(std::move(change));
    }
  } else if (const auto* updated = event.get<UserUpdatedEvent>()) {
    if (const auto user = user_id_of(updated->entity_id)) {
      DirectoryChange change{.op = DirectoryChange::Op::upsert_user, .user_id = *user};
      from_snapshot(updated->entity_data, change);
      changes.push_back(std::move(change));
    }
  } else if (const auto* deleted = event.get<UserDeletedEvent>()) {
    if (const auto user = user_id_of(deleted->entity_id)) {
      changes.push_back({.op = DirectoryChange::Op::delete_user, .user_id = *user});
    }
  } else if (const auto* added = event.get<OrganizationMemberAddedEvent>()) {
    if (added->member_user_id && added->organization_id) {
      changes.push_back({.op = DirectoryChange::Op::add_member,
                         .user_id = *added->member_user_id,
                         .organization_id = added->organization_id});
    }
  } else if (const auto* removed = event.get<OrganizationMemberRemovedEvent>()) {
    if (removed->member_user_id && removed->organization_id) {
      changes.push_back({.op = DirectoryChange::Op::remove_member,
                         .user_id = *removed->member_user_id,
                         .organization_id = removed->organization_id});
    }
  } else if (const auto* scheduled = event.get<MatchScheduledEvent>()) {
    if (scheduled->entity_id) {
      changes.push_back({.op = DirectoryChange::Op::set_group,
                         .group = match_group(*scheduled->entity_id),
                         .members = scheduled->participant_ids});
    }
  } else if (const auto* invite = event.get<InviteCreatedEvent>()) {
    if (invite->invite_code && !invite->invite_code->empty() && invite->inviter_user_id) {
      changes.push_back({.op = DirectoryChange::Op::set_group,
                         .group = invite_group(*invite->invite_code),
                         .members = {*invite->inviter_user_id}});
    }
  }
  return changes;
}

std::expected<std::vector<Notice>, Error> PlatformNotificationRules::notices(
    const StoredEvent& stored, herald::notify::Directory& directory) const {
  const EventPtr& event = stored.event;
  Names names(directory);
  if (const auto* e = event.get<UserPermissionChangedEvent>()) return user_permission_changed(*e);
  if (const auto* e = event.get<OrganizationMemberAddedEvent>()) return member_added(*e, names);
  if (const auto* e = event.get<OrganizationMemberRemovedEvent>()) return member_removed(*e, names);
  if (const auto* e = event.get<OrganizationMemberPermissionChangedEvent>()) {
    return member_permission_changed(*e, names);
  }
  if (const auto* e = event.get<TournamentCreatedEvent>()) {
    return tournament_notice("tournament_created", *e, e->tournament_name, e->tournament_type,
                             std::nullopt, std::nullopt);
  }
  if (const auto* e = event.get<TournamentStartedEvent>()) {
    return tournament_notice("tournament_started", *e, e->tournament_name, std::nullopt,
                             std::nullopt, std::nullopt);
  }
  if (const auto* e = event.get<TournamentEndedEvent>()) {
    auto winner = names.of(e->winner_user_id);
    if (!winner) return std::unexpected(std::move(winner.error()));
    return tournament_notice("tournament_ended", *e, e->tournament_name, std::nullopt,
                             std::move(*winner), std::nullopt);
  }
  if (const auto* e = event.get<TournamentUpdatedEvent>()) {
    std::optional<std::string> changed;
    if (e->changed_fields) changed = joined(*e->changed_fields);
    return tournament_notice("tournament_updated", *e, std::nullopt, std::nullopt, std::nullopt,
                             std::move(changed));
  }
  if (const auto* e = event.get<MatchScheduledEvent>()) return match_scheduled(*e, names);
  if (const auto* e = event.get<MatchCompletedEvent>()) {
    return match_completed(*e, directory, names);
  }
  if (const auto* e = event.get<RaceSubmittedEvent>()) return race_submitted(*e);
  if (const auto* e = event.get<RaceApprovedEvent>()) {
    return race_reviewed("race_approved", *e, std::nullopt, names);
  }
  if (const auto* e = event.get<RaceRejectedEvent>()) {
    return race_reviewed("race_rejected", *e, e->reason, names);
  }
  if (const auto* e = event.get<InviteCreatedEvent>()) return invite_received(*e, names);
  if (const auto* e = event.get<InviteAcceptedEvent>()) {
    return invite_answered("invite_accepted", *e, e->invite_code, e->accepted_by_user_id, directory,
                           names);
  }
  if (const auto* e = event.get<InviteRejectedEvent>()) {
    return invite_answered("invite_rejected", *e, e->invite_code, e->rejected_by_user_id, directory,
                           names);
  }
  if (const auto* e = event.get<InviteExpiredEvent>()) {
    return invite_answered("invite_expired", *e, e->invite_code, std::nullopt, directory, names);
  }
  return Notices{};
}

const PlatformNotificationRules& platform_notification_rules() {
  static const PlatformNotificationRules rules;
  return rules;
}

}  // namespace herald::domain
