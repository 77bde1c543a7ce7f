// Three runners, each a replica on its own thread with its own simulated
// disk, over the in-process network delivered by a pump thread: blocking
// writes on the leader, refusals on followers, linearizable reads on a
// follower, concurrent writers, status, and stopping with calls waiting.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../store/plain_objects.hpp"
#include "keel/node/runner.hpp"
#include "keel/sim/disk.hpp"
#include "keel/transport/delivery_pump.hpp"
#include "keel/transport/in_process.hpp"
#include "keel/wal/file_system.hpp"

using keel::errc;
using keel::raft::node_id;
using keel::test::plain::node;
using keel::test::plain::service;
using keel::test::plain::task;
using runner_type = keel::node::runner<keel::node::steady_clock, keel::sim::disk_file_system,
                                       keel::transport::endpoint, task, service, node>;
using namespace std::chrono_literals;

namespace {

task make_task(std::string id, std::uint64_t slot) {
  task t;
  t.id = std::move(id);
  t.service_id = "web";
  t.slot = slot;
  return t;
}

class threaded_cluster {
 public:
  threaded_cluster() : network_(42) {
    for (node_id id : {1, 2, 3}) {
      disks_[id] = std::make_unique<keel::sim::disk>();
      // Elections wait 100 ticks (200 ms or more): a slow (sanitized) build
      // must not lose its leader in the middle of a test.
      keel::node::replica_options opts{
          .id = id, .members = {1, 2, 3}, .data_dir = "/data", .election_tick = 100};
      auto r = runner_type::start(
          disks_[id]->file_system(), opts,
          [&](keel::transport::handler h) { return network_.connect(id, std::move(h)); },
          {.tick_interval = 2ms});
      REQUIRE(r);
      runners_[id] = std::move(*r);
    }
  }

  ~threaded_cluster() {
    for (auto& [id, r] : runners_) {
      network_.disconnect(id);
      r->stop();
    }
  }

  /// Asks every runner until one says it leads and takes writes.
  runner_type* leader() {
    for (int attempt = 0; attempt < 100000; ++attempt) {
      for (auto& [id, r] : runners_) {
        auto st = r->status(1s);
        if (st && st->role == "leader" && st->applied >= st->commit) {
          auto probe = r->view_linearizable([](const auto&) { return 0; }, 1s);
          if (probe) return r.get();
        }
      }
      std::this_thread::yield();
    }
    return nullptr;
  }

  runner_type& at(node_id id) { return *runners_.at(id); }

 private:
  keel::transport::in_process_network network_;
  std::map<node_id, std::unique_ptr<keel::sim::disk>> disks_;
  std::map<node_id, std::unique_ptr<runner_type>> runners_;
  keel::transport::delivery_pump pump_{network_};
};

}  // namespace

TEST_CASE("runner: blocking writes commit on the leader and reads see them everywhere",
          "[node][runner]") {
  threaded_cluster c;
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  auto v = leader->update([](auto& tx) { return tx.create(make_task("t1", 1)); }, 5s);
  REQUIRE(v);
  CHECK(leader->view([](const auto& tx) { return tx.template get<task>("t1")->version; }) == *v);
  // A follower refuses writes, and reads linearizably.
  for (node_id id : {1, 2, 3}) {
    runner_type& r = c.at(id);
    if (&r == leader) continue;
    auto refused = r.update([](auto& tx) { return tx.create(make_task("t2", 1)); }, 5s);
    CHECK(refused.error() == errc::not_leader);
    auto seen = r.view_linearizable(
        [](const auto& tx) { return tx.template get<task>("t1") != nullptr; }, 5s);
    REQUIRE(seen);
    CHECK(*seen);
  }
  auto st = leader->status(1s);
  REQUIRE(st);
  CHECK(st->voters.size() == 3);
  CHECK(st->peers.size() == 2);
  CHECK(st->applied >= *v);
}

TEST_CASE("runner: concurrent writers pipeline and every write is applied once", "[node][runner]") {
  threaded_cluster c;
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  constexpr int writers = 8;
  constexpr int per_writer = 25;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) {
        const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
        auto v = leader->update([&](auto& tx) { return tx.create(make_task(id, 1)); }, 10s);
        if (!v) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failed == 0);
  CHECK(leader->view([](const auto& tx) { return tx.template count<task>(); }) ==
        writers * per_writer);
}

TEST_CASE("runner: a write that cannot commit times out; stop ends waiting calls",
          "[node][runner]") {
  keel::transport::in_process_network network(7);
  keel::sim::disk disk;
  // A cluster of one member that never gets its two peers: no quorum.
  keel::node::replica_options opts{.id = 1, .members = {1, 2, 3}, .data_dir = "/data"};
  auto r = runner_type::start(
      disk.file_system(), opts,
      [&](keel::transport::handler h) { return network.connect(1, std::move(h)); },
      {.tick_interval = 1ms});
  REQUIRE(r);
  auto v = (*r)->update([](auto& tx) { return tx.create(make_task("t", 1)); }, 20ms);
  CHECK(v.error() == errc::not_leader);
  auto read = (*r)->view_linearizable([](const auto&) { return 1; }, 20ms);
  CHECK(read.error());
  network.disconnect(1);
  (*r)->stop();
  auto after = (*r)->update([](auto& tx) { return tx.create(make_task("t", 1)); }, 1s);
  CHECK(after.error() == errc::node_stopped);
}

