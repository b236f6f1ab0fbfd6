#pragma once

// Keeps outbound requests to URLs that third parties registered (webhook endpoints) off the
// operator's own network: loopback, private, shared (CGNAT), link-local and unspecified addresses
// are refused, and the checked address is pinned so a second DNS answer cannot bypass the check.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "herald/error.hpp"

namespace herald::notify::detail {

/// A URL that passed the check, with the CURLOPT_RESOLVE entries that pin its checked addresses.
struct CheckedTarget {
  std::string host;
  std::uint16_t port = 0;
  /// "host:port:address" entries (empty for an IP literal or when private targets are allowed).
  std::vector<std::string> resolve;
};

/// True when `address` (an IPv4 or IPv6 literal, without brackets) is loopback, RFC 1918,
/// CGNAT (100.64.0.0/10), link-local, unique-local (fc00::/7), unspecified, multicast or
/// broadcast, including IPv4-mapped and IPv4-compatible IPv6 forms. An unparsable text is
/// treated as forbidden.
bool is_forbidden_address(std::string_view address);

/// The same check on a socket address (sockaddr_in or sockaddr_in6 bytes); for
/// CURLOPT_OPENSOCKETFUNCTION.
bool is_allowed_socket_address(const void* sockaddr_bytes, std::size_t length);

/// Checks `url` (http or https only), resolves its host and refuses it when any address it
/// resolves to is forbidden, unless `allow_private`. Errors: `invalid_argument` for a URL that is
/// not an absolute http(s) URL with a host; `unavailable` for a host that does not resolve;
/// `conflict` for a forbidden target (the message names the host and the address).
std::expected<CheckedTarget, Error> check_target(std::string_view url, bool allow_private);

}  // namespace herald::notify::detail
