#include "herald/audit_log.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <ostream>
#include <span>
#include <utility>
#include <vector>

namespace herald {

namespace {

// --- canonical encoding (docs/audit.md, "Canonical encoding") ---

/// True when one of the eight bytes of `word` is a control character (below 0x20), `"` or `\`.
constexpr bool needs_escape(std::uint64_t word) noexcept {
  // A byte is zero in `v` when (v - 1) borrows into its high bit while v's high bit is clear;
  // below 0x20 likewise with 0x20 for 1. Bytes of 0x80 and above (UTF-8) never match.
  constexpr std::uint64_t ones = 0x0101010101010101;
  constexpr std::uint64_t highs = 0x8080808080808080;
  const std::uint64_t quote = word ^ (ones * '"');
  const std::uint64_t backslash = word ^ (ones * '\\');
  return (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
          ((word - ones * 0x20) & ~word)) &
         highs;
}

// JSON string escapes as RFC 8259 section 7 allows them, choosing the short forms for the five
// control characters that have one and \u00xx for the others; everything else, UTF-8 included,
// is written as is. This is also what Python's json.dumps(ensure_ascii=False) writes.
void append_string(std::string& out, std::string_view text) {
  out.push_back('"');
  // Characters that need no escape are copied in runs, and found eight at a time: the audit
  // consumer encodes every record, and a character at a time was a large part of its cost.
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    while (text.size() - i >= 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, text.data() + i, sizeof word);
      if (needs_escape(word)) break;
      i += 8;
    }
    if (i == text.size()) break;
    const char c = text[i];
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.substr(run, i - run));
    run = i + 1;
    if (c == '"') {
      out.append("\\\"");
    } else if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\b') {
      out.append("\\b");
    } else if (c == '\f') {
      out.append("\\f");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else {
      constexpr std::string_view hex = "0123456789abcdef";
      out.append("\\u00");
      out.push_back(hex[byte >> 4]);
      out.push_back(hex[byte & 0xF]);
    }
  }
  out.append(text.substr(run));
  out.push_back('"');
}

template <class Integer>
void append_integer(std::string& out, Integer value) {
  std::array<char, 24> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), end);
}

void append_double(std::string& out, double value) {
  // An integral value is written as the integer, so that a store that keeps JSON numbers in
  // another form (PostgreSQL jsonb) hands back the same encoding.
  constexpr double exact_limit = 9007199254740992.0;  // 2^53
  if (std::isfinite(value) && std::trunc(value) == value && std::fabs(value) <= exact_limit) {
    append_integer(out, static_cast<std::int64_t>(value));
    return;
  }
  std::array<char, 32> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), end);
}

void append_value(std::string& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      out.append("null");
      break;
    case boost::json::kind::bool_:
      out.append(value.get_bool() ? "true" : "false");
      break;
    case boost::json::kind::int64:
      append_integer(out, value.get_int64());
      break;
    case boost::json::kind::uint64:
      append_integer(out, value.get_uint64());
      break;
    case boost::json::kind::double_:
      append_double(out, value.get_double());
      break;
    case boost::json::kind::string:
      append_string(out, value.get_string());
      break;
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const boost::json::value& element : value.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_value(out, element);
      }
      out.push_back(']');
      break;
    }
    case boost::json::kind::object: {
      const boost::json::object& object = value.get_object();
      // Objects of a few members (every event's details) are sorted on the stack.
      constexpr std::size_t on_stack = 16;
      std::array<const boost::json::key_value_pair*, on_stack> few{};
      std::vector<const boost::json::key_value_pair*> many;
      std::span<const boost::json::key_value_pair*> members;
      if (object.size() <= on_stack) {
        members = std::span(few.data(), object.size());
      } else {
        many.resize(object.size());
        members = many;
      }
      std::size_t next = 0;
      for (const auto& member : object) members[next++] = &member;
      // Byte-wise order of the UTF-8 keys: std::string_view compares as unsigned char.
      std::ranges::sort(members, {}, [](const auto* member) { return member->key(); });
      out.push_back('{');
      bool first = true;
      for (const auto* member : members) {
        if (!first) out.push_back(',');
        first = false;
        append_string(out, member->key());
        out.push_back(':');
        append_value(out, member->value());
      }
      out.push_back('}');
      break;
    }
  }
}

