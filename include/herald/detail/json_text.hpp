#pragma once

// The reader behind decoding events straight from JSON text, without building a DOM first.
// Field codecs (field_codec.hpp) call it; the loop over an event's members is compiled in
// src/json_text.cpp.

#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

struct BaseEvent;
class EventType;

namespace detail {

/// Deepest nesting (the event object counts as 1) the text reader accepts; deeper input is left
/// to the strict decoder, whose limit is higher (`max_event_json_depth`).
inline constexpr int text_reader_max_depth = 16;

/// A cursor over JSON text that reads exactly the values an event's fields hold. It is a fast
/// path, not a validator of its own: every read returns false for anything it does not fully
/// understand (malformed or merely unusual JSON alike), and the caller then hands the whole text
/// to the strict decoder, which decides and words the error. Whatever it accepts is well-formed
/// JSON (RFC 8259) in valid UTF-8, without duplicate keys, and reads as the strict decoder reads
/// it. Not thread-safe; one per decode.
class JsonTextReader {
 public:
  explicit JsonTextReader(std::string_view text) noexcept
      : at_(text.data()), end_(text.data() + text.size()) {}
  JsonTextReader(const JsonTextReader&) = delete;
  JsonTextReader& operator=(const JsonTextReader&) = delete;

  /// Skips whitespace; then consumes `c` and returns true when it is next.
  bool consume(char c) noexcept {
    skip_whitespace();
    if (at_ == end_ || *at_ != c) return false;
    ++at_;
    return true;
  }
  /// Skips whitespace and returns the next byte, or '\0' at the end.
  char peek() noexcept {
    skip_whitespace();
    return at_ == end_ ? '\0' : *at_;
  }
  /// True when only whitespace is left.
  bool at_end() noexcept {
    skip_whitespace();
    return at_ == end_;
  }

  /// Consumes `null` when it is next; false (consuming nothing) otherwise.
  bool read_null() noexcept;
  bool read_bool(bool& out) noexcept;
  /// An integer literal that fits int64; no fraction, exponent or "-0".
  bool read_int64(std::int64_t& out) noexcept;
  /// A string value. `out` points into the text, or into a buffer that the next read reuses.
  bool read_string(std::string_view& out);
  bool read_string(std::string& out);
  /// An object key and the ':' after it; `out` as in `read_string`.
  bool read_key(std::string_view& out);
  /// Consumes the key `"<name>":` when it is next, written as is (`name` needs no escaping in
  /// JSON); false, consuming nothing, otherwise: the key may still be `name` written with escapes.
  bool read_key_named(std::string_view name) noexcept;
  bool read_strings(std::vector<std::string>& out);
  bool read_int64s(std::vector<std::int64_t>& out);
  /// Any JSON object, built as `boost::json::parse` would build it (same keys in the same order,
  /// same kinds of number). `depth` is the nesting of the object itself.
  bool read_object(boost::json::object& out, int depth = 2);
  /// Steps over one value of any kind. Lenient about numbers: it is for finding a member, and
  /// the text is read properly afterwards.
  bool skip_value(int depth = 2);

 private:
  void skip_whitespace() noexcept {
    while (at_ != end_ && static_cast<unsigned char>(*at_) <= ' ' &&
           (*at_ == ' ' || *at_ == '\n' || *at_ == '\r' || *at_ == '\t')) {
      ++at_;
    }
  }
  bool read_string_slow(const char* start, std::string_view& out);
  bool read_value(boost::json::value& out, int depth);
  bool read_array(boost::json::array& out, int depth);
  bool read_number(boost::json::value& out);

  const char* at_;
  const char* end_;
  std::string unescaped_;
};

/// Reads the members of the JSON object `text` into `event`, an event of `type` whose fields
/// hold their defaults, through each field's `FieldInfo::read_text`. Checks `event_type` and
/// `entity_type` against `type`. Sets bit i of `seen` for each field i present. False when the
/// text is anything but an object that decodes without error (unknown or repeated keys, a value
/// of the wrong kind, malformed JSON): the caller then decodes the text the strict way.
bool read_event_text(std::string_view text, const EventType& type, BaseEvent& event,
                     std::uint64_t& seen);

}  // namespace detail
}  // namespace herald
