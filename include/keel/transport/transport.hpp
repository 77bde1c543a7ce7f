// The transport policy: how a node hands raft messages to its peers and how
// messages for it come back. A node gives its transport a `handler` (two
// callbacks) when it connects, and drives it through the `transport` concept
// below: send, add_peer, remove_peer, status. The in-process network
// (in_process.hpp) and the gRPC adapter (adapters/grpc/) implement it.
//
// Contract of every transport:
//  - send never blocks on the network and never calls the node's handler from
//    inside send (a handler call may re-enter the node, which may hold its own
//    locks while it sends). Delivery and failure reports come later, from
//    whatever thread the transport runs them on.
//  - A message may be lost, duplicated or reordered across links, as on a real
//    network; Raft tolerates all three. A loss the transport cannot know about
//    (a packet dropped on the wire, a partition) is silent. A send the
//    transport knows failed (no connection to the peer, a full send queue) is
//    reported through handler::unreachable, as etcd's rafthttp reports
//    ReportUnreachable, so raft probes the peer instead of streaming to it.
//  - Snapshot data is not streamed here: a snap message carries the
//    snapshot's handle only; the chunker (a later layer) moves the bytes.
//
// Thread safety: a transport's members may be called from several threads.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "keel/raft/types.hpp"

namespace keel::transport {

/// What a node gives its transport: where to hand what arrives for it.
struct handler {
  /// A message for this node arrived. May be called from any thread.
  std::function<void(raft::message)> deliver;
  /// A message to this peer could not be sent (no connection, a full queue);
  /// the node reports it to raft (raw_node::report_unreachable). Optional.
  std::function<void(raft::node_id)> unreachable;
};

/// What a transport knows about one peer, for the node's status API.
struct peer_status {
  /// False after a send the transport knew failed; true again after the next
  /// send it accepted.
  bool reachable = true;
  /// The last transport error with this peer, in words; kept after recovery.
  std::string last_error{};
  /// Messages to this peer the transport accepted.
  std::uint64_t sent = 0;
  /// Messages to this peer the transport knew it dropped (silent losses on
  /// the network are not counted here: the sender cannot see them).
  std::uint64_t dropped = 0;

  friend bool operator==(const peer_status&, const peer_status&) = default;
};

/// The transport policy.
///  - `t.send(std::move(m))`: queues m for peer m.to and returns without
///    blocking on the network. A send to a node that is not a peer (never
///    added, or removed) is dropped and counted.
///  - `t.add_peer(id, address)`: makes id a peer at address, or updates the
///    address of an existing peer.
///  - `t.remove_peer(id)`: id is no longer a peer; later sends to it are
///    dropped and counted.
///  - `t.status(id)`: the transport's view of peer id (see peer_status).
template <class T>
concept transport = requires(T& t, raft::message m, raft::node_id id, const std::string& address) {
  t.send(std::move(m));
  t.add_peer(id, address);
  t.remove_peer(id);
  { t.status(id) } -> std::same_as<peer_status>;
};

}  // namespace keel::transport
