#include "routes.hpp"

#include <fmt/core.h>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <ostream>
#include <sstream>
#include <streambuf>

#include "herald/api_tokens.hpp"
#include "herald/audit_log.hpp"
#include "herald/authenticator.hpp"
#include "herald/durable_consumer.hpp"
#include "herald/event_bus.hpp"
#include "herald/http/ingest.hpp"
#include "herald/http/query.hpp"
#include "herald/json.hpp"
#include "notify_routes.hpp"
#include "static_files.hpp"

namespace herald::http::detail {

using Clock = std::chrono::steady_clock;

// --- responses ---

Response json_response(bhttp::status status, std::string body) {
  Response response{status, 11};
  response.set(bhttp::field::content_type, "application/json");
  response.body() = std::move(body);
  return response;
}

Response error_response(const ApiError& error) {
  Response response = json_response(error.status, error.body());
  if (error.status == bhttp::status::unauthorized) {
    response.set(bhttp::field::www_authenticate, "Bearer realm=\"herald\"");
  }
  if (error.retry_after_seconds > 0) {
    response.set(bhttp::field::retry_after, std::to_string(error.retry_after_seconds));
  }
  return response;
}

namespace {

ApiError api_error(bhttp::status status, std::string code, std::string message,
                   std::string field = {}) {
  return ApiError{.status = status,
                  .code = std::move(code),
                  .message = std::move(message),
                  .field = std::move(field)};
}

std::string stored_event_json(const StoredEvent& stored) {
  std::string out = fmt::format(R"({{"position":{},"recorded_at":"{}","event":)", stored.position,
                                format_timestamp(stored.recorded_at));
  out += encode_event(stored.event);
  out += '}';
  return out;
}

// --- the request being handled ---

class Call {
 public:
  explicit Call(RouteContext context) : context_(std::move(context)) {}

  ServerState& state() { return context_.state; }
  const ServerServices& services() { return context_.state.services(); }
  const Request& request() { return context_.request; }

  void reply(Response response) { context_.respond(std::move(response), route_); }
  void fail(const ApiError& error) { reply(error_response(error)); }
  void reply_json(bhttp::status status, std::string body) {
    reply(json_response(status, std::move(body)));
  }
  void set_route(std::string route) { route_ = std::move(route); }
  /// Hands the request over to another router (the notification endpoints).
  RouteContext release() && { return std::move(context_); }
  void stream(StreamRequest request) { context_.stream(std::move(request)); }
  void respond_chunked(Response head, std::shared_ptr<ChunkChannel> body) {
    context_.respond_chunked(std::move(head), route_, std::move(body));
  }

  /// Runs `work` on the blocking pool; it answers through this call (copied into it).
  template <class Work>
  void off_loop(Work work) {
    net::post(state().blocking(), [call = *this, work = std::move(work)]() mutable {
      try {
        work(call);
      } catch (const std::exception& error) {
        call.fail(api_error(bhttp::status::internal_server_error, "internal",
                            fmt::format("internal error: {}", error.what())));
      }
    });
  }

 private:
  RouteContext context_;
  std::string route_ = "unmatched";
};

// --- authentication and authorization ---

std::optional<std::string_view> bearer_token(const Request& request) {
  const auto header = request.find(bhttp::field::authorization);
  if (header == request.end()) return std::nullopt;
  std::string_view value = header->value();
  constexpr std::string_view scheme = "Bearer ";
  if (value.size() < scheme.size()) return std::string_view{};
  // The scheme is case-insensitive (RFC 9110 section 11.1).
  for (std::size_t i = 0; i + 1 < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i]))) {
      return std::string_view{};
    }
  }
  if (value[scheme.size() - 1] != ' ') return std::string_view{};
  value.remove_prefix(scheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return value;
}

}  // namespace

