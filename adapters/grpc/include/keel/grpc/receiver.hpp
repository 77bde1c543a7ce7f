// The receiving side of the gRPC transport: the Raft service. Every message
// and every chunk is checked before it reaches the node or its disk: the
// sender must be the node the caller's certificate names and not a removed
// member, the message must convert (wire.hpp validates it), it must be for
// this node, and a stream's chunks must pass the chunk_validator. A snapshot
// streams into the node's snapshot sink and is handed to raft only once its
// size and CRC32C match what the sender announced; a stream that broke
// keeps what it received for a while, so the sender resumes from there
// (QuerySnapshot tells it where).
//
// Errors reach the sender as gRPC statuses: INVALID_ARGUMENT (malformed,
// gaps, mismatched snapshot, a stream that ended before its last chunk),
// RESOURCE_EXHAUSTED (over the size limit), DATA_LOSS (wrong size or
// checksum), PERMISSION_DENIED (identity, removed member), UNAVAILABLE (the
// node has not started, or the same snapshot is already being received).
//
// Thread safety: gRPC calls the service from its threads; one mutex guards
// the handler, the removed members and the partly received snapshots.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "keel/grpc/options.hpp"
#include "keel/grpc/tls.hpp"
#include "keel/grpc/wire.hpp"
#include "keel/raft.grpc.pb.h"
#include "keel/transport/chunker.hpp"
#include "keel/transport/transport.hpp"
#include "keel/wal/crc32c.hpp"

namespace keel::rpc {

/// The gRPC status a refused stream gets for `fault`.
inline ::grpc::Status status_of(transport::stream_fault fault) {
  using transport::stream_fault;
  ::grpc::StatusCode code = ::grpc::StatusCode::INVALID_ARGUMENT;
  if (fault == stream_fault::too_large) code = ::grpc::StatusCode::RESOURCE_EXHAUSTED;
  if (fault == stream_fault::bad_checksum || fault == stream_fault::bad_size) {
    code = ::grpc::StatusCode::DATA_LOSS;
  }
  return {code, to_string(fault)};
}

class raft_service final : public wire::Raft::Service {
 public:
  explicit raft_service(const transport_options& options) : options_(options) {}

  /// From now on, what arrives goes to h.
  void attach(transport::handler h) {
    std::lock_guard lock(mutex_);
    handler_ = std::make_shared<const transport::handler>(std::move(h));
  }

  /// Nothing more reaches the node; partly received snapshots are released
  /// (their files stay, for a resume after a restart).
  void detach() {
    std::lock_guard lock(mutex_);
    handler_.reset();
    partial_.reset();
  }

  /// Messages from id are refused from now on.
  void refuse(raft::node_id id) {
    std::lock_guard lock(mutex_);
    removed_.insert(id);
  }

  /// Streams refused so far (for tests and status).
  std::uint64_t refused() const {
    std::lock_guard lock(mutex_);
    return refused_;
  }

  ::grpc::Status ProcessRaftMessage(::grpc::ServerContext* context, const wire::Message* request,
                                    wire::Ack*) override {
    const auto identities = peer_identities(*context);
    if (auto s = check_sender(identities, request->from()); !s.ok()) return refuse_with(s);
    auto m = from_wire(*request);
    if (!m) return refuse_with({::grpc::StatusCode::INVALID_ARGUMENT, m.error().message()});
    if (m->to != options_.id) return refuse_with(not_for_me(m->to));
    auto h = current_handler();
    if (!h) return not_started();
    if (m->type == raft::message_type::snap && !m->snapshot->data.empty()) {
      // A snapshot small enough for one message: into the store like a streamed one.
      if (auto s = install_inline(*h, *m); !s.ok()) return refuse_with(s);
    }
    h->deliver(std::move(*m));
    return ::grpc::Status::OK;
  }

  ::grpc::Status QuerySnapshot(::grpc::ServerContext* context, const wire::SnapshotQuery* request,
                               wire::SnapshotHeld* reply) override {
    const auto identities = peer_identities(*context);
    if (auto s = check_sender(identities, request->from()); !s.ok()) return refuse_with(s);
    auto h = current_handler();
    if (!h || !h->receive_snapshot) return not_started();
    const key k{request->from(), request->snapshot_index(), request->snapshot_term()};
    if (k.index == 0)
      return refuse_with({::grpc::StatusCode::INVALID_ARGUMENT, "snapshot index 0"});
    std::lock_guard lock(mutex_);
    expire_partial();
    if (partial_) {
      // Another transfer's part is kept here: this one starts from 0.
      if (partial_->k != k) return ::grpc::Status::OK;
      // A stream still writes it (perhaps one its sender already gave up
      // on): any count would be stale, and a resume from it a gap.
      if (!partial_->sink) return already_receiving();
      reply->set_bytes(partial_->held);
      return ::grpc::Status::OK;
    }
    // Perhaps a .part file from before a restart: the sink resumes from its checkpoint.
    auto sink =
        h->receive_snapshot(k.from, raft::snapshot_metadata{.index = k.index, .term = k.term});
    if (!sink) return {::grpc::StatusCode::UNAVAILABLE, sink.error().message()};
    reply->set_bytes((*sink)->held());
    partial_ = partial{k, std::move(*sink), reply->bytes(), now()};
    return ::grpc::Status::OK;
  }

