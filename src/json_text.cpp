#include "herald/detail/json_text.hpp"

#include <bit>
#include <boost/json/array.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "herald/event_type.hpp"

namespace herald::detail {
namespace {

constexpr std::uint64_t ones = 0x0101010101010101ULL;
constexpr std::uint64_t high_bits = 0x8080808080808080ULL;

constexpr std::uint64_t zero_byte(std::uint64_t word) noexcept {
  return (word - ones) & ~word & high_bits;
}

/// Marks (with its high bit) each of the 8 bytes, loaded little-endian, that ends a plain run of
/// string text: a quote, a backslash, a control character (RFC 8259 section 7 requires them
/// escaped) or a byte of a multi-byte UTF-8 sequence. These are the usual "some byte is zero /
/// below n" word tricks: a borrow can mark a byte above a marked one wrongly, never below, so
/// the lowest mark is exact.
constexpr std::uint64_t plain_run_ends(std::uint64_t word) noexcept {
  const std::uint64_t below_space = (word - ones * 0x20) & ~word & high_bits;
  return zero_byte(word ^ (ones * '"')) | zero_byte(word ^ (ones * '\\')) | below_space |
         (word & high_bits);
}

bool is_plain(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u < 0x80 && u != '"' && u != '\\';
}

/// Whether the `n` bytes at `a` and `b` are equal; keys are short, so this beats a call to memcmp.
bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
  const auto same = [](const char* x, const char* y, auto width) {
    decltype(width) u = 0, v = 0;
    std::memcpy(&u, x, sizeof u);
    std::memcpy(&v, y, sizeof v);
    return u == v;
  };
  if (n >= 8) {
    for (; n > 8; a += 8, b += 8, n -= 8) {
      if (!same(a, b, std::uint64_t{})) return false;
    }
    // The last 8 bytes, overlapping what was compared already.
    return same(a + n - 8, b + n - 8, std::uint64_t{});
  }
  if (n >= 4) return same(a, b, std::uint32_t{}) && same(a + n - 4, b + n - 4, std::uint32_t{});
  for (; n > 0; ++a, ++b, --n) {
    if (*a != *b) return false;
  }
  return true;
}

/// The first byte in [p, end) that is not plain string text (see `plain_run_ends`), or `end`.
const char* plain_run_end(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  // 16 bytes at a time. A signed comparison with 0x20 catches control characters and bytes of
  // 0x80 and above (negative as signed) together.
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i ends =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)),
                     _mm_cmplt_epi8(chunk, space));
    if (const int mask = _mm_movemask_epi8(ends); mask != 0) {
      return p + std::countr_zero(static_cast<unsigned>(mask));
    }
    p += 16;
  }
#endif
  while (end - p >= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, 8);
    if constexpr (std::endian::native == std::endian::big) word = std::byteswap(word);
    if (const std::uint64_t ends = plain_run_ends(word); ends != 0) {
      return p + std::countr_zero(ends) / 8;
    }
    p += 8;
  }
  while (p != end && is_plain(*p)) ++p;
  return p;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// The length of the well-formed UTF-8 sequence of two to four bytes at `p` (RFC 3629 section 4:
