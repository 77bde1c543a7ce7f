// keelctl's online commands against a live three-node cluster over gRPC
// (plaintext on loopback), each node serving the admin service: status
// agrees with the runners on leader, term and members; a member added and
// then removed shows in and then leaves the membership; a follower refuses
// membership changes with a message naming the leader; metrics are served
// when the node has them.
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "keelctl_test_support.hpp"

using namespace keel::test::tools;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::string> online(std::vector<std::string> words, const std::string& endpoint) {
  words.insert(words.end(), {"--endpoint", endpoint, "--insecure", "--timeout", "10"});
  return words;
}

/// The admin status of `endpoint`, through the client keelctl uses.
keel::admin::StatusReply status_of(const std::string& endpoint) {
  keel::rpc::tls_options tls;
  tls.plaintext = true;
  auto client = keel::rpc::admin_client::connect(endpoint, tls);
  REQUIRE(client);
  keel::admin::StatusReply reply;
  const auto s = client->status(reply, std::chrono::seconds(10));
  INFO(s.error_message());
  REQUIRE(s.ok());
  return reply;
}

/// Polls `endpoint`'s status until `ready` holds (without sleeping: each
/// poll is a round trip); the last status.
template <class Ready>
keel::admin::StatusReply wait_status(const std::string& endpoint, Ready&& ready) {
  keel::admin::StatusReply s;
  for (int attempt = 0; attempt < 20000; ++attempt) {
    s = status_of(endpoint);
    if (ready(s)) return s;
    std::this_thread::yield();
  }
  return s;
}

