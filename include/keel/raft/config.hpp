// The Raft core's configuration and its two small policies: where randomness
// comes from (election timeouts) and where log lines go.
//
// Thread safety: plain values.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

#include "keel/raft/read_only.hpp"
#include "keel/raft/types.hpp"

namespace keel::raft {

struct config {
  /// This node's id; never no_node.
  node_id id = no_node;
  /// Ticks without hearing from a leader before a follower campaigns; the
  /// actual timeout is random in [election_tick, 2 * election_tick).
  int election_tick = 10;
  /// Ticks between leader heartbeats. Requires: heartbeat_tick < election_tick.
  int heartbeat_tick = 1;
  /// The last index applied to the state machine before a restart.
  std::uint64_t applied = 0;
  /// Max payload bytes of entries in one append message (at least one entry is sent).
  std::uint64_t max_size_per_msg = 1 << 20;
  /// Max payload bytes of committed entries handed out in one ready.
  std::uint64_t max_committed_size_per_ready = 64 << 20;
  /// Max payload bytes of uncommitted entries on the leader; proposals
  /// beyond it are dropped (0 means unlimited).
  std::uint64_t max_uncommitted_entries_size = 0;
  /// Max append messages in flight to one follower in replicate state.
  std::size_t max_inflight_msgs = 256;
  /// Max payload bytes in flight to one follower (0 means unlimited).
  std::uint64_t max_inflight_bytes = 0;
  /// A leader steps down when it has not heard from a quorum for an election
  /// timeout; followers with a live leader ignore disruptive votes.
  bool check_quorum = true;
  /// Campaign with a pre-vote round first (Raft thesis 9.6).
  bool pre_vote = true;
  read_only_option read_only = read_only_option::safe;
  /// Followers drop proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
};

/// Where a raft node draws its randomness from: `next()` returns a uniformly
/// random 64-bit value. Deterministic policies make runs replayable.
template <class R>
concept random_source = requires(R r) {
  { r.next() } -> std::same_as<std::uint64_t>;
};

/// The default randomness: splitmix64, seeded from the node id unless given a
/// seed, so every run with the same seeds replays exactly.
class splitmix_random {
 public:
  explicit splitmix_random(std::uint64_t seed = 0) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

enum class log_level : std::uint8_t { debug, info, warn, error };

/// Where a raft node's log lines go. `enabled(level)` lets raft skip building
/// a line nobody reads.
template <class L>
concept logger = requires(L l, log_level level, std::string_view line) {
  { l.enabled(level) } -> std::same_as<bool>;
  l.log(level, line);
};

/// The default logger: silent, and free because enabled() is constexpr false.
struct null_logger {
  static constexpr bool enabled(log_level) { return false; }
  static void log(log_level, std::string_view) {}
};

}  // namespace keel::raft
