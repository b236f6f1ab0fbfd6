#pragma once

// The roles a `herald serve` node may lead among the nodes that share its store: each durable
// consumer and the NATS relay, each under a lease (docs/cluster.md).

#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "herald/cluster/leader_lease.hpp"
#include "herald/error.hpp"
#include "herald/http/server.hpp"

namespace herald::server {

/// The roles of one node, each started when this node takes its lease and stopped when it loses
/// it. Thread-safe after `start`.
class NodeRoles {
 public:
  /// Roles leased on the store at `location`, for the node named `node_id` (logs).
  NodeRoles(std::string location, std::string node_id);
  NodeRoles(const NodeRoles&) = delete;
  NodeRoles& operator=(const NodeRoles&) = delete;
  /// Stops every role.
  ~NodeRoles();

  /// Adds `role`: `start` runs when this node becomes its leader, `stop` when it stops being it.
  /// Errors: the lease's (`invalid_argument` for a bad role name).
  std::expected<void, Error> add(std::string role,
                                 std::function<std::expected<void, Error>()> start,
                                 std::function<void()> stop);
  /// Starts trying for every lease. Errors: the first lease that fails to start.
  std::expected<void, Error> start();
  /// Stops every role it leads and releases every lease. Idempotent.
  void stop();
  /// Each role and whether this node leads it, in the order added.
  std::vector<http::NodeRole> status() const;

 private:
  std::string location_;
  std::string node_id_;
  std::vector<std::unique_ptr<cluster::LeaderLease>> leases_;
};

}  // namespace herald::server
