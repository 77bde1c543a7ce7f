// A user-written transport: the transport policy (keel::transport::transport,
// transport/transport.hpp).
//
// socket_network carries each Raft message as bytes through a real OS
// socket: every node has an inbox, one AF_UNIX stream socketpair, that its
// peers write frames into, and a reader thread that decodes the frames and
// hands the messages to the node. A node's transport (socket_transport)
// never blocks in send(): it encodes the message and queues the frame; its
// writer thread writes the queue out. A frame to a node that is not
// connected, or a full queue, is reported through handler::unreachable,
// from the writer thread, never from inside send(); the node then probes
// that peer instead of streaming to it, and status() shows why.
//
// Frame: a 4-byte little-endian length, then the message encoded as below
// (every integer little-endian, a string or byte string as a 4-byte length
// and the bytes):
//
//   u8 type, u64 to, from, term, log_term, index, commit, reject_hint,
//   u8 reject, string context, u32 entry count, per entry (u64 term, index,
//   u8 type, string data), u8 has_snapshot, and if set: u64 index, term,
//   the configuration (four u32-counted lists of u64 ids, u8 auto_leave),
//   string data.
//
// decode refuses anything else (unknown types, lengths past the end,
// trailing bytes) and the reader drops such a frame; a frame longer than
// 64 MiB is read in pieces and dropped, never held whole. The snapshot
// travels inline (the transport does not declare streams_snapshots), as
// with the in-process network.
//
// The example runs three runners on it: they elect a leader, the leader
// writes, a follower reads linearizably; one node goes down, the leader's
// transport reports it unreachable and writes go on; the node comes back and
// catches up; everything stops cleanly.
//
// Thread safety: every member of the network and of a transport may be
// called from any thread. A transport's handler is called from its writer
// thread (unreachable) and its inbox's reader thread (deliver), never after
// disconnect(id) or the transport's destruction returned.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "example_cluster.hpp"
#include "keel/keel.hpp"

namespace demo {

using keel::raft::message;
using keel::raft::node_id;

// --- the message codec ----------------------------------------------------------

namespace wire {

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
inline void put_string(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}
inline void put_ids(std::string& out, const std::vector<node_id>& ids) {
  put_u32(out, static_cast<std::uint32_t>(ids.size()));
  for (node_id id : ids) put_u64(out, id);
}

/// Reads fields off the front of a byte string; every read checks the length.
class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  bool done() const noexcept { return in_.empty(); }

  bool u8(std::uint8_t& v) {
    if (in_.empty()) return false;
    v = static_cast<std::uint8_t>(in_.front());
    in_.remove_prefix(1);
    return true;
  }
  bool u32(std::uint32_t& v) {
    std::uint64_t wide = 0;
    if (!fixed(wide, 4)) return false;
    v = static_cast<std::uint32_t>(wide);
    return true;
  }
  bool u64(std::uint64_t& v) { return fixed(v, 8); }
  bool string(std::string_view& s) {
    std::uint32_t size = 0;
    if (!u32(size) || size > in_.size()) return false;
    s = in_.substr(0, size);
    in_.remove_prefix(size);
    return true;
  }
  /// A u32-counted list whose items take at least `min_item` bytes each, so
  /// a forged count cannot make us reserve more than the input could hold.
  bool count(std::uint32_t& n, std::size_t min_item) {
    return u32(n) && static_cast<std::uint64_t>(n) * min_item <= in_.size();
  }
  bool ids(std::vector<node_id>& out) {
    std::uint32_t n = 0;
    if (!count(n, 8)) return false;
    out.resize(n);
    for (node_id& id : out) {
      if (!u64(id)) return false;
    }
    return true;
  }

 private:
  bool fixed(std::uint64_t& v, int width) {
    if (in_.size() < static_cast<std::size_t>(width)) return false;
    v = 0;
    for (int i = 0; i < width; ++i) {
      v |= std::uint64_t{static_cast<unsigned char>(in_[static_cast<std::size_t>(i)])} << (8 * i);
    }
    in_.remove_prefix(static_cast<std::size_t>(width));
    return true;
  }

