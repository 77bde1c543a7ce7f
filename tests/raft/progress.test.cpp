// progress (a leader's view of one follower: probe / replicate / snapshot)
// and inflights (the replicate state's flow-control window). Cases follow
// etcd-io/raft's tracker/progress_test.go and inflights_test.go.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "keel/raft/inflights.hpp"
#include "keel/raft/progress.hpp"

namespace {

using namespace keel::raft;

progress make_progress(progress_state state, std::uint64_t match, std::uint64_t next,
                       std::size_t max_inflight = 256, std::uint64_t max_inflight_bytes = 0) {
  progress pr(next, max_inflight, max_inflight_bytes, false);
  pr.match = match;
  switch (state) {
    case progress_state::probe:
      break;
    case progress_state::replicate:
      pr.state = progress_state::replicate;
      break;
    case progress_state::snapshot:
      pr.state = progress_state::snapshot;
      break;
  }
  pr.next = next;
  return pr;
}

/// Fills `in` with messages ending at first, first + 1, ... each of `bytes`.
void add_range(inflights& in, std::uint64_t first, std::size_t n, std::uint64_t bytes = 0) {
  for (std::size_t i = 0; i < n; ++i) in.add(first + i, bytes);
}

}  // namespace

// ---- progress -----------------------------------------------------------------

TEST_CASE("a new progress probes from the given next index with nothing matched") {
  progress pr(5, 10, 0, true);
  CHECK(pr.state == progress_state::probe);
  CHECK(pr.match == 0);
  CHECK(pr.next == 5);
  CHECK(pr.is_learner);
  CHECK_FALSE(pr.is_paused());
}

TEST_CASE("become_probe from replicate resumes right after the match") {
  progress pr = make_progress(progress_state::replicate, 1, 5);
  pr.become_probe();
  CHECK(pr.state == progress_state::probe);
  CHECK(pr.match == 1);
  CHECK(pr.next == 2);
}

TEST_CASE("become_probe after a snapshot resumes right after the snapshot") {
  progress pr = make_progress(progress_state::snapshot, 1, 5);
  pr.pending_snapshot = 10;
  pr.become_probe();
  CHECK(pr.state == progress_state::probe);
  CHECK(pr.next == 11);
  CHECK(pr.pending_snapshot == 0);
}

TEST_CASE("become_probe after a failed snapshot resumes right after the match") {
  progress pr = make_progress(progress_state::snapshot, 1, 5);
  pr.pending_snapshot = 0;
  pr.become_probe();
  CHECK(pr.next == 2);
}

TEST_CASE("become_replicate streams from right after the match") {
  progress pr = make_progress(progress_state::probe, 1, 5);
  pr.become_replicate();
  CHECK(pr.state == progress_state::replicate);
  CHECK(pr.match == 1);
  CHECK(pr.next == 2);
}

TEST_CASE("become_snapshot records the snapshot being sent and keeps match and next") {
  progress pr = make_progress(progress_state::probe, 1, 5);
  pr.become_snapshot(10);
  CHECK(pr.state == progress_state::snapshot);
  CHECK(pr.match == 1);
  CHECK(pr.next == 5);
  CHECK(pr.pending_snapshot == 10);
}

TEST_CASE("a state change empties the inflights window and unpauses probing") {
  progress pr = make_progress(progress_state::replicate, 1, 2, 2);
  pr.sent_entries(3, 10);
  pr.sent_entries(4, 10);
  REQUIRE(pr.is_paused());
  pr.become_probe();
  CHECK(pr.inflights.count() == 0);
  CHECK(pr.inflights.bytes() == 0);
  CHECK_FALSE(pr.is_paused());
}

TEST_CASE("maybe_update raises match and next and reports whether match moved") {
  struct example {
    std::uint64_t update, want_match, want_next;
    bool want_updated;
  };
  const example examples[] = {
      {2, 3, 5, false},  // Older than match: nothing changes.
      {3, 3, 5, false},  // Same as match.
      {4, 4, 5, true},   // Match moves, next stays ahead.
      {5, 5, 6, true},  {6, 6, 7, true},
  };
  for (const example& x : examples) {
    INFO("update " << x.update);
    progress pr = make_progress(progress_state::probe, 3, 5);
    CHECK(pr.maybe_update(x.update) == x.want_updated);
    CHECK(pr.match == x.want_match);
    CHECK(pr.next == x.want_next);
  }
}

TEST_CASE("an acknowledgement that moves match unpauses a probe") {
  progress pr = make_progress(progress_state::probe, 0, 2);
  pr.sent_entries(2, 0);
  REQUIRE(pr.is_paused());
  CHECK_FALSE(pr.maybe_update(0));
  CHECK(pr.is_paused());
  CHECK(pr.maybe_update(2));
  CHECK_FALSE(pr.is_paused());
}

