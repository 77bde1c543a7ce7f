// Persistence before acknowledgement (DESIGN.md; Raft thesis 10.2.1): a
// leader may send its appends while it writes them, but it counts its own
// log towards a commit only once advance() reported the write durable; a
// single voter, having nobody to wait for, commits what it appends in the
// same ready, which the node layer applies only after persisting it.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "network.hpp"

using namespace keel::test;

namespace {

/// Persists a ready into storage the way a node layer does, without advancing.
void persist(memory_storage& storage, const ready& rd) {
  if (rd.snapshot) REQUIRE_FALSE(storage.apply_snapshot(*rd.snapshot));
  REQUIRE_FALSE(storage.append(rd.entries));
  if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
}

}  // namespace

TEST_CASE("a leader does not count its own unpersisted entry towards a commit") {
  network net({1, 2, 3});
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  const std::uint64_t committed_before = net.core_of(1).log().committed();

  // The leader takes the ready carrying the new entry but has not finished
  // writing it: no advance() yet.
  REQUIRE_FALSE(net.node(1).propose("x"));
  ready rd = net.node(1).ready();
  REQUIRE(rd.entries.size() == 1);
  const std::uint64_t index = rd.entries.front().index;
  message to_2;
  for (const message& m : rd.messages) {
    CHECK_FALSE(m.after_persist);  // Appends may travel during the write.
    if (m.to == 2 && m.type == message_type::app) to_2 = m;
  }
  REQUIRE(to_2.type == message_type::app);

  // Follower 2 persists and acknowledges: with the leader that is two of
  // three, but only one of them is durable.
  REQUIRE_FALSE(net.node(2).step(to_2));
  ready rd2 = net.node(2).ready();
  persist(*net.at(2).storage, rd2);
  message ack;
  for (const message& m : rd2.messages) {
    if (m.type == message_type::app_resp) ack = m;
  }
  REQUIRE(ack.type == message_type::app_resp);
  CHECK(ack.after_persist);
  net.node(2).advance();
  REQUIRE_FALSE(net.node(1).step(ack));
  CHECK(net.core_of(1).log().committed() == committed_before);

  // Once the leader's own write is durable, the entry commits.
  persist(*net.at(1).storage, rd);
  net.node(1).advance();
  CHECK(net.core_of(1).log().committed() == index);
}

TEST_CASE("a single voter hands out an entry and its commit in one ready") {
  network net({1});
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  REQUIRE_FALSE(net.node(1).propose("alone"));
  REQUIRE(net.node(1).has_ready());
  ready rd = net.node(1).ready();
  REQUIRE(rd.entries.size() == 1);
  REQUIRE(rd.committed_entries.size() == 1);
  CHECK(rd.committed_entries.front() == rd.entries.front());
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->commit == rd.entries.front().index);
  persist(*net.at(1).storage, rd);
  net.node(1).advance();
  CHECK_FALSE(net.node(1).has_ready());
}

TEST_CASE("a single voter with learners waits for its own disk before committing") {
  network net({1}, 1, network::default_config(), {2});
  net.campaign(1);
  REQUIRE(net.leader() == 1);
  REQUIRE_FALSE(net.node(1).propose("x"));
  ready rd = net.node(1).ready();
  REQUIRE(rd.entries.size() == 1);
  const std::uint64_t index = rd.entries.front().index;
  // The learner must not hear of a commit the leader could still lose.
  CHECK(rd.committed_entries.empty());
  for (const message& m : rd.messages) CHECK(m.commit < index);
  persist(*net.at(1).storage, rd);
  net.node(1).advance();
  CHECK(net.core_of(1).log().committed() == index);
}

TEST_CASE("a lone voter's first messages with a new term wait for that term to be durable") {
  network net({1}, 1, network::default_config(), {2});
  // Campaigning alone makes node 1 leader before its new term is persisted.
  net.node(1).campaign();
  ready rd = net.node(1).ready();
  REQUIRE(rd.hard_state);
  bool saw_append = false;
  for (const message& m : rd.messages) {
    if (m.term == rd.hard_state->term) {
      CHECK(m.after_persist);
      saw_append = saw_append || m.type == message_type::app;
    }
  }
  CHECK(saw_append);
  persist(*net.at(1).storage, rd);
  net.node(1).advance();
  // Once the term is durable, appends flow in parallel with writes again.
  REQUIRE_FALSE(net.node(1).propose("y"));
  ready next = net.node(1).ready();
  for (const message& m : next.messages) {
    if (m.type == message_type::app) CHECK_FALSE(m.after_persist);
  }
}
