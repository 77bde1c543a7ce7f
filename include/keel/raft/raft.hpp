// core: the Raft consensus state machine (Ongaro's thesis; etcd-io/raft's
// feature set): elections with pre-vote and check-quorum, log replication
// with per-peer flow control, snapshots, joint consensus and learners,
// leadership transfer and ReadIndex.
//
// It is pure: step(), tick() and the proposal calls only change memory and
// queue outgoing messages; it never blocks, reads a clock, touches a file or
// draws randomness except from its random policy. raw_node (raw_node.hpp)
// wraps it into the ready/advance interface that the node layer drives.
//
// Durability: the leader counts its own log towards a commit only after the
// node layer reported it durable (on_persisted), and replies that depend on
// the hard state or the log are marked after_persist, so a node may persist
// in parallel with sending (Raft thesis 10.2.1) without ever acknowledging
// what it could lose.
//
// Thread safety: none; one thread drives a raft at a time.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/raft/changer.hpp"
#include "keel/raft/conf_change.hpp"
#include "keel/raft/config.hpp"
#include "keel/raft/log.hpp"
#include "keel/raft/read_only.hpp"
#include "keel/raft/storage.hpp"
#include "keel/raft/tracker.hpp"
#include "keel/raft/types.hpp"

namespace keel::raft {

/// The context that marks an election forced by a leadership transfer:
/// voters grant it even while they believe in a live leader.
inline constexpr std::string_view campaign_transfer = "transfer";

/// A snapshot of a raft node's state for status reports.
struct status {
  node_id id = no_node;
  raft::hard_state hard_state{};
  raft::soft_state soft_state{};
  std::uint64_t applied = 0;
  node_id lead_transferee = no_node;
  raft::conf_state config{};
  /// Per-peer progress; filled on the leader only.
  progress_map progress{};
};

template <log_storage Storage, random_source Random = splitmix_random, logger Logger = null_logger>
class core {
 public:
  /// Checks a configuration before use; the error says which field is wrong.
  static std::error_code validate(const config& c) {
    if (c.id == no_node) return errc::invalid_argument;
    if (c.heartbeat_tick <= 0 || c.election_tick <= c.heartbeat_tick) return errc::invalid_argument;
    if (c.max_inflight_msgs == 0) return errc::invalid_argument;
    if (c.read_only == read_only_option::lease_based && !c.check_quorum) {
      return errc::invalid_argument;  // A lease without check-quorum is unsafe.
    }
    return {};
  }

  /// Requires: validate(c) succeeded and the storage's conf state is valid
  /// (raw_node::create checks both and reports errors).
  core(const config& c, const Storage& storage, Random random, Logger logger)
      : id_(c.id),
        log_(storage, c.max_committed_size_per_ready),
        tracker_(c.max_inflight_msgs, c.max_inflight_bytes),
        max_msg_size_(c.max_size_per_msg),
        max_uncommitted_size_(c.max_uncommitted_entries_size == 0 ? no_limit
                                                                  : c.max_uncommitted_entries_size),
        election_timeout_(c.election_tick),
        heartbeat_timeout_(c.heartbeat_tick),
        check_quorum_(c.check_quorum),
        pre_vote_(c.pre_vote),
        read_only_option_(c.read_only),
        disable_proposal_forwarding_(c.disable_proposal_forwarding),
        random_(std::move(random)),
        logger_(std::move(logger)) {
    const auto [hs, cs] = storage.initial_state();
    auto m = changer::restore(cs, log_.last_index(), c.max_inflight_msgs, c.max_inflight_bytes);
    assert(m && "invalid conf state in storage; raw_node::create reports this as an error");
    if (m) switch_to_config(std::move(m->config), std::move(m->progress));
    if (!hs.empty()) load_hard_state(hs);
    durable_term_ = term_;
    // The application says what it applied before the restart; anything
    // below the snapshot or above the commit index cannot be right, so clamp.
    if (c.applied > log_.applied()) log_.applied_to(std::min(c.applied, log_.committed()));
    become_follower(term_, no_node);
    trace(log_level::info, "started at term " + std::to_string(term_) + ", commit " +
                               std::to_string(log_.committed()) + ", last index " +
                               std::to_string(log_.last_index()));
  }

  // ---- inputs ------------------------------------------------------------

