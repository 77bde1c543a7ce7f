// Test harness: replicas with observation policies (a metrics and a logging
// object per replica, owned here) over the in-process network, one
// simulated disk each, driven in lock step as in tests/node/replica.test.cpp.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../store/plain_objects.hpp"
#include "keel/node/replica.hpp"
#include "keel/sim/disk.hpp"
#include "keel/transport/in_process.hpp"

namespace keel::test {

template <class Observe>
class observed_cluster {
 public:
  using replica_type = node::basic_replica<Observe, sim::disk_file_system, transport::endpoint,
                                           plain::task, plain::service, plain::node>;
  using metrics_type = typename Observe::metrics;
  using log_type = typename Observe::log;
  using outcome_ptr = std::shared_ptr<const node::write_outcome>;

  /// Every replica gets make_metrics(id) and make_log(id) (null: the silent default).
  observed_cluster(std::uint64_t seed, std::vector<raft::node_id> ids, node::replica_options base,
                   std::function<std::unique_ptr<metrics_type>(raft::node_id)> make_metrics,
                   std::function<std::unique_ptr<log_type>(raft::node_id)> make_log)
      : network_(seed),
        ids_(std::move(ids)),
        base_(std::move(base)),
        make_metrics_(std::move(make_metrics)),
        make_log_(std::move(make_log)) {
    for (raft::node_id id : ids_) open(id, false);
  }

  ~observed_cluster() {
    for (auto& [id, r] : replicas_) network_.disconnect(id);
    replicas_.clear();
  }

  /// Opens replica `id` (a new member with `join`).
  void open(raft::node_id id, bool join) {
    disks_[id] = std::make_unique<sim::disk>();
    metrics_[id] = make_metrics_ ? make_metrics_(id) : nullptr;
    logs_[id] = make_log_ ? make_log_(id) : nullptr;
    node::replica_options opts = base_;
    opts.id = id;
    opts.members = ids_;
    opts.data_dir = "/data";
    opts.join = join;
    auto r = replica_type::open(
        disks_[id]->file_system(), opts, {.metrics = metrics_[id].get(), .log = logs_[id].get()},
        [&](transport::handler h) { return network_.connect(id, std::move(h)); });
    REQUIRE(r);
    replicas_[id] = std::move(*r);
  }

  /// The process of replica `id` goes away: the network forgets it.
  void remove(raft::node_id id) {
    network_.disconnect(id);
    replicas_.erase(id);
  }

  /// One round: every replica ticks, works, and the network delivers.
  void step() {
    for (auto& [id, r] : replicas_) r->tick();
    settle();
  }

  /// Work and delivery until nothing moves, without ticks.
  void settle() {
    for (int i = 0; i < 100; ++i) {
      bool worked = false;
      for (auto& [id, r] : replicas_) worked |= r->run_once();
      worked |= network_.deliver_all() > 0;
      if (!worked) return;
    }
  }

  replica_type* leader() {
    for (auto& [id, r] : replicas_) {
      if (r->is_leader()) return r.get();
    }
    return nullptr;
  }

  replica_type* wait_for_leader(int rounds = 200) {
    for (int i = 0; i < rounds; ++i) {
      if (auto* l = leader()) return l;
      step();
    }
    return nullptr;
  }

  replica_type* follower() {
    for (auto& [id, r] : replicas_) {
      if (!r->is_leader()) return r.get();
    }
    return nullptr;
  }

  /// Steps until the write is decided.
  void wait(const outcome_ptr& o, int rounds = 200) {
    for (int i = 0; i < rounds && !o->done; ++i) step();
  }

  /// Proposes a task on the leader and waits for its commit.
  std::uint64_t write(const std::string& id) {
    replica_type* l = wait_for_leader();
    REQUIRE(l != nullptr);
    auto w = l->propose([&](auto& tx) {
      plain::task t;
      t.id = id;
      t.service_id = "web";
      t.slot = 1;
      return tx.create(t);
    });
    REQUIRE(w);
    wait(*w);
    REQUIRE((*w)->done);
    REQUIRE_FALSE((*w)->error);
    return (*w)->index;
  }

  replica_type& at(raft::node_id id) { return *replicas_.at(id); }
  metrics_type& metrics(raft::node_id id) { return *metrics_.at(id); }
  log_type& log(raft::node_id id) { return *logs_.at(id); }
  transport::in_process_network& network() { return network_; }

 private:
  transport::in_process_network network_;
  std::vector<raft::node_id> ids_;
  node::replica_options base_;
  std::function<std::unique_ptr<metrics_type>(raft::node_id)> make_metrics_;
  std::function<std::unique_ptr<log_type>(raft::node_id)> make_log_;
  std::map<raft::node_id, std::unique_ptr<sim::disk>> disks_;
  std::map<raft::node_id, std::unique_ptr<metrics_type>> metrics_;
  std::map<raft::node_id, std::unique_ptr<log_type>> logs_;
  // Last: destroyed first, while the objects they report to still exist.
  std::map<raft::node_id, std::unique_ptr<replica_type>> replicas_;
};

}  // namespace keel::test
