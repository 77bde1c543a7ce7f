// ReadIndex as scenarios (Raft thesis 6.4; etcd-io/raft's TestReadOnly*): a
// safe read is answered with the commit index once a quorum acknowledged a
// heartbeat sent after the read arrived, and only by a leader that committed
// an entry of its own term; a follower's read is forwarded to the leader; a
// lease-based read and a read on a single voter are answered at once.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "network.hpp"

using namespace keel::test;

namespace {

std::uint64_t committed(network& net, node_id id) { return net.core_of(id).log().committed(); }

/// Makes 2 the leader of the next term (through a transfer, which the
/// followers' leases do not stop) while every append it sends is lost, so
/// its no-op stays uncommitted.
void elect_2_without_commit(network& net) {
  net.block_if(pattern{message_type::app, 2});
  REQUIRE(!net.node(1).transfer_leadership(2));
  net.process(1);
  net.stabilize();
  REQUIRE(net.leader() == 2);
}

}  // namespace

TEST_CASE("a safe read is answered with the commit index once a heartbeat quorum acknowledges it") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));
  const std::uint64_t commit = committed(net, 1);

  REQUIRE(!net.node(1).read_index("r"));
  net.process(1);
  CHECK(net.at(1).reads.empty());  // Not before the heartbeat round.
  CHECK(net.queued(pattern{message_type::heartbeat, 1}).size() == 2);
  net.stabilize();

  REQUIRE(net.at(1).reads.size() == 1);
  CHECK(net.at(1).reads[0] == read_state{commit, "r"});
}

TEST_CASE("a safe read stays unanswered while heartbeat acknowledgements are lost") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));

  net.ignore(message_type::heartbeat_resp);
  REQUIRE(!net.node(1).read_index("r"));
  net.process(1);
  net.stabilize();
  net.heartbeat(1, 3);
  CHECK(net.at(1).reads.empty());
  CHECK(net.leader() == 1);
}

TEST_CASE("a safe read whose heartbeat round was lost is answered after the next heartbeat") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));
  const std::uint64_t commit = committed(net, 1);

  net.ignore(message_type::heartbeat_resp);
  REQUIRE(!net.node(1).read_index("r"));
  net.process(1);
  net.stabilize();
  REQUIRE(net.at(1).reads.empty());

  // The next heartbeats confirm the leadership the lost round could not.
  net.recover();
  net.heartbeat(1);
  REQUIRE(net.at(1).reads.size() == 1);
  CHECK(net.at(1).reads[0] == read_state{commit, "r"});
}

TEST_CASE("a new leader defers reads until an entry of its term commits") {
  // The bootstrap snapshot is of term 1, which the first leader also gets:
  // the deferral shows from the second leader on.
  network net({1, 2, 3});
  net.campaign(1);
  elect_2_without_commit(net);
  const std::uint64_t noop = net.core_of(2).log().last_index();
  REQUIRE(committed(net, 2) < noop);

  REQUIRE(!net.node(2).read_index("r"));
  net.process(2);
  CHECK(net.queued(pattern{message_type::heartbeat, 2}).empty());
  net.stabilize();
  net.heartbeat(2, 3);
  CHECK(net.at(2).reads.empty());
  CHECK(committed(net, 2) < noop);

  // Once the no-op commits, the read goes through a heartbeat round.
  net.recover();
  net.heartbeat(2);
  REQUIRE(committed(net, 2) == noop);
  REQUIRE(net.at(2).reads.size() == 1);
  CHECK(net.at(2).reads[0] == read_state{noop, "r"});
}

TEST_CASE("a follower's read is forwarded to the leader and answered on the follower") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));
  const std::uint64_t commit = committed(net, 1);

  REQUIRE(!net.node(2).read_index("f"));
  net.process(2);
  CHECK(net.queued(pattern{message_type::read_index, 2, 1}).size() == 1);
  net.stabilize();

  CHECK(net.at(1).reads.empty());
  REQUIRE(net.at(2).reads.size() == 1);
  CHECK(net.at(2).reads[0] == read_state{commit, "f"});
}

TEST_CASE("a follower with no leader to forward to refuses a read") {
  network net({1, 2, 3});
  CHECK(net.node(2).read_index("f") == keel::errc::proposal_dropped);
}

TEST_CASE("a lease-based read is answered at once without a heartbeat round") {
  config cfg = network::default_config();
  cfg.read_only = read_only_option::lease_based;
  cfg.check_quorum = true;
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));
  const std::uint64_t commit = committed(net, 1);

  net.isolate(1);  // No message round is needed.
  REQUIRE(!net.node(1).read_index("l"));
  net.process(1);
  CHECK(net.in_flight().empty());
  REQUIRE(net.at(1).reads.size() == 1);
  CHECK(net.at(1).reads[0] == read_state{commit, "l"});
}

TEST_CASE("a read on a single voter is answered at once") {
  network net({1});
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));

  REQUIRE(!net.node(1).read_index("s"));
  net.process(1);
  REQUIRE(net.at(1).reads.size() == 1);
  CHECK(net.at(1).reads[0] == read_state{committed(net, 1), "s"});
}

TEST_CASE("a leader that lost its quorum never answers a safe read") {
  const config cfg = network::default_config();
  network net({1, 2, 3}, 1, cfg);
  net.campaign(1);
  REQUIRE(!net.propose(1, "a"));

  net.isolate(1);
  REQUIRE(!net.node(1).read_index("r"));
  net.process(1);
  net.stabilize();
  net.heartbeat(1, 3 * cfg.election_tick);
  CHECK(net.at(1).reads.empty());
  CHECK(net.core_of(1).state() != state_type::leader);  // check_quorum deposed it.

  // Healing does not resurrect the read of a deposed leader.
  net.recover();
  net.heartbeat(1, 3);
  CHECK(net.at(1).reads.empty());
}
