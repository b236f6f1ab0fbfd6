#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "herald/event.hpp"

namespace herald {

class EventType;

/// The runtime description of event type `E` (defined in event_type.hpp).
template <Event E>
const EventType& type_of() noexcept;

/// A non-owning view of an event of any type: the event and its type. What `on_any` handlers
/// receive. Valid only as long as the event it refers to. Thread-safe to read.
class EventRef {
 public:
  EventRef(const BaseEvent& event, const EventType& type) noexcept : event_(&event), type_(&type) {}
  /// Views a concrete event.
  template <Event E>
  EventRef(const E& event) noexcept  // NOLINT(google-explicit-constructor): a view converts.
      : event_(&event), type_(&type_of<E>()) {}

  const EventType& type() const noexcept { return *type_; }
  /// The type's wire name, e.g. "UserCreatedEvent".
  std::string_view event_type() const noexcept;
  /// The fields every event has.
  const BaseEvent& base() const noexcept { return *event_; }
  const BaseEvent* operator->() const noexcept { return event_; }
  /// The entity fields, or nullptr when the type is not an EntityEvent.
  const EntityEvent* entity() const noexcept;

  /// The event as `E`, or nullptr when it is of another type.
  template <Event E>
  const E* get() const noexcept {
    return type_ == &type_of<E>() ? static_cast<const E*>(event_) : nullptr;
  }

  /// `UserCreatedEvent(id=0193c1a2, user=456, org=789)`.
  std::string to_string() const;
  /// The wire form: every field plus `event_type` (and `entity_type` for entity events).
  boost::json::object to_json() const;
  /// The wire form serialized.
  std::string to_json_string() const;

 private:
  const BaseEvent* event_;
  const EventType* type_;
};

/// A shared, immutable event of any type: what queues and stores hold. Cheap to copy.
class EventPtr {
 public:
  EventPtr() noexcept = default;
  EventPtr(std::shared_ptr<const BaseEvent> event, const EventType& type) noexcept
      : event_(std::move(event)), type_(&type) {}
  template <Event E>
  EventPtr(std::shared_ptr<const E> event) noexcept  // NOLINT(google-explicit-constructor)
      : event_(std::move(event)), type_(&type_of<E>()) {}

  /// Moves `event` into shared storage.
  template <Event E>
  static EventPtr make(E event) {
    return EventPtr(std::shared_ptr<const E>(std::make_shared<E>(std::move(event))));
  }

  explicit operator bool() const noexcept { return event_ != nullptr; }
  EventRef ref() const noexcept { return EventRef(*event_, *type_); }
  operator EventRef() const noexcept { return ref(); }  // NOLINT(google-explicit-constructor)
  const EventType& type() const noexcept { return *type_; }
  std::string_view event_type() const noexcept { return ref().event_type(); }
  const BaseEvent& base() const noexcept { return *event_; }
  const BaseEvent* operator->() const noexcept { return event_.get(); }
  template <Event E>
  const E* get() const noexcept {
    return ref().template get<E>();
  }
  /// Shares ownership of `E` when the event is one, else nullptr.
  template <Event E>
  std::shared_ptr<const E> shared() const noexcept {
    return get<E>() ? std::static_pointer_cast<const E>(event_) : nullptr;
  }
  const std::shared_ptr<const BaseEvent>& shared_base() const noexcept { return event_; }

 private:
  std::shared_ptr<const BaseEvent> event_;
  const EventType* type_ = nullptr;
};

}  // namespace herald

#include "herald/event_type.hpp"  // defines type_of<E>(), which the templates above call.
