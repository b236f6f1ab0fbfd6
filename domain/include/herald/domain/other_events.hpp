#pragma once

// The platform's other events: Discord guilds linked to organizations, and randomizer presets.

#include <boost/describe/class.hpp>
#include <optional>
#include <string>
#include <vector>

#include "herald/event.hpp"

namespace herald::domain {

/// A Discord guild (server) was linked to an organization.
struct DiscordGuildLinkedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "DiscordGuildLinkedEvent",
      .entity_type = "DiscordGuild",
      .priority = herald::Priority::normal,
      .description = "A Discord guild was linked to an organization."};

  /// The guild's Discord id, as text.
  std::optional<std::string> guild_id;
  /// The guild's name when it was linked.
  std::optional<std::string> guild_name;
};
BOOST_DESCRIBE_STRUCT(DiscordGuildLinkedEvent, (herald::EntityEvent), (guild_id, guild_name))

/// A Discord guild was unlinked from its organization.
struct DiscordGuildUnlinkedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{
      .name = "DiscordGuildUnlinkedEvent",
      .entity_type = "DiscordGuild",
      .priority = herald::Priority::normal,
      .description = "A Discord guild was unlinked from its organization."};

  /// The guild's Discord id, as text.
  std::optional<std::string> guild_id;
  /// Why the guild was unlinked, as the actor gave it.
  std::optional<std::string> reason;
};
BOOST_DESCRIBE_STRUCT(DiscordGuildUnlinkedEvent, (herald::EntityEvent), (guild_id, reason))

/// A randomizer preset was created.
struct PresetCreatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "PresetCreatedEvent",
                                              .entity_type = "RandomizerPreset",
                                              .priority = herald::Priority::normal,
                                              .description = "A randomizer preset was created."};

  /// The preset's name, unique within its namespace.
  std::optional<std::string> preset_name;
  /// The preset's namespace; on the wire "namespace" (a C++ keyword: the codec drops the `_`).
  std::optional<std::string> namespace_;
};
BOOST_DESCRIBE_STRUCT(PresetCreatedEvent, (herald::EntityEvent), (preset_name, namespace_))

/// A randomizer preset was changed; `changed_fields` names what changed.
struct PresetUpdatedEvent : herald::EntityEvent {
  static constexpr herald::EventTraits traits{.name = "PresetUpdatedEvent",
                                              .entity_type = "RandomizerPreset",
                                              .priority = herald::Priority::normal,
                                              .description = "A randomizer preset was changed."};

  /// The preset's name.
  std::optional<std::string> preset_name;
  /// The names of the preset's fields that changed, if the producer listed them.
  std::optional<std::vector<std::string>> changed_fields;
};
BOOST_DESCRIBE_STRUCT(PresetUpdatedEvent, (herald::EntityEvent), (preset_name, changed_fields))

}  // namespace herald::domain
