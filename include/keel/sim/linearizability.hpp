// A linearizability checker for histories of register operations
// (history.hpp): is there one total order of the operations, each placed
// between its invocation and its response, in which every operation is
// legal for a register?
//
// Method: Wing & Gong's search with Lowe's memoization, as in Porcupine.
// The invocations and responses of a key's operations form a list in time
// order; the search linearizes an operation whose invocation comes before
// every pending response, and backtracks when it meets the response of an
// operation it has not linearized yet. A cache of (set of linearized
// operations, register value) prunes states already explored: what can
// follow depends on nothing else. An operation with an unknown outcome has
// no response, so the search may linearize it anywhere after its invocation
// or leave it out (as if it never happened, or happened after everything
// observed). Registers are independent, so each key's history is checked
// on its own (P-compositionality); a violation names its key.
//
// Bounded: each key's search stops after a step budget and the verdict is
// then `unknown`, never a guess.
//
// Thread safety: pure functions over their arguments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "keel/sim/history.hpp"

namespace keel::sim {

enum class verdict : std::uint8_t {
  linearizable,
  not_linearizable,
  unknown,  ///< A key's search ran out of budget, or its history is malformed.
};

struct check_options {
  /// Search steps allowed per key before the verdict is unknown.
  std::uint64_t max_steps_per_key = 2'000'000;
};

struct check_result {
  verdict outcome = verdict::linearizable;
  /// The key that is not linearizable (or could not be decided); empty when linearizable.
  std::string key;
  /// Why, with the key's operations; empty when linearizable.
  std::string explanation;
  /// Search steps taken, over all keys.
  std::uint64_t steps = 0;

  bool linearizable() const noexcept { return outcome == verdict::linearizable; }
};

namespace detail {

/// The search over one key's operations.
class register_search {
 public:
  register_search(std::span<const operation> ops, std::uint64_t max_steps)
      : ops_(ops), max_steps_(max_steps) {}

  verdict run() {
    if (!build()) {
      malformed_ = true;
      return verdict::unknown;
    }
    const std::size_t words = (ops_.size() + 63) / 64;
    std::vector<std::uint64_t> linearized(words, 0);
    std::unordered_set<cache_entry, cache_hash> cache;
    std::vector<std::pair<int, int>> calls;  // (call entry, register before it)
    int state = absent;
    std::size_t known_done = 0;
    if (known_ == 0) return verdict::linearizable;
    int entry = next_[head];
    while (entry != end) {
      if (++steps_ > max_steps_) return verdict::unknown;
      const int op = op_of_[entry];
      if (is_call_[entry]) {
        const auto [legal, after] = apply(state, op);
        if (legal) {
          set_bit(linearized, op, true);
          if (cache.insert(cache_entry{linearized, after}).second) {
            calls.emplace_back(entry, state);
            state = after;
            lift(entry);
            if (!ops_[op].outcome_unknown() && ++known_done == known_) return verdict::linearizable;
            remember_best(calls, state);
            entry = next_[head];
            continue;
          }
          set_bit(linearized, op, false);
        }
        entry = next_[entry];
      } else {
        // The response of an operation not linearized yet: undo the last choice.
        if (calls.empty()) return verdict::not_linearizable;
        const auto [call, before] = calls.back();
        calls.pop_back();
        const int undone = op_of_[call];
        if (!ops_[undone].outcome_unknown()) --known_done;
        set_bit(linearized, undone, false);
        state = before;
        unlift(call);
        entry = next_[call];
      }
    }
    // Only unknown-outcome operations were left: leaving them out is legal.
    return verdict::linearizable;
  }

  std::uint64_t steps() const noexcept { return steps_; }

  /// The key's operations and the longest legal order the search found.
  std::string explain(verdict v) const {
    std::string out;
    if (malformed_) {
      out = "malformed history (an operation responds before it is invoked)\n";
    } else if (v == verdict::unknown) {
      out = "undecided: the search ran out of its budget of " + std::to_string(max_steps_) +
            " steps; record fewer operations per key\n";
    } else {
      out = "no legal order of its " + std::to_string(ops_.size()) + " operations exists\n";
    }
    out += "operations, by invocation:\n";
    std::vector<std::size_t> order(ops_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return ops_[a].invoke < ops_[b].invoke; });
    for (const std::size_t i : order) {
      out += "  #" + std::to_string(i) + " " + describe(ops_[i]) + "\n";
    }
    if (v == verdict::not_linearizable) {
      out += "longest legal order found (" + std::to_string(best_.size()) + " of " +
             std::to_string(ops_.size()) + "):";
      for (const int op : best_) out += " #" + std::to_string(op);
      out += best_value_ < 0 ? ", leaving the register absent"
                             : ", leaving the register at \"" + values_[best_value_] + "\"";
      out += "; no operation can come next\n";
    }
    return out;
  }

 private:
  static constexpr int head = 0;
  static constexpr int end = -1;
  static constexpr int absent = -1;

  struct cache_entry {
    std::vector<std::uint64_t> linearized;
    int state = absent;
    bool operator==(const cache_entry&) const = default;
  };
  struct cache_hash {
    std::size_t operator()(const cache_entry& e) const noexcept {
      std::uint64_t h = static_cast<std::uint64_t>(e.state) * 0x9e3779b97f4a7c15ULL;
      for (const std::uint64_t w : e.linearized) h = (h ^ w) * 0x100000001b3ULL + (h >> 29);
      return static_cast<std::size_t>(h);
    }
  };

