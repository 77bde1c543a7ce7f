// Replicas over the in-process network, each on its own simulated disk:
// a write on the leader reaches every store with the entry's index as its
// version; followers refuse writes; concurrent writes to one object are
// sequenced; a crashed replica recovers its store from its WAL; a leader
// cut off from the others fails its pending writes.
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../store/plain_objects.hpp"
#include "keel/node/replica.hpp"
#include "keel/sim/disk.hpp"
#include "keel/transport/in_process.hpp"

using keel::errc;
using keel::raft::node_id;
using keel::test::plain::node;
using keel::test::plain::service;
using keel::test::plain::task;
using replica_type = keel::node::replica<keel::sim::disk_file_system, keel::transport::endpoint,
                                         task, service, node>;
using outcome_ptr = std::shared_ptr<const keel::node::write_outcome>;

namespace {

task make_task(std::string id, std::string service_id, std::uint64_t slot) {
  task t;
  t.id = std::move(id);
  t.service_id = std::move(service_id);
  t.slot = slot;
  return t;
}

/// Three replicas, one network, one disk each, driven in lock step.
class cluster {
 public:
  explicit cluster(std::uint64_t seed, std::vector<node_id> ids = {1, 2, 3},
                   keel::node::replica_options base = {})
      : network_(seed), ids_(std::move(ids)), base_(std::move(base)) {
    for (node_id id : ids_) {
      disks_[id] = std::make_unique<keel::sim::disk>();
      start(id);
    }
  }

  void start(node_id id) {
    keel::node::replica_options opts = base_;
    opts.id = id;
    opts.members = ids_;
    opts.data_dir = "/data";
    auto r = replica_type::open(disks_[id]->file_system(), opts, [&](keel::transport::handler h) {
      return network_.connect(id, std::move(h));
    });
    REQUIRE(r);
    replicas_[id] = std::move(*r);
  }

  /// A new replica that joins the running cluster (after add_learner).
  void join(node_id id) {
    disks_[id] = std::make_unique<keel::sim::disk>();
    keel::node::replica_options opts{.id = id, .members = ids_, .data_dir = "/data", .join = true};
    auto r = replica_type::open(disks_[id]->file_system(), opts, [&](keel::transport::handler h) {
      return network_.connect(id, std::move(h));
    });
    REQUIRE(r);
    replicas_[id] = std::move(*r);
  }

