// Mutual TLS between gRPC transports, with a CA and node certificates made
// by the openssl command line at test time: peers with certificates from
// the cluster's CA talk, a certificate proves which node sends, and a
// certificate from another CA does not get in.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "grpc_test_support.hpp"
#include "keel/grpc/transport.hpp"

using namespace std::chrono_literals;
using ::grpc::StatusCode;
using keel::raft::message;
using keel::raft::message_type;
using keel::test::raw_client;
using keel::test::test_ca;
using keel::test::test_peer;

namespace {

message heartbeat(keel::raft::node_id from, keel::raft::node_id to, std::uint64_t term) {
  return {.type = message_type::heartbeat, .to = to, .from = from, .term = term};
}

keel::rpc::transport_options tls_options(keel::raft::node_id id, keel::rpc::tls_options tls) {
  auto o = keel::test::plaintext_options(id);
  o.tls = std::move(tls);
  return o;
}

/// A bare TLS client of `server` (whose certificate names `server_name`)
/// presenting the certificate of `tls`.
raw_client tls_client(test_peer& server, const keel::rpc::tls_options& tls,
                      const std::string& server_name) {
  auto credentials = keel::rpc::channel_credentials(tls);
  REQUIRE(credentials);
  ::grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(server_name);
  return raw_client(server.transport().address(), *credentials, args);
}

/// Two TLS transports that know each other exchange messages both ways.
void check_exchange(test_peer& a, test_peer& b) {
  a.transport().add_peer(2, b.transport().address());
  b.transport().add_peer(1, a.transport().address());
  std::vector<message> to_b;
  std::vector<message> to_a;
  for (std::uint64_t term = 1; term <= 10; ++term) {
    to_b.push_back(heartbeat(1, 2, term));
    to_a.push_back(heartbeat(2, 1, term));
    a.transport().send(to_b.back());
    b.transport().send(to_a.back());
  }
  CHECK(b.wait_messages(to_b.size()) == to_b);
  CHECK(a.wait_messages(to_a.size()) == to_a);
  CHECK(a.transport().status(2).reachable);
  CHECK(b.transport().status(1).reachable);
  CHECK(a.transport().refused() == 0);
  CHECK(b.transport().refused() == 0);
}

}  // namespace

TEST_CASE("grpc: peers with certificates of the cluster's CA exchange messages and a snapshot",
          "[grpc][tls]") {
  test_ca ca;
  test_peer a(tls_options(1, ca.issue("node-1")));
  test_peer b(tls_options(2, ca.issue("node-2")));
  check_exchange(a, b);
  const auto content =
      std::make_shared<const std::vector<std::byte>>(keel::test::content_of(3 * 1024 * 1024 + 7));
  a.offer("s1", content);
  a.transport().send(keel::test::snapshot_message(1, 2, 90, 3, "s1"));
  REQUIRE(a.wait_snapshot_outcome() == true);
  auto reader = b.store().open(90, 3);
  REQUIRE(reader);
  CHECK(reader->crc() == keel::wal::crc32c(*content));
  CHECK_FALSE(reader->verify());
  CHECK(b.wait_messages(11).back().snapshot->metadata.index == 90);
}

TEST_CASE("grpc: certificates given as PEM text in memory work like files", "[grpc][tls]") {
  test_ca ca;
  test_peer a(tls_options(1, test_ca::in_memory(ca.issue("node-1"))));
  test_peer b(tls_options(2, test_ca::in_memory(ca.issue("node-2"))));
  check_exchange(a, b);
}

TEST_CASE("grpc: a sender whose certificate names another node is refused", "[grpc][tls]") {
  test_ca ca;
  test_peer server(tls_options(1, ca.issue("node-1")));
  auto client = tls_client(server, ca.issue("node-3"), "node-1");
  // Node 3's certificate, claiming to be node 2.
  CHECK(client.unary(heartbeat(2, 1, 5)).error_code() == StatusCode::PERMISSION_DENIED);
  keel::wire::Chunk c;
  keel::rpc::to_wire(heartbeat(2, 1, 5), *c.mutable_header());
  c.set_from(2);
  c.set_last(true);
  CHECK(client.stream({c}).error_code() == StatusCode::PERMISSION_DENIED);
  const auto content = keel::test::content_of(256 * 1024);
  CHECK(client.stream(keel::test::snapshot_chunks(2, 1, 70, 2, content, 64 * 1024)).error_code() ==
        StatusCode::PERMISSION_DENIED);
  CHECK(client.query(2, 70, 2).first.error_code() == StatusCode::PERMISSION_DENIED);
  CHECK(server.transport().refused() == 4);
  CHECK(server.message_count() == 0);
  CHECK(server.snapshot_files().empty());
  // The same connection speaking as node 3, which it is, is heard.
  CHECK(client.unary(heartbeat(3, 1, 5)).ok());
  CHECK(server.message_count() == 1);
}

TEST_CASE("grpc: a client with a certificate from another CA cannot connect", "[grpc][tls]") {
  test_ca ca;
  test_ca other("another-ca");
  test_peer server(tls_options(1, ca.issue("node-1")));
  // It trusts the cluster's CA, but its own certificate is signed by another.
  auto foreign = other.issue("node-2");
  foreign.ca.file = ca.ca_file();
  auto client = tls_client(server, foreign, "node-1");
  CHECK_FALSE(client.unary(heartbeat(2, 1, 5)).ok());
  CHECK_FALSE(client.query(2, 70, 2).first.ok());
  // A transport with that certificate gets nothing through either.
  test_peer intruder(tls_options(2, foreign));
  intruder.transport().add_peer(1, server.transport().address());
  intruder.transport().send(heartbeat(2, 1, 6));
  REQUIRE(keel::test::eventually([&] { return !intruder.transport().status(1).reachable; }));
  CHECK(intruder.transport().status(1).sent == 0);
  CHECK(server.message_count() == 0);
  CHECK(server.snapshot_files().empty());
}
