#pragma once

// The platform's tournament events: a tournament's life from creation to its end.

#include <boost/describe/class.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "herald/event.hpp"

namespace herald::domain {

/// A tournament was created; `entity_id` is the new tournament's id.
struct TournamentCreatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "TournamentCreatedEvent",
                                              .entity_type = "Tournament",
                                              .priority = herald::Priority::normal,
                                              .description = "A tournament was created."};

  /// The tournament's display name.
  std::optional<std::string> tournament_name;
  /// The tournament's format, e.g. "async" or "live".
  std::optional<std::string> tournament_type;
};
BOOST_DESCRIBE_STRUCT(TournamentCreatedEvent, (herald::EntityEvent),
                      (tournament_name, tournament_type))

/// A tournament's settings changed; `changed_fields` names what changed.
struct TournamentUpdatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "TournamentUpdatedEvent",
                                              .entity_type = "Tournament",
                                              .priority = herald::Priority::normal,
                                              .description = "A tournament's settings changed."};

  /// The names of the tournament's fields that changed, if the producer listed them.
  std::optional<std::vector<std::string>> changed_fields;
};
BOOST_DESCRIBE_STRUCT(TournamentUpdatedEvent, (herald::EntityEvent), (changed_fields))

/// A tournament was deleted.
struct TournamentDeletedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "TournamentDeletedEvent",
                                              .entity_type = "Tournament",
                                              .priority = herald::Priority::normal,
                                              .description = "A tournament was deleted."};

  /// Why the tournament was deleted, as the actor gave it.
  std::optional<std::string> reason;
};
BOOST_DESCRIBE_STRUCT(TournamentDeletedEvent, (herald::EntityEvent), (reason))

/// A tournament started accepting races or matches.
struct TournamentStartedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "TournamentStartedEvent",
                                              .entity_type = "Tournament",
                                              .priority = herald::Priority::high,
                                              .description = "A tournament started."};

  /// The tournament's display name.
  std::optional<std::string> tournament_name;
};
BOOST_DESCRIBE_STRUCT(TournamentStartedEvent, (herald::EntityEvent), (tournament_name))

/// A tournament finished, with its winner if there is one.
struct TournamentEndedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "TournamentEndedEvent",
                                              .entity_type = "Tournament",
                                              .priority = herald::Priority::high,
                                              .description = "A tournament ended."};

  /// The tournament's display name.
  std::optional<std::string> tournament_name;
  /// The user who won the tournament, if it has a winner.
  std::optional<std::int64_t> winner_user_id;
};
BOOST_DESCRIBE_STRUCT(TournamentEndedEvent, (herald::EntityEvent),
                      (tournament_name, winner_user_id))

}  // namespace herald::domain
