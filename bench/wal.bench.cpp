// The WAL benchmark: keel's write-ahead log (keel/wal/wal.hpp) on a real
// disk, each case measured beside a raw peer that does the least the same
// guarantee needs with plain POSIX calls, in the same process and the same
// directory (see docs/benchmarks.md, "wal").
//
//   keel_wal_bench --dir=D [--benchtime=S] [--recovery-mib=N] [--reverse]
//                  [--cases=sync_append_256b,group_commit,recovery] [--modes=mmap,pwrite]
//
// Cases, each run once per write mode, keel and its peer back to back: for
// each case mmap (keel, then raw) and pwrite (raw, then keel); --reverse
// runs each case's four measurements in the opposite order, so that a
// script alternating it between runs gives each side and mode the first
// place equally often:
//   sync_append_256b  keel: append one 256-byte entry, sync; repeat.
//                     raw-fsync: pwrite 4 KiB at the next offset, fdatasync.
//   group_commit      keel: append 1,024 entries of 1 KiB (1 MiB), sync.
//                     raw-seq-write: pwrite 1 MiB at the next offset, fdatasync.
//   recovery          keel: wal::open of a WAL of N MiB of 256-byte entries,
//                     page cache warm. raw-seq-read: pread the same files in
//                     1 MiB pieces.
// Both sides write into files of keel's segment size (64 MiB) reserved with
// posix_fallocate, and start a new one when the current one is full.
//
// One line per case, side and mode on stdout (anything else on stderr):
//   case=<c> side=<keel|raw-fsync|raw-seq-write|raw-seq-read> mode=<mmap|pwrite>
//       ops=<n> ns=<wall ns> ops_per_s=<x> bytes=<b> mb_per_s=<y>
// (one line; a raw line's mode is the keel mode it was measured beside).
// bytes: payload bytes (keel, writes), bytes written (raw), WAL record bytes
// recovered (keel, recovery), file bytes read (raw, recovery); MB = 1e6 bytes.
// Every file the program makes is removed before it exits, also on failure
// (on a signal, scripts/bench.sh removes the directory it passed).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/wal/wal.hpp"

namespace {

using keel::raft::entry;
using keel::wal::posix_file_system;
using keel::wal::write_mode;
using posix_wal = keel::wal::wal<posix_file_system>;
using clock_type = std::chrono::steady_clock;

/// keel's default segment size; the raw peers' files have the same size.
const std::uint64_t file_size = keel::wal::options{}.segment_size;

constexpr std::size_t sync_entry_bytes = 256;
constexpr std::size_t raw_sync_bytes = 4096;
constexpr std::size_t group_entry_bytes = 1024;
constexpr std::size_t group_entries = 1024;  // 1 MiB of payload per sync
constexpr std::size_t raw_group_bytes = std::size_t{1} << 20;
constexpr std::size_t recovery_batch = 4096;  // entries per sync while writing the WAL
constexpr std::size_t read_piece = std::size_t{1} << 20;

std::string work_dir;  // Removed by cleanup() whatever happens.

void cleanup() {
  if (work_dir.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(work_dir, ec);
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "keel_wal_bench: %s\n", why.c_str());
  cleanup();
  std::exit(1);
}

[[noreturn]] void fail_errno(const std::string& what) { fail(what + ": " + std::strerror(errno)); }

/// An empty directory under work_dir for one measurement.
std::string fresh_dir(const std::string& name) {
  const std::string d = work_dir + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
  if (!std::filesystem::create_directory(d, ec) || ec) fail("cannot create " + d);
  return d;
}

void remove_dir(const std::string& d) {
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
  if (ec) fail("cannot remove " + d + ": " + ec.message());
}

void report(const char* c, const char* side, write_mode mode, std::uint64_t ops,
            std::uint64_t bytes, clock_type::duration d) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  const double secs = static_cast<double>(ns) / 1e9;
  std::printf("case=%s side=%s mode=%s ops=%llu ns=%lld ops_per_s=%.1f bytes=%llu mb_per_s=%.2f\n",
              c, side, keel::wal::to_string(mode), static_cast<unsigned long long>(ops),
              static_cast<long long>(ns), secs > 0 ? static_cast<double>(ops) / secs : 0.0,
              static_cast<unsigned long long>(bytes),
              secs > 0 ? static_cast<double>(bytes) / 1e6 / secs : 0.0);
  std::fflush(stdout);
}

/// Payload bytes that are not all zeros (splitmix64 output).
std::string payload(std::size_t n, std::uint64_t seed) {
  std::string s(n, '\0');
  for (char& c : s) {
    std::uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    c = static_cast<char>(z ^ (z >> 31));
  }
  return s;
}

clock_type::duration seconds(double s) {
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
}