  /// Feeds one message (from a peer, or a local one built by raw_node).
  std::error_code step(message m) {
    if (m.term == 0) {
      // Local message (or a forwarded proposal / read, which carry no term).
    } else if (m.term > term_) {
      if (m.type == message_type::vote || m.type == message_type::pre_vote) {
        const bool force = m.context == campaign_transfer;
        const bool in_lease =
            check_quorum_ && lead_ != no_node && election_elapsed_ < election_timeout_;
        // A follower that hears from a live leader ignores disruptive
        // candidates (Raft thesis 4.2.3), unless leadership is being handed over.
        if (!force && in_lease) return {};
      }
      if (m.type == message_type::pre_vote) {
        // A pre-vote never changes our term.
      } else if (m.type == message_type::pre_vote_resp && !m.reject) {
        // Granted pre-votes carry the future term; we bump when we win.
      } else if (m.type == message_type::app || m.type == message_type::heartbeat ||
                 m.type == message_type::snap) {
        become_follower(m.term, m.from);
      } else {
        become_follower(m.term, no_node);
      }
    } else if (m.term < term_) {
      if ((check_quorum_ || pre_vote_) &&
          (m.type == message_type::heartbeat || m.type == message_type::app)) {
        // A deposed leader cut off by a partition: tell it our term so it
        // steps down, since our pre-votes and ignored votes cannot.
        send({.type = message_type::app_resp, .to = m.from});
      } else if (m.type == message_type::pre_vote) {
        send({.type = message_type::pre_vote_resp, .to = m.from, .term = term_, .reject = true});
      }
      return {};
    }

    switch (m.type) {
      case message_type::hup:
        hup(pre_vote_ ? campaign_kind::pre_election : campaign_kind::election);
        return {};
      case message_type::vote:
      case message_type::pre_vote:
        handle_vote_request(m);
        return {};
      default:
        break;
    }
    switch (state_) {
      case state_type::leader:
        return step_leader(std::move(m));
      case state_type::candidate:
      case state_type::pre_candidate:
        return step_candidate(std::move(m));
      case state_type::follower:
        return step_follower(std::move(m));
    }
    return {};
  }

  /// Advances the logical clock by one tick.
  void tick() {
    if (state_ == state_type::leader) {
      tick_heartbeat();
    } else {
      tick_election();
    }
  }

  /// The node layer made the log durable up to (index, term).
  void on_persisted(std::uint64_t index, std::uint64_t term) {
    log_.stable_to(index, term);
    if (state_ != state_type::leader) return;
    auto it = tracker_.progress.find(id_);
    if (it == tracker_.progress.end()) return;
    if (it->second.maybe_update(std::min(index, log_.last_stable_index())) && maybe_commit()) {
      on_commit_advanced();
    }
  }

  /// The hard state handed out in a ready is durable.
  void on_hard_state_persisted(const hard_state& hs) {
    durable_term_ = std::max(durable_term_, hs.term);
  }

  /// A snapshot handed out in a ready is durable.
  void on_snapshot_persisted(std::uint64_t index) { log_.stable_snap_to(index); }

  /// The application applied entries up to `index`.
  void on_applied(std::uint64_t index, std::uint64_t applied_payload_bytes) {
    log_.applied_to(index);
    if (state_ == state_type::leader) {
      uncommitted_size_ -= std::min(uncommitted_size_, applied_payload_bytes);
    }
    // Leave a joint configuration by ourselves once entering it is applied
    // (also as a new leader that inherited the joint configuration).
    if (tracker_.config.auto_leave && index >= pending_conf_index_ &&
        state_ == state_type::leader) {
      std::vector<entry> ents(1);
      ents[0].type = entry_type::conf_change;
      ents[0].data = encode(conf_change{});
      // The leave is protocol, not payload: it never counts against the limit.
      append_entry(std::move(ents), /*limited=*/false);
      pending_conf_index_ = log_.last_index();
      bcast_append();
    }
  }

  /// Applies a committed configuration change; returns the new configuration.
  result<conf_state> apply_conf_change(const conf_change& cc) {
    changer c(tracker_, log_.last_index());
    result<membership> m = cc.leaves_joint()   ? c.leave_joint()
                           : cc.enters_joint() ? c.enter_joint(cc.auto_leave(), cc.changes)
                                               : c.simple(cc.changes);
    if (!m) return m.error();
    return switch_to_config(std::move(m->config), std::move(m->progress));
  }

  // ---- outputs -------------------------------------------------------------

  /// Outgoing messages, including appends for proposals not yet sent.
  std::vector<message>& messages() {
    flush_proposals();
    return msgs_;
  }
  /// Whether messages() has anything to hand out.
  bool has_messages() const { return !msgs_.empty() || proposals_pending_; }

  /// Finishes the work that proposals defer so a burst of them is handled
  /// once: one append per follower, and a single voter's commit.
  void flush_proposals() {
    if (!proposals_pending_) return;
    proposals_pending_ = false;
    if (state_ != state_type::leader) return;
    commit_alone();
    for (const auto& [id, pr] : tracker_.progress) {
      if (id != id_) maybe_send_append(id, false);
    }
  }
  std::vector<read_state>& read_states() { return read_states_; }
  const std::vector<read_state>& read_states_view() const { return read_states_; }
  raft_log<Storage>& log() { return log_; }
  const raft_log<Storage>& log() const { return log_; }

  // ---- observers -------------------------------------------------------------

