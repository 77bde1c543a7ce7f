// The WAL on the real file system: appends, syncs, recovery, overwrite,
// segment rolls and release, snapshots, torn tails and corruption, both
// write paths, and Raft running on it.
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "keel/raft/raw_node.hpp"
#include "keel/wal/wal.hpp"
#include "wal_test_support.hpp"

using keel::errc;
using keel::raft::entry;
using keel::raft::hard_state;
using keel::wal::open_mode;
using keel::wal::options;
using keel::wal::posix_file_system;
using keel::wal::recovery_report;
using keel::wal::write_mode;
using posix_wal = keel::wal::wal<posix_file_system>;
using keel::test::make_entries;
using keel::test::temp_dir;

namespace {

posix_wal open_ok(const std::string& dir, options opts, recovery_report* report = nullptr) {
  recovery_report local;
  if (report == nullptr) report = &local;
  auto w = posix_wal::open(posix_file_system{}, dir, opts, report);
  if (!w) FAIL("open failed: " << w.error().message() << ": " << report->describe());
  return std::move(*w);
}

std::vector<entry> all_entries(const posix_wal& w) {
  if (w.last_index() < w.first_index()) return {};
  auto e = w.entries(w.first_index(), w.last_index() + 1, UINT64_MAX);
  REQUIRE(e);
  return *e;
}

std::size_t count_segments(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".wal") ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("wal: a new directory holds an empty log", "[wal]") {
  temp_dir dir;
  auto mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  auto w = open_ok(dir.path(), options{.mode = mode});
  CHECK(w.first_index() == 1);
  CHECK(w.last_index() == 0);
  CHECK(w.initial_state().hard_state.empty());
  CHECK(w.term(0).value() == 0);
  CHECK(w.term(1).error() == errc::unavailable);
  CHECK(w.snapshot().value().empty());
  CHECK(count_segments(dir.path()) == 1);
}

TEST_CASE("wal: synced entries and hard state survive a reopen", "[wal]") {
  temp_dir dir;
  auto mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  const auto ents = make_entries(1, 100, 1, 300);
  const hard_state hs{.term = 1, .vote = 2, .commit = 50};
  {
    auto w = open_ok(dir.path(), options{.mode = mode});
    REQUIRE_FALSE(w.append(std::span(ents).first(60)));
    REQUIRE_FALSE(w.append(std::span(ents).subspan(60), hs));
    REQUIRE_FALSE(w.sync());
    CHECK(w.last_index() == 100);
  }
  recovery_report report;
  auto w = open_ok(dir.path(), options{.mode = mode}, &report);
  CHECK(all_entries(w) == ents);
  CHECK(w.hard_state() == hs);
  CHECK(w.initial_state().hard_state == hs);
  CHECK_FALSE(report.torn_file.has_value());
  CHECK(report.records >= 101);
  // And it keeps appending after what it recovered.
  const auto more = make_entries(101, 120, 2, 10);
  REQUIRE_FALSE(w.append(more));
  REQUIRE_FALSE(w.sync());
  auto w2 = open_ok(dir.path(), options{.mode = mode});
  CHECK(w2.last_index() == 120);
  CHECK(w2.term(120).value() == 2);
}

TEST_CASE("wal: a conflicting suffix is replaced, also after recovery", "[wal]") {
  temp_dir dir;
  auto w = open_ok(dir.path(), {});
  REQUIRE_FALSE(w.append(make_entries(1, 10, 1, 8)));
  const auto overwrite = make_entries(6, 8, 2, 8);
  REQUIRE_FALSE(w.append(overwrite));
  REQUIRE_FALSE(w.sync());
  CHECK(w.last_index() == 8);
  CHECK(w.term(5).value() == 1);
  CHECK(w.term(6).value() == 2);
  auto r = open_ok(dir.path(), {});
  CHECK(all_entries(r) == all_entries(w));
  CHECK(r.last_index() == 8);
}

TEST_CASE("wal: entries that would leave a gap are refused and nothing changes", "[wal]") {
  temp_dir dir;
  auto w = open_ok(dir.path(), {});
  REQUIRE_FALSE(w.append(make_entries(1, 3, 1, 8)));
  CHECK(w.append(make_entries(5, 6, 1, 8)) == errc::index_out_of_range);
  auto unordered = make_entries(4, 6, 1, 8);
  std::swap(unordered[1], unordered[2]);
  CHECK(w.append(unordered) == errc::invalid_argument);
  REQUIRE_FALSE(w.sync());
  CHECK(w.last_index() == 3);
  auto r = open_ok(dir.path(), {});
  CHECK(r.last_index() == 3);
}

TEST_CASE("wal: segments roll, and compaction releases the old ones", "[wal]") {
  temp_dir dir;
  auto mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  const options opts{.segment_size = 8192, .mode = mode};
  auto w = open_ok(dir.path(), opts);
  REQUIRE_FALSE(w.set_metadata({.cluster_id = 7, .node_id = 3}));
  const auto ents = make_entries(1, 400, 1, 200);
  for (std::size_t i = 0; i < ents.size(); i += 10) {
    REQUIRE_FALSE(w.append(std::span(ents).subspan(i, 10),
                           hard_state{.term = 1, .vote = 1, .commit = i + 10}));
    REQUIRE_FALSE(w.sync());
  }
  const std::size_t segments = count_segments(dir.path());
  CHECK(segments > 10);
  {
    auto r = open_ok(dir.path(), opts);
    CHECK(all_entries(r) == ents);
    CHECK(r.hard_state().commit == 400);
  }
  const keel::raft::conf_state cs{.voters = {1, 2, 3}};
  auto snap = w.create_snapshot(300, cs, "snapshot-300");
  REQUIRE(snap);
  CHECK(snap->metadata.term == 1);
  REQUIRE_FALSE(w.compact(300));
  CHECK(w.first_index() == 301);
  CHECK(w.entries(300, 301, UINT64_MAX).error() == errc::compacted);
  CHECK(count_segments(dir.path()) < segments / 2);
  auto r = open_ok(dir.path(), opts);
  CHECK(r.first_index() == 301);
  CHECK(r.last_index() == 400);
  CHECK(r.term(300).value() == 1);
  CHECK(all_entries(r) == std::vector<entry>(ents.begin() + 300, ents.end()));
  CHECK(r.snapshot().value() == *snap);
  CHECK(r.initial_state().conf_state == cs);
  CHECK(r.hard_state().commit == 400);
  REQUIRE(r.metadata().has_value());
  CHECK(r.metadata()->cluster_id == 7);
  CHECK(r.metadata()->node_id == 3);
}

TEST_CASE("wal: an installed snapshot replaces the log", "[wal]") {
  temp_dir dir;
  auto w = open_ok(dir.path(), {});
  REQUIRE_FALSE(w.append(make_entries(1, 20, 1, 8)));
  keel::raft::snapshot snap{.metadata = {.index = 50, .term = 4, .conf = {.voters = {1, 2}}},
                            .data = "snap-50"};
  REQUIRE_FALSE(w.apply_snapshot(snap));
  CHECK(w.first_index() == 51);
  CHECK(w.last_index() == 50);
  CHECK(w.term(50).value() == 4);
  CHECK(w.apply_snapshot(snap) == errc::snapshot_out_of_date);
  REQUIRE_FALSE(w.append(make_entries(51, 55, 4, 8)));
  REQUIRE_FALSE(w.sync());
  auto r = open_ok(dir.path(), {});
  CHECK(r.first_index() == 51);
  CHECK(r.last_index() == 55);
  CHECK(r.snapshot().value() == snap);
}

TEST_CASE("wal: entries() honours max_bytes and its ranges", "[wal]") {
  temp_dir dir;
  auto w = open_ok(dir.path(), {});
  REQUIRE_FALSE(w.append(make_entries(1, 10, 1, 100)));
  CHECK(w.entries(1, 11, 250).value().size() == 2);
  CHECK(w.entries(1, 11, 0).value().size() == 1);
  CHECK(w.entries(1, 12, UINT64_MAX).error() == errc::unavailable);
  CHECK(w.entries(0, 2, UINT64_MAX).error() == errc::compacted);
}

TEST_CASE("wal: a torn tail is cut off and appending continues", "[wal]") {
  temp_dir dir;
  auto mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  {
    auto w = open_ok(dir.path(), options{.mode = mode});
    REQUIRE_FALSE(w.append(make_entries(1, 5, 1, 50)));
    REQUIRE_FALSE(w.sync());
  }
  // Tear the last record: its final bytes never reached the disk.
  const std::string seg = dir.path() + "/" + keel::wal::segment_name(1);
  auto data = keel::test::read_bytes(seg);
  std::size_t last = data.size();
  while (last > 0 && data[last - 1] == 0) --last;
  for (std::size_t i = last - 20; i < last; ++i) data[i] = 0;
  keel::test::write_bytes(seg, data);

  recovery_report report;
  auto w = open_ok(dir.path(), options{.mode = mode}, &report);
  REQUIRE(report.torn_file.has_value());
  CHECK(*report.torn_file == seg);
  CHECK(w.last_index() == 4);
  REQUIRE_FALSE(w.append(make_entries(5, 8, 2, 50)));
  REQUIRE_FALSE(w.sync());
  recovery_report again;
  auto r = open_ok(dir.path(), options{.mode = mode}, &again);
  CHECK_FALSE(again.torn_file.has_value());
  CHECK(r.last_index() == 8);
  CHECK(r.term(5).value() == 2);
}

TEST_CASE("wal: a damaged record before the tail refuses to open and names where", "[wal]") {
  temp_dir dir;
  {
    auto w = open_ok(dir.path(), {});
    REQUIRE_FALSE(w.append(make_entries(1, 50, 1, 64)));
    REQUIRE_FALSE(w.sync());
  }
  const std::string seg = dir.path() + "/" + keel::wal::segment_name(1);
  auto data = keel::test::read_bytes(seg);
  const std::size_t at = 1000;  // Inside an entry record in the middle.
  data[at] ^= 0x10;
  keel::test::write_bytes(seg, data);
  recovery_report report;
  auto w = posix_wal::open(posix_file_system{}, dir.path(), {}, &report);
  REQUIRE_FALSE(w);
  CHECK(w.error() == errc::corrupt_wal);
  CHECK(report.corrupt_file == seg);
  CHECK(report.corrupt_offset <= at);
  CHECK(report.corrupt_offset + 400 > at);
  CHECK(report.describe().find(seg) != std::string::npos);
}

TEST_CASE("wal: a missing segment in the middle is corruption", "[wal]") {
  temp_dir dir;
  const options opts{.segment_size = 4096};
  {
    auto w = open_ok(dir.path(), opts);
    for (std::uint64_t i = 1; i <= 200; i += 10) {
      REQUIRE_FALSE(w.append(make_entries(i, i + 9, 1, 100)));
      REQUIRE_FALSE(w.sync());
    }
  }
  std::filesystem::remove(dir.path() + "/" + keel::wal::segment_name(3));
  recovery_report report;
  auto w = posix_wal::open(posix_file_system{}, dir.path(), opts, &report);
  REQUIRE_FALSE(w);
  CHECK(w.error() == errc::corrupt_wal);
  CHECK(report.problem.find("missing") != std::string::npos);
}

TEST_CASE("wal: raft runs on it and recovers its log after a restart", "[wal]") {
  temp_dir dir;
  const keel::raft::config cfg{.id = 1, .election_tick = 10, .heartbeat_tick = 1};
  std::vector<entry> applied;
  {
    auto w = open_ok(dir.path(), {});
    REQUIRE_FALSE(w.apply_snapshot({.metadata = {.index = 1, .term = 1, .conf = {.voters = {1}}}}));
    REQUIRE_FALSE(w.sync());
    auto node = keel::raft::raw_node<posix_wal>::create(cfg, w);
    REQUIRE(node);
    node->campaign();
    for (int round = 0; round < 50; ++round) {
      if (round > 2) (void)node->propose("value-" + std::to_string(round));
      while (node->has_ready()) {
        auto rd = node->ready();
        REQUIRE_FALSE(w.append(rd.entries, rd.hard_state.value_or(hard_state{})));
        REQUIRE_FALSE(w.sync());
        for (const auto& e : rd.committed_entries) applied.push_back(e);
        node->advance();
      }
    }
  }
  REQUIRE(applied.size() > 40);
  auto w = open_ok(dir.path(), {});
  CHECK(w.hard_state().commit == applied.back().index);
  auto node = keel::raft::raw_node<posix_wal>::create(cfg, w);
  REQUIRE(node);
  auto stored = w.entries(2, w.last_index() + 1, UINT64_MAX);
  REQUIRE(stored);
  CHECK(*stored == applied);
}

TEST_CASE("wal: compaction after an append that spanned segments keeps what it must", "[wal]") {
  temp_dir dir;
  const options opts{.segment_size = 8192};
  {
    auto w = open_ok(dir.path(), opts);
    REQUIRE_FALSE(w.append(make_entries(1, 40, 1, 300), {.term = 1, .vote = 1, .commit = 30}));
    REQUIRE_FALSE(w.sync());
    REQUIRE(w.create_snapshot(20, {.voters = {1}}, "snap"));
    REQUIRE_FALSE(w.compact(20));
  }
  auto r = open_ok(dir.path(), opts);
  CHECK(r.first_index() == 21);
  CHECK(r.last_index() == 40);
  CHECK(all_entries(r) == make_entries(21, 40, 1, 300));
}

TEST_CASE("wal: entries beyond the cache are read back from their segments", "[wal]") {
  temp_dir dir;
  auto mode = GENERATE(write_mode::mmap, write_mode::pwrite);
  const options opts{.segment_size = 8192, .mode = mode, .cache_bytes = 1000};
  const auto ents = make_entries(1, 200, 3, 250);
  {
    auto w = open_ok(dir.path(), opts);
    for (std::size_t i = 0; i < ents.size(); i += 20) {
      REQUIRE_FALSE(w.append(std::span(ents).subspan(i, 20)));
      REQUIRE_FALSE(w.sync());
    }
    // Overwrite a suffix, crossing the cached/evicted boundary.
    const auto newer = make_entries(190, 205, 4, 90);
    REQUIRE_FALSE(w.append(newer));
    REQUIRE_FALSE(w.sync());
    auto expected = std::vector<entry>(ents.begin(), ents.begin() + 189);
    expected.insert(expected.end(), newer.begin(), newer.end());
    CHECK(all_entries(w) == expected);
    CHECK(w.entries(10, 12, UINT64_MAX).value() ==
          std::vector<entry>(ents.begin() + 9, ents.begin() + 11));
    // max_bytes counts evicted entries too.
    CHECK(w.entries(1, 100, 1000).value().size() < 5);
  }
  auto r = open_ok(dir.path(), opts);
  CHECK(r.last_index() == 205);
  CHECK(all_entries(r).front() == ents.front());
  CHECK(r.term(205).value() == 4);
  // A record damaged after recovery is reported, not returned.
  const std::string seg = dir.path() + "/" + keel::wal::segment_name(1);
  auto data = keel::test::read_bytes(seg);
  data[200] ^= 0x01;
  keel::test::write_bytes(seg, data);
  CHECK(r.entries(1, 3, UINT64_MAX).error() == errc::corrupt_wal);
}
