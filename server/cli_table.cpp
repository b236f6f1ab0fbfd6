#include "cli_table.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace herald::server {

std::size_t display_width(std::string_view text) {
  // Code points: every byte that does not continue a UTF-8 sequence.
  return static_cast<std::size_t>(std::ranges::count_if(
      text, [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

/// `text` cut to at most `most` code points, ending in "…" when cut.
std::string shorten(std::string_view text, std::size_t most) {
  if (display_width(text) <= most) return std::string(text);
  std::size_t points = 0;
  std::size_t cut = 0;
  for (; cut < text.size(); ++cut) {
    if ((static_cast<unsigned char>(text[cut]) & 0xC0) != 0x80) {
      if (points == most - 1) break;
      ++points;
    }
  }
  return std::string(text.substr(0, cut)) + "…";
}

void Table::print(std::FILE* out) const {
  std::vector<std::size_t> widths;
  for (const Column& column : columns_) widths.push_back(display_width(column.header));
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(row[i]));
    }
  }
  auto line = [&](const auto& cell_of) {
    std::string text;
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      const std::string_view cell = cell_of(i);
      const std::string padding(widths[i] - display_width(cell), ' ');
      if (i > 0) text += "  ";
      if (columns_[i].right) {
        text += padding;
        text += cell;
      } else {
        text += cell;
        if (i + 1 < columns_.size()) text += padding;
      }
    }
    fmt::print(out, "{}\n", text);
  };
  line([&](std::size_t i) { return columns_[i].header; });
  for (const auto& row : rows_) line([&](std::size_t i) { return std::string_view(row[i]); });
}

}  // namespace herald::server
