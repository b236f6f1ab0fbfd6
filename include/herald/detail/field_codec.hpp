#pragma once

// JSON encoding, decoding and JSON Schema for each C++ type an event field may have. One
// specialization per type; an event's codec is the composition of its fields' codecs. Each
// codec's `read_text` reads the field straight from JSON text (json_text.hpp) and returns false
// for anything `decode` would not accept as it is, leaving the error to `decode`.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "herald/detail/json_text.hpp"
#include "herald/event.hpp"

namespace herald::detail {

/// Describes what a JSON value is, for error messages: "string \"abc\"", "array", "number 1.5".
std::string describe_json_value(const boost::json::value& v);

/// `text` as a JSON string literal for a message, cut to at most `limit` bytes on a UTF-8
/// character boundary (with "…" after the closing quote when cut).
std::string quote_for_message(std::string_view text, std::size_t limit);

/// The longest prefix of `text` of at most `limit` bytes that ends on a UTF-8 boundary.
std::string_view utf8_prefix(std::string_view text, std::size_t limit) noexcept;

/// Reads an int64 from an int64 or a uint64 that fits; false otherwise.
bool read_int64(const boost::json::value& v, std::int64_t& out) noexcept;

template <class T>
struct FieldCodec;

template <>
struct FieldCodec<std::int64_t> {
  static constexpr std::string_view type_name = "integer";
  static constexpr std::string_view expected = "integer";
  static void encode(const std::int64_t& v, boost::json::value& out) { out = v; }
  static bool decode(const boost::json::value& v, std::int64_t& out) { return read_int64(v, out); }
  static bool read_text(JsonTextReader& in, std::int64_t& out) { return in.read_int64(out); }
  static void schema(boost::json::object& s) { s["type"] = "integer"; }
};

template <>
struct FieldCodec<bool> {
  static constexpr std::string_view type_name = "boolean";
  static constexpr std::string_view expected = "boolean";
  static void encode(const bool& v, boost::json::value& out) { out = v; }
  static bool decode(const boost::json::value& v, bool& out) {
    if (!v.is_bool()) return false;
    out = v.get_bool();
    return true;
  }
  static bool read_text(JsonTextReader& in, bool& out) { return in.read_bool(out); }
  static void schema(boost::json::object& s) { s["type"] = "boolean"; }
};

template <>
struct FieldCodec<std::string> {
  static constexpr std::string_view type_name = "string";
  static constexpr std::string_view expected = "string";
  static void encode(const std::string& v, boost::json::value& out) { out = v; }
  static bool decode(const boost::json::value& v, std::string& out) {
    if (!v.is_string()) return false;
    out.assign(v.get_string().data(), v.get_string().size());
    return true;
  }
  static bool read_text(JsonTextReader& in, std::string& out) { return in.read_string(out); }
  static void schema(boost::json::object& s) { s["type"] = "string"; }
};

template <>
struct FieldCodec<std::vector<std::string>> {
  static constexpr std::string_view type_name = "[string]";
  static constexpr std::string_view expected = "array of strings";
  static void encode(const std::vector<std::string>& v, boost::json::value& out) {
    boost::json::array& a = out.emplace_array();
    a.reserve(v.size());
    for (const auto& s : v) a.emplace_back(s);
  }
  static bool decode(const boost::json::value& v, std::vector<std::string>& out) {
    if (!v.is_array()) return false;
    out.clear();
    out.reserve(v.get_array().size());
    for (const auto& item : v.get_array()) {
      if (!item.is_string()) return false;
      out.emplace_back(item.get_string().data(), item.get_string().size());
    }
    return true;
  }
  static bool read_text(JsonTextReader& in, std::vector<std::string>& out) {
    return in.read_strings(out);
  }
  static void schema(boost::json::object& s) {
    s["type"] = "array";
    s["items"] = {{"type", "string"}};
  }
};

template <>
struct FieldCodec<std::vector<std::int64_t>> {
  static constexpr std::string_view type_name = "[integer]";
  static constexpr std::string_view expected = "array of integers";
  static void encode(const std::vector<std::int64_t>& v, boost::json::value& out) {
    boost::json::array& a = out.emplace_array();
    a.reserve(v.size());
    for (auto n : v) a.emplace_back(n);
  }
  static bool decode(const boost::json::value& v, std::vector<std::int64_t>& out) {
    if (!v.is_array()) return false;
    out.clear();
    out.reserve(v.get_array().size());
    for (const auto& item : v.get_array()) {
      std::int64_t n = 0;
      if (!read_int64(item, n)) return false;
      out.push_back(n);
    }
    return true;
  }
  static bool read_text(JsonTextReader& in, std::vector<std::int64_t>& out) {
    return in.read_int64s(out);
  }
  static void schema(boost::json::object& s) {
    s["type"] = "array";
    s["items"] = {{"type", "integer"}};
  }
};

template <>
struct FieldCodec<boost::json::object> {
  static constexpr std::string_view type_name = "object";
  static constexpr std::string_view expected = "object";
  static void encode(const boost::json::object& v, boost::json::value& out) { out = v; }
  static bool decode(const boost::json::value& v, boost::json::object& out) {
    if (!v.is_object()) return false;
    out = v.get_object();
    return true;
  }
  static bool read_text(JsonTextReader& in, boost::json::object& out) {
    return in.read_object(out);
  }
  static void schema(boost::json::object& s) { s["type"] = "object"; }
};

template <>
struct FieldCodec<EntityId> {
  static constexpr std::string_view type_name = "integer|string";
  static constexpr std::string_view expected = "integer or string";
  static void encode(const EntityId& v, boost::json::value& out) {
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
      out = *n;
    } else {
      out = std::get<std::string>(v);
    }
  }
  static bool decode(const boost::json::value& v, EntityId& out) {
    std::int64_t n = 0;
    if (read_int64(v, n)) {
      out = n;
      return true;
    }
    if (!v.is_string()) return false;
    out = std::string(v.get_string().data(), v.get_string().size());
    return true;
  }
  static bool read_text(JsonTextReader& in, EntityId& out) {
    if (in.peek() == '"') return in.read_string(out.emplace<std::string>());
    return in.read_int64(out.emplace<std::int64_t>());
  }
  static void schema(boost::json::object& s) {
    s["type"] = boost::json::array{"integer", "string"};
  }
};

