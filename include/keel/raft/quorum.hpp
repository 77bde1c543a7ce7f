// Quorum arithmetic: majority and joint configurations, the committed index
// they agree on and the outcome of a vote. Pure functions over sorted id sets.
//
// A joint configuration (Raft thesis 4.3) needs a majority of both halves; an
// empty half agrees to everything, so a plain configuration is a joint one
// with an empty outgoing half.
//
// Thread safety: plain values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "keel/raft/types.hpp"

namespace keel::raft {

enum class vote_result : std::uint8_t { pending, lost, won };

/// A sorted set of voter ids.
class majority_config {
 public:
  majority_config() = default;
  explicit majority_config(std::vector<node_id> ids) : ids_(std::move(ids)) {
    std::sort(ids_.begin(), ids_.end());
    ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  }

  bool contains(node_id id) const { return std::binary_search(ids_.begin(), ids_.end(), id); }
  void insert(node_id id) {
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it == ids_.end() || *it != id) ids_.insert(it, id);
  }
  void erase(node_id id) {
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it != ids_.end() && *it == id) ids_.erase(it);
  }
  std::size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }
  const std::vector<node_id>& ids() const { return ids_; }
  auto begin() const { return ids_.begin(); }
  auto end() const { return ids_.end(); }

  /// The largest index that a majority has acknowledged. acked(id) returns
  /// the acknowledged index of id, or nothing (0) if unknown.
  template <class Acked>
  std::uint64_t committed_index(Acked&& acked) const {
    if (ids_.empty()) return std::numeric_limits<std::uint64_t>::max();
    // Small configurations are the norm: sort on the stack.
    std::uint64_t stack[7];
    std::vector<std::uint64_t> heap;
    std::uint64_t* v = stack;
    if (ids_.size() > 7) {
      heap.resize(ids_.size());
      v = heap.data();
    }
    for (std::size_t i = 0; i < ids_.size(); ++i) v[i] = acked(ids_[i]);
    std::sort(v, v + ids_.size());
    // With n voters, the (n/2 + 1)-th largest value is held by a majority.
    return v[ids_.size() - (ids_.size() / 2 + 1)];
  }

  /// The outcome given votes(id) -> 1 granted, 0 rejected, -1 missing.
  template <class Votes>
  vote_result result(Votes&& votes) const {
    if (ids_.empty()) return vote_result::won;
    std::size_t granted = 0, missing = 0;
    for (node_id id : ids_) {
      const int v = votes(id);
      if (v < 0)
        ++missing;
      else if (v > 0)
        ++granted;
    }
    const std::size_t q = ids_.size() / 2 + 1;
    if (granted >= q) return vote_result::won;
    if (granted + missing >= q) return vote_result::pending;
    return vote_result::lost;
  }

  friend bool operator==(const majority_config&, const majority_config&) = default;

 private:
  std::vector<node_id> ids_;
};

/// Incoming and outgoing majorities; outgoing is empty unless joint.
struct joint_config {
  majority_config incoming;
  majority_config outgoing;

  bool contains(node_id id) const { return incoming.contains(id) || outgoing.contains(id); }
  bool joint() const { return !outgoing.empty(); }

  template <class Acked>
  std::uint64_t committed_index(Acked&& acked) const {
    return std::min(incoming.committed_index(acked), outgoing.committed_index(acked));
  }

  template <class Votes>
  vote_result result(Votes&& votes) const {
    const vote_result a = incoming.result(votes), b = outgoing.result(votes);
    if (a == b) return a;
    if (a == vote_result::lost || b == vote_result::lost) return vote_result::lost;
    return vote_result::pending;
  }

  /// Every voter, sorted, without duplicates.
  std::vector<node_id> ids() const {
    std::vector<node_id> out;
    std::set_union(incoming.begin(), incoming.end(), outgoing.begin(), outgoing.end(),
                   std::back_inserter(out));
    return out;
  }

  friend bool operator==(const joint_config&, const joint_config&) = default;
};

}  // namespace keel::raft