  /// The process dies: unsynced writes are lost, the network forgets it.
  void crash(node_id id) {
    network_.disconnect(id);
    replicas_.erase(id);
    disks_[id]->crash();
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

  replica_type& at(node_id id) { return *replicas_.at(id); }
  keel::transport::in_process_network& network() { return network_; }
  const std::map<node_id, std::unique_ptr<replica_type>>& replicas() const { return replicas_; }

 private:
  keel::transport::in_process_network network_;
  std::vector<node_id> ids_;
  keel::node::replica_options base_;
  std::map<node_id, std::unique_ptr<keel::sim::disk>> disks_;
  std::map<node_id, std::unique_ptr<replica_type>> replicas_;
};

std::vector<task> tasks_of(const replica_type& r) {
  std::vector<task> out;
  r.view([&](const auto& tx) {
    REQUIRE_FALSE(
        tx.template for_each<task>(keel::store::all(), [&](const auto& t) { out.push_back(*t); }));
  });
  return out;
}

}  // namespace

TEST_CASE("replica: a leader's write reaches every store once committed", "[node][replica]") {
  cluster c(GENERATE(1, 2, 3));
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  auto w = leader->propose([](auto& tx) -> std::error_code {
    if (auto ec = tx.create(make_task("t1", "web", 1))) return ec;
    return tx.create(make_task("t2", "web", 2));
  });
  REQUIRE(w);
  const outcome_ptr out = *w;
  // Nothing is visible before the commit.
  CHECK(leader->view([](const auto& tx) { return tx.template count<task>(); }) == 0);
  c.wait(out);
  REQUIRE(out->done);
  REQUIRE_FALSE(out->error);
  c.settle();
  for (const auto& [id, r] : c.replicas()) {
    // Followers learn the commit with the next heartbeat.
    for (int i = 0; i < 5 && r->applied_index() < out->index; ++i) c.step();
    const auto tasks = tasks_of(*r);
    REQUIRE(tasks.size() == 2);
    CHECK(tasks[0].version == out->index);
    CHECK(r->store().version() >= out->index);
  }
  CHECK(tasks_of(c.at(1)) == tasks_of(c.at(2)));
  CHECK(tasks_of(c.at(2)) == tasks_of(c.at(3)));
}

TEST_CASE("replica: followers refuse writes and name the leader", "[node][replica]") {
  cluster c(7);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  replica_type* f = c.follower();
  auto w = f->propose([](auto& tx) { return tx.create(make_task("t", "s", 1)); });
  CHECK(w.error() == errc::not_leader);
  CHECK(f->leader() == leader->id());
  // The store's own errors come back at once too.
  auto bad = leader->propose([](auto& tx) { return tx.template remove<task>("missing"); });
  CHECK(bad.error() == errc::not_found);
}

TEST_CASE("replica: concurrent writes to one object are sequenced", "[node][replica]") {
  cluster c(11);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  auto created = leader->propose([](auto& tx) { return tx.create(make_task("t", "s", 1)); });
  REQUIRE(created);
  c.wait(*created);
  REQUIRE_FALSE((*created)->error);
  // Two writers read version v and write before either commits.
  auto bump = [](std::uint64_t slot) {
    return [slot](auto& tx) {
      task t = *tx.template get<task>("t");
      t.slot = slot;
      return tx.update(t);
    };
  };
  auto a = leader->propose(bump(10));
  auto b = leader->propose(bump(20));
  REQUIRE(a);
  REQUIRE(b);
  c.wait(*b);
  REQUIRE((*a)->done);
  CHECK_FALSE((*a)->error);
  CHECK((*b)->error == errc::sequence_conflict);
  c.settle();
  for (int i = 0; i < 5; ++i) c.step();
  for (const auto& [id, r] : c.replicas()) {
    auto t = r->view([](const auto& tx) { return tx.template get<task>("t"); });
    REQUIRE(t);
    CHECK(t->slot == 10);
    CHECK(t->version == (*a)->index);
  }
}

TEST_CASE("replica: a crashed replica recovers its store from its WAL", "[node][replica]") {
  cluster c(5);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  std::vector<outcome_ptr> writes;
  for (int i = 0; i < 10; ++i) {
    auto w = leader->propose(
        [i](auto& tx) { return tx.create(make_task("t" + std::to_string(i), "s", 1)); });
    REQUIRE(w);
    writes.push_back(*w);
  }
  c.wait(writes.back());
  for (const auto& w : writes) REQUIRE_FALSE(w->error);
  for (int i = 0; i < 5; ++i) c.step();
  const node_id victim = c.follower()->id();
  const auto before = tasks_of(c.at(victim));
  REQUIRE(before.size() == 10);
  c.crash(victim);
  c.start(victim);
  // Its store is rebuilt from the log it synced, then it catches up.
  for (int i = 0; i < 20 && c.at(victim).store().version() < writes.back()->index; ++i) c.step();
  CHECK(tasks_of(c.at(victim)) == before);
}

TEST_CASE("replica: a leader cut off from the others fails its pending writes", "[node][replica]") {
  cluster c(9);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  const node_id old = leader->id();
  c.network().isolate(old);
  auto w = leader->propose([](auto& tx) { return tx.create(make_task("lost", "s", 1)); });
  REQUIRE(w);
  c.wait(*w, 400);
  REQUIRE((*w)->done);
  CHECK((*w)->error == errc::lost_leadership);
  // The others elected a new leader meanwhile; after healing, nobody has the write.
  c.network().heal();
  for (int i = 0; i < 50; ++i) c.step();
  replica_type* now = c.leader();
  REQUIRE(now != nullptr);
  for (const auto& [id, r] : c.replicas()) {
    CHECK(r->view([](const auto& tx) { return tx.template get<task>("lost"); }) == nullptr);
  }
}

TEST_CASE("replica: a read barrier on a follower sees every completed write", "[node][replica]") {
  cluster c(13);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  auto w = leader->propose([](auto& tx) { return tx.create(make_task("t", "s", 1)); });
  REQUIRE(w);
  // Deliver only to the leader's side until the write completes: the
  // followers may not have applied it yet when the barrier starts.
  c.wait(*w);
  REQUIRE_FALSE((*w)->error);
  replica_type* f = c.follower();
  auto r = f->read_barrier();
  REQUIRE(r);
  for (int i = 0; i < 50 && !(*r)->done; ++i) c.step();
  REQUIRE((*r)->done);
  REQUIRE_FALSE((*r)->error);
  CHECK((*r)->index >= (*w)->index);
  CHECK(f->applied_index() >= (*w)->index);
  CHECK(f->view([](const auto& tx) { return tx.template get<task>("t"); }) != nullptr);
}

TEST_CASE("replica: a read barrier cut off from the quorum fails, never answers stale",
          "[node][replica]") {
  cluster c(17);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  c.network().isolate(leader->id());
  auto r = leader->read_barrier();
  REQUIRE(r);
  for (int i = 0; i < 100 && !(*r)->done; ++i) c.step();
  REQUIRE((*r)->done);
  CHECK((*r)->error);
}

TEST_CASE("replica: leadership moves to the chosen voter", "[node][replica]") {
  cluster c(19);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  const node_id to = c.follower()->id();
  CHECK(c.at(to).transfer_leadership(leader->id()) == errc::not_leader);
  REQUIRE_FALSE(leader->transfer_leadership(to));
  for (int i = 0; i < 20 && !c.at(to).is_leader(); ++i) c.step();
  CHECK(c.at(to).is_leader());
  // The new leader takes writes once it committed an entry of its term.
  replica_type* now = c.wait_for_leader();
  REQUIRE(now == &c.at(to));
  auto w = now->propose([](auto& tx) { return tx.create(make_task("after", "s", 1)); });
  REQUIRE(w);
  c.wait(*w);
  CHECK_FALSE((*w)->error);
}

TEST_CASE("replica: a removed member stops and its messages are refused", "[node][replica]") {
  cluster c(29);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  const node_id gone = c.follower()->id();
  auto removed = leader->remove_member(gone);
  REQUIRE(removed);
  c.wait(*removed);
  REQUIRE_FALSE((*removed)->error);
  for (int i = 0; i < 10 && !c.at(gone).failure(); ++i) c.step();
  CHECK(c.at(gone).failure() == errc::removed_member);
  CHECK(leader->status().voters.size() == 2);
  // The two left still commit writes.
  auto w = leader->propose([](auto& tx) { return tx.create(make_task("t", "s", 1)); });
  REQUIRE(w);
  c.wait(*w);
  CHECK_FALSE((*w)->error);
  // A message from the removed member is dropped before Raft sees it.
  keel::raft::message m{.type = keel::raft::message_type::heartbeat_resp,
                        .to = leader->id(),
                        .from = gone,
                        .term = leader->status().term};
  auto impostor =
      c.network().connect(gone, {.deliver = [](keel::raft::message) {}, .unreachable = nullptr});
  impostor.add_peer(leader->id(), {});
  impostor.send(m);
  c.settle();
  CHECK(leader->refused_from_removed() >= 1);
  CHECK(leader->is_leader());
}

TEST_CASE("replica: watch_from replays the retained commits, then follows live ones",
          "[node][replica]") {
  cluster c(31);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  std::vector<std::uint64_t> versions;
  for (int i = 0; i < 5; ++i) {
    auto w = leader->propose(
        [i](auto& tx) { return tx.create(make_task("t" + std::to_string(i), "s", 1)); });
    REQUIRE(w);
    c.wait(*w);
    REQUIRE_FALSE((*w)->error);
    versions.push_back((*w)->index);
  }
  for (int i = 0; i < 5; ++i) c.step();
  replica_type* f = c.follower();
  auto watch = f->watch_from(versions[1], [](const auto&) { return true; });
  REQUIRE(watch);
  auto& [backlog, live] = *watch;
  REQUIRE(backlog.size() == 3);
  CHECK(backlog[0].template after_as<task>()->version == versions[2]);
  CHECK(backlog[2].template after_as<task>()->version == versions[4]);
  auto w = leader->propose([](auto& tx) { return tx.create(make_task("later", "s", 1)); });
  REQUIRE(w);
  c.wait(*w);
  for (int i = 0; i < 5; ++i) c.step();
  auto ev = live.try_next();
  REQUIRE(ev);
  CHECK(ev->template after_as<task>()->version == (*w)->index);
  // Versions before what the replica retains are refused, never half-replayed.
  CHECK(f->watch_from(0, [](const auto&) { return true; }).error() == errc::compacted);
}
TEST_CASE("replica: a new member joins as a learner, catches up and is promoted",
          "[node][replica]") {
  cluster c(23);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  auto w = leader->propose([](auto& tx) { return tx.create(make_task("t", "s", 1)); });
  REQUIRE(w);
  c.wait(*w);
  REQUIRE_FALSE((*w)->error);
  auto added = leader->add_learner(4);
  REQUIRE(added);
  c.join(4);
  c.wait(*added);
  REQUIRE_FALSE((*added)->error);
  for (int i = 0; i < 50 && c.at(4).status().voters.size() < 4; ++i) c.step();
  const auto st = leader->status();
  CHECK(st.voters == std::vector<node_id>{1, 2, 3, 4});
  CHECK(st.learners.empty());
  REQUIRE(st.peers.size() == 3);
  for (const auto& p : st.peers) {
    CHECK(p.progress == "replicate");
    CHECK(p.match == st.commit);
    CHECK(p.transport.reachable);
  }
  CHECK(tasks_of(c.at(4)) == tasks_of(*leader));
}

TEST_CASE("replica: snapshots compact the log; a lagging follower restores one with events",
          "[node][replica]") {
  keel::node::replica_options base{.snapshot_interval = 20, .snapshot_keep_entries = 5};
  cluster c(37, {1, 2, 3}, base);
  replica_type* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  const node_id lagging = c.follower()->id();
  auto stale = leader->propose([](auto& tx) { return tx.create(make_task("gone", "s", 1)); });
  REQUIRE(stale);
  c.wait(*stale);
  for (int i = 0; i < 5; ++i) c.step();
  REQUIRE(tasks_of(c.at(lagging)).size() == 1);
  auto watch = c.at(lagging).store().watch([](const auto&) { return true; });
  c.network().isolate(lagging);
  auto removed = leader->propose([](auto& tx) { return tx.template remove<task>("gone"); });
  REQUIRE(removed);
  c.wait(*removed);
  for (int i = 0; i < 60; ++i) {
    auto w = leader->propose(
        [i](auto& tx) { return tx.create(make_task("t" + std::to_string(i), "s", 1)); });
    REQUIRE(w);
    c.wait(*w);
    REQUIRE_FALSE((*w)->error);
  }
  const auto st = leader->status();
  CHECK(st.snapshot_index >= 40);
  c.network().heal();
  for (int i = 0; i < 100 && c.at(lagging).applied_index() < st.commit; ++i) c.step();
  CHECK(c.at(lagging).status().snapshot_index >= 40);
  CHECK(tasks_of(c.at(lagging)) == tasks_of(*leader));
  // The restore told the watcher how the old state became the new one.
  std::size_t creates = 0;
  std::size_t deletes = 0;
  while (auto ev = watch.try_next()) {
    if (ev->kind() == keel::store::change_kind::create) ++creates;
    if (ev->kind() == keel::store::change_kind::remove) ++deletes;
  }
  CHECK(creates == 60);
  CHECK(deletes == 1);
  // A restart loads the newest snapshot, then the log after it.
  c.crash(lagging);
  c.start(lagging);
  CHECK(c.at(lagging).store().version() >= c.at(lagging).status().snapshot_index);
  CHECK(tasks_of(c.at(lagging)).size() >= 40);
  for (int i = 0; i < 20 && c.at(lagging).applied_index() < st.commit; ++i) c.step();
  CHECK(tasks_of(c.at(lagging)) == tasks_of(*leader));
  // Nothing the snapshot covers was applied a second time.
  CHECK(c.at(lagging).store().version() == leader->store().version());
  // A damaged snapshot from the network is refused; the replica goes on.
  const auto lst = c.at(lagging).status();
  keel::raft::message bad{.type = keel::raft::message_type::snap,
                          .to = lagging,
                          .from = leader->id(),
                          .term = lst.term};
  bad.snapshot = keel::raft::snapshot{
      .metadata = {.index = lst.commit + 100, .term = lst.term, .conf = {.voters = {1, 2, 3}}},
      .data = "KEELSTOR garbage that fails its checksum"};
  // Sent in the leader's name (its own endpoint is replaced; the test ends here).
  auto forger = c.network().connect(
      leader->id(), {.deliver = [](keel::raft::message) {}, .unreachable = nullptr});
  forger.add_peer(lagging, {});
  forger.send(bad);
  c.settle();
  CHECK(c.at(lagging).refused_snapshots() == 1);
  CHECK_FALSE(c.at(lagging).failure());
}
