// A deterministic in-memory network of raw_nodes for Raft tests. Every node
// has its own memory_storage; process() plays the node layer (persist,
// apply, advance) and queues outgoing messages; deliver() hands queued
// messages to their targets through the fault filters (drop, cut, isolate,
// ignore by type, duplicate, reorder), all driven by one seeded generator so
// a seed replays a run exactly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"

namespace keel::test {

using namespace keel::raft;
using test_node = raw_node<memory_storage>;

/// A message pattern for filters and counts: a type, and optionally a sender
/// and a receiver (no_node matches any): pattern{message_type::app, 1, 3}.
struct pattern {
  message_type type = message_type::app;
  node_id from = no_node;
  node_id to = no_node;

  bool operator()(const message& m) const {
    return m.type == type && (from == no_node || m.from == from) && (to == no_node || m.to == to);
  }
};

/// One member of the test network: its durable storage, its raft and what it applied.
struct member {
  std::unique_ptr<memory_storage> storage = std::make_unique<memory_storage>();
  std::optional<test_node> node;
  std::vector<entry> applied;  ///< Every committed entry applied, in order.
  conf_state conf;             ///< Configuration after the last applied conf change.
  std::vector<read_state> reads;
  std::vector<soft_state> roles;  ///< Soft-state changes seen in readies.
};

class network {
 public:
  /// A cluster whose voters are `voters` (and `learners`), each node built
  /// from `base` with its own id, randomness seeded from `seed` and the id.
  explicit network(const std::vector<node_id>& voters, std::uint64_t seed = 1,
                   config base = default_config(), const std::vector<node_id>& learners = {})
      : rng_(seed), seed_(seed), base_(base) {
    conf_state cs;
    cs.voters = voters;
    cs.learners = learners;
    for (node_id id : voters) add_member(id, cs);
    for (node_id id : learners) add_member(id, cs);
  }

  static config default_config() {
    config c;
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    return c;
  }

  /// Adds a node that starts with configuration cs (a snapshot at index 1
  /// carrying it, like a bootstrapped cluster), or empty if cs has no voters.
  void add_member(node_id id, const conf_state& cs) {
    member& m = members_[id];
    m.storage = std::make_unique<memory_storage>();
    if (!cs.voters.empty()) {
      snapshot boot;
      boot.metadata.index = 1;
      boot.metadata.term = 1;
      boot.metadata.conf = cs;
      (void)m.storage->apply_snapshot(boot);
      m.conf = cs;
    }
    restart(id);
  }

  /// Rebuilds node id from its storage, as after a crash (unpersisted state is lost).
  void restart(node_id id) {
    member& m = members_.at(id);
    config c = base_;
    c.id = id;
    c.applied = applied_index(id);
    m.node.reset();
    auto n = test_node::create(c, *m.storage, splitmix_random(seed_ * 1000003 + id));
    if (!n) throw std::runtime_error("cannot create node: " + n.error().message());
    m.node.emplace(std::move(*n));
    // Conf changes applied after the storage's snapshot live only in the
    // log: replay them, as an application restoring its applied state does.
    const std::uint64_t snap = m.storage->first_index() - 1;
    if (c.applied > snap && c.applied <= m.storage->last_index()) {
      auto ents = m.storage->entries(snap + 1, c.applied + 1, no_limit);
      if (!ents) throw std::runtime_error("cannot replay the log: " + ents.error().message());
      for (const entry& e : *ents) {
        if (e.type != entry_type::conf_change) continue;
        if (auto cc = decode_conf_change(e.data)) (void)m.node->apply_conf_change(*cc);
      }
    }
  }

  member& at(node_id id) { return members_.at(id); }
  test_node& node(node_id id) { return *members_.at(id).node; }
  const core<memory_storage>& core_of(node_id id) { return node(id).state(); }
  std::vector<node_id> ids() const {
    std::vector<node_id> out;
    for (const auto& [id, m] : members_) out.push_back(id);
    return out;
  }

  // ---- fault filters -------------------------------------------------------

