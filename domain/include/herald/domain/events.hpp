#pragma once

// Every event type of the platform and its catalog: include this to emit or decode any of them.

#include <boost/mp11/list.hpp>

#include "herald/domain/catalog.hpp"
#include "herald/domain/invite_events.hpp"
#include "herald/domain/organization_events.hpp"
#include "herald/domain/other_events.hpp"
#include "herald/domain/race_events.hpp"
#include "herald/domain/tournament_events.hpp"
#include "herald/domain/user_events.hpp"

namespace herald::domain {

/// The platform's 28 event types, in catalog order (`register_platform_events` adds these).
using PlatformEvents = boost::mp11::mp_list<
    // Users
    UserCreatedEvent, UserUpdatedEvent, UserDeletedEvent, UserPermissionChangedEvent,
    // Organizations
    OrganizationCreatedEvent, OrganizationUpdatedEvent, OrganizationDeletedEvent,
    OrganizationMemberAddedEvent, OrganizationMemberRemovedEvent,
    OrganizationMemberPermissionChangedEvent,
    // Tournaments
    TournamentCreatedEvent, TournamentUpdatedEvent, TournamentDeletedEvent, TournamentStartedEvent,
    TournamentEndedEvent,
    // Races and matches
    RaceSubmittedEvent, RaceApprovedEvent, RaceRejectedEvent, MatchScheduledEvent,
    MatchCompletedEvent,
    // Invites
    InviteCreatedEvent, InviteAcceptedEvent, InviteRejectedEvent, InviteExpiredEvent,
    // Other
    DiscordGuildLinkedEvent, DiscordGuildUnlinkedEvent, PresetCreatedEvent, PresetUpdatedEvent>;

}  // namespace herald::domain