void append_optional_int(std::string& out, const std::optional<std::int64_t>& value) {
  if (value) {
    append_integer(out, *value);
  } else {
    out.append("null");
  }
}

/// `id` in its canonical 8-4-4-4-12 lower-case form (`EventId::to_string`), in double quotes.
void append_event_id(std::string& out, const EventId& id) {
  constexpr std::string_view hex = "0123456789abcdef";
  std::array<char, 38> text{};
  std::size_t next = 0;
  text[next++] = '"';
  for (std::size_t i = 0; i < id.bytes().size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text[next++] = '-';
    text[next++] = hex[id.bytes()[i] >> 4];
    text[next++] = hex[id.bytes()[i] & 0xF];
  }
  text[next++] = '"';
  out.append(text.data(), next);
}

/// `format_timestamp(t)` in double quotes; its characters never need an escape.
void append_timestamp(std::string& out, Timestamp t) {
  std::array<char, timestamp_text_capacity + 2> text{};
  text[0] = '"';
  const std::size_t length = format_timestamp_to(
      t, std::span<char, timestamp_text_capacity>(text.data() + 1, timestamp_text_capacity));
  text[length + 1] = '"';
  out.append(text.data(), length + 2);
}

/// Appends the canonical encoding of `record` (docs/audit.md) to `out`.
void encode_record(std::string& out, const AuditRecord& record) {
  // Members in byte-wise sorted key order, so the encoding is also what a generic canonical
  // JSON writer with sorted keys produces.
  out.append("{\"action\":");
  append_string(out, record.action);
  out.append(",\"actor\":");
  append_optional_int(out, record.actor);
  out.append(",\"details\":");
  append_value(out, record.details);
  out.append(",\"entity_id\":");
  if (record.entity_id) {
    append_string(out, *record.entity_id);
  } else {
    out.append("null");
  }
  out.append(",\"entity_type\":");
  append_string(out, record.entity_type);
  out.append(",\"event_id\":");
  append_event_id(out, record.event_id);
  out.append(",\"occurred_at\":");
  append_timestamp(out, record.occurred_at);
  out.append(",\"organization_id\":");
  append_optional_int(out, record.organization_id);
  out.append(",\"position\":");
  append_integer(out, record.position);
  out.append(",\"prev_hash\":");
  append_string(out, record.prev_hash);
  out.append(",\"recorded_at\":");
  append_timestamp(out, record.recorded_at);
  out.push_back('}');
}

HashHex sha256_hex(std::string_view data) {
  // OpenSSL 3 looks the algorithm up again on every EVP_Digest(EVP_sha256()) call; fetching it
  // once and keeping a context per thread takes that off every record's cost.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  const bool ok = sha256 != nullptr && context != nullptr &&
                  EVP_DigestInit_ex(context.get(), sha256, nullptr) == 1 &&
                  EVP_DigestUpdate(context.get(), data.data(), data.size()) == 1 &&
                  EVP_DigestFinal_ex(context.get(), digest.data(), &length) == 1;
  // SHA-256 is always available in OpenSSL 3's default provider; failing here is a broken
  // installation, not an input problem.
  if (!ok) {
    std::fputs("herald: OpenSSL SHA-256 digest failed\n", stderr);
    std::abort();
  }
  constexpr std::string_view hex = "0123456789abcdef";
  HashHex text(std::size_t{length} * 2, '0');
  for (unsigned int i = 0; i < length; ++i) {
    text[2 * i] = hex[digest[i] >> 4];
    text[2 * i + 1] = hex[digest[i] & 0xF];
  }
  return text;
}

// --- verification ---

/// The store's events in position order, read a page at a time.
class EventCursor {
 public:
  EventCursor(EventStore& store, std::size_t page_size) : store_(store), page_size_(page_size) {}

