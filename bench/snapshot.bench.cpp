// keel's side of `scripts/bench.sh snapshot`: a snapshot streamed by the gRPC
// transport from a leader to a new follower over loopback, with TLS off and
// on, against raw loopback TCP moving the same bytes, measured by this
// program in the same run; and small-message round trips, a heartbeat and
// its heartbeat_resp, against a raw TCP ping-pong of the same size.
//
//   keel_snapshot_bench --dir DIR [--bytes N] [--runs R] [--rtt-seconds S]
//
// The program coordinates; every sender and receiver is a process of its own
// (this program again, with --role), so each side's peak RSS growth is its
// own: a side resets its peak (/proc/self/clear_refs, 5) once it is set up
// and reports VmHWM then versus after the transfer.
//
//  - keel: the sender's snapshot is a real N-byte snapshot file in a
//    wal::snapshot_store under DIR (written once at start, pseudo-random,
//    not timed), read through node::file_snapshot_source; the receiver
//    writes through node::file_snapshot_sink into a store of its own: the
//    transport checkpoints (fdatasync) every 64 MiB, commit fsyncs, renames
//    and syncs the directory. Timed from send() to snapshot_sent(true).
//    Default chunk size (transport::default_chunk_bytes).
//  - raw-tcp: the sender reads the same file through the same
//    snapshot_reader in chunks of the same size and writes them to a plain
//    loopback socket; the receiver write()s them to a file and fdatasyncs
//    it once at the end, then answers one byte. Timed from connect() to that
//    byte. It has no framing, no checksum, no checkpoints and no TLS: the
//    ceiling of this machine's loopback plus disk.
//  - round trips: node 1 sends a heartbeat to node 2, whose handler answers
//    heartbeat_resp; the next goes once the answer arrived, for S seconds.
//    The raw peer ping-pongs messages of the heartbeat's wire::Chunk size
//    over one TCP connection with TCP_NODELAY.
//
// Every figure is the median of R runs; the order of the cases alternates
// between runs. Prints one JSON line per case (BENCH.md) on stdout; progress
// goes to stderr.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/grpc/transport.hpp"
#include "keel/grpc/wire.hpp"
#include "keel/node/snapshot_transfer.hpp"
#include "keel/transport/chunker.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/snapshot_store.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using store_type = keel::wal::snapshot_store<keel::wal::posix_file_system>;

constexpr keel::raft::node_id leader_id = 1;
constexpr keel::raft::node_id follower_id = 2;
constexpr std::uint64_t snapshot_index = 100;
constexpr std::uint64_t snapshot_term = 2;
/// Heartbeats carry base + sequence number as their term, so every one has
/// the same wire size (a varint of constant length) and an answer names the
/// heartbeat it answers.
constexpr std::uint64_t term_base = std::uint64_t{1} << 40;
constexpr std::size_t chunk_bytes = keel::transport::default_chunk_bytes;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "keel_snapshot_bench: %s\n", why.c_str());
  std::exit(1);
}

/// `--key value` pairs.
using arguments = std::map<std::string, std::string>;

arguments parse(int argc, char** argv) {
  arguments a;
  for (int i = 1; i < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (!flag.starts_with("--") || i + 1 >= argc) {
      fail(
          "usage: keel_snapshot_bench --dir DIR [--bytes N] [--runs R] [--rtt-seconds S]\n"
          "(--role is for the program's own child processes)");
    }
    a[std::string(flag.substr(2))] = argv[i + 1];
  }
  return a;
}

std::string get(const arguments& a, const std::string& key, const std::string& otherwise = "") {
  auto it = a.find(key);
  if (it != a.end()) return it->second;
  if (otherwise.empty()) fail("missing --" + key);
  return otherwise;
}

std::uint64_t get_number(const arguments& a, const std::string& key, const std::string& otherwise) {
  const std::string text = get(a, key, otherwise);
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') fail("--" + key + " must be a number, got '" + text + "'");
  return v;
}

// --- memory -------------------------------------------------------------------

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
std::uint64_t status_kib(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  fail("no " + std::string(field) + " in /proc/self/status");
}

