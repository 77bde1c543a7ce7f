// memory_storage, the in-memory log_storage policy: the ranges it answers,
// the errors outside them, size limits, appends that truncate, compaction
// and snapshots. Cases follow etcd-io/raft's storage_test.go.
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../support/child_process.hpp"
#include "keel/errc.hpp"
#include "keel/raft/memory_storage.hpp"

namespace {

using namespace keel::raft;
using keel::errc;

constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

entry ent(std::uint64_t index, std::uint64_t term, std::string data = {}) {
  return entry{.term = term, .index = index, .data = std::move(data)};
}

std::vector<entry> run(std::uint64_t first, std::vector<std::uint64_t> terms) {
  std::vector<entry> out;
  for (std::uint64_t t : terms) out.push_back(ent(first++, t));
  return out;
}

snapshot snap_at(std::uint64_t index, std::uint64_t term, conf_state cs = {.voters = {1, 2, 3}}) {
  snapshot s;
  s.metadata = {.index = index, .term = term, .conf = std::move(cs)};
  s.data = "state@" + std::to_string(index);
  return s;
}

/// Storage whose dummy entry is (3, 3) followed by entries 4 and 5 of terms
/// 4 and 5: etcd's `ents := []pb.Entry{{Index: 3, Term: 3}, {4, 4}, {5, 5}}`.
memory_storage storage_3_to_5() {
  memory_storage s;
  REQUIRE_FALSE(s.apply_snapshot(snap_at(3, 3)));
  REQUIRE_FALSE(s.append(run(4, {4, 5})));
  return s;
}

std::vector<std::uint64_t> indexes(const std::vector<entry>& ents) {
  std::vector<std::uint64_t> out;
  for (const entry& e : ents) out.push_back(e.index);
  return out;
}

}  // namespace

TEST_CASE("fresh memory storage is an empty log after index 0") {
  memory_storage s;
  CHECK(s.first_index() == 1);
  CHECK(s.last_index() == 0);
  CHECK(*s.term(0) == 0);
  CHECK(s.term(1).error() == errc::unavailable);
  CHECK(s.entries(1, 1, 100)->empty());
  CHECK(s.snapshot()->empty());
  CHECK(s.initial_state().hard_state.empty());
  CHECK(s.initial_state().conf_state == conf_state{});
}

TEST_CASE("term answers from the snapshot index to the last index") {
  memory_storage s = storage_3_to_5();
  CHECK(s.term(2).error() == errc::compacted);
  CHECK(*s.term(3) == 3);
  CHECK(*s.term(4) == 4);
  CHECK(*s.term(5) == 5);
  CHECK(s.term(6).error() == errc::unavailable);
}

TEST_CASE("entries returns the stored range asked for") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.append(run(6, {6})));
  CHECK(*s.entries(4, 5, unlimited) == run(4, {4}));
  CHECK(*s.entries(4, 6, unlimited) == run(4, {4, 5}));
  CHECK(*s.entries(4, 7, unlimited) == run(4, {4, 5, 6}));
  CHECK(s.entries(5, 5, unlimited)->empty());
}

TEST_CASE("entries at or below the snapshot index are compacted") {
  memory_storage s = storage_3_to_5();
  CHECK(s.entries(2, 6, unlimited).error() == errc::compacted);
  CHECK(s.entries(3, 4, unlimited).error() == errc::compacted);
  CHECK(s.entries(0, 0, unlimited).error() == errc::compacted);
}

TEST_CASE("entries beyond the last index are unavailable") {
  memory_storage s = storage_3_to_5();
  CHECK(s.entries(4, 7, unlimited).error() == errc::unavailable);
  CHECK(s.entries(6, 7, unlimited).error() == errc::unavailable);
}

TEST_CASE("entries with a reversed range is an error") {
  memory_storage s = storage_3_to_5();
  CHECK_FALSE(s.entries(5, 4, unlimited));
}

