// Crash-point enumeration on the simulated disk: a workload of appends,
// syncs, overwrites, segment rolls and compaction is cut by a power loss
// before every one of its disk operations, with the last write torn at
// every byte (up to a bound, then sampled). After recovery the log must be
// what the synced operations made it, plus at most a prefix of what came
// after the last sync: every synced entry present and in order, the hard
// state never older than the last synced one, nothing else invented. And
// the recovered WAL must take appends again.
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "keel/sim/disk.hpp"
#include "keel/wal/wal.hpp"
#include "wal_test_support.hpp"

using keel::raft::entry;
using keel::raft::hard_state;
using keel::sim::disk;
using keel::sim::disk_file_system;
using keel::wal::options;
using keel::wal::write_mode;
using sim_wal = keel::wal::wal<disk_file_system>;

namespace {

/// What the log should hold: the test's own model, independent of the WAL.
struct model {
  std::uint64_t anchor = 0;
  std::map<std::uint64_t, entry> entries;
  hard_state hs;

  void apply(const entry& e) {
    if (e.index <= anchor) return;
    entries.erase(entries.lower_bound(e.index), entries.end());
    entries[e.index] = e;
  }
  void compact(std::uint64_t i) {
    entries.erase(entries.begin(), entries.upper_bound(i));
    anchor = i;
  }
};

/// One change the workload makes, in the order its records are written.
using change = std::variant<entry, hard_state, std::uint64_t /* compaction */>;

void apply(model& m, const change& c) {
  if (const auto* e = std::get_if<entry>(&c)) {
    m.apply(*e);
  } else if (const auto* hs = std::get_if<hard_state>(&c)) {
    m.hs = *hs;
  } else {
    m.compact(std::get<std::uint64_t>(c));
  }
}

/// What the workload got acknowledged: the model as of the last successful
/// sync, and the changes attempted after it.
struct journal {
  model synced;
  std::vector<change> pending;
  bool finished = false;
};

/// Runs the workload until it finishes or an operation fails.
journal run_workload(disk_file_system fs, write_mode mode) {
  journal j;
  model live;
  auto w = sim_wal::open(fs, "/wal", options{.segment_size = 4096, .mode = mode});
  if (!w) return j;
  auto synced = [&] {
    j.synced = live;
    j.pending.clear();
  };
  auto append = [&](std::vector<entry> ents, hard_state hs) {
    for (const auto& e : ents) j.pending.push_back(e), apply(live, e);
    if (!hs.empty()) j.pending.push_back(hs), apply(live, hs);
    return !w->append(ents, hs);
  };
  std::uint64_t next = 1;
  std::uint64_t term = 1;
  for (int round = 0; round < 24; ++round) {
    if (round == 10) {
      // A new leader overwrites the last two entries.
      ++term;
      next -= 2;
    }
    const std::size_t size = 40 + static_cast<std::size_t>(round * 37 % 300);
    auto ents = keel::test::make_entries(next, next + 2, term, size);
    next += 3;
    if (!append(ents, hard_state{.term = term, .vote = 1, .commit = next - 3})) return j;
    if (round % 3 != 1) {
      if (w->sync()) return j;
      synced();
    }
    if (round == 16) {
      j.pending.push_back(std::uint64_t{20});
      apply(live, std::uint64_t{20});
      if (w->compact(20)) return j;
      synced();
    }
  }
  if (w->sync()) return j;
  synced();
  j.finished = true;
  return j;
}

/// Whether the recovered WAL holds `m` exactly.
bool holds(const sim_wal& w, const model& m, std::string& why) {
  if (w.hard_state() != m.hs) {
    why = "hard state differs";
    return false;
  }
  const std::uint64_t last = m.entries.empty() ? m.anchor : m.entries.rbegin()->first;
  if (w.last_index() != last) {
    why = "last index " + std::to_string(w.last_index()) + " != " + std::to_string(last);
    return false;
  }
  if (w.first_index() != m.anchor + 1) {
    why = "first index " + std::to_string(w.first_index()) + " != " + std::to_string(m.anchor + 1);
    return false;
  }
  for (const auto& [i, e] : m.entries) {
    auto got = w.entries(i, i + 1, UINT64_MAX);
    if (!got || got->front() != e) {
      why = "entry " + std::to_string(i) + " differs";
      return false;
    }
  }
  return true;
}

/// Recovery must yield the synced model plus a prefix of the pending changes.
std::string check_recovery(disk& d, const journal& j, write_mode mode) {
  keel::wal::recovery_report report;
  auto w =
      sim_wal::open(d.file_system(), "/wal", options{.segment_size = 4096, .mode = mode}, &report);
  if (!w) return "recovery failed: " + w.error().message() + ": " + report.describe();
  model candidate = j.synced;
  std::string why;
  bool matched = holds(*w, candidate, why);
  for (std::size_t k = 0; !matched && k < j.pending.size(); ++k) {
    apply(candidate, j.pending[k]);
    matched = holds(*w, candidate, why);
  }
  if (!matched) return "recovered log matches no acceptable state (" + why + ")";
  // The recovered WAL takes appends again, and they survive a clean reopen.
  const std::uint64_t next = w->last_index() + 1;
  const std::uint64_t term = w->hard_state().term + 5;
  if (w->append(keel::test::make_entries(next, next, term, 33), {.term = term, .vote = 2})) {
    return "append after recovery failed";
  }
  if (w->sync()) return "sync after recovery failed";
  auto again =
      sim_wal::open(d.file_system(), "/wal", options{.segment_size = 4096, .mode = mode}, &report);
  if (!again) return "second recovery failed: " + report.describe();
  if (again->last_index() != next || again->term(next).value_or(0) != term) {
    return "entry appended after recovery lost";
  }
  return "";
}

}  // namespace