  /// The next event, or nullptr at the end.
  std::expected<const StoredEvent*, Error> peek() {
    if (index_ == page_.size()) {
      if (exhausted_) return nullptr;
      auto page = store_.read_forward(after_, page_size_);
      if (!page) return std::unexpected(std::move(page.error()));
      page_ = std::move(*page);
      index_ = 0;
      if (page_.size() < page_size_) exhausted_ = true;
      if (page_.empty()) return nullptr;
      after_ = page_.back().position;
    }
    return &page_[index_];
  }
  void pop() { ++index_; }

 private:
  EventStore& store_;
  std::size_t page_size_;
  std::vector<StoredEvent> page_;
  std::size_t index_ = 0;
  std::int64_t after_ = 0;
  bool exhausted_ = false;
};

std::string short_hash(const HashHex& hash) { return hash.substr(0, 12) + "…"; }

AuditFailure failure_at(const AuditRecord& record, AuditFault fault, std::string message) {
  return AuditFailure{.position = record.position,
                      .event_id = record.event_id,
                      .fault = fault,
                      .message = std::move(message)};
}

AuditFailure missing_record(const StoredEvent& event) {
  return AuditFailure{
      .position = event.position,
      .event_id = event.event->event_id,
      .fault = AuditFault::deleted,
      .message = "event " + event.event->event_id.to_string() + " at position " +
                 std::to_string(event.position) +
                 " has no audit record although the audit consumer passed it: the record was "
                 "deleted"};
}

/// Checks that `record` describes the event stored at its position; consumes that event.
std::expected<std::optional<AuditFailure>, Error> check_event(EventStore& store,
                                                              EventCursor& events,
                                                              const AuditRecord& record) {
  auto next = events.peek();
  if (!next) return std::unexpected(std::move(next.error()));
  const StoredEvent* event = *next;
  if (event != nullptr && event->position == record.position &&
      event->event->event_id == record.event_id) {
    events.pop();
    return std::nullopt;
  }
  auto stored = store.get(record.event_id);
  if (!stored) return std::unexpected(std::move(stored.error()));
  const std::string head = "record at position " + std::to_string(record.position) +
                           " names event " + record.event_id.to_string();
  if (*stored) {
    return failure_at(record, AuditFault::moved,
                      head + ", which is stored at position " +
                          std::to_string((*stored)->position) + ": records were moved or swapped");
  }
  return failure_at(record, AuditFault::inserted,
                    head + ", which is not in the store: the record was inserted");
}

// --- export ---

void append_csv_field(std::string& line, std::string_view field) {
  // RFC 4180 section 2, rules 5-7: quote a field holding a comma, quote, CR or LF, and double
  // the quotes inside it.
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    line.append(field);
    return;
  }
  line.push_back('"');
  for (char c : field) {
    if (c == '"') line.push_back('"');
    line.push_back(c);
  }
  line.push_back('"');
}

std::string optional_text(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : std::string();
}

constexpr std::array<std::string_view, 12> csv_columns = {
    "position", "event_id",    "occurred_at", "recorded_at", "actor",     "organization_id",
    "action",   "entity_type", "entity_id",   "details",     "prev_hash", "hash"};

std::string csv_row(const AuditRecord& record) {
  const std::array<std::string, 12> fields = {std::to_string(record.position),
                                              record.event_id.to_string(),
                                              format_timestamp(record.occurred_at),
                                              format_timestamp(record.recorded_at),
                                              optional_text(record.actor),
                                              optional_text(record.organization_id),
                                              record.action,
                                              record.entity_type,
                                              record.entity_id.value_or(""),
                                              canonical_json(record.details),
                                              record.prev_hash,
                                              record.hash};
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line.push_back(',');
    append_csv_field(line, fields[i]);
  }
  line.append("\r\n");
  return line;
}

}  // namespace

std::string canonical_json(const boost::json::value& value) {
  std::string out;
  append_value(out, value);
  return out;
}

