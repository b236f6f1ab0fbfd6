#pragma once

// What both store backends say about API tokens, so that their checks and errors are the same.

#include <expected>
#include <string>

#include "herald/api_tokens.hpp"
#include "herald/error.hpp"
#include "herald/timestamp.hpp"

namespace herald::store_detail {

/// Checks the arguments of `EventStore::create_token` before anything is written.
inline std::expected<void, Error> check_token_arguments(const std::string& name,
                                                        const std::string& token_sha256,
                                                        Scopes scopes) {
  if (auto valid = check_api_token_name(name); !valid) return valid;
  if (auto valid = check_api_token_sha256(token_sha256); !valid) return valid;
  if (scopes.empty()) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "scopes",
                         "a token needs at least one scope: ingest, read, audit, admin or notify"));
  }
  return {};
}

/// `create_token` of a name that `existing` already has.
inline Error token_name_taken(const ApiToken& existing) {
  std::string message = "an API token named '" + existing.name + "' already exists";
  if (existing.revoked_at) {
    message += " (revoked at " + format_timestamp(*existing.revoked_at) + "; names are not reused)";
  }
  message += "; choose another name";
  return Error{ErrorCode::conflict, std::move(message), "name"};
}

/// `create_token` of a hash already stored: the same secret twice, never a generated token.
inline Error token_hash_taken() {
  return Error{ErrorCode::conflict,
               "another API token already has this token's SHA-256; generate a new token",
               "token_sha256"};
}

/// `revoke_token` of a name no token has.
inline Error token_not_found(const std::string& name) {
  return Error{ErrorCode::not_found,
               "no API token named '" + name + "'; 'herald token list' shows the tokens", "name"};
}

}  // namespace herald::store_detail