/// The growth of this process's peak RSS from now on.
class rss_probe {
 public:
  rss_probe() {
    // Resets VmHWM to the current RSS (Linux 4.0+); where that is refused
    // the growth is measured from the earlier peak, which can only hide some.
    std::ofstream("/proc/self/clear_refs") << "5";
    start_kib_ = status_kib("VmHWM");
  }
  double growth_mib() const {
    const std::uint64_t now = status_kib("VmHWM");
    return static_cast<double>(now - std::min(now, start_kib_)) / 1024.0;
  }

 private:
  std::uint64_t start_kib_ = 0;
};

// --- child processes ------------------------------------------------------------

/// This program run again as a child with --role: its stdin and stdout are
/// pipes to the coordinator; it dies with the coordinator.
class child {
 public:
  explicit child(std::vector<std::string> args) {
    int in[2];
    int out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) fail("pipe: " + std::string(std::strerror(errno)));
    pid_ = ::fork();
    if (pid_ < 0) fail("fork: " + std::string(std::strerror(errno)));
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
      std::vector<char*> argv;
      static char self[] = "keel_snapshot_bench";
      argv.push_back(self);
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::perror("keel_snapshot_bench: execv /proc/self/exe");
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    input_ = in[1];
    output_ = ::fdopen(out[0], "r");
    for (std::size_t i = 0; i + 1 < args.size(); i += 2)
      description_ += args[i] + " " + args[i + 1] + " ";
  }

  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// Kills a child that did not finish (after a failure elsewhere).
  ~child() {
    close_input();
    if (output_ != nullptr) std::fclose(output_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  /// The child's next line; fails if it ended first.
  std::string read_line() {
    char* line = nullptr;
    std::size_t capacity = 0;
    const ssize_t n = ::getline(&line, &capacity, output_);
    std::string text = n > 0 ? std::string(line, static_cast<std::size_t>(n)) : std::string();
    std::free(line);
    if (n <= 0) fail("child (" + description_ + ") ended without answering; see its stderr");
    if (text.back() == '\n') text.pop_back();
    return text;
  }

  void write_line(const std::string& text) {
    const std::string line = text + "\n";
    if (::write(input_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      fail("cannot write to child (" + description_ + ")");
    }
  }

  /// Tells the child to finish (it reads its stdin to the end).
  void close_input() {
    if (input_ >= 0) ::close(input_);
    input_ = -1;
  }

  /// Waits for the child to exit; fails unless it exited with 0.
  void wait() {
    close_input();
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fail("child (" + description_ + ") failed with status " + std::to_string(status));
    }
  }

 private:
  pid_t pid_ = -1;
  int input_ = -1;
  std::FILE* output_ = nullptr;
  std::string description_;
};

/// The value of `key=` in a line of `key=value` words.
double field(const std::string& line, const std::string& key) {
  std::istringstream words(line);
  std::string w;
  while (words >> w) {
    if (w.starts_with(key + "=")) return std::strtod(w.c_str() + key.size() + 1, nullptr);
  }
  fail("no " + key + " in '" + line + "'");
}

/// Prints one protocol line for the coordinator.
void say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

/// Reads stdin to its end: the coordinator's signal to finish.
void wait_for_end_of_input() {
  std::string line;
  while (std::getline(std::cin, line)) {
  }
}

// --- gRPC sides ----------------------------------------------------------------

/// The transport options of node `id`: plaintext, or mutual TLS with the
/// certificates under `certs` (made by make_certificates).
keel::rpc::transport_options options_for(keel::raft::node_id id, const std::string& mode,
                                         const std::string& certs) {
  keel::rpc::transport_options o;
  o.id = id;
  o.listen_address = "127.0.0.1:0";
  if (mode == "plain") {
    o.tls.plaintext = true;
  } else {
    const std::string name = keel::rpc::default_identity(id);
    o.tls.ca.file = certs + "/ca.crt";
    o.tls.certificate.file = certs + "/" + name + ".crt";
    o.tls.private_key.file = certs + "/" + name + ".key";
  }
  return o;
}

keel::rpc::grpc_transport listen_or_fail(keel::rpc::transport_options o) {
  auto t = keel::rpc::grpc_transport::listen(std::move(o));
  if (!t) fail("cannot start the gRPC transport: " + t.error().message());
  return std::move(*t);
}

/// What a handler saw, for the main thread to wait on.
struct events {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<bool> snapshot_outcome;
  bool snapshot_delivered = false;
  std::uint64_t answered_term = 0;
};

/// Generous: a transfer slower than 1 MB/s has failed.
std::chrono::seconds patience_for(std::uint64_t bytes) {
  return std::chrono::seconds(60 + bytes / 1'000'000);
}

/// Node 1 streams the snapshot (index, term) of the store under --dir.
int run_grpc_sender(const arguments& a) {
  const std::string dir = get(a, "dir");
  const std::string mode = get(a, "mode");
  store_type store(keel::wal::posix_file_system{}, dir + "/sender/snap");
  events ev;
  std::optional<keel::rpc::grpc_transport> t(
      listen_or_fail(options_for(leader_id, mode, dir + "/certs")));
  t->attach({
      .deliver = [](keel::raft::message) {},
      .unreachable = {},
      .open_snapshot = [&store](const keel::raft::snapshot& s)
          -> keel::result<std::unique_ptr<keel::transport::snapshot_source>> {
        store_type files = store;  // Each source works on its own copy of the store.
        auto reader = files.open(s.metadata.index, s.metadata.term);
        if (!reader) return reader.error();
        return std::unique_ptr<keel::transport::snapshot_source>(
            new keel::node::file_snapshot_source<keel::wal::posix_file_system>(std::move(*reader)));
      },
      .receive_snapshot = {},
      .snapshot_sent =
          [&ev](keel::raft::node_id, bool delivered) {
            std::lock_guard lock(ev.mutex);
            ev.snapshot_outcome = delivered;
            ev.changed.notify_all();
          },
  });
  t->add_peer(follower_id, "127.0.0.1:" + get(a, "port"));
  auto reader = store.open(snapshot_index, snapshot_term);
  if (!reader) fail("cannot open the sender's snapshot: " + reader.error().message());
  const std::uint64_t bytes = reader->size();

  keel::raft::message m{.type = keel::raft::message_type::snap,
                        .to = follower_id,
                        .from = leader_id,
                        .term = snapshot_term};
  m.snapshot = keel::raft::snapshot{.metadata = {.index = snapshot_index,
                                                 .term = snapshot_term,
                                                 .conf = {.voters = {leader_id, follower_id}}},
                                    .data = "snapshot"};
  const rss_probe probe;
  const auto start = clock_type::now();
  t->send(std::move(m));
  std::optional<bool> outcome;
  {
    std::unique_lock lock(ev.mutex);
    ev.changed.wait_for(lock, patience_for(bytes), [&] { return ev.snapshot_outcome.has_value(); });
    outcome = ev.snapshot_outcome;
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  if (outcome != true) {
    fail(std::string("the snapshot was not delivered") + (outcome ? "" : " in time") + ": " +
         t->status(follower_id).last_error);
  }
  say("done seconds=" + std::to_string(seconds) + " bytes=" + std::to_string(bytes) +
      " rss_growth_mib=" + std::to_string(probe.growth_mib()));
  t.reset();
  return 0;
}

/// Node 2 receives the snapshot into a store of its own under --dir.
int run_grpc_receiver(const arguments& a) {
  const std::string dir = get(a, "dir");
  const std::string mode = get(a, "mode");
  std::filesystem::create_directories(dir + "/receiver");
  store_type store(keel::wal::posix_file_system{}, dir + "/receiver/snap");
  if (auto ec = store.cleanup()) fail("cannot make the receiver's store: " + ec.message());
  events ev;
  std::optional<keel::rpc::grpc_transport> t(
      listen_or_fail(options_for(follower_id, mode, dir + "/certs")));
  t->attach({
      .deliver =
          [&ev](keel::raft::message m) {
            if (m.type != keel::raft::message_type::snap) return;
            std::lock_guard lock(ev.mutex);
            ev.snapshot_delivered = true;
            ev.changed.notify_all();
          },
      .unreachable = {},
      .open_snapshot = {},
      .receive_snapshot = [&store](keel::raft::node_id, const keel::raft::snapshot_metadata& meta)
          -> keel::result<std::unique_ptr<keel::transport::snapshot_sink>> {
        store_type files = store;
        auto writer = files.begin_partial(meta.index, meta.term, {});
        if (!writer) return writer.error();
        return std::unique_ptr<keel::transport::snapshot_sink>(
            new keel::node::file_snapshot_sink<keel::wal::posix_file_system>(
                files, std::move(*writer), meta.index, meta.term, "snapshot"));
      },
      .snapshot_sent = {},
  });
  const std::uint64_t bytes = get_number(a, "bytes", "0");
  const rss_probe probe;
  say("ready port=" + std::to_string(t->port()));
  bool delivered = false;
  {
    std::unique_lock lock(ev.mutex);
    delivered =
        ev.changed.wait_for(lock, patience_for(bytes), [&] { return ev.snapshot_delivered; });
  }
  if (!delivered) fail("the receiver got no snapshot in time");
  auto installed = store.open(snapshot_index, snapshot_term);
  if (!installed || installed->size() != bytes)
    fail("the receiver's snapshot is not installed whole");
  say("done rss_growth_mib=" + std::to_string(probe.growth_mib()));
  wait_for_end_of_input();
  t.reset();
  return 0;
}

/// Node 2 answers every heartbeat with a heartbeat_resp.
int run_grpc_echo(const arguments& a) {
  const std::string dir = get(a, "dir");
  std::optional<keel::rpc::grpc_transport> t(
      listen_or_fail(options_for(follower_id, get(a, "mode"), dir + "/certs")));
  keel::rpc::grpc_transport* self = &*t;
  keel::transport::handler h;
  h.deliver = [self](keel::raft::message m) {
    if (m.type != keel::raft::message_type::heartbeat) return;
    self->send({.type = keel::raft::message_type::heartbeat_resp,
                .to = m.from,
                .from = follower_id,
                .term = m.term});
  };
  t->attach(std::move(h));
  say("ready port=" + std::to_string(t->port()));
  std::string line;
  if (!std::getline(std::cin, line) || !line.starts_with("peer "))
    fail("echo: expected 'peer PORT'");
  t->add_peer(leader_id, "127.0.0.1:" + line.substr(5));
  wait_for_end_of_input();
  t.reset();
  return 0;
}

/// Node 1 sends heartbeats one at a time, each after the last one's answer.
int run_grpc_pinger(const arguments& a) {
  const std::string dir = get(a, "dir");
  const double seconds = std::strtod(get(a, "seconds").c_str(), nullptr);
  events ev;
  std::optional<keel::rpc::grpc_transport> t(
      listen_or_fail(options_for(leader_id, get(a, "mode"), dir + "/certs")));
  keel::transport::handler h;
  h.deliver = [&ev](keel::raft::message m) {
    if (m.type != keel::raft::message_type::heartbeat_resp) return;
    std::lock_guard lock(ev.mutex);
    ev.answered_term = std::max(ev.answered_term, m.term);
    ev.changed.notify_all();
  };
  t->attach(std::move(h));
  t->add_peer(follower_id, "127.0.0.1:" + get(a, "port"));
  say("ready port=" + std::to_string(t->port()));
  std::uint64_t term = term_base;
  // One round trip; false if no answer came within `patience`.
  auto round_trip = [&](std::chrono::milliseconds patience) {
    ++term;
    t->send({.type = keel::raft::message_type::heartbeat,
             .to = follower_id,
             .from = leader_id,
             .term = term});
    std::unique_lock lock(ev.mutex);
    return ev.changed.wait_for(lock, patience, [&] { return ev.answered_term >= term; });
  };
  // Warm-up: until the echo knows this node (heartbeats before that go
  // unanswered) and the connections in both directions are up.
  const auto give_up = clock_type::now() + 30s;
  int answered = 0;
  while (answered < 200) {
    if (clock_type::now() > give_up) fail("pinger: no answers from the echo within 30 s");
    if (round_trip(100ms)) ++answered;
  }
  std::uint64_t trips = 0;
  const auto start = clock_type::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (clock_type::now() < end) {
    if (!round_trip(5s)) fail("pinger: a heartbeat went unanswered for 5 s");
    ++trips;
  }
  const double took = std::chrono::duration<double>(clock_type::now() - start).count();
  say("done round_trips=" + std::to_string(trips) + " seconds=" + std::to_string(took));
  t.reset();
  return 0;
}

// --- raw TCP sides ----------------------------------------------------------------

int listen_loopback(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 1) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fail("cannot listen on loopback: " + std::string(std::strerror(errno)));
  }
  port = ntohs(addr.sin_port);
  return fd;
}

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    fail("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  }
  return fd;
}

