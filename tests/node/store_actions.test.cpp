// Store actions: a leader's write transaction, encoded into a log entry
// payload, decoded and applied on another replica, gives the same store;
// damaged payloads are refused without a crash.
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../store/plain_objects.hpp"
#include "keel/node/store_actions.hpp"

using keel::errc;
using keel::node::apply_actions;
using keel::node::decode_actions;
using keel::node::encode_actions;
using keel::test::plain::node;
using keel::test::plain::plain_change;
using keel::test::plain::plain_store;
using keel::test::plain::service;
using keel::test::plain::task;

namespace {

task make_task(std::string id, std::string service_id, std::uint64_t slot) {
  task t;
  t.id = std::move(id);
  t.service_id = std::move(service_id);
  t.slot = slot;
  return t;
}

service make_service(std::string id, std::string name) {
  service s;
  s.id = std::move(id);
  s.name = std::move(name);
  return s;
}

/// Runs fn on a write transaction at `version`, returns the encoded entry.
template <class F>
std::string propose(plain_store& s, std::uint64_t version, F fn) {
  auto tx = s.begin_write_at(version);
  REQUIRE_FALSE(fn(tx));
  const std::vector<plain_change> changes = tx.take_changes();
  return encode_actions(version, std::span<const plain_change>(changes));
}

/// Applies an entry the way every replica does once Raft committed it.
std::error_code apply(plain_store& s, std::uint64_t index, const std::string& payload) {
  auto decoded = decode_actions(payload);
  if (!decoded) return decoded.error();
  auto tx = s.begin_write_at(index);
  if (auto ec = apply_actions(tx, std::span<const keel::node::store_action>(decoded->actions))) {
    return ec;
  }
  s.commit(std::move(tx));
  return {};
}

std::vector<task> all_tasks(const plain_store& s) {
  std::vector<task> out;
  s.view([&](const auto& tx) {
    REQUIRE_FALSE(
        tx.template for_each<task>(keel::store::all(), [&](const auto& t) { out.push_back(*t); }));
  });
  return out;
}

}  // namespace

TEST_CASE("store actions replay a leader's transactions on every replica", "[node][actions]") {
  plain_store leader, follower;
  const std::string first = propose(leader, 3, [](auto& tx) -> std::error_code {
    for (int i = 0; i < 5; ++i) {
      if (auto ec = tx.create(make_task("t" + std::to_string(i), "s1", 1))) {
        return ec;
      }
    }
    return tx.create(make_service("s1", "web"));
  });
  // Proposing changes nothing until the entry is applied.
  CHECK(leader.begin_read().count<task>() == 0);
  for (plain_store* s : {&leader, &follower}) REQUIRE_FALSE(apply(*s, 3, first));
  CHECK(leader.version() == 3);

  const std::string second = propose(leader, 7, [](auto& tx) -> std::error_code {
    auto t = tx.template get<task>("t1");
    task next = *t;
    next.node_id = "n1";
    if (auto ec = tx.update(next)) return ec;
    if (auto ec = tx.template remove<task>("t4")) return ec;
    // Created then deleted in the same transaction: no action at all.
    if (auto ec = tx.create(make_task("tmp", "s1", 2))) return ec;
    return tx.template remove<task>("tmp");
  });
  auto decoded = decode_actions(second);
  REQUIRE(decoded);
  CHECK(decoded->version == 7);
  CHECK(decoded->actions.size() == 2);
  for (plain_store* s : {&leader, &follower}) REQUIRE_FALSE(apply(*s, 7, second));

  CHECK(all_tasks(leader) == all_tasks(follower));
  CHECK(all_tasks(follower).size() == 4);
  auto t1 = follower.begin_read().get<task>("t1");
  REQUIRE(t1);
  CHECK(t1->node_id == "n1");
  CHECK(t1->version == 7);  // The leader's stamp, the entry's index.
  CHECK(follower.begin_read().get<task>("t0")->version == 3);
  CHECK(follower.version() == 7);
}

