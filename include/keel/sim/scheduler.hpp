// The seeded source of every choice a simulation makes: which node ticks,
// which fault strikes, which client acts and what it asks. One seed and one
// sequence of calls give one run; nothing here reads a clock or an address.
//
// Thread safety: none; one simulation thread owns its scheduler.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "keel/raft/config.hpp"

namespace keel::sim {

class scheduler {
 public:
  explicit scheduler(std::uint64_t seed) : random_(seed) {}

  /// A fresh seed for something that draws on its own (a node, the network).
  std::uint64_t derive() { return random_.next(); }

  /// True with probability p.
  bool chance(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    // 53 random bits: a uniform double in [0, 1), the same on every platform.
    return static_cast<double>(random_.next() >> 11) * 0x1.0p-53 < p;
  }

  /// Uniform in [0, n). Requires: n > 0.
  std::uint64_t below(std::uint64_t n) {
    assert(n > 0 && "nothing to choose from");
    return random_.next() % n;
  }

  /// Uniform in [lo, hi]. Requires: lo <= hi.
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) {
    assert(lo <= hi && "the range is [lo, hi]");
    return lo + below(hi - lo + 1);
  }

  /// One element of a non-empty vector.
  template <class T>
  const T& pick(const std::vector<T>& from) {
    return from[static_cast<std::size_t>(below(from.size()))];
  }

  /// The vector in a random order (Fisher-Yates).
  template <class T>
  std::vector<T> shuffled(std::vector<T> v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      std::swap(v[i - 1], v[static_cast<std::size_t>(below(i))]);
    }
    return v;
  }

 private:
  raft::splitmix_random random_;
};

}  // namespace keel::sim
