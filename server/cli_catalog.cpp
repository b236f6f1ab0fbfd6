#include "cli_catalog.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "herald/json_schema.hpp"
#include "herald/priority.hpp"

namespace herald::server {
namespace {

// Boost.JSON 1.81 serializes compactly only; schemas and listings are read by people too.
void append_pretty(const boost::json::value& value, std::string& out, std::size_t depth) {
  const auto indent = [&out](std::size_t level) { out.append(level * 2, ' '); };
  if (value.is_object() && !value.get_object().empty()) {
    out.append("{\n");
    bool first = true;
    for (const auto& [key, member] : value.get_object()) {
      if (!first) out.append(",\n");
      first = false;
      indent(depth + 1);
      out.append(boost::json::serialize(boost::json::value(key))).append(": ");
      append_pretty(member, out, depth + 1);
    }
    out.push_back('\n');
    indent(depth);
    out.push_back('}');
  } else if (value.is_array() && !value.get_array().empty() &&
             std::ranges::all_of(value.get_array(), [](const boost::json::value& item) {
               return !item.is_array() && !item.is_object();
             })) {
    // A list of scalars ("type": ["integer", "null"]) reads best on one line.
    out.push_back('[');
    bool first = true;
    for (const auto& item : value.get_array()) {
      if (!first) out.append(", ");
      first = false;
      out.append(boost::json::serialize(item));
    }
    out.push_back(']');
  } else if (value.is_array() && !value.get_array().empty()) {
    out.append("[\n");
    bool first = true;
    for (const auto& item : value.get_array()) {
      if (!first) out.append(",\n");
      first = false;
      indent(depth + 1);
      append_pretty(item, out, depth + 1);
    }
    out.push_back('\n');
    indent(depth);
    out.push_back(']');
  } else {
    out.append(boost::json::serialize(value));
  }
}

void print_json(const boost::json::value& value, std::FILE* out) {
  std::string text;
  append_pretty(value, text, 0);
  text.push_back('\n');
  fmt::print(out, "{}", text);
}

std::string field_line(const FieldInfo& field) {
  return fmt::format("{}: {}{}", field.name, field.type_name, field.nullable ? " (nullable)" : "");
}

boost::json::object type_json(const EventType& type) {
  boost::json::array fields;
  for (const FieldInfo& field : type.fields()) {
    fields.push_back({{"name", field.name},
                      {"type", field.type_name},
                      {"nullable", field.nullable},
                      {"common", field.common}});
  }
  return {{"name", type.name()},
          {"entity_type", type.entity_type()},
          {"default_priority", to_string(type.default_priority())},
          {"default_priority_value", static_cast<std::int64_t>(type.default_priority())},
          {"description", type.description()},
          {"fields", std::move(fields)}};
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::ranges::transform(out, out.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Names a person probably meant: a typo away, the name without its "Event" suffix, or a part of
// the name ("member" finds every OrganizationMember… type). Closest first, at most five.
std::vector<std::string_view> close_matches(const EventCatalog& catalog, std::string_view query) {
  const std::string wanted = lower(query);
  const std::string wanted_event = wanted.ends_with("event") ? wanted : wanted + "event";
  std::vector<std::pair<std::size_t, std::string_view>> scored;
  for (const EventType* type : catalog.types()) {
    const std::string name = lower(type->name());
    const std::size_t distance =
        std::min(edit_distance(wanted, name), edit_distance(wanted_event, name));
    const bool typo = distance <= std::max<std::size_t>(2, name.size() / 5);
    const bool part = wanted.size() >= 3 && name.find(wanted) != std::string::npos;
    if (typo || part) scored.emplace_back(distance, type->name());
  }
  std::ranges::sort(scored);
  std::vector<std::string_view> names;
  for (const auto& [distance, name] : scored) {
    if (names.size() == 5) break;
    names.push_back(name);
  }
  return names;
}

std::string join_alternatives(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.append(i + 1 == names.size() ? " or " : ", ");
    out.append(names[i]);
  }
  return out;
}

}  // namespace

std::expected<void, Error> print_catalog(const EventCatalog& catalog, const CatalogOptions& options,
                                         std::FILE* out) {
  const std::vector<const EventType*> types = catalog.types();
  if (options.json) {
    boost::json::array listed;
    for (const EventType* type : types) listed.push_back(type_json(*type));
    print_json(boost::json::object{{"count", types.size()}, {"types", std::move(listed)}}, out);
    return {};
  }

  std::map<std::string_view, std::vector<const EventType*>> by_entity;
  const EventType* first_entity_type = nullptr;
  for (const EventType* type : types) {
    by_entity[type->entity_type()].push_back(type);
    if (first_entity_type == nullptr && type->is_entity_event()) first_entity_type = type;
  }

  fmt::print(out, "{} event types, grouped by entity type.\n", types.size());
  if (first_entity_type != nullptr) {
    fmt::print(out, "Every entity event also has these common fields:\n");
    for (const FieldInfo& field : first_entity_type->fields()) {
      if (field.common) fmt::print(out, "  {}\n", field_line(field));
    }
  }
  for (const auto& [entity_type, members] : by_entity) {
    fmt::print(out, "\n{}\n", entity_type.empty() ? "(not entity events)" : entity_type);
    for (const EventType* type : members) {
      fmt::print(out, "  {:<42} {:<8} {}\n", type->name(), to_string(type->default_priority()),
                 type->description());
      for (const FieldInfo& field : type->fields()) {
        if (!field.common) fmt::print(out, "      {}\n", field_line(field));
      }
    }
  }
  fmt::print(out, "\nRun 'herald schema TYPE' for the JSON Schema of one type.\n");
  return {};
}

std::expected<void, Error> print_schema(const EventCatalog& catalog, std::string_view type_name,
                                        std::FILE* out) {
  if (type_name.empty()) {
    print_json(json_schema(catalog), out);
    return {};
  }
  if (const EventType* type = catalog.find(type_name)) {
    print_json(json_schema(*type), out);
    return {};
  }
  const std::vector<std::string_view> suggestions = close_matches(catalog, type_name);
  std::string message = fmt::format("no event type named '{}' in the catalog; ", type_name);
  if (suggestions.empty()) {
    message.append(fmt::format("run 'herald catalog' to list all {} types", catalog.size()));
  } else {
    message.append(fmt::format("did you mean {}? Run 'herald catalog' to list all {} types",
                               join_alternatives(suggestions), catalog.size()));
  }
  return std::unexpected(Error{.code = ErrorCode::not_found, .message = std::move(message)});
}

}  // namespace herald::server
