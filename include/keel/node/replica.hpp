// A replica: one member of a keel cluster. It joins the Raft core, the WAL,
// a transport and the object store: the run loop takes each ready of the
// Raft core, persists its entries and hard state in the WAL (durable before
// any message that acknowledges them goes out), sends its messages, applies
// committed entries to the store, answers the writers waiting for them and
// advances.
//
// Writes: only the leader writes. propose(fn) runs fn on a write
// transaction whose version is the index the entry will get, encodes its
// changes as store actions (store_actions.hpp) and proposes them; the
// store changes on every replica, the leader's included, only when Raft
// has committed the entry. The writer learns the outcome from its
// write_outcome: success with the entry's index, or the error (the
// store's own, sequence_conflict when a concurrent write got there first,
// lost_leadership when the leader changed before the commit).
//
// This class is the deterministic core: no threads, no clock. tick() is
// one Raft tick; run_once() does the work that is due. The simulation
// drives it directly; a threaded runner drives it from a loop.
//
// Observation: basic_replica<Observe, FS, Transport, Ts...> reports to the
// metrics and logging policies that the bundle Observe names
// (observe/policies.hpp); replica<FS, Transport, Ts...> is the alias with the
// silent defaults. The bundle is the first template parameter because Ts is
// a pack, after which nothing can take a default; an alias keeps every
// existing replica<...> unchanged, and a type (not a value in the options)
// lets the silent policies compile away: the replica tests them with
// `if constexpr` and never reads a clock or builds a log line for them.
//
// Thread safety: one thread calls everything, except that the transport
// may deliver messages from any thread (they wait in an inbox).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "keel/detail/codec.hpp"
#include "keel/errc.hpp"
#include "keel/node/snapshot_transfer.hpp"
#include "keel/node/status.hpp"
#include "keel/node/store_actions.hpp"
#include "keel/node/store_snapshot.hpp"
#include "keel/observe/policies.hpp"
#include "keel/raft/conf_change.hpp"
#include "keel/raft/raw_node.hpp"
#include "keel/result.hpp"
#include "keel/store/store.hpp"
#include "keel/transport/transport.hpp"
#include "keel/wal/crc32c.hpp"
#include "keel/wal/snapshot_store.hpp"
#include "keel/wal/wal.hpp"

namespace keel::node {

struct replica_options {
  raft::node_id id = raft::no_node;
  /// The voters of a new cluster (used only when the WAL is empty); with
  /// `join`, the members to contact until the leader's snapshot arrives.
  std::vector<raft::node_id> members{};
  /// The replica's directory: its WAL in `wal/`, its snapshots in `snap/`.
  /// Its parent must exist.
  std::string data_dir{};
  int election_tick = 10;
  int heartbeat_tick = 1;
  /// Writes whose encoded changes exceed this are errc::request_too_large.
  std::uint64_t max_proposal_bytes = 1536 * 1024;
  /// Seed of the Raft core's randomness (0: derived from the id).
  std::uint64_t seed = 0;
  /// Promote a learner to voter once it has caught up with the commit index.
  bool auto_promote = true;
  /// This replica joins an existing cluster (added with add_learner): it
  /// starts empty and waits for the leader's snapshot instead of
  /// bootstrapping from `members`.
  bool join = false;
  /// How many of the newest applied entries' changes are kept for
  /// watch_from (0: none). They share the objects with the store.
  std::size_t watch_history = 10000;
  /// Take a snapshot of the store every this many applied entries (0: never).
  std::uint64_t snapshot_interval = 10000;
  /// Entries kept in the log behind a snapshot, so that a follower a little
  /// behind catches up from the log instead of a whole snapshot.
  std::uint64_t snapshot_keep_entries = 500;
  /// Write snapshots on a thread of their own, from an immutable view of
  /// the store, so the loop keeps replicating meanwhile. Needs a file
  /// system policy that may be used from two threads (posix_file_system
  /// may; the simulated disk may not, so the deterministic default is off).
  bool snapshot_in_background = false;
  wal::options wal{};
  /// Called, from the transport's thread, after a message for this replica
  /// arrived: a threaded runner wakes its loop with it.
  std::function<void()> on_inbox{};
  /// Called, on the replica's thread, right after committed entries were
  /// applied (their write_outcomes are done): a threaded runner answers its
  /// writers from it instead of after the next fsync.
  std::function<void()> on_applied{};
};

/// What became of a proposed write. Filled in by the replica's run loop.
struct write_outcome {
  bool done = false;
  std::error_code error{};
  /// The log index (and the objects' version) of a committed write.
  std::uint64_t index = 0;
};

/// What became of a read barrier (read_barrier()).
struct read_outcome {
  bool done = false;
  std::error_code error{};
  /// The commit index the read waited for; reads after done see at least it.
  std::uint64_t index = 0;
};

template <observe::policy_bundle Observe, wal::file_system FS, transport::transport Transport,
          store::object... Ts>
class basic_replica {
 public:
  using store_type = store::store<Ts...>;
  using write_type = store::write_transaction<Ts...>;
  using log_type = wal::wal<FS>;
  using raft_type = raft::raw_node<log_type>;
  using metrics_type = typename Observe::metrics;
  using log_policy = typename Observe::log;
  using observers_type = observe::observers<Observe>;

  /// Opens (or creates) the replica's WAL, recovers its log, and replays
  /// the committed entries into a fresh store. `connect(handler)` makes
  /// the transport that delivers to this replica.
  template <class Connect>
  static result<std::unique_ptr<basic_replica>> open(FS fs, replica_options opts, Connect&& connect,
                                                     wal::recovery_report* report = nullptr) {
    return open(std::move(fs), std::move(opts), observers_type{}, std::forward<Connect>(connect),
                report);
  }

  /// The same, reporting to the application's metrics and logging objects
  /// (a null pointer only for a silent policy: errc::invalid_argument
  /// otherwise). Requires: they outlive the replica.
  template <class Connect>
  static result<std::unique_ptr<basic_replica>> open(FS fs, replica_options opts,
                                                     observers_type obs, Connect&& connect,
                                                     wal::recovery_report* report = nullptr) {
    if (obs.metrics == nullptr) {
      if constexpr (observe::is_silent<metrics_type>) {
        obs.metrics = &silent_instance<metrics_type>;
      } else {
        return errc::invalid_argument;
      }
    }
    if (obs.log == nullptr) {
      if constexpr (observe::is_silent<log_policy>) {
        obs.log = &silent_instance<log_policy>;
      } else {
        return errc::invalid_argument;
      }
    }
    wal::recovery_report local;
    if (report == nullptr) report = &local;
    const raft::node_id id = opts.id;
    auto opened =
        open_observed(std::move(fs), std::move(opts), obs, std::forward<Connect>(connect), *report);
    if constexpr (!observe::is_silent<log_policy>) {
      if (!opened && obs.log->enabled(observe::log_level::error)) {
        const std::string why =
            opened.error().message() +
            (report->corrupt_file.empty() ? std::string() : "; " + report->describe());
        obs.log->write({.level = observe::log_level::error,
                        .message = "replica failed to open",
                        .node = id,
                        .term = 0,
                        .index = 0,
                        .peer = raft::no_node,
                        .detail = why});
      }
    }
    return opened;
  }

