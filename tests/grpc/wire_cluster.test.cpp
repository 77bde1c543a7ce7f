// from_wire must never refuse what a correct raft sends: every message a live
// cluster delivers (elections with pre-vote, appends and their rejections,
// snapshots, membership changes, forwarded proposals and reads, leadership
// transfer, all under loss and reordering) goes through to_wire, protobuf
// serialization and from_wire, and must come back accepted and unchanged.
#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "../raft/network.hpp"
#include "keel/grpc/wire.hpp"

using namespace keel::test;

namespace {

conf_change single(conf_change_type type, node_id id) {
  return conf_change{.changes = {{type, id}}};
}

/// Checks every delivered message's trip over the wire and records its type.
struct wire_watch {
  std::set<message_type> seen;
  std::uint64_t checked = 0;

  void operator()(const message& m) {
    keel::wire::Message w;
    keel::rpc::to_wire(m, w);
    std::string encoded;
    REQUIRE(w.SerializeToString(&encoded));
    keel::wire::Message parsed;
    REQUIRE(parsed.ParseFromString(encoded));
    auto back = keel::rpc::from_wire(parsed);
    INFO(to_string(m.type) << " from " << m.from << " to " << m.to << ", term " << m.term
                           << ", index " << m.index << ", " << m.entries.size() << " entries");
    REQUIRE(back.has_value());
    message sent = m;
    sent.after_persist = false;  // Local to the sender; never on the wire.
    REQUIRE(*back == sent);
    seen.insert(m.type);
    ++checked;
  }
};

}  // namespace

TEST_CASE("every message a cluster sends comes back from the wire unchanged") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    INFO("seed " << seed);
    network net({1, 2, 3}, seed, network::default_config(), {5});
    wire_watch watch;
    net.on_deliver([&](const message& m) { watch(m); });

    // Elections with pre-vote, appends, heartbeats.
    net.campaign(1);
    REQUIRE(net.leader() == 1);
    for (const char* data : {"a", "b", "c"}) REQUIRE(!net.propose(1, data));

    // Forwarded proposals and linearizable reads from a follower.
    REQUIRE(!net.node(2).propose("from-2"));
    REQUIRE(!net.node(2).read_index("read-ctx"));
    net.stabilize();

    // A new voter that catches up from a snapshot naming it.
    net.add_member(4, {});
    net.isolate(4);
    REQUIRE(!net.propose_conf_change(1, single(conf_change_type::add_node, 4)));
    (void)net.take_snapshot(1, "state-with-4");
    net.recover();
    net.heartbeat(1, 3);

    // Leadership transfer asked of a follower, which forwards it.
    REQUIRE(!net.node(3).transfer_leadership(2));
    net.stabilize();
    net.tick_all(12);
    net.stabilize();

    // Loss and reordering: rejected appends, retries, new elections.
    net.set_loss(0.2);
    net.set_reorder(true);
    for (int round = 0; round < 200; ++round) {
      net.tick_all();
      if (round % 10 == 0) {
        const node_id lead = net.leader();
        if (lead != no_node) (void)net.node(lead).propose("r" + std::to_string(round));
      }
      for (int k = 0; k < 20 && net.deliver_one(); ++k) {
      }
    }
    net.recover();
    net.stabilize();

    CHECK(watch.checked > 100);
    for (message_type t :
         {message_type::app, message_type::app_resp, message_type::pre_vote,
          message_type::pre_vote_resp, message_type::vote, message_type::vote_resp,
          message_type::snap, message_type::heartbeat, message_type::heartbeat_resp,
          message_type::prop, message_type::read_index, message_type::read_index_resp,
          message_type::transfer_leader, message_type::timeout_now}) {
      INFO("never delivered: " << to_string(t));
      CHECK(watch.seen.contains(t));
    }
  }
}
