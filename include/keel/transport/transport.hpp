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
//  - Snapshots: a transport that carries whole messages (in_process) gets
//    snap messages with the snapshot's content inline. A transport that
//    streams (it declares `streams_snapshots`, see streaming_transport) gets
//    the snapshot's handle only: it reads the content through
//    handler::open_snapshot piece by piece, writes what it receives through
//    handler::receive_snapshot, delivers the snap message with the handle
//    the sink's commit returned, and reports each outcome to the sender
//    through handler::snapshot_sent.
//
// Thread safety: a transport's members may be called from several threads.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "keel/raft/types.hpp"
#include "keel/result.hpp"

namespace keel::transport {

/// A snapshot's content as its sender streams it, read at any offset so a
/// broken transfer resumes where the receiver stopped.
class snapshot_source {
 public:
  virtual ~snapshot_source() = default;
  /// The content's size in bytes.
  virtual std::uint64_t size() const = 0;
  /// The CRC32C of the whole content (what the receiver checks at the end).
  virtual std::uint32_t crc() const = 0;
  /// Reads content bytes from `offset` into `out`; fewer only at the end.
  virtual result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) = 0;
};

/// Where a receiving transport writes a streamed snapshot's content: the
/// node's snapshot storage. Destroying a sink that was not committed keeps
/// what it holds, so a later transfer of the same snapshot resumes.
class snapshot_sink {
 public:
  virtual ~snapshot_sink() = default;
  /// Content bytes held already; the next write() continues at this offset.
  virtual std::uint64_t held() const = 0;
  virtual std::error_code write(std::span<const std::byte> data) = 0;
  /// Makes what is held durable, so a resume after a crash starts from here.
  virtual std::error_code checkpoint() = 0;
  /// Checks the content against the sender's size and CRC32C and installs
  /// it; returns the handle the delivered snap message carries.
  /// errc::corrupt_snapshot (and nothing kept) on a mismatch.
  virtual result<std::string> commit(std::uint64_t size, std::uint32_t crc) = 0;
  /// Drops what is held (a transfer that failed for good or expired).
  virtual void discard() = 0;
};

/// What a node gives its transport: where to hand what arrives for it.
struct handler {
  /// A message for this node arrived. May be called from any thread.
  std::function<void(raft::message)> deliver;
  /// A message to this peer could not be sent (no connection, a full queue);
  /// the node reports it to raft (raw_node::report_unreachable). Optional.
  std::function<void(raft::node_id)> unreachable;
  /// Streaming transports only: opens the content of the snapshot a snap
  /// message names by its handle.
  std::function<result<std::unique_ptr<snapshot_source>>(const raft::snapshot&)> open_snapshot{};
  /// Streaming transports only: a sink for a snapshot arriving from `from`.
  std::function<result<std::unique_ptr<snapshot_sink>>(raft::node_id from,
                                                       const raft::snapshot_metadata&)>
      receive_snapshot{};
  /// Streaming transports only: the snapshot for `to` arrived (true) or
  /// failed (false); the node reports it to raft (raw_node::report_snapshot).
  std::function<void(raft::node_id to, bool delivered)> snapshot_sent{};
};

/// A snapshot transfer to one peer, as its sender sees it.
struct snapshot_progress {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  std::uint64_t bytes_sent = 0;  ///< Content bytes the receiver holds, resumed ones included.
  std::uint64_t total_bytes = 0;
  double bytes_per_second = 0;  ///< Over this transfer so far.
  double eta_seconds = 0;       ///< At that rate; 0 when unknown.
  bool active = false;          ///< False once it finished or failed.
  bool succeeded = false;

  friend bool operator==(const snapshot_progress&, const snapshot_progress&) = default;
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
  /// The last snapshot transfer to this peer (streaming transports).
  std::optional<snapshot_progress> snapshot{};

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

/// A transport that streams snapshots itself (see the contract above).
template <class T>
concept streaming_transport = transport<T> && requires {
  requires T::streams_snapshots;
};

}  // namespace keel::transport
