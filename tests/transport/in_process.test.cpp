// The in-process network (keel/transport/in_process.hpp): delivery order and
// time, determinism under a seed, each fault (loss, duplication, delay and
// reordering, partitions, cuts, isolation, crashes, congestion), what the
// sender learns and what it does not, the accounting, thread safety, and a
// three-node Raft cluster that elects, loses its leader to a partition,
// elects another and converges after the partition heals.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"
#include "keel/transport/in_process.hpp"
#include "keel/transport/transport.hpp"

namespace {

using keel::raft::message;
using keel::raft::message_type;
using keel::raft::node_id;
using keel::transport::drop_reason;
using keel::transport::endpoint;
using keel::transport::handler;
using keel::transport::in_process_network;
using keel::transport::peer_status;
using keel::transport::traffic_stats;

/// An append message from `from` to `to`; `index` tells messages apart.
message msg(node_id from, node_id to, std::uint64_t index) {
  return message{.type = message_type::app, .to = to, .from = from, .term = 1, .index = index};
}

/// One delivery as the target saw it.
struct arrival {
  node_id from = 0;
  node_id to = 0;
  std::uint64_t index = 0;
  std::uint64_t at = 0;  ///< now() when the handler ran.

  friend bool operator==(const arrival&, const arrival&) = default;
};

/// Nodes on one network, every one a peer of every other, recording what
/// arrives and which peers were reported unreachable.
class cluster {
 public:
  explicit cluster(std::uint64_t seed, const std::vector<node_id>& ids = {1, 2, 3}) : net(seed) {
    for (node_id id : ids) connect(id);
    for (node_id id : ids) {
      for (node_id peer : ids) {
        if (peer != id) at(id).add_peer(peer, "node-" + std::to_string(peer));
      }
    }
  }

  /// Connects (or reconnects) id with a recording handler; adds no peers.
  void connect(node_id id) { endpoints.insert_or_assign(id, net.connect(id, recording_handler())); }

  endpoint& at(node_id id) { return endpoints.at(id); }
  void send(node_id from, node_id to, std::uint64_t index) { at(from).send(msg(from, to, index)); }

  std::vector<std::uint64_t> indexes(node_id from, node_id to) const {
    std::vector<std::uint64_t> out;
    for (const arrival& a : arrivals) {
      if (a.from == from && a.to == to) out.push_back(a.index);
    }
    return out;
  }

  handler recording_handler() {
    return handler{.deliver =
                       [this](const message& m) {
                         arrivals.push_back({m.from, m.to, m.index, net.now()});
                       },
                   .unreachable =
                       [this](node_id peer) {
                         unreachable.push_back(peer);
                       }};
  }

  in_process_network net;
  std::map<node_id, endpoint> endpoints;
  std::vector<arrival> arrivals;
  std::vector<node_id> unreachable;  ///< Reports to any node, in order.
};

std::vector<std::uint64_t> iota(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t i = from; i < to; ++i) out.push_back(i);
  return out;
}

/// Every message a sender sent is delivered, dropped, duplicated or in flight.
void check_accounting(const traffic_stats& s, std::size_t in_flight) {
  CHECK(s.sent + s.duplicated == s.delivered + s.dropped + in_flight);
  std::uint64_t by_reason = 0;
  for (auto n : s.dropped_by) by_reason += n;
  CHECK(by_reason == s.dropped);
}

// ---- the policy ----------------------------------------------------------------------------

struct no_status {
  void send(const message&) {}
  void add_peer(node_id, const std::string&) {}
  void remove_peer(node_id) {}
};

struct status_of_wrong_type {
  void send(const message&) {}
  void add_peer(node_id, const std::string&) {}
  void remove_peer(node_id) {}
  bool status(node_id) { return true; }
};

TEST_CASE("the in-process endpoint is a transport", "[transport]") {
  STATIC_REQUIRE(keel::transport::transport<endpoint>);
  STATIC_REQUIRE_FALSE(keel::transport::transport<no_status>);
  STATIC_REQUIRE_FALSE(keel::transport::transport<status_of_wrong_type>);
}

// ---- order and time ------------------------------------------------------------------------

