// Leader election (Raft paper §5.2, thesis §§4.2.3, 9.6): randomized
// timeouts, pre-vote, check-quorum and leases, the voting rules, what a vote
// must wait for before it goes out, and what a restart keeps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "network.hpp"

namespace {

using namespace keel::test;

config classic_raft() {
  config c = network::default_config();
  c.pre_vote = false;
  c.check_quorum = false;
  return c;
}

// A vote request from `from` to `to` for `term`, with from's current log.
message vote_request(network& net, node_id from, node_id to, std::uint64_t term) {
  const auto& log = net.core_of(from).log();
  return {.type = message_type::vote,
          .to = to,
          .from = from,
          .term = term,
          .log_term = log.last_term(),
          .index = log.last_index()};
}

// Takes the answers that `from` queued for `to`, out of the network.
std::vector<message> take_replies(network& net, node_id from, node_id to) {
  auto out = net.queued([&](const message& m) { return m.from == from && m.to == to; });
  net.drop_if([&](const message& m) { return m.from == from && m.to == to; });
  return out;
}

bool was_ever_leader(network& net, node_id id) {
  const auto& roles = net.at(id).roles;
  return std::any_of(roles.begin(), roles.end(),
                     [](const soft_state& s) { return s.raft_state == state_type::leader; });
}

void run(network& net, int ticks) {
  for (int i = 0; i < ticks; ++i) {
    net.tick_all();
    net.stabilize();
  }
}

// ---- randomized timeouts ------------------------------------------------------------

TEST_CASE("randomized election timeouts lie in [election_tick, 2 * election_tick)",
          "[raft][election][timeout]") {
  const int election_tick = GENERATE(2, 10, 25);
  CAPTURE(election_tick);
  config c = network::default_config();
  c.election_tick = election_tick;
  network net({1, 2, 3, 4, 5}, 1, c);
  std::set<int> seen;
  for (int draw = 0; draw < 40 * election_tick; ++draw) {
    for (node_id id : net.ids()) {
      auto& r = net.node(id).state();
      const int timeout = r.randomized_election_timeout();
      CHECK(timeout >= election_tick);
      CHECK(timeout < 2 * election_tick);
      seen.insert(timeout);
      r.become_follower(r.term(), no_node);  // Every reset draws a new timeout.
    }
  }
  // The draws cover the whole range.
  CHECK(seen.size() == static_cast<std::size_t>(election_tick));
}

TEST_CASE("randomized election timeouts differ across the nodes of a cluster",
          "[raft][election][timeout]") {
  int pairs = 0, equal_pairs = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    CAPTURE(seed);
    network net({1, 2, 3, 4, 5}, seed);
    std::set<int> timeouts;
    for (node_id a : net.ids()) {
      timeouts.insert(net.core_of(a).randomized_election_timeout());
      for (node_id b : net.ids()) {
        if (a >= b) continue;
        ++pairs;
        equal_pairs += net.core_of(a).randomized_election_timeout() ==
                       net.core_of(b).randomized_election_timeout();
      }
    }
    CHECK(timeouts.size() >= 2);
  }
  // Two nodes agree about as often as two independent draws from ten values.
  CHECK(equal_pairs * 5 < pairs);
}

TEST_CASE("the follower whose election timeout runs out first starts the election",
          "[raft][election][timeout]") {
  int checked = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    network net({1, 2, 3, 4, 5}, seed);
    node_id first = no_node;
    int shortest = 1 << 30, ties = 0;
    for (node_id id : net.ids()) {
      const int t = net.core_of(id).randomized_election_timeout();
      if (t < shortest) {
        shortest = t, first = id, ties = 0;
      } else if (t == shortest) {
        ++ties;
      }
    }
    if (ties > 0) continue;  // Two would start at once; nothing to tell apart.
    ++checked;
    int ticks = 0;
    auto campaigning = [&] {
      for (node_id id : net.ids()) {
        if (net.core_of(id).state() != state_type::follower) return id;
      }
      return no_node;
    };
    while (campaigning() == no_node && ticks < 100) {
      net.tick_all();
      ++ticks;
    }
    CHECK(campaigning() == first);
    CHECK(ticks == shortest);
    net.stabilize();
    CHECK(net.leader() == first);
  }
  CHECK(checked >= 5);
}

