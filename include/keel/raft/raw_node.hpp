// raw_node: the interface the node layer drives, as etcd-io/raft's RawNode.
// Inputs go in (tick, step, propose, ...); whenever has_ready() is true the
// caller takes a ready, acts on it, and calls advance():
//
//   1. persist ready.hard_state, ready.entries and ready.snapshot (in that
//      storage's own order; a snapshot replaces the log before entries append);
//   2. send ready.messages; those without after_persist may be sent before or
//      during step 1, the others only after it completed;
//   3. apply ready.committed_entries and, for conf_change entries, call
//      apply_conf_change(); an entry may be applied before step 1 only if
//      it is already durable in this node's log (a quorum holds it);
//   4. call advance().
//
// A snapshot message hands the node layer a snapshot whose data is a handle;
// after sending it the node layer reports report_snapshot(to, status).
//
// Thread safety: none; one thread drives a raw_node at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/raft/raft.hpp"

namespace keel::raft {

/// Everything raft needs the node layer to do, in one batch.
struct ready {
  /// Set when leader or role changed; volatile, never persisted.
  std::optional<raft::soft_state> soft_state{};
  /// Set when term, vote or commit changed; persist before after_persist messages go out.
  std::optional<raft::hard_state> hard_state{};
  /// Answers to read_index requests whose index the state machine must reach first.
  std::vector<read_state> read_states{};
  /// New log entries to append to storage.
  std::vector<entry> entries{};
  /// A snapshot received from the leader, to install and persist.
  std::optional<raft::snapshot> snapshot{};
  /// Entries to apply to the state machine, in order.
  std::vector<entry> committed_entries{};
  /// Messages to send; see message::after_persist.
  std::vector<message> messages{};

  /// Whether persisting this ready needs an fsync: new entries, or a changed
  /// term or vote (a commit index alone may be lost and relearned).
  bool must_sync(const raft::hard_state& previous) const {
    return !entries.empty() ||
           (hard_state && (hard_state->term != previous.term || hard_state->vote != previous.vote));
  }
};

enum class snapshot_status : std::uint8_t { finished, failed };

template <log_storage Storage, random_source Random = splitmix_random, logger Logger = null_logger>
class raw_node {
 public:
  using core_type = core<Storage, Random, Logger>;

  /// Builds a node over `storage`, which must outlive it. Fails with
  /// errc::invalid_argument for a bad config and errc::invalid_conf_change if
  /// the stored configuration is inconsistent.
  static result<raw_node> create(const config& c, const Storage& storage, Random random,
                                 Logger logger = Logger{}) {
    if (auto ec = core_type::validate(c)) return ec;
    auto init = storage.initial_state();
    if (auto m = changer::restore(init.conf_state, storage.last_index(), c.max_inflight_msgs,
                                  c.max_inflight_bytes);
        !m) {
      return m.error();
    }
    if (init.hard_state.commit > storage.last_index()) return errc::index_out_of_range;
    return raw_node(c, storage, std::move(random), std::move(logger));
  }

  static result<raw_node> create(const config& c, const Storage& storage) {
    return create(c, storage, Random(c.id));
  }

  void tick() { raft_.tick(); }

  /// Starts an election now (the node must be a voter).
  void campaign() { (void)raft_.step({.type = message_type::hup, .from = raft_.id()}); }

  /// Proposes data to be appended to the log. A follower forwards it to the
  /// leader; errc::proposal_dropped if there is none to take it.
  std::error_code propose(bytes data) {
    message m{.type = message_type::prop, .from = raft_.id()};
    m.entries.push_back(entry{.data = std::move(data)});
    return raft_.step(std::move(m));
  }

  /// Proposes a membership change (applied by apply_conf_change once committed).
  std::error_code propose_conf_change(const conf_change& cc) {
    message m{.type = message_type::prop, .from = raft_.id()};
    m.entries.push_back(entry{.type = entry_type::conf_change, .data = encode(cc)});
    return raft_.step(std::move(m));
  }