// --- keel ---------------------------------------------------------------------------

posix_wal open_wal(const std::string& dir, write_mode mode,
                   keel::wal::recovery_report* rep = nullptr) {
  keel::wal::recovery_report local;
  if (rep == nullptr) rep = &local;
  auto w = posix_wal::open(posix_file_system{}, dir, keel::wal::options{.mode = mode}, rep);
  if (!w) fail("wal::open(" + dir + "): " + w.error().message() + " (" + rep->describe() + ")");
  return std::move(*w);
}

/// Appends `batch` entries of `bytes` bytes and syncs, until `benchtime`
/// passed; one op is one sync. The WAL is opened (its first segment made)
/// before the clock starts.
void keel_appends(const char* c, write_mode mode, double benchtime, std::size_t bytes,
                  std::size_t batch) {
  const std::string dir = fresh_dir(std::string("keel-") + c);
  {
    posix_wal w = open_wal(dir, mode);
    // One shared payload: keel::bytes is reference counted, so the entries
    // the WAL keeps in memory cost no copy of it.
    const keel::bytes data(payload(bytes, 7));
    std::vector<entry> ents(batch, entry{.term = 1, .index = 0, .data = data});
    std::uint64_t next = 1, ops = 0;
    const auto start = clock_type::now();
    const auto until = start + seconds(benchtime);
    clock_type::time_point now;
    do {
      for (entry& e : ents) e.index = next++;
      if (auto ec = w.append(ents)) fail(std::string(c) + ": append: " + ec.message());
      if (auto ec = w.sync()) fail(std::string(c) + ": sync: " + ec.message());
      ++ops;
      now = clock_type::now();
    } while (now < until);
    const auto elapsed = now - start;
    if (w.last_index() != ops * batch || w.stats().appends != ops || w.stats().syncs < ops) {
      fail(std::string(c) + ": the WAL does not hold what was appended");
    }
    report(c, "keel", mode, ops, ops * batch * bytes, elapsed);
  }
  remove_dir(dir);
}

// --- raw peers ---------------------------------------------------------------------------

/// Files of file_size bytes reserved with posix_fallocate, written in
/// order: the least a log of preallocated files does per write and sync.
class raw_log {
 public:
  explicit raw_log(std::string dir) : dir_(std::move(dir)) { next_file(); }
  raw_log(const raw_log&) = delete;
  raw_log& operator=(const raw_log&) = delete;
  ~raw_log() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Writes `n` bytes at the next offset, then fdatasync.
  void write_and_sync(const void* data, std::size_t n) {
    if (offset_ + n > file_size) next_file();
    std::size_t done = 0;
    while (done < n) {
      const ssize_t w = ::pwrite(fd_, static_cast<const char*>(data) + done, n - done,
                                 static_cast<off_t>(offset_ + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail_errno("raw pwrite");
      }
      done += static_cast<std::size_t>(w);
    }
    if (::fdatasync(fd_) != 0) fail_errno("raw fdatasync");
    offset_ += n;
  }

 private:
  /// What keel does for a new segment, less its header records: reserve the
  /// file, make its size durable, make its name durable.
  void next_file() {
    if (fd_ >= 0) ::close(fd_);
    const std::string path = dir_ + "/raw-" + std::to_string(files_++);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_errno("raw open " + path);
    if (const int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(file_size)); rc != 0) {
      errno = rc;
      fail_errno("raw posix_fallocate " + path);
    }
    if (::fdatasync(fd_) != 0) fail_errno("raw fdatasync " + path);
    const int d = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0 || ::fsync(d) != 0) fail_errno("raw fsync of directory " + dir_);
    ::close(d);
    offset_ = 0;
  }

  std::string dir_;
  int fd_ = -1;
  int files_ = 0;
  std::uint64_t offset_ = 0;
};

struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

/// pwrite `bytes` + fdatasync at increasing offsets until `benchtime` passed.
void raw_appends(const char* c, const char* side, write_mode beside, double benchtime,
                 std::size_t bytes) {
  const std::string dir = fresh_dir(std::string("raw-") + c);
  {
    // Page-aligned, like the page cache pages keel's writes land in.
    std::unique_ptr<char, free_deleter> buf(static_cast<char*>(std::aligned_alloc(4096, bytes)));
    if (!buf) fail("out of memory");
    const std::string fill = payload(bytes, 11);
    std::memcpy(buf.get(), fill.data(), bytes);
    raw_log log(dir);
    std::uint64_t ops = 0;
    const auto start = clock_type::now();
    const auto until = start + seconds(benchtime);
    clock_type::time_point now;
    do {
      log.write_and_sync(buf.get(), bytes);
      ++ops;
      now = clock_type::now();
    } while (now < until);
    report(c, side, beside, ops, ops * bytes, now - start);
  }
  remove_dir(dir);
}

