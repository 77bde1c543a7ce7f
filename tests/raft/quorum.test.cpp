// Quorum arithmetic (majority and joint configurations: committed index and
// vote outcome) and the progress tracker built on it. Cases follow
// etcd-io/raft's quorum/testdata and tracker tests; a property test checks
// the committed index against a brute-force model.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "keel/raft/quorum.hpp"
#include "keel/raft/tracker.hpp"

namespace {

using namespace keel::raft;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

/// acked(id) backed by a map; ids not in it acknowledged nothing.
auto acked_by(std::map<node_id, std::uint64_t> acks) {
  return [acks = std::move(acks)](node_id id) -> std::uint64_t {
    auto it = acks.find(id);
    return it == acks.end() ? 0 : it->second;
  };
}

/// votes(id) backed by a map of granted (true) / rejected (false); others missing.
auto votes_of(std::map<node_id, bool> votes) {
  return [votes = std::move(votes)](node_id id) -> int {
    auto it = votes.find(id);
    return it == votes.end() ? -1 : (it->second ? 1 : 0);
  };
}

/// The brute-force definition: the largest index acknowledged by a majority.
std::uint64_t model_committed(const std::vector<std::uint64_t>& acks) {
  std::uint64_t best = 0;
  for (std::uint64_t candidate : acks) {
    std::size_t n = 0;
    for (std::uint64_t a : acks) n += a >= candidate;
    if (n >= acks.size() / 2 + 1) best = std::max(best, candidate);
  }
  return best;
}

progress_tracker tracker_with(std::vector<node_id> voters, std::vector<node_id> learners = {}) {
  progress_tracker t(256, 0);
  t.config.voters.incoming = majority_config(voters);
  t.config.learners = majority_config(learners);
  for (node_id id : voters) t.progress.emplace(id, progress(1, 256, 0, false));
  for (node_id id : learners) t.progress.emplace(id, progress(1, 256, 0, true));
  return t;
}

}  // namespace

// ---- majority_config ----------------------------------------------------------

TEST_CASE("a majority config keeps its ids sorted and without duplicates") {
  majority_config c({3, 1, 2, 3, 1});
  CHECK(c.ids() == std::vector<node_id>{1, 2, 3});
  c.insert(2);
  c.insert(0);
  c.erase(3);
  c.erase(7);
  CHECK(c.ids() == std::vector<node_id>{0, 1, 2});
  CHECK(c.contains(0));
  CHECK_FALSE(c.contains(3));
}

TEST_CASE("an empty majority commits everything") {
  CHECK(majority_config().committed_index(acked_by({})) == max_u64);
}

TEST_CASE("a single voter commits what it acknowledged") {
  majority_config c({1});
  CHECK(c.committed_index(acked_by({})) == 0);
  CHECK(c.committed_index(acked_by({{1, 12}})) == 12);
}

TEST_CASE("two voters commit what both acknowledged") {
  majority_config c({1, 2});
  CHECK(c.committed_index(acked_by({{1, 12}})) == 0);
  CHECK(c.committed_index(acked_by({{1, 12}, {2, 5}})) == 5);
  CHECK(c.committed_index(acked_by({{1, 5}, {2, 12}})) == 5);
}

TEST_CASE("three voters commit what two of them acknowledged") {
  majority_config c({1, 2, 3});
  CHECK(c.committed_index(acked_by({{1, 12}})) == 0);
  CHECK(c.committed_index(acked_by({{1, 12}, {2, 5}})) == 5);
  CHECK(c.committed_index(acked_by({{1, 12}, {2, 5}, {3, 6}})) == 6);
  CHECK(c.committed_index(acked_by({{1, 12}, {2, 5}, {3, 4}})) == 5);
  CHECK(c.committed_index(acked_by({{1, 5}, {2, 5}, {3, 12}})) == 5);
}

TEST_CASE("four voters need three acknowledgements") {
  majority_config c({1, 2, 3, 4});
  CHECK(c.committed_index(acked_by({{1, 100}, {2, 101}})) == 0);
  CHECK(c.committed_index(acked_by({{1, 100}, {2, 101}, {3, 99}})) == 99);
  CHECK(c.committed_index(acked_by({{1, 101}, {2, 99}, {3, 99}, {4, 100}})) == 99);
}

TEST_CASE("five voters need three acknowledgements") {
  majority_config c({1, 2, 3, 4, 5});
  CHECK(c.committed_index(acked_by({{1, 101}, {2, 104}, {3, 103}, {4, 103}})) == 103);
  CHECK(c.committed_index(acked_by({{1, 101}, {2, 102}, {3, 103}, {4, 104}, {5, 105}})) == 103);
}