TEST_CASE("without delays messages arrive in the order they were sent", "[transport]") {
  cluster c(1);
  for (std::uint64_t i = 0; i < 100; ++i) {
    c.send(1, 2, i);
    c.send(3, 2, 1000 + i);
  }
  CHECK(c.net.in_flight() == 200);
  CHECK(c.net.in_flight(1, 2) == 100);
  CHECK(c.arrivals.empty());  // Nothing moves until the network is driven.
  CHECK(c.net.deliver_all() == 200);
  CHECK(c.net.in_flight() == 0);
  REQUIRE(c.arrivals.size() == 200);
  for (std::size_t k = 0; k < 200; ++k) {
    const arrival& a = c.arrivals[k];
    CHECK(a.from == (k % 2 == 0 ? 1u : 3u));
    CHECK(a.index == (k % 2 == 0 ? 0u : 1000u) + k / 2);
  }
  CHECK(c.net.stats(1).delivered == 100);
  CHECK(c.net.stats(2).received == 200);
  CHECK(c.net.stats().delivered == 200);
}

TEST_CASE("advance delivers a message once its delay has passed", "[transport]") {
  cluster c(1);
  c.net.set_delay(5, 5);
  c.send(1, 2, 7);
  CHECK(c.net.next_due() == 5u);
  CHECK(c.net.advance(4) == 0);
  CHECK(c.net.now() == 4);
  CHECK(c.net.in_flight() == 1);
  CHECK(c.net.advance(1) == 1);
  REQUIRE(c.arrivals == std::vector<arrival>{{1, 2, 7, 5}});
  CHECK_FALSE(c.net.next_due().has_value());
  CHECK(c.net.advance(10) == 0);
  CHECK(c.net.now() == 15);
}

TEST_CASE("a handler runs at its message's due time and its replies fall due later",
          "[transport]") {
  in_process_network net(1);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;  // (index, now) at node 2
  std::optional<endpoint> one;
  std::optional<endpoint> two;
  one.emplace(net.connect(1, handler{.deliver =
                                         [&](const message& m) {
                                           // Node 1 answers every message with index + 1.
                                           if (m.index < 6) one->send(msg(1, 2, m.index + 1));
                                         },
                                     .unreachable = {}}));
  two.emplace(net.connect(2, handler{.deliver =
                                         [&](const message& m) {
                                           seen.emplace_back(m.index, net.now());
                                           two->send(msg(2, 1, m.index + 1));
                                         },
                                     .unreachable = {}}));
  one->add_peer(2, "two");
  two->add_peer(1, "one");
  net.set_delay(3, 3);
  one->send(msg(1, 2, 0));
  // The exchange 0 -> 1 -> ... runs within one advance, three ticks per hop.
  CHECK(net.advance(100) == 8);  // 0 to 7, the last one unanswered.
  CHECK(seen ==
        std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 3}, {2, 9}, {4, 15}, {6, 21}});
  CHECK(net.now() == 100);
}

TEST_CASE("deliver_all ignores delays, delivers what handlers send, and is bounded",
          "[transport]") {
  in_process_network net(1);
  std::optional<endpoint> one;
  std::optional<endpoint> two;
  std::uint64_t last = 0;
  // 1 and 2 play ping-pong forever.
  one.emplace(net.connect(
      1, handler{.deliver = [&](const message& m) { one->send(msg(1, 2, m.index + 1)); },
                 .unreachable = {}}));
  two.emplace(net.connect(2, handler{.deliver =
                                         [&](const message& m) {
                                           last = m.index;
                                           two->send(msg(2, 1, m.index + 1));
                                         },
                                     .unreachable = {}}));
  one->add_peer(2, "");
  two->add_peer(1, "");
  net.set_delay(50, 100);
  one->send(msg(1, 2, 0));
  CHECK(net.deliver_all(1000) == 1000);
  CHECK(net.now() == 0);
  CHECK(net.in_flight() == 1);  // The livelock was cut short, not run forever.
  CHECK(last == 998);
}

// ---- delay, reordering and determinism -----------------------------------------------------

TEST_CASE("random delays reorder a link unless reordering is off", "[transport]") {
  const std::vector<std::uint64_t> sent = iota(0, 200);
  SECTION("reordering on (the default)") {
    cluster c(5);
    c.net.set_delay(0, 10);
    for (std::uint64_t i : sent) c.send(1, 2, i);
    CHECK(c.net.advance(10) == 200);
    const auto got = c.indexes(1, 2);
    CHECK_FALSE(std::is_sorted(got.begin(), got.end()));
    auto sorted = got;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == sent);
    // Arrival times never go backwards.
    CHECK(std::is_sorted(c.arrivals.begin(), c.arrivals.end(),
                         [](const arrival& a, const arrival& b) { return a.at < b.at; }));
  }
  SECTION("reordering off keeps each link FIFO") {
    cluster c(5);
    c.net.set_delay(0, 10);
    c.net.set_reorder(false);
    for (std::uint64_t i : sent) {
      c.send(1, 2, i);
      c.send(3, 2, i);
    }
    CHECK(c.net.advance(10) == 400);
    CHECK(c.indexes(1, 2) == sent);
    CHECK(c.indexes(3, 2) == sent);
    // Across links, the delays still interleave the two senders.
    std::vector<node_id> senders;
    for (const arrival& a : c.arrivals) senders.push_back(a.from);
    CHECK_FALSE(std::is_sorted(senders.begin(), senders.end()));
  }
}