  /// Applies a committed conf_change entry's change; returns the new membership.
  result<conf_state> apply_conf_change(const conf_change& cc) {
    return raft_.apply_conf_change(cc);
  }

  /// Feeds a message received from a peer. Anything malformed, local-only or
  /// from an unknown peer is rejected with an error and changes nothing.
  std::error_code step(message m) {
    if (auto ec = validate(m)) return ec;
    return raft_.step(std::move(m));
  }

  /// Requests a linearizable read; answered by a read_state with this
  /// context. The context must be non-empty (errc::invalid_argument) and
  /// unique among pending reads: reads with equal contexts are answered once.
  std::error_code read_index(std::string ctx) {
    if (ctx.empty()) return errc::invalid_argument;
    message m{.type = message_type::read_index, .from = raft_.id()};
    m.entries.push_back(entry{.data = bytes(ctx)});
    return raft_.step(std::move(m));
  }

  /// Asks the leader to hand leadership to `transferee`.
  std::error_code transfer_leadership(node_id transferee) {
    return raft_.step({.type = message_type::transfer_leader, .from = transferee});
  }

  /// The transport could not deliver to `id`.
  void report_unreachable(node_id id) {
    (void)raft_.step({.type = message_type::unreachable, .from = id});
  }

  /// The outcome of sending a snapshot to `id`.
  void report_snapshot(node_id id, snapshot_status s) {
    (void)raft_.step(
        {.type = message_type::snap_status, .from = id, .reject = s == snapshot_status::failed});
  }

  bool has_ready() const {
    if (in_flight_) return false;  // One batch at a time.
    const auto& log = raft_.log();
    return raft_.soft_state_now() != prev_soft_ ||
           (!(raft_.hard_state_now() == prev_hard_) && !raft_.hard_state_now().empty()) ||
           log.unstable_snapshot().has_value() || raft_.has_messages() ||
           !log.unstable_entries().empty() || log.has_next_committed() ||
           !raft_.read_states_view().empty();
  }

  /// Takes the pending work. While a ready is out (not yet advanced) this
  /// returns an empty ready: one batch at a time.
  raft::ready ready() {
    if (in_flight_) return {};
    raft_.flush_proposals();
    raft::ready rd;
    auto& log = raft_.log();
    rd.entries = log.unstable_entries();
    rd.committed_entries = log.next_committed();
    if (const auto& snap = log.unstable_snapshot()) rd.snapshot = *snap;
    auto& msgs = raft_.messages();
    rd.messages = std::move(msgs);
    msgs.clear();
    // The next ready likely carries as many: one allocation instead of regrowth.
    msgs.reserve(rd.messages.size());
    rd.read_states = std::move(raft_.read_states());
    raft_.read_states().clear();
    if (auto ss = raft_.soft_state_now(); ss != prev_soft_) rd.soft_state = ss;
    if (auto hs = raft_.hard_state_now(); !(hs == prev_hard_) && !hs.empty()) rd.hard_state = hs;

    pending_ = {};
    if (!rd.entries.empty()) {
      pending_.last_index = rd.entries.back().index;
      pending_.last_term = rd.entries.back().term;
    }
    if (rd.snapshot) pending_.snapshot_index = rd.snapshot->metadata.index;
    pending_.hard_state = rd.hard_state;
    if (!rd.committed_entries.empty()) {
      pending_.applied = rd.committed_entries.back().index;
      for (const entry& e : rd.committed_entries) pending_.applied_bytes += payload_size(e);
    }
    if (rd.soft_state) prev_soft_ = *rd.soft_state;
    if (rd.hard_state) prev_hard_ = *rd.hard_state;
    in_flight_ = true;
    return rd;
  }

  /// The last ready was persisted, sent and applied. Without a ready out, a no-op.
  void advance() {
    if (!in_flight_) return;
    in_flight_ = false;
    if (pending_.hard_state) raft_.on_hard_state_persisted(*pending_.hard_state);
    if (pending_.snapshot_index != 0) {
      raft_.on_snapshot_persisted(pending_.snapshot_index);
      raft_.log().applied_to(pending_.snapshot_index);
    }
    if (pending_.last_index != 0) raft_.on_persisted(pending_.last_index, pending_.last_term);
    if (pending_.applied != 0) raft_.on_applied(pending_.applied, pending_.applied_bytes);
  }