  /// Builds the doubly linked list of events in time order (a call before
  /// a response at the same time: they overlap). False if malformed.
  bool build() {
    struct event {
      std::uint64_t time;
      bool call;
      int op;
    };
    std::vector<event> events;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const operation& o = ops_[i];
      if (!o.outcome_unknown() && o.response < o.invoke) return false;
      events.push_back({o.invoke, true, static_cast<int>(i)});
      if (!o.outcome_unknown()) {
        events.push_back({o.response, false, static_cast<int>(i)});
        ++known_;
      }
    }
    std::stable_sort(events.begin(), events.end(), [](const event& a, const event& b) {
      return a.time != b.time ? a.time < b.time : a.call && !b.call;
    });
    // Node 0 is the head sentinel; event k is node k + 1.
    const std::size_t n = events.size() + 1;
    next_.assign(n, end);
    prev_.assign(n, end);
    op_of_.assign(n, -1);
    is_call_.assign(n, false);
    match_.assign(n, end);
    std::vector<int> call_of(ops_.size(), end);
    for (std::size_t k = 0; k < events.size(); ++k) {
      const int node = static_cast<int>(k) + 1;
      prev_[node] = node - 1;
      next_[node - 1] = node;
      op_of_[node] = events[k].op;
      is_call_[node] = events[k].call;
      if (events[k].call) {
        call_of[events[k].op] = node;
      } else {
        match_[call_of[events[k].op]] = node;
      }
    }
    // Values become small integers so states compare and hash cheaply.
    std::map<std::string, int> ids;
    auto intern = [&](const std::optional<std::string>& v) {
      if (!v) return absent;
      auto [it, added] = ids.try_emplace(*v, static_cast<int>(values_.size()));
      if (added) values_.push_back(*v);
      return it->second;
    };
    for (const operation& o : ops_) {
      value_ids_.push_back(intern(o.value));
      expected_ids_.push_back(intern(o.expected));
    }
    return true;
  }

  /// Whether op is legal on a register holding `state`, and what it leaves.
  std::pair<bool, int> apply(int state, int op) const {
    const operation& o = ops_[op];
    switch (o.kind) {
      case op_kind::put:
        return {true, value_ids_[op]};
      case op_kind::get:
        return {state == value_ids_[op], state};
      case op_kind::cas:
        // An unknown outcome counts as a success: a failure changes nothing.
        if (o.ok || o.outcome_unknown()) return {state == expected_ids_[op], value_ids_[op]};
        return {state != expected_ids_[op], state};
    }
    return {false, state};
  }

  void lift(int entry) {
    next_[prev_[entry]] = next_[entry];
    if (next_[entry] != end) prev_[next_[entry]] = prev_[entry];
    const int match = match_[entry];
    if (match != end) {
      next_[prev_[match]] = next_[match];
      if (next_[match] != end) prev_[next_[match]] = prev_[match];
    }
  }

  void unlift(int entry) {
    const int match = match_[entry];
    if (match != end) {
      next_[prev_[match]] = match;
      if (next_[match] != end) prev_[next_[match]] = match;
    }
    next_[prev_[entry]] = entry;
    if (next_[entry] != end) prev_[next_[entry]] = entry;
  }

  static void set_bit(std::vector<std::uint64_t>& bits, int i, bool on) {
    const std::uint64_t mask = std::uint64_t{1} << (i % 64);
    if (on) {
      bits[static_cast<std::size_t>(i / 64)] |= mask;
    } else {
      bits[static_cast<std::size_t>(i / 64)] &= ~mask;
    }
  }

  void remember_best(const std::vector<std::pair<int, int>>& calls, int state) {
    if (calls.size() <= best_.size()) return;
    best_.clear();
    for (const auto& [call, before] : calls) best_.push_back(op_of_[call]);
    best_value_ = state;
  }

  std::span<const operation> ops_;
  std::uint64_t max_steps_;
  std::uint64_t steps_ = 0;
  std::size_t known_ = 0;
  bool malformed_ = false;
  std::vector<int> next_, prev_, op_of_, match_;
  std::vector<bool> is_call_;
  std::vector<std::string> values_;
  std::vector<int> value_ids_, expected_ids_;
  std::vector<int> best_;
  int best_value_ = absent;
};

}  // namespace detail

/// Checks one register's operations (all of one key).
inline check_result check_register(std::span<const operation> ops, check_options opts = {}) {
  detail::register_search search(ops, opts.max_steps_per_key);
  const verdict v = search.run();
  check_result r{.outcome = v, .key = {}, .explanation = {}, .steps = search.steps()};
  if (v != verdict::linearizable) {
    r.key = ops.empty() ? std::string() : ops.front().key;
    r.explanation = "key " + r.key + ": " + search.explain(v);
  }
  return r;
}

/// Checks a history of many keys, each on its own. The result names the
/// first key (in key order) that is not linearizable; failing that, the
/// first that could not be decided.
inline check_result check_linearizable(std::span<const operation> ops, check_options opts = {}) {
  std::map<std::string, std::vector<operation>> by_key;
  for (const operation& o : ops) by_key[o.key].push_back(o);
  check_result out;
  std::optional<check_result> undecided;
  for (const auto& [key, key_ops] : by_key) {
    check_result r = check_register(key_ops, opts);
    out.steps += r.steps;
    if (r.outcome == verdict::not_linearizable) {
      r.steps = out.steps;
      return r;
    }
    if (r.outcome == verdict::unknown && !undecided) undecided = std::move(r);
  }
  if (undecided) {
    undecided->steps = out.steps;
    return *std::move(undecided);
  }
  return out;
}

}  // namespace keel::sim