TEST_CASE("maybe_decrease_to in replicate falls back to match unless the rejection is stale") {
  struct example {
    std::uint64_t rejected, hint;
    bool want;
    std::uint64_t want_next;
  };
  const example examples[] = {
      {5, 5, false, 10},  // Rejected <= match: stale.
      {4, 4, false, 10},
      {9, 9, true, 6},  // Straight back to match + 1.
  };
  for (const example& x : examples) {
    INFO("rejected " << x.rejected << " hint " << x.hint);
    progress pr = make_progress(progress_state::replicate, 5, 10);
    CHECK(pr.maybe_decrease_to(x.rejected, x.hint) == x.want);
    CHECK(pr.next == x.want_next);
  }
}

TEST_CASE("maybe_decrease_to in probe accepts only the rejection of the probe sent") {
  struct example {
    std::uint64_t next, rejected, hint;
    bool want;
    std::uint64_t want_next;
  };
  const example examples[] = {
      {0, 0, 0, false, 0},                          // next - 1 does not exist.
      {10, 5, 5, false, 10},                        // Not the probe we sent.
      {10, 9, 9, true, 9},                          // Back by one.
      {2, 1, 1, true, 1},    {1, 0, 0, true, 1},    // Never below 1.
      {10, 9, 2, true, 3},                          // Straight to the follower's hint + 1.
      {10, 9, 0, true, 1},   {10, 9, 20, true, 9},  // A hint above the probe never raises next.
  };
  for (const example& x : examples) {
    INFO("next " << x.next << " rejected " << x.rejected << " hint " << x.hint);
    progress pr = make_progress(progress_state::probe, 0, x.next);
    CHECK(pr.maybe_decrease_to(x.rejected, x.hint) == x.want);
    CHECK(pr.next == x.want_next);
  }
}

TEST_CASE("a rejection hint of the largest index backs off to the rejected index, not to match") {
  // min(rejected, hint + 1) must not wrap around: the hint comes from the network.
  progress pr = make_progress(progress_state::probe, 0, 10);
  CHECK(pr.maybe_decrease_to(9, std::numeric_limits<std::uint64_t>::max()));
  CHECK(pr.next == 9);
}

TEST_CASE("maybe_decrease_to in probe never goes below match + 1") {
  progress pr = make_progress(progress_state::probe, 4, 10);
  CHECK(pr.maybe_decrease_to(9, 1));
  CHECK(pr.next == 5);
}

TEST_CASE("an accepted rejection unpauses a probe") {
  progress pr = make_progress(progress_state::probe, 0, 10);
  pr.sent_entries(12, 0);
  REQUIRE(pr.is_paused());
  CHECK(pr.maybe_decrease_to(9, 9));
  CHECK_FALSE(pr.is_paused());
}

TEST_CASE("a probe pauses after one append until it is answered") {
  progress pr = make_progress(progress_state::probe, 0, 1);
  CHECK_FALSE(pr.is_paused());
  pr.sent_entries(3, 30);
  CHECK(pr.is_paused());
  CHECK(pr.next == 1);  // Probing does not move next optimistically.
  CHECK(pr.inflights.count() == 0);
}

TEST_CASE("replicate moves next optimistically and records the append in flight") {
  progress pr = make_progress(progress_state::replicate, 0, 1);
  pr.sent_entries(3, 30);
  CHECK(pr.next == 4);
  CHECK(pr.inflights.count() == 1);
  CHECK(pr.inflights.bytes() == 30);
  pr.sent_entries(3, 0);  // An empty append (a commit update) is not in flight.
  CHECK(pr.next == 4);
  CHECK(pr.inflights.count() == 1);
}

TEST_CASE("replicate pauses when the inflights window is full") {
  progress pr = make_progress(progress_state::replicate, 0, 1, 2);
  pr.sent_entries(1, 1);
  CHECK_FALSE(pr.is_paused());
  pr.sent_entries(2, 1);
  CHECK(pr.is_paused());
  pr.inflights.free_le(1);
  CHECK_FALSE(pr.is_paused());
}

TEST_CASE("replicate pauses when the bytes in flight reach the limit") {
  progress pr = make_progress(progress_state::replicate, 0, 1, 100, 50);
  pr.sent_entries(1, 30);
  CHECK_FALSE(pr.is_paused());
  pr.sent_entries(2, 20);
  CHECK(pr.is_paused());
}

TEST_CASE("a follower receiving a snapshot is always paused") {
  progress pr = make_progress(progress_state::probe, 0, 1);
  pr.become_snapshot(10);
  CHECK(pr.is_paused());
  pr.sent_entries(12, 10);  // Nothing is tracked while a snapshot is out.
  CHECK(pr.next == 1);
  CHECK(pr.inflights.count() == 0);
}

// ---- inflights ----------------------------------------------------------------

TEST_CASE("inflights fill up to their capacity") {
  inflights in(10);
  add_range(in, 0, 5, 100);
  CHECK(in.count() == 5);
  CHECK(in.bytes() == 500);
  CHECK_FALSE(in.full());
  add_range(in, 5, 5, 100);
  CHECK(in.count() == 10);
  CHECK(in.bytes() == 1000);
  CHECK(in.full());
}

