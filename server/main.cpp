// The herald executable: parses the command line, runs one subcommand, and turns its failure
// into a one-line message on stderr and an exit code (0 ok, 1 failure, 2 usage error).

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <expected>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "cli_catalog.hpp"
#include "demo.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/domain/notification_rules.hpp"
#include "herald/error.hpp"
#include "notify_commands.hpp"
#include "serve_command.hpp"
#include "store_commands.hpp"
#include "token_commands.hpp"

namespace {

constexpr std::string_view herald_version = HERALD_VERSION;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// One line on stderr naming the command and what went wrong; usage errors from the parser also
// point to the command's help.
int fail(std::string_view command, std::string_view message, int code) {
  fmt::print(stderr, "{}: {}\n", command, message);
  return code;
}

int usage_error(std::string_view command, std::string_view message) {
  return fail(command, fmt::format("{} (run '{} --help' for usage)", message, command), exit_usage);
}

int report(std::string_view command, const std::expected<void, herald::Error>& result) {
  if (result) return 0;
  const bool usage = result.error().code == herald::ErrorCode::invalid_argument ||
                     result.error().code == herald::ErrorCode::not_found;
  return fail(command, result.error().message, usage ? exit_usage : exit_failure);
}

// CLI11 checks values before converting them; this one says what a seed may be.
std::string check_seed(const std::string& text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc{} && end == text.data() + text.size()) return {};
  return fmt::format("expected a whole number from 0 to {}, got '{}'",
                     std::numeric_limits<std::uint64_t>::max(), text);
}