TEST_CASE("store actions refuse what a replica cannot apply", "[node][actions]") {
  plain_store leader, follower;
  const std::string create =
      propose(leader, 1, [](auto& tx) { return tx.create(make_task("t", "s", 1)); });
  REQUIRE_FALSE(apply(follower, 1, create));
  // The same create again: this replica already has the object.
  CHECK(apply(follower, 2, create) == errc::exists);
  // An update of an object the replica lacks.
  plain_store empty;
  REQUIRE_FALSE(apply(leader, 1, create));
  const std::string update = propose(leader, 2, [](auto& tx) {
    task t = *tx.template get<task>("t");
    t.slot = 9;
    return tx.update(t);
  });
  CHECK(apply(empty, 2, update) == errc::not_found);
}

TEST_CASE("store action payloads that are damaged are refused, never a crash", "[node][actions]") {
  plain_store leader;
  const std::string payload = propose(leader, 4, [](auto& tx) -> std::error_code {
    if (auto ec = tx.create(make_task("a", "s", 1))) return ec;
    return tx.create(make_service("s", "db"));
  });
  REQUIRE(decode_actions(payload));
  for (std::size_t n = 0; n < payload.size(); ++n) {
    CHECK_FALSE(decode_actions(payload.substr(0, n)));
  }
  CHECK_FALSE(decode_actions(payload + "x"));
  std::mt19937_64 rng(11);
  int decoded = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string junk = payload;
    junk[rng() % junk.size()] = static_cast<char>(rng());
    auto d = decode_actions(junk);
    if (!d) continue;
    ++decoded;
    plain_store s;
    auto tx = s.begin_write_at(d->version == 0 ? 1 : d->version);
    // Any outcome but a crash: the bytes may still name a valid object.
    (void)apply_actions(tx, std::span<const keel::node::store_action>(d->actions));
  }
  CHECK(decoded < 2000);
  // A table this store does not have.
  std::string unknown = payload;
  unknown.replace(unknown.find("task"), 4, "tusk");
  auto d = decode_actions(unknown);
  REQUIRE(d);
  plain_store s;
  auto tx = s.begin_write_at(4);
  CHECK(apply_actions(tx, std::span<const keel::node::store_action>(d->actions)) ==
        errc::invalid_object);
}

TEST_CASE("take_changes leaves the store untouched and frees the writer", "[node][actions]") {
  plain_store s;
  {
    auto tx = s.begin_write();
    REQUIRE_FALSE(tx.create(make_task("x", "s", 1)));
    CHECK(tx.take_changes().size() == 1);
    CHECK(tx.create(make_task("y", "s", 1)) == errc::transaction_closed);
  }
  CHECK(s.version() == 0);
  auto tx = s.begin_write();  // Would block forever if the lock were still held.
  CHECK(tx.version() == 1);
  s.commit(std::move(tx));
  CHECK(s.version() == 1);
  // Versions never go back.
  CHECK_THROWS_AS(s.begin_write_at(1), std::invalid_argument);
  CHECK(s.begin_write_at(10).version() == 10);
}

TEST_CASE("store actions built on a state that changed since fail on every replica",
          "[node][actions]") {
  plain_store leader, follower;
  const std::string create =
      propose(leader, 1, [](auto& tx) { return tx.create(make_task("t", "s", 1)); });
  for (plain_store* s : {&leader, &follower}) REQUIRE_FALSE(apply(*s, 1, create));
  // Two writes proposed before either is applied, both from version 1.
  auto bump = [](std::uint64_t slot) {
    return [slot](auto& tx) {
      task t = *tx.template get<task>("t");
      t.slot = slot;
      return tx.update(t);
    };
  };
  const std::string first = propose(leader, 2, bump(10));
  const std::string second = propose(leader, 3, bump(20));
  for (plain_store* s : {&leader, &follower}) {
    REQUIRE_FALSE(apply(*s, 2, first));
    CHECK(apply(*s, 3, second) == errc::sequence_conflict);
    CHECK(s->begin_read().get<task>("t")->slot == 10);
    CHECK(s->version() == 2);  // The refused entry changed nothing.
  }
}
