// changer: membership changes applied to a progress tracker's configuration
// by the rules of joint consensus (simple, enter_joint, leave_joint) and the
// tracker state rebuilt from a stored conf_state (restore). Cases follow
// etcd-io/raft's confchange/testdata; every successful result is checked
// against the tracker's invariants.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "keel/errc.hpp"
#include "keel/raft/changer.hpp"

namespace {

using namespace keel::raft;
using keel::errc;
using keel::result;

constexpr std::uint64_t last_index = 10;

conf_change_single add(node_id id) { return {conf_change_type::add_node, id}; }
conf_change_single remove_node(node_id id) { return {conf_change_type::remove_node, id}; }
conf_change_single learner(node_id id) { return {conf_change_type::add_learner, id}; }

progress_tracker tracker_from(const conf_state& cs) {
  auto m = changer::restore(cs, last_index, 256, 0);
  REQUIRE(m);
  progress_tracker t(256, 0);
  t.config = m->config;
  t.progress = m->progress;
  return t;
}

void apply(progress_tracker& t, const membership& m) {
  t.config = m.config;
  t.progress = m.progress;
}

std::vector<node_id> progress_ids(const progress_map& prs) {
  std::vector<node_id> out;
  for (const auto& [id, pr] : prs) out.push_back(id);
  return out;
}

/// The tracker's invariants (tracker.hpp; etcd's confchange checkInvariants).
/// Returns what is wrong, or an empty string.
std::string broken_invariant(const membership& m) {
  const tracker_config& c = m.config;
  auto has = [&](node_id id) {
    return m.progress.contains(id);
  };
  for (node_id id : c.voters.ids()) {
    if (!has(id)) return "voter " + std::to_string(id) + " has no progress";
  }
  for (node_id id : c.voters.incoming) {
    if (m.progress.at(id).is_learner) return "voter " + std::to_string(id) + " marked learner";
  }
  for (node_id id : c.learners) {
    if (!has(id)) return "learner " + std::to_string(id) + " has no progress";
    if (c.voters.contains(id)) return "learner " + std::to_string(id) + " is also a voter";
    if (!m.progress.at(id).is_learner) return "learner " + std::to_string(id) + " not marked";
  }
  for (node_id id : c.learners_next) {
    if (!c.voters.outgoing.contains(id)) {
      return "staged learner " + std::to_string(id) + " is not an outgoing voter";
    }
    if (c.voters.incoming.contains(id)) {
      return "staged learner " + std::to_string(id) + " is an incoming voter";
    }
    if (m.progress.at(id).is_learner) return "staged learner " + std::to_string(id) + " marked";
  }
  for (const auto& [id, pr] : m.progress) {
    if (!c.voters.contains(id) && !c.learners.contains(id)) {
      return "progress for non-member " + std::to_string(id);
    }
  }
  if (!c.voters.joint()) {
    if (!c.learners_next.empty()) return "staged learners outside a joint config";
    if (c.auto_leave) return "auto_leave outside a joint config";
  }
  return {};
}

membership expect_ok(const result<membership>& r) {
  REQUIRE(r);
  CHECK(broken_invariant(*r) == "");
  return *r;
}

}  // namespace

// ---- simple ---------------------------------------------------------------------

