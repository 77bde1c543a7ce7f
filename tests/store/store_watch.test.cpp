// keel::store::store watches: filters (on_create, on_update with checks,
// on_delete, any_event), commit order, visibility (an event is read only
// once its commit is visible), cancel, overflow, shutdown, and
// view_and_watch's atomicity against a writer committing continuously.
// Threads synchronise with joins and the watches' own blocking reads only:
// no sleeps, no timing assertions. (watch.test.cpp covers watch_queue alone.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/store/store.hpp"
#include "plain_objects.hpp"

namespace {

using keel::errc;
using keel::store::all;
using keel::store::any_event;
using keel::store::change_kind;
using keel::store::check_id;
using keel::store::object_ptr;
using keel::store::on_any;
using keel::store::on_create;
using keel::store::on_delete;
using keel::store::on_update;
using namespace keel::test::plain;

using subscription = plain_store::subscription_type;
using lines = std::vector<std::string>;

/// "kind table id" for one change.
std::string describe(const plain_change& c) {
  std::string id;
  if (c.is<task>()) id = c.object_as<task>()->id;
  if (c.is<service>()) id = c.object_as<service>()->id;
  if (c.is<node>()) id = c.object_as<node>()->id;
  return std::string(keel::store::to_string(c.kind())) + " " + std::string(c.table()) + " " + id;
}

/// Every event queued now, described, without waiting.
lines drain(subscription& w) {
  lines out;
  while (auto c = w.try_next()) out.push_back(describe(*c));
  return out;
}

/// The version of the commit a create or update event comes from.
std::uint64_t event_version(const plain_change& c) {
  if (c.is<task>()) return c.object_as<task>()->version;
  if (c.is<service>()) return c.object_as<service>()->version;
  return c.object_as<node>()->version;
}

/// Commits one create of each object; fails the test if refused.
template <class... Objects>
void create(plain_store& s, Objects... objects) {
  REQUIRE_FALSE(s.update([&](auto& tx) {
    std::error_code ec;
    ((ec = ec ? ec : tx.create(std::move(objects))), ...);
    return ec;
  }));
}

/// Commits an update of task id that sets its desired state.
void set_state(plain_store& s, const std::string& id, task_state state) {
  REQUIRE_FALSE(s.update([&](auto& tx) {
    task t = *tx.template get<task>(id);
    t.desired_state = state;
    return tx.update(std::move(t));
  }));
}

void remove_task(plain_store& s, const std::string& id) {
  REQUIRE_FALSE(s.update([&](auto& tx) { return tx.template remove<task>(id); }));
}

}  // namespace

// ---- filters ----------------------------------------------------------------------------------

TEST_CASE("a store watch on creates receives the creates of its type only") {
  plain_store s;
  subscription w = s.watch(on_create<task>());
  create(s, make_task("t1", "s1", 1));
  create(s, make_service("s1", "web"));
  set_state(s, "t1", task_state::shutdown);
  remove_task(s, "t1");
  create(s, make_task("t2", "s1", 2));

  CHECK(drain(w) == lines{"create task t1", "create task t2"});
}

TEST_CASE("a store watch on updates receives only the updates that pass its checks") {
  plain_store s;
  create(s, make_task("t1", "s1", 1, task_state::assigned),
         make_task("t2", "s1", 2, task_state::assigned));
  // SwarmKit's EventUpdateTask{Task: {ID: "t1"}, Checks: {TaskCheckID,
  // TaskCheckStateGreaterThan}}: t1 moving past running.
  subscription w = s.watch(on_update<task>(
      check_id<task>("t1"), [](const task& t) { return t.desired_state > task_state::running; }));

  set_state(s, "t1", task_state::running);                    // Not past running.
  set_state(s, "t2", task_state::shutdown);                   // Another task.
  create(s, make_task("t3", "s1", 3, task_state::shutdown));  // A create.
  set_state(s, "t1", task_state::shutdown);                   // The one.
  remove_task(s, "t1");                                       // A delete.

  auto event = w.try_next();
  REQUIRE(event);
  CHECK(event->kind() == change_kind::update);
  CHECK(event->after_as<task>()->id == "t1");
  CHECK(event->after_as<task>()->desired_state == task_state::shutdown);
  CHECK(event->before_as<task>()->desired_state == task_state::running);
  CHECK_FALSE(w.try_next());
}