/// A run with every random fault on: what arrived, when.
std::vector<arrival> faulty_run(std::uint64_t seed) {
  cluster c(seed);
  c.net.set_delay(0, 20);
  c.net.set_drop_rate(0.1);
  c.net.set_duplicate_rate(0.1);
  for (std::uint64_t round = 0; round < 50; ++round) {
    for (node_id from : {1, 2, 3}) {
      for (node_id to : {1, 2, 3}) {
        if (from != to) c.send(from, to, round);
      }
    }
    c.net.advance(1);
  }
  c.net.advance(100);
  REQUIRE(c.net.in_flight() == 0);
  return c.arrivals;
}

TEST_CASE("a seed replays the same trace and another seed gives another", "[transport]") {
  const auto first = faulty_run(42);
  CHECK(first.size() > 200);
  CHECK(faulty_run(42) == first);
  CHECK(faulty_run(43) != first);
}

// ---- loss and duplication ------------------------------------------------------------------

std::uint64_t delivered_of_1000(std::uint64_t seed, double p) {
  cluster c(seed);
  c.net.set_drop_rate(p);
  for (std::uint64_t i = 0; i < 1000; ++i) c.send(1, 2, i);
  c.net.deliver_all();
  const traffic_stats s = c.net.stats(1);
  CHECK(s.dropped_for(drop_reason::lost) == 1000 - s.delivered);
  CHECK(c.unreachable.empty());        // Loss is silent...
  CHECK(c.at(1).status(2).reachable);  // ...and invisible to the sender.
  CHECK(c.at(1).status(2).sent == 1000);
  check_accounting(s, c.net.in_flight());
  return s.delivered;
}

TEST_CASE("the drop rate loses that share of messages", "[transport]") {
  CHECK(delivered_of_1000(9, 1.0) == 0);
  CHECK(delivered_of_1000(9, 0.0) == 1000);
  const std::uint64_t some = delivered_of_1000(9, 0.3);
  CHECK(delivered_of_1000(9, 0.3) == some);  // A fixed seed makes the count exact.
  CHECK(some >= 600);
  CHECK(some <= 800);
}

TEST_CASE("a link's own drop rate overrides the network's", "[transport]") {
  cluster c(3);
  c.net.set_drop_rate(1, 2, 1.0);
  c.net.set_drop_rate(3, 2, 0.0);
  c.net.set_drop_rate(0.5);
  for (std::uint64_t i = 0; i < 50; ++i) {
    c.send(1, 2, i);
    c.send(3, 2, i);
    c.send(2, 1, i);  // Not overridden: a coin flip each.
  }
  c.net.deliver_all();
  CHECK(c.indexes(1, 2).empty());
  CHECK(c.indexes(3, 2) == iota(0, 50));
  CHECK(c.indexes(2, 1).size() > 5);
  CHECK(c.indexes(2, 1).size() < 45);
  c.net.reset_drop_rate(1, 2);
  c.net.set_drop_rate(0);
  c.send(1, 2, 99);
  c.net.deliver_all();
  CHECK(c.indexes(1, 2) == std::vector<std::uint64_t>{99});
}

TEST_CASE("duplication delivers extra copies", "[transport]") {
  SECTION("always") {
    cluster c(1);
    c.net.set_duplicate_rate(1.0);
    for (std::uint64_t i = 0; i < 10; ++i) c.send(1, 2, i);
    CHECK(c.net.in_flight() == 20);
    CHECK(c.net.deliver_all() == 20);
    std::vector<std::uint64_t> twice;
    for (std::uint64_t i = 0; i < 10; ++i) twice.insert(twice.end(), {i, i});
    CHECK(c.indexes(1, 2) == twice);
    CHECK(c.net.stats(1).duplicated == 10);
    CHECK(c.net.stats(1).delivered == 20);
    CHECK(c.at(1).status(2).sent == 10);  // The sender sent ten.
  }
  SECTION("sometimes") {
    cluster c(1);
    c.net.set_duplicate_rate(0.25);
    for (std::uint64_t i = 0; i < 400; ++i) c.send(1, 2, i);
    c.net.deliver_all();
    const traffic_stats s = c.net.stats(1);
    CHECK(s.duplicated >= 50);
    CHECK(s.duplicated <= 150);
    CHECK(s.delivered == 400 + s.duplicated);
    check_accounting(s, 0);
  }
}

