#pragma once

#include <boost/describe/members.hpp>
#include <boost/json/object.hpp>
#include <boost/mp11/algorithm.hpp>
#include <cstddef>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "herald/detail/field_codec.hpp"
#include "herald/error.hpp"
#include "herald/event.hpp"
#include "herald/event_ref.hpp"

namespace herald {

/// One field of an event type, as the catalog lists it and JSON Schema describes it.
struct FieldInfo {
  std::string_view name;
  /// "integer", "string", "boolean", "[string]", "[integer]", "object", "integer|string",
  /// "uuid", "timestamp" or "priority".
  std::string_view type_name;
  /// What decoding expects, for error messages: "integer or string".
  std::string_view expected;
  /// Whether null is allowed (and the default).
  bool nullable = false;
  /// True for the fields of BaseEvent and EntityEvent, false for the type's own fields.
  bool common = false;
  /// Writes the field's JSON Schema (draft 2020-12) into the object.
  void (*schema)(boost::json::object&) = nullptr;
};

/// The runtime description of one event type: its traits, its fields, and its JSON codec.
/// Immutable after construction; one per type per process (see `type_of<E>()`). Thread-safe.
class EventType {
 public:
  using Encode = void (*)(const BaseEvent&, boost::json::object&);
  using Decode = std::expected<EventPtr, Error> (*)(const boost::json::object&, const EventType&);

  EventType(const EventTraits& traits, bool is_entity, std::vector<FieldInfo> fields,
            const std::type_info& cpp_type, Encode encode_fn, Decode decode_fn);
  EventType(const EventType&) = delete;
  EventType& operator=(const EventType&) = delete;

  /// The wire name, e.g. "UserCreatedEvent".
  std::string_view name() const noexcept { return traits_.name; }
  /// The fixed entity type, e.g. "User"; empty for non-entity events.
  std::string_view entity_type() const noexcept { return traits_.entity_type; }
  Priority default_priority() const noexcept { return traits_.priority; }
  std::string_view description() const noexcept { return traits_.description; }
  bool is_entity_event() const noexcept { return is_entity_; }
  /// Every field in wire order: the common fields first, then the type's own.
  std::span<const FieldInfo> fields() const noexcept { return fields_; }
  /// A dense process-wide number for this type (0, 1, 2, … in first-use order).
  std::size_t index() const noexcept { return index_; }
  const std::type_info& cpp_type() const noexcept { return *cpp_type_; }

  /// Writes the wire form of `event` (which must be of this type) into `out`.
  void encode(const BaseEvent& event, boost::json::object& out) const { encode_(event, out); }
  /// Builds an event of this type from its wire form. Strict: wrong types, unknown fields and a
  /// wrong `entity_type` are errors naming the field. Missing nullable fields are null; a
  /// missing `event_id` or `timestamp` is generated; a missing `priority` is the type's default.
  std::expected<EventPtr, Error> decode(const boost::json::object& wire) const {
    return decode_(wire, *this);
  }

 private:
  EventTraits traits_;
  bool is_entity_;
  std::vector<FieldInfo> fields_;
  const std::type_info* cpp_type_;
  Encode encode_;
  Decode decode_;
  std::size_t index_;
};

namespace detail {

template <class E>
using described_fields = boost::describe::describe_members<E, boost::describe::mod_public |
                                                                  boost::describe::mod_inherited>;

/// The wire name of a described member: its C++ name without a trailing underscore, so a field
/// whose name is a C++ keyword (`namespace`) is declared as `namespace_`.
constexpr std::string_view wire_name(std::string_view member) noexcept {
  if (!member.empty() && member.back() == '_') member.remove_suffix(1);
  return member;
}

template <class D>
constexpr bool is_common_field() {
  std::string_view n = D::name;
  for (std::string_view c : {"event_id", "timestamp", "user_id", "organization_id", "priority",
                             "metadata", "entity_id", "entity_data"}) {
    if (n == c) return true;
  }
  return false;
}

/// The error for a field whose JSON value does not have the expected type; `why`, when not
/// empty, is appended in parentheses ("no such date").
Error field_type_error(std::string_view field, std::string_view expected,
                       const boost::json::value& got, std::string_view why = {});
/// Checks `event_type`/`entity_type` keys of `wire` against `type` and finds unknown keys once
/// `matched` known fields were seen. Returns the error to report, if any.
std::optional<Error> check_envelope(const boost::json::object& wire, const EventType& type,
                                    std::size_t matched);

template <Event E>
void encode_event(const BaseEvent& base, boost::json::object& out) {
  const E& event = static_cast<const E&>(base);
  out.reserve(out.size() + boost::mp11::mp_size<described_fields<E>>::value + 2);
  out["event_type"] = E::traits.name;
  boost::mp11::mp_for_each<described_fields<E>>([&](auto d) {
    using D = decltype(d);
    using T = std::remove_cvref_t<decltype(event.*D::pointer)>;
    if constexpr (std::string_view(D::name) == "entity_id") {
      out["entity_type"] = E::traits.entity_type;
    }
    FieldCodec<T>::encode(event.*D::pointer, out[wire_name(D::name)]);
  });
}

template <Event E>
std::expected<EventPtr, Error> decode_event(const boost::json::object& wire,
                                            const EventType& type) {
  auto event = std::make_shared<E>();
  static_cast<BaseEvent&>(*event).priority = E::traits.priority;
  std::size_t matched = 0;
  std::optional<Error> error;
  boost::mp11::mp_for_each<described_fields<E>>([&](auto d) {
    using D = decltype(d);
    if (error) return;
    constexpr std::string_view name = wire_name(D::name);
    const auto* it = wire.find(name);
    if (it == wire.end()) return;
    ++matched;
    using T = std::remove_cvref_t<decltype((*event).*D::pointer)>;
    if (!FieldCodec<T>::decode(it->value(), (*event).*D::pointer)) {
      error = field_type_error(name, FieldCodec<T>::expected, it->value(),
                               explain_failure<FieldCodec<T>>(it->value()));
    }
  });
  if (error) return std::unexpected(std::move(*error));
  if (auto envelope_error = check_envelope(wire, type, matched)) {
    return std::unexpected(std::move(*envelope_error));
  }
  return EventPtr(std::shared_ptr<const E>(std::move(event)));
}

template <Event E>
std::vector<FieldInfo> field_infos() {
  std::vector<FieldInfo> fields;
  boost::mp11::mp_for_each<described_fields<E>>([&](auto d) {
    using D = decltype(d);
    using T = std::remove_cvref_t<decltype(std::declval<const E&>().*D::pointer)>;
    fields.push_back(FieldInfo{.name = wire_name(D::name),
                               .type_name = FieldCodec<T>::type_name,
                               .expected = FieldCodec<T>::expected,
                               .nullable = is_nullable_v<T>,
                               .common = is_common_field<D>(),
                               .schema = &FieldCodec<T>::schema});
  });
  return fields;
}

}  // namespace detail

template <Event E>
const EventType& type_of() noexcept {
  static_assert(std::is_aggregate_v<E>, "an event type is a plain aggregate struct");
  static_assert(boost::describe::has_describe_members<E>::value,
                "describe the event's fields with BOOST_DESCRIBE_STRUCT (see docs/events.md)");
  static const EventType type(E::traits, std::is_base_of_v<EntityEvent, E>,
                              detail::field_infos<E>(), typeid(E), &detail::encode_event<E>,
                              &detail::decode_event<E>);
  return type;
}

}  // namespace herald