  ::grpc::Status StreamRaftMessage(::grpc::ServerContext* context,
                                   ::grpc::ServerReader<wire::Chunk>* reader, wire::Ack*) override {
    const auto identities = peer_identities(*context);
    stream s(*this, identities);
    wire::Chunk chunk;
    while (reader->Read(&chunk)) {
      if (auto status = s.take(chunk); !status.ok()) return refuse_with(status);
    }
    // A stream cut by its sender is no refusal; one that ended early is.
    const bool cancelled = context->IsCancelled();
    auto status = s.end(cancelled);
    return status.ok() || cancelled ? status : refuse_with(status);
  }

 private:
  struct key {
    raft::node_id from = 0;
    std::uint64_t index = 0;
    std::uint64_t term = 0;
    friend bool operator==(const key&, const key&) = default;
  };

  /// The snapshot partly received; `sink` is null while a stream writes it.
  /// There is at most one (a sink's .part file replaces any other), so a
  /// peer cannot pile them up.
  struct partial {
    key k;
    std::unique_ptr<transport::snapshot_sink> sink;
    std::uint64_t held = 0;
    std::chrono::steady_clock::time_point touched{};
  };

  /// One call's sequence of messages, each a header-only chunk, a
  /// serialized message in chunks, or a snapshot's header and content.
  class stream {
   public:
    stream(raft_service& service, std::vector<std::string> identities)
        : service_(service), identities_(std::move(identities)) {}

    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    /// A stream that broke keeps its snapshot's bytes for a resume.
    ~stream() { park(); }

    ::grpc::Status take(const wire::Chunk& c) {
      if (from_ == raft::no_node) {
        if (auto s = service_.check_sender(identities_, c.from()); !s.ok()) return s;
        from_ = c.from();
      }
      const transport::chunk_view view{
          .from = c.from(),
          .snapshot_index = c.snapshot_index(),
          .snapshot_term = c.snapshot_term(),
          .offset = c.offset(),
          .data = std::as_bytes(std::span(c.data().data(), c.data().size())),
          .last = c.last(),
          .total_size = c.total_size(),
          .crc = c.crc32c()};
      if (view.from != from_) return status_of(transport::stream_fault::wrong_sender);
      if (!snapshot_ && !payload_) {
        if (auto s = begin(c, view); !s.ok()) return s;
        if (!snapshot_ && !payload_) return ::grpc::Status::OK;  // A header-only message.
      }
      return snapshot_ ? snapshot_chunk(view) : payload_chunk(view);
    }

    /// The status of a stream that ended (the sender half-closed, or the
    /// call was cancelled) without a refusal.
    ::grpc::Status end(bool cancelled) {
      if (cancelled) return {::grpc::StatusCode::CANCELLED, "the stream was cancelled"};
      if (snapshot_ || payload_) return status_of(transport::stream_fault::ended_early);
      return ::grpc::Status::OK;
    }

   private:
    /// The first chunk of a message.
    ::grpc::Status begin(const wire::Chunk& c, const transport::chunk_view& view) {
      handler_ = service_.current_handler();
      if (!handler_) return not_started();
      if (!c.has_header()) {
        if (view.snapshot_index != 0 || view.snapshot_term != 0) {
          return {::grpc::StatusCode::INVALID_ARGUMENT, "a snapshot's first chunk has no header"};
        }
        payload_.emplace(service_.options_.max_message_bytes);
        return ::grpc::Status::OK;
      }
      auto m = from_wire(c.header());
      if (!m) return {::grpc::StatusCode::INVALID_ARGUMENT, m.error().message()};
      if (m->from != from_) return status_of(transport::stream_fault::wrong_sender);
      if (m->to != service_.options_.id) return not_for_me(m->to);
      if (m->type != raft::message_type::snap) {
        if (!view.last || !view.data.empty() || view.offset != 0) {
          return {::grpc::StatusCode::INVALID_ARGUMENT,
                  "a message header's chunk must be its only one"};
        }
        handler_->deliver(std::move(*m));
        return ::grpc::Status::OK;
      }
      const auto& meta = m->snapshot->metadata;
      if (meta.index != view.snapshot_index || meta.term != view.snapshot_term) {
        return status_of(transport::stream_fault::mismatched_snapshot);
      }
      if (!handler_->receive_snapshot) return not_started();
      key_ = key{from_, meta.index, meta.term};
      std::unique_ptr<transport::snapshot_sink> sink;
      if (auto s = service_.take_partial(*handler_, key_, meta, sink); !s.ok()) return s;
      snapshot_.emplace(std::move(sink), service_.options_.max_snapshot_bytes, std::move(*m));
      return ::grpc::Status::OK;
    }