  node_id id() const { return id_; }
  std::uint64_t term() const { return term_; }
  node_id vote() const { return vote_; }
  node_id lead() const { return lead_; }
  state_type state() const { return state_; }
  bool is_learner() const { return is_learner_; }
  node_id lead_transferee() const { return lead_transferee_; }
  std::uint64_t pending_conf_index() const { return pending_conf_index_; }
  std::uint64_t uncommitted_size() const { return uncommitted_size_; }
  const progress_tracker& tracker() const { return tracker_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  int election_elapsed() const { return election_elapsed_; }

  hard_state hard_state_now() const { return {term_, vote_, log_.committed()}; }
  soft_state soft_state_now() const { return {lead_, state_}; }

  raft::status status() const {
    raft::status s{.id = id_,
                   .hard_state = hard_state_now(),
                   .soft_state = soft_state_now(),
                   .applied = log_.applied(),
                   .lead_transferee = lead_transferee_,
                   .config = tracker_.conf_state(),
                   .progress = {}};
    if (state_ == state_type::leader) s.progress = tracker_.progress;
    return s;
  }

  // Test hooks (etcd's tests do the same): force states directly.
  void become_follower(std::uint64_t term, node_id lead) {
    reset(term);
    lead_ = lead;
    state_ = state_type::follower;
  }

  void become_candidate() {
    assert(state_ != state_type::leader && "a leader cannot become a candidate");
    reset(term_ + 1);
    vote_ = id_;
    state_ = state_type::candidate;
    trace(log_level::info, "became candidate at term " + std::to_string(term_));
  }

  void become_pre_candidate() {
    assert(state_ != state_type::leader && "a leader cannot become a pre-candidate");
    // Neither the term nor the vote change: a pre-election is invisible to
    // everybody who does not take part.
    tracker_.reset_votes();
    lead_ = no_node;
    state_ = state_type::pre_candidate;
  }

  void become_leader() {
    assert(state_ != state_type::follower && "a follower must campaign first");
    reset(term_);
    lead_ = id_;
    state_ = state_type::leader;
    if (auto it = tracker_.progress.find(id_); it != tracker_.progress.end()) {
      it->second.become_replicate();
      it->second.recent_active = true;
    }
    // Conservatively treat everything in the log as possibly a conf change.
    pending_conf_index_ = log_.last_index();
    // The no-op of the new term: entries of older terms commit through it.
    std::vector<entry> noop(1);
    append_entry(std::move(noop));
    // The no-op does not count against the uncommitted limit.
    uncommitted_size_ = 0;
    commit_alone();
    trace(log_level::info, "became leader at term " + std::to_string(term_));
  }

  /// Proposes entries as the leader would (test hook; raw_node uses step).
  bool append_entry(std::vector<entry>&& ents, bool limited = true) {
    std::uint64_t li = log_.last_index();
    std::uint64_t bytes = 0;
    for (entry& e : ents) {
      e.term = term_;
      e.index = ++li;
      bytes += payload_size(e);
    }
    if (!limited) {
      bytes = 0;
    } else if (uncommitted_size_ > 0 && bytes > 0 &&
               uncommitted_size_ + bytes > max_uncommitted_size_) {
      return false;
    }
    uncommitted_size_ += bytes;
    log_.append_owned(std::move(ents));
    return true;
  }

 private:
  enum class campaign_kind { pre_election, election, transfer };

  void trace(log_level level, const std::string& line) {
    if (logger_.enabled(level)) logger_.log(level, std::to_string(id_) + ": " + line);
  }

  void reset(std::uint64_t term) {
    if (term_ != term) {
      term_ = term;
      vote_ = no_node;
    }
    lead_ = no_node;
    election_elapsed_ = 0;
    heartbeat_elapsed_ = 0;
    reset_randomized_election_timeout();
    lead_transferee_ = no_node;
    tracker_.reset_votes();
    const std::uint64_t last = log_.last_index();
    for (auto& [id, pr] : tracker_.progress) {
      const bool learner = pr.is_learner;
      pr = progress(last + 1, tracker_.max_inflight(), tracker_.max_inflight_bytes(), learner);
      if (id == id_) pr.match = log_.last_stable_index();
    }
    pending_conf_index_ = 0;
    uncommitted_size_ = 0;
    read_only_.clear();
    pending_read_index_messages_.clear();
  }

  void reset_randomized_election_timeout() {
    randomized_election_timeout_ =
        election_timeout_ +
        static_cast<int>(random_.next() % static_cast<std::uint64_t>(election_timeout_));
  }

  void load_hard_state(const hard_state& hs) {
    log_.set_committed(std::clamp(hs.commit, log_.committed(), log_.last_index()));
    term_ = hs.term;
    vote_ = hs.vote;
  }

  bool promotable() const {
    auto it = tracker_.progress.find(id_);
    return it != tracker_.progress.end() && !it->second.is_learner &&
           !log_.unstable_snapshot().has_value();
  }

  void send(message&& m) {
    // Forwarded proposals and transfers keep their originator.
    if (m.from == no_node) m.from = id_;
    if (m.type == message_type::vote || m.type == message_type::vote_resp ||
        m.type == message_type::pre_vote || m.type == message_type::pre_vote_resp) {
      assert(m.term != 0 && "campaign messages carry their term explicitly");
    } else if (m.type != message_type::prop && m.type != message_type::read_index) {
      // Proposals and reads forwarded to the leader carry no term: they are
      // not part of the protocol and must not disturb anyone's term.
      m.term = term_;
    }
    switch (m.type) {
      case message_type::app:
      case message_type::heartbeat:
      case message_type::snap:
      case message_type::timeout_now:
      case message_type::pre_vote:
      case message_type::prop:
      case message_type::read_index:
      case message_type::read_index_resp:
      case message_type::transfer_leader:
        // Carry only what the sender already had durably or nothing durable at all.
        m.after_persist = false;
        break;
      default:
        // Votes and acknowledgements speak for our term, vote and log.
        m.after_persist = true;
        break;
    }
    // Nothing may carry a term we could forget in a crash (a lone voter
    // becomes leader before its new term is durable).
    if (m.term > durable_term_ && m.type != message_type::pre_vote &&
        m.type != message_type::pre_vote_resp) {
      m.after_persist = true;  // Pre-vote terms are hypothetical, never persisted.
    }
    msgs_.push_back(std::move(m));
  }

  // ---- leader: sending ------------------------------------------------------

  /// Sends an append (or a snapshot) to `to` if its progress allows;
  /// returns whether a message went out.
  bool maybe_send_append(node_id to, bool send_if_empty) {
    auto it = tracker_.progress.find(to);
    if (it == tracker_.progress.end()) return false;
    progress& pr = it->second;
    if (pr.is_paused()) return false;

    const std::uint64_t prev_index = pr.next - 1;
    auto prev_term = log_.term(prev_index);
    auto ents = log_.entries_from(pr.next, max_msg_size_);
    if (ents && ents->empty() && !send_if_empty) return false;

    if (!prev_term || !ents) {
      // The follower needs entries that were compacted away.
      if (!pr.recent_active) return false;  // Do not ship a snapshot to a node that is down.
      auto snap = log_.snapshot();
      if (!snap || snap->empty()) return false;  // Temporarily unavailable: retry later.
      const std::uint64_t snap_index = snap->metadata.index;
      pr.become_snapshot(snap_index);
      send({.type = message_type::snap, .to = to, .snapshot = std::move(*snap)});
      trace(log_level::info,
            "sending snapshot at " + std::to_string(snap_index) + " to " + std::to_string(to));
      return true;
    }

    std::uint64_t bytes = 0;
    for (const entry& e : *ents) bytes += payload_size(e);
    const std::uint64_t last = ents->empty() ? prev_index : ents->back().index;
    pr.sent_entries(last, bytes);
    send({.type = message_type::app,
          .to = to,
          .log_term = *prev_term,
          .index = prev_index,
          .entries = std::move(*ents),
          .commit = log_.committed()});
    return true;
  }

  void send_append(node_id to) { maybe_send_append(to, true); }

  void bcast_append() {
    for (const auto& [id, pr] : tracker_.progress) {
      if (id != id_) send_append(id);
    }
  }

  void send_heartbeat(node_id to, const std::string& ctx) {
    const progress& pr = tracker_.progress.at(to);
    // Never tell a follower to commit beyond what it is known to hold.
    send({.type = message_type::heartbeat,
          .to = to,
          .commit = std::min(pr.match, log_.committed()),
          .context = ctx});
  }

  void bcast_heartbeat(const std::string& ctx) {
    for (const auto& [id, pr] : tracker_.progress) {
      if (id != id_) send_heartbeat(id, ctx);
    }
  }

  bool maybe_commit() { return log_.maybe_commit(tracker_.committed(), term_); }

  /// A lone node commits what it appends in the same ready: the node
  /// layer applies committed entries only after persisting that ready's
  /// entries, so nothing becomes visible before it is durable, and there is
  /// no peer that could act on the commit earlier. With peers the leader
  /// waits for its own disk (on_persisted), see the file comment.
  void commit_alone() {
    // Learners would see the commit before it is durable: only a node with
    // no other member at all may commit alone.
    if (state_ != state_type::leader || tracker_.progress.size() != 1) return;
    auto it = tracker_.progress.find(id_);
    if (it == tracker_.progress.end()) return;
    if (it->second.maybe_update(log_.last_index()) && maybe_commit()) {
      release_pending_read_index_messages();
    }
  }

  void on_commit_advanced() {
    release_pending_read_index_messages();
    bcast_append();
  }

  bool committed_entry_in_current_term() const {
    return log_.term_or_zero(log_.committed()) == term_;
  }

  // ---- ticks -----------------------------------------------------------------

  void tick_election() {
    ++election_elapsed_;
    if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
      election_elapsed_ = 0;
      step({.type = message_type::hup, .from = id_});
    }
  }

