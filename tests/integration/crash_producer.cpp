// herald_crash_producer: the process tests/integration/crash_test.sh kills with SIGKILL.
//
//   herald_crash_producer LOCATION              append events until killed
//   herald_crash_producer LOCATION --catch-up   run the audit consumer until it has caught up
//
// LOCATION is a SQLite file or a PostgreSQL URL. While appending, two threads each append events
// in a loop (mostly one at a time, so that they share group commits, and now and then a batch
// of three) and print each event's id on a line of its own, flushed, only after the append that
// stored it returned: a printed id is an acknowledged event. The audit consumer runs in the same
// process, so a kill also lands in the middle of audit writes. Exits 1 with a message on stderr
// if the store fails.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "herald/audit_log.hpp"
#include "herald/domain/audit_rules.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/events.hpp"
#include "herald/event.hpp"
#include "herald/event_store.hpp"

namespace {

constexpr int appender_threads = 2;

std::mutex output_mutex;

/// Prints `ids`, one per line, in one write: a line is either whole in the file or absent.
void acknowledge(const std::vector<herald::EventId>& ids) {
  std::string lines;
  for (const herald::EventId& id : ids) lines += id.to_string() + "\n";
  std::lock_guard lock(output_mutex);
  std::fwrite(lines.data(), 1, lines.size(), stdout);
  std::fflush(stdout);
}

[[noreturn]] void die(std::string_view doing, const herald::Error& error) {
  std::lock_guard lock(output_mutex);
  std::fprintf(stderr, "herald_crash_producer: %.*s: %s\n", static_cast<int>(doing.size()),
               doing.data(), error.message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

/// The `n`th event a thread appends: a few of the platform's types, so that the audit mapping's
/// actor rules are exercised too.
herald::EventPtr make_event(std::int64_t n) {
  using namespace herald::domain;
  const std::int64_t user = 1000 + n;
  switch (n % 4) {
    case 0:
      return herald::EventPtr::make(herald::make<UserCreatedEvent>(
          {.entity_id = user, .user_id = user}, {.discord_username = "racer" + std::to_string(n)}));
    case 1:
      return herald::EventPtr::make(herald::make<OrganizationMemberAddedEvent>(
          {.entity_id = n, .user_id = 7, .organization_id = 42},
          {.member_user_id = user, .added_by_user_id = 7}));
    case 2:
      return herald::EventPtr::make(herald::make<RaceSubmittedEvent>(
          {.entity_id = n, .user_id = user, .organization_id = 42},
          {.tournament_id = 3, .racer_user_id = user, .time_seconds = 5400 + n % 900}));
    default:
      return herald::EventPtr::make(herald::make<TournamentUpdatedEvent>(
          {.entity_id = 3, .user_id = 7, .organization_id = 42},
          {.changed_fields = std::vector<std::string>{"rules_url"}}));
  }
}

void append_forever(herald::EventStore& store, int thread) {
  for (std::int64_t n = thread;; n += appender_threads) {
    if (n % 5 == 4) {
      std::vector<herald::EventPtr> batch = {make_event(n), make_event(n + 1), make_event(n + 2)};
      std::vector<herald::EventRef> refs(batch.begin(), batch.end());
      if (auto appended = store.append_batch(refs); !appended)
        die("appending a batch", appended.error());
      std::vector<herald::EventId> ids;
      for (const herald::EventPtr& event : batch) ids.push_back(event->event_id);
      acknowledge(ids);
    } else {
      const herald::EventPtr event = make_event(n);
      if (auto appended = store.append(event.ref()); !appended) die("appending", appended.error());
      acknowledge({event->event_id});
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool catch_up = argc == 3 && std::string_view(argv[2]) == "--catch-up";
  if (argc != 2 && !catch_up) {
    std::fprintf(stderr, "usage: %s LOCATION [--catch-up]\n", argv[0]);
    return 2;
  }
  auto store =
      herald::open_store({.location = argv[1], .catalog = &herald::domain::platform_catalog()});
  if (!store) die("opening the store", store.error());
  auto audit = herald::make_audit_consumer(**store, herald::domain::audit_mapping());

  if (catch_up) {
    auto handled = audit->catch_up();
    if (!handled) die("catching up the audit consumer", handled.error());
    auto checkpoint = audit->checkpoint();
    if (!checkpoint) die("reading the audit checkpoint", checkpoint.error());
    std::printf("audit consumer caught up: %zu events handled, checkpoint %lld\n", *handled,
                static_cast<long long>(*checkpoint));
    return 0;
  }

  if (auto started = audit->start(); !started) die("starting the audit consumer", started.error());
  std::vector<std::thread> appenders;
  for (int thread = 0; thread < appender_threads; ++thread) {
    appenders.emplace_back(append_forever, std::ref(**store), thread);
  }
  for (std::thread& appender : appenders) appender.join();  // never: the test kills the process
  return 0;
}
