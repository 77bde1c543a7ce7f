// Helpers of the gRPC transport tests: a transport with a recording handler
// whose snapshots land in a real snapshot store (behind a gate a test can
// close to stall them), in-memory snapshot content, a bare client for input
// no keel sender produces, and certificates made with openssl at test time.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../wal/wal_test_support.hpp"
#include "keel/grpc/transport.hpp"
#include "keel/node/snapshot_transfer.hpp"
#include "keel/wal/crc32c.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/snapshot_store.hpp"

namespace keel::test {

/// Deterministic snapshot content of `n` bytes.
inline std::vector<std::byte> content_of(std::size_t n, std::uint64_t seed = 1) {
  std::vector<std::byte> bytes(n);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bytes[i] = static_cast<std::byte>(x);
  }
  return bytes;
}

/// A snapshot's content held in memory, for a sender.
class memory_source final : public transport::snapshot_source {
 public:
  explicit memory_source(std::shared_ptr<const std::vector<std::byte>> bytes)
      : bytes_(std::move(bytes)), crc_(wal::crc32c(*bytes_)) {}
  std::uint64_t size() const override { return bytes_->size(); }
  std::uint32_t crc() const override { return crc_; }
  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset > bytes_->size()) return errc::invalid_argument;
    const std::size_t n = std::min<std::size_t>(out.size(), bytes_->size() - offset);
    std::copy_n(bytes_->begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }

 private:
  std::shared_ptr<const std::vector<std::byte>> bytes_;
  std::uint32_t crc_;
};

/// One node's transport, with a handler that records what arrives: its
/// messages, its snapshots (into a snapshot store in a temporary
/// directory) and the outcomes of the snapshots it sent.
class test_peer {
 public:
  using store_type = wal::snapshot_store<wal::posix_file_system>;

  explicit test_peer(rpc::transport_options options)
      : store_(wal::posix_file_system{}, dir_.path() + "/snap") {
    REQUIRE_FALSE(store_.cleanup());
    auto t = rpc::grpc_transport::listen(std::move(options));
    REQUIRE(t);
    transport_.emplace(std::move(*t));
    transport_->attach(handler());
  }

  test_peer(const test_peer&) = delete;
  test_peer& operator=(const test_peer&) = delete;
  /// Opens the gate first: a held write would keep the server from stopping.
  ~test_peer() { release_snapshots(); }

  rpc::grpc_transport& transport() { return *transport_; }
  store_type& store() { return store_; }
  const std::string& directory() const { return dir_.path(); }

  /// The content a snap message with handle `name` sends.
  void offer(const std::string& name, std::shared_ptr<const std::vector<std::byte>> bytes) {
    std::lock_guard lock(mutex_);
    offered_[name] = std::move(bytes);
  }

