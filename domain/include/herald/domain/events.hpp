#pragma once

// Every event type of the platform and its catalog: include this to emit or decode any of them.

#include "herald/domain/catalog.hpp"
#include "herald/domain/invite_events.hpp"
#include "herald/domain/organization_events.hpp"
#include "herald/domain/other_events.hpp"
#include "herald/domain/race_events.hpp"
#include "herald/domain/tournament_events.hpp"
#include "herald/domain/user_events.hpp"