  void tick_heartbeat() {
    ++heartbeat_elapsed_;
    ++election_elapsed_;
    if (election_elapsed_ >= election_timeout_) {
      election_elapsed_ = 0;
      if (check_quorum_) step({.type = message_type::check_quorum, .from = id_});
      // A transfer that did not finish within an election timeout is abandoned.
      if (state_ == state_type::leader) lead_transferee_ = no_node;
      // ... unless we must hand over: try again.
      if (state_ == state_type::leader && !is_voter()) hand_over_leadership();
    }
    if (state_ != state_type::leader) return;
    if (heartbeat_elapsed_ >= heartbeat_timeout_) {
      heartbeat_elapsed_ = 0;
      step({.type = message_type::beat, .from = id_});
    }
  }

  // ---- elections -------------------------------------------------------------

  void hup(campaign_kind kind) {
    if (state_ == state_type::leader) return;
    if (!promotable()) return;
    if (has_unapplied_conf_change()) {
      // Campaigning could produce a leader with a stale configuration.
      trace(log_level::warn, "not campaigning: a committed configuration change is unapplied");
      return;
    }
    campaign(kind);
  }

  bool has_unapplied_conf_change() const {
    const std::uint64_t lo = log_.applied() + 1, hi = log_.committed() + 1;
    if (lo >= hi) return false;
    auto ents = log_.slice(std::max(lo, log_.first_index()), hi, no_limit);
    if (!ents) return false;
    return std::any_of(ents->begin(), ents->end(),
                       [](const entry& e) { return e.type == entry_type::conf_change; });
  }

