// The state a WAL's records describe, and the one place that says how each
// record changes it: recovery replays the records of every segment through
// it, and the live WAL applies its own appends through it, so the two
// cannot disagree.
//
// The log is kept as etcd-io/raft's MemoryStorage keeps it: an anchor (the
// index and term of the entry before the first one held: the last
// compaction or installed snapshot) and the entries after it. Each entry
// also knows where its record is on disk, so that only the newest ones
// need their payload in memory: evict() drops the payloads of the oldest
// until the rest fit a budget, and the WAL reads those back from their
// segments. Evicted entries always precede cached ones.
//
// Thread safety: none; the WAL serializes access.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "keel/bytes.hpp"
#include "keel/raft/types.hpp"
#include "keel/wal/record.hpp"

namespace keel::wal {

/// Where an entry's record is.
struct record_location {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

/// One entry of the log: its term and type always, its payload while cached.
struct entry_slot {
  std::uint64_t term = 0;
  raft::entry_type type = raft::entry_type::normal;
  bool cached = true;
  record_location location{};
  keel::bytes data{};
};

struct log_state {
  compaction_point anchor{};
  std::deque<entry_slot> entries{};
  raft::hard_state hard_state{};
  snapshot_marker snapshot{};
  std::optional<wal_metadata> metadata{};
  bool anchor_unknown = false;     ///< Set by restart_at until a compaction point covers it.
  std::uint64_t cached_bytes = 0;  ///< Payload bytes of the cached entries.
  std::size_t evicted = 0;         ///< entries[0, evicted) have no payload in memory.

  std::uint64_t first_index() const noexcept { return anchor.index + 1; }
  std::uint64_t last_index() const noexcept { return anchor.index + entries.size(); }

  /// The term of entry i, if it is the anchor or held.
  std::optional<std::uint64_t> term(std::uint64_t i) const noexcept {
    if (i == anchor.index) return anchor.term;
    if (i < anchor.index || i > last_index()) return {};
    return entries[i - anchor.index - 1].term;
  }

  /// Requires: first_index() <= i <= last_index().
  const entry_slot& slot(std::uint64_t i) const noexcept { return entries[i - anchor.index - 1]; }

  /// Entry i as raft sees it. Requires: held and cached.
  raft::entry entry(std::uint64_t i) const {
    const entry_slot& s = slot(i);
    return raft::entry{.term = s.term, .index = i, .type = s.type, .data = s.data};
  }

  /// Gives entry i its payload back. Requires: every entry after i gets its
  /// payload back too (recovery loads a suffix of the log).
  void cache(std::uint64_t i, keel::bytes data) {
    entry_slot& s = entries[i - anchor.index - 1];
    if (!s.cached) cached_bytes += data.size();
    s.data = std::move(data);
    s.cached = true;
    evicted = std::min<std::size_t>(evicted, i - anchor.index - 1);
  }

  /// Drops the payloads of the oldest entries until the cached ones take at
  /// most `budget` bytes.
  void evict(std::uint64_t budget) noexcept {
    while (cached_bytes > budget && evicted < entries.size()) {
      entry_slot& s = entries[evicted++];
      cached_bytes -= s.data.size();
      s.data = {};
      s.cached = false;
    }
  }

  /// An entry: below the anchor it is ignored (compacted), at or below the
  /// last index it replaces the suffix from its index (Raft's overwrite);
  /// false if it would leave a gap. Recovery passes cached = false: the
  /// payload stays on disk until it loads the newest ones (cache()).
  bool apply(const raft::entry& e, const record_location& where = {}, bool cached = true) {
    if (e.index <= anchor.index) return true;
    if (e.index > last_index() + 1) return false;
    truncate(e.index - anchor.index - 1);
    push(e, where, cached);
    return true;
  }

  /// Recovery, first entry of the oldest segment kept: the entries before
  /// it went with released segments, so the log restarts at it. The anchor's
  /// term is unknown until the compaction point that covers it is replayed.
  void restart_at(const raft::entry& e, const record_location& where = {}, bool cached = true) {
    truncate(0);
    anchor = {e.index - 1, 0};
    anchor_unknown = true;
    push(e, where, cached);
  }

  void apply(const raft::hard_state& hs) noexcept { hard_state = hs; }
  void apply(const wal_metadata& m) noexcept { metadata = m; }

  void apply(const snapshot_marker& m) {
    snapshot = m;
    snapshot.replaces_log = false;  // Once applied, it is a plain marker.
    if (m.replaces_log) {
      truncate(0);
      anchor = {m.snapshot.metadata.index, m.snapshot.metadata.term};
      anchor_unknown = false;
    }
  }

  void apply(const compaction_point& c) {
    if (c.index < anchor.index || (c.index == anchor.index && !anchor_unknown)) return;
    anchor_unknown = false;
    const std::size_t n = c.index >= last_index() ? entries.size() : c.index - anchor.index;
    for (std::size_t k = 0; k < n; ++k) cached_bytes -= entries[k].data.size();
    entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(n));
    evicted -= std::min(evicted, n);
    anchor = c;
  }

 private:
  /// Keeps the first n entries.
  void truncate(std::size_t n) noexcept {
    while (entries.size() > n) {
      cached_bytes -= entries.back().data.size();
      entries.pop_back();
    }
    evicted = std::min(evicted, n);
  }

  void push(const raft::entry& e, const record_location& where, bool cached) {
    entries.push_back(entry_slot{
        .term = e.term, .type = e.type, .cached = cached, .location = where, .data = e.data});
    if (cached) {
      cached_bytes += e.data.size();
    } else {
      // Requires: every entry before it is evicted too (recovery caches none).
      evicted = entries.size();
    }
  }
};

}  // namespace keel::wal
