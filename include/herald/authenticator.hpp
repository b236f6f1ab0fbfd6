#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "herald/api_tokens.hpp"
#include "herald/error.hpp"

namespace herald {

class EventStore;

/// How an `Authenticator` caches and what clock it reads.
struct AuthenticatorOptions {
  /// How long a lookup's answer is reused, found or not. A token revoked in another process stops
  /// authenticating at most this long after the revocation.
  std::chrono::milliseconds cache_ttl{1000};
  /// The most known tokens (revoked ones included) kept in the cache.
  std::size_t max_cached_tokens = 1024;
  /// The most unknown tokens remembered as unknown. Kept apart from the known ones, so that a
  /// flood of made-up tokens evicts only other made-up tokens.
  std::size_t max_cached_unknown = 4096;
  /// The time the cache expires entries by; empty: std::chrono::steady_clock::now. Tests set it.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

/// Answers "which token is this?" for presented API tokens. Thread-safe: `authenticate` may be
/// called from any number of threads at once.
///
/// A presented token is hashed (SHA-256), and only the hash is looked up, cached or compared
/// (in constant time, CRYPTO_memcmp); the token itself is neither kept nor logged.
class Authenticator {
 public:
  /// Finds the stored token whose SHA-256 is the argument (see `EventStore::find_token`).
  using Lookup =
      std::function<std::expected<std::optional<StoredApiToken>, Error>(const std::string&)>;

  /// Authenticates against `store`'s tokens; `store` must outlive the authenticator.
  explicit Authenticator(EventStore& store, AuthenticatorOptions options = {});
  /// Authenticates against the tokens `lookup` finds; it is called from the threads that call
  /// `authenticate`, concurrently.
  explicit Authenticator(Lookup lookup, AuthenticatorOptions options = {});
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  /// The token `presented_token` is, when it exists and is not revoked. Errors:
  /// `unauthenticated` for a malformed, unknown or revoked token, with one message for all three
  /// so that the answer says nothing about which; `unavailable` (not cached) when the lookup
  /// failed, e.g. the database is unreachable.
  std::expected<ApiToken, Error> authenticate(std::string_view presented_token);

  /// Forgets every cached answer, so that the next call of each token looks it up again (after a
  /// revocation made through this process, for instance).
  void clear_cache();

  /// Lookups made so far (cache misses), for tests and metrics.
  std::uint64_t lookups() const noexcept;
  /// Answers currently cached: known tokens and unknown ones.
  std::size_t cached_tokens() const;
  std::size_t cached_unknown() const;

 private:
  class Cache;
  Lookup lookup_;
  AuthenticatorOptions options_;
  std::unique_ptr<Cache> cache_;
};

/// True when `token` grants `scope`. Scopes do not imply one another: admin does not grant read.
bool allows(const ApiToken& token, Scope scope) noexcept;

/// True when `token` may see, or ingest, an event of `organization_id`: always for a token bound
/// to no organization; for a bound one only when the event is of that same organization (not an
/// event of no organization).
bool may_see(const ApiToken& token, std::optional<std::int64_t> organization_id) noexcept;

}  // namespace herald