TEST_CASE("a store watch on deletes receives the deleted object as it was last") {
  plain_store s;
  create(s, make_task("t1", "s1", 1), make_task("t2", "s2", 1));
  subscription w = s.watch(on_delete<task>([](const task& t) { return t.service_id == "s1"; }));

  set_state(s, "t1", task_state::shutdown);
  remove_task(s, "t2");  // Fails the check.
  remove_task(s, "t1");

  auto event = w.try_next();
  REQUIRE(event);
  CHECK(event->kind() == change_kind::remove);
  CHECK(event->after_as<task>() == nullptr);
  REQUIRE(event->before_as<task>() != nullptr);
  CHECK(event->before_as<task>()->id == "t1");
  CHECK(event->before_as<task>()->desired_state == task_state::shutdown);
  CHECK_FALSE(w.try_next());
}

TEST_CASE("any_event combines filters into one store watch") {
  plain_store s;
  subscription w = s.watch(
      any_event(on_create<service>(), on_delete<task>(), on_update<node>(check_id<node>("n2"))));
  create(s, make_task("t1", "s1", 1), make_service("s1", "web"), make_node("n1", 1),
         make_node("n2", 2));
  REQUIRE_FALSE(s.update([](auto& tx) {
    for (const char* id : {"n1", "n2"}) {
      node n = *tx.template get<node>(id);
      n.weight += 1;
      if (auto e = tx.update(std::move(n))) return e;
    }
    return std::error_code{};
  }));
  remove_task(s, "t1");

  CHECK(drain(w) == lines{"create service s1", "update node n2", "delete task t1"});
}

TEST_CASE("on_any watches every change of one type") {
  plain_store s;
  subscription w = s.watch(on_any<task>());
  create(s, make_task("t1", "s1", 1), make_service("s1", "web"));
  set_state(s, "t1", task_state::shutdown);
  remove_task(s, "t1");

  CHECK(drain(w) == lines{"create task t1", "update task t1", "delete task t1"});
}

// ---- order and visibility ------------------------------------------------------------------

TEST_CASE("a store watch receives events in commit order, each commit's in first-touch order") {
  plain_store s;
  subscription w = s.watch(any_event(on_any<task>(), on_any<service>(), on_any<node>()));
  create(s, make_service("s1", "web"), make_task("t1", "s1", 1));
  create(s, make_node("n1", 1));
  REQUIRE_FALSE(s.update([](auto& tx) {
    if (auto e = tx.template remove<service>("s1")) return e;
    task t = *tx.template get<task>("t1");
    t.node_id = "n1";
    return tx.update(std::move(t));
  }));

  CHECK(drain(w) == lines{"create service s1", "create task t1", "create node n1",
                          "delete service s1", "update task t1"});
}

TEST_CASE("a store watch sees no commit from before it started nor a discarded update") {
  plain_store s;
  create(s, make_task("t1", "s1", 1));
  subscription w = s.watch(on_any<task>());

  CHECK(s.update([](auto& tx) {
    if (auto e = tx.create(make_task("t2", "s1", 2))) return e;
    return tx.create(make_task("t1", "s1", 1));  // exists: the update is discarded
  }) == errc::exists);
  {
    auto dropped = s.begin_write();
    REQUIRE_FALSE(dropped.create(make_task("t3", "s1", 3)));
  }
  CHECK(drain(w).empty());
  create(s, make_task("t4", "s1", 4));
  CHECK(drain(w) == lines{"create task t4"});
}

