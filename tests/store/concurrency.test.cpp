// keel::store under concurrency: reader threads iterate snapshots while a
// writer commits, and every snapshot must be internally consistent (the
// writer keeps invariants that only hold between its transactions), hold
// exactly the commits up to its version, never change, and never be older
// than one the same reader saw before. Several writer threads are
// serialised. Runs under ThreadSanitizer.
//
// Catch2's assertions are not thread-safe: threads record what went wrong as
// text and the main thread asserts after joining them. The writer's choices
// are seeded: a failure prints the seed; replay one with KEEL_SEED=<seed>.
// No sleeps and no timing assertions: threads meet through joins and atomics.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../support/child_process.hpp"
#include "keel/errc.hpp"
#include "keel/store/store.hpp"
#include "plain_objects.hpp"

namespace {

using keel::store::all;
using keel::store::by_node_id;
using keel::store::object_ptr;
using namespace keel::test::plain;

std::uint64_t test_seed(std::uint64_t fallback) {
  if (const char* env = std::getenv("KEEL_SEED")) return std::strtoull(env, nullptr, 10);
  return fallback;
}

/// What one thread saw go wrong; read by the main thread after join().
struct problems {
  std::vector<std::string> list;
  void add(std::string what) {
    if (list.size() < 10) list.push_back(std::move(what));
  }
  std::string first() const { return list.empty() ? std::string() : list.front(); }
};

constexpr int node_count = 10;
constexpr std::int64_t total_weight = 1000;

/// The writer's invariants, checked on one snapshot: ten nodes whose weights
/// sum to total_weight, whichever index is read; every task on a node of the
/// snapshot; the node index agreeing with the table; no object newer than the
/// snapshot.
void check_snapshot(const plain_store::read_type& tx, problems& out) {
  const std::string at = "snapshot " + std::to_string(tx.version()) + ": ";

  const auto nodes = tx.find<node>(all());
  if (!nodes) return out.add(at + "find(all()) failed: " + nodes.error().message());
  std::int64_t sum = 0;
  for (const auto& n : *nodes) {
    sum += n->weight;
    if (n->version > tx.version()) out.add(at + "node " + n->id + " is from a later commit");
  }
  if (nodes->size() != node_count) out.add(at + std::to_string(nodes->size()) + " nodes");
  if (tx.count<node>() != nodes->size()) out.add(at + "count<node> disagrees with all()");
  if (sum != total_weight) out.add(at + "weights sum to " + std::to_string(sum));

  std::int64_t by_weight = 0;
  std::size_t weighted = 0;
  (void)tx.for_each_reverse<node>("weight", [&](const object_ptr<node>& n) {
    by_weight += n->weight;
    ++weighted;
  });
  if (by_weight != total_weight || weighted != node_count) {
    out.add(at + "the weight index disagrees with the table");
  }

  std::size_t tasks = 0;
  const std::error_code ec = tx.for_each<task>(all(), [&](const object_ptr<task>& t) {
    ++tasks;
    if (tx.get<node>(t->node_id) == nullptr) {
      out.add(at + "task " + t->id + " is on node " + t->node_id + ", which does not exist");
    }
    if (t->version > tx.version()) out.add(at + "task " + t->id + " is from a later commit");
  });
  if (ec) out.add(at + "for_each failed: " + ec.message());
  if (tx.count<task>() != tasks) out.add(at + "count<task> disagrees with for_each");

  std::size_t assigned = 0;
  for (const auto& n : *nodes) {
    const auto on_node = tx.find<task>(by_node_id(n->id));
    if (!on_node) return out.add(at + "by_node_id failed");
    for (const auto& t : *on_node) {
      if (t->node_id != n->id) out.add(at + "task " + t->id + " filed under the wrong node");
    }
    assigned += on_node->size();
  }
  if (assigned != tasks) {
    out.add(at + std::to_string(assigned) + " tasks in the node index, " + std::to_string(tasks) +
            " in the table");
  }
}

/// One commit of the writer: moves weight between two nodes, creates a task
/// on a node, sometimes removes a task, and sometimes retires a node (its
/// tasks and weight go to another node, a fresh node takes its place).
std::error_code writer_step(plain_store::write_type& tx, std::uint64_t k, std::mt19937_64& rng,
                            std::vector<std::string>& node_ids,
                            std::vector<std::string>& task_ids) {
  auto pick = [&](std::size_t n) {
    return static_cast<std::size_t>(rng() % n);
  };
  const std::size_t a = pick(node_ids.size());
  const std::size_t b = (a + 1 + pick(node_ids.size() - 1)) % node_ids.size();
  const auto amount = static_cast<std::int64_t>(rng() % 20);

  node from = *tx.get<node>(node_ids[a]);
  from.weight -= amount;
  if (auto ec = tx.update(std::move(from))) return ec;
  node to = *tx.get<node>(node_ids[b]);
  to.weight += amount;
  if (auto ec = tx.update(std::move(to))) return ec;

  const std::string task_id = "task-" + std::to_string(k);
  if (auto ec = tx.create(make_task(task_id, "svc-" + std::to_string(k % 3), k, task_state::running,
                                    node_ids[pick(node_ids.size())]))) {
    return ec;
  }
  task_ids.push_back(task_id);

  if (k % 5 == 0 && !task_ids.empty()) {
    const std::size_t i = pick(task_ids.size());
    if (auto ec = tx.remove<task>(task_ids[i])) return ec;
    task_ids[i] = task_ids.back();
    task_ids.pop_back();
  }

  if (k % 25 == 0) {
    const std::size_t old = pick(node_ids.size());
    const std::size_t heir = (old + 1) % node_ids.size();
    const object_ptr<node> retired = tx.get<node>(node_ids[old]);
    const auto tasks = tx.find<task>(by_node_id(retired->id));
    if (!tasks) return tasks.error();
    for (const auto& t : *tasks) {
      task moved = *t;
      moved.node_id = node_ids[heir];
      if (auto ec = tx.update(std::move(moved))) return ec;
    }
    node inheriting = *tx.get<node>(node_ids[heir]);
    inheriting.weight += retired->weight;
    if (auto ec = tx.update(std::move(inheriting))) return ec;
    if (auto ec = tx.remove<node>(retired->id)) return ec;
    node_ids[old] = "m" + std::to_string(k);
    if (auto ec = tx.create(make_node(node_ids[old], 0))) return ec;
  }
  return {};
}

/// Creates the nodes the writer starts from: weights summing to total_weight.
std::vector<std::string> seed_nodes(plain_store& s) {
  std::vector<std::string> ids;
  for (int i = 0; i < node_count; ++i) ids.push_back("n" + std::to_string(i));
  const std::error_code ec = s.update([&](auto& tx) {
    for (const auto& id : ids) {
      if (auto e = tx.create(make_node(id, total_weight / node_count))) return e;
    }
    return std::error_code{};
  });
  REQUIRE_FALSE(ec);
  return ids;
}

}  // namespace

