// keel::store selectors over a populated store of plain objects: SwarmKit's
// selectors (all, by_id, by_id_prefix, by_name, by_name_prefix,
// by_service_id, by_node_id, by_slot, by_desired_state, by_label), any_of
// and its de-duplication, the invalid_index errors, for_each stopping early,
// and the range walks for_each_from and for_each_reverse on an integer index
// and on the id index. Orders are asserted exactly: ascending by (index
// value, id).
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/store/store.hpp"
#include "plain_objects.hpp"

namespace {

using keel::errc;
using keel::store::all;
using keel::store::any_of;
using keel::store::by_desired_state;
using keel::store::by_id;
using keel::store::by_id_prefix;
using keel::store::by_index;
using keel::store::by_label;
using keel::store::by_name;
using keel::store::by_name_prefix;
using keel::store::by_node_id;
using keel::store::by_service_id;
using keel::store::by_slot;
using keel::store::object_ptr;
using keel::store::query_mode;
using namespace keel::test::plain;

using ids = std::vector<std::string>;

/// The ids of found objects in the order found, or the error.
template <class T>
ids ids_of(const keel::result<std::vector<object_ptr<T>>>& found) {
  if (!found) return {"<error: " + found.error().message() + ">"};
  ids out;
  for (const auto& obj : *found) out.push_back(obj->id);
  return out;
}

/// A small cluster:
///   tasks     id   service slot desired    node name
///             t01  svc-a   1    running    n1   Web.1
///             t02  svc-a   2    running    n2   web.2
///             t03  svc-a   1    shutdown   n1   WEB.1   (the slot's old task)
///             t04  svc-b   1    pending    -    db.1
///             t05  svc-b   2    assigned   n2   db.2
///             t10  svc-c   1    running    n3   cache.1
///             t11  -       0    created    -    -
///   services  s1 "web" {tier=front, env=prod}, s2 "db" {tier=back, env=prod},
///             s3 "Cache" {tier=back}, s4 "webhook" (no labels)
///   nodes     weight: n1 10, n2 -5, n3 10, n4 0, n5 100, n6 -100
void populate(plain_store& s) {
  const std::error_code ec = s.update([](auto& tx) {
    const task tasks[] = {
        make_task("t01", "svc-a", 1, task_state::running, "n1", "Web.1"),
        make_task("t02", "svc-a", 2, task_state::running, "n2", "web.2"),
        make_task("t03", "svc-a", 1, task_state::shutdown, "n1", "WEB.1"),
        make_task("t04", "svc-b", 1, task_state::pending, "", "db.1"),
        make_task("t05", "svc-b", 2, task_state::assigned, "n2", "db.2"),
        make_task("t10", "svc-c", 1, task_state::running, "n3", "cache.1"),
        make_task("t11", "", 0, task_state::created, "", ""),
    };
    // Created out of order: the indexes, not the insertion order, sort them.
    for (const std::size_t i : {6, 2, 0, 4, 1, 5, 3}) {
      if (auto e = tx.create(tasks[i])) return e;
    }
    const service services[] = {
        make_service("s1", "web", {{"tier", "front"}, {"env", "prod"}}),
        make_service("s2", "db", {{"tier", "back"}, {"env", "prod"}}),
        make_service("s3", "Cache", {{"tier", "back"}}),
        make_service("s4", "webhook"),
    };
    for (const auto& svc : services) {
      if (auto e = tx.create(svc)) return e;
    }
    const node nodes[] = {
        make_node("n1", 10, "Worker-1"),
        make_node("n2", -5, "worker-2"),
        make_node("n3", 10, "worker-3"),
        make_node("n4", 0),
        make_node("n5", 100),
        make_node("n6", -100),
    };
    for (const auto& n : nodes) {
      if (auto e = tx.create(n)) return e;
    }
    return std::error_code{};
  });
  REQUIRE_FALSE(ec);
}

/// The ids for_each_from / for_each_reverse visit, or the error.
template <class T, class... Values>
ids walk_from(const plain_store::read_type& tx, std::string_view index, const Values&... values) {
  ids out;
  const std::error_code ec = tx.for_each_from<T>(
      index, [&](const object_ptr<T>& obj) { out.push_back(obj->id); }, values...);
  if (ec) return {"<error: " + ec.message() + ">"};
  return out;
}

template <class T, class... Values>
ids walk_reverse(const plain_store::read_type& tx, std::string_view index,
                 const Values&... values) {
  ids out;
  const std::error_code ec = tx.for_each_reverse<T>(
      index, [&](const object_ptr<T>& obj) { out.push_back(obj->id); }, values...);
  if (ec) return {"<error: " + ec.message() + ">"};
  return out;
}

const ids invalid_index{"<error: " + make_error_code(errc::invalid_index).message() + ">"};

}  // namespace