  std::string_view in_;
};

/// The message as a frame: its length, then its fields (see the banner).
inline std::string encode_frame(const message& m) {
  std::string out(4, '\0');
  put_u8(out, static_cast<std::uint8_t>(m.type));
  for (std::uint64_t v : {m.to, m.from, m.term, m.log_term, m.index, m.commit, m.reject_hint}) {
    put_u64(out, v);
  }
  put_u8(out, m.reject ? 1 : 0);
  put_string(out, m.context);
  put_u32(out, static_cast<std::uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    put_u64(out, e.term);
    put_u64(out, e.index);
    put_u8(out, static_cast<std::uint8_t>(e.type));
    put_string(out, e.data.view());
  }
  put_u8(out, m.snapshot ? 1 : 0);
  if (m.snapshot) {
    const auto& md = m.snapshot->metadata;
    put_u64(out, md.index);
    put_u64(out, md.term);
    for (const auto* ids :
         {&md.conf.voters, &md.conf.voters_outgoing, &md.conf.learners, &md.conf.learners_next}) {
      put_ids(out, *ids);
    }
    put_u8(out, md.conf.auto_leave ? 1 : 0);
    put_string(out, m.snapshot->data);
  }
  const auto body = static_cast<std::uint32_t>(out.size() - 4);
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(body >> (8 * i));
  return out;
}

/// The message a frame's body encodes, or nothing if it is not one.
inline std::optional<message> decode(std::string_view body) {
  reader in(body);
  message m;
  std::uint8_t type = 0, reject = 0, has_snapshot = 0;
  std::string_view context;
  std::uint32_t entries = 0;
  if (!in.u8(type) || type >= keel::raft::message_type_count || !in.u64(m.to) || !in.u64(m.from) ||
      !in.u64(m.term) || !in.u64(m.log_term) || !in.u64(m.index) || !in.u64(m.commit) ||
      !in.u64(m.reject_hint) || !in.u8(reject) || reject > 1 || !in.string(context) ||
      !in.count(entries, 21)) {
    return std::nullopt;
  }
  m.type = static_cast<keel::raft::message_type>(type);
  m.reject = reject == 1;
  m.context = std::string(context);
  m.entries.resize(entries);
  for (auto& e : m.entries) {
    std::uint8_t entry_type = 0;
    std::string_view data;
    if (!in.u64(e.term) || !in.u64(e.index) || !in.u8(entry_type) || entry_type > 1 ||
        !in.string(data)) {
      return std::nullopt;
    }
    e.type = static_cast<keel::raft::entry_type>(entry_type);
    e.data = keel::bytes(data);
  }
  if (!in.u8(has_snapshot) || has_snapshot > 1) return std::nullopt;
  if (has_snapshot == 1) {
    keel::raft::snapshot s;
    std::uint8_t auto_leave = 0;
    std::string_view data;
    if (!in.u64(s.metadata.index) || !in.u64(s.metadata.term) || !in.ids(s.metadata.conf.voters) ||
        !in.ids(s.metadata.conf.voters_outgoing) || !in.ids(s.metadata.conf.learners) ||
        !in.ids(s.metadata.conf.learners_next) || !in.u8(auto_leave) || auto_leave > 1 ||
        !in.string(data)) {
      return std::nullopt;
    }
    s.metadata.conf.auto_leave = auto_leave == 1;
    s.data = std::string(data);
    m.snapshot = std::move(s);
  }
  if (!in.done()) return std::nullopt;
  return m;
}

}  // namespace wire

// --- the network ------------------------------------------------------------------

/// Frames a transport queues at most before it reports its peer unreachable.
inline constexpr std::size_t queue_capacity = 4096;
/// Frames above this are skipped unread.
inline constexpr std::uint32_t max_frame_bytes = 64u << 20;

/// One connected node: its inbox socket and reader, its outgoing queue and writer.
struct station {
  node_id id = keel::raft::no_node;
  keel::transport::handler handler;

  // The inbox. Peers' writers hold write_mutex for a whole frame, so frames
  // never interleave; write_fd is -1 once the node is disconnected.
  int read_fd = -1;
  std::mutex write_mutex;
  int write_fd = -1;
  std::thread reader;
  std::uint64_t malformed = 0;  ///< Frames the reader dropped (reader thread only).

  // The outgoing side, guarded by mutex.
  struct outgoing {
    node_id to;
    std::string frame;
  };
  std::mutex mutex;
  std::condition_variable work;
  std::deque<outgoing> queue;
  std::set<node_id> reports;  ///< Peers to report unreachable, at most once each.
  std::map<node_id, keel::transport::peer_status> peers;
  std::uint64_t dropped_not_a_peer = 0;
  bool stopping = false;
  std::thread writer;
};

class socket_network;

/// One node's transport on a socket_network; it disconnects its node when
/// destroyed, so the replica's handler is never called after it is gone.
class socket_transport {
 public:
  socket_transport(socket_network& net, std::shared_ptr<station> s)
      : net_(&net), station_(std::move(s)) {}
  socket_transport(socket_transport&& other) noexcept
      : net_(other.net_), station_(std::move(other.station_)) {}
  socket_transport& operator=(socket_transport&&) = delete;
  ~socket_transport();

