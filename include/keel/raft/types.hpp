// The values the Raft core consumes and produces: log entries, hard state,
// configuration state, snapshots, messages. Plain aggregates with no
// behaviour beyond size accounting, so every layer above can copy, encode and
// compare them freely.
//
// Thread safety: plain values; the usual rules for standard containers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/bytes.hpp"

namespace keel::raft {

/// Identifies a node of the cluster. Zero means "none".
using node_id = std::uint64_t;
inline constexpr node_id no_node = 0;

enum class entry_type : std::uint8_t {
  normal,       ///< Application data (an empty one is the leader's no-op).
  conf_change,  ///< An encoded conf_change (see conf_change.hpp).
};

/// One record of the replicated log.
struct entry {
  std::uint64_t term = 0;
  std::uint64_t index = 0;
  entry_type type = entry_type::normal;
  keel::bytes data{};  ///< Shared and immutable: copying an entry never copies its payload.

  friend bool operator==(const entry&, const entry&) = default;
};

/// Bytes an entry costs against size limits (etcd counts the payload only).
inline std::uint64_t payload_size(const entry& e) noexcept { return e.data.size(); }
/// Bytes an entry costs in a message: payload plus a fixed header estimate.
inline std::uint64_t entry_size(const entry& e) noexcept { return e.data.size() + 24; }

/// The state a node must make durable before it acts on it.
struct hard_state {
  std::uint64_t term = 0;
  node_id vote = no_node;
  std::uint64_t commit = 0;

  bool empty() const noexcept { return term == 0 && vote == no_node && commit == 0; }
  friend bool operator==(const hard_state&, const hard_state&) = default;
};

/// The membership of the cluster as of some log index.
struct conf_state {
  std::vector<node_id> voters{};
  std::vector<node_id> voters_outgoing{};  ///< Non-empty while in a joint configuration.
  std::vector<node_id> learners{};
  std::vector<node_id> learners_next{};  ///< Voters demoted to learners when the joint config ends.
  bool auto_leave = false;

  friend bool operator==(const conf_state&, const conf_state&) = default;
};

struct snapshot_metadata {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  conf_state conf{};

  friend bool operator==(const snapshot_metadata&, const snapshot_metadata&) = default;
};

/// A snapshot as raft sees it: its metadata and an opaque handle. The handle is
/// whatever the storage policy returned (a file name, an id); the node layer
/// resolves it to bytes, so a snapshot of any size can be streamed later.
struct snapshot {
  snapshot_metadata metadata{};
  std::string data{};

  bool empty() const noexcept { return metadata.index == 0; }
  friend bool operator==(const snapshot&, const snapshot&) = default;
};

enum class message_type : std::uint8_t {
  // Local: produced by the node itself, never valid from the network.
  hup,              ///< Start an election.
  beat,             ///< Leader: send heartbeats.
  prop,             ///< A proposal (also forwarded from followers to the leader).
  unreachable,      ///< The transport could not reach a peer.
  snap_status,      ///< The node layer reports the outcome of sending a snapshot.
  check_quorum,     ///< Leader: verify that a quorum is still active.
  transfer_leader,  ///< Ask the leader to hand leadership to `from`.
  read_index,       ///< A linearizable read request (also forwarded to the leader).
  // Network.
  app,
  app_resp,
  vote,
  vote_resp,
  snap,
  heartbeat,
  heartbeat_resp,
  timeout_now,
  read_index_resp,
  pre_vote,
  pre_vote_resp,
};
inline constexpr int message_type_count = static_cast<int>(message_type::pre_vote_resp) + 1;

/// True for message types that a peer may legitimately send over the network.
/// prop, read_index and transfer_leader travel between nodes when forwarded.
constexpr bool is_network_message(message_type t) noexcept {
  switch (t) {
    case message_type::hup:
    case message_type::beat:
    case message_type::unreachable:
    case message_type::snap_status:
    case message_type::check_quorum:
      return false;
    default:
      return static_cast<int>(t) < message_type_count;
  }
}

constexpr bool is_response(message_type t) noexcept {
  return t == message_type::app_resp || t == message_type::vote_resp ||
         t == message_type::heartbeat_resp || t == message_type::pre_vote_resp ||
         t == message_type::read_index_resp || t == message_type::unreachable;
}

constexpr const char* to_string(message_type t) noexcept {
  constexpr const char* names[] = {"hup",
                                   "beat",
                                   "prop",
                                   "unreachable",
                                   "snap_status",
                                   "check_quorum",
                                   "transfer_leader",
                                   "read_index",
                                   "app",
                                   "app_resp",
                                   "vote",
                                   "vote_resp",
                                   "snap",
                                   "heartbeat",
                                   "heartbeat_resp",
                                   "timeout_now",
                                   "read_index_resp",
                                   "pre_vote",
                                   "pre_vote_resp"};
  auto i = static_cast<int>(t);
  return i < message_type_count ? names[i] : "invalid";
}

/// A message between raft nodes (or from the node layer to its own raft).
struct message {
  message_type type = message_type::hup;
  node_id to = no_node;
  node_id from = no_node;
  std::uint64_t term = 0;
  std::uint64_t log_term = 0;  ///< Term of the entry at `index` (app), or of the last entry (vote).
  std::uint64_t index = 0;
  std::vector<entry> entries{};
  std::uint64_t commit = 0;
  std::optional<raft::snapshot> snapshot{};
  bool reject = false;
  std::uint64_t reject_hint = 0;
  std::string context{};  ///< read_index context, or campaign kind for elections.
  /// Set on outgoing messages that may be sent only after the ready that
  /// carried them was made durable (entries, hard state, snapshot). Messages
  /// without it may go out in parallel with the write (Raft thesis 10.2.1).
  bool after_persist = false;

  friend bool operator==(const message&, const message&) = default;
};

enum class state_type : std::uint8_t { follower, candidate, leader, pre_candidate };

constexpr const char* to_string(state_type s) noexcept {
  switch (s) {
    case state_type::follower:
      return "follower";
    case state_type::candidate:
      return "candidate";
    case state_type::leader:
      return "leader";
    case state_type::pre_candidate:
      return "pre-candidate";
  }
  return "invalid";
}

/// Volatile state that the application may want to observe.
struct soft_state {
  node_id lead = no_node;
  state_type raft_state = state_type::follower;

  friend bool operator==(const soft_state&, const soft_state&) = default;
};

/// The answer to a read_index request: reads at or after `index` are
/// linearizable once the state machine has applied `index`.
struct read_state {
  std::uint64_t index = 0;
  std::string request_ctx{};

  friend bool operator==(const read_state&, const read_state&) = default;
};

}  // namespace keel::raft
