// The keel demo, simulated: a three-manager cluster in one process, in the shape of
// Docker SwarmKit's managers. Each manager is a keel replica (Raft core,
// write-ahead log on its own simulated disk, object store) and they talk
// over the in-process network. The story:
//
//   1. the managers elect a leader;
//   2. the leader creates the cluster object, a service and its tasks;
//   3. a watcher on a follower prints every task state change it sees;
//   4. one write moves all tasks to RUNNING;
//   5. the service scales out: a batch of creates, grouped into a few log
//      entries, each create atomic;
//   6. an update built on a stale version is refused;
//   7. the leader's process is killed; the others elect a new leader, which
//      keeps writing;
//   8. the old leader restarts, recovers its store from its WAL and catches
//      up;
//   9. a fourth manager joins: it is added as a learner, receives a snapshot
//      of the store, catches up and is promoted to voter; every manager's
//      status shows the cluster.
//
// Time is logical (one tick per round) and the network and disks are
// simulated, so the run is the same every time.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "keel/keel.hpp"
#include "keel/objects_traits.hpp"
#include "keel/sim/disk.hpp"
#include "swarm_story.hpp"

namespace {

namespace pb = keel::objects;
using keel::raft::node_id;
using manager = keel::node::replica<keel::sim::disk_file_system, keel::transport::endpoint,
                                    pb::Cluster, pb::Service, pb::Task>;
using outcome = std::shared_ptr<const keel::node::write_outcome>;

const char* state_name(pb::TaskState s) { return pb::TaskState_Name(s).c_str(); }

class demo_cluster {
 public:
  demo_cluster() : network_(2026) {
    for (node_id id : ids_) {
      disks_[id] = std::make_unique<keel::sim::disk>();
      start(id);
    }
  }

  void start(node_id id, bool join = false) {
    keel::node::replica_options opts{.id = id, .members = ids_, .data_dir = "/keel", .join = join};
    keel::wal::recovery_report report;
    auto m = manager::open(
        disks_[id]->file_system(), opts,
        [&](keel::transport::handler h) { return network_.connect(id, std::move(h)); }, &report);
    if (!m) {
      std::printf("manager %llu failed to start: %s\n", static_cast<unsigned long long>(id),
                  m.error().message().c_str());
      std::exit(1);
    }
    managers_[id] = std::move(*m);
  }

  void kill(node_id id) {
    network_.disconnect(id);
    managers_.erase(id);
    disks_[id]->crash();  // Whatever was not synced is gone.
  }

  void round() {
    for (auto& [id, m] : managers_) m->tick();
    for (int i = 0; i < 100; ++i) {
      bool worked = false;
      for (auto& [id, m] : managers_) worked |= m->run_once();
      worked |= network_.deliver_all() > 0;
      if (!worked) break;
    }
  }

  manager* leader() {
    for (auto& [id, m] : managers_) {
      if (m->is_leader()) return m.get();
    }
    return nullptr;
  }

  manager* await_leader() {
    for (int i = 0; i < 300; ++i) {
      if (manager* l = leader()) return l;
      round();
    }
    std::printf("no leader elected\n");
    std::exit(1);
  }

  /// Rounds until the write is decided; exits if it failed.
  void commit(const char* what, keel::result<outcome> w) {
    if (!w) {
      std::printf("  %s: refused: %s\n", what, w.error().message().c_str());
      std::exit(1);
    }
    for (int i = 0; i < 300 && !(*w)->done; ++i) round();
    if (!(*w)->done || (*w)->error) {
      std::printf("  %s failed: %s\n", what, (*w)->error.message().c_str());
      std::exit(1);
    }
    std::printf("  %s: committed at index %llu\n", what,
                static_cast<unsigned long long>((*w)->index));
    for (int i = 0; i < 3; ++i) round();  // Followers apply it.
  }

  /// A new manager on a fresh disk that joins the running cluster.
  void join(node_id id) {
    disks_[id] = std::make_unique<keel::sim::disk>();
    start(id, true);
    ids_.push_back(id);
  }

  manager& at(node_id id) { return *managers_.at(id); }
  const std::vector<node_id>& ids() const { return ids_; }
  bool running(node_id id) const { return managers_.count(id) != 0; }

 private:
  keel::transport::in_process_network network_;
  std::vector<node_id> ids_{1, 2, 3};
  std::map<node_id, std::unique_ptr<keel::sim::disk>> disks_;
  std::map<node_id, std::unique_ptr<manager>> managers_;
};

/// "web.1 RUNNING v12, web.2 ..." for one manager's store.
std::string tasks_line(const manager& m) {
  std::string out;
  m.view([&](const auto& tx) {
    (void)tx.template for_each<pb::Task>(keel::store::all(), [&](const auto& t) {
      if (!out.empty()) out += ", ";
      out += t->name() + " " + state_name(t->status().state()) + " v" +
             std::to_string(t->meta().version());
    });
  });
  return out;
}

void print_status(demo_cluster& c) {
  for (node_id id : c.ids()) {
    if (!c.running(id)) continue;
    const keel::node::node_status st = c.at(id).status();
    std::printf("  manager %llu: %-9s term %llu, commit %llu, applied %llu, snapshot at %llu\n",
                static_cast<unsigned long long>(id), st.role.c_str(),
                static_cast<unsigned long long>(st.term),
                static_cast<unsigned long long>(st.commit),
                static_cast<unsigned long long>(st.applied),
                static_cast<unsigned long long>(st.snapshot_index));
    for (const auto& p : st.peers) {
      if (p.progress.empty()) continue;  // Only the leader tracks its peers.
      std::printf("      peer %llu%s: %s, match %llu%s%s\n", static_cast<unsigned long long>(p.id),
                  p.learner ? " (learner)" : "", p.progress.c_str(),
                  static_cast<unsigned long long>(p.match),
                  p.transport.reachable ? "" : ", unreachable: ",
                  p.transport.reachable ? "" : p.transport.last_error.c_str());
    }
  }
}

void print_stores(demo_cluster& c) {
  for (node_id id : c.ids()) {
    if (!c.running(id)) continue;
    std::printf("  manager %llu (applied %llu): %s\n", static_cast<unsigned long long>(id),
                static_cast<unsigned long long>(c.at(id).applied_index()),
                tasks_line(c.at(id)).c_str());
  }
}

}  // namespace

