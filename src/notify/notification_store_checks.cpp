#include "notify/notification_store_checks.hpp"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <set>
#include <tuple>

namespace herald::notify::detail {
namespace {

// Webhooks and announcement channels belong to organizations; a user's preferences name only the
// channels that reach the user.
bool is_user_channel(Channel channel) {
  return channel == Channel::in_app || channel == Channel::discord || channel == Channel::email;
}

std::string not_a_user_channel(Channel channel) {
  return "'" + std::string(to_string(channel)) +
         "' is an organization's channel, not a user's: preferences name in_app, discord or email";
}

// Longest inbox title, body and link, delivery recipient and payload, in bytes.
constexpr std::size_t max_title_bytes = 4096;
constexpr std::size_t max_body_bytes = std::size_t{1} << 20;
constexpr std::size_t max_recipient_bytes = 512;
constexpr std::size_t max_payload_bytes = std::size_t{8} << 20;
constexpr std::size_t max_group_members = 100000;
constexpr std::size_t max_event_types = 256;
constexpr std::size_t max_rules = 10000;

// The length of the UTF-8 sequence starting at `text[i]` (RFC 3629 section 4: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 when it is not one.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

std::string indexed(std::string_view base, std::size_t index, std::string_view member) {
  std::string out(base);
  out += '[';
  out += std::to_string(index);
  out += ']';
  if (!member.empty()) {
    out += '.';
    out += member;
  }
  return out;
}

std::expected<void, Error> check_change(const std::string& field, const DirectoryChange& change) {
  if (auto ok = check_id(field + ".user_id", change.user_id);
      !ok && change.op != DirectoryChange::Op::set_group) {
    return ok;
  }
  switch (change.op) {
    case DirectoryChange::Op::upsert_user:
      if (change.discord_username) {
        return check_text(field + ".discord_username", *change.discord_username, max_name_bytes,
                          true);
      }
      return {};
    case DirectoryChange::Op::delete_user:
      return {};
    case DirectoryChange::Op::add_member:
    case DirectoryChange::Op::remove_member:
      if (!change.organization_id) {
        return std::unexpected(Error::for_field(ErrorCode::invalid_argument,
                                                field + ".organization_id",
                                                "a membership change needs an organization"));
      }
      return check_id(field + ".organization_id", *change.organization_id);
    case DirectoryChange::Op::set_group:
      if (auto ok = check_text(field + ".group", change.group, max_name_bytes, false); !ok) {
        return ok;
      }
      if (change.members.size() > max_group_members) {
        return std::unexpected(Error::for_field(ErrorCode::too_large, field + ".members",
                                                "at most " + std::to_string(max_group_members) +
                                                    " members, got " +
                                                    std::to_string(change.members.size())));
      }
      for (std::size_t i = 0; i < change.members.size(); ++i) {
        if (auto ok = check_id(indexed(field + ".members", i, ""), change.members[i]); !ok) {
          return ok;
        }
      }
      return {};
  }
  return std::unexpected(
      Error::for_field(ErrorCode::invalid_argument, field + ".op", "not a known directory change"));
}

std::expected<void, Error> check_inbox_item(const std::string& field, const NewInboxItem& item) {
  if (auto ok = check_id(field + ".user_id", item.user_id); !ok) return ok;
  if (auto ok = check_text(field + ".kind", item.kind, max_name_bytes, false); !ok) return ok;
  if (item.event_id.is_nil()) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, field + ".event_id", "the nil UUID"));
  }
  if (auto ok = check_timestamp(field + ".created_at", item.created_at); !ok) return ok;
  if (auto ok = check_text(field + ".title", item.title, max_title_bytes, true); !ok) return ok;
  if (auto ok = check_text(field + ".body", item.body, max_body_bytes, true); !ok) return ok;
  return check_text(field + ".link", item.link, max_url_bytes, true);
}

std::expected<void, Error> check_delivery(const std::string& field, const NewDelivery& delivery) {
  if (delivery.channel == Channel::in_app) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, field + ".channel",
        "in_app is not delivered through the queue: the router writes the inbox directly"));
  }
  if (!parse_channel(to_string(delivery.channel))) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, field + ".channel", "not a known channel"));
  }
  if (delivery.event_id.is_nil()) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, field + ".event_id", "the nil UUID"));
  }
  if (auto ok = check_text(field + ".recipient", delivery.recipient, max_recipient_bytes, false);
      !ok) {
    return ok;
  }
  if (auto ok = check_text(field + ".kind", delivery.kind, max_name_bytes, false); !ok) return ok;
  return check_text(field + ".payload", delivery.payload, max_payload_bytes, true);
}

}  // namespace

