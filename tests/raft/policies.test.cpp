// The Raft core's policies: every shipped policy models its concept, and
// user-defined ones plug in: a logger that records lines, a random source
// that makes election timeouts deterministic, and a log storage of the
// user's own running a node end to end (STYLE.md "Policies").
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/raft/config.hpp"
#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"
#include "keel/raft/storage.hpp"

namespace {

using namespace keel::raft;
using keel::result;

/// A logger that keeps every line it is given at or above a level.
struct recording_logger {
  std::vector<std::string>* lines;
  log_level min_level = log_level::debug;

  bool enabled(log_level level) const { return level >= min_level; }
  void log(log_level, std::string_view line) { lines->emplace_back(line); }
};

/// A user's random source: a linear congruential generator with a seed.
struct lcg_random {
  std::uint64_t state;
  std::uint64_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 11;
  }
};

/// A random source that always says the same thing.
struct constant_random {
  std::uint64_t value;
  std::uint64_t next() const { return value; }
};

/// A log storage of the user's own: memory_storage behind a wrapper that
/// counts the reads raft makes through the log_storage interface.
class counting_storage {
 public:
  keel::raft::initial_state initial_state() const { return ++reads_, inner_.initial_state(); }
  result<std::vector<entry>> entries(std::uint64_t lo, std::uint64_t hi,
                                     std::uint64_t max_bytes) const {
    return ++reads_, inner_.entries(lo, hi, max_bytes);
  }
  result<std::uint64_t> term(std::uint64_t i) const { return ++reads_, inner_.term(i); }
  std::uint64_t first_index() const { return ++reads_, inner_.first_index(); }
  std::uint64_t last_index() const { return ++reads_, inner_.last_index(); }
  result<keel::raft::snapshot> snapshot() const { return ++reads_, inner_.snapshot(); }

  // The node layer's side: what the test harness writes.
  std::error_code apply_snapshot(keel::raft::snapshot s) {
    return inner_.apply_snapshot(std::move(s));
  }
  std::error_code append(std::vector<entry> ents) { return inner_.append(std::move(ents)); }
  void set_hard_state(const hard_state& hs) { inner_.set_hard_state(hs); }

  std::uint64_t reads() const { return reads_; }

 private:
  memory_storage inner_;
  mutable std::uint64_t reads_ = 0;
};

/// Storage of a single-voter cluster {1}, bootstrapped by a snapshot at index 1.
template <class Storage>
void bootstrap_single(Storage& storage) {
  snapshot boot;
  boot.metadata = {.index = 1, .term = 1, .conf = {.voters = {1}}};
  REQUIRE_FALSE(storage.apply_snapshot(boot));
}

/// Storage of a cluster {1, 2, 3}.
void bootstrap_three(memory_storage& storage) {
  snapshot boot;
  boot.metadata = {.index = 1, .term = 1, .conf = {.voters = {1, 2, 3}}};
  REQUIRE_FALSE(storage.apply_snapshot(boot));
}

/// Plays the node layer for a single node; returns the data of applied entries.
template <class Node, class Storage>
std::vector<std::string> handle_readies(Node& node, Storage& storage) {
  std::vector<std::string> applied;
  for (int guard = 0; guard < 100 && node.has_ready(); ++guard) {
    ready rd = node.ready();
    if (rd.snapshot) REQUIRE_FALSE(storage.apply_snapshot(*rd.snapshot));
    if (!rd.entries.empty()) REQUIRE_FALSE(storage.append(rd.entries));
    if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
    for (const entry& e : rd.committed_entries) {
      if (!e.data.empty()) applied.push_back(e.data.str());
    }
    node.advance();
  }
  REQUIRE_FALSE(node.has_ready());
  return applied;
}

/// The election timeouts a node draws over `rounds` elections in a 3-voter
/// cluster nobody answers (without pre-vote, each campaign moves to a new term
/// and draws a new timeout).
template <class Random>
std::vector<int> election_timeouts(Random random, int rounds) {
  memory_storage storage;
  bootstrap_three(storage);
  auto created =
      raw_node<memory_storage, Random>::create(config{.id = 1, .pre_vote = false}, storage, random);
  REQUIRE(created);
  auto& node = *created;
  std::vector<int> out;
  for (int r = 0; r < rounds; ++r) {
    out.push_back(node.state().randomized_election_timeout());
    node.campaign();
    handle_readies(node, storage);
  }
  return out;
}

}  // namespace

// ---- shipped policies model their concepts -----------------------------------------------------

TEST_CASE("memory_storage is a log_storage") { STATIC_REQUIRE(log_storage<memory_storage>); }

TEST_CASE("splitmix_random is a random_source") { STATIC_REQUIRE(random_source<splitmix_random>); }

TEST_CASE("null_logger is a logger") { STATIC_REQUIRE(logger<null_logger>); }

TEST_CASE("the user-defined policies of these tests model their concepts") {
  STATIC_REQUIRE(log_storage<counting_storage>);
  STATIC_REQUIRE(random_source<lcg_random>);
  STATIC_REQUIRE(random_source<constant_random>);
  STATIC_REQUIRE(logger<recording_logger>);
}

