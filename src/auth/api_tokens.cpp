#include "herald/api_tokens.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

namespace herald {
namespace {

constexpr std::array<Scope, 5> all_scopes = {Scope::ingest, Scope::read, Scope::audit, Scope::admin,
                                             Scope::notify};

constexpr std::string_view base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::size_t token_random_bytes = 32;

bool is_base64url(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool is_name_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// `text` for a message: cut to `most` bytes and with control characters shown as '?', so that
/// hostile input cannot forge lines in a terminal or a log.
std::string quotable(std::string_view text, std::size_t most = 40) {
  std::string out;
  for (char c : text.substr(0, most)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (text.size() > most) out += "…";
  return out;
}

/// RFC 4648 section 5, without padding.
std::string base64url(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const unsigned triple = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8) | data[i + 2];
    out += base64url_alphabet[(triple >> 18) & 0x3F];
    out += base64url_alphabet[(triple >> 12) & 0x3F];
    out += base64url_alphabet[(triple >> 6) & 0x3F];
    out += base64url_alphabet[triple & 0x3F];
  }
  if (size - i == 1) {
    const unsigned single = unsigned{data[i]} << 16;
    out += base64url_alphabet[(single >> 18) & 0x3F];
    out += base64url_alphabet[(single >> 12) & 0x3F];
  } else if (size - i == 2) {
    const unsigned pair = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8);
    out += base64url_alphabet[(pair >> 18) & 0x3F];
    out += base64url_alphabet[(pair >> 12) & 0x3F];
    out += base64url_alphabet[(pair >> 6) & 0x3F];
  }
  return out;
}

}  // namespace

std::string_view to_string(Scope scope) noexcept {
  switch (scope) {
    case Scope::ingest:
      return "ingest";
    case Scope::read:
      return "read";
    case Scope::audit:
      return "audit";
    case Scope::admin:
      return "admin";
    case Scope::notify:
      return "notify";
  }
  return "unknown";
}

std::expected<Scopes, Error> parse_scopes(std::string_view text) {
  const auto invalid = [](std::string what) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "scopes", what));
  };
  if (trim(text).empty()) {
    return invalid(
        "expected a comma-separated list of ingest, read, audit, admin, notify; got none");
  }
  Scopes scopes;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view name = trim(text.substr(0, comma));
    if (name.empty()) {
      return invalid("empty scope name in '" + quotable(text) +
                     "'; expected names separated by single commas, e.g. ingest,read");
    }
    bool known = false;
    for (Scope scope : all_scopes) {
      if (name == to_string(scope)) {
        scopes = scopes | scope;
        known = true;
      }
    }
    if (!known) {
      return invalid("unknown scope '" + quotable(name) +
                     "'; expected ingest, read, audit, admin or notify");
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return scopes;
}

std::string format_scopes(Scopes scopes) {
  std::string out;
  for (Scope scope : all_scopes) {
    if (!scopes.contains(scope)) continue;
    if (!out.empty()) out += ',';
    out += to_string(scope);
  }
  return out;
}

std::expected<std::string, Error> generate_api_token() {
  std::array<unsigned char, token_random_bytes> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return std::unexpected(Error{ErrorCode::internal,
                                 "cannot generate an API token: OpenSSL's random number "
                                 "generator failed (is /dev/urandom or getrandom available?)",
                                 {}});
  }
  std::string token(api_token_prefix);
  token += base64url(random.data(), random.size());
  OPENSSL_cleanse(random.data(), random.size());
  return token;
}

bool is_well_formed_api_token(std::string_view token) noexcept {
  if (token.size() != api_token_length || !token.starts_with(api_token_prefix)) return false;
  for (char c : token.substr(api_token_prefix.size())) {
    if (!is_base64url(c)) return false;
  }
  // 32 bytes fill 42 characters and 4 bits of the 43rd; a generated token has those low bits 0.
  const auto last = base64url_alphabet.find(token.back());
  return (last & 0x3U) == 0;
}

std::string api_token_sha256(std::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  const bool ok =
      EVP_Digest(token.data(), token.size(), digest.data(), &length, EVP_sha256(), nullptr) == 1;
  // SHA-256 of a memory buffer fails only when OpenSSL cannot run at all.
  if (!ok || length != 32) std::abort();
  constexpr std::string_view hex = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xF];
  }
  return out;
}

std::expected<void, Error> check_api_token_name(std::string_view name) {
  const auto invalid = [](std::string what) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "name", what));
  };
  if (name.empty()) return invalid("expected a token name of 1 to 64 of A-Z a-z 0-9 . _ -, got ''");
  if (name.size() > api_token_name_max) {
    return invalid("'" + quotable(name) + "' is " + std::to_string(name.size()) +
                   " characters long; a token name has at most 64");
  }
  for (char c : name) {
    if (!is_name_char(c)) {
      return invalid("'" + quotable(name) +
                     "' has a character other than A-Z a-z 0-9 . _ -; use e.g. 'ingest-bot'");
    }
  }
  return {};
}

std::expected<void, Error> check_api_token_sha256(std::string_view token_sha256) {
  bool ok = token_sha256.size() == 64;
  for (char c : token_sha256) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (ok) return {};
  return std::unexpected(
      Error::for_field(ErrorCode::invalid_argument, "token_sha256",
                       "expected a SHA-256 as 64 lower-case hexadecimal characters"));
}

}  // namespace herald
