// keel::store::store: creating, reading, updating and removing objects; the
// errors a write is refused with (exists, not_found, name_conflict,
// missing_index_value, sequence_conflict, transaction_closed) and that a
// refused update() leaves nothing behind; versions; a write transaction
// reading its own writes; snapshot isolation; follower replay with put().
// Single-threaded: concurrency.test.cpp has the threads.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../support/child_process.hpp"
#include "keel/errc.hpp"
#include "keel/store/store.hpp"
#include "plain_objects.hpp"

namespace {

using keel::errc;
using keel::store::all;
using keel::store::by_name;
using keel::store::by_node_id;
using keel::store::by_service_id;
using keel::store::object_ptr;
using namespace keel::test::plain;

/// The ids of found objects, in the order found.
template <class T>
std::vector<std::string> ids_of(const keel::result<std::vector<object_ptr<T>>>& found) {
  std::vector<std::string> ids;
  if (!found) return {"<error: " + found.error().message() + ">"};
  for (const auto& obj : *found) ids.push_back(obj->id);
  return ids;
}

using ids = std::vector<std::string>;

/// Commits one create of each object, in one transaction; returns its error.
template <class... Objects>
std::error_code create_all(plain_store& s, Objects... objects) {
  return s.update([&](auto& tx) {
    std::error_code ec;
    ((ec = ec ? ec : tx.create(std::move(objects))), ...);
    return ec;
  });
}

}  // namespace

// ---- create and read ------------------------------------------------------------------

TEST_CASE("a created object can be read back by id, stamped with its commit's version") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1, task_state::running, "n1", "web.1")));

  const auto tx = s.begin_read();
  const object_ptr<task> t = tx.get<task>("t1");
  REQUIRE(t != nullptr);
  CHECK(t->service_id == "svc");
  CHECK(t->node_id == "n1");
  CHECK(t->slot == 1);
  CHECK(t->desired_state == task_state::running);
  CHECK(t->name == "web.1");
  CHECK(t->version == 1);
  CHECK(tx.version() == 1);
}

TEST_CASE("reading an id that was never created gives no object") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1)));

  const auto tx = s.begin_read();
  CHECK(tx.get<task>("t2") == nullptr);
  CHECK(tx.get<task>("t") == nullptr);
  CHECK(tx.get<task>("t10") == nullptr);
  CHECK(tx.get<service>("t1") == nullptr);  // Tables do not share ids.
}

TEST_CASE("view runs a function on a snapshot and returns what it returns") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_service("s1", "web")));

  const std::string name =
      s.view([](const auto& tx) { return tx.template get<service>("s1")->name; });
  CHECK(name == "web");
}

TEST_CASE("creating an object whose id is taken fails with exists and keeps the stored one") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1)));

  const std::error_code ec = create_all(s, make_task("t1", "other", 2));
  CHECK(ec == errc::exists);
  const auto t = s.begin_read().get<task>("t1");
  REQUIRE(t != nullptr);
  CHECK(t->service_id == "svc");
  CHECK(s.version() == 1);
}

// ---- update and remove -----------------------------------------------------------------

TEST_CASE("updating an object that does not exist fails with not_found") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1)));

  const std::error_code ec =
      s.update([](auto& tx) { return tx.update(make_task("t2", "svc", 1)); });
  CHECK(ec == errc::not_found);
  CHECK(s.begin_read().get<task>("t2") == nullptr);
  CHECK(s.version() == 1);
}

TEST_CASE("an updated object is found under its new index values and not its old ones") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1, task_state::running, "n1")));

  REQUIRE_FALSE(s.update([](auto& tx) {
    task t = *tx.template get<task>("t1");
    t.node_id = "n2";
    return tx.update(std::move(t));
  }));

  const auto tx = s.begin_read();
  CHECK(tx.get<task>("t1")->node_id == "n2");
  CHECK(ids_of(tx.find<task>(by_node_id("n1"))).empty());
  CHECK(ids_of(tx.find<task>(by_node_id("n2"))) == ids{"t1"});
}