// ---- SwarmKit's selectors ---------------------------------------------------------------

TEST_CASE("all selects every object of a table, in id order") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(all())) == ids{"t01", "t02", "t03", "t04", "t05", "t10", "t11"});
  CHECK(ids_of(tx.find<service>(all())) == ids{"s1", "s2", "s3", "s4"});
  CHECK(ids_of(tx.find<node>(all())) == ids{"n1", "n2", "n3", "n4", "n5", "n6"});
}

TEST_CASE("all on an empty table selects nothing") {
  plain_store s;
  const auto found = s.begin_read().find<task>(all());
  REQUIRE(found);
  CHECK(found->empty());
}

TEST_CASE("by_id selects the one object with exactly that id") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_id("t10"))) == ids{"t10"});
  CHECK(ids_of(tx.find<task>(by_id("t1"))).empty());  // A prefix of t10 and t11 only.
  CHECK(ids_of(tx.find<task>(by_id("t100"))).empty());
  CHECK(ids_of(tx.find<service>(by_id("t10"))).empty());
}

TEST_CASE("by_id_prefix selects the objects whose id starts with the prefix") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_id_prefix("t0"))) == ids{"t01", "t02", "t03", "t04", "t05"});
  CHECK(ids_of(tx.find<task>(by_id_prefix("t1"))) == ids{"t10", "t11"});
  CHECK(ids_of(tx.find<task>(by_id_prefix("t11"))) == ids{"t11"});
  CHECK(ids_of(tx.find<task>(by_id_prefix("x"))).empty());
  CHECK(ids_of(tx.find<task>(by_id_prefix(""))).size() == 7);
}

TEST_CASE("by_name matches names case-insensitively through the lower-cased index") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_name("web.1"))) == ids{"t01", "t03"});
  CHECK(ids_of(tx.find<task>(by_name("WEB.1"))) == ids{"t01", "t03"});
  CHECK(ids_of(tx.find<task>(by_name("web"))).empty());  // Exact, not a prefix.
  CHECK(ids_of(tx.find<service>(by_name("cache"))) == ids{"s3"});
  CHECK(ids_of(tx.find<service>(by_name("CACHE"))) == ids{"s3"});
  CHECK(ids_of(tx.find<node>(by_name("WORKER-1"))) == ids{"n1"});
}

TEST_CASE("by_name_prefix matches name prefixes case-insensitively") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  // Ordered by the (lower-cased) name, then the id.
  CHECK(ids_of(tx.find<task>(by_name_prefix("WE"))) == ids{"t01", "t03", "t02"});
  CHECK(ids_of(tx.find<task>(by_name_prefix("db."))) == ids{"t04", "t05"});
  CHECK(ids_of(tx.find<service>(by_name_prefix("Web"))) == ids{"s1", "s4"});
  CHECK(ids_of(tx.find<service>(by_name_prefix("webh"))) == ids{"s4"});
  CHECK(ids_of(tx.find<service>(by_name_prefix("x"))).empty());
}

TEST_CASE("by_service_id selects a service's tasks") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_service_id("svc-a"))) == ids{"t01", "t02", "t03"});
  CHECK(ids_of(tx.find<task>(by_service_id("svc-b"))) == ids{"t04", "t05"});
  CHECK(ids_of(tx.find<task>(by_service_id("svc"))).empty());
  CHECK(ids_of(tx.find<task>(by_service_id(""))).empty());
}

TEST_CASE("by_node_id selects a node's tasks and never the unassigned ones") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_node_id("n1"))) == ids{"t01", "t03"});
  CHECK(ids_of(tx.find<task>(by_node_id("n2"))) == ids{"t02", "t05"});
  CHECK(ids_of(tx.find<task>(by_node_id("n4"))).empty());
  CHECK(ids_of(tx.find<task>(by_node_id(""))).empty());
  // The whole index holds only the assigned tasks, by node then id.
  CHECK(ids_of(tx.find<task>(by_index("node_id", query_mode::all))) ==
        ids{"t01", "t03", "t02", "t05", "t10"});
}

