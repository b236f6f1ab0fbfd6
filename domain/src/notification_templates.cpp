#include "notification_templates.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "herald/notify/html.hpp"

namespace herald::domain::templates {
namespace {

using notify::escape_html;

enum class Form : std::uint8_t { text, markdown, html };

constexpr std::string_view replacement_character = "\xEF\xBF\xBD";
constexpr std::string_view ellipsis = "\xE2\x80\xA6";
constexpr std::string_view zero_width_space = "\xE2\x80\x8B";

// The length of the UTF-8 sequence at the start of `bytes` and its code point, or 0 when it is
// not well-formed (RFC 3629, section 4: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t decode_utf8(std::string_view bytes, char32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  std::size_t length = 0;
  char32_t minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1F;
    minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0F;
    minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07;
    minimum = 0x10000;
  } else {
    return 0;
  }
  if (bytes.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3F);
  }
  if (code_point < minimum || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return 0;
  }
  return length;
}

// Characters that would let a value reorder the text around it (a "Trojan Source" trick).
bool bidirectional_control(char32_t code_point) {
  return code_point == 0x200E || code_point == 0x200F ||
         (code_point >= 0x202A && code_point <= 0x202E) ||
         (code_point >= 0x2066 && code_point <= 0x2069);
}

const std::optional<std::string>& lookup(std::span<const TemplateValue> values,
                                         std::string_view name) {
  const auto found =
      std::ranges::find_if(values, [&](const TemplateValue& value) { return value.name == name; });
  assert(found != values.end() && "a template names a value the rules did not give");
  return found->text;
}

// A value that is a web address as is, safe to make a link of: http(s), no spaces, nothing that
// closes a markdown link or an HTML attribute, and no '@' (a mention).
bool plain_url(std::string_view value) {
  if (!value.starts_with("https://") && !value.starts_with("http://")) return false;
  if (value.size() > max_url_bytes) return false;
  return std::ranges::all_of(value, [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("-._~:/?#=&%+,;!$").find(c) != std::string_view::npos;
  });
}

// Returns false, appending nothing, for a value that is blank once cleaned: it counts as missing.
bool append_value(std::string& out, std::string_view value, char style, Form form) {
  if (style == '%' && plain_url(value)) {
    switch (form) {
      case Form::text:
        out += value;
        break;
      case Form::markdown:
        // Angle brackets: a link without an embed.
        out += '<';
        out += value;
        out += '>';
        break;
      case Form::html:
        out += "<a href=\"";
        out += escape_html(value);
        out += "\">";
        out += escape_html(value);
        out += "</a>";
        break;
    }
    return true;
  }
  const bool bold = style == '*';
  const std::string clean = clean_value(value);
  if (clean.empty()) return false;
  switch (form) {
    case Form::text:
      out += clean;
      break;
    case Form::markdown:
      if (bold) out += "**";
      out += escape_markdown(clean);
      if (bold) out += "**";
      break;
    case Form::html:
      if (bold) out += "<strong>";
      out += escape_html(clean);
      if (bold) out += "</strong>";
      break;
  }
  return true;
}

