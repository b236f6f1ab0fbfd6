#pragma once

// The platform's race and match events: async races under review, and scheduled matches.

#include <boost/describe/class.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "herald/event.hpp"

namespace herald::domain {

/// A racer submitted an async tournament race for review.
struct RaceSubmittedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "RaceSubmittedEvent",
      .entity_type = "AsyncTournamentRace",
      .priority = herald::Priority::normal,
      .description = "A racer submitted an async tournament race for review."};

  /// The tournament the race belongs to.
  std::optional<std::int64_t> tournament_id;
  /// The permalink (seed) the race was run on.
  std::optional<std::int64_t> permalink_id;
  /// The user who ran the race; the audit trail's actor for this event.
  std::optional<std::int64_t> racer_user_id;
  /// The finish time in whole seconds.
  std::optional<std::int64_t> time_seconds;
  /// Where the race's video can be watched.
  std::optional<std::string> vod_url;
};
BOOST_DESCRIBE_STRUCT(RaceSubmittedEvent, (herald::EntityEvent),
                      (tournament_id, permalink_id, racer_user_id, time_seconds, vod_url))

/// A reviewer approved a submitted race.
struct RaceApprovedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "RaceApprovedEvent",
      .entity_type = "AsyncTournamentRace",
      .priority = herald::Priority::normal,
      .description = "A reviewer approved a submitted race."};

  /// The tournament the race belongs to.
  std::optional<std::int64_t> tournament_id;
  /// The user who ran the race.
  std::optional<std::int64_t> racer_user_id;
  /// The user who approved it; the audit trail's actor for this event.
  std::optional<std::int64_t> reviewer_user_id;
};
BOOST_DESCRIBE_STRUCT(RaceApprovedEvent, (herald::EntityEvent),
                      (tournament_id, racer_user_id, reviewer_user_id))

/// A reviewer rejected a submitted race.
struct RaceRejectedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "RaceRejectedEvent",
      .entity_type = "AsyncTournamentRace",
      .priority = herald::Priority::normal,
      .description = "A reviewer rejected a submitted race."};

  /// The tournament the race belongs to.
  std::optional<std::int64_t> tournament_id;
  /// The user who ran the race.
  std::optional<std::int64_t> racer_user_id;
  /// The user who rejected it; the audit trail's actor for this event.
  std::optional<std::int64_t> reviewer_user_id;
  /// Why the race was rejected, as the reviewer gave it.
  std::optional<std::string> reason;
};
BOOST_DESCRIBE_STRUCT(RaceRejectedEvent, (herald::EntityEvent),
                      (tournament_id, racer_user_id, reviewer_user_id, reason))

/// A match between participants was scheduled.
struct MatchScheduledEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "MatchScheduledEvent",
                                              .entity_type = "MatchSchedule",
                                              .priority = herald::Priority::normal,
                                              .description = "A tournament match was scheduled."};

  /// The tournament the match belongs to.
  std::optional<std::int64_t> tournament_id;
  /// When the match starts, as ISO 8601 text, e.g. "2026-12-01T19:00:00Z".
  std::optional<std::string> scheduled_time;
  /// The users who play in the match.
  std::vector<std::int64_t> participant_ids;
};
BOOST_DESCRIBE_STRUCT(MatchScheduledEvent, (herald::EntityEvent),
                      (tournament_id, scheduled_time, participant_ids))

/// A scheduled match was played to its end.
struct MatchCompletedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "MatchCompletedEvent",
                                              .entity_type = "MatchSchedule",
                                              .priority = herald::Priority::normal,
                                              .description = "A tournament match was completed."};

  /// The tournament the match belongs to.
  std::optional<std::int64_t> tournament_id;
  /// The user who won the match, if it has a winner.
  std::optional<std::int64_t> winner_user_id;
};
BOOST_DESCRIBE_STRUCT(MatchCompletedEvent, (herald::EntityEvent), (tournament_id, winner_user_id))

}  // namespace herald::domain