 private:
  /// The static object of a silent policy opened without one.
  template <class P>
  static inline P silent_instance{};

  template <class Connect>
  static result<std::unique_ptr<basic_replica>> open_observed(FS fs, replica_options opts,
                                                              observers_type obs, Connect&& connect,
                                                              wal::recovery_report& rep) {
    wal::recovery_report* const report = &rep;
    if (opts.id == raft::no_node || opts.data_dir.empty()) return errc::invalid_argument;
    if (auto ec = fs.make_directory(opts.data_dir)) return ec;
    if (auto ec = fs.sync_directory(parent_of(opts.data_dir))) return ec;
    snapshots_type snapshots(fs, opts.data_dir + "/snap");
    if (auto ec = snapshots.cleanup()) return ec;
    auto log = log_type::open(std::move(fs), opts.data_dir + "/wal", opts.wal, report);
    if (!log) return log.error();
    if (!opts.join && log->last_index() == 0 && log->snapshot()->empty() &&
        log->hard_state().empty()) {
      // A new cluster: every member starts from the same configuration at index 1.
      if (opts.members.empty()) return errc::invalid_argument;
      raft::snapshot boot{.metadata = {.index = 1, .term = 1, .conf = {.voters = opts.members}}};
      if (auto ec = log->apply_snapshot(std::move(boot))) return ec;
      if (auto ec = log->sync()) return ec;
    }
    // A snapshot file newer than the WAL's marker was written but never
    // recorded (a crash or a failure between the two): drop it, so pruning
    // relative to it can never remove the one the WAL points to.
    auto files = snapshots.list();
    if (!files) return files.error();
    for (const auto& f : *files) {
      if (f.index > log->snapshot()->metadata.index) {
        if (auto ec = snapshots.remove(f.index, f.term)) return ec;
      }
    }
    std::unique_ptr<basic_replica> r(
        new basic_replica(std::move(opts), std::move(*log), std::move(snapshots), obs));
    if (auto ec = r->start(std::forward<Connect>(connect))) return ec;
    r->note_recovery(rep);
    return r;
  }

 public:
  basic_replica(const basic_replica&) = delete;
  basic_replica& operator=(const basic_replica&) = delete;
  /// The transport goes first: it may deliver into the inbox until it is gone.
  ~basic_replica() {
    transport_.reset();
    if (job_) job_->thread.join();
  }

  /// One Raft tick (elections, heartbeats); read barriers that waited
  /// too long fail with errc::timeout.
  void tick() {
    if (failed_) return;
    raft_->tick();
    if constexpr (!observe::is_silent<metrics_type>) {
      metrics_->watch_queues(store_.watch_queue_depths());
    }
    expire_reads();
    if (removed_self_ && (!is_leader() || ++removed_ticks_ > 2 * opts_.election_tick)) {
      stop(errc::removed_member);
      return;
    }
    if (opts_.auto_promote) promote_caught_up_learners();
  }

  /// Handles what arrived, then every ready. Returns whether anything happened.
  bool run_once() {
    if (failed_) return false;
    bool worked = false;
    std::vector<raft::message> messages;
    std::vector<raft::node_id> unreachable;
    std::vector<std::pair<raft::node_id, bool>> snapshot_reports;
    std::error_code storage_failure;
    {
      std::lock_guard lock(inbox_mutex_);
      messages.swap(inbox_);
      unreachable.swap(unreachable_);
      snapshot_reports.swap(snapshot_reports_);
      storage_failure = storage_failure_;
    }
    if (storage_failure) {
      if constexpr (!observe::is_silent<log_policy>) {
        note(observe::log_level::error, "received snapshot could not be stored", 0, raft::no_node,
             storage_failure.message());
      }
      stop(storage_failure);
      return true;
    }
    for (raft::message& m : messages) {
      worked = true;
      metrics_->message_received(m.type);
      // A removed member may not know it yet; it must not disturb the others.
      if (removed_.contains(m.from)) {
        ++refused_from_removed_;
        metrics_->message_dropped(observe::drop_reason::removed_member);
        note(observe::log_level::debug, "message from a removed member dropped", m.index, m.from,
             raft::to_string(m.type));
        continue;
      }
      // A snapshot whose data is damaged is refused before it can stop this
      // replica; the leader sends another.
      if (m.type == raft::message_type::snap && m.snapshot && !plausible(*m.snapshot)) {
        ++refused_snapshots_;
        metrics_->message_dropped(observe::drop_reason::damaged_snapshot);
        note(observe::log_level::warn, "damaged snapshot refused", m.snapshot->metadata.index,
             m.from);
        continue;
      }
      if constexpr (!observe::is_silent<log_policy>) {
        if (unreachable_peers_.erase(m.from) != 0) {
          note(observe::log_level::info, "peer reachable again", 0, m.from);
        }
      }
      // A bad message from the network is refused by the core; nothing else to do.
      (void)raft_->step(std::move(m));
    }
    for (const raft::node_id id : unreachable) {
      metrics_->peer_unreachable(id);
      if constexpr (!observe::is_silent<log_policy>) {
        // Once until the peer is heard from again: the transport reports every failed send.
        if (unreachable_peers_.insert(id).second) {
          note(observe::log_level::warn, "peer unreachable", 0, id);
        }
      }
      raft_->report_unreachable(id);
    }
    for (const auto& [to, delivered] : snapshot_reports) {
      worked = true;
      if constexpr (!observe::is_silent<metrics_type> || !observe::is_silent<log_policy>) {
        const transport::peer_status ps = transport_->status(to);
        const std::uint64_t bytes = ps.snapshot ? ps.snapshot->bytes_sent : 0;
        metrics_->snapshot_sent(bytes, delivered);
        note(delivered ? observe::log_level::info : observe::log_level::warn,
             delivered ? "snapshot sent" : "snapshot send failed",
             ps.snapshot ? ps.snapshot->index : 0, to, ps.last_error);
      }
      raft_->report_snapshot(
          to, delivered ? raft::snapshot_status::finished : raft::snapshot_status::failed);
    }
    while (!failed_ && raft_->has_ready()) {
      handle(raft_->ready());
      worked = true;
    }
    return worked;
  }

  /// Runs fn(write_transaction&) -> std::error_code on the leader and
  /// proposes its changes. Errors that need no Raft round come back at once:
  /// errc::not_leader (leader() is the hint), errc::request_too_large, fn's
  /// own error, errc::node_stopped. Otherwise the outcome fills in later.
  template <class F>
  result<std::shared_ptr<const write_outcome>> propose(F&& fn) {
    write_group g;
    if (auto ec = group_update(g, std::forward<F>(fn))) return ec;
    return propose_group(g);
  }

  /// A batch's group of updates on its way to one log entry: each update
  /// is a transaction over the previous one's state, so it sees them, and
  /// is atomic on its own; the group is proposed whole (propose_group).
  struct write_group {
    std::shared_ptr<const typename store::store<Ts...>::state_type> state{};
    /// The version the group's transactions stamp until the index is known.
    std::uint64_t placeholder = 0;
    std::vector<typename store::store<Ts...>::change_type> changes{};
    /// Whether to keep `bytes` (a batch splits by it; a single write need not).
    bool track_bytes = false;
    /// About how many bytes the group's entry will take.
    std::uint64_t bytes = 0;
    /// Updates that succeeded in this group.
    std::size_t updates = 0;