  /// Waits until `count` messages arrived (or `patience` passed); returns them.
  std::vector<raft::message> wait_messages(
      std::size_t count, std::chrono::milliseconds patience = std::chrono::seconds(20)) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return messages_.size() >= count; });
    return messages_;
  }

  /// Waits for the outcome of the `n`th snapshot sent (1-based).
  std::optional<bool> wait_snapshot_outcome(
      std::size_t n = 1, std::chrono::milliseconds patience = std::chrono::seconds(60)) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return outcomes_.size() >= n; });
    if (outcomes_.size() < n) return std::nullopt;
    return outcomes_[n - 1];
  }

  std::size_t unreachable_reports() const {
    std::lock_guard lock(mutex_);
    return unreachable_;
  }

  /// Sinks handed out, and bytes written through them.
  std::uint64_t bytes_received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

  /// Messages delivered so far.
  std::size_t message_count() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }

  /// From now on a snapshot write that would take the bytes received past
  /// `limit` waits (inside the gRPC handler, so the stream stalls) until
  /// release_snapshots().
  void hold_snapshots_at(std::uint64_t limit) {
    std::lock_guard lock(mutex_);
    hold_at_ = limit;
  }

  /// Lets held writes go on, and every later one.
  void release_snapshots() {
    std::lock_guard lock(mutex_);
    hold_at_.reset();
    changed_.notify_all();
  }

  /// Waits until a write is held at the gate; whether one is.
  bool wait_snapshot_held(std::chrono::milliseconds patience = std::chrono::seconds(20)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, patience, [&] { return held_writes_ > 0; });
  }

  /// The names of the files in the snapshot directory, sorted.
  std::vector<std::string> snapshot_files() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(store_.directory())) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  /// Counts what passes through a file sink, and holds a write at the gate
  /// (hold_snapshots_at).
  class counting_sink final : public transport::snapshot_sink {
   public:
    counting_sink(std::unique_ptr<transport::snapshot_sink> inner, test_peer& peer)
        : inner_(std::move(inner)), peer_(peer) {}
    std::uint64_t held() const override { return inner_->held(); }
    std::error_code write(std::span<const std::byte> data) override {
      peer_.admit(data.size());
      return inner_->write(data);
    }
    std::error_code checkpoint() override { return inner_->checkpoint(); }
    result<std::string> commit(std::uint64_t size, std::uint32_t crc) override {
      return inner_->commit(size, crc);
    }
    void discard() override { inner_->discard(); }

   private:
    std::unique_ptr<transport::snapshot_sink> inner_;
    test_peer& peer_;
  };

  /// Counts n bytes about to be written, first waiting while the gate holds
  /// writes that would pass its limit.
  void admit(std::uint64_t n) {
    std::unique_lock lock(mutex_);
    if (hold_at_ && received_ + n > *hold_at_) {
      ++held_writes_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return !hold_at_; });
    }
    received_ += n;
  }

  transport::handler handler() {
    return {
        .deliver =
            [this](raft::message m) {
              std::lock_guard lock(mutex_);
              messages_.push_back(std::move(m));
              changed_.notify_all();
            },
        .unreachable =
            [this](raft::node_id) {
              std::lock_guard lock(mutex_);
              ++unreachable_;
            },
        .open_snapshot =
            [this](const raft::snapshot& s) -> result<std::unique_ptr<transport::snapshot_source>> {
          std::lock_guard lock(mutex_);
          auto it = offered_.find(s.data);
          if (it == offered_.end()) return errc::not_found;
          return std::unique_ptr<transport::snapshot_source>(new memory_source(it->second));
        },
        .receive_snapshot = [this](raft::node_id, const raft::snapshot_metadata& m)
            -> result<std::unique_ptr<transport::snapshot_sink>> {
          store_type files = store_;
          auto writer = files.begin_partial(m.index, m.term, {});
          if (!writer) return writer.error();
          auto sink = std::make_unique<node::file_snapshot_sink<wal::posix_file_system>>(
              files, std::move(*writer), m.index, m.term, "file");
          return std::unique_ptr<transport::snapshot_sink>(
              new counting_sink(std::move(sink), *this));
        },
        .snapshot_sent =
            [this](raft::node_id, bool delivered) {
              std::lock_guard lock(mutex_);
              outcomes_.push_back(delivered);
              changed_.notify_all();
            },
    };
  }

  temp_dir dir_;
  store_type store_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<raft::message> messages_;
  std::vector<bool> outcomes_;
  std::size_t unreachable_ = 0;
  std::uint64_t received_ = 0;
  std::optional<std::uint64_t> hold_at_{};
  std::size_t held_writes_ = 0;
  std::map<std::string, std::shared_ptr<const std::vector<std::byte>>> offered_;
  std::optional<rpc::grpc_transport> transport_;  // Last: it goes first.
};

/// Plaintext options for node `id` on an ephemeral loopback port.
inline rpc::transport_options plaintext_options(raft::node_id id) {
  rpc::transport_options o;
  o.id = id;
  o.tls.plaintext = true;
  o.chunk_timeout = std::chrono::seconds(5);
  return o;
}

/// A snap message from `from` to `to` naming content `name`.
inline raft::message snapshot_message(raft::node_id from, raft::node_id to, std::uint64_t index,
                                      std::uint64_t term, const std::string& name) {
  raft::message m{.type = raft::message_type::snap, .to = to, .from = from, .term = term};
  m.snapshot = raft::snapshot{
      .metadata = {.index = index, .term = term, .conf = {.voters = {1, 2}}}, .data = name};
  return m;
}

