// progress_tracker: the leader's view of the cluster: the active
// configuration (joint voters, learners), one progress per member, and the
// votes of the current election.
//
// Invariants: every voter and learner has a progress and nothing else has;
// a node is never both voter and learner; learners_next holds outgoing voters
// that become learners when the joint configuration is left.
//
// Thread safety: none.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "keel/raft/progress.hpp"
#include "keel/raft/quorum.hpp"

namespace keel::raft {

/// A configuration: voters (possibly joint), learners, and the auto-leave flag.
struct tracker_config {
  joint_config voters{};
  majority_config learners{};
  majority_config learners_next{};
  bool auto_leave = false;

  raft::conf_state conf_state() const {
    return {.voters = voters.incoming.ids(),
            .voters_outgoing = voters.outgoing.ids(),
            .learners = learners.ids(),
            .learners_next = learners_next.ids(),
            .auto_leave = auto_leave};
  }
  friend bool operator==(const tracker_config&, const tracker_config&) = default;
};

using progress_map = std::map<node_id, progress>;

class progress_tracker {
 public:
  progress_tracker(std::size_t max_inflight, std::uint64_t max_inflight_bytes)
      : max_inflight_(max_inflight), max_inflight_bytes_(max_inflight_bytes) {}

  tracker_config config{};
  progress_map progress{};

  raft::conf_state conf_state() const { return config.conf_state(); }

  /// A single voter and no one else to talk to.
  bool is_singleton() const {
    return config.voters.incoming.size() == 1 && config.voters.outgoing.empty();
  }

  /// The highest index a quorum of voters has durably matched.
  std::uint64_t committed() const {
    return config.voters.committed_index([this](node_id id) -> std::uint64_t {
      auto it = progress.find(id);
      return it == progress.end() ? 0 : it->second.match;
    });
  }

  /// True if a quorum of voters was recently active (check-quorum).
  bool quorum_active() const {
    return config.voters.result([this](node_id id) -> int {
      auto it = progress.find(id);
      if (it == progress.end() || it->second.is_learner) return -1;
      return it->second.recent_active ? 1 : 0;
    }) == vote_result::won;
  }

  std::vector<node_id> voter_nodes() const { return config.voters.ids(); }
  std::vector<node_id> learner_nodes() const { return config.learners.ids(); }
  bool is_member(node_id id) const { return progress.contains(id); }

  void reset_votes() { votes_.clear(); }
  /// Records id's vote if it has not voted yet.
  void record_vote(node_id id, bool granted) { votes_.emplace(id, granted); }

  struct tally {
    std::size_t granted = 0;
    std::size_t rejected = 0;
    vote_result result = vote_result::pending;
  };

  tally tally_votes() const {
    tally t;
    for (const auto& [id, pr] : progress) {
      if (pr.is_learner) continue;
      auto it = votes_.find(id);
      if (it == votes_.end()) continue;
      (it->second ? t.granted : t.rejected)++;
    }
    t.result = config.voters.result([this](node_id id) -> int {
      auto it = votes_.find(id);
      return it == votes_.end() ? -1 : (it->second ? 1 : 0);
    });
    return t;
  }

  std::size_t max_inflight() const { return max_inflight_; }
  std::uint64_t max_inflight_bytes() const { return max_inflight_bytes_; }

 private:
  std::map<node_id, bool> votes_{};
  std::size_t max_inflight_{};
  std::uint64_t max_inflight_bytes_{};
};

}  // namespace keel::raft
