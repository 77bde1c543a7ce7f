// raft_log: the durable log read through the storage policy plus the
// unstable tail, with the commit and apply cursors. Cases follow
// etcd-io/raft's log_test.go where the behaviour is the same.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/raft/log.hpp"
#include "keel/raft/memory_storage.hpp"

namespace {

using namespace keel::raft;
using keel::errc;
using log_type = raft_log<memory_storage>;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

entry ent(std::uint64_t index, std::uint64_t term, std::string data = {}) {
  return entry{.term = term, .index = index, .data = std::move(data)};
}

/// Entries (index, term) for consecutive indexes starting at `first`.
std::vector<entry> run(std::uint64_t first, std::vector<std::uint64_t> terms) {
  std::vector<entry> out;
  for (std::uint64_t t : terms) out.push_back(ent(first++, t));
  return out;
}

/// Storage holding a snapshot at (index, term) and nothing after it.
memory_storage storage_from_snapshot(std::uint64_t index, std::uint64_t term) {
  memory_storage s;
  snapshot snap;
  snap.metadata.index = index;
  snap.metadata.term = term;
  snap.metadata.conf.voters = {1};
  REQUIRE_FALSE(s.apply_snapshot(snap));
  return s;
}

std::vector<std::uint64_t> indexes(const std::vector<entry>& ents) {
  std::vector<std::uint64_t> out;
  for (const entry& e : ents) out.push_back(e.index);
  return out;
}

}  // namespace

TEST_CASE("a log over empty storage starts at index 1 with nothing committed or applied") {
  memory_storage storage;
  log_type log(storage, no_limit);
  CHECK(log.first_index() == 1);
  CHECK(log.last_index() == 0);
  CHECK(log.last_term() == 0);
  CHECK(log.committed() == 0);
  CHECK(log.applied() == 0);
  CHECK(log.unstable_entries().empty());
  CHECK_FALSE(log.has_next_committed());
}

TEST_CASE("a log over a snapshot starts right after it with the snapshot committed and applied") {
  memory_storage storage = storage_from_snapshot(5, 3);
  log_type log(storage, no_limit);
  CHECK(log.first_index() == 6);
  CHECK(log.last_index() == 5);
  CHECK(log.last_term() == 3);
  CHECK(log.committed() == 5);
  CHECK(log.applied() == 5);
  CHECK(*log.term(5) == 3);
}

TEST_CASE("term answers for the snapshot index, stored entries and unstable entries") {
  memory_storage storage = storage_from_snapshot(3, 3);
  REQUIRE_FALSE(storage.append(run(4, {4, 5})));
  log_type log(storage, no_limit);
  log.append(run(6, {6, 6}));
  CHECK(*log.term(3) == 3);
  CHECK(*log.term(4) == 4);
  CHECK(*log.term(5) == 5);
  CHECK(*log.term(6) == 6);
  CHECK(*log.term(7) == 6);
}

TEST_CASE("term below the snapshot index is compacted") {
  memory_storage storage = storage_from_snapshot(3, 3);
  log_type log(storage, no_limit);
  CHECK(log.term(2).error() == errc::compacted);
  CHECK(log.term(0).error() == errc::compacted);
  CHECK(log.term_or_zero(2) == 0);
}

TEST_CASE("term beyond the last index is unavailable") {
  memory_storage storage = storage_from_snapshot(3, 3);
  REQUIRE_FALSE(storage.append(run(4, {4})));
  log_type log(storage, no_limit);
  log.append(run(5, {5}));
  CHECK(log.term(6).error() == errc::unavailable);
  CHECK(log.term(1000).error() == errc::unavailable);
}

TEST_CASE("term of the largest possible index is unavailable, not compacted") {
  // storage.hpp: "errc::compacted below, errc::unavailable above" the range.
  memory_storage storage = storage_from_snapshot(3, 3);
  log_type log(storage, no_limit);
  CHECK(log.term(max_u64).error() == errc::unavailable);
}

TEST_CASE("match_term is true only for an entry present with that term") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 2}));
  CHECK(log.match_term(0, 0));
  CHECK(log.match_term(1, 1));
  CHECK(log.match_term(2, 2));
  CHECK_FALSE(log.match_term(2, 1));
  CHECK_FALSE(log.match_term(3, 2));
}

