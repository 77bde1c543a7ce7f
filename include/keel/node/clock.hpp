// The clock policy: where a threaded runner reads the time that drives Raft's
// ticks. The deterministic replica has no clock at all (the simulation ticks
// it); a runner asks its clock when the next tick is due.
#pragma once

#include <chrono>
#include <concepts>

namespace keel::node {

/// A clock: `c.now()` returns a std::chrono time point; only differences of
/// two readings are used, so any epoch works, and durations are
/// std::chrono ones.
template <class C>
concept clock = requires(const C& c) {
  typename C::time_point;
  { c.now() } -> std::same_as<typename C::time_point>;
  { c.now() - c.now() } -> std::convertible_to<std::chrono::nanoseconds>;
};

/// The default: the monotonic system clock (never jumps with wall time).
struct steady_clock {
  using time_point = std::chrono::steady_clock::time_point;
  time_point now() const { return std::chrono::steady_clock::now(); }
};

}  // namespace keel::node
