// keelctl's online commands against a live three-node cluster over gRPC
// (plaintext on loopback), each node serving the admin service: status
// agrees with the runners on leader, term and members; a member added and
// then removed shows in and then leaves the membership; a follower refuses
// membership changes with a message naming the leader; metrics are served
// when the node has them.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <optional>
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

using namespace std::chrono_literals;

/// How long a test waits for the cluster to settle: generous, for
/// sanitizer builds under a parallel ctest on a loaded machine.
constexpr auto settle_time = 60s;

/// Whether a failed call is worth another try: the node was busy, lost or
/// changed leadership, or was just elected.
bool transient(const std::string& err) {
  return contains(err, "UNAVAILABLE") || contains(err, "ABORTED") ||
         contains(err, "DEADLINE_EXCEEDED") || contains(err, "not the leader") ||
         contains(err, "just elected");
}

/// The admin status of `endpoint`, through the client keelctl uses; nothing
/// when the call fails (a busy node; callers retry).
std::optional<keel::admin::StatusReply> status_of(const std::string& endpoint) {
  keel::rpc::tls_options tls;
  tls.plaintext = true;
  auto client = keel::rpc::admin_client::connect(endpoint, tls);
  REQUIRE(client);
  keel::admin::StatusReply reply;
  const auto s = client->status(reply, std::chrono::seconds(10));
  if (!s.ok()) return std::nullopt;
  return reply;
}

/// Polls `endpoint`'s status until `ready` holds or the settle time passed;
/// the last status.
template <class Ready>
keel::admin::StatusReply wait_status(const std::string& endpoint, Ready&& ready) {
  keel::admin::StatusReply last;
  const auto deadline = std::chrono::steady_clock::now() + settle_time;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto s = status_of(endpoint)) {
      last = *s;
      if (ready(last)) break;
    }
    std::this_thread::sleep_for(5ms);
  }
  return last;
}

/// What every node of a cluster reports at one moment they all agree.
struct agreement {
  std::uint64_t leader = 0;
  std::uint64_t term = 0;
  std::map<keel::raft::node_id, keel::admin::StatusReply> replies{};
};

/// Polls every node's status until all name one leader in one term
/// (whichever they are: leadership may move under load); that agreement,
/// or one with leader 0 when the settle time passed first.
agreement wait_agreement(example_cluster& c, const std::vector<keel::raft::node_id>& ids) {
  const auto deadline = std::chrono::steady_clock::now() + settle_time;
  while (std::chrono::steady_clock::now() < deadline) {
    agreement a;
    bool agreed = true;
    for (const auto id : ids) {
      auto s = status_of(c.admin_address(id));
      if (!s || s->leader() == 0 ||
          (a.leader != 0 && (s->leader() != a.leader || s->term() != a.term))) {
        agreed = false;
        break;
      }
      a.leader = s->leader();
      a.term = s->term();
      a.replies[id] = *s;
    }
    if (agreed) return a;
    std::this_thread::sleep_for(5ms);
  }
  return {};
}

bool has(const google::protobuf::RepeatedField<std::uint64_t>& ids, std::uint64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

TEST_CASE("status shows the leader, the term and the members every node agrees on",
          "[keelctl][admin]") {
  keel::test::temp_dir root;
  example_cluster c(root.path(), {1, 2, 3}, true);
  REQUIRE(c.leader() != nullptr);

  const agreement a = wait_agreement(c, {1, 2, 3});
  REQUIRE(a.leader != 0);
  for (const auto& [id, s] : a.replies) {
    CHECK(s.id() == id);
    CHECK(s.leader() == a.leader);
    CHECK(s.term() == a.term);
    CHECK(std::vector<std::uint64_t>(s.voters().begin(), s.voters().end()) ==
          std::vector<std::uint64_t>{1, 2, 3});
    CHECK(s.learners_size() == 0);
    CHECK(s.role() == (id == a.leader ? "leader" : "follower"));
  }

  // The same through the command line, against whichever node leads when
  // it is asked (leadership may have moved since).
  run_output r;
  std::string expected;
  const auto deadline = std::chrono::steady_clock::now() + settle_time;
  while (std::chrono::steady_clock::now() < deadline) {
    const agreement now = wait_agreement(c, {1, 2, 3});
    REQUIRE(now.leader != 0);
    expected = "node " + std::to_string(now.leader) + ": leader, term " + std::to_string(now.term) +
               ", leader " + std::to_string(now.leader);
    r = run_keelctl(online({"status"}, c.admin_address(now.leader)));
    if (r.rc == 0 && contains(r.out, expected)) break;
  }
  INFO(r.err);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(contains(r.out, expected));
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
    const auto deadline = std::chrono::steady_clock::now() + settle_time;
    while (std::chrono::steady_clock::now() < deadline) {
      example_runner* leader = c.leader();
      REQUIRE(leader != nullptr);
      const auto who = leader->status(std::chrono::seconds(5));
      if (!who) continue;
      r = run_keelctl(online(words, c.admin_address(who->id)));
      if (r.rc == 0 || !transient(r.err)) break;
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
  REQUIRE(c.leader() != nullptr);

  // Asks a follower of the leader all nodes agree on; should leadership
  // move meanwhile (a loaded machine), reads who leads again and asks anew.
  run_output r;
  agreement a;
  const auto deadline = std::chrono::steady_clock::now() + settle_time;
  while (std::chrono::steady_clock::now() < deadline) {
    a = wait_agreement(c, {1, 2, 3});
    REQUIRE(a.leader != 0);
    const keel::raft::node_id follower = a.leader == 1 ? 2 : 1;
    r = run_keelctl(online({"member", "remove", "3"}, c.admin_address(follower)));
    if (r.rc == 0) break;  // Became the leader meanwhile: fails the checks below.
    // The leader named is the one the nodes agree on now.
    const agreement after = wait_agreement(c, {1, 2, 3});
    if (contains(r.err, "FAILED_PRECONDITION") &&
        contains(r.err, "the leader is node " + std::to_string(after.leader))) {
      a = after;
      break;
    }
    if (!transient(r.err) && !contains(r.err, "FAILED_PRECONDITION")) break;
  }
  INFO(r.err);
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "FAILED_PRECONDITION"));
  CHECK(contains(r.err, "the leader is node " + std::to_string(a.leader)));

  const std::string endpoint = c.admin_address(a.leader == 1 ? 2 : 1);
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

TEST_CASE("--timeout takes finite seconds in (0, 86400] and member ids only digits",
          "[keelctl][admin]") {
  for (const char* bad : {"nan", "inf", "-inf", "1e30", "86401", "0", "-1", "1e-400", "5s"}) {
    const auto r =
        run_keelctl({"status", "--endpoint", "127.0.0.1:1", "--insecure", "--timeout", bad});
    INFO(bad << ": " << r.err);
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "--timeout"));
  }
  for (const char* bad :
       {"18446744073709551616", "99999999999999999999999", "5x", "+5", " 5", "-1", "0", "0x5"}) {
    const auto r = run_keelctl(
        {"member", "remove", bad, "--endpoint", "127.0.0.1:1", "--insecure", "--timeout", "0.5"});
    INFO(bad << ": " << r.err);
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "is not a member id"));
  }
  // The largest id parses: the call then fails on the closed port instead.
  const auto big = run_keelctl({"member", "remove", "18446744073709551615", "--endpoint",
                                "127.0.0.1:1", "--insecure", "--timeout", "0.5"});
  CHECK(big.rc == 1);
  CHECK_FALSE(contains(big.err, "is not a member id"));
}