std::string canonical_audit_encoding(const AuditRecord& record) {
  std::string out;
  out.reserve(512);
  encode_record(out, record);
  return out;
}

HashHex audit_hash(const AuditRecord& record) {
  // One buffer per thread, kept across records: the consumer and verify hash every record, and
  // the encoding is only needed until it is hashed.
  thread_local std::string encoding;
  encoding.clear();
  encode_record(encoding, record);
  HashHex hash = sha256_hex(encoding);
  // A record with huge details does not keep its buffer for good.
  constexpr std::size_t kept_capacity = 64 * 1024;
  if (encoding.capacity() > kept_capacity) std::string().swap(encoding);
  return hash;
}

// --- the writer and its consumer ---

AuditWriter::AuditWriter(EventStore& store, AuditMapping mapping, std::string consumer_name)
    : store_(store), mapping_(std::move(mapping)), consumer_name_(std::move(consumer_name)) {}

AuditRecord AuditWriter::record_for(const StoredEvent& event, const AuditChainHead& head) const {
  AuditRecord record = mapping_(event.event.ref(), event.position, event.recorded_at);
  record.position = event.position;
  record.event_id = event.event->event_id;
  record.recorded_at = event.recorded_at;
  record.prev_hash = head.hash;
  record.hash = audit_hash(record);
  return record;
}

std::expected<bool, Error> AuditWriter::write(const StoredEvent& event) {
  auto head = store_.audit_head();
  if (!head) return std::unexpected(std::move(head.error()));
  // The store writes nothing for an event already audited (a redelivery, a replay) and refuses
  // a record that would not extend the chain in position order.
  return store_.append_audit(record_for(event, *head), consumer_name_);
}

std::expected<std::size_t, Error> AuditWriter::write_batch(std::span<const StoredEvent> events) {
  if (events.empty()) return std::size_t{0};
  auto head = store_.audit_head();
  if (!head) return std::unexpected(std::move(head.error()));
  std::vector<AuditRecord> records;
  records.reserve(events.size());
  AuditChainHead chain = *head;
  for (const StoredEvent& event : events) {
    if (event.position <= head->position) {
      // Audited before (a replay, a redelivery after a crash): the store skips it by event_id
      // and looks at nothing else, so it is neither mapped nor hashed. Had it no record, the
      // store refuses the batch, as append_audit refuses such an event.
      AuditRecord known;
      known.position = event.position;
      known.event_id = event.event->event_id;
      records.push_back(std::move(known));
      continue;
    }
    AuditRecord record = record_for(event, chain);
    chain = AuditChainHead{.position = record.position, .hash = record.hash};
    records.push_back(std::move(record));
  }
  return store_.append_audit_batch(records, consumer_name_);
}

std::unique_ptr<DurableConsumer> make_audit_consumer(EventStore& store, AuditMapping mapping,
                                                     ConsumerOptions options) {
  if (options.name.empty()) options.name = std::string(audit_consumer_name);
  options.max_attempts = 0;
  // Catching up (after downtime, a replay, a new deployment over an existing store), batches grow
  // to 1,024 events: a quarter of the transactions of 256 at a time.
  if (options.max_batch_size == 0) options.max_batch_size = audit_max_batch_size;
  auto writer = std::make_shared<AuditWriter>(store, std::move(mapping), options.name);
  return std::make_unique<DurableConsumer>(
      store, std::move(options),
      [writer](const StoredEvent& event, const Delivery&) -> std::expected<void, Error> {
        auto written = writer->write(event);
        if (!written) return std::unexpected(std::move(written.error()));
        return {};
      },
      [writer](std::span<const StoredEvent> events,
               std::span<const Delivery>) -> std::expected<void, Error> {
        auto written = writer->write_batch(events);
        if (!written) return std::unexpected(std::move(written.error()));
        return {};
      });
}

// --- verification ---

