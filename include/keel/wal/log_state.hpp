// The state a WAL's records describe, and the one place that says how each
// record changes it: recovery replays the records of every segment through
// it, and the live WAL applies its own appends through it, so the two
// cannot disagree.
//
// The log is kept as etcd-io/raft's MemoryStorage keeps it: an anchor (the
// index and term of the entry before the first one held: the last
// compaction or installed snapshot) and the entries after it.
//
// Thread safety: none; the WAL serializes access.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "keel/raft/types.hpp"
#include "keel/wal/record.hpp"

namespace keel::wal {

struct log_state {
  compaction_point anchor{};
  std::deque<raft::entry> entries{};
  raft::hard_state hard_state{};
  snapshot_marker snapshot{};
  std::optional<wal_metadata> metadata{};
  bool anchor_unknown = false;  ///< Set by restart_at until a compaction point covers it.

  std::uint64_t first_index() const noexcept { return anchor.index + 1; }
  std::uint64_t last_index() const noexcept { return anchor.index + entries.size(); }

  /// The term of entry i, if it is the anchor or held.
  std::optional<std::uint64_t> term(std::uint64_t i) const noexcept {
    if (i == anchor.index) return anchor.term;
    if (i < anchor.index || i > last_index()) return {};
    return entries[i - anchor.index - 1].term;
  }

  /// An entry: below the anchor it is ignored (compacted), at or below the
  /// last index it replaces the suffix from its index (Raft's overwrite);
  /// false if it would leave a gap.
  bool apply(const raft::entry& e) {
    if (e.index <= anchor.index) return true;
    if (e.index > last_index() + 1) return false;
    entries.resize(e.index - anchor.index - 1);
    entries.push_back(e);
    return true;
  }

  /// Recovery, first entry of the oldest segment kept: the entries before
  /// it went with released segments, so the log restarts at it. The anchor's
  /// term is unknown until the compaction point that covers it is replayed.
  void restart_at(const raft::entry& e) {
    entries.clear();
    anchor = {e.index - 1, 0};
    anchor_unknown = true;
    entries.push_back(e);
  }

  void apply(const raft::hard_state& hs) noexcept { hard_state = hs; }
  void apply(const wal_metadata& m) noexcept { metadata = m; }

  void apply(const snapshot_marker& m) {
    snapshot = m;
    snapshot.replaces_log = false;  // Once applied, it is a plain marker.
    if (m.replaces_log) {
      entries.clear();
      anchor = {m.snapshot.metadata.index, m.snapshot.metadata.term};
      anchor_unknown = false;
    }
  }

  void apply(const compaction_point& c) {
    if (c.index < anchor.index || (c.index == anchor.index && !anchor_unknown)) return;
    anchor_unknown = false;
    if (c.index >= last_index()) {
      entries.clear();
    } else {
      entries.erase(entries.begin(),
                    entries.begin() + static_cast<std::ptrdiff_t>(c.index - anchor.index));
    }
    anchor = c;
  }
};

}  // namespace keel::wal
