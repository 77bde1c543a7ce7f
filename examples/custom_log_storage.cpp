// User-written storage policies. Part one: the Raft core's log storage
// (keel::raft::log_storage, raft/storage.hpp), the counterpart of
// etcd-io/raft's Storage interface. Part two: a file system policy
// (keel::wal::file_system) under a runner's WAL.
//
// What is pluggable where: the Raft core (keel::raft::raw_node<Storage>)
// reads its durable log through a log_storage; the replicated store
// (node::replica / runner) always uses keel's WAL as that storage, and takes
// its disk through the wal::file_system policy instead. This example plugs a
// storage of its own into raw_node and plays the node layer itself, as
// docs/raft.md describes: three raw_nodes in one process, a ready loop
// (persist, send, apply, advance), a key-value map as the state machine.
//
// append_file_storage keeps the log in a std::map in memory and appends every
// change to a file of its own, synced before raft is told (advance) and
// before any message that speaks for it is sent:
//
//   record = u32 body length, u32 CRC32C of the body, body
//   body   = u8 kind, then
//            kind 1 (hard state): u64 term, vote, commit
//            kind 2 (entries):    u32 count, per entry u64 term, index,
//                                 u8 type, u32 size and the data; they
//                                 replace every entry from the first's index on
//            kind 3 (snapshot):   u64 index, term, u32 voter count and the
//                                 voters; the log before it is gone
//
// (integers little-endian). Recovery replays the records in order. A record
// cut short or failing its CRC ends the log: it can only be the tail a crash
// tore, since every record is written whole and synced before it counts, and
// recovery truncates the file there. (A production storage would also tell a
// torn tail from corruption in the middle, as keel's WAL does, and compact.)
// A failed write or fsync is fail-stop: the node stops instead of going on
// with state it may have lost.
//
// The run: the nodes elect a leader; proposals commit and apply everywhere;
// a follower crashes, the cluster goes on, the crash leaves half a record at
// the end of its file; the follower restarts from its file alone, recovers
// its term, vote and log, and catches up.
//
// Part two plugs in the other storage policy, the one beneath a runner's WAL:
// counting_file_system (keel::wal::file_system, wal/file_system.hpp) wraps
// posix_file_system, counts every fsync, msync and directory sync, and can
// be told to fail the next sync with EIO. A one-node runner on it shows
// what each write costs in syncs, and that a failed sync is fail-stop: the
// replica stops and refuses every later write instead of acknowledging data
// that may not be on disk.
//
// Thread safety: append_file_storage has none; one thread drives a node and
// its storage, as raw_node requires. counting_file_system's counters are
// atomic, so the example reads them while the runner's thread writes.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "example_cluster.hpp"
#include "keel/keel.hpp"
#include "keel/wal/crc32c.hpp"

namespace demo {

using keel::raft::entry;
using keel::raft::node_id;

class append_file_storage {
 public:
  /// Opens (or creates) the log file at path and recovers what it holds.
  static keel::result<std::unique_ptr<append_file_storage>> open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return std::error_code(errno, std::system_category());
    std::unique_ptr<append_file_storage> s(new append_file_storage(fd));
    if (auto ec = s->recover()) return ec;
    return s;
  }

  append_file_storage(const append_file_storage&) = delete;
  append_file_storage& operator=(const append_file_storage&) = delete;
  ~append_file_storage() { ::close(fd_); }

  // --- the log_storage concept ---------------------------------------------------

  keel::raft::initial_state initial_state() const { return {hard_state_, {.voters = voters_}}; }

  keel::result<std::vector<entry>> entries(std::uint64_t lo, std::uint64_t hi,
                                           std::uint64_t max_bytes) const {
    if (lo < first_index()) return keel::errc::compacted;
    if (hi > last_index() + 1 || lo > hi) return keel::errc::unavailable;
    std::vector<entry> out;
    std::uint64_t bytes = 0;
    for (auto it = log_.lower_bound(lo); it != log_.end() && it->first < hi; ++it) {
      bytes += keel::raft::payload_size(it->second);
      if (!out.empty() && bytes > max_bytes) break;  // At least one entry.
      out.push_back(it->second);
    }
    return out;
  }