    bool empty() const noexcept { return updates == 0; }
  };

  /// Runs fn(write_transaction&) -> std::error_code as the next update of
  /// group g (starting it over the store's state if it is new). fn's error
  /// discards fn's writes only. Leader only, like propose.
  template <class F>
  std::error_code group_update(write_group& g, F&& fn) {
    if (failed_) return errc::node_stopped;
    if (!is_leader()) return errc::not_leader;
    if (!leader_ready()) return errc::leader_not_ready;
    if (g.state == nullptr) {
      g.state = store_.state();
      g.placeholder = g.state->version + 1;
    }
    write_type tx = store_.begin_write_over(g.state, g.placeholder);
    if (std::error_code ec = std::forward<F>(fn)(tx)) {
      (void)tx.take_changes();
      return ec;
    }
    auto [next, changes] = store_.detach(std::move(tx));
    g.state = std::move(next);
    for (auto& c : changes) {
      if (g.track_bytes) g.bytes += 32 + c.table().size() + encoded_size(c);
      g.changes.push_back(std::move(c));
    }
    ++g.updates;
    return {};
  }

  /// Proposes group g as one entry (and empties it): as propose's outcome.
  /// A group that an update since its start conflicts with fails whole
  /// with sequence_conflict when applied, on every replica.
  result<std::shared_ptr<const write_outcome>> propose_group(write_group& g) {
    write_group taken = std::exchange(g, write_group{});
    if (failed_) return errc::node_stopped;
    if (!is_leader()) return errc::not_leader;
    auto& log = raft_->state().log();
    const std::uint64_t index = log.last_index() + 1;
    std::string payload = encode_actions(
        index, std::span<const typename store_type::change_type>(taken.changes), taken.placeholder);
    if (payload.size() > opts_.max_proposal_bytes) {
      metrics_->proposal_failed();
      return errc::request_too_large;
    }
    return track(index, raft_->propose(keel::bytes(payload)));
  }

  std::uint64_t max_proposal_bytes() const noexcept { return opts_.max_proposal_bytes; }

  /// Starts a linearizable read (Raft's ReadIndex): the outcome is done once
  /// a quorum confirmed the leader's commit index after this call and this
  /// replica applied up to it, so a view() from then on sees every write
  /// that completed before the call. Works on followers too (the leader
  /// answers). Errors: errc::lost_leadership if the leader changed,
  /// errc::timeout after 2 election timeouts, errc::node_stopped.
  result<std::shared_ptr<const read_outcome>> read_barrier() {
    if (failed_) return errc::node_stopped;
    // Unique across the cluster's readers and across this replica's
    // restarts: a context reused after a restart could be answered with
    // the older request's read index.
    std::string ctx(24, '\0');
    auto* p = reinterpret_cast<std::byte*>(ctx.data());
    keel::detail::put_u64(p, opts_.id);
    keel::detail::put_u64(p + 8, incarnation_);
    keel::detail::put_u64(p + 16, ++read_sequence_);
    if (auto ec = raft_->read_index(ctx)) return ec;
    auto outcome = std::make_shared<read_outcome>();
    pending_reads_[ctx] = pending_read{outcome, 0, 2 * opts_.election_tick};
    return std::shared_ptr<const read_outcome>(std::move(outcome));
  }

  /// Adds `id` as a learner: it receives the log (a snapshot first) but does
  /// not vote; with auto_promote it becomes a voter once caught up. The
  /// address is handed to every replica's transport. Errors as for writes,
  /// plus errc::pending_conf_change while another change is unapplied.
  result<std::shared_ptr<const write_outcome>> add_learner(raft::node_id id,
                                                           std::string address = {}) {
    return change_membership(raft::conf_change_type::add_learner, id, std::move(address));
  }

  /// Makes learner `id` a voter.
  result<std::shared_ptr<const write_outcome>> promote(raft::node_id id) {
    return change_membership(raft::conf_change_type::add_node, id, {});
  }

  /// Removes `id` from the cluster; its messages are refused from then on
  /// and, once it learns of it, it stops with errc::removed_member.
  result<std::shared_ptr<const write_outcome>> remove_member(raft::node_id id) {
    return change_membership(raft::conf_change_type::remove_node, id, {});
  }

  /// Hands leadership to `to` (a voter that is caught up). The outcome shows
  /// in leader(); errc::not_leader on a follower.
  std::error_code transfer_leadership(raft::node_id to) {
    if (failed_) return errc::node_stopped;
    if (!is_leader()) return errc::not_leader;
    return raft_->transfer_leadership(to);
  }

  /// Changes of the commits after `version`, then live ones: the backlog
  /// holds the changes `filter` accepts of every commit with a version above
  /// `version` that this replica applied, in order; the subscription gets
  /// every later commit's, as store::watch does. errc::compacted when the
  /// replica no longer holds the changes right after `version` (older than
  /// its watch_history, or before its snapshot): read the state again and
  /// watch from there.
  template <store::watch_filter<typename store::store<Ts...>::change_type> Filter>
  result<std::pair<std::vector<typename store::store<Ts...>::change_type>,
                   typename store::store<Ts...>::subscription_type>>
  watch_from(std::uint64_t version, Filter filter,
             std::size_t capacity = store::store<Ts...>::default_watch_capacity) {
    if (version < history_floor_) return errc::compacted;
    std::vector<typename store_type::change_type> backlog;
    for (const auto& [index, changes] : history_) {
      if (index <= version) continue;
      for (const auto& c : changes) {
        if (filter(c)) backlog.push_back(c);
      }
    }
    // No commit can come between the backlog and the subscription: both
    // happen on the thread that applies.
    auto live = store_.watch(std::move(filter), capacity);
    return std::pair(std::move(backlog), std::move(live));
  }

  /// Runs f(const read_transaction&) on this replica's store: committed
  /// state as of the last entry this replica applied (may lag the leader).
  template <class F>
  decltype(auto) view(F&& f) const {
    return store_.view(std::forward<F>(f));
  }
  const store_type& store() const noexcept { return store_; }
  store_type& store() noexcept { return store_; }

  raft::node_id id() const noexcept { return opts_.id; }
  bool is_leader() const { return raft_->state().state() == raft::state_type::leader; }
  /// The leader this replica knows of (raft::no_node if none).
  raft::node_id leader() const { return raft_->state().lead(); }
  raft::status raft_status() const { return raft_->status(); }