std::expected<void, Error> check_text(std::string_view field, std::string_view value,
                                      std::size_t max_bytes, bool allow_empty) {
  if (value.empty() && !allow_empty) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, field, "must not be empty"));
  }
  if (value.size() > max_bytes) {
    return std::unexpected(Error::for_field(
        ErrorCode::too_large, field,
        "at most " + std::to_string(max_bytes) + " bytes, got " + std::to_string(value.size())));
  }
  for (std::size_t i = 0; i < value.size();) {
    if (value[i] == '\0') {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, field,
                           "contains a NUL byte at offset " + std::to_string(i)));
    }
    const std::size_t length = utf8_sequence(value, i);
    if (length == 0) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, field,
                           "not valid UTF-8 (at byte offset " + std::to_string(i) + ")"));
    }
    i += length;
  }
  return {};
}

std::string sanitize_text(std::string_view value, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(value.size(), max_bytes));
  for (std::size_t i = 0; i < value.size();) {
    std::size_t length = value[i] == '\0' ? 0 : utf8_sequence(value, i);
    const std::size_t needed = length == 0 ? 1 : length;
    if (out.size() + needed > max_bytes) break;
    if (length == 0) {
      out += '?';
      ++i;
    } else {
      out.append(value.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::expected<void, Error> check_timestamp(std::string_view field, Timestamp value) {
  // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
  constexpr std::int64_t earliest = -62'135'596'800'000'000;
  constexpr std::int64_t latest = 253'402'300'799'999'999;
  const std::int64_t micros = value.time_since_epoch().count();
  if (micros < earliest || micros > latest) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                            "expected a time in the years 1 to 9999"));
  }
  return {};
}

std::expected<void, Error> check_limit(std::string_view field, std::size_t limit) {
  if (limit < 1 || limit > 1000) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                            "expected 1 to 1000, got " + std::to_string(limit)));
  }
  return {};
}

std::expected<void, Error> check_id(std::string_view field, std::int64_t id) {
  if (id <= 0) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                            "expected a positive id, got " + std::to_string(id)));
  }
  return {};
}

std::expected<void, Error> check_email(std::string_view field, std::string_view email) {
  if (auto ok = check_text(field, email, max_email_bytes, false); !ok) return ok;
  for (char c : email) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                              "an email address holds no spaces or control "
                                              "characters"));
    }
  }
  const auto at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                            "expected an address with exactly one '@'"));
  }
  if (at == 0 || at + 1 == email.size()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field,
                                            "expected a local part and a domain around the '@'"));
  }
  return {};
}

std::expected<void, Error> check_url(std::string_view field, std::string_view url) {
  if (auto ok = check_text(field, url, max_url_bytes, false); !ok) return ok;
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, field,
                         "not an absolute URL (" + parsed.error().message() + ")"));
  }
  if (parsed->scheme_id() != boost::urls::scheme::http &&
      parsed->scheme_id() != boost::urls::scheme::https) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, field,
        "expected an http or https URL, got scheme '" + std::string(parsed->scheme()) + "'"));
  }
  if (!parsed->has_authority() || parsed->encoded_host().empty()) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, field, "the URL names no host"));
  }
  return {};
}

std::expected<void, Error> check_event_types(std::string_view field,
                                             const std::vector<std::string>& event_types) {
  if (event_types.size() > max_event_types) {
    return std::unexpected(Error::for_field(ErrorCode::too_large, field,
                                            "at most " + std::to_string(max_event_types) +
                                                " event types, got " +
                                                std::to_string(event_types.size())));
  }
  for (std::size_t i = 0; i < event_types.size(); ++i) {
    const std::string name = indexed(field, i, "");
    if (auto ok = check_text(name, event_types[i], max_name_bytes, false); !ok) return ok;
    for (char c : event_types[i]) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte <= 0x20 || byte == 0x7F) {
        return std::unexpected(
            Error::for_field(ErrorCode::invalid_argument, name,
                             "an event type holds no spaces or control characters"));
      }
    }
  }
  return {};
}