TEST_CASE("a simple change adds a voter with fresh progress at the end of the log") {
  progress_tracker t = tracker_from({.voters = {1}});
  membership m = expect_ok(changer(t, last_index).simple({add(2)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2});
  const progress& pr = m.progress.at(2);
  CHECK(pr.match == 0);
  CHECK(pr.next == last_index + 1);
  CHECK(pr.recent_active);
  CHECK_FALSE(pr.is_learner);
  CHECK(pr.state == progress_state::probe);
}

TEST_CASE("adding a voter that is already a voter changes nothing") {
  progress_tracker t = tracker_from({.voters = {1, 2}});
  t.progress.at(2).match = 7;
  membership m = expect_ok(changer(t, last_index).simple({add(2)}));
  CHECK(m.config == t.config);
  CHECK(m.progress.at(2).match == 7);
}

TEST_CASE("a simple change removes a voter and its progress") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  membership m = expect_ok(changer(t, last_index).simple({remove_node(3)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2});
  CHECK(progress_ids(m.progress) == std::vector<node_id>{1, 2});
}

TEST_CASE("removing a node that is not a member changes nothing") {
  progress_tracker t = tracker_from({.voters = {1, 2}});
  membership m = expect_ok(changer(t, last_index).simple({remove_node(9)}));
  CHECK(m.config == t.config);
  CHECK(progress_ids(m.progress) == std::vector<node_id>{1, 2});
}

TEST_CASE("a simple change adds a learner") {
  progress_tracker t = tracker_from({.voters = {1}});
  membership m = expect_ok(changer(t, last_index).simple({learner(2)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1});
  CHECK(m.config.learners.ids() == std::vector<node_id>{2});
  CHECK(m.progress.at(2).is_learner);
  CHECK(m.progress.at(2).next == last_index + 1);
}

TEST_CASE("adding a learner that is already a learner changes nothing") {
  progress_tracker t = tracker_from({.voters = {1}, .learners = {2}});
  membership m = expect_ok(changer(t, last_index).simple({learner(2)}));
  CHECK(m.config == t.config);
}

TEST_CASE("a simple change promotes a learner to a voter and keeps its progress") {
  progress_tracker t = tracker_from({.voters = {1}, .learners = {2}});
  t.progress.at(2).match = 9;
  membership m = expect_ok(changer(t, last_index).simple({add(2)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2});
  CHECK(m.config.learners.empty());
  CHECK_FALSE(m.progress.at(2).is_learner);
  CHECK(m.progress.at(2).match == 9);
}

TEST_CASE("a simple change demotes a voter to a learner and keeps its progress") {
  progress_tracker t = tracker_from({.voters = {1, 2}});
  t.progress.at(2).match = 9;
  membership m = expect_ok(changer(t, last_index).simple({learner(2)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1});
  CHECK(m.config.learners.ids() == std::vector<node_id>{2});
  CHECK(m.progress.at(2).is_learner);
  CHECK(m.progress.at(2).match == 9);
}

TEST_CASE("a simple change may add a voter and a learner together") {
  progress_tracker t = tracker_from({.voters = {1}});
  membership m = expect_ok(changer(t, last_index).simple({add(2), learner(3)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2});
  CHECK(m.config.learners.ids() == std::vector<node_id>{3});
}

TEST_CASE("a simple change refuses to change two voters at once") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  const changer c(t, last_index);
  CHECK(c.simple({add(4), add(5)}).error() == errc::invalid_conf_change);
  CHECK(c.simple({remove_node(2), remove_node(3)}).error() == errc::invalid_conf_change);
  CHECK(c.simple({add(4), remove_node(3)}).error() == errc::invalid_conf_change);
  CHECK(c.simple({learner(2), learner(3)}).error() == errc::invalid_conf_change);
}

TEST_CASE("a simple change that adds and removes the same voter changes nothing and is allowed") {
  progress_tracker t = tracker_from({.voters = {1, 2}});
  membership m = expect_ok(changer(t, last_index).simple({add(3), remove_node(3)}));
  CHECK(m.config == t.config);
  CHECK(progress_ids(m.progress) == std::vector<node_id>{1, 2});
}

TEST_CASE("a simple change refuses to remove the last voter") {
  progress_tracker t = tracker_from({.voters = {1}, .learners = {2}});
  const changer c(t, last_index);
  CHECK(c.simple({remove_node(1)}).error() == errc::invalid_conf_change);
  CHECK(c.simple({learner(1)}).error() == errc::invalid_conf_change);
}

TEST_CASE("a simple change refuses to act on a joint config") {
  progress_tracker t = tracker_from({.voters = {1, 2}, .voters_outgoing = {1}});
  CHECK(changer(t, last_index).simple({add(3)}).error() == errc::invalid_conf_change);
}

TEST_CASE("changes naming node 0 are ignored") {
  progress_tracker t = tracker_from({.voters = {1}});
  membership m = expect_ok(changer(t, last_index).simple({add(0), learner(0), remove_node(0)}));
  CHECK(m.config == t.config);
  CHECK(progress_ids(m.progress) == std::vector<node_id>{1});
}

TEST_CASE("a simple change on an empty config adds the first voter") {
  progress_tracker t(256, 0);
  membership m = expect_ok(changer(t, 0).simple({add(1)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1});
  CHECK(m.progress.at(1).next == 1);
}

TEST_CASE("a changer never modifies the tracker it reads") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}, .learners = {4}});
  const tracker_config before = t.config;
  const auto ids_before = progress_ids(t.progress);
  const changer c(t, last_index);
  (void)c.simple({remove_node(3)});
  (void)c.simple({add(5), add(6)});
  (void)c.enter_joint(true, {remove_node(1), remove_node(2), learner(3)});
  (void)c.leave_joint();
  CHECK(t.config == before);
  CHECK(progress_ids(t.progress) == ids_before);
  CHECK(t.progress.at(4).is_learner);
}

// ---- enter_joint ------------------------------------------------------------------

TEST_CASE("entering a joint config makes the old voters the outgoing half") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  membership m = expect_ok(changer(t, last_index).enter_joint(false, {add(4), remove_node(3)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2, 4});
  CHECK(m.config.voters.outgoing.ids() == std::vector<node_id>{1, 2, 3});
  CHECK(progress_ids(m.progress) == std::vector<node_id>{1, 2, 3, 4});
  CHECK_FALSE(m.config.auto_leave);
}

TEST_CASE("entering a joint config records whether to leave it automatically") {
  progress_tracker t = tracker_from({.voters = {1}});
  membership m = expect_ok(changer(t, last_index).enter_joint(true, {add(2)}));
  CHECK(m.config.auto_leave);
  CHECK(m.config.conf_state().auto_leave);
}

TEST_CASE("a joint config may replace every voter at once") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  membership m = expect_ok(changer(t, last_index)
                               .enter_joint(false, {add(4), add(5), add(6), remove_node(1),
                                                    remove_node(2), remove_node(3)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{4, 5, 6});
  CHECK(m.config.voters.outgoing.ids() == std::vector<node_id>{1, 2, 3});
  // Removed voters keep their progress while they still vote in the outgoing half.
  CHECK(progress_ids(m.progress) == std::vector<node_id>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("a voter demoted in a joint config is staged as a learner until the config is left") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  membership m = expect_ok(changer(t, last_index).enter_joint(false, {learner(3)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2});
  CHECK(m.config.voters.outgoing.ids() == std::vector<node_id>{1, 2, 3});
  CHECK(m.config.learners.empty());
  CHECK(m.config.learners_next.ids() == std::vector<node_id>{3});
  CHECK_FALSE(m.progress.at(3).is_learner);
}

TEST_CASE("a new learner in a joint config is a learner at once") {
  progress_tracker t = tracker_from({.voters = {1, 2}});
  membership m = expect_ok(changer(t, last_index).enter_joint(false, {learner(3), add(4)}));
  CHECK(m.config.learners.ids() == std::vector<node_id>{3});
  CHECK(m.config.learners_next.empty());
  CHECK(m.progress.at(3).is_learner);
}

TEST_CASE("a later change of a batch overrides an earlier change of the same node") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  membership m = expect_ok(changer(t, last_index).enter_joint(false, {learner(3), add(3)}));
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2, 3});
  CHECK(m.config.learners_next.empty());
  CHECK(m.config.learners.empty());
}

TEST_CASE("entering a joint config refuses when already joint") {
  progress_tracker t = tracker_from({.voters = {1, 2}, .voters_outgoing = {1}});
  CHECK(changer(t, last_index).enter_joint(false, {add(3)}).error() == errc::invalid_conf_change);
}

TEST_CASE("entering a joint config refuses on an empty config") {
  progress_tracker t(256, 0);
  CHECK(changer(t, 0).enter_joint(false, {add(1)}).error() == errc::invalid_conf_change);
}

TEST_CASE("entering a joint config refuses to leave the incoming half without voters") {
  progress_tracker t = tracker_from({.voters = {1, 2}});
  const changer c(t, last_index);
  CHECK(c.enter_joint(false, {remove_node(1), remove_node(2)}).error() ==
        errc::invalid_conf_change);
  CHECK(c.enter_joint(false, {learner(1), learner(2)}).error() == errc::invalid_conf_change);
}

// ---- leave_joint ------------------------------------------------------------------

TEST_CASE("leaving a joint config drops the outgoing half and the removed voters' progress") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  apply(t, expect_ok(changer(t, last_index).enter_joint(true, {add(4), remove_node(3)})));
  membership m = expect_ok(changer(t, last_index).leave_joint());
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2, 4});
  CHECK(m.config.voters.outgoing.empty());
  CHECK_FALSE(m.config.auto_leave);
  CHECK(progress_ids(m.progress) == std::vector<node_id>{1, 2, 4});
}