TEST_CASE("a large majority config commits what most of it acknowledged") {
  // More voters than the on-stack buffer holds.
  majority_config c({1, 2, 3, 4, 5, 6, 7, 8, 9});
  std::map<node_id, std::uint64_t> acks;
  for (node_id id = 1; id <= 9; ++id) acks[id] = 10 * id;
  CHECK(c.committed_index(acked_by(acks)) == 50);
}

TEST_CASE("the committed index matches the brute-force majority for random acknowledgements") {
  const std::uint64_t seed = 7;
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::size_t n = 1 + rng() % 11;
    std::vector<node_id> ids;
    std::vector<std::uint64_t> acks;
    std::map<node_id, std::uint64_t> by_id;
    for (std::size_t i = 0; i < n; ++i) {
      ids.push_back(i + 1);
      acks.push_back(rng() % 20);
      by_id[i + 1] = acks.back();
    }
    INFO("trial " << trial << " voters " << n);
    REQUIRE(majority_config(ids).committed_index(acked_by(by_id)) == model_committed(acks));
  }
}

TEST_CASE("an empty majority wins every vote") {
  CHECK(majority_config().result(votes_of({})) == vote_result::won);
}

TEST_CASE("a majority of granted votes wins") {
  majority_config c({1, 2, 3});
  CHECK(c.result(votes_of({{1, true}, {2, true}})) == vote_result::won);
  CHECK(c.result(votes_of({{1, true}, {2, false}, {3, true}})) == vote_result::won);
}

TEST_CASE("a vote is pending while the missing votes could still make a majority") {
  majority_config c({1, 2, 3});
  CHECK(c.result(votes_of({})) == vote_result::pending);
  CHECK(c.result(votes_of({{1, true}})) == vote_result::pending);
  CHECK(c.result(votes_of({{1, true}, {2, false}})) == vote_result::pending);
}

TEST_CASE("a majority of rejections loses") {
  majority_config c({1, 2, 3});
  CHECK(c.result(votes_of({{1, false}, {2, false}})) == vote_result::lost);
  CHECK(c.result(votes_of({{1, true}, {2, false}, {3, false}})) == vote_result::lost);
}

TEST_CASE("an even config needs more than half") {
  majority_config c({1, 2, 3, 4});
  CHECK(c.result(votes_of({{1, true}, {2, true}})) == vote_result::pending);
  CHECK(c.result(votes_of({{1, true}, {2, true}, {3, false}})) == vote_result::pending);
  CHECK(c.result(votes_of({{1, true}, {2, true}, {3, false}, {4, false}})) == vote_result::lost);
  CHECK(c.result(votes_of({{1, true}, {2, true}, {3, true}})) == vote_result::won);
}

TEST_CASE("votes of non-members do not count") {
  majority_config c({1, 2, 3});
  CHECK(c.result(votes_of({{1, true}, {7, true}, {8, true}})) == vote_result::pending);
}

// ---- joint_config ---------------------------------------------------------------

TEST_CASE("a joint config without an outgoing half behaves like its incoming majority") {
  joint_config j{majority_config({1, 2, 3}), {}};
  CHECK_FALSE(j.joint());
  CHECK(j.committed_index(acked_by({{1, 5}, {2, 7}})) == 5);
  CHECK(j.result(votes_of({{1, true}, {2, true}})) == vote_result::won);
}

TEST_CASE("a joint config commits the smaller of what each half commits") {
  joint_config j{majority_config({1, 2, 3}), majority_config({3, 4, 5})};
  CHECK(j.joint());
  CHECK(j.committed_index(acked_by({{1, 10}, {2, 10}, {3, 6}, {4, 5}})) == 5);
  CHECK(j.committed_index(acked_by({{1, 3}, {2, 4}, {3, 20}, {4, 20}})) == 4);
  CHECK(j.committed_index(acked_by({{1, 10}, {2, 10}})) == 0);
}

TEST_CASE("a joint config of two empty halves commits everything") {
  CHECK(joint_config{}.committed_index(acked_by({})) == max_u64);
}

TEST_CASE("a joint vote is won only when both halves win") {
  joint_config j{majority_config({1, 2, 3}), majority_config({3, 4, 5})};
  CHECK(j.result(votes_of({{1, true}, {2, true}, {3, true}, {4, true}})) == vote_result::won);
  // Incoming won, outgoing pending.
  CHECK(j.result(votes_of({{1, true}, {2, true}})) == vote_result::pending);
  // Incoming won, outgoing lost.
  CHECK(j.result(votes_of({{1, true}, {2, true}, {4, false}, {5, false}})) == vote_result::lost);
  // Incoming pending, outgoing lost.
  CHECK(j.result(votes_of({{1, true}, {4, false}, {5, false}})) == vote_result::lost);
  // Both pending.
  CHECK(j.result(votes_of({{3, true}})) == vote_result::pending);
}