TEST_CASE("entries stops before max_bytes would be exceeded but returns at least one") {
  memory_storage s;
  REQUIRE_FALSE(s.append({ent(1, 1, std::string(10, 'a')), ent(2, 1, std::string(10, 'b')),
                          ent(3, 1, std::string(10, 'c'))}));
  CHECK(indexes(*s.entries(1, 4, 0)) == std::vector<std::uint64_t>{1});
  CHECK(indexes(*s.entries(1, 4, 10)) == std::vector<std::uint64_t>{1});
  CHECK(indexes(*s.entries(1, 4, 19)) == std::vector<std::uint64_t>{1});
  CHECK(indexes(*s.entries(1, 4, 20)) == std::vector<std::uint64_t>{1, 2});
  CHECK(indexes(*s.entries(1, 4, 29)) == std::vector<std::uint64_t>{1, 2});
  CHECK(indexes(*s.entries(1, 4, 30)) == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(indexes(*s.entries(2, 4, 15)) == std::vector<std::uint64_t>{2});
}

TEST_CASE("entries with empty payloads all fit in a zero byte limit") {
  memory_storage s;
  REQUIRE_FALSE(s.append(run(1, {1, 1, 1})));
  CHECK(indexes(*s.entries(1, 4, 0)) == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("first and last index follow appends and compaction") {
  memory_storage s = storage_3_to_5();
  CHECK(s.first_index() == 4);
  CHECK(s.last_index() == 5);
  REQUIRE_FALSE(s.append(run(6, {5})));
  CHECK(s.last_index() == 6);
  REQUIRE_FALSE(s.compact(4));
  CHECK(s.first_index() == 5);
  CHECK(s.last_index() == 6);
  REQUIRE_FALSE(s.compact(6));
  CHECK(s.first_index() == 7);
  CHECK(s.last_index() == 6);
}

TEST_CASE("append adds entries right after the last index") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.append(run(6, {5, 6})));
  CHECK(*s.entries(4, 8, unlimited) == run(4, {4, 5, 5, 6}));
}

TEST_CASE("append of entries already stored leaves the log as it was") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.append(run(4, {4, 5})));
  CHECK(*s.entries(4, 6, unlimited) == run(4, {4, 5}));
}

TEST_CASE("append truncates the stored log at the first appended index") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.append(run(4, {6, 6})));
  CHECK(*s.entries(4, 6, unlimited) == run(4, {6, 6}));
  REQUIRE_FALSE(s.append(run(5, {7})));
  CHECK(*s.entries(4, 6, unlimited) == run(4, {6, 7}));
  CHECK(s.last_index() == 5);
}

TEST_CASE("append of a shorter suffix drops the entries after it") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.append(run(6, {5, 5, 5})));
  REQUIRE_FALSE(s.append(run(5, {6})));
  CHECK(s.last_index() == 5);
  CHECK(*s.term(5) == 6);
}

TEST_CASE("append ignores the part of the entries that was compacted") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.append(run(2, {3, 3, 5})));
  CHECK(*s.entries(4, 5, unlimited) == run(4, {5}));
  CHECK(s.last_index() == 4);
  CHECK(*s.term(3) == 3);
}

TEST_CASE("append of entries entirely below the first index changes nothing") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.append(run(1, {1, 2})));
  CHECK(*s.entries(4, 6, unlimited) == run(4, {4, 5}));
}

TEST_CASE("append that leaves a gap after the last index is refused") {
  memory_storage s = storage_3_to_5();
  CHECK(s.append(run(7, {5})) == errc::index_out_of_range);
  CHECK(s.last_index() == 5);
}

TEST_CASE("append of nothing changes nothing") {
  memory_storage s = storage_3_to_5();
  CHECK_FALSE(s.append({}));
  CHECK(s.last_index() == 5);
}

TEST_CASE("compact keeps the compacted entry as the new dummy") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.compact(4));
  CHECK(s.first_index() == 5);
  CHECK(*s.term(4) == 4);
  CHECK(s.term(3).error() == errc::compacted);
  CHECK(*s.entries(5, 6, unlimited) == run(5, {5}));
  CHECK(s.entries(4, 6, unlimited).error() == errc::compacted);
}

TEST_CASE("compact up to the last index leaves an empty log after it") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.compact(5));
  CHECK(s.first_index() == 6);
  CHECK(s.last_index() == 5);
  CHECK(*s.term(5) == 5);
  REQUIRE_FALSE(s.append(run(6, {5})));
  CHECK(s.last_index() == 6);
}

TEST_CASE("compact at or below the current dummy is compacted") {
  memory_storage s = storage_3_to_5();
  CHECK(s.compact(2) == errc::compacted);
  CHECK(s.compact(3) == errc::compacted);
  CHECK(s.first_index() == 4);
}

TEST_CASE("compact beyond the last index is out of range") {
  memory_storage s = storage_3_to_5();
  CHECK(s.compact(6) == errc::index_out_of_range);
  CHECK(s.first_index() == 4);
}

TEST_CASE("compact keeps the snapshot") {
  memory_storage s = storage_3_to_5();
  REQUIRE(s.create_snapshot(5, {.voters = {1}}, "five"));
  REQUIRE_FALSE(s.compact(4));
  CHECK(s.snapshot()->metadata.index == 5);
}