TEST_CASE("a removed object is gone from the table and from every index") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1, task_state::running, "n1", "web"),
                           make_task("t2", "svc", 2, task_state::running, "n1", "web")));

  REQUIRE_FALSE(s.update([](auto& tx) { return tx.template remove<task>("t1"); }));

  const auto tx = s.begin_read();
  CHECK(tx.get<task>("t1") == nullptr);
  CHECK(tx.count<task>() == 1);
  CHECK(ids_of(tx.find<task>(all())) == ids{"t2"});
  CHECK(ids_of(tx.find<task>(by_service_id("svc"))) == ids{"t2"});
  CHECK(ids_of(tx.find<task>(by_node_id("n1"))) == ids{"t2"});
  CHECK(ids_of(tx.find<task>(by_name("web"))) == ids{"t2"});
  CHECK(ids_of(tx.find<task>(keel::store::by_slot("svc", std::uint64_t{1}))).empty());
}

TEST_CASE("removing an object that does not exist fails with not_found") {
  plain_store s;
  const std::error_code ec = s.update([](auto& tx) { return tx.template remove<task>("t1"); });
  CHECK(ec == errc::not_found);
  CHECK(s.version() == 0);
}

// ---- unique and required indexes -----------------------------------------------------------

TEST_CASE("a unique index conflict fails with name_conflict and discards the whole update") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_service("s0", "db")));

  // The first create succeeds inside the transaction; the second collides with
  // it (names are case-insensitive), so update() must discard both.
  const std::error_code ec = s.update([](auto& tx) {
    if (auto e = tx.create(make_task("t1", "s1", 1))) return e;
    if (auto e = tx.create(make_service("s1", "web"))) return e;
    return tx.create(make_service("s2", "WEB"));
  });

  CHECK(ec == errc::name_conflict);
  const auto tx = s.begin_read();
  CHECK(tx.version() == 1);
  CHECK(s.version() == 1);
  CHECK(tx.get<task>("t1") == nullptr);
  CHECK(tx.get<service>("s1") == nullptr);
  CHECK(tx.get<service>("s2") == nullptr);
  CHECK(tx.count<task>() == 0);
  CHECK(ids_of(tx.find<service>(all())) == ids{"s0"});
  CHECK(ids_of(tx.find<service>(by_name("web"))).empty());
}

TEST_CASE("renaming an object onto another's unique value fails with name_conflict") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_service("s1", "web"), make_service("s2", "db")));

  const std::error_code ec = s.update([](auto& tx) {
    service renamed = *tx.template get<service>("s2");
    renamed.name = "Web";
    return tx.update(std::move(renamed));
  });

  CHECK(ec == errc::name_conflict);
  const auto tx = s.begin_read();
  CHECK(tx.get<service>("s2")->name == "db");
  CHECK(ids_of(tx.find<service>(by_name("web"))) == ids{"s1"});
  CHECK(ids_of(tx.find<service>(by_name("db"))) == ids{"s2"});
}

TEST_CASE("an object may change the case of its own unique value") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_service("s1", "web")));

  REQUIRE_FALSE(s.update([](auto& tx) {
    service renamed = *tx.template get<service>("s1");
    renamed.name = "WEB";
    return tx.update(std::move(renamed));
  }));

  const auto tx = s.begin_read();
  CHECK(tx.get<service>("s1")->name == "WEB");
  CHECK(ids_of(tx.find<service>(by_name("web"))) == ids{"s1"});
}

TEST_CASE("a unique value given up earlier in a transaction may be taken later in it") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_service("s1", "web")));

  REQUIRE_FALSE(s.update([](auto& tx) {
    if (auto e = tx.template remove<service>("s1")) return e;
    return tx.create(make_service("s2", "web"));
  }));

  const auto tx = s.begin_read();
  CHECK(tx.get<service>("s1") == nullptr);
  CHECK(ids_of(tx.find<service>(by_name("web"))) == ids{"s2"});
}

TEST_CASE("an object without a value for a required index fails with missing_index_value") {
  plain_store s;

  SECTION("a service without a name") {
    CHECK(create_all(s, make_service("s1", "")) == errc::missing_index_value);
    CHECK(s.begin_read().count<service>() == 0);
    CHECK(s.version() == 0);
  }
  SECTION("an object without an id") {
    CHECK(create_all(s, make_task("", "svc", 1)) == errc::missing_index_value);
    CHECK(s.begin_read().count<task>() == 0);
    CHECK(s.version() == 0);
  }
  SECTION("an update that removes the name") {
    REQUIRE_FALSE(create_all(s, make_service("s1", "web")));
    const std::error_code ec = s.update([](auto& tx) {
      service unnamed = *tx.template get<service>("s1");
      unnamed.name.clear();
      return tx.update(std::move(unnamed));
    });
    CHECK(ec == errc::missing_index_value);
    CHECK(s.begin_read().get<service>("s1")->name == "web");
    CHECK(s.version() == 1);
  }
}

