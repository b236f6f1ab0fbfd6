// A process that takes a `LeaderLease` and keeps it until it is killed, for the tests that kill
// the leader's process: `herald_cluster_lease_holder POSTGRES_URL ROLE` prints "leader" on a line
// of its own once it leads, and "lost" if it stops leading.

#include <unistd.h>

#include <cstdio>

#include "herald/cluster/leader_lease.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s POSTGRES_URL ROLE\n", argv[0]);
    return 2;
  }
  auto lease = herald::cluster::LeaderLease::create({
      .location = argv[1],
      .role = argv[2],
      .retry_interval = std::chrono::milliseconds(100),
      .on_acquired =
          [] {
            std::puts("leader");
            std::fflush(stdout);
          },
      .on_lost =
          [] {
            std::puts("lost");
            std::fflush(stdout);
          },
  });
  if (!lease) {
    std::fprintf(stderr, "lease: %s\n", lease.error().message.c_str());
    return 1;
  }
  if (auto started = (*lease)->start(); !started) {
    std::fprintf(stderr, "lease: %s\n", started.error().message.c_str());
    return 1;
  }
  // Holds the lease until a signal ends the process.
  for (;;) ::pause();
}
