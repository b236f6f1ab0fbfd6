#include "herald/event_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "herald/api_tokens.hpp"
#include "herald/domain/catalog.hpp"
#include "postgres_database.hpp"

// API token storage (EventStore::create_token, list_tokens, revoke_token, find_token) on both
// backends: a SQLite file in a temporary directory and a fresh PostgreSQL database per test.

namespace herald {
namespace {

using test::backend_name;
using test::PostgresDatabase;

class ApiTokenStore : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      const char* url = std::getenv("HERALD_TEST_PG_URL");
      if (url == nullptr || *url == '\0') {
        GTEST_SKIP() << "HERALD_TEST_PG_URL is not set; run the tests through "
                        "scripts/with_postgres.sh to test against PostgreSQL";
      }
      postgres_ = std::make_unique<PostgresDatabase>(url, "herald_tokens");
      location_ = postgres_->url();
    } else {
      static std::atomic<int> counter{0};
      directory_ =
          std::filesystem::temp_directory_path() /
          ("herald-tokens-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
      std::filesystem::remove_all(directory_);
      std::filesystem::create_directories(directory_);
      location_ = (directory_ / "herald.db").string();
    }
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    postgres_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  std::unique_ptr<EventStore> open() {
    auto store = open_store({.location = location_, .catalog = &domain::platform_catalog()});
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  /// Runs SQL on the test's database directly, as an operator would.
  void raw_exec(const std::string& sql) {
    if (postgres_) {
      pqxx::connection conn(location_);
      pqxx::nontransaction tx(conn);
      tx.exec(sql);
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
    const std::string error = message != nullptr ? message : "";
    sqlite3_free(message);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << error;
  }

  /// A new token's hash, distinct per call.
  static std::string fresh_hash() { return api_token_sha256(generate_api_token().value()); }

  ApiToken create(const std::string& name, Scopes scopes = Scope::read,
                  std::optional<std::int64_t> organization = std::nullopt) {
    auto created = store_->create_token(name, fresh_hash(), scopes, organization, std::nullopt);
    EXPECT_TRUE(created) << created.error().message;
    return created.value_or(ApiToken{});
  }

  std::unique_ptr<PostgresDatabase> postgres_;
  std::filesystem::path directory_;
  std::string location_;
  std::unique_ptr<EventStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, ApiTokenStore, ::testing::Values("sqlite", "postgres"),
                         backend_name);

TEST_P(ApiTokenStore, CreateTokenReturnsTheStoredTokenAndListShowsItWithItsScopesAndOrganization) {
  const Timestamp before = herald::now() - std::chrono::seconds(5);
  auto created = store_->create_token("ingest-bot", fresh_hash(), Scope::ingest | Scope::read, 42,
                                      std::nullopt);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(created->name, "ingest-bot");
  EXPECT_EQ(created->scopes, Scope::ingest | Scope::read);
  EXPECT_EQ(created->organization_id, 42);
  EXPECT_GE(created->created_at, before);
  EXPECT_FALSE(created->revoked_at);

  create("global.reader", Scope::read);
  auto listed = store_->list_tokens();
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 2U);
  EXPECT_EQ((*listed)[0].name, "global.reader");
  EXPECT_EQ((*listed)[0].organization_id, std::nullopt);
  EXPECT_EQ((*listed)[1].name, "ingest-bot");
  EXPECT_EQ((*listed)[1].id, created->id);
  EXPECT_EQ((*listed)[1].scopes, Scope::ingest | Scope::read);
  EXPECT_EQ((*listed)[1].organization_id, 42);
  EXPECT_EQ((*listed)[1].created_at, created->created_at);
}

TEST_P(ApiTokenStore, FindTokenFindsATokenByItsHashAndNothingForAnotherHash) {
  const std::string hash = fresh_hash();
  ASSERT_TRUE(store_->create_token("finder", hash, Scope::audit, std::nullopt, std::nullopt));
  auto found = store_->find_token(hash);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_TRUE(*found);
  EXPECT_EQ((*found)->token.name, "finder");
  EXPECT_EQ((*found)->token.scopes, Scopes(Scope::audit));
  EXPECT_EQ((*found)->token_sha256, hash);

  auto missing = store_->find_token(fresh_hash());
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(*missing);
}

TEST_P(ApiTokenStore, FindTokenRefusesAnArgumentThatIsNotASha256) {
  for (const std::string& bad :
       {std::string(), std::string(64, 'A'), std::string(63, 'a'), std::string("' OR 1=1 --")}) {
    auto found = store_->find_token(bad);
    ASSERT_FALSE(found) << "accepted '" << bad << "'";
    EXPECT_EQ(found.error().code, ErrorCode::invalid_argument);
    EXPECT_EQ(found.error().field, "token_sha256");
  }
}

TEST_P(ApiTokenStore, CreateTokenOfATakenNameIsAConflictNamingIt) {
  create("duplicate");
  auto again =
      store_->create_token("duplicate", fresh_hash(), Scope::read, std::nullopt, std::nullopt);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::conflict);
  EXPECT_NE(again.error().message.find("an API token named 'duplicate' already exists"),
            std::string::npos)
      << again.error().message;
  EXPECT_EQ(store_->list_tokens().value().size(), 1U);
}

TEST_P(ApiTokenStore, CreateTokenOfARevokedTokensNameIsAConflictSayingItWasRevoked) {
  create("retired");
  ASSERT_TRUE(store_->revoke_token("retired"));
  auto again =
      store_->create_token("retired", fresh_hash(), Scope::read, std::nullopt, std::nullopt);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::conflict);
  EXPECT_NE(again.error().message.find("revoked at"), std::string::npos) << again.error().message;
}