TEST_CASE("leaving a joint config turns staged learners into learners") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  t.progress.at(3).match = 8;
  apply(t, expect_ok(changer(t, last_index).enter_joint(false, {learner(3)})));
  membership m = expect_ok(changer(t, last_index).leave_joint());
  CHECK(m.config.voters.incoming.ids() == std::vector<node_id>{1, 2});
  CHECK(m.config.learners.ids() == std::vector<node_id>{3});
  CHECK(m.config.learners_next.empty());
  CHECK(m.progress.at(3).is_learner);
  CHECK(m.progress.at(3).match == 8);
}

TEST_CASE("leaving a joint config keeps learners that were there before") {
  progress_tracker t = tracker_from({.voters = {1, 2}, .learners = {5}});
  apply(t, expect_ok(changer(t, last_index).enter_joint(false, {add(3)})));
  membership m = expect_ok(changer(t, last_index).leave_joint());
  CHECK(m.config.learners.ids() == std::vector<node_id>{5});
  CHECK(m.progress.at(5).is_learner);
}

TEST_CASE("leaving refuses when the config is not joint") {
  progress_tracker t = tracker_from({.voters = {1, 2}});
  CHECK(changer(t, last_index).leave_joint().error() == errc::invalid_conf_change);
}

TEST_CASE("entering and leaving a joint config gives the conf_state that was asked for") {
  progress_tracker t = tracker_from({.voters = {1, 2, 3}, .learners = {4}});
  apply(t, expect_ok(
               changer(t, last_index)
                   .enter_joint(true, {add(4), learner(1), remove_node(2), add(5), learner(6)})));
  const conf_state joint = t.conf_state();
  CHECK(joint.voters == std::vector<node_id>{3, 4, 5});
  CHECK(joint.voters_outgoing == std::vector<node_id>{1, 2, 3});
  CHECK(joint.learners == std::vector<node_id>{6});
  CHECK(joint.learners_next == std::vector<node_id>{1});
  CHECK(joint.auto_leave);
  apply(t, expect_ok(changer(t, last_index).leave_joint()));
  const conf_state after = t.conf_state();
  CHECK(after.voters == std::vector<node_id>{3, 4, 5});
  CHECK(after.voters_outgoing.empty());
  CHECK(after.learners == std::vector<node_id>{1, 6});
  CHECK(after.learners_next.empty());
  CHECK_FALSE(after.auto_leave);
  CHECK(progress_ids(t.progress) == std::vector<node_id>{1, 3, 4, 5, 6});
}

