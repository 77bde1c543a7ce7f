// A replicated task scheduler in the style of Docker SwarmKit, on keel's
// runners and the example protobuf objects (Node, Service, Task;
// proto/keel/objects.proto): what the store, its watches, batches and
// version-checked updates are for.
//
//   - Three managers (runners) replicate the store over the in-process
//     network, each with its WAL in a scratch directory.
//   - On the leader, the orchestrator turns each service's replica count
//     into tasks (one per slot) and unassigns the tasks of workers that are
//     no longer READY; the scheduler gives every unassigned task to the
//     least-loaded READY worker. Both watch the leader's store and reconcile
//     from its state; their writes are batches of version-checked updates,
//     and a pass that meets a sequence conflict (an agent wrote the task
//     meanwhile) reads again and retries.
//   - Each worker's agent watches its tasks on a follower's store and
//     marks each task assigned to it RUNNING (a write that goes to whichever
//     manager leads).
//
// The story: four workers and a service of six replicas; a worker goes down
// and its tasks move to the others; the service scales to twelve and the
// leader dies before its scheduler is done; the new leader's scheduler picks
// up from the store alone; the old leader comes back. The example checks at
// the end that every task runs on a live worker, that the workers' loads
// differ by at most one, and that all three managers hold the same tasks.
//
// Leadership may also move at other times (a manager's thread starved on a
// busy machine misses its heartbeats): the story's writes go to whichever
// manager leads, and when the services find their manager deposed, the
// story starts new ones on the manager that leads.
//
// Simplification: a rescheduled task keeps its id (SwarmKit would shut it
// down and create a new one for the slot).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "example_cluster.hpp"
#include "keel/keel.hpp"
#include "keel/objects_traits.hpp"

namespace {

namespace pb = keel::objects;
using keel::errc;
using keel::examples::check;
using keel::raft::node_id;
using manager = keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system,
                                   keel::transport::endpoint, pb::Node, pb::Service, pb::Task>;
using namespace std::chrono_literals;

/// The managers that agents may write through: each write goes to the one
/// that leads. A manager is removed before it stops, and removal waits for
/// the writes in progress through it.
class leader_gateway {
 public:
  void add(node_id id, manager* m) {
    std::unique_lock lock(mutex_);
    managers_[id] = m;
  }
  void remove(node_id id) {
    std::unique_lock lock(mutex_);
    managers_.erase(id);
  }

  /// Runs fn as a write on the leader; errc::not_leader if none takes it now.
  template <class F>
  keel::result<std::uint64_t> update(F&& fn) {
    std::shared_lock lock(mutex_);
    for (auto& [id, m] : managers_) {
      auto v = m->update(fn, 2s);
      if (v || (v.error() != errc::not_leader && v.error() != errc::leader_not_ready)) return v;
    }
    return errc::not_leader;
  }

 private:
  std::shared_mutex mutex_;
  std::map<node_id, manager*> managers_;
};

bool ready_worker(const pb::Node& n) {
  return n.role() == pb::WORKER && n.status().state() == pb::NodeStatus::READY;
}

/// The orchestrator and the scheduler of one leader, on a thread of their
/// own, until they are destroyed. A pass that does not get through because
/// leadership moves (no leader, a leader not ready, a leader that changed,
/// a dropped proposal) or that timed out is retried, from the state read
/// again: a batch reported lost may have committed, and the version checks
/// make a retry safe. A pass that finds its manager a follower marks the
/// services deposed: the story then starts new ones on the manager that
/// leads.
class leader_services {
 public:
  leader_services(manager& m, node_id id) : manager_(m), id_(id), thread_([this] { run(); }) {}
  leader_services(const leader_services&) = delete;
  leader_services& operator=(const leader_services&) = delete;
  ~leader_services() {
    stopping_ = true;
    thread_.join();
  }

  /// The manager they run on.
  node_id id() const noexcept { return id_; }

  /// Whether their last pass found their manager no longer leading.
  bool deposed() const noexcept { return deposed_; }

  /// An error no retry can mend (none is expected), once a pass met one.
  std::error_code failure() const {
    std::lock_guard lock(failure_mutex_);
    return failure_;
  }