TEST_P(ApiTokenStore, CreateTokenOfAStoredHashIsAConflict) {
  const std::string hash = fresh_hash();
  ASSERT_TRUE(store_->create_token("first", hash, Scope::read, std::nullopt, std::nullopt));
  auto again = store_->create_token("second", hash, Scope::read, std::nullopt, std::nullopt);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::conflict);
  EXPECT_EQ(again.error().field, "token_sha256");
}

TEST_P(ApiTokenStore, CreateTokenRefusesABadNameABadHashAndNoScopesWritingNothing) {
  struct Case {
    std::string name;
    std::string hash;
    Scopes scopes;
    std::string field;
  };
  const std::string good = fresh_hash();
  const std::vector<Case> cases = {
      {"", good, Scope::read, "name"},
      {std::string(65, 'a'), good, Scope::read, "name"},
      {"has space", good, Scope::read, "name"},
      {"semi;colon", good, Scope::read, "name"},
      {"new\nline", good, Scope::read, "name"},
      {"ok", "not-a-hash", Scope::read, "token_sha256"},
      {"ok", std::string(64, 'F'), Scope::read, "token_sha256"},
      {"ok", good, Scopes{}, "scopes"},
  };
  for (const Case& c : cases) {
    auto created = store_->create_token(c.name, c.hash, c.scopes, std::nullopt, std::nullopt);
    ASSERT_FALSE(created) << "accepted name '" << c.name << "'";
    EXPECT_EQ(created.error().code, ErrorCode::invalid_argument);
    EXPECT_EQ(created.error().field, c.field) << created.error().message;
  }
  EXPECT_TRUE(store_->list_tokens().value().empty());
  EXPECT_TRUE(
      store_->create_token(std::string(64, 'a'), good, Scope::read, std::nullopt, std::nullopt));
}

TEST_P(ApiTokenStore, RevokeTokenSetsRevokedAtOnceAndTheTokenIsStillFoundAsRevoked) {
  const std::string hash = fresh_hash();
  ASSERT_TRUE(store_->create_token("leaked", hash, Scope::ingest, 7, std::nullopt));
  auto revoked = store_->revoke_token("leaked");
  ASSERT_TRUE(revoked) << revoked.error().message;
  ASSERT_TRUE(revoked->revoked_at);
  EXPECT_GE(*revoked->revoked_at, revoked->created_at);

  auto again = store_->revoke_token("leaked");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->revoked_at, revoked->revoked_at);

  auto found = store_->find_token(hash);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->token.revoked_at, revoked->revoked_at);
  EXPECT_EQ(store_->list_tokens().value().at(0).revoked_at, revoked->revoked_at);
}

TEST_P(ApiTokenStore, RevokeTokenOfAnUnknownNameIsNotFoundNamingIt) {
  create("present");
  auto revoked = store_->revoke_token("absent");
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code, ErrorCode::not_found);
  EXPECT_NE(revoked.error().message.find("'absent'"), std::string::npos);
  EXPECT_FALSE(store_->list_tokens().value().at(0).revoked_at);
}