  void campaign(campaign_kind kind) {
    std::uint64_t term = 0;
    message_type type = message_type::vote;
    if (kind == campaign_kind::pre_election) {
      become_pre_candidate();
      type = message_type::pre_vote;
      // Pre-votes ask for the term we would campaign in.
      term = term_ + 1;
    } else {
      become_candidate();
      term = term_;
    }
    tracker_.record_vote(id_, true);
    if (tracker_.tally_votes().result == vote_result::won) {
      // A single voter wins at once.
      if (kind == campaign_kind::pre_election) {
        campaign(campaign_kind::election);
      } else {
        become_leader();
        bcast_append();  // Learners, if any, hear of the new term at once.
      }
      return;
    }
    for (node_id id : tracker_.voter_nodes()) {
      if (id == id_) continue;
      send({.type = type,
            .to = id,
            .term = term,
            .log_term = log_.last_term(),
            .index = log_.last_index(),
            .commit = log_.committed(),
            .context =
                kind == campaign_kind::transfer ? std::string(campaign_transfer) : std::string()});
    }
  }

  void handle_vote_request(const message& m) {
    // We can vote for m.from if we already did, if we have no vote and know
    // no leader in this term, or for a pre-vote of a future term.
    const bool can_vote = vote_ == m.from || (vote_ == no_node && lead_ == no_node) ||
                          (m.type == message_type::pre_vote && m.term > term_);
    const message_type resp =
        m.type == message_type::vote ? message_type::vote_resp : message_type::pre_vote_resp;
    if (can_vote && log_.is_up_to_date(m.index, m.log_term)) {
      // Answer with the candidate's term: a pre-vote answer must be
      // recognised by a pre-candidate whose own term is still lower.
      send({.type = resp, .to = m.from, .term = m.term});
      if (m.type == message_type::vote) {
        election_elapsed_ = 0;
        vote_ = m.from;
      }
    } else if (term_ != 0) {
      send({.type = resp, .to = m.from, .term = term_, .reject = true});
    }
    // A node at term 0 has no term to refuse with; the candidate times out.
  }

  // ---- per-state step functions ----------------------------------------------

  std::error_code step_leader(message&& m) {
    switch (m.type) {
      case message_type::beat:
        // Carry the newest pending read's context, so reads whose heartbeat
        // round was lost are confirmed by the next one.
        bcast_heartbeat(read_only_.last_pending());
        return {};
      case message_type::check_quorum:
        if (!tracker_.quorum_active()) {
          trace(log_level::warn,
                "stepping down: no quorum was active in the last election timeout");
          become_follower(term_, no_node);
        }
        for (auto& [id, pr] : tracker_.progress) pr.recent_active = id == id_;
        return {};
      case message_type::prop:
        return leader_propose(std::move(m));
      case message_type::read_index:
        return leader_read_index(std::move(m));
      default:
        break;
    }

    auto it = tracker_.progress.find(m.from);
    if (it == tracker_.progress.end()) return {};
    progress& pr = it->second;
    switch (m.type) {
      case message_type::app_resp:
        handle_append_response(m, pr);
        break;
      case message_type::heartbeat_resp:
        pr.recent_active = true;
        pr.probe_sent = false;
        // The follower is alive: if its window is full its acks were lost,
        // so free one slot or replication would stall forever.
        if (pr.state == progress_state::replicate && pr.inflights.full()) {
          pr.inflights.free_first_one();
        }
        if (pr.match < log_.last_index()) send_append(m.from);
        if (read_only_option_ == read_only_option::safe && !m.context.empty()) {
          handle_read_ack(m);
        }
        break;
      case message_type::snap_status:
        if (pr.state != progress_state::snapshot) break;
        if (m.reject) pr.pending_snapshot = 0;  // Failed: probe from where the follower was.
        pr.become_probe();
        // Wait for a heartbeat response before probing again.
        pr.probe_sent = true;
        break;
      case message_type::unreachable:
        // Optimistic sends were likely lost; probe again.
        if (pr.state == progress_state::replicate) pr.become_probe();
        break;
      case message_type::transfer_leader:
        handle_transfer_leader(m, pr);
        break;
      default:
        break;
    }
    return {};
  }