bool has(const google::protobuf::RepeatedField<std::uint64_t>& ids, std::uint64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

TEST_CASE("status shows the leader, the term and the members every node agrees on",
          "[keelctl][admin]") {
  keel::test::temp_dir root;
  example_cluster c(root.path(), {1, 2, 3}, true);
  example_runner* leader = c.leader();
  REQUIRE(leader != nullptr);
  const auto truth = leader->status(std::chrono::seconds(5));
  REQUIRE(truth);

  for (const keel::raft::node_id id : {1, 2, 3}) {
    const auto s = wait_status(c.admin_address(id), [&](const keel::admin::StatusReply& r) {
      return r.leader() == truth->id && r.term() == truth->term;
    });
    CHECK(s.id() == id);
    CHECK(s.leader() == truth->id);
    CHECK(s.term() == truth->term);
    CHECK(std::vector<std::uint64_t>(s.voters().begin(), s.voters().end()) ==
          std::vector<std::uint64_t>{1, 2, 3});
    CHECK(s.learners_size() == 0);
    CHECK(s.role() == (id == truth->id ? "leader" : "follower"));
  }

  // The same through the command line.
  const auto r = run_keelctl(online({"status"}, c.admin_address(truth->id)));
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK(contains(r.out, "node " + std::to_string(truth->id) + ": leader, term " +
                            std::to_string(truth->term) + ", leader " + std::to_string(truth->id)));
  CHECK(contains(r.out, "members: voters 1 2 3; learners none"));
  CHECK(contains(r.out, "replicate"));  // The leader's peers' progress.
}

TEST_CASE("member add then remove changes the membership status shows", "[keelctl][admin]") {
  keel::test::temp_dir root;
  example_cluster c(root.path(), {1, 2, 3}, true);

  // Asks the leader; should leadership move between finding it and asking
  // (a loaded machine), asks the new one.
  auto on_leader = [&](std::vector<std::string> words) {
    run_output r;
    for (int attempt = 0; attempt < 5; ++attempt) {
      example_runner* leader = c.leader();
      REQUIRE(leader != nullptr);
      const auto who = leader->status(std::chrono::seconds(5));
      REQUIRE(who);
      r = run_keelctl(online(words, c.admin_address(who->id)));
      if (r.rc == 0 || !contains(r.err, "not the leader")) break;
    }
    return r;
  };
  auto leader_endpoint = [&] {
    example_runner* leader = c.leader();
    REQUIRE(leader != nullptr);
    return c.admin_address(leader->status(std::chrono::seconds(5))->id);
  };

  // Node 4 never starts: it stays a learner the leader cannot promote.
  const auto added = on_leader({"member", "add", "4", "127.0.0.1:1"});
  INFO(added.err);
  REQUIRE(added.rc == 0);
  CHECK(contains(added.out, "added node 4"));
  auto s = wait_status(leader_endpoint(), [](const auto& r) { return has(r.learners(), 4); });
  CHECK(has(s.learners(), 4));
  const auto shown = run_keelctl(online({"status"}, leader_endpoint()));
  CHECK(contains(shown.out, "learners 4"));

  const auto removed = on_leader({"member", "remove", "4"});
  INFO(removed.err);
  REQUIRE(removed.rc == 0);
  CHECK(contains(removed.out, "removed node 4"));
  s = wait_status(leader_endpoint(),
                  [](const auto& r) { return !has(r.learners(), 4) && !has(r.voters(), 4); });
  CHECK_FALSE(has(s.learners(), 4));
  CHECK_FALSE(has(s.voters(), 4));
}

TEST_CASE("the admin server refuses to start without TLS material unless plaintext is asked for",
          "[keelctl][admin]") {
  keel::test::temp_dir root;
  example_cluster c(root.path(), {1}, false);
  keel::rpc::admin_options o;  // Neither TLS material nor plaintext.
  auto server = keel::rpc::admin_server<example_runner>::listen(o, c.at(1));
  REQUIRE_FALSE(server);
  CHECK(server.error() == keel::errc::invalid_argument);
}

TEST_CASE("a follower refuses membership changes, naming the leader", "[keelctl][admin]") {
  keel::test::temp_dir root;
  example_cluster c(root.path(), {1, 2, 3}, true);
  example_runner* leader = c.leader();
  REQUIRE(leader != nullptr);
  const auto who = leader->status(std::chrono::seconds(5));
  REQUIRE(who);
  const keel::raft::node_id follower = who->id == 1 ? 2 : 1;
  const std::string endpoint = c.admin_address(follower);
  wait_status(endpoint, [&](const auto& r) { return r.leader() == who->id; });

  const auto r = run_keelctl(online({"member", "remove", "3"}, endpoint));
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "FAILED_PRECONDITION"));
  CHECK(contains(r.err, "the leader is node " + std::to_string(who->id)));

  CHECK(run_keelctl(online({"member", "add", "0", "x:1"}, endpoint)).rc == 1);
  CHECK(run_keelctl(online({"member", "add", "5"}, endpoint)).rc == 2);
}

TEST_CASE("metrics print the node's text, or say the node has none", "[keelctl][admin]") {
  keel::test::temp_dir root;
  SECTION("with a metrics source") {
    example_cluster c(root.path(), {1}, false);
    keel::rpc::admin_options o;
    o.tls.plaintext = true;
    o.metrics = [] {
      return std::string("keel_up 1\n");
    };
    auto server = keel::rpc::admin_server<example_runner>::listen(o, c.at(1));
    REQUIRE(server);
    const auto r = run_keelctl(online({"metrics"}, server->address()));
    CHECK(r.rc == 0);
    CHECK(r.out == "keel_up 1\n");
  }
  SECTION("without") {
    example_cluster c(root.path(), {1}, true);
    const auto r = run_keelctl(online({"metrics"}, c.admin_address(1)));
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "UNIMPLEMENTED"));
  }
}

TEST_CASE("online commands need an endpoint and TLS material or --insecure", "[keelctl][admin]") {
  CHECK(run_keelctl({"status"}).rc == 1);
  const auto r = run_keelctl({"status", "--endpoint", "127.0.0.1:1"});
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "--insecure"));
  const auto down =
      run_keelctl({"status", "--endpoint", "127.0.0.1:1", "--insecure", "--timeout", "0.5"});
  CHECK(down.rc == 1);
  CHECK(contains(down.err, "127.0.0.1:1"));
}