// ---- pre-vote ---------------------------------------------------------------------------

TEST_CASE("with pre-vote a partitioned node that rejoins does not depose the leader",
          "[raft][election][pre-vote]") {
  network net({1, 2, 3});  // pre_vote and check_quorum are on by default.
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  const std::uint64_t term = net.core_of(1).term();

  net.isolate(3);
  run(net, 100);                         // Ten election timeouts.
  CHECK(net.core_of(3).term() == term);  // Its pre-votes never won, so it never bumped it.
  CHECK(net.core_of(3).state() == state_type::pre_candidate);

  net.recover();
  run(net, 50);
  CHECK(net.leader() == 1);
  CHECK(net.core_of(1).term() == term);
  CHECK(net.core_of(3).lead() == 1);
  CHECK(net.core_of(3).state() == state_type::follower);
  // Once leader, 1 never stepped down.
  const auto& roles = net.at(1).roles;
  const auto led = std::find_if(roles.begin(), roles.end(), [](const soft_state& s) {
    return s.raft_state == state_type::leader;
  });
  REQUIRE(led != roles.end());
  CHECK(std::all_of(led, roles.end(),
                    [](const soft_state& s) { return s.raft_state == state_type::leader; }));
}

TEST_CASE("without pre-vote a partitioned node that rejoins deposes the leader",
          "[raft][election][pre-vote]") {
  config c = network::default_config();
  c.pre_vote = false;
  network net({1, 2, 3}, 1, c);
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  const std::uint64_t term = net.core_of(1).term();

  net.isolate(3);
  run(net, 100);
  const std::uint64_t inflated = net.core_of(3).term();
  CHECK(inflated > term + 1);  // It campaigned again and again.
  CHECK(net.leader() == 1);

  net.recover();
  run(net, 50);
  // Its term reached the leader, which had to step down.
  CHECK(net.core_of(1).term() >= inflated);
  const auto& roles = net.at(1).roles;
  const auto led = std::find_if(roles.begin(), roles.end(), [](const soft_state& s) {
    return s.raft_state == state_type::leader;
  });
  REQUIRE(led != roles.end());
  CHECK(std::any_of(led, roles.end(),
                    [](const soft_state& s) { return s.raft_state == state_type::follower; }));
  CHECK(net.leader() != no_node);
}

// ---- check-quorum and leases ----------------------------------------------------------------

TEST_CASE("with check-quorum a leader that hears from no quorum for an election timeout steps down",
          "[raft][election][check-quorum]") {
  network net({1, 2, 3});
  const int election_tick = network::default_config().election_tick;
  net.campaign(1);
  // Connected, it stays leader for many election timeouts.
  run(net, 5 * election_tick + 3);
  REQUIRE(net.leader() == 1);
  // Tick on to the quorum check that ends the current timeout. It passes, and
  // the leader is cut off before anybody answers the heartbeats of that tick.
  while (net.core_of(1).election_elapsed() != election_tick - 1) {
    net.tick(1);
    net.stabilize();
  }
  net.tick(1);
  REQUIRE(net.core_of(1).election_elapsed() == 0);
  REQUIRE(net.core_of(1).state() == state_type::leader);
  net.isolate(1);

  int ticks = 0;
  while (net.core_of(1).state() == state_type::leader && ticks < 10 * election_tick) {
    net.tick(1);
    net.stabilize();
    ++ticks;
  }
  CHECK(net.core_of(1).state() == state_type::follower);
  CHECK(ticks == election_tick);
}

