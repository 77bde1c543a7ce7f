// The radix tree's shape: nodes grow and shrink across the 4/16/48/256
// boundaries, collapse when one entry is left, compress paths, and deep or
// odd keys ('\0', 0xff, the empty key, keys that prefix others) behave.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "keel/index/detail/inspect.hpp"
#include "keel/index/tree.hpp"
#include "support.hpp"

namespace {

using namespace keel_index_test;
using keel::index::detail::census;
using keel::index::detail::tree_access;
using tree_type = keel::index::tree<std::uint64_t, counting_policy>;

keel::index::detail::node_census shape_of(const tree_type::transaction& tx) {
  return census<std::uint64_t>(tree_access::root(tx));
}

/// The kind of the one inner node of a tree whose keys are "p" + one byte.
std::string root_kind(const tree_type::transaction& tx) {
  const auto c = shape_of(tx);
  if (c.inner() != 1) return "inner nodes: " + std::to_string(c.inner());
  if (c.node4 == 1) return "node4";
  if (c.node8 == 1) return "node8";
  if (c.node16 == 1) return "node16";
  if (c.node32 == 1) return "node32";
  return "node256";
}

std::string expected_growing(int n) {
  if (n <= 4) return "node4";
  if (n <= 8) return "node8";
  if (n <= 16) return "node16";
  if (n <= 32) return "node32";
  return "node256";
}

std::string key_of(int b) { return std::string("p") + static_cast<char>(b); }

}  // namespace

TEST_CASE("nodes grow through 4, 8, 16, 32 and 256 children and shrink with hysteresis", "") {
  {
    tree_type t;
    auto tx = t.begin_transaction();
    model m;
    std::vector<std::pair<tree_type, model>> snapshots;
    // Bytes in a scrambled order, so sorted inserts into node4/16 get exercised.
    std::vector<int> order;
    order.reserve(256);
    for (int i = 0; i < 256; ++i) order.push_back((i * 167 + 13) % 256);
    for (int i = 0; i < 256; ++i) {
      tx.insert(key_of(order[i]), static_cast<std::uint64_t>(i));
      m[key_of(order[i])] = static_cast<std::uint64_t>(i);
      if (i >= 1) {
        INFO("after " << i + 1 << " children");
        REQUIRE(root_kind(tx) == expected_growing(i + 1));
      }
      snapshots.emplace_back(tx.commit(), m);
    }
    KEEL_REQUIRE_SAME_CONTENTS(tx, m);
    // Shrinking: 256 stays down to 29 children, 32 to 14, 16 to 7, 8 to 4.
    for (int i = 255; i >= 1; --i) {
      REQUIRE(tx.erase(key_of(order[i])));
      m.erase(key_of(order[i]));
      const int n = i;
      INFO("down to " << n << " children");
      if (n == 1) {
        REQUIRE(shape_of(tx).inner() == 0);  // One key: a lone leaf.
      } else {
        const std::string want = n > 28   ? "node256"
                                 : n > 13 ? "node32"
                                 : n > 6  ? "node16"
                                 : n > 3  ? "node8"
                                          : "node4";
        REQUIRE(root_kind(tx) == want);
      }
      if (n % 7 == 0) KEEL_REQUIRE_SAME_CONTENTS(tx, m);
    }
    for (std::size_t i = 0; i < snapshots.size(); ++i) {
      INFO("snapshot " << i);
      KEEL_REQUIRE_SAME_CONTENTS(snapshots[i].first, snapshots[i].second);
    }
  }
  REQUIRE(counting_policy::live_blocks() == 0);
}

TEST_CASE("a node left with one child merges into it and keeps the path compressed", "") {
  tree_type t;
  auto tx = t.begin_transaction();
  tx.insert("abcdef", 1);
  tx.insert("abcxyz", 2);
  tx.insert("abq", 3);
  // root: "ab" -> {c: "c" node {d: leaf, x: leaf}, q: leaf}
  REQUIRE(shape_of(tx).inner() == 2);
  REQUIRE(tx.erase("abq"));
  // The root's only child absorbed it: one node with prefix "abc".
  const auto c = shape_of(tx);
  REQUIRE(c.inner() == 1);
  REQUIRE(c.leaves == 2);
  REQUIRE(*tx.find("abcdef") == 1);
  REQUIRE(*tx.find("abcxyz") == 2);
  REQUIRE(tx.find("abq") == nullptr);
  REQUIRE(keel::index::detail::check_invariants<std::uint64_t>(tree_access::root(tx)).empty());
  REQUIRE(tx.erase("abcdef"));
  REQUIRE(shape_of(tx).inner() == 0);
  REQUIRE(tx.erase("abcxyz"));
  REQUIRE(tx.empty());
  REQUIRE(tx.begin() == tx.end());
}

