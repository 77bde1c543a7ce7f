// The Raft paper's section 5, property by property (Ongaro and Ousterhout,
// "In Search of an Understandable Consensus Algorithm", fig. 3): election
// safety, leader append-only, log matching, leader completeness and state
// machine safety, each shown on a scenario from the paper and checked after
// every delivery of a cluster run under faults; then the log repair of fig. 7
// and the commitment rule of fig. 8.
//
// Logs are written as in the paper's figures, one term per index. Every
// member of the test network starts from a bootstrap snapshot at index 1 of
// term 1, which plays the paper's first entry (of term 1 in every log of
// figs. 7 and 8).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "network.hpp"

namespace {

using namespace keel::test;
using terms = std::vector<std::uint64_t>;

config classic_raft() {
  config c = network::default_config();
  c.pre_vote = false;
  c.check_quorum = false;
  return c;
}

// Replaces member id's log by `log` (terms from index 1; index 1 is the
// bootstrap entry and must be of term 1) and its term by `term`, then
// restarts it. Entries of equal index and term get equal payloads, as the
// log matching property says they are the same entry.
void load_log(network& net, node_id id, const terms& log, std::uint64_t term) {
  REQUIRE(log.front() == 1);
  std::vector<entry> ents;
  for (std::size_t k = 1; k < log.size(); ++k) {
    const std::uint64_t index = k + 1;
    ents.push_back({.term = log[k],
                    .index = index,
                    .data = std::to_string(index) + "@" + std::to_string(log[k])});
  }
  REQUIRE_FALSE(net.at(id).storage->append(ents));
  net.at(id).storage->set_hard_state({.term = term, .vote = no_node, .commit = 1});
  net.restart(id);
}

// The log of node id as in the paper's figures: the bootstrap entry first.
terms figure_log(network& net, node_id id) {
  terms out{1};
  for (std::uint64_t t : net.terms_of(id)) out.push_back(t);
  return out;
}

bool is(const message& m, message_type t, node_id from, node_id to) {
  return m.type == t && m.from == from && m.to == to;
}

// Drives a five-node cluster through elections, proposals, partitions that
// come and go (a new one every 30 ticks, mostly cutting off the leader) and
// restarts, under message loss and reordering, calling check(net) after
// every single delivery.
template <class Check>
void run_under_faults(std::uint64_t seed, int rounds, Check check) {
  config c = network::default_config();
  c.pre_vote = seed % 2 == 0;
  c.check_quorum = seed % 3 != 0;
  network net({1, 2, 3, 4, 5}, seed, c);
  std::mt19937_64 rng(seed);
  net.set_loss(0.1);
  net.set_reorder(true);
  auto any_node = [&] {
    return static_cast<node_id>(1 + rng() % 5);
  };
  int proposals = 0;
  for (int round = 0; round < rounds; ++round) {
    if (round % 30 == 0) {
      // A new partition: the leader (mostly) and sometimes one more node are cut off.
      net.heal();
      net.isolate(net.leader() != no_node && rng() % 4 != 0 ? net.leader() : any_node());
      if (rng() % 3 == 0) net.isolate(any_node());
    }
    switch (rng() % 32) {
      case 0:
        net.restart(any_node());
        break;
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 6: {
        const node_id at = net.leader() != no_node && rng() % 4 != 0 ? net.leader() : any_node();
        (void)net.node(at).propose("p" + std::to_string(proposals++));
        net.process(at);
        break;
      }
      default:
        break;
    }
    net.tick_all();
    while (net.deliver_one()) check(net);
  }
  // Heal and let the cluster settle, so runs end with a common log to compare.
  net.recover();
  for (int i = 0; i < 30; ++i) {
    net.tick_all();
    while (net.deliver_one()) check(net);
  }
}

constexpr int fault_seeds = 8;
constexpr int fault_rounds = 450;

// ---- §5.2 election safety ---------------------------------------------------------------

TEST_CASE("at most one leader is elected in each term, over many elections",
          "[raft][paper][election-safety]") {
  const auto seed = static_cast<std::uint64_t>(GENERATE(range(1, fault_seeds + 1)));
  CAPTURE(seed);
  safety_checker safety;
  run_under_faults(seed, fault_rounds, [&](network& net) {
    const std::string violation = safety.check_election_safety(net);
    if (!violation.empty()) FAIL(violation);
  });
  // The run saw many elections, not one long reign.
  CHECK(safety.terms_with_leader() >= 10);
}

TEST_CASE("two candidates of one term cannot both win", "[raft][paper][election-safety]") {
  // Both start an election of the same term at once; the votes arrive in an
  // order that depends on the seed.
  const auto seed = static_cast<std::uint64_t>(GENERATE(range(1, 21)));
  CAPTURE(seed);
  network net({1, 2, 3, 4, 5}, seed, classic_raft());
  net.set_reorder(true);
  net.node(1).campaign();
  net.node(5).campaign();
  net.process(1);
  net.process(5);
  REQUIRE(net.core_of(1).term() == net.core_of(5).term());
  safety_checker safety;
  while (net.deliver_one()) REQUIRE(safety.check_election_safety(net).empty());
  const bool one_won = net.core_of(1).state() == state_type::leader;
  const bool five_won = net.core_of(5).state() == state_type::leader;
  CHECK_FALSE((one_won && five_won));
  // Every voter voted for at most one of them.
  for (node_id id : {2, 3, 4}) {
    const node_id vote = net.core_of(id).vote();
    CHECK((vote == 1 || vote == 5 || vote == no_node));
  }
}

// ---- §5.3 leader append-only ---------------------------------------------------------------

// Fig. 7: the leader of term 8 and the logs of followers (a) to (f).
const terms fig7_leader{1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
const std::vector<std::pair<std::string, terms>> fig7_followers{
    {"a", {1, 1, 1, 4, 4, 5, 5, 6, 6}},
    {"b", {1, 1, 1, 4}},
    {"c", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}},
    {"d", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}},
    {"e", {1, 1, 1, 4, 4, 4, 4}},
    {"f", {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}},
};

