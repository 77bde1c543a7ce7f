// Deterministic simulation of a whole keel cluster: 3 or 5 replicas over one
// in-process network, each on its own simulated disk, a few clients issuing
// register operations (client.hpp), and faults, all in one thread and all
// chosen by one seeded scheduler. A run is a pure function of its options:
// the same seed replays the same run, step for step.
//
// A step: faults strike (maybe), live replicas tick (some skip: clocks
// drift), replicas work, the network moves one tick (delivering what is
// due), replicas work again, clients learn outcomes and start operations.
//
// Faults: symmetric partitions, isolation, one-way cuts, message loss,
// duplication, delay and reordering; crash (the disk loses what was not
// synced, possibly with torn bytes, and the replica is rebuilt from its WAL
// later); a clock jump (one replica gets a burst of ticks); leadership
// transfer; with `membership`, replacing a voter (remove it, then add a
// fresh node as a learner that the leader promotes once caught up). The
// leader's configuration says what is done: once it no longer holds the
// removed member (its removal committed), the harness shuts that member
// down, as an operator would, even if it never learned of its removal (it
// was cut off); from then on it is not a member and no check waits for it.
//
// After the faulty phase every fault is healed, crashed replicas restart,
// a replacement under way finishes, and the cluster must converge: one
// leader whose read barrier succeeds, every member a voter of its
// configuration, and every member applied up to its commit. Then every
// member's store must hold the same registers at the same versions, a
// final read of each key joins the history, and the history must be
// linearizable. A run reports the first failure it met, with the seed and
// the story of its faults.
//
// Thread safety: none; a cluster runs on the thread that made it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/node/replica.hpp"
#include "keel/raft/types.hpp"
#include "keel/sim/client.hpp"
#include "keel/sim/disk.hpp"
#include "keel/sim/history.hpp"
#include "keel/sim/linearizability.hpp"
#include "keel/sim/register_object.hpp"
#include "keel/sim/scheduler.hpp"
#include "keel/store/selector.hpp"
#include "keel/transport/in_process.hpp"
#include "keel/wal/wal.hpp"