// ---- partitions ----------------------------------------------------------------------------

TEST_CASE("a partition stops messages both ways, silently, until healed", "[transport]") {
  cluster c(1);
  c.net.partition({1}, {2, 3});
  CHECK(c.net.blocked(1, 2));
  CHECK(c.net.blocked(3, 1));
  CHECK_FALSE(c.net.blocked(2, 3));
  c.send(1, 2, 1);
  c.send(2, 1, 2);
  c.send(3, 1, 3);
  c.send(2, 3, 4);
  c.send(3, 2, 5);
  c.net.deliver_all();
  CHECK(c.indexes(2, 3) == std::vector<std::uint64_t>{4});
  CHECK(c.indexes(3, 2) == std::vector<std::uint64_t>{5});
  CHECK(c.arrivals.size() == 2);
  CHECK(c.net.stats().dropped_for(drop_reason::partitioned) == 3);
  CHECK(c.unreachable.empty());
  CHECK(c.at(1).status(2).reachable);  // A real partition tells the sender nothing.

  c.net.heal();
  c.send(1, 2, 6);
  c.send(2, 1, 7);
  c.net.deliver_all();
  CHECK(c.indexes(1, 2) == std::vector<std::uint64_t>{6});
  CHECK(c.indexes(2, 1) == std::vector<std::uint64_t>{7});
}

TEST_CASE("a partition loses the messages it finds in flight", "[transport]") {
  cluster c(1);
  c.net.set_delay(3, 3);
  c.send(1, 2, 1);
  c.send(2, 3, 2);
  c.net.partition({1, 3}, {2});
  CHECK(c.net.advance(3) == 0);
  CHECK(c.net.stats().dropped_for(drop_reason::partitioned) == 2);
  CHECK(c.net.in_flight() == 0);
}

TEST_CASE("a cut stops one direction of a link only", "[transport]") {
  cluster c(1);
  c.net.cut(1, 2);
  c.send(1, 2, 1);
  c.send(2, 1, 2);
  c.send(1, 3, 3);
  c.net.deliver_all();
  CHECK(c.indexes(1, 2).empty());
  CHECK(c.indexes(2, 1) == std::vector<std::uint64_t>{2});
  CHECK(c.indexes(1, 3) == std::vector<std::uint64_t>{3});
  c.net.heal();
  c.send(1, 2, 4);
  c.net.deliver_all();
  CHECK(c.indexes(1, 2) == std::vector<std::uint64_t>{4});
}

TEST_CASE("an isolated node neither sends nor receives", "[transport]") {
  cluster c(1);
  c.net.isolate(2);
  for (node_id from : {1, 2, 3}) {
    for (node_id to : {1, 2, 3}) {
      if (from != to) c.send(from, to, from * 10 + to);
    }
  }
  c.net.deliver_all();
  CHECK(c.arrivals == std::vector<arrival>{{1, 3, 13, 0}, {3, 1, 31, 0}});
  c.net.heal();
  c.send(2, 1, 21);
  c.net.deliver_all();
  CHECK(c.indexes(2, 1) == std::vector<std::uint64_t>{21});
}

// ---- crashes, peers and failed sends -------------------------------------------------------