std::expected<ApiToken, ApiError> authenticate_request(ServerState& state, const Request& request,
                                                       QueryParams* params) {
  std::optional<std::string> from_query;
  if (params != nullptr) {
    auto value = params->take("access_token");
    if (!value) return std::unexpected(std::move(value.error()));
    from_query = std::move(*value);
  }
  const std::optional<std::string_view> from_header = bearer_token(request);
  if (!from_header && !from_query) {
    return std::unexpected(api_error(
        bhttp::status::unauthorized, "unauthorized",
        params != nullptr ? "missing token: send 'Authorization: Bearer <token>' or ?access_token="
                          : "missing token: send 'Authorization: Bearer <token>'"));
  }
  const std::string_view presented = from_header ? *from_header : std::string_view(*from_query);
  auto token = state.services().authenticator->authenticate(presented);
  if (!token) {
    if (token.error().code == ErrorCode::unavailable) {
      return std::unexpected(api_error(bhttp::status::service_unavailable, "unavailable",
                                       "cannot check the token now: " + token.error().message));
    }
    return std::unexpected(
        api_error(bhttp::status::unauthorized, "unauthorized", "invalid or revoked token"));
  }
  if (auto wait = state.rate_limiter().acquire(token->id, Clock::now())) {
    ApiError error = api_error(
        bhttp::status::too_many_requests, "rate_limited",
        fmt::format("token '{}' is over its rate of {} requests per second; retry in {} ms",
                    token->name, state.options().limits.requests_per_second, wait->count()));
    // Whole seconds, rounded up (RFC 9110 section 10.2.3).
    error.retry_after_seconds = std::max<std::int64_t>(1, (wait->count() + 999) / 1000);
    return std::unexpected(std::move(error));
  }
  return std::move(*token);
}

