// The linearizability checker on hand-written register histories: legal
// histories pass, each classic anomaly fails, unknown outcomes may or may
// not be observed, a bad key is named among good ones, the step budget ends
// in `unknown`, and the history recorder keeps what the checker needs.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/sim/history.hpp"
#include "keel/sim/linearizability.hpp"

using keel::sim::check_linearizable;
using keel::sim::check_options;
using keel::sim::op_kind;
using keel::sim::operation;
using keel::sim::verdict;

namespace {

constexpr std::uint64_t never = keel::sim::unknown_response;
const std::optional<std::string> absent = std::nullopt;

operation put(std::uint64_t client, std::string value, std::uint64_t invoke, std::uint64_t response,
              std::string key = "k") {
  return {.client = client,
          .kind = op_kind::put,
          .key = std::move(key),
          .value = std::move(value),
          .expected = std::nullopt,
          .ok = true,
          .invoke = invoke,
          .response = response};
}

operation get(std::uint64_t client, std::optional<std::string> value, std::uint64_t invoke,
              std::uint64_t response, std::string key = "k") {
  return {.client = client,
          .kind = op_kind::get,
          .key = std::move(key),
          .value = std::move(value),
          .expected = std::nullopt,
          .ok = false,
          .invoke = invoke,
          .response = response};
}

operation cas(std::uint64_t client, std::optional<std::string> expected, std::string value, bool ok,
              std::uint64_t invoke, std::uint64_t response, std::string key = "k") {
  return {.client = client,
          .kind = op_kind::cas,
          .key = std::move(key),
          .value = std::move(value),
          .expected = std::move(expected),
          .ok = ok,
          .invoke = invoke,
          .response = response};
}

verdict check(const std::vector<operation>& ops) { return check_linearizable(ops).outcome; }

}  // namespace

TEST_CASE("linearizability: an empty history is linearizable", "[sim][linearizability]") {
  CHECK(check({}) == verdict::linearizable);
}

TEST_CASE("linearizability: sequential puts and gets are linearizable", "[sim][linearizability]") {
  CHECK(check({get(1, absent, 1, 2), put(1, "a", 3, 4), get(2, "a", 5, 6), put(2, "b", 7, 8),
               get(1, "b", 9, 10)}) == verdict::linearizable);
}

TEST_CASE("linearizability: a get concurrent with a put may see either value",
          "[sim][linearizability]") {
  CHECK(check({put(1, "a", 1, 2), put(1, "b", 3, 10), get(2, "a", 4, 5), get(3, "b", 6, 7),
               get(2, "b", 8, 9)}) == verdict::linearizable);
  CHECK(check({put(1, "a", 1, 2), put(1, "b", 3, 10), get(2, "b", 4, 5)}) == verdict::linearizable);
}

TEST_CASE("linearizability: concurrent puts may land in either order", "[sim][linearizability]") {
  // Both orders are legal, but every reader afterwards agrees on one.
  CHECK(check({put(1, "a", 1, 4), put(2, "b", 2, 3), get(3, "a", 5, 6)}) == verdict::linearizable);
  CHECK(check({put(1, "a", 1, 4), put(2, "b", 2, 3), get(3, "b", 5, 6)}) == verdict::linearizable);
  CHECK(check({put(1, "a", 1, 4), put(2, "b", 2, 3), get(3, "b", 5, 6), get(3, "a", 7, 8)}) ==
        verdict::not_linearizable);
}

TEST_CASE("linearizability: a stale read after a completed put fails", "[sim][linearizability]") {
  CHECK(check({put(1, "a", 1, 2), put(1, "b", 3, 4), get(2, "a", 5, 6)}) ==
        verdict::not_linearizable);
  CHECK(check({put(1, "a", 1, 2), get(2, absent, 3, 4)}) == verdict::not_linearizable);
}

TEST_CASE("linearizability: a lost write fails", "[sim][linearizability]") {
  // The put of "b" completed, yet a later read sees the value before it.
  CHECK(check({put(1, "a", 1, 2), put(2, "b", 3, 4), get(1, "a", 5, 6), get(3, "a", 7, 8)}) ==
        verdict::not_linearizable);
}

TEST_CASE("linearizability: a cas succeeding on a wrong value fails", "[sim][linearizability]") {
  CHECK(check({put(1, "a", 1, 2), cas(2, "x", "b", true, 3, 4)}) == verdict::not_linearizable);
  CHECK(check({cas(2, "x", "b", true, 1, 2)}) == verdict::not_linearizable);
  // And a cas failing on the right value fails too.
  CHECK(check({put(1, "a", 1, 2), cas(2, "a", "b", false, 3, 4)}) == verdict::not_linearizable);
}

TEST_CASE("linearizability: cas succeeds on the right value and fails on a wrong one",
          "[sim][linearizability]") {
  CHECK(check({put(1, "a", 1, 2), cas(2, "a", "b", true, 3, 4), cas(3, "a", "c", false, 5, 6),
               get(1, "b", 7, 8), cas(1, absent, "d", false, 9, 10)}) == verdict::linearizable);
  CHECK(check({cas(1, absent, "a", true, 1, 2), get(2, "a", 3, 4)}) == verdict::linearizable);
}

