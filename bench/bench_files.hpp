#pragma once

// Where a benchmark's files go: every bench keeps its databases off a tmpfs, where fsync costs
// nothing and would flatter every durable write, and reports the filesystem it measured on.

#include <sys/statfs.h>

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>

namespace herald_bench {

/// The name of the filesystem holding `path` ("ext4", "tmpfs", ...).
inline std::string filesystem_name(const std::filesystem::path& path) {
  struct statfs info {};
  if (statfs(path.c_str(), &info) != 0) return "unknown filesystem";
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlayfs";
    default: {
      char text[32];
      std::snprintf(text, sizeof text, "filesystem 0x%lx", static_cast<unsigned long>(info.f_type));
      return text;
    }
  }
}

/// A fresh directory `prefix.XXXXXX` (mkdtemp's template) under $HERALD_BENCH_DIR, else the
/// system's temporary directory unless it is a tmpfs, else `fallback`; the error names the
/// directory it could not be created in.
inline std::expected<std::filesystem::path, std::string> make_bench_directory(
    std::string_view prefix, const std::filesystem::path& fallback) {
  std::filesystem::path base;
  if (const char* chosen = std::getenv("HERALD_BENCH_DIR"); chosen != nullptr && *chosen) {
    base = chosen;
  } else {
    base = std::filesystem::temp_directory_path();
    if (filesystem_name(base) == "tmpfs") base = fallback;
  }
  std::string pattern = (base / (std::string(prefix) + ".XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return std::unexpected("cannot create a directory under " + base.string());
  }
  return std::filesystem::path(pattern);
}

}  // namespace herald_bench
