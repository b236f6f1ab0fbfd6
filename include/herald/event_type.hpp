#pragma once

#include <boost/describe/members.hpp>
#include <boost/json/object.hpp>
#include <boost/mp11/algorithm.hpp>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "herald/detail/field_codec.hpp"
#include "herald/detail/json_text.hpp"
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
  /// Reads the field's value from JSON text into an event of the type (`FieldCodec::read_text`);
  /// nullptr when the field's codec has no text reader.
  bool (*read_text)(detail::JsonTextReader&, BaseEvent&) = nullptr;
};

/// The runtime description of one event type: its traits, its fields, and its JSON codec.
/// Immutable after construction; one per type per process (see `type_of<E>()`). Thread-safe.
class EventType {
 public:
  using Encode = void (*)(const BaseEvent&, boost::json::object&);
  using Decode = std::expected<EventPtr, Error> (*)(const boost::json::object&, const EventType&);
  using DecodeText = EventPtr (*)(std::string_view, const EventType&);

  EventType(const EventTraits& traits, bool is_entity, std::vector<FieldInfo> fields,
            const std::type_info& cpp_type, Encode encode_fn, Decode decode_fn,
            DecodeText decode_text_fn = nullptr);
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
  /// Decodes an event of this type straight from its JSON text, without building a DOM. A fast
  /// path that declines rather than fails: it returns an empty EventPtr for anything but a
  /// well-formed object (valid UTF-8, no repeated keys, nesting of at most
  /// `detail::text_reader_max_depth`) that `decode` accepts, and the caller then parses the text
  /// and calls `decode`, which words the error. What it returns equals what `decode` returns.
  /// It applies no size limit: `decode_event(text, catalog)` refuses oversized text before it.
  EventPtr try_decode_text(std::string_view json) const {
    return decode_text_ == nullptr ? EventPtr() : decode_text_(json, *this);
  }

 private:
  EventTraits traits_;
  bool is_entity_;
  std::vector<FieldInfo> fields_;
  const std::type_info* cpp_type_;
  Encode encode_;
  Decode decode_;
  DecodeText decode_text_;
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

/// A field type whose codec can read it from JSON text.
template <class T>
concept TextReadable = requires(JsonTextReader& in, T& value) {
  { FieldCodec<T>::read_text(in, value) } -> std::same_as<bool>;
};

template <class E, class D>
using member_type = std::remove_cvref_t<decltype(std::declval<E&>().*D::pointer)>;

template <Event E, class D>
bool read_field_text(JsonTextReader& in, BaseEvent& event) {
  return FieldCodec<member_type<E, D>>::read_text(in, static_cast<E&>(event).*D::pointer);
}

template <Event E>
constexpr bool text_readable() {
  bool all = true;
  boost::mp11::mp_for_each<described_fields<E>>(
      [&](auto d) { all = all && TextReadable<member_type<E, decltype(d)>>; });
  // read_event_text marks the fields it saw in 64 bits.
  return all && boost::mp11::mp_size<described_fields<E>>::value <= 64;
}

/// The position of the field named `name` among E's described fields.
template <Event E>
constexpr std::size_t field_position(std::string_view name) {
  std::size_t position = 0, found = 0;
  boost::mp11::mp_for_each<described_fields<E>>([&](auto d) {
    if (wire_name(decltype(d)::name) == name) found = position;
    ++position;
  });
  return found;
}

/// An event type built directly on EntityEvent or BaseEvent can be built from a base object whose
/// `event_id` and `timestamp` are left blank: cheaper than generating both only to overwrite them.
template <class E>
concept BuiltOnEntityEvent = std::derived_from<E, EntityEvent> && requires(EntityEvent base) {
  E{std::move(base)};
};
template <class E>
concept BuiltOnBaseEvent = requires(BaseEvent base) {
  E{std::move(base)};
};

template <Event E>
std::shared_ptr<E> make_blank_event() {
  BaseEvent base{.event_id = EventId(),
                 .timestamp = Timestamp(),
                 .user_id = std::nullopt,
                 .organization_id = std::nullopt,
                 .priority = E::traits.priority,
                 .metadata = {}};
  if constexpr (BuiltOnEntityEvent<E>) {
    return std::make_shared<E>(EntityEvent{std::move(base), std::nullopt, {}});
  } else if constexpr (!std::derived_from<E, EntityEvent> && BuiltOnBaseEvent<E>) {
    return std::make_shared<E>(std::move(base));
  } else {
    auto event = std::make_shared<E>();
    static_cast<BaseEvent&>(*event).priority = E::traits.priority;
    return event;
  }
}

template <Event E>
EventPtr decode_event_text(std::string_view json, const EventType& type) {
  std::shared_ptr<E> event = make_blank_event<E>();
  std::uint64_t seen = 0;
  if (!read_event_text(json, type, *event, seen)) return {};
  // As in decode_event: a missing event_id or timestamp is generated.
  BaseEvent& base = *event;
  constexpr std::size_t id_bit = field_position<E>("event_id");
  constexpr std::size_t timestamp_bit = field_position<E>("timestamp");
  if ((seen & (std::uint64_t{1} << id_bit)) == 0) base.event_id = EventId::generate();
  if ((seen & (std::uint64_t{1} << timestamp_bit)) == 0) base.timestamp = herald::now();
  return EventPtr(std::shared_ptr<const E>(std::move(event)));
}

template <Event E, class D>
constexpr auto field_text_reader() -> bool (*)(JsonTextReader&, BaseEvent&) {
  if constexpr (TextReadable<member_type<E, D>>) {
    return &read_field_text<E, D>;
  } else {
    return nullptr;
  }
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
                               .schema = &FieldCodec<T>::schema,
                               .read_text = field_text_reader<E, D>()});
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
                              &detail::decode_event<E>,
                              detail::text_readable<E>() ? &detail::decode_event_text<E> : nullptr);
  return type;
}

}  // namespace herald