TEST_CASE("with check-quorum an isolated leader steps down within two election timeouts",
          "[raft][election][check-quorum]") {
  // Cut off at any point of its check interval, it may first pass one check
  // on answers it got before the cut; the next one deposes it.
  const int election_tick = network::default_config().election_tick;
  const int phase = GENERATE(range(0, 10));
  CAPTURE(phase);
  network net({1, 2, 3});
  net.campaign(1);
  while (net.core_of(1).election_elapsed() != phase) {
    net.tick(1);
    net.stabilize();
  }
  net.isolate(1);
  int ticks = 0;
  while (net.core_of(1).state() == state_type::leader && ticks < 10 * election_tick) {
    net.tick(1);
    net.stabilize();
    ++ticks;
  }
  CHECK(net.core_of(1).state() == state_type::follower);
  CHECK(ticks <= 2 * election_tick);
}

TEST_CASE("a follower that hears from a live leader ignores a vote request of a higher term",
          "[raft][election][check-quorum]") {
  network net({1, 2, 3});
  net.campaign(1);
  run(net, 3);
  const std::uint64_t term = net.core_of(2).term();
  REQUIRE(net.core_of(2).lead() == 1);
  // Node 3's log is as good as 2's: only the lease stands in the way.
  REQUIRE_FALSE(net.node(2).step(vote_request(net, 3, 2, term + 1)));
  net.process(2);
  CHECK(take_replies(net, 2, 3).empty());
  CHECK(net.core_of(2).term() == term);
  CHECK(net.core_of(2).vote() == 1);
  CHECK(net.core_of(2).lead() == 1);
}

TEST_CASE("a follower whose leader fell silent for an election timeout grants a higher vote",
          "[raft][election][check-quorum]") {
  network net({1, 2, 3});
  net.campaign(1);
  const std::uint64_t term = net.core_of(2).term();
  net.isolate(1);
  net.tick(2, network::default_config().election_tick);
  net.drop_if([](const message& m) { return m.from == 2; });  // Its own pre-vote, if any.
  REQUIRE_FALSE(net.node(2).step(vote_request(net, 3, 2, term + 1)));
  net.process(2);
  const auto replies = take_replies(net, 2, 3);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].type == message_type::vote_resp);
  CHECK_FALSE(replies[0].reject);
  CHECK(net.core_of(2).vote() == 3);
}

// ---- voting rules -------------------------------------------------------------------------

TEST_CASE("a candidate with a stale log loses the election", "[raft][election][vote]") {
  network net({1, 2, 3}, 1, classic_raft());
  net.campaign(1);
  net.isolate(3);
  REQUIRE_FALSE(net.propose(1, "x"));  // Committed by 1 and 2 only.
  net.recover();
  const std::uint64_t term = net.core_of(1).term();

  net.campaign(3);
  CHECK(net.core_of(3).term() == term + 1);
  CHECK(net.core_of(3).state() == state_type::follower);
  CHECK(net.core_of(1).vote() != 3);
  CHECK(net.core_of(2).vote() != 3);

  // An up-to-date node wins a later election, and 3 catches up.
  run(net, 100);
  CHECK((net.leader() == 1 || net.leader() == 2));
  CHECK_FALSE(was_ever_leader(net, 3));
  CHECK(net.applied_data(3) == std::vector<std::string>{"x"});
}

TEST_CASE("a node grants at most one vote per term", "[raft][election][vote]") {
  network net({1, 2, 3}, 1, classic_raft());
  const std::uint64_t term = net.core_of(2).term() + 1;
  auto ask = [&](node_id candidate) {
    REQUIRE_FALSE(net.node(2).step(vote_request(net, candidate, 2, term)));
    net.process(2);
    const auto replies = take_replies(net, 2, candidate);
    REQUIRE(replies.size() == 1);
    REQUIRE(replies[0].type == message_type::vote_resp);
    return !replies[0].reject;
  };
  CHECK(ask(1));
  CHECK_FALSE(ask(3));  // Same term, another candidate.
  CHECK(ask(1));        // The same candidate asking again is answered the same.
  CHECK(net.core_of(2).vote() == 1);
  CHECK(net.at(2).storage->hard_state().vote == 1);
  CHECK(net.at(2).storage->hard_state().term == term);
}

