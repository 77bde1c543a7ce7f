// A peer that serves only the unary ProcessRaftMessage (an older or a
// minimal implementation): the sender finds out when the stream call
// answers UNIMPLEMENTED and falls back to unary calls. Messages flow; a
// snapshot that fits in one 4 MiB message goes whole; a larger one cannot
// go, and the sender's status says why.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpc_test_support.hpp"
#include "keel/grpc/transport.hpp"

using namespace std::chrono_literals;
using keel::raft::message;
using keel::raft::message_type;
using keel::test::test_peer;

namespace {

constexpr std::size_t mib = 1024 * 1024;

/// Node 2 as a server that implements ProcessRaftMessage and nothing else,
/// recording what it receives.
class unary_only_peer final : public keel::wire::Raft::Service {
 public:
  unary_only_peer() {
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", ::grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    REQUIRE(server_);
    REQUIRE(port_ != 0);
  }

  unary_only_peer(const unary_only_peer&) = delete;
  unary_only_peer& operator=(const unary_only_peer&) = delete;

  ~unary_only_peer() override {
    server_->Shutdown(std::chrono::system_clock::now() + 1s);
    server_->Wait();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  ::grpc::Status ProcessRaftMessage(::grpc::ServerContext*, const keel::wire::Message* request,
                                    keel::wire::Ack*) override {
    std::lock_guard lock(mutex_);
    received_.push_back(*request);
    changed_.notify_all();
    return ::grpc::Status::OK;
  }

  /// Waits until `count` messages arrived (or `patience` passed); returns them.
  std::vector<keel::wire::Message> wait_messages(std::size_t count,
                                                 std::chrono::milliseconds patience = 20s) {
    return wait_until([&](const auto& got) { return got.size() >= count; }, patience);
  }

  /// Waits until `done(messages)` holds (or `patience` passed); returns them.
  template <class Predicate>
  std::vector<keel::wire::Message> wait_until(Predicate done,
                                              std::chrono::milliseconds patience = 20s) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return done(received_); });
    return received_;
  }

 private:
  int port_ = 0;
  std::unique_ptr<::grpc::Server> server_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<keel::wire::Message> received_;
};

message heartbeat(std::uint64_t term) {
  return {.type = message_type::heartbeat, .to = 2, .from = 1, .term = term};
}

/// Sends heartbeats until one arrives: those sent before the sender learnt
/// that the peer has no stream method may be lost. Returns the next term.
std::uint64_t until_one_arrives(test_peer& a, unary_only_peer& b) {
  std::uint64_t term = 1;
  for (; term <= 200; ++term) {
    a.transport().send(heartbeat(term));
    if (!b.wait_messages(1, 100ms).empty()) break;
  }
  REQUIRE(b.wait_messages(1).size() >= 1);
  return term + 1;
}

}  // namespace

TEST_CASE("grpc: messages reach a peer without streaming through unary calls", "[grpc][unary]") {
  unary_only_peer b;
  test_peer a(keel::test::plaintext_options(1));
  a.transport().add_peer(2, b.address());
  const std::uint64_t first = until_one_arrives(a, b);
  // From now on every message arrives, in order, equal to what was sent.
  std::vector<keel::wire::Message> sent;
  for (std::uint64_t term = first; term < first + 20; ++term) {
    message m = heartbeat(term);
    if (term == first + 10) {  // An append with entries, too.
      m = {.type = message_type::app,
           .to = 2,
           .from = 1,
           .term = term,
           .log_term = term,
           .index = 4,
           .commit = 4};
      m.entries.push_back({.term = term, .index = 5, .data = keel::bytes(std::string(1000, 'x'))});
    }
    keel::rpc::to_wire(m, sent.emplace_back());
    a.transport().send(m);
  }
  // Earlier heartbeats may still come first; these have lower terms.
  const auto later = [first](const std::vector<keel::wire::Message>& all) {
    std::vector<std::string> out;
    for (const auto& m : all) {
      if (m.term() >= first) out.push_back(m.SerializeAsString());
    }
    return out;
  };
  const auto got = later(b.wait_until([&](const auto& all) { return later(all).size() >= 20; }));
  REQUIRE(got.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) CHECK(got[i] == sent[i].SerializeAsString());
  CHECK(a.transport().status(2).reachable);
}

TEST_CASE("grpc: a snapshot under 4 MiB goes whole in one unary call to a peer without streaming",
          "[grpc][unary][snapshot]") {
  unary_only_peer b;
  test_peer a(keel::test::plaintext_options(1));
  a.transport().add_peer(2, b.address());
  const auto content = std::make_shared<const std::vector<std::byte>>(keel::test::content_of(mib));
  a.offer("s1", content);
  // Sent first, before any message: the snapshot lane finds out on its own.
  a.transport().send(keel::test::snapshot_message(1, 2, 300, 2, "s1"));
  REQUIRE(a.wait_snapshot_outcome() == true);
  const auto got = b.wait_messages(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].type() == keel::wire::MSG_SNAP);
  CHECK(got[0].snapshot().metadata().index() == 300);
  CHECK(got[0].snapshot().data() ==
        std::string(reinterpret_cast<const char*>(content->data()), content->size()));
  const auto st = a.transport().status(2);
  REQUIRE(st.snapshot);
  CHECK(st.snapshot->succeeded);
  CHECK(st.snapshot->bytes_sent == content->size());
}

TEST_CASE("grpc: a snapshot over 4 MiB is refused for a peer without streaming, and says why",
          "[grpc][unary][snapshot]") {
  unary_only_peer b;
  test_peer a(keel::test::plaintext_options(1));
  a.transport().add_peer(2, b.address());
  (void)until_one_arrives(a, b);
  const auto content =
      std::make_shared<const std::vector<std::byte>>(keel::test::content_of(8 * mib));
  a.offer("s1", content);
  a.transport().send(keel::test::snapshot_message(1, 2, 301, 2, "s1"));
  REQUIRE(a.wait_snapshot_outcome() == false);
  const auto st = a.transport().status(2);
  CHECK(st.last_error == keel::rpc::too_large_without_streaming(8 * mib));
  CHECK(st.last_error ==
        "peer does not support streaming; snapshot of 8388608 bytes exceeds the "
        "4 MiB message limit");
  REQUIRE(st.snapshot);
  CHECK_FALSE(st.snapshot->succeeded);
  CHECK_FALSE(st.snapshot->active);
  // A small one still goes afterwards, and nothing of the large one arrived.
  const auto small = std::make_shared<const std::vector<std::byte>>(keel::test::content_of(4096));
  a.offer("s2", small);
  a.transport().send(keel::test::snapshot_message(1, 2, 302, 2, "s2"));
  REQUIRE(a.wait_snapshot_outcome(2) == true);
  const auto snapshots = [](const std::vector<keel::wire::Message>& all) {
    std::vector<std::uint64_t> indexes;
    for (const auto& m : all) {
      if (m.type() == keel::wire::MSG_SNAP) indexes.push_back(m.snapshot().metadata().index());
    }
    return indexes;
  };
  const auto got = b.wait_until([&](const auto& all) { return !snapshots(all).empty(); });
  CHECK(snapshots(got) == std::vector<std::uint64_t>{302});
}
