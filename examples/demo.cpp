// The keel demo: a three-node Raft cluster in one process. It elects a
// leader, replicates proposals, loses the leader to a crash, elects another,
// brings the old leader back and shows that every node applied the same log.
//
// Each node is a raw_node over memory_storage; this file plays the node layer
// (persist, send, apply, advance) and the network (a message queue that can
// drop everything to or from a crashed node). Time is logical: one tick per
// loop round, so the run is the same every time.
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keel/keel.hpp"

namespace {

using namespace keel::raft;

struct demo_node {
  std::unique_ptr<memory_storage> storage = std::make_unique<memory_storage>();
  std::optional<raw_node<memory_storage>> raft;
  std::vector<std::string> applied;
  bool down = false;
};

class demo_cluster {
 public:
  explicit demo_cluster(std::vector<node_id> ids) {
    conf_state cs;
    cs.voters = ids;
    for (node_id id : ids) {
      demo_node& n = nodes_[id];
      // Bootstrap: every node starts from the same snapshot naming the voters.
      snapshot boot;
      boot.metadata = {.index = 1, .term = 1, .conf = cs};
      (void)n.storage->apply_snapshot(boot);
      start(id);
    }
  }

  /// Runs `rounds` of tick + deliver + process on every live node.
  void run(int rounds) {
    for (int r = 0; r < rounds; ++r) {
      ++clock_;
      for (auto& [id, n] : nodes_) {
        if (!n.down) n.raft->tick();
      }
      settle();
    }
  }

  /// Runs until some live node leads (or gives up after `limit` rounds).
  node_id run_until_leader(int limit) {
    for (int r = 0; r < limit; ++r) {
      if (node_id lead = leader(); lead != no_node) return lead;
      run(1);
    }
    return leader();
  }

  node_id leader() const {
    for (const auto& [id, n] : nodes_) {
      if (!n.down && n.raft->status().soft_state.raft_state == state_type::leader) return id;
    }
    return no_node;
  }

  void propose(node_id on, const std::string& data) {
    if (auto ec = nodes_.at(on).raft->propose(data)) {
      std::printf("[t=%3d] proposal '%s' on node %llu refused: %s\n", clock_, data.c_str(),
                  static_cast<unsigned long long>(on), ec.message().c_str());
    }
    settle();
  }

  /// Crashes a node: it stops, and whatever it had not persisted is gone.
  void crash(node_id id) {
    nodes_.at(id).down = true;
    std::printf("[t=%3d] node %llu crashes\n", clock_, static_cast<unsigned long long>(id));
  }

  /// Restarts a crashed node from its storage.
  void restart(node_id id) {
    nodes_.at(id).down = false;
    start(id);
    std::printf("[t=%3d] node %llu restarts from its log\n", clock_,
                static_cast<unsigned long long>(id));
  }

  void print_logs() const {
    for (const auto& [id, n] : nodes_) {
      std::printf("  node %llu applied:", static_cast<unsigned long long>(id));
      for (const auto& a : n.applied) std::printf(" %s", a.c_str());
      const auto st = n.raft->status();
      std::printf("   (term %llu, commit %llu, %s)\n",
                  static_cast<unsigned long long>(st.hard_state.term),
                  static_cast<unsigned long long>(st.hard_state.commit),
                  to_string(st.soft_state.raft_state));
    }
  }

  bool logs_agree() const {
    const std::vector<std::string>* first = nullptr;
    for (const auto& [id, n] : nodes_) {
      if (first == nullptr) {
        first = &n.applied;
      } else if (n.applied != *first) {
        return false;
      }
    }
    return true;
  }

 private:
  void start(node_id id) {
    demo_node& n = nodes_.at(id);
    config c;
    c.id = id;
    c.applied = 0;
    n.applied.clear();  // The demo's state machine is rebuilt by replaying the log.
    auto created = raw_node<memory_storage>::create(c, *n.storage, splitmix_random(id * 7919));
    if (!created) {
      std::printf("node %llu cannot start: %s\n", static_cast<unsigned long long>(id),
                  created.error().message().c_str());
      std::exit(1);
    }
    n.raft.emplace(std::move(*created));
  }

  /// Processes readies and delivers messages until the cluster is quiet.
  void settle() {
    bool busy = true;
    while (busy) {
      busy = false;
      for (auto& [id, n] : nodes_) {
        if (!n.down && n.raft->has_ready()) {
          handle_ready(id, n);
          busy = true;
        }
      }
      while (!wire_.empty()) {
        message m = std::move(wire_.front());
        wire_.pop_front();
        auto it = nodes_.find(m.to);
        if (it == nodes_.end() || it->second.down || nodes_.at(m.from).down) continue;
        (void)it->second.raft->step(std::move(m));
        busy = true;
      }
    }
  }

  void handle_ready(node_id id, demo_node& n) {
    ready rd = n.raft->ready();
    if (rd.soft_state && rd.soft_state->raft_state == state_type::leader) {
      std::printf("[t=%3d] node %llu is elected leader of term %llu\n", clock_,
                  static_cast<unsigned long long>(id),
                  static_cast<unsigned long long>(n.raft->status().hard_state.term));
    }
    if (rd.snapshot) (void)n.storage->apply_snapshot(*rd.snapshot);
    (void)n.storage->append(rd.entries);
    if (rd.hard_state) n.storage->set_hard_state(*rd.hard_state);
    for (message& m : rd.messages) wire_.push_back(std::move(m));
    for (const entry& e : rd.committed_entries) {
      if (e.type == entry_type::normal && !e.data.empty()) n.applied.push_back(e.data.str());
    }
    n.raft->advance();
  }

  std::map<node_id, demo_node> nodes_;
  std::deque<message> wire_;
  int clock_ = 0;
};

}  // namespace

int main() {
  std::printf("keel demo: a three-node Raft cluster in one process\n\n");
  demo_cluster cluster({1, 2, 3});

  node_id first = cluster.run_until_leader(100);
  if (first == no_node) {
    std::printf("no leader elected\n");
    return 1;
  }
  for (int i = 1; i <= 3; ++i) cluster.propose(first, "set-x=" + std::to_string(i));
  cluster.run(2);
  std::printf("\nafter three proposals on the leader:\n");
  cluster.print_logs();

  std::printf("\n");
  cluster.crash(first);
  node_id second = cluster.run_until_leader(100);
  if (second == no_node || second == first) {
    std::printf("no new leader elected\n");
    return 1;
  }
  cluster.propose(second, "set-y=1");
  cluster.run(2);

  cluster.restart(first);
  cluster.run(20);
  std::printf("\nafter the old leader rejoined:\n");
  cluster.print_logs();

  const bool agree = cluster.logs_agree();
  std::printf("\nall nodes applied the same log: %s\n", agree ? "yes" : "NO");
  return agree ? 0 : 1;
}