  /// Drops messages from -> to with probability p (0 = recover).
  void drop(node_id from, node_id to, double p) { drop_[{from, to}] = p; }
  /// Cuts the link both ways.
  void cut(node_id a, node_id b) {
    drop(a, b, 1.0);
    drop(b, a, 1.0);
  }
  /// Cuts id off from everyone.
  void isolate(node_id id) {
    for (const auto& [other, m] : members_) {
      if (other != id) cut(id, other);
    }
  }
  /// Drops every message of type t.
  void ignore(message_type t) { ignored_.insert(t); }
  /// Drops every message with probability p.
  void set_loss(double p) { loss_ = p; }
  /// Duplicates each delivered message with probability p.
  void set_duplication(double p) { duplicate_ = p; }
  /// Delivers queued messages in random order instead of FIFO.
  void set_reorder(bool on) { reorder_ = on; }
  /// Removes every filter.
  void recover() {
    drop_.clear();
    ignored_.clear();
    loss_ = 0;
    duplicate_ = 0;
    reorder_ = false;
    blocked_.clear();
  }
  /// Drops, until recover(), every message for which pred(message) holds:
  /// net.block_if(from_to(2, 1, message_type::app_resp)).
  void block_if(std::function<bool(const message&)> pred) { blocked_.push_back(std::move(pred)); }

  // ---- driving -------------------------------------------------------------

  /// Plays the node layer for id until it has no ready: persist, queue
  /// messages, apply committed entries and conf changes, advance.
  void process(node_id id) {
    member& m = members_.at(id);
    while (m.node->has_ready()) {
      ready rd = m.node->ready();
      if (ready_watch_) ready_watch_(id, rd);
      if (rd.soft_state) m.roles.push_back(*rd.soft_state);
      if (rd.snapshot) {
        (void)m.storage->apply_snapshot(*rd.snapshot);
        m.conf = rd.snapshot->metadata.conf;
        // A snapshot replaces what was applied: record it as a marker entry.
        m.applied.push_back(entry{.term = rd.snapshot->metadata.term,
                                  .index = rd.snapshot->metadata.index,
                                  .type = entry_type::normal,
                                  .data = "<snapshot>"});
      }
      if (!rd.entries.empty()) (void)m.storage->append(rd.entries);
      if (rd.hard_state) m.storage->set_hard_state(*rd.hard_state);
      for (message& msg : rd.messages) queue_.push_back(std::move(msg));
      for (const entry& e : rd.committed_entries) {
        m.applied.push_back(e);
        if (e.type == entry_type::conf_change) {
          auto cc = decode_conf_change(e.data);
          if (cc) {
            auto cs = m.node->apply_conf_change(*cc);
            if (cs) m.conf = *cs;
          }
        }
      }
      for (read_state& r : rd.read_states) m.reads.push_back(std::move(r));
      m.node->advance();
    }
  }

  void process_all() {
    for (auto& [id, m] : members_) process(id);
  }

  /// Delivers one queued message through the filters; false if none was queued.
  bool deliver_one() {
    if (queue_.empty()) return false;
    std::size_t pick = 0;
    if (reorder_) pick = std::uniform_int_distribution<std::size_t>(0, queue_.size() - 1)(rng_);
    message m = std::move(queue_[pick]);
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(pick));
    if (filtered(m)) return true;
    const bool dup = duplicate_ > 0 && chance(duplicate_);
    if (dup) step_into(m);
    step_into(std::move(m));
    return true;
  }

  /// Delivers messages (and processes readies) until nothing is in flight.
  /// Bounded so a livelock fails a test instead of hanging it.
  void stabilize(std::size_t max_messages = 1'000'000) {
    process_all();
    for (std::size_t i = 0; i < max_messages && deliver_one(); ++i) {
    }
  }

  /// Sends m from the outside (as if it came over the wire) and stabilizes.
  std::error_code send(message m) {
    const node_id to = m.to;
    auto ec = node(to).step(std::move(m));
    process(to);
    stabilize();
    return ec;
  }

