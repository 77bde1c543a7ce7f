// The replicated store over the gRPC transport: three runners, each with
// its own directory and its own server on a loopback port, elect a leader,
// replicate writes, read linearizably on followers, take a new member in
// by a streamed snapshot, and survive the loss of their leader.
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "../store/plain_objects.hpp"
#include "../wal/wal_test_support.hpp"
#include "keel/grpc/transport.hpp"
#include "keel/node/runner.hpp"
#include "keel/wal/file_system.hpp"

using keel::errc;
using keel::raft::node_id;
using keel::test::plain::node;
using keel::test::plain::service;
using keel::test::plain::task;
using runner_type = keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system,
                                       keel::rpc::grpc_transport, task, service, node>;
using namespace std::chrono_literals;

namespace {

task make_task(std::string id, std::uint64_t slot) {
  task t;
  t.id = std::move(id);
  t.service_id = "web";
  t.slot = slot;
  return t;
}

/// Runners over gRPC on loopback, each listening on an ephemeral port.
class grpc_cluster {
 public:
  explicit grpc_cluster(std::vector<node_id> ids) {
    for (node_id id : ids) listen(id);
    for (node_id id : ids) start(id, ids, false);
  }

  ~grpc_cluster() {
    for (auto& [id, r] : runners_) {
      if (r) r->stop();
    }
  }

  /// A server for a member that joins later.
  void listen(node_id id) {
    keel::rpc::transport_options o;
    o.id = id;
    o.tls.plaintext = true;
    auto t = keel::rpc::grpc_transport::listen(o);
    REQUIRE(t);
    addresses_[id] = t->address();
    pending_[id].emplace(std::move(*t));
  }

  const std::string& address(node_id id) const { return addresses_.at(id); }

  void start(node_id id, const std::vector<node_id>& members, bool join) {
    keel::node::replica_options opts{.id = id,
                                     .members = members,
                                     .data_dir = dir_.path() + "/n" + std::to_string(id),
                                     .election_tick = 100,
                                     .join = join};
    opts.snapshot_interval = 400;
    opts.snapshot_keep_entries = 50;
    auto connect = [&](keel::transport::handler h) {
      keel::rpc::grpc_transport& t = *pending_[id];
      t.attach(std::move(h));
      for (const auto& [peer, address] : addresses_) {
        if (peer != id) t.add_peer(peer, address);
      }
      return std::move(t);
    };
    auto r =
        runner_type::start(keel::wal::posix_file_system{}, opts, connect, {.tick_interval = 2ms});
    REQUIRE(r);
    runners_[id] = std::move(*r);
    pending_.erase(id);
  }

  /// Stops id and closes its server.
  void kill(node_id id) {
    runners_.at(id)->stop();
    runners_.at(id).reset();
  }

  /// Asks every running member until one leads and takes writes.
  runner_type* leader() {
    for (int attempt = 0; attempt < 100000; ++attempt) {
      for (auto& [id, r] : runners_) {
        if (!r) continue;
        auto st = r->status(1s);
        if (st && st->role == "leader" && st->applied >= st->commit) {
          if (r->view_linearizable([](const auto&) { return 0; }, 1s)) return r.get();
        }
      }
      std::this_thread::yield();
    }
    return nullptr;
  }

  runner_type& at(node_id id) { return *runners_.at(id); }

