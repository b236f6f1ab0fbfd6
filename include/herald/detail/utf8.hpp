#pragma once

#include <cstddef>
#include <string_view>

namespace herald::detail {

/// The offset of the first byte that does not belong to a well-formed UTF-8 sequence (RFC 3629
/// section 4: no overlongs, no surrogates, nothing above U+10FFFF), or npos.
std::size_t first_invalid_utf8(std::string_view text) noexcept;

}  // namespace herald::detail
