// `herald token create|list|revoke`. A created token is printed once, alone on standard output's
// first line so that a script can capture it; the store keeps only its SHA-256, so nothing can
// print it again. No command prints a token's hash.

#include "token_commands.hpp"
#include "cli_support.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "herald/api_tokens.hpp"
#include "herald/domain/catalog.hpp"
#include "herald/event_store.hpp"
#include "herald/timestamp.hpp"
#include "store_commands.hpp"

namespace herald::server {
namespace {

/// `text` for a message, cut and with control characters replaced, since it is user input.
std::string quotable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 40)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (text.size() > 40) out += "…";
  return out;
}

std::string table_time(Timestamp t) {
  std::string text = format_timestamp(t).substr(0, 19);
  text[10] = ' ';
  return text;
}

/// Opens an existing store for list and revoke.
std::expected<std::unique_ptr<EventStore>, Failure> open_existing(const StoreFlags& flags) {
  auto store = open_existing_store_of(flags);
  if (!store) {
    return std::unexpected(
        Failure{store.error().code == ErrorCode::invalid_argument ? exit_usage : exit_failure,
                std::move(store.error().message)});
  }
  return std::move(*store);
}

// ---------------------------------------------------------------------------------------------
// The commands

struct CreateArgs {
  StoreFlags store;
  std::string name;
  std::string scopes;
  std::string organization;
  CLI::Option* organization_option = nullptr;
  std::string user;
  CLI::Option* user_option = nullptr;
};

Outcome create(const CreateArgs& args, std::FILE* out, std::FILE* err) {
  if (auto valid = check_api_token_name(args.name); !valid) {
    return usage(about_flag("--name", valid.error()));
  }
  auto scopes = parse_scopes(args.scopes);
  if (!scopes) return usage(about_flag("--scopes", scopes.error()));
  std::optional<std::int64_t> organization;
  if (args.organization_option != nullptr && args.organization_option->count() > 0) {
    std::int64_t value = 0;
    const std::string& text = args.organization;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
      return usage(
          fmt::format("--org '{}': expected an organization id (a whole number)", quotable(text)));
    }
    organization = value;
  }
  std::optional<std::int64_t> user;
  if (args.user_option != nullptr && args.user_option->count() > 0) {
    std::int64_t value = 0;
    const std::string& text = args.user;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value <= 0) {
      return usage(
          fmt::format("--user '{}': expected a user id (a positive whole number)", quotable(text)));
    }
    user = value;
  }

  // Creating the first token is how a new deployment starts, so a missing store is created, as
  // `herald serve` would.
  auto location = resolve_store_location(args.store, true, "herald.db");
  if (!location) return usage(location.error().message);
  const std::string where = describe_location(*location);
  std::error_code ec;
  const bool new_file = !location->starts_with("postgresql://") &&
                        !location->starts_with("postgres://") &&
                        !std::filesystem::exists(*location, ec);
  auto store = open_store({.location = *location, .catalog = &domain::platform_catalog()});
  if (!store) return failed(store.error().message);

  auto token = generate_api_token();
  if (!token) return failed(token.error().message);
  auto created =
      (*store)->create_token(args.name, api_token_sha256(*token), *scopes, organization, user);
  if (!created) return failed(fmt::format("{} (in {})", created.error().message, where));

  fmt::print(out, "{}\n", *token);
  std::fflush(out);
  if (new_file) fmt::print(err, "herald token create: created a new herald store at {}\n", where);
  fmt::print(err,
             "herald token create: created API token '{}' (scopes {}; {}{}) in {}. The token is "
             "printed above and will not be shown again: only its SHA-256 is stored.\n",
             created->name, format_scopes(created->scopes),
             created->organization_id ? fmt::format("organization {}", *created->organization_id)
                                      : std::string("every organization"),
             created->user_id ? fmt::format("; user {}", *created->user_id) : std::string(), where);
  return {};
}

struct ListArgs {
  StoreFlags store;
  bool json = false;
};

Outcome list(const ListArgs& args, std::FILE* out) {
  auto store = open_existing(args.store);
  if (!store) return std::unexpected(std::move(store.error()));
  auto tokens = (*store)->list_tokens();
  if (!tokens) return failed(tokens.error().message);

  if (args.json) {
    boost::json::array items;
    for (const ApiToken& token : *tokens) {
      boost::json::object item;
      item["id"] = token.id;
      item["name"] = token.name;
      boost::json::array scopes;
      for (Scope scope : {Scope::ingest, Scope::read, Scope::audit, Scope::admin, Scope::notify}) {
        if (token.scopes.contains(scope)) scopes.emplace_back(to_string(scope));
      }
      item["scopes"] = std::move(scopes);
      item["organization_id"] = token.organization_id ? boost::json::value(*token.organization_id)
                                                      : boost::json::value(nullptr);
      item["user_id"] =
          token.user_id ? boost::json::value(*token.user_id) : boost::json::value(nullptr);
      item["created_at"] = format_timestamp(token.created_at);
      item["revoked_at"] = token.revoked_at
                               ? boost::json::value(format_timestamp(*token.revoked_at))
                               : boost::json::value(nullptr);
      items.push_back(std::move(item));
    }
    boost::json::object document;
    document["tokens"] = std::move(items);
    fmt::print(out, "{}\n", boost::json::serialize(document));
    return {};
  }
  if (tokens->empty()) {
    fmt::print(out,
               "no API tokens yet; create one with 'herald token create --name NAME --scopes "
               "read'\n");
    return {};
  }
  const std::vector<std::string_view> headers = {"NAME", "SCOPES",        "ORGANIZATION",
                                                 "USER", "CREATED (UTC)", "REVOKED (UTC)"};
  std::vector<std::vector<std::string>> rows;
  for (const ApiToken& token : *tokens) {
    rows.push_back({token.name, format_scopes(token.scopes),
                    token.organization_id ? std::to_string(*token.organization_id) : "-",
                    token.user_id ? std::to_string(*token.user_id) : "-",
                    table_time(token.created_at),
                    token.revoked_at ? table_time(*token.revoked_at) : "-"});
  }
  std::vector<std::size_t> widths;
  for (std::string_view header : headers) widths.push_back(header.size());
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  auto print_row = [&](const auto& cells) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) line += "  ";
      line += cells[i];
      if (i + 1 < cells.size()) line.append(widths[i] - std::string_view(cells[i]).size(), ' ');
    }
    fmt::print(out, "{}\n", line);
  };
  print_row(headers);
  for (const auto& row : rows) print_row(row);
  return {};
}

