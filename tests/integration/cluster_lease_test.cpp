#include "herald/cluster/leader_lease.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <pqxx/pqxx>

#include "cluster_test_support.hpp"

namespace herald::cluster {
namespace {

using namespace std::chrono_literals;
using cluster_test::env;
using cluster_test::wait_until;

constexpr auto interval = 100ms;
// A takeover needs the old session to end and the next try of the follower: one interval and
// the server's bookkeeping; the bound leaves room for a loaded machine.
constexpr auto takeover_bound = 3s;

std::string unique_role(std::string_view what) {
  static std::atomic<int> counter{0};
  return "test:" + std::string(what) + ":" + std::to_string(::getpid()) + ":" +
         std::to_string(++counter);
}

// Counts a lease's callbacks and stamps each with a global sequence number, so a test can tell
// which of two leases' events came first.
struct Observer {
  static inline std::atomic<int> clock{0};
  std::atomic<int> acquired{0};
  std::atomic<int> lost{0};
  std::atomic<int> errors{0};
  std::atomic<int> acquired_at{0};
  std::atomic<int> lost_at{0};

  LeaderLeaseOptions options(std::string location, std::string role) {
    return {.location = std::move(location),
            .role = std::move(role),
            .retry_interval = interval,
            .on_acquired =
                [this] {
                  acquired_at = ++clock;
                  ++acquired;
                },
            .on_lost =
                [this] {
                  lost_at = ++clock;
                  ++lost;
                },
            .on_error = [this](const Error&) { ++errors; }};
  }
};

std::unique_ptr<LeaderLease> make_lease(LeaderLeaseOptions options) {
  auto lease = LeaderLease::create(std::move(options));
  if (!lease) throw std::runtime_error(lease.error().message);
  return std::move(*lease);
}

class LeaderLeasePostgres : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = env("HERALD_TEST_PG_URL");
    if (!url) GTEST_SKIP() << "HERALD_TEST_PG_URL is not set; run under scripts/with_postgres.sh";
    url_ = *url;
  }

  // The backend pids that hold the advisory lock of `role` (pg_locks splits the 64-bit key into
  // classid, its high half, and objid, its low half; objsubid 1 marks a one-key lock).
  std::vector<int> lock_holders(const std::string& role) {
    pqxx::connection connection(url_);
    pqxx::nontransaction tx(connection);
    const pqxx::result rows = tx.exec_params(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        "AND classid::bigint = (($1::bigint >> 32) & 4294967295) "
        "AND objid::bigint = ($1::bigint & 4294967295)",
        advisory_lock_key(role));
    std::vector<int> pids;
    for (const auto& row : rows) pids.push_back(row[0].as<int>());
    return pids;
  }

  std::string url_;
};

TEST(LeaderLease, RejectsMalformedOptions) {
  const auto error_field = [](LeaderLeaseOptions options) {
    auto lease = LeaderLease::create(std::move(options));
    EXPECT_FALSE(lease.has_value());
    if (lease) return std::string("(accepted)");
    EXPECT_EQ(lease.error().code, ErrorCode::invalid_argument);
    return lease.error().field;
  };
  EXPECT_EQ(error_field({.location = "", .role = "consumer:audit"}), "location");
  EXPECT_EQ(error_field({.location = "herald.db", .role = ""}), "role");
  EXPECT_EQ(error_field({.location = "herald.db", .role = std::string(201, 'r')}), "role");
  EXPECT_EQ(error_field({.location = "herald.db", .role = "consumer audit"}), "role");
  EXPECT_EQ(error_field({.location = "herald.db", .role = "consumer\naudit"}), "role");
  EXPECT_EQ(error_field({.location = "herald.db", .role = "r\xc3\xa9le"}), "role");
  EXPECT_EQ(error_field({.location = "herald.db", .role = "audit", .retry_interval = 0ms}),
            "retry_interval");
  EXPECT_TRUE(LeaderLease::create({.location = "herald.db", .role = std::string(200, 'r')}));
}

TEST(LeaderLease, AdvisoryLockKeyIsAStableHashOfTheRole) {
  // FNV-1a 64 of "herald:" for the empty role: a changed key would let two releases lead at once.
  EXPECT_EQ(advisory_lock_key("consumer:audit"), advisory_lock_key("consumer:audit"));
  EXPECT_EQ(static_cast<std::uint64_t>(advisory_lock_key("")), 0x4754d8651965f63fULL);
  EXPECT_NE(advisory_lock_key("consumer:audit"), advisory_lock_key("consumer:notify"));
}

TEST(LeaderLease, OnSqliteTheOneProcessLeadsFromStartToStop) {
  Observer observer;
  auto lease = make_lease(observer.options(
      (std::filesystem::temp_directory_path() / "herald-lease.db").string(), "consumer:audit"));
  EXPECT_FALSE(lease->is_leader());
  ASSERT_TRUE(lease->start());
  EXPECT_TRUE(wait_until([&] { return lease->is_leader(); }, 2s));
  EXPECT_EQ(observer.acquired, 1);
  EXPECT_FALSE(lease->start()) << "a second start must be refused";
  lease->stop();
  EXPECT_FALSE(lease->is_leader());
  EXPECT_EQ(observer.lost, 1);
  lease->stop();
  EXPECT_EQ(observer.lost, 1) << "stop is idempotent";
}