void no_delay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write: " + std::string(std::strerror(errno)));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

/// Reads exactly n bytes; false at a clean end of stream before the first.
bool read_all(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::read(fd, p + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("read: " + std::string(std::strerror(errno)));
    if (r == 0) {
      if (done == 0) return false;
      fail("the connection ended inside a message");
    }
    done += static_cast<std::size_t>(r);
  }
  return true;
}

/// The same file, the same reader and chunk size as keel's sender, over a
/// plain socket: an 8-byte length, the content, then one byte back.
int run_raw_sender(const arguments& a) {
  store_type store(keel::wal::posix_file_system{}, get(a, "dir") + "/sender/snap");
  auto reader = store.open(snapshot_index, snapshot_term);
  if (!reader) fail("cannot open the sender's snapshot: " + reader.error().message());
  const std::uint64_t bytes = reader->size();
  std::vector<std::byte> buffer(chunk_bytes);
  const rss_probe probe;
  const auto start = clock_type::now();
  const int fd = connect_loopback(static_cast<int>(get_number(a, "port", "")));
  write_all(fd, &bytes, sizeof(bytes));
  for (std::uint64_t offset = 0; offset < bytes;) {
    auto n = reader->read_at(offset, buffer);
    if (!n || *n == 0) fail("cannot read the sender's snapshot");
    write_all(fd, buffer.data(), *n);
    offset += *n;
  }
  char ack = 0;
  if (!read_all(fd, &ack, 1)) fail("the raw receiver did not acknowledge");
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(fd);
  say("done seconds=" + std::to_string(seconds) + " bytes=" + std::to_string(bytes) +
      " rss_growth_mib=" + std::to_string(probe.growth_mib()));
  return 0;
}