TEST_CASE("append adds entries after the last index and returns the new last index") {
  memory_storage storage;
  log_type log(storage, no_limit);
  CHECK(log.append(run(1, {1, 1})) == 2);
  CHECK(log.append(run(3, {2})) == 3);
  CHECK(indexes(log.unstable_entries()) == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(log.last_term() == 2);
}

TEST_CASE("append of nothing leaves the log as it was") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1}));
  CHECK(log.append({}) == 1);
  CHECK(log.unstable_entries().size() == 1);
}

TEST_CASE("append overlapping the unstable tail replaces the conflicting suffix") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 1, 1}));
  CHECK(log.append(run(2, {3})) == 2);
  CHECK(log.unstable_entries() == run(1, {1, 3}));
}

TEST_CASE("append below the unstable offset replaces stored entries from that index on") {
  memory_storage storage;
  REQUIRE_FALSE(storage.append(run(1, {1, 2, 3})));
  log_type log(storage, no_limit);
  CHECK(log.append(run(2, {4, 4})) == 3);
  CHECK(log.unstable_entries() == run(2, {4, 4}));
  CHECK(*log.term(1) == 1);
  CHECK(*log.term(2) == 4);
  CHECK(*log.term(3) == 4);
  CHECK(log.last_stable_index() == 1);
}

TEST_CASE("append_owned moves a leader's proposals onto the unstable tail") {
  memory_storage storage;
  REQUIRE_FALSE(storage.append(run(1, {1})));
  log_type log(storage, no_limit);
  CHECK(log.append_owned(run(2, {2, 2})) == 3);
  CHECK(log.append_owned(run(4, {2})) == 4);
  CHECK(log.unstable_entries() == run(2, {2, 2, 2}));
}

TEST_CASE("find_conflict returns the first entry that is new or differs, or 0") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 2, 3}));
  CHECK(log.find_conflict({}) == 0);
  // Everything already present.
  CHECK(log.find_conflict(run(1, {1, 2, 3})) == 0);
  CHECK(log.find_conflict(run(2, {2, 3})) == 0);
  CHECK(log.find_conflict(run(3, {3})) == 0);
  // New entries only.
  CHECK(log.find_conflict(run(1, {1, 2, 3, 4, 4})) == 4);
  CHECK(log.find_conflict(run(2, {2, 3, 4, 4})) == 4);
  CHECK(log.find_conflict(run(3, {3, 4, 4})) == 4);
  CHECK(log.find_conflict(run(4, {4, 4})) == 4);
  // Conflicting terms.
  CHECK(log.find_conflict(run(1, {4, 4})) == 1);
  CHECK(log.find_conflict(run(2, {1, 4, 4})) == 2);
  CHECK(log.find_conflict(run(3, {1, 2, 4, 4})) == 3);
}

TEST_CASE("find_conflict_by_term skips every entry whose term is above the probed term") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {2, 2, 5, 5, 5}));
  using p = std::pair<std::uint64_t, std::uint64_t>;
  CHECK(log.find_conflict_by_term(100, 2) == p{100, 0});  // Unavailable: unknown term.
  CHECK(log.find_conflict_by_term(5, 6) == p{5, 5});
  CHECK(log.find_conflict_by_term(5, 5) == p{5, 5});
  CHECK(log.find_conflict_by_term(5, 4) == p{2, 2});
  CHECK(log.find_conflict_by_term(5, 2) == p{2, 2});
  CHECK(log.find_conflict_by_term(5, 1) == p{0, 0});
  CHECK(log.find_conflict_by_term(1, 2) == p{1, 2});
  CHECK(log.find_conflict_by_term(1, 1) == p{0, 0});
  CHECK(log.find_conflict_by_term(0, 0) == p{0, 0});
}

