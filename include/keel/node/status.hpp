// What a replica tells about itself and its peers: the status API that
// operators read (keelctl status, the demo) and that tests assert on.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "keel/raft/types.hpp"
#include "keel/transport/transport.hpp"

namespace keel::node {

/// One peer as this replica sees it.
struct peer_report {
  raft::node_id id = raft::no_node;
  bool learner = false;
  /// Replication progress, known on the leader only (zero elsewhere).
  std::uint64_t match = 0;
  std::uint64_t next = 0;
  /// "probe", "replicate" or "snapshot" on the leader; empty elsewhere.
  std::string progress{};
  /// Heard from since the leader's last check-quorum round.
  bool recent_active = false;
  /// The transport's view: reachability, messages, last error in words.
  transport::peer_status transport{};
};

/// One replica's state.
struct node_status {
  raft::node_id id = raft::no_node;
  std::uint64_t term = 0;
  /// "leader", "follower", "candidate" or "pre-candidate".
  std::string role{};
  raft::node_id leader = raft::no_node;
  std::uint64_t commit = 0;
  std::uint64_t applied = 0;
  /// The index of the newest snapshot this replica holds.
  std::uint64_t snapshot_index = 0;
  std::vector<raft::node_id> voters{};
  std::vector<raft::node_id> learners{};
  std::vector<peer_report> peers{};
  /// Writes and read barriers waiting for their outcome.
  std::size_t pending_writes = 0;
  std::size_t pending_reads = 0;
  /// Why this replica stopped (storage failure, removal), if it did.
  std::error_code failure{};
};

}  // namespace keel::node