TEST_P(ApiTokenStore, RevokeTokenRefusesAMalformedName) {
  auto revoked = store_->revoke_token("x' OR '1'='1");
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(revoked.error().field, "name");
}

TEST_P(ApiTokenStore, TokensSurviveReopeningTheStore) {
  const std::string hash = fresh_hash();
  ASSERT_TRUE(store_->create_token("durable", hash, Scope::admin, std::nullopt, std::nullopt));
  store_.reset();
  store_ = open();
  ASSERT_NE(store_, nullptr);
  auto found = store_->find_token(hash);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->token.name, "durable");
  EXPECT_EQ((*found)->token.scopes, Scopes(Scope::admin));
}

TEST_P(ApiTokenStore, RacingCreatesOfOneNameStoreOneTokenAndTheOthersAreConflicts) {
  constexpr int threads = 6;
  std::vector<std::unique_ptr<EventStore>> stores;
  for (int i = 0; i < threads; ++i) stores.push_back(open());
  std::latch start(threads);
  std::atomic<int> created{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> racers;
  for (int i = 0; i < threads; ++i) {
    racers.emplace_back([&, i] {
      const std::string hash = fresh_hash();
      start.arrive_and_wait();
      auto result =
          stores[i]->create_token("contested", hash, Scope::read, std::nullopt, std::nullopt);
      if (result) {
        ++created;
      } else if (result.error().code == ErrorCode::conflict) {
        ++conflicts;
      }
    });
  }
  for (std::thread& racer : racers) racer.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), threads - 1);
  EXPECT_EQ(store_->list_tokens().value().size(), 1U);
}

TEST_P(ApiTokenStore, OpeningADatabaseOfSchemaVersionOneAddsTheTokenTable) {
  // A version 1 database is today's schema without the token table.
  store_.reset();
  raw_exec("DROP TABLE herald_api_tokens");
  raw_exec("UPDATE herald_meta SET value = '1' WHERE key = 'schema_version'");
  store_ = open();
  ASSERT_NE(store_, nullptr);
  auto listed = store_->list_tokens();
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_TRUE(listed->empty());
  create("after-upgrade");
  EXPECT_EQ(store_->list_tokens().value().size(), 1U);
}

TEST_P(ApiTokenStore, KeepsTheUserATokenIsBoundTo) {
  const std::string hash = fresh_hash();
  auto created = store_->create_token("inbox-42", hash, Scope::read, std::nullopt, 42);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->user_id, 42);
  auto found = store_->find_token(hash);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->token.user_id, 42);
  EXPECT_EQ((*found)->token.organization_id, std::nullopt);
  const ApiToken unbound = create("unbound");
  EXPECT_EQ(unbound.user_id, std::nullopt);
  auto listed = store_->list_tokens();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2U);
  EXPECT_EQ((*listed)[0].user_id, 42);
  EXPECT_EQ((*listed)[1].user_id, std::nullopt);
}

TEST_P(ApiTokenStore, OpeningADatabaseOfSchemaVersionTwoAddsTheUserColumnAndKeepsTokens) {
  // A version 2 database is today's schema without herald_api_tokens.user_id.
  const std::string hash = fresh_hash();
  ASSERT_TRUE(store_->create_token("before-upgrade", hash, Scope::read, 7, std::nullopt));
  store_.reset();
  raw_exec("ALTER TABLE herald_api_tokens DROP COLUMN user_id");
  raw_exec("UPDATE herald_meta SET value = '2' WHERE key = 'schema_version'");
  store_ = open();
  ASSERT_NE(store_, nullptr);
  auto found = store_->find_token(hash);
  ASSERT_TRUE(found && *found) << (found ? "not found" : found.error().message);
  EXPECT_EQ((*found)->token.organization_id, 7);
  EXPECT_EQ((*found)->token.user_id, std::nullopt);
  auto bound = store_->create_token("after-upgrade", fresh_hash(), Scope::read, std::nullopt, 9);
  ASSERT_TRUE(bound) << bound.error().message;
  EXPECT_EQ(bound->user_id, 9);
}

}  // namespace
}  // namespace herald
