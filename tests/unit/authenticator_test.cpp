#include "herald/authenticator.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "herald/domain/catalog.hpp"
#include "herald/event_store.hpp"

namespace herald {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// A clock that moves only when told to; safe to read from several threads.
class ManualClock {
 public:
  Clock::time_point now() const {
    return start_ + std::chrono::milliseconds(elapsed_ms_.load(std::memory_order_relaxed));
  }
  void advance(std::chrono::milliseconds by) { elapsed_ms_ += by.count(); }
  std::function<Clock::time_point()> function() {
    return [this] { return now(); };
  }

 private:
  Clock::time_point start_ = Clock::now();
  std::atomic<std::int64_t> elapsed_ms_{0};
};

/// A SQLite store in a temporary directory, and a second store on the same file standing for
/// another process (an operator running 'herald token revoke').
class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    directory_ = std::filesystem::temp_directory_path() /
                 ("herald-auth-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    store_ = open();
    other_process_ = open();
  }
  void TearDown() override {
    store_.reset();
    other_process_.reset();
    std::filesystem::remove_all(directory_);
  }

  std::unique_ptr<EventStore> open() {
    auto store = open_store(
        {.location = (directory_ / "herald.db").string(), .catalog = &domain::platform_catalog()});
    EXPECT_TRUE(store) << store.error().message;
    return std::move(store.value());
  }

  /// Creates a token in the store and returns its secret.
  std::string create(const std::string& name, Scopes scopes = Scope::read,
                     std::optional<std::int64_t> organization = std::nullopt) {
    const std::string token = generate_api_token().value();
    auto created =
        store_->create_token(name, api_token_sha256(token), scopes, organization, std::nullopt);
    EXPECT_TRUE(created) << created.error().message;
    return token;
  }

  /// An authenticator on the store that counts lookups itself too, reading `clock_`.
  Authenticator counting(AuthenticatorOptions options = {}) {
    options.clock = clock_.function();
    return Authenticator(
        [this](const std::string& hash) {
          ++store_lookups_;
          return store_->find_token(hash);
        },
        std::move(options));
  }

  static void expect_unauthenticated(const std::expected<ApiToken, Error>& result,
                                     const std::string& what) {
    ASSERT_FALSE(result) << what << " was accepted";
    EXPECT_EQ(result.error().code, ErrorCode::unauthenticated) << what;
  }

  std::filesystem::path directory_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<EventStore> other_process_;
  ManualClock clock_;
  std::atomic<int> store_lookups_{0};
};

TEST_F(AuthenticatorTest, AuthenticatesAStoredTokenAndReturnsItsNameScopesAndOrganization) {
  const std::string token = create("ingest-bot", Scope::ingest | Scope::read, 42);
  Authenticator authenticator(*store_);
  auto found = authenticator.authenticate(token);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->name, "ingest-bot");
  EXPECT_EQ(found->scopes, Scope::ingest | Scope::read);
  EXPECT_EQ(found->organization_id, 42);
  EXPECT_EQ(found->user_id, std::nullopt);
}

TEST_F(AuthenticatorTest, ATokenBoundToAUserAuthenticatesAsThatUser) {
  const std::string token = generate_api_token().value();
  ASSERT_TRUE(store_->create_token("inbox-42", api_token_sha256(token), Scope::read | Scope::notify,
                                   std::nullopt, 42));
  Authenticator authenticator(*store_);
  auto found = authenticator.authenticate(token);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->user_id, 42);
  EXPECT_TRUE(allows(*found, Scope::notify));
  // From the cache too.
  auto again = authenticator.authenticate(token);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->user_id, 42);
  EXPECT_EQ(authenticator.lookups(), 1U);
}

TEST_F(AuthenticatorTest, RefusesUnknownRevokedAndMalformedTokensWithOneAndTheSameMessage) {
  const std::string revoked = create("revoked");
  ASSERT_TRUE(store_->revoke_token("revoked"));
  const std::string unknown = generate_api_token().value();
  Authenticator authenticator(*store_);

  auto unknown_result = authenticator.authenticate(unknown);
  auto revoked_result = authenticator.authenticate(revoked);
  auto malformed_result = authenticator.authenticate("Bearer nonsense");
  expect_unauthenticated(unknown_result, "an unknown token");
  expect_unauthenticated(revoked_result, "a revoked token");
  expect_unauthenticated(malformed_result, "a malformed token");
  EXPECT_EQ(unknown_result.error().message, revoked_result.error().message);
  EXPECT_EQ(unknown_result.error().message, malformed_result.error().message);
  EXPECT_EQ(unknown_result.error().message.find(unknown), std::string::npos);
}