TEST_CASE("find_conflict_by_term stops at the compacted part of the log") {
  memory_storage storage = storage_from_snapshot(10, 3);
  REQUIRE_FALSE(storage.append(run(11, {3, 3, 4, 4, 4})));
  log_type log(storage, no_limit);
  using p = std::pair<std::uint64_t, std::uint64_t>;
  CHECK(log.find_conflict_by_term(30, 3) == p{30, 0});
  CHECK(log.find_conflict_by_term(14, 9) == p{14, 4});
  CHECK(log.find_conflict_by_term(14, 4) == p{14, 4});
  CHECK(log.find_conflict_by_term(14, 3) == p{12, 3});
  CHECK(log.find_conflict_by_term(14, 2) == p{9, 0});
  CHECK(log.find_conflict_by_term(11, 5) == p{11, 3});
  CHECK(log.find_conflict_by_term(10, 5) == p{10, 3});
  CHECK(log.find_conflict_by_term(10, 3) == p{10, 3});
  CHECK(log.find_conflict_by_term(10, 2) == p{9, 0});
  CHECK(log.find_conflict_by_term(9, 2) == p{9, 0});
  CHECK(log.find_conflict_by_term(4, 2) == p{4, 0});
  CHECK(log.find_conflict_by_term(0, 0) == p{0, 0});
}

TEST_CASE("a log is up to date if its last term is higher, or equal with a last index no lower") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 2, 3}));
  const std::uint64_t last = log.last_index();
  // Higher last term wins whatever the length.
  CHECK(log.is_up_to_date(last - 1, 4));
  CHECK(log.is_up_to_date(last, 4));
  CHECK(log.is_up_to_date(last + 1, 4));
  // Lower last term loses whatever the length.
  CHECK_FALSE(log.is_up_to_date(last - 1, 2));
  CHECK_FALSE(log.is_up_to_date(last, 2));
  CHECK_FALSE(log.is_up_to_date(last + 1, 2));
  // Equal last term: the longer log wins, a tie is up to date.
  CHECK_FALSE(log.is_up_to_date(last - 1, 3));
  CHECK(log.is_up_to_date(last, 3));
  CHECK(log.is_up_to_date(last + 1, 3));
}

TEST_CASE("maybe_append refuses entries whose predecessor does not match") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 2, 3}));
  log.commit_to(1);
  CHECK_FALSE(log.maybe_append(3, 2, 3, run(4, {4})));  // Wrong term at index 3.
  CHECK_FALSE(log.maybe_append(4, 3, 3, run(5, {4})));  // Index 4 is missing.
  CHECK(log.last_index() == 3);
  CHECK(log.committed() == 1);
}

TEST_CASE("maybe_append without entries commits up to the smaller of the leader commit and index") {
  struct example {
    std::uint64_t index, log_term, commit, want_commit;
  };
  const example examples[] = {
      {3, 3, 3, 3},                // Commit what the leader committed.
      {3, 3, 4, 3},                // Never beyond the last new entry.
      {3, 3, 2, 2}, {3, 3, 0, 1},  // Never backwards.
      {0, 0, 3, 1},                // Last new entry is 0: nothing can be committed.
  };
  for (const example& x : examples) {
    INFO("index " << x.index << " log_term " << x.log_term << " commit " << x.commit);
    memory_storage storage;
    log_type log(storage, no_limit);
    log.append(run(1, {1, 2, 3}));
    log.commit_to(1);
    CHECK(log.maybe_append(x.index, x.log_term, x.commit, {}) == x.index);
    CHECK(log.committed() == x.want_commit);
    CHECK(log.last_index() == 3);
  }
}

TEST_CASE("maybe_append extends the log and commits the new entries the leader committed") {
  struct example {
    std::uint64_t index, log_term, commit;
    std::vector<entry> ents;
    std::uint64_t want_last_new, want_commit;
  };
  const std::vector<example> examples = {
      {3, 3, 3, run(4, {4}), 4, 3},
      {3, 3, 4, run(4, {4}), 4, 4},
      {3, 3, 5, run(4, {4}), 4, 4},
      {3, 3, 5, run(4, {4, 4}), 5, 5},
  };
  for (const example& x : examples) {
    INFO("index " << x.index << " commit " << x.commit << " entries " << x.ents.size());
    memory_storage storage;
    log_type log(storage, no_limit);
    log.append(run(1, {1, 2, 3}));
    log.commit_to(1);
    CHECK(log.maybe_append(x.index, x.log_term, x.commit, std::vector<entry>(x.ents)) ==
          x.want_last_new);
    CHECK(log.committed() == x.want_commit);
    CHECK(log.last_index() == x.want_last_new);
    CHECK(*log.term(x.want_last_new) == x.ents.back().term);
  }
}

