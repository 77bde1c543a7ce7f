// Applying membership changes to a progress tracker's configuration, the
// rules of joint consensus (Raft thesis 4.3) as etcd-io/raft's confchange:
//  - simple(): at most one voter added or removed, outside a joint config;
//  - enter_joint(): the current voters become the outgoing half, the changes
//    build the incoming half; a voter demoted to learner stays a voter of the
//    outgoing half until the joint config is left (learners_next);
//  - leave_joint(): drops the outgoing half and promotes learners_next.
// Every function works on a copy and returns it, or an error leaving the
// input untouched.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <utility>

#include "keel/raft/conf_change.hpp"
#include "keel/raft/tracker.hpp"

namespace keel::raft {

struct membership {
  tracker_config config{};
  progress_map progress{};
};

class changer {
 public:
  changer(const progress_tracker& tracker, std::uint64_t last_index)
      : tracker_(&tracker), last_index_(last_index) {}

  result<membership> enter_joint(bool auto_leave,
                                 const std::vector<conf_change_single>& ccs) const {
    membership m{tracker_->config, tracker_->progress};
    if (m.config.voters.joint()) return errc::invalid_conf_change;  // Already joint.
    if (m.config.voters.incoming.empty()) return errc::invalid_conf_change;
    m.config.voters.outgoing = m.config.voters.incoming;
    if (auto ec = apply(m, ccs)) return ec;
    m.config.auto_leave = auto_leave;
    return m;
  }

  result<membership> leave_joint() const {
    membership m{tracker_->config, tracker_->progress};
    if (!m.config.voters.joint()) return errc::invalid_conf_change;
    for (node_id id : m.config.learners_next) {
      m.config.learners.insert(id);
      m.progress.at(id).is_learner = true;
    }
    m.config.learners_next = {};
    for (node_id id : m.config.voters.outgoing) {
      if (!m.config.voters.incoming.contains(id) && !m.config.learners.contains(id)) {
        m.progress.erase(id);
      }
    }
    m.config.voters.outgoing = {};
    m.config.auto_leave = false;
    return m;
  }

  result<membership> simple(const std::vector<conf_change_single>& ccs) const {
    membership m{tracker_->config, tracker_->progress};
    if (m.config.voters.joint()) return errc::invalid_conf_change;
    if (auto ec = apply(m, ccs)) return ec;
    // More than one voter changing at once needs joint consensus.
    std::size_t changed = 0;
    for (node_id id : tracker_->config.voters.incoming)
      changed += !m.config.voters.incoming.contains(id);
    for (node_id id : m.config.voters.incoming)
      changed += !tracker_->config.voters.incoming.contains(id);
    if (changed > 1) return errc::invalid_conf_change;
    return m;
  }

  /// Builds the tracker state for a conf_state read from a snapshot or storage.
  static result<membership> restore(const conf_state& cs, std::uint64_t last_index,
                                    std::size_t max_inflight, std::uint64_t max_inflight_bytes) {
    membership m;
    m.config.voters.incoming = majority_config(cs.voters);
    m.config.voters.outgoing = majority_config(cs.voters_outgoing);
    m.config.learners = majority_config(cs.learners);
    m.config.learners_next = majority_config(cs.learners_next);
    m.config.auto_leave = cs.auto_leave;
    for (node_id id : m.config.learners) {
      if (id == no_node || m.config.voters.contains(id)) return errc::invalid_conf_change;
    }
    for (node_id id : m.config.learners_next) {
      // A staged learner is an outgoing voter that is neither an incoming
      // voter nor already a learner.
      if (!m.config.voters.outgoing.contains(id) || m.config.voters.incoming.contains(id) ||
          m.config.learners.contains(id)) {
        return errc::invalid_conf_change;
      }
    }
    if (m.config.voters.incoming.empty() && !m.config.voters.outgoing.empty()) {
      return errc::invalid_conf_change;
    }
    if (m.config.auto_leave && !m.config.voters.joint()) return errc::invalid_conf_change;
    auto add = [&](node_id id, bool learner) {
      m.progress.try_emplace(id, last_index + 1, max_inflight, max_inflight_bytes, learner);
    };
    for (node_id id : m.config.voters.ids()) {
      if (id == no_node) return errc::invalid_conf_change;
      add(id, false);
    }
    for (node_id id : m.config.learners) add(id, true);
    for (auto& [id, pr] : m.progress) pr.recent_active = true;
    return m;
  }

 private:
  std::error_code apply(membership& m, const std::vector<conf_change_single>& ccs) const {
    for (const auto& cc : ccs) {
      if (cc.node == no_node) continue;  // etcd ignores these as well.
      switch (cc.type) {
        case conf_change_type::add_node:
          make_voter(m, cc.node);
          break;
        case conf_change_type::add_learner:
          make_learner(m, cc.node);
          break;
        case conf_change_type::remove_node:
          remove(m, cc.node);
          break;
      }
    }
    if (m.config.voters.incoming.empty()) return errc::invalid_conf_change;  // Zero voters.
    return {};
  }

  void init_progress(membership& m, node_id id, bool learner) const {
    auto [it, _] = m.progress.try_emplace(id, last_index_ + 1, tracker_->max_inflight(),
                                          tracker_->max_inflight_bytes(), learner);
    // New members count as active so check-quorum does not depose the
    // leader before they had a chance to answer.
    it->second.recent_active = true;
  }

  void make_voter(membership& m, node_id id) const {
    auto it = m.progress.find(id);
    if (it == m.progress.end()) {
      init_progress(m, id, false);
    } else {
      it->second.is_learner = false;
    }
    m.config.learners.erase(id);
    m.config.learners_next.erase(id);
    m.config.voters.incoming.insert(id);
  }

  void make_learner(membership& m, node_id id) const {
    auto it = m.progress.find(id);
    if (it == m.progress.end()) {
      init_progress(m, id, true);
      m.config.learners.insert(id);
      return;
    }
    if (it->second.is_learner) return;
    m.config.voters.incoming.erase(id);
    m.config.learners.erase(id);
    m.config.learners_next.erase(id);
    // Still a voter of the outgoing half: becomes a learner when it is left.
    if (m.config.voters.outgoing.contains(id)) {
      m.config.learners_next.insert(id);
    } else {
      it->second.is_learner = true;
      m.config.learners.insert(id);
    }
  }

  void remove(membership& m, node_id id) const {
    if (!m.progress.contains(id)) return;
    m.config.voters.incoming.erase(id);
    m.config.learners.erase(id);
    m.config.learners_next.erase(id);
    // An outgoing voter keeps its progress until the joint config is left.
    if (!m.config.voters.outgoing.contains(id)) m.progress.erase(id);
  }

  const progress_tracker* tracker_;
  std::uint64_t last_index_{};
};

}  // namespace keel::raft