  /// This replica's state and its view of every peer.
  node_status status() {
    const raft::status rs = raft_->status();
    node_status out{.id = opts_.id,
                    .term = rs.hard_state.term,
                    .role = raft::to_string(rs.soft_state.raft_state),
                    .leader = rs.soft_state.lead,
                    .commit = rs.hard_state.commit,
                    .applied = applied_,
                    .snapshot_index = log_.snapshot() ? log_.snapshot()->metadata.index : 0,
                    .voters = rs.config.voters,
                    .learners = rs.config.learners,
                    .peers = {},
                    .pending_writes = pending_.size(),
                    .pending_reads = pending_reads_.size(),
                    .failure = failed_};
    for (const std::vector<raft::node_id>* ids : {&rs.config.voters, &rs.config.learners}) {
      for (const raft::node_id peer : *ids) {
        if (peer == opts_.id) continue;
        peer_report p{.id = peer,
                      .learner = ids == &rs.config.learners,
                      .match = 0,
                      .next = 0,
                      .progress = {},
                      .recent_active = false,
                      .transport = transport_->status(peer)};
        if (auto it = rs.progress.find(peer); it != rs.progress.end()) {
          p.match = it->second.match;
          p.next = it->second.next;
          p.progress = raft::to_string(it->second.state);
          p.recent_active = it->second.recent_active;
        }
        out.peers.push_back(std::move(p));
      }
    }
    return out;
  }

  /// Snapshot messages refused because their data was damaged.
  std::uint64_t refused_snapshots() const noexcept { return refused_snapshots_; }

  /// Messages dropped because their sender was removed from the cluster.
  std::uint64_t refused_from_removed() const noexcept { return refused_from_removed_; }
  std::uint64_t applied_index() const noexcept { return applied_; }
  /// The storage error that stopped this replica, if one did.
  std::error_code failure() const noexcept { return failed_; }
  std::size_t pending_writes() const noexcept { return pending_.size(); }
  Transport& transport() noexcept { return *transport_; }
  /// The metrics object this replica reports to.
  metrics_type& metrics() noexcept { return *metrics_; }
  /// The logging object this replica reports to.
  log_policy& logger() noexcept { return *logger_; }

 private:
  struct pending_write {
    std::uint64_t term = 0;
    std::shared_ptr<write_outcome> outcome;
  };
  struct pending_read {
    std::shared_ptr<read_outcome> outcome;
    /// The commit index to reach; 0 until the leader answered.
    std::uint64_t index = 0;
    int ticks_left = 0;
  };

  using snapshots_type = wal::snapshot_store<FS>;
  /// The WAL's handle of a snapshot kept in a file of the snapshot store
  /// (the empty handle is the empty store a new cluster starts from).
  static constexpr std::string_view snapshot_in_file = "file";

  basic_replica(replica_options opts, log_type log, snapshots_type snapshots, observers_type obs)
      : opts_(std::move(opts)),
        log_(std::move(log)),
        metrics_(obs.metrics),
        logger_(obs.log),
        snapshots_(std::move(snapshots)) {
    wal_bytes_seen_ = log_.stats().bytes;
  }

  /// Whether a received snapshot's data can be what a leader sent: the
  /// empty store of a new cluster (index 1 only) or a store snapshot whose
  /// checksum holds. Its objects are checked again when it is restored.
  bool plausible(const raft::snapshot& s) {
    const std::string_view d = s.data;
    if (d.empty()) return s.metadata.index == 1;
    // Received by a streaming transport, which checked its size and CRC32C
    // and installed it in the snapshot store.
    if (d == snapshot_in_file) return stored_snapshot_intact(s.metadata);
    if (d.size() < store_snapshot_magic.size() + 4 || !d.starts_with(store_snapshot_magic)) {
      return false;
    }
    const auto* tail = reinterpret_cast<const std::byte*>(d.data() + d.size() - 4);
    return wal::crc32c(std::as_bytes(std::span(d.data(), d.size() - 4))) ==
           keel::detail::get_u32(tail);
  }

  /// Whether the received snapshot file (index, term) holds a store
  /// snapshot whose own checksum holds (its sender could have sent anything
  /// with a matching transfer checksum). Reads the file once.
  bool stored_snapshot_intact(const raft::snapshot_metadata& m) {
    auto reader = snapshots_.open(m.index, m.term);
    if (!reader || reader->size() < store_snapshot_magic.size() + 4) return false;
    std::array<std::byte, 64 * 1024> piece{};
    std::array<std::byte, 4> tail{};
    std::uint32_t crc = 0;
    const std::uint64_t body = reader->size() - 4;
    for (std::uint64_t at = 0; at < reader->size();) {
      auto n = reader->read(piece);
      if (!n || *n == 0) return false;
      const std::span<const std::byte> got(piece.data(), *n);
      if (at == 0 && !std::equal(store_snapshot_magic.begin(), store_snapshot_magic.end(),
                                 reinterpret_cast<const char*>(got.data()))) {
        return false;
      }
      const std::uint64_t in_body = at < body ? std::min<std::uint64_t>(*n, body - at) : 0;
      crc = wal::crc32c(got.first(static_cast<std::size_t>(in_body)), crc);
      for (std::size_t i = static_cast<std::size_t>(in_body); i < *n; ++i) {
        tail[static_cast<std::size_t>(at + i - body)] = got[i];
      }
      at += *n;
    }
    return crc == keel::detail::get_u32(tail.data());
  }

  static std::string parent_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
  }

  /// Loads the snapshot the WAL starts from into the (empty) store.
  std::error_code load_snapshot() {
    auto found = log_.snapshot();  // A copy: the handle, never the store's bytes.
    if (!found) return found.error();
    const raft::snapshot snap = std::move(*found);
    snapshot_index_ = snap.metadata.index;
    snapshot_floor_.store(snapshot_index_, std::memory_order_release);
    if (snap.data != snapshot_in_file) {
      if (snap.empty()) return {};
      // The empty store of a new cluster.
      store_.commit(store_.begin_write_at(snap.metadata.index));
      return {};
    }
    auto reader = snapshots_.open(snap.metadata.index, snap.metadata.term);
    if (!reader) return reader.error();
    auto restored = restore_store_snapshot(
        store_, snap.metadata.index, [&](std::span<std::byte> out) { return reader->read(out); });
    return restored ? std::error_code{} : restored.error();
  }

  /// Serializes the store to a snapshot file at the applied index, records
  /// it in the WAL and compacts the log behind it (keeping
  /// snapshot_keep_entries). Streams: never one buffer of the whole store.
  std::error_code take_snapshot() {
    auto job = start_snapshot();
    if (!job) return job.error();
    (*job)->error = (*job)->write();
    return record_snapshot(**job);
  }

  /// A snapshot being written: the store's state at `index` (an immutable
  /// read transaction), streamed into its file by write().
  struct snapshot_job {
    std::uint64_t index = 0;
    raft::conf_state conf{};
    typename store_type::read_type state;
    wal::snapshot_writer<FS> writer;
    std::error_code error{};
    std::thread thread{};
    std::atomic<bool> done{false};
    /// The file's content bytes, once written.
    std::uint64_t bytes = 0;

    std::error_code write() {
      if (auto ec = write_store_snapshot(
              state, [&](std::span<const std::byte> piece) { return writer.write(piece); })) {
        return ec;
      }
      bytes = writer.held();
      return writer.commit();
    }
  };