// Node 1 holds the fig. 7 leader's log, nodes 2 to 7 followers (a) to (f),
// everybody in term 7; node 1 then wins the election of term 8.
void load_fig7(network& net) {
  load_log(net, 1, fig7_leader, 7);
  for (std::size_t k = 0; k < fig7_followers.size(); ++k) {
    load_log(net, static_cast<node_id>(k + 2), fig7_followers[k].second, 7);
  }
}

TEST_CASE("a leader never overwrites or deletes entries of its log",
          "[raft][paper][leader-append-only]") {
  // Followers (c) and (d) hold entries the leader lacks, of terms 6 and 7:
  // repairing them must not pull those entries into the leader's log.
  network net({1, 2, 3, 4, 5, 6, 7});
  load_fig7(net);
  safety_checker safety;
  net.node(1).campaign();
  net.process(1);
  while (net.deliver_one()) REQUIRE(safety.check_leader_append_only(net).empty());
  REQUIRE(net.leader() == 1);
  terms expected = fig7_leader;
  expected.push_back(8);  // The no-op of its own term.
  CHECK(figure_log(net, 1) == expected);
}

TEST_CASE("leaders only append to their logs under faults", "[raft][paper][leader-append-only]") {
  const auto seed = static_cast<std::uint64_t>(GENERATE(range(1, fault_seeds + 1)));
  CAPTURE(seed);
  safety_checker safety;
  run_under_faults(seed, fault_rounds, [&](network& net) {
    const std::string violation = safety.check_leader_append_only(net);
    if (!violation.empty()) FAIL(violation);
  });
}

// ---- §5.3 log matching -------------------------------------------------------------------

