// Shared helpers of the index tests: a node policy that counts, key
// generators for the property tests, and comparison against a std::map model.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "keel/index/detail/inspect.hpp"
#include "keel/index/node_policy.hpp"
#include "keel/index/pooled_node_policy.hpp"
#include "keel/index/tree.hpp"

namespace keel_index_test {

/// operator new/delete, counting blocks and bytes (process-wide).
struct counting_policy {
  static inline std::atomic<std::int64_t> allocations{0};
  static inline std::atomic<std::int64_t> deallocations{0};
  static inline std::atomic<std::int64_t> live_bytes{0};

  static void* allocate(std::size_t size, std::size_t align) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    live_bytes.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    return keel::index::default_node_policy::allocate(size, align);
  }
  static void deallocate(void* block, std::size_t size, std::size_t align) noexcept {
    deallocations.fetch_add(1, std::memory_order_relaxed);
    live_bytes.fetch_sub(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    keel::index::default_node_policy::deallocate(block, size, align);
  }
  static std::int64_t live_blocks() { return allocations.load() - deallocations.load(); }
};

using model = std::map<std::string, std::uint64_t>;

/// The seeds a property test runs: 1..count, or only $KEEL_INDEX_SEED.
inline std::vector<std::uint64_t> seeds(std::uint64_t count) {
  std::vector<std::uint64_t> out;
  if (const char* env = std::getenv("KEEL_INDEX_SEED")) {
    out.push_back(std::strtoull(env, nullptr, 10));
    return out;
  }
  for (std::uint64_t s = 1; s <= count; ++s) out.push_back(s);
  return out;
}

/// Key shapes for the property tests.
enum class key_shape {
  /// Bytes from {'a', 'b', '\0', '\xff'}, length 0..6: many shared
  /// prefixes, keys that are prefixes of others, '\0' bytes.
  small_alphabet,
  /// Random bytes, length 0..40: wide nodes, long compressed paths.
  long_random,
  /// A few long stems followed by a short tail: deep shared prefixes that
  /// split and merge often.
  stems,
};

class key_source {
 public:
  key_source(key_shape shape, std::uint64_t seed) : shape_(shape), rng_(seed) {
    for (int i = 0; i < 6; ++i) stems_.push_back(random_bytes(8 + pick(24)));
  }

  std::string next() {
    switch (shape_) {
      case key_shape::small_alphabet: {
        static constexpr char alphabet[] = {'a', 'b', '\0', '\xff'};
        std::string k;
        const std::size_t len = pick(7);
        for (std::size_t i = 0; i < len; ++i) k.push_back(alphabet[pick(4)]);
        return k;
      }
      case key_shape::long_random:
        return random_bytes(pick(41));
      case key_shape::stems:
        break;
    }
    std::string k = stems_[pick(stems_.size())];
    k.resize(pick(k.size() + 1));  // Cut stems anywhere: prefix keys.
    static constexpr char tail[] = {'x', 'y', '\0'};
    const std::size_t len = pick(4);
    for (std::size_t i = 0; i < len; ++i) k.push_back(tail[pick(3)]);
    return k;
  }

  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::string random_bytes(std::size_t len) {
    std::string s(len, '\0');
    for (auto& c : s) c = static_cast<char>(rng_() & 0xff);
    return s;
  }

  key_shape shape_;
  std::mt19937_64 rng_;
  std::vector<std::string> stems_;
};

inline const char* name_of(key_shape shape) {
  switch (shape) {
    case key_shape::small_alphabet:
      return "small alphabet";
    case key_shape::long_random:
      return "long random";
    case key_shape::stems:
      break;
  }
  return "stems";
}

/// Printable form of a key for failure messages.
inline std::string show(std::string_view key) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out + "\"";
}

/// Whether a tree or transaction holds exactly the model, walked forwards
/// and backwards, with a canonical structure and the right size.
template <class Tree>
bool same_contents(const Tree& t, const model& m, std::string& why) {
  if (t.size() != m.size() || t.empty() != m.empty()) {
    why = "size " + std::to_string(t.size()) + " vs " + std::to_string(m.size());
    return false;
  }
  auto it = t.begin();
  for (const auto& [k, v] : m) {
    if (it == t.end()) {
      why = "forward walk ends before " + show(k);
      return false;
    }
    if ((*it).key != k || (*it).value != v) {
      why = "forward walk has " + show((*it).key) + " where the model has " + show(k);
      return false;
    }
    ++it;
  }
  if (it != t.end()) {
    why = "forward walk goes on past the model";
    return false;
  }
  auto rit = t.rbegin();
  for (auto mit = m.rbegin(); mit != m.rend(); ++mit, ++rit) {
    if (rit == t.rend() || rit->key != mit->first || rit->value != mit->second) {
      why = "reverse walk differs at " + show(mit->first);
      return false;
    }
  }
  if (rit != t.rend()) {
    why = "reverse walk goes on past the model";
    return false;
  }
  why = keel::index::detail::check_invariants<std::uint64_t>(
      keel::index::detail::tree_access::root(t));
  return why.empty();
}

}  // namespace keel_index_test

/// REQUIRE(same_contents(...)), naming the first difference.
#define KEEL_REQUIRE_SAME_CONTENTS(tree_or_tx, model_map)                                         \
  do {                                                                                            \
    std::string keel_why_;                                                                        \
    const bool keel_same_ = keel_index_test::same_contents((tree_or_tx), (model_map), keel_why_); \
    INFO(keel_why_);                                                                              \
    REQUIRE(keel_same_);                                                                          \
  } while (false)
