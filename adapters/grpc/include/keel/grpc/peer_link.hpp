// The sending side of the gRPC transport, for one peer. Two lanes, each a
// thread, so a long snapshot never holds up heartbeats and appends:
//  - the message lane drains a bounded queue into one long-lived
//    client stream (a message per header-only chunk; a message larger than
//    a chunk as its serialized bytes in chunks); a peer that answers
//    UNIMPLEMENTED to the stream gets unary calls instead;
//  - the snapshot lane streams one snapshot's content from the node's file,
//    a chunk at a time, resuming after a broken stream from what the
//    receiver says it holds (QuerySnapshot), and reports the outcome to the
//    node (handler::snapshot_sent).
// A write that makes no progress for chunk_timeout is cancelled (watchdog).
// A failed send drops the message, counts it, reports the peer unreachable
// and backs off before reconnecting, as etcd's rafthttp does.
//
// Thread safety: enqueue, set_address and status from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "keel/grpc/options.hpp"
#include "keel/grpc/watchdog.hpp"
#include "keel/grpc/wire.hpp"
#include "keel/raft.grpc.pb.h"
#include "keel/transport/chunker.hpp"
#include "keel/transport/transport.hpp"

namespace keel::rpc {

/// The sentence a peer's status carries when it cannot take a snapshot.
inline std::string too_large_without_streaming(std::uint64_t bytes) {
  return "peer does not support streaming; snapshot of " + std::to_string(bytes) +
         " bytes exceeds the 4 MiB message limit";
}

class peer_link {
 public:
  peer_link(const transport_options& options, const transport::handler& handler,
            std::shared_ptr<::grpc::ChannelCredentials> credentials, watchdog& dog,
            raft::node_id peer, std::string address)
      : options_(options),
        handler_(handler),
        credentials_(std::move(credentials)),
        dog_(dog),
        peer_(peer),
        address_(std::move(address)) {
    messages_ = std::thread([this] { run_messages(); });
  }

  peer_link(const peer_link&) = delete;
  peer_link& operator=(const peer_link&) = delete;

