#include "static_files.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <utility>

namespace herald::http::detail {
namespace {

bool ends_with_ignoring_case(std::string_view text, std::string_view suffix) {
  if (text.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), text.end() - static_cast<long>(suffix.size()),
                    [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b));
                    });
}

// Everything from this origin, nothing inline and nothing from elsewhere: scripts are modules
// served from here, styles are files, the live stream and the API are same-origin.
constexpr std::string_view content_security_policy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

// RFC 9110 section 13.1.2: If-None-Match is a list of entity tags or "*"; weak comparison.
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag) return true;
  }
  return false;
}

}  // namespace

std::string_view content_type_for(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 12> types{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".webmanifest", "application/manifest+json"},
      {".woff2", "font/woff2"},
      {".map", "application/json"},
  }};
  for (const auto& [extension, type] : types) {
    if (ends_with_ignoring_case(path, extension)) return type;
  }
  return "application/octet-stream";
}

const EmbeddedFile* find_web_file(std::span<const std::string> segments) {
  std::string path;
  for (const std::string& segment : segments) {
    if (!path.empty()) path += '/';
    path += segment;
  }
  if (path.empty()) path = "index.html";
  // Lookup by exact name in the embedded table: no file system is involved, so no name can reach
  // outside web/.
  for (const EmbeddedFile& file : embedded_web_files()) {
    if (file.path == path) return &file;
  }
  return nullptr;
}

Response web_file_response(const Request& request, const EmbeddedFile& file) {
  const std::string etag = fmt::format("\"{}\"", file.digest);
  const auto if_none_match = request.find(bhttp::field::if_none_match);
  const bool not_modified =
      if_none_match != request.end() && etag_matches(if_none_match->value(), etag);
  Response response{not_modified ? bhttp::status::not_modified : bhttp::status::ok, 11};
  response.set(bhttp::field::etag, etag);
  // Revalidate every time (a 304 is cheap): a new build must never show a stale page.
  response.set(bhttp::field::cache_control, "no-cache");
  response.set("Content-Security-Policy", content_security_policy);
  response.set("X-Content-Type-Options", "nosniff");
  response.set("X-Frame-Options", "DENY");
  response.set("Referrer-Policy", "no-referrer");
  if (!not_modified) {
    response.set(bhttp::field::content_type, content_type_for(file.path));
    if (request.method() != bhttp::verb::head) response.body() = std::string(file.content);
  }
  return response;
}

}  // namespace herald::http::detail
