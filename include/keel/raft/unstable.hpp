// unstable: the tail of the log that raft has accepted but the node layer has
// not yet made durable, plus a snapshot waiting to be persisted. Entries move
// out of here when advance() reports them stable.
//
// Invariant: if entries_ is non-empty, entries_[k].index == offset_ + k; a
// pending snapshot_ has index offset_ - 1.
//
// Thread safety: none; owned by one raft instance.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "keel/raft/types.hpp"

namespace keel::raft {

class unstable {
 public:
  explicit unstable(std::uint64_t offset = 1) : offset_(offset) {}

  /// First index if a snapshot is pending (its index + 1).
  std::optional<std::uint64_t> maybe_first_index() const {
    if (snapshot_) return snapshot_->metadata.index + 1;
    return std::nullopt;
  }

  std::optional<std::uint64_t> maybe_last_index() const {
    if (!entries_.empty()) return offset_ + entries_.size() - 1;
    if (snapshot_) return snapshot_->metadata.index;
    return std::nullopt;
  }

  std::optional<std::uint64_t> maybe_term(std::uint64_t i) const {
    if (i < offset_) {
      if (snapshot_ && snapshot_->metadata.index == i) return snapshot_->metadata.term;
      return std::nullopt;
    }
    auto last = maybe_last_index();
    if (!last || i > *last) return std::nullopt;
    return entries_[i - offset_].term;
  }

  /// Entries up to (i, t) are durable: drop them.
  void stable_to(std::uint64_t i, std::uint64_t t) {
    auto gt = maybe_term(i);
    // Only if the entry is still ours: it may have been replaced meanwhile.
    if (!gt || *gt != t || i < offset_) return;
    entries_.erase(entries_.begin(),
                   entries_.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset_));
    offset_ = i + 1;
  }

  void stable_snap_to(std::uint64_t i) {
    if (snapshot_ && snapshot_->metadata.index == i) snapshot_.reset();
  }

  void restore(snapshot s) {
    offset_ = s.metadata.index + 1;
    entries_.clear();
    snapshot_ = std::move(s);
  }

  /// Appends ents, truncating whatever they overwrite. Requires: ents is
  /// non-empty and contiguous.
  void truncate_and_append(std::span<const entry> ents) {
    const std::uint64_t after = ents.front().index;
    if (after == offset_ + entries_.size()) {
      // Plain append.
    } else if (after <= offset_) {
      // Replace everything unstable: the log is truncated below it.
      offset_ = after;
      entries_.clear();
    } else {
      entries_.resize(after - offset_);
    }
    entries_.insert(entries_.end(), ents.begin(), ents.end());
  }

  /// Moves-append (proposals on the leader).
  void append_owned(std::vector<entry>&& ents) {
    if (entries_.empty()) {
      offset_ = ents.front().index;
      entries_ = std::move(ents);
      return;
    }
    for (auto& e : ents) entries_.push_back(std::move(e));
  }

  /// Entries [lo, hi). Requires: offset_ <= lo <= hi <= offset_ + size.
  std::span<const entry> slice(std::uint64_t lo, std::uint64_t hi) const {
    return std::span<const entry>(entries_).subspan(lo - offset_, hi - lo);
  }

  const std::vector<entry>& entries() const { return entries_; }
  const std::optional<snapshot>& pending_snapshot() const { return snapshot_; }
  std::uint64_t offset() const { return offset_; }

 private:
  std::optional<snapshot> snapshot_;
  std::vector<entry> entries_;
  std::uint64_t offset_;
};

}  // namespace keel::raft