namespace {

/// The caller's token, after authentication, scope and rate checks. A token bound to a user is
/// for that user's notifications alone (notify_routes.cpp), so it is refused here.
std::expected<ApiToken, ApiError> authorize(Call& call, Scope scope, QueryParams* params) {
  auto token = authenticate_request(call.state(), call.request(), params);
  if (!token) return token;
  if (token->user_id) {
    return std::unexpected(api_error(
        bhttp::status::forbidden, "forbidden",
        fmt::format("token '{}' is bound to user {} and may use only that user's notification "
                    "endpoints (/api/v1/me/...)",
                    token->name, *token->user_id)));
  }
  if (!allows(*token, scope)) {
    return std::unexpected(
        api_error(bhttp::status::forbidden, "forbidden",
                  fmt::format("token '{}' lacks the '{}' scope this endpoint needs", token->name,
                              to_string(scope))));
  }
  return token;
}

/// Answers a failed authorization.
void refuse(Call& call, const ApiError& error) { call.fail(error); }

/// Applies an organization-bound token to a filter: its organization, and 403 when the request
/// asked for another.
std::optional<ApiError> confine(const ApiToken& token, std::optional<std::int64_t>& organization) {
  if (!token.organization_id) return std::nullopt;
  if (organization && *organization != *token.organization_id) {
    return api_error(bhttp::status::forbidden, "forbidden",
                     fmt::format("token '{}' is bound to organization {} and may not read "
                                 "organization {}",
                                 token.name, *token.organization_id, *organization),
                     "organization");
  }
  organization = token.organization_id;
  return std::nullopt;
}

// --- endpoints ---

void post_events(Call& call, const ApiToken& token) {
  const Request& request = call.request();
  const auto content_type = request.find(bhttp::field::content_type);
  std::string_view media =
      content_type == request.end() ? std::string_view{} : std::string_view(content_type->value());
  media = media.substr(0, media.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (!(media.size() == 16 &&
        std::equal(media.begin(), media.end(), "application/json", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        }))) {
    return call.fail(api_error(
        bhttp::status::unsupported_media_type, "unsupported_media_type",
        media.empty() ? "missing Content-Type: send 'Content-Type: application/json'"
                      : fmt::format("Content-Type '{}' is not accepted: send application/json",
                                    media.substr(0, 64))));
  }
  auto body = decode_ingest_body(request.body(), *call.services().catalog);
  if (!body) return call.fail(body.error());
  for (std::size_t i = 0; i < body->events.size(); ++i) {
    const auto organization = body->events[i]->organization_id;
    if (!may_see(token, organization)) {
      const std::string field = body->batch ? fmt::format("events[{}].organization_id", i)
                                            : std::string("organization_id");
      return call.fail(
          api_error(bhttp::status::forbidden, "forbidden",
                    fmt::format("{}: token '{}' may only ingest events of organization {}, got {}",
                                field, token.name, *token.organization_id,
                                organization ? std::to_string(*organization) : std::string("none")),
                    field));
    }
  }
  const auto started = Clock::now();
  auto events = std::make_shared<std::vector<EventPtr>>(std::move(body->events));
  const bool batch = body->batch;
  auto finish = [call, events, batch,
                 started](std::expected<std::vector<AppendResult>, Error> results) mutable {
    ServerState& state = call.state();
    state.metrics().on_append(Clock::now() - started, events->size());
    if (!results) {
      ApiError error = to_api_error(results.error());
      if (error.status == bhttp::status::service_unavailable ||
          error.status == bhttp::status::internal_server_error) {
        error.message = "the events were not stored: " + error.message;
      }
      return call.fail(error);
    }
    bool any_created = false;
    std::string out = batch ? std::string(R"({"results":[)") : std::string();
    for (std::size_t i = 0; i < results->size(); ++i) {
      const AppendResult& result = (*results)[i];
      const EventPtr& event = (*events)[i];
      if (result.inserted) {
        any_created = true;
        state.metrics().on_ingested(event.event_type());
        if (EventBus* bus = state.services().bus;
            bus != nullptr && state.services().feed == nullptr) {
          // The bus is for in-process handlers; the event is durable whatever it says. A node
          // with a feed publishes what the feed hands out instead (every node's events).
          (void)bus->publish(event);
        }
      }
      if (i > 0) out += ',';
      out += fmt::format(R"({{"event_id":"{}","position":{},"created":{}}})",
                         event->event_id.to_string(), result.position, result.inserted);
    }
    if (batch) out += "]}";
    call.reply_json(any_created ? bhttp::status::created : bhttp::status::ok, std::move(out));
  };
  EventStore& store = *call.services().store;
  if (!batch) {
    store.append_async(events->front(), [finish = std::move(finish)](
                                            std::expected<AppendResult, Error> result) mutable {
      if (!result) return finish(std::unexpected(std::move(result.error())));
      finish(std::vector<AppendResult>{*result});
    });
  } else {
    store.append_batch_async(*events, std::move(finish));
  }
}

void get_events(Call& call, const ApiToken& token, QueryParams& params) {
  auto query = take_event_query(params, *call.services().catalog, true);
  if (!query) return call.fail(query.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  if (auto refused = confine(token, query->filter.organization_id)) return call.fail(*refused);
  call.off_loop([query = std::move(*query)](Call& job) {
    EventStore& store = *job.services().store;
    const bool backward = query.before.has_value();
    auto page = backward ? store.read_backward(query.before, query.limit, query.filter)
                         : store.read_forward(query.after.value_or(0), query.limit, query.filter);
    if (!page) return job.fail(to_api_error(page.error()));
    std::string out = R"({"events":[)";
    for (std::size_t i = 0; i < page->size(); ++i) {
      if (i > 0) out += ',';
      out += stored_event_json((*page)[i]);
    }
    out += "],";
    const bool full = page->size() == query.limit;
    const char* cursor = backward ? "next_before" : "next_after";
    if (full && !page->empty()) {
      out += fmt::format(R"("{}":{}}})", cursor, page->back().position);
    } else {
      out += fmt::format(R"("{}":null}})", cursor);
    }
    job.reply_json(bhttp::status::ok, std::move(out));
  });
}

void get_event(Call& call, const ApiToken& token, const std::string& id_text) {
  const auto id = EventId::parse(id_text);
  if (!id) {
    return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                               "the event id must be a UUID such as "
                               "0193c1a2-7b4e-7c3d-9f00-1a2b3c4d5e6f",
                               "event_id"));
  }
  call.off_loop([id = *id, token](Call& job) {
    auto stored = job.services().store->get(id);
    if (!stored) return job.fail(to_api_error(stored.error()));
    // A token bound to an organization learns nothing of other organizations' events.
    if (!*stored || !may_see(token, (*stored)->event->organization_id)) {
      return job.fail(api_error(bhttp::status::not_found, "not_found",
                                fmt::format("no event with id {}", id.to_string()), "event_id"));
    }
    job.reply_json(bhttp::status::ok, stored_event_json(**stored));
  });
}

