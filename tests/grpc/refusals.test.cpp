// What a node's Raft service answers to input no keel sender produces, sent
// with a bare gRPC client: each gets its gRPC status, and none delivers a
// message, installs a snapshot or leaves a file behind, except the .part
// file of a stream that broke, which a resume continues.
#include <grpcpp/generic/generic_stub.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "grpc_test_support.hpp"
#include "keel/grpc/transport.hpp"

using namespace std::chrono_literals;
using ::grpc::StatusCode;
using keel::raft::message;
using keel::raft::message_type;
using keel::test::raw_client;
using keel::test::test_peer;

namespace {

constexpr std::size_t kib = 1024;

message heartbeat(keel::raft::node_id from, keel::raft::node_id to) {
  return {.type = message_type::heartbeat, .to = to, .from = from, .term = 3};
}

keel::wire::Message wire_heartbeat(keel::raft::node_id from, keel::raft::node_id to) {
  keel::wire::Message w;
  keel::rpc::to_wire(heartbeat(from, to), w);
  return w;
}

/// A stream that carries one message as its only, header-only chunk.
std::vector<keel::wire::Chunk> header_only(const keel::wire::Message& w) {
  keel::wire::Chunk c;
  *c.mutable_header() = w;
  c.set_from(w.from());
  c.set_last(true);
  return {c};
}

/// A stream that carries message w as its serialized bytes in two chunks.
std::vector<keel::wire::Chunk> chunked(const keel::wire::Message& w) {
  const std::string payload = w.SerializeAsString();
  const std::size_t half = payload.size() / 2;
  std::vector<keel::wire::Chunk> chunks(2);
  for (keel::wire::Chunk& c : chunks) c.set_from(w.from());
  chunks[0].set_data(payload.substr(0, half));
  chunks[1].set_offset(half);
  chunks[1].set_data(payload.substr(half));
  chunks[1].set_last(true);
  chunks[1].set_total_size(payload.size());
  chunks[1].set_crc32c(keel::wal::crc32c(std::as_bytes(std::span(payload.data(), payload.size()))));
  return chunks;
}

/// The name of the .part file of snapshot (index, term).
std::string part_file(std::uint64_t index, std::uint64_t term) {
  return keel::wal::snapshot_name{index, term, keel::wal::snapshot_file_kind::partial}.str();
}

/// Calls `method` of the Raft service with `messages` as raw bytes, as a
/// stream (one message for a unary method); the call's status.
::grpc::Status raw_call(const std::shared_ptr<::grpc::Channel>& channel, const std::string& method,
                        const std::vector<std::string>& messages) {
  ::grpc::GenericStub stub(channel);
  ::grpc::CompletionQueue queue;
  ::grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  // One operation at a time, each waited for; a failed one ends the writes.
  const auto wait = [&queue] {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(queue.Next(&tag, &ok));
    return ok;
  };
  auto call = stub.PrepareCall(&context, "/keel.wire.Raft/" + method, &queue);
  call->StartCall(nullptr);
  bool open = wait();
  for (const std::string& m : messages) {
    if (!open) break;
    ::grpc::Slice slice(m);
    ::grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, nullptr);
    open = wait();
  }
  if (open) {
    call->WritesDone(nullptr);
    (void)wait();
  }
  ::grpc::ByteBuffer reply;
  call->Read(&reply, nullptr);
  (void)wait();
  ::grpc::Status status;
  call->Finish(&status, nullptr);
  (void)wait();
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
  return status;
}

/// Node 2, refusing snapshots over 1 MiB, and a bare client of it.
struct receiver {
  receiver() : node(options()), client(node.transport().address()) {}

  static keel::rpc::transport_options options() {
    auto o = keel::test::plaintext_options(2);
    o.max_snapshot_bytes = 1024 * kib;
    return o;
  }

  /// Nothing reached the node and its snapshot directory is empty.
  void check_untouched() {
    CHECK(node.message_count() == 0);
    CHECK(node.snapshot_files().empty());
  }

  test_peer node;
  raw_client client;
};

/// A well-formed stream of snapshot (40, 2) from node 1 with `bytes` of
/// content in 64 KiB chunks, for the tests to spoil.
std::vector<keel::wire::Chunk> snapshot_stream(std::size_t bytes) {
  const auto content = keel::test::content_of(bytes, 11);
  return keel::test::snapshot_chunks(1, 2, 40, 2, content, 64 * kib);
}

}  // namespace