TEST_CASE("readers always see consistent snapshots while a writer commits") {
  constexpr std::uint64_t commits = 600;
  constexpr int readers = 2;
  const std::uint64_t seed = test_seed(20240611);
  INFO("seed " << seed);

  plain_store s;
  std::vector<std::string> node_ids = seed_nodes(s);

  std::atomic<bool> done{false};
  problems writer_problems;
  std::thread writer([&] {
    std::mt19937_64 rng(seed);
    std::vector<std::string> task_ids;
    for (std::uint64_t k = 1; k <= commits; ++k) {
      auto tx = s.begin_write();
      if (auto ec = writer_step(tx, k, rng, node_ids, task_ids)) {
        writer_problems.add("commit " + std::to_string(k) + " failed: " + ec.message());
        break;  // Dropping tx discards the half-done step.
      }
      s.commit(std::move(tx));
    }
    done = true;
  });

  std::vector<problems> reader_problems(readers);
  std::vector<std::size_t> snapshots(readers, 0);
  std::vector<std::thread> reader_threads;
  for (int r = 0; r < readers; ++r) {
    reader_threads.emplace_back([&, r] {
      std::uint64_t last = 0;
      // At least one snapshot after the writer finished, whatever the schedule.
      for (bool finished = false; !finished;) {
        finished = done.load();
        const auto tx = s.begin_read();
        if (tx.version() < last) {
          reader_problems[r].add("version went back from " + std::to_string(last) + " to " +
                                 std::to_string(tx.version()));
        }
        last = tx.version();
        check_snapshot(tx, reader_problems[r]);
        ++snapshots[r];
      }
      if (last != commits + 1) reader_problems[r].add("last snapshot " + std::to_string(last));
    });
  }

  writer.join();
  for (auto& t : reader_threads) t.join();

  INFO(writer_problems.first());
  CHECK(writer_problems.list.empty());
  for (int r = 0; r < readers; ++r) {
    INFO("reader " << r << " checked " << snapshots[r] << " snapshots; "
                   << reader_problems[r].first());
    CHECK(reader_problems[r].list.empty());
  }
  check_snapshot(s.begin_read(), writer_problems);
  CHECK(writer_problems.list.empty());
}

