// Log replication as scenarios (Raft thesis 3.5 and 10.2; etcd-io/raft's
// flow-control tests): a leader probes a follower until it answers and then
// streams appends within a window bounded by count and bytes; a diverging
// follower is backed off a term at a time; proposals are bounded, forwarded
// by followers, and dropped when no leader takes them; readies carry a
// bounded amount of committed entries.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "network.hpp"

using namespace keel::test;

namespace {

const progress& progress_of(network& net, node_id leader, node_id id) {
  return net.core_of(leader).tracker().progress.at(id);
}

/// Counts the appends carrying entries that are delivered from `from` to `to`.
struct append_counter {
  std::size_t messages = 0;
  std::size_t entries = 0;
  std::size_t largest = 0;  ///< Most entries in one message.

  append_counter(network& net, node_id from, node_id to) {
    net.on_deliver([this, from, to](const message& m) {
      if (!pattern{message_type::app, from, to}(m) || m.entries.empty()) return;
      ++messages;
      entries += m.entries.size();
      largest = std::max(largest, m.entries.size());
    });
  }
};

}  // namespace

TEST_CASE("a leader probes a follower with one append at a time until it answers") {
  network net({1, 2, 3});
  net.block_if(pattern{message_type::app_resp, 2, 1});
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  CHECK(progress_of(net, 1, 2).state == progress_state::probe);
  CHECK(progress_of(net, 1, 3).state == progress_state::replicate);

  // 2's probe is unanswered: nothing more goes to it.
  append_counter to_2(net, 1, 2);
  REQUIRE(!net.propose(1, "a"));
  REQUIRE(!net.propose(1, "b"));
  CHECK(to_2.messages == 0);
  CHECK(progress_of(net, 1, 2).state == progress_state::probe);

  net.recover();
  net.heartbeat(1);
  CHECK(progress_of(net, 1, 2).state == progress_state::replicate);
  CHECK(progress_of(net, 1, 2).match == net.core_of(1).log().last_index());
  CHECK(net.applied(2, "b"));
}

TEST_CASE("at most max_inflight_msgs appends are outstanding to a follower") {
  config cfg = network::default_config();
  cfg.max_inflight_msgs = 2;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  REQUIRE(progress_of(net, 1, 2).state == progress_state::replicate);

  net.drop(2, 1, 1.0);  // 2 receives everything but its answers are lost.
  append_counter to_2(net, 1, 2);
  for (int i = 0; i < 5; ++i) REQUIRE(!net.propose(1, "p" + std::to_string(i)));

  CHECK(to_2.messages == 2);
  CHECK(progress_of(net, 1, 2).inflights.count() == 2);
  CHECK(progress_of(net, 1, 2).inflights.full());
  CHECK(net.applied(1, "p4"));  // 3 makes the majority.
  CHECK(net.log_of(2).back().data == "p1");
}

TEST_CASE("replication resumes after the acknowledgements of a full window were lost") {
  config cfg = network::default_config();
  cfg.max_inflight_msgs = 2;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  net.drop(2, 1, 1.0);
  for (int i = 0; i < 5; ++i) REQUIRE(!net.propose(1, "p" + std::to_string(i)));
  REQUIRE(progress_of(net, 1, 2).inflights.full());

  // The link heals; heartbeats show 2 is alive again.
  net.recover();
  net.heartbeat(1, 3);
  CHECK(net.applied(2, "p4"));
  CHECK(progress_of(net, 1, 2).match == net.core_of(1).log().last_index());
}

TEST_CASE("appends outstanding to a follower are bounded by max_inflight_bytes") {
  config cfg = network::default_config();
  cfg.max_inflight_bytes = 1000;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  REQUIRE(progress_of(net, 1, 2).state == progress_state::replicate);

  net.drop(2, 1, 1.0);
  append_counter to_2(net, 1, 2);
  for (int i = 0; i < 8; ++i) REQUIRE(!net.propose(1, std::string(300, 'a' + i)));

  // 300, 600 and 900 bytes leave room; the fourth message reaches the limit.
  CHECK(to_2.messages == 4);
  CHECK(progress_of(net, 1, 2).inflights.bytes() == 1200);
  CHECK(progress_of(net, 1, 2).inflights.full());
  CHECK(net.log_of(2).back().data == std::string(300, 'd'));
}

TEST_CASE("max_size_per_msg limits the entries of one append") {
  config cfg = network::default_config();
  cfg.max_size_per_msg = 250;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  net.drop(1, 3, 1.0);
  for (int i = 0; i < 10; ++i) REQUIRE(!net.propose(1, std::string(100, 'a' + i)));
  net.recover();

  append_counter to_3(net, 1, 3);
  net.heartbeat(1);
  CHECK(to_3.entries == 10);
  CHECK(to_3.largest == 2);  // 100 + 100 fit in 250 bytes; a third would not.
  CHECK(to_3.messages == 5);
  CHECK(net.log_of(3) == net.log_of(1));
}