  keel::result<std::uint64_t> term(std::uint64_t i) const {
    if (i == snapshot_index_) return snapshot_term_;
    if (i < snapshot_index_) return keel::errc::compacted;
    auto it = log_.find(i);
    if (it == log_.end()) return keel::errc::unavailable;
    return it->second.term;
  }

  std::uint64_t first_index() const { return snapshot_index_ + 1; }
  std::uint64_t last_index() const { return log_.empty() ? snapshot_index_ : log_.rbegin()->first; }

  keel::result<keel::raft::snapshot> snapshot() const {
    return keel::raft::snapshot{.metadata = {.index = snapshot_index_,
                                             .term = snapshot_term_,
                                             .conf = {.voters = voters_}}};
  }

  // --- what the node layer calls -------------------------------------------------

  /// Writes a ready's snapshot, entries and hard state as records, syncs
  /// (when raft says it must), then applies them in memory.
  std::error_code persist(const keel::raft::ready& rd) {
    std::string records;
    if (rd.snapshot) {
      std::string body(1, '\x03');
      put_u64(body, rd.snapshot->metadata.index);
      put_u64(body, rd.snapshot->metadata.term);
      put_u32(body, static_cast<std::uint32_t>(rd.snapshot->metadata.conf.voters.size()));
      for (node_id v : rd.snapshot->metadata.conf.voters) put_u64(body, v);
      frame(records, body);
    }
    if (!rd.entries.empty()) {
      std::string body(1, '\x02');
      put_u32(body, static_cast<std::uint32_t>(rd.entries.size()));
      for (const entry& e : rd.entries) {
        put_u64(body, e.term);
        put_u64(body, e.index);
        body.push_back(static_cast<char>(e.type));
        put_u32(body, static_cast<std::uint32_t>(e.data.size()));
        body.append(e.data.view());
      }
      frame(records, body);
    }
    if (rd.hard_state) {
      std::string body(1, '\x01');
      put_u64(body, rd.hard_state->term);
      put_u64(body, rd.hard_state->vote);
      put_u64(body, rd.hard_state->commit);
      frame(records, body);
    }
    if (records.empty()) return {};
    if (auto ec = write_all(records)) return ec;
    if (rd.must_sync(hard_state_) || rd.snapshot) {
      if (::fdatasync(fd_) != 0) return {errno, std::system_category()};
      ++syncs_;
    }
    // The file holds them: now the memory may say so too.
    if (rd.snapshot) {
      install(rd.snapshot->metadata.index, rd.snapshot->metadata.term,
              rd.snapshot->metadata.conf.voters);
    }
    for (const entry& e : rd.entries) append(e);
    if (rd.hard_state) hard_state_ = *rd.hard_state;
    return {};
  }

  /// Starts a new cluster: a first snapshot at index 1 naming the voters.
  std::error_code bootstrap(std::vector<node_id> voters) {
    keel::raft::ready rd;
    rd.snapshot =
        keel::raft::snapshot{.metadata = {.index = 1, .term = 1, .conf = {.voters = voters}}};
    return persist(rd);
  }

  bool empty() const { return snapshot_index_ == 0 && log_.empty() && hard_state_.empty(); }
  const keel::raft::hard_state& hard_state() const { return hard_state_; }
  std::uint64_t syncs() const { return syncs_; }
  /// Bytes recovery cut off the end of the file (a torn record).
  std::uint64_t truncated() const { return truncated_; }

 private:
  explicit append_file_storage(int fd) : fd_(fd) {}

