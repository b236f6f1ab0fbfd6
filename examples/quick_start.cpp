// herald quick start: emit an event, and handle it (built as herald_quick_start).
#include <cstdint>
#include <iostream>
#include <string>
#include <utility>

#include "herald/domain/events.hpp"
#include "herald/event_bus.hpp"

using herald::domain::UserCreatedEvent;

struct User {
  std::int64_t id;
  std::int64_t discord_id;
  std::string discord_username;
};

// Stands in for the database write.
User store_user(std::int64_t discord_id, std::string discord_username) {
  return User{.id = 42, .discord_id = discord_id, .discord_username = std::move(discord_username)};
}

// 1. Emit an event, after the write it describes succeeded.
User create_user(std::int64_t acting_user_id, std::int64_t org_id) {
  User user = store_user(123456789012345678, "ana");

  herald::default_bus().emit(herald::make<UserCreatedEvent>(
      {.entity_id = user.id, .user_id = acting_user_id, .organization_id = org_id},
      {.discord_id = user.discord_id, .discord_username = user.discord_username}));
  return user;
}

int main() {
  // 2. Handle an event: HIGH handlers finish before NORMAL and LOW ones start.
  herald::Subscription on_user_created = herald::default_bus().on<UserCreatedEvent>(
      [](const UserCreatedEvent& event) {
        std::cout << "User " << herald::to_string(*event.entity_id) << " created\n";
      },
      {.priority = herald::Priority::high, .name = "on_user_created"});

  create_user(/*acting_user_id=*/7, /*org_id=*/3);
}
