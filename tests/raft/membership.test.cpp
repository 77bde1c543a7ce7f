// Membership changes as scenarios (Raft thesis ch. 4; etcd-io/raft's
// confchange tests): single-step adds and removes, one change at a time,
// joint consensus entered and left explicitly or automatically, and learners,
// which receive the log but never vote and never count for a commit.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "network.hpp"

using namespace keel::test;

namespace {

using ids = std::vector<node_id>;

conf_change single(conf_change_type type, node_id id) {
  return conf_change{.changes = {{type, id}}};
}

conf_change joint(conf_change_transition transition, std::vector<conf_change_single> changes) {
  return conf_change{.transition = transition, .changes = std::move(changes)};
}

/// The empty change that leaves a joint configuration.
conf_change leave_joint() { return conf_change{}; }

std::uint64_t committed(network& net, node_id id) { return net.core_of(id).log().committed(); }

}  // namespace

TEST_CASE("a voter added in one step catches up from a snapshot and then votes") {
  // No leases, so the election at the end can start as soon as the leader is cut off.
  config cfg = network::default_config();
  cfg.check_quorum = false;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));

  net.add_member(4, {});  // A fresh node with an empty log and no configuration.
  net.isolate(4);
  REQUIRE(!net.propose_conf_change(1, single(conf_change_type::add_node, 4)));
  REQUIRE(net.at(1).conf.voters == ids{1, 2, 3, 4});
  CHECK(net.at(2).conf.voters == ids{1, 2, 3, 4});

  // The leader's log starts after the bootstrap snapshot, which does not
  // name 4: the application snapshots the state that does.
  const snapshot snap = net.take_snapshot(1, "state-with-4");
  net.recover();
  net.heartbeat(1, 3);

  CHECK(net.at(4).storage->snapshot().value() == snap);
  CHECK(net.at(4).conf == snap.metadata.conf);
  CHECK(net.core_of(4).tracker().conf_state().voters == ids{1, 2, 3, 4});
  CHECK(net.core_of(1).tracker().progress.at(4).match == net.core_of(1).log().last_index());

  // Entries after the snapshot arrive as appends.
  REQUIRE(!net.propose(1, "b"));
  CHECK(net.applied(4, "b"));

  // With 1 gone, 2 needs three of the four voters: 3 and the new 4.
  net.isolate(1);
  net.campaign(2);
  CHECK(net.leader() == 2);
  CHECK(net.core_of(4).vote() == 2);
  CHECK(net.core_of(4).term() == net.core_of(2).term());
}

TEST_CASE("a leader that removes itself hands leadership to a voter of the new configuration") {
  network net({1, 2, 3});
  net.campaign(1);
  const std::uint64_t old_term = net.core_of(1).term();
  REQUIRE(!net.propose_conf_change(1, single(conf_change_type::remove_node, 1)));

  // Applying its removal, the leader sent timeout_now to an up-to-date voter,
  // which won at once, without waiting for an election timeout.
  const node_id lead = net.leader();
  REQUIRE((lead == 2 || lead == 3));
  CHECK(net.core_of(lead).term() == old_term + 1);
  // The old leader learns the new term from the answer to its next heartbeat.
  net.heartbeat(1);
  CHECK(net.core_of(1).state() == state_type::follower);
  CHECK_FALSE(net.core_of(1).tracker().is_member(1));
  CHECK(net.at(2).conf.voters == ids{2, 3});
  CHECK(net.at(3).conf.voters == ids{2, 3});

  // The new leader commits without the removed node.
  net.isolate(1);
  REQUIRE(!net.propose(lead, "after"));
  CHECK(net.applied(2, "after"));
  CHECK(net.applied(3, "after"));
  CHECK_FALSE(net.applied(1, "after"));
}