TEST_CASE("a store watch's event is read only once its commit is visible to readers") {
  constexpr std::uint64_t commits = 300;
  plain_store s;
  create(s, make_task("t1", "s1", 1));
  subscription w = s.watch(on_update<task>(), commits + 1);

  std::thread writer([&s] {
    for (std::uint64_t i = 0; i < commits; ++i) {
      const std::error_code ec = s.update([](auto& tx) {
        task t = *tx.template get<task>("t1");
        t.slot += 1;
        return tx.update(std::move(t));
      });
      if (ec) return;  // The reader then misses events and reports it.
    }
  });

  std::vector<std::string> failures;
  std::uint64_t last = 1;
  for (std::uint64_t i = 0; i < commits; ++i) {
    const std::optional<plain_change> event = w.next();
    if (!event) {
      failures.push_back("the watch closed after " + std::to_string(i) +
                         " events: " + w.error().message());
      break;
    }
    const std::uint64_t version = event_version(*event);
    const auto snapshot = s.begin_read();
    const object_ptr<task> stored = snapshot.get<task>("t1");
    if (version != last + 1) failures.push_back("event version " + std::to_string(version));
    if (snapshot.version() < version || stored->version < version) {
      failures.push_back("event of commit " + std::to_string(version) +
                         " read before it was visible (snapshot " +
                         std::to_string(snapshot.version()) + ")");
    }
    last = version;
  }
  writer.join();

  INFO((failures.empty() ? std::string() : failures.front()));
  CHECK(failures.empty());
  CHECK(last == commits + 1);
}

// ---- ending a watch ----------------------------------------------------------------------

TEST_CASE("a cancelled store watch receives nothing more and no longer counts") {
  plain_store s;
  subscription w = s.watch(on_any<task>());
  subscription other = s.watch(on_any<task>());
  CHECK(s.watch_count() == 2);
  create(s, make_task("t1", "s1", 1));

  w.cancel();
  create(s, make_task("t2", "s1", 2));

  CHECK(s.watch_count() == 1);
  CHECK(w.closed());
  CHECK(w.error() == errc::watch_cancelled);
  CHECK_FALSE(w.try_next());  // Cancelling drops what was queued too.
  CHECK(drain(other) == lines{"create task t1", "create task t2"});
}

TEST_CASE("a destroyed store watch no longer counts") {
  plain_store s;
  {
    subscription w = s.watch(on_any<task>());
    CHECK(s.watch_count() == 1);
  }
  CHECK(s.watch_count() == 0);
  create(s, make_task("t1", "s1", 1));  // Publishing to nobody is fine.
}

TEST_CASE("a store watch that falls behind closes with watch_overflow after the events that fit") {
  plain_store s;
  subscription w = s.watch(on_create<task>(), 2);
  create(s, make_task("t1", "s1", 1));
  create(s, make_task("t2", "s1", 2));
  create(s, make_task("t3", "s1", 3));  // Does not fit.
  create(s, make_task("t4", "s1", 4));

  CHECK(w.closed());
  CHECK(w.error() == errc::watch_overflow);
  CHECK(drain(w) == lines{"create task t1", "create task t2"});
  CHECK_FALSE(w.next());  // Closed and drained: no waiting.
  CHECK(s.watch_count() == 0);
}

TEST_CASE("a commit with more events than a store watch can hold closes it without any of them") {
  plain_store s;
  subscription w = s.watch(on_create<task>(), 2);
  create(s, make_task("t1", "s1", 1), make_task("t2", "s1", 2), make_task("t3", "s1", 3));

  CHECK(w.error() == errc::watch_overflow);
  CHECK(drain(w).empty());
}

TEST_CASE("destroying a store closes its watches with watch_closed, keeping queued events") {
  subscription w;
  {
    plain_store s;
    w = s.watch(on_create<task>());
    create(s, make_task("t1", "s1", 1));
  }
  CHECK(w.closed());
  CHECK(w.error() == errc::watch_closed);
  CHECK(drain(w) == lines{"create task t1"});
  CHECK_FALSE(w.next());
}