TEST_CASE("a snapshot holds exactly the commits up to its version, and versions never go back") {
  // Commit v creates object "o<v>", so snapshot v holds o1 .. ov and no more.
  constexpr std::uint64_t commits = 1000;
  plain_store s;

  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t v = 1; v <= commits; ++v) {
      const std::error_code ec =
          s.update([&](auto& tx) { return tx.create(make_node("o" + std::to_string(v), 1)); });
      if (ec) break;
    }
    done = true;
  });

  problems seen;
  std::uint64_t last = 0;
  std::size_t snapshots = 0;
  for (bool finished = false; !finished; ++snapshots) {
    finished = done.load();
    const std::uint64_t store_version = s.version();
    s.view([&](const plain_store::read_type& tx) {
      const std::uint64_t v = tx.version();
      const std::string at = "snapshot " + std::to_string(v) + ": ";
      if (v < last || v < store_version) seen.add(at + "older than one seen before");
      last = v;
      if (tx.count<node>() != v) seen.add(at + std::to_string(tx.count<node>()) + " objects");
      if (v > 0 && tx.get<node>("o" + std::to_string(v)) == nullptr) {
        seen.add(at + "its own commit's object is missing");
      }
      if (tx.get<node>("o" + std::to_string(v + 1)) != nullptr) {
        seen.add(at + "holds the next commit's object");
      }
      std::int64_t sum = 0;
      (void)tx.for_each<node>(all(), [&](const object_ptr<node>& n) { sum += n->weight; });
      if (static_cast<std::uint64_t>(sum) != v) seen.add(at + "iteration disagrees with count");
    });
  }
  writer.join();

  INFO("checked " << snapshots << " snapshots; " << seen.first());
  CHECK(seen.list.empty());
  CHECK(last == commits);
}

TEST_CASE("a snapshot held while a writer commits never changes") {
  constexpr std::uint64_t commits = 400;
  plain_store s;
  const std::vector<std::string> node_ids = seed_nodes(s);
  const auto held = s.begin_read();
  std::map<std::string, std::int64_t> expected;
  const auto held_nodes = held.find<node>(all());
  REQUIRE(held_nodes);
  for (const auto& n : *held_nodes) expected[n->id] = n->weight;

  std::atomic<bool> done{false};
  std::thread writer([&] {
    std::mt19937_64 rng(test_seed(7));
    std::vector<std::string> ids = node_ids;
    std::vector<std::string> task_ids;
    for (std::uint64_t k = 1; k <= commits; ++k) {
      auto tx = s.begin_write();
      if (writer_step(tx, k, rng, ids, task_ids)) break;
      s.commit(std::move(tx));
    }
    done = true;
  });

  problems seen;
  for (bool finished = false; !finished;) {
    finished = done.load();
    std::map<std::string, std::int64_t> now;
    (void)held.for_each<node>(all(), [&](const object_ptr<node>& n) { now[n->id] = n->weight; });
    if (now != expected) seen.add("the held snapshot's nodes changed");
    if (held.count<task>() != 0) seen.add("the held snapshot gained tasks");
    if (held.version() != 1) seen.add("the held snapshot's version changed");
  }
  writer.join();

  INFO(seen.first());
  CHECK(seen.list.empty());
  CHECK(s.version() == commits + 1);
}