// ---- restore ------------------------------------------------------------------------

TEST_CASE("restore builds voters and learners with fresh, active progress") {
  auto m = changer::restore({.voters = {2, 1}, .learners = {3}}, 7, 16, 100);
  REQUIRE(m);
  CHECK(broken_invariant(*m) == "");
  CHECK(m->config.voters.incoming.ids() == std::vector<node_id>{1, 2});
  CHECK(m->config.learners.ids() == std::vector<node_id>{3});
  CHECK(progress_ids(m->progress) == std::vector<node_id>{1, 2, 3});
  for (const auto& [id, pr] : m->progress) {
    INFO("node " << id);
    CHECK(pr.next == 8);
    CHECK(pr.match == 0);
    CHECK(pr.recent_active);
    CHECK(pr.is_learner == (id == 3));
  }
}

TEST_CASE("restore rebuilds a joint config with staged learners") {
  const conf_state cs{.voters = {1, 2, 4},
                      .voters_outgoing = {1, 2, 3},
                      .learners = {5},
                      .learners_next = {3},
                      .auto_leave = true};
  auto m = changer::restore(cs, 7, 16, 0);
  REQUIRE(m);
  CHECK(broken_invariant(*m) == "");
  CHECK(m->config.conf_state() == cs);
  CHECK(progress_ids(m->progress) == std::vector<node_id>{1, 2, 3, 4, 5});
  CHECK_FALSE(m->progress.at(3).is_learner);
}