    ::grpc::Status snapshot_chunk(const transport::chunk_view& view) {
      receiving& r = *snapshot_;
      if (auto fault = r.validator.check(view); fault != transport::stream_fault::none) {
        drop();
        return status_of(fault);
      }
      if (auto ec = r.sink->write(view.data)) return io_failure(ec);
      r.since_checkpoint += view.data.size();
      if (r.since_checkpoint >= service_.options_.checkpoint_bytes) {
        r.since_checkpoint = 0;
        if (auto ec = r.sink->checkpoint()) return io_failure(ec);
      }
      if (!view.last) return ::grpc::Status::OK;
      auto handle = r.sink->commit(view.total_size, view.crc);
      raft::message m = std::move(r.header);
      snapshot_.reset();
      service_.forget_partial(key_);
      if (!handle) {
        if (handle.error() == errc::corrupt_snapshot) {
          return status_of(transport::stream_fault::bad_checksum);
        }
        return {::grpc::StatusCode::INTERNAL, handle.error().message()};
      }
      m.snapshot->data = std::move(*handle);
      handler_->deliver(std::move(m));
      return ::grpc::Status::OK;
    }

    ::grpc::Status payload_chunk(const transport::chunk_view& view) {
      if (auto fault = payload_->add(view); fault != transport::stream_fault::none) {
        payload_.reset();
        return status_of(fault);
      }
      if (!payload_->finished()) return ::grpc::Status::OK;
      wire::Message w;
      const bool parsed = w.ParseFromString(payload_->payload());
      payload_.reset();
      if (!parsed)
        return {::grpc::StatusCode::INVALID_ARGUMENT, "a chunked message does not parse"};
      if (w.from() != from_) return status_of(transport::stream_fault::wrong_sender);
      auto m = from_wire(w);
      if (!m) return {::grpc::StatusCode::INVALID_ARGUMENT, m.error().message()};
      if (m->to != service_.options_.id) return not_for_me(m->to);
      if (m->type == raft::message_type::snap) {
        return {::grpc::StatusCode::INVALID_ARGUMENT, "a snapshot must stream its content"};
      }
      handler_->deliver(std::move(*m));
      return ::grpc::Status::OK;
    }

    /// A write into the node's storage failed: the transfer cannot go on.
    ::grpc::Status io_failure(std::error_code ec) {
      drop();
      return {::grpc::StatusCode::UNAVAILABLE,
              "the receiver could not store the snapshot: " + ec.message()};
    }

    /// Gives up the snapshot being received, with its bytes.
    void drop() {
      if (!snapshot_) return;
      snapshot_->sink->discard();
      snapshot_.reset();
      service_.forget_partial(key_);
    }

    /// Keeps the snapshot being received for a resume.
    void park() {
      if (!snapshot_) return;
      service_.park_partial(key_, std::move(snapshot_->sink));
      snapshot_.reset();
    }

    struct receiving {
      receiving(std::unique_ptr<transport::snapshot_sink> s, std::uint64_t max, raft::message m)
          : sink(std::move(s)), validator(max, sink->held()), header(std::move(m)) {}
      std::unique_ptr<transport::snapshot_sink> sink;
      transport::chunk_validator validator;
      raft::message header;
      std::uint64_t since_checkpoint = 0;
    };

    raft_service& service_;
    std::vector<std::string> identities_;
    raft::node_id from_ = raft::no_node;
    std::shared_ptr<const transport::handler> handler_{};
    key key_{};
    std::optional<receiving> snapshot_{};
    std::optional<transport::payload_assembler> payload_{};
  };

  static std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }

  static ::grpc::Status not_started() {
    return {::grpc::StatusCode::UNAVAILABLE, "the node has not started"};
  }

  static ::grpc::Status already_receiving() {
    return {::grpc::StatusCode::UNAVAILABLE, "this snapshot is already being received"};
  }

  static ::grpc::Status not_for_me(raft::node_id to) {
    return {::grpc::StatusCode::INVALID_ARGUMENT,
            "the message is for node " + std::to_string(to) + ", not this one"};
  }

