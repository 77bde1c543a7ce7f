// The test network itself (network.hpp): each fault filter has the effect it
// promises on a small cluster, restarts keep exactly what was persisted, a
// seed replays a run, and the safety checker catches each kind of violation
// when one is forged.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "network.hpp"

namespace {

using namespace keel::test;

// A three-node cluster with 1 elected.
network elected(std::uint64_t seed = 1, config c = network::default_config()) {
  network net({1, 2, 3}, seed, c);
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  return net;
}

void run(network& net, int ticks) {
  for (int i = 0; i < ticks; ++i) {
    net.tick_all();
    net.stabilize();
  }
}

std::uint64_t match_of(network& net, node_id leader, node_id follower) {
  return net.core_of(leader).tracker().progress.at(follower).match;
}

// ---- filters ------------------------------------------------------------------------------

TEST_CASE("drop loses the messages of one direction of a link only", "[raft][network]") {
  SECTION("leader to follower") {
    network net = elected();
    net.drop(1, 3, 1.0);
    REQUIRE_FALSE(net.propose(1, "x"));
    CHECK(net.applied_data(1) == std::vector<std::string>{"x"});
    CHECK(net.applied_data(2) == std::vector<std::string>{"x"});
    CHECK(net.applied_data(3).empty());
    CHECK(net.log_of(3).size() < net.log_of(1).size());
  }
  SECTION("follower to leader") {
    network net = elected();
    const std::uint64_t before = match_of(net, 1, 3);
    net.drop(3, 1, 1.0);
    REQUIRE_FALSE(net.propose(1, "x"));
    // 3 got the entry, but the leader never heard back.
    CHECK(net.log_of(3) == net.log_of(1));
    CHECK(match_of(net, 1, 3) == before);
    CHECK(match_of(net, 1, 2) == net.core_of(1).log().last_index());
  }
}

TEST_CASE("drop with probability zero restores a link", "[raft][network]") {
  network net = elected();
  net.drop(1, 3, 1.0);
  REQUIRE_FALSE(net.propose(1, "x"));
  REQUIRE(net.applied_data(3).empty());
  net.drop(1, 3, 0);
  run(net, 3);
  CHECK(net.applied_data(3) == std::vector<std::string>{"x"});
}

TEST_CASE("cut severs a link in both directions", "[raft][network]") {
  network net = elected();
  const std::uint64_t before = match_of(net, 1, 3);
  net.cut(1, 3);
  REQUIRE_FALSE(net.propose(1, "x"));
  run(net, 5);
  CHECK(net.applied_data(3).empty());
  CHECK(match_of(net, 1, 3) == before);
  CHECK(net.applied_data(2) == std::vector<std::string>{"x"});
}

TEST_CASE("an isolated leader can commit nothing", "[raft][network]") {
  network net = elected();
  net.isolate(1);
  REQUIRE_FALSE(net.propose(1, "x"));
  CHECK(net.log_of(1).back().data == "x");
  CHECK(net.applied_data(1).empty());
  CHECK(net.log_of(2).back().data != "x");
  CHECK(net.log_of(3).back().data != "x");
  CHECK(net.in_flight().empty());  // Everything it sent was dropped.
}

TEST_CASE("ignoring appends keeps every entry off the followers", "[raft][network]") {
  network net = elected();
  const auto follower_log = net.log_of(2);
  const std::uint64_t committed = net.core_of(1).log().committed();
  net.ignore(message_type::app);
  for (int i = 0; i < 3; ++i) REQUIRE_FALSE(net.propose(1, "x" + std::to_string(i)));
  run(net, 5);  // Heartbeats still flow, and the leader retries.
  CHECK(net.log_of(2) == follower_log);
  CHECK(net.log_of(3) == follower_log);
  CHECK(net.core_of(1).log().committed() == committed);
  CHECK(net.applied_data(1).empty());
  CHECK(net.leader() == 1);  // Heartbeats kept the leader in office.
}

TEST_CASE("ignoring one message type leaves the others alone", "[raft][network]") {
  network net({1, 2, 3});
  net.ignore(message_type::heartbeat);
  net.campaign(1);  // Elections need no heartbeats.
  CHECK(net.leader() == 1);
  REQUIRE_FALSE(net.propose(1, "x"));
  CHECK(net.applied_data(2) == std::vector<std::string>{"x"});
}

TEST_CASE("duplication delivers a message twice", "[raft][network]") {
  network net = elected();
  net.set_duplication(1.0);
  REQUIRE_FALSE(net.node(1).propose("x"));
  net.process(1);
  REQUIRE(net.deliver_if([](const message& m) {
    return m.from == 1 && m.to == 2 && m.type == message_type::app;
  }) == 1);
  // Node 2 stepped the append twice and answered twice.
  CHECK(net.queued([](const message& m) {
             return m.from == 2 && m.to == 1 && m.type == message_type::app_resp;
           })
            .size() == 2);
}

TEST_CASE("with every message duplicated the cluster still converges", "[raft][network]") {
  network net = elected();
  net.set_duplication(1.0);
  std::vector<std::string> proposed;
  for (int i = 0; i < 10; ++i) {
    proposed.push_back("x" + std::to_string(i));
    REQUIRE_FALSE(net.propose(1, proposed.back()));
    net.tick_all();
  }
  run(net, 5);
  for (node_id id : {1, 2, 3}) {
    CAPTURE(id);
    CHECK(net.log_of(id) == net.log_of(1));
    CHECK(net.applied_data(id) == proposed);  // Each entry applied once, in order.
  }
  safety_checker safety;
  CHECK(safety.check(net).empty());
}

TEST_CASE("reordering delivers queued messages out of order", "[raft][network]") {
  network net = elected();
  net.set_reorder(true);
  for (int i = 0; i < 8; ++i) REQUIRE_FALSE(net.node(1).propose("x" + std::to_string(i)));
  net.process(1);
  net.tick(1, 3);
  int in_order = 0, out_of_order = 0;
  while (!net.in_flight().empty()) {
    const std::deque<message> before = net.in_flight();
    net.deliver_one();
    // In FIFO order the rest of the queue is what followed the front one
    // (answers are queued behind it).
    const auto& after = net.in_flight();
    const bool fifo = after.size() >= before.size() - 1 &&
                      std::equal(before.begin() + 1, before.end(), after.begin());
    (fifo ? in_order : out_of_order)++;
  }
  CHECK(out_of_order > 0);
  CHECK(in_order + out_of_order > 10);
}

TEST_CASE("with messages reordered the cluster still converges", "[raft][network]") {
  network net = elected();
  net.set_reorder(true);
  std::vector<std::string> proposed;
  for (int i = 0; i < 10; ++i) {
    proposed.push_back("x" + std::to_string(i));
    REQUIRE_FALSE(net.node(1).propose(proposed.back()));
    net.process(1);
    if (i % 3 == 0) net.tick_all();
  }
  net.stabilize();
  run(net, 10);
  for (node_id id : {1, 2, 3}) {
    CAPTURE(id);
    CHECK(net.log_of(id) == net.log_of(1));
    CHECK(net.applied_data(id) == proposed);
  }
}

TEST_CASE("loss drops about the given share of messages", "[raft][network]") {
  config c = network::default_config();
  c.check_quorum = false;  // The leader hears nothing back while heartbeats pile up.
  network net = elected(1, c);
  net.set_loss(0.5);
  const int heartbeats = 400;
  // Queue heartbeats to 2 and count the answers that come out of the ones delivered.
  for (int i = 0; i < heartbeats; ++i) net.tick(1);
  net.drop_if([](const message& m) { return m.to != 2 || m.type != message_type::heartbeat; });
  REQUIRE(net.in_flight().size() == static_cast<std::size_t>(heartbeats));
  for (int i = 0; i < heartbeats; ++i) net.deliver_one();
  const auto answers = net.queued([](const message& m) { return m.from == 2; }).size();
  CHECK(answers > heartbeats * 4 / 10);
  CHECK(answers < heartbeats * 6 / 10);
}

TEST_CASE("total loss stops every election", "[raft][network]") {
  network net({1, 2, 3});
  net.set_loss(1.0);
  run(net, 100);
  CHECK(net.leader() == no_node);
}

TEST_CASE("recover removes every filter", "[raft][network]") {
  network net = elected();
  net.isolate(2);
  net.ignore(message_type::app);
  net.set_loss(1.0);
  net.set_duplication(1.0);
  net.set_reorder(true);
  REQUIRE_FALSE(net.propose(1, "x"));
  REQUIRE(net.applied_data(1).empty());
  net.recover();
  run(net, 3);
  REQUIRE_FALSE(net.propose(1, "y"));
  for (node_id id : {1, 2, 3}) {
    CAPTURE(id);
    CHECK(net.applied_data(id) == std::vector<std::string>{"x", "y"});
  }
}

TEST_CASE("heal restores every link but keeps loss, duplication and reordering",
          "[raft][network]") {
  network net = elected();
  net.isolate(3);
  net.set_duplication(1.0);
  net.heal();
  REQUIRE_FALSE(net.node(1).propose("x"));
  net.process(1);
  REQUIRE(net.deliver_if([](const message& m) {
    return m.from == 1 && m.to == 3 && m.type == message_type::app;
  }) == 1);
  CHECK(net.queued([](const message& m) { return m.from == 3; }).size() == 2);
}

// ---- scripted delivery ------------------------------------------------------------------------

TEST_CASE("deliver_if delivers only the matching messages", "[raft][network]") {
  network net = elected();
  REQUIRE_FALSE(net.node(1).propose("x"));
  net.process(1);
  REQUIRE(net.in_flight().size() == 2);
  CHECK(net.deliver_if([](const message& m) { return m.to == 2; }) == 1);
  CHECK(net.log_of(2).back().data == "x");
  CHECK(net.log_of(3).back().data != "x");
  // The message to 3 is still queued, followed by 2's answer.
  REQUIRE(net.in_flight().size() == 2);
  CHECK(net.in_flight().front().to == 3);
  CHECK(net.in_flight().back().from == 2);
}

TEST_CASE("drop_if removes the matching messages from the queue", "[raft][network]") {
  network net = elected();
  REQUIRE_FALSE(net.node(1).propose("x"));
  net.process(1);
  CHECK(net.drop_if([](const message& m) { return m.to == 3; }) == 1);
  REQUIRE(net.in_flight().size() == 1);
  CHECK(net.in_flight().front().to == 2);
  net.deliver_one();
  CHECK(net.log_of(3).back().data != "x");
}

TEST_CASE("stabilize delivers until nothing is in flight", "[raft][network]") {
  network net({1, 2, 3});
  net.node(1).campaign();
  net.process(1);
  REQUIRE_FALSE(net.in_flight().empty());
  net.stabilize();
  CHECK(net.in_flight().empty());
  CHECK(net.leader() == 1);
}

TEST_CASE("leader names the leader of the highest term", "[raft][network]") {
  network net = elected();
  CHECK(net.leader() == 1);
  // 1 is cut off and keeps believing it leads; 2 wins a later term.
  net.isolate(1);
  for (int i = 0; i < 100 && net.core_of(2).state() != state_type::leader &&
                  net.core_of(3).state() != state_type::leader;
       ++i) {
    net.tick(2);
    net.tick(3);
    net.stabilize();
  }
  REQUIRE(net.core_of(1).state() == state_type::leader);
  const node_id other = net.core_of(2).state() == state_type::leader ? 2 : 3;
  REQUIRE(net.core_of(other).state() == state_type::leader);
  CHECK(net.leader() == other);
}

// ---- restarts and replay ----------------------------------------------------------------------

TEST_CASE("restart keeps what was persisted and does not apply anything twice", "[raft][network]") {
  network net = elected();
  REQUIRE_FALSE(net.propose(1, "x"));
  REQUIRE_FALSE(net.propose(1, "y"));
  const auto log = net.log_of(2);
  const hard_state hs = net.core_of(2).hard_state_now();
  net.restart(2);
  CHECK(net.log_of(2) == log);
  CHECK(net.core_of(2).term() == hs.term);
  CHECK(net.core_of(2).vote() == hs.vote);
  CHECK(net.core_of(2).log().applied() == net.at(2).applied.back().index);
  run(net, 3);
  REQUIRE_FALSE(net.propose(1, "z"));
  CHECK(net.applied_data(2) == std::vector<std::string>{"x", "y", "z"});
}

TEST_CASE("a restarted leader comes back as a follower and the cluster goes on",
          "[raft][network]") {
  network net = elected();
  REQUIRE_FALSE(net.propose(1, "x"));
  net.restart(1);
  CHECK(net.core_of(1).state() == state_type::follower);
  run(net, 60);
  const node_id lead = net.leader();
  REQUIRE(lead != no_node);
  REQUIRE_FALSE(net.propose(lead, "y"));
  for (node_id id : {1, 2, 3}) {
    CAPTURE(id);
    CHECK(net.applied_data(id) == std::vector<std::string>{"x", "y"});
  }
}

TEST_CASE("two networks with the same seed replay the same run", "[raft][network]") {
  auto play = [](std::uint64_t seed) {
    network net({1, 2, 3, 4, 5}, seed);
    net.set_loss(0.2);
    net.set_duplication(0.1);
    net.set_reorder(true);
    for (int i = 0; i < 200; ++i) {
      net.tick_all();
      if (i % 7 == 0 && net.leader() != no_node) (void)net.node(net.leader()).propose("x");
      net.process_all();
      for (int k = 0; k < 10 && net.deliver_one(); ++k) {
      }
    }
    std::vector<std::uint64_t> out;
    for (node_id id : net.ids()) {
      out.push_back(net.core_of(id).term());
      out.push_back(net.core_of(id).log().last_index());
      out.push_back(net.core_of(id).log().committed());
      out.push_back(net.at(id).roles.size());
    }
    return out;
  };
  CHECK(play(7) == play(7));
  CHECK(play(7) != play(8));
}

// ---- the safety checker --------------------------------------------------------------------

TEST_CASE("the safety checker finds nothing wrong with a healthy cluster", "[raft][network]") {
  network net = elected();
  safety_checker safety;
  for (int i = 0; i < 5; ++i) {
    REQUIRE_FALSE(net.propose(1, "x" + std::to_string(i)));
    CHECK(safety.check(net).empty());
  }
  CHECK(safety.terms_with_leader() == 1);
  CHECK(safety.committed_count() == 6);  // The no-op and five proposals.
}

TEST_CASE("the safety checker reports two leaders of one term", "[raft][network]") {
  network net = elected();
  safety_checker safety;
  REQUIRE(safety.check(net).empty());
  // Forge a second leader of the same term through the core's test hooks.
  auto& r = net.node(2).state();
  r.become_follower(r.term() - 1, no_node);
  r.become_candidate();
  r.become_leader();
  REQUIRE(r.term() == net.core_of(1).term());
  CHECK_THAT(safety.check_election_safety(net), Catch::Contains("both led term"));
}

TEST_CASE("the safety checker reports logs that share an entry but not its prefix",
          "[raft][network]") {
  network net({1, 2, 3});
  // Equal (index 3, term 2) on both, different entries at index 2 before it.
  REQUIRE_FALSE(net.at(1).storage->append(
      {{.term = 1, .index = 2, .data = "a"}, {.term = 2, .index = 3, .data = "c"}}));
  REQUIRE_FALSE(net.at(2).storage->append(
      {{.term = 1, .index = 2, .data = "b"}, {.term = 2, .index = 3, .data = "c"}}));
  net.restart(1);
  net.restart(2);
  safety_checker safety;
  CHECK_THAT(safety.check_log_matching(net), Catch::Contains("log matching"));
}

TEST_CASE("the safety checker reports a different entry applied at an index", "[raft][network]") {
  network net = elected();
  REQUIRE_FALSE(net.propose(1, "x"));
  safety_checker safety;
  REQUIRE(safety.check_state_machine_safety(net).empty());
  // Node 3 "applies" something else at the next index than 1 and 2 do.
  entry forged = net.at(1).applied.back();
  forged.index += 1;
  forged.data = "forged";
  net.at(3).applied.push_back(forged);
  REQUIRE_FALSE(net.propose(1, "y"));
  CHECK_THAT(safety.check_state_machine_safety(net), Catch::Contains("state machine safety"));
}

TEST_CASE("the safety checker reports an applied index skipped", "[raft][network]") {
  network net = elected();
  safety_checker safety;
  REQUIRE(safety.check_state_machine_safety(net).empty());
  entry forged = net.at(3).applied.back();
  forged.index += 2;
  net.at(3).applied.push_back(forged);
  CHECK_THAT(safety.check_state_machine_safety(net), Catch::Contains("right after"));
}

TEST_CASE("the safety checker reports a leader that lost an entry of its term", "[raft][network]") {
  network net = elected();
  net.isolate(1);
  REQUIRE_FALSE(net.propose(1, "x"));
  safety_checker safety;
  REQUIRE(safety.check_leader_append_only(net).empty());
  // The leader restarts from a storage that lost "x", and is made leader of
  // the same term again through the test hooks.
  const std::uint64_t term = net.core_of(1).term();
  auto& storage = *net.at(1).storage;
  auto log = net.log_of(1);
  log.pop_back();
  *net.at(1).storage = memory_storage{};
  snapshot boot;
  boot.metadata = {.index = 1, .term = 1, .conf = {.voters = {1, 2, 3}}};
  REQUIRE_FALSE(storage.apply_snapshot(boot));
  REQUIRE_FALSE(storage.append(log));
  storage.set_hard_state({.term = term - 1, .vote = no_node, .commit = 1});
  net.restart(1);
  auto& r = net.node(1).state();
  r.become_candidate();
  r.become_leader();
  REQUIRE(r.term() == term);
  CHECK_THAT(safety.check_leader_append_only(net), Catch::Contains("leader append-only"));
}

TEST_CASE("the safety checker reports a leader that lacks a committed entry", "[raft][network]") {
  network net = elected();
  REQUIRE_FALSE(net.propose(1, "x"));
  safety_checker safety;
  REQUIRE(safety.check_leader_completeness(net).empty());
  // Node 3 loses its log, and is forced to lead a later term.
  *net.at(3).storage = memory_storage{};
  snapshot boot;
  boot.metadata = {.index = 1, .term = 1, .conf = {.voters = {1, 2, 3}}};
  REQUIRE_FALSE(net.at(3).storage->apply_snapshot(boot));
  net.at(3).storage->set_hard_state({.term = net.core_of(1).term(), .vote = no_node, .commit = 1});
  net.restart(3);
  auto& r = net.node(3).state();
  r.become_candidate();
  r.become_leader();
  CHECK_THAT(safety.check_leader_completeness(net), Catch::Contains("leader completeness"));
}

}  // namespace
