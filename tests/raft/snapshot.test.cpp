// Snapshots as scenarios (Raft thesis 5.1; etcd-io/raft's snapshot tests): a
// follower that needs entries the leader compacted away is sent the leader's
// snapshot, installs it, takes its configuration from it and catches up by
// appends; the leader waits in snapshot state until the node layer reports
// the snapshot finished or failed; a snapshot older than the commit index
// changes nothing.
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "network.hpp"

using namespace keel::test;

namespace {

using ids = std::vector<node_id>;

/// 3 misses a, b and c, then the leader compacts them into a snapshot.
snapshot leave_3_behind_a_snapshot(network& net) {
  net.campaign(1);
  net.isolate(3);
  for (const char* data : {"a", "b", "c"}) REQUIRE(!net.propose(1, data));
  snapshot snap = net.take_snapshot(1, "state@" + std::to_string(net.at(1).applied.back().index));
  REQUIRE(net.core_of(1).log().first_index() == snap.metadata.index + 1);
  REQUIRE(net.core_of(3).log().last_index() < snap.metadata.index);
  return snap;
}

const progress& progress_of(network& net, node_id id) {
  return net.core_of(1).tracker().progress.at(id);
}

/// The follower's acknowledgement of a snapshot (an accepting app_resp) is lost.
bool snapshot_ack_from_3(const message& m) {
  return m.type == message_type::app_resp && m.from == 3 && !m.reject;
}

}  // namespace

TEST_CASE("a follower that needs compacted entries installs the leader's snapshot and catches up") {
  network net({1, 2, 3});
  const snapshot snap = leave_3_behind_a_snapshot(net);
  net.recover();

  std::optional<message> sent;
  net.on_deliver([&](const message& m) {
    if (pattern{message_type::snap, 1, 3}(m)) sent = m;
  });
  REQUIRE(!net.propose(1, "d"));

  REQUIRE(sent);
  REQUIRE(sent->snapshot);
  CHECK(sent->snapshot->metadata == snap.metadata);
  CHECK(sent->snapshot->data == snap.data);
  CHECK(net.at(3).storage->snapshot().value() == snap);

  // The snapshot stands for a, b and c; d came by append.
  const auto& applied = net.at(3).applied;
  const auto marker = std::find_if(applied.begin(), applied.end(),
                                   [](const entry& e) { return e.data == "<snapshot>"; });
  REQUIRE(marker != applied.end());
  CHECK(marker->index == snap.metadata.index);
  CHECK_FALSE(net.applied(3, "c"));
  REQUIRE(std::next(marker) != applied.end());
  CHECK(applied.back().data == "d");
  CHECK(net.log_of(3) == net.log_of(1));
  CHECK(progress_of(net, 3).state == progress_state::replicate);
}

TEST_CASE("the leader stays in snapshot state until the snapshot is reported finished") {
  network net({1, 2, 3});
  const snapshot snap = leave_3_behind_a_snapshot(net);
  net.recover();
  net.block_if(snapshot_ack_from_3);
  REQUIRE(!net.propose(1, "d"));
  REQUIRE(net.at(3).storage->snapshot().value() == snap);  // 3 installed it.
  REQUIRE(progress_of(net, 3).state == progress_state::snapshot);
  CHECK(progress_of(net, 3).pending_snapshot == snap.metadata.index);

  // Heartbeats and proposals do not send 3 anything else meanwhile.
  std::size_t appends = 0;
  net.on_deliver([&](const message& m) { appends += pattern{message_type::app, 1, 3}(m); });
  net.heartbeat(1, 3);
  REQUIRE(!net.propose(1, "e"));
  CHECK(appends == 0);
  CHECK(progress_of(net, 3).state == progress_state::snapshot);

  net.node(1).report_snapshot(3, snapshot_status::finished);
  CHECK(progress_of(net, 3).state == progress_state::probe);
  CHECK(progress_of(net, 3).next == snap.metadata.index + 1);

  net.recover();
  net.heartbeat(1);
  CHECK(progress_of(net, 3).state == progress_state::replicate);
  CHECK(net.applied(3, "e"));
  CHECK(net.log_of(3) == net.log_of(1));
}

TEST_CASE("a snapshot reported failed is sent again") {
  network net({1, 2, 3});
  const snapshot snap = leave_3_behind_a_snapshot(net);
  net.recover();

  std::size_t snaps_sent = 0;
  net.on_ready([&](node_id id, const ready& rd) {
    if (id != 1) return;
    for (const message& m : rd.messages) snaps_sent += pattern{message_type::snap, 1, 3}(m);
  });
  net.block_if(pattern{message_type::snap, 1, 3});  // The transport fails to stream it.
  REQUIRE(!net.propose(1, "d"));
  REQUIRE(snaps_sent == 1);
  REQUIRE(progress_of(net, 3).state == progress_state::snapshot);

  net.node(1).report_snapshot(3, snapshot_status::failed);
  CHECK(progress_of(net, 3).state == progress_state::probe);

  net.recover();
  net.heartbeat(1);
  CHECK(snaps_sent == 2);
  CHECK(net.at(3).storage->snapshot().value() == snap);
  CHECK(net.applied(3, "d"));
  CHECK(progress_of(net, 3).state == progress_state::replicate);
}

TEST_CASE("a snapshot older than the follower's commit index is ignored") {
  network net({1, 2, 3});
  net.campaign(1);
  for (const char* data : {"a", "b", "c"}) REQUIRE(!net.propose(1, data));
  const std::uint64_t commit = net.core_of(2).log().committed();
  const std::vector<entry> log = net.log_of(2);
  const std::size_t applied = net.at(2).applied.size();

  std::optional<message> answer;
  net.on_deliver([&](const message& m) {
    if (pattern{message_type::app_resp, 2, 1}(m)) answer = m;
  });
  message old{
      .type = message_type::snap,
      .to = 2,
      .from = 1,
      .term = net.core_of(1).term(),
      .snapshot = snapshot{
          .metadata = {.index = commit - 2, .term = net.core_of(1).term(), .conf = net.at(1).conf},
          .data = "old"}};
  REQUIRE(!net.send(old));

  CHECK(net.log_of(2) == log);
  CHECK(net.core_of(2).log().committed() == commit);
  CHECK(net.at(2).applied.size() == applied);
  CHECK(net.at(2).storage->snapshot().value().metadata.index == 1);  // Still the bootstrap one.
  REQUIRE(answer);
  CHECK_FALSE(answer->reject);
  CHECK(answer->index == commit);
}

TEST_CASE("a node restored from a snapshot takes the snapshot's configuration") {
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.campaign(1);
  net.isolate(3);
  // A change 3 never sees in its log: 5 joins as a learner.
  REQUIRE(
      !net.propose_conf_change(1, conf_change{.changes = {{conf_change_type::add_learner, 5}}}));
  REQUIRE(!net.propose(1, "a"));
  const snapshot snap = net.take_snapshot(1, "state");
  REQUIRE(snap.metadata.conf.learners == ids{4, 5});
  REQUIRE(net.at(3).conf.learners == ids{4});

  net.recover();
  REQUIRE(!net.propose(1, "b"));
  REQUIRE(net.at(3).storage->snapshot().value() == snap);
  CHECK(net.at(3).conf == snap.metadata.conf);
  CHECK(net.core_of(3).tracker().conf_state() == snap.metadata.conf);
  CHECK(net.core_of(3).status().config == snap.metadata.conf);
}