void get_stream(Call& call, const ApiToken& token, QueryParams& params) {
  auto query = take_event_query(params, *call.services().catalog, false);
  if (!query) return call.fail(query.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  if (auto refused = confine(token, query->filter.organization_id)) return call.fail(*refused);
  std::optional<std::int64_t> resume = query->after;
  // The SSE spec's reconnection: the browser sends the last id it saw (section 9.2.4).
  if (const auto last = call.request().find("Last-Event-ID"); last != call.request().end()) {
    const std::string_view text = last->value();
    std::int64_t position = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), position);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || position < 0) {
      return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                                 "Last-Event-ID must be a position (a whole number) from an "
                                 "earlier stream",
                                 "Last-Event-ID"));
    }
    if (!resume || position > *resume) resume = position;
  }
  call.stream(StreamRequest{.filter = std::move(query->filter),
                            .resume_after = resume,
                            .request_id = {},
                            .keep_alive = call.request().keep_alive(),
                            .version = call.request().version()});
}

void get_audit(Call& call, const ApiToken& token, QueryParams& params) {
  auto query = take_audit_query(params);
  if (!query) return call.fail(query.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  if (auto refused = confine(token, query->organization_id)) return call.fail(*refused);
  call.off_loop([query = std::move(*query)](Call& job) {
    auto page = job.services().store->query_audit(query);
    if (!page) return job.fail(to_api_error(page.error()));
    boost::json::array records;
    for (const AuditRecord& record : page->items) records.push_back(audit_record_to_json(record));
    boost::json::object body;
    const bool full = page->items.size() == query.limit;
    body["total"] = page->total;
    if (full && !page->items.empty()) {
      body["next_before"] = page->items.back().position;
    } else {
      body["next_before"] = nullptr;
    }
    body["records"] = std::move(records);
    job.reply_json(bhttp::status::ok, boost::json::serialize(body));
  });
}

// An output buffer that hands what the export writes to the connection in pieces of 64 KiB; the
// export's thread waits while the client is a piece behind, and stops when it is gone.
class ChunkBuffer : public std::streambuf {
 public:
  explicit ChunkBuffer(ChunkChannel& channel) : channel_(channel) {
    buffer_.resize(64 * 1024);
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }

  /// Hands over what is buffered; false when the client is gone.
  bool flush() {
    const auto size = static_cast<std::size_t>(pptr() - pbase());
    if (size == 0) return true;
    std::string piece(pbase(), size);
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return channel_.push(std::move(piece));
  }

 protected:
  int_type overflow(int_type c) override {
    if (!flush()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return flush() ? 0 : -1; }

 private:
  ChunkChannel& channel_;
  std::vector<char> buffer_;
};

void get_audit_export(Call& call, const ApiToken& token, QueryParams& params) {
  auto format_text = params.take("format");
  if (!format_text) return call.fail(format_text.error());
  AuditExportFormat format = AuditExportFormat::json_lines;
  if (*format_text && **format_text == "csv") {
    format = AuditExportFormat::csv;
  } else if (*format_text && **format_text != "jsonl") {
    return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                               "parameter 'format': expected csv or jsonl", "format"));
  }
  auto query = take_audit_query(params);
  if (!query) return call.fail(query.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  if (auto refused = confine(token, query->organization_id)) return call.fail(*refused);
  // `limit` is the page size of the export, which writes every matching record.
  query->limit = max_page_size;
  Response head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type,
           format == AuditExportFormat::csv ? "text/csv; charset=utf-8" : "application/x-ndjson");
  head.set(bhttp::field::content_disposition, format == AuditExportFormat::csv
                                                  ? "attachment; filename=\"audit.csv\""
                                                  : "attachment; filename=\"audit.jsonl\"");
  auto channel = std::make_shared<ChunkChannel>();
  call.respond_chunked(std::move(head), channel);
  call.off_loop([query = std::move(*query), format, channel](Call& job) {
    ChunkBuffer buffer(*channel);
    std::ostream out(&buffer);
    auto written = export_audit_log(*job.services().store, query, format, out);
    if (written && !buffer.flush()) {
      written = std::unexpected(Error{ErrorCode::io, "the client went away", {}});
    }
    channel->finish(written ? std::nullopt : std::optional<std::string>(written.error().message));
  });
}