// ---- view_and_watch ------------------------------------------------------------------------

TEST_CASE("view_and_watch returns the view's result and a watch from just after its snapshot") {
  plain_store s;
  create(s, make_task("t1", "s1", 1), make_task("t2", "s1", 2));

  auto [seen, w] = s.view_and_watch(
      [](const plain_store::read_type& tx) { return tx.find<task>(all())->size(); },
      on_any<task>());
  create(s, make_task("t3", "s1", 3));

  CHECK(seen == 2);
  CHECK(drain(w) == lines{"create task t3"});
}

TEST_CASE("view_and_watch with a view that returns nothing returns the watch alone") {
  plain_store s;
  create(s, make_task("t1", "s1", 1));
  std::uint64_t viewed = 0;
  subscription w = s.view_and_watch(
      [&](const plain_store::read_type& tx) { viewed = tx.version(); }, on_any<task>());
  remove_task(s, "t1");

  CHECK(viewed == 1);
  CHECK(drain(w) == lines{"delete task t1"});
}

TEST_CASE("view_and_watch misses and duplicates no commit while a writer commits continuously") {
  // Every commit updates one node, so its event carries the commit's version
  // and a watch from snapshot v must start at v + 1 and go on without gaps.
  constexpr int nodes = 8;
  constexpr int rounds = 150;
  constexpr std::uint64_t events_per_round = 4;
  plain_store s;
  REQUIRE_FALSE(s.update([](auto& tx) {
    for (int i = 0; i < nodes; ++i) {
      if (auto e = tx.create(make_node("n" + std::to_string(i), 0))) return e;
    }
    return std::error_code{};
  }));

  std::atomic<bool> stop{false};
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    for (std::uint64_t k = 0; !stop.load(std::memory_order_relaxed); ++k) {
      const std::error_code ec = s.update([&](auto& tx) {
        node n = *tx.template get<node>("n" + std::to_string(k % nodes));
        n.weight += 1;
        return tx.update(std::move(n));
      });
      if (ec) {
        writer_failed = true;
        return;
      }
    }
  });

  struct snapshot_view {
    std::uint64_t version = 0;
    std::uint64_t newest_object = 0;  // The highest object version in the snapshot.
    std::size_t objects = 0;
  };
  std::vector<std::string> failures;
  for (int round = 0; round < rounds && failures.empty() && !writer_failed; ++round) {
    auto [snapshot, w] = s.view_and_watch(
        [](const plain_store::read_type& tx) {
          snapshot_view v{tx.version(), 0, 0};
          (void)tx.for_each<node>(all(), [&](const object_ptr<node>& n) {
            v.newest_object = std::max(v.newest_object, n->version);
            ++v.objects;
          });
          return v;
        },
        on_update<node>(), 1 << 16);

    const std::string where = "round " + std::to_string(round) + ", snapshot version " +
                              std::to_string(snapshot.version) + ": ";
    if (snapshot.objects != nodes) failures.push_back(where + "nodes missing");
    // Every commit up to the snapshot's is in it, none after.
    if (snapshot.newest_object != snapshot.version) {
      failures.push_back(where + "newest object version " + std::to_string(snapshot.newest_object));
    }
    std::uint64_t expected = snapshot.version + 1;
    for (std::uint64_t i = 0; i < events_per_round; ++i, ++expected) {
      const std::optional<plain_change> event = w.next();
      if (!event) {
        failures.push_back(where + "watch closed: " + w.error().message());
        break;
      }
      if (event_version(*event) != expected) {
        failures.push_back(where + "event " + std::to_string(i) + " has version " +
                           std::to_string(event_version(*event)) + ", expected " +
                           std::to_string(expected));
        break;
      }
    }
  }
  stop = true;
  writer.join();

  CHECK_FALSE(writer_failed);
  INFO((failures.empty() ? std::string() : failures.front()));
  CHECK(failures.empty());
}
