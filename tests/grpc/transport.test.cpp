// The gRPC transport between real servers on loopback: messages in order,
// small and chunked, and a 64 MiB snapshot streamed and installed. Resume,
// peers without streaming, refusals and TLS have files of their own.
#include "keel/grpc/transport.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpc_test_support.hpp"

using namespace std::chrono_literals;
using keel::raft::message;
using keel::raft::message_type;
using keel::test::test_peer;

namespace {

message heartbeat(keel::raft::node_id from, keel::raft::node_id to, std::uint64_t term) {
  return {.type = message_type::heartbeat, .to = to, .from = from, .term = term};
}

/// Two transports that know each other.
struct pair_of_peers {
  pair_of_peers(keel::rpc::transport_options a_options = keel::test::plaintext_options(1),
                keel::rpc::transport_options b_options = keel::test::plaintext_options(2))
      : a(std::move(a_options)), b(std::move(b_options)) {
    a.transport().add_peer(2, b.transport().address());
    b.transport().add_peer(1, a.transport().address());
  }
  test_peer a;
  test_peer b;
};

}  // namespace

TEST_CASE("grpc: small and large messages arrive, in order, equal to what was sent",
          "[grpc][transport]") {
  pair_of_peers p;
  std::vector<message> sent;
  for (std::uint64_t i = 1; i <= 50; ++i) sent.push_back(heartbeat(1, 2, i));
  // An append larger than a chunk goes as its serialized bytes in chunks.
  message big{
      .type = message_type::app, .to = 2, .from = 1, .term = 50, .log_term = 50, .index = 9};
  for (std::uint64_t i = 10; i < 13; ++i) {
    big.entries.push_back(
        {.term = 50, .index = i, .data = keel::bytes(std::string(900 * 1024, char('a' + i)))});
  }
  sent.push_back(big);
  for (const message& m : sent) p.a.transport().send(m);
  const auto got = p.b.wait_messages(sent.size());
  REQUIRE(got.size() == sent.size());
  CHECK(got == sent);
  CHECK(p.a.transport().status(2).sent == sent.size());
  CHECK(p.a.transport().status(2).reachable);
}

TEST_CASE("grpc: a 64 MiB snapshot streams in chunks and is installed with its checksum verified",
          "[grpc][transport][snapshot]") {
  pair_of_peers p;
  auto content = std::make_shared<const std::vector<std::byte>>(keel::test::content_of(64 << 20));
  p.a.offer("s1", content);
  p.a.transport().send(keel::test::snapshot_message(1, 2, 500, 3, "s1"));
  REQUIRE(p.a.wait_snapshot_outcome() == true);
  const auto got = p.b.wait_messages(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].type == message_type::snap);
  CHECK(got[0].snapshot->metadata.index == 500);
  CHECK(got[0].snapshot->data == "file");
  auto reader = p.b.store().open(500, 3);
  REQUIRE(reader);
  CHECK(reader->size() == content->size());
  CHECK(reader->crc() == keel::wal::crc32c(*content));
  CHECK_FALSE(reader->verify());
  const auto st = p.a.transport().status(2);
  REQUIRE(st.snapshot);
  CHECK(st.snapshot->succeeded);
  CHECK(st.snapshot->bytes_sent == content->size());
  CHECK(p.b.bytes_received() == content->size());
}