TEST_CASE("a follower refuses an append whose previous entry it does not hold",
          "[raft][paper][log-matching]") {
  network net({1, 2, 3});
  load_log(net, 2, {1, 1, 2, 2}, 3);
  const terms before = figure_log(net, 2);
  // The leader of term 3 believes index 4 holds an entry of term 3.
  REQUIRE_FALSE(net.node(2).step({.type = message_type::app,
                                  .to = 2,
                                  .from = 1,
                                  .term = 3,
                                  .log_term = 3,
                                  .index = 4,
                                  .entries = {{.term = 3, .index = 5, .data = "x"}}}));
  net.process(2);
  const auto replies = net.queued([](const message& m) { return m.from == 2; });
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].type == message_type::app_resp);
  CHECK(replies[0].reject);
  CHECK(figure_log(net, 2) == before);
}

TEST_CASE("a follower drops its conflicting suffix and takes the leader's entries",
          "[raft][paper][log-matching]") {
  network net({1, 2, 3});
  load_log(net, 2, {1, 1, 2, 2, 2}, 3);
  // The leader of term 3 holds (3, term 2) and sends (4, term 3) after it.
  REQUIRE_FALSE(net.node(2).step({.type = message_type::app,
                                  .to = 2,
                                  .from = 1,
                                  .term = 3,
                                  .log_term = 2,
                                  .index = 3,
                                  .entries = {{.term = 3, .index = 4, .data = "x"}}}));
  net.process(2);
  CHECK(figure_log(net, 2) == terms{1, 1, 2, 3});
  CHECK(net.log_of(2).back().data == "x");
}

TEST_CASE("logs that share an entry are identical up to it, after the fig. 7 repair",
          "[raft][paper][log-matching]") {
  network net({1, 2, 3, 4, 5, 6, 7});
  load_fig7(net);
  safety_checker safety;
  REQUIRE(safety.check_log_matching(net).empty());  // The figure itself obeys it.
  net.node(1).campaign();
  net.process(1);
  while (net.deliver_one()) REQUIRE(safety.check_log_matching(net).empty());
}

TEST_CASE("logs that share an entry are identical up to it, under faults",
          "[raft][paper][log-matching]") {
  const auto seed = static_cast<std::uint64_t>(GENERATE(range(1, fault_seeds + 1)));
  CAPTURE(seed);
  safety_checker safety;
  run_under_faults(seed, fault_rounds, [&](network& net) {
    const std::string violation = safety.check_log_matching(net);
    if (!violation.empty()) FAIL(violation);
  });
}

// ---- §5.4 leader completeness -----------------------------------------------------------

TEST_CASE("a node that lacks a committed entry cannot become leader",
          "[raft][paper][leader-completeness]") {
  network net({1, 2, 3, 4, 5});
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  // "x" commits on 1, 2 and 3 while 4 and 5 are cut off.
  net.isolate(4);
  net.isolate(5);
  REQUIRE_FALSE(net.propose(1, "x"));
  REQUIRE(net.applied_data(1) == std::vector<std::string>{"x"});
  // The leader crashes; 4 and 5 come back and everybody's timers run out.
  net.heal();
  net.isolate(1);
  for (int i = 0; i < 200 && (net.leader() == 1 || net.leader() == no_node); ++i) {
    net.tick_all();
    net.stabilize();
  }
  const node_id lead = net.leader();
  CAPTURE(lead);
  CHECK((lead == 2 || lead == 3));
  for (node_id id : {4, 5}) {
    for (const soft_state& s : net.at(id).roles) CHECK(s.raft_state != state_type::leader);
  }
  REQUIRE(lead != no_node);
  const auto log = net.log_of(lead);
  CHECK(std::any_of(log.begin(), log.end(), [](const entry& e) { return e.data == "x"; }));
}

TEST_CASE("every leader holds every entry committed in an earlier term, under faults",
          "[raft][paper][leader-completeness]") {
  const auto seed = static_cast<std::uint64_t>(GENERATE(range(1, fault_seeds + 1)));
  CAPTURE(seed);
  safety_checker safety;
  run_under_faults(seed, fault_rounds, [&](network& net) {
    const std::string violation = safety.check_leader_completeness(net);
    if (!violation.empty()) FAIL(violation);
  });
  CHECK(safety.committed_count() > 0);
}

// ---- §5.4.3 state machine safety -----------------------------------------------------------

