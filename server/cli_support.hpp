#pragma once

// What the `herald` commands share to report failures and read flags: exit statuses, a failure
// with its status, and flags whose text the command parses itself, so that every message names
// the flag, the value and what was expected in the same words.

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include "herald/error.hpp"

namespace herald::server {

/// The exit status of a command that failed (a missing id, a store error).
inline constexpr int exit_failure = 1;
/// The exit status of a usage error (an unknown option, a bad value).
inline constexpr int exit_usage = 2;

/// Why a command failed, with its exit status.
struct Failure {
  int status = exit_failure;
  std::string message;
};
/// What a command's work returns.
using Outcome = std::expected<void, Failure>;

/// A usage error (exit 2).
inline std::unexpected<Failure> usage(std::string message) {
  return std::unexpected(Failure{exit_usage, std::move(message)});
}
/// A failure (exit 1).
inline std::unexpected<Failure> failed(std::string message) {
  return std::unexpected(Failure{exit_failure, std::move(message)});
}
/// A failure (exit 1) with the error's message.
inline std::unexpected<Failure> failed(const Error& error) { return failed(error.message); }

/// `error` about a value given as `flag`: "--name: 'a b' has a character …". The library's
/// messages start with "field 'name': "; on the command line the flag is what the user typed.
inline std::string about_flag(std::string_view flag, const Error& error) {
  std::string_view message = error.message;
  const std::string prefix = "field '" + error.field + "': ";
  if (!error.field.empty() && message.starts_with(prefix)) message.remove_prefix(prefix.size());
  return fmt::format("{}: {}", flag, message);
}

/// A flag whose value is parsed by the command, with whether it was given at all.
struct TextFlag {
  std::string value;
  CLI::Option* option = nullptr;
  bool given() const { return option != nullptr && option->count() > 0; }
};

/// Adds `flag` to `command` as an option named `name`.
inline CLI::Option* add_text(CLI::App* command, const std::string& name, TextFlag& flag,
                             const std::string& help, const std::string& type_name) {
  flag.option = command->add_option(name, flag.value, help)->type_name(type_name);
  return flag.option;
}

}  // namespace herald::server