TEST_F(AuthenticatorTest, MalformedTokensAreRefusedWithoutALookup) {
  const std::string token = create("valid");
  auto authenticator = counting();
  const std::vector<std::string> malformed = {
      "",
      "hrld_",
      token.substr(0, token.size() - 1),
      token + "x",
      "HRLD_" + token.substr(5),
      token.substr(0, 20) + "%" + token.substr(21),
      token.substr(0, 20) + std::string(1, '\0') + token.substr(21),
      std::string(1 << 20, 'h'),
      "' OR '1'='1",
  };
  for (const std::string& presented : malformed) {
    expect_unauthenticated(authenticator.authenticate(presented),
                           "'" + presented.substr(0, 30) + "'");
  }
  EXPECT_EQ(authenticator.lookups(), 0U);
  EXPECT_EQ(store_lookups_.load(), 0);
  EXPECT_EQ(authenticator.cached_unknown(), 0U);
}

TEST_F(AuthenticatorTest, AnswersRepeatedCallsWithinTheTtlFromTheCache) {
  const std::string token = create("cached");
  auto authenticator = counting({.cache_ttl = 1000ms});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(authenticator.authenticate(token));
    clock_.advance(100ms);
  }
  EXPECT_EQ(store_lookups_.load(), 1);
  EXPECT_EQ(authenticator.lookups(), 1U);
  clock_.advance(600ms);  // 1100 ms after the lookup
  ASSERT_TRUE(authenticator.authenticate(token));
  EXPECT_EQ(store_lookups_.load(), 2);
}

TEST_F(AuthenticatorTest, ARevocationByAnotherProcessTakesEffectOnceTheTtlHasPassed) {
  const std::string token = create("leaked");
  auto authenticator = counting({.cache_ttl = 1000ms});
  ASSERT_TRUE(authenticator.authenticate(token));

  ASSERT_TRUE(other_process_->revoke_token("leaked"));
  clock_.advance(999ms);
  EXPECT_TRUE(authenticator.authenticate(token)) << "the cached answer holds within the TTL";
  clock_.advance(1ms);
  expect_unauthenticated(authenticator.authenticate(token), "a token revoked a TTL ago");
}

TEST_F(AuthenticatorTest, UnknownTokensAreRememberedForTheTtlThenLookedUpAgain) {
  const std::string token = generate_api_token().value();
  auto authenticator = counting({.cache_ttl = 1000ms});
  expect_unauthenticated(authenticator.authenticate(token), "a token not created yet");
  expect_unauthenticated(authenticator.authenticate(token), "a token not created yet");
  EXPECT_EQ(store_lookups_.load(), 1);
  EXPECT_EQ(authenticator.cached_unknown(), 1U);

  ASSERT_TRUE(other_process_->create_token("late", api_token_sha256(token), Scope::read,
                                           std::nullopt, std::nullopt));
  clock_.advance(1000ms);
  auto found = authenticator.authenticate(token);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->name, "late");
  EXPECT_EQ(store_lookups_.load(), 2);
  EXPECT_EQ(authenticator.cached_unknown(), 0U);
  EXPECT_EQ(authenticator.cached_tokens(), 1U);
}