  raft::status status() const { return raft_.status(); }

  /// The state machine underneath, for observers and tests.
  const core_type& state() const { return raft_; }
  core_type& state() { return raft_; }

 private:
  raw_node(const config& c, const Storage& storage, Random random, Logger logger)
      : raft_(c, storage, std::move(random), std::move(logger)),
        prev_soft_(raft_.soft_state_now()),
        prev_hard_(raft_.hard_state_now()) {}

  /// Terms and indexes above this are refused: no real cluster reaches
  /// 2^62 of either, and the bound keeps every `+ 1` in the core from wrapping.
  static constexpr std::uint64_t max_wire_value = std::uint64_t{1} << 62;

  std::error_code validate(const message& m) const {
    if (static_cast<int>(m.type) >= message_type_count) return errc::unknown_message_type;
    if (!is_network_message(m.type)) return errc::local_message;
    if (m.from == no_node || m.from == raft_.id()) return errc::invalid_message;
    if (m.to != raft_.id()) return errc::message_to_other_node;
    const bool termless = m.type == message_type::prop || m.type == message_type::read_index;
    if (!termless && m.term == 0) return errc::invalid_message;
    if (is_response(m.type) && !raft_.tracker().is_member(m.from)) {
      return errc::message_from_non_member;
    }
    if (m.term > max_wire_value || m.log_term > max_wire_value || m.index > max_wire_value ||
        m.commit > max_wire_value || m.reject_hint > max_wire_value) {
      return errc::index_out_of_range;
    }
    // Only these types carry entries, and only snap carries a snapshot.
    const bool carries_entries = m.type == message_type::app || m.type == message_type::prop ||
                                 m.type == message_type::read_index ||
                                 m.type == message_type::read_index_resp;
    if (!carries_entries && !m.entries.empty()) return errc::invalid_message;
    if ((m.type == message_type::snap) != m.snapshot.has_value()) return errc::invalid_message;
    for (const entry& e : m.entries) {
      if (e.type > entry_type::conf_change) return errc::invalid_message;
    }
    switch (m.type) {
      case message_type::app: {
        if (m.log_term > m.term) return errc::invalid_message;
        if (m.entries.size() > max_wire_value - m.index) return errc::index_out_of_range;
        std::uint64_t prev_term = m.log_term;
        for (std::size_t k = 0; k < m.entries.size(); ++k) {
          const entry& e = m.entries[k];
          if (e.index != m.index + k + 1) return errc::index_out_of_range;
          if (e.term < prev_term || e.term > m.term || e.term == 0) return errc::invalid_message;
          prev_term = e.term;
        }
        break;
      }
      case message_type::snap: {
        const snapshot_metadata& meta = m.snapshot->metadata;
        if (meta.index > max_wire_value) return errc::index_out_of_range;
        if (meta.index == 0 || meta.term == 0 || meta.term > m.term) return errc::invalid_message;
        break;
      }
      case message_type::prop:
        if (m.entries.empty()) return errc::invalid_message;
        break;
      case message_type::read_index:
      case message_type::read_index_resp:
        if (m.entries.size() != 1) return errc::invalid_message;
        break;
      case message_type::vote:
      case message_type::pre_vote:
        if (m.log_term > m.term) return errc::invalid_message;
        break;
      default:
        break;
    }
    return {};
  }

  struct pending_ready {
    std::uint64_t last_index = 0;
    std::uint64_t last_term = 0;
    std::uint64_t snapshot_index = 0;
    std::uint64_t applied = 0;
    std::uint64_t applied_bytes = 0;
    std::optional<raft::hard_state> hard_state;
  };

  core_type raft_;
  soft_state prev_soft_{};
  hard_state prev_hard_{};
  pending_ready pending_;
  bool in_flight_ = false;
};

}  // namespace keel::raft