namespace keel::sim {

struct cluster_options {
  std::uint64_t seed = 1;
  /// Replicas (3 or 5 make sense).
  std::size_t nodes = 3;
  std::size_t clients = 4;
  std::size_t keys = 3;
  /// Client operations started in the faulty phase.
  std::size_t operations = 1200;
  /// Steps the faulty phase may take at most.
  std::uint64_t max_steps = 6000;
  /// Steps the cluster may take to converge once healed.
  std::uint64_t converge_steps = 2000;
  /// Steps a client waits for an outcome.
  std::uint64_t client_timeout = 60;
  /// Network faults, clock jumps and leadership transfers.
  bool faults = true;
  /// Crashes and restarts (with faults only).
  bool crashes = true;
  /// Replace voters: remove one, then add a fresh node (with faults only).
  bool membership = true;
  /// Gets skip the read barrier (broken on purpose: the checker must object).
  bool stale_reads = false;
  wal::write_mode write_mode = wal::write_mode::mmap;
};

/// The options the seed sweep uses: 3 or 5 nodes and the WAL's write mode
/// vary with the seed.
inline cluster_options options_for_seed(std::uint64_t seed) {
  scheduler s(seed ^ 0x5157'0b5e'd5ee'd000ULL);
  cluster_options o;
  o.seed = seed;
  o.nodes = s.chance(0.25) ? 5 : 3;
  o.write_mode = s.chance(0.5) ? wal::write_mode::mmap : wal::write_mode::pwrite;
  return o;
}

struct run_stats {
  std::uint64_t steps = 0;
  std::uint64_t operations = 0;  ///< Recorded in the history, final reads included.
  std::uint64_t unknown = 0;     ///< Of those, with an unknown outcome.
  std::uint64_t dropped = 0;     ///< Reached Raft but surely without effect.
  std::uint64_t refused = 0;     ///< Refused at once (not leader, no leader, node down).
  std::uint64_t crashes = 0;
  std::uint64_t partitions = 0;  ///< Partitions, isolations and cuts.
  std::uint64_t clock_jumps = 0;
  std::uint64_t transfers = 0;
  std::uint64_t replacements = 0;  ///< Voters removed and new nodes added.
  std::uint64_t elections = 0;     ///< Times a new leader (id, term) was seen.
};

struct run_report {
  std::uint64_t seed = 0;
  /// Empty when the run passed: otherwise what went wrong first.
  std::string failure;
  check_result check;
  run_stats stats;
  /// The faults and restarts, in order, with their steps.
  std::vector<std::string> events;

  bool ok() const noexcept { return failure.empty(); }

  /// One line: the seed, the verdict and the counts.
  std::string summary() const {
    return "seed " + std::to_string(seed) + ": " + (ok() ? "ok" : "FAILED") + ", " +
           std::to_string(stats.steps) + " steps, " + std::to_string(stats.operations) + " ops (" +
           std::to_string(stats.unknown) + " unknown, " + std::to_string(stats.dropped) +
           " dropped, " + std::to_string(stats.refused) + " refused), " +
           std::to_string(stats.crashes) + " crashes, " + std::to_string(stats.partitions) +
           " partitions, " + std::to_string(stats.replacements) + " replacements, " +
           std::to_string(stats.elections) + " elections, " + std::to_string(check.steps) +
           " search steps";
  }

  /// The failure, the faults that led to it, and the checker's explanation.
  std::string details() const {
    std::string out = summary() + "\n";
    if (ok()) return out;
    out += "failure: " + failure + "\n";
    if (!check.explanation.empty()) out += check.explanation;
    out += "events:\n";
    for (const std::string& e : events) out += "  " + e + "\n";
    return out;
  }
};

class cluster {
 public:
  using replica_type = node::replica<disk_file_system, transport::endpoint, register_object>;

  explicit cluster(cluster_options opts)
      : opts_(opts), scheduler_(opts.seed), network_(scheduler_.derive()) {
    for (std::size_t i = 1; i <= opts_.nodes; ++i) ids_.push_back(static_cast<raft::node_id>(i));
    next_id_ = static_cast<raft::node_id>(opts_.nodes + 1);
    for (const raft::node_id id : ids_) {
      members_[id].storage = std::make_unique<disk>();
      start(id);
    }
    client_options co{
        .keys = opts_.keys, .timeout = opts_.client_timeout, .stale_reads = opts_.stale_reads};
    for (std::size_t i = 1; i <= opts_.clients; ++i) {
      clients_.emplace_back(i, scheduler_.pick(ids_), co);
    }
  }

  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  /// The whole run: faulty phase, healing, convergence, checks.
  run_report run() {
    faulty_phase();
    if (report_.ok()) converge();
    if (report_.ok()) compare_stores();
    if (report_.ok()) final_reads();
    for (auto& c : clients_) {
      c.stop(history_);
      report_.stats.dropped += c.stats().dropped;
      report_.stats.refused += c.stats().refused;
    }
    const std::vector<operation> ops = history_.operations();
    report_.stats.operations = ops.size();
    for (const operation& o : ops) report_.stats.unknown += o.outcome_unknown() ? 1 : 0;
    if (report_.ok()) {
      report_.check = check_linearizable(ops);
      if (!report_.check.linearizable()) {
        report_.failure = report_.check.outcome == verdict::unknown
                              ? "the checker could not decide key " + report_.check.key
                              : "not linearizable: key " + report_.check.key;
      }
    }
    report_.seed = opts_.seed;
    report_.stats.steps = step_;
    return report_;
  }

  // --- what clients see (client_nodes) ---------------------------------------

  replica_type* replica(raft::node_id id) {
    auto it = members_.find(id);
    return it == members_.end() ? nullptr : it->second.replica.get();
  }
  std::uint64_t incarnation(raft::node_id id) const { return members_.at(id).incarnation; }
  const std::vector<raft::node_id>& ids() const noexcept { return ids_; }

  const history& recorded() const noexcept { return history_; }

 private:
  struct member {
    std::unique_ptr<sim::disk> storage;
    std::unique_ptr<replica_type> replica;
    std::uint64_t incarnation = 0;
    /// Added to a running cluster: with an empty WAL it waits for a snapshot.
    bool joined = false;
  };

  /// The one membership change in progress: a voter's removal, then a new
  /// node's addition as a learner, until the leader has promoted it.
  struct replacement {
    enum class stage : std::uint8_t { idle, removing, adding } at = stage::idle;
    /// The member being removed, or the new node being added.
    raft::node_id node = raft::no_node;
    /// The step from which the change may be proposed (again).
    std::uint64_t retry_at = 0;
    /// The new node is a learner in the leader's configuration.
    bool learner = false;
  };

  // --- phases ----------------------------------------------------------------

  /// Operations started and not refused at once: the budget counts these.
  std::uint64_t accepted() const {
    std::uint64_t refused = 0;
    for (const auto& c : clients_) refused += c.stats().refused;
    return started_ - refused;
  }

  void faulty_phase() {
    while (report_.ok() && step_ < opts_.max_steps) {
      if (opts_.faults) inject_fault();
      step();
      for (auto& c : clients_) {
        if (accepted() < opts_.operations && c.ready(step_) && scheduler_.chance(0.3)) {
          c.start(*this, scheduler_, history_, step_);
          ++started_;
        }
      }
      if (accepted() >= opts_.operations && all_idle()) break;
    }
  }

  void converge() {
    event("heal everything; restart crashed nodes");
    network_.reset_faults();
    for (const raft::node_id id : ids_) {
      if (!members_[id].replica && !start(id)) return;
    }
    std::shared_ptr<const node::read_outcome> barrier;
    raft::node_id barrier_at = raft::no_node;
    std::uint64_t barrier_incarnation = 0;
    const std::uint64_t until = step_ + opts_.converge_steps;
    while (report_.ok() && step_ < until) {
      step();
      // A replacement under way finishes: its new node must be added.
      replace_member(false);
      replica_type* l = leader();
      if (l == nullptr || !all_idle() || replacement_.at != replacement::stage::idle) continue;
      if (!barrier || barrier_at != l->id() || barrier_incarnation != incarnation(l->id()) ||
          (barrier->done && barrier->error)) {
        auto b = l->read_barrier();
        if (!b) continue;
        barrier = *b;
        barrier_at = l->id();
        barrier_incarnation = incarnation(l->id());
        continue;
      }
      if (!barrier->done) continue;
      const raft::status st = l->raft_status();
      // Every member votes (a replacement ends with its new node promoted).
      bool caught_up = st.config.voters.size() == members_.size() && st.config.learners.empty();
      for (const auto& [id, m] : members_) {
        caught_up &=
            contains(st.config.voters, id) && m.replica->applied_index() == st.hard_state.commit;
      }
      if (caught_up) {
        leader_ = l->id();
        return;
      }
    }
    if (report_.ok()) {
      std::string state;
      for (const auto& [id, m] : members_) {
        const raft::status st = m.replica->raft_status();
        state += " node " + std::to_string(id) + " " + raft::to_string(st.soft_state.raft_state) +
                 " term " + std::to_string(st.hard_state.term) + " commit " +
                 std::to_string(st.hard_state.commit) + " applied " +
                 std::to_string(m.replica->applied_index()) + ";";
      }
      if (const replica_type* l = leader()) {
        const raft::conf_state conf = l->raft_status().config;
        state += " voters " + list(conf.voters) + " learners " + list(conf.learners) + ";";
      } else {
        state += " no leader;";
      }
      static constexpr const char* stages[] = {"none", "removing", "adding"};
      state += std::string(" replacement: ") + stages[static_cast<int>(replacement_.at)];
      if (replacement_.at != replacement::stage::idle) {
        state += " " + std::to_string(replacement_.node);
      }
      state += std::string("; clients ") + (all_idle() ? "idle" : "busy") + "; read barrier " +
               (!barrier         ? "none"
                : !barrier->done ? "pending"
                : barrier->error ? "failed"
                                 : "done");
      fail("the healed cluster did not converge in " + std::to_string(opts_.converge_steps) +
           " steps:" + state);
    }
  }

  void compare_stores() {
    std::map<raft::node_id, std::vector<register_object>> contents;
    for (const auto& [id, m] : members_) contents[id] = registers(*m.replica);
    const std::vector<register_object>& reference = contents.at(leader_);
    for (const auto& [id, objects] : contents) {
      if (objects == reference) continue;
      std::string msg = "replicas diverged after convergence:";
      for (const auto& [who, objs] : contents) {
        msg += "\n  node " + std::to_string(who) + ":";
        for (const register_object& o : objs) {
          msg += " " + o.id + "=\"" + o.value + "\"@" + std::to_string(o.version);
        }
      }
      fail(msg);
      return;
    }
  }

  /// Reads every key on the converged leader (its barrier is done, nothing
  /// is in flight from clients): a last linearizable read of each register.
  void final_reads() {
    const replica_type& l = *members_.at(leader_).replica;
    for (std::size_t k = 0; k < opts_.keys; ++k) {
      const std::string key = "k" + std::to_string(k);
      const history::id op = history_.invoke_get(0, key);
      history_.complete_get(op, client<replica_type>::read(l, key));
    }
  }

  // --- one step --------------------------------------------------------------

  void step() {
    ++step_;
    for (auto& [id, m] : members_) {
      if (!m.replica) continue;
      // Clocks drift: now and then a replica misses a tick.
      if (!opts_.faults || !scheduler_.chance(0.1)) m.replica->tick();
    }
    work();
    network_.advance(1);
    work();
    for (auto& c : clients_) c.poll(*this, scheduler_, history_, step_);
    watch();
  }

  /// Every live replica works until none has anything left to do.
  void work() {
    for (int round = 0; round < 4; ++round) {
      bool worked = false;
      for (auto& [id, m] : members_) {
        if (m.replica) worked |= m.replica->run_once();
      }
      if (!worked) break;
    }
  }

  /// Notes elections and storage failures (there are no disk faults, so a
  /// stopped replica is a bug).
  void watch() {
    std::vector<raft::node_id> removed;
    for (auto& [id, m] : members_) {
      if (!m.replica) continue;
      if (const std::error_code ec = m.replica->failure()) {
        if (ec == errc::removed_member) {
          removed.push_back(id);
          continue;
        }
        fail("node " + std::to_string(id) + " stopped: " + ec.message());
        return;
      }
      if (m.replica->is_leader()) {
        const std::uint64_t term = m.replica->raft_status().hard_state.term;
        if (last_leader_ != std::pair{id, term}) {
          last_leader_ = {id, term};
          ++report_.stats.elections;
        }
      }
    }
    for (const raft::node_id id : removed) {
      event("node " + std::to_string(id) + " learned it was removed and stopped");
      forget(id);
    }
  }

  // --- faults ----------------------------------------------------------------

  void inject_fault() {
    scheduler& s = scheduler_;
    if (s.chance(0.015)) {
      const auto order = s.shuffled(ids_);
      const std::size_t cut = static_cast<std::size_t>(s.between(1, order.size() - 1));
      std::vector<raft::node_id> a(order.begin(), order.begin() + static_cast<long>(cut));
      std::vector<raft::node_id> b(order.begin() + static_cast<long>(cut), order.end());
      network_.partition(a, b);
      ++report_.stats.partitions;
      event("partition " + list(a) + " | " + list(b));
    }
    if (s.chance(0.008)) {
      const raft::node_id id = s.pick(ids_);
      network_.isolate(id);
      ++report_.stats.partitions;
      event("isolate " + std::to_string(id));
    }
    if (s.chance(0.008)) {
      const raft::node_id from = s.pick(ids_);
      raft::node_id to = s.pick(ids_);
      if (to == from) to = ids_[(from) % ids_.size()];
      network_.cut(from, to);
      ++report_.stats.partitions;
      event("cut " + std::to_string(from) + " -> " + std::to_string(to));
    }
    if (s.chance(0.03)) {
      network_.heal();
      event("heal");
    }
    if (s.chance(0.01)) {
      static constexpr double rates[] = {0, 0, 0.02, 0.1, 0.3};
      const double p = rates[s.below(5)];
      network_.set_drop_rate(p);
      event("drop rate " + std::to_string(p));
    }
    if (s.chance(0.01)) {
      static constexpr double rates[] = {0, 0.05, 0.2};
      const double p = rates[s.below(3)];
      network_.set_duplicate_rate(p);
      event("duplicate rate " + std::to_string(p));
    }
    if (s.chance(0.01)) {
      const std::uint64_t max = s.pick(std::vector<std::uint64_t>{0, 0, 1, 3, 6});
      const std::uint64_t min = max == 0 ? 0 : s.below(max + 1);
      const bool reorder = s.chance(0.5);
      network_.set_delay(min, max);
      network_.set_reorder(reorder);
      event("delay [" + std::to_string(min) + ", " + std::to_string(max) + "]" +
            (reorder ? " reordering" : " fifo"));
    }
    if (opts_.crashes) crash_or_restart();
    if (opts_.membership) replace_member(true);
    if (s.chance(0.006)) {
      const raft::node_id id = s.pick(ids_);
      if (replica_type* r = replica(id)) {
        const std::uint64_t ticks = s.between(5, 30);
        for (std::uint64_t i = 0; i < ticks; ++i) r->tick();
        ++report_.stats.clock_jumps;
        event("clock jump: node " + std::to_string(id) + " +" + std::to_string(ticks) + " ticks");
      }
    }
    if (s.chance(0.006)) {
      if (replica_type* l = leader()) {
        const raft::node_id to = s.pick(ids_);
        if (to != l->id() && replica(to) != nullptr) {
          const std::error_code ec = l->transfer_leadership(to);
          ++report_.stats.transfers;
          event("transfer leadership " + std::to_string(l->id()) + " -> " + std::to_string(to) +
                (ec ? " refused: " + ec.message() : ""));
        }
      }
    }
  }

  void crash_or_restart() {
    scheduler& s = scheduler_;
    std::vector<raft::node_id> up, down;
    for (const auto& [id, m] : members_) (m.replica ? up : down).push_back(id);
    if (!down.empty() && s.chance(0.04)) {
      const raft::node_id id = s.pick(down);
      if (start(id)) event("restart " + std::to_string(id));
    }
    if (up.size() > 1 && s.chance(0.006)) {
      const raft::node_id id = s.pick(up);
      const std::uint64_t torn = s.chance(0.5) ? 0 : s.between(1, 200);
      crash(id, torn);
      ++report_.stats.crashes;
      event("crash " + std::to_string(id) + " (" + std::to_string(torn) + " torn bytes)");
    }
  }

  // --- membership ------------------------------------------------------------

  /// Moves the replacement in progress along, or starts one now and then.
  /// The leader's configuration (changed when a change is applied, hence
  /// committed) is the truth: an outcome can be lost with the replica that
  /// proposed it (a crash) or fail although the change commits later under
  /// another leader, so a change whose effect is not seen is proposed again.
  void replace_member(bool may_start) {
    scheduler& s = scheduler_;
    replacement& r = replacement_;
    replica_type* l = leader();
    switch (r.at) {
      case replacement::stage::idle: {
        if (!may_start || l == nullptr || !s.chance(0.004)) return;
        const raft::node_id victim = s.pick(ids_);
        if (victim == l->id()) return;
        r = replacement{.at = replacement::stage::removing, .node = victim, .retry_at = step_};
        propose_change(*l);
        return;
      }
      case replacement::stage::removing: {
        if (l == nullptr) return;
        if (!in_config(l->raft_status().config, r.node)) {
          // An operator shuts down a removed member that missed its removal.
          event("removal of " + std::to_string(r.node) + " committed" +
                (members_.contains(r.node) ? "; shut it down" : ""));
          if (members_.contains(r.node)) forget(r.node);
          // The new node starts empty and waits for the leader's snapshot.
          r = replacement{
              .at = replacement::stage::adding, .node = next_id_++, .retry_at = step_ + 1};
          members_[r.node].storage = std::make_unique<disk>();
          members_[r.node].joined = true;
          ids_.push_back(r.node);
          ++report_.stats.replacements;
          start(r.node);
          return;
        }
        propose_change(*l);
        return;
      }
      case replacement::stage::adding: {
        if (l == nullptr) return;
        const raft::conf_state conf = l->raft_status().config;
        if (contains(conf.voters, r.node)) {
          event("promoted " + std::to_string(r.node) + " to voter");
          r = replacement{};
          return;
        }
        if (contains(conf.learners, r.node)) {
          if (!r.learner) event("added learner " + std::to_string(r.node));
          r.learner = true;  // The leader promotes it once it caught up.
          return;
        }
        propose_change(*l);
        return;
      }
    }
  }

  /// Proposes the replacement's change on leader l, at most every 50 steps
  /// (a change proposed before may still be on its way to commit).
  void propose_change(replica_type& l) {
    replacement& r = replacement_;
    if (step_ < r.retry_at) return;
    r.retry_at = step_ + 50;
    const bool removing = r.at == replacement::stage::removing;
    auto out = removing ? l.remove_member(r.node) : l.add_learner(r.node);
    event(std::string(removing ? "remove " : "add learner ") + std::to_string(r.node) + " on " +
          std::to_string(l.id()) + (out ? "" : " refused: " + out.error().message()));
  }

  static bool in_config(const raft::conf_state& c, raft::node_id id) {
    return contains(c.voters, id) || contains(c.voters_outgoing, id) || contains(c.learners, id) ||
           contains(c.learners_next, id);
  }

  /// Node id left the cluster: its process and disk are gone for good.
  void forget(raft::node_id id) {
    network_.disconnect(id);
    members_.erase(id);
    std::erase(ids_, id);
  }

  static bool contains(const std::vector<raft::node_id>& v, raft::node_id id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  }

  // --- nodes -----------------------------------------------------------------

  /// Opens node id's replica on its disk; a failure to open fails the run.
  bool start(raft::node_id id) {
    member& m = members_.at(id);
    node::replica_options o;
    o.id = id;
    o.members = ids_;
    o.data_dir = "/data";
    o.election_tick = 10;
    o.heartbeat_tick = 1;
    o.join = m.joined;
    o.seed = scheduler_.derive() | 1;
    // Small segments: crashes and recovery cross segment boundaries.
    o.wal.segment_size = 64 * 1024;
    o.wal.cache_bytes = 256 * 1024;
    o.wal.mode = opts_.write_mode;
    auto r = replica_type::open(m.storage->file_system(), o, [&](transport::handler h) {
      return network_.connect(id, std::move(h));
    });
    if (!r) {
      fail("node " + std::to_string(id) + " could not open its WAL after incarnation " +
           std::to_string(m.incarnation) + ": " + r.error().message());
      return false;
    }
    m.replica = std::move(*r);
    ++m.incarnation;
    return true;
  }

  /// Power loss: the disk keeps what was synced (and maybe some torn bytes),
  /// the network forgets the node, the process state is gone.
  void crash(raft::node_id id, std::uint64_t torn) {
    member& m = members_.at(id);
    network_.disconnect(id);
    m.storage->crash(torn);
    m.replica.reset();
  }

  replica_type* leader() {
    replica_type* best = nullptr;
    std::uint64_t best_term = 0;
    for (auto& [id, m] : members_) {
      if (!m.replica || !m.replica->is_leader()) continue;
      const std::uint64_t term = m.replica->raft_status().hard_state.term;
      if (best == nullptr || term > best_term) {
        best = m.replica.get();
        best_term = term;
      }
    }
    return best;
  }

  bool all_idle() const {
    for (const auto& c : clients_) {
      if (!c.idle()) return false;
    }
    return true;
  }

  static std::vector<register_object> registers(const replica_type& r) {
    std::vector<register_object> out;
    r.view([&](const auto& tx) {
      (void)tx.template for_each<register_object>(store::all(),
                                                  [&](const auto& o) { out.push_back(*o); });
    });
    return out;
  }

  static std::string list(const std::vector<raft::node_id>& ids) {
    std::string out = "{";
    for (const raft::node_id id : ids) out += (out.size() > 1 ? "," : "") + std::to_string(id);
    return out + "}";
  }

  void event(std::string what) {
    report_.events.push_back("step " + std::to_string(step_) + ": " + std::move(what));
  }

  void fail(std::string why) {
    if (report_.failure.empty()) report_.failure = std::move(why);
  }

  cluster_options opts_;
  scheduler scheduler_;
  // Declared before the members: endpoints must not outlive the network.
  transport::in_process_network network_;
  std::vector<raft::node_id> ids_;
  std::map<raft::node_id, member> members_;
  std::vector<client<replica_type>> clients_;
  history history_;
  run_report report_;
  std::uint64_t step_ = 0;
  std::uint64_t started_ = 0;
  raft::node_id leader_ = raft::no_node;
  raft::node_id next_id_ = 0;
  replacement replacement_;
  std::pair<raft::node_id, std::uint64_t> last_leader_{raft::no_node, 0};
};

/// Runs one simulation.
inline run_report simulate(const cluster_options& opts) { return cluster(opts).run(); }

}  // namespace keel::sim