// Expands `pattern` in `form`; sets `missing` when a value it names is absent, so that an
// optional part can be left out whole.
std::string expand(std::string_view pattern, std::span<const TemplateValue> values, Form form,
                   bool& missing) {
  std::string out;
  std::size_t i = 0;
  while (i < pattern.size()) {
    const char c = pattern[i];
    if (c == '[') {
      const std::size_t end = pattern.find(']', i);
      assert(end != std::string_view::npos && "an optional part is not closed");
      bool part_missing = false;
      std::string part = expand(pattern.substr(i + 1, end - i - 1), values, form, part_missing);
      if (!part_missing) out += part;
      i = end + 1;
    } else if (c == '{') {
      const std::size_t end = pattern.find('}', i);
      assert(end != std::string_view::npos && "a value is not closed");
      std::string_view name = pattern.substr(i + 1, end - i - 1);
      char style = 0;
      if (name.starts_with('*') || name.starts_with('%')) {
        style = name.front();
        name.remove_prefix(1);
      }
      const std::optional<std::string>& value = lookup(values, name);
      if (!value || !append_value(out, *value, style, form)) missing = true;
      i = end + 1;
    } else if (c == '\n') {
      out += form == Form::html ? "</p><p>" : "\n";
      ++i;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

// Template text is trusted: it must hold none of the markdown or HTML specials, which only values
// may bring (and then escaped).
constexpr MessageTemplate templates[] = {
    {"user_permission_changed", "Your permission level changed",
     "Your platform permission level changed[ from {*old}][ to {*new}]."},
    {"organization_member_added", "You were added to {org}",
     "You are now a member of {org}.[ Added by {*actor}.]"},
    {"organization_member_removed", "You were removed from {org}",
     "You are no longer a member of {org}.[ Removed by {*actor}.][\nReason: {reason}]"},
    {"organization_member_permission_granted", "You were granted {permission} in {org}",
     "You were granted the permission {*permission} in {org}.[ Granted by {*actor}.]"},
    {"organization_member_permission_revoked", "You lost {permission} in {org}",
     "The permission {*permission} was revoked from you in {org}.[ Revoked by {*actor}.]"},
    {"tournament_created", "New tournament: {tournament}",
     "A new tournament, {*tournament}, was created in {org}.[ Format: {format}.]"},
    {"tournament_started", "Tournament started: {tournament}",
     "The tournament {*tournament} in {org} has started."},
    {"tournament_ended", "Tournament ended: {tournament}",
     "The tournament {*tournament} in {org} has ended.[ Winner: {*winner}.]"},
    {"tournament_updated", "Tournament updated: {tournament}",
     "The tournament {*tournament} in {org} was updated.[ Changed: {changed}.]"},
    {"match_scheduled", "Your match is scheduled[ for {time}]",
     "Your match[ #{match}][ in tournament #{tournament}] is scheduled[ for {*time}]."
     "[\nPlayers: {players}]"},
    {"match_completed", "Your match is complete",
     "Your match[ #{match}][ in tournament #{tournament}] is complete.[ Winner: {*winner}.]"},
    {"race_submitted", "Your race was submitted",
     "Your race[ #{race}][ in tournament #{tournament}] was submitted for review."
     "[ Time: {*time}.][\nVOD: {%vod}]"},
    {"race_approved", "Your race was approved",
     "Your race[ #{race}][ in tournament #{tournament}] was approved[ by {*reviewer}]."},
    {"race_rejected", "Your race was rejected",
     "Your race[ #{race}][ in tournament #{tournament}] was rejected[ by {*reviewer}]."
     "[\nReason: {reason}]"},
    {"invite_received", "You are invited to join {org}",
     "You are invited to join {org}[ by {*inviter}].[\nYour invitation code: {*code}]"},
    {"invite_accepted", "Your invitation was accepted",
     "Your invitation[ {code}] to join {org} was accepted[ by {*user}]."},
    {"invite_rejected", "Your invitation was declined",
     "Your invitation[ {code}] to join {org} was declined[ by {*user}]."},
    {"invite_expired", "Your invitation expired",
     "Your invitation[ {code}] to join {org} expired unanswered."},
};

}  // namespace

std::span<const MessageTemplate> message_templates() { return templates; }

const MessageTemplate& message_template(std::string_view id) {
  const auto found =
      std::ranges::find_if(templates, [&](const MessageTemplate& entry) { return entry.id == id; });
  assert(found != std::end(templates) && "no template for this message");
  return *found;
}

std::string clean_value(std::string_view value) {
  std::string out;
  out.reserve(std::min(value.size(), max_value_chars * 4));
  std::size_t chars = 0;
  while (!value.empty()) {
    char32_t code_point = 0;
    std::size_t length = decode_utf8(value, code_point);
    std::string_view piece = value.substr(0, length);
    if (length == 0) {
      length = 1;
      piece = replacement_character;
    } else if (code_point < 0x20 || (code_point >= 0x7F && code_point < 0xA0) ||
               code_point == 0x2028 || code_point == 0x2029) {
      piece = " ";
    } else if (bidirectional_control(code_point)) {
      piece = {};
    }
    value.remove_prefix(length);
    if (piece.empty()) continue;
    if (chars == max_value_chars) {
      out += ellipsis;
      break;
    }
    out += piece;
    ++chars;
  }
  const auto first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  out.erase(0, first);
  out.erase(out.find_last_not_of(' ') + 1);
  return out;
}

std::string escape_markdown(std::string_view text) {
  // Discord's markdown drops a backslash before any punctuation and shows the character as is,
  // so escaping more than needed is harmless. Headings and lists ('#', '-') only count at the
  // start of a line, where a value never is (line breaks in values become spaces). Mentions are
  // parsed from the raw text, so an '@' gets a zero-width space after it instead: "@everyone"
  // no longer pings anyone.
  constexpr std::string_view special = "\\*_~`|<>[]()";
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (const char c : text) {
    if (c == '@') {
      out += '@';
      out += zero_width_space;
    } else {
      if (special.find(c) != std::string_view::npos) out += '\\';
      out += c;
    }
  }
  return out;
}

std::string escape_path_segment(std::string_view text) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0x0F];
    }
  }
  return out;
}

herald::notify::Message render(std::string_view title, std::string_view body,
                               std::span<const TemplateValue> values, std::string link) {
  bool missing = false;
  herald::notify::Message message;
  message.title = expand(title, values, Form::text, missing);
  message.text = expand(body, values, Form::text, missing);
  message.markdown = expand(body, values, Form::markdown, missing);
  message.html = "<p>" + expand(body, values, Form::html, missing) + "</p>";
  message.link = std::move(link);
  return message;
}

herald::notify::Message render(std::string_view id, std::span<const TemplateValue> values,
                               std::string link) {
  const MessageTemplate& entry = message_template(id);
  return render(entry.title, entry.body, values, std::move(link));
}

}  // namespace herald::domain::templates