TEST_CASE("a disconnected node loses what was in flight to it and comes back anew", "[transport]") {
  cluster c(1);
  endpoint old_two = c.at(2);
  c.send(1, 2, 1);  // In flight to 2 when it crashes: lost.
  c.send(2, 1, 2);  // Sent by 2 before it crashed: still arrives.
  c.net.disconnect(2);
  CHECK_FALSE(c.net.connected(2));
  CHECK_FALSE(old_two.connected());
  CHECK(c.net.in_flight() == 1);
  CHECK(c.net.stats(1).dropped_for(drop_reason::peer_crashed) == 1);

  // While 2 is down: sends to it are refused and reported, once per peer at a time.
  c.send(1, 2, 3);
  c.send(1, 2, 4);
  c.send(3, 2, 5);
  const peer_status down = c.at(1).status(2);
  CHECK_FALSE(down.reachable);
  CHECK(down.dropped == 2);
  CHECK(down.last_error.find("not connected") != std::string::npos);
  // The dead endpoint's sends go nowhere.
  old_two.send(msg(2, 1, 6));
  CHECK(c.net.stats(2).dropped_for(drop_reason::sender_down) == 1);
  CHECK_FALSE(old_two.status(1).reachable);

  CHECK(c.unreachable.empty());  // Reports come with delivery, never from inside send.
  c.net.deliver_all();
  CHECK(c.unreachable == std::vector<node_id>{2, 2});  // One to node 1, one to node 3.
  CHECK(c.indexes(2, 1) == std::vector<std::uint64_t>{2});
  CHECK(c.indexes(1, 2).empty());

  // Restart: a new handler, no peers until added, and traffic flows again.
  std::vector<std::uint64_t> after_restart;
  endpoint two = c.net.connect(
      2, handler{.deliver = [&](const message& m) { after_restart.push_back(m.index); },
                 .unreachable = {}});
  CHECK(two.connected());
  CHECK_FALSE(old_two.connected());
  CHECK(two.peers().empty());
  two.add_peer(1, "node-1");
  c.send(1, 2, 7);
  two.send(msg(2, 1, 8));
  c.net.deliver_all();
  CHECK(after_restart == std::vector<std::uint64_t>{7});
  CHECK(c.indexes(1, 2).empty());  // The old handler is never called again.
  CHECK(c.indexes(2, 1) == std::vector<std::uint64_t>{2, 8});
  const peer_status up = c.at(1).status(2);
  CHECK(up.reachable);
  CHECK(up.last_error == down.last_error);  // The last error stays for the status API.
  check_accounting(c.net.stats(), c.net.in_flight());
}

TEST_CASE("sends to a peer that never connected are reported unreachable", "[transport]") {
  cluster c(1);
  c.at(1).add_peer(9, "nowhere:9");
  c.send(1, 9, 1);
  c.net.deliver_all();
  CHECK(c.unreachable == std::vector<node_id>{9});
  CHECK(c.net.stats(1).dropped_for(drop_reason::peer_down) == 1);
  CHECK_FALSE(c.at(1).status(9).reachable);
}

TEST_CASE("sends to a node that is not a peer are dropped and counted, not reported",
          "[transport]") {
  cluster c(1);
  c.connect(4);  // Connected, but nobody's peer.
  c.send(1, 4, 1);
  c.at(1).remove_peer(2);
  c.send(1, 2, 2);
  c.net.deliver_all();
  CHECK(c.arrivals.empty());
  CHECK(c.unreachable.empty());
  CHECK(c.net.stats(1).dropped_for(drop_reason::not_a_peer) == 2);
  const peer_status removed = c.at(1).status(2);
  CHECK_FALSE(removed.reachable);
  CHECK(removed.last_error.find("not a peer") != std::string::npos);
  // add_peer updates an address and keeps a peer's counts.
  c.at(1).add_peer(3, "elsewhere:3");
  c.send(1, 3, 3);
  c.at(1).add_peer(3, "moved:3");
  CHECK(c.at(1).status(3).sent == 1);
  CHECK(c.at(1).peers() == std::vector<std::pair<node_id, std::string>>{{3, "moved:3"}});
}

TEST_CASE("a congested link refuses messages beyond its capacity", "[transport]") {
  cluster c(1);
  CHECK(c.net.link_capacity() == keel::transport::default_link_capacity);
  c.net.set_link_capacity(10);
  for (std::uint64_t i = 0; i < 15; ++i) c.send(1, 2, i);
  c.send(1, 3, 100);  // Another link has its own room.
  CHECK(c.net.in_flight(1, 2) == 10);
  CHECK(c.net.in_flight(1, 3) == 1);
  CHECK(c.net.stats(1).dropped_for(drop_reason::congested) == 5);
  const peer_status full = c.at(1).status(2);
  CHECK_FALSE(full.reachable);
  CHECK(full.dropped == 5);
  CHECK(full.sent == 10);
  CHECK(full.last_error.find("congested") != std::string::npos);
  c.net.deliver_all();
  CHECK(c.indexes(1, 2) == iota(0, 10));
  CHECK(c.unreachable == std::vector<node_id>{2});  // Coalesced: one report, not five.
  c.send(1, 2, 20);
  CHECK(c.at(1).status(2).reachable);
  c.net.deliver_all();
  CHECK(c.indexes(1, 2).back() == 20);
}

