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
/// own. They stop when asked, or when their manager no longer leads.
class leader_services {
 public:
  leader_services(manager& m, node_id id) : manager_(m), id_(id), thread_([this] { run(); }) {}
  leader_services(const leader_services&) = delete;
  leader_services& operator=(const leader_services&) = delete;
  ~leader_services() {
    stopping_ = true;
    thread_.join();
  }

 private:
  void run() {
    while (!stopping_) {
      // Watch first, then reconcile from the state: no change falls between.
      auto watch = manager_.store().watch(keel::store::any_event(keel::store::on_any<pb::Task>(),
                                                                 keel::store::on_any<pb::Service>(),
                                                                 keel::store::on_any<pb::Node>()),
                                          4096);
      reconcile();
      while (!stopping_ && !watch.closed()) {
        // The timeout only bounds how long a stop request goes unseen.
        if (!watch.next_for(50ms)) continue;
        while (watch.try_next()) {
        }
        reconcile();
      }
    }
  }

  void reconcile() {
    for (int attempt = 0; attempt < 10 && !stopping_; ++attempt) {
      const std::error_code ec = pass();
      if (!ec) return;
      // Someone wrote meanwhile (an agent, or a write of the previous leader
      // that this one applied late): read again.
      if (ec == errc::sequence_conflict || ec == errc::exists) {
        std::printf("  [manager %llu] %s: reading again\n", static_cast<unsigned long long>(id_),
                    ec == errc::exists ? "task exists" : "sequence conflict");
        continue;
      }
      std::printf("  [manager %llu] stops scheduling: %s\n", static_cast<unsigned long long>(id_),
                  ec.message().c_str());
      stopping_ = true;  // Not leading any more, or stopped.
      return;
    }
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
  std::thread thread_;
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

/// Waits, on m's watch, until `expected` tasks run on READY workers.
void await_converged(manager& m, std::size_t expected) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  auto watch = m.store().watch(keel::store::on_any<pb::Task>(), 4096);
  while (!m.view([&](const auto& tx) { return converged(tx, expected); })) {
    if (!watch.next_until(deadline) && std::chrono::steady_clock::now() >= deadline) {
      throw keel::examples::check_failed(std::to_string(expected) + " tasks not running in time");
    }
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

/// A linearizable read on m, retried while m knows no leader yet.
std::string placement_on(manager& m) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto p = m.view_linearizable([](const auto& tx) { return placement(tx); }, 5s);
    if (p) return *p;
    if (p.error() != errc::proposal_dropped || std::chrono::steady_clock::now() > deadline) {
      throw keel::examples::check_failed("linearizable read: " + p.error().message());
    }
    std::this_thread::yield();
  }
}

void story() {
  keel::examples::in_process_cluster<manager> cluster({1, 2, 3});
  leader_gateway gateway;
  for (node_id id : cluster.ids()) gateway.add(id, &cluster.at(id));

  std::printf("1. Three managers elect a leader; it runs the orchestrator and the scheduler.\n");
  const node_id first = cluster.await_leader();
  const node_id follower = first == 1 ? 2 : 1;  // Survives the failover below.
  std::printf("  manager %llu leads; the agents watch manager %llu\n",
              static_cast<unsigned long long>(first), static_cast<unsigned long long>(follower));
  auto services = std::make_unique<leader_services>(cluster.at(first), first);
  std::map<std::string, std::unique_ptr<agent>> agents;
  for (const char* w : {"w1", "w2", "w3", "w4"}) {
    agents[w] = std::make_unique<agent>(w, cluster.at(follower), gateway);
  }

  std::printf("2. Four workers join and service web asks for 6 replicas.\n");
  auto v = gateway.update([](auto& tx) -> std::error_code {
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
  await_converged(cluster.at(follower), 6);
  std::printf("  load: %s\n", describe(loads(cluster.at(follower))).c_str());

  std::printf("3. Worker w4 goes down: its tasks move to the others.\n");
  agents.erase("w4");
  v = gateway.update([](auto& tx) {
    pb::Node n = *tx.template get<pb::Node>("w4");
    n.mutable_status()->set_state(pb::NodeStatus::DOWN);
    return tx.update(n);
  });
  check(v.has_value(), "w4 marked DOWN");
  await_converged(cluster.at(follower), 6);
  std::printf("  load: %s\n", describe(loads(cluster.at(follower))).c_str());

  std::printf("4. web scales to 12, and the leader dies before its scheduler is done.\n");
  v = gateway.update([](auto& tx) {
    pb::Service web = *tx.template get<pb::Service>("svc-web");
    web.mutable_spec()->set_replicas(12);
    return tx.update(web);
  });
  check(v.has_value(), "scale-up committed");
  services.reset();
  gateway.remove(first);
  cluster.stop(first);
  const node_id second = cluster.await_leader();
  std::printf("  manager %llu leads now; its scheduler starts from the store\n",
              static_cast<unsigned long long>(second));
  check(second != first, "a new leader took over");
  services = std::make_unique<leader_services>(cluster.at(second), second);
  await_converged(cluster.at(follower), 12);
  const auto final_load = loads(cluster.at(follower));
  std::printf("  load: %s\n", describe(final_load).c_str());

  std::printf("5. The old leader restarts and catches up.\n");
  cluster.start(first);
  gateway.add(first, &cluster.at(first));

  std::printf("6. Checks.\n");
  const std::string reference = placement_on(cluster.at(second));
  for (node_id id : cluster.ids()) {
    check(placement_on(cluster.at(id)) == reference,
          "manager " + std::to_string(id) + " holds the same 12 tasks");
  }
  check(cluster.at(second).view([](const auto& tx) { return converged(tx, 12); }),
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