TEST_CASE("a removed leader keeps leading until a voter takes over, refusing proposals") {
  network net({1, 2, 3});
  net.campaign(1);
  // Nobody may take over yet: timeout_now never arrives.
  net.ignore(message_type::timeout_now);
  REQUIRE(!net.propose_conf_change(1, single(conf_change_type::remove_node, 1)));
  CHECK(net.core_of(1).state() == state_type::leader);
  CHECK(net.node(1).propose("refused") == keel::errc::proposal_dropped);
  // It retries the hand-over every election timeout; once timeout_now gets
  // through, a voter of the new configuration leads.
  net.recover();
  for (int i = 0; i < 40 && net.leader() == 1; ++i) net.heartbeat(1);
  const node_id lead = net.leader();
  CHECK((lead == 2 || lead == 3));
}

TEST_CASE("voters elect a leader when the removed leader's commit never reached them") {
  network net({1, 2});
  net.campaign(1);
  conf_change cc;
  cc.changes = {{conf_change_type::remove_node, 1}};
  REQUIRE_FALSE(net.node(1).propose_conf_change(cc));
  net.process(1);
  REQUIRE(net.deliver_if(pattern{message_type::app, 1, 2}) == 1);
  REQUIRE_FALSE(net.node(1).propose("x"));  // Accepted: the removal is not applied yet.
  net.process(1);
  net.drop_if(pattern{message_type::app, 1, 2});
  REQUIRE(net.deliver_if(pattern{message_type::app_resp, 2, 1}) == 1);
  net.drop_if(pattern{message_type::app, 1, 2});  // The commit is lost.
  for (int i = 0; i < 500 && net.leader() != 2; ++i) {
    net.tick_all();
    net.stabilize();
  }
  CHECK(net.leader() == 2);
}

TEST_CASE("a configuration change is refused while another one is pending") {
  network net({1, 2, 3});
  net.campaign(1);

  CHECK(!net.node(1).propose_conf_change(single(conf_change_type::add_learner, 4)));
  CHECK(net.node(1).propose_conf_change(single(conf_change_type::add_learner, 5)) ==
        keel::errc::pending_conf_change);

  // Once the first is applied the next one goes through.
  net.process(1);
  net.stabilize();
  REQUIRE(net.at(1).conf.learners == ids{4});
  CHECK(!net.propose_conf_change(1, single(conf_change_type::add_learner, 5)));
  CHECK(net.at(1).conf.learners == ids{4, 5});
}

TEST_CASE("an explicit joint configuration lasts until an empty change leaves it") {
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.campaign(1);

  // Replace voter 3 by learner 4 through joint consensus.
  REQUIRE(!net.propose_conf_change(
      1, joint(conf_change_transition::joint_explicit,
               {{conf_change_type::add_node, 4}, {conf_change_type::remove_node, 3}})));
  for (node_id id : {1, 2, 3, 4}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters == ids{1, 2, 4});
    CHECK(net.at(id).conf.voters_outgoing == ids{1, 2, 3});
    CHECK(net.at(id).conf.learners.empty());
    CHECK_FALSE(net.at(id).conf.auto_leave);
  }

  // Time passes and entries commit; nobody leaves on its own.
  REQUIRE(!net.propose(1, "x"));
  net.heartbeat(1, 30);
  for (node_id id : {1, 2, 3, 4}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters_outgoing == ids{1, 2, 3});
  }

  REQUIRE(!net.propose_conf_change(1, leave_joint()));
  for (node_id id : {1, 2, 4}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters == ids{1, 2, 4});
    CHECK(net.at(id).conf.voters_outgoing.empty());
  }
  CHECK_FALSE(net.core_of(1).tracker().is_member(3));
}

TEST_CASE("a leader leaves an automatic joint configuration by itself once entering it applied") {
  const auto transition =
      GENERATE(conf_change_transition::auto_, conf_change_transition::joint_implicit);
  INFO("transition " << static_cast<int>(transition));
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.campaign(1);

  REQUIRE(!net.propose_conf_change(
      1, joint(transition, {{conf_change_type::add_node, 4}, {conf_change_type::remove_node, 3}})));

  // The leader proposed the empty change that leaves the joint configuration.
  const auto& applied = net.at(1).applied;
  const auto leaves = std::count_if(applied.begin(), applied.end(), [](const entry& e) {
    auto cc = decode_conf_change(e.data);
    return e.type == entry_type::conf_change && cc && cc->leaves_joint();
  });
  CHECK(leaves == 1);
  for (node_id id : {1, 2, 3, 4}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters == ids{1, 2, 4});
    CHECK(net.at(id).conf.voters_outgoing.empty());
    CHECK_FALSE(net.at(id).conf.auto_leave);
  }
}

