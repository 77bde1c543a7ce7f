// Write transactions: snapshots stay as they were, a shared node is copied
// at most once per transaction and what the transaction made is edited in
// place, misses copy nothing, commit is cheap and the transaction goes on,
// aborting leaves no trace and no memory, and changed_keys lists each
// changed key once, sorted.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "keel/index/detail/inspect.hpp"
#include "keel/index/tree.hpp"
#include "support.hpp"

namespace {

using namespace keel_index_test;
using tree_type = keel::index::tree<std::uint64_t, counting_policy>;

tree_type random_tree(std::size_t n, std::uint64_t seed, model* m = nullptr) {
  key_source keys(key_shape::long_random, seed);
  tree_type t;
  auto tx = t.begin_transaction();
  for (std::size_t i = 0; i < n; ++i) {
    const std::string k = keys.next() + "#";
    tx.insert(k, i);
    if (m != nullptr) (*m)[k] = i;
  }
  return tx.commit();
}

/// Blocks a write to key copies: one per inner node on its path, and one
/// more per node256 (the child_block under the key's byte).
std::size_t copies_on_path(const tree_type& t, std::string_view key) {
  auto c = keel::index::detail::tree_access::root(t);
  std::size_t copies = 0;
  std::size_t consumed = 0;
  while (c && !c.is_leaf()) {
    const auto* n = c.inner();
    ++copies;
    consumed += n->prefix_size;
    if (consumed == key.size()) break;
    if (n->kind == keel::index::detail::node_kind::node256) ++copies;
    c = keel::index::detail::find_child(n, static_cast<std::uint8_t>(key[consumed]));
    ++consumed;
  }
  return copies;
}

}  // namespace

TEST_CASE("a transaction copies each shared node once and then edits its copy in place", "") {
  {
    model m;
    const tree_type t = random_tree(5000, 7, &m);
    const std::string key = m.begin()->first;
    const std::size_t copies = copies_on_path(t, key);
    REQUIRE(copies >= 2);

    auto tx = t.begin_transaction();
    const auto before = counting_policy::allocations.load();
    tx.insert(key, 42);  // Copies the path and makes a new leaf.
    const auto after_first = counting_policy::allocations.load();
    REQUIRE(after_first - before == static_cast<std::int64_t>(copies) + 1);
    for (std::uint64_t i = 0; i < 1000; ++i) tx.insert(key, i);  // All in place.
    REQUIRE(counting_policy::allocations.load() == after_first);
    REQUIRE(*tx.find(key) == 999);
    REQUIRE(*t.find(key) == m[key]);  // The snapshot is untouched.

    // A second key under the same nodes: only its leaf (and no copy).
    auto sibling = std::next(m.begin())->first;
    const auto before_sibling = counting_policy::allocations.load();
    tx.insert(sibling, 5);
    REQUIRE(counting_policy::allocations.load() - before_sibling <=
            static_cast<std::int64_t>(copies_on_path(t, sibling)) + 1);
    KEEL_REQUIRE_SAME_CONTENTS(t, m);
  }
  REQUIRE(counting_policy::live_blocks() == 0);
}

TEST_CASE("a large transaction keeps every node it made writable, with no bound", "") {
  {
    tree_type t;
    auto tx = t.begin_transaction();
    key_source keys(key_shape::long_random, 3);
    std::size_t n = 0;
    for (std::size_t i = 0; i < 30000; ++i) n += tx.insert(keys.next(), i) ? 1 : 0;
    // Live memory is exactly the tree: nothing was copied and left behind,
    // however many nodes the transaction made (go-immutable-radix tracks
    // 8192 at most and copies again beyond).
    const auto c =
        keel::index::detail::census<std::uint64_t>(keel::index::detail::tree_access::root(tx));
    REQUIRE(c.leaves == n);
    REQUIRE(counting_policy::live_bytes.load() == static_cast<std::int64_t>(c.bytes));
    REQUIRE(counting_policy::live_blocks() ==
            static_cast<std::int64_t>(c.leaves + c.inner() + c.blocks));
  }
  REQUIRE(counting_policy::live_blocks() == 0);
}

TEST_CASE("erasing a missing key or prefix copies nothing", "") {
  const tree_type t = random_tree(2000, 11);
  auto tx = t.begin_transaction();
  const auto before = counting_policy::allocations.load();
  REQUIRE_FALSE(tx.erase("no such key"));
  REQUIRE(tx.erase_prefix("no such prefix") == 0);
  REQUIRE(counting_policy::allocations.load() == before);
  REQUIRE(same_version(tx.commit(), t));  // Found by ADL.
}

TEST_CASE("commit is a snapshot and the transaction goes on without changing it", "") {
  tree_type t;
  auto tx = t.begin_transaction();
  tx.insert("a", 1);
  tx.insert("b", 2);
  const tree_type first = tx.commit();
  tx.insert("a", 10);
  tx.erase("b");
  tx.insert("c", 3);
  const tree_type second = tx.commit();
  REQUIRE(first.size() == 2);
  REQUIRE(*first.find("a") == 1);
  REQUIRE(*first.find("b") == 2);
  REQUIRE(first.find("c") == nullptr);
  REQUIRE(second.size() == 2);
  REQUIRE(*second.find("a") == 10);
  REQUIRE(second.find("b") == nullptr);
  REQUIRE(t.empty());
}

