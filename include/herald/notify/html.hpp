#pragma once

#include <string>
#include <string_view>

namespace herald::notify {

/// `text` with the five characters that are special in HTML (& < > " ') replaced by their
/// character references, so it is safe in element content and in quoted attribute values.
std::string escape_html(std::string_view text);

}  // namespace herald::notify
