// What a snapshot restore needs from the store: the base snapshot a write
// transaction started from, a put of a shared object that the caller can
// retry when it is refused, and a commit with no changes that still moves
// the version on without waking watchers.
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plain_objects.hpp"

using keel::errc;
using keel::store::object_ptr;
using keel::test::plain::make_service;
using keel::test::plain::make_task;
using keel::test::plain::plain_store;
using keel::test::plain::service;
using keel::test::plain::task;

TEST_CASE("a write transaction's base is the snapshot it started from, without its writes") {
  plain_store s;
  REQUIRE_FALSE(s.update([](auto& tx) { return tx.create(make_task("t1", "s1", 1)); }));
  auto tx = s.begin_write_at(10);
  REQUIRE_FALSE(tx.create(make_task("t2", "s1", 2)));
  REQUIRE_FALSE(tx.template remove<task>("t1"));

  const auto base = tx.base();
  CHECK(base.version() == 1);
  CHECK(base.get<task>("t1") != nullptr);
  CHECK(base.get<task>("t2") == nullptr);
  std::vector<std::string> ids;
  for (const auto& e : base.table<task>().primary()) ids.push_back(e.value->id);
  CHECK(ids == std::vector<std::string>{"t1"});

  s.commit(std::move(tx));
  CHECK(base.get<task>("t1") != nullptr);  // Still the old snapshot.
  CHECK(s.begin_read().get<task>("t1") == nullptr);
}

TEST_CASE("a refused put of a shared object leaves it to the caller, who can retry it") {
  plain_store s;
  REQUIRE_FALSE(s.update([](auto& tx) {
    if (auto ec = tx.create(make_service("a", "alpha"))) return ec;
    return tx.create(make_service("b", "beta"));
  }));
  auto tx = s.begin_write_at(5);
  service renamed = *tx.get<service>("a");
  renamed.name = "beta";
  const object_ptr<service> wanted = std::make_shared<const service>(renamed);
  CHECK(tx.put(wanted) == errc::name_conflict);
  REQUIRE(wanted != nullptr);
  CHECK(tx.get<service>("a")->name == "alpha");  // Nothing written.

  REQUIRE_FALSE(tx.template remove<service>("b"));
  REQUIRE_FALSE(tx.put(wanted));
  CHECK(tx.get<service>("a") == wanted);      // Stored as given, not copied.
  CHECK(tx.get<service>("a")->version == 1);  // The version it carries.

  auto w = s.watch(keel::store::accept_all{});
  const auto changes = s.commit(std::move(tx));
  CHECK(changes.size() == 2);
  int events = 0;
  while (w.try_next()) ++events;
  CHECK(events == 2);
}

TEST_CASE("a commit without changes moves the version on and wakes no watcher") {
  plain_store s;
  REQUIRE_FALSE(s.update([](auto& tx) { return tx.create(make_task("t1", "s1", 1)); }));
  auto w = s.watch(keel::store::accept_all{});
  auto tx = s.begin_write_at(42);
  CHECK(s.commit(std::move(tx)).empty());
  CHECK(s.version() == 42);
  CHECK(s.begin_read().get<task>("t1") != nullptr);
  CHECK_FALSE(w.try_next());
}