TEST_CASE("create_snapshot records the term, configuration and data at an index") {
  memory_storage s = storage_3_to_5();
  const conf_state cs{.voters = {1, 2, 3}, .learners = {4}};
  auto snap = s.create_snapshot(4, cs, "data");
  REQUIRE(snap);
  CHECK(snap->metadata.index == 4);
  CHECK(snap->metadata.term == 4);
  CHECK(snap->metadata.conf == cs);
  CHECK(snap->data == "data");
  CHECK(*s.snapshot() == *snap);
  CHECK(s.initial_state().conf_state == cs);
}

TEST_CASE("create_snapshot keeps the entries until they are compacted") {
  memory_storage s = storage_3_to_5();
  REQUIRE(s.create_snapshot(5, {.voters = {1}}, "data"));
  CHECK(s.first_index() == 4);
  CHECK(*s.entries(4, 6, unlimited) == run(4, {4, 5}));
}

TEST_CASE("create_snapshot at or below the latest snapshot is out of date") {
  memory_storage s = storage_3_to_5();
  CHECK(s.create_snapshot(3, {}, "x").error() == errc::snapshot_out_of_date);
  CHECK(s.create_snapshot(2, {}, "x").error() == errc::snapshot_out_of_date);
  REQUIRE(s.create_snapshot(5, {}, "x"));
  CHECK(s.create_snapshot(4, {}, "x").error() == errc::snapshot_out_of_date);
  CHECK(s.create_snapshot(5, {}, "x").error() == errc::snapshot_out_of_date);
}

TEST_CASE("create_snapshot beyond the last index is out of range") {
  memory_storage s = storage_3_to_5();
  CHECK(s.create_snapshot(6, {}, "x").error() == errc::index_out_of_range);
  CHECK(s.snapshot()->metadata.index == 3);
}

TEST_CASE("create_snapshot at an index already compacted away is an error, not a wild read") {
  // compact() does not require a snapshot first; the application may then ask
  // for a snapshot at an index whose entry is gone.
  memory_storage s;
  REQUIRE_FALSE(s.append(run(1, {1, 1, 2, 2, 2})));
  REQUIRE_FALSE(s.compact(4));
  REQUIRE(s.first_index() == 5);
  // Index 2's term is gone: the answer must be an error, never a read at
  // entries_[2 - 4] (memory_storage.hpp create_snapshot).
  const std::string outcome =
      keel::test::run_isolated([&s](keel::test::shared_page*) -> std::string {
        auto snap = s.create_snapshot(2, {.voters = {1}}, "x");
        if (snap) return "created a snapshot at 2 of term " + std::to_string(snap->metadata.term);
        if (snap.error() != errc::compacted) return "error " + snap.error().message();
        return "";
      });
  CHECK(outcome == "");
}

TEST_CASE("apply_snapshot replaces the whole log by the snapshot") {
  memory_storage s = storage_3_to_5();
  const snapshot snap = snap_at(10, 7);
  REQUIRE_FALSE(s.apply_snapshot(snap));
  CHECK(s.first_index() == 11);
  CHECK(s.last_index() == 10);
  CHECK(*s.term(10) == 7);
  CHECK(s.term(5).error() == errc::compacted);
  CHECK(*s.snapshot() == snap);
  CHECK(s.initial_state().conf_state == snap.metadata.conf);
}

TEST_CASE("apply_snapshot inside the stored log drops the entries after it too") {
  memory_storage s = storage_3_to_5();
  REQUIRE_FALSE(s.apply_snapshot(snap_at(4, 4)));
  CHECK(s.first_index() == 5);
  CHECK(s.last_index() == 4);
  CHECK(s.term(5).error() == errc::unavailable);
}

TEST_CASE("apply_snapshot of an older or equal snapshot is out of date") {
  memory_storage s = storage_3_to_5();
  CHECK(s.apply_snapshot(snap_at(3, 3)) == errc::snapshot_out_of_date);
  CHECK(s.apply_snapshot(snap_at(2, 2)) == errc::snapshot_out_of_date);
  CHECK(s.last_index() == 5);
}

TEST_CASE("entries can follow an applied snapshot") {
  memory_storage s;
  REQUIRE_FALSE(s.apply_snapshot(snap_at(10, 7)));
  REQUIRE_FALSE(s.append(run(11, {7, 8})));
  CHECK(*s.entries(11, 13, unlimited) == run(11, {7, 8}));
}

TEST_CASE("the hard state is kept and reported in the initial state") {
  memory_storage s = storage_3_to_5();
  const hard_state hs{.term = 5, .vote = 2, .commit = 4};
  s.set_hard_state(hs);
  CHECK(s.hard_state() == hs);
  CHECK(s.initial_state().hard_state == hs);
  CHECK(s.initial_state().conf_state == snap_at(3, 3).metadata.conf);
}