  ~peer_link() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      for (::grpc::ClientContext* c : live_calls_) c->TryCancel();
    }
    wake_.notify_all();
    messages_.join();
    if (snapshots_.joinable()) snapshots_.join();
  }

  /// Queues m; false (and a later unreachable report) when the queue is full.
  bool enqueue(raft::message m) {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.queue_capacity) {
      ++status_.dropped;
      note_failure("the send queue is full");
      report_unreachable_ = true;
      // Raft waits for a snapshot's outcome: tell it this one failed.
      if (m.type == raft::message_type::snap) ++snapshots_failed_;
      wake_.notify_all();
      return false;
    }
    queue_.push_back(std::move(m));
    wake_.notify_all();
    return true;
  }

  /// The peer moved: the next connection goes to `address`.
  void set_address(std::string address) {
    std::lock_guard lock(mutex_);
    if (address.empty() || address == address_) return;
    address_ = std::move(address);
    ++address_generation_;
    streaming_ = true;  // A new process may support what the old did not.
    for (::grpc::ClientContext* c : live_calls_) c->TryCancel();
    wake_.notify_all();
  }

  transport::peer_status status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  // --- connection ------------------------------------------------------------

  /// The stub of the current address, made anew after an address change.
  std::shared_ptr<wire::Raft::Stub> stub() {
    std::lock_guard lock(mutex_);
    if (!stub_ || stub_generation_ != address_generation_) {
      ::grpc::ChannelArguments args;
      if (!options_.tls.plaintext) args.SetSslTargetNameOverride(options_.identity_of(peer_));
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                  static_cast<int>(options_.backoff_min.count()));
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                  static_cast<int>(options_.backoff_max.count()));
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_time_ms);
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_timeout_ms);
      args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
      args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
      stub_ = wire::Raft::NewStub(::grpc::CreateCustomChannel(address_, credentials_, args));
      stub_generation_ = address_generation_;
    }
    return stub_;
  }

  /// Registers a call so that stopping (or an address change) cancels it.
  class live_call {
   public:
    live_call(peer_link& link, ::grpc::ClientContext& context) : link_(link), context_(context) {
      std::lock_guard lock(link_.mutex_);
      if (link_.stopping_) context_.TryCancel();
      link_.live_calls_.push_back(&context_);
    }
    live_call(const live_call&) = delete;
    live_call& operator=(const live_call&) = delete;
    ~live_call() {
      std::lock_guard lock(link_.mutex_);
      std::erase(link_.live_calls_, &context_);
    }

   private:
    peer_link& link_;
    ::grpc::ClientContext& context_;
  };

  bool stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  /// Waits `pause` unless stopping; returns whether still running.
  bool pause_for(std::chrono::milliseconds pause) {
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, pause, [this] { return stopping_; });
    return !stopping_;
  }

  void note_failure(std::string why) {  // Requires mutex_.
    if (status_.reachable || status_.last_error != why)
      log("peer " + std::to_string(peer_) + ": " + why);
    status_.reachable = false;
    status_.last_error = std::move(why);
  }

  void log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  static std::string describe(const ::grpc::Status& s) {
    return "gRPC status " + std::to_string(static_cast<int>(s.error_code())) + ": " +
           s.error_message();
  }

  // --- the message lane ---------------------------------------------------

  /// The long-lived stream of ordinary messages.
  struct message_stream {
    ::grpc::ClientContext context;
    wire::Ack ack;
    std::unique_ptr<::grpc::ClientWriter<wire::Chunk>> writer;
    std::optional<live_call> registration;
  };

  void run_messages() {
    std::chrono::milliseconds backoff = options_.backoff_min;
    std::unique_ptr<message_stream> stream;
    for (;;) {
      std::deque<raft::message> batch;
      bool report = false;
      int failed_snapshots = 0;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] {
          return stopping_ || !queue_.empty() || report_unreachable_ || snapshots_failed_ != 0;
        });
        if (stopping_) break;
        batch.swap(queue_);
        report = std::exchange(report_unreachable_, false);
        failed_snapshots = std::exchange(snapshots_failed_, 0);
      }
      if (report && handler_.unreachable) handler_.unreachable(peer_);
      for (; failed_snapshots > 0; --failed_snapshots) report_snapshot(false);
      bool failed = false;
      for (raft::message& m : batch) {
        // Every snapshot, the empty one of a new cluster included, goes
        // through the snapshot lane, which always reports its outcome.
        if (m.type == raft::message_type::snap && m.snapshot) {
          start_snapshot(std::move(m));
          continue;
        }
        if (failed) {
          count_dropped();
          continue;
        }
        failed = !send_message(m, stream);
      }
      if (!failed) {
        backoff = options_.backoff_min;
        continue;
      }
      stream.reset();
      if (handler_.unreachable) handler_.unreachable(peer_);
      if (!pause_for(backoff)) break;
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
    if (stream) {
      stream->context.TryCancel();
      (void)stream->writer->Finish();
    }
  }

  void count_dropped() {
    std::lock_guard lock(mutex_);
    ++status_.dropped;
  }

  void count_sent() {
    std::lock_guard lock(mutex_);
    ++status_.sent;
    status_.reachable = true;
  }

  bool streaming() const {
    std::lock_guard lock(mutex_);
    return streaming_;
  }

  /// Sends one ordinary message; false (message dropped, failure noted) if
  /// the peer could not take it.
  bool send_message(const raft::message& m, std::unique_ptr<message_stream>& stream) {
    wire::Message w;
    to_wire(m, w);
    if (!streaming()) return send_unary(w);
    if (!stream) stream = open_stream();
    if (write_message(w, *stream)) {
      count_sent();
      return true;
    }
    const ::grpc::Status s = stream->writer->Finish();
    stream.reset();
    if (s.error_code() == ::grpc::StatusCode::UNIMPLEMENTED) {
      {
        std::lock_guard lock(mutex_);
        streaming_ = false;
      }
      log("peer " + std::to_string(peer_) + " does not support streaming; using unary calls");
      return send_unary(w);
    }
    count_dropped();
    std::lock_guard lock(mutex_);
    note_failure("stream to " + address_ + " failed: " + describe(s));
    return false;
  }

  std::unique_ptr<message_stream> open_stream() {
    auto stream = std::make_unique<message_stream>();
    stream->registration.emplace(*this, stream->context);
    stream->writer = stub()->StreamRaftMessage(&stream->context, &stream->ack);
    return stream;
  }

  /// One message on the stream: a header-only chunk, or its serialized
  /// bytes in chunks when it is larger than a chunk.
  bool write_message(const wire::Message& w, message_stream& stream) {
    const std::size_t chunk_bytes = chunk_size();
    if (w.ByteSizeLong() <= chunk_bytes) {
      wire::Chunk c;
      *c.mutable_header() = w;
      c.set_from(options_.id);
      c.set_last(true);
      return write_chunk(stream.writer.get(), stream.context, c);
    }
    const std::string payload = w.SerializeAsString();
    const auto bytes = std::as_bytes(std::span(payload.data(), payload.size()));
    transport::chunk_plan plan(0, payload.size(), chunk_bytes);
    while (plan.more()) {
      const auto p = plan.next();
      wire::Chunk c;
      c.set_from(options_.id);
      c.set_offset(p.offset);
      c.set_data(payload.data() + p.offset, p.length);
      if (p.last) {
        c.set_last(true);
        c.set_total_size(payload.size());
        c.set_crc32c(wal::crc32c(bytes));
      }
      if (!write_chunk(stream.writer.get(), stream.context, c)) return false;
    }
    return true;
  }

  bool write_chunk(::grpc::ClientWriter<wire::Chunk>* writer, ::grpc::ClientContext& context,
                   const wire::Chunk& c) {
    armed_write guard(dog_, context, options_.chunk_timeout);
    return writer->Write(c);
  }

  bool send_unary(const wire::Message& w) {
    if (w.ByteSizeLong() > grpc_message_limit) {
      count_dropped();
      std::lock_guard lock(mutex_);
      note_failure("peer does not support streaming; a message of " +
                   std::to_string(w.ByteSizeLong()) + " bytes exceeds the 4 MiB message limit");
      return true;  // The connection is fine; this message cannot go.
    }
    ::grpc::ClientContext context;
    live_call registration(*this, context);
    context.set_deadline(std::chrono::system_clock::now() + options_.chunk_timeout);
    wire::Ack ack;
    const ::grpc::Status s = stub()->ProcessRaftMessage(&context, w, &ack);
    if (s.ok()) {
      count_sent();
      return true;
    }
    count_dropped();
    std::lock_guard lock(mutex_);
    note_failure("unary call to " + address_ + " failed: " + describe(s));
    return false;
  }

  std::size_t chunk_size() const {
    return std::clamp(options_.chunk_bytes, transport::min_chunk_bytes, transport::max_chunk_bytes);
  }

  // --- the snapshot lane -----------------------------------------------------

  void start_snapshot(raft::message m) {
    {
      std::unique_lock lock(mutex_);
      if (snapshot_busy_) {
        // Raft sends one snapshot at a time; a second one is refused.
        lock.unlock();
        report_snapshot(false);
        return;
      }
      snapshot_busy_ = true;
    }
    if (snapshots_.joinable()) snapshots_.join();
    snapshots_ = std::thread([this, m = std::move(m)]() mutable {
      const bool delivered = transfer(std::move(m));
      {
        std::lock_guard lock(mutex_);
        snapshot_busy_ = false;
        if (status_.snapshot) {
          status_.snapshot->active = false;
          status_.snapshot->succeeded = delivered;
        }
      }
      report_snapshot(delivered);
    });
  }

  void report_snapshot(bool delivered) {
    if (handler_.snapshot_sent) handler_.snapshot_sent(peer_, delivered);
  }

  /// Streams one snapshot; whether the peer installed it.
  bool transfer(raft::message m) {
    const raft::snapshot_metadata meta = m.snapshot->metadata;
    if (m.snapshot->data.empty()) {
      // The empty snapshot a new cluster starts from: no content to stream.
      wire::Message w;
      to_wire(m, w);
      return send_unary(w);
    }
    auto opened = handler_.open_snapshot
                      ? handler_.open_snapshot(*m.snapshot)
                      : result<std::unique_ptr<transport::snapshot_source>>(errc::invalid_argument);
    if (!opened)
      return give_up("cannot open snapshot " + std::to_string(meta.index) + ": " +
                     opened.error().message());
    transport::snapshot_source& source = **opened;
    const auto started = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      status_.snapshot = transport::snapshot_progress{
          .index = meta.index, .term = meta.term, .total_bytes = source.size(), .active = true};
    }
    log("snapshot " + std::to_string(meta.index) + " to peer " + std::to_string(peer_) + ": " +
        std::to_string(source.size()) + " bytes");
    m.snapshot->data.clear();
    wire::Message header;
    to_wire(m, header);
    int idle_attempts = 0;
    std::uint64_t best = 0;
    std::chrono::milliseconds backoff = options_.backoff_min;
    while (!stopping()) {
      if (!streaming()) return send_snapshot_unary(header, source);
      const auto offset = resume_offset(meta, source.size());
      std::uint64_t reached = offset.value_or(0);
      ::grpc::Status s{::grpc::StatusCode::UNAVAILABLE, "the receiver did not answer"};
      if (offset) s = stream_snapshot(header, source, *offset, started, reached);
      if (s.ok()) {
        log("snapshot " + std::to_string(meta.index) + " to peer " + std::to_string(peer_) +
            " delivered");
        return true;
      }
      if (s.error_code() == ::grpc::StatusCode::UNIMPLEMENTED) {
        std::lock_guard lock(mutex_);
        streaming_ = false;
        continue;
      }
      if (!retryable(s)) return give_up("snapshot refused: " + describe(s));
      if (reached > best) {
        best = reached;
        idle_attempts = 0;
        backoff = options_.backoff_min;
      } else if (++idle_attempts >= options_.snapshot_attempts) {
        return give_up("snapshot stream failed: " + describe(s));
      }
      {
        std::lock_guard lock(mutex_);
        note_failure("snapshot stream broke at byte " + std::to_string(reached) + ": " +
                     describe(s) + "; resuming");
      }
      if (!pause_for(backoff)) break;
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
    return false;
  }

  bool give_up(std::string why) {
    std::lock_guard lock(mutex_);
    note_failure(std::move(why));
    return false;
  }

  static bool retryable(const ::grpc::Status& s) {
    switch (s.error_code()) {
      case ::grpc::StatusCode::UNAVAILABLE:
      case ::grpc::StatusCode::CANCELLED:
      case ::grpc::StatusCode::DEADLINE_EXCEEDED:
      case ::grpc::StatusCode::ABORTED:
      case ::grpc::StatusCode::UNKNOWN:
      case ::grpc::StatusCode::INTERNAL:
        return true;
      default:
        return false;
    }
  }

  /// Where the receiver wants the content to continue: what it holds of
  /// this snapshot (0 from a peer that cannot tell); nothing if it did not
  /// answer.
  std::optional<std::uint64_t> resume_offset(const raft::snapshot_metadata& meta,
                                             std::uint64_t total) {
    ::grpc::ClientContext context;
    live_call registration(*this, context);
    context.set_deadline(std::chrono::system_clock::now() + options_.chunk_timeout);
    wire::SnapshotQuery query;
    query.set_from(options_.id);
    query.set_snapshot_index(meta.index);
    query.set_snapshot_term(meta.term);
    wire::SnapshotHeld held;
    const ::grpc::Status s = stub()->QuerySnapshot(&context, query, &held);
    if (s.error_code() == ::grpc::StatusCode::UNIMPLEMENTED) return 0;
    if (!s.ok()) {
      std::lock_guard lock(mutex_);
      note_failure("snapshot query to " + address_ + " failed: " + describe(s));
      return std::nullopt;
    }
    // More than the whole is nonsense: start over (the receiver then
    // refuses the stream's size and drops what it held).
    return held.bytes() <= total ? held.bytes() : 0;
  }

  ::grpc::Status stream_snapshot(const wire::Message& header, transport::snapshot_source& source,
                                 std::uint64_t offset,
                                 std::chrono::steady_clock::time_point started,
                                 std::uint64_t& reached) {
    ::grpc::ClientContext context;
    live_call registration(*this, context);
    wire::Ack ack;
    auto writer = stub()->StreamRaftMessage(&context, &ack);
    const auto& meta = header.snapshot().metadata();
    // One chunk, reused: the file is read straight into its data, whose
    // buffer keeps its capacity from chunk to chunk (no allocation, no copy).
    wire::Chunk c;
    c.set_from(options_.id);
    c.set_snapshot_index(meta.index());
    c.set_snapshot_term(meta.term());
    *c.mutable_header() = header;
    std::string& data = *c.mutable_data();
    transport::chunk_plan plan(offset, source.size(), chunk_size());
    bool broke = false;
    std::uint64_t next_log = offset + source.size() / 10;
    while (plan.more() && !broke) {
      const auto p = plan.next();
      data.resize(p.length);
      auto n = source.read_at(p.offset, std::as_writable_bytes(std::span(data.data(), p.length)));
      if (!n || *n != p.length) {
        context.TryCancel();
        (void)writer->Finish();
        return {::grpc::StatusCode::FAILED_PRECONDITION, "cannot read the snapshot file"};
      }
      c.set_offset(p.offset);
      if (p.last) {
        c.set_last(true);
        c.set_total_size(source.size());
        c.set_crc32c(source.crc());
      }
      if (!write_chunk(writer.get(), context, c)) {
        broke = true;
        break;
      }
      c.clear_header();  // The first chunk only.
      reached = p.offset + p.length;
      record_progress(reached, offset, started);
      if (reached >= next_log && !p.last) {
        next_log = reached + source.size() / 10;
        log("snapshot " + std::to_string(meta.index()) + " to peer " + std::to_string(peer_) +
            ": " + std::to_string(reached) + " of " + std::to_string(source.size()) + " bytes");
      }
    }
    if (!broke) {
      armed_write guard(dog_, context, options_.chunk_timeout);
      writer->WritesDone();
    }
    // No watchdog here: after a resume the receiver re-reads the whole
    // snapshot to check it before it answers. Keepalive finds a dead peer.
    return writer->Finish();
  }

  void record_progress(std::uint64_t reached, std::uint64_t resumed_from,
                       std::chrono::steady_clock::time_point started) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::lock_guard lock(mutex_);
    if (!status_.snapshot) return;
    transport::snapshot_progress& p = *status_.snapshot;
    p.bytes_sent = reached;
    const double moved = static_cast<double>(reached - std::min(reached, resumed_from));
    p.bytes_per_second = seconds > 0 ? moved / seconds : 0;
    p.eta_seconds = p.bytes_per_second > 0
                        ? static_cast<double>(p.total_bytes - reached) / p.bytes_per_second
                        : 0;
    status_.reachable = true;
  }

  /// A peer without streaming: the snapshot goes whole in one unary call if
  /// it fits, else not at all, and the status says why.
  bool send_snapshot_unary(wire::Message header, transport::snapshot_source& source) {
    const std::uint64_t total = source.size();
    if (header.ByteSizeLong() + total + 64 > grpc_message_limit) {
      return give_up(too_large_without_streaming(total));
    }
    std::string content(total, '\0');
    auto n = source.read_at(0, std::as_writable_bytes(std::span(content.data(), content.size())));
    if (!n || *n != total) return give_up("cannot read the snapshot file");
    header.mutable_snapshot()->set_data(std::move(content));
    ::grpc::ClientContext context;
    live_call registration(*this, context);
    context.set_deadline(std::chrono::system_clock::now() + options_.chunk_timeout);
    wire::Ack ack;
    const ::grpc::Status s = stub()->ProcessRaftMessage(&context, header, &ack);
    if (!s.ok()) return give_up("snapshot refused: " + describe(s));
    record_progress(total, 0, std::chrono::steady_clock::now());
    return true;
  }

  const transport_options& options_;
  const transport::handler& handler_;
  std::shared_ptr<::grpc::ChannelCredentials> credentials_;
  watchdog& dog_;
  const raft::node_id peer_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::string address_;
  std::uint64_t address_generation_ = 0;
  std::shared_ptr<wire::Raft::Stub> stub_{};
  std::uint64_t stub_generation_ = 0;
  std::deque<raft::message> queue_{};
  bool report_unreachable_ = false;
  bool streaming_ = true;
  bool snapshot_busy_ = false;
  int snapshots_failed_ = 0;  ///< Snapshots dropped from a full queue, to report.
  bool stopping_ = false;
  std::vector<::grpc::ClientContext*> live_calls_{};
  transport::peer_status status_{};
  std::thread messages_{};
  std::thread snapshots_{};
};

}  // namespace keel::rpc
