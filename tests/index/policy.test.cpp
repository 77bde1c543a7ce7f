// Node policies: the shipped ones model the concept, one missing a member
// does not, a user's policy plugs in, and the pooled policy recycles blocks
// across threads (STYLE.md "Policies").
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "keel/index/node_policy.hpp"
#include "keel/index/pooled_node_policy.hpp"
#include "keel/index/tree.hpp"
#include "support.hpp"

namespace {

struct without_deallocate {
  static void* allocate(std::size_t, std::size_t) { return nullptr; }
};

struct throwing_deallocate {
  static void* allocate(std::size_t size, std::size_t) { return ::operator new(size); }
  static void deallocate(void* p, std::size_t, std::size_t) {
    ::operator delete(p);
  }  // Not noexcept.
};

struct allocate_returns_int {
  static int allocate(std::size_t, std::size_t) { return 0; }
  static void deallocate(void*, std::size_t, std::size_t) noexcept {}
};

}  // namespace

TEST_CASE("the shipped node policies model node_policy and broken ones do not", "") {
  STATIC_REQUIRE(keel::index::node_policy<keel::index::default_node_policy>);
  STATIC_REQUIRE(keel::index::node_policy<keel::index::pooled_node_policy>);
  STATIC_REQUIRE(keel::index::node_policy<keel_index_test::counting_policy>);
  STATIC_REQUIRE_FALSE(keel::index::node_policy<without_deallocate>);
  STATIC_REQUIRE_FALSE(keel::index::node_policy<throwing_deallocate>);
  STATIC_REQUIRE_FALSE(keel::index::node_policy<allocate_returns_int>);
}

TEST_CASE("the pooled policy is off under AddressSanitizer or KEEL_DISABLE_FREE_LIST", "") {
#if defined(__SANITIZE_ADDRESS__) || defined(KEEL_DISABLE_FREE_LIST)
  STATIC_REQUIRE_FALSE(keel::index::pooled_node_policy::enabled);
#else
  STATIC_REQUIRE(keel::index::pooled_node_policy::enabled);
#endif
}

TEST_CASE("pooled blocks are reused, and freed on other threads than their own", "") {
  using pool = keel::index::pooled_node_policy;
  // Blocks of every small size class, filled and checked so overlaps show.
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (int round = 0; round < 3; ++round) {
    for (std::size_t size = 1; size <= 300; size += 7) {
      for (int i = 0; i < 50; ++i) {
        void* p = pool::allocate(size, 8);
        std::memset(p, static_cast<int>(size & 0xff), size);
        blocks.emplace_back(p, size);
      }
    }
    for (const auto& [p, size] : blocks) {
      const auto* bytes = static_cast<const unsigned char*>(p);
      REQUIRE(bytes[0] == (size & 0xff));
      REQUIRE(bytes[size - 1] == (size & 0xff));
    }
    // Free them all on another thread; this thread allocates again next round.
    std::thread([&blocks] {
      for (const auto& [p, size] : blocks) pool::deallocate(p, size, 8);
    }).join();
    blocks.clear();
  }
}

TEST_CASE("trees on the pooled policy are used and released from many threads", "") {
  using tree_type = keel::index::tree<std::string, keel::index::pooled_node_policy>;
  tree_type t;
  {
    auto tx = t.begin_transaction();
    for (int i = 0; i < 3000; ++i) tx.insert("key" + std::to_string(i), std::to_string(i));
    t = tx.commit();
  }
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> bad_walks{0};
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([t, w, &bad_walks]() mutable {
      auto tx = t.begin_transaction();
      for (int i = 0; i < 1000; ++i) tx.insert("key" + std::to_string(i * 4 + w), "new");
      tx.erase_prefix("key1");
      t = tx.commit();
      std::size_t n = 0;
      for (const auto& e : t) n += e.value.empty() ? 0 : 1;
      if (n != t.size()) bad_walks.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(bad_walks.load() == 0);
  REQUIRE(*t.find("key5") == "5");
}
