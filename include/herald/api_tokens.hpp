#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "herald/error.hpp"
#include "herald/timestamp.hpp"

namespace herald {

/// One permission an API token grants. The values are bit flags, combined in `Scopes`.
enum class Scope : std::uint8_t {
  ingest = 1U << 0,  ///< Append events.
  read = 1U << 1,    ///< Read events, follow the live stream, read the catalog.
  audit = 1U << 2,   ///< Read and verify the audit log.
  admin = 1U << 3,   ///< Manage tokens and consumers, start replays.
  notify =
      1U << 4,  ///< Manage notifications: webhooks, announcement channels, deliveries, inboxes.
};

/// A set of scopes. Value type.
class Scopes {
 public:
  constexpr Scopes() noexcept = default;
  /// The set holding `scope` alone.
  constexpr Scopes(Scope scope) noexcept  // NOLINT(google-explicit-constructor): a set of one
      : bits_(static_cast<std::uint8_t>(scope)) {}

  /// True when the set holds `scope`.
  constexpr bool contains(Scope scope) const noexcept {
    return (bits_ & static_cast<std::uint8_t>(scope)) != 0;
  }
  /// True when the set holds no scope.
  constexpr bool empty() const noexcept { return bits_ == 0; }
  /// The union of both sets.
  constexpr Scopes operator|(Scopes other) const noexcept { return from_bits(bits_ | other.bits_); }
  /// The set as bit flags (`Scope` values or-ed together).
  constexpr std::uint8_t bits() const noexcept { return bits_; }
  /// The set of the known scopes among `bits`; unknown bits are dropped.
  static constexpr Scopes from_bits(unsigned bits) noexcept {
    Scopes scopes;
    scopes.bits_ = static_cast<std::uint8_t>(bits & 0x1FU);
    return scopes;
  }

  friend constexpr bool operator==(Scopes, Scopes) noexcept = default;

 private:
  std::uint8_t bits_ = 0;
};

/// The union of two scopes: `Scope::ingest | Scope::read`.
constexpr Scopes operator|(Scope a, Scope b) noexcept { return Scopes(a) | Scopes(b); }

/// The lower-case name of `scope`: "ingest", "read", "audit", "admin" or "notify".
std::string_view to_string(Scope scope) noexcept;

/// Parses a comma-separated list of scope names ("ingest,read"); spaces around names are
/// allowed and repeats are ignored. Errors (`invalid_argument`, field "scopes"): an empty list or
/// name, or an unknown name, which the message quotes and lists the known ones after.
std::expected<Scopes, Error> parse_scopes(std::string_view text);

/// The names of `scopes`, comma-separated in the fixed order ingest, read, audit, admin, notify; ""
/// when empty. `parse_scopes` reads it back.
std::string format_scopes(Scopes scopes);

/// An API token as the store keeps it: everything but the secret, of which only the SHA-256 is
/// stored (and that is not part of this struct either, so that listing tokens cannot leak it).
struct ApiToken {
  std::int64_t id = 0;
  /// Unique; 1 to 64 of [A-Za-z0-9._-].
  std::string name;
  Scopes scopes;
  /// A token bound to an organization sees and ingests only that organization's events.
  std::optional<std::int64_t> organization_id;
  /// A token bound to a user reads and changes only that user's inbox, preferences and email.
  std::optional<std::int64_t> user_id;
  Timestamp created_at{};
  /// Set once the token is revoked; a revoked token authenticates nothing.
  std::optional<Timestamp> revoked_at;
};

/// A token and the SHA-256 the store holds for it, as `EventStore::find_token` returns it.
struct StoredApiToken {
  ApiToken token;
  /// 64 lower-case hexadecimal characters.
  std::string token_sha256;
};

/// What every token starts with, so that a leaked one is recognisable in a secret scanner.
inline constexpr std::string_view api_token_prefix = "hrld_";
/// The length of a token: the prefix and 32 random bytes in base64url without padding.
inline constexpr std::size_t api_token_length = api_token_prefix.size() + 43;
/// The longest token name.
inline constexpr std::size_t api_token_name_max = 64;

/// A new token: `api_token_prefix` and 32 bytes from OpenSSL's CSPRNG, base64url without padding
/// (RFC 4648 section 5). Errors (`internal`): the generator could not be seeded.
std::expected<std::string, Error> generate_api_token();

/// True when `token` has the form `generate_api_token` produces (prefix, length, alphabet). Says
/// nothing about whether such a token exists.
bool is_well_formed_api_token(std::string_view token) noexcept;

/// The SHA-256 of `token` as 64 lower-case hexadecimal characters: what the store keeps.
std::string api_token_sha256(std::string_view token);

/// Checks a token name: 1 to 64 of [A-Za-z0-9._-]. Errors (`invalid_argument`, field "name")
/// quote the name, cut when long, and say what is allowed.
std::expected<void, Error> check_api_token_name(std::string_view name);

/// Checks a stored-hash argument: 64 lower-case hexadecimal characters. Errors
/// (`invalid_argument`, field "token_sha256") never quote the value.
std::expected<void, Error> check_api_token_sha256(std::string_view token_sha256);

}  // namespace herald