TEST_CASE("by_slot selects a service's tasks in one slot") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_slot("svc-a", std::uint64_t{1}))) == ids{"t01", "t03"});
  CHECK(ids_of(tx.find<task>(by_slot("svc-a", 2))) == ids{"t02"});
  CHECK(ids_of(tx.find<task>(by_slot("svc-b", 1))) == ids{"t04"});
  CHECK(ids_of(tx.find<task>(by_slot("svc-a", 3))).empty());
  CHECK(ids_of(tx.find<task>(by_slot("svc-c", 2))).empty());
}

TEST_CASE("by_desired_state selects the tasks in one state") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_desired_state(task_state::running))) == ids{"t01", "t02", "t10"});
  CHECK(ids_of(tx.find<task>(by_desired_state(task_state::shutdown))) == ids{"t03"});
  CHECK(ids_of(tx.find<task>(by_desired_state(task_state::created))) == ids{"t11"});
}

TEST_CASE("by_label selects the objects carrying a label with that key and value") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<service>(by_label("tier", "back"))) == ids{"s2", "s3"});
  CHECK(ids_of(tx.find<service>(by_label("env", "prod"))) == ids{"s1", "s2"});
  CHECK(ids_of(tx.find<service>(by_label("tier", "front"))) == ids{"s1"});
  CHECK(ids_of(tx.find<service>(by_label("tier", "Back"))).empty());  // Labels keep case.
  CHECK(ids_of(tx.find<service>(by_label("tier", "bac"))).empty());
  CHECK(ids_of(tx.find<service>(by_label("env", "front"))).empty());
}

TEST_CASE("selectors on a write transaction see its own writes") {
  plain_store s;
  populate(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("t06", "svc-a", 1, task_state::running, "n4", "web.1")));
  task t01 = *tx.get<task>("t01");
  t01.desired_state = task_state::shutdown;
  REQUIRE_FALSE(tx.update(std::move(t01)));
  REQUIRE_FALSE(tx.remove<service>("s3"));

  CHECK(ids_of(tx.find<task>(by_slot("svc-a", 1))) == ids{"t01", "t03", "t06"});
  CHECK(ids_of(tx.find<task>(by_desired_state(task_state::running))) == ids{"t02", "t06", "t10"});
  CHECK(ids_of(tx.find<task>(by_node_id("n4"))) == ids{"t06"});
  CHECK(ids_of(tx.find<service>(by_label("tier", "back"))) == ids{"s2"});
}

// ---- unions -------------------------------------------------------------------------------

TEST_CASE("any_of unites selectors and reports an object matched twice once") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  // Each object once, in the order first seen.
  CHECK(ids_of(tx.find<task>(any_of(by_node_id("n2"), by_service_id("svc-b")))) ==
        ids{"t02", "t05", "t04"});
  CHECK(ids_of(tx.find<task>(any_of(by_service_id("svc-a"), by_node_id("n1")))) ==
        ids{"t01", "t02", "t03"});
  CHECK(ids_of(tx.find<service>(any_of(by_label("tier", "front"), by_label("env", "prod")))) ==
        ids{"s1", "s2"});
  // Qualified: with exactly three arguments, ADL (index_query holds std types)
  // would also find std::any_of(first, last, pred), and prefer it.
  CHECK(ids_of(tx.find<service>(keel::store::any_of(by_name("web"), by_id("s1"),
                                                    by_name_prefix("WEB")))) == ids{"s1", "s4"});
  CHECK(ids_of(tx.find<task>(any_of(by_id("t11"), by_desired_state(task_state::created)))) ==
        ids{"t11"});
}

TEST_CASE("any_of of selectors that match nothing selects nothing") {
  plain_store s;
  populate(s);
  const auto found = s.begin_read().find<task>(any_of(by_node_id("n9"), by_service_id("x")));
  REQUIRE(found);
  CHECK(found->empty());
}

// ---- invalid queries --------------------------------------------------------------------