std::string_view to_string(AuditFault fault) noexcept {
  switch (fault) {
    case AuditFault::edited:
      return "edited";
    case AuditFault::deleted:
      return "deleted";
    case AuditFault::inserted:
      return "inserted";
    case AuditFault::moved:
      return "moved";
    case AuditFault::broken_link:
      return "broken_link";
    case AuditFault::head_mismatch:
      return "head_mismatch";
    case AuditFault::head_missing:
      return "head_missing";
  }
  return "unknown";
}

std::expected<AuditVerification, Error> verify_audit_log(EventStore& store,
                                                         const AuditVerifyOptions& options) {
  const std::size_t page_size = std::max<std::size_t>(options.page_size, 1);
  std::int64_t consumer_checkpoint = 0;
  if (options.check_events) {
    auto checkpoint = store.load_checkpoint(options.consumer);
    if (!checkpoint) return std::unexpected(std::move(checkpoint.error()));
    consumer_checkpoint = checkpoint->position;
  }
  EventCursor events(store, page_size);
  AuditVerification result;
  bool head_seen = false;

  auto fail = [&](AuditFailure failure) {
    result.failure = std::move(failure);
    return result;
  };

  for (std::int64_t after = 0;;) {
    auto page = store.read_audit_chain(after, page_size);
    if (!page) return std::unexpected(std::move(page.error()));
    for (const AuditRecord& record : *page) {
      ++result.records;
      if (options.check_events) {
        // Events before this record must have had a record of their own, except those before
        // the first record of a chain that starts at the genesis hash (a log started late).
        const bool skip_unaudited = result.head.position == 0 && record.prev_hash == genesis_hash;
        for (;;) {
          auto next = events.peek();
          if (!next) return std::unexpected(std::move(next.error()));
          const StoredEvent* event = *next;
          if (event == nullptr || event->position >= record.position) break;
          if (!skip_unaudited) return fail(missing_record(*event));
          events.pop();
        }
        auto mismatch = check_event(store, events, record);
        if (!mismatch) return std::unexpected(std::move(mismatch.error()));
        if (*mismatch) return fail(std::move(**mismatch));
      }
      if (record.prev_hash != result.head.hash) {
        return fail(failure_at(
            record, AuditFault::broken_link,
            "record at position " + std::to_string(record.position) + " has prev_hash " +
                short_hash(record.prev_hash) + " but the record before it (" +
                (result.head.position == 0 ? std::string("the genesis")
                                           : "position " + std::to_string(result.head.position)) +
                ") hashes to " + short_hash(result.head.hash) +
                ": a record was deleted before it, or it was inserted or moved"));
      }
      if (const HashHex computed = audit_hash(record); computed != record.hash) {
        return fail(failure_at(record, AuditFault::edited,
                               "record at position " + std::to_string(record.position) +
                                   " hashes to " + short_hash(computed) + " but holds " +
                                   short_hash(record.hash) + ": it was edited"));
      }
      if (options.expected_head && record.position == options.expected_head->position) {
        head_seen = true;
        if (record.hash != options.expected_head->hash) {
          return fail(
              failure_at(record, AuditFault::head_mismatch,
                         "record at position " + std::to_string(record.position) + " hashes to " +
                             short_hash(record.hash) + " but the exported head says " +
                             short_hash(options.expected_head->hash) + ": the log was rewritten"));
        }
      }
      result.head = AuditChainHead{.position = record.position, .hash = record.hash};
    }
    if (page->size() < page_size) break;
    after = page->back().position;
  }

  if (options.check_events) {
    // The newest records: every event the consumer has passed needs one.
    auto next = events.peek();
    if (!next) return std::unexpected(std::move(next.error()));
    if (const StoredEvent* event = *next;
        event != nullptr && event->position <= consumer_checkpoint) {
      return fail(missing_record(*event));
    }
  }
  if (options.expected_head && options.expected_head->position > 0 && !head_seen) {
    const AuditChainHead& expected = *options.expected_head;
    return fail(AuditFailure{
        .position = expected.position,
        .event_id = std::nullopt,
        .fault = AuditFault::head_missing,
        .message = "the exported head at position " + std::to_string(expected.position) +
                   " is not in the log (its last record is at position " +
                   std::to_string(result.head.position) +
                   "): records were deleted from the end, or the log was rewritten"});
  }
  return result;
}