TEST_CASE("grpc: bytes that are not a protobuf message are refused before the node sees them",
          "[grpc][refusal]") {
  receiver r;
  // Field 7 (entries) announces 127 bytes and has 2: no parser accepts it.
  const std::string garbage = "\x3a\x7f\x01\x02";
  // gRPC itself answers a request that does not parse.
  CHECK(raw_call(r.client.channel(), "ProcessRaftMessage", {garbage}).error_code() ==
        StatusCode::INTERNAL);
  CHECK(raw_call(r.client.channel(), "QuerySnapshot", {garbage}).error_code() ==
        StatusCode::INTERNAL);
  // In a stream, a chunk that does not parse ends the snapshot it was part of.
  auto chunks = snapshot_stream(256 * kib);
  std::vector<std::string> raw;
  for (const auto& c : chunks) raw.push_back(c.SerializeAsString());
  raw[2] = garbage;
  CHECK(raw_call(r.client.channel(), "StreamRaftMessage", raw).error_code() ==
        StatusCode::INVALID_ARGUMENT);
  // Alone, it reaches nothing either. (gRPC's synchronous API shows the
  // service such a chunk as the end of the stream, so the call's status
  // cannot tell it from a sender that half-closed.)
  (void)raw_call(r.client.channel(), "StreamRaftMessage", {garbage});
  CHECK(r.node.message_count() == 0);
  // What arrived before the garbage is kept for a resume, and nothing else.
  CHECK(r.node.snapshot_files() == std::vector<std::string>{part_file(40, 2)});
  CHECK(r.client.query(1, 40, 2).second == 2 * 64 * kib);
}

TEST_CASE("grpc: a message of an unknown or local type is refused", "[grpc][refusal]") {
  receiver r;
  auto unknown = wire_heartbeat(1, 2);
  unknown.set_type(static_cast<keel::wire::MessageType>(99));
  CHECK(r.client.unary(unknown).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.client.stream(header_only(unknown)).error_code() == StatusCode::INVALID_ARGUMENT);
  auto local = wire_heartbeat(1, 2);
  local.set_type(keel::wire::MSG_HUP);
  CHECK(r.client.unary(local).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.client.stream(chunked(local)).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.node.transport().refused() == 4);
  r.check_untouched();
}

TEST_CASE("grpc: a message for another node is refused", "[grpc][refusal]") {
  receiver r;
  const auto other = wire_heartbeat(1, 3);
  CHECK(r.client.unary(other).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.client.stream(header_only(other)).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.client.stream(chunked(other)).error_code() == StatusCode::INVALID_ARGUMENT);
  auto snapshot = snapshot_stream(128 * kib);
  snapshot[0].mutable_header()->set_to(3);
  CHECK(r.client.stream(snapshot).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.node.transport().refused() == 4);
  r.check_untouched();
}

TEST_CASE("grpc: a message or a query without a sender is refused", "[grpc][refusal]") {
  receiver r;
  const auto anonymous = wire_heartbeat(0, 2);
  CHECK(r.client.unary(anonymous).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.client.stream(header_only(anonymous)).error_code() == StatusCode::INVALID_ARGUMENT);
  auto snapshot = snapshot_stream(128 * kib);
  for (auto& c : snapshot) c.set_from(0);
  CHECK(r.client.stream(snapshot).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.client.query(0, 40, 2).first.error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.node.transport().refused() == 4);
  r.check_untouched();
}

TEST_CASE("grpc: a snapshot stream with a gap is refused and its bytes dropped",
          "[grpc][refusal][snapshot]") {
  receiver r;
  auto chunks = snapshot_stream(512 * kib);
  chunks.erase(chunks.begin() + 2);
  CHECK(r.client.stream(chunks).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.node.transport().refused() == 1);
  r.check_untouched();
}

TEST_CASE("grpc: a snapshot stream whose chunks change snapshot is refused",
          "[grpc][refusal][snapshot]") {
  receiver r;
  auto chunks = snapshot_stream(512 * kib);
  chunks[3].set_snapshot_index(41);
  CHECK(r.client.stream(chunks).error_code() == StatusCode::INVALID_ARGUMENT);
  // A header that names another snapshot than its chunk is refused alike.
  auto header = snapshot_stream(512 * kib);
  header[0].set_snapshot_term(3);
  CHECK(r.client.stream(header).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.node.transport().refused() == 2);
  r.check_untouched();
}

