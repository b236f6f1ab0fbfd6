#pragma once

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "herald/error.hpp"
#include "herald/event_type.hpp"

namespace herald {

/// Maps wire names to event types, for decoding and for listing. Registration is meant to happen
/// at start-up; after that the catalog is read-only and safe to share between threads
/// (registration itself is not synchronized).
class EventCatalog {
 public:
  /// Registers `E`. Registering the same type twice is harmless.
  template <Event E>
  EventCatalog& add() {
    add(type_of<E>());
    return *this;
  }
  /// Registers a type; a different type under an existing name is a bug (asserts).
  void add(const EventType& type);

  /// The type named `name`, or nullptr.
  const EventType* find(std::string_view name) const noexcept;
  /// Every registered type, sorted by name.
  std::vector<const EventType*> types() const;
  std::size_t size() const noexcept { return by_name_.size(); }
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

 private:
  std::map<std::string, const EventType*, std::less<>> by_name_;
  /// The same, hashed, for `find`: stores look up a type for every event they read. The keys view
  /// each type's own name, which lives as long as the type.
  std::unordered_map<std::string_view, const EventType*> index_;
};

}  // namespace herald