TEST_CASE("every copy is accounted for under mixed faults", "[transport]") {
  cluster c(77, {1, 2, 3, 4});
  c.net.set_delay(0, 8);
  c.net.set_drop_rate(0.2);
  c.net.set_duplicate_rate(0.2);
  c.net.set_link_capacity(20);
  for (std::uint64_t round = 0; round < 100; ++round) {
    for (node_id from : {1, 2, 3, 4}) {
      for (node_id to : {1, 2, 3, 4}) {
        if (from != to) c.send(from, to, round);
      }
    }
    if (round == 20) c.net.partition({1, 2}, {3, 4});
    if (round == 40) c.net.heal();
    if (round == 50) c.net.disconnect(4);
    if (round == 60) c.connect(4);  // Without peers: its sends are not-a-peer drops.
    if (round % 7 == 0) c.net.advance(1);
    for (node_id from : {1, 2, 3, 4}) {
      std::size_t from_in_flight = 0;
      for (node_id to : {1, 2, 3, 4}) from_in_flight += c.net.in_flight(from, to);
      check_accounting(c.net.stats(from), from_in_flight);
    }
  }
  std::size_t in_flight_total = c.net.in_flight();
  traffic_stats total = c.net.stats();
  check_accounting(total, in_flight_total);
  c.net.advance(100);
  CHECK(c.net.in_flight() == 0);
  total = c.net.stats();
  check_accounting(total, 0);
  CHECK(total.received == total.delivered);
  CHECK(total.delivered == c.arrivals.size());
  for (auto r : {drop_reason::not_a_peer, drop_reason::peer_down, drop_reason::congested,
                 drop_reason::partitioned, drop_reason::lost, drop_reason::peer_crashed}) {
    INFO(keel::transport::to_string(r));
    CHECK(total.dropped_for(r) > 0);
  }
}

TEST_CASE("a handler may disconnect its own node", "[transport]") {
  in_process_network net(1);
  int calls = 0;
  endpoint one = net.connect(1, handler{.deliver = [](const message&) {}, .unreachable = {}});
  endpoint two = net.connect(2, handler{.deliver =
                                            [&](const message&) {
                                              ++calls;
                                              net.disconnect(2);  // Must not wait for itself.
                                            },
                                        .unreachable = {}});
  one.add_peer(2, "");
  one.send(msg(1, 2, 1));
  one.send(msg(1, 2, 2));
  CHECK(net.deliver_all() == 1);
  CHECK(calls == 1);
  CHECK_FALSE(net.connected(2));
  CHECK_FALSE(two.connected());
  CHECK(net.stats(1).dropped_for(drop_reason::peer_crashed) == 1);
}

// ---- threads -------------------------------------------------------------------------------

TEST_CASE("four threads send while another delivers, and each message arrives once",
          "[transport][threads]") {
  constexpr std::uint64_t per_sender = 2000;
  constexpr node_id target = 5;
  in_process_network net(11);
  std::vector<std::vector<int>> seen(
      5, std::vector<int>(per_sender, 0));  // Only the deliverer writes.
  std::atomic<std::uint64_t> received{0};
  endpoint sink = net.connect(target, handler{.deliver =
                                                  [&](const message& m) {
                                                    ++seen.at(m.from).at(m.index);
                                                    received.fetch_add(1);
                                                  },
                                              .unreachable = {}});
  std::vector<endpoint> senders;
  for (node_id id = 1; id <= 4; ++id) {
    senders.push_back(
        net.connect(id, handler{.deliver = [](const message&) {}, .unreachable = {}}));
    senders.back().add_peer(target, "sink");
  }
  std::atomic<int> running{4};
  std::vector<std::thread> threads;
  for (node_id id = 1; id <= 4; ++id) {
    threads.emplace_back([&, id] {
      for (std::uint64_t i = 0; i < per_sender; ++i) {
        senders[id - 1].send(msg(id, target, i));
        if (i % 500 == 0) (void)senders[id - 1].status(target);
      }
      running.fetch_sub(1);
    });
  }
  std::thread deliverer([&] {
    // Delivers until the senders are done and nothing is left.
    while (true) {
      const bool done = running.load() == 0;
      net.advance(1);
      if (done && net.in_flight() == 0) break;
      std::this_thread::yield();
    }
  });
  // An observer reads statistics meanwhile.
  std::uint64_t observed = 0;
  while (running.load() > 0) {
    observed = std::max(observed, net.stats().sent);
    std::this_thread::yield();
  }
  for (auto& t : threads) t.join();
  deliverer.join();
  CHECK(observed <= 4 * per_sender);
  CHECK(received.load() == 4 * per_sender);
  int wrong = 0;
  for (node_id id = 1; id <= 4; ++id) {
    for (std::uint64_t i = 0; i < per_sender; ++i) wrong += seen[id][i] != 1;
  }
  CHECK(wrong == 0);
  CHECK(net.stats().delivered == 4 * per_sender);
  CHECK(net.stats().dropped == 0);
  CHECK(sink.connected());
}