  static void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  }
  static void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  }
  static void frame(std::string& out, const std::string& body) {
    put_u32(out, static_cast<std::uint32_t>(body.size()));
    put_u32(out, keel::wal::crc32c(body));
    out += body;
  }

  /// Reads fixed-width little-endian integers, refusing to read past the end.
  struct reader {
    std::string_view in;
    bool get(std::uint64_t& v, int width) {
      if (in.size() < static_cast<std::size_t>(width)) return false;
      v = 0;
      for (int i = 0; i < width; ++i) {
        v |= std::uint64_t{static_cast<unsigned char>(in[static_cast<std::size_t>(i)])} << (8 * i);
      }
      in.remove_prefix(static_cast<std::size_t>(width));
      return true;
    }
  };

  std::error_code write_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return {errno, std::system_category()};
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  void install(std::uint64_t index, std::uint64_t term, std::vector<node_id> voters) {
    snapshot_index_ = index;
    snapshot_term_ = term;
    voters_ = std::move(voters);
    log_.erase(log_.begin(), log_.upper_bound(index));
    if (!log_.empty() && log_.begin()->first != index + 1) log_.clear();  // Not contiguous.
  }

  void append(const entry& e) {
    log_.erase(log_.lower_bound(e.index), log_.end());  // A new leader's entries win.
    log_.emplace(e.index, e);
  }

  /// Applies one record's body; false if it is not a valid one.
  bool replay(std::string_view body) {
    reader r{body};
    std::uint64_t kind = 0;
    if (!r.get(kind, 1)) return false;
    if (kind == 1) {
      keel::raft::hard_state hs;
      if (!r.get(hs.term, 8) || !r.get(hs.vote, 8) || !r.get(hs.commit, 8)) return false;
      hard_state_ = hs;
    } else if (kind == 2) {
      std::uint64_t count = 0;
      if (!r.get(count, 4)) return false;
      std::uint64_t next = 0;
      for (std::uint64_t k = 0; k < count; ++k) {
        entry e;
        std::uint64_t type = 0, size = 0;
        if (!r.get(e.term, 8) || !r.get(e.index, 8) || !r.get(type, 1) || type > 1 ||
            !r.get(size, 4) || size > r.in.size()) {
          return false;
        }
        // Consecutive, and the first one continues (or rewrites) the log.
        if (k == 0 ? e.index == 0 || e.index > last_index() + 1 : e.index != next) return false;
        next = e.index + 1;
        e.type = static_cast<keel::raft::entry_type>(type);
        e.data = keel::bytes(r.in.substr(0, size));
        r.in.remove_prefix(size);
        if (e.index > snapshot_index_) append(e);
      }
    } else if (kind == 3) {
      std::uint64_t index = 0, term = 0, count = 0;
      if (!r.get(index, 8) || !r.get(term, 8) || !r.get(count, 4) || count > r.in.size() / 8) {
        return false;
      }
      std::vector<node_id> voters(count);
      for (node_id& v : voters) r.get(v, 8);
      install(index, term, std::move(voters));
    } else {
      return false;
    }
    return r.in.empty();
  }

  std::error_code recover() {
    std::string file;
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return {errno, std::system_category()};
      if (n == 0) break;
      file.append(buffer, static_cast<std::size_t>(n));
    }
    std::size_t at = 0;
    while (at < file.size()) {
      reader header{std::string_view(file).substr(at)};
      std::uint64_t size = 0, crc = 0;
      if (!header.get(size, 4) || !header.get(crc, 4) || size > header.in.size()) break;
      const std::string_view body = header.in.substr(0, size);
      if (keel::wal::crc32c(body) != crc || !replay(body)) break;
      at += 8 + size;
    }
    if (at < file.size()) {  // A torn tail: cut it off, so appends follow the last good record.
      truncated_ = file.size() - at;
      if (::ftruncate(fd_, static_cast<off_t>(at)) != 0 || ::fdatasync(fd_) != 0) {
        return {errno, std::system_category()};
      }
    }
    if (::lseek(fd_, static_cast<off_t>(at), SEEK_SET) < 0) return {errno, std::system_category()};
    return {};
  }

  int fd_;
  std::map<std::uint64_t, entry> log_;  ///< Entries (snapshot_index_, last_index()].
  std::uint64_t snapshot_index_ = 0;
  std::uint64_t snapshot_term_ = 0;
  std::vector<node_id> voters_;
  keel::raft::hard_state hard_state_;
  std::uint64_t syncs_ = 0;
  std::uint64_t truncated_ = 0;
};

static_assert(keel::raft::log_storage<append_file_storage>);

}  // namespace demo

