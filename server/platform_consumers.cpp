#include "platform_consumers.hpp"

#include <fmt/core.h>

#include <expected>
#include <string>
#include <utility>

#include "herald/audit_log.hpp"
#include "herald/domain/audit_rules.hpp"
#include "herald/domain/events.hpp"

namespace herald::server {
namespace {

// The role sync reads what it needs from the store rather than from a service's tables, so the
// same handler works in `herald demo` and in `herald parked retry`, in another process, later.
std::expected<void, Error> grant_member_role(EventStore& store, const StoredEvent& stored) {
  const auto* added = stored.event.get<domain::OrganizationMemberAddedEvent>();
  if (added == nullptr || !added->organization_id || !added->member_user_id) return {};

  // The organization's guild as of this event: its latest link or unlink before it.
  auto guild = store.read_backward(
      stored.position, 1,
      EventFilter{.types = {"DiscordGuildLinkedEvent", "DiscordGuildUnlinkedEvent"},
                  .organization_id = added->organization_id});
  if (!guild) return std::unexpected(std::move(guild.error()));
  const auto* linked =
      guild->empty() ? nullptr : guild->front().event.get<domain::DiscordGuildLinkedEvent>();
  if (linked == nullptr) return {};  // no guild to grant a role in

  const std::string member = std::to_string(*added->member_user_id);
  auto account = store.read_backward(
      stored.position, 1,
      EventFilter{.types = {"UserCreatedEvent"}, .entity_type = "User", .entity_id = member});
  if (!account) return std::unexpected(std::move(account.error()));
  const auto* created =
      account->empty() ? nullptr : account->front().event.get<domain::UserCreatedEvent>();
  if (created == nullptr || !created->discord_id) {
    return std::unexpected(Error{
        ErrorCode::unavailable,
        fmt::format("user {} has no linked Discord account, so they cannot get the member role "
                    "in '{}'; retry once they link one",
                    member, linked->guild_name.value_or(linked->guild_id.value_or("?"))),
        {}});
  }
  // A deployment calls Discord's API here (PUT /guilds/{guild}/members/{user}/roles/{role}); the
  // demo has no Discord to call, so granting succeeds once the account is known.
  return {};
}

}  // namespace

std::vector<std::string_view> platform_consumer_names() {
  return {audit_consumer_name, discord_roles_consumer_name};
}

std::unique_ptr<DurableConsumer> make_platform_consumer(EventStore& store, std::string_view name,
                                                        ConsumerOptions options) {
  options.name = std::string(name);
  if (name == audit_consumer_name) {
    return make_audit_consumer(store, domain::audit_mapping(), std::move(options));
  }
  if (name == discord_roles_consumer_name) {
    return std::make_unique<DurableConsumer>(
        store, std::move(options),
        [&store](const StoredEvent& stored, const Delivery&) -> std::expected<void, Error> {
          return grant_member_role(store, stored);
        });
  }
  return nullptr;
}

}  // namespace herald::server
