#include "herald/event.hpp"

#include <string>

namespace herald {

std::string to_string(const EntityId& id) {
  if (const auto* n = std::get_if<std::int64_t>(&id)) return std::to_string(*n);
  return std::get<std::string>(id);
}

}  // namespace herald