/// no overlongs, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(const char* p, const char* end) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  const std::size_t left = static_cast<std::size_t>(end - p);
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;
  if (u[0] >= 0xC2 && u[0] <= 0xDF) {
    length = 2;
  } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
    length = 3;
    if (u[0] == 0xE0) low = 0xA0;
    if (u[0] == 0xED) high = 0x9F;
  } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
    length = 4;
    if (u[0] == 0xF0) low = 0x90;
    if (u[0] == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (left < length || u[1] < low || u[1] > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if ((u[k] & 0xC0) != 0x80) return 0;
  }
  return length;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Reads the four hex digits after "\u" at `p`; -1 when they are not four hex digits.
long read_hex4(const char* p, const char* end) noexcept {
  if (end - p < 4) return -1;
  long value = 0;
  for (int i = 0; i < 4; ++i) {
    const int digit = hex_value(p[i]);
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Takes the one number a basic_parser reads, and refuses anything else.
class NumberHandler {
 public:
  static constexpr std::size_t max_array_size = 0;
  static constexpr std::size_t max_object_size = 0;
  static constexpr std::size_t max_string_size = 0;
  static constexpr std::size_t max_key_size = 0;

  boost::json::value number;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code& ec) { return refuse(ec); }
  bool on_object_end(std::size_t, boost::system::error_code& ec) { return refuse(ec); }
  bool on_array_begin(boost::system::error_code& ec) { return refuse(ec); }
  bool on_array_end(std::size_t, boost::system::error_code& ec) { return refuse(ec); }
  bool on_key_part(boost::json::string_view, std::size_t, boost::system::error_code& ec) {
    return refuse(ec);
  }
  bool on_key(boost::json::string_view, std::size_t, boost::system::error_code& ec) {
    return refuse(ec);
  }
  bool on_string_part(boost::json::string_view, std::size_t, boost::system::error_code& ec) {
    return refuse(ec);
  }
  bool on_string(boost::json::string_view, std::size_t, boost::system::error_code& ec) {
    return refuse(ec);
  }
  bool on_number_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t n, boost::json::string_view, boost::system::error_code&) {
    number = n;
    return true;
  }
  bool on_uint64(std::uint64_t n, boost::json::string_view, boost::system::error_code&) {
    number = n;
    return true;
  }
  bool on_double(double d, boost::json::string_view, boost::system::error_code& ec) {
    // A double that overflowed is refused by the strict decoder ("number out of range").
    if (!std::isfinite(d)) return refuse(ec);
    number = d;
    return true;
  }
  bool on_bool(bool, boost::system::error_code& ec) { return refuse(ec); }
  bool on_null(boost::system::error_code& ec) { return refuse(ec); }
  bool on_comment_part(boost::json::string_view, boost::system::error_code& ec) {
    return refuse(ec);
  }
  bool on_comment(boost::json::string_view, boost::system::error_code& ec) { return refuse(ec); }

 private:
  static bool refuse(boost::system::error_code& ec) {
    ec = boost::json::error::syntax;
    return false;
  }
};

}  // namespace

bool JsonTextReader::read_null() noexcept {
  skip_whitespace();
  if (end_ - at_ < 4 || std::memcmp(at_, "null", 4) != 0) return false;
  at_ += 4;
  return true;
}

bool JsonTextReader::read_bool(bool& out) noexcept {
  skip_whitespace();
  if (end_ - at_ >= 4 && std::memcmp(at_, "true", 4) == 0) {
    at_ += 4;
    out = true;
    return true;
  }
  if (end_ - at_ >= 5 && std::memcmp(at_, "false", 5) == 0) {
    at_ += 5;
    out = false;
    return true;
  }
  return false;
}

bool JsonTextReader::read_int64(std::int64_t& out) noexcept {
  skip_whitespace();
  const char* p = at_;
  const bool negative = p != end_ && *p == '-';
  if (negative) ++p;
  if (p == end_ || !is_digit(*p)) return false;
  std::uint64_t magnitude = 0;
  if (*p == '0') {
    // Boost.JSON's reading of "-0" is its own business; leave it to the strict decoder.
    if (negative) return false;
    ++p;
  } else {
    const char* const first = p;
    // Wraps past 20 digits, but those are refused below.
    while (p != end_ && is_digit(*p)) {
      magnitude = magnitude * 10 + static_cast<std::uint64_t>(*p - '0');
      ++p;
    }
    // 19 digits always fit in 64 bits; more never fit in an int64.
    if (p - first > 19) return false;
  }
  // A fraction or exponent makes it a double (an error for an integer field), and a digit after
  // a leading zero is not JSON.
  if (p != end_ && (*p == '.' || *p == 'e' || *p == 'E' || is_digit(*p))) return false;
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (magnitude > max + 1) return false;
    out = magnitude == max + 1 ? std::numeric_limits<std::int64_t>::min()
                               : -static_cast<std::int64_t>(magnitude);
  } else {
    if (magnitude > max) return false;
    out = static_cast<std::int64_t>(magnitude);
  }
  at_ = p;
  return true;
}

bool JsonTextReader::read_string(std::string_view& out) {
  if (!consume('"')) return false;
  const char* const start = at_;
  const char* p = at_;
  for (;;) {
    p = plain_run_end(p, end_);
    if (p == end_) return false;
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') {
      out = std::string_view(start, static_cast<std::size_t>(p - start));
      at_ = p + 1;
      return true;
    }
    if (c == '\\') return read_string_slow(start, out);
    if (c < 0x20) return false;
    if (c < 0x80) {
      ++p;
    } else {
      const std::size_t length = utf8_sequence(p, end_);
      if (length == 0) return false;
      p += length;
    }
  }
}

