#pragma once

#include <cstdio>
#include <expected>
#include <string_view>

#include "herald/error.hpp"
#include "herald/event_catalog.hpp"

namespace herald::server {

/// Options of `herald catalog`.
struct CatalogOptions {
  /// Prints one JSON document instead of the readable listing.
  bool json = false;
};

/// Prints the types of `catalog` grouped by entity type, with their default priority and fields,
/// or as one JSON document (its shape is in README.md, "A short tour").
std::expected<void, Error> print_catalog(const EventCatalog& catalog, const CatalogOptions& options,
                                         std::FILE* out);

/// Prints the JSON Schema of the type named `type_name`, or of the whole catalog when it is
/// empty. Returns `not_found` for an unknown name, with a message naming the closest types.
std::expected<void, Error> print_schema(const EventCatalog& catalog, std::string_view type_name,
                                        std::FILE* out);

}  // namespace herald::server