TEST_CASE("restore of an empty conf_state gives an empty config") {
  auto m = changer::restore({}, 0, 16, 0);
  REQUIRE(m);
  CHECK(m->config.voters.ids().empty());
  CHECK(m->progress.empty());
}

TEST_CASE("restore rejects a learner that is also a voter") {
  CHECK(changer::restore({.voters = {1, 2}, .learners = {2}}, 7, 16, 0).error() ==
        errc::invalid_conf_change);
}

TEST_CASE("restore rejects a learner that is also an outgoing voter") {
  CHECK(changer::restore({.voters = {1}, .voters_outgoing = {1, 2}, .learners = {2}}, 7, 16, 0)
            .error() == errc::invalid_conf_change);
}

TEST_CASE("restore rejects a staged learner that is not an outgoing voter") {
  CHECK(changer::restore({.voters = {1}, .voters_outgoing = {1, 2}, .learners_next = {3}}, 7, 16, 0)
            .error() == errc::invalid_conf_change);
  CHECK(changer::restore({.voters = {1}, .learners_next = {1}}, 7, 16, 0).error() ==
        errc::invalid_conf_change);
}

TEST_CASE("restore rejects a staged learner that is also a learner") {
  CHECK(changer::restore(
            {.voters = {1}, .voters_outgoing = {1, 2}, .learners = {2}, .learners_next = {2}}, 7,
            16, 0)
            .error() == errc::invalid_conf_change);
}

TEST_CASE("restore rejects a staged learner that is also an incoming voter") {
  // It would be both a voter and a learner once the joint config is left.
  CHECK(changer::restore({.voters = {1, 2}, .voters_outgoing = {1, 2}, .learners_next = {2}}, 7, 16,
                         0)
            .error() == errc::invalid_conf_change);
}

TEST_CASE("leaving a restored joint config never makes a node both voter and learner") {
  // Whatever restore accepts must leave a consistent config when the joint
  // config is left (the conf_state may come from a snapshot sent by a peer).
  auto restored = changer::restore(
      {.voters = {1, 2}, .voters_outgoing = {1, 2}, .learners_next = {2}}, 7, 16, 0);
  if (!restored) return;  // Rejected up front: fine.
  progress_tracker t(16, 0);
  apply(t, *restored);
  auto left = changer(t, 7).leave_joint();
  REQUIRE(left);
  CHECK(broken_invariant(*left) == "");
}

TEST_CASE("restore rejects an outgoing half without an incoming half") {
  CHECK(changer::restore({.voters_outgoing = {1, 2}}, 7, 16, 0).error() ==
        errc::invalid_conf_change);
}

TEST_CASE("restore rejects auto_leave outside a joint config") {
  CHECK(changer::restore({.voters = {1}, .auto_leave = true}, 7, 16, 0).error() ==
        errc::invalid_conf_change);
}

TEST_CASE("restore rejects node 0 as a member") {
  CHECK(changer::restore({.voters = {0, 1}}, 7, 16, 0).error() == errc::invalid_conf_change);
  CHECK(changer::restore({.voters = {1}, .voters_outgoing = {0, 1}}, 7, 16, 0).error() ==
        errc::invalid_conf_change);
  CHECK(changer::restore({.voters = {1}, .learners = {0}}, 7, 16, 0).error() ==
        errc::invalid_conf_change);
}

// ---- property -----------------------------------------------------------------------

TEST_CASE("random sequences of changes keep the tracker's invariants") {
  const std::uint64_t seed = 42;
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  progress_tracker t = tracker_from({.voters = {1, 2, 3}});
  for (int step = 0; step < 5000; ++step) {
    std::vector<conf_change_single> ccs(rng() % 4);
    for (auto& cc : ccs) {
      cc.type = static_cast<conf_change_type>(rng() % 3);
      cc.node = rng() % 7;
    }
    const changer c(t, last_index + static_cast<std::uint64_t>(step));
    result<membership> r = errc::invalid_conf_change;
    switch (rng() % 3) {
      case 0:
        r = c.simple(ccs);
        break;
      case 1:
        r = c.enter_joint(rng() % 2 == 0, ccs);
        break;
      default:
        r = c.leave_joint();
        break;
    }
    if (!r) continue;
    INFO("step " << step);
    REQUIRE(broken_invariant(*r) == "");
    REQUIRE_FALSE(r->config.voters.incoming.empty());
    apply(t, *r);
  }
}
