#include "herald/error.hpp"

#include <string>

namespace herald {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument:
      return "invalid_argument";
    case ErrorCode::too_large:
      return "too_large";
    case ErrorCode::not_found:
      return "not_found";
    case ErrorCode::conflict:
      return "conflict";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::io:
      return "io";
    case ErrorCode::internal:
      return "internal";
    case ErrorCode::unauthenticated:
      return "unauthenticated";
  }
  return "unknown";
}

Error Error::for_field(ErrorCode code, std::string_view field, std::string_view what) {
  std::string message;
  message.reserve(field.size() + what.size() + 12);
  message.append("field '").append(field).append("': ").append(what);
  return Error{code, std::move(message), std::string(field)};
}

}  // namespace herald
