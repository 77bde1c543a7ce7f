// A real process is killed mid-write: a child appends and syncs on the real
// disk and reports each synced index through a pipe; the parent kills it
// with SIGKILL after a random number of reports, recovers the WAL, and
// checks every reported entry. The next child continues on the recovered
// WAL, so recovery is chained over many kills, in both write paths.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "keel/wal/wal.hpp"
#include "wal_test_support.hpp"

using keel::wal::options;
using keel::wal::posix_file_system;
using keel::wal::write_mode;
using posix_wal = keel::wal::wal<posix_file_system>;

namespace {

struct report {
  std::uint64_t index;
  std::uint64_t term;
};

/// The child: appends batches forever, reporting after each sync.
[[noreturn]] void child_main(const std::string& dir, write_mode mode, std::uint64_t term, int out) {
  auto w =
      posix_wal::open(posix_file_system{}, dir, options{.segment_size = 1 << 16, .mode = mode});
  if (!w) _exit(3);
  std::mt19937_64 rng(term);
  for (;;) {
    const std::uint64_t next = w->last_index() + 1;
    const std::uint64_t count = 1 + rng() % 8;
    const auto ents = keel::test::make_entries(next, next + count - 1, term, 1 + rng() % 700);
    if (w->append(ents, {.term = term, .vote = 1, .commit = next - 1})) _exit(4);
    if (w->sync()) _exit(5);
    const report r{next + count - 1, term};
    if (::write(out, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) _exit(6);
  }
}

}  // namespace

TEST_CASE("wal: a process killed at random moments loses nothing it synced", "[wal][kill]") {
  keel::test::temp_dir dir;
  std::mt19937_64 rng(2026);
  std::map<std::uint64_t, std::uint64_t> acked;  // index -> term, as last reported
  std::uint64_t acked_last = 0;
  for (std::uint64_t round = 1; round <= 24; ++round) {
    const write_mode mode = round % 2 == 0 ? write_mode::mmap : write_mode::pwrite;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      child_main(dir.path(), mode, round, fds[1]);
    }
    ::close(fds[1]);
    const std::uint64_t wanted = 1 + rng() % 200;
    std::uint64_t got = 0;
    auto read_report = [&]() {
      report r{};
      if (::read(fds[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) return false;
      // A report covers every index up to r.index, written by this round.
      for (std::uint64_t i = acked_last + 1; i <= r.index; ++i) acked[i] = r.term;
      for (auto it = acked.upper_bound(r.index); it != acked.end();) it = acked.erase(it);
      acked_last = r.index;
      ++got;
      return true;
    };
    while (got < wanted && read_report()) {
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    while (read_report()) {  // Reports written before it died.
    }
    ::close(fds[0]);
    REQUIRE(got >= wanted);

    keel::wal::recovery_report rep;
    auto w =
        posix_wal::open(posix_file_system{}, dir.path(), options{.segment_size = 1 << 16}, &rep);
    INFO("round " << round << ": " << rep.describe());
    REQUIRE(w);
    REQUIRE(w->last_index() >= acked_last);
    for (const auto& [index, term] : acked) {
      auto e = w->entries(index, index + 1, UINT64_MAX);
      REQUIRE(e);
      REQUIRE(e->front().term == term);
      REQUIRE(e->front() ==
              keel::test::make_entries(index, index, term, e->front().data.size())[0]);
    }
    // Entries synced but not yet reported count as acknowledged from now on.
    for (std::uint64_t i = acked_last + 1; i <= w->last_index(); ++i) {
      acked[i] = w->term(i).value();
    }
    acked_last = w->last_index();
  }
  CHECK(acked_last > 100);
}