  /// Queues m's frame for m.to; never blocks on the socket.
  void send(message m) {
    std::string frame = wire::encode_frame(m);
    station& s = *station_;
    {
      std::lock_guard lock(s.mutex);
      if (s.stopping) return;
      auto peer = s.peers.find(m.to);
      if (peer == s.peers.end()) {  // Not a peer (never added, or removed): dropped, counted.
        ++s.dropped_not_a_peer;
        return;
      }
      if (s.queue.size() >= queue_capacity) {
        peer->second.reachable = false;
        peer->second.last_error = "send queue full (" + std::to_string(queue_capacity) + " frames)";
        ++peer->second.dropped;
        s.reports.insert(m.to);
      } else {
        ++peer->second.sent;
        s.queue.push_back({m.to, std::move(frame)});
      }
    }
    s.work.notify_one();
  }

  void add_peer(node_id id, const std::string&) {
    std::lock_guard lock(station_->mutex);
    station_->peers.try_emplace(id);
  }

  void remove_peer(node_id id) {
    std::lock_guard lock(station_->mutex);
    station_->peers.erase(id);
  }

  keel::transport::peer_status status(node_id id) const {
    std::lock_guard lock(station_->mutex);
    auto it = station_->peers.find(id);
    if (it == station_->peers.end()) {
      return {.reachable = false, .last_error = "node " + std::to_string(id) + " is not a peer"};
    }
    return it->second;
  }

 private:
  socket_network* net_;
  std::shared_ptr<station> station_;
};

static_assert(keel::transport::transport<socket_transport>);

class socket_network {
 public:
  socket_network() = default;
  socket_network(const socket_network&) = delete;
  socket_network& operator=(const socket_network&) = delete;
  ~socket_network() {
    std::vector<node_id> ids;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [id, s] : stations_) ids.push_back(id);
    }
    for (node_id id : ids) disconnect(id);
  }

  /// Connects node id: opens its inbox socket and starts its threads.
  socket_transport connect(node_id id, keel::transport::handler h) {
    disconnect(id);
    auto s = std::make_shared<station>();
    s->id = id;
    s->handler = std::move(h);
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      throw keel::examples::check_failed(std::string("socketpair: ") + std::strerror(errno));
    }
    s->read_fd = fds[0];
    s->write_fd = fds[1];
    s->reader = std::thread([this, raw = s.get()] { read_loop(*raw); });
    s->writer = std::thread([this, raw = s.get()] { write_loop(*raw); });
    {
      std::lock_guard lock(mutex_);
      stations_[id] = s;
    }
    return socket_transport(*this, std::move(s));
  }

  /// Takes node id off the network: later frames to it fail (and are
  /// reported unreachable), and its handler is not called any more once
  /// this returns. No-op if it is not connected.
  void disconnect(node_id id) {
    std::shared_ptr<station> s;
    {
      std::lock_guard lock(mutex_);
      auto it = stations_.find(id);
      if (it == stations_.end()) return;
      s = std::move(it->second);
      stations_.erase(it);
    }
    stop(*s);
  }

 private:
  friend class socket_transport;

  /// Disconnects the station s, if it is still its node's current one.
  void release(const std::shared_ptr<station>& s) {
    {
      std::lock_guard lock(mutex_);
      auto it = stations_.find(s->id);
      if (it != stations_.end() && it->second == s) stations_.erase(it);
    }
    stop(*s);
  }

  void stop(station& s) {
    {
      std::lock_guard lock(s.mutex);
      if (s.stopping) return;
      s.stopping = true;
    }
    s.work.notify_all();
    s.writer.join();
    {
      std::lock_guard lock(s.write_mutex);  // Waits for a peer's frame in progress.
      ::close(s.write_fd);
      s.write_fd = -1;
    }
    s.reader.join();  // It reads to the end of what was written, then sees the end.
    ::close(s.read_fd);
  }

  static bool read_exact(int fd, char* out, std::size_t n) {
    while (n > 0) {
      const ssize_t got = ::read(fd, out, n);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      out += got;
      n -= static_cast<std::size_t>(got);
    }
    return true;
  }

  void read_loop(station& s) {
    std::string body;
    for (;;) {
      unsigned char header[4];
      if (!read_exact(s.read_fd, reinterpret_cast<char*>(header), 4)) return;
      const std::uint32_t size = std::uint32_t{header[0]} | std::uint32_t{header[1]} << 8 |
                                 std::uint32_t{header[2]} << 16 | std::uint32_t{header[3]} << 24;
      if (size > max_frame_bytes) {  // Skipped in pieces, never held whole.
        char sink[4096];
        for (std::uint32_t left = size; left > 0;) {
          const std::uint32_t piece = std::min<std::uint32_t>(left, sizeof sink);
          if (!read_exact(s.read_fd, sink, piece)) return;
          left -= piece;
        }
        ++s.malformed;
        continue;
      }
      body.resize(size);
      if (!read_exact(s.read_fd, body.data(), size)) return;
      std::optional<message> m = wire::decode(body);
      if (!m || m->to != s.id) {
        ++s.malformed;
        continue;
      }
      s.handler.deliver(std::move(*m));
    }
  }

  /// Writes all of frame into `to`'s inbox; an error in words if it cannot.
  std::optional<std::string> write_to(node_id to, const std::string& frame) {
    std::shared_ptr<station> target;
    {
      std::lock_guard lock(mutex_);
      auto it = stations_.find(to);
      if (it != stations_.end()) target = it->second;
    }
    if (!target) return "node " + std::to_string(to) + " is not connected (down or unknown)";
    std::lock_guard lock(target->write_mutex);
    if (target->write_fd < 0) return "node " + std::to_string(to) + " disconnected";
    for (std::size_t done = 0; done < frame.size();) {
      const ssize_t n =
          ::send(target->write_fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::string("send: ") + std::strerror(errno);
      done += static_cast<std::size_t>(n);
    }
    return std::nullopt;
  }

  void write_loop(station& s) {
    std::unique_lock lock(s.mutex);
    for (;;) {
      s.work.wait(lock, [&] { return s.stopping || !s.queue.empty() || !s.reports.empty(); });
      if (s.stopping) return;
      if (!s.reports.empty()) {
        const node_id to = *s.reports.begin();
        s.reports.erase(s.reports.begin());
        lock.unlock();
        if (s.handler.unreachable) s.handler.unreachable(to);
        lock.lock();
        continue;
      }
      station::outgoing out = std::move(s.queue.front());
      s.queue.pop_front();
      lock.unlock();
      const std::optional<std::string> error = write_to(out.to, out.frame);
      lock.lock();
      auto peer = s.peers.find(out.to);
      if (peer == s.peers.end()) continue;
      if (!error) {
        peer->second.reachable = true;
        continue;
      }
      peer->second.reachable = false;
      peer->second.last_error = *error;
      ++peer->second.dropped;
      s.reports.insert(out.to);
    }
  }

  std::mutex mutex_;
  std::map<node_id, std::shared_ptr<station>> stations_;
};