TEST_CASE("a joint config lists every voter of both halves once") {
  joint_config j{majority_config({1, 2, 3}), majority_config({3, 4, 5})};
  CHECK(j.ids() == std::vector<node_id>{1, 2, 3, 4, 5});
  CHECK(j.contains(5));
  CHECK(j.contains(1));
  CHECK_FALSE(j.contains(6));
}

// ---- progress_tracker -------------------------------------------------------------

TEST_CASE("the tracker commits what a quorum of voters matched, ignoring learners") {
  progress_tracker t = tracker_with({1, 2, 3}, {4, 5});
  t.progress.at(1).match = 10;
  t.progress.at(4).match = 10;
  t.progress.at(5).match = 10;
  CHECK(t.committed() == 0);
  t.progress.at(2).match = 7;
  CHECK(t.committed() == 7);
}

TEST_CASE("the tracker counts a voter without progress as having matched nothing") {
  progress_tracker t = tracker_with({1, 2, 3});
  t.progress.at(1).match = 10;
  t.progress.at(2).match = 10;
  t.progress.erase(2);
  CHECK(t.committed() == 0);
}

TEST_CASE("a tracker with one voter and no outgoing half is a singleton") {
  CHECK(tracker_with({1}).is_singleton());
  CHECK(tracker_with({1}, {2}).is_singleton());
  CHECK_FALSE(tracker_with({1, 2}).is_singleton());
  progress_tracker joint = tracker_with({1});
  joint.config.voters.outgoing = majority_config({1, 2});
  CHECK_FALSE(joint.is_singleton());
}

TEST_CASE("a quorum is active when a majority of voters was recently active") {
  progress_tracker t = tracker_with({1, 2, 3}, {4});
  t.progress.at(1).recent_active = true;
  t.progress.at(4).recent_active = true;  // A learner does not count.
  CHECK_FALSE(t.quorum_active());
  t.progress.at(3).recent_active = true;
  CHECK(t.quorum_active());
}

TEST_CASE("the tracker keeps a voter's first vote of an election") {
  progress_tracker t = tracker_with({1, 2, 3});
  t.record_vote(2, false);
  t.record_vote(2, true);
  auto tally = t.tally_votes();
  CHECK(tally.granted == 0);
  CHECK(tally.rejected == 1);
  CHECK(tally.result == vote_result::pending);
}

TEST_CASE("the tally counts voters' votes only and decides the election") {
  progress_tracker t = tracker_with({1, 2, 3}, {4});
  t.record_vote(1, true);
  t.record_vote(4, true);  // A learner's vote is ignored.
  t.record_vote(9, true);  // So is a stranger's.
  auto tally = t.tally_votes();
  CHECK(tally.granted == 1);
  CHECK(tally.rejected == 0);
  CHECK(tally.result == vote_result::pending);
  t.record_vote(3, true);
  tally = t.tally_votes();
  CHECK(tally.granted == 2);
  CHECK(tally.result == vote_result::won);
}

TEST_CASE("resetting votes starts a new election") {
  progress_tracker t = tracker_with({1, 2, 3});
  t.record_vote(1, false);
  t.record_vote(2, false);
  REQUIRE(t.tally_votes().result == vote_result::lost);
  t.reset_votes();
  t.record_vote(1, true);
  CHECK(t.tally_votes().result == vote_result::pending);
}

TEST_CASE("the tracker reports its configuration as a conf_state") {
  progress_tracker t = tracker_with({3, 1, 2}, {5});
  t.config.voters.outgoing = majority_config({1, 2, 4});
  t.config.learners_next = majority_config({4});
  t.config.auto_leave = true;
  const conf_state cs = t.conf_state();
  CHECK(cs.voters == std::vector<node_id>{1, 2, 3});
  CHECK(cs.voters_outgoing == std::vector<node_id>{1, 2, 4});
  CHECK(cs.learners == std::vector<node_id>{5});
  CHECK(cs.learners_next == std::vector<node_id>{4});
  CHECK(cs.auto_leave);
  CHECK(t.voter_nodes() == std::vector<node_id>{1, 2, 3, 4});
  CHECK(t.learner_nodes() == std::vector<node_id>{5});
}