TEST_CASE("a deposed leader's uncommitted entries are never applied",
          "[raft][paper][state-machine-safety]") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE_FALSE(net.propose(1, "a"));
  // Leader 1 is partitioned away and takes proposals nobody else sees.
  net.isolate(1);
  REQUIRE_FALSE(net.propose(1, "lost-1"));
  REQUIRE_FALSE(net.propose(1, "lost-2"));
  // The majority elects a new leader that commits "b".
  for (int i = 0; i < 200 && net.leader() == 1; ++i) {
    net.tick(2);
    net.tick(3);
    net.stabilize();
  }
  const node_id lead = net.leader();
  REQUIRE((lead == 2 || lead == 3));
  REQUIRE_FALSE(net.propose(lead, "b"));
  // The partition heals: 1 learns the new term and takes the new leader's log.
  net.recover();
  for (int i = 0; i < 50; ++i) {
    net.tick_all();
    net.stabilize();
  }
  const std::vector<std::string> expected{"a", "b"};
  for (node_id id : {1, 2, 3}) {
    CAPTURE(id);
    CHECK(net.applied_data(id) == expected);
  }
  safety_checker safety;
  CHECK(safety.check_state_machine_safety(net).empty());
}

TEST_CASE("no two nodes apply different entries at one index, under faults",
          "[raft][paper][state-machine-safety]") {
  const auto seed = static_cast<std::uint64_t>(GENERATE(range(1, fault_seeds + 1)));
  CAPTURE(seed);
  safety_checker safety;
  run_under_faults(seed, fault_rounds, [&](network& net) {
    const std::string violation = safety.check_state_machine_safety(net);
    if (!violation.empty()) FAIL(violation);
  });
  CHECK(safety.committed_count() > 0);
}

// ---- §5.1 terms -----------------------------------------------------------------------

TEST_CASE("a leader that sees a higher term steps down", "[raft][paper][terms]") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  const std::uint64_t term = net.core_of(1).term();
  REQUIRE_FALSE(net.node(1).step(
      {.type = message_type::heartbeat_resp, .to = 1, .from = 2, .term = term + 1}));
  CHECK(net.core_of(1).state() == state_type::follower);
  CHECK(net.core_of(1).term() == term + 1);
}

TEST_CASE("a node ignores appends of a stale term", "[raft][paper][terms]") {
  network net({1, 2, 3});
  load_log(net, 2, {1, 1}, 5);
  REQUIRE_FALSE(net.node(2).step({.type = message_type::app,
                                  .to = 2,
                                  .from = 1,
                                  .term = 4,
                                  .log_term = 1,
                                  .index = 2,
                                  .entries = {{.term = 4, .index = 3, .data = "stale"}}}));
  net.process(2);
  CHECK(figure_log(net, 2) == terms{1, 1});
  CHECK(net.core_of(2).term() == 5);
  // It tells the stale leader its term, so that one steps down.
  const auto replies = net.queued([](const message& m) { return m.from == 2; });
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].term == 5);
}

// ---- §5.3 replication ----------------------------------------------------------------------

TEST_CASE("a leader retries appends until a follower that lost them holds the whole log",
          "[raft][paper][replication]") {
  // "If followers crash or run slowly, or if network packets are lost, the
  // leader retries AppendEntries RPCs indefinitely."
  const std::size_t window = GENERATE(as<std::size_t>{}, 1, 4, 256);
  CAPTURE(window);
  config c = network::default_config();
  c.max_inflight_msgs = window;
  network net({1, 2, 3}, 1, c);
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  // Everything the leader streams to 3 is lost: more messages than its window.
  net.cut(1, 3);
  for (std::size_t i = 0; i < window + 3; ++i) {
    REQUIRE_FALSE(net.propose(1, "x" + std::to_string(i)));
  }
  net.recover();
  for (int i = 0; i < 100; ++i) {
    net.tick_all();
    net.stabilize();
  }
  REQUIRE(net.leader() == 1);
  CHECK(net.terms_of(3) == net.terms_of(1));
  CHECK(net.applied_data(3) == net.applied_data(1));
}