/// Writes what arrives to a file, fdatasyncs it once at the end, answers.
int run_raw_receiver(const arguments& a) {
  const std::string dir = get(a, "dir") + "/receiver";
  std::filesystem::create_directories(dir);
  int port = 0;
  const int listener = listen_loopback(port);
  std::vector<char> buffer(chunk_bytes);
  const rss_probe probe;
  say("ready port=" + std::to_string(port));
  const int fd = ::accept(listener, nullptr, nullptr);
  if (fd < 0) fail("accept: " + std::string(std::strerror(errno)));
  const int file = ::open((dir + "/raw.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (file < 0) fail("cannot create " + dir + "/raw.bin: " + std::strerror(errno));
  std::uint64_t bytes = 0;
  if (!read_all(fd, &bytes, sizeof(bytes))) fail("the raw sender sent nothing");
  for (std::uint64_t got = 0; got < bytes;) {
    const ssize_t r =
        ::read(fd, buffer.data(),
               static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), bytes - got)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) fail("the raw sender stopped early");
    write_all(file, buffer.data(), static_cast<std::size_t>(r));
    got += static_cast<std::uint64_t>(r);
  }
  if (::fdatasync(file) != 0) fail("fdatasync: " + std::string(std::strerror(errno)));
  ::close(file);
  const char ack = 1;
  write_all(fd, &ack, 1);
  say("done rss_growth_mib=" + std::to_string(probe.growth_mib()));
  wait_for_end_of_input();
  ::close(fd);
  ::close(listener);
  return 0;
}

