// Where a node keeps its files: a replica's data directory holds wal/ (the
// WAL's segments) and snap/ (its snapshot files). keelctl accepts the data
// directory or the WAL directory itself (then snapshots are looked for in
// ../snap, else beside the segments, as older layouts kept them).
//
// Thread safety: reads the file system only.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

namespace keelctl {

struct data_dirs {
  std::string wal{};
  std::string snap{};
};

inline bool is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

/// The WAL and snapshot directories of `dir` (a data or a WAL directory).
inline data_dirs locate(const std::string& dir) {
  if (is_directory(dir + "/wal")) return {dir + "/wal", dir + "/snap"};
  const std::string parent_snap = (std::filesystem::path(dir).parent_path() / "snap").string();
  if (is_directory(parent_snap)) return {dir, parent_snap};
  return {dir, dir};
}

}  // namespace keelctl