namespace demo {

// --- part two: a file system policy ---------------------------------------------------

/// Shared by a counting_file_system and every file and mapping it opened.
struct sync_counters {
  std::atomic<std::uint64_t> file_syncs{0};       ///< fdatasync
  std::atomic<std::uint64_t> mapping_syncs{0};    ///< msync
  std::atomic<std::uint64_t> directory_syncs{0};  ///< fsync of a directory
  /// Syncs (of any kind) allowed before they start failing with EIO.
  std::atomic<std::uint64_t> fail_after{std::numeric_limits<std::uint64_t>::max()};

  std::uint64_t total() const { return file_syncs + mapping_syncs + directory_syncs; }
  /// Counts one sync of `kind`; an error if syncs are set to fail.
  std::error_code count(std::atomic<std::uint64_t>& kind) {
    ++kind;
    if (total() > fail_after) return {EIO, std::system_category()};
    return {};
  }
};

class counting_mapping {
 public:
  counting_mapping(keel::wal::posix_mapping inner, sync_counters* c)
      : inner_(std::move(inner)), counters_(c) {}
  std::byte* data() noexcept { return inner_.data(); }
  std::uint64_t size() const noexcept { return inner_.size(); }
  std::error_code sync(std::uint64_t offset, std::uint64_t length) {
    if (auto ec = counters_->count(counters_->mapping_syncs)) return ec;  // Injected: not synced.
    return inner_.sync(offset, length);
  }

 private:
  keel::wal::posix_mapping inner_;
  sync_counters* counters_;
};

class counting_file {
 public:
  counting_file(keel::wal::posix_file inner, sync_counters* c)
      : inner_(std::move(inner)), counters_(c) {}
  keel::result<std::uint64_t> size() const { return inner_.size(); }
  std::error_code allocate(std::uint64_t offset, std::uint64_t length) {
    return inner_.allocate(offset, length);
  }
  std::error_code truncate(std::uint64_t size) { return inner_.truncate(size); }
  keel::result<std::size_t> read(std::uint64_t offset, std::span<std::byte> out) const {
    return inner_.read(offset, out);
  }
  std::error_code write(std::uint64_t offset, std::span<const std::byte> in) {
    return inner_.write(offset, in);
  }
  std::error_code sync() {
    if (auto ec = counters_->count(counters_->file_syncs)) return ec;
    return inner_.sync();
  }
  keel::result<counting_mapping> map(std::uint64_t length) {
    auto m = inner_.map(length);
    if (!m) return m.error();
    return counting_mapping(std::move(*m), counters_);
  }

 private:
  keel::wal::posix_file inner_;
  sync_counters* counters_;
};

/// posix_file_system, with its syncs counted (and failed on request).
struct counting_file_system {
  using file_type = counting_file;
  sync_counters* counters;

  keel::result<counting_file> open(const std::string& path, keel::wal::open_mode mode) {
    auto f = posix.open(path, mode);
    if (!f) return f.error();
    return counting_file(std::move(*f), counters);
  }
  std::error_code remove(const std::string& path) { return posix.remove(path); }
  std::error_code rename(const std::string& from, const std::string& to) {
    return posix.rename(from, to);
  }
  std::error_code make_directory(const std::string& path) { return posix.make_directory(path); }
  std::error_code sync_directory(const std::string& path) {
    if (auto ec = counters->count(counters->directory_syncs)) return ec;
    return posix.sync_directory(path);
  }
  keel::result<std::vector<std::string>> list(const std::string& path) { return posix.list(path); }

  keel::wal::posix_file_system posix{};
};

static_assert(keel::wal::file_system<counting_file_system>);

/// One string per key: the object the one-node runner below keeps.
struct setting {
  std::string key;
  std::string value;
  std::uint64_t version = 0;
};

}  // namespace demo