bool JsonTextReader::read_string_slow(const char* start, std::string_view& out) {
  // Starts over from the opening quote, unescaping into a buffer (RFC 8259 section 7).
  unescaped_.clear();
  const char* p = start;
  while (p != end_) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') {
      out = unescaped_;
      at_ = p + 1;
      return true;
    }
    if (c < 0x20) return false;
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence(p, end_);
      if (length == 0) return false;
      unescaped_.append(p, length);
      p += length;
      continue;
    }
    if (c != '\\') {
      unescaped_.push_back(static_cast<char>(c));
      ++p;
      continue;
    }
    if (end_ - p < 2) return false;
    const char escape = p[1];
    p += 2;
    switch (escape) {
      case '"':
      case '\\':
      case '/':
        unescaped_.push_back(escape);
        break;
      case 'b':
        unescaped_.push_back('\b');
        break;
      case 'f':
        unescaped_.push_back('\f');
        break;
      case 'n':
        unescaped_.push_back('\n');
        break;
      case 'r':
        unescaped_.push_back('\r');
        break;
      case 't':
        unescaped_.push_back('\t');
        break;
      case 'u': {
        const long unit = read_hex4(p, end_);
        if (unit < 0) return false;
        p += 4;
        if (unit < 0xD800 || unit > 0xDFFF) {
          append_utf8(unescaped_, static_cast<unsigned long>(unit));
          break;
        }
        // A UTF-16 surrogate pair; anything else around a surrogate goes to the strict path.
        if (unit > 0xDBFF || end_ - p < 6 || p[0] != '\\' || p[1] != 'u') return false;
        const long low = read_hex4(p + 2, end_);
        if (low < 0xDC00 || low > 0xDFFF) return false;
        p += 6;
        append_utf8(unescaped_, 0x10000 + ((static_cast<unsigned long>(unit) - 0xD800) << 10) +
                                    (static_cast<unsigned long>(low) - 0xDC00));
        break;
      }
      default:
        return false;
    }
  }
  return false;
}

bool JsonTextReader::read_string(std::string& out) {
  std::string_view text;
  if (!read_string(text)) return false;
  out.assign(text.data(), text.size());
  return true;
}

bool JsonTextReader::read_key(std::string_view& out) { return read_string(out) && consume(':'); }

bool JsonTextReader::read_key_named(std::string_view name) noexcept {
  skip_whitespace();
  const std::size_t n = name.size();
  if (static_cast<std::size_t>(end_ - at_) < n + 3 || at_[0] != '"' || at_[n + 1] != '"' ||
      !same_bytes(at_ + 1, name.data(), n)) {
    return false;
  }
  const char* const after = at_;
  at_ += n + 2;
  if (consume(':')) return true;
  at_ = after;
  return false;
}

bool JsonTextReader::read_strings(std::vector<std::string>& out) {
  if (!consume('[')) return false;
  out.clear();
  if (consume(']')) return true;
  do {
    std::string_view text;
    if (!read_string(text)) return false;
    out.emplace_back(text);
  } while (consume(','));
  return consume(']');
}

bool JsonTextReader::read_int64s(std::vector<std::int64_t>& out) {
  if (!consume('[')) return false;
  out.clear();
  if (consume(']')) return true;
  do {
    std::int64_t n = 0;
    if (!read_int64(n)) return false;
    out.push_back(n);
  } while (consume(','));
  return consume(']');
}

bool JsonTextReader::read_object(boost::json::object& out, int depth) {
  if (depth > text_reader_max_depth || !consume('{')) return false;
  out.clear();
  if (consume('}')) return true;
  do {
    std::string_view key;
    if (!read_key(key)) return false;
    // The key is copied into the object before the value is read, as the value may reuse the
    // buffer `key` points into. A repeated key is left to the strict decoder.
    auto [member, inserted] = out.emplace(key, nullptr);
    if (!inserted) return false;
    if (!read_value(member->value(), depth + 1)) return false;
  } while (consume(','));
  return consume('}');
}

bool JsonTextReader::read_array(boost::json::array& out, int depth) {
  if (depth > text_reader_max_depth || !consume('[')) return false;
  if (consume(']')) return true;
  do {
    out.emplace_back(nullptr);
    if (!read_value(out.back(), depth + 1)) return false;
  } while (consume(','));
  return consume(']');
}

