// Leadership transfer as scenarios (Raft thesis 3.10; etcd-io/raft's
// TestLeaderTransfer*): the leader brings the transferee's log up to date,
// sends it timeout_now, and the transferee wins an election at the next term,
// even inside the check-quorum lease; meanwhile proposals are refused, and a
// transfer that does not finish within an election timeout is abandoned.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "network.hpp"

using namespace keel::test;

TEST_CASE("leadership moves to an up-to-date follower at the next term") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));
  const std::uint64_t term = net.core_of(1).term();
  REQUIRE(net.core_of(1).tracker().progress.at(2).match == net.core_of(1).log().last_index());

  REQUIRE(!net.node(1).transfer_leadership(2));
  net.process(1);
  // Nothing to catch up: the leader tells 2 to campaign at once.
  CHECK(net.queued(pattern{message_type::timeout_now, 1, 2}).size() == 1);
  CHECK(net.queued(pattern{message_type::app, 1, 2}).empty());
  net.stabilize();

  CHECK(net.leader() == 2);
  CHECK(net.core_of(2).term() == term + 1);
  CHECK(net.core_of(1).state() == state_type::follower);
  CHECK(net.core_of(1).lead() == 2);
  REQUIRE(!net.propose(2, "b"));
  CHECK(net.applied(1, "b"));
}

TEST_CASE("a lagging transferee is caught up before it is told to campaign") {
  network net({1, 2, 3});
  net.campaign(1);
  net.drop(1, 3, 1.0);
  REQUIRE(!net.propose(1, "a"));
  REQUIRE(!net.propose(1, "b"));
  net.recover();
  const std::uint64_t term = net.core_of(1).term();
  const std::uint64_t last = net.core_of(1).log().last_index();
  REQUIRE(net.core_of(3).log().last_index() < last);

  // What 3 receives from 1, and how long its log was when each arrived.
  std::vector<std::pair<message_type, std::uint64_t>> to_3;
  net.on_deliver([&](const message& m) {
    if (m.from == 1 && m.to == 3) to_3.emplace_back(m.type, net.core_of(3).log().last_index());
  });
  REQUIRE(!net.node(1).transfer_leadership(3));
  net.process(1);
  net.stabilize();

  REQUIRE_FALSE(to_3.empty());
  CHECK(to_3.front().first == message_type::app);
  const auto timeout = std::find_if(
      to_3.begin(), to_3.end(), [](const auto& d) { return d.first == message_type::timeout_now; });
  REQUIRE(timeout != to_3.end());
  CHECK(timeout->second == last);  // 3 held the whole log when told to campaign.
  CHECK(net.leader() == 3);
  CHECK(net.core_of(3).term() == term + 1);
  CHECK(net.applied(3, "b"));
}

TEST_CASE("proposals are refused while a transfer is in progress") {
  network net({1, 2, 3});
  net.campaign(1);
  // 3 lags and cannot be reached, so the transfer cannot finish.
  net.drop(1, 3, 1.0);
  REQUIRE(!net.propose(1, "a"));
  REQUIRE(!net.node(1).transfer_leadership(3));
  net.process(1);
  net.stabilize();
  REQUIRE(net.core_of(1).lead_transferee() == 3);
  const std::uint64_t last = net.core_of(1).log().last_index();

  CHECK(net.node(1).propose("b") == keel::errc::transfer_in_progress);
  CHECK(net.core_of(1).log().last_index() == last);
  // A proposal forwarded by a follower is refused too.
  CHECK(!net.propose(2, "c"));
  CHECK(net.core_of(1).log().last_index() == last);
  CHECK(net.leader() == 1);
}

TEST_CASE("a transfer that cannot finish is abandoned after an election timeout") {
  const config cfg = network::default_config();
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  net.drop(1, 3, 1.0);
  REQUIRE(!net.propose(1, "a"));
  REQUIRE(!net.node(1).transfer_leadership(3));
  net.process(1);
  net.stabilize();
  REQUIRE(net.core_of(1).lead_transferee() == 3);

  net.heartbeat(1, cfg.election_tick - 1);
  CHECK(net.core_of(1).lead_transferee() == 3);
  CHECK(net.node(1).propose("b") == keel::errc::transfer_in_progress);

  net.heartbeat(1);
  CHECK(net.core_of(1).lead_transferee() == no_node);
  CHECK(net.leader() == 1);  // 2 keeps the quorum active.
  REQUIRE(!net.propose(1, "b"));
  CHECK(net.applied(1, "b"));
  CHECK(net.applied(2, "b"));
}

TEST_CASE("a transfer to the leader itself is ignored") {
  network net({1, 2, 3});
  net.campaign(1);
  const std::uint64_t term = net.core_of(1).term();

  REQUIRE(!net.node(1).transfer_leadership(1));
  net.process(1);
  CHECK(net.core_of(1).lead_transferee() == no_node);
  CHECK(net.queued(pattern{message_type::timeout_now}).empty());
  net.stabilize();

  CHECK(net.leader() == 1);
  CHECK(net.core_of(1).term() == term);
  CHECK(!net.propose(1, "a"));
  CHECK(net.applied(1, "a"));
}

TEST_CASE("a transfer to a learner is ignored") {
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.campaign(1);
  const std::uint64_t term = net.core_of(1).term();

  REQUIRE(!net.node(1).transfer_leadership(4));
  net.process(1);
  CHECK(net.core_of(1).lead_transferee() == no_node);
  CHECK(net.queued(pattern{message_type::timeout_now}).empty());
  net.stabilize();

  CHECK(net.leader() == 1);
  CHECK(net.core_of(1).term() == term);
  CHECK(net.core_of(4).state() == state_type::follower);
  CHECK(!net.propose(1, "a"));
  CHECK(net.applied(4, "a"));
}

TEST_CASE("a transfer wins the election although the followers hold a check-quorum lease") {
  const config cfg = network::default_config();
  REQUIRE(cfg.check_quorum);
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  const std::uint64_t term = net.core_of(1).term();

  // On its own, 2 cannot disturb a leader the others just heard from.
  net.campaign(2);
  CHECK(net.leader() == 1);
  CHECK(net.core_of(3).term() == term);
  net.heartbeat(1);  // 2 goes back to following 1.
  REQUIRE(net.core_of(2).state() == state_type::follower);

  // Asked by the leader, it campaigns with the transfer mark, and wins.
  REQUIRE(!net.node(1).transfer_leadership(2));
  net.process(1);
  net.stabilize();
  CHECK(net.leader() == 2);
  CHECK(net.core_of(2).term() == term + 1);
  CHECK(net.core_of(3).vote() == 2);
}
