#include "herald/event_catalog.hpp"

#include <cassert>

namespace herald {

void EventCatalog::add(const EventType& type) {
  auto [it, inserted] = by_name_.try_emplace(std::string(type.name()), &type);
  index_.try_emplace(type.name(), &type);
  assert((inserted || it->second == &type) && "two event types share one wire name");
  (void)it;
  (void)inserted;
}

const EventType* EventCatalog::find(std::string_view name) const noexcept {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<const EventType*> EventCatalog::types() const {
  std::vector<const EventType*> out;
  out.reserve(by_name_.size());
  for (const auto& [name, type] : by_name_) out.push_back(type);
  return out;
}

}  // namespace herald