TEST_CASE("a new leader finishes the automatic leave of a joint configuration") {
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.campaign(1);

  // Leader 1 enters the joint configuration, which commits everywhere, but
  // the change that leaves it never gets out: 1 is cut off right after.
  net.block_if([](const message& m) {
    if (m.type != message_type::app || m.from != 1) return false;
    return std::any_of(m.entries.begin(), m.entries.end(), [](const entry& e) {
      auto cc = decode_conf_change(e.data);
      return e.type == entry_type::conf_change && cc && cc->leaves_joint();
    });
  });
  REQUIRE(!net.propose_conf_change(
      1, joint(conf_change_transition::auto_,
               {{conf_change_type::add_node, 4}, {conf_change_type::remove_node, 3}})));
  for (node_id id : {2, 3, 4}) {
    INFO("node " << id);
    REQUIRE(net.at(id).conf.voters_outgoing == ids{1, 2, 3});
    REQUIRE(net.at(id).conf.auto_leave);
  }
  net.recover();
  net.isolate(1);

  // A majority of both halves ({2, 4} of 1, 2, 4 and {2, 3} of 1, 2, 3) elects a new leader.
  for (int i = 0; i < 200 && (net.leader() == no_node || net.leader() == 1); ++i) {
    net.tick_all();
    net.stabilize();
  }
  const node_id lead = net.leader();
  REQUIRE(lead != no_node);
  REQUIRE(lead != 1);
  net.heartbeat(lead, 3);

  // It inherits the duty to leave the joint configuration.
  for (node_id id : {2, 3, 4}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters == ids{1, 2, 4});
    CHECK(net.at(id).conf.voters_outgoing.empty());
  }
}

TEST_CASE("in a joint configuration a majority of the incoming voters alone commits nothing") {
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.campaign(1);
  REQUIRE(!net.propose_conf_change(
      1, joint(conf_change_transition::joint_explicit,
               {{conf_change_type::add_node, 4}, {conf_change_type::remove_node, 3}})));
  // Incoming {1, 2, 4}, outgoing {1, 2, 3}.
  const std::uint64_t before = committed(net, 1);

  // 1 and 4 are a majority of the incoming half; 1 alone is none of the outgoing one.
  net.cut(1, 2);
  net.cut(1, 3);
  REQUIRE(!net.propose(1, "x"));
  CHECK(net.log_of(4).back().data == "x");
  CHECK(committed(net, 1) == before);
  CHECK_FALSE(net.applied(1, "x"));

  net.recover();
  net.heartbeat(1);
  CHECK(net.applied(1, "x"));
}

TEST_CASE("in a joint configuration a majority of the outgoing voters alone commits nothing") {
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.campaign(1);
  REQUIRE(!net.propose_conf_change(
      1, joint(conf_change_transition::joint_explicit,
               {{conf_change_type::add_node, 4}, {conf_change_type::remove_node, 3}})));
  const std::uint64_t before = committed(net, 1);

  // 1 and 3 are a majority of the outgoing half; 1 alone is none of the incoming one.
  net.cut(1, 2);
  net.cut(1, 4);
  REQUIRE(!net.propose(1, "x"));
  CHECK(net.log_of(3).back().data == "x");
  CHECK(committed(net, 1) == before);
  CHECK_FALSE(net.applied(1, "x"));

  net.recover();
  net.heartbeat(1);
  CHECK(net.applied(1, "x"));
}

TEST_CASE("a single voter commits alone while its learners only follow") {
  network net({1}, 1, network::default_config(), {2, 3});
  net.campaign(1);
  REQUIRE(net.leader() == 1);

  net.isolate(1);
  REQUIRE(!net.propose(1, "x"));
  CHECK(net.applied(1, "x"));
  CHECK_FALSE(net.applied(2, "x"));

  net.recover();
  net.heartbeat(1);
  CHECK(net.applied(2, "x"));
  CHECK(net.applied(3, "x"));
}