int run_raw_echo(const arguments& a) {
  const auto size = static_cast<std::size_t>(get_number(a, "message-bytes", ""));
  int port = 0;
  const int listener = listen_loopback(port);
  say("ready port=" + std::to_string(port));
  const int fd = ::accept(listener, nullptr, nullptr);
  if (fd < 0) fail("accept: " + std::string(std::strerror(errno)));
  no_delay(fd);
  std::vector<char> message(size);
  while (read_all(fd, message.data(), size)) write_all(fd, message.data(), size);
  ::close(fd);
  ::close(listener);
  wait_for_end_of_input();
  return 0;
}

int run_raw_pinger(const arguments& a) {
  const auto size = static_cast<std::size_t>(get_number(a, "message-bytes", ""));
  const double seconds = std::strtod(get(a, "seconds").c_str(), nullptr);
  const int fd = connect_loopback(static_cast<int>(get_number(a, "port", "")));
  no_delay(fd);
  std::vector<char> message(size, 'h');
  auto round_trip = [&] {
    write_all(fd, message.data(), size);
    if (!read_all(fd, message.data(), size)) fail("the raw echo closed the connection");
  };
  for (int i = 0; i < 200; ++i) round_trip();  // Warm-up, as keel's side.
  std::uint64_t trips = 0;
  const auto start = clock_type::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (clock_type::now() < end) {
    round_trip();
    ++trips;
  }
  const double took = std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(fd);
  say("done round_trips=" + std::to_string(trips) + " seconds=" + std::to_string(took));
  return 0;
}