 private:
  void run() {
    while (!stopping_) {
      // Watch first, then reconcile from the state: no change falls between.
      auto watch = manager_.store().watch(keel::store::any_event(keel::store::on_any<pb::Task>(),
                                                                 keel::store::on_any<pb::Service>(),
                                                                 keel::store::on_any<pb::Node>()),
                                          4096);
      bool due = true;
      while (!stopping_ && !watch.closed()) {
        if (due) due = !reconcile();
        // The next change, or (when a pass is to be retried) the next 50 ms;
        // the timeout also bounds how long a stop request goes unseen.
        if (!watch.next_for(50ms)) continue;
        while (watch.try_next()) {
        }
        due = true;
      }
    }
  }

  /// Passes until one succeeds: true; false if the next pass must wait
  /// (a change, or a while).
  bool reconcile() {
    for (int attempt = 0; attempt < 10 && !stopping_; ++attempt) {
      const std::error_code ec = pass();
      if (!ec) {
        deposed_ = false;
        waiting_for_ = {};
        return true;
      }
      // Someone wrote meanwhile (an agent, or a write of the previous leader
      // that this one applied late): read again.
      if (ec == errc::sequence_conflict || ec == errc::exists) {
        std::printf("  [manager %llu] %s: reading again\n", static_cast<unsigned long long>(id_),
                    ec == errc::exists ? "task exists" : "sequence conflict");
        continue;
      }
      if (ec == errc::not_leader) deposed_ = true;
      if (ec == errc::leader_not_ready) deposed_ = false;  // It leads again.
      if (!keel::examples::leadership_moved(ec) && ec != errc::timeout) {
        std::printf("  [manager %llu] scheduling failed: %s\n",
                    static_cast<unsigned long long>(id_), ec.message().c_str());
        std::lock_guard lock(failure_mutex_);
        if (!failure_) failure_ = ec;
        return false;
      }
      if (ec != waiting_for_) {
        std::printf("  [manager %llu] waits to schedule: %s\n",
                    static_cast<unsigned long long>(id_), ec.message().c_str());
        waiting_for_ = ec;
      }
      return false;
    }
    return false;  // Conflicts every time: after a while, again.
  }

  /// One batch of version-checked updates (or creates) of these tasks.
  std::error_code write(const std::vector<pb::Task>& tasks, bool create) {
    if (tasks.empty()) return {};
    const keel::node::batch_result r = manager_.batch(
        [&](auto& b) {
          for (const pb::Task& t : tasks) {
            (void)b.update([&](auto& tx) { return create ? tx.create(t) : tx.update(t); });
          }
        },
        5s);
    return r.error;
  }

  std::error_code pass() {
    // The orchestrator: missing slots get tasks; tasks on workers that are
    // not READY lose their assignment.
    std::vector<pb::Task> creates, unassign;
    manager_.view([&](const auto& tx) {
      std::map<std::string, bool> ready;
      (void)tx.template for_each<pb::Node>(
          keel::store::all(), [&](const auto& n) { ready[n->id()] = ready_worker(*n); });
      (void)tx.template for_each<pb::Service>(keel::store::all(), [&](const auto& s) {
        std::set<std::uint64_t> slots;
        (void)tx.template for_each<pb::Task>(keel::store::by_service_id(s->id()),
                                             [&](const auto& t) { slots.insert(t->slot()); });
        for (std::uint64_t slot = 1; slot <= s->spec().replicas(); ++slot) {
          if (slots.contains(slot)) continue;
          pb::Task t;
          t.set_id("task-" + s->name() + "-" + std::to_string(slot));
          t.set_name(s->name() + "." + std::to_string(slot));
          t.set_service_id(s->id());
          t.set_slot(slot);
          t.set_desired_state(pb::RUNNING);
          t.mutable_status()->set_state(pb::PENDING);
          creates.push_back(t);
        }
      });
      (void)tx.template for_each<pb::Task>(keel::store::all(), [&](const auto& t) {
        if (t->node_id().empty() || ready[t->node_id()]) return;
        pb::Task moved = *t;  // Keeps the version read: the update is checked against it.
        moved.clear_node_id();
        moved.mutable_status()->set_state(pb::PENDING);
        unassign.push_back(std::move(moved));
      });
    });
    if (auto ec = write(creates, true)) return ec;
    if (auto ec = write(unassign, false)) return ec;
    if (!creates.empty() || !unassign.empty()) {
      std::printf("  [orchestrator on manager %llu] %zu tasks created, %zu unassigned\n",
                  static_cast<unsigned long long>(id_), creates.size(), unassign.size());
    }

    // The scheduler: each unassigned task to the least-loaded READY worker.
    std::vector<pb::Task> assign;
    std::map<std::string, int> load;
    manager_.view([&](const auto& tx) {
      (void)tx.template for_each<pb::Node>(keel::store::all(), [&](const auto& n) {
        if (ready_worker(*n)) load[n->id()] = 0;
      });
      std::vector<pb::Task> pending;
      (void)tx.template for_each<pb::Task>(keel::store::all(), [&](const auto& t) {
        if (t->node_id().empty()) {
          pending.push_back(*t);
        } else if (load.contains(t->node_id())) {
          ++load[t->node_id()];
        }
      });
      if (load.empty()) return;
      for (pb::Task& t : pending) {
        auto least = std::min_element(load.begin(), load.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        });
        ++least->second;
        t.set_node_id(least->first);
        t.mutable_status()->set_state(pb::ASSIGNED);
        assign.push_back(std::move(t));
      }
    });
    if (auto ec = write(assign, false)) return ec;
    if (!assign.empty()) {
      std::string loads;
      for (const auto& [w, n] : load) loads += " " + w + ":" + std::to_string(n);
      std::printf("  [scheduler on manager %llu] %zu tasks assigned; load%s\n",
                  static_cast<unsigned long long>(id_), assign.size(), loads.c_str());
    }
    return {};
  }

