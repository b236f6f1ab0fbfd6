#pragma once

// The events every store and HTTP benchmark writes: four of the platform's types in turn (the
// crash producer's mix), 280–400 bytes of wire JSON each.

#include <cstdint>
#include <string>
#include <vector>

#include "herald/domain/events.hpp"
#include "herald/event.hpp"

namespace herald_bench {

/// Event number `n` of the mix.
inline herald::EventPtr make_event(std::int64_t n) {
  using namespace herald::domain;
  const std::int64_t user = 1000 + n % 5000;
  switch (n % 4) {
    case 0:
      return herald::EventPtr::make(herald::make<UserCreatedEvent>(
          {.entity_id = user, .user_id = user}, {.discord_id = 180'000'000'000'000'000 + n,
                                                 .discord_username = "racer" + std::to_string(n)}));
    case 1:
      return herald::EventPtr::make(herald::make<OrganizationMemberAddedEvent>(
          {.entity_id = n, .user_id = 7, .organization_id = 42},
          {.member_user_id = user, .added_by_user_id = 7}));
    case 2:
      return herald::EventPtr::make(
          herald::make<RaceSubmittedEvent>({.entity_id = n, .user_id = user, .organization_id = 42},
                                           {.tournament_id = 3,
                                            .permalink_id = 481'516,
                                            .racer_user_id = user,
                                            .time_seconds = 5400 + n % 900,
                                            .vod_url = "https://www.twitch.tv/videos/2023456789"}));
    default:
      return herald::EventPtr::make(herald::make<TournamentUpdatedEvent>(
          {.entity_id = 3, .user_id = 7, .organization_id = 42},
          {.changed_fields = std::vector<std::string>{"rules_url", "runs_per_racer"}}));
  }
}

}  // namespace herald_bench