TEST_CASE("inflights are full when their bytes reach the byte limit") {
  inflights in(10, 1000);
  add_range(in, 0, 3, 300);
  CHECK_FALSE(in.full());
  in.add(3, 100);
  CHECK(in.full());
  in.free_le(0);
  CHECK_FALSE(in.full());
  CHECK(in.bytes() == 700);
}

TEST_CASE("inflights without a byte limit are never full by bytes") {
  inflights in(10);
  in.add(1, std::numeric_limits<std::uint64_t>::max() / 2);
  CHECK_FALSE(in.full());
}

TEST_CASE("free_le frees every message up to and including an index") {
  inflights in(10);
  add_range(in, 0, 10, 1);
  in.free_le(0);
  CHECK(in.count() == 9);
  in.free_le(4);
  CHECK(in.count() == 5);
  CHECK(in.bytes() == 5);
  CHECK_FALSE(in.full());
  in.free_le(8);
  CHECK(in.count() == 1);
  in.free_le(9);
  CHECK(in.count() == 0);
  CHECK(in.bytes() == 0);
}

TEST_CASE("free_le below the oldest message frees nothing") {
  inflights in(10);
  add_range(in, 5, 3, 1);
  in.free_le(4);
  CHECK(in.count() == 3);
  in.free_le(0);
  CHECK(in.count() == 3);
}

TEST_CASE("inflights keep their order when the ring wraps around") {
  inflights in(10);
  add_range(in, 0, 10, 1);
  in.free_le(4);  // Slots 0..4 are free again; the oldest is 5.
  add_range(in, 10, 5, 1);
  CHECK(in.full());
  in.free_le(8);
  CHECK(in.count() == 6);
  in.free_le(12);
  CHECK(in.count() == 2);
  CHECK(in.bytes() == 2);
  add_range(in, 15, 8, 1);
  CHECK(in.full());
  in.free_le(21);
  CHECK(in.count() == 1);
  in.free_le(22);
  CHECK(in.count() == 0);
}

TEST_CASE("inflights that empty start again from the beginning of the ring") {
  inflights in(3);
  for (std::uint64_t round = 0; round < 10; ++round) {
    add_range(in, round * 3, 3, 7);
    CHECK(in.full());
    in.free_le(round * 3 + 2);
    CHECK(in.count() == 0);
    CHECK(in.bytes() == 0);
  }
}

TEST_CASE("free_first_one frees only the oldest message") {
  inflights in(3, 100);
  in.add(4, 10);
  in.add(7, 20);
  in.add(9, 70);
  REQUIRE(in.full());
  in.free_first_one();
  CHECK(in.count() == 2);
  CHECK(in.bytes() == 90);
  CHECK_FALSE(in.full());
  in.add(12, 1);
  in.free_le(9);
  CHECK(in.count() == 1);
}

TEST_CASE("free_first_one on empty inflights does nothing") {
  inflights in(2);
  in.free_first_one();
  CHECK(in.count() == 0);
  in.add(1, 0);
  in.free_first_one();
  in.free_first_one();
  CHECK(in.count() == 0);
  CHECK_FALSE(in.full());
}

TEST_CASE("reset empties the inflights") {
  inflights in(4, 100);
  add_range(in, 1, 4, 25);
  REQUIRE(in.full());
  in.reset();
  CHECK(in.count() == 0);
  CHECK(in.bytes() == 0);
  CHECK_FALSE(in.full());
  add_range(in, 10, 2, 1);
  in.free_le(10);
  CHECK(in.count() == 1);
}

TEST_CASE("inflights of capacity 0 hold one message") {
  inflights in(0);
  CHECK_FALSE(in.full());
  in.add(1, 0);
  CHECK(in.full());
}

TEST_CASE("inflights match a simple queue model under random use") {
  // Property test: the ring against a std::vector of (index, bytes).
  const std::uint64_t seed = 20240613;
  INFO("seed " << seed);
  std::uint64_t state = seed;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t capacity = 1 + next() % 8;
    const std::uint64_t max_bytes = next() % 2 == 0 ? 0 : 1 + next() % 64;
    INFO("trial " << trial << " capacity " << capacity << " max_bytes " << max_bytes);
    inflights in(capacity, max_bytes);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> model;
    std::uint64_t index = 0, model_bytes = 0;
    for (int op = 0; op < 100; ++op) {
      const bool model_full =
          model.size() == capacity || (max_bytes != 0 && model_bytes >= max_bytes);
      REQUIRE(in.full() == model_full);
      if (!model_full && next() % 3 != 0) {
        index += 1 + next() % 3;
        const std::uint64_t bytes = next() % 16;
        in.add(index, bytes);
        model.emplace_back(index, bytes);
        model_bytes += bytes;
      } else {
        const std::uint64_t to = index - std::min<std::uint64_t>(index, next() % 6);
        in.free_le(to);
        while (!model.empty() && model.front().first <= to) {
          model_bytes -= model.front().second;
          model.erase(model.begin());
        }
      }
      REQUIRE(in.count() == model.size());
      REQUIRE(in.bytes() == model_bytes);
    }
  }
}