std::string to_string(const AuditChainHead& head) {
  return std::to_string(head.position) + ":" + head.hash;
}

std::expected<AuditChainHead, Error> parse_audit_head(std::string_view text) {
  const auto colon = text.find(':');
  auto invalid = [&](std::string_view what) {
    return std::unexpected(Error::for_field(
        ErrorCode::invalid_argument, "head",
        std::string(what) + "; expected \"POSITION:HASH\" as `herald audit head` prints it"));
  };
  if (colon == std::string_view::npos) return invalid("no ':' between position and hash");
  const std::string_view position_text = text.substr(0, colon);
  const std::string_view hash = text.substr(colon + 1);
  AuditChainHead head;
  auto [end, ec] = std::from_chars(position_text.data(),
                                   position_text.data() + position_text.size(), head.position);
  if (ec != std::errc{} || end != position_text.data() + position_text.size() ||
      head.position < 0) {
    return invalid("position '" + std::string(position_text) + "' is not a non-negative integer");
  }
  if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return invalid("hash is not 64 lower-case hexadecimal characters");
  }
  head.hash = std::string(hash);
  return head;
}

// --- export ---

boost::json::object audit_record_to_json(const AuditRecord& record) {
  boost::json::object json;
  json["position"] = record.position;
  json["event_id"] = record.event_id.to_string();
  json["occurred_at"] = format_timestamp(record.occurred_at);
  json["recorded_at"] = format_timestamp(record.recorded_at);
  json["actor"] = record.actor ? boost::json::value(*record.actor) : boost::json::value(nullptr);
  json["organization_id"] = record.organization_id ? boost::json::value(*record.organization_id)
                                                   : boost::json::value(nullptr);
  json["action"] = record.action;
  json["entity_type"] = record.entity_type;
  json["entity_id"] =
      record.entity_id ? boost::json::value(*record.entity_id) : boost::json::value(nullptr);
  json["details"] = record.details;
  json["prev_hash"] = record.prev_hash;
  json["hash"] = record.hash;
  return json;
}

std::expected<std::int64_t, Error> export_audit_log(EventStore& store, AuditQuery query,
                                                    AuditExportFormat format, std::ostream& out) {
  std::int64_t written = 0;
  auto check_stream = [&]() -> std::expected<void, Error> {
    if (!out) {
      return std::unexpected(
          Error{ErrorCode::io,
                "writing the audit export failed after " + std::to_string(written) + " records",
                {}});
    }
    return {};
  };
  if (format == AuditExportFormat::csv) {
    std::string header;
    for (std::size_t i = 0; i < csv_columns.size(); ++i) {
      if (i > 0) header.push_back(',');
      header.append(csv_columns[i]);
    }
    header.append("\r\n");
    out << header;
    if (auto ok = check_stream(); !ok) return std::unexpected(std::move(ok.error()));
  }
  for (;;) {
    auto page = store.query_audit(query);
    if (!page) return std::unexpected(std::move(page.error()));
    std::string chunk;
    for (const AuditRecord& record : page->items) {
      if (format == AuditExportFormat::csv) {
        chunk.append(csv_row(record));
      } else {
        chunk.append(boost::json::serialize(audit_record_to_json(record)));
        chunk.push_back('\n');
      }
    }
    out << chunk;
    written += static_cast<std::int64_t>(page->items.size());
    if (auto ok = check_stream(); !ok) return std::unexpected(std::move(ok.error()));
    if (page->items.size() < query.limit || page->items.empty()) break;
    // The cursor keeps pages stable while records are added (they have higher positions).
    query.before_position = page->items.back().position;
  }
  out.flush();
  if (auto ok = check_stream(); !ok) return std::unexpected(std::move(ok.error()));
  return written;
}

}  // namespace herald