TEST_CASE("an entry larger than max_size_per_msg is still sent alone") {
  config cfg = network::default_config();
  cfg.max_size_per_msg = 10;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);

  append_counter to_2(net, 1, 2);
  REQUIRE(!net.propose(1, std::string(100, 'x')));
  CHECK(to_2.messages == 1);
  CHECK(net.applied(2, std::string(100, 'x')));
}

TEST_CASE("a follower with a long divergent log of an old term is repaired in few round trips") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(!net.propose(1, "committed"));

  // 1 is cut off and keeps appending entries of its term that never commit.
  net.isolate(1);
  constexpr int divergent = 50;
  for (int i = 0; i < divergent; ++i) REQUIRE(!net.propose(1, "lost" + std::to_string(i)));
  const std::uint64_t old_term = net.core_of(1).term();

  // 2 and 3 elect a leader of a later term and commit without 1.
  for (int i = 0; i < 200 && (net.leader() == no_node || net.leader() == 1); ++i) {
    net.tick_all();
    net.stabilize();
  }
  const node_id lead = net.leader();
  REQUIRE((lead == 2 || lead == 3));
  REQUIRE(net.core_of(lead).term() > old_term);
  REQUIRE(!net.propose(lead, "new"));
  REQUIRE(net.core_of(1).log().last_index() > net.core_of(lead).log().last_index());

  net.recover();
  std::size_t appends = 0;
  net.on_deliver([&](const message& m) { appends += pattern{message_type::app, lead, 1}(m); });
  net.heartbeat(lead);

  CHECK(net.log_of(1) == net.log_of(lead));
  CHECK(net.applied(1, "new"));
  CHECK_FALSE(net.applied(1, "lost0"));
  CHECK(appends <= 3);  // Against 50 one entry at a time.
}

TEST_CASE("proposals beyond max_uncommitted_entries_size are dropped until entries commit") {
  config cfg = network::default_config();
  cfg.max_uncommitted_entries_size = 100;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);

  net.isolate(1);  // Nothing commits.
  CHECK(!net.propose(1, std::string(60, 'a')));
  CHECK(net.propose(1, std::string(60, 'b')) == keel::errc::proposal_dropped);
  CHECK(net.core_of(1).uncommitted_size() == 60);
  CHECK(net.log_of(1).back().data == std::string(60, 'a'));

  net.recover();
  net.heartbeat(1);
  REQUIRE(net.applied(1, std::string(60, 'a')));
  CHECK(net.core_of(1).uncommitted_size() == 0);
  CHECK(!net.propose(1, std::string(60, 'b')));
  CHECK(net.applied(2, std::string(60, 'b')));
}

TEST_CASE("a follower forwards proposals to the leader") {
  network net({1, 2, 3});
  net.campaign(1);

  REQUIRE(!net.node(2).propose("via 2"));
  net.process(2);
  CHECK(net.queued(pattern{message_type::prop, 2, 1}).size() == 1);
  net.stabilize();
  for (node_id id : {1, 2, 3}) CHECK(net.applied(id, "via 2"));
}

TEST_CASE("with proposal forwarding disabled a follower drops proposals") {
  config cfg = network::default_config();
  cfg.disable_proposal_forwarding = true;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);

  CHECK(net.node(2).propose("via 2") == keel::errc::proposal_dropped);
  net.process(2);
  CHECK(net.in_flight().empty());
  CHECK(!net.propose(1, "on 1"));  // The leader itself still takes them.
  CHECK(net.applied(2, "on 1"));
}

TEST_CASE("a proposal without a leader is dropped") {
  network net({1, 2, 3});
  CHECK(net.node(1).propose("x") == keel::errc::proposal_dropped);

  // Neither does a candidate take one.
  net.isolate(1);
  net.campaign(1);
  REQUIRE(net.core_of(1).state() != state_type::leader);
  CHECK(net.node(1).propose("x") == keel::errc::proposal_dropped);
  CHECK(net.log_of(1).empty());
}

TEST_CASE("max_committed_size_per_ready bounds the committed entries of one ready") {
  config cfg = network::default_config();
  cfg.max_committed_size_per_ready = 250;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  net.drop(1, 3, 1.0);
  for (int i = 0; i < 10; ++i) REQUIRE(!net.propose(1, std::string(100, 'a' + i)));
  net.recover();

  // 3 learns the ten entries and their commit in one append.
  std::vector<std::size_t> batches;
  net.on_ready([&](node_id id, const ready& rd) {
    if (id != 3 || rd.committed_entries.empty()) return;
    std::uint64_t bytes = 0;
    for (const entry& e : rd.committed_entries) bytes += payload_size(e);
    CHECK((bytes <= 250 || rd.committed_entries.size() == 1));
    batches.push_back(rd.committed_entries.size());
  });
  net.heartbeat(1);
  REQUIRE(net.applied(3, std::string(100, 'j')));
  CHECK(batches.size() >= 5);
  CHECK(*std::max_element(batches.begin(), batches.end()) == 2);
}
