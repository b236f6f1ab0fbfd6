#pragma once

// The web dashboard's files (web/), embedded into the binary at build time and served at `/`.

#include <span>
#include <string_view>
#include <vector>

#include "server_internal.hpp"

namespace herald::http::detail {

/// One file of web/ as embedded by cmake/embed_web.cmake.
struct EmbeddedFile {
  /// Relative to web/, with '/' separators: "index.html", "js/app.js".
  std::string_view path;
  /// The file's bytes.
  std::string_view content;
  /// The first 16 hexadecimal digits of the content's SHA-256, computed at build time.
  std::string_view digest;
};

/// Every embedded file of web/ (defined by the generated web_assets.cpp).
std::span<const EmbeddedFile> embedded_web_files();

/// The Content-Type for a file name by its extension; application/octet-stream when unknown.
std::string_view content_type_for(std::string_view path);

/// The embedded file at `segments` (already percent-decoded and free of '.' and '..' by
/// parse_target), index.html for no segments; nullptr when there is none.
const EmbeddedFile* find_web_file(std::span<const std::string> segments);

/// The response for a GET or HEAD of `file`: its bytes with Content-Type, a strong ETag, a strict
/// Content-Security-Policy, nosniff, and 304 when If-None-Match names the ETag (RFC 9110 section
/// 13.1.2).
Response web_file_response(const Request& request, const EmbeddedFile& file);

}  // namespace herald::http::detail
