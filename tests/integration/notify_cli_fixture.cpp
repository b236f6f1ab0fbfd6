// herald_notify_cli_fixture: puts deliveries and inbox items into a herald database for
// tests/integration/notify_cli_test.sh, through the notification store's own API (as the
// notification consumer and a delivery worker would), so that the commands have something to
// list, show and re-send.
//
//   herald_notify_cli_fixture LOCATION
//
// LOCATION (a SQLite file or a PostgreSQL URL) must hold at least four events ('herald demo
// --db'). For the first four, user 42 gets an inbox item each ("Your race N was approved"), and
// four deliveries are made and attempted once: a Discord message to user 42 that dies (503), an
// email to user 42 that fails (550), an email to an invited address that is sent (250) and an
// announcement for organization 7 that is retrying (429). Prints "dead=ID failed=ID sent=ID
// retrying=ID" for the shell to eval. Exits 1 with a message on stderr if anything fails.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "herald/domain/catalog.hpp"
#include "herald/event_store.hpp"
#include "herald/notify/notification.hpp"
#include "herald/notify/notification_store.hpp"
#include "herald/notify/router.hpp"
#include "herald/timestamp.hpp"

namespace {

using herald::notify::Channel;
using herald::notify::DeliveryStatus;

constexpr std::int64_t user_id = 42;
constexpr std::int64_t organization_id = 7;

[[noreturn]] void die(std::string_view doing, const std::string& message) {
  std::fprintf(stderr, "herald_notify_cli_fixture: %.*s: %s\n", static_cast<int>(doing.size()),
               doing.data(), message.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s LOCATION (a herald SQLite file or PostgreSQL URL)\n", argv[0]);
    return 2;
  }
  const std::string location = argv[1];
  auto events =
      herald::open_store({.location = location, .catalog = &herald::domain::platform_catalog()});
  if (!events) die("opening the event store", events.error().message);
  auto stored = (*events)->read_forward(0, 4);
  if (!stored) die("reading events", stored.error().message);
  if (stored->size() < 4) die("reading events", "the store holds fewer than 4 events");
  auto store = herald::notify::open_notification_store(location);
  if (!store) die("opening the notification store", store.error().message);

  const herald::Timestamp now = herald::now();
  struct Planned {
    Channel channel;
    std::string recipient;
    std::string payload;
  };
  const std::vector<Planned> planned = {
      {Channel::discord, "user:42",
       R"({"discord_id":"80351110224678912","title":"Your race was approved","markdown":"**Your race was approved**","link":"/races/5"})"},
      {Channel::email, "user:42",
       R"({"to":"racer@example.org","title":"Your race was approved","text":"Approved.","html":"<p>Approved.</p>","link":"/races/5"})"},
      {Channel::email, "email:invited@example.org",
       R"({"to":"invited@example.org","title":"You are invited","text":"Join us.","html":"<p>Join us.</p>","link":"/invites/ABC123"})"},
      {Channel::discord_channel, "org:7",
       R"({"webhook_url":"https://discord.com/api/webhooks/1/token","title":"Tournament started","markdown":"**Tournament started**","link":"/tournaments/12"})"},
  };
  std::vector<herald::notify::RoutedEvent> routed;
  for (std::size_t i = 0; i < planned.size(); ++i) {
    const herald::StoredEvent& event = (*stored)[i];
    herald::notify::RoutedEvent r{.position = event.position,
                                  .event_id = event.event.base().event_id};
    if (i == 0) {
      r.changes.push_back({.op = herald::notify::DirectoryChange::Op::upsert_user,
                           .user_id = user_id,
                           .discord_id = 80351110224678912,
                           .discord_username = "racer"});
      r.changes.push_back({.op = herald::notify::DirectoryChange::Op::add_member,
                           .user_id = user_id,
                           .organization_id = organization_id});
    }
    r.inbox.push_back({.user_id = user_id,
                       .kind = "race_approved",
                       .event_id = r.event_id,
                       .position = event.position,
                       .organization_id = organization_id,
                       .title = "Your race " + std::to_string(i + 1) + " was approved",
                       .body = "A moderator approved it.",
                       .link = "/races/" + std::to_string(i + 1),
                       .created_at = now});
    const std::string kind = planned[i].channel == Channel::discord_channel ? "tournament_started"
                             : i == 2                                       ? "invite_received"
                                                                            : "race_approved";
    r.deliveries.push_back({.event_id = r.event_id,
                            .position = event.position,
                            .channel = planned[i].channel,
                            .recipient = planned[i].recipient,
                            .user_id = planned[i].recipient == "user:42"
                                           ? std::optional<std::int64_t>(user_id)
                                           : std::nullopt,
                            .organization_id = organization_id,
                            .kind = kind,
                            .payload = planned[i].payload});
    routed.push_back(std::move(r));
  }
  if (auto applied = (*store)->apply_routing(routed, "notify_cli_fixture"); !applied) {
    die("applying routing", applied.error().message);
  }

  // The deliveries are due from when they were written, after `now`.
  auto claimed = (*store)->claim_due("fixture", herald::now(), std::chrono::seconds(60), 10);
  if (!claimed) die("claiming deliveries", claimed.error().message);
  if (claimed->size() != planned.size()) {
    die("claiming deliveries", "expected " + std::to_string(planned.size()) + " due, got " +
                                   std::to_string(claimed->size()));
  }
  std::map<std::string, std::int64_t> ids;
  for (const herald::notify::DeliveryRecord& delivery : *claimed) {
    herald::notify::AttemptOutcome outcome{.started_at = now, .duration_us = 1500};
    std::string name;
    if (delivery.channel == Channel::discord) {
      outcome.status = DeliveryStatus::dead;
      outcome.status_code = 503;
      outcome.error = "Discord answered 503 Service Unavailable";
      name = "dead";
    } else if (delivery.channel == Channel::discord_channel) {
      outcome.status = DeliveryStatus::retrying;
      outcome.status_code = 429;
      outcome.error = "Discord answered 429: rate limited";
      outcome.next_attempt_at = now + std::chrono::hours(1);
      name = "retrying";
    } else if (delivery.recipient == "user:42") {
      outcome.status = DeliveryStatus::failed;
      outcome.status_code = 550;
      outcome.error = "SMTP 550: mailbox unavailable";
      name = "failed";
    } else {
      outcome.status = DeliveryStatus::sent;
      outcome.status_code = 250;
      name = "sent";
    }
    if (auto finished = (*store)->finish_attempt(delivery.id, "fixture", outcome); !finished) {
      die("finishing an attempt", finished.error().message);
    }
    ids[name] = delivery.id;
  }
  std::printf("dead=%lld failed=%lld sent=%lld retrying=%lld\n",
              static_cast<long long>(ids["dead"]), static_cast<long long>(ids["failed"]),
              static_cast<long long>(ids["sent"]), static_cast<long long>(ids["retrying"]));
  return 0;
}