TEST_CASE("dropping a transaction aborts it and frees what it made", "") {
  {
    model m;
    const tree_type t = random_tree(3000, 5, &m);
    const auto live = counting_policy::live_blocks();
    {
      auto tx = t.begin_transaction();
      for (int i = 0; i < 500; ++i) tx.insert("new" + std::to_string(i), 1);
      tx.erase_prefix("");
      REQUIRE(tx.empty());
    }
    REQUIRE(counting_policy::live_blocks() == live);
    KEEL_REQUIRE_SAME_CONTENTS(t, m);
  }
  REQUIRE(counting_policy::live_blocks() == 0);
}

TEST_CASE("releasing snapshots in any order frees exactly the unshared nodes", "") {
  {
    std::vector<tree_type> versions;
    std::vector<model> models;
    key_source keys(key_shape::stems, 9);
    tree_type t;
    model m;
    for (int v = 0; v < 40; ++v) {
      auto tx = t.begin_transaction();
      for (int i = 0; i < 50; ++i) {
        const std::string k = keys.next();
        if (keys.pick(3) == 0) {
          tx.erase(k);
          m.erase(k);
        } else {
          tx.insert(k, static_cast<std::uint64_t>(v));
          m[k] = static_cast<std::uint64_t>(v);
        }
      }
      t = tx.commit();
      versions.push_back(t);
      models.push_back(m);
    }
    t = tree_type{};
    // Drop every other version, then check the rest, then drop the rest.
    for (std::size_t i = 0; i < versions.size(); i += 2) versions[i] = tree_type{};
    for (std::size_t i = 1; i < versions.size(); i += 2) {
      INFO("version " << i);
      KEEL_REQUIRE_SAME_CONTENTS(versions[i], models[i]);
    }
  }
  REQUIRE(counting_policy::live_blocks() == 0);
}

TEST_CASE("changed_keys lists each inserted, replaced or erased key once, sorted", "") {
  tree_type t;
  {
    auto tx = t.begin_transaction();
    tx.insert("keep", 0);
    tx.insert("p/1", 0);
    tx.insert("p/2", 0);
    t = tx.commit();
  }
  auto tx = t.begin_transaction();
  tx.insert("untracked", 1);
  tx.track_changes(true);
  tx.insert("z", 1);
  tx.insert("a", 1);
  tx.insert("z", 2);    // Replaced: still once.
  tx.erase("missing");  // A miss changes nothing.
  tx.erase("keep");
  REQUIRE(tx.erase_prefix("p/") == 2);
  tx.insert(std::string("\0", 1), 1);
  const std::vector<std::string> want = {std::string("\0", 1), "a", "keep", "p/1", "p/2", "z"};
  REQUIRE(tx.changed_keys() == want);
  (void)tx.commit();  // Kept across commit.
  REQUIRE(tx.changed_keys() == want);
  tx.track_changes(false);
  tx.insert("later", 1);
  REQUIRE(tx.changed_keys() == want);
}

TEST_CASE("changed_keys stays small when one key changes many times", "") {
  tree_type t;
  auto tx = t.begin_transaction();
  tx.track_changes(true);
  for (std::uint64_t i = 0; i < 100000; ++i) tx.insert("hot", i);
  REQUIRE(tx.changed_keys() == std::vector<std::string>{"hot"});
}

TEST_CASE("a transaction can be moved and can start from the empty tree", "") {
  keel::index::transaction<std::uint64_t, counting_policy> tx;
  tx.insert("x", 1);
  auto moved = std::move(tx);
  REQUIRE(*moved.find("x") == 1);
  keel::index::transaction<std::uint64_t, counting_policy> other;
  other = std::move(moved);
  const tree_type t = other.commit();
  REQUIRE(t.size() == 1);
}

TEST_CASE("values are copied only when a shared leaf must move", "") {
  // A value that counts its copies; not assignable, so replacing one makes a leaf.
  struct counted_value {
    int id;
    std::shared_ptr<int> copies;
    counted_value(int i, std::shared_ptr<int> c) : id(i), copies(std::move(c)) {}
    counted_value(const counted_value& o) : id(o.id), copies(o.copies) { ++*copies; }
    counted_value(counted_value&&) noexcept = default;
    counted_value& operator=(const counted_value&) = delete;
  };
  auto copies = std::make_shared<int>(0);
  keel::index::tree<counted_value> t;
  auto tx = t.begin_transaction();
  tx.insert("abc", counted_value(1, copies));
  tx.insert("abd", counted_value(2, copies));  // Splits beside "abc": moved, not copied.
  tx.insert("abc", counted_value(3, copies));  // Not assignable: a new leaf.
  REQUIRE(*copies == 0);
  const auto snapshot = tx.commit();
  tx.insert("ab", counted_value(4, copies));  // New own leaf of the "ab" node: nothing moves.
  REQUIRE(*copies == 0);
  tx.insert("abcx", counted_value(5, copies));  // Splits beside the shared "abc": one copy.
  REQUIRE(*copies == 1);
  REQUIRE(tx.find("abc")->id == 3);
  REQUIRE(snapshot.find("abc")->id == 3);
  REQUIRE(snapshot.size() == 2);
}