  void tick(node_id id, int n = 1) {
    for (int i = 0; i < n; ++i) {
      node(id).tick();
      process(id);
    }
  }
  void tick_all(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, m] : members_) {
        m.node->tick();
        process(id);
      }
    }
  }

  /// Makes id campaign and runs the election to completion.
  void campaign(node_id id) {
    node(id).campaign();
    process(id);
    stabilize();
  }

  /// Proposes on id and replicates.
  std::error_code propose(node_id id, std::string data) {
    auto ec = node(id).propose(std::move(data));
    process(id);
    stabilize();
    return ec;
  }

  /// Ticks id `rounds` times (a leader: one heartbeat each), stabilizing after each tick.
  void heartbeat(node_id id, int rounds = 1) {
    for (int i = 0; i < rounds; ++i) {
      tick(id);
      stabilize();
    }
  }

  /// Whether node id applied an entry carrying data.
  bool applied(node_id id, std::string_view data) const {
    const auto& a = members_.at(id).applied;
    return std::any_of(a.begin(), a.end(), [&](const entry& e) { return e.data == data; });
  }

  /// Proposes a membership change on id and replicates.
  std::error_code propose_conf_change(node_id id, const conf_change& cc) {
    auto ec = node(id).propose_conf_change(cc);
    process(id);
    stabilize();
    return ec;
  }

  /// The current leader as seen by a majority of nodes' states, or no_node.
  node_id leader() const {
    node_id lead = no_node;
    std::uint64_t term = 0;
    for (const auto& [id, m] : members_) {
      const auto& c = m.node->state();
      if (c.state() == state_type::leader && c.term() >= term) {
        lead = id;
        term = c.term();
      }
    }
    return lead;
  }

  // ---- scripted delivery and observation ------------------------------------

  /// The whole log of node id as its raft sees it (durable part and unstable
  /// tail), from its first index.
  std::vector<entry> log_of(node_id id) {
    const auto& log = core_of(id).log();
    auto ents = log.slice(log.first_index(), log.last_index() + 1, no_limit);
    return ents ? std::move(*ents) : std::vector<entry>{};
  }

  /// The terms of node id's log, in index order: logs read like the paper's figures.
  std::vector<std::uint64_t> terms_of(node_id id) {
    std::vector<std::uint64_t> out;
    for (const entry& e : log_of(id)) out.push_back(e.term);
    return out;
  }

  /// The payloads of the normal entries node id applied, in order (no-ops and
  /// snapshot markers left out).
  std::vector<std::string> applied_data(node_id id) {
    std::vector<std::string> out;
    for (const entry& e : members_.at(id).applied) {
      if (e.type == entry_type::normal && !e.data.empty() && e.data != "<snapshot>") {
        out.push_back(e.data.str());
      }
    }
    return out;
  }

  /// Sets the loss of every link between two members back to zero, leaving
  /// the other filters (loss, duplication, reordering, ignored types) alone.
  void heal() {
    for (auto& [link, p] : drop_) p = 0;
  }

  /// Copies of the queued messages for which pred(message) holds, in queue order.
  template <class Pred>
  std::vector<message> queued(Pred pred) const {
    std::vector<message> out;
    for (const message& m : queue_) {
      if (pred(m)) out.push_back(m);
    }
    return out;
  }

  /// Delivers, through the filters and in queue order, every queued message
  /// for which pred(message) holds; the others stay queued, and the messages
  /// the deliveries cause are queued, not delivered. Returns how many were taken.
  template <class Pred>
  std::size_t deliver_if(Pred pred) {
    std::vector<message> picked;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (pred(*it)) {
        picked.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    for (message& m : picked) {
      if (filtered(m)) continue;
      if (duplicate_ > 0 && chance(duplicate_)) step_into(m);
      step_into(std::move(m));
    }
    return picked.size();
  }

  /// Removes every queued message for which pred(message) holds, as if the
  /// network lost it; returns how many.
  template <class Pred>
  std::size_t drop_if(Pred pred) {
    const auto before = queue_.size();
    std::erase_if(queue_, pred);
    return before - queue_.size();
  }

  /// Calls watch(m) for every message handed to its target (after the filters).
  void on_deliver(std::function<void(const message&)> watch) { deliver_watch_ = std::move(watch); }
  /// Calls watch(id, rd) for every ready node id hands out, before process() acts on it.
  void on_ready(std::function<void(node_id, const ready&)> watch) {
    ready_watch_ = std::move(watch);
  }

  /// The application on node id takes a snapshot of everything it applied
  /// (its configuration, `data` as the handle) and compacts its log up to it.
  snapshot take_snapshot(node_id id, std::string data) {
    member& m = members_.at(id);
    const std::uint64_t index = applied_index(id);
    auto snap = m.storage->create_snapshot(index, m.conf, std::move(data));
    if (!snap) throw std::runtime_error("cannot snapshot: " + snap.error().message());
    if (auto ec = m.storage->compact(index)) {
      throw std::runtime_error("cannot compact: " + ec.message());
    }
    return *snap;
  }

  std::deque<message>& in_flight() { return queue_; }
  std::uint64_t seed() const { return seed_; }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::uint64_t applied_index(node_id id) {
    const member& m = members_.at(id);
    return m.applied.empty() ? 0 : m.applied.back().index;
  }

  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  bool filtered(const message& m) {
    if (!members_.contains(m.to)) return true;
    if (ignored_.contains(m.type)) return true;
    for (const auto& blocked : blocked_) {
      if (blocked(m)) return true;
    }
    if (auto it = drop_.find({m.from, m.to});
        it != drop_.end() && it->second > 0 && chance(it->second)) {
      return true;
    }
    return loss_ > 0 && chance(loss_);
  }

  void step_into(message m) {
    const node_id to = m.to;
    if (deliver_watch_) deliver_watch_(m);
    (void)node(to).step(std::move(m));
    process(to);
  }

  std::map<node_id, member> members_;
  std::deque<message> queue_;
  std::map<std::pair<node_id, node_id>, double> drop_;
  std::set<message_type> ignored_;
  double loss_ = 0;
  double duplicate_ = 0;
  bool reorder_ = false;
  std::vector<std::function<bool(const message&)>> blocked_;
  std::function<void(const message&)> deliver_watch_;
  std::function<void(node_id, const ready&)> ready_watch_;
  std::mt19937_64 rng_;
  std::uint64_t seed_;
  config base_;
};