template <>
struct keel::store::object_traits<demo::setting> {
  static constexpr std::string_view table = "setting";
  static std::string_view id(const demo::setting& s) { return s.key; }
  static std::uint64_t version(const demo::setting& s) { return s.version; }
  static void set_version(demo::setting& s, std::uint64_t v) { s.version = v; }
  // key '\0' value '\0' version (decimal): enough for one example.
  static std::string encode(const demo::setting& s) {
    return s.key + '\0' + s.value + '\0' + std::to_string(s.version);
  }
  static keel::result<demo::setting> decode(std::string_view in) {
    const auto a = in.find('\0');
    const auto b = a == std::string_view::npos ? a : in.find('\0', a + 1);
    if (b == std::string_view::npos || a == 0) return keel::errc::invalid_object;
    demo::setting s{std::string(in.substr(0, a)), std::string(in.substr(a + 1, b - a - 1))};
    const std::string_view digits = in.substr(b + 1);
    if (digits.empty() || digits.size() > 19) return keel::errc::invalid_object;
    for (char c : digits) {
      if (c < '0' || c > '9') return keel::errc::invalid_object;
      s.version = s.version * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return s;
  }
  static constexpr auto indexes() { return std::tuple{}; }
};

namespace {

using demo::append_file_storage;
using keel::examples::check;
using keel::raft::message;
using keel::raft::node_id;
using raft_node = keel::raft::raw_node<append_file_storage>;
using namespace std::chrono_literals;

/// One member: its storage, its Raft core and its state machine (key=value).
struct member {
  std::unique_ptr<append_file_storage> storage;
  std::optional<raft_node> node;
  std::map<std::string, std::string> kv;
};

/// Three raw_nodes and the wire between them, driven from one thread.
class cluster {
 public:
  explicit cluster(std::string dir) : dir_(std::move(dir)) {
    for (node_id id : ids_) start(id);
  }

  /// Opens id's storage from its file (bootstrapping a new one) and builds its node.
  void start(node_id id) {
    member& m = members_[id];
    auto storage = append_file_storage::open(path(id));
    if (!storage) throw keel::examples::check_failed("open: " + storage.error().message());
    m.storage = std::move(*storage);
    if (m.storage->empty()) {
      if (auto ec = m.storage->bootstrap(ids_)) fail_stop(id, ec);
    }
    keel::raft::config c;
    c.id = id;
    // The map starts empty at every start: raft hands every committed entry
    // after the snapshot to apply again.
    c.applied = m.storage->first_index() - 1;
    m.kv.clear();
    auto node = raft_node::create(c, *m.storage);
    if (!node) throw keel::examples::check_failed("raw_node: " + node.error().message());
    m.node.emplace(std::move(*node));
  }

  /// A crash: the node and its memory are gone, its file stays.
  void crash(node_id id) {
    members_.erase(id);
    std::erase_if(wire_, [&](const message& m) { return m.to == id; });
  }

  std::string path(node_id id) const { return dir_ + "/raft-" + std::to_string(id) + ".log"; }
  member& at(node_id id) { return members_.at(id); }
  bool up(node_id id) const { return members_.contains(id); }

  /// One tick everywhere, then work until no node has a ready and no message waits.
  void round() {
    for (auto& [id, m] : members_) m.node->tick();
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& [id, m] : members_) busy |= process(id, m);
      while (!wire_.empty()) {
        message msg = std::move(wire_.front());
        wire_.pop_front();
        busy = true;
        auto to = members_.find(msg.to);
        if (to == members_.end()) continue;  // Down: lost.
        (void)to->second.node->step(std::move(msg));
      }
    }
  }

  node_id leader() const {
    for (const auto& [id, m] : members_) {
      if (m.node->status().soft_state.raft_state == keel::raft::state_type::leader) return id;
    }
    return keel::raft::no_node;
  }

  node_id await_leader() {
    for (int i = 0; i < 1000; ++i) {
      if (node_id l = leader()) return l;
      round();
    }
    throw keel::examples::check_failed("no leader after 1000 ticks");
  }

  /// Proposes key=value on the leader and runs rounds until every live node applied it.
  void put(const std::string& key, const std::string& value) {
    const node_id l = await_leader();
    if (auto ec = members_.at(l).node->propose(keel::bytes(key + "=" + value))) {
      throw keel::examples::check_failed("propose: " + ec.message());
    }
    for (int i = 0; i < 100; ++i) {
      round();
      bool everywhere = true;
      for (const auto& [id, m] : members_)
        everywhere = everywhere && m.kv.contains(key) && m.kv.at(key) == value;
      if (everywhere) return;
    }
    throw keel::examples::check_failed(key + "=" + value + " was not applied everywhere");
  }

