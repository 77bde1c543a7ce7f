// The log storage policy of the Raft core: what raft reads from durable
// storage. raft never writes through it; the node layer persists each ready's
// entries, hard state and snapshot into the storage and then calls advance().
//
// Index ranges (as etcd-io/raft's Storage): the storage holds entries
// [first_index(), last_index()]; the entry just before first_index() is
// described by the latest snapshot, so term(first_index() - 1) must answer.
// An empty log has first_index() == last_index() + 1.
#pragma once

#include <concepts>
#include <cstdint>
#include <vector>

#include "keel/raft/types.hpp"
#include "keel/result.hpp"

namespace keel::raft {

/// What a node recovers from storage when it starts.
struct initial_state {
  raft::hard_state hard_state{};
  raft::conf_state conf_state{};
};

// clang-format off
/// A durable log that the Raft core reads.
///  - initial_state(): the last persisted hard state and the configuration as
///    of the latest snapshot.
///  - entries(lo, hi, max_bytes): entries [lo, hi); stops before the total
///    payload would exceed max_bytes but always returns at least one entry;
///    errc::compacted if lo < first_index(), errc::unavailable if hi >
///    last_index() + 1.
///  - term(i): term of entry i for i in [first_index() - 1, last_index()];
///    errc::compacted below, errc::unavailable above.
///  - first_index(), last_index(): the stored range (see above).
///  - snapshot(): the latest snapshot; errc::snapshot_temporarily_unavailable
///    if it is being built (raft retries later).
template <class S>
concept log_storage = requires(const S& s, std::uint64_t i, std::uint64_t max_bytes) {
  { s.initial_state() } -> std::same_as<raft::initial_state>;
  { s.entries(i, i, max_bytes) } -> std::same_as<result<std::vector<entry>>>;
  { s.term(i) } -> std::same_as<result<std::uint64_t>>;
  { s.first_index() } -> std::same_as<std::uint64_t>;
  { s.last_index() } -> std::same_as<std::uint64_t>;
  { s.snapshot() } -> std::same_as<result<raft::snapshot>>;
};
// clang-format on

}  // namespace keel::raft
