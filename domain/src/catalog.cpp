#include "herald/domain/catalog.hpp"

#include "herald/domain/invite_events.hpp"
#include "herald/domain/organization_events.hpp"
#include "herald/domain/other_events.hpp"
#include "herald/domain/race_events.hpp"
#include "herald/domain/tournament_events.hpp"
#include "herald/domain/user_events.hpp"

namespace herald::domain {

void register_platform_events(herald::EventCatalog& catalog) {
  // Users
  catalog.add<UserCreatedEvent>();
  catalog.add<UserUpdatedEvent>();
  catalog.add<UserDeletedEvent>();
  catalog.add<UserPermissionChangedEvent>();
  // Organizations
  catalog.add<OrganizationCreatedEvent>();
  catalog.add<OrganizationUpdatedEvent>();
  catalog.add<OrganizationDeletedEvent>();
  catalog.add<OrganizationMemberAddedEvent>();
  catalog.add<OrganizationMemberRemovedEvent>();
  catalog.add<OrganizationMemberPermissionChangedEvent>();
  // Tournaments
  catalog.add<TournamentCreatedEvent>();
  catalog.add<TournamentUpdatedEvent>();
  catalog.add<TournamentDeletedEvent>();
  catalog.add<TournamentStartedEvent>();
  catalog.add<TournamentEndedEvent>();
  // Races and matches
  catalog.add<RaceSubmittedEvent>();
  catalog.add<RaceApprovedEvent>();
  catalog.add<RaceRejectedEvent>();
  catalog.add<MatchScheduledEvent>();
  catalog.add<MatchCompletedEvent>();
  // Invites
  catalog.add<InviteCreatedEvent>();
  catalog.add<InviteAcceptedEvent>();
  catalog.add<InviteRejectedEvent>();
  catalog.add<InviteExpiredEvent>();
  // Other
  catalog.add<DiscordGuildLinkedEvent>();
  catalog.add<DiscordGuildUnlinkedEvent>();
  catalog.add<PresetCreatedEvent>();
  catalog.add<PresetUpdatedEvent>();
}

const herald::EventCatalog& platform_catalog() {
  // C++11 guarantees one thread initializes a function-local static while others wait.
  static const herald::EventCatalog catalog = [] {
    herald::EventCatalog built;
    register_platform_events(built);
    return built;
  }();
  return catalog;
}

}  // namespace herald::domain
