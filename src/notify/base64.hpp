#pragma once

// Base64 (RFC 4648 section 4) for the senders: signatures and MIME bodies.

#include <optional>
#include <string>
#include <string_view>

namespace herald::notify::detail {

/// Standard base64 with padding, on one line.
std::string base64_encode(std::string_view bytes);

/// Decodes standard base64 with padding; nullopt for any other character, a bad length or bad
/// padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace herald::notify::detail