inline socket_transport::~socket_transport() {
  if (station_) net_->release(station_);  // Unless moved from.
}

// --- the objects ------------------------------------------------------------------

/// A note: an id and a text.
struct note {
  std::string id;
  std::string text;
  std::uint64_t version = 0;
};

}  // namespace demo

template <>
struct keel::store::object_traits<demo::note> {
  static constexpr std::string_view table = "note";
  static std::string_view id(const demo::note& n) { return n.id; }
  static std::uint64_t version(const demo::note& n) { return n.version; }
  static void set_version(demo::note& n, std::uint64_t v) { n.version = v; }
  static std::string encode(const demo::note& n) {
    std::string out;
    demo::wire::put_string(out, n.id);
    demo::wire::put_string(out, n.text);
    demo::wire::put_u64(out, n.version);
    return out;
  }
  static keel::result<demo::note> decode(std::string_view bytes) {
    demo::wire::reader in(bytes);
    std::string_view id, text;
    demo::note n;
    if (!in.string(id) || !in.string(text) || !in.u64(n.version) || !in.done() || id.empty()) {
      return keel::errc::invalid_object;
    }
    n.id = id;
    n.text = text;
    return n;
  }
  static constexpr auto indexes() { return std::tuple{}; }
};

namespace {

using demo::note;
using keel::examples::check;
using runner = keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system,
                                  demo::socket_transport, note>;
using namespace std::chrono_literals;

void codec_round_trip() {
  std::printf("1. The message codec round-trips and refuses garbage.\n");
  demo::message m{.type = keel::raft::message_type::app,
                  .to = 2,
                  .from = 1,
                  .term = 3,
                  .log_term = 2,
                  .index = 7,
                  .commit = 6};
  m.entries.push_back({.term = 3, .index = 8, .data = keel::bytes("hello")});
  m.snapshot = keel::raft::snapshot{
      .metadata = {.index = 5, .term = 2, .conf = {.voters = {1, 2, 3}}}, .data = "state"};
  const std::string frame = demo::wire::encode_frame(m);
  const std::string_view body = std::string_view(frame).substr(4);
  check(demo::wire::decode(body) == m,
        "decode(encode(m)) == m (" + std::to_string(frame.size()) + " bytes)");
  check(!demo::wire::decode(body.substr(0, body.size() - 1)), "a truncated frame is refused");
  std::string forged(body);
  forged[0] = static_cast<char>(200);
  check(!demo::wire::decode(forged), "an unknown message type is refused");
}

using nodes_type = keel::examples::runner_cluster<runner, demo::socket_network>;

/// The text of note `id`, read linearizably on node `on`. A node that just
/// started knows no leader until the first heartbeat and refuses the read
/// with proposal_dropped ("retry later"): read_linearizable retries.
std::string text_of(nodes_type& nodes, keel::raft::node_id on, const std::string& id) {
  auto text = nodes.read_linearizable(on, [&](const auto& tx) {
    auto n = tx.template get<note>(id);
    return n ? n->text : std::string("(none)");
  });
  if (!text) throw keel::examples::check_failed("read of " + id + ": " + text.error().message());
  return *text;
}

/// Creates note {id, text} on whichever node leads; a retry after an
/// attempt that did commit finds the note there.
keel::result<std::uint64_t> create_note(nodes_type& nodes, const std::string& id,
                                        const std::string& text) {
  return nodes.update_on_leader([&](auto& tx) -> std::error_code {
    if (tx.template get<note>(id)) return {};
    return tx.create(note{id, text});
  });
}

/// The leader's transport's view of peer `id`, once it is `reachable` (or
/// unreachable with frames dropped), asked of whichever node leads at each
/// poll (of a follower if `id` leads); or the last view seen after
/// keel::examples::await_timeout. The leader heartbeats every tick, so its
/// transport learns within a few ticks; status is the only way to see it.
keel::transport::peer_status await_peer(nodes_type& nodes, keel::raft::node_id id, bool reachable) {
  keel::transport::peer_status seen;
  const auto deadline = std::chrono::steady_clock::now() + keel::examples::await_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (keel::raft::node_id n : nodes.ids()) {
      if (n == id || !nodes.running(n)) continue;
      auto st = nodes.at(n).status(1s);
      // The leader's view; or, when `id` itself leads, that of a follower answering it.
      if (!st || (st->role != "leader" && st->leader != id)) continue;
      for (const auto& p : st->peers) {
        if (p.id == id) seen = p.transport;
      }
      if (reachable ? seen.reachable : !seen.reachable && seen.dropped > 0) return seen;
    }
    std::this_thread::yield();
  }
  return seen;
}