TEST_CASE("writers on several threads are serialised and every commit applies once") {
  constexpr int writers = 3;
  constexpr int increments = 200;
  plain_store s;
  REQUIRE_FALSE(s.update([](auto& tx) { return tx.create(make_node("counter", 0)); }));

  std::vector<problems> seen(writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < increments; ++i) {
        // A read-modify-write inside the transaction: the writer lock makes
        // it atomic, so no update may fail with sequence_conflict.
        const std::error_code ec = s.update([](auto& tx) {
          node n = *tx.template get<node>("counter");
          n.weight += 1;
          return tx.update(std::move(n));
        });
        if (ec) seen[w].add("update failed: " + ec.message());
      }
    });
  }
  for (auto& t : threads) t.join();

  for (const auto& p : seen) {
    INFO(p.first());
    CHECK(p.list.empty());
  }
  const auto tx = s.begin_read();
  CHECK(tx.get<node>("counter")->weight == writers * increments);
  CHECK(tx.version() == 1 + writers * increments);
  CHECK(tx.get<node>("counter")->version == tx.version());
}

TEST_CASE("copies of one snapshot may be read on several threads at once") {
  // The documented way to share a snapshot: each thread reads its own copy.
  constexpr int objects = 64;
  constexpr int passes = 500;
  plain_store s;
  REQUIRE_FALSE(s.update([](auto& tx) {
    for (int i = 0; i < objects; ++i) {
      if (auto e = tx.create(make_node("n" + std::to_string(1000 + i), i))) return e;
    }
    return std::error_code{};
  }));

  const plain_store::read_type original = s.begin_read();
  std::vector<problems> seen(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&seen, r, copy = original] {
      for (int pass = 0; pass < passes; ++pass) {
        for (int i = 0; i < objects; ++i) {
          const std::string id = "n" + std::to_string(1000 + (r == 0 ? i : objects - 1 - i));
          const object_ptr<node> n = copy.get<node>(id);
          if (n == nullptr || n->id != id) seen[r].add("get(" + id + ") went wrong");
        }
        if (copy.count<node>() != objects) seen[r].add("count changed");
      }
    });
  }
  // The writer goes on meanwhile; the copies stay at their version.
  REQUIRE_FALSE(s.update([](auto& tx) { return tx.template remove<node>("n1000"); }));
  for (auto& t : threads) t.join();

  for (const auto& p : seen) {
    INFO(p.first());
    CHECK(p.list.empty());
  }
  CHECK(original.get<node>("n1000") != nullptr);
}

TEST_CASE("threads sharing one snapshot read it at the same time", "[shared_snapshot]") {
  // A read_transaction's reads are const; callers hand `const read_type&` to
  // view() functions and from there to worker threads. Two threads reading
  // the same snapshot must each get the objects they ask for. Run in a child
  // process: if the reads interfere, they may corrupt memory and crash, which
  // must fail this test case only.
  constexpr int objects = 64;
  constexpr int passes = 2000;
  const std::string outcome = keel::test::run_isolated([](keel::test::shared_page*) {
    plain_store s;
    const std::error_code created = s.update([](auto& tx) {
      for (int i = 0; i < objects; ++i) {
        if (auto e = tx.create(make_node("n" + std::to_string(1000 + i), i))) return e;
      }
      return std::error_code{};
    });
    if (created) return "setup failed: " + created.message();

    const plain_store::read_type shared = s.begin_read();
    std::vector<problems> seen(2);
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&, r] {
        for (int pass = 0; pass < passes; ++pass) {
          for (int i = 0; i < objects; ++i) {
            // The two threads walk the ids in opposite orders.
            const int j = r == 0 ? i : objects - 1 - i;
            const std::string id = "n" + std::to_string(1000 + j);
            const object_ptr<node> n = shared.get<node>(id);
            if (n == nullptr) {
              seen[r].add("get(" + id + ") found nothing");
            } else if (n->id != id) {
              seen[r].add("get(" + id + ") found " + n->id);
            }
          }
        }
      });
    }
    for (auto& t : threads) t.join();

    std::string verdict;
    for (int r = 0; r < 2; ++r) {
      if (!seen[r].list.empty()) {
        verdict += "reader " + std::to_string(r) + ": " + std::to_string(seen[r].list.size()) +
                   " wrong reads (at most 10 counted), first: " + seen[r].first() + "\n";
      }
    }
    return verdict;
  });
  INFO(outcome);
  CHECK(outcome.empty());
}