TEST_CASE("keys that are prefixes of each other are all stored, '\\0' and 0xff included", "") {
  tree_type t;
  auto tx = t.begin_transaction();
  const std::vector<std::string> keys = {std::string(),
                                         std::string("\0", 1),
                                         std::string("\0\0", 2),
                                         "a",
                                         std::string("a\0", 2),
                                         "ab",
                                         "abc",
                                         std::string("\xff"),
                                         std::string("\xff\xff"),
                                         std::string("a\xff"),
                                         std::string("a\0b", 3)};
  model m;
  std::uint64_t v = 1;
  for (const auto& k : keys) {
    REQUIRE(tx.insert(k, v));
    m[k] = v++;
  }
  KEEL_REQUIRE_SAME_CONTENTS(tx, m);
  for (const auto& k : keys) REQUIRE(*tx.find(k) == m[k]);
  REQUIRE(tx.find(std::string("\0\0\0", 3)) == nullptr);
  REQUIRE(tx.longest_prefix(std::string("a\0bc", 4))->first == std::string("a\0b", 3));
  REQUIRE(tx.longest_prefix("zzz")->first.empty());  // The empty key prefixes everything.
  // Erase them in an order that dismantles the chain from the middle.
  for (const auto* k : {"ab", "a", ""}) {
    REQUIRE(tx.erase(k));
    m.erase(k);
    KEEL_REQUIRE_SAME_CONTENTS(tx, m);
  }
  REQUIRE_FALSE(tx.longest_prefix("zzz").has_value());
}

TEST_CASE("a chain of 8000 nested prefix keys is built, walked and freed", "") {
  {
    tree_type t;
    auto tx = t.begin_transaction();
    std::string k;
    for (int i = 0; i < 8000; ++i) {
      k.push_back(static_cast<char>('a' + i % 3));
      tx.insert(k, static_cast<std::uint64_t>(i));
    }
    REQUIRE(shape_of(tx).max_depth >= 7999);
    std::size_t n = 0;
    std::size_t last_size = 0;
    for (const auto& e : tx) {
      REQUIRE(e.key.size() == last_size + 1);
      REQUIRE(e.key == std::string_view(k).substr(0, e.key.size()));
      last_size = e.key.size();
      ++n;
    }
    REQUIRE(n == 8000);
    t = tx.commit();
    REQUIRE(t.rbegin()->key.size() == 8000);
  }  // Both release here, iteratively: 8000 levels.
  REQUIRE(counting_policy::live_blocks() == 0);
}

TEST_CASE("long keys keep their whole prefix in one node and split where they differ", "") {
  tree_type t;
  auto tx = t.begin_transaction();
  const std::string stem(1000, 's');
  tx.insert(stem + "a", 1);
  tx.insert(stem + "b", 2);
  auto c = shape_of(tx);
  REQUIRE(c.inner() == 1);
  REQUIRE(c.bytes < 2 * 1000 + 64 + 1000 + 200);  // Two leaves and one node with the stem.
  tx.insert(stem.substr(0, 500), 3);              // Splits the prefix in the middle.
  c = shape_of(tx);
  REQUIRE(c.inner() == 2);
  REQUIRE(*tx.find(stem + "a") == 1);
  REQUIRE(*tx.find(stem.substr(0, 500)) == 3);
  REQUIRE(tx.find(stem.substr(0, 501)) == nullptr);
  REQUIRE(tx.lower_bound(stem.substr(0, 501))->key == stem + "a");
  REQUIRE(tx.erase(stem.substr(0, 500)));
  REQUIRE(shape_of(tx).inner() == 1);  // Merged back.
}