TEST_CASE("maybe_append truncates a conflicting uncommitted suffix") {
  struct example {
    std::uint64_t index, log_term;
    std::vector<entry> ents;
    std::uint64_t want_last_new;
    std::vector<entry> want_log;
  };
  const std::vector<example> examples = {
      {2, 2, run(3, {4}), 3, run(1, {1, 2, 4})},
      {1, 1, run(2, {4}), 2, run(1, {1, 4})},
      {1, 1, run(2, {4, 4}), 3, run(1, {1, 4, 4})},
  };
  for (const example& x : examples) {
    INFO("index " << x.index << " log_term " << x.log_term);
    memory_storage storage;
    log_type log(storage, no_limit);
    log.append(run(1, {1, 2, 3}));
    log.commit_to(1);
    CHECK(log.maybe_append(x.index, x.log_term, 3, std::vector<entry>(x.ents)) == x.want_last_new);
    CHECK(log.unstable_entries() == x.want_log);
    CHECK(log.committed() == x.want_last_new);
  }
}

TEST_CASE("maybe_append refuses to overwrite a committed entry") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 2, 3}));
  log.commit_to(2);
  CHECK_FALSE(log.maybe_append(1, 1, 3, run(2, {4})));
  CHECK(log.unstable_entries() == run(1, {1, 2, 3}));
  CHECK(log.committed() == 2);
}

TEST_CASE("maybe_append of entries already present changes nothing but the commit index") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 2, 3}));
  CHECK(log.maybe_append(0, 0, 2, run(1, {1, 2})) == 2);
  CHECK(log.last_index() == 3);  // A shorter append never truncates.
  CHECK(log.committed() == 2);
}

TEST_CASE("maybe_commit commits only an entry of the given term") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 2, 2}));
  CHECK_FALSE(log.maybe_commit(1, 2));  // Entry 1 is of term 1.
  CHECK(log.committed() == 0);
  CHECK(log.maybe_commit(2, 2));
  CHECK(log.committed() == 2);
  CHECK_FALSE(log.maybe_commit(1, 1));  // Never backwards.
  CHECK_FALSE(log.maybe_commit(4, 2));  // Not in the log.
  CHECK(log.committed() == 2);
}

TEST_CASE("commit_to never moves the commit index backwards") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 1, 1}));
  log.commit_to(2);
  log.commit_to(1);
  CHECK(log.committed() == 2);
}

TEST_CASE("commit_to beyond the last index commits only up to the last index") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 1}));
  log.commit_to(max_u64);
  CHECK(log.committed() == 2);
}

TEST_CASE("slice returns entries across the stored and unstable parts") {
  memory_storage storage = storage_from_snapshot(3, 3);
  REQUIRE_FALSE(storage.append(run(4, {3, 4})));
  log_type log(storage, no_limit);
  log.append(run(6, {4, 5}));
  CHECK(*log.slice(4, 8, no_limit) == run(4, {3, 4, 4, 5}));
  CHECK(*log.slice(4, 6, no_limit) == run(4, {3, 4}));
  CHECK(*log.slice(5, 7, no_limit) == run(5, {4, 4}));
  CHECK(*log.slice(6, 8, no_limit) == run(6, {4, 5}));
  CHECK(log.slice(5, 5, no_limit)->empty());
}

TEST_CASE("slice of a range not in the log is an error") {
  memory_storage storage = storage_from_snapshot(3, 3);
  REQUIRE_FALSE(storage.append(run(4, {3, 4})));
  log_type log(storage, no_limit);
  log.append(run(6, {4}));
  CHECK(log.slice(3, 5, no_limit).error() == errc::compacted);
  CHECK(log.slice(0, 5, no_limit).error() == errc::compacted);
  CHECK(log.slice(4, 8, no_limit).error() == errc::unavailable);
  CHECK(log.slice(5, 4, no_limit).error() == errc::index_out_of_range);
}

