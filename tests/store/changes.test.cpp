// keel::store changes: the list store::commit returns, one change per object
// a transaction touched, collapsed (create then update is a create of the
// final object, update then update one update from the first before to the
// last after, create then delete nothing, update then delete a delete of
// the original), in the order objects were first touched, across tables.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/store/store.hpp"
#include "plain_objects.hpp"

namespace {

using keel::errc;
using keel::store::change_kind;
using namespace keel::test::plain;

/// "kind table id" for each change: a readable summary of a change list.
std::vector<std::string> summary(const std::vector<plain_change>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) {
    std::string id;
    if (c.is<task>()) id = c.object_as<task>()->id;
    if (c.is<service>()) id = c.object_as<service>()->id;
    if (c.is<node>()) id = c.object_as<node>()->id;
    out.push_back(std::string(keel::store::to_string(c.kind())) + " " + std::string(c.table()) +
                  " " + id);
  }
  return out;
}

using lines = std::vector<std::string>;

/// A store holding task t1 (node n1, version 1) and service s1 (version 1).
void seed(plain_store& s) {
  REQUIRE_FALSE(s.update([](auto& tx) {
    if (auto e = tx.create(make_task("t1", "s1", 1, task_state::running, "n1"))) return e;
    return tx.create(make_service("s1", "web"));
  }));
}

/// Sets t1's node through an update carrying the current version.
template <class Tx>
std::error_code move_t1(Tx& tx, std::string node_id) {
  task t = *tx.template get<task>("t1");
  t.node_id = std::move(node_id);
  return tx.update(std::move(t));
}

}  // namespace

TEST_CASE("commit returns one change per object written, with its kind and objects") {
  plain_store s;
  seed(s);

  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("t2", "s1", 2)));
  REQUIRE_FALSE(move_t1(tx, "n2"));
  REQUIRE_FALSE(tx.remove<service>("s1"));
  const std::vector<plain_change> changes = s.commit(std::move(tx));

  REQUIRE(summary(changes) == lines{"create task t2", "update task t1", "delete service s1"});

  CHECK(changes[0].before_as<task>() == nullptr);
  CHECK(changes[0].after_as<task>()->version == 2);

  CHECK(changes[1].before_as<task>()->node_id == "n1");
  CHECK(changes[1].before_as<task>()->version == 1);
  CHECK(changes[1].after_as<task>()->node_id == "n2");
  CHECK(changes[1].after_as<task>()->version == 2);

  CHECK(changes[2].before_as<service>()->name == "web");
  CHECK(changes[2].after_as<service>() == nullptr);
}

TEST_CASE("a change's objects are the stored ones, shared and not copied") {
  plain_store s;
  seed(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(move_t1(tx, "n2"));
  const auto changes = s.commit(std::move(tx));
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].after_as<task>() == s.begin_read().get<task>("t1"));
}

TEST_CASE("a change names its table and gives its objects only as their own type") {
  plain_store s;
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_service("s1", "web")));
  const auto changes = s.commit(std::move(tx));

  REQUIRE(changes.size() == 1);
  const plain_change& c = changes[0];
  CHECK(c.table() == "service");
  CHECK(c.is<service>());
  CHECK_FALSE(c.is<task>());
  CHECK(c.table_index() == 1);
  CHECK(c.after_as<task>() == nullptr);
  CHECK(c.object_as<service>()->name == "web");
}

TEST_CASE("a create then an update in one transaction is one create of the final object") {
  plain_store s;
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("t1", "s1", 1, task_state::pending)));
  task t = *tx.get<task>("t1");
  t.desired_state = task_state::running;
  t.node_id = "n1";
  REQUIRE_FALSE(tx.update(std::move(t)));
  const auto changes = s.commit(std::move(tx));

  REQUIRE(summary(changes) == lines{"create task t1"});
  CHECK(changes[0].before_as<task>() == nullptr);
  CHECK(changes[0].after_as<task>()->desired_state == task_state::running);
  CHECK(changes[0].after_as<task>()->node_id == "n1");
}

TEST_CASE("two updates in one transaction are one update from the first before to the last after") {
  plain_store s;
  seed(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(move_t1(tx, "n2"));
  REQUIRE_FALSE(move_t1(tx, "n3"));
  const auto changes = s.commit(std::move(tx));

  REQUIRE(summary(changes) == lines{"update task t1"});
  CHECK(changes[0].before_as<task>()->node_id == "n1");
  CHECK(changes[0].before_as<task>()->version == 1);
  CHECK(changes[0].after_as<task>()->node_id == "n3");
  CHECK(changes[0].after_as<task>()->version == 2);
}

TEST_CASE("an object created and deleted in one transaction leaves no change") {
  plain_store s;
  seed(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("t2", "s1", 2)));
  REQUIRE_FALSE(move_t1(tx, "n2"));
  REQUIRE_FALSE(tx.remove<task>("t2"));
  const auto changes = s.commit(std::move(tx));

  CHECK(summary(changes) == lines{"update task t1"});
}