  manager& manager_;
  node_id id_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> deposed_{false};
  std::error_code waiting_for_{};  ///< The service thread's own.
  mutable std::mutex failure_mutex_;
  std::error_code failure_{};
  std::thread thread_;  ///< Last: it starts once the members above are.
};

/// A worker's agent: watches the tasks assigned to its worker on one
/// manager's store and reports each one RUNNING through the gateway.
class agent {
 public:
  agent(std::string worker, manager& watched, leader_gateway& gateway)
      : worker_(std::move(worker)),
        watched_(watched),
        gateway_(gateway),
        thread_([this] { run(); }) {}
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;
  ~agent() {
    stopping_ = true;
    thread_.join();
  }

 private:
  bool mine_to_start(const pb::Task& t) const {
    return t.node_id() == worker_ && t.status().state() == pb::ASSIGNED;
  }

  void run() {
    while (!stopping_) {
      std::set<std::string> pending;
      auto [initial, watch] = watched_.store().view_and_watch(
          [&](const auto& tx) {
            std::vector<std::string> ids;
            (void)tx.template for_each<pb::Task>(keel::store::by_node_id(worker_),
                                                 [&](const auto& t) {
                                                   if (mine_to_start(*t)) ids.push_back(t->id());
                                                 });
            return ids;
          },
          keel::store::on_any<pb::Task>(
              [this](const pb::Task& t) { return t.node_id() == worker_; }),
          4096);
      pending.insert(initial.begin(), initial.end());
      while (!stopping_ && !watch.closed()) {
        for (auto it = pending.begin(); it != pending.end();) {
          it = start(*it) ? pending.erase(it) : std::next(it);
        }
        // Waits for the next assignment; retries what failed (no leader) sooner.
        auto ev = watch.next_for(pending.empty() ? 50ms : 10ms);
        for (; ev; ev = watch.try_next()) {
          const auto& t = ev->template after_as<pb::Task>();
          if (t && mine_to_start(*t)) pending.insert(t->id());
        }
      }
    }
  }

  /// Marks task id RUNNING if it is still assigned here; false to retry later.
  bool start(const std::string& id) {
    std::string name;
    auto v = gateway_.update([&](auto& tx) -> std::error_code {
      auto t = tx.template get<pb::Task>(id);
      if (!t || !mine_to_start(*t)) return errc::not_found;  // Moved, or done already.
      pb::Task running = *t;
      running.mutable_status()->set_state(pb::RUNNING);
      name = running.name();
      return tx.update(running);
    });
    if (v) std::printf("  [agent %s] %s RUNNING\n", worker_.c_str(), name.c_str());
    return v || v.error() == errc::not_found;
  }

