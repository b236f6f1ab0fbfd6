#include "herald/event_store.hpp"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../../src/store/sqlite_store.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/json.hpp"
#include "store_test_support.hpp"

// Faults of the SQLite store on real files: a corrupt file, a directory this process may not
// write, a full database, an oversized event, and an event type the catalog lacks. Each must give
// an error that names the file and says what to do, and damage nothing already stored.

namespace herald::store_test {
namespace {

namespace fs = std::filesystem;

class SqliteFaultsTest : public ::testing::Test {
 protected:
  StoreOptions options() const {
    return StoreOptions{.location = path_, .catalog = &domain::platform_catalog()};
  }

  std::unique_ptr<EventStore> open(const StoreOptions& o) {
    auto store = open_store(o);
    if (!store) {
      ADD_FAILURE() << "opening the store failed: " << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }

  /// Creates the store with `n` events and closes it; returns the events.
  std::vector<EventPtr> populate(int n) {
    std::vector<EventPtr> events;
    for (int i = 1; i <= n; ++i) events.push_back(tournament_created(i));
    auto store = open(options());
    if (store) must(store->append_batch(refs(events)));
    return events;
  }

  /// Asserts that the store at `path_` holds exactly `events`, each readable.
  void expect_intact(const std::vector<EventPtr>& events) {
    auto store = open(options());
    ASSERT_NE(store, nullptr);
    const auto stored = must(store->read_forward(0, 100000));
    ASSERT_EQ(stored.size(), events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(stored[i].position, static_cast<std::int64_t>(i + 1));
      EXPECT_EQ(encode_event(stored[i].event), encode_event(events[i]));
    }
  }

  void overwrite(std::size_t offset, const std::string& bytes) {
    std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  TempDir dir_;
  std::string path_ = dir_.file("herald.db");
};

// --- corrupt files ---

TEST_F(SqliteFaultsTest, GarbageOverTheHeaderIsReportedAsCorruptAndTheFileIsLeftUntouched) {
  populate(20);
  overwrite(0, std::string(100, '\xa5'));
  const std::string digest = file_sha256(path_);

  auto refused = open_store(options());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::io);
  EXPECT_NE(refused.error().message.find(path_), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("corrupt"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("backup"), std::string::npos) << refused.error().message;
  EXPECT_EQ(file_sha256(path_), digest);
}

TEST_F(SqliteFaultsTest, DamagedHeaderFieldsAfterTheMagicAreReportedAsCorruptAndLeftUntouched) {
  populate(20);
  overwrite(16, std::string(84, '\xff'));  // page size, format numbers, counters
  const std::string digest = file_sha256(path_);

  auto refused = open_store(options());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::io);
  EXPECT_NE(refused.error().message.find(path_), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("corrupt"), std::string::npos) << refused.error().message;
  EXPECT_EQ(file_sha256(path_), digest);
}

TEST_F(SqliteFaultsTest, AFileThatIsNotADatabaseIsRefusedAndLeftUntouched) {
  {
    std::ofstream text(path_);
    text << "listen = 127.0.0.1:8080\nworkers = 4\n" << std::string(200, '#') << "\n";
  }
  const std::string digest = file_sha256(path_);
  auto refused = open_store(options());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::io);
  EXPECT_NE(refused.error().message.find(path_), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("not a database"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(file_sha256(path_), digest);
}

// --- a directory this process may not write ---

/// What an attempt made as an unprivileged user returned.
struct Outcome {
  bool ok = false;
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

/// Runs `attempt` with the permissions of an unprivileged user. The tests run as root, for whom
/// chmod does not stop writes, so as root the attempt runs in a forked child that first switches
/// to the `nobody` user (setgroups, setgid, setuid): the kernel then enforces the directory's
/// 0555 mode on it for real, with no mock and no mount. The child reports through a pipe.
/// Run as another user, the attempt runs in this process.
Outcome as_unprivileged(const std::function<std::expected<void, Error>()>& attempt) {
  auto run = [&] {
    auto result = attempt();
    return result
               ? Outcome{.ok = true}
               : Outcome{
                     .ok = false, .code = result.error().code, .message = result.error().message};
  };
  if (::geteuid() != 0) return run();
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return {.message = "pipe failed"};
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string report;
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
      report = "X\ncould not switch to the nobody user";
    } else {
      const Outcome outcome = run();
      report = outcome.ok ? std::string("ok\n")
                          : std::to_string(static_cast<int>(outcome.code)) + "\n" + outcome.message;
    }
    (void)::write(pipe_fds[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string report;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    report.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  const auto newline = report.find('\n');
  if (newline == std::string::npos) return {.message = "the child reported nothing"};
  const std::string head = report.substr(0, newline);
  if (head == "ok") return {.ok = true};
  if (head == "X") return {.message = report.substr(newline + 1)};
  return {.ok = false,
          .code = static_cast<ErrorCode>(std::stoi(head)),
          .message = report.substr(newline + 1)};
}

TEST_F(SqliteFaultsTest, AStoreInADirectoryThisProcessMayNotWriteGivesAClearErrorAndStaysIntact) {
  const auto events = populate(5);
  const std::string digest = file_sha256(path_);
  fs::permissions(dir_.path(), fs::perms(0555));
  const StoreOptions o = options();
  const Outcome outcome = as_unprivileged([&]() -> std::expected<void, Error> {
    auto store = open_store(o);
    if (!store) return std::unexpected(std::move(store.error()));
    auto appended = (*store)->append(tournament_created(99));
    if (!appended) return std::unexpected(std::move(appended.error()));
    return {};
  });
  fs::permissions(dir_.path(), fs::perms(0755));

  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, ErrorCode::io) << outcome.message;
  EXPECT_NE(outcome.message.find(path_), std::string::npos) << outcome.message;
  EXPECT_NE(outcome.message.find("write"), std::string::npos) << outcome.message;
  EXPECT_EQ(file_sha256(path_), digest);
  expect_intact(events);
}

TEST_F(SqliteFaultsTest, ANewStoreInADirectoryThisProcessMayNotWriteGivesAClearError) {
  fs::permissions(dir_.path(), fs::perms(0555));
  const StoreOptions o = options();
  const Outcome outcome = as_unprivileged([&]() -> std::expected<void, Error> {
    auto store = open_store(o);
    if (!store) return std::unexpected(std::move(store.error()));
    return {};
  });
  fs::permissions(dir_.path(), fs::perms(0755));

  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, ErrorCode::io) << outcome.message;
  EXPECT_NE(outcome.message.find(path_), std::string::npos) << outcome.message;
  EXPECT_NE(outcome.message.find("directory"), std::string::npos) << outcome.message;
  EXPECT_FALSE(fs::exists(path_));
}

// --- a full database ---

TEST_F(SqliteFaultsTest, AFullDatabaseRefusesAppendsKeepsWhatIsStoredAndRecoversWhenTheLimitRises) {
  std::vector<EventPtr> stored = populate(10);
  std::int64_t pages = 0;
  {
    RawDb raw(path_, SQLITE_OPEN_READONLY);
    pages = std::stoll(raw.scalar("PRAGMA page_count"));
  }
  StoreOptions capped = options();
  capped.sqlite_max_pages = pages + 8;
  {
    auto store = open(capped);
    ASSERT_NE(store, nullptr);
    std::optional<Error> full;
    for (int i = 0; i < 1000 && !full; ++i) {
      const EventPtr event = tournament_created(100 + i, 1, std::string(1500, 'n'));
      auto appended = store->append(event);
      if (appended) {
        stored.push_back(event);
      } else {
        full = appended.error();
      }
    }
    ASSERT_TRUE(full.has_value()) << "the database never filled up";
    EXPECT_EQ(full->code, ErrorCode::unavailable);
    EXPECT_NE(full->message.find("database is full"), std::string::npos) << full->message;
    EXPECT_NE(full->message.find(path_), std::string::npos) << full->message;
    EXPECT_NE(full->message.find("sqlite_max_pages"), std::string::npos) << full->message;

    // A batch fails as a whole, and reads still work on the full database.
    std::vector<EventPtr> batch;
    for (int i = 0; i < 5; ++i)
      batch.push_back(tournament_created(900 + i, 1, std::string(1500, 'b')));
    auto refused = store->append_batch(refs(batch));
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, ErrorCode::unavailable);
    EXPECT_EQ(must(store->count()), static_cast<std::int64_t>(stored.size()));
    EXPECT_EQ(must(store->head()), static_cast<std::int64_t>(stored.size()));
  }
  expect_intact(stored);

  StoreOptions raised = options();
  raised.sqlite_max_pages = pages + 1000;
  auto store = open(raised);
  ASSERT_NE(store, nullptr);
  const AppendResult next =
      must(store->append(tournament_created(5000, 1, std::string(1500, 'n'))));
  EXPECT_EQ(next.position, static_cast<std::int64_t>(stored.size()) + 1);
}

// --- bad events ---

TEST_F(SqliteFaultsTest, AnOversizedEventIsRefusedAndNothingIsWritten) {
  const auto events = populate(3);
  StoreOptions o = options();
  o.max_event_bytes = 4096;
  {
    auto store = open(o);
    ASSERT_NE(store, nullptr);
    const EventPtr big = tournament_created(4, 1, std::string(8000, 'x'));
    auto refused = store->append(big);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, ErrorCode::too_large);
    EXPECT_NE(refused.error().message.find("4096"), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find(path_), std::string::npos) << refused.error().message;
    EXPECT_FALSE(must(store->get(big->event_id)).has_value());
    EXPECT_EQ(must(store->head()), 3);
  }
  expect_intact(events);
}

TEST_F(SqliteFaultsTest, AnUnknownEventTypeReadBackIsReportedAndTheOtherEventsStayReadable) {
  StoreOptions wide = options();
  wide.catalog = &catalog_with_legacy();
  const std::vector<EventPtr> events{tournament_created(1), legacy_score(2), tournament_created(3)};
  {
    auto store = open(wide);
    ASSERT_NE(store, nullptr);
    must(store->append_batch(refs(events)));
  }
  auto store = open(options());  // the platform catalog, without LegacyScoreEvent
  ASSERT_NE(store, nullptr);
  auto unreadable = store->read_forward(1, 10);
  ASSERT_FALSE(unreadable.has_value());
  EXPECT_EQ(unreadable.error().field, "event_type");
  EXPECT_NE(unreadable.error().message.find("\"LegacyScoreEvent\""), std::string::npos)
      << unreadable.error().message;
  EXPECT_NE(unreadable.error().message.find("position 2"), std::string::npos)
      << unreadable.error().message;
  EXPECT_NE(unreadable.error().message.find(path_), std::string::npos);

  EXPECT_EQ(must(store->read_forward(0, 10)).size(), 1u);
  EXPECT_EQ(must(store->read_forward(2, 10)).size(), 1u);
  EXPECT_TRUE(must(store->get(events[2]->event_id)).has_value());
  EXPECT_EQ(must(store->count()), 3);
  // Nothing was damaged: with the type in the catalog again every event reads back.
  auto wide_store = open(wide);
  ASSERT_NE(wide_store, nullptr);
  EXPECT_EQ(must(wide_store->read_forward(0, 10)).size(), 3u);
}

}  // namespace
}  // namespace herald::store_test