TEST_CASE("runner: a batch splits into groups, each update atomic and seeing the ones before",
          "[node][runner]") {
  threaded_cluster c;
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  auto before = leader->status(1s);
  REQUIRE(before);
  int refused = 0;
  const auto out = leader->batch(
      [&](auto& b) {
        for (int i = 0; i < 1000; ++i) {
          const std::string id = "b" + std::to_string(i);
          REQUIRE_FALSE(b.update([&](auto& tx) { return tx.create(make_task(id, 1)); }));
          // The next update sees this one although nothing is committed yet.
          REQUIRE_FALSE(b.update([&](auto& tx) {
            task t = *tx.template get<task>(id);
            t.slot = 2;
            return tx.update(t);
          }));
        }
        // A failing update discards its own writes only.
        auto ec = b.update([&](auto& tx) -> std::error_code {
          if (auto e = tx.create(make_task("half", 1))) return e;
          return tx.create(make_task("b0", 1));  // Exists.
        });
        if (ec == errc::exists) ++refused;
      },
      30s);
  CHECK(out.committed == 2000);
  CHECK(out.error == errc::exists);
  CHECK(refused == 1);
  auto after = leader->status(1s);
  REQUIRE(after);
  // 1000 creates and their updates collapse per group: 200 changes per entry.
  CHECK(after->commit - before->commit >= 5);
  CHECK(after->commit - before->commit <= 12);
  leader->view([](const auto& tx) {
    CHECK(tx.template count<task>() == 1000);
    CHECK(tx.template get<task>("half") == nullptr);
    CHECK(tx.template get<task>("b999")->slot == 2);
  });
}

TEST_CASE("runner: a batch on a follower commits nothing and says why", "[node][runner]") {
  threaded_cluster c;
  runner_type* leader = c.leader();
  REQUIRE(leader != nullptr);
  runner_type* follower = &c.at(1) == leader ? &c.at(2) : &c.at(1);
  const auto out = follower->batch(
      [](auto& b) { (void)b.update([](auto& tx) { return tx.create(make_task("x", 1)); }); }, 5s);
  CHECK(out.committed == 0);
  CHECK(out.error == errc::not_leader);
}

TEST_CASE("runner: snapshots written in the background compact the log; a restart loads one",
          "[node][runner]") {
  using posix_runner = keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system,
                                          keel::transport::endpoint, task, service, node>;
  const auto root = std::filesystem::temp_directory_path() /
                    ("keel-runner-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(root);
  keel::transport::in_process_network network(3);
  keel::transport::delivery_pump pump(network);
  keel::node::replica_options opts{.id = 1, .members = {1}, .data_dir = (root / "n1").string()};
  opts.snapshot_interval = 50;
  opts.snapshot_keep_entries = 10;
  opts.snapshot_in_background = true;
  auto connect = [&](keel::transport::handler h) {
    return network.connect(1, std::move(h));
  };
  std::uint64_t last = 0;
  {
    auto r =
        posix_runner::start(keel::wal::posix_file_system{}, opts, connect, {.tick_interval = 1ms});
    REQUIRE(r);
    for (int i = 0; i < 300; ++i) {
      keel::result<std::uint64_t> v = keel::errc::timeout;
      // A single member elects itself within a few ticks.
      for (int attempt = 0; attempt < 1000 && !v; ++attempt) {
        v = (*r)->update([&](auto& tx) { return tx.create(make_task("t" + std::to_string(i), 1)); },
                         5s);
        if (!v && v.error() != errc::not_leader && v.error() != errc::leader_not_ready) break;
      }
      REQUIRE(v);
      last = *v;
    }
    auto st = (*r)->status(1s);
    REQUIRE(st);
    CHECK(st->snapshot_index >= 50);
    network.disconnect(1);
    (*r)->stop();
  }
  auto again =
      posix_runner::start(keel::wal::posix_file_system{}, opts, connect, {.tick_interval = 1ms});
  REQUIRE(again);
  auto st = (*again)->status(1s);
  REQUIRE(st);
  CHECK(st->snapshot_index >= 50);
  // Once it leads again it has replayed the log after its snapshot.
  keel::result<std::size_t> count = keel::errc::timeout;
  for (int attempt = 0; attempt < 1000 && !count; ++attempt) {
    count =
        (*again)->view_linearizable([](const auto& tx) { return tx.template count<task>(); }, 5s);
  }
  REQUIRE(count);
  CHECK(*count == 300);
  CHECK((*again)->store().version() >= last);
  network.disconnect(1);
  (*again)->stop();
  std::filesystem::remove_all(root);
}
