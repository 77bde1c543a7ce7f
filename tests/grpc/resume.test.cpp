// Snapshot transfers that break and resume: a stream the sender's watchdog
// cancels because the receiver stalled, and a stream that ended early. In
// both, the receiver's sinks see every content byte exactly once: the
// transfer resumed from what the receiver held rather than starting over.
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
using keel::raft::message_type;
using keel::test::test_peer;

namespace {

constexpr std::uint64_t mib = 1024 * 1024;

/// Checks that b installed snapshot (index, term) with `content`, and that
/// a saw it delivered.
void check_installed(test_peer& a, test_peer& b, std::uint64_t index, std::uint64_t term,
                     const std::vector<std::byte>& content) {
  const auto got = b.wait_messages(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].type == message_type::snap);
  CHECK(got[0].snapshot->metadata.index == index);
  auto reader = b.store().open(index, term);
  REQUIRE(reader);
  CHECK(reader->size() == content.size());
  CHECK(reader->crc() == keel::wal::crc32c(content));
  CHECK_FALSE(reader->verify());
  const auto st = a.transport().status(2);
  REQUIRE(st.snapshot);
  CHECK(st.snapshot->succeeded);
  CHECK_FALSE(st.snapshot->active);
  CHECK(st.snapshot->bytes_sent == content.size());
}

}  // namespace

TEST_CASE("grpc: a snapshot stream the watchdog cut resumes where the receiver stopped",
          "[grpc][snapshot][resume]") {
  auto a_options = keel::test::plaintext_options(1);
  a_options.chunk_timeout = 300ms;
  test_peer a(a_options);
  test_peer b(keel::test::plaintext_options(2));
  a.transport().add_peer(2, b.transport().address());
  auto content = std::make_shared<const std::vector<std::byte>>(keel::test::content_of(32 * mib));
  a.offer("s1", content);
  // The receiver's disk stalls after 4 MiB: its handler stops reading, the
  // stream's flow-control window fills, and the sender's write blocks.
  b.hold_snapshots_at(4 * mib);
  a.transport().send(keel::test::snapshot_message(1, 2, 700, 4, "s1"));
  REQUIRE(b.wait_snapshot_held());
  REQUIRE(keel::test::eventually([&] { return a.transport().stalls_cancelled() >= 1; }));
  CHECK(b.message_count() == 0);
  b.release_snapshots();
  REQUIRE(a.wait_snapshot_outcome() == true);
  check_installed(a, b, 700, 4, *content);
  CHECK(a.transport().stalls_cancelled() >= 1);
  // Resumed, not restarted: no content byte reached the receiver's disk twice.
  CHECK(b.bytes_received() == content->size());
  CHECK(b.snapshot_files() == std::vector<std::string>{keel::wal::snapshot_name{700, 4}.str()});
}

TEST_CASE("grpc: a snapshot whose earlier stream ended early continues from the bytes kept",
          "[grpc][snapshot][resume]") {
  test_peer a(keel::test::plaintext_options(1));
  test_peer b(keel::test::plaintext_options(2));
  a.transport().add_peer(2, b.transport().address());
  const auto content =
      std::make_shared<const std::vector<std::byte>>(keel::test::content_of(6 * mib + 12345, 7));
  const auto header = keel::test::snapshot_message(1, 2, 800, 5, "s2");

  // An earlier stream of node 1 carried 3 MiB, then ended before its last chunk.
  auto stub = keel::wire::Raft::NewStub(
      ::grpc::CreateChannel(b.transport().address(), ::grpc::InsecureChannelCredentials()));
  {
    ::grpc::ClientContext context;
    keel::wire::Ack ack;
    auto writer = stub->StreamRaftMessage(&context, &ack);
    for (std::uint64_t offset = 0; offset < 3 * mib; offset += mib) {
      keel::wire::Chunk c;
      if (offset == 0) {
        auto m = header;
        m.snapshot->data.clear();
        keel::rpc::to_wire(m, *c.mutable_header());
      }
      c.set_from(1);
      c.set_snapshot_index(800);
      c.set_snapshot_term(5);
      c.set_offset(offset);
      c.set_data(reinterpret_cast<const char*>(content->data() + offset), mib);
      REQUIRE(writer->Write(c));
    }
    REQUIRE(writer->WritesDone());
    CHECK(writer->Finish().error_code() == ::grpc::StatusCode::INVALID_ARGUMENT);
  }
  CHECK(b.bytes_received() == 3 * mib);

  a.offer("s2", content);
  a.transport().send(header);
  REQUIRE(a.wait_snapshot_outcome() == true);
  check_installed(a, b, 800, 5, *content);
  CHECK(b.bytes_received() == content->size());
  CHECK(b.snapshot_files() == std::vector<std::string>{keel::wal::snapshot_name{800, 5}.str()});
}

TEST_CASE("grpc: a snapshot query while a stream still writes that snapshot is told to retry",
          "[grpc][snapshot][resume]") {
  test_peer b(keel::test::plaintext_options(2));
  const auto content = keel::test::content_of(4 * mib, 3);
  const auto chunks = keel::test::snapshot_chunks(1, 2, 900, 6, content, mib);
  b.hold_snapshots_at(mib / 2);
  auto stub = keel::wire::Raft::NewStub(
      ::grpc::CreateChannel(b.transport().address(), ::grpc::InsecureChannelCredentials()));
  ::grpc::ClientContext context;
  keel::wire::Ack ack;
  auto writer = stub->StreamRaftMessage(&context, &ack);
  REQUIRE(writer->Write(chunks[0]));
  REQUIRE(b.wait_snapshot_held());

  // The stream's bytes are still moving: a count now would be stale, and a
  // sender resuming from it would leave a gap once the stream ends.
  keel::test::raw_client client(b.transport().address());
  CHECK(client.query(1, 900, 6).first.error_code() == ::grpc::StatusCode::UNAVAILABLE);

  b.release_snapshots();
  REQUIRE(writer->WritesDone());
  CHECK(writer->Finish().error_code() == ::grpc::StatusCode::INVALID_ARGUMENT);
  const auto [status, held] = client.query(1, 900, 6);
  CHECK(status.ok());
  CHECK(held == mib);
}