  result<std::unique_ptr<snapshot_job>> start_snapshot() {
    const std::uint64_t index = applied_;
    const auto term = log_.term(index);
    if (!term) return term.error();
    auto writer = snapshots_.begin(index, *term, {});
    if (!writer) return writer.error();
    return std::unique_ptr<snapshot_job>(new snapshot_job{.index = index,
                                                          .conf = raft_->status().config,
                                                          .state = store_.begin_read(),
                                                          .writer = std::move(*writer)});
  }

  /// Records a written snapshot in the WAL and compacts the log behind it.
  std::error_code record_snapshot(snapshot_job& job) {
    if (job.error) return job.error;
    // A snapshot installed from the leader meanwhile is newer: keep that.
    if (job.index <= snapshot_index_) return {};
    auto marked = log_.create_snapshot(job.index, job.conf, std::string(snapshot_in_file));
    if (!marked) return marked.error();
    if (auto ec = sync_wal()) return ec;
    snapshot_index_ = job.index;
    snapshot_floor_.store(snapshot_index_, std::memory_order_release);
    metrics_->snapshot_saved(job.bytes);
    note(observe::log_level::info, "snapshot saved", job.index);
    if (job.index > opts_.snapshot_keep_entries) {
      const std::uint64_t upto = job.index - opts_.snapshot_keep_entries;
      if (upto > log_.first_index()) {
        if (auto ec = log_.compact(upto)) return ec;
      }
    }
    return {};
  }

  void maybe_snapshot() {
    if (job_) {
      if (!job_->done.load(std::memory_order_acquire)) return;
      job_->thread.join();
      auto job = std::move(job_);
      if (auto ec = record_snapshot(*job)) {
        stop(ec);
        return;
      }
    }
    if (opts_.snapshot_interval == 0 && !snapshot_due_) return;
    if (!snapshot_due_ && applied_ - snapshot_index_ < opts_.snapshot_interval) return;
    if (applied_ <= snapshot_index_) return;
    snapshot_due_ = false;
    if (!opts_.snapshot_in_background) {
      if (auto ec = take_snapshot()) stop(ec);
      return;
    }
    auto job = start_snapshot();
    if (!job) {
      stop(job.error());
      return;
    }
    job_ = std::move(*job);
    snapshot_job* j = job_.get();
    j->thread = std::thread([j] {
      j->error = j->write();
      j->done.store(true, std::memory_order_release);
    });
  }

  /// The bytes of a snapshot file, for a transport that takes the whole
  /// snapshot in one message (the in-process one); empty if it is gone.
  std::string read_snapshot_file(const raft::snapshot_metadata& m) {
    auto reader = snapshots_.open(m.index, m.term);
    if (!reader) return {};
    std::string out;
    std::array<std::byte, 64 * 1024> piece{};
    for (;;) {
      auto n = reader->read(piece);
      if (!n) return {};
      if (*n == 0) return out;
      out.append(reinterpret_cast<const char*>(piece.data()), *n);
    }
  }

  /// A streaming transport's reader of the snapshot a snap message names.
  result<std::unique_ptr<transport::snapshot_source>> open_snapshot_source(
      const raft::snapshot& s) {
    if (s.data != snapshot_in_file) return errc::invalid_argument;
    snapshots_type files = snapshots_;  // The transport's thread has its own.
    auto reader = files.open(s.metadata.index, s.metadata.term);
    if (!reader) return reader.error();
    return std::unique_ptr<transport::snapshot_source>(
        new file_snapshot_source<FS>(std::move(*reader)));
  }

  /// A streaming transport's sink for a snapshot arriving from the leader.
  result<std::unique_ptr<transport::snapshot_sink>> open_snapshot_sink(
      const raft::snapshot_metadata& m) {
    if (m.index == 0) return errc::invalid_argument;
    if (stopped_.load(std::memory_order_acquire)) return errc::node_stopped;
    // Never over a snapshot this replica holds or has gone past: a peer
    // must not replace the file the WAL points to.
    if (m.index <= snapshot_floor_.load(std::memory_order_acquire)) {
      return errc::snapshot_out_of_date;
    }
    // Only the loop thread prunes, relative to what the WAL records.
    snapshots_type files = snapshots_.without_pruning();
    auto writer = files.begin_partial(m.index, m.term, {});
    if (!writer) return writer.error();
    // A failed fsync of a received snapshot stops this replica, like one of
    // its WAL (fail-stop): the loop thread learns it from the inbox.
    auto on_storage_failure = [this](std::error_code ec) {
      {
        std::lock_guard lock(inbox_mutex_);
        if (!storage_failure_) storage_failure_ = ec;
      }
      if (opts_.on_inbox) opts_.on_inbox();
    };
    return std::unique_ptr<transport::snapshot_sink>(
        new file_snapshot_sink<FS>(files, std::move(*writer), m.index, m.term,
                                   std::string(snapshot_in_file), std::move(on_storage_failure)));
  }

  template <class Connect>
  std::error_code start(Connect&& connect) {
    raft::config c{.id = opts_.id,
                   .election_tick = opts_.election_tick,
                   .heartbeat_tick = opts_.heartbeat_tick};
    // The store starts from the snapshot: Raft must not hand out again the
    // entries the snapshot covers (the log keeps some behind it).
    c.applied = log_.snapshot()->metadata.index;
    auto node =
        raft_type::create(c, log_, raft::splitmix_random(opts_.seed != 0 ? opts_.seed : opts_.id),
                          raft::null_logger{});
    if (!node) return node.error();
    raft_.emplace(std::move(*node));
    // A seeded replica (the simulation) stays deterministic; otherwise each
    // start draws its own.
    incarnation_ = opts_.seed != 0
                       ? raft::splitmix_random(opts_.seed ^ 0x6b65656cULL).next()
                       : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    if (auto ec = load_snapshot()) return ec;
    applied_ = log_.snapshot()->metadata.index;
    history_floor_ = applied_;
    transport::handler h{
        .deliver =
            [this](raft::message m) {
              // A stopped replica reads nothing more: its inbox must not grow.
              if (stopped_.load(std::memory_order_acquire)) return;
              {
                std::lock_guard lock(inbox_mutex_);
                inbox_.push_back(std::move(m));
              }
              if (opts_.on_inbox) opts_.on_inbox();
            },
        .unreachable =
            [this](raft::node_id id) {
              {
                std::lock_guard lock(inbox_mutex_);
                unreachable_.push_back(id);
              }
              if (opts_.on_inbox) opts_.on_inbox();
            },
        .open_snapshot = [this](const raft::snapshot& s) { return open_snapshot_source(s); },
        .receive_snapshot = [this](
                                raft::node_id,
                                const raft::snapshot_metadata& m) { return open_snapshot_sink(m); },
        .snapshot_sent =
            [this](raft::node_id to, bool delivered) {
              {
                std::lock_guard lock(inbox_mutex_);
                snapshot_reports_.emplace_back(to, delivered);
              }
              if (opts_.on_inbox) opts_.on_inbox();
            },
    };
    transport_.emplace(std::forward<Connect>(connect)(std::move(h)));
    // A joining replica knows the cluster only from its options until the
    // leader's snapshot brings the configuration.
    const raft::conf_state conf = raft_->status().config;
    const std::vector<raft::node_id>* known[] = {&conf.voters, &conf.learners, &opts_.members};
    for (const std::vector<raft::node_id>* ids : known) {
      for (const raft::node_id peer : *ids) {
        if (peer != opts_.id) transport_->add_peer(peer, {});
      }
    }
    return {};
  }

