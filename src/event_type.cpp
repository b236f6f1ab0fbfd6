#include "herald/event_type.hpp"

#include <atomic>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <string>

#include "herald/event_ref.hpp"

namespace herald {
namespace {

std::atomic<std::size_t> next_type_index{0};

std::string describe_double(double d) {
  // A whole number beyond int64 was almost certainly meant as an integer.
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) >= 9.2233720368547758e18) {
    return "integer out of range";
  }
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
  std::string text(buffer, ec == std::errc{} ? end : buffer);
  if (text.find_first_of(".eEn") == std::string::npos) text.append(".0");
  return "number " + text;
}

}  // namespace

EventType::EventType(const EventTraits& traits, bool is_entity, std::vector<FieldInfo> fields,
                     const std::type_info& cpp_type, Encode encode_fn, Decode decode_fn,
                     DecodeText decode_text_fn)
    : traits_(traits),
      is_entity_(is_entity),
      fields_(std::move(fields)),
      cpp_type_(&cpp_type),
      encode_(encode_fn),
      decode_(decode_fn),
      decode_text_(decode_text_fn),
      index_(next_type_index.fetch_add(1, std::memory_order_relaxed)) {}

namespace detail {

bool read_int64(const boost::json::value& v, std::int64_t& out) noexcept {
  if (v.is_int64()) {
    out = v.get_int64();
    return true;
  }
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    out = static_cast<std::int64_t>(v.get_uint64());
    return true;
  }
  return false;
}

std::string describe_json_value(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return v.get_bool() ? "boolean true" : "boolean false";
    case boost::json::kind::int64:
      return "integer " + std::to_string(v.get_int64());
    case boost::json::kind::uint64:
      return "integer out of range";
    case boost::json::kind::double_:
      return describe_double(v.get_double());
    case boost::json::kind::string:
      return "string " + quote_for_message(v.get_string(), 40);
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "unknown";
}

std::string_view utf8_prefix(std::string_view text, std::size_t limit) noexcept {
  if (text.size() <= limit) return text;
  std::size_t cut = limit;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::string quote_for_message(std::string_view text, std::size_t limit) {
  const std::string_view prefix = utf8_prefix(text, limit);
  std::string out = boost::json::serialize(boost::json::string_view(prefix.data(), prefix.size()));
  if (prefix.size() < text.size()) out.append("…");
  return out;
}

Error field_type_error(std::string_view field, std::string_view expected,
                       const boost::json::value& got, std::string_view why) {
  std::string what = "expected ";
  what.append(expected).append(", got ").append(describe_json_value(got));
  if (!why.empty()) what.append(" (").append(why).append(")");
  return Error::for_field(ErrorCode::invalid_argument, field, what);
}

std::optional<Error> check_envelope(const boost::json::object& wire, const EventType& type,
                                    std::size_t matched) {
  std::size_t envelope = 0;
  if (const auto* it = wire.find("event_type"); it != wire.end()) {
    ++envelope;
    if (!it->value().is_string() || std::string_view(it->value().get_string()) != type.name()) {
      return Error::for_field(
          ErrorCode::invalid_argument, "event_type",
          "expected \"" + std::string(type.name()) + "\", got " + describe_json_value(it->value()));
    }
  }
  if (const auto* it = wire.find("entity_type"); it != wire.end()) {
    ++envelope;
    if (!type.is_entity_event()) {
      return Error::for_field(ErrorCode::invalid_argument, "entity_type",
                              "unknown field for " + std::string(type.name()));
    }
    if (!it->value().is_string() ||
        std::string_view(it->value().get_string()) != type.entity_type()) {
      return Error::for_field(ErrorCode::invalid_argument, "entity_type",
                              "expected \"" + std::string(type.entity_type()) + "\" for " +
                                  std::string(type.name()) + ", got " +
                                  describe_json_value(it->value()));
    }
  }
  if (matched + envelope == wire.size()) return std::nullopt;
  for (const auto& member : wire) {
    const std::string_view key = member.key();
    if (key == "event_type" || key == "entity_type") continue;
    bool known = false;
    for (const auto& field : type.fields()) {
      if (field.name == key) {
        known = true;
        break;
      }
    }
    if (!known) {
      // Echo at most 64 bytes of a hostile key back, cut between characters and escaped as in
      // a JSON string (without the quotes) so control characters cannot break a log line.
      std::string name = quote_for_message(key, 64);
      const bool cut = name.ends_with("…");
      name =
          name.substr(1, name.size() - (cut ? std::string("…").size() : 0) - 2) + (cut ? "…" : "");
      return Error::for_field(ErrorCode::invalid_argument, name,
                              "unknown field for " + std::string(type.name()));
    }
  }
  return std::nullopt;
}

}  // namespace detail

std::string_view EventRef::event_type() const noexcept { return type_->name(); }

const EntityEvent* EventRef::entity() const noexcept {
  return type_->is_entity_event() ? static_cast<const EntityEvent*>(event_) : nullptr;
}

std::string EventRef::to_string() const {
  std::string s(type_->name());
  s.append("(id=").append(event_->event_id.short_string());
  s.append(", user=");
  if (!event_->user_id) {
    s.append("none");
  } else if (*event_->user_id == system_actor) {
    s.append("system");
  } else {
    s.append(std::to_string(*event_->user_id));
  }
  s.append(", org=");
  s.append(event_->organization_id ? std::to_string(*event_->organization_id) : "none");
  s.push_back(')');
  return s;
}

boost::json::object EventRef::to_json() const {
  boost::json::object out;
  type_->encode(*event_, out);
  return out;
}

std::string EventRef::to_json_string() const { return boost::json::serialize(to_json()); }

}  // namespace herald
