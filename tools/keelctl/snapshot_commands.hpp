// keelctl snapshot inspect FILE|DIR: a snapshot file's header (index, term,
// sizes, content CRC check) and the store snapshot inside it (the version
// it was written at, each table with its object count and bytes). Given a
// data directory it inspects every committed snapshot file in snap/, and
// takes the configuration (voters, learners) from the WAL's snapshot marker:
// the snapshot file itself does not carry it.
//
// Exit status: 0 when every file and stream checks, 1 otherwise.
//
// Thread safety: each call uses only its arguments.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "keel/raft/types.hpp"
#include "keel/wal/recovery.hpp"
#include "keel/wal/snapshot_file.hpp"
#include "keelctl/data_dir.hpp"
#include "keelctl/progress.hpp"
#include "keelctl/store_stream.hpp"
#include "keelctl/text.hpp"

namespace keelctl {

/// One table of a store snapshot.
struct table_summary {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;  ///< Encoded object bytes, without framing.
};

/// "1 2 3", or "none".
inline std::string id_list(const std::vector<keel::raft::node_id>& ids) {
  if (ids.empty()) return "none";
  std::string out;
  for (const auto id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return out;
}

/// The snapshot marker of the WAL next to snapshot directory `snap_dir`, if
/// there is a WAL there that recovers.
inline std::optional<keel::wal::snapshot_marker> wal_marker_for(const std::string& snap_dir) {
  const std::string wal_dir = (std::filesystem::path(snap_dir).parent_path() / "wal").string();
  if (!is_directory(wal_dir)) return std::nullopt;
  keel::wal::posix_file_system fs;
  keel::wal::recovery_report report;
  auto rec = keel::wal::recover(fs, wal_dir, report, 0);
  if (!rec) return std::nullopt;
  return rec->state.snapshot;
}

/// Inspects one snapshot file; false if anything fails its check.
inline bool inspect_snapshot_file(const std::string& path,
                                  const std::optional<keel::wal::snapshot_marker>& marker,
                                  std::ostream& out, std::ostream& err, progress_mode mode) {
  keel::wal::posix_file_system fs;
  out << "snapshot " << path << "\n";
  auto reader = keel::wal::snapshot_reader<keel::wal::posix_file_system>::open(fs, path);
  if (!reader) {
    out << "  CORRUPT: " << reader.error().message() << "\n";
    err << "keelctl: " << path << ": " << reader.error().message() << "\n";
    return false;
  }
  std::error_code size_ec;
  const auto file_bytes = std::filesystem::file_size(path, size_ec);
  out << strf("  index %" PRIu64 " term %" PRIu64 "\n", reader->index(), reader->term());
  if (marker && marker->snapshot.metadata.index == reader->index() &&
      marker->snapshot.metadata.term == reader->term()) {
    const keel::raft::conf_state& c = marker->snapshot.metadata.conf;
    out << "  members: voters " << id_list(c.voters) << "; learners " << id_list(c.learners);
    if (!c.voters_outgoing.empty()) out << "; outgoing voters " << id_list(c.voters_outgoing);
    out << " (from the WAL's snapshot marker)\n";
  } else {
    out << "  members: unknown (not the snapshot the WAL beside it starts from)\n";
  }
  out << strf("  file %" PRIu64 " B: content %" PRIu64 " B, metadata %zu B\n",
              static_cast<std::uint64_t>(size_ec ? 0 : file_bytes), reader->size(),
              reader->metadata().size());
  const std::error_code crc_ec = reader->verify();
  out << strf("  content crc %08x: %s\n", reader->crc(),
              crc_ec ? ("BAD: " + crc_ec.message()).c_str() : "ok");
  bool ok = !crc_ec;

  std::map<std::string, table_summary> tables;
  std::uint64_t read = 0;
  progress bar(err, mode, "snapshot", reader->size());
  auto walked = walk_store_snapshot(
      [&](std::span<std::byte> buffer) {
        auto n = reader->read(buffer);
        if (n) bar.update(read += *n);
        return n;
      },
      [&](std::string_view table, std::uint64_t) { tables[std::string(table)]; },
      [&](std::string_view table, std::string_view bytes) {
        table_summary& t = tables[std::string(table)];
        ++t.objects;
        t.bytes += bytes.size();
        return std::error_code{};
      },
      reader->index());
  bar.finish();
  if (!walked) {
    out << "  store snapshot: BAD: " << walked.error().message() << "\n";
    ok = false;
  } else {
    out << strf("  store snapshot: written at version %" PRIu64 ", %u tables, %" PRIu64
                " objects, stream crc ok\n",
                walked->written_at, walked->sections, walked->objects);
  }
  if (!tables.empty()) {
    out << strf("    %-24s %10s %12s\n", "table", "objects", "bytes");
    for (const auto& [name, t] : tables) {
      out << strf("    %-24s %10" PRIu64 " %12" PRIu64 "\n", name.c_str(), t.objects, t.bytes);
    }
  }
  return ok;
}

/// keelctl snapshot inspect FILE|DIR.
inline int snapshot_inspect(const std::string& target, std::ostream& out, std::ostream& err,
                            progress_mode mode = progress_mode::off) {
  std::error_code ec;
  if (!std::filesystem::exists(target, ec)) {
    err << "keelctl: " << target << ": no such file or directory\n";
    return 1;
  }
  if (!is_directory(target)) {
    const std::string dir = std::filesystem::path(target).parent_path().string();
    return inspect_snapshot_file(target, wal_marker_for(dir.empty() ? "." : dir), out, err, mode)
               ? 0
               : 1;
  }
  const data_dirs dirs = locate(target);
  std::vector<std::pair<keel::wal::snapshot_name, std::string>> files;
  keel::wal::posix_file_system fs;
  if (auto names = fs.list(dirs.snap)) {
    for (const std::string& name : *names) {
      auto parsed = keel::wal::snapshot_name::parse(name);
      if (parsed && parsed->kind == keel::wal::snapshot_file_kind::committed) {
        files.emplace_back(*parsed, dirs.snap + "/" + name);
      }
    }
  }
  if (files.empty()) {
    err << "keelctl: " << target << ": no snapshot files (a cluster that never took one "
        << "starts from its configuration alone)\n";
    return 1;
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.index, a.first.term) < std::pair(b.first.index, b.first.term);
  });
  const auto marker = wal_marker_for(dirs.snap);
  bool ok = true;
  for (const auto& [name, path] : files)
    ok = inspect_snapshot_file(path, marker, out, err, mode) && ok;
  return ok ? 0 : 1;
}

}  // namespace keelctl
