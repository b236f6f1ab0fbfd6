// libFuzzer target: a request target (path and query) through the parser and the event query
// the API builds from it.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "herald/detail/utf8.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/http/query.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto target = herald::http::parse_target(text);
  if (!target) return 0;
  for (const std::string& segment : target->segments) {
    // What reaches a handler is never a traversal, never holds a separator, and is valid UTF-8.
    if (segment.empty() || segment == "." || segment == ".." ||
        segment.find('/') != std::string::npos ||
        herald::detail::first_invalid_utf8(segment) != std::string_view::npos) {
      std::abort();
    }
  }
  herald::http::QueryParams params(target->params);
  auto query = herald::http::take_event_query(params, herald::domain::platform_catalog(), true);
  if (query && query->limit > herald::http::max_page_size) std::abort();
  (void)params.reject_unknown();
  return 0;
}
