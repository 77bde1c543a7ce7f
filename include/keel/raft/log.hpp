// raft_log: the log as the Raft core sees it, the durable part read through
// the storage policy and the unstable tail held in memory, with the commit and
// apply cursors.
//
// Invariants: applied <= committed <= last_index(); first_index() - 1 <=
// applied (a snapshot is never behind what was applied).
//
// Thread safety: none; owned by one raft instance.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "keel/raft/storage.hpp"
#include "keel/raft/unstable.hpp"

namespace keel::raft {

inline constexpr std::uint64_t no_limit = std::numeric_limits<std::uint64_t>::max();

template <log_storage Storage>
class raft_log {
 public:
  /// max_committed_bytes bounds the payload of committed entries per ready.
  raft_log(const Storage& storage, std::uint64_t max_committed_bytes)
      : storage_(&storage),
        unstable_(storage.last_index() + 1),
        max_committed_bytes_(max_committed_bytes) {
    const std::uint64_t first = storage.first_index();
    committed_ = first - 1;
    applied_ = first - 1;
  }

  std::uint64_t first_index() const {
    if (auto i = unstable_.maybe_first_index()) return *i;
    return storage_->first_index();
  }

  std::uint64_t last_index() const {
    if (auto i = unstable_.maybe_last_index()) return *i;
    return storage_->last_index();
  }

  /// Term of entry i, or an error (compacted / unavailable).
  result<std::uint64_t> term(std::uint64_t i) const {
    if (auto t = unstable_.maybe_term(i)) return *t;
    // The valid range is [first_index() - 1, last_index()].
    if (i < first_index() - 1) return errc::compacted;
    if (i > last_index()) return errc::unavailable;
    return storage_->term(i);
  }

  /// Term of entry i, or 0 when it is not in the log.
  std::uint64_t term_or_zero(std::uint64_t i) const { return term(i).value_or(0); }
  std::uint64_t last_term() const { return term_or_zero(last_index()); }

  bool match_term(std::uint64_t i, std::uint64_t t) const {
    auto got = term(i);
    return got && *got == t;
  }

  /// True if a log ending at (last_index, last_term) is at least as
  /// up-to-date as ours (Raft §5.4.1).
  bool is_up_to_date(std::uint64_t last_index, std::uint64_t last_term) const {
    const std::uint64_t my_term = this->last_term();
    return last_term > my_term || (last_term == my_term && last_index >= this->last_index());
  }

  /// Follower side of append: if (index, log_term) matches, appends ents
  /// (truncating a conflicting suffix) and advances commit; returns the
  /// index of the last new entry, or nullopt on mismatch.
  std::optional<std::uint64_t> maybe_append(std::uint64_t index, std::uint64_t log_term,
                                            std::uint64_t committed, std::vector<entry>&& ents) {
    if (!match_term(index, log_term)) return std::nullopt;
    const std::uint64_t last_new = index + ents.size();
    const std::uint64_t conflict = find_conflict(ents);
    if (conflict != 0) {
      // Requires: never overwrite committed entries (a leader bug otherwise).
      if (conflict <= committed_) return std::nullopt;
      ents.erase(ents.begin(), ents.begin() + static_cast<std::ptrdiff_t>(conflict - (index + 1)));
      append_owned(std::move(ents));
    }
    commit_to(std::min(committed, last_new));
    return last_new;
  }

  /// Appends to the unstable tail; returns the new last index.
  std::uint64_t append(std::span<const entry> ents) {
    if (ents.empty()) return last_index();
    unstable_.truncate_and_append(ents);
    return last_index();
  }

  /// Leader's own proposals: the entries are moved in.
  std::uint64_t append_owned(std::vector<entry>&& ents) {
    if (ents.empty()) return last_index();
    if (ents.front().index == unstable_.offset() + unstable_.entries().size()) {
      unstable_.append_owned(std::move(ents));
    } else {
      unstable_.truncate_and_append(ents);
    }
    return last_index();
  }