  std::string worker_;
  manager& watched_;
  leader_gateway& gateway_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

pb::Node worker(const std::string& id) {
  pb::Node n;
  n.set_id(id);
  n.set_name(id);
  n.set_role(pb::WORKER);
  n.mutable_status()->set_state(pb::NodeStatus::READY);
  return n;
}

/// "task-web-1@w1:RUNNING ..." for every task a manager holds.
std::string placement(const auto& tx) {
  std::string out;
  (void)tx.template for_each<pb::Task>(keel::store::all(), [&](const auto& t) {
    out += t->id() + "@" + t->node_id() + ":" + pb::TaskState_Name(t->status().state()) + " ";
  });
  return out;
}

/// Whether every task of `expected` runs on a READY worker.
bool converged(const auto& tx, std::size_t expected) {
  if (tx.template count<pb::Task>() != expected) return false;
  bool ok = true;
  (void)tx.template for_each<pb::Task>(keel::store::all(), [&](const auto& t) {
    const auto n = tx.template get<pb::Node>(t->node_id());
    ok = ok && n && ready_worker(*n) && t->status().state() == pb::RUNNING;
  });
  return ok;
}

using manager_cluster = keel::examples::in_process_cluster<manager>;

/// Keeps the leader services on the manager that leads: when theirs no
/// longer does, they stop and new ones start on whichever manager leads now.
void follow_leader(manager_cluster& cluster, std::unique_ptr<leader_services>& services) {
  const node_id leader = cluster.await_leader();
  if (leader == services->id()) return;  // Its manager leads again.
  std::printf("  manager %llu lost its leadership; manager %llu leads and schedules now\n",
              static_cast<unsigned long long>(services->id()),
              static_cast<unsigned long long>(leader));
  services.reset();
  services = std::make_unique<leader_services>(cluster.at(leader), leader);
}

/// Waits, on the watch of the agents' manager `watched`, until it applied
/// the write of version `since` and `expected` tasks run on READY workers;
/// meanwhile moves the leader services to the manager that leads whenever
/// theirs is deposed.
void await_converged(manager_cluster& cluster, std::unique_ptr<leader_services>& services,
                     node_id watched, std::uint64_t since, std::size_t expected) {
  const auto deadline = std::chrono::steady_clock::now() + keel::examples::await_timeout;
  manager& m = cluster.at(watched);
  auto watch = m.store().watch(keel::store::on_any<pb::Task>(), 4096);
  while (
      !m.view([&](const auto& tx) { return tx.version() >= since && converged(tx, expected); })) {
    if (const std::error_code ec = services->failure()) {
      throw keel::examples::check_failed("scheduling on manager " + std::to_string(services->id()) +
                                         ": " + ec.message());
    }
    if (services->deposed()) follow_leader(cluster, services);
    if (std::chrono::steady_clock::now() >= deadline) {
      throw keel::examples::check_failed(std::to_string(expected) + " tasks not running in time");
    }
    if (watch.closed()) watch = m.store().watch(keel::store::on_any<pb::Task>(), 4096);
    // The next change of a task, or 50 ms to look at the services again.
    (void)watch.next_for(50ms);
  }
}

/// Tasks per READY worker.
std::map<std::string, int> loads(manager& m) {
  return m.view([](const auto& tx) {
    std::map<std::string, int> out;
    (void)tx.template for_each<pb::Node>(keel::store::all(), [&](const auto& n) {
      if (ready_worker(*n)) out[n->id()] = 0;
    });
    (void)tx.template for_each<pb::Task>(keel::store::all(),
                                         [&](const auto& t) { ++out[t->node_id()]; });
    return out;
  });
}

std::string describe(const std::map<std::string, int>& load) {
  std::string out;
  for (const auto& [w, n] : load) out += (out.empty() ? "" : " ") + w + ":" + std::to_string(n);
  return out;
}

/// The placement of the tasks, read linearizably on manager `id` (retried
/// while it knows no leader, or the leader changes).
std::string placement_on(manager_cluster& cluster, node_id id) {
  auto p = cluster.read_linearizable(id, [](const auto& tx) { return placement(tx); });
  if (!p) throw keel::examples::check_failed("linearizable read: " + p.error().message());
  return *p;
}

/// The agents of `workers`, watching manager `watched`.
std::map<std::string, std::unique_ptr<agent>> start_agents(const std::vector<std::string>& workers,
                                                           manager& watched,
                                                           leader_gateway& gateway) {
  std::map<std::string, std::unique_ptr<agent>> agents;
  for (const std::string& w : workers) agents[w] = std::make_unique<agent>(w, watched, gateway);
  return agents;
}

void story() {
  manager_cluster cluster({1, 2, 3});
  leader_gateway gateway;
  for (node_id id : cluster.ids()) gateway.add(id, &cluster.at(id));

  std::printf("1. Three managers elect a leader; it runs the orchestrator and the scheduler.\n");
  const node_id first = cluster.await_leader();
  node_id watched = first == 1 ? 2 : 1;
  std::printf("  manager %llu leads; the agents watch manager %llu\n",
              static_cast<unsigned long long>(first), static_cast<unsigned long long>(watched));
  auto services = std::make_unique<leader_services>(cluster.at(first), first);
  auto agents = start_agents({"w1", "w2", "w3", "w4"}, cluster.at(watched), gateway);

  // The story's writes go to whichever manager leads, and each reads what it
  // changes: a retry after an attempt that did commit finds it done.
  std::printf("2. Four workers join and service web asks for 6 replicas.\n");
  auto v = cluster.update_on_leader([](auto& tx) -> std::error_code {
    if (tx.template get<pb::Service>("svc-web")) return {};  // Committed by an earlier attempt.
    for (const char* w : {"w1", "w2", "w3", "w4"}) {
      if (auto ec = tx.create(worker(w))) return ec;
    }
    pb::Service web;
    web.set_id("svc-web");
    web.set_name("web");
    web.mutable_spec()->set_replicas(6);
    return tx.create(web);
  });
  check(v.has_value(), "workers and service created");
  await_converged(cluster, services, watched, *v, 6);
  std::printf("  load: %s\n", describe(loads(cluster.at(watched))).c_str());

  std::printf("3. Worker w4 goes down: its tasks move to the others.\n");
  agents.erase("w4");
  v = cluster.update_on_leader([](auto& tx) {
    pb::Node n = *tx.template get<pb::Node>("w4");
    n.mutable_status()->set_state(pb::NodeStatus::DOWN);
    return tx.update(n);
  });
  check(v.has_value(), "w4 marked DOWN");
  await_converged(cluster, services, watched, *v, 6);
  std::printf("  load: %s\n", describe(loads(cluster.at(watched))).c_str());

  std::printf("4. web scales to 12, and the leader dies before its scheduler is done.\n");
  v = cluster.update_on_leader([](auto& tx) {
    pb::Service web = *tx.template get<pb::Service>("svc-web");
    web.mutable_spec()->set_replicas(12);
    return tx.update(web);
  });
  check(v.has_value(), "scale-up committed");
  // The manager that leads now dies, with the services it runs.
  const node_id dead = cluster.await_leader();
  if (dead == watched) {
    watched = dead == 1 ? 2 : 1;
    std::printf("  (manager %llu leads now: the agents move to watch manager %llu)\n",
                static_cast<unsigned long long>(dead), static_cast<unsigned long long>(watched));
    agents.clear();
    agents = start_agents({"w1", "w2", "w3"}, cluster.at(watched), gateway);
  }
  services.reset();
  gateway.remove(dead);
  cluster.stop(dead);
  const node_id second = cluster.await_leader();
  std::printf("  manager %llu died; manager %llu leads now; its scheduler starts from the store\n",
              static_cast<unsigned long long>(dead), static_cast<unsigned long long>(second));
  check(second != dead, "a new leader took over");
  services = std::make_unique<leader_services>(cluster.at(second), second);
  await_converged(cluster, services, watched, *v, 12);
  const auto final_load = loads(cluster.at(watched));
  std::printf("  load: %s\n", describe(final_load).c_str());

  std::printf("5. The old leader restarts and catches up.\n");
  cluster.start(dead);
  gateway.add(dead, &cluster.at(dead));

  std::printf("6. Checks.\n");
  const node_id reference_id = services->id();
  const std::string reference = placement_on(cluster, reference_id);
  for (node_id id : cluster.ids()) {
    check(placement_on(cluster, id) == reference,
          "manager " + std::to_string(id) + " holds the same 12 tasks");
  }
  check(cluster.at(reference_id).view([](const auto& tx) { return converged(tx, 12); }),
        "every task is RUNNING on a READY worker");
  check(!final_load.contains("w4"), "nothing runs on the down worker");
  int lo = 1 << 30, hi = 0;
  for (const auto& [w, n] : final_load) {
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  check(final_load.size() == 3 && hi - lo <= 1,
        "the three live workers' loads differ by at most one");

  // The agents and the scheduler stop before the managers they use.
  agents.clear();
  services.reset();
}

}  // namespace

int main() { return keel::examples::run_example(story); }
