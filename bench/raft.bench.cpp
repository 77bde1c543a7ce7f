// Raft core throughput: entries committed per second through raw_node's
// ready/advance loop over memory_storage, 64-byte entries, no I/O, no ticks.
// Each case plays the node layer itself (persist ready.entries and the hard
// state into memory_storage, hand ready.messages over in memory, apply
// ready.committed_entries, advance) on one thread.
//
//   one_node_propose       one voter; an iteration proposes `batch` entries
//                          and runs the ready loop until all are applied.
//                          etcd-io/raft's BenchmarkOneNode batches the same
//                          way: one goroutine proposes while the node loop
//                          takes readies, so each ready carries many entries.
//   one_node_propose_sync  one voter; an iteration proposes one entry and runs
//                          the ready loop until it is applied (no batching).
//   three_node_propose     three voters in process; an iteration proposes
//                          `batch` entries on the leader and delivers messages
//                          and readies until the cluster is quiet.
//   three_node_propose_sync  the same with one entry per iteration.
//
// Every case reports `committed` (entries applied by the leader per second of
// wall time) and items_per_second (the same count). bench/peers/etcd-raft/
// holds the etcd-io/raft programs that mirror these cases step for step;
// scripts/bench.sh raft runs both and prints the comparison.
//
// Storage is compacted up to the applied index every `compact_every` entries,
// as a node that snapshots would, so a long run does not hold every entry.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"

namespace {

using namespace keel::raft;
using node_type = raw_node<memory_storage>;

constexpr std::size_t entry_bytes = 64;
/// Proposals per iteration of the batched cases; about what etcd's
/// BenchmarkOneNode puts in one ready on this kind of machine (it sleeps 1 ms
/// per ready while the proposer goroutine keeps appending).
constexpr std::size_t batch = 256;
constexpr std::uint64_t compact_every = 1 << 16;

const std::string& payload() {
  static const std::string p(entry_bytes, 'x');
  return p;
}

config node_config(node_id id) {
  config c;  // keel's defaults: check_quorum, pre_vote, 1 MiB per message, 256 inflight.
  c.id = id;
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  return c;
}

/// One node and what its node layer keeps: durable storage, applied cursor.
/// Not movable: the node holds a pointer to the storage.
struct member {
  memory_storage storage;
  std::optional<node_type> node;
  std::uint64_t applied_index = 0;
  std::uint64_t applied_entries = 0;  ///< Non-empty (application) entries applied.
  std::uint64_t applied_bytes = 0;

  member() = default;
  member(const member&) = delete;
  member& operator=(const member&) = delete;

  /// Boots as a member of `voters`: a snapshot at index 1 carrying the
  /// configuration, as a freshly bootstrapped cluster has.
  bool boot(node_id id, const std::vector<node_id>& voters) {
    snapshot s;
    s.metadata.index = 1;
    s.metadata.term = 1;
    s.metadata.conf.voters = voters;
    if (storage.apply_snapshot(std::move(s))) return false;
    applied_index = 1;
    auto n = node_type::create(node_config(id), storage);
    if (!n) return false;
    node.emplace(std::move(*n));
    return true;
  }

  /// The node layer: takes readies until there are none; outgoing messages go
  /// to `send`.
  template <class Send>
  void drain(Send&& send) {
    while (node->has_ready()) {
      ready rd = node->ready();
      if (rd.snapshot) {
        (void)storage.apply_snapshot(std::move(*rd.snapshot));
        applied_index = storage.first_index() - 1;
      }
      if (!rd.entries.empty()) (void)storage.append(std::move(rd.entries));
      if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
      for (message& m : rd.messages) send(std::move(m));
      for (const entry& e : rd.committed_entries) {
        if (!e.data.empty()) {
          ++applied_entries;
          applied_bytes += e.data.size();
        }
        applied_index = e.index;
      }
      node->advance();
    }
    if (applied_index >= storage.first_index() + compact_every) {
      (void)storage.compact(applied_index);
    }
  }
};

/// A single voter sends nothing; its drain() gets this as the transport.
void no_messages(message&&) {}

void report(benchmark::State& state, std::uint64_t committed, std::uint64_t expected) {
  if (committed != expected) {
    state.SkipWithError("not every proposal was committed");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(committed));
  state.counters["committed"] =
      benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}

// ---- one node -----------------------------------------------------------------

void one_node(benchmark::State& state, std::size_t per_iteration) {
  member m;
  if (!m.boot(1, {1})) {
    state.SkipWithError("cannot create the node");
    return;
  }
  m.node->campaign();  // A single voter wins at once.
  m.drain(no_messages);
  if (m.node->status().soft_state.raft_state != state_type::leader) {
    state.SkipWithError("the node did not become leader");
    return;
  }

  std::uint64_t proposed = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < per_iteration; ++i) {
      if (m.node->propose(std::string(payload()))) {
        state.SkipWithError("proposal dropped");
        return;
      }
    }
    proposed += per_iteration;
    m.drain(no_messages);
  }
  report(state, m.applied_entries, proposed);
}

void one_node_propose(benchmark::State& state) { one_node(state, batch); }
void one_node_propose_sync(benchmark::State& state) { one_node(state, 1); }

// ---- three nodes ------------------------------------------------------------------

/// Three voters whose messages are handed over in memory, FIFO, all driven
/// by the calling thread.
class cluster {
 public:
  bool boot() {
    const std::vector<node_id> voters{1, 2, 3};
    for (node_id id : voters) {
      if (!members_[id - 1].boot(id, voters)) return false;
    }
    members_[0].node->campaign();
    settle();
    return members_[0].node->status().soft_state.raft_state == state_type::leader;
  }

  member& leader() { return members_[0]; }

  /// Runs every node's ready loop and delivers messages until nothing moves.
  void settle() {
    const auto send = [this](message&& m) {
      queue_.push_back(std::move(m));
    };
    for (;;) {
      for (member& m : members_) m.drain(send);
      if (queue_.empty()) return;
      delivering_.swap(queue_);
      for (message& m : delivering_) {
        const node_id to = m.to;
        (void)members_[to - 1].node->step(std::move(m));
      }
      delivering_.clear();
    }
  }

 private:
  std::array<member, 3> members_;
  std::vector<message> queue_;
  std::vector<message> delivering_;
};

void three_node(benchmark::State& state, std::size_t per_iteration) {
  cluster c;
  if (!c.boot()) {
    state.SkipWithError("node 1 did not become leader");
    return;
  }
  member& leader = c.leader();

  std::uint64_t proposed = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < per_iteration; ++i) {
      if (leader.node->propose(std::string(payload()))) {
        state.SkipWithError("proposal dropped");
        return;
      }
    }
    proposed += per_iteration;
    c.settle();
  }
  report(state, leader.applied_entries, proposed);
}

void three_node_propose(benchmark::State& state) { three_node(state, batch); }
void three_node_propose_sync(benchmark::State& state) { three_node(state, 1); }

}  // namespace

// Wall time, like Go's ns/op, so keel and its peer are measured alike.
BENCHMARK(one_node_propose)->UseRealTime();
BENCHMARK(one_node_propose_sync)->UseRealTime();
BENCHMARK(three_node_propose)->UseRealTime();
BENCHMARK(three_node_propose_sync)->UseRealTime();