TEST_CASE("a duplicated append leaves the follower's log unchanged", "[raft][paper][replication]") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE_FALSE(net.node(1).propose("x"));
  net.process(1);
  const auto apps = net.queued([](const message& m) { return is(m, message_type::app, 1, 2); });
  REQUIRE(apps.size() == 1);
  net.stabilize();
  REQUIRE_FALSE(net.propose(1, "y"));
  const auto before = net.log_of(2);
  // The first append arrives again, late.
  REQUIRE_FALSE(net.node(2).step(apps[0]));
  net.stabilize();
  CHECK(net.log_of(2) == before);
  CHECK(net.applied_data(2) == std::vector<std::string>{"x", "y"});
}

// ---- fig. 7: log repair ------------------------------------------------------------------

TEST_CASE("a new leader brings a fig. 7 follower's log to equal its own", "[raft][paper][fig7]") {
  const auto k = GENERATE(range<std::size_t>(0, 6));
  const auto& [name, follower] = fig7_followers[k];
  CAPTURE(name);
  // Node 3 holds only the first entry: its vote elects 1 whatever 2 thinks.
  network net({1, 2, 3});
  load_log(net, 1, fig7_leader, 7);
  load_log(net, 2, follower, 7);
  load_log(net, 3, {1}, 7);
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  REQUIRE(net.core_of(1).term() == 8);
  terms expected = fig7_leader;
  expected.push_back(8);
  CHECK(figure_log(net, 1) == expected);
  CHECK(net.log_of(2) == net.log_of(1));
  CHECK(net.log_of(3) == net.log_of(1));
}

TEST_CASE("the fig. 7 leader of term 8 repairs all six followers at once", "[raft][paper][fig7]") {
  network net({1, 2, 3, 4, 5, 6, 7});
  load_fig7(net);
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  // (a), (b), (e) and (f) elected it; (c) and (d) hold more recent entries.
  for (node_id id : {2, 3, 6, 7}) CHECK(net.core_of(id).vote() == 1);
  net.tick_all();
  net.stabilize();
  const auto lead_log = net.log_of(1);
  for (node_id id = 2; id <= 7; ++id) {
    CAPTURE(id, fig7_followers[id - 2].first);
    CHECK(net.log_of(id) == lead_log);
    CHECK(net.core_of(id).log().committed() == lead_log.back().index);
  }
}

// ---- fig. 8: commitment of entries from earlier terms --------------------------------------

