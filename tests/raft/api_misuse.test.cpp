// The public API called in unexpected orders or with empty arguments answers
// with an error or does nothing; it never corrupts state or blocks progress.
#include <catch2/catch.hpp>

#include <string>

#include "keel/errc.hpp"
#include "network.hpp"

using namespace keel::test;

TEST_CASE("a read with an empty context is refused") {
  network net({1, 2, 3});
  net.campaign(1);
  CHECK(net.node(1).read_index("") == keel::errc::invalid_argument);
  CHECK_FALSE(net.node(1).read_index("r"));
}

TEST_CASE("advance without a ready does nothing and a second ready waits for advance") {
  network net({1});
  net.campaign(1);
  const auto before = net.core_of(1).log().applied();
  net.node(1).advance();
  net.node(1).advance();
  CHECK(net.core_of(1).log().applied() == before);

  REQUIRE_FALSE(net.node(1).propose("x"));
  ready first = net.node(1).ready();
  REQUIRE(first.entries.size() == 1);
  CHECK_FALSE(net.node(1).has_ready());
  ready second = net.node(1).ready();
  CHECK(second.entries.empty());
  CHECK(second.committed_entries.empty());
  CHECK(second.messages.empty());
  REQUIRE_FALSE(net.at(1).storage->append(first.entries));
  net.node(1).advance();
  CHECK(net.core_of(1).log().applied() == first.entries.front().index);
}

TEST_CASE("a conf change dropped by the uncommitted limit does not block the next one") {
  config c = network::default_config();
  c.max_uncommitted_entries_size = 100;
  network net({1, 2, 3}, 1, c);
  net.campaign(1);
  net.cut(1, 2);
  net.cut(1, 3);
  REQUIRE_FALSE(net.node(1).propose(std::string(90, 'a')));
  conf_change cc;
  cc.changes = {{conf_change_type::add_learner, 4}};
  CHECK(net.node(1).propose_conf_change(cc) == keel::errc::proposal_dropped);
  net.recover();
  net.heartbeat(1, 3);
  net.stabilize();
  CHECK_FALSE(net.node(1).propose_conf_change(cc));
}