int parse_failure(CLI::App& app, const CLI::ParseError& error) {
  // --help and --version arrive as "errors" whose exit code is 0; CLI11 prints them itself.
  if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(error);
  // The deepest command parsed: "herald events list".
  std::string command = "herald";
  const CLI::App* deepest = &app;
  while (!deepest->get_subcommands().empty()) {
    deepest = deepest->get_subcommands().front();
    command += " " + deepest->get_name();
  }
  const auto parsed = app.get_subcommands();
  const auto* extras = dynamic_cast<const CLI::ExtrasError*>(&error);
  const std::vector<std::string> remaining = app.remaining();
  if (extras != nullptr && parsed.empty() && !remaining.empty()) {
    const std::string& first = remaining.front();
    if (first.starts_with('-')) {
      return usage_error(command, fmt::format("unknown option '{}'; options of a command go "
                                              "after it, e.g. 'herald demo --seed 7'",
                                              first));
    }
    return usage_error(
        command,
        fmt::format("unknown command '{}'; the commands are serve, demo, catalog, schema, events, "
                    "audit, consumers, replay, parked, token, notify, deliveries and webhooks",
                    first));
  }
  // A group of commands ("herald events") named without one of its commands, or with a wrong one.
  const std::vector<const CLI::App*> group =
      deepest->get_subcommands([](const CLI::App*) { return true; });
  if (deepest != &app && !group.empty()) {
    std::string names;
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (i > 0) names += i + 1 == group.size() ? " or " : ", ";
      names += group[i]->get_name();
    }
    // Only a first word that is not an option can be a command; later ones may be option values.
    const std::vector<std::string> left = deepest->remaining();
    if (!left.empty() && !left.front().starts_with('-')) {
      return usage_error(command,
                         fmt::format("unknown command '{}'; expected {}", left.front(), names));
    }
    if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr) {
      return usage_error(command, fmt::format("expected a command: {}", names));
    }
  }
  return usage_error(command, error.what());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "herald: typed domain events for a tournament platform, dispatched by priority, stored\n"
      "durably and audited. Run 'herald demo' to watch a simulated day on the platform go through\n"
      "an event bus; 'herald demo --db herald.db' also records it, for 'herald events' and\n"
      "'herald audit' to show.",
      "herald"};
  app.set_version_flag("--version", fmt::format("herald {}", herald_version),
                       "Print the version and exit");
  app.require_subcommand(0, 1);
  app.footer(
      "Exit status: 0 on success, 1 on failure (including an event, consumer or position the\n"
      "store does not have), 2 on a usage error.\n"
      "Run 'herald COMMAND --help' for the options of one command.");

  herald::server::DemoOptions demo_options;
  CLI::App* demo = app.add_subcommand(
      "demo", "Simulate a day on the platform: every event type, audited and notified");
  demo->add_option("--seed", demo_options.seed,
                   "Seed of the simulated day; the same seed tells the same day")
      ->type_name("N")
      ->check(CLI::Validator(check_seed, ""))
      ->capture_default_str();
  demo->add_flag("-q,--quiet", demo_options.quiet,
                 "Print only the end-of-day summary and stats, not a line per event");
  herald::server::StoreFlags demo_store;
  herald::server::add_store_flags(
      *demo, demo_store,
      "Record the day in this SQLite file (created if missing; each run adds to it) and run the "
      "audit log on it; without --db or --store the day stays in memory");
  demo->add_option("--to", demo_options.server_url,
                   "Send the day's events to a herald server's API, e.g. http://127.0.0.1:8080")
      ->type_name("URL")
      ->envname("HERALD_URL");
  demo->add_option("--token", demo_options.token,
                   "API token with the ingest scope, for --to (or HERALD_TOKEN)")
      ->type_name("TOKEN")
      ->envname("HERALD_TOKEN");
  demo->footer(
      "Examples: herald demo --seed 7 --db herald.db\n"
      "          herald demo --to http://127.0.0.1:8080 --token hrld_...");

  herald::server::CatalogOptions catalog_options;
  CLI::App* catalog = app.add_subcommand(
      "catalog", "List the platform's event types with their entity, priority and fields");
  catalog->add_flag("--json", catalog_options.json, "Print one JSON document instead of a table");
  catalog->footer("Example: herald catalog --json");

  std::string schema_type;
  CLI::App* schema = app.add_subcommand(
      "schema", "Print the JSON Schema (draft 2020-12) of one event type or of the whole catalog");
  schema->add_option("TYPE", schema_type,
                     "Event type name, e.g. UserCreatedEvent; omit it for the whole catalog");
  schema->footer("Example: herald schema UserCreatedEvent");

  herald::server::StoreCommands store_commands(app);
  herald::server::ServeCommand serve_command(app);
  herald::server::TokenCommands token_commands(app);
  herald::server::NotifyCommands notify_commands(app,
                                                 herald::domain::platform_notification_rules());

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return parse_failure(app, error);
  }

  try {
    if (demo->parsed()) {
      auto location = herald::server::resolve_store_location(demo_store, false, "");
      if (!location) return usage_error("herald demo", location.error().message);
      if (!demo_options.server_url.empty() && !location->empty()) {
        return usage_error("herald demo",
                           "give either --to URL (send to a server) or --db/--store, not both");
      }
      if (!demo_options.server_url.empty() && demo_options.token.empty()) {
        return usage_error("herald demo",
                           "--to needs --token (or HERALD_TOKEN) with the ingest "
                           "scope; 'herald token create' makes one");
      }
      if (demo_options.server_url.empty() && !demo_options.token.empty()) {
        return usage_error("herald demo", "--token is for --to URL");
      }
      demo_options.store_location = *location;
      demo_options.program = argc > 0 ? argv[0] : "herald";
      return report("herald demo", herald::server::run_demo(demo_options, stdout));
    }
    if (store_commands.parsed()) return store_commands.run(stdout);
    if (serve_command.parsed()) return serve_command.run(stdout);
    if (token_commands.parsed()) return token_commands.run(stdout, stderr);
    if (notify_commands.parsed()) return notify_commands.run(stdout, stderr);
    if (catalog->parsed()) {
      return report("herald catalog",
                    herald::server::print_catalog(herald::domain::platform_catalog(),
                                                  catalog_options, stdout));
    }
    if (schema->parsed()) {
      return report("herald schema", herald::server::print_schema(
                                         herald::domain::platform_catalog(), schema_type, stdout));
    }
  } catch (const std::exception& error) {
    // fmt reports a failed write (a full disk, a closed stdout) by throwing.
    return fail("herald", error.what(), exit_failure);
  }

  // No command: show what there is to run. Asking for nothing is not an error.
  fmt::print("{}", app.help());
  return 0;
}