TEST_CASE("linearizability: two concurrent cas from one expected value cannot both succeed",
          "[sim][linearizability]") {
  CHECK(check({put(1, "a", 1, 2), cas(2, "a", "b", true, 3, 6), cas(3, "a", "c", true, 4, 5)}) ==
        verdict::not_linearizable);
  CHECK(check({put(1, "a", 1, 2), cas(2, "a", "b", true, 3, 6), cas(3, "a", "c", false, 4, 5)}) ==
        verdict::linearizable);
}

TEST_CASE("linearizability: a read of a value never written fails", "[sim][linearizability]") {
  CHECK(check({put(1, "a", 1, 2), get(2, "z", 3, 4)}) == verdict::not_linearizable);
  CHECK(check({get(2, "z", 1, 2)}) == verdict::not_linearizable);
}

TEST_CASE("linearizability: a read going back in time fails", "[sim][linearizability]") {
  // While "b" is being written, one reader sees "b" and a later one "a".
  CHECK(check({put(1, "a", 1, 2), put(1, "b", 3, 20), get(2, "b", 4, 5), get(3, "a", 6, 7)}) ==
        verdict::not_linearizable);
}

TEST_CASE("linearizability: a write with an unknown outcome may or may not be observed",
          "[sim][linearizability]") {
  SECTION("never observed") {
    CHECK(check({put(1, "a", 1, 2), put(2, "b", 3, never), get(3, "a", 4, 5), get(3, "a", 6, 7)}) ==
          verdict::linearizable);
  }
  SECTION("observed, late") {
    CHECK(check({put(1, "a", 1, 2), put(2, "b", 3, never), get(3, "a", 4, 5), get(3, "b", 60, 70),
                 get(1, "b", 80, 90)}) == verdict::linearizable);
  }
  SECTION("but once observed it stays") {
    CHECK(check({put(1, "a", 1, 2), put(2, "b", 3, never), get(3, "b", 4, 5), get(3, "a", 6, 7)}) ==
          verdict::not_linearizable);
  }
  SECTION("never before its invocation") {
    CHECK(check({put(1, "a", 1, 2), get(3, "b", 3, 4), put(2, "b", 5, never)}) ==
          verdict::not_linearizable);
  }
  SECTION("an unknown cas takes effect only on its expected value") {
    CHECK(check({put(1, "a", 1, 2), cas(2, "a", "b", false, 3, never), get(3, "b", 4, 5)}) ==
          verdict::linearizable);
    CHECK(check({put(1, "a", 1, 2), cas(2, "x", "b", false, 3, never), get(3, "b", 4, 5)}) ==
          verdict::not_linearizable);
  }
}

TEST_CASE("linearizability: a bad key among good ones is named", "[sim][linearizability]") {
  std::vector<operation> ops{
      put(1, "a", 1, 2, "k1"),   put(2, "b", 3, 4, "k2"),   put(3, "c", 5, 6, "k3"),
      get(1, "a", 7, 8, "k1"),   get(2, "a", 9, 10, "k2"),  get(3, "c", 11, 12, "k3"),
      put(1, "d", 13, 14, "k2"), get(2, "d", 15, 16, "k2"),
  };
  const auto r = check_linearizable(ops);
  REQUIRE(r.outcome == verdict::not_linearizable);
  CHECK(r.key == "k2");
  // The explanation lists the key's operations, and only those.
  CHECK(r.explanation.find("get(k2) -> \"a\"") != std::string::npos);
  CHECK(r.explanation.find("put(k2, \"b\")") != std::string::npos);
  CHECK(r.explanation.find("k1") == std::string::npos);
  CHECK(r.explanation.find("longest legal order") != std::string::npos);
}

TEST_CASE("linearizability: a search over its budget is unknown, not a guess",
          "[sim][linearizability]") {
  // Many concurrent writes and a read no order can satisfy: the search must
  // try every order before it can say no.
  std::vector<operation> ops;
  for (std::uint64_t i = 0; i < 10; ++i) ops.push_back(put(i, "v" + std::to_string(i), 1 + i, 100));
  ops.push_back(get(99, "never written", 101, 102));
  const auto r = check_linearizable(ops, check_options{.max_steps_per_key = 1000});
  CHECK(r.outcome == verdict::unknown);
  CHECK(r.key == "k");
  CHECK(r.explanation.find("budget") != std::string::npos);
  // With room to search it is decided.
  CHECK(check_linearizable(ops).outcome == verdict::not_linearizable);
}

TEST_CASE("linearizability: a malformed history is unknown", "[sim][linearizability]") {
  CHECK(check({put(1, "a", 5, 2)}) == verdict::unknown);
}

TEST_CASE("history: records times, drops what had no effect, keeps unknown writes",
          "[sim][linearizability]") {
  keel::sim::history h;
  const auto p = h.invoke_put(1, "k", "a");
  const auto g = h.invoke_get(2, "k");
  const auto c = h.invoke_cas(3, "k", std::string("a"), "b");
  const auto lost = h.invoke_put(4, "k", "z");
  const auto gone = h.invoke_get(5, "k");
  h.complete_write(p, true);
  h.complete_get(g, std::string("a"));
  h.drop(lost);
  h.abandon(c);
  h.abandon(gone);
  CHECK_FALSE(h.is_pending(p));
  const auto ops = h.operations();
  REQUIRE(ops.size() == 3);
  CHECK(ops[0].invoke == 1);
  CHECK(ops[0].response == 6);
  CHECK(ops[1].value == "a");
  CHECK(ops[2].kind == op_kind::cas);
  CHECK(ops[2].outcome_unknown());
  CHECK(check_linearizable(ops).linearizable());
}
