// Where a node keeps its files: a replica's data directory holds wal/ (the
// WAL's segments) and snap/ (its snapshot files). keelctl accepts the data
// directory or the WAL directory itself (then snapshots are looked for in
// ../snap, else beside the segments, as older layouts kept them). The path
// is normalized first, so "n1/wal/" and "n1/wal" are the same directory.
//
// Thread safety: reads the file system only.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "keel/wal/file_system.hpp"
#include "keel/wal/recovery.hpp"

namespace keelctl {

struct data_dirs {
  std::string wal{};
  std::string snap{};
};

inline bool is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

/// What a replica stores in the WAL as the handle of a snapshot kept in a
/// snapshot file (replica's snapshot_in_file); anything else has no file.
inline constexpr std::string_view snapshot_in_file = "file";

/// Why `wal_dir` (an existing directory) holds no WAL: "no WAL segments in
/// DIR", or the listing's error; empty when it has segments. Recovery
/// treats an empty directory as a new node's, but keelctl is pointed at a
/// node's files: finding none is an error, not an empty log.
inline std::string missing_segments(const std::string& wal_dir) {
  keel::wal::posix_file_system fs;
  auto seqs = keel::wal::list_segments(fs, wal_dir);
  if (!seqs) return wal_dir + ": " + seqs.error().message();
  if (seqs->empty()) return "no WAL segments in " + wal_dir;
  return {};
}

/// `dir` lexically normalized, without a trailing separator ("n1/wal/" ->
/// "n1/wal"; the root stays "/").
inline std::string normalized_dir(const std::string& dir) {
  if (dir.empty()) return dir;
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  if (p.filename().empty() && p.has_relative_path()) p = p.parent_path();
  return p.string();
}

/// The WAL and snapshot directories of `given` (a data or a WAL directory).
inline data_dirs locate(const std::string& given) {
  const std::string dir = normalized_dir(given);
  if (is_directory(dir + "/wal")) return {dir + "/wal", dir + "/snap"};
  const std::string parent_snap = (std::filesystem::path(dir).parent_path() / "snap").string();
  if (is_directory(parent_snap)) return {dir, parent_snap};
  return {dir, dir};
}

}  // namespace keelctl
