#include "herald/authenticator.hpp"

#include <openssl/crypto.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "herald/event_store.hpp"

namespace herald {
namespace {

using Clock = std::chrono::steady_clock;

Error unauthenticated() {
  // One message for malformed, unknown and revoked tokens: which of them it was would tell a
  // guesser something.
  return Error{ErrorCode::unauthenticated,
               "API token not accepted: present a valid, unrevoked herald API token",
               {}};
}

}  // namespace

/// The answers of recent lookups by token hash, in two bounded FIFO buckets: known tokens and
/// unknown ones. Readers share the lock; only a miss takes it exclusively.
class Authenticator::Cache {
 public:
  Cache(std::size_t max_known, std::size_t max_unknown)
      : known_{.capacity = max_known}, unknown_{.capacity = max_unknown} {}

  /// The cached answer for `hash` when it has not expired: a token, or nullopt for "unknown".
  std::optional<std::optional<StoredApiToken>> find(const std::string& hash,
                                                    Clock::time_point now) const {
    std::shared_lock lock(mutex_);
    for (const Bucket* bucket : {&known_, &unknown_}) {
      auto it = bucket->entries.find(hash);
      if (it != bucket->entries.end() && now < it->second.expires) return it->second.token;
    }
    return std::nullopt;
  }

  void put(const std::string& hash, std::optional<StoredApiToken> token,
           Clock::time_point expires) {
    std::lock_guard lock(mutex_);
    // A token created or deleted since the last answer moves between the buckets.
    Bucket& bucket = token ? known_ : unknown_;
    Bucket& other = token ? unknown_ : known_;
    other.entries.erase(hash);  // its stale key in `order` is skipped when it comes up
    if (bucket.capacity == 0) return;
    auto it = bucket.entries.find(hash);
    if (it != bucket.entries.end()) {
      it->second = Entry{std::move(token), expires};
      return;
    }
    while (bucket.entries.size() >= bucket.capacity && !bucket.order.empty()) {
      bucket.entries.erase(bucket.order.front());
      bucket.order.pop_front();
    }
    // Keys whose entries were erased elsewhere linger in `order`; drop them before it outgrows
    // the bucket, so that memory stays bounded by the capacity.
    if (bucket.order.size() >= 2 * bucket.capacity) compact(bucket);
    bucket.entries.emplace(hash, Entry{std::move(token), expires});
    bucket.order.push_back(hash);
  }

  void clear() {
    std::lock_guard lock(mutex_);
    for (Bucket* bucket : {&known_, &unknown_}) {
      bucket->entries.clear();
      bucket->order.clear();
    }
  }

  std::size_t known_size() const {
    std::shared_lock lock(mutex_);
    return known_.entries.size();
  }
  std::size_t unknown_size() const {
    std::shared_lock lock(mutex_);
    return unknown_.entries.size();
  }

  std::atomic<std::uint64_t> lookups{0};

 private:
  struct Entry {
    std::optional<StoredApiToken> token;
    Clock::time_point expires;
  };
  struct Bucket {
    std::size_t capacity = 0;
    std::unordered_map<std::string, Entry> entries;
    /// Keys in insertion order: the front is evicted first.
    std::deque<std::string> order;
  };

  static void compact(Bucket& bucket) {
    std::deque<std::string> kept;
    for (std::string& key : bucket.order) {
      if (bucket.entries.contains(key)) kept.push_back(std::move(key));
    }
    bucket.order = std::move(kept);
  }

  mutable std::shared_mutex mutex_;
  Bucket known_;
  Bucket unknown_;
};

Authenticator::Authenticator(EventStore& store, AuthenticatorOptions options)
    : Authenticator(
          [&store](const std::string& token_sha256) { return store.find_token(token_sha256); },
          std::move(options)) {}

Authenticator::Authenticator(Lookup lookup, AuthenticatorOptions options)
    : lookup_(std::move(lookup)),
      options_(std::move(options)),
      cache_(std::make_unique<Cache>(options_.max_cached_tokens, options_.max_cached_unknown)) {
  if (!options_.clock) options_.clock = [] { return Clock::now(); };
}

Authenticator::~Authenticator() = default;

std::expected<ApiToken, Error> Authenticator::authenticate(std::string_view presented_token) {
  // The form is public, so refusing a malformed token early tells nothing, and it spares the
  // database and the cache anything an attacker sends that could not be a token.
  if (!is_well_formed_api_token(presented_token)) return std::unexpected(unauthenticated());
  const std::string hash = api_token_sha256(presented_token);
  const Clock::time_point now = options_.clock();

  std::optional<StoredApiToken> found;
  if (auto cached = cache_->find(hash, now)) {
    found = std::move(*cached);
  } else {
    cache_->lookups.fetch_add(1, std::memory_order_relaxed);
    auto looked_up = lookup_(hash);
    if (!looked_up) {
      return std::unexpected(Error{ErrorCode::unavailable,
                                   "cannot check the API token now: " + looked_up.error().message,
                                   {}});
    }
    found = std::move(*looked_up);
    cache_->put(hash, found, now + options_.cache_ttl);
  }
  // The lookup went by hash; compare the whole stored hash again in constant time, so that no
  // early exit of a string comparison can be timed.
  if (!found || found->token_sha256.size() != hash.size() ||
      CRYPTO_memcmp(found->token_sha256.data(), hash.data(), hash.size()) != 0 ||
      found->token.revoked_at) {
    return std::unexpected(unauthenticated());
  }
  return std::move(found->token);
}

void Authenticator::clear_cache() { cache_->clear(); }

std::uint64_t Authenticator::lookups() const noexcept {
  return cache_->lookups.load(std::memory_order_relaxed);
}

std::size_t Authenticator::cached_tokens() const { return cache_->known_size(); }

std::size_t Authenticator::cached_unknown() const { return cache_->unknown_size(); }

bool allows(const ApiToken& token, Scope scope) noexcept { return token.scopes.contains(scope); }

bool may_see(const ApiToken& token, std::optional<std::int64_t> organization_id) noexcept {
  if (!token.organization_id) return true;
  return organization_id && *organization_id == *token.organization_id;
}

}  // namespace herald