/// Polls `done` every few milliseconds until it holds or `patience` passed
/// (for conditions nothing signals); whether it held.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds patience = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// The whole content of a file.
inline std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A certificate authority made with the openssl command line in a
/// temporary directory, and the node certificates it signs (EC P-256, valid
/// for a day). Fails the test when openssl is missing or fails.
class test_ca {
 public:
  explicit test_ca(std::string name = "keel-test-ca") : name_(std::move(name)) {
    run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=" +
        name_ + " -keyout " + path("ca.key") + " -out " + path("ca.pem"));
  }

  /// The CA's certificate file.
  std::string ca_file() const { return path("ca.pem"); }

  /// Mutual TLS options (files) for a certificate whose common name is
  /// `common_name`, signed by this CA.
  rpc::tls_options issue(const std::string& common_name) {
    const std::string key = path(common_name + ".key");
    const std::string request = path(common_name + ".csr");
    const std::string certificate = path(common_name + ".pem");
    run("req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" +
        common_name + " -keyout " + key + " -out " + request);
    run("x509 -req -days 1 -set_serial " + std::to_string(++serial_) + " -in " + request + " -CA " +
        ca_file() + " -CAkey " + path("ca.key") + " -out " + certificate);
    rpc::tls_options tls;
    tls.ca.file = ca_file();
    tls.certificate.file = certificate;
    tls.private_key.file = key;
    return tls;
  }

  /// The same options with the PEM text in memory instead of file names.
  static rpc::tls_options in_memory(const rpc::tls_options& files) {
    rpc::tls_options tls;
    tls.ca.pem = file_text(files.ca.file);
    tls.certificate.pem = file_text(files.certificate.file);
    tls.private_key.pem = file_text(files.private_key.file);
    return tls;
  }

 private:
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  void run(const std::string& arguments) {
    const std::string log = path("openssl.log");
    const std::string command = "openssl " + arguments + " >>" + log + " 2>&1";
    const int status = std::system(command.c_str());
    INFO("command: " << command << "\noutput: " << file_text(log));
    REQUIRE(status == 0);
  }

  temp_dir dir_;
  std::string name_;
  int serial_ = 0;
};

/// The chunks of a well-formed stream of snapshot (index, term) from node
/// `from` to node `to` with `content`, `chunk_bytes` at a time: the first
/// carries the snap message's header, the last the size and CRC32C.
inline std::vector<wire::Chunk> snapshot_chunks(raft::node_id from, raft::node_id to,
                                                std::uint64_t index, std::uint64_t term,
                                                std::span<const std::byte> content,
                                                std::size_t chunk_bytes) {
  std::vector<wire::Chunk> chunks;
  transport::chunk_plan plan(0, content.size(), chunk_bytes);
  while (plan.more()) {
    const auto p = plan.next();
    wire::Chunk& c = chunks.emplace_back();
    if (p.offset == 0)
      rpc::to_wire(snapshot_message(from, to, index, term, ""), *c.mutable_header());
    c.set_from(from);
    c.set_snapshot_index(index);
    c.set_snapshot_term(term);
    c.set_offset(p.offset);
    c.set_data(reinterpret_cast<const char*>(content.data() + p.offset), p.length);
    if (p.last) {
      c.set_last(true);
      c.set_total_size(content.size());
      c.set_crc32c(wal::crc32c(content));
    }
  }
  return chunks;
}

/// A bare client of a node's Raft service, for sending it what no keel
/// transport would.
class raw_client {
 public:
  explicit raw_client(const std::string& address,
                      std::shared_ptr<::grpc::ChannelCredentials> credentials =
                          ::grpc::InsecureChannelCredentials(),
                      const ::grpc::ChannelArguments& args = {})
      : channel_(::grpc::CreateCustomChannel(address, std::move(credentials), args)),
        stub_(wire::Raft::NewStub(channel_)) {}

  const std::shared_ptr<::grpc::Channel>& channel() const { return channel_; }

  ::grpc::Status unary(const wire::Message& m) {
    ::grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    wire::Ack ack;
    return stub_->ProcessRaftMessage(&context, m, &ack);
  }

  ::grpc::Status unary(const raft::message& m) {
    wire::Message w;
    rpc::to_wire(m, w);
    return unary(w);
  }

  /// Writes `chunks` on one stream (stopping at the first write that fails:
  /// the receiver refused), half-closes it and returns its status.
  ::grpc::Status stream(const std::vector<wire::Chunk>& chunks) {
    ::grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    wire::Ack ack;
    auto writer = stub_->StreamRaftMessage(&context, &ack);
    for (const wire::Chunk& c : chunks) {
      if (!writer->Write(c)) break;
    }
    (void)writer->WritesDone();
    return writer->Finish();
  }

  /// QuerySnapshot's status, and the bytes held it answered.
  std::pair<::grpc::Status, std::uint64_t> query(raft::node_id from, std::uint64_t index,
                                                 std::uint64_t term) {
    ::grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    wire::SnapshotQuery q;
    q.set_from(from);
    q.set_snapshot_index(index);
    q.set_snapshot_term(term);
    wire::SnapshotHeld held;
    auto s = stub_->QuerySnapshot(&context, q, &held);
    return {s, held.bytes()};
  }

 private:
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<wire::Raft::Stub> stub_;
};

}  // namespace keel::test
