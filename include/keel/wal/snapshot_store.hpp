// The snapshot store: a directory of snapshot files (keel/wal/snapshot_file.hpp
// has their names and format). It installs new snapshots durably, keeps the
// newest one and keep_old older ones, finds the newest snapshot that verifies
// at start-up, and keeps partially received snapshots so that a broken
// transfer resumes where it stopped.
//
// Invariants: the directory holds committed `.snap` files (complete and, until
// the disk corrupts them, valid), `.snap.tmp` files of local writers (removed
// by their writer or by cleanup()), and `.snap.part` files of transfers being
// received (at most one after begin_partial). Files the store does not
// recognise by name are left alone. A corrupt snapshot is skipped and
// reported, never removed silently; only pruning after a commit and
// remove_older_than() remove committed snapshots, by age alone.
//
// Thread safety: a store is used by one thread at a time, together with the
// writers it made (which share its directory); readers are independent.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/snapshot_file.hpp"

namespace keel::wal {

/// A committed snapshot file in the directory, as its name describes it.
struct snapshot_entry {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  std::string path{};
  std::uint64_t bytes = 0;  ///< The file's size, header included.
};

/// A snapshot that open_newest() passed over, and why.
struct skipped_snapshot {
  snapshot_entry entry{};
  std::error_code error{};  ///< errc::corrupt_snapshot.
};

/// What open_newest() found.
template <file_system FS>
struct newest_snapshot {
  /// The newest snapshot whose header and content verify, positioned at 0;
  /// empty when there is none.
  std::optional<snapshot_reader<FS>> reader{};
  /// The newer snapshots that failed to verify, newest first. They stay on
  /// disk for an operator to inspect.
  std::vector<skipped_snapshot> skipped{};
};

/// A directory of snapshot files.
template <file_system FS>
class snapshot_store {
 public:
  /// A store over `directory`, keeping `keep_old` snapshots older than the
  /// newest. Touches no file: call cleanup() once at start-up.
  snapshot_store(FS fs, std::string directory, std::size_t keep_old = 1)
      : fs_(std::move(fs)), directory_(std::move(directory)), keep_old_(keep_old) {}

  const std::string& directory() const noexcept { return directory_; }

  /// A copy whose commits never remove older snapshots: for writers whose
  /// snapshot the WAL may never record (a received one that raft may still
  /// refuse), so that only the WAL's owner prunes.
  snapshot_store without_pruning() const {
    snapshot_store copy = *this;
    copy.keep_old_ = static_cast<std::size_t>(-1);
    return copy;
  }
  std::size_t keep_old() const noexcept { return keep_old_; }

  /// The path of the committed snapshot (index, term), whether or not it exists.
  std::string path_of(std::uint64_t index, std::uint64_t term) const {
    return detail::snapshot_path(directory_, snapshot_name{index, term}.str());
  }

  /// Creates the directory if it is missing (its parent must exist) and
  /// removes the .tmp files of writers that a crash interrupted; .part files
  /// stay, to be resumed. Call once at start-up.
  std::error_code cleanup() {
    if (auto ec = fs_.make_directory(directory_)) return detail::snapshot_io_error(ec);
    // The directory's own entry is durable only once its parent is synced.
    if (auto ec = fs_.sync_directory(parent_directory())) return detail::snapshot_io_error(ec);
    auto names = fs_.list(directory_);
    if (!names) return detail::snapshot_io_error(names.error());
    bool removed = false;
    for (const std::string& name : *names) {
      const auto parsed = snapshot_name::parse(name);
      if (parsed && parsed->kind == snapshot_file_kind::temporary) {
        if (auto ec = fs_.remove(detail::snapshot_path(directory_, name))) {
          return detail::snapshot_io_error(ec);
        }
        removed = true;
      }
    }
    return removed ? detail::snapshot_io_error(fs_.sync_directory(directory_)) : std::error_code{};
  }

  /// The committed snapshots, newest first (by index, then term), as their
  /// file names describe them; their contents are not checked.
  result<std::vector<snapshot_entry>> list() {
    auto names = fs_.list(directory_);
    if (!names) return names.error();
    std::vector<snapshot_name> found;
    for (const std::string& name : *names) {
      const auto parsed = snapshot_name::parse(name);
      if (parsed && parsed->kind == snapshot_file_kind::committed) found.push_back(*parsed);
    }
    std::sort(found.begin(), found.end(),
              [](const snapshot_name& a, const snapshot_name& b) { return b.older_than(a); });
    std::vector<snapshot_entry> entries;
    entries.reserve(found.size());
    for (const snapshot_name& name : found) {
      snapshot_entry entry{name.index, name.term, detail::snapshot_path(directory_, name.str()), 0};
      auto file = fs_.open(entry.path, open_mode::read_only);
      if (!file) return file.error();
      auto size = file->size();
      if (!size) return size.error();
      entry.bytes = *size;
      entries.push_back(std::move(entry));
    }
    return entries;
  }

