// A node that runs the NATS relay under a lease until it is killed, for the tests that kill the
// relay's process: `herald_cluster_relay_node POSTGRES_URL NATS_URL STREAM SUBJECT_PREFIX` prints
// "leader" on a line of its own once it leads (and relays).

#include <unistd.h>

#include <cstdio>

#include "herald/cluster/leader_lease.hpp"
#include "herald/cluster/nats_relay.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/event_store.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s POSTGRES_URL NATS_URL STREAM SUBJECT_PREFIX\n", argv[0]);
    return 2;
  }
  auto store =
      herald::open_store({.location = argv[1], .catalog = &herald::domain::platform_catalog()});
  if (!store) {
    std::fprintf(stderr, "store: %s\n", store.error().message.c_str());
    return 1;
  }
  auto relay = herald::cluster::NatsRelay::create(
      **store, {.url = argv[2], .stream = argv[3], .subject_prefix = argv[4]});
  if (!relay) {
    std::fprintf(stderr, "relay: %s\n", relay.error().message.c_str());
    return 1;
  }
  herald::cluster::NatsRelay& relay_ref = **relay;
  auto lease = herald::cluster::LeaderLease::create({
      .location = argv[1],
      .role = std::string("relay:") + argv[3],
      .retry_interval = std::chrono::milliseconds(100),
      .on_acquired =
          [&relay_ref] {
            if (auto started = relay_ref.start(); !started) {
              std::fprintf(stderr, "relay: %s\n", started.error().message.c_str());
              return;
            }
            std::puts("leader");
            std::fflush(stdout);
          },
      .on_lost = [&relay_ref] { relay_ref.stop(); },
  });
  if (!lease) {
    std::fprintf(stderr, "lease: %s\n", lease.error().message.c_str());
    return 1;
  }
  if (auto started = (*lease)->start(); !started) {
    std::fprintf(stderr, "lease: %s\n", started.error().message.c_str());
    return 1;
  }
  // Relays until a signal ends the process.
  for (;;) ::pause();
}