TEST_CASE("disconnect waits for its node's handler to return", "[transport][threads]") {
  in_process_network net(1);
  std::atomic<bool> entered{false};
  std::atomic<bool> finished{false};
  endpoint one = net.connect(1, handler{.deliver = [](const message&) {}, .unreachable = {}});
  endpoint two = net.connect(2, handler{.deliver =
                                            [&](const message&) {
                                              entered.store(true);
                                              // Runs on until disconnect has begun.
                                              while (net.connected(2)) std::this_thread::yield();
                                              finished.store(true);
                                            },
                                        .unreachable = {}});
  one.add_peer(2, "");
  one.send(msg(1, 2, 1));
  std::thread deliverer([&] { net.deliver_all(); });
  while (!entered.load()) std::this_thread::yield();
  net.disconnect(2);
  CHECK(finished.load());  // disconnect returned only after the handler did.
  deliverer.join();
  CHECK_FALSE(two.connected());
}

// ---- raft over the network -----------------------------------------------------------------

namespace raft = keel::raft;

/// Three raw_nodes whose node layer is played here: each persists to its
/// memory_storage, sends through its endpoint, and applies; deliveries and
/// unreachable reports step the node and process its ready at once.
class raft_cluster {
 public:
  raft_cluster(std::uint64_t seed, std::vector<node_id> ids) : net(seed), ids_(std::move(ids)) {
    raft::conf_state cs;
    cs.voters = ids_;
    for (node_id id : ids_) {
      member& m = members_[id];
      raft::snapshot boot;
      boot.metadata = {.index = 1, .term = 1, .conf = cs};
      REQUIRE_FALSE(static_cast<bool>(m.storage.apply_snapshot(boot)));
      raft::config c;
      c.id = id;
      c.election_tick = 10;
      c.heartbeat_tick = 1;
      auto n = raft::raw_node<raft::memory_storage>::create(
          c, m.storage, raft::splitmix_random(seed * 1000003 + id));
      REQUIRE(n);
      m.node.emplace(std::move(*n));
      m.transport.emplace(net.connect(id, handler{.deliver =
                                                      [this, id](message msg) {
                                                        (void)node(id).step(std::move(msg));
                                                        process(id);
                                                      },
                                                  .unreachable =
                                                      [this, id](node_id peer) {
                                                        node(id).report_unreachable(peer);
                                                        process(id);
                                                      }}));
    }
    for (node_id id : ids_) {
      for (node_id peer : ids_) {
        if (peer != id) members_.at(id).transport->add_peer(peer, "node-" + std::to_string(peer));
      }
    }
  }

  raft::raw_node<raft::memory_storage>& node(node_id id) { return *members_.at(id).node; }

  /// Persists, sends, applies and advances until node id has no ready.
  void process(node_id id) {
    member& m = members_.at(id);
    while (m.node->has_ready()) {
      raft::ready rd = m.node->ready();
      if (rd.snapshot) REQUIRE_FALSE(static_cast<bool>(m.storage.apply_snapshot(*rd.snapshot)));
      if (!rd.entries.empty()) REQUIRE_FALSE(static_cast<bool>(m.storage.append(rd.entries)));
      if (rd.hard_state) m.storage.set_hard_state(*rd.hard_state);
      for (message& msg : rd.messages) m.transport->send(std::move(msg));  // After persisting.
      for (const raft::entry& e : rd.committed_entries) {
        if (e.type == raft::entry_type::normal && !e.data.empty())
          m.applied.push_back(e.data.str());
      }
      m.node->advance();
    }
  }

  /// `ticks` rounds of: every node ticks, then the network moves one tick.
  void run(int ticks) {
    for (int i = 0; i < ticks; ++i) {
      for (node_id id : ids_) {
        node(id).tick();
        process(id);
      }
      net.advance(1);
    }
  }

