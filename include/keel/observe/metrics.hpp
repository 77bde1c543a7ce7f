// The metrics policy of the node layer: what a replica reports about itself
// while it runs, and the silent default.
//
// A replica calls its metrics object on its own thread (the runner's loop):
// once per Raft ready with its gauges, and on each event (a proposal, a WAL
// sync, a snapshot, a message). A policy that keeps the numbers for another
// thread to read (prometheus_metrics) must make them safe to read from there.
//
// Cost of the default: null_metrics has empty inline members and
// `silent = true`, and the replica tests `silent` with `if constexpr` before
// it computes anything only a metrics object would need (reading the clock
// around a WAL sync, sampling watch queues, asking the transport about a
// snapshot). With it, the replica's own work does what it did before
// metrics existed: no clock reads, no atomics, no allocation for metrics.
// The store's watch depth list (store::watch_queue_depths) is kept whatever
// the policy: one list node, a shared_ptr copy and a mutex per watch
// subscribe and cancel, nothing per commit (docs/observability.md).
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "keel/raft/types.hpp"
#include "keel/store/watch.hpp"

namespace keel::observe {

/// A replica's gauges, reported after every ready it handled.
struct node_gauges {
  std::uint64_t term = 0;
  std::uint64_t commit = 0;
  std::uint64_t applied = 0;
  std::uint64_t snapshot_index = 0;
  raft::node_id leader = raft::no_node;
  raft::state_type role = raft::state_type::follower;
  std::size_t pending_writes = 0;
  std::size_t pending_reads = 0;
  /// The replica stopped (a storage failure, its removal).
  bool stopped = false;
};

/// Why a message was dropped before the Raft core saw it.
enum class drop_reason : std::uint8_t {
  removed_member,    ///< Its sender was removed from the cluster.
  damaged_snapshot,  ///< A snapshot whose data fails its checksum.
};

/// The metrics policy. On the replica's thread:
///  - `m.gauges(g)`: the node's gauges after a ready (node_gauges).
///  - `m.proposed()`: a write or membership change went into the log.
///  - `m.proposal_failed()`: a proposal was refused (not leader, too large,
///    dropped by the core) or its entry ended with an error.
///  - `m.wal_synced(d)`: one WAL fsync took `d`; called only when `M::timed`
///    is true, so a policy that does not want it never makes the replica read
///    the clock.
///  - `m.wal_written(bytes)`: bytes the WAL wrote since the last call.
///  - `m.snapshot_saved(bytes)`, `m.snapshot_installed(bytes)`: a snapshot
///    this replica took, or received from the leader and installed.
///  - `m.snapshot_sent(bytes, delivered)`: a snapshot sent to a follower;
///    bytes is what the replica or the transport could see (0 if neither).
///  - `m.message_sent(type)`, `m.message_received(type)`,
///    `m.message_dropped(reason)`, `m.peer_unreachable(id)`.
///  - `m.watch_queues(depths)`: the store's watch queues, sampled each tick
///    when the policy is not silent.
/// Optional: `static constexpr bool silent = true` tells the replica that
/// the policy ignores everything, so it skips computing the arguments.
template <class M>
concept metrics = requires(M& m, const node_gauges& g, std::chrono::nanoseconds d, std::uint64_t n,
                           raft::message_type t, drop_reason why, raft::node_id id,
                           const store::watch_depths& w) {
  // Read in `if constexpr`, so it must be a constant expression.
  typename std::bool_constant<M::timed>;
  m.gauges(g);
  m.proposed();
  m.proposal_failed();
  m.wal_synced(d);
  m.wal_written(n);
  m.snapshot_saved(n);
  m.snapshot_installed(n);
  m.snapshot_sent(n, true);
  m.message_sent(t);
  m.message_received(t);
  m.message_dropped(why);
  m.peer_unreachable(id);
  m.watch_queues(w);
};

/// Whether policy P declares itself silent (`static constexpr bool silent = true`).
template <class P>
inline constexpr bool is_silent = requires {
  typename std::bool_constant<P::silent>;
  requires P::silent;
};

/// The default: records nothing and costs nothing.
struct null_metrics {
  static constexpr bool silent = true;
  static constexpr bool timed = false;
  static constexpr void gauges(const node_gauges&) noexcept {}
  static constexpr void proposed() noexcept {}
  static constexpr void proposal_failed() noexcept {}
  static constexpr void wal_synced(std::chrono::nanoseconds) noexcept {}
  static constexpr void wal_written(std::uint64_t) noexcept {}
  static constexpr void snapshot_saved(std::uint64_t) noexcept {}
  static constexpr void snapshot_installed(std::uint64_t) noexcept {}
  static constexpr void snapshot_sent(std::uint64_t, bool) noexcept {}
  static constexpr void message_sent(raft::message_type) noexcept {}
  static constexpr void message_received(raft::message_type) noexcept {}
  static constexpr void message_dropped(drop_reason) noexcept {}
  static constexpr void peer_unreachable(raft::node_id) noexcept {}
  static constexpr void watch_queues(const store::watch_depths&) noexcept {}
};

static_assert(metrics<null_metrics>);

}  // namespace keel::observe