void cluster() {
  std::printf("2. Three runners talk through sockets.\n");
  demo::socket_network network;
  nodes_type nodes(network, {1, 2, 3});
  auto leader_id = nodes.await_leader();
  std::printf("  node %llu leads\n", static_cast<unsigned long long>(leader_id));
  // Writes go to whichever node leads: leadership may move on a busy machine.
  auto v = create_note(nodes, "n1", "first");
  check(v.has_value(), "the leader committed a write");
  leader_id = nodes.await_leader();
  const keel::raft::node_id follower = leader_id == 1 ? 2 : 1;
  check(text_of(nodes, follower, "n1") == "first",
        "follower " + std::to_string(follower) + " reads it linearizably");

  std::printf("3. A node goes down; the leader's transport reports it unreachable.\n");
  const keel::raft::node_id down = nodes.await_leader() == 3 ? 2 : 3;
  nodes.stop(down);
  v = create_note(nodes, "n2", "second");
  check(v.has_value(), "two of three nodes still commit writes");
  const keel::transport::peer_status seen = await_peer(nodes, down, false);
  std::printf("  leader's view of node %llu: %s, %llu frames dropped, last error: %s\n",
              static_cast<unsigned long long>(down), seen.reachable ? "reachable" : "unreachable",
              static_cast<unsigned long long>(seen.dropped), seen.last_error.c_str());
  check(!seen.reachable && seen.dropped > 0, "the down node is reported unreachable");

  std::printf("4. The node comes back, recovers its WAL and catches up.\n");
  nodes.start(down);
  check(text_of(nodes, down, "n2") == "second", "the restarted node reads the write it missed");
  check(await_peer(nodes, down, true).reachable,
        "the leader reaches node " + std::to_string(down) + " again");
  std::printf("5. Everything stops: transports close their sockets and join their threads.\n");
}

}  // namespace

int main() {
  return keel::examples::run_example([] {
    codec_round_trip();
    cluster();
  });
}