TEST_CASE("slice stops before the size limit but always returns one entry") {
  memory_storage storage;
  REQUIRE_FALSE(storage.append({ent(1, 1, std::string(10, 'a')), ent(2, 1, std::string(10, 'b'))}));
  log_type log(storage, no_limit);
  log.append(std::vector<entry>{ent(3, 1, std::string(10, 'c')), ent(4, 1, std::string(10, 'd'))});
  CHECK(indexes(*log.slice(1, 5, 0)) == std::vector<std::uint64_t>{1});
  CHECK(indexes(*log.slice(1, 5, 19)) == std::vector<std::uint64_t>{1});
  CHECK(indexes(*log.slice(1, 5, 20)) == std::vector<std::uint64_t>{1, 2});
  CHECK(indexes(*log.slice(1, 5, 29)) == std::vector<std::uint64_t>{1, 2});
  CHECK(indexes(*log.slice(1, 5, 30)) == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(indexes(*log.slice(1, 5, 40)) == std::vector<std::uint64_t>{1, 2, 3, 4});
  CHECK(indexes(*log.slice(3, 5, 0)) == std::vector<std::uint64_t>{3});
  CHECK(indexes(*log.slice(2, 5, 25)) == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("entries_from past the last index is empty") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 1}));
  CHECK(*log.entries_from(2, no_limit) == run(2, {1}));
  CHECK(log.entries_from(3, no_limit)->empty());
  CHECK(log.entries_from(max_u64, no_limit)->empty());
}

TEST_CASE("next_committed hands out committed entries after the applied index") {
  memory_storage storage;
  REQUIRE_FALSE(storage.append(run(1, {1, 1})));
  log_type log(storage, no_limit);
  log.append(run(3, {1, 1}));
  CHECK_FALSE(log.has_next_committed());
  log.commit_to(3);
  CHECK(log.has_next_committed());
  CHECK(indexes(log.next_committed()) == std::vector<std::uint64_t>{1, 2, 3});
  log.applied_to(2);
  CHECK(indexes(log.next_committed()) == std::vector<std::uint64_t>{3});
  log.applied_to(3);
  CHECK_FALSE(log.has_next_committed());
  CHECK(log.next_committed().empty());
}

TEST_CASE("next_committed is bounded by the committed size per ready") {
  memory_storage storage;
  log_type log(storage, 15);
  log.append(std::vector<entry>{ent(1, 1, std::string(10, 'a')), ent(2, 1, std::string(10, 'b')),
                                ent(3, 1, std::string(10, 'c'))});
  log.commit_to(3);
  CHECK(indexes(log.next_committed()) == std::vector<std::uint64_t>{1});
  log.applied_to(1);
  CHECK(indexes(log.next_committed()) == std::vector<std::uint64_t>{2});
}

TEST_CASE("stable_to drops durable entries from the unstable tail") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 1, 2}));
  REQUIRE_FALSE(storage.append(run(1, {1, 1})));
  log.stable_to(2, 1);
  CHECK(log.unstable_entries() == run(3, {2}));
  CHECK(log.last_stable_index() == 2);
  CHECK(log.last_index() == 3);
  CHECK(*log.term(1) == 1);
}

TEST_CASE("stable_to with a term that no longer matches is ignored") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 1}));
  log.append(run(2, {2}));  // Entry 2 was replaced before it was made durable.
  log.stable_to(2, 1);
  CHECK(log.unstable_entries() == run(1, {1, 2}));
  log.stable_to(5, 2);  // Not in the log at all.
  CHECK(log.unstable_entries().size() == 2);
}

TEST_CASE("restore replaces the log by a snapshot that is committed and pending") {
  memory_storage storage;
  log_type log(storage, no_limit);
  log.append(run(1, {1, 1, 1}));
  log.commit_to(1);
  snapshot snap;
  snap.metadata.index = 10;
  snap.metadata.term = 4;
  snap.metadata.conf.voters = {1, 2};
  log.restore(snap);
  CHECK(log.first_index() == 11);
  CHECK(log.last_index() == 10);
  CHECK(log.committed() == 10);
  CHECK(*log.term(10) == 4);
  CHECK(log.term(9).error() == errc::compacted);
  CHECK(log.unstable_entries().empty());
  REQUIRE(log.unstable_snapshot());
  CHECK(*log.unstable_snapshot() == snap);
  CHECK(*log.snapshot() == snap);
}

TEST_CASE("entries appended after a restored snapshot follow it") {
  memory_storage storage;
  log_type log(storage, no_limit);
  snapshot snap;
  snap.metadata.index = 10;
  snap.metadata.term = 4;
  log.restore(snap);
  CHECK(log.maybe_append(10, 4, 11, run(11, {4, 5})) == 12);
  CHECK(log.committed() == 11);
  CHECK(*log.slice(11, 13, no_limit) == run(11, {4, 5}));
  log.stable_snap_to(10);
  CHECK_FALSE(log.unstable_snapshot());
}
