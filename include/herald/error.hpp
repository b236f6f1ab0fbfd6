#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald {

/// What kind of expected failure an `Error` reports.
enum class ErrorCode : std::uint8_t {
  invalid_argument,  ///< Input that does not have the expected form (bad JSON, wrong type).
  too_large,         ///< Input over a size or depth limit.
  not_found,         ///< A thing named by the caller does not exist.
  conflict,          ///< The operation contradicts what is already there.
  unavailable,       ///< The component is stopped, full or disabled and refused the request.
  io,                ///< Storage or network failure.
  internal,          ///< A failure inside herald that is not the caller's fault.
  unauthenticated,   ///< The caller presented no valid credentials (unknown, revoked, malformed).
};

/// Returns the lower-case name of `code`, e.g. "invalid_argument".
std::string_view to_string(ErrorCode code) noexcept;

/// An expected failure: a code and a message that names the operand and the expectation.
/// Value type; cheap to move.
struct Error {
  ErrorCode code = ErrorCode::internal;
  /// Human-readable, e.g. "field 'entity_id': expected integer or string, got array".
  std::string message;
  /// The offending field or operand when there is one, e.g. "entity_id"; empty otherwise.
  std::string field;

  /// Builds an error about `field` whose message starts with "field '<field>': ".
  static Error for_field(ErrorCode code, std::string_view field, std::string_view what);
};

}  // namespace herald