 private:
  keel::test::temp_dir dir_;
  std::map<node_id, std::string> addresses_;
  std::map<node_id, std::optional<keel::rpc::grpc_transport>> pending_;
  std::map<node_id, std::unique_ptr<runner_type>> runners_;
};

/// Writes tasks p0..p(n-1) through the leader in batches.
void write_tasks(runner_type& leader, int n, const std::string& prefix) {
  const auto out = leader.batch(
      [&](auto& b) {
        for (int i = 0; i < n; ++i) {
          const std::string id = prefix + std::to_string(i);
          REQUIRE_FALSE(b.update([&](auto& tx) { return tx.create(make_task(id, 1)); }));
        }
      },
      60s);
  REQUIRE_FALSE(out.error);
  REQUIRE(out.committed == static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("grpc cluster: writes commit on the leader and followers read them linearizably",
          "[grpc][cluster]") {
  grpc_cluster c({1, 2, 3});
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  auto v = leader->update([](auto& tx) { return tx.create(make_task("t1", 1)); }, 10s);
  REQUIRE(v);
  for (node_id id : {1, 2, 3}) {
    runner_type& r = c.at(id);
    if (&r == leader) continue;
    CHECK(r.update([](auto& tx) { return tx.create(make_task("t2", 1)); }, 10s).error() ==
          errc::not_leader);
    auto seen = r.view_linearizable(
        [](const auto& tx) { return tx.template get<task>("t1") != nullptr; }, 10s);
    REQUIRE(seen);
    CHECK(*seen);
  }
  // A stale update is refused on every replica alike.
  auto stale = leader->update(
      [](auto& tx) {
        task t = make_task("t1", 7);
        t.version = 0;
        return tx.update(t);
      },
      10s);
  CHECK(stale.error());
  auto st = leader->status(1s);
  REQUIRE(st);
  CHECK(st->peers.size() == 2);
  for (const auto& p : st->peers) CHECK(p.transport.reachable);
}

TEST_CASE("grpc cluster: a new member joins through a snapshot streamed over gRPC",
          "[grpc][cluster][snapshot]") {
  grpc_cluster c({1, 2, 3});
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  write_tasks(*leader, 3000, "p");
  c.listen(4);
  REQUIRE(leader->add_learner(4, c.address(4), 20s));
  c.start(4, {1, 2, 3}, true);
  // The new member sees every task once it has installed the snapshot and
  // caught up; it reads linearizably once the leader has promoted it.
  keel::result<std::size_t> count = errc::timeout;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!(count && *count == 3000) && std::chrono::steady_clock::now() < give_up) {
    count = c.at(4).view_linearizable([](const auto& tx) { return tx.template count<task>(); }, 5s);
    if (!count) std::this_thread::yield();
  }
  if (!count) {
    auto s4 = c.at(4).status(1s);
    auto sl = leader->status(1s);
    if (s4)
      UNSCOPED_INFO("node 4: role " << s4->role << " term " << s4->term << " applied "
                                    << s4->applied << " snap " << s4->snapshot_index << " leader "
                                    << s4->leader);
    if (sl)
      for (const auto& p : sl->peers)
        UNSCOPED_INFO("leader peer " << p.id << " match " << p.match << " state " << p.progress
                                     << " err " << p.transport.last_error << " sent "
                                     << p.transport.sent << " dropped " << p.transport.dropped);
    UNSCOPED_INFO("error " << count.error().message());
  }
  REQUIRE(count);
  CHECK(*count == 3000);
  auto st = c.at(4).status(1s);
  REQUIRE(st);
  CHECK(st->snapshot_index > 0);
  auto lst = leader->status(1s);
  REQUIRE(lst);
  bool streamed = false;
  for (const auto& p : lst->peers) {
    if (p.id == 4 && p.transport.snapshot) streamed = p.transport.snapshot->succeeded;
  }
  CHECK(streamed);
}

TEST_CASE("grpc cluster: when the leader dies the others elect another and keep writing",
          "[grpc][cluster]") {
  grpc_cluster c({1, 2, 3});
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  write_tasks(*leader, 100, "a");
  node_id old = 0;
  for (node_id id : {1, 2, 3}) {
    if (&c.at(id) == leader) old = id;
  }
  c.kill(old);
  runner_type* next = c.leader();
  REQUIRE(next != nullptr);
  write_tasks(*next, 100, "b");
  CHECK(next->view([](const auto& tx) { return tx.template count<task>(); }) == 200);
}

TEST_CASE("grpc cluster: a member joins a cluster that has written nothing yet",
          "[grpc][cluster][snapshot]") {
  grpc_cluster c({1, 2, 3});
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  c.listen(4);
  REQUIRE(leader->add_learner(4, c.address(4), 20s));
  c.start(4, {1, 2, 3}, true);
  bool voter = false;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!voter && std::chrono::steady_clock::now() < give_up) {
    auto st = leader->status(1s);
    for (node_id v : st ? st->voters : std::vector<node_id>{}) voter |= v == 4;
    if (!voter) std::this_thread::yield();
  }
  CHECK(voter);
  auto v = leader->update([](auto& tx) { return tx.create(make_task("after", 1)); }, 10s);
  REQUIRE(v);
  auto seen = c.at(4).view_linearizable(
      [](const auto& tx) { return tx.template get<task>("after") != nullptr; }, 10s);
  REQUIRE(seen);
  CHECK(*seen);
}
