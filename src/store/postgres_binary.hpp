#pragma once

// PostgreSQL's binary form of the values herald sends: the fields of a binary COPY row (audit
// records) and the elements of a binary array parameter (appends) are both written as a length
// (-1 for NULL) and the type's bytes.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "herald/event_id.hpp"
#include "herald/timestamp.hpp"
#include "store/postgres_store.hpp"

namespace herald::detail {

/// Values in PostgreSQL's binary form, appended one after another to `data_`.
class BinaryValues {
 public:
  void null() {
    put32(0xFFFF'FFFFu);
    has_null_ = true;
  }
  /// text, varchar or json: the bytes as they are.
  void text(std::string_view value) {
    put32(static_cast<std::uint32_t>(value.size()));
    data_.append(value);
  }
  void optional_text(const std::optional<std::string>& value) { value ? text(*value) : null(); }
  void int64(std::int64_t value) {
    put32(8);
    put32(static_cast<std::uint32_t>(static_cast<std::uint64_t>(value) >> 32));
    put32(static_cast<std::uint32_t>(static_cast<std::uint64_t>(value)));
  }
  void int64(const std::optional<std::int64_t>& value) { value ? int64(*value) : null(); }
  void uuid(const EventId& id) {
    text(std::string_view(reinterpret_cast<const char*>(id.bytes().data()), id.bytes().size()));
  }
  /// A timestamptz: microseconds from 2000-01-01 00:00 UTC.
  void timestamp(Timestamp at) { int64(at.time_since_epoch().count() - postgres_epoch_micros); }

 protected:
  void put16(std::uint16_t value) {
    data_.push_back(static_cast<char>(value >> 8));
    data_.push_back(static_cast<char>(value & 0xFF));
  }
  void put32(std::uint32_t value) {
    const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                           static_cast<char>(value >> 8), static_cast<char>(value)};
    data_.append(bytes, 4);
  }

  std::string data_;
  bool has_null_ = false;
};

}  // namespace herald::detail