// --- recovery -----------------------------------------------------------------------------

/// Runs fn in a child process and waits for it; fails unless it exits 0.
/// A node recovers in a fresh process: its heap has yet to be faulted in.
/// Recovering in a heap that an earlier case already grew (and freed) would
/// skip that cost, and measured about twice as fast here for a 1 GiB WAL.
template <class Fn>
void in_child(const char* what, Fn fn) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid == 0) {
    fn();
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail_errno("waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail(std::string(what) + " failed");
}

/// The files of a directory, sorted by name.
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.is_regular_file()) out.push_back(f.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct written_wal {
  std::uint64_t entries = 0;
  std::uint64_t record_bytes = 0;  ///< Every record written, the segments' own included.
};

/// Writes a WAL of at least `mib` MiB of records, 256-byte entries synced
/// every recovery_batch entries, and closes it.
written_wal write_wal(const std::string& dir, write_mode mode, std::uint64_t mib) {
  posix_wal w = open_wal(dir, mode);
  const keel::bytes data(payload(sync_entry_bytes, 13));
  std::vector<entry> ents(recovery_batch, entry{.term = 1, .index = 0, .data = data});
  std::uint64_t next = 1;
  while (w.stats().bytes < (mib << 20)) {
    for (entry& e : ents) e.index = next++;
    if (auto ec = w.append(ents)) fail("recovery: append: " + ec.message());
    if (auto ec = w.sync()) fail("recovery: sync: " + ec.message());
  }
  return {next - 1, w.stats().bytes};
}

void keel_recovery(const std::string& dir, write_mode mode, const written_wal& written) {
  keel::wal::recovery_report rep;
  const auto start = clock_type::now();
  auto opened = posix_wal::open(posix_file_system{}, dir, keel::wal::options{.mode = mode}, &rep);
  const auto elapsed = clock_type::now() - start;
  if (!opened) {
    fail("recovery: wal::open: " + opened.error().message() + " (" + rep.describe() + ")");
  }
  // Check it all came back: every record, every entry, the last one intact.
  const posix_wal& w = *opened;
  if (rep.record_bytes != written.record_bytes || w.first_index() != 1 ||
      w.last_index() != written.entries || rep.torn_file) {
    fail("recovery: recovered " + rep.describe() + ", last index " +
         std::to_string(w.last_index()) + "; wrote " + std::to_string(written.entries) +
         " entries, " + std::to_string(written.record_bytes) + " record bytes");
  }
  auto last = w.entries(written.entries, written.entries + 1, UINT64_MAX);
  if (!last || last->size() != 1 || (*last)[0].data.view() != payload(sync_entry_bytes, 13)) {
    fail("recovery: the last entry did not come back intact");
  }
  report("recovery", "keel", mode, rep.records, rep.record_bytes, elapsed);
}

void raw_recovery(const std::string& dir, write_mode beside) {
  std::unique_ptr<char, free_deleter> buf(static_cast<char*>(std::aligned_alloc(4096, read_piece)));
  if (!buf) fail("out of memory");
  std::uint64_t pieces = 0, bytes = 0;
  unsigned char seen = 0;
  const auto start = clock_type::now();
  for (const std::string& path : files_in(dir)) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno("raw open " + path);
    for (std::uint64_t off = 0;;) {
      const ssize_t n = ::pread(fd, buf.get(), read_piece, static_cast<off_t>(off));
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_errno("raw pread " + path);
      }
      if (n == 0) break;
      seen ^= static_cast<unsigned char>(buf.get()[n - 1]);
      off += static_cast<std::uint64_t>(n);
      bytes += static_cast<std::uint64_t>(n);
      ++pieces;
    }
    ::close(fd);
  }
  const auto elapsed = clock_type::now() - start;
  std::fprintf(stderr, "(raw-seq-read: %zu files, last bytes' xor %u)\n", files_in(dir).size(),
               seen);
  report("recovery", "raw-seq-read", beside, pieces, bytes, elapsed);
}

// --- main ------------------------------------------------------------------------------

