#pragma once

// The durable consumers the herald executable runs: the audit log and the Discord role sync.
// `herald demo --db` runs them beside the simulated platform; `herald parked retry` builds one to
// run its handler again.

#include <memory>
#include <string_view>
#include <vector>

#include "herald/durable_consumer.hpp"
#include "herald/event_store.hpp"

namespace herald::server {

/// The consumer that grants a new organization member the organization's role in its linked
/// Discord guild. It fails (and after its retries parks the event) when the member has no linked
/// Discord account.
inline constexpr std::string_view discord_roles_consumer_name = "discord-roles";

/// The names of the consumers this executable can run, in the order it starts them.
std::vector<std::string_view> platform_consumer_names();

/// Builds the consumer named `name` on `store` (which must outlive it), stopped; nullptr when this
/// executable runs no consumer of that name. `options.name` is set to `name`.
std::unique_ptr<DurableConsumer> make_platform_consumer(EventStore& store, std::string_view name,
                                                        ConsumerOptions options = {});

}  // namespace herald::server