std::expected<void, Error> check_routed_events(std::span<const RoutedEvent> events) {
  for (std::size_t e = 0; e < events.size(); ++e) {
    const RoutedEvent& event = events[e];
    const std::string base = indexed("events", e, "");
    if (e > 0 && event.position <= events[e - 1].position) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, base + ".position",
                                              "events must come in ascending position order; got " +
                                                  std::to_string(event.position) + " after " +
                                                  std::to_string(events[e - 1].position)));
    }
    for (std::size_t i = 0; i < event.changes.size(); ++i) {
      if (auto ok = check_change(indexed(base + ".changes", i, ""), event.changes[i]); !ok) {
        return ok;
      }
    }
    for (std::size_t i = 0; i < event.inbox.size(); ++i) {
      if (auto ok = check_inbox_item(indexed(base + ".inbox", i, ""), event.inbox[i]); !ok) {
        return ok;
      }
    }
    for (std::size_t i = 0; i < event.deliveries.size(); ++i) {
      if (auto ok = check_delivery(indexed(base + ".deliveries", i, ""), event.deliveries[i]);
          !ok) {
        return ok;
      }
    }
  }
  return {};
}

std::expected<void, Error> check_preferences(const UserPreferences& preferences,
                                             std::span<const KindInfo> kinds) {
  if (auto ok = check_id("user_id", preferences.user_id); !ok) return ok;
  if (preferences.rules.size() > max_rules) {
    return std::unexpected(Error::for_field(ErrorCode::too_large, "rules",
                                            "at most " + std::to_string(max_rules) +
                                                " rules, got " +
                                                std::to_string(preferences.rules.size())));
  }
  std::set<std::tuple<std::string, Channel, std::optional<std::int64_t>>> seen;
  for (std::size_t i = 0; i < preferences.rules.size(); ++i) {
    const PreferenceRule& rule = preferences.rules[i];
    const std::string field = indexed("rules", i, "");
    if (rule.user_id != 0 && rule.user_id != preferences.user_id) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field + ".user_id",
                                              "a rule of user " + std::to_string(rule.user_id) +
                                                  " in the preferences of user " +
                                                  std::to_string(preferences.user_id)));
    }
    if (!parse_channel(to_string(rule.channel))) {
      return std::unexpected(
          Error::for_field(ErrorCode::invalid_argument, field + ".channel", "not a known channel"));
    }
    if (!is_user_channel(rule.channel)) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field + ".channel",
                                              not_a_user_channel(rule.channel)));
    }
    if (rule.organization_id) {
      if (auto ok = check_id(field + ".organization_id", *rule.organization_id); !ok) return ok;
    }
    const auto kind = std::ranges::find(kinds, rule.kind, &KindInfo::name);
    if (kind == kinds.end()) {
      std::string shown = sanitize_text(rule.kind, 64);
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, field + ".kind",
                                              "unknown notification kind '" + shown + "'"));
    }
    if (kind->critical && rule.channel == Channel::in_app && !rule.enabled) {
      return std::unexpected(Error::for_field(
          ErrorCode::invalid_argument, field + ".enabled",
          "'" + rule.kind + "' is critical: it cannot be turned off in the inbox"));
    }
    if (!seen.emplace(rule.kind, rule.channel, rule.organization_id).second) {
      return std::unexpected(Error::for_field(
          ErrorCode::invalid_argument, field,
          "a second rule for kind '" + rule.kind + "' on " + std::string(to_string(rule.channel)) +
              (rule.organization_id ? " in organization " + std::to_string(*rule.organization_id)
                                    : std::string(" for all organizations"))));
    }
  }
  for (std::size_t i = 0; i < preferences.muted.size(); ++i) {
    if (!parse_channel(to_string(preferences.muted[i]))) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, indexed("muted", i, ""),
                                              "not a known channel"));
    }
    if (!is_user_channel(preferences.muted[i])) {
      return std::unexpected(Error::for_field(ErrorCode::invalid_argument, indexed("muted", i, ""),
                                              not_a_user_channel(preferences.muted[i])));
    }
  }
  return {};
}

}  // namespace herald::notify::detail