  /// Whether this leader's store holds every committed write: it applied an
  /// entry of its own term, hence everything before (a new leader does not
  /// know the previous leader's commit index until then).
  bool leader_ready() const {
    const auto t = raft_->state().log().term(applied_);
    return t && *t == raft_->state().term();
  }

  void handle(raft::ready rd) {
    if constexpr (!observe::is_silent<log_policy>) note_changes(rd);
    if (rd.soft_state && rd.soft_state->raft_state != raft::state_type::leader) {
      // Whatever we proposed may or may not commit under the new leader.
      fail_pending(errc::lost_leadership);
    }
    if (rd.soft_state && rd.soft_state->lead != known_leader_) {
      // Read requests in flight to the old leader will not be answered.
      known_leader_ = rd.soft_state->lead;
      fail_reads(errc::lost_leadership, true);
    }
    for (const raft::read_state& rs : rd.read_states) {
      if (auto it = pending_reads_.find(rs.request_ctx); it != pending_reads_.end()) {
        it->second.index = std::max<std::uint64_t>(rs.index, 1);
      }
    }
    const std::uint64_t installed = rd.snapshot ? rd.snapshot->metadata.index : 0;
    if (rd.snapshot) {
      if (auto ec = install(std::move(*rd.snapshot))) {
        stop(ec);
        return;
      }
    }
    // Committed entries this replica already holds durably (every earlier
    // ready with entries was synced) are applied, and their writers
    // answered, before this ready's fsync: they are on a quorum already, and
    // need not wait for the next batch to reach the disk.
    std::size_t applied_early = 0;
    if (!rd.snapshot) {
      std::uint64_t durable = log_.last_index();
      if (!rd.entries.empty()) durable = std::min(durable, rd.entries.front().index - 1);
      for (const raft::entry& e : rd.committed_entries) {
        if (e.index > durable || e.type == raft::entry_type::conf_change) break;
        apply(e);
        ++applied_early;
      }
      if (applied_early != 0 && opts_.on_applied) opts_.on_applied();
    }
    // The leader's appends go out before its own fsync, which then runs
    // while the followers write theirs; anything that acknowledges what
    // this replica persists waits until it is durable.
    for (raft::message& m : rd.messages) {
      if (!m.after_persist) send(std::move(m));
    }
    std::erase_if(rd.messages, [](const raft::message& m) { return !m.after_persist; });
    // New entries, term or vote need an fsync; a commit index alone may be
    // lost and relearned (etcd's MustSync): it is synced with the next batch.
    const bool must_sync = rd.snapshot || rd.must_sync(log_.hard_state());
    if (auto ec = log_.append(rd.entries, rd.hard_state.value_or(raft::hard_state{}))) {
      stop(ec);
      return;
    }
    if (must_sync) {
      if (auto ec = sync_wal()) {
        stop(ec);
        return;
      }
    }
    // The WAL now records the installed snapshot: the older files can go
    // (received ones are never pruned by their writer, see open_snapshot_sink).
    if (installed != 0) {
      if (auto ec = snapshots_.remove_older_than(installed)) {
        stop(ec);
        return;
      }
    }
    for (raft::message& m : rd.messages) send(std::move(m));
    const bool apply_late = rd.committed_entries.size() > applied_early;
    for (std::size_t i = applied_early; i < rd.committed_entries.size(); ++i) {
      apply(rd.committed_entries[i]);
    }
    if (apply_late && opts_.on_applied) opts_.on_applied();
    raft_->advance();
    finish_reads();
    if (!failed_) maybe_snapshot();
    report_gauges();
  }