  ::grpc::Status refuse_with(::grpc::Status s) {
    std::lock_guard lock(mutex_);
    ++refused_;
    return s;
  }

  std::shared_ptr<const transport::handler> current_handler() const {
    std::lock_guard lock(mutex_);
    return handler_;
  }

  /// The caller's certificate must name `from`, which must still be a member.
  ::grpc::Status check_sender(const std::vector<std::string>& identities, raft::node_id from) {
    if (from == raft::no_node) return {::grpc::StatusCode::INVALID_ARGUMENT, "no sender"};
    if (!options_.tls.plaintext) {
      const std::string expected = options_.identity_of(from);
      if (std::find(identities.begin(), identities.end(), expected) == identities.end()) {
        return {::grpc::StatusCode::PERMISSION_DENIED,
                "the sender claims to be node " + std::to_string(from) +
                    " but its certificate does not name " + expected};
      }
    }
    std::lock_guard lock(mutex_);
    if (removed_.contains(from)) {
      return {::grpc::StatusCode::PERMISSION_DENIED,
              "node " + std::to_string(from) + " was removed from the cluster"};
    }
    return ::grpc::Status::OK;
  }

  /// Writes a snapshot that came whole in one message into a sink and
  /// replaces its content by the sink's handle.
  ::grpc::Status install_inline(const transport::handler& h, raft::message& m) {
    if (!h.receive_snapshot) return not_started();
    const auto& meta = m.snapshot->metadata;
    const key k{m.from, meta.index, meta.term};
    std::unique_ptr<transport::snapshot_sink> sink;
    if (auto s = take_partial(h, k, meta, sink); !s.ok()) return s;
    if (sink->held() != 0) {  // Start afresh: the message carries everything.
      sink->discard();
      forget_partial(k);
      if (auto s = take_partial(h, k, meta, sink); !s.ok()) return s;
    }
    const std::string& content = m.snapshot->data;
    const auto bytes = std::as_bytes(std::span(content.data(), content.size()));
    std::error_code written = sink->write(bytes);
    auto handle =
        written ? result<std::string>(written) : sink->commit(content.size(), wal::crc32c(bytes));
    forget_partial(k);
    if (!handle) return {::grpc::StatusCode::UNAVAILABLE, handle.error().message()};
    m.snapshot->data = std::move(*handle);
    return ::grpc::Status::OK;
  }

  /// The sink of snapshot k into `out`: the parked one, or a new one from
  /// the node. Until it is parked or forgotten, no other stream may take
  /// it, and no other snapshot is received (a new sink's .part file would
  /// replace the one being written).
  ::grpc::Status take_partial(const transport::handler& h, const key& k,
                              const raft::snapshot_metadata& meta,
                              std::unique_ptr<transport::snapshot_sink>& out) {
    std::lock_guard lock(mutex_);
    expire_partial();
    if (partial_) {
      if (!partial_->sink) return already_receiving();
      if (partial_->k == k) {
        out = std::move(partial_->sink);
        partial_->touched = now();
        return ::grpc::Status::OK;
      }
      partial_->sink->discard();  // Another snapshot (or sender) supersedes it.
      partial_.reset();
    }
    auto sink = h.receive_snapshot(k.from, meta);
    if (!sink) {
      return {::grpc::StatusCode::UNAVAILABLE,
              "the receiver cannot store the snapshot: " + sink.error().message()};
    }
    out = std::move(*sink);
    partial_ = partial{k, nullptr, out->held(), now()};
    return ::grpc::Status::OK;
  }

  /// Drops the partial snapshot if its stream broke too long ago.
  void expire_partial() {
    if (partial_ && partial_->sink && partial_->touched < now() - options_.partial_expiry) {
      partial_->sink->discard();
      partial_.reset();
    }
  }

  void park_partial(const key& k, std::unique_ptr<transport::snapshot_sink> sink) {
    std::lock_guard lock(mutex_);
    // Detached, or superseded: the file stays for a restart.
    if (!handler_ || !partial_ || partial_->k != k) return;
    partial_->held = sink->held();
    partial_->sink = std::move(sink);
    partial_->touched = now();
  }

  void forget_partial(const key& k) {
    std::lock_guard lock(mutex_);
    if (partial_ && partial_->k == k) partial_.reset();
  }

  const transport_options& options_;
  mutable std::mutex mutex_;
  std::shared_ptr<const transport::handler> handler_{};
  std::set<raft::node_id> removed_{};
  std::optional<partial> partial_{};
  std::uint64_t refused_ = 0;
};

}  // namespace keel::rpc