int main() {
  demo_cluster c;

  std::printf("1. Three managers start and elect a leader.\n");
  manager* leader = c.await_leader();
  const node_id first_leader = leader->id();
  std::printf("  manager %llu leads (term %llu)\n", static_cast<unsigned long long>(first_leader),
              static_cast<unsigned long long>(leader->raft_status().hard_state.term));

  std::printf("2. The leader creates the cluster, a service and its three tasks.\n");
  c.commit("create cluster, service web, tasks web.1-3", leader->propose([](auto& tx) {
    return keel::examples::create_cluster_and_service(tx);
  }));
  print_stores(c);

  std::printf("3. A watcher on a follower follows task state changes.\n");
  node_id watcher_on = first_leader == 1 ? 2 : 1;
  auto watch = c.at(watcher_on).store().watch(keel::store::on_update<pb::Task>(), /*capacity=*/64);
  auto drain = [&] {
    while (auto ev = watch.try_next()) {
      const auto& before = ev->before_as<pb::Task>();
      const auto& after = ev->after_as<pb::Task>();
      std::printf("  [watch on manager %llu] %s: %s -> %s (version %llu)\n",
                  static_cast<unsigned long long>(watcher_on), after->name().c_str(),
                  state_name(before->status().state()), state_name(after->status().state()),
                  static_cast<unsigned long long>(after->meta().version()));
    }
  };

  std::printf("4. One write moves every task of the service to RUNNING.\n");
  c.commit("tasks web.1-3 -> RUNNING",
           leader->propose([](auto& tx) { return keel::examples::start_web_tasks(tx); }));
  drain();

  std::printf("5. The service scales to 12 tasks: a batch of 9 creates, at most 4 per entry.\n");
  {
    manager::write_group group;
    int entries = 0;
    auto flush = [&] {
      if (group.empty()) return;
      const std::string what = "batch entry " + std::to_string(++entries) + " (" +
                               std::to_string(group.updates) + " creates)";
      c.commit(what.c_str(), leader->propose_group(group));
    };
    for (int slot = 4; slot <= 12; ++slot) {
      auto ec = leader->group_update(
          group, [slot](auto& tx) { return tx.create(keel::examples::web_task(slot)); });
      if (ec) {
        std::printf("  create web.%d refused: %s\n", slot, ec.message().c_str());
        return 1;
      }
      if (group.updates == 4) flush();
    }
    flush();
  }

  std::printf("6. An update built on a stale version is refused.\n");
  pb::Task stale =
      *leader->view([](const auto& tx) { return tx.template get<pb::Task>("task-web-1"); });
  stale.mutable_meta()->set_version(stale.meta().version() - 1);
  stale.mutable_status()->set_state(pb::SHUTDOWN);
  auto refused = leader->propose([&](auto& tx) { return tx.update(stale); });
  std::printf("  update of web.1 from version %llu: %s\n",
              static_cast<unsigned long long>(stale.meta().version()),
              refused ? "accepted (wrong!)" : refused.error().message().c_str());
  if (refused) return 1;

  std::printf("7. The leader's process is killed.\n");
  c.kill(first_leader);
  leader = c.await_leader();
  std::printf("  manager %llu leads now (term %llu)\n",
              static_cast<unsigned long long>(leader->id()),
              static_cast<unsigned long long>(leader->raft_status().hard_state.term));
  c.commit("task web.2 -> FAILED",
           leader->propose([](auto& tx) { return keel::examples::fail_web_2(tx); }));
  drain();

  std::printf("8. The old leader restarts, recovers from its WAL and catches up.\n");
  c.start(first_leader);
  for (int i = 0; i < 20; ++i) c.round();
  std::printf("  manager %llu applied up to %llu\n", static_cast<unsigned long long>(first_leader),
              static_cast<unsigned long long>(c.at(first_leader).applied_index()));

  std::printf("9. A fourth manager joins through a snapshot.\n");
  leader = c.await_leader();
  c.commit("add manager 4 as a learner", leader->add_learner(4));
  c.join(4);
  for (int i = 0; i < 40 && c.at(4).status().voters.size() < 4; ++i) c.round();
  const keel::node::node_status joined = c.at(4).status();
  std::printf("  manager 4 installed the snapshot at index %llu and is a voter: %s\n",
              static_cast<unsigned long long>(joined.snapshot_index),
              joined.voters.size() == 4 ? "yes" : "no");
  for (int i = 0; i < 5; ++i) c.round();
  print_status(c);
  print_stores(c);
  const std::string reference = tasks_line(c.at(leader->id()));
  for (node_id id : c.ids()) {
    if (tasks_line(c.at(id)) != reference) {
      std::printf("  manager %llu differs!\n", static_cast<unsigned long long>(id));
      return 1;
    }
  }
  if (joined.voters.size() != 4) return 1;
  std::printf("All four managers hold the same objects. Done.\n");
  return 0;
}