/// Watches a network for violations of Raft's safety properties (the paper's
/// fig. 3): call check() after every step of a test. It remembers what it saw
/// across calls (the leader of each term, what every node applied, each
/// leader's log) and returns a description of the first violation, or an
/// empty string. The single-property checks serve tests of one property.
///
/// Observations are samples: a property is checked on the states the test
/// lets it see, so call it after each delivery to see every leader.
class safety_checker {
 public:
  /// Election safety: at most one leader is ever seen per term.
  std::string check_election_safety(network& net) {
    return election_safety(observe(net, /*with_logs=*/false));
  }
  /// Leader append-only: while it leads a term, a leader's log only grows.
  std::string check_leader_append_only(network& net) { return leader_append_only(observe(net)); }
  /// Log matching: two logs holding an entry of equal index and term are
  /// identical up to that index.
  std::string check_log_matching(network& net) { return log_matching(observe(net)); }
  /// Leader completeness: the leader of a term later than the one in which
  /// an entry was committed holds that entry.
  std::string check_leader_completeness(network& net) {
    const auto v = observe(net);
    if (auto e = record_applied(net, v); !e.empty()) return e;
    return leader_completeness(v);
  }
  /// State machine safety: no two nodes ever apply different entries at one
  /// index, and each node applies indexes in order without gaps or repeats.
  std::string check_state_machine_safety(network& net) { return record_applied(net, observe(net)); }

  /// All of the above.
  std::string check(network& net) {
    const auto v = observe(net);
    if (auto e = election_safety(v); !e.empty()) return e;
    if (auto e = leader_append_only(v); !e.empty()) return e;
    if (auto e = log_matching(v); !e.empty()) return e;
    if (auto e = record_applied(net, v); !e.empty()) return e;
    return leader_completeness(v);
  }

  /// How many distinct terms had a leader so far.
  std::size_t terms_with_leader() const { return leaders_.size(); }
  /// How many log indexes were seen applied so far.
  std::size_t committed_count() const { return committed_.size(); }

 private:
  struct node_view {
    std::uint64_t term = 0;
    state_type state = state_type::follower;
    std::uint64_t first = 1;  ///< Index of log.front().
    std::vector<entry> log;
  };
  using view = std::map<node_id, node_view>;

  struct committed_entry {
    entry e;
    /// The highest term of any node when the entry was first seen applied:
    /// the entry was committed in this term or earlier.
    std::uint64_t term_bound = 0;
  };

  static view observe(network& net, bool with_logs = true) {
    view v;
    for (node_id id : net.ids()) {
      const auto& c = net.core_of(id);
      node_view& n = v[id];
      n.term = c.term();
      n.state = c.state();
      n.first = c.log().first_index();
      if (with_logs) n.log = net.log_of(id);
    }
    return v;
  }

  static const entry* at(const node_view& n, std::uint64_t index) {
    if (index < n.first || index - n.first >= n.log.size()) return nullptr;
    return &n.log[index - n.first];
  }

  static std::string describe(const entry& e) {
    return "(index " + std::to_string(e.index) + ", term " + std::to_string(e.term) + ", \"" +
           e.data.str() + "\")";
  }

