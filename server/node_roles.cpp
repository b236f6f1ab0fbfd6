#include "node_roles.hpp"

#include <spdlog/spdlog.h>

namespace herald::server {

NodeRoles::NodeRoles(std::string location, std::string node_id)
    : location_(std::move(location)), node_id_(std::move(node_id)) {}

NodeRoles::~NodeRoles() { stop(); }

std::expected<void, Error> NodeRoles::add(std::string role,
                                          std::function<std::expected<void, Error>()> start,
                                          std::function<void()> stop) {
  const std::string node = node_id_;
  auto lease = cluster::LeaderLease::create({
      .location = location_,
      .role = role,
      .on_acquired =
          [node, role, start = std::move(start)] {
            spdlog::info("node {}: leading {}", node, role);
            if (auto started = start(); !started) {
              spdlog::error("node {}: starting {} failed: {}", node, role, started.error().message);
            }
          },
      .on_lost =
          [node, role, stop = std::move(stop)] {
            stop();
            spdlog::info("node {}: no longer leading {}", node, role);
          },
      .on_error =
          [node, role](const Error& error) {
            spdlog::warn("node {}: lease {}: {}", node, role, error.message);
          },
  });
  if (!lease) return std::unexpected(std::move(lease.error()));
  leases_.push_back(std::move(*lease));
  return {};
}

std::expected<void, Error> NodeRoles::start() {
  for (auto& lease : leases_) {
    if (auto started = lease->start(); !started) return started;
  }
  return {};
}

void NodeRoles::stop() {
  for (auto& lease : leases_) lease->stop();
}

std::vector<http::NodeRole> NodeRoles::status() const {
  std::vector<http::NodeRole> out;
  out.reserve(leases_.size());
  for (const auto& lease : leases_) {
    out.push_back(http::NodeRole{.role = lease->role(), .leader = lease->is_leader()});
  }
  return out;
}

}  // namespace herald::server