bool listed(const std::string& list, std::string_view item) {
  std::string_view rest = list;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    if (rest.substr(0, comma) == item) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "keel_wal_bench: %s\n"
               "usage: keel_wal_bench --dir=D [--benchtime=S] [--recovery-mib=N] "
               "[--reverse] [--cases=sync_append_256b,group_commit,recovery] "
               "[--modes=mmap,pwrite]\n",
               why.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool reverse = false;
  std::string cases = "sync_append_256b,group_commit,recovery", modes = "mmap,pwrite";
  double benchtime = 1.0;
  long long recovery_mib = 1024;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string_view key) -> const char* {
      return arg.starts_with(key) ? argv[i] + key.size() : nullptr;
    };
    if (const char* v = value("--dir=")) {
      dir = v;
    } else if (const char* v = value("--benchtime=")) {
      char* end = nullptr;
      benchtime = std::strtod(v, &end);
      if (*v == '\0' || *end != '\0' || !(benchtime > 0)) {
        usage("bad --benchtime: " + std::string(v));
      }
    } else if (const char* v = value("--recovery-mib=")) {
      char* end = nullptr;
      recovery_mib = std::strtoll(v, &end, 10);
      if (*v == '\0' || *end != '\0' || recovery_mib < 1 || recovery_mib > (1 << 20)) {
        usage("bad --recovery-mib: " + std::string(v));
      }
    } else if (arg == "--reverse") {
      reverse = true;
    } else if (const char* v = value("--cases=")) {
      cases = v;
    } else if (const char* v = value("--modes=")) {
      modes = v;
    } else {
      usage("unknown option " + std::string(arg));
    }
  }
  if (dir.empty()) usage("--dir is required (a directory on the disk to measure)");
  {
    std::string_view rest = cases;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view c = rest.substr(0, comma);
      if (c != "sync_append_256b" && c != "group_commit" && c != "recovery") {
        usage("unknown case " + std::string(c));
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  std::vector<write_mode> mode_list;
  if (listed(modes, "mmap")) mode_list.push_back(write_mode::mmap);
  if (listed(modes, "pwrite")) mode_list.push_back(write_mode::pwrite);
  if (mode_list.empty()) usage("--modes must list mmap, pwrite or both");
  if (reverse) std::reverse(mode_list.begin(), mode_list.end());

  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) usage(dir + " is not a directory");
  work_dir = dir + "/keel-wal-bench." + std::to_string(::getpid());
  if (::mkdir(work_dir.c_str(), 0755) != 0) {
    const std::string d = work_dir;
    work_dir.clear();  // Not ours: leave it.
    fail_errno("mkdir " + d);
  }

  // Keel and its peer back to back, per mode; keel first for the first
  // mode, last for the second (and the mode order reversed by --reverse).
  auto pair = [&](std::size_t mode_index, auto keel_side, auto raw_side) {
    if (mode_index % 2 == 0) {
      keel_side();
      raw_side();
    } else {
      raw_side();
      keel_side();
    }
  };

  for (std::size_t m = 0; m < mode_list.size(); ++m) {
    const write_mode mode = mode_list[m];
    if (listed(cases, "sync_append_256b")) {
      pair(
          m, [&] { keel_appends("sync_append_256b", mode, benchtime, sync_entry_bytes, 1); },
          [&] { raw_appends("sync_append_256b", "raw-fsync", mode, benchtime, raw_sync_bytes); });
    }
  }
  for (std::size_t m = 0; m < mode_list.size(); ++m) {
    const write_mode mode = mode_list[m];
    if (listed(cases, "group_commit")) {
      pair(
          m,
          [&] { keel_appends("group_commit", mode, benchtime, group_entry_bytes, group_entries); },
          [&] { raw_appends("group_commit", "raw-seq-write", mode, benchtime, raw_group_bytes); });
    }
  }
  for (std::size_t m = 0; m < mode_list.size(); ++m) {
    const write_mode mode = mode_list[m];
    if (listed(cases, "recovery")) {
      const std::string d = fresh_dir("recovery");
      // Written in a child too, so that the recovering child's heap is as
      // fresh as a restarted node's; the figures come back through a pipe.
      int fds[2];
      if (::pipe(fds) != 0) fail_errno("pipe");
      in_child("writing the WAL", [&] {
        ::close(fds[0]);
        const auto t0 = clock_type::now();
        const written_wal w = write_wal(d, mode, static_cast<std::uint64_t>(recovery_mib));
        std::fprintf(stderr, "(recovery: wrote %llu entries, %llu record bytes (%s) in %.1f s)\n",
                     static_cast<unsigned long long>(w.entries),
                     static_cast<unsigned long long>(w.record_bytes), keel::wal::to_string(mode),
                     std::chrono::duration<double>(clock_type::now() - t0).count());
        if (::write(fds[1], &w, sizeof w) != static_cast<ssize_t>(sizeof w)) fail_errno("pipe");
      });
      ::close(fds[1]);
      written_wal written;
      if (::read(fds[0], &written, sizeof written) != static_cast<ssize_t>(sizeof written)) {
        fail("no figures from the child that wrote the WAL");
      }
      ::close(fds[0]);
      pair(
          m, [&] { in_child("recovery", [&] { keel_recovery(d, mode, written); }); },
          [&] { raw_recovery(d, mode); });
      remove_dir(d);
    }
  }
  cleanup();
  return 0;
}