  /// Runs until pred() holds, at most `ticks` rounds; returns pred().
  template <class Pred>
  bool run_until(Pred pred, int ticks) {
    for (int i = 0; i < ticks && !pred(); ++i) run(1);
    return pred();
  }

  /// The leader with the highest term among `among`, or no_node.
  node_id leader(const std::vector<node_id>& among) {
    node_id lead = raft::no_node;
    std::uint64_t term = 0;
    for (node_id id : among) {
      const auto& core = node(id).state();
      if (core.state() == raft::state_type::leader && core.term() >= term) {
        lead = id;
        term = core.term();
      }
    }
    return lead;
  }
  node_id leader() { return leader(ids_); }

  void propose(node_id id, std::string_view data) {
    const std::error_code ec = node(id).propose(keel::bytes(data));
    REQUIRE_FALSE(static_cast<bool>(ec));
    process(id);
  }

  std::vector<raft::entry> log_of(node_id id) {
    const auto& log = node(id).state().log();
    auto ents = log.slice(log.first_index(), log.last_index() + 1, raft::no_limit);
    return ents ? std::move(*ents) : std::vector<raft::entry>{};
  }

  /// Every node has the same log, commit index and applied entries.
  bool converged() {
    const node_id first = ids_.front();
    for (node_id id : ids_) {
      if (log_of(id) != log_of(first)) return false;
      if (node(id).state().log().committed() != node(first).state().log().committed()) {
        return false;
      }
      if (applied(id) != applied(first)) return false;
    }
    return true;
  }

  const std::vector<std::string>& applied(node_id id) { return members_.at(id).applied; }
  const std::vector<node_id>& ids() const { return ids_; }

  in_process_network net;

 private:
  struct member {
    raft::memory_storage storage;
    std::optional<raft::raw_node<raft::memory_storage>> node;
    std::optional<endpoint> transport;
    std::vector<std::string> applied;
  };

  std::vector<node_id> ids_;
  std::map<node_id, member> members_;  // A map: storages and handlers' targets never move.
};

TEST_CASE("three raft nodes over the network elect, survive a partitioned leader and converge",
          "[transport][raft]") {
  for (std::uint64_t seed : {1, 2, 3}) {
    INFO("seed " << seed);
    raft_cluster c(seed, {1, 2, 3});
    c.net.set_delay(0, 2);
    c.net.set_duplicate_rate(0.05);
    c.net.set_drop_rate(0.01);

    REQUIRE(c.run_until([&] { return c.leader() != raft::no_node; }, 300));
    const node_id old_leader = c.leader();
    const std::uint64_t old_term = c.node(old_leader).state().term();
    for (const char* d : {"a1", "a2", "a3"}) c.propose(old_leader, d);
    const std::vector<std::string> before = {"a1", "a2", "a3"};
    REQUIRE(c.run_until(
        [&] {
          return std::all_of(c.ids().begin(), c.ids().end(),
                             [&](node_id id) { return c.applied(id) == before; });
        },
        300));

    // Cut the leader off; what it accepts now can never commit.
    std::vector<node_id> majority;
    for (node_id id : c.ids()) {
      if (id != old_leader) majority.push_back(id);
    }
    c.net.partition({old_leader}, majority);
    c.propose(old_leader, "lost");
    REQUIRE(c.run_until([&] { return c.leader(majority) != raft::no_node; }, 500));
    const node_id new_leader = c.leader(majority);
    CHECK(c.node(new_leader).state().term() > old_term);
    for (const char* d : {"b1", "b2"}) c.propose(new_leader, d);
    c.run(30);
    const std::vector<std::string> after = {"a1", "a2", "a3", "b1", "b2"};
    for (node_id id : majority) CHECK(c.applied(id) == after);
    CHECK(c.applied(old_leader) == before);
    // check_quorum: the old leader stepped down on its own.
    CHECK(c.node(old_leader).state().state() != raft::state_type::leader);
    CHECK(c.net.stats().dropped_for(drop_reason::partitioned) > 0);

    c.net.heal();
    REQUIRE(c.run_until([&] { return c.converged(); }, 1000));
    for (node_id id : c.ids()) {
      INFO("node " << id);
      CHECK(c.applied(id) == after);
      const auto log = c.log_of(id);
      CHECK(std::none_of(log.begin(), log.end(),
                         [](const raft::entry& e) { return e.data == "lost"; }));
    }
    CHECK(c.leader() != raft::no_node);
    check_accounting(c.net.stats(), c.net.in_flight());
  }
}

}  // namespace