 private:
  [[noreturn]] static void fail_stop(node_id id, std::error_code ec) {
    throw keel::examples::check_failed("node " + std::to_string(id) +
                                       " stops: storage failed: " + ec.message());
  }

  /// The node layer's part for one ready: persist, send, apply, advance.
  bool process(node_id id, member& m) {
    if (!m.node->has_ready()) return false;
    keel::raft::ready rd = m.node->ready();
    // Messages that need nothing durable may leave first (a leader's appends)...
    for (message& msg : rd.messages) {
      if (!msg.after_persist) wire_.push_back(std::move(msg));
    }
    if (auto ec = m.storage->persist(rd)) fail_stop(id, ec);
    // ...the others speak for what was just made durable.
    for (message& msg : rd.messages) {
      if (msg.after_persist) wire_.push_back(std::move(msg));
    }
    for (const keel::raft::entry& e : rd.committed_entries) {
      if (e.type == keel::raft::entry_type::conf_change) {
        if (auto cc = keel::raft::decode_conf_change(e.data)) (void)m.node->apply_conf_change(*cc);
        continue;
      }
      const std::string_view kv = e.data.view();
      const auto eq = kv.find('=');
      if (eq != std::string_view::npos)
        m.kv[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
    m.node->advance();
    return true;
  }

  std::string dir_;
  std::vector<node_id> ids_{1, 2, 3};
  std::map<node_id, member> members_;
  std::deque<message> wire_;
};

std::string dump(const std::map<std::string, std::string>& kv) {
  std::string out;
  for (const auto& [k, v] : kv) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

/// Part two: a one-node runner whose WAL goes through counting_file_system.
void file_system_policy() {
  using runner = keel::node::runner<keel::node::steady_clock, demo::counting_file_system,
                                    keel::transport::endpoint, demo::setting>;
  std::printf("5. A runner on a file system policy that counts syncs.\n");
  keel::examples::temp_dir dir("keel-counting-fs");
  demo::sync_counters counters;
  keel::transport::in_process_network network(1);
  auto started =
      runner::start(demo::counting_file_system{&counters},
                    {.id = 1,
                     .members = {1},
                     .data_dir = dir.path() + "/node-1",
                     .election_tick = keel::examples::example_election_tick},
                    [&](keel::transport::handler h) { return network.connect(1, std::move(h)); },
                    {.tick_interval = keel::examples::example_tick});
  if (!started) throw keel::examples::check_failed("start: " + started.error().message());
  runner& r = **started;
  struct disconnect_first {  // The transport stops delivering before the runner goes.
    keel::transport::in_process_network& net;
    ~disconnect_first() { net.disconnect(1); }
  } guard{network};

  // A lone voter elects itself; a write succeeds once it has.
  keel::result<std::uint64_t> v = keel::errc::not_leader;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!v && std::chrono::steady_clock::now() < deadline) {
    v = r.update([](auto& tx) { return tx.create(demo::setting{"mode", "fast"}); }, 2s);
    if (!v) std::this_thread::yield();
  }
  check(v.has_value(), "the one-node runner took its first write");
  const std::uint64_t before = counters.total();
  for (int i = 0; i < 5; ++i) {
    v = r.update(
        [i](auto& tx) {
          demo::setting s = *tx.template get<demo::setting>("mode");
          s.value = "level-" + std::to_string(i);
          return tx.update(s);
        },
        2s);
    check(v.has_value(), "write " + std::to_string(i + 1) + " committed");
  }
  const std::uint64_t per_five = counters.total() - before;
  std::printf("  syncs so far: %llu fdatasync, %llu msync, %llu directory; 5 writes took %llu\n",
              static_cast<unsigned long long>(counters.file_syncs.load()),
              static_cast<unsigned long long>(counters.mapping_syncs.load()),
              static_cast<unsigned long long>(counters.directory_syncs.load()),
              static_cast<unsigned long long>(per_five));
  check(per_five >= 5, "every acknowledged write was synced first");

  counters.fail_after = counters.total();  // The next sync fails with EIO.
  v = r.update([](auto& tx) { return tx.create(demo::setting{"lost", "?"}); }, 2s);
  std::printf("  write with a failing sync: %s\n",
              v ? "acknowledged (wrong!)" : v.error().message().c_str());
  check(!v, "a write whose sync failed is not acknowledged");
  auto st = r.status(2s);
  check(st && st->failure,
        "the replica stopped: " +
            (st && st->failure ? st->failure.message() : std::string("no failure")));
  counters.fail_after = std::numeric_limits<std::uint64_t>::max();  // The disk "recovers"...
  v = r.update([](auto& tx) { return tx.create(demo::setting{"later", "x"}); }, 2s);
  check(!v, "...but the stopped replica refuses later writes (fail-stop)");
  r.stop();
}

}  // namespace

int main() {
  return keel::examples::run_example([] {
    keel::examples::temp_dir dir("keel-log-storage");
    cluster c(dir.path());

    std::printf("1. Three raw_nodes over append_file_storage elect a leader.\n");
    const node_id leader = c.await_leader();
    std::printf("  node %llu leads in term %llu\n", static_cast<unsigned long long>(leader),
                static_cast<unsigned long long>(c.at(leader).node->status().hard_state.term));
    check(leader != keel::raft::no_node, "a leader was elected");

    std::printf("2. Proposals commit and apply on every node.\n");
    c.put("color", "blue");
    c.put("size", "large");
    for (node_id id : {1, 2, 3}) {
      std::printf("  node %llu: %s (log %llu..%llu, %llu fsyncs)\n",
                  static_cast<unsigned long long>(id), dump(c.at(id).kv).c_str(),
                  static_cast<unsigned long long>(c.at(id).storage->first_index()),
                  static_cast<unsigned long long>(c.at(id).storage->last_index()),
                  static_cast<unsigned long long>(c.at(id).storage->syncs()));
    }
    check(c.at(1).kv == c.at(2).kv && c.at(2).kv == c.at(3).kv && c.at(1).kv.size() == 2,
          "every node applied both writes");

    std::printf("3. A follower crashes; the others go on.\n");
    const node_id follower = leader == 3 ? 2 : 3;
    const keel::raft::hard_state before = c.at(follower).storage->hard_state();
    const std::uint64_t last_before = c.at(follower).storage->last_index();
    c.crash(follower);
    c.put("color", "green");
    c.put("shape", "round");
    {
      // The crash came in the middle of a write: half a record at the end.
      const int fd = ::open(c.path(follower).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      const char torn[] = {'\x40', '\0', '\0', '\0', '\x01', '\x02'};
      const bool wrote =
          fd >= 0 && ::write(fd, torn, sizeof torn) == static_cast<ssize_t>(sizeof torn);
      if (fd >= 0) ::close(fd);
      check(wrote, "half a record appended to node " + std::to_string(follower) + "'s file");
    }

    std::printf("4. It restarts from its file alone and catches up.\n");
    c.start(follower);
    append_file_storage& s = *c.at(follower).storage;
    std::printf(
        "  recovered: term %llu, vote %llu, commit %llu, log up to %llu; cut %llu torn bytes\n",
        static_cast<unsigned long long>(s.hard_state().term),
        static_cast<unsigned long long>(s.hard_state().vote),
        static_cast<unsigned long long>(s.hard_state().commit),
        static_cast<unsigned long long>(s.last_index()),
        static_cast<unsigned long long>(s.truncated()));
    check(s.hard_state() == before && s.last_index() == last_before,
          "the hard state and the log are those it had synced");
    check(s.truncated() == 6, "recovery cut off the torn record");
    c.put("weight", "light");
    for (node_id id : {1, 2, 3}) {
      std::printf("  node %llu: %s\n", static_cast<unsigned long long>(id),
                  dump(c.at(id).kv).c_str());
    }
    check(c.at(follower).kv == c.at(leader).kv && c.at(follower).kv.at("color") == "green",
          "the restarted node caught up with what it missed");

    file_system_policy();
  });
}