// --- the coordinator ---------------------------------------------------------------

/// A CA and certificates for node-1 and node-2 (CN and DNS SAN, see
/// keel::rpc::default_identity), made with the openssl command.
void make_certificates(const std::string& certs) {
  std::filesystem::create_directories(certs);
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::string script = "set -e; cd '" + certs + "'; " + "openssl req -x509 " + ec +
                       " -keyout ca.key -out ca.crt -days 2 -subj /CN=keel-bench-ca; ";
  for (keel::raft::node_id id : {leader_id, follower_id}) {
    const std::string n = keel::rpc::default_identity(id);
    script += "openssl req " + ec + " -keyout " + n + ".key -out " + n + ".csr -subj /CN=" + n +
              "; printf 'subjectAltName=DNS:" + n + "\\n' > " + n + ".ext; " +
              "openssl x509 -req -in " + n + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -out " +
              n + ".crt -days 2 -extfile " + n + ".ext; ";
  }
  const std::string command = "(" + script + ") >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    fail("openssl could not make the test certificates in " + certs +
         " (is the openssl command installed?)");
  }
}

/// The sender's snapshot: `bytes` of pseudo-random content (splitmix64),
/// committed durably before anything is timed.
void make_snapshot(const std::string& dir, std::uint64_t bytes) {
  store_type store(keel::wal::posix_file_system{}, dir + "/sender/snap");
  std::filesystem::create_directories(dir + "/sender");
  if (auto ec = store.cleanup()) fail("cannot make the sender's store: " + ec.message());
  auto writer = store.begin(snapshot_index, snapshot_term, {});
  if (!writer) fail("cannot begin the snapshot: " + writer.error().message());
  std::vector<std::uint64_t> piece(chunk_bytes / 8);
  std::uint64_t state = 42;
  for (std::uint64_t done = 0; done < bytes;) {
    for (std::uint64_t& word : piece) {
      std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes, bytes - done));
    if (auto ec = writer->write(std::as_bytes(std::span(piece)).first(n))) {
      fail("cannot write the snapshot: " + ec.message());
    }
    done += n;
  }
  if (auto ec = writer->commit()) fail("cannot commit the snapshot: " + ec.message());
}

struct transfer_figures {
  double mb_per_s = 0;
  double sender_rss_growth_mib = 0;
  double receiver_rss_growth_mib = 0;
};