  std::string election_safety(const view& v) {
    for (const auto& [id, n] : v) {
      if (n.state != state_type::leader) continue;
      auto [it, inserted] = leaders_.try_emplace(n.term, id);
      if (!inserted && it->second != id) {
        return "election safety: nodes " + std::to_string(it->second) + " and " +
               std::to_string(id) + " both led term " + std::to_string(n.term);
      }
    }
    return {};
  }

  std::string leader_append_only(const view& v) {
    for (const auto& [id, n] : v) {
      if (n.state != state_type::leader) {
        leader_logs_.erase(id);
        continue;
      }
      auto it = leader_logs_.find(id);
      if (it != leader_logs_.end() && it->second.term == n.term) {
        const node_view& before = it->second;
        for (const entry& e : before.log) {
          const entry* now = at(n, e.index);
          if (now == nullptr && e.index < n.first) continue;  // Compacted, not lost.
          if (now == nullptr || !(*now == e)) {
            return "leader append-only: leader " + std::to_string(id) + " of term " +
                   std::to_string(n.term) + " lost or overwrote " + describe(e);
          }
        }
      }
      leader_logs_[id] = n;
    }
    return {};
  }

  static std::string log_matching(const view& v) {
    for (auto a = v.begin(); a != v.end(); ++a) {
      for (auto b = std::next(a); b != v.end(); ++b) {
        const node_view& x = a->second;
        const node_view& y = b->second;
        const std::uint64_t lo = std::max(x.first, y.first);
        const std::uint64_t hi = std::min(x.first + x.log.size(), y.first + y.log.size());
        // The logs must agree on a prefix of [lo, hi) and differ in term
        // everywhere after it.
        std::uint64_t i = lo;
        while (i < hi && *at(x, i) == *at(y, i)) ++i;
        for (; i < hi; ++i) {
          if (at(x, i)->term == at(y, i)->term) {
            return "log matching: nodes " + std::to_string(a->first) + " and " +
                   std::to_string(b->first) + " hold entries of term " +
                   std::to_string(at(x, i)->term) + " at index " + std::to_string(i) +
                   " but their logs differ at or before it: " + describe(*at(x, i)) + " vs " +
                   describe(*at(y, i));
          }
        }
      }
    }
    return {};
  }

  std::string record_applied(network& net, const view& v) {
    std::uint64_t max_term = 0;
    for (const auto& [id, n] : v) max_term = std::max(max_term, n.term);
    for (node_id id : net.ids()) {
      const std::vector<entry>& applied = net.at(id).applied;
      std::size_t& seen = applied_seen_[id];
      std::uint64_t& last = last_applied_[id];
      for (; seen < applied.size(); ++seen) {
        const entry& e = applied[seen];
        if (e.data == "<snapshot>" && e.index > last) {  // The network's snapshot marker.
          last = e.index;
          continue;
        }
        if (last != 0 && e.index != last + 1) {
          return "state machine safety: node " + std::to_string(id) + " applied index " +
                 std::to_string(e.index) + " right after " + std::to_string(last);
        }
        last = e.index;
        auto [it, inserted] = committed_.try_emplace(e.index, committed_entry{e, max_term});
        if (!inserted && !(it->second.e == e)) {
          return "state machine safety: node " + std::to_string(id) + " applied " + describe(e) +
                 " where " + describe(it->second.e) + " was applied before";
        }
      }
    }
    return {};
  }

  std::string leader_completeness(const view& v) const {
    for (const auto& [id, n] : v) {
      if (n.state != state_type::leader) continue;
      for (const auto& [index, c] : committed_) {
        if (n.term <= c.term_bound || index < n.first) continue;
        const entry* have = at(n, index);
        if (have == nullptr || !(*have == c.e)) {
          return "leader completeness: leader " + std::to_string(id) + " of term " +
                 std::to_string(n.term) + " lacks committed " + describe(c.e) +
                 (have ? " (holds " + describe(*have) + ")" : std::string(" (log too short)"));
        }
      }
    }
    return {};
  }

  std::map<std::uint64_t, node_id> leaders_;
  std::map<node_id, node_view> leader_logs_;
  std::map<std::uint64_t, committed_entry> committed_;
  std::map<node_id, std::size_t> applied_seen_;
  std::map<node_id, std::uint64_t> last_applied_;
};

}  // namespace keel::test