void get_audit_verify(Call& call, const ApiToken& token, QueryParams& params) {
  auto head_text = params.take("head");
  if (!head_text) return call.fail(head_text.error());
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  if (token.organization_id) {
    return call.fail(api_error(bhttp::status::forbidden, "forbidden",
                               fmt::format("token '{}' is bound to an organization; verifying the "
                                           "whole audit chain needs an unbound token",
                                           token.name)));
  }
  AuditVerifyOptions options;
  if (*head_text) {
    auto head = parse_audit_head(**head_text);
    if (!head) {
      return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                                 "parameter 'head': " + head.error().message, "head"));
    }
    options.expected_head = *head;
  }
  call.off_loop([options = std::move(options)](Call& job) {
    auto result = verify_audit_log(*job.services().store, options);
    if (!result) return job.fail(to_api_error(result.error()));
    boost::json::object body;
    body["ok"] = result->ok();
    body["records"] = result->records;
    body["head"] = to_string(result->head);
    if (result->failure) {
      boost::json::object failure;
      failure["position"] = result->failure->position;
      if (result->failure->event_id) {
        failure["event_id"] = result->failure->event_id->to_string();
      } else {
        failure["event_id"] = nullptr;
      }
      failure["fault"] = to_string(result->failure->fault);
      failure["message"] = result->failure->message;
      body["failure"] = std::move(failure);
    } else {
      body["failure"] = nullptr;
    }
    job.reply_json(bhttp::status::ok, boost::json::serialize(body));
  });
}

boost::json::object consumer_json(const ConsumerStatus& status, bool running_here) {
  boost::json::object item;
  item["name"] = status.name;
  item["checkpoint"] = status.checkpoint;
  item["head"] = status.head;
  item["lag"] = status.lag;
  item["replay_until"] = status.replay_until;
  item["parked"] = status.parked;
  item["updated_at"] = format_timestamp(status.updated_at);
  item["running_here"] = running_here;
  return item;
}

DurableConsumer* running_here(Call& call, std::string_view name) {
  for (DurableConsumer* consumer : call.services().consumers) {
    if (consumer->name() == name) return consumer;
  }
  return nullptr;
}

/// `url` without the user and password it may carry ("nats://user:secret@host" → "nats://host").
std::string without_credentials(std::string_view url) {
  std::string out;
  while (!url.empty()) {
    const std::size_t comma = url.find(',');
    std::string_view one = url.substr(0, comma);
    url = comma == std::string_view::npos ? std::string_view() : url.substr(comma + 1);
    const std::size_t scheme = one.find("://");
    const std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const std::size_t at = one.find('@', start);
    if (!out.empty()) out += ',';
    if (at == std::string_view::npos) {
      out += one;
    } else {
      out += one.substr(0, start);
      out += one.substr(at + 1);
    }
  }
  return out;
}