/// One transfer of the snapshot in `mode` (plain, tls, raw).
transfer_figures transfer(const std::string& self_dir, const std::string& mode,
                          std::uint64_t bytes) {
  std::filesystem::remove_all(self_dir + "/receiver");
  const std::string kind = mode == "raw" ? "raw" : "grpc";
  child receiver({"--role", kind + "-receiver", "--mode", mode, "--dir", self_dir, "--bytes",
                  std::to_string(bytes)});
  const std::string ready = receiver.read_line();
  const auto port = static_cast<int>(field(ready, "port"));
  child sender({"--role", kind + "-sender", "--mode", mode, "--dir", self_dir, "--port",
                std::to_string(port)});
  const std::string sent = sender.read_line();
  sender.wait();
  const std::string received = receiver.read_line();
  receiver.wait();
  std::filesystem::remove_all(self_dir + "/receiver");
  transfer_figures f;
  f.mb_per_s = field(sent, "bytes") / 1e6 / field(sent, "seconds");
  f.sender_rss_growth_mib = field(sent, "rss_growth_mib");
  f.receiver_rss_growth_mib = field(received, "rss_growth_mib");
  return f;
}

/// Round trips per second in `mode` (plain, tls, raw).
double round_trips(const std::string& dir, const std::string& mode, double seconds,
                   std::size_t message_bytes) {
  const std::string kind = mode == "raw" ? "raw" : "grpc";
  child echo({"--role", kind + "-echo", "--mode", mode, "--dir", dir, "--message-bytes",
              std::to_string(message_bytes)});
  const auto port = static_cast<int>(field(echo.read_line(), "port"));
  child pinger({"--role", kind + "-pinger", "--mode", mode, "--dir", dir, "--port",
                std::to_string(port), "--seconds", std::to_string(seconds), "--message-bytes",
                std::to_string(message_bytes)});
  if (kind == "grpc")
    echo.write_line("peer " + std::to_string(static_cast<int>(field(pinger.read_line(), "port"))));
  const std::string done = pinger.read_line();
  pinger.wait();
  echo.wait();
  return field(done, "round_trips") / field(done, "seconds");
}

/// The wire size of a heartbeat as the message lane sends it: one
/// header-only wire::Chunk.
std::size_t heartbeat_wire_bytes() {
  keel::wire::Chunk c;
  keel::rpc::to_wire({.type = keel::raft::message_type::heartbeat,
                      .to = follower_id,
                      .from = leader_id,
                      .term = term_base + 1},
                     *c.mutable_header());
  c.set_from(leader_id);
  c.set_last(true);
  return c.ByteSizeLong();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// snapshot_1gib, snapshot_64mib, or snapshot_<bytes>b.
std::string case_name(std::uint64_t bytes) {
  constexpr std::uint64_t mib = 1 << 20;
  if (bytes % (1024 * mib) == 0) return "snapshot_" + std::to_string(bytes / (1024 * mib)) + "gib";
  if (bytes % mib == 0) return "snapshot_" + std::to_string(bytes / mib) + "mib";
  return "snapshot_" + std::to_string(bytes) + "b";
}

std::string fixed(double v, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, v);
  return text;
}

