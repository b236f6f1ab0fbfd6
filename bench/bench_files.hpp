#pragma once

// Where a benchmark's files go: every bench keeps its databases off a tmpfs, where fsync costs
// nothing and would flatter every durable write, and reports the filesystem it measured on.

#include <sys/statfs.h>

#include <cstdio>
#include <filesystem>
#include <string>

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

}  // namespace herald_bench