TEST_F(LeaderLeasePostgres, TwoLeasesOnOneRoleExactlyOneLeads) {
  const std::string role = unique_role("one");
  Observer a_events;
  Observer b_events;
  auto a = make_lease(a_events.options(url_, role));
  auto b = make_lease(b_events.options(url_, role));
  ASSERT_TRUE(a->start());
  ASSERT_TRUE(b->start());
  ASSERT_TRUE(wait_until([&] { return a->is_leader() || b->is_leader(); }, 5s));
  // Watch for ten retry intervals: the follower keeps trying and must keep failing.
  const auto until = std::chrono::steady_clock::now() + 10 * interval;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_NE(a->is_leader(), b->is_leader()) << "exactly one lease must lead";
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(a_events.acquired + b_events.acquired, 1);
  EXPECT_EQ(a_events.lost + b_events.lost, 0);
  EXPECT_EQ(lock_holders(role).size(), 1U) << "the leader holds the advisory lock";
}

TEST_F(LeaderLeasePostgres, DifferentRolesLeadIndependently) {
  Observer a_events;
  Observer b_events;
  auto a = make_lease(a_events.options(url_, unique_role("audit")));
  auto b = make_lease(b_events.options(url_, unique_role("relay")));
  ASSERT_TRUE(a->start());
  ASSERT_TRUE(b->start());
  EXPECT_TRUE(wait_until([&] { return a->is_leader() && b->is_leader(); }, 5s));
}

TEST_F(LeaderLeasePostgres, StoppingTheLeaderHandsOverWithinABound) {
  const std::string role = unique_role("stop");
  Observer a_events;
  Observer b_events;
  auto a = make_lease(a_events.options(url_, role));
  ASSERT_TRUE(a->start());
  ASSERT_TRUE(wait_until([&] { return a->is_leader(); }, 5s));
  auto b = make_lease(b_events.options(url_, role));
  ASSERT_TRUE(b->start());

  const auto stopped = std::chrono::steady_clock::now();
  a->stop();
  EXPECT_FALSE(a->is_leader());
  ASSERT_TRUE(wait_until([&] { return b->is_leader(); }, takeover_bound))
      << "the follower did not take over within " << takeover_bound.count() << " s";
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, takeover_bound);
  EXPECT_EQ(a_events.lost, 1);
  EXPECT_EQ(b_events.acquired, 1);
  EXPECT_LT(a_events.lost_at, b_events.acquired_at) << "the old leader stops its role first";
}

TEST_F(LeaderLeasePostgres, KillingTheLeadersProcessHandsOverWithinABound) {
  const std::string role = unique_role("kill");
  cluster_test::ChildProcess holder({HERALD_LEASE_HOLDER, url_, role});
  ASSERT_TRUE(holder.wait_for_line("leader", 10s))
      << "the holder process did not lead; its output: " << holder.output();

  Observer events;
  auto follower = make_lease(events.options(url_, role));
  ASSERT_TRUE(follower->start());
  // Ten tries of the follower fail while the holder lives.
  const auto until = std::chrono::steady_clock::now() + 10 * interval;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_FALSE(follower->is_leader()) << "two processes lead at once";
    std::this_thread::sleep_for(5ms);
  }

  const auto killed = std::chrono::steady_clock::now();
  holder.kill();
  EXPECT_TRUE(wait_until([&] { return follower->is_leader(); }, takeover_bound))
      << "no takeover within " << takeover_bound.count() << " s of the SIGKILL";
  EXPECT_LT(std::chrono::steady_clock::now() - killed, takeover_bound);
  EXPECT_EQ(lock_holders(role).size(), 1U);
}

TEST_F(LeaderLeasePostgres, ALeaderWhoseConnectionBreaksStopsItsRoleAtOnce) {
  const std::string role = unique_role("terminated");
  Observer events;
  auto lease = make_lease(events.options(url_, role));
  ASSERT_TRUE(lease->start());
  ASSERT_TRUE(wait_until([&] { return lease->is_leader(); }, 5s));
  const std::vector<int> holders = lock_holders(role);
  ASSERT_EQ(holders.size(), 1U);

  // An operator (or a failover) ends the session: the lock is gone, so the role must stop.
  {
    pqxx::connection admin(url_);
    pqxx::nontransaction tx(admin);
    tx.exec_params("SELECT pg_terminate_backend($1)", holders[0]);
  }
  EXPECT_TRUE(wait_until([&] { return events.lost == 1; }, 3 * interval + 1s))
      << "the leader kept running its role after its session ended";
  EXPECT_GE(events.errors, 1) << "the broken connection is reported";
  // Alone on the role, it takes the lock again on a new connection.
  EXPECT_TRUE(wait_until([&] { return events.acquired == 2 && lease->is_leader(); }, 5s));
}

TEST_F(LeaderLeasePostgres, AnUnreachableServerMeansNoLeadershipAndAnError) {
  Observer events;
  // Port 1 on loopback: nothing listens there, so every try fails at once.
  auto lease =
      make_lease(events.options("postgresql://postgres@127.0.0.1:1/herald", unique_role("down")));
  ASSERT_TRUE(lease->start());
  EXPECT_TRUE(wait_until([&] { return events.errors >= 2; }, 5s)) << "every failed try reports";
  EXPECT_FALSE(lease->is_leader());
  EXPECT_EQ(events.acquired, 0);
}

}  // namespace
}  // namespace herald::cluster
