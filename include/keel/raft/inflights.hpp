// inflights: the append messages a leader has sent to one follower and not
// yet seen acknowledged, bounded by count and by payload bytes. This is the
// flow-control window of the replicate state.
//
// Invariant: entries are in increasing index order; count_ <= capacity and
// bytes_ is the sum of their sizes.
//
// Thread safety: none.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace keel::raft {

class inflights {
 public:
  /// max_bytes == 0 means no byte limit.
  explicit inflights(std::size_t capacity, std::uint64_t max_bytes = 0)
      : capacity_(capacity == 0 ? 1 : capacity), max_bytes_(max_bytes) {}

  /// Records a message whose last entry is `index`, carrying `bytes`.
  /// Requires: !full().
  void add(std::uint64_t index, std::uint64_t bytes) {
    assert(!full() && "inflights::add on a full window");
    if (ring_.empty()) ring_.resize(capacity_);
    std::size_t slot = start_ + count_;
    if (slot >= capacity_) slot -= capacity_;
    ring_[slot] = {index, bytes};
    ++count_;
    bytes_ += bytes;
  }

  /// Frees every message whose last index is <= to (acknowledged).
  void free_le(std::uint64_t to) {
    while (count_ > 0 && ring_[start_].index <= to) {
      bytes_ -= ring_[start_].bytes;
      if (++start_ == capacity_) start_ = 0;
      --count_;
    }
    if (count_ == 0) start_ = 0;
  }

  /// Frees the oldest message (its acknowledgement was presumably lost).
  void free_first_one() {
    if (count_ > 0) free_le(ring_[start_].index);
  }

  /// No more messages may be sent until some are acknowledged.
  bool full() const { return count_ == capacity_ || (max_bytes_ != 0 && bytes_ >= max_bytes_); }
  std::size_t count() const { return count_; }
  std::uint64_t bytes() const { return bytes_; }
  void reset() { count_ = start_ = 0, bytes_ = 0; }

 private:
  struct flight {
    std::uint64_t index = 0;
    std::uint64_t bytes = 0;
  };
  std::vector<flight> ring_;  // Allocated on first use: idle peers cost nothing.
  std::size_t start_ = 0;
  std::size_t count_ = 0;
  std::size_t capacity_;
  std::uint64_t bytes_ = 0;
  std::uint64_t max_bytes_;
};

}  // namespace keel::raft