struct RevokeArgs {
  StoreFlags store;
  std::string name;
};

Outcome revoke(const RevokeArgs& args, std::FILE* out) {
  if (auto valid = check_api_token_name(args.name); !valid) {
    return usage(about_flag("NAME", valid.error()));
  }
  auto store = open_existing(args.store);
  if (!store) return std::unexpected(std::move(store.error()));
  const Timestamp before = herald::now();
  auto revoked = (*store)->revoke_token(args.name);
  if (!revoked) return failed(revoked.error().message);
  if (revoked->revoked_at && *revoked->revoked_at < before) {
    fmt::print(out, "API token '{}' was already revoked at {}\n", revoked->name,
               format_timestamp(*revoked->revoked_at));
    return {};
  }
  fmt::print(out,
             "revoked API token '{}'; running servers refuse it within their token cache time "
             "(1 second by default)\n",
             revoked->name);
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Registration

struct TokenCommands::Commands {
  struct Leaf {
    CLI::App* app = nullptr;
    std::string name;
    std::function<Outcome(std::FILE*, std::FILE*)> run;
  };
  std::vector<Leaf> leaves;
  CreateArgs create;
  ListArgs list;
  RevokeArgs revoke;
};

TokenCommands::TokenCommands(CLI::App& app) : commands_(std::make_unique<Commands>()) {
  Commands& c = *commands_;
  constexpr std::string_view db_help = "SQLite store (env HERALD_DB; default ./herald.db)";
  CLI::App* token =
      app.add_subcommand("token", "API tokens for the HTTP API: create, list, revoke");
  token->require_subcommand(1);

  CLI::App* create_command = token->add_subcommand(
      "create", "Create an API token and print it once (only its SHA-256 is stored)");
  add_store_flags(*create_command, c.create.store, db_help);
  create_command->add_option("--name", c.create.name, "Unique name: 1 to 64 of A-Z a-z 0-9 . _ -")
      ->type_name("NAME")
      ->required();
  create_command
      ->add_option("--scopes", c.create.scopes,
                   "Comma-separated: ingest (post events), read (events, stream, catalog), "
                   "audit (audit log), admin (tokens, consumers, replay), notify (webhooks, "
                   "deliveries, any user's inbox and preferences)")
      ->type_name("LIST")
      ->required();
  c.create.organization_option =
      create_command
          ->add_option("--org", c.create.organization,
                       "Bind the token to one organization: it sees and ingests only its events")
          ->type_name("ID");
  c.create.user_option =
      create_command
          ->add_option("--user", c.create.user,
                       "Bind the token to one user: it reads and changes only that user's inbox, "
                       "preferences and email (with /api/v1/me/...)")
          ->type_name("ID");
  create_command->footer(
      "The token is printed alone on the first line of standard output.\n"
      "Example: herald token create --name ingest-bot --scopes ingest,read --org 42\n"
      "Example: herald token create --name inbox-42 --scopes read --user 42");
  c.leaves.push_back({create_command, "herald token create",
                      [&c](std::FILE* out, std::FILE* err) { return create(c.create, out, err); }});

  CLI::App* list_command = token->add_subcommand(
      "list", "List API tokens: name, scopes, organization, created, revoked");
  add_store_flags(*list_command, c.list.store, db_help);
  list_command->add_flag("--json", c.list.json, "One JSON document instead of a table");
  c.leaves.push_back({list_command, "herald token list",
                      [&c](std::FILE* out, std::FILE*) { return list(c.list, out); }});

  CLI::App* revoke_command =
      token->add_subcommand("revoke", "Revoke an API token; servers refuse it from then on");
  add_store_flags(*revoke_command, c.revoke.store, db_help);
  revoke_command->add_option("NAME", c.revoke.name, "The token's name")->required();
  c.leaves.push_back({revoke_command, "herald token revoke",
                      [&c](std::FILE* out, std::FILE*) { return revoke(c.revoke, out); }});
}

TokenCommands::~TokenCommands() = default;

bool TokenCommands::parsed() const {
  return std::ranges::any_of(commands_->leaves,
                             [](const Commands::Leaf& leaf) { return leaf.app->parsed(); });
}

int TokenCommands::run(std::FILE* out, std::FILE* err) {
  for (const Commands::Leaf& leaf : commands_->leaves) {
    if (!leaf.app->parsed()) continue;
    const Outcome outcome = leaf.run(out, err);
    if (outcome) return 0;
    std::string message = outcome.error().message;
    if (outcome.error().status == exit_usage) {
      message += fmt::format(" (run '{} --help' for usage)", leaf.name);
    }
    std::fflush(out);
    fmt::print(err, "{}: {}\n", leaf.name, message);
    return outcome.error().status;
  }
  return 0;
}

}  // namespace herald::server
