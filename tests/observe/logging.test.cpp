// The logging policy: a recording logger (a test policy) sees what an
// operator needs: the WAL recovery at open, an election won, a leader
// change after a transfer, snapshots saved and installed, membership
// changes, an unreachable peer (once); and nothing below the level it asks
// for.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "keel/observe/log.hpp"
#include "observed_cluster.hpp"

using keel::observe::log_event;
using keel::observe::log_level;
using keel::raft::node_id;

namespace {

/// Keeps every event at or above its level, with copies of its strings.
struct recording_log {
  struct record {
    log_level level;
    std::string message;
    node_id node;
    std::uint64_t term;
    std::uint64_t index;
    node_id peer;
    std::string detail;
  };

  log_level min = log_level::debug;
  std::vector<record> records{};

  bool enabled(log_level l) const { return l >= min; }
  void write(const log_event& e) {
    REQUIRE(enabled(e.level));
    records.push_back(
        {e.level, std::string(e.message), e.node, e.term, e.index, e.peer, std::string(e.detail)});
  }

  std::vector<record> find(const std::string& prefix) const {
    std::vector<record> out;
    for (const auto& r : records) {
      if (r.message.starts_with(prefix)) out.push_back(r);
    }
    return out;
  }
};

struct recording_observe : keel::observe::defaults {
  using log = recording_log;
};

using cluster = keel::test::observed_cluster<recording_observe>;

cluster make_cluster(std::uint64_t seed, keel::node::replica_options base = {},
                     log_level min = log_level::debug) {
  return cluster(seed, {1, 2, 3}, base, nullptr, [min](node_id) {
    auto l = std::make_unique<recording_log>();
    l->min = min;
    return l;
  });
}

}  // namespace

TEST_CASE("logging: the silent default and the concept", "[observe][logging]") {
  STATIC_REQUIRE(keel::observe::logger<keel::observe::null_log>);
  STATIC_REQUIRE(keel::observe::logger<recording_log>);
  STATIC_REQUIRE(std::is_empty_v<keel::observe::null_log>);
  STATIC_REQUIRE_FALSE(keel::observe::null_log::enabled(log_level::error));
  STATIC_REQUIRE(keel::observe::is_silent<keel::observe::null_log>);
}

TEST_CASE("logging: a replica logs its WAL recovery, the election and who leads",
          "[observe][logging]") {
  cluster c = make_cluster(3);
  auto* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  for (node_id id : {1, 2, 3}) {
    const auto& log = c.log(id);
    const auto recovered = log.find("WAL recovered");
    REQUIRE(recovered.size() == 1);
    CHECK(recovered[0].node == id);
    CHECK(recovered[0].level == log_level::info);
    CHECK_FALSE(recovered[0].detail.empty());
  }
  const auto won = c.log(leader->id()).find("election won");
  REQUIRE(won.size() == 1);
  CHECK(won[0].node == leader->id());
  CHECK(won[0].term == leader->status().term);
  CHECK(won[0].level == log_level::info);
  CHECK_FALSE(c.log(leader->id()).find("election started").empty());
  for (node_id id : {1, 2, 3}) {
    if (id == leader->id()) continue;
    for (int i = 0; i < 5 && c.log(id).find("leader changed").empty(); ++i) c.step();
    const auto changed = c.log(id).find("leader changed");
    REQUIRE_FALSE(changed.empty());
    CHECK(changed.back().peer == leader->id());
    CHECK(changed.back().term == leader->status().term);
  }
}

TEST_CASE("logging: a leadership transfer is logged as a leader change everywhere",
          "[observe][logging]") {
  cluster c = make_cluster(19);
  auto* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  const node_id old = leader->id();
  const node_id to = c.follower()->id();
  REQUIRE_FALSE(leader->transfer_leadership(to));
  for (int i = 0; i < 20 && !c.at(to).is_leader(); ++i) c.step();
  REQUIRE(c.at(to).is_leader());
  for (int i = 0; i < 5; ++i) c.step();
  CHECK(c.log(to).find("election won").size() == 1);
  CHECK_FALSE(c.log(old).find("stepped down").empty());
  for (node_id id : {1, 2, 3}) {
    const auto changed = c.log(id).find("leader changed");
    REQUIRE_FALSE(changed.empty());
    CHECK(changed.back().peer == to);
  }
  // Term changes are logged, and nothing is logged per entry at info level.
  CHECK_FALSE(c.log(to).find("term changed").empty());
  for (int i = 0; i < 20; ++i) c.write("t" + std::to_string(i));
  const auto& records = c.log(to).records;
  const auto infos = std::count_if(records.begin(), records.end(),
                                   [](const auto& r) { return r.level >= log_level::info; });
  CHECK(infos < 20);
}

TEST_CASE("logging: snapshots and membership changes are logged", "[observe][logging]") {
  cluster c =
      make_cluster(37, {.snapshot_interval = 20, .snapshot_keep_entries = 5}, log_level::info);
  auto* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  c.write("first");
  for (int i = 0; i < 5; ++i) c.step();
  const node_id lagging = c.follower()->id();
  c.network().isolate(lagging);
  for (int i = 0; i < 45; ++i) c.write("t" + std::to_string(i));
  const auto saved = c.log(leader->id()).find("snapshot saved");
  REQUIRE_FALSE(saved.empty());
  CHECK(saved.back().index >= 40);
  c.network().heal();
  const auto commit = leader->status().commit;
  for (int i = 0; i < 100 && c.at(lagging).applied_index() < commit; ++i) c.step();
  const auto sent = c.log(leader->id()).find("snapshot sent");
  REQUIRE_FALSE(sent.empty());
  CHECK(sent.back().peer == lagging);
  const auto installed = c.log(lagging).find("snapshot installed");
  REQUIRE(installed.size() == 1);
  CHECK(installed[0].index >= 40);
  // Nothing below info was recorded.
  for (const auto& r : c.log(lagging).records) CHECK(r.level >= log_level::info);
  // A removal is logged by every member that applies it.
  auto removed = leader->remove_member(lagging);
  REQUIRE(removed);
  c.wait(*removed);
  REQUIRE_FALSE((*removed)->error);
  const auto gone = c.log(leader->id()).find("member removed");
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].peer == lagging);
}

TEST_CASE("logging: a peer that went away is logged unreachable once", "[observe][logging]") {
  cluster c = make_cluster(29);
  auto* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  const node_id leader_id = leader->id();
  const node_id gone = c.follower()->id();
  c.remove(gone);
  // Heartbeats to it fail many times; the log says so once.
  for (int i = 0; i < 30; ++i) c.step();
  const auto unreachable = c.log(leader_id).find("peer unreachable");
  REQUIRE(unreachable.size() == 1);
  CHECK(unreachable[0].peer == gone);
  CHECK(unreachable[0].level == log_level::warn);
  CHECK(unreachable[0].node == leader_id);
}