TEST_CASE("votes and append responses wait for persistence, appends and heartbeats do not",
          "[raft][election][durability]") {
  network net({1, 2, 3});
  std::vector<message> sent;
  auto drain = [&] {
    while (!net.in_flight().empty()) {
      sent.push_back(net.in_flight().front());
      net.deliver_one();
    }
  };
  net.node(1).campaign();
  net.process(1);
  drain();
  REQUIRE(net.leader() == 1);
  REQUIRE_FALSE(net.node(1).propose("x"));
  net.process(1);
  drain();
  net.tick_all();
  drain();

  std::map<message_type, int> seen;
  for (const message& m : sent) {
    CAPTURE(to_string(m.type), m.from, m.to);
    ++seen[m.type];
    switch (m.type) {
      case message_type::vote_resp:
      case message_type::pre_vote_resp:
      case message_type::app_resp:
        CHECK(m.after_persist);
        break;
      case message_type::app:
      case message_type::heartbeat:
        CHECK_FALSE(m.after_persist);
        break;
      default:
        break;
    }
  }
  for (message_type t : {message_type::pre_vote_resp, message_type::vote_resp,
                         message_type::app_resp, message_type::app, message_type::heartbeat}) {
    CAPTURE(to_string(t));
    CHECK(seen[t] > 0);
  }
}

// ---- restarts -------------------------------------------------------------------------------

TEST_CASE("a restarted node keeps its term and vote", "[raft][election][restart]") {
  network net({1, 2, 3});
  net.campaign(1);
  const std::uint64_t term = net.core_of(2).term();
  REQUIRE(net.core_of(2).vote() == 1);
  net.restart(2);
  CHECK(net.core_of(2).term() == term);
  CHECK(net.core_of(2).vote() == 1);
  CHECK(net.core_of(2).state() == state_type::follower);
}

TEST_CASE("a restarted node does not vote again in its term", "[raft][election][restart]") {
  network net({1, 2, 3}, 1, classic_raft());
  net.campaign(1);
  const std::uint64_t term = net.core_of(2).term();
  net.restart(2);
  REQUIRE_FALSE(net.node(2).step(vote_request(net, 3, 2, term)));
  net.process(2);
  const auto replies = take_replies(net, 2, 3);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].reject);
  CHECK(net.core_of(2).vote() == 1);
}

TEST_CASE("a candidate that hears from the leader of its term becomes a follower",
          "[raft][election][vote]") {
  network net({1, 2, 3}, 1, classic_raft());
  // 2 and 3 campaign in the same term; 1 votes for 2.
  net.node(2).campaign();
  net.process(2);
  net.node(3).campaign();
  net.process(3);
  const std::uint64_t term = net.core_of(3).term();
  REQUIRE(net.core_of(2).term() == term);
  net.deliver_if([](const message& m) { return m.from == 2 && m.to == 1; });
  net.deliver_if([](const message& m) { return m.from == 1 && m.to == 2; });
  REQUIRE(net.core_of(2).state() == state_type::leader);
  REQUIRE(net.core_of(3).state() == state_type::candidate);
  // The new leader's append reaches 3 before any answer to its own request.
  REQUIRE(net.deliver_if([](const message& m) {
    return m.from == 2 && m.to == 3 && m.type == message_type::app;
  }) == 1);
  CHECK(net.core_of(3).state() == state_type::follower);
  CHECK(net.core_of(3).term() == term);
  CHECK(net.core_of(3).lead() == 2);
}

}  // namespace