  /// The WAL's sync, timed for a metrics policy that wants it, and the
  /// bytes the WAL wrote since the last one.
  std::error_code sync_wal() {
    std::error_code ec;
    if constexpr (metrics_type::timed) {
      const auto start = std::chrono::steady_clock::now();
      ec = log_.sync();
      metrics_->wal_synced(std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - start));
    } else {
      ec = log_.sync();
    }
    if constexpr (!observe::is_silent<metrics_type>) {
      const std::uint64_t bytes = log_.stats().bytes;
      metrics_->wal_written(bytes - wal_bytes_seen_);
      wal_bytes_seen_ = bytes;
    }
    return ec;
  }

  void report_gauges() {
    if constexpr (!observe::is_silent<metrics_type>) {
      const auto& core = raft_->state();
      metrics_->gauges({.term = core.term(),
                        .commit = core.log().committed(),
                        .applied = applied_,
                        .snapshot_index = snapshot_index_,
                        .leader = core.lead(),
                        .role = core.state(),
                        .pending_writes = pending_.size(),
                        .pending_reads = pending_reads_.size(),
                        .stopped = static_cast<bool>(failed_)});
    }
  }

  /// Logs one event with this replica's id and term, if the policy wants its level.
  void note(observe::log_level level, std::string_view message, std::uint64_t index = 0,
            raft::node_id peer = raft::no_node, std::string_view detail = {}) {
    if constexpr (!observe::is_silent<log_policy>) {
      if (!logger_->enabled(level)) return;
      logger_->write({.level = level,
                      .message = message,
                      .node = opts_.id,
                      .term = raft_ ? raft_->state().term() : 0,
                      .index = index,
                      .peer = peer,
                      .detail = detail});
    }
  }

  /// Logs what changed in a ready: the term, the role (elections won and
  /// lost), the leader.
  void note_changes(const raft::ready& rd) {
    const auto& core = raft_->state();
    const std::uint64_t last = core.log().last_index();
    if (rd.hard_state && rd.hard_state->term != logged_term_) {
      if (logged_term_ != 0) note(observe::log_level::info, "term changed", last);
      logged_term_ = rd.hard_state->term;
    }
    if (!rd.soft_state) return;
    const raft::state_type role = rd.soft_state->raft_state;
    if (role != logged_role_) {
      using raft::state_type;
      if (role == state_type::leader) {
        note(observe::log_level::info, "election won: became leader", last);
      } else if (role == state_type::candidate || role == state_type::pre_candidate) {
        note(observe::log_level::info, "election started", last, raft::no_node,
             raft::to_string(role));
      } else if (logged_role_ == state_type::candidate ||
                 logged_role_ == state_type::pre_candidate) {
        note(observe::log_level::info, "election lost: became follower", last, rd.soft_state->lead);
      } else {
        note(observe::log_level::info, "stepped down: became follower", last, rd.soft_state->lead);
      }
      logged_role_ = role;
    }
    if (rd.soft_state->lead != logged_leader_) {
      logged_leader_ = rd.soft_state->lead;
      note(observe::log_level::info,
           logged_leader_ == raft::no_node ? "leader lost" : "leader changed", last,
           logged_leader_);
    }
  }

  /// After open: what recovery found in the WAL.
  void note_recovery(const wal::recovery_report& rep) {
    if constexpr (!observe::is_silent<log_policy>) {
      if (!logger_->enabled(observe::log_level::info)) return;
      const std::string what = rep.describe();
      note(rep.torn_file ? observe::log_level::warn : observe::log_level::info, "WAL recovered",
           log_.last_index(), raft::no_node, what);
    }
  }

  void send(raft::message m) {
    metrics_->message_sent(m.type);
    // A streaming transport reads the snapshot's file itself and reports
    // the outcome through handler::snapshot_sent.
    if (m.type != raft::message_type::snap || transport::streaming_transport<Transport>) {
      transport_->send(std::move(m));
      return;
    }
    // The transport accepted the whole snapshot; if it is lost on the way
    // the follower keeps refusing appends and Raft sends another.
    const raft::node_id to = m.to;
    if (m.snapshot && m.snapshot->data == snapshot_in_file) {
      std::string content = read_snapshot_file(m.snapshot->metadata);
      if (content.empty()) {
        metrics_->snapshot_sent(0, false);
        note(observe::log_level::warn, "snapshot send failed: file unreadable",
             m.snapshot->metadata.index, to);
        raft_->report_snapshot(to, raft::snapshot_status::failed);
        return;
      }
      m.snapshot->data = std::move(content);
    }
    const std::uint64_t bytes = m.snapshot ? m.snapshot->data.size() : 0;
    const std::uint64_t index = m.snapshot ? m.snapshot->metadata.index : 0;
    transport_->send(std::move(m));
    metrics_->snapshot_sent(bytes, true);
    note(observe::log_level::info, "snapshot sent", index, to);
    raft_->report_snapshot(to, raft::snapshot_status::finished);
  }

  /// A snapshot from the leader replaces this replica's state: the store
  /// becomes the snapshot's content, the log is replaced, and the transport
  /// learns the snapshot's members.
  std::error_code install(raft::snapshot snap) {
    const std::uint64_t index = snap.metadata.index;
    if (index <= applied_) return {};  // Raft never sends an older one; nothing to do.
    if (store_.version() >= index) return errc::corrupt_snapshot;
    std::uint64_t bytes = 0;
    if (snap.data.empty()) {
      // The empty snapshot of a new cluster: no objects.
      store_.commit(store_.begin_write_at(index));
    } else if (snap.data == snapshot_in_file) {
      // A streaming transport already installed the file: restore from it.
      auto reader = snapshots_.open(index, snap.metadata.term);
      if (!reader) return reader.error();
      bytes = reader->size();
      auto restored = restore_store_snapshot(
          store_, index, [&](std::span<std::byte> out) { return reader->read(out); });
      if (!restored) return restored.error();
    } else {
      bytes = snap.data.size();
      // Kept in a file first, so a restart finds it; then the store turns
      // into it, with the events that take watchers there.
      auto writer = snapshots_.begin(index, snap.metadata.term, {});
      if (!writer) return writer.error();
      const std::string_view content = snap.data;
      if (auto ec = writer->write(std::as_bytes(std::span(content.data(), content.size())))) {
        return ec;
      }
      std::size_t at = 0;
      auto restored = restore_store_snapshot(store_, index, [&](std::span<std::byte> out) {
        const std::size_t n = std::min(out.size(), content.size() - at);
        std::memcpy(out.data(), content.data() + at, n);
        at += n;
        return result<std::size_t>(n);
      });
      if (!restored) return restored.error();
      if (auto ec = writer->commit()) return ec;
      snap.data = std::string(snapshot_in_file);
    }
    snapshot_index_ = index;
    snapshot_floor_.store(snapshot_index_, std::memory_order_release);
    const raft::conf_state conf = snap.metadata.conf;
    if (auto ec = log_.apply_snapshot(std::move(snap))) return ec;
    applied_ = index;
    history_.clear();  // The changes before the snapshot are not known here.
    history_floor_ = index;
    for (const std::vector<raft::node_id>* ids : {&conf.voters, &conf.learners}) {
      for (const raft::node_id peer : *ids) {
        if (peer != opts_.id) transport_->add_peer(peer, {});
      }
    }
    metrics_->snapshot_installed(bytes);
    note(observe::log_level::info, "snapshot installed", index, raft_->state().lead());
    return {};
  }

  /// Answers the read barriers whose index this replica has applied.
  void finish_reads() {
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
      if (it->second.index != 0 && it->second.index <= applied_) {
        it->second.outcome->index = it->second.index;
        it->second.outcome->done = true;
        it = pending_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void expire_reads() {
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
      if (--it->second.ticks_left <= 0) {
        it->second.outcome->error = errc::timeout;
        it->second.outcome->done = true;
        it = pending_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Fails the pending reads (only those still unanswered if `unanswered_only`:
  /// an answered read just waits for this replica's own apply).
  void fail_reads(std::error_code ec, bool unanswered_only) {
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
      if (unanswered_only && it->second.index != 0) {
        ++it;
        continue;
      }
      it->second.outcome->error = ec;
      it->second.outcome->done = true;
      it = pending_reads_.erase(it);
    }
  }

  result<std::shared_ptr<const write_outcome>> change_membership(raft::conf_change_type type,
                                                                 raft::node_id id,
                                                                 std::string address) {
    if (failed_) return errc::node_stopped;
    if (!is_leader()) return errc::not_leader;
    if (!leader_ready()) return errc::leader_not_ready;
    if (id == raft::no_node || removed_.contains(id)) return errc::invalid_conf_change;
    auto& log = raft_->state().log();
    const std::uint64_t index = log.last_index() + 1;
    raft::conf_change cc{.transition = raft::conf_change_transition::auto_,
                         .changes = {{.type = type, .node = id}},
                         .context = std::move(address)};
    return track(index, raft_->propose_conf_change(cc));
  }

  /// After a proposal meant for `index`: its outcome, to be filled in when
  /// that entry is applied, or the proposal's error.
  result<std::shared_ptr<const write_outcome>> track(std::uint64_t index,
                                                     std::error_code proposed) {
    if (proposed) {
      metrics_->proposal_failed();
      return proposed;
    }
    // Not appended where expected: this replica no longer leads.
    if (raft_->state().log().last_index() != index) {
      metrics_->proposal_failed();
      return errc::not_leader;
    }
    metrics_->proposed();
    auto outcome = std::make_shared<write_outcome>();
    pending_[index] = pending_write{raft_->state().term(), outcome};
    return std::shared_ptr<const write_outcome>(std::move(outcome));
  }

  /// On the leader: proposes the promotion of one learner that has every
  /// committed entry (one change at a time, as Raft requires).
  void promote_caught_up_learners() {
    if (!is_leader() || !leader_ready()) return;
    if (raft_->state().pending_conf_index() > applied_) return;
    const raft::status rs = raft_->status();
    for (const raft::node_id id : rs.config.learners) {
      auto it = rs.progress.find(id);
      if (it != rs.progress.end() && it->second.match >= rs.hard_state.commit) {
        (void)promote(id);
        return;
      }
    }
  }

  void apply(const raft::entry& e) {
    if (e.index <= applied_) return;  // Covered by the snapshot this store started from.
    applied_ = e.index;
    if (e.type == raft::entry_type::conf_change) {
      std::error_code ec = errc::invalid_conf_change;
      if (auto cc = raft::decode_conf_change(e.data.view())) {
        if (auto applied = raft_->apply_conf_change(*cc)) {
          ec = {};
          apply_membership(*cc);
        } else {
          ec = applied.error();
        }
      }
      finish(e, ec);
      return;
    }
    if (e.data.empty()) {  // A new leader's empty entry.
      finish(e, {});
      return;
    }
    std::error_code ec;
    auto decoded = decode_actions(e.data.view());
    if (!decoded) {
      ec = decoded.error();
    } else if (decoded->version != e.index) {
      // Proposed for another index (the log moved under the leader): a no-op everywhere.
      ec = errc::lost_leadership;
    } else {
      write_type tx = store_.begin_write_at(std::max(e.index, store_.version() + 1));
      ec = apply_actions(tx, std::span<const store_action>(decoded->actions));
      if (ec) {
        (void)tx.take_changes();  // Whole or nothing: the same on every replica.
      } else {
        remember(e.index, store_.commit(std::move(tx)));
      }
    }
    finish(e, ec);
  }

  /// Tells the transport who the peers are now; a removed replica stops.
  void apply_membership(const raft::conf_change& cc) {
    for (const raft::conf_change_single& c : cc.changes) {
      note(observe::log_level::info,
           c.type == raft::conf_change_type::remove_node   ? "member removed"
           : c.type == raft::conf_change_type::add_learner ? "learner added"
                                                           : "member added as voter",
           applied_, c.node, cc.context);
      if (c.type == raft::conf_change_type::remove_node) {
        removed_.insert(c.node);
        if (c.node == opts_.id) {
          // A leader keeps leading until a voter takes over (the core sends
          // timeout_now); stopping now could strand the others.
          if (is_leader()) {
            removed_self_ = true;
            return;
          }
          stop(errc::removed_member);
          return;
        }
        transport_->remove_peer(c.node);
      } else if (c.type == raft::conf_change_type::add_learner && c.node != opts_.id) {
        // A new member starts from a snapshot, which must name it.
        snapshot_due_ = true;
        transport_->add_peer(c.node, cc.context);
      } else if (c.node != opts_.id && !cc.context.empty()) {
        // A promotion names no address: the peer keeps the one it has.
        transport_->add_peer(c.node, cc.context);
      }
    }
  }

  static std::size_t encoded_size(const typename store_type::change_type& c) {
    return std::visit(
        [](const auto& p) -> std::size_t {
          using T = std::remove_const_t<typename std::decay_t<decltype(p)>::element_type>;
          if (p == nullptr) return 0;
          return store::object_traits<T>::id(*p).size() +
                 store::object_traits<T>::encode(*p).size();
        },
        c.after);
  }

  /// Keeps a commit's changes for watch_from, within watch_history entries.
  void remember(std::uint64_t index, std::vector<typename store_type::change_type> changes) {
    if (opts_.watch_history == 0) {
      history_floor_ = index;
      return;
    }
    history_.emplace_back(index, std::move(changes));
    while (history_.size() > opts_.watch_history) {
      history_floor_ = history_.front().first;
      history_.pop_front();
    }
  }

  /// Answers the writer of entry e, if it is ours.
  void finish(const raft::entry& e, std::error_code ec) {
    auto it = pending_.find(e.index);
    if (it == pending_.end()) return;
    write_outcome& out = *it->second.outcome;
    // Another leader's entry took our index: ours was overwritten.
    out.error = it->second.term == e.term ? ec : make_error_code(errc::lost_leadership);
    out.index = out.error ? 0 : e.index;
    out.done = true;
    if (out.error) metrics_->proposal_failed();
    pending_.erase(it);
  }

  void fail_pending(std::error_code ec) {
    for (auto& [index, p] : pending_) {
      p.outcome->error = ec;
      p.outcome->done = true;
      metrics_->proposal_failed();
    }
    pending_.clear();
  }

  /// Fail-stop: a storage failure ends this replica's life.
  void stop(std::error_code ec) {
    if constexpr (!observe::is_silent<log_policy>) {
      const bool removed = ec == errc::removed_member;
      note(removed ? observe::log_level::info : observe::log_level::error,
           removed ? "stopped: removed from the cluster" : "stopped: storage failure (fail-stop)",
           applied_, raft::no_node, ec.message());
    }
    failed_ = ec;
    stopped_.store(true, std::memory_order_release);
    fail_pending(errc::node_stopped);
    fail_reads(errc::node_stopped, false);
    report_gauges();
  }

  replica_options opts_;
  log_type log_;
  metrics_type* metrics_;
  log_policy* logger_;
  /// The WAL's bytes written when metrics last heard of them.
  std::uint64_t wal_bytes_seen_ = 0;
  /// What the logger was last told, to log changes only.
  std::uint64_t logged_term_ = 0;
  raft::state_type logged_role_ = raft::state_type::follower;
  raft::node_id logged_leader_ = raft::no_node;
  /// Peers reported unreachable and not heard from since (for logging).
  std::set<raft::node_id> unreachable_peers_;
  std::optional<raft_type> raft_;
  std::optional<Transport> transport_;
  store_type store_;
  std::mutex inbox_mutex_;
  std::vector<raft::message> inbox_;
  std::vector<raft::node_id> unreachable_;
  /// Outcomes of snapshots a streaming transport sent, for raft.
  std::vector<std::pair<raft::node_id, bool>> snapshot_reports_;
  /// A received snapshot's storage failed (an fsync): the replica stops.
  std::error_code storage_failure_{};
  /// failed_ is set, for the transport's threads.
  std::atomic<bool> stopped_{false};
  std::map<std::uint64_t, pending_write> pending_;
  std::map<std::string, pending_read> pending_reads_;
  std::uint64_t read_sequence_ = 0;
  /// Tells this start's read contexts from an earlier start's.
  std::uint64_t incarnation_ = 0;
  raft::node_id known_leader_ = raft::no_node;
  /// Members removed while this replica ran (not persisted: after a restart
  /// the core's own membership check refuses their votes and responses).
  std::set<raft::node_id> removed_;
  /// The newest commits' changes, oldest first, for watch_from; complete
  /// for every version from history_floor_ on.
  std::deque<std::pair<std::uint64_t, std::vector<typename store_type::change_type>>> history_;
  std::uint64_t history_floor_ = 0;
  snapshots_type snapshots_;
  std::uint64_t snapshot_index_ = 0;
  /// snapshot_index_, for the transport's threads.
  std::atomic<std::uint64_t> snapshot_floor_{0};
  bool snapshot_due_ = false;
  /// The snapshot being written in the background, if one is.
  std::unique_ptr<snapshot_job> job_;
  std::uint64_t refused_from_removed_ = 0;
  std::uint64_t refused_snapshots_ = 0;
  /// This replica led when its own removal applied: it stops once it has
  /// handed leadership over (or after two election timeouts).
  bool removed_self_ = false;
  int removed_ticks_ = 0;
  std::uint64_t applied_ = 0;
  std::error_code failed_;
};

/// A replica that records no metrics and logs nothing (observe::defaults).
template <wal::file_system FS, transport::transport Transport, store::object... Ts>
using replica = basic_replica<observe::defaults, FS, Transport, Ts...>;

}  // namespace keel::node