int run_coordinator(const arguments& a) {
  const std::uint64_t bytes = get_number(a, "bytes", std::to_string(std::uint64_t{1} << 30));
  const std::uint64_t runs = get_number(a, "runs", "3");
  const double rtt_seconds = std::strtod(get(a, "rtt-seconds", "2").c_str(), nullptr);
  if (bytes == 0 || runs == 0 || !(rtt_seconds > 0))
    fail("--bytes, --runs and --rtt-seconds must be > 0");
  const std::string dir = std::filesystem::absolute(get(a, "dir")).string();
  std::filesystem::create_directories(dir);

  std::fprintf(stderr, "keel_snapshot_bench: writing a %llu-byte snapshot and certificates in %s\n",
               static_cast<unsigned long long>(bytes), dir.c_str());
  make_certificates(dir + "/certs");
  make_snapshot(dir, bytes);
  const std::size_t message_bytes = heartbeat_wire_bytes();

  const std::vector<std::string> modes = {"plain", "tls", "raw"};
  std::map<std::string, std::vector<double>> mb, sender_rss, receiver_rss, rtt;
  for (std::uint64_t r = 1; r <= runs; ++r) {
    std::vector<std::string> order = modes;
    if (r % 2 == 0) std::reverse(order.begin(), order.end());  // Who goes first alternates.
    for (const std::string& mode : order) {
      const transfer_figures f = transfer(dir, mode, bytes);
      std::fprintf(stderr,
                   "run %llu/%llu: %-5s snapshot %.1f MB/s, RSS growth sender %.1f MiB, "
                   "receiver %.1f MiB\n",
                   static_cast<unsigned long long>(r), static_cast<unsigned long long>(runs),
                   mode.c_str(), f.mb_per_s, f.sender_rss_growth_mib, f.receiver_rss_growth_mib);
      mb[mode].push_back(f.mb_per_s);
      sender_rss[mode].push_back(f.sender_rss_growth_mib);
      receiver_rss[mode].push_back(f.receiver_rss_growth_mib);
    }
    for (const std::string& mode : order) {
      const double v = round_trips(dir, mode, rtt_seconds, message_bytes);
      std::fprintf(stderr, "run %llu/%llu: %-5s round trips %.0f/s (%zu-byte messages)\n",
                   static_cast<unsigned long long>(r), static_cast<unsigned long long>(runs),
                   mode.c_str(), v, message_bytes);
      rtt[mode].push_back(v);
    }
  }

  const double raw_mb = median(mb["raw"]);
  const double raw_rtt = median(rtt["raw"]);
  for (const std::string& mode : {std::string("plain"), std::string("tls")}) {
    const double k = median(mb[mode]);
    std::printf(
        "{\"bench\":\"snapshot\",\"case\":\"%s\",\"unit\":\"MB/"
        "s\",\"keel\":%s,\"peer\":\"raw-tcp\","
        "\"peer_value\":%s,\"ratio\":%s,\"mode\":\"%s\",\"sender_rss_growth_mib\":%s,"
        "\"receiver_rss_growth_mib\":%s,\"peer_sender_rss_growth_mib\":%s,"
        "\"peer_receiver_rss_growth_mib\":%s,\"bytes\":%llu,\"chunk_bytes\":%zu,"
        "\"target_ratio\":0.5,\"target_rss_growth_mib\":64,\"runs\":%llu}\n",
        case_name(bytes).c_str(), fixed(k, 1).c_str(), fixed(raw_mb, 1).c_str(),
        fixed(raw_mb > 0 ? k / raw_mb : 0, 2).c_str(), mode.c_str(),
        fixed(median(sender_rss[mode]), 1).c_str(), fixed(median(receiver_rss[mode]), 1).c_str(),
        fixed(median(sender_rss["raw"]), 1).c_str(), fixed(median(receiver_rss["raw"]), 1).c_str(),
        static_cast<unsigned long long>(bytes), chunk_bytes, static_cast<unsigned long long>(runs));
  }
  for (const std::string& mode : {std::string("plain"), std::string("tls")}) {
    const double k = median(rtt[mode]);
    std::printf(
        "{\"bench\":\"snapshot\",\"case\":\"heartbeat_round_trip\",\"unit\":\"ops/s\",\"keel\":%s,"
        "\"peer\":\"raw-tcp\",\"peer_value\":%s,\"ratio\":%s,\"mode\":\"%s\",\"message_bytes\":%zu,"
        "\"seconds\":%s,\"runs\":%llu}\n",
        fixed(k, 0).c_str(), fixed(raw_rtt, 0).c_str(),
        fixed(raw_rtt > 0 ? k / raw_rtt : 0, 3).c_str(), mode.c_str(), message_bytes,
        fixed(rtt_seconds, 1).c_str(), static_cast<unsigned long long>(runs));
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const arguments a = parse(argc, argv);
  const std::string role = get(a, "role", "coordinator");
  if (role == "coordinator") return run_coordinator(a);
  if (role == "grpc-sender") return run_grpc_sender(a);
  if (role == "grpc-receiver") return run_grpc_receiver(a);
  if (role == "grpc-echo") return run_grpc_echo(a);
  if (role == "grpc-pinger") return run_grpc_pinger(a);
  if (role == "raw-sender") return run_raw_sender(a);
  if (role == "raw-receiver") return run_raw_receiver(a);
  if (role == "raw-echo") return run_raw_echo(a);
  if (role == "raw-pinger") return run_raw_pinger(a);
  fail("unknown --role " + role);
}