TEST_CASE("a transaction that only creates and deletes an object commits no change") {
  plain_store s;
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("t1", "s1", 1)));
  REQUIRE_FALSE(tx.remove<task>("t1"));
  const auto changes = s.commit(std::move(tx));

  CHECK(changes.empty());
  CHECK(s.begin_read().count<task>() == 0);
}

TEST_CASE("an update then a delete in one transaction is a delete of the original object") {
  plain_store s;
  seed(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(move_t1(tx, "n2"));
  REQUIRE_FALSE(tx.remove<task>("t1"));
  const auto changes = s.commit(std::move(tx));

  REQUIRE(summary(changes) == lines{"delete task t1"});
  CHECK(changes[0].before_as<task>()->node_id == "n1");
  CHECK(changes[0].before_as<task>()->version == 1);
  CHECK(changes[0].after_as<task>() == nullptr);
}

TEST_CASE("a delete then a create of the same id in one transaction is an update") {
  plain_store s;
  seed(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.remove<task>("t1"));
  REQUIRE_FALSE(tx.create(make_task("t1", "s1", 7)));
  const auto changes = s.commit(std::move(tx));

  REQUIRE(summary(changes) == lines{"update task t1"});
  CHECK(changes[0].before_as<task>()->slot == 1);
  CHECK(changes[0].after_as<task>()->slot == 7);
}

TEST_CASE("changes to two tables keep the order in which objects were first touched") {
  plain_store s;
  seed(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_node("n1", 1)));
  REQUIRE_FALSE(move_t1(tx, "n1"));
  REQUIRE_FALSE(tx.create(make_service("s2", "db")));
  REQUIRE_FALSE(tx.create(make_task("t2", "s2", 1)));
  // Touching objects again does not move their changes.
  node n1 = *tx.get<node>("n1");
  n1.weight = 5;
  REQUIRE_FALSE(tx.update(std::move(n1)));
  REQUIRE_FALSE(move_t1(tx, "n2"));
  REQUIRE_FALSE(tx.remove<service>("s1"));
  const auto changes = s.commit(std::move(tx));

  CHECK(summary(changes) == lines{"create node n1", "update task t1", "create service s2",
                                  "create task t2", "delete service s1"});
  REQUIRE(changes.size() == 5);
  CHECK(changes[0].after_as<node>()->weight == 5);
  CHECK(changes[1].after_as<task>()->node_id == "n2");
}

TEST_CASE("objects of different tables with the same id are separate changes") {
  plain_store s;
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("x", "s1", 1)));
  REQUIRE_FALSE(tx.create(make_service("x", "web")));
  REQUIRE_FALSE(tx.remove<task>("x"));
  const auto changes = s.commit(std::move(tx));

  CHECK(summary(changes) == lines{"create service x"});
}

TEST_CASE("a refused write records no change") {
  plain_store s;
  seed(s);
  auto tx = s.begin_write();
  CHECK(tx.create(make_task("t1", "s1", 1)) == errc::exists);
  CHECK(tx.create(make_service("s2", "WEB")) == errc::name_conflict);
  CHECK(tx.update(make_task("t9", "s1", 1)) == errc::not_found);
  task stale = *tx.get<task>("t1");
  stale.version = 0;
  CHECK(tx.update(std::move(stale)) == errc::sequence_conflict);
  CHECK(tx.remove<node>("n1") == errc::not_found);
  const auto changes = s.commit(std::move(tx));

  CHECK(changes.empty());
}

TEST_CASE("a put records a create or an update like the writes it replays") {
  plain_store s;
  seed(s);
  task replayed = make_task("t1", "s1", 1, task_state::shutdown, "n1");
  replayed.version = 9;
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.put(replayed));
  REQUIRE_FALSE(tx.put(make_task("t2", "s1", 2)));
  const auto changes = s.commit(std::move(tx));

  REQUIRE(summary(changes) == lines{"update task t1", "create task t2"});
  CHECK(changes[0].before_as<task>()->version == 1);
  CHECK(changes[0].after_as<task>()->version == 9);
}
