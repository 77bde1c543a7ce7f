// The store of a stopped node, rebuilt offline from its data directory the
// way a replica recovers it (replica::open, load_snapshot, apply): the WAL
// is recovered (wal::recover), the store snapshot the WAL starts from is
// read from its snapshot file, then every committed entry after it is
// applied: store actions (node::decode_actions) put and remove objects,
// whole or not at all, refused on the same version checks a replica makes;
// conf changes and leader no-ops change no object.
//
// Unlike a replica, keelctl does not know the store's types: objects stay
// encoded bytes, keyed by table and id, and `identify` (object_schema's)
// reads an object's id and version. Where it cannot read a version, the
// base-version check is skipped and counted in `unchecked`.
//
// Thread safety: uses only its arguments.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "keel/node/store_actions.hpp"
#include "keel/wal/recovery.hpp"
#include "keel/wal/snapshot_store.hpp"
#include "keelctl/data_dir.hpp"
#include "keelctl/object_printer.hpp"
#include "keelctl/progress.hpp"
#include "keelctl/store_stream.hpp"
#include "keelctl/text.hpp"

namespace keelctl {

/// A table's objects: id -> encoded object.
using object_map = std::map<std::string, std::string, std::less<>>;

/// The rebuilt store.
struct store_image {
  std::uint64_t snapshot_index = 0;
  std::uint64_t snapshot_term = 0;
  /// The last committed entry applied: the store's version.
  std::uint64_t applied = 0;
  std::uint64_t entries_applied = 0;
  /// Entries a replica refuses too (a conflict, another index): no-ops.
  std::uint64_t entries_refused = 0;
  std::uint64_t unchecked = 0;
  std::map<std::string, object_map, std::less<>> tables{};
};

using identify_fn =
    std::function<std::optional<object_identity>(std::string_view table, std::string_view bytes)>;

namespace detail {

/// Applies one entry's actions, whole or not at all (like a replica): on a
/// refusal the changes made so far are undone.
inline bool apply_entry(store_image& image, const keel::node::decoded_actions& decoded,
                        const identify_fn& identify) {
  using keel::node::action_kind;
  struct undo {
    std::string table;
    std::string id;
    std::optional<std::string> before;
  };
  std::vector<undo> undos;
  std::uint64_t unchecked = 0;
  auto refuse = [&] {
    for (auto u = undos.rbegin(); u != undos.rend(); ++u) {
      object_map& objects = image.tables[u->table];
      if (u->before) {
        objects.insert_or_assign(u->id, std::move(*u->before));
      } else {
        objects.erase(u->id);
      }
    }
    return false;
  };
  for (const auto& a : decoded.actions) {
    object_map& objects = image.tables[std::string(a.table)];
    auto current = objects.find(a.id);
    if (a.kind == action_kind::create) {
      if (current != objects.end()) return refuse();  // errc::exists
    } else {
      if (current == objects.end()) return refuse();  // errc::not_found
      const auto who = identify(a.table, current->second);
      if (who && who->version) {
        if (*who->version != a.base_version) return refuse();  // errc::sequence_conflict
      } else {
        ++unchecked;
      }
    }
    undos.push_back(
        {std::string(a.table), std::string(a.id),
         current == objects.end() ? std::nullopt : std::optional<std::string>(current->second)});
    if (a.kind == action_kind::remove) {
      objects.erase(current);
    } else {
      objects.insert_or_assign(std::string(a.id), std::string(a.object));
    }
  }
  image.unchecked += unchecked;
  return true;
}

}  // namespace detail

/// Rebuilds the store of data directory `dir`; nothing, with `error`, when
/// the WAL does not recover or the snapshot does not read.
inline std::optional<store_image> load_store_image(const std::string& dir,
                                                   const identify_fn& identify, std::string& error,
                                                   std::ostream& err,
                                                   progress_mode mode = progress_mode::off) {
  const data_dirs dirs = locate(dir);
  if (!is_directory(dirs.wal)) {
    error = dirs.wal + ": no such directory";
    return std::nullopt;
  }
  if (error = missing_segments(dirs.wal); !error.empty()) return std::nullopt;
  keel::wal::posix_file_system fs;
  keel::wal::recovery_report report;
  auto rec = keel::wal::recover(fs, dirs.wal, report);
  if (!rec) {
    error = rec.error() == keel::errc::corrupt_wal ? report.describe()
                                                   : dirs.wal + ": " + rec.error().message();
    return std::nullopt;
  }
  const keel::wal::log_state& s = rec->state;
  store_image image;
  const auto& snap = s.snapshot.snapshot;
  image.snapshot_index = snap.metadata.index;
  image.snapshot_term = snap.metadata.term;
  image.applied = snap.metadata.index;

  const std::uint64_t commit = std::min(s.hard_state.commit, s.last_index());
  const std::uint64_t first = std::max(s.first_index(), image.snapshot_index + 1);
  std::uint64_t total = 0;
  for (std::uint64_t i = first; i <= commit; ++i) total += s.slot(i).data.size();

  std::optional<keel::wal::snapshot_reader<keel::wal::posix_file_system>> reader;
  keel::wal::snapshot_store<keel::wal::posix_file_system> files(fs, dirs.snap);
  const std::string snapshot_path = files.path_of(snap.metadata.index, snap.metadata.term);
  if (snap.data == snapshot_in_file) {
    auto opened = files.open(snap.metadata.index, snap.metadata.term);
    if (!opened) {
      error = snapshot_path + ": " + opened.error().message();
      return std::nullopt;
    }
    reader.emplace(std::move(*opened));
    total += reader->size();
  }
  progress bar(err, mode, "store", total);
  std::uint64_t done = 0;
  if (reader) {
    std::uint64_t position = 0;
    std::string problem;  // Why an object was refused, when it was.
    std::string previous_id;
    auto walked = walk_store_snapshot(
        [&](std::span<std::byte> out) {
          auto n = reader->read(out);
          if (n) bar.update(done = position += *n);
          return n;
        },
        [&](std::string_view table, std::uint64_t) {
          image.tables[std::string(table)];
          previous_id.clear();
        },
        [&](std::string_view table, std::string_view bytes) -> std::error_code {
          auto who = identify(table, bytes);
          if (!who || who->id.empty()) {
            problem = "table " + std::string(table) +
                      ": an object that does not parse as the table's type or whose id cannot "
                      "be read (give its type: --descriptor-set, --type)";
            return keel::errc::invalid_object;
          }
          // A store writes each table in id order; anything else is no
          // snapshot a store wrote.
          if (!previous_id.empty() && who->id <= previous_id) {
            problem = "table " + std::string(table) + ": object " + json_string(who->id) +
                      " comes after " + json_string(previous_id) + " (ids must increase)";
            return keel::errc::corrupt_snapshot;
          }
          previous_id = who->id;
          image.tables[std::string(table)].insert_or_assign(who->id, std::string(bytes));
          return {};
        },
        snap.metadata.index);
    if (!walked) {
      error = snapshot_path + ": " + (problem.empty() ? walked.error().message() : problem);
      return std::nullopt;
    }
  }
  for (std::uint64_t i = first; i <= commit; ++i) {
    const keel::wal::entry_slot& e = s.slot(i);
    if (!e.cached) {
      error = strf("entry %" PRIu64 ": payload not loaded", i);
      return std::nullopt;
    }
    bar.update(done += e.data.size());
    image.applied = i;
    if (e.type != keel::raft::entry_type::normal || e.data.empty()) continue;
    auto decoded = keel::node::decode_actions(e.data.view());
    if (!decoded || decoded->version != i || !detail::apply_entry(image, *decoded, identify)) {
      ++image.entries_refused;
    } else {
      ++image.entries_applied;
    }
  }
  bar.finish();
  return image;
}

}  // namespace keelctl
