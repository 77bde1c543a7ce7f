// Readers walk snapshots while a writer commits new versions: each snapshot
// a reader holds is internally consistent (every commit is seen whole or not
// at all) and never changes, readers never wait for the writer beyond
// copying a root under a short lock, and nodes freed on reader threads are
// exactly the unshared ones. Meant to run under ThreadSanitizer as well.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "keel/index/pooled_node_policy.hpp"
#include "keel/index/tree.hpp"
#include "support.hpp"

namespace {

using namespace keel_index_test;

constexpr std::size_t batch = 40;
const std::string generation_key = "\xff\xff generation";

/// The latest committed version, copied out under a mutex that is held only
/// for the copy (one atomic increment), never during a walk.
template <class Tree>
class published {
 public:
  Tree load() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return current_;
  }
  void store(Tree t) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      current_.swap(t);
    }
    // The old version is released here, outside the lock.
  }

 private:
  mutable std::mutex mutex_;
  Tree current_;
};

/// What a reader checks in one snapshot; returns a description of the first
/// inconsistency, or an empty string.
template <class Tree>
std::string check_snapshot(const Tree& t) {
  const auto* gen = t.find(generation_key);
  if (gen == nullptr) return t.empty() ? "" : "no generation key";
  const std::uint64_t g = *gen;
  std::size_t count = 0;
  std::size_t at_g = 0;
  std::string previous;
  bool first = true;
  for (const auto& [key, value] : t) {
    if (!first && !(previous < key)) return "keys out of order";
    first = false;
    previous.assign(key);
    if (value > g) return "a value from a later generation";
    if (value == g && key != generation_key) ++at_g;
    ++count;
  }
  if (count != t.size()) return "walk count differs from size()";
  if (at_g != batch) return "a commit seen in part: " + std::to_string(at_g) + " keys";
  std::size_t backwards = 0;
  for (auto it = t.rbegin(); it != t.rend(); ++it) ++backwards;
  if (backwards != count) return "reverse walk count differs";
  return {};
}

}  // namespace

TEMPLATE_TEST_CASE("readers walk consistent snapshots while a writer commits", "",
                   keel::index::default_node_policy, keel::index::pooled_node_policy) {
  using tree_type = keel::index::tree<std::uint64_t, TestType>;
  published<tree_type> root;
  std::atomic<bool> done{false};
  constexpr int generations = 150;

  std::vector<std::thread> readers;
  std::vector<std::string> failures(3);
  std::vector<std::size_t> walks(3, 0);
  for (std::size_t r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      tree_type held;  // A snapshot kept across writer commits.
      std::size_t held_size = 0;
      while (!done.load(std::memory_order_acquire)) {
        const tree_type t = root.load();
        if (std::string why = check_snapshot(t); !why.empty()) {
          failures[r] = why;
          return;
        }
        ++walks[r];
        if (walks[r] % 5 == 0) {
          if (held.size() != held_size || !check_snapshot(held).empty()) {
            failures[r] = "a held snapshot changed";
            return;
          }
          held = t;
          held_size = t.size();
        }
      }
    });
  }

  key_source keys(key_shape::long_random, 17);
  tree_type current;
  for (std::uint64_t g = 1; g <= generations; ++g) {
    auto tx = current.begin_transaction();
    std::set<std::string> written;
    while (written.size() < batch) written.insert(keys.next() + "/k");
    for (const auto& k : written) tx.insert(k, g);
    // Erase some older keys too, so readers free nodes.
    for (int i = 0; i < 15; ++i) {
      auto it = tx.lower_bound(keys.next());
      if (it != tx.end() && it->key != generation_key && it->value != g) {
        const std::string victim(it->key);
        tx.erase(victim);
      }
    }
    tx.insert(generation_key, g);
    current = tx.commit();
    root.store(current);
  }
  done.store(true, std::memory_order_release);
  for (auto& t : readers) t.join();
  for (std::size_t r = 0; r < failures.size(); ++r) {
    INFO("reader " << r << " after " << walks[r] << " walks");
    REQUIRE(failures[r].empty());
  }
  REQUIRE(check_snapshot(root.load()).empty());
}

TEMPLATE_TEST_CASE("snapshots released on other threads free their nodes exactly once", "",
                   keel::index::default_node_policy, keel::index::pooled_node_policy) {
  using tree_type = keel::index::tree<std::uint64_t, TestType>;
  key_source keys(key_shape::stems, 23);
  std::vector<tree_type> versions;
  tree_type t;
  for (int v = 0; v < 64; ++v) {
    auto tx = t.begin_transaction();
    for (int i = 0; i < 30; ++i) tx.insert(keys.next(), static_cast<std::uint64_t>(v));
    if (v % 3 == 0) tx.erase_prefix(keys.next().substr(0, 3));
    t = tx.commit();
    versions.push_back(t);
  }
  // Four threads each drop a quarter of the versions while they share nodes.
  std::vector<std::vector<tree_type>> parts(4);
  for (std::size_t i = 0; i < versions.size(); ++i) parts[i % 4].push_back(versions[i]);
  versions.clear();
  std::vector<std::thread> droppers;
  droppers.reserve(parts.size());
  for (auto& part : parts) {
    droppers.emplace_back([mine = std::move(part)]() mutable {
      while (!mine.empty()) mine.pop_back();
    });
  }
  for (auto& d : droppers) d.join();
  REQUIRE(t.size() > 0);
  std::size_t n = 0;
  for (auto it = t.begin(); it != t.end(); ++it) ++n;
  REQUIRE(n == t.size());
}
