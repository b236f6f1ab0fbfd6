#pragma once

// The platform's message templates: one title and one body per message, rendered as plain text,
// Discord markdown and HTML, with every value cleaned and escaped for the form it lands in.
//
// Template syntax: `{name}` is a value, `{*name}` a value in bold (markdown `**`, HTML `strong`),
// `{%name}` a web address made a link when it is a plain http(s) URL (else an ordinary value),
// `[...]` an optional part, left out when a value inside it is missing; a line break separates
// paragraphs. Template text itself is trusted and contains none of the characters the forms treat
// specially; only values are escaped.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "herald/notify/notification.hpp"

namespace herald::domain::templates {

/// A value a template names; nullopt leaves out the optional parts that use it.
struct TemplateValue {
  std::string_view name;
  std::optional<std::string> text;
};

/// Values longer than this many code points are cut and end in "…".
inline constexpr std::size_t max_value_chars = 120;

/// Web addresses longer than this are not made links.
inline constexpr std::size_t max_url_bytes = 512;

/// `value` made safe as one line of text: control characters and bidirectional overrides become
/// spaces or vanish, invalid UTF-8 becomes U+FFFD, and it is cut to `max_value_chars`.
std::string clean_value(std::string_view value);
/// `text` with Discord markdown's special characters escaped and mentions (`@everyone`, `@here`,
/// `<@id>`) neutralised.
std::string escape_markdown(std::string_view text);
/// `text` as one URL path segment: every byte outside RFC 3986's unreserved set percent-encoded.
std::string escape_path_segment(std::string_view text);

/// The title and body templates of one message of the platform.
struct MessageTemplate {
  /// The kind, or a kind and its variant ("organization_member_permission_granted").
  std::string_view id;
  std::string_view title;
  std::string_view body;
};

/// The platform's message templates: one per kind, two for a permission granted or revoked.
std::span<const MessageTemplate> message_templates();

/// The template `id`; a missing one is a bug (asserted).
const MessageTemplate& message_template(std::string_view id);

/// The message of `title` and `body` (templates as above) filled in with `values`, pointing to
/// `link`. A name the templates use but `values` lacks is a bug (asserted).
herald::notify::Message render(std::string_view title, std::string_view body,
                               std::span<const TemplateValue> values, std::string link);

/// The message of template `id` filled in with `values`, pointing to `link`.
herald::notify::Message render(std::string_view id, std::span<const TemplateValue> values,
                               std::string link);

}  // namespace herald::domain::templates