TEST_CASE("a selector naming an index the table lacks fails with invalid_index") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(tx.find<service>(by_service_id("svc-a")).error() == errc::invalid_index);
  CHECK(tx.find<task>(by_label("tier", "back")).error() == errc::invalid_index);
  CHECK(tx.find<node>(by_index("nope", query_mode::exact, std::string("x"))).error() ==
        errc::invalid_index);
  CHECK(tx.find<node>(by_index("nope", query_mode::all)).error() == errc::invalid_index);
  CHECK(tx.find<service>(any_of(by_name("web"), by_node_id("n1"))).error() == errc::invalid_index);

  int calls = 0;
  CHECK(tx.for_each<service>(by_slot("svc-a", 1), [&](const auto&) { ++calls; }) ==
        errc::invalid_index);
  CHECK(calls == 0);
  CHECK(walk_from<node>(tx, "nope", std::int64_t{0}) == invalid_index);
  CHECK(walk_reverse<node>(tx, "nope", std::int64_t{0}) == invalid_index);
  CHECK(walk_reverse<node>(tx, "nope") == invalid_index);
}

TEST_CASE("a selector with values of the wrong type for its index fails with invalid_index") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  // The enum's number is not the enum.
  CHECK(tx.find<task>(by_desired_state(512)).error() == errc::invalid_index);
  // A number for a string index, a string for a number.
  CHECK(tx.find<task>(by_index("name", query_mode::exact, 42)).error() == errc::invalid_index);
  CHECK(tx.find<node>(by_index("weight", query_mode::exact, std::string("10"))).error() ==
        errc::invalid_index);
  CHECK(tx.find<task>(by_slot("svc-a", std::string("1"))).error() == errc::invalid_index);
  // Too few or too many values.
  CHECK(tx.find<service>(by_index("labels", query_mode::exact, std::string("tier"))).error() ==
        errc::invalid_index);
  CHECK(tx.find<task>(by_index("service_id", query_mode::exact, std::string("a"), 1)).error() ==
        errc::invalid_index);
  CHECK(tx.find<task>(by_index("service_id", query_mode::exact)).error() == errc::invalid_index);
  CHECK(walk_from<node>(tx, "weight", std::string("x")) == invalid_index);
  CHECK(walk_reverse<task>(tx, "desired_state", 512) == invalid_index);
}

// ---- walks ----------------------------------------------------------------------------------

TEST_CASE("for_each stops as soon as its function returns false") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();

  ids seen;
  const std::error_code ec = tx.for_each<task>(all(), [&](const object_ptr<task>& t) {
    seen.push_back(t->id);
    return seen.size() < 2;
  });
  CHECK_FALSE(ec);
  CHECK(seen == ids{"t01", "t02"});

  seen.clear();
  const std::error_code union_ec = tx.for_each<task>(
      any_of(by_service_id("svc-b"), by_service_id("svc-a")), [&](const object_ptr<task>& t) {
        seen.push_back(t->id);
        return t->id != "t04";
      });
  CHECK_FALSE(union_ec);
  CHECK(seen == ids{"t04"});
}

TEST_CASE("for_each visits every selected object when its function returns nothing") {
  plain_store s;
  populate(s);
  ids seen;
  CHECK_FALSE(s.begin_read().for_each<task>(
      by_service_id("svc-a"), [&](const object_ptr<task>& t) { seen.push_back(t->id); }));
  CHECK(seen == ids{"t01", "t02", "t03"});
}

TEST_CASE("results of a non-unique index come ordered by value, then id") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<task>(by_index("desired_state", query_mode::all))) ==
        ids{"t11", "t04", "t05", "t01", "t02", "t10", "t03"});
  CHECK(ids_of(tx.find<node>(by_index("weight", query_mode::all))) ==
        ids{"n6", "n2", "n4", "n1", "n3", "n5"});
  CHECK(ids_of(tx.find<task>(by_index("service_id", query_mode::all))) ==
        ids{"t01", "t02", "t03", "t04", "t05", "t10"});
  CHECK(ids_of(tx.find<task>(by_index("name", query_mode::all))) ==
        ids{"t10", "t04", "t05", "t01", "t03", "t02"});
}

TEST_CASE("for_each_from on an integer index starts at the first value not below the bound") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(walk_from<node>(tx, "weight", std::int64_t{0}) == ids{"n4", "n1", "n3", "n5"});
  CHECK(walk_from<node>(tx, "weight", std::int64_t{5}) == ids{"n1", "n3", "n5"});
  CHECK(walk_from<node>(tx, "weight", std::int64_t{-5}) == ids{"n2", "n4", "n1", "n3", "n5"});
  CHECK(walk_from<node>(tx, "weight", std::numeric_limits<std::int64_t>::min()) ==
        ids{"n6", "n2", "n4", "n1", "n3", "n5"});
  CHECK(walk_from<node>(tx, "weight", std::int64_t{101}).empty());
  CHECK(walk_from<task>(tx, "desired_state", task_state::assigned) ==
        ids{"t05", "t01", "t02", "t10", "t03"});
}