  std::error_code leader_propose(message&& m) {
    if (m.entries.empty()) return errc::invalid_message;
    if (!tracker_.progress.contains(id_) || is_learner_) {
      // Removed or demoted: we lead only until a voter takes over.
      return errc::proposal_dropped;
    }
    if (lead_transferee_ != no_node) return errc::transfer_in_progress;

    std::uint64_t pending_conf = pending_conf_index_;
    for (std::size_t i = 0; i < m.entries.size(); ++i) {
      entry& e = m.entries[i];
      if (e.type != entry_type::conf_change) continue;
      auto cc = decode_conf_change(e.data);
      std::error_code refused;
      if (!cc) {
        refused = errc::invalid_conf_change;
      } else if (pending_conf > log_.applied()) {
        refused = errc::pending_conf_change;
      } else {
        const bool joint = tracker_.config.voters.joint();
        if (joint != cc->leaves_joint()) refused = errc::invalid_conf_change;
      }
      if (refused) {
        if (m.entries.size() == 1) return refused;
        // In a batch, neutralise the change so the rest still goes through.
        e = entry{};
      } else {
        pending_conf = log_.last_index() + i + 1;
      }
    }
    if (!append_entry(std::move(m.entries))) return errc::proposal_dropped;
    // Only now: a dropped proposal must not block the next conf change.
    pending_conf_index_ = pending_conf;
    // Appends (and a single voter's commit) happen when the ready is
    // collected, so a burst of proposals travels in one append per follower.
    proposals_pending_ = true;
    return {};
  }

  std::error_code leader_read_index(message&& m) {
    if (tracker_.is_singleton()) {
      answer_read(m, log_.committed());
      return {};
    }
    // Until an entry of our term commits we do not know the real commit index.
    if (!committed_entry_in_current_term()) {
      pending_read_index_messages_.push_back(std::move(m));
      return {};
    }
    send_read_index_response(std::move(m));
    return {};
  }

  void send_read_index_response(message&& m) {
    switch (read_only_option_) {
      case read_only_option::safe: {
        std::string ctx = m.entries.front().data.str();
        read_only_.add(log_.committed(), std::move(m));
        read_only_.ack(id_, ctx);
        bcast_heartbeat(ctx);
        break;
      }
      case read_only_option::lease_based:
        answer_read(m, log_.committed());
        break;
    }
  }

  void handle_read_ack(const message& m) {
    const auto* acks = read_only_.ack(m.from, m.context);
    if (acks == nullptr) return;
    const auto result = tracker_.config.voters.result(
        [acks](node_id id) -> int { return acks->contains(id) ? 1 : -1; });
    if (result != vote_result::won) return;
    for (auto& req : read_only_.advance(m.context)) answer_read(req.req, req.index);
  }

  void answer_read(const message& req, std::uint64_t index) {
    std::string ctx = req.entries.empty() ? std::string() : req.entries.front().data.str();
    if (req.from == no_node || req.from == id_) {
      read_states_.push_back({index, std::move(ctx)});
      return;
    }
    message resp{.type = message_type::read_index_resp, .to = req.from, .index = index};
    resp.entries.push_back(entry{.data = bytes(ctx)});
    send(std::move(resp));
  }

  void release_pending_read_index_messages() {
    if (pending_read_index_messages_.empty() || !committed_entry_in_current_term()) return;
    auto pending = std::move(pending_read_index_messages_);
    pending_read_index_messages_.clear();
    for (auto& m : pending) send_read_index_response(std::move(m));
  }