TEST_CASE("an object without values for indexes that allow missing ones is stored") {
  plain_store s;
  // No service, no node, no name: only "desired_state" needs a value.
  REQUIRE_FALSE(create_all(s, make_task("t1", "", 0)));
  CHECK(s.begin_read().get<task>("t1") != nullptr);
}

TEST_CASE("a refused write leaves no trace in a transaction that goes on to commit") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_service("s1", "web", {{"tier", "front"}}),
                           make_service("s2", "db", {{"tier", "back"}})));

  REQUIRE_FALSE(s.update([](auto& tx) {
    service clash = *tx.template get<service>("s2");
    clash.name = "web";
    clash.labels = {{"tier", "middle"}};
    CHECK(tx.update(std::move(clash)) == errc::name_conflict);
    CHECK(tx.create(make_service("s1", "other")) == errc::exists);
    CHECK(tx.create(make_service("s3", "")) == errc::missing_index_value);
    return tx.create(make_service("s4", "cache"));  // The transaction goes on.
  }));

  const auto tx = s.begin_read();
  CHECK(ids_of(tx.find<service>(all())) == ids{"s1", "s2", "s4"});
  CHECK(ids_of(tx.find<service>(by_name("db"))) == ids{"s2"});
  CHECK(ids_of(tx.find<service>(by_name("web"))) == ids{"s1"});
  CHECK(ids_of(tx.find<service>(by_name("other"))).empty());
  CHECK(ids_of(tx.find<service>(keel::store::by_label("tier", "middle"))).empty());
  CHECK(ids_of(tx.find<service>(keel::store::by_label("tier", "back"))) == ids{"s2"});
  CHECK(tx.get<service>("s1")->name == "web");
}

// ---- versions -----------------------------------------------------------------------------

TEST_CASE("an update with a stale version fails with sequence_conflict") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1)));
  const task read_before = *s.begin_read().get<task>("t1");  // version 1
  REQUIRE_FALSE(s.update([&](auto& tx) {
    task t = read_before;
    t.node_id = "n1";
    return tx.update(std::move(t));  // now version 2
  }));

  const std::error_code ec = s.update([&](auto& tx) {
    task stale = read_before;
    stale.node_id = "n9";
    return tx.update(std::move(stale));
  });

  CHECK(ec == errc::sequence_conflict);
  const auto t = s.begin_read().get<task>("t1");
  CHECK(t->node_id == "n1");
  CHECK(t->version == 2);
  CHECK(s.version() == 2);
}

TEST_CASE("an update with a version newer than the stored one fails with sequence_conflict") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1)));

  const std::error_code ec = s.update([](auto& tx) {
    task t = *tx.template get<task>("t1");
    t.version += 1;
    return tx.update(std::move(t));
  });
  CHECK(ec == errc::sequence_conflict);
}

TEST_CASE("an update carrying the stored version succeeds and takes its commit's version") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1)));
  REQUIRE_FALSE(create_all(s, make_task("t2", "svc", 2)));  // version 2
  const task current = *s.begin_read().get<task>("t1");
  REQUIRE(current.version == 1);

  std::uint64_t commit_version = 0;
  REQUIRE_FALSE(s.update([&](auto& tx) {
    commit_version = tx.version();
    task t = current;
    t.desired_state = task_state::shutdown;
    return tx.update(std::move(t));
  }));

  CHECK(commit_version == 3);
  const auto t = s.begin_read().get<task>("t1");
  CHECK(t->version == 3);
  CHECK(t->desired_state == task_state::shutdown);
}

