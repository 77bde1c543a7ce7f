// read_only: the leader's queue of pending ReadIndex requests in safe mode
// (Raft thesis 6.4). Each request remembers the commit index at the time it
// arrived; it is answered once a quorum has acknowledged a heartbeat that
// carried its context, proving that no newer leader existed then.
//
// Invariant: queue_ holds the contexts of pending_ in arrival order.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "keel/raft/types.hpp"

namespace keel::raft {

enum class read_only_option : std::uint8_t {
  /// Confirm leadership with a heartbeat round per batch of reads.
  safe,
  /// Trust the leader lease (needs check_quorum and bounded clock drift).
  lease_based,
};

class read_only {
 public:
  struct request {
    message req;  ///< The original read_index message (from may be a follower).
    std::uint64_t index = 0;
    std::set<node_id> acks;
  };

  /// Queues a read at commit index `index`; duplicates of a pending context are ignored.
  void add(std::uint64_t index, message m) {
    std::string ctx = m.entries.empty() ? std::string() : m.entries.front().data.str();
    if (pending_.contains(ctx)) return;
    queue_.push_back(ctx);
    pending_.emplace(std::move(ctx), request{std::move(m), index, {}});
  }

  /// Records that `id` acknowledged the heartbeat carrying ctx; returns the
  /// acknowledgements so far (nullptr if ctx is unknown).
  const std::set<node_id>* ack(node_id id, const std::string& ctx) {
    auto it = pending_.find(ctx);
    if (it == pending_.end()) return nullptr;
    it->second.acks.insert(id);
    return &it->second.acks;
  }

  /// Removes and returns every request up to and including ctx: a quorum
  /// acknowledging ctx also confirms the reads queued before it.
  std::vector<request> advance(const std::string& ctx) {
    std::vector<request> out;
    std::size_t n = 0;
    bool found = false;
    for (; n < queue_.size(); ++n) {
      if (queue_[n] == ctx) {
        found = true;
        ++n;
        break;
      }
    }
    if (!found) return out;
    for (std::size_t i = 0; i < n; ++i) {
      auto node = pending_.extract(queue_.front());
      queue_.pop_front();
      out.push_back(std::move(node.mapped()));
    }
    return out;
  }

  /// Context of the newest pending request ("" if none).
  std::string last_pending() const { return queue_.empty() ? std::string() : queue_.back(); }
  bool empty() const { return queue_.empty(); }
  std::size_t size() const { return queue_.size(); }
  void clear() {
    queue_.clear();
    pending_.clear();
  }

 private:
  std::map<std::string, request> pending_{};
  std::deque<std::string> queue_{};
};

}  // namespace keel::raft