TEST_CASE("wal crash points: every cut and tear recovers an acknowledged state", "[wal][crash]") {
  const write_mode mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  // How many operations the whole workload makes.
  std::uint64_t total = 0;
  {
    disk d;
    REQUIRE(run_workload(d.file_system(), mode).finished);
    total = d.operations();
  }
  REQUIRE(total > 40);
  std::uint64_t recoveries = 0;
  for (std::uint64_t cut = 0; cut <= total; ++cut) {
    std::vector<std::uint64_t> tears;
    for (std::uint64_t t = 0; t <= 600; ++t) tears.push_back(t);
    for (std::uint64_t t = 601; t < 9000; t += 97) tears.push_back(t);
    for (const std::uint64_t torn : tears) {
      disk d;
      d.freeze_after(cut);
      const journal j = run_workload(d.file_system(), mode);
      d.crash(torn);
      const std::string problem = check_recovery(d, j, mode);
      ++recoveries;
      if (!problem.empty()) {
        FAIL("mode " << to_string(mode) << ", cut before operation " << cut << " of " << total
                     << ", torn " << torn << " bytes: " << problem);
      }
    }
  }
  CHECK(recoveries > 1000);
}

TEST_CASE("wal faults: a failed sync stops the WAL for good", "[wal][faults]") {
  const write_mode mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  disk d;
  auto w = sim_wal::open(d.file_system(), "/wal", options{.mode = mode});
  REQUIRE(w);
  REQUIRE_FALSE(w->append(keel::test::make_entries(1, 3, 1, 100), {.term = 1, .commit = 1}));
  REQUIRE_FALSE(w->sync());
  REQUIRE_FALSE(w->append(keel::test::make_entries(4, 5, 1, 100)));
  d.fail_next(mode == write_mode::mmap ? keel::sim::op::map_sync : keel::sim::op::sync,
              std::make_error_code(std::errc::io_error));
  CHECK(w->sync() == std::errc::io_error);
  CHECK(w->failure() == std::errc::io_error);
  // Never retried, never ignored: every later write is refused.
  CHECK(w->sync() == keel::errc::wal_failed);
  CHECK(w->append(keel::test::make_entries(6, 6, 1, 100)) == keel::errc::wal_failed);
  CHECK(w->compact(2) == keel::errc::wal_failed);
  // What was synced before is still there after a restart.
  d.crash();
  auto r = sim_wal::open(d.file_system(), "/wal", options{.mode = mode});
  REQUIRE(r);
  CHECK(r->last_index() >= 3);
  CHECK(r->hard_state().commit == 1);
}

TEST_CASE("wal faults: no space for the next segment acknowledges nothing", "[wal][faults]") {
  const write_mode mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  disk d;
  const options opts{.segment_size = 8192, .mode = mode, .preallocate_at_percent = 100};
  auto w = sim_wal::open(d.file_system(), "/wal", opts);
  REQUIRE(w);
  REQUIRE_FALSE(w->append(keel::test::make_entries(1, 10, 1, 300), {.term = 1, .commit = 5}));
  REQUIRE_FALSE(w->sync());
  d.set_capacity(d.used_bytes());  // The disk is full.
  // This append needs a new segment: refused with a clear error.
  std::error_code ec;
  std::uint64_t next = 11;
  for (; next < 100 && !ec; next += 5) {
    ec = w->append(keel::test::make_entries(next, next + 4, 1, 300));
    if (!ec) ec = w->sync();
  }
  CHECK(ec == keel::errc::no_space);
  CHECK_FALSE(w->failure());
  const std::uint64_t last = w->last_index();
  CHECK(last == next - 6);
  // Synced entries are intact after a crash; the refused ones never appear.
  d.crash();
  auto r = sim_wal::open(d.file_system(), "/wal", opts);
  REQUIRE(r);
  CHECK(r->last_index() == last);
  // With space again, appending continues.
  d.set_capacity(UINT64_MAX);
  REQUIRE_FALSE(r->append(keel::test::make_entries(last + 1, last + 5, 1, 300)));
  REQUIRE_FALSE(r->sync());
  CHECK(r->last_index() == last + 5);
}