TEST_CASE("types missing a policy member do not model the concept") {
  struct no_next {};
  struct wrong_next {
    int next() { return 0; }
  };
  struct no_enabled {
    void log(log_level, std::string_view) {}
  };
  struct no_log {
    bool enabled(log_level) { return true; }
  };
  STATIC_REQUIRE_FALSE(random_source<no_next>);
  STATIC_REQUIRE_FALSE(random_source<wrong_next>);
  STATIC_REQUIRE_FALSE(logger<no_enabled>);
  STATIC_REQUIRE_FALSE(logger<no_log>);
  STATIC_REQUIRE_FALSE(log_storage<int>);
  STATIC_REQUIRE_FALSE(log_storage<splitmix_random>);
}

TEST_CASE("splitmix_random replays the same sequence from the same seed") {
  splitmix_random a(99), b(99), c(100);
  bool differs = false;
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t x = a.next();
    CHECK(x == b.next());
    differs = differs || x != c.next();
  }
  CHECK(differs);
}

// ---- logger ----------------------------------------------------------------------------------

TEST_CASE("a user-defined logger receives a line when the node becomes leader") {
  memory_storage storage;
  bootstrap_single(storage);
  std::vector<std::string> lines;
  auto created = raw_node<memory_storage, splitmix_random, recording_logger>::create(
      config{.id = 1}, storage, splitmix_random(1), recording_logger{&lines});
  REQUIRE(created);
  lines.clear();  // Whatever it said when starting.
  created->campaign();
  REQUIRE(created->state().state() == state_type::leader);
  INFO("lines: " << lines.size());
  CHECK(std::any_of(lines.begin(), lines.end(), [](const std::string& line) {
    return line.find("became leader at term 1") != std::string::npos;
  }));
  CHECK(std::all_of(lines.begin(), lines.end(),
                    [](const std::string& line) { return line.rfind("1: ", 0) == 0; }));
}

TEST_CASE("a logger that disables a level receives no lines of it") {
  memory_storage storage;
  bootstrap_single(storage);
  std::vector<std::string> lines;
  auto created = raw_node<memory_storage, splitmix_random, recording_logger>::create(
      config{.id = 1}, storage, splitmix_random(1), recording_logger{&lines, log_level::warn});
  REQUIRE(created);
  created->campaign();
  REQUIRE(created->state().state() == state_type::leader);
  CHECK(lines.empty());
}

// ---- random source ------------------------------------------------------------------------------

TEST_CASE("the same random seed gives the same election timeouts") {
  CHECK(election_timeouts(lcg_random{7}, 20) == election_timeouts(lcg_random{7}, 20));
}

TEST_CASE("different random seeds give different election timeouts") {
  CHECK(election_timeouts(lcg_random{7}, 20) != election_timeouts(lcg_random{8}, 20));
}

TEST_CASE("election timeouts stay within one to two election ticks") {
  for (int timeout : election_timeouts(lcg_random{3}, 200)) {
    CHECK(timeout >= 10);
    CHECK(timeout < 20);
  }
}

TEST_CASE("a constant random source fixes when a follower campaigns") {
  memory_storage storage;
  bootstrap_three(storage);
  // 10 + 7 % 10: the follower campaigns on its 17th tick, not before.
  auto created = raw_node<memory_storage, constant_random>::create(config{.id = 1}, storage,
                                                                   constant_random{7});
  REQUIRE(created);
  auto& node = *created;
  CHECK(node.state().randomized_election_timeout() == 17);
  for (int i = 0; i < 16; ++i) node.tick();
  CHECK(node.state().state() == state_type::follower);
  node.tick();
  CHECK(node.state().state() == state_type::pre_candidate);
}

// ---- log storage
// ---------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("a single node commits and applies proposals over any log storage", "",
                   memory_storage, counting_storage) {
  TestType storage;
  bootstrap_single(storage);
  auto created = raw_node<TestType>::create(config{.id = 1}, storage);
  REQUIRE(created);
  auto& node = *created;
  node.campaign();
  REQUIRE(node.state().state() == state_type::leader);
  handle_readies(node, storage);

  std::vector<std::string> proposed, applied;
  for (int i = 0; i < 50; ++i) {
    proposed.push_back("entry " + std::to_string(i));
    REQUIRE_FALSE(node.propose(proposed.back()));
    for (std::string& data : handle_readies(node, storage)) applied.push_back(std::move(data));
  }
  CHECK(applied == proposed);
  const auto status = node.status();
  CHECK(status.hard_state.commit == node.state().log().last_index());
  CHECK(status.applied == status.hard_state.commit);
  CHECK(storage.last_index() == status.hard_state.commit);
}

TEST_CASE("raft reads the log through the user's storage") {
  counting_storage storage;
  bootstrap_single(storage);
  auto created = raw_node<counting_storage>::create(config{.id = 1}, storage);
  REQUIRE(created);
  const std::uint64_t after_create = storage.reads();
  CHECK(after_create > 0);
  created->campaign();
  handle_readies(*created, storage);
  REQUIRE_FALSE(created->propose("x"));
  handle_readies(*created, storage);
  CHECK(storage.reads() > after_create);
}