void get_cluster(Call& call, QueryParams& params) {
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  call.off_loop([](Call& job) {
    const ServerServices& services = job.services();
    NodeStatus status;
    if (services.node_status) {
      status = services.node_status();
    } else {
      status.feed = services.feed == nullptr ? "store" : "custom";
    }
    boost::json::object body;
    body["node_id"] = status.node_id;
    body["store"] = status.store;
    body["feed"] = status.feed;
    if (status.nats) {
      boost::json::object nats;
      nats["url"] = without_credentials(status.nats->url);
      nats["stream"] = status.nats->stream;
      nats["connected"] = status.nats->connected;
      nats["events_from_stream"] = status.nats->from_stream;
      nats["events_from_store"] = status.nats->from_store;
      body["nats"] = std::move(nats);
    } else {
      body["nats"] = nullptr;
    }
    boost::json::array roles;
    for (const NodeRole& role : status.roles) {
      boost::json::object item;
      item["role"] = role.role;
      item["leader"] = role.leader;
      roles.push_back(std::move(item));
    }
    body["roles"] = std::move(roles);
    job.reply_json(bhttp::status::ok, boost::json::serialize(body));
  });
}

std::optional<ApiError> require_unbound(const ApiToken& token) {
  if (!token.organization_id) return std::nullopt;
  return api_error(bhttp::status::forbidden, "forbidden",
                   fmt::format("token '{}' is bound to an organization; this endpoint needs an "
                               "unbound admin token",
                               token.name));
}

void get_consumers(Call& call, const ApiToken& token, QueryParams& params) {
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  if (auto refused = require_unbound(token)) return call.fail(*refused);
  call.off_loop([](Call& job) {
    auto consumers = list_consumers(*job.services().store);
    if (!consumers) return job.fail(to_api_error(consumers.error()));
    boost::json::array items;
    for (const ConsumerStatus& status : *consumers) {
      const DurableConsumer* here = running_here(job, status.name);
      items.push_back(consumer_json(status, here != nullptr && here->running()));
    }
    boost::json::object body;
    body["consumers"] = std::move(items);
    job.reply_json(bhttp::status::ok, boost::json::serialize(body));
  });
}

void post_replay(Call& call, const ApiToken& token, const std::string& name) {
  if (auto refused = require_unbound(token)) return call.fail(*refused);
  auto parsed = parse_json(call.request().body());
  if (!parsed || !parsed->is_object()) {
    return call.fail(api_error(
        bhttp::status::bad_request, "invalid_json",
        parsed ? std::string(R"(expected an object: {"from": POSITION} or {"since": "TIME"})")
               : parsed.error().message));
  }
  const boost::json::object& request = parsed->get_object();
  for (const auto& member : request) {
    if (member.key() != "from" && member.key() != "since") {
      return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                                 fmt::format("unknown member '{}'; give 'from' or 'since'",
                                             std::string_view(member.key()).substr(0, 64)),
                                 std::string(member.key().substr(0, 64))));
    }
  }
  const auto* from = request.if_contains("from");
  const auto* since = request.if_contains("since");
  if ((from == nullptr) == (since == nullptr)) {
    return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                               "give either 'from' (a position) or 'since' (a time), not both or "
                               "neither"));
  }
  std::optional<std::int64_t> position;
  std::optional<Timestamp> time;
  if (from != nullptr) {
    if (!from->is_int64() || from->get_int64() < 0) {
      return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                                 "'from' must be a position: a whole number from 0", "from"));
    }
    position = from->get_int64();
  } else {
    auto parsed_time =
        since->is_string() ? parse_timestamp(since->get_string()) : std::unexpected(Error{});
    if (!parsed_time) {
      return call.fail(api_error(bhttp::status::bad_request, "invalid_parameter",
                                 "'since' must be an RFC 3339 timestamp such as "
                                 "2026-03-01T18:00:00Z",
                                 "since"));
    }
    time = *parsed_time;
  }
  call.off_loop([name, position, time](Call& job) mutable {
    EventStore& store = *job.services().store;
    auto known = list_consumers(store);
    if (!known) return job.fail(to_api_error(known.error()));
    DurableConsumer* running = running_here(job, name);
    const bool exists = running != nullptr ||
                        std::ranges::any_of(*known, [&](const auto& s) { return s.name == name; });
    if (!exists) {
      return job.fail(api_error(bhttp::status::not_found, "not_found",
                                fmt::format("no consumer named '{}'", name.substr(0, 64)), "name"));
    }
    auto head = store.head();
    if (!head) return job.fail(to_api_error(head.error()));
    if (time) {
      auto before = position_before_time(store, *time);
      if (!before) return job.fail(to_api_error(before.error()));
      position = *before;
    }
    if (*position > *head) {
      return job.fail(api_error(
          bhttp::status::bad_request, "invalid_parameter",
          fmt::format("'from' {} is past the head (position {})", *position, *head), "from"));
    }
    auto reset =
        running != nullptr ? running->reset_to(*position) : reset_consumer(store, name, *position);
    if (!reset) return job.fail(to_api_error(reset.error()));
    auto status = consumer_status(store, name);
    if (!status) return job.fail(to_api_error(status.error()));
    job.reply_json(bhttp::status::ok,
                   boost::json::serialize(consumer_json(*status, running != nullptr)));
  });
}