bool JsonTextReader::read_value(boost::json::value& out, int depth) {
  switch (peek()) {
    case '{':
      return read_object(out.emplace_object(), depth);
    case '[':
      return read_array(out.emplace_array(), depth);
    case '"': {
      std::string_view text;
      if (!read_string(text)) return false;
      out.emplace_string().assign(text.data(), text.size());
      return true;
    }
    case 't':
    case 'f': {
      bool b = false;
      if (!read_bool(b)) return false;
      out = b;
      return true;
    }
    case 'n':
      return read_null();
    default:
      return read_number(out);
  }
}

bool JsonTextReader::read_number(boost::json::value& out) {
  std::int64_t n = 0;
  if (read_int64(n)) {
    out = n;
    return true;
  }
  // Fractions, exponents, "-0" and integers beyond int64: Boost.JSON's own parser reads the
  // number, so its kind (uint64 or double) is what the strict decoder gets. Its rounding of a
  // double depends on how much text follows the number (it takes a faster route when at least
  // 33 bytes do), so it is given the rest of the document, as in the strict decoder's parse; it
  // stops after the number, at the ',', ']' or '}' that follows.
  boost::json::basic_parser<NumberHandler> parser(boost::json::parse_options{});
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, at_, static_cast<std::size_t>(end_ - at_), ec);
  if (ec || !parser.handler().number.is_number()) return false;
  out = parser.handler().number;
  at_ += used;
  return true;
}

bool JsonTextReader::skip_value(int depth) {
  if (depth > text_reader_max_depth) return false;
  switch (peek()) {
    case '{':
    case '[': {
      const char close = *at_ == '{' ? '}' : ']';
      ++at_;
      if (consume(close)) return true;
      do {
        std::string_view key;
        if (close == '}' && !read_key(key)) return false;
        if (!skip_value(depth + 1)) return false;
      } while (consume(','));
      return consume(close);
    }
    case '"': {
      std::string_view text;
      return read_string(text);
    }
    case 't':
    case 'f': {
      bool b = false;
      return read_bool(b);
    }
    case 'n':
      return read_null();
    default: {
      const char* start = at_;
      while (at_ != end_ && (is_digit(*at_) || *at_ == '-' || *at_ == '+' || *at_ == '.' ||
                             *at_ == 'e' || *at_ == 'E')) {
        ++at_;
      }
      return at_ != start;
    }
  }
}

bool read_event_text(std::string_view text, const EventType& type, BaseEvent& event,
                     std::uint64_t& seen) {
  JsonTextReader in(text);
  const std::span<const FieldInfo> fields = type.fields();
  seen = 0;
  bool event_type_seen = false;
  bool entity_type_seen = false;
  // `event_type` and `entity_type` must name this type, and appear at most once.
  auto read_envelope = [&](bool is_event_type) {
    bool& already = is_event_type ? event_type_seen : entity_type_seen;
    std::string_view value;
    if (already || (!is_event_type && !type.is_entity_event()) || !in.read_string(value) ||
        value != (is_event_type ? type.name() : type.entity_type())) {
      return false;
    }
    already = true;
    return true;
  };
  if (!in.consume('{')) return false;
  if (in.consume('}')) return in.at_end();
  // Herald writes the fields in their described order, so the next key is usually the field
  // after the last one read.
  std::size_t next = 0;
  do {
    std::size_t index = fields.size();
    if (!event_type_seen && in.read_key_named("event_type")) {
      if (!read_envelope(true)) return false;
      continue;
    } else if (next < fields.size() && in.read_key_named(fields[next].name)) {
      index = next;
    } else if (in.read_key_named("event_type")) {
      if (!read_envelope(true)) return false;
      continue;
    } else if (in.read_key_named("entity_type")) {
      if (!read_envelope(false)) return false;
      continue;
    } else {
      // Any other key, or one of the above written with escapes.
      std::string_view key;
      if (!in.read_key(key)) return false;
      if (key == "event_type" || key == "entity_type") {
        if (!read_envelope(key == "event_type")) return false;
        continue;
      }
      for (std::size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].name == key) {
          index = i;
          break;
        }
      }
      if (index == fields.size()) return false;
    }
    const std::uint64_t bit = std::uint64_t{1} << index;
    if ((seen & bit) != 0 || fields[index].read_text == nullptr) return false;
    seen |= bit;
    if (!fields[index].read_text(in, event)) return false;
    next = index + 1;
  } while (in.consume(','));
  return in.consume('}') && in.at_end();
}

}  // namespace herald::detail