TEST_CASE("each commit's version is one more than the last; a discarded update takes none") {
  plain_store s;
  CHECK(s.version() == 0);
  CHECK(s.begin_read().version() == 0);

  for (std::uint64_t i = 1; i <= 5; ++i) {
    REQUIRE_FALSE(create_all(s, make_task("t" + std::to_string(i), "svc", i)));
    CHECK(s.version() == i);
    CHECK(s.begin_read().version() == i);
    CHECK(s.begin_read().get<task>("t" + std::to_string(i))->version == i);
  }

  CHECK(create_all(s, make_task("t1", "svc", 1)) == errc::exists);
  CHECK(s.version() == 5);
  REQUIRE_FALSE(create_all(s, make_task("t6", "svc", 6)));
  CHECK(s.version() == 6);
  CHECK(s.begin_read().get<task>("t6")->version == 6);
}

TEST_CASE("put keeps the version it is given, as a follower replaying the leader's changes") {
  plain_store s;
  task created = make_task("t1", "svc", 1);
  created.version = 42;

  REQUIRE_FALSE(s.update([&](auto& tx) { return tx.put(created); }));
  CHECK(s.begin_read().get<task>("t1")->version == 42);
  CHECK(s.version() == 1);  // The store's own count of commits.

  task replaced = created;
  replaced.version = 57;  // Not the stored version: put is no compare-and-set.
  replaced.node_id = "n1";
  REQUIRE_FALSE(s.update([&](auto& tx) { return tx.put(replaced); }));

  const auto tx = s.begin_read();
  const auto t = tx.get<task>("t1");
  CHECK(t->version == 57);
  CHECK(t->node_id == "n1");
  CHECK(ids_of(tx.find<task>(by_node_id("n1"))) == ids{"t1"});
  CHECK(tx.count<task>() == 1);
}

TEST_CASE("put refuses what create would refuse") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_service("s1", "web")));
  CHECK(s.update([](auto& tx) { return tx.put(make_service("s2", "WEB")); }) ==
        errc::name_conflict);
  CHECK(s.update([](auto& tx) { return tx.put(make_service("s3", "")); }) ==
        errc::missing_index_value);
  CHECK(s.begin_read().count<service>() == 1);
}

// ---- transactions --------------------------------------------------------------------------

TEST_CASE("a write transaction reads its own writes") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1, task_state::running, "n1"),
                           make_task("t2", "svc", 2, task_state::running, "n1")));

  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("t3", "svc", 3, task_state::running, "n1")));
  REQUIRE_FALSE(tx.remove<task>("t1"));
  task moved = *tx.get<task>("t2");
  moved.node_id = "n2";
  REQUIRE_FALSE(tx.update(std::move(moved)));

  CHECK(tx.get<task>("t1") == nullptr);
  REQUIRE(tx.get<task>("t3") != nullptr);
  CHECK(tx.get<task>("t3")->version == 2);
  CHECK(tx.get<task>("t2")->node_id == "n2");
  CHECK(tx.get<task>("t2")->version == 2);
  CHECK(tx.count<task>() == 2);
  CHECK(ids_of(tx.find<task>(all())) == ids{"t2", "t3"});
  CHECK(ids_of(tx.find<task>(by_node_id("n1"))) == ids{"t3"});
  CHECK(ids_of(tx.find<task>(by_node_id("n2"))) == ids{"t2"});
  s.commit(std::move(tx));
}

TEST_CASE("a snapshot taken before a write transaction sees none of its writes") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1, task_state::running, "n1"),
                           make_service("s1", "web")));
  const auto before = s.begin_read();

  auto tx = s.begin_write();
  REQUIRE_FALSE(tx.create(make_task("t2", "svc", 2, task_state::running, "n1")));
  REQUIRE_FALSE(tx.remove<service>("s1"));
  task t1 = *tx.get<task>("t1");
  t1.node_id = "n2";
  REQUIRE_FALSE(tx.update(std::move(t1)));

  auto check_unchanged = [&] {
    CHECK(before.version() == 1);
    CHECK(before.get<task>("t2") == nullptr);
    CHECK(before.get<task>("t1")->node_id == "n1");
    CHECK(before.get<service>("s1") != nullptr);
    CHECK(before.count<task>() == 1);
    CHECK(before.count<service>() == 1);
    CHECK(ids_of(before.find<task>(by_node_id("n1"))) == ids{"t1"});
    CHECK(ids_of(before.find<task>(by_node_id("n2"))).empty());
    CHECK(ids_of(before.find<service>(by_name("web"))) == ids{"s1"});
  };

  SECTION("before the commit") {
    check_unchanged();
    CHECK(s.begin_read().get<task>("t2") == nullptr);  // Nor does a new snapshot.
    s.commit(std::move(tx));
  }
  SECTION("after the commit") {
    s.commit(std::move(tx));
    check_unchanged();
    const auto after = s.begin_read();
    CHECK(after.version() == 2);
    CHECK(after.get<task>("t2") != nullptr);
    CHECK(after.get<service>("s1") == nullptr);
    CHECK(ids_of(after.find<task>(by_node_id("n1"))) == ids{"t2"});
  }
}