  /// The first index of ents that conflicts with (or extends) the log, or 0
  /// if all of ents are already present.
  std::uint64_t find_conflict(std::span<const entry> ents) const {
    for (const entry& e : ents) {
      if (!match_term(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /// Fast backtracking (etcd's findConflictByTerm): the largest index <= i
  /// whose term is <= t. Used by both sides to skip whole terms at once.
  std::pair<std::uint64_t, std::uint64_t> find_conflict_by_term(std::uint64_t i,
                                                                std::uint64_t t) const {
    for (; i > 0; --i) {
      auto our = term(i);
      if (!our) return {i, 0};  // Compacted: cannot look further.
      if (*our <= t) return {i, *our};
    }
    return {0, 0};
  }

  /// Entries not yet durable.
  const std::vector<entry>& unstable_entries() const { return unstable_.entries(); }
  const std::optional<raft::snapshot>& unstable_snapshot() const {
    return unstable_.pending_snapshot();
  }

  bool has_next_committed() const {
    const std::uint64_t lo = std::max(applied_ + 1, first_index());
    return committed_ + 1 > lo;
  }

  /// Committed entries not yet applied, bounded by max_committed_bytes.
  std::vector<entry> next_committed() const {
    const std::uint64_t lo = std::max(applied_ + 1, first_index());
    if (committed_ + 1 <= lo) return {};
    auto ents = slice(lo, committed_ + 1, max_committed_bytes_);
    return ents ? std::move(*ents) : std::vector<entry>{};
  }

  /// Entries [lo, hi) with total payload at most max_bytes (at least one).
  result<std::vector<entry>> slice(std::uint64_t lo, std::uint64_t hi,
                                   std::uint64_t max_bytes) const {
    if (lo > hi) return errc::index_out_of_range;
    if (lo < first_index()) return errc::compacted;
    if (hi > last_index() + 1) return errc::unavailable;
    std::vector<entry> out;
    if (lo == hi) return out;
    const std::uint64_t uoff = unstable_.offset();
    if (lo < uoff) {
      auto stored = storage_->entries(lo, std::min(hi, uoff), max_bytes);
      if (!stored) return stored.error();
      out = std::move(*stored);
      if (hi > uoff) out.reserve(std::min<std::uint64_t>(hi - lo, 1024));
      // Storage stopped early because of the size limit.
      if (out.size() < std::min(hi, uoff) - lo) return out;
    }
    if (hi > uoff) {
      if (out.empty()) out.reserve(std::min<std::uint64_t>(hi - std::max(lo, uoff), 1024));
      std::uint64_t bytes = 0;
      for (const entry& e : out) bytes += payload_size(e);
      for (const entry& e : unstable_.slice(std::max(lo, uoff), hi)) {
        bytes += payload_size(e);
        if (!out.empty() && bytes > max_bytes) break;
        out.push_back(e);
      }
    }
    return out;
  }

  /// Entries from i to the end, bounded by max_bytes.
  result<std::vector<entry>> entries_from(std::uint64_t i, std::uint64_t max_bytes) const {
    if (i > last_index()) return std::vector<entry>{};
    return slice(i, last_index() + 1, max_bytes);
  }

  /// Commits up to max_index if that entry has term t (only current-term
  /// entries are committed by counting replicas, Raft §5.4.2).
  bool maybe_commit(std::uint64_t max_index, std::uint64_t t) {
    if (max_index > committed_ && term_or_zero(max_index) == t) {
      commit_to(max_index);
      return true;
    }
    return false;
  }

  void commit_to(std::uint64_t c) {
    if (c <= committed_) return;
    // A commit index beyond our log comes from a corrupted or buggy leader;
    // clamp rather than believe it (the leader resends later).
    committed_ = std::min(c, last_index());
  }

  void applied_to(std::uint64_t i) {
    if (i == 0) return;
    assert(i <= committed_ && i >= applied_ && "applied index out of range");
    applied_ = i;
  }

  void stable_to(std::uint64_t i, std::uint64_t t) { unstable_.stable_to(i, t); }
  void stable_snap_to(std::uint64_t i) { unstable_.stable_snap_to(i); }

  result<raft::snapshot> snapshot() const {
    if (const auto& s = unstable_.pending_snapshot()) return *s;
    return storage_->snapshot();
  }

  /// Replaces the log by a snapshot (follower installs it).
  void restore(raft::snapshot s) {
    committed_ = s.metadata.index;
    unstable_.restore(std::move(s));
  }

  std::uint64_t committed() const { return committed_; }
  std::uint64_t applied() const { return applied_; }
  /// Index of the last entry that the node layer made durable.
  std::uint64_t last_stable_index() const { return unstable_.offset() - 1; }
  const Storage& storage() const { return *storage_; }

  /// Sets the cursors after restart (commit from the hard state, applied from config).
  void set_committed(std::uint64_t c) { committed_ = c; }
  void set_applied(std::uint64_t a) { applied_ = a; }

 private:
  const Storage* storage_;
  unstable unstable_;
  std::uint64_t committed_ = 0;
  std::uint64_t applied_ = 0;
  std::uint64_t max_committed_bytes_;
};

}  // namespace keel::raft