TEST_CASE("a leader commits an entry of an earlier term only through one of its own",
          "[raft][paper][fig8]") {
  // Fig. 8 on five servers, terms relabelled: t1 plays term 2, S5's term 3,
  // and S1's second term 4. One entry per append lets replication stop
  // between the entry of the earlier term and the leader's own no-op.
  config c = classic_raft();
  c.max_size_per_msg = 0;
  network net({1, 2, 3, 4, 5}, 1, c);
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  const std::uint64_t t1 = net.core_of(1).term();
  const std::uint64_t base = net.core_of(1).log().last_index();  // Committed everywhere.

  // (a) S1 leads and replicates its entry only to S2.
  for (node_id id : {3, 4, 5}) net.cut(1, id);
  REQUIRE_FALSE(net.propose(1, "a"));
  REQUIRE(net.core_of(2).log().last_index() == base + 1);
  REQUIRE(net.core_of(1).log().committed() == base);

  // (b) S1 crashes; S5 wins with the votes of S3 and S4 and keeps its no-op
  // to itself.
  net.heal();
  net.isolate(1);
  net.cut(5, 2);
  net.node(5).campaign();
  net.process(5);
  while (net.deliver_if([](const message& m) {
    return m.type == message_type::vote || m.type == message_type::vote_resp;
  }) > 0) {
  }
  REQUIRE(net.core_of(5).state() == state_type::leader);
  net.drop_if([](const message& m) { return m.from == 5; });

  // (c) S5 crashes; S1 restarts and is elected with the votes of S2, S3 and S4.
  net.heal();
  net.isolate(5);
  net.restart(1);
  for (int i = 0; i < 5 && net.core_of(1).state() != state_type::leader; ++i) {
    net.node(1).campaign();
    net.process(1);
    while (net.deliver_if([](const message& m) {
      return m.type == message_type::vote || m.type == message_type::vote_resp;
    }) > 0) {
    }
  }
  REQUIRE(net.core_of(1).state() == state_type::leader);
  const std::uint64_t t3 = net.core_of(1).term();
  REQUIRE(t3 > t1 + 1);
  const std::uint64_t a_index = base + 1;
  const std::uint64_t noop_index = base + 2;
  REQUIRE(net.core_of(1).log().last_index() == noop_index);

  // S1 replicates the entry of its own term to S2, and the entry of term t1
  // (but not yet its own) to S3: the old entry is on a majority.
  auto acked = [&](node_id id) {
    return net.core_of(1).tracker().progress.at(id).match;
  };
  for (int i = 0; i < 100 && !(acked(2) >= noop_index && acked(3) >= a_index); ++i) {
    net.deliver_if([&](const message& m) {
      if (m.from == 1 && m.to == 3 && m.type == message_type::app) {
        // Probes that 3 must refuse, and appends that stop at the old entry.
        return m.index > net.core_of(3).log().last_index() || m.entries.empty() ||
               m.entries.back().index <= a_index;
      }
      return (m.from == 1 && m.to == 2) || m.to == 1;
    });
  }
  REQUIRE(acked(2) == noop_index);
  REQUIRE(acked(3) == a_index);
  REQUIRE(net.core_of(3).log().last_index() == a_index);
  REQUIRE(net.core_of(1).log().term_or_zero(a_index) == t1);
  for (node_id id : {1, 2, 3}) REQUIRE(net.core_of(id).log().match_term(a_index, t1));
  // Three of five servers hold it, and yet it is not committed.
  CHECK(net.core_of(1).log().committed() == base);
  CHECK(net.applied_data(1).empty());

  // (e) Once S3 also holds the entry of the current term, both commit.
  for (int i = 0; i < 10 && acked(3) < noop_index; ++i) {
    net.deliver_if([](const message& m) { return (m.from == 1 && m.to == 3) || m.to == 1; });
  }
  CHECK(net.core_of(1).log().committed() == noop_index);
  CHECK(net.applied_data(1) == std::vector<std::string>{"a"});
}

TEST_CASE("replicas of an earlier term's entry alone do not move the commit index",
          "[raft][paper][fig8]") {
  // As etcd's TestLeaderOnlyCommitsLogFromCurrentTerm, on the core itself:
  // the log holds (2, term 1) and (3, term 2); the leader of term 3 appends
  // its no-op at 4.
  memory_storage storage;
  snapshot boot;
  boot.metadata = {.index = 1, .term = 1, .conf = {.voters = {1, 2, 3}}};
  REQUIRE_FALSE(storage.apply_snapshot(boot));
  REQUIRE_FALSE(storage.append({{.term = 1, .index = 2}, {.term = 2, .index = 3}}));
  storage.set_hard_state({.term = 2, .vote = no_node, .commit = 1});
  config c = network::default_config();
  c.id = 1;
  core<memory_storage> r(c, storage, splitmix_random(1), null_logger{});
  r.become_candidate();
  r.become_leader();
  REQUIRE(r.term() == 3);
  REQUIRE(r.log().last_index() == 4);
  // Play the node layer: the no-op becomes durable.
  REQUIRE_FALSE(storage.append(r.log().unstable_entries()));
  r.on_persisted(4, 3);

  const std::uint64_t acked = GENERATE(2, 3);
  CAPTURE(acked);
  REQUIRE_FALSE(
      r.step({.type = message_type::app_resp, .to = 1, .from = 2, .term = 3, .index = acked}));
  CHECK(r.log().committed() == 1);
  REQUIRE_FALSE(
      r.step({.type = message_type::app_resp, .to = 1, .from = 2, .term = 3, .index = 4}));
  CHECK(r.log().committed() == 4);
}

}  // namespace