TEST_CASE("learners that acknowledge an entry do not make it committed") {
  network net({1, 2, 3}, 1, network::default_config(), {4, 5});
  net.campaign(1);
  const std::uint64_t before = committed(net, 1);

  net.cut(1, 2);
  net.cut(1, 3);
  REQUIRE(!net.propose(1, "x"));
  CHECK(net.log_of(4).back().data == "x");
  CHECK(net.log_of(5).back().data == "x");
  CHECK(net.core_of(1).tracker().progress.at(4).match == net.core_of(1).log().last_index());
  CHECK(committed(net, 1) == before);

  net.recover();
  net.heartbeat(1);
  CHECK(net.applied(1, "x"));
}

TEST_CASE("a candidate asks only voters and cannot win with learners") {
  network net({1, 2, 3}, 1, network::default_config(), {4, 5});
  // 2, 4 and 5 would be a majority of five, but only 1, 2 and 3 vote.
  net.cut(2, 1);
  net.cut(2, 3);
  net.node(2).campaign();
  net.process(2);
  CHECK(net.queued([](const message& m) { return m.to == 4 || m.to == 5; }).empty());
  CHECK(net.queued([](const message& m) { return m.to == 1 || m.to == 3; }).size() == 2);

  net.stabilize();
  CHECK(net.core_of(2).state() != state_type::leader);
  CHECK(net.leader() == no_node);
}

TEST_CASE("a learner never campaigns however long it hears nothing") {
  network net({1, 2, 3}, 1, network::default_config(), {4});
  net.isolate(4);
  net.tick(4, 1000);
  net.node(4).campaign();
  net.process(4);

  CHECK(net.core_of(4).state() == state_type::follower);
  CHECK(net.core_of(4).term() == 0);
  CHECK(net.in_flight().empty());
}

TEST_CASE("a learner promoted to voter counts towards commits") {
  network net({1, 2}, 1, network::default_config(), {3});
  net.campaign(1);

  // Two voters: without 2 nothing commits, whatever learner 3 holds.
  net.cut(1, 2);
  REQUIRE(!net.propose(1, "before"));
  CHECK_FALSE(net.applied(1, "before"));
  net.recover();
  net.heartbeat(1);
  REQUIRE(net.applied(1, "before"));

  REQUIRE(!net.propose_conf_change(1, single(conf_change_type::add_node, 3)));
  for (node_id id : {1, 2, 3}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters == ids{1, 2, 3});
    CHECK(net.at(id).conf.learners.empty());
  }
  CHECK_FALSE(net.core_of(3).is_learner());

  // Three voters: 1 and 3 are a majority.
  net.cut(1, 2);
  REQUIRE(!net.propose(1, "after"));
  CHECK(net.applied(1, "after"));
  CHECK(net.applied(3, "after"));
}

TEST_CASE("a voter demoted through a joint configuration becomes a learner when it is left") {
  network net({1, 2, 3});
  net.campaign(1);

  REQUIRE(!net.propose_conf_change(
      1, joint(conf_change_transition::joint_explicit, {{conf_change_type::add_learner, 3}})));
  for (node_id id : {1, 2, 3}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters == ids{1, 2});
    CHECK(net.at(id).conf.voters_outgoing == ids{1, 2, 3});
    CHECK(net.at(id).conf.learners_next == ids{3});
    CHECK(net.at(id).conf.learners.empty());
  }
  // Still a voter of the outgoing half.
  CHECK_FALSE(net.core_of(3).is_learner());
  CHECK_FALSE(net.core_of(1).tracker().progress.at(3).is_learner);

  REQUIRE(!net.propose_conf_change(1, leave_joint()));
  for (node_id id : {1, 2, 3}) {
    INFO("node " << id);
    CHECK(net.at(id).conf.voters == ids{1, 2});
    CHECK(net.at(id).conf.voters_outgoing.empty());
    CHECK(net.at(id).conf.learners == ids{3});
    CHECK(net.at(id).conf.learners_next.empty());
  }
  CHECK(net.core_of(3).is_learner());

  // It keeps receiving the log.
  REQUIRE(!net.propose(1, "x"));
  CHECK(net.applied(3, "x"));
}