TEST_CASE("for_each_from on the id index starts at the first id not below the bound") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(walk_from<task>(tx, "id", std::string("t04")) == ids{"t04", "t05", "t10", "t11"});
  CHECK(walk_from<task>(tx, "id", std::string("t06")) == ids{"t10", "t11"});
  CHECK(walk_from<task>(tx, "id", std::string("t1")) == ids{"t10", "t11"});
  CHECK(walk_from<task>(tx, "id", std::string("t")) ==
        ids{"t01", "t02", "t03", "t04", "t05", "t10", "t11"});
  CHECK(walk_from<task>(tx, "id", std::string("u")).empty());
}

TEST_CASE("for_each_reverse without a value walks the whole index in descending order") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(walk_reverse<node>(tx, "weight") == ids{"n5", "n3", "n1", "n4", "n2", "n6"});
  CHECK(walk_reverse<task>(tx, "id") == ids{"t11", "t10", "t05", "t04", "t03", "t02", "t01"});
}

TEST_CASE("for_each_reverse with a value starts at the last objects whose value is at most it") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(walk_reverse<node>(tx, "weight", std::int64_t{10}) == ids{"n3", "n1", "n4", "n2", "n6"});
  CHECK(walk_reverse<node>(tx, "weight", std::int64_t{9}) == ids{"n4", "n2", "n6"});
  CHECK(walk_reverse<node>(tx, "weight", std::int64_t{-1}) == ids{"n2", "n6"});
  CHECK(walk_reverse<node>(tx, "weight", std::int64_t{-101}).empty());
  CHECK(walk_reverse<node>(tx, "weight", std::numeric_limits<std::int64_t>::max()) ==
        ids{"n5", "n3", "n1", "n4", "n2", "n6"});
  CHECK(walk_reverse<task>(tx, "desired_state", task_state::running) ==
        ids{"t10", "t02", "t01", "t05", "t04", "t11"});
}

TEST_CASE("for_each_reverse on the id index starts at the last id not above the bound") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();
  CHECK(walk_reverse<task>(tx, "id", std::string("t05")) == ids{"t05", "t04", "t03", "t02", "t01"});
  CHECK(walk_reverse<task>(tx, "id", std::string("t1")) == ids{"t05", "t04", "t03", "t02", "t01"});
  CHECK(walk_reverse<task>(tx, "id", std::string("t10")) ==
        ids{"t10", "t05", "t04", "t03", "t02", "t01"});
  CHECK(walk_reverse<task>(tx, "id", std::string("t0")).empty());
  CHECK(walk_reverse<task>(tx, "id", std::string("z")) ==
        ids{"t11", "t10", "t05", "t04", "t03", "t02", "t01"});
}

TEST_CASE("range walks stop as soon as their function returns false") {
  plain_store s;
  populate(s);
  const auto tx = s.begin_read();

  ids seen;
  auto two = [&](const object_ptr<node>& n) {
    seen.push_back(n->id);
    return seen.size() < 2;
  };
  CHECK_FALSE(tx.for_each_from<node>("weight", two, std::int64_t{0}));
  CHECK(seen == ids{"n4", "n1"});
  seen.clear();
  CHECK_FALSE(tx.for_each_reverse<node>("weight", two, std::int64_t{10}));
  CHECK(seen == ids{"n3", "n1"});
  seen.clear();
  CHECK_FALSE(tx.for_each_reverse<node>("weight", two));
  CHECK(seen == ids{"n5", "n3"});
}

TEST_CASE("range walks on a write transaction see its own writes") {
  plain_store s;
  populate(s);
  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_node("n7", 5)));
  REQUIRE_FALSE(tx.remove<node>("n3"));

  ids up;
  CHECK_FALSE(tx.for_each_from<node>(
      "weight", [&](const object_ptr<node>& n) { up.push_back(n->id); }, std::int64_t{0}));
  CHECK(up == ids{"n4", "n7", "n1", "n5"});
  ids down;
  CHECK_FALSE(tx.for_each_reverse<node>(
      "weight", [&](const object_ptr<node>& n) { down.push_back(n->id); }, std::int64_t{9}));
  CHECK(down == ids{"n7", "n4", "n2", "n6"});
}