TEST_F(AuthenticatorTest, AFloodOfMadeUpTokensStaysWithinTheCacheBoundAndKeepsKnownTokensCached) {
  const std::string token = create("regular");
  auto authenticator =
      counting({.cache_ttl = 60'000ms, .max_cached_tokens = 4, .max_cached_unknown = 16});
  ASSERT_TRUE(authenticator.authenticate(token));
  for (int i = 0; i < 500; ++i) {
    expect_unauthenticated(authenticator.authenticate(generate_api_token().value()), "made up");
    ASSERT_LE(authenticator.cached_unknown(), 16U);
  }
  EXPECT_EQ(authenticator.cached_unknown(), 16U);
  const int lookups_before = store_lookups_.load();
  ASSERT_TRUE(authenticator.authenticate(token));
  EXPECT_EQ(store_lookups_.load(), lookups_before) << "the known token was evicted by the flood";
}

TEST_F(AuthenticatorTest, KnownTokensBeyondTheBoundEvictTheOldest) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 5; ++i) tokens.push_back(create("token-" + std::to_string(i)));
  auto authenticator = counting({.cache_ttl = 60'000ms, .max_cached_tokens = 3});
  for (const std::string& token : tokens) ASSERT_TRUE(authenticator.authenticate(token));
  EXPECT_EQ(authenticator.cached_tokens(), 3U);
  EXPECT_EQ(store_lookups_.load(), 5);
  ASSERT_TRUE(authenticator.authenticate(tokens[4]));
  EXPECT_EQ(store_lookups_.load(), 5) << "the newest token was not cached";
  ASSERT_TRUE(authenticator.authenticate(tokens[0]));
  EXPECT_EQ(store_lookups_.load(), 6) << "the oldest token was still cached";
}

TEST_F(AuthenticatorTest, ClearCacheMakesTheNextCallLookUpAgain) {
  const std::string token = create("cleared");
  auto authenticator = counting({.cache_ttl = 60'000ms});
  ASSERT_TRUE(authenticator.authenticate(token));
  ASSERT_TRUE(store_->revoke_token("cleared"));
  authenticator.clear_cache();
  expect_unauthenticated(authenticator.authenticate(token), "a token revoked in this process");
  EXPECT_EQ(store_lookups_.load(), 2);
}

TEST_F(AuthenticatorTest, AFailedLookupIsUnavailableAndNotCached) {
  const std::string token = generate_api_token().value();
  std::atomic<bool> failing{true};
  std::atomic<int> calls{0};
  Authenticator authenticator(
      [&](const std::string&) -> std::expected<std::optional<StoredApiToken>, Error> {
        ++calls;
        if (failing) return std::unexpected(Error{ErrorCode::io, "disk on fire", {}});
        return std::optional<StoredApiToken>{};
      },
      {.clock = clock_.function()});
  auto result = authenticator.authenticate(token);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::unavailable);
  EXPECT_NE(result.error().message.find("disk on fire"), std::string::npos);
  failing = false;
  expect_unauthenticated(authenticator.authenticate(token), "a token after the store recovered");
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(AuthenticatorTest, AStoredHashThatDiffersFromThePresentedTokensIsRefused) {
  // A lookup that answers for the wrong hash (a broken index, a wrong row) must not let a token in.
  const std::string token = generate_api_token().value();
  Authenticator authenticator([](const std::string&) {
    return std::expected<std::optional<StoredApiToken>, Error>(
        StoredApiToken{.token = {.id = 1, .name = "other", .scopes = Scope::admin},
                       .token_sha256 = api_token_sha256("hrld_someone_else")});
  });
  expect_unauthenticated(authenticator.authenticate(token), "a token whose stored hash differs");
}

TEST_F(AuthenticatorTest, ConcurrentCallersEachGetTheirOwnTokenOrARefusal) {
  constexpr int threads = 8;
  constexpr int rounds = 300;
  std::map<std::string, std::string> name_of;
  for (int i = 0; i < 4; ++i) {
    const std::string name = "worker-" + std::to_string(i);
    name_of.emplace(create(name), name);
  }
  std::vector<std::string> unknown;
  for (int i = 0; i < 4; ++i) unknown.push_back(generate_api_token().value());
  auto authenticator =
      counting({.cache_ttl = 5ms, .max_cached_tokens = 2, .max_cached_unknown = 2});

  std::latch start(threads + 1);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      start.arrive_and_wait();
      auto known = name_of.begin();
      for (int r = 0; r < rounds; ++r) {
        if ((r + t) % 3 == 0) {
          auto result = authenticator.authenticate(unknown[static_cast<std::size_t>(r % 4)]);
          if (result || result.error().code != ErrorCode::unauthenticated) ++wrong;
        } else {
          auto result = authenticator.authenticate(known->first);
          if (!result || result->name != known->second) ++wrong;
          if (++known == name_of.end()) known = name_of.begin();
        }
      }
    });
  }
  // One thread moves the clock so that entries expire and are refreshed while others read.
  std::thread ticker([&] {
    start.arrive_and_wait();
    for (int i = 0; i < 200; ++i) clock_.advance(1ms);
  });
  for (std::thread& caller : callers) caller.join();
  ticker.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(authenticator.cached_tokens(), 2U);
  EXPECT_LE(authenticator.cached_unknown(), 2U);
}

TEST(AuthorizationHelpers, AllowsOnlyTheScopesATokenHasAndAdminImpliesNoOther) {
  const ApiToken reader{.name = "r", .scopes = Scope::read | Scope::audit};
  EXPECT_TRUE(allows(reader, Scope::read));
  EXPECT_TRUE(allows(reader, Scope::audit));
  EXPECT_FALSE(allows(reader, Scope::ingest));
  EXPECT_FALSE(allows(reader, Scope::admin));
  const ApiToken admin{.name = "a", .scopes = Scope::admin};
  EXPECT_TRUE(allows(admin, Scope::admin));
  EXPECT_FALSE(allows(admin, Scope::read));
}

TEST(AuthorizationHelpers, AnOrganizationBoundTokenSeesOnlyItsOrganizationsEvents) {
  const ApiToken bound{.name = "b", .scopes = Scope::read, .organization_id = 42};
  EXPECT_TRUE(may_see(bound, 42));
  EXPECT_FALSE(may_see(bound, 43));
  EXPECT_FALSE(may_see(bound, std::nullopt));
  const ApiToken global{.name = "g", .scopes = Scope::read};
  EXPECT_TRUE(may_see(global, 42));
  EXPECT_TRUE(may_see(global, std::nullopt));
}

}  // namespace
}  // namespace herald
