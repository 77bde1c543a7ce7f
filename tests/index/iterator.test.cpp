// Iterators: their concepts, both directions from anywhere, the bounds and
// prefix ranges at the edges (empty tree, empty key, no match, one match).
#include <catch2/catch.hpp>

#include <cstdint>
#include <iterator>
#include <ranges>
#include <string>
#include <vector>

#include "keel/index/tree.hpp"

namespace {

using tree_type = keel::index::tree<int>;

tree_type make(std::initializer_list<const char*> keys) {
  tree_type t;
  auto tx = t.begin_transaction();
  int v = 0;
  for (const char* k : keys) tx.insert(k, v++);
  return tx.commit();
}

template <class It>
std::vector<std::string> keys_from(It first, It last) {
  std::vector<std::string> out;
  for (; first != last; ++first) out.emplace_back((*first).key);
  return out;
}

}  // namespace

TEST_CASE("iterators are bidirectional iterators and ranges are ranges", "") {
  STATIC_REQUIRE(std::bidirectional_iterator<tree_type::iterator>);
  STATIC_REQUIRE(std::bidirectional_iterator<tree_type::reverse_iterator>);
  STATIC_REQUIRE(std::ranges::range<tree_type::range>);
  STATIC_REQUIRE(std::ranges::range<const tree_type&>);
  STATIC_REQUIRE(std::ranges::range<const tree_type::transaction&>);
}

TEST_CASE("an empty tree has nothing to iterate, bound or seek", "") {
  const tree_type t;
  REQUIRE(t.begin() == t.end());
  REQUIRE(t.rbegin() == t.rend());
  REQUIRE(t.lower_bound("") == t.end());
  REQUIRE(t.reverse_lower_bound("zzz") == t.rend());
  REQUIRE(t.seek_prefix("").empty());
  REQUIRE_FALSE(t.longest_prefix("abc").has_value());
  REQUIRE(t.find("") == nullptr);
}

TEST_CASE("entries bind to structured bindings and values outlive the iterator", "") {
  const tree_type t = make({"b", "a", "c"});
  std::vector<std::string> keys;
  int sum = 0;
  for (const auto& [key, value] : t) {
    keys.emplace_back(key);
    sum += value;
  }
  REQUIRE(keys == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(sum == 3);
  const int* first = &t.begin()->value;
  REQUIRE(*first == 1);  // "a" was inserted second.
  REQUIRE(first == t.find("a"));
}

TEST_CASE("decrementing end gives the last key and incrementing rend the first", "") {
  const tree_type t = make({"a", "ab", "b", "ba"});
  auto it = t.end();
  --it;
  REQUIRE(it->key == "ba");
  --it;
  REQUIRE(it->key == "b");
  --it;
  --it;
  REQUIRE(it->key == "a");
  REQUIRE(it == t.begin());
  auto rit = t.rend();
  --rit;
  REQUIRE(rit->key == "a");
  ++it;
  --it;
  REQUIRE(it->key == "a");
}

TEST_CASE("lower_bound and reverse_lower_bound find neighbours inside compressed paths", "") {
  const tree_type t = make({"apple", "applesauce", "apply", "banana", "band"});
  REQUIRE(t.lower_bound("")->key == "apple");
  REQUIRE(t.lower_bound("app")->key == "apple");
  REQUIRE(t.lower_bound("apple")->key == "apple");
  REQUIRE(t.lower_bound("applea")->key == "applesauce");
  REQUIRE(t.lower_bound("applez")->key == "apply");
  REQUIRE(t.lower_bound("bana")->key == "banana");
  REQUIRE(t.lower_bound("banb")->key == "band");
  REQUIRE(t.lower_bound("bane") == t.end());
  REQUIRE(keys_from(t.lower_bound("apples"), t.end()) ==
          std::vector<std::string>{"applesauce", "apply", "banana", "band"});

  REQUIRE(t.reverse_lower_bound("") == t.rend());
  REQUIRE(t.reverse_lower_bound("apple")->key == "apple");
  REQUIRE(t.reverse_lower_bound("applea")->key == "apple");
  REQUIRE(t.reverse_lower_bound("applesauce0")->key == "applesauce");
  REQUIRE(t.reverse_lower_bound("b")->key == "apply");
  REQUIRE(t.reverse_lower_bound("zzz")->key == "band");
  REQUIRE(keys_from(t.reverse_lower_bound("banana"), t.rend()) ==
          std::vector<std::string>{"banana", "apply", "applesauce", "apple"});
}

TEST_CASE("seek_prefix covers exactly the keys with the prefix, even mid-path", "") {
  const tree_type t = make({"apple", "applesauce", "apply", "banana", "band", "c"});
  auto keys = [&](const char* p) {
    const auto r = t.seek_prefix(p);
    return keys_from(r.begin(), r.end());
  };
  REQUIRE(keys("appl") == std::vector<std::string>{"apple", "applesauce", "apply"});
  REQUIRE(keys("apple") == std::vector<std::string>{"apple", "applesauce"});
  REQUIRE(keys("applesauce") == std::vector<std::string>{"applesauce"});
  REQUIRE(keys("applesauces").empty());
  REQUIRE(keys("ban") == std::vector<std::string>{"banana", "band"});
  REQUIRE(keys("c") == std::vector<std::string>{"c"});
  REQUIRE(keys("d").empty());
  REQUIRE(keys("").size() == 6);
  // A range's end steps back to its own last key.
  auto last = t.seek_prefix("app").end();
  --last;
  REQUIRE(last->key == "apply");
}

TEST_CASE("a transaction iterates its uncommitted state", "") {
  tree_type t = make({"a", "b"});
  auto tx = t.begin_transaction();
  tx.insert("c", 9);
  tx.erase("a");
  REQUIRE(keys_from(tx.begin(), tx.end()) == std::vector<std::string>{"b", "c"});
  REQUIRE(keys_from(tx.rbegin(), tx.rend()) == std::vector<std::string>{"c", "b"});
  REQUIRE(keys_from(t.begin(), t.end()) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("wide nodes iterate in byte order both ways", "") {
  tree_type t;
  auto tx = t.begin_transaction();
  std::vector<std::string> want;
  for (int b = 0; b < 256; b += 3) {
    const std::string k(1, static_cast<char>(b));
    tx.insert(k, b);
    tx.insert(k + "x", b);
    want.push_back(k);
    want.push_back(k + "x");
  }
  REQUIRE(keys_from(tx.begin(), tx.end()) == want);
  std::vector<std::string> reversed(want.rbegin(), want.rend());
  REQUIRE(keys_from(tx.rbegin(), tx.rend()) == reversed);
  REQUIRE(tx.lower_bound(std::string(1, '\x80'))->key == std::string(1, '\x81'));
  REQUIRE(tx.reverse_lower_bound(std::string(1, '\x80'))->key == std::string("\x7e"
                                                                             "x"));
}