TEST_CASE("grpc: a snapshot whose checksum is wrong is not installed",
          "[grpc][refusal][snapshot]") {
  receiver r;
  auto chunks = snapshot_stream(512 * kib);
  chunks.back().set_crc32c(chunks.back().crc32c() ^ 1);
  CHECK(r.client.stream(chunks).error_code() == StatusCode::DATA_LOSS);
  auto short_size = snapshot_stream(512 * kib);
  short_size.back().set_total_size(511 * kib);
  CHECK(r.client.stream(short_size).error_code() == StatusCode::DATA_LOSS);
  CHECK(r.node.transport().refused() == 2);
  r.check_untouched();
  CHECK(r.node.store().list()->empty());
}

TEST_CASE("grpc: a snapshot over the receiver's maximum is refused", "[grpc][refusal][snapshot]") {
  receiver r;
  CHECK(r.client.stream(snapshot_stream(1024 * kib + 1)).error_code() ==
        StatusCode::RESOURCE_EXHAUSTED);
  // A last chunk that announces more than the maximum is refused alike.
  auto announced = snapshot_stream(128 * kib);
  announced.back().set_total_size(std::uint64_t{1} << 40);
  CHECK(r.client.stream(announced).error_code() == StatusCode::RESOURCE_EXHAUSTED);
  CHECK(r.node.transport().refused() == 2);
  r.check_untouched();
}

TEST_CASE("grpc: a snapshot stream that ends before its last chunk keeps its .part for a resume",
          "[grpc][refusal][snapshot][resume]") {
  receiver r;
  auto chunks = snapshot_stream(512 * kib);
  chunks.resize(3);
  CHECK(r.client.stream(chunks).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.node.transport().refused() == 1);
  CHECK(r.node.message_count() == 0);
  CHECK(r.node.snapshot_files() == std::vector<std::string>{part_file(40, 2)});
  CHECK(r.node.store().list()->empty());
  const auto [status, held] = r.client.query(1, 40, 2);
  CHECK(status.ok());
  CHECK(held == 3 * 64 * kib);
}

TEST_CASE("grpc: a removed member's messages, streams and queries are refused", "[grpc][refusal]") {
  receiver r;
  REQUIRE(r.client.unary(heartbeat(1, 2)).ok());
  REQUIRE(r.node.message_count() == 1);
  r.node.transport().remove_peer(1);
  CHECK(r.client.unary(heartbeat(1, 2)).error_code() == StatusCode::PERMISSION_DENIED);
  CHECK(r.client.stream(header_only(wire_heartbeat(1, 2))).error_code() ==
        StatusCode::PERMISSION_DENIED);
  CHECK(r.client.stream(snapshot_stream(128 * kib)).error_code() == StatusCode::PERMISSION_DENIED);
  CHECK(r.client.query(1, 40, 2).first.error_code() == StatusCode::PERMISSION_DENIED);
  CHECK(r.node.transport().refused() == 4);
  CHECK(r.node.message_count() == 1);
  CHECK(r.node.snapshot_files().empty());
  // Other members are still heard.
  CHECK(r.client.unary(heartbeat(3, 2)).ok());
  CHECK(r.node.message_count() == 2);
}

TEST_CASE("grpc: a chunked message whose checksum is wrong is not delivered", "[grpc][refusal]") {
  receiver r;
  auto chunks = chunked(wire_heartbeat(1, 2));
  chunks.back().set_crc32c(chunks.back().crc32c() ^ 0x80);
  CHECK(r.client.stream(chunks).error_code() == StatusCode::DATA_LOSS);
  // Chunks that do not make a message are refused too.
  auto garbage = chunked(wire_heartbeat(1, 2));
  garbage[0].set_data(std::string(garbage[0].data().size(), '\xff'));
  const std::string all = garbage[0].data() + garbage[1].data();
  garbage[1].set_crc32c(keel::wal::crc32c(std::as_bytes(std::span(all.data(), all.size()))));
  CHECK(r.client.stream(garbage).error_code() == StatusCode::INVALID_ARGUMENT);
  CHECK(r.node.transport().refused() == 2);
  r.check_untouched();
  // The same message with its checksum intact arrives.
  CHECK(r.client.stream(chunked(wire_heartbeat(1, 2))).ok());
  CHECK(r.node.message_count() == 1);
}
