#pragma once

#include "herald/event_catalog.hpp"

namespace herald::domain {

/// Registers the platform's 28 event types in `catalog`; registering them again is harmless.
/// Not synchronized: call it at start-up, before the catalog is shared.
void register_platform_events(herald::EventCatalog& catalog);

/// The platform's catalog with all 28 event types, built on first use. Thread-safe; read-only.
const herald::EventCatalog& platform_catalog();

}  // namespace herald::domain