TEST_CASE("a write transaction dropped without a commit leaves the store as it was") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1)));
  {
    auto tx = s.begin_write();
    REQUIRE_FALSE(tx.create(make_task("t2", "svc", 2)));
    REQUIRE_FALSE(tx.remove<task>("t1"));
  }
  const auto tx = s.begin_read();
  CHECK(tx.version() == 1);
  CHECK(tx.get<task>("t1") != nullptr);
  CHECK(tx.get<task>("t2") == nullptr);
  // The writer lock was released: another transaction can start and commit.
  REQUIRE_FALSE(create_all(s, make_task("t3", "svc", 3)));
  CHECK(s.version() == 2);
}

TEST_CASE("a committed write transaction refuses further writes with transaction_closed") {
  // The transaction handed to commit() stays reachable to its caller. Using
  // it again must be refused, not crash: run it in a child process so that a
  // crash fails this test case only.
  const std::string outcome =
      keel::test::run_isolated([](keel::test::shared_page* page) -> std::string {
        plain_store s;
        auto tx = s.begin_write();
        if (tx.create(make_task("t1", "svc", 1))) return "the first create failed";
        s.commit(std::move(tx));

        keel::test::write_shared(page->breadcrumb, sizeof(page->breadcrumb),
                                 "create on the committed transaction");
        const std::error_code created = tx.create(make_task("t2", "svc", 2));
        if (created != errc::transaction_closed) return "create gave: " + created.message();
        keel::test::write_shared(page->breadcrumb, sizeof(page->breadcrumb),
                                 "update on the committed transaction");
        const std::error_code updated = tx.update(make_task("t1", "svc", 1));
        if (updated != errc::transaction_closed) return "update gave: " + updated.message();
        keel::test::write_shared(page->breadcrumb, sizeof(page->breadcrumb),
                                 "put on the committed transaction");
        const std::error_code put = tx.put(make_task("t3", "svc", 3));
        if (put != errc::transaction_closed) return "put gave: " + put.message();
        keel::test::write_shared(page->breadcrumb, sizeof(page->breadcrumb),
                                 "remove on the committed transaction");
        const std::error_code removed = tx.remove<task>("t1");
        if (removed != errc::transaction_closed) return "remove gave: " + removed.message();

        const auto snapshot = s.begin_read();
        if (snapshot.count<task>() != 1 || snapshot.version() != 1) {
          return "the committed transaction's later writes reached the store";
        }
        return "";
      });
  INFO(outcome);
  CHECK(outcome.empty());
}

TEST_CASE("count gives the number of objects in one table") {
  plain_store s;
  REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1), make_task("t2", "svc", 2),
                           make_task("t3", "svc", 3), make_service("s1", "web")));
  REQUIRE_FALSE(s.update([](auto& tx) { return tx.template remove<task>("t2"); }));

  const auto tx = s.begin_read();
  CHECK(tx.count<task>() == 2);
  CHECK(tx.count<service>() == 1);
  CHECK(tx.count<node>() == 0);
}

TEST_CASE("snapshots and objects read from a store outlive it") {
  std::optional<plain_store::read_type> snapshot;
  object_ptr<task> t;
  {
    plain_store s;
    REQUIRE_FALSE(create_all(s, make_task("t1", "svc", 1), make_task("t2", "svc", 2)));
    snapshot.emplace(s.begin_read());
    t = snapshot->get<task>("t1");
    REQUIRE_FALSE(s.update([](auto& tx) { return tx.template remove<task>("t1"); }));
  }
  REQUIRE(t != nullptr);
  CHECK(t->id == "t1");
  CHECK(snapshot->count<task>() == 2);
  CHECK(ids_of(snapshot->find<task>(by_service_id("svc"))) == ids{"t1", "t2"});
}
