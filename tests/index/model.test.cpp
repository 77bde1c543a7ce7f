// The radix tree against std::map: seeded random sequences of every write and
// every query, with snapshots committed along the way that must still equal
// the model of their moment at the end (STYLE.md "Property tests against a
// model"). Run one seed with KEEL_INDEX_SEED=<n>.
#include <catch2/catch.hpp>

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keel/index/pooled_node_policy.hpp"
#include "keel/index/tree.hpp"
#include "support.hpp"

namespace {

using namespace keel_index_test;

/// The model's answer to lower_bound(key), as an optional key.
std::optional<std::string> model_lower_bound(const model& m, const std::string& key) {
  auto it = m.lower_bound(key);
  if (it == m.end()) return std::nullopt;
  return it->first;
}

std::optional<std::string> model_reverse_lower_bound(const model& m, const std::string& key) {
  auto it = m.upper_bound(key);
  if (it == m.begin()) return std::nullopt;
  return std::prev(it)->first;
}

std::optional<std::string> model_longest_prefix(const model& m, const std::string& key) {
  for (std::size_t len = key.size() + 1; len-- > 0;) {
    if (m.contains(key.substr(0, len))) return key.substr(0, len);
  }
  return std::nullopt;
}

/// Checks every query of t against m for one probe key.
template <class Tree>
void check_queries(const Tree& t, const model& m, const std::string& probe) {
  INFO("probe " << show(probe));
  const auto* found = t.find(probe);
  const auto mit = m.find(probe);
  REQUIRE((found != nullptr) == (mit != m.end()));
  if (found != nullptr) REQUIRE(*found == mit->second);

  const auto lb = t.lower_bound(probe);
  const auto want_lb = model_lower_bound(m, probe);
  REQUIRE((lb != t.end()) == want_lb.has_value());
  if (want_lb) {
    REQUIRE(std::string((*lb).key) == *want_lb);
    // The walk goes on in order from there.
    auto next = std::next(lb);
    auto mnext = std::next(m.find(*want_lb));
    REQUIRE((next == t.end()) == (mnext == m.end()));
    if (mnext != m.end()) REQUIRE(std::string((*next).key) == mnext->first);
  }

  const auto rlb = t.reverse_lower_bound(probe);
  const auto want_rlb = model_reverse_lower_bound(m, probe);
  REQUIRE((rlb != t.rend()) == want_rlb.has_value());
  if (want_rlb) {
    REQUIRE(std::string(rlb->key) == *want_rlb);
    auto next = std::next(rlb);
    auto mit2 = m.find(*want_rlb);
    REQUIRE((next == t.rend()) == (mit2 == m.begin()));
    if (mit2 != m.begin()) REQUIRE(std::string(next->key) == std::prev(mit2)->first);
  }

  const auto lp = t.longest_prefix(probe);
  const auto want_lp = model_longest_prefix(m, probe);
  REQUIRE(lp.has_value() == want_lp.has_value());
  if (want_lp) {
    REQUIRE(lp->first == *want_lp);
    REQUIRE(*lp->second == m.at(*want_lp));
  }

  // seek_prefix: exactly the model's keys with that prefix, in order.
  std::vector<std::string> got;
  for (const auto& e : t.seek_prefix(probe)) got.emplace_back(e.key);
  std::vector<std::string> want;
  for (auto it = m.lower_bound(probe); it != m.end() && it->first.starts_with(probe); ++it) {
    want.push_back(it->first);
  }
  REQUIRE(got == want);
}

struct snapshot_record {
  std::size_t at_op;
  model expected;
};

template <class Policy>
void run_model(key_shape shape, std::uint64_t seed, int ops) {
  using tree_type = keel::index::tree<std::uint64_t, Policy>;
  INFO("key shape " << name_of(shape) << ", seed " << seed << " (KEEL_INDEX_SEED=" << seed
                    << " replays it)");
  key_source keys(shape, seed);
  model m;
  tree_type base;
  auto tx = base.begin_transaction();
  std::vector<std::pair<tree_type, snapshot_record>> snapshots;
  std::uint64_t next_value = 1;

  for (int op = 0; op < ops; ++op) {
    INFO("op " << op);
    const std::size_t roll = keys.pick(100);
    if (roll < 45) {
      const std::string k = keys.next();
      const std::uint64_t v = next_value++;
      const bool added = tx.insert(k, v);
      REQUIRE(added == !m.contains(k));
      m[k] = v;
    } else if (roll < 65) {
      const std::string k = keys.next();
      REQUIRE(tx.erase(k) == (m.erase(k) == 1));
    } else if (roll < 67) {
      std::string p = keys.next();
      p.resize(std::min<std::size_t>(p.size(), keys.pick(4)));
      std::size_t want = 0;
      for (auto it = m.lower_bound(p); it != m.end() && it->first.starts_with(p);) {
        it = m.erase(it);
        ++want;
      }
      REQUIRE(tx.erase_prefix(p) == want);
    } else if (roll < 90) {
      check_queries(tx, m, keys.next());
    } else if (roll < 94) {
      // Commit and keep the snapshot with a copy of the model.
      snapshots.push_back({tx.commit(), {static_cast<std::size_t>(op), m}});
    } else if (roll < 95 && !snapshots.empty()) {
      // Abandon the transaction; go on from an older snapshot.
      const std::size_t i = keys.pick(snapshots.size());
      tx = snapshots[i].first.begin_transaction();
      m = snapshots[i].second.expected;
    } else if (roll < 97) {
      KEEL_REQUIRE_SAME_CONTENTS(tx, m);
    } else {
      // Queries on a committed snapshot too.
      const tree_type t = tx.commit();
      check_queries(t, m, keys.next());
    }
    REQUIRE(tx.size() == m.size());
  }
  KEEL_REQUIRE_SAME_CONTENTS(tx, m);
  for (const auto& [t, record] : snapshots) {
    INFO("snapshot taken at op " << record.at_op);
    KEEL_REQUIRE_SAME_CONTENTS(t, record.expected);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("random writes and queries match std::map, snapshots never change", "",
                   keel::index::default_node_policy, keel::index::pooled_node_policy,
                   counting_policy) {
  for (const key_shape shape :
       {key_shape::small_alphabet, key_shape::long_random, key_shape::stems}) {
    for (const std::uint64_t seed : seeds(40)) run_model<TestType>(shape, seed, 2000);
  }
  if constexpr (std::is_same_v<TestType, counting_policy>) {
    REQUIRE(counting_policy::live_blocks() == 0);
  }
}

TEST_CASE("a large random tree matches std::map after bulk inserts and erases", "") {
  for (const std::uint64_t seed : seeds(2)) {
    INFO("seed " << seed);
    key_source keys(key_shape::long_random, seed);
    keel::index::tree<std::uint64_t> t;
    model m;
    {
      auto tx = t.begin_transaction();
      for (std::uint64_t i = 0; i < 20000; ++i) {
        std::string k = keys.next();
        tx.insert(k, i);
        m[k] = i;
      }
      t = tx.commit();
    }
    const auto before = t;
    const model m_before = m;
    {
      auto tx = t.begin_transaction();
      for (auto it = m.begin(); it != m.end();) {
        if (keys.pick(2) == 0) {
          REQUIRE(tx.erase(it->first));
          it = m.erase(it);
        } else {
          ++it;
        }
      }
      t = tx.commit();
    }
    KEEL_REQUIRE_SAME_CONTENTS(t, m);
    KEEL_REQUIRE_SAME_CONTENTS(before, m_before);
    for (int i = 0; i < 2000; ++i) check_queries(t, m, keys.next());
  }
}