  /// The newest snapshot whose header and content CRC verify (reading each
  /// candidate whole, in pieces), and the newer ones that did not. An I/O
  /// error other than corruption is returned as is: the disk misbehaves.
  result<newest_snapshot<FS>> open_newest() {
    auto entries = list();
    if (!entries) return entries.error();
    newest_snapshot<FS> newest;
    for (snapshot_entry& entry : *entries) {
      auto reader = open(entry.index, entry.term);
      std::error_code ec = reader ? reader->verify() : reader.error();
      if (!ec) {
        newest.reader.emplace(std::move(*reader));
        return newest;
      }
      if (ec != errc::corrupt_snapshot) return ec;
      newest.skipped.push_back({std::move(entry), ec});
    }
    return newest;
  }

  /// Opens the committed snapshot (index, term) and checks its header (not
  /// its content: see snapshot_reader::verify). errc::corrupt_snapshot also
  /// when the header names another (index, term) than the file's name.
  result<snapshot_reader<FS>> open(std::uint64_t index, std::uint64_t term) {
    auto reader = snapshot_reader<FS>::open(fs_, path_of(index, term));
    if (reader && (reader->index() != index || reader->term() != term)) {
      return errc::corrupt_snapshot;
    }
    return reader;
  }

  /// Starts writing the snapshot (index, term) with `metadata` into a .tmp
  /// file. errc::invalid_argument if the metadata exceeds
  /// snapshot_metadata_limit.
  result<snapshot_writer<FS>> begin(std::uint64_t index, std::uint64_t term,
                                    std::span<const std::byte> metadata) {
    if (metadata.size() > snapshot_metadata_limit) return errc::invalid_argument;
    return snapshot_writer<FS>::create(fs_, directory_, header_of(index, term, metadata),
                                       keep_old_);
  }

  /// Starts or resumes receiving the snapshot (index, term) into its .part
  /// file: the writer's held() is how many content bytes are already held
  /// (what the last sync() made durable, 0 for a new transfer, or when the
  /// .part file holds other metadata or is damaged); the sender continues
  /// from there. Removes the .part files of other snapshots first.
  /// Requires: no other live writer for the same (index, term).
  result<snapshot_writer<FS>> begin_partial(std::uint64_t index, std::uint64_t term,
                                            std::span<const std::byte> metadata) {
    if (metadata.size() > snapshot_metadata_limit) return errc::invalid_argument;
    auto names = fs_.list(directory_);
    if (!names) return detail::snapshot_io_error(names.error());
    bool removed = false;
    for (const std::string& name : *names) {
      const auto parsed = snapshot_name::parse(name);
      if (parsed && parsed->kind == snapshot_file_kind::partial &&
          (parsed->index != index || parsed->term != term)) {
        if (auto ec = fs_.remove(detail::snapshot_path(directory_, name))) {
          return detail::snapshot_io_error(ec);
        }
        removed = true;
      }
    }
    if (removed) {
      if (auto ec = fs_.sync_directory(directory_)) return detail::snapshot_io_error(ec);
    }
    return snapshot_writer<FS>::resume(fs_, directory_, header_of(index, term, metadata),
                                       keep_old_);
  }

  /// Removes the .part file of (index, term), if there is one.
  std::error_code discard_partial(std::uint64_t index, std::uint64_t term) {
    return remove_file(snapshot_name{index, term, snapshot_file_kind::partial});
  }

  /// Removes the committed snapshot (index, term), if there is one (e.g. one
  /// that open_newest() skipped, once an operator has looked at it).
  std::error_code remove(std::uint64_t index, std::uint64_t term) {
    return remove_file(snapshot_name{index, term, snapshot_file_kind::committed});
  }

  /// Removes the committed snapshots and .part files whose index is below
  /// `index`, then syncs the directory.
  std::error_code remove_older_than(std::uint64_t index) {
    auto names = fs_.list(directory_);
    if (!names) return detail::snapshot_io_error(names.error());
    bool removed = false;
    for (const std::string& name : *names) {
      const auto parsed = snapshot_name::parse(name);
      if (parsed && parsed->kind != snapshot_file_kind::temporary && parsed->index < index) {
        if (auto ec = fs_.remove(detail::snapshot_path(directory_, name))) {
          return detail::snapshot_io_error(ec);
        }
        removed = true;
      }
    }
    return removed ? detail::snapshot_io_error(fs_.sync_directory(directory_)) : std::error_code{};
  }

 private:
  static snapshot_header header_of(std::uint64_t index, std::uint64_t term,
                                   std::span<const std::byte> metadata) {
    snapshot_header header;
    header.index = index;
    header.term = term;
    header.metadata.assign(metadata.begin(), metadata.end());
    return header;
  }

  std::error_code remove_file(const snapshot_name& name) {
    if (auto ec = fs_.remove(detail::snapshot_path(directory_, name.str()))) {
      if (ec == std::errc::no_such_file_or_directory) return {};
      return detail::snapshot_io_error(ec);
    }
    return detail::snapshot_io_error(fs_.sync_directory(directory_));
  }

  std::string parent_directory() const {
    std::string parent = directory_;
    while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
    const auto slash = parent.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return parent.substr(0, slash);
  }

  FS fs_;
  std::string directory_;
  std::size_t keep_old_;
};

}  // namespace keel::wal