template <>
struct FieldCodec<EventId> {
  static constexpr std::string_view type_name = "uuid";
  static constexpr std::string_view expected = "UUID string";
  static void encode(const EventId& v, boost::json::value& out) { out = v.to_string(); }
  static bool decode(const boost::json::value& v, EventId& out) {
    if (!v.is_string()) return false;
    auto id = EventId::parse(std::string_view(v.get_string()));
    if (!id) return false;
    out = *id;
    return true;
  }
  static bool read_text(JsonTextReader& in, EventId& out) {
    std::string_view text;
    if (!in.read_string(text)) return false;
    auto id = EventId::parse(text);
    if (!id) return false;
    out = *id;
    return true;
  }
  static void schema(boost::json::object& s) {
    s["type"] = "string";
    s["format"] = "uuid";
  }
};

template <>
struct FieldCodec<Timestamp> {
  static constexpr std::string_view type_name = "timestamp";
  static constexpr std::string_view expected = "RFC 3339 timestamp string";
  /// Why a string is not a timestamp, e.g. "no such date"; empty for other kinds of value.
  static std::string explain(const boost::json::value& v) {
    if (!v.is_string()) return {};
    auto t = parse_timestamp(std::string_view(v.get_string()));
    if (t) return {};
    const std::string& m = t.error().message;
    const auto colon = m.rfind("\": ");
    return colon == std::string::npos ? m : m.substr(colon + 3);
  }
  static void encode(const Timestamp& v, boost::json::value& out) { out = format_timestamp(v); }
  static bool decode(const boost::json::value& v, Timestamp& out) {
    if (!v.is_string()) return false;
    auto t = parse_timestamp(std::string_view(v.get_string()));
    if (!t) return false;
    out = *t;
    return true;
  }
  static bool read_text(JsonTextReader& in, Timestamp& out) {
    std::string_view text;
    if (!in.read_string(text)) return false;
    auto t = parse_timestamp(text);
    if (!t) return false;
    out = *t;
    return true;
  }
  static void schema(boost::json::object& s) {
    s["type"] = "string";
    s["format"] = "date-time";
  }
};

template <>
struct FieldCodec<Priority> {
  static constexpr std::string_view type_name = "priority";
  static constexpr std::string_view expected =
      "integer priority (LOW 25, NORMAL 50, HIGH 75, CRITICAL 100)";
  static void encode(const Priority& v, boost::json::value& out) {
    out = static_cast<std::int64_t>(v);
  }
  static bool decode(const boost::json::value& v, Priority& out) {
    std::int64_t n = 0;
    if (!read_int64(v, n) || n < std::numeric_limits<std::int32_t>::min() ||
        n > std::numeric_limits<std::int32_t>::max()) {
      return false;
    }
    out = static_cast<Priority>(n);
    return true;
  }
  static bool read_text(JsonTextReader& in, Priority& out) {
    std::int64_t n = 0;
    if (!in.read_int64(n) || n < std::numeric_limits<std::int32_t>::min() ||
        n > std::numeric_limits<std::int32_t>::max()) {
      return false;
    }
    out = static_cast<Priority>(n);
    return true;
  }
  static void schema(boost::json::object& s) { s["type"] = "integer"; }
};

/// Codecs that can say more than "expected X, got Y" provide `explain(value)`.
template <class Codec>
std::string explain_failure(const boost::json::value& v) {
  if constexpr (requires { Codec::explain(v); }) {
    return Codec::explain(v);
  } else {
    return {};
  }
}

template <class T>
struct FieldCodec<std::optional<T>> {
  static constexpr bool nullable = true;
  static std::string explain(const boost::json::value& v) {
    return explain_failure<FieldCodec<T>>(v);
  }
  static constexpr std::string_view type_name = FieldCodec<T>::type_name;
  static constexpr std::string_view expected = FieldCodec<T>::expected;
  static void encode(const std::optional<T>& v, boost::json::value& out) {
    if (v) {
      FieldCodec<T>::encode(*v, out);
    } else {
      out = nullptr;
    }
  }
  static bool decode(const boost::json::value& v, std::optional<T>& out) {
    if (v.is_null()) {
      out.reset();
      return true;
    }
    T inner{};
    if (!FieldCodec<T>::decode(v, inner)) return false;
    out = std::move(inner);
    return true;
  }
  static bool read_text(JsonTextReader& in, std::optional<T>& out) {
    if (in.read_null()) {
      out.reset();
      return true;
    }
    return FieldCodec<T>::read_text(in, out.emplace());
  }
  static void schema(boost::json::object& s) {
    FieldCodec<T>::schema(s);
    // JSON Schema 2020-12 section 6.1.1: "type" may be an array of types; null joins it.
    boost::json::value& type = s["type"];
    if (type.is_string()) {
      type = boost::json::array{type, "null"};
    } else {
      type.get_array().emplace_back("null");
    }
  }
};

template <class T>
inline constexpr bool is_nullable_v = false;
template <class T>
inline constexpr bool is_nullable_v<std::optional<T>> = true;

}  // namespace herald::detail