  void handle_append_response(const message& m, progress& pr) {
    pr.recent_active = true;
    // An acknowledgement beyond our log is from a confused or hostile peer.
    if (!m.reject && m.index > log_.last_index()) return;
    if (m.reject) {
      // Fast backtracking: the follower told us where its log may match;
      // skip every entry of ours whose term cannot be there.
      std::uint64_t next_probe = m.reject_hint;
      if (m.log_term > 0) next_probe = log_.find_conflict_by_term(m.reject_hint, m.log_term).first;
      if (pr.maybe_decrease_to(m.index, next_probe)) {
        if (pr.state == progress_state::replicate) pr.become_probe();
        send_append(m.from);
      }
      return;
    }
    const bool was_paused = pr.is_paused();
    if (!pr.maybe_update(m.index)) return;
    switch (pr.state) {
      case progress_state::probe:
        pr.become_replicate();
        break;
      case progress_state::snapshot:
        // The follower caught up past the snapshot (or installed it).
        if (pr.match + 1 >= log_.first_index()) {
          pr.become_probe();
          pr.become_replicate();
        }
        break;
      case progress_state::replicate:
        pr.inflights.free_le(m.index);
        break;
    }
    if (maybe_commit()) {
      on_commit_advanced();
    } else if (was_paused) {
      send_append(m.from);
    }
    // Fill the window while it has room and there is something to send.
    while (maybe_send_append(m.from, false)) {
    }
    if (m.from == lead_transferee_ && pr.match == log_.last_index()) {
      send({.type = message_type::timeout_now, .to = m.from});
    }
  }

  /// A leader that is no longer a voter asks the most up-to-date voter to
  /// take over (retried every election timeout until one does).
  void hand_over_leadership() {
    node_id best = no_node;
    std::uint64_t best_match = 0;
    for (node_id id : tracker_.config.voters.ids()) {
      if (id == id_) continue;
      const progress& pr = tracker_.progress.at(id);
      if (best == no_node || pr.match > best_match) best = id, best_match = pr.match;
    }
    if (best == no_node) return;
    message m{.type = message_type::transfer_leader, .from = best};
    handle_transfer_leader(m, tracker_.progress.at(best));
  }

  bool is_voter() const { return tracker_.config.voters.contains(id_); }

  void handle_transfer_leader(const message& m, progress& pr) {
    if (pr.is_learner) return;
    const node_id transferee = m.from;
    if (lead_transferee_ != no_node) {
      if (lead_transferee_ == transferee) return;  // Already under way.
      lead_transferee_ = no_node;                  // A new target replaces the old one.
    }
    if (transferee == id_) return;
    election_elapsed_ = 0;  // The transfer must finish within one election timeout.
    lead_transferee_ = transferee;
    if (pr.match == log_.last_index()) {
      send({.type = message_type::timeout_now, .to = transferee});
    } else {
      send_append(transferee);
    }
  }

  std::error_code step_candidate(message&& m) {
    const message_type my_resp =
        state_ == state_type::pre_candidate ? message_type::pre_vote_resp : message_type::vote_resp;
    switch (m.type) {
      case message_type::prop:
        return errc::proposal_dropped;
      case message_type::app:
        become_follower(m.term, m.from);
        handle_append(std::move(m));
        return {};
      case message_type::heartbeat:
        become_follower(m.term, m.from);
        handle_heartbeat(m);
        return {};
      case message_type::snap:
        become_follower(m.term, m.from);
        handle_snapshot(std::move(m));
        return {};
      default:
        break;
    }
    if (m.type != my_resp) return {};
    tracker_.record_vote(m.from, !m.reject);
    switch (tracker_.tally_votes().result) {
      case vote_result::won:
        if (state_ == state_type::pre_candidate) {
          campaign(campaign_kind::election);
        } else {
          become_leader();
          bcast_append();
        }
        break;
      case vote_result::lost:
        // Pre-candidates keep their term; candidates already moved to theirs.
        become_follower(term_, no_node);
        break;
      case vote_result::pending:
        break;
    }
    return {};
  }

  std::error_code step_follower(message&& m) {
    switch (m.type) {
      case message_type::prop:
        if (lead_ == no_node || disable_proposal_forwarding_) return errc::proposal_dropped;
        m.to = lead_;
        send(std::move(m));
        return {};
      case message_type::app:
        election_elapsed_ = 0;
        lead_ = m.from;
        handle_append(std::move(m));
        return {};
      case message_type::heartbeat:
        election_elapsed_ = 0;
        lead_ = m.from;
        handle_heartbeat(m);
        return {};
      case message_type::snap:
        election_elapsed_ = 0;
        lead_ = m.from;
        handle_snapshot(std::move(m));
        return {};
      case message_type::transfer_leader:
        if (lead_ == no_node) return errc::proposal_dropped;
        m.to = lead_;
        send(std::move(m));
        return {};
      case message_type::timeout_now:
        // Campaign at once, even inside a leader's lease: the leader asked.
        if (promotable()) hup(campaign_kind::transfer);
        return {};
      case message_type::read_index:
        if (lead_ == no_node) return errc::proposal_dropped;
        m.to = lead_;
        send(std::move(m));
        return {};
      case message_type::read_index_resp:
        if (m.entries.size() != 1) return errc::invalid_message;
        read_states_.push_back({m.index, m.entries.front().data.str()});
        return {};
      default:
        return {};
    }
  }

