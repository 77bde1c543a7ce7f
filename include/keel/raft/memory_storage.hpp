// memory_storage: the in-memory log storage policy. Holds the log, the hard
// state and the latest snapshot in memory; tests, benchmarks and nodes that
// keep durability elsewhere use it.
//
// Invariant: entries_[0] is a dummy whose index and term are those of the
// latest snapshot (0, 0 for a fresh log); entries_[k].index ==
// entries_[0].index + k.
//
// Thread safety: none; callers serialize access (raft reads it on the same
// thread that appends to it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "keel/raft/storage.hpp"

namespace keel::raft {

class memory_storage {
 public:
  memory_storage() : entries_(1) {}

  raft::initial_state initial_state() const { return {hard_state_, snapshot_.metadata.conf}; }

  result<std::vector<entry>> entries(std::uint64_t lo, std::uint64_t hi,
                                     std::uint64_t max_bytes) const {
    const std::uint64_t offset = entries_.front().index;
    if (lo <= offset) return errc::compacted;
    if (hi > last_index() + 1 || lo > hi) return errc::unavailable;
    std::vector<entry> out;
    // Bounded: a lagging follower may ask for far more than max_bytes allows.
    out.reserve(std::min<std::uint64_t>(hi - lo, 1024));
    std::uint64_t bytes = 0;
    for (std::uint64_t i = lo; i < hi; ++i) {
      const entry& e = entries_[i - offset];
      bytes += payload_size(e);
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(e);
    }
    return out;
  }

  result<std::uint64_t> term(std::uint64_t i) const {
    const std::uint64_t offset = entries_.front().index;
    if (i < offset) return errc::compacted;
    if (i - offset >= entries_.size()) return errc::unavailable;
    return entries_[i - offset].term;
  }

  std::uint64_t first_index() const { return entries_.front().index + 1; }
  std::uint64_t last_index() const { return entries_.front().index + entries_.size() - 1; }

  result<raft::snapshot> snapshot() const { return snapshot_; }

  /// Persists the hard state.
  void set_hard_state(const raft::hard_state& hs) { hard_state_ = hs; }

  /// Replaces the whole log by a snapshot (a follower installing one).
  std::error_code apply_snapshot(raft::snapshot snap) {
    if (snap.metadata.index <= snapshot_.metadata.index) return errc::snapshot_out_of_date;
    entries_.assign(1, entry{.term = snap.metadata.term, .index = snap.metadata.index});
    snapshot_ = std::move(snap);
    return {};
  }

  /// Records a snapshot taken by the application at index i (<= last
  /// applied), with the configuration cs and the handle data. Entries stay
  /// until compact().
  result<raft::snapshot> create_snapshot(std::uint64_t i, const raft::conf_state& cs,
                                         std::string data) {
    if (i <= snapshot_.metadata.index) return errc::snapshot_out_of_date;
    if (i < entries_.front().index) return errc::compacted;
    if (i > last_index()) return errc::index_out_of_range;
    snapshot_.metadata = {
        .index = i, .term = entries_[i - entries_.front().index].term, .conf = cs};
    snapshot_.data = std::move(data);
    return snapshot_;
  }

  /// Discards entries before `compact_index`; the entry at compact_index
  /// becomes the dummy. Requires a snapshot at or after it for followers.
  std::error_code compact(std::uint64_t compact_index) {
    const std::uint64_t offset = entries_.front().index;
    if (compact_index <= offset) return errc::compacted;
    if (compact_index > last_index()) return errc::index_out_of_range;
    const auto k = static_cast<std::ptrdiff_t>(compact_index - offset);
    entries_.front() = {.term = entries_[k].term, .index = entries_[k].index};
    entries_.erase(entries_.begin() + 1, entries_.begin() + k + 1);
    return {};
  }

  /// Appends entries, truncating any conflicting suffix first. Entries below
  /// the first index are ignored (already compacted).
  std::error_code append(std::vector<entry> ents) {
    if (ents.empty()) return {};
    const std::uint64_t first = first_index();
    if (ents.back().index < first) return {};
    if (ents.front().index > last_index() + 1) return errc::index_out_of_range;
    auto begin = ents.begin();
    if (ents.front().index < first)
      begin += static_cast<std::ptrdiff_t>(first - ents.front().index);
    const std::uint64_t at = begin->index - entries_.front().index;
    entries_.resize(at);
    entries_.insert(entries_.end(), std::make_move_iterator(begin),
                    std::make_move_iterator(ents.end()));
    return {};
  }

  const raft::hard_state& hard_state() const { return hard_state_; }

 private:
  std::vector<entry> entries_;
  raft::hard_state hard_state_;
  raft::snapshot snapshot_;
};

}  // namespace keel::raft
