#pragma once

// Tables for the `herald` commands' human output: columns as wide as their widest cell, counted
// in code points, numbers right-aligned.

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace herald::server {

/// How many code points `text` (UTF-8) has: its width in a terminal, near enough.
std::size_t display_width(std::string_view text);

/// `text` cut to at most `most` code points, ending in "…" when cut.
std::string shorten(std::string_view text, std::size_t most);

/// A table printed with columns as wide as their widest cell; numbers right-aligned.
class Table {
 public:
  struct Column {
    std::string_view header;
    bool right = false;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  /// Adds a row: one cell per column.
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  /// Prints the header line and the rows.
  void print(std::FILE* out) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace herald::server