void get_catalog(Call& call, QueryParams& params) {
  if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
  call.reply_json(bhttp::status::ok, call.state().catalog_json());
}

void get_metrics(Call& call) {
  Response response{bhttp::status::ok, 11};
  // The Prometheus text exposition format, version 0.0.4.
  response.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  response.body() = call.state().metrics().render();
  call.reply(std::move(response));
}

void get_readyz(Call& call) {
  if (call.state().stopping()) {
    return call.reply_json(bhttp::status::service_unavailable, R"({"status":"stopping"})");
  }
  call.off_loop([](Call& job) {
    auto head = job.services().store->head();
    if (!head) {
      return job.reply_json(bhttp::status::service_unavailable,
                            boost::json::serialize(boost::json::object{
                                {"status", "unavailable"}, {"reason", head.error().message}}));
    }
    job.reply_json(bhttp::status::ok, fmt::format(R"({{"status":"ready","head":{}}})", *head));
  });
}

// --- routing ---

void method_not_allowed(Call& call, std::string_view allow) {
  Response response = error_response(api_error(
      bhttp::status::method_not_allowed, "method_not_allowed",
      fmt::format("{} is not allowed here; allowed: {}",
                  std::string_view(call.request().method_string()).substr(0, 16), allow)));
  response.set(bhttp::field::allow, allow);
  call.reply(std::move(response));
}

}  // namespace