  void handle_append(message&& m) {
    if (m.index < log_.committed()) {
      send({.type = message_type::app_resp, .to = m.from, .index = log_.committed()});
      return;
    }
    if (auto last_new = log_.maybe_append(m.index, m.log_term, m.commit, std::move(m.entries))) {
      send({.type = message_type::app_resp, .to = m.from, .index = *last_new});
      return;
    }
    // Mismatch: hint the leader at the last index whose term is <= the
    // term it probed with, so it can skip whole terms (etcd's fast backtrack).
    const std::uint64_t hint = std::min(m.index, log_.last_index());
    const auto [hint_index, hint_term] = log_.find_conflict_by_term(hint, m.log_term);
    send({.type = message_type::app_resp,
          .to = m.from,
          .log_term = hint_term,
          .index = m.index,
          .reject = true,
          .reject_hint = hint_index});
  }

  void handle_heartbeat(const message& m) {
    log_.commit_to(m.commit);
    send({.type = message_type::heartbeat_resp, .to = m.from, .context = m.context});
  }

  void handle_snapshot(message&& m) {
    const std::uint64_t index = m.snapshot->metadata.index;
    if (restore(std::move(*m.snapshot))) {
      trace(log_level::info, "installed snapshot at " + std::to_string(index));
      send({.type = message_type::app_resp, .to = m.from, .index = log_.last_index()});
    } else {
      send({.type = message_type::app_resp, .to = m.from, .index = log_.committed()});
    }
  }

  /// Installs a snapshot received from the leader; false if it was useless.
  bool restore(snapshot s) {
    if (s.metadata.index <= log_.committed()) return false;
    const conf_state& cs = s.metadata.conf;
    const bool member = std::ranges::find(cs.voters, id_) != cs.voters.end() ||
                        std::ranges::find(cs.learners, id_) != cs.learners.end() ||
                        std::ranges::find(cs.voters_outgoing, id_) != cs.voters_outgoing.end();
    // A snapshot whose configuration does not include us cannot be right.
    if (!member) return false;
    if (log_.match_term(s.metadata.index, s.metadata.term)) {
      // We already have the log up to the snapshot: just commit it.
      log_.commit_to(s.metadata.index);
      return false;
    }
    auto m = changer::restore(cs, s.metadata.index, tracker_.max_inflight(),
                              tracker_.max_inflight_bytes());
    if (!m) return false;  // An invalid configuration in a snapshot: refuse it.
    log_.restore(std::move(s));
    switch_to_config(std::move(m->config), std::move(m->progress));
    return true;
  }

  conf_state switch_to_config(tracker_config cfg, progress_map prs) {
    tracker_.config = std::move(cfg);
    tracker_.progress = std::move(prs);
    conf_state cs = tracker_.conf_state();
    auto self = tracker_.progress.find(id_);
    is_learner_ = self != tracker_.progress.end() && self->second.is_learner;
    if ((self == tracker_.progress.end() || is_learner_) && state_ == state_type::leader) {
      // Removed or demoted while leading. Stepping down at once could strand
      // the voters: if the append carrying the commit is lost they still
      // need our vote and we can no longer campaign. Keep leading (as
      // etcd-io/raft does) and hand leadership to an up-to-date voter.
      hand_over_leadership();
      return cs;
    }
    if (state_ != state_type::leader || cs.voters.empty()) return cs;
    // The quorum changed: the commit index may move, and new members need appends.
    if (maybe_commit()) {
      on_commit_advanced();
    } else {
      for (const auto& [id, pr] : tracker_.progress) {
        if (id != id_) maybe_send_append(id, false);
      }
    }
    if (lead_transferee_ != no_node && !tracker_.config.voters.contains(lead_transferee_)) {
      lead_transferee_ = no_node;
    }
    return cs;
  }

  node_id id_;
  std::uint64_t term_ = 0;
  node_id vote_ = no_node;
  raft_log<Storage> log_;
  progress_tracker tracker_;
  state_type state_ = state_type::follower;
  bool is_learner_ = false;
  std::vector<message> msgs_{};
  bool proposals_pending_ = false;
  std::vector<read_state> read_states_{};
  node_id lead_ = no_node;
  node_id lead_transferee_ = no_node;
  std::uint64_t pending_conf_index_ = 0;
  std::uint64_t durable_term_ = 0;
  std::uint64_t uncommitted_size_ = 0;
  read_only read_only_;
  std::vector<message> pending_read_index_messages_{};
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::uint64_t max_msg_size_{};
  std::uint64_t max_uncommitted_size_{};
  int election_timeout_;
  int heartbeat_timeout_;
  bool check_quorum_;
  bool pre_vote_;
  read_only_option read_only_option_;
  bool disable_proposal_forwarding_;
  Random random_;
  Logger logger_;
};

}  // namespace keel::raft
