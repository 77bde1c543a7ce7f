// A downstream program that uses keel::grpc: converts a raft append message
// to its protobuf wire form and back through protobuf's encoding, then starts
// two gRPC transports on ephemeral loopback ports and sends a heartbeat from
// one to the other. Exits 0 when it arrives intact, 1 otherwise.
#include <keel/raft.pb.h>
#include <keel/grpc/transport.hpp>
#include <keel/grpc/wire.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <string>
#include <utility>

namespace {

bool fail(const char* what) {
  std::cerr << "grpc consumer: FAILED: " << what << '\n';
  return false;
}

bool round_trip() {
  keel::raft::message m{.type = keel::raft::message_type::app,
                        .to = 2,
                        .from = 1,
                        .term = 3,
                        .log_term = 3,
                        .index = 7,
                        .entries = {{.term = 3, .index = 8, .data = "put k v"}},
                        .commit = 7};
  keel::wire::Message w;
  keel::rpc::to_wire(m, w);
  std::string encoded;
  if (!w.SerializeToString(&encoded)) return fail("serializing the wire message");
  keel::wire::Message parsed;
  if (!parsed.ParseFromString(encoded)) return fail("parsing the wire message");
  const auto back = keel::rpc::from_wire(parsed);
  if (!back) return fail("from_wire refused a valid append");
  if (*back != m) return fail("the append changed on its way through the wire form");
  return true;
}

keel::rpc::transport_options plaintext(keel::raft::node_id id) {
  keel::rpc::transport_options o;
  o.id = id;
  o.listen_address = "127.0.0.1:0";
  o.tls.plaintext = true;
  return o;
}

bool heartbeat_over_grpc() {
  auto sender = keel::rpc::grpc_transport::listen(plaintext(1));
  auto receiver = keel::rpc::grpc_transport::listen(plaintext(2));
  if (!sender || !receiver) return fail("listening on an ephemeral port");
  if (sender->port() == 0 || receiver->port() == 0) return fail("an ephemeral port was chosen");

  std::promise<keel::raft::message> arrived;
  auto arrival = arrived.get_future();
  std::atomic<bool> delivered{false};  // Duplicates may arrive; the first is kept.
  receiver->attach({.deliver =
                        [&](keel::raft::message m) {
                          if (!delivered.exchange(true)) arrived.set_value(std::move(m));
                        },
                    .unreachable =
                        [](keel::raft::node_id) {
                        }});
  sender->attach({.deliver = [](keel::raft::message) {},
                  .unreachable =
                      [](keel::raft::node_id) {
                      }});
  sender->add_peer(2, receiver->address());
  sender->send(
      {.type = keel::raft::message_type::heartbeat, .to = 2, .from = 1, .term = 5, .commit = 4});
  if (arrival.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    return fail("the heartbeat did not arrive within 60 s");
  }
  const keel::raft::message got = arrival.get();
  if (got.type != keel::raft::message_type::heartbeat || got.from != 1 || got.to != 2 ||
      got.term != 5 || got.commit != 4) {
    return fail("the heartbeat arrived changed");
  }
  return true;
}

}  // namespace

int main() {
  if (!round_trip() || !heartbeat_over_grpc()) return EXIT_FAILURE;
  std::cout << "grpc consumer: the wire form and the transport work\n";
  return EXIT_SUCCESS;
}