void handle_request(RouteContext context) {
  Call call(std::move(context));
  auto target = parse_target(call.request().target());
  if (!target) return call.fail(target.error());
  const std::vector<std::string>& s = target->segments;
  QueryParams params(std::move(target->params));
  const bhttp::verb method = call.request().method();
  const bool get = method == bhttp::verb::get || method == bhttp::verb::head;
  const bool post = method == bhttp::verb::post;

  // Public endpoints.
  if (s.size() == 1 && (s[0] == "healthz" || s[0] == "readyz")) {
    call.set_route("GET /" + s[0]);
    if (!get) return method_not_allowed(call, "GET");
    if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
    if (s[0] == "healthz") return call.reply_json(bhttp::status::ok, R"({"status":"ok"})");
    return get_readyz(call);
  }
  if (s.size() == 1 && s[0] == "metrics") {
    call.set_route("GET /metrics");
    if (!get) return method_not_allowed(call, "GET");
    if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
    if (!call.state().options().public_metrics) {
      auto token = authorize(call, Scope::read, nullptr);
      if (!token) return refuse(call, token.error());
    }
    return get_metrics(call);
  }

  // The dashboard: every path outside /api/ is one of web/'s embedded files.
  if (s.empty() || s[0] != "api") {
    call.set_route("GET /{web file}");
    if (!get) return method_not_allowed(call, "GET");
    const EmbeddedFile* file = find_web_file(s);
    if (file == nullptr) {
      return call.fail(
          api_error(bhttp::status::not_found, "not_found",
                    fmt::format("no file {} in the dashboard; the API lives under /api/v1",
                                std::string_view(call.request().target()).substr(0, 128))));
    }
    return call.reply(web_file_response(call.request(), *file));
  }
  if (s.size() < 3 || s[0] != "api" || s[1] != "v1") {
    return call.fail(api_error(bhttp::status::not_found, "not_found",
                               "no such endpoint; the API lives under /api/v1 (docs/http-api.md)"));
  }
  const std::string& resource = s[2];
  if (resource == "events") {
    if (s.size() == 3) {
      if (post) {
        call.set_route("POST /api/v1/events");
        auto token = authorize(call, Scope::ingest, nullptr);
        if (!token) return refuse(call, token.error());
        if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
        return post_events(call, *token);
      }
      call.set_route("GET /api/v1/events");
      if (!get) return method_not_allowed(call, "GET, POST");
      auto token = authorize(call, Scope::read, nullptr);
      if (!token) return refuse(call, token.error());
      return get_events(call, *token, params);
    }
    if (s.size() == 4 && s[3] == "stream") {
      call.set_route("GET /api/v1/events/stream");
      if (!get) return method_not_allowed(call, "GET");
      auto token = authorize(call, Scope::read, &params);
      if (!token) return refuse(call, token.error());
      return get_stream(call, *token, params);
    }
    if (s.size() == 4) {
      call.set_route("GET /api/v1/events/{event_id}");
      if (!get) return method_not_allowed(call, "GET");
      auto token = authorize(call, Scope::read, nullptr);
      if (!token) return refuse(call, token.error());
      if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
      return get_event(call, *token, s[3]);
    }
  }
  if (resource == "audit" && s.size() <= 4) {
    const std::string sub = s.size() == 4 ? s[3] : std::string();
    if (sub.empty() || sub == "export" || sub == "verify") {
      call.set_route(sub.empty() ? "GET /api/v1/audit" : "GET /api/v1/audit/" + sub);
      if (!get) return method_not_allowed(call, "GET");
      auto token = authorize(call, Scope::audit, nullptr);
      if (!token) return refuse(call, token.error());
      if (sub.empty()) return get_audit(call, *token, params);
      if (sub == "export") return get_audit_export(call, *token, params);
      return get_audit_verify(call, *token, params);
    }
  }
  if (resource == "catalog" && s.size() == 3) {
    call.set_route("GET /api/v1/catalog");
    if (!get) return method_not_allowed(call, "GET");
    auto token = authorize(call, Scope::read, nullptr);
    if (!token) return refuse(call, token.error());
    return get_catalog(call, params);
  }
  if (resource == "cluster" && s.size() == 3) {
    call.set_route("GET /api/v1/cluster");
    if (!get) return method_not_allowed(call, "GET");
    auto token = authorize(call, Scope::read, nullptr);
    if (!token) return refuse(call, token.error());
    return get_cluster(call, params);
  }
  if (resource == "consumers") {
    if (s.size() == 3) {
      call.set_route("GET /api/v1/consumers");
      if (!get) return method_not_allowed(call, "GET");
      auto token = authorize(call, Scope::admin, nullptr);
      if (!token) return refuse(call, token.error());
      return get_consumers(call, *token, params);
    }
    if (s.size() == 5 && s[4] == "replay") {
      call.set_route("POST /api/v1/consumers/{name}/replay");
      if (!post) return method_not_allowed(call, "POST");
      auto token = authorize(call, Scope::admin, nullptr);
      if (!token) return refuse(call, token.error());
      if (auto unknown = params.reject_unknown(); !unknown) return call.fail(unknown.error());
      return post_replay(call, *token, s[3]);
    }
  }
  if (is_notification_resource(resource)) {
    return handle_notification_request(std::move(call).release(), s, params);
  }
  call.fail(api_error(bhttp::status::not_found, "not_found",
                      fmt::format("no endpoint {} (docs/http-api.md lists them)",
                                  std::string_view(call.request().target()).substr(0, 128))));
}

}  // namespace herald::http::detail
