// prometheus_metrics: a metrics policy (metrics.hpp) that keeps one
// replica's numbers and renders them in the Prometheus text format
// (prometheus_text.hpp), every name prefixed `keel_`. docs/observability.md
// lists the metrics.
//
//   keel::observe::prometheus_metrics m({{"node", "1"}});
//   // ... open the replica or runner with observers{.metrics = &m} ...
//   std::string page = m.render();   // from any thread, e.g. an HTTP handler
//
// Thread safety: the replica's thread updates it, any thread may render or
// read() it at the same time. Every number is a relaxed std::atomic, updated
// by its one writer without a read-modify-write race; a render reads each
// once, so it is not one consistent cut across numbers (as with any
// Prometheus client), but every number in it is one the replica reported.
// The apply lag is computed from one read of commit and applied.
//
// One object per replica: the gauges are that replica's. Several replicas in
// one process each get their own, told apart by their labels.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "keel/observe/metrics.hpp"
#include "keel/observe/prometheus_text.hpp"
#include "keel/raft/types.hpp"

namespace keel::observe {

class prometheus_metrics {
 public:
  /// The WAL sync histogram's upper bounds, in seconds: from a fast NVMe
  /// fsync (100 µs) to a disk in trouble (1 s).
  static constexpr std::array<double, 13> wal_sync_bounds{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

  /// The replica measures every WAL sync for this policy.
  static constexpr bool timed = true;

  /// `labels` go on every sample (the node's id, the cluster's name).
  explicit prometheus_metrics(std::vector<label> labels = {}) : labels_(std::move(labels)) {}
  explicit prometheus_metrics(std::initializer_list<label> labels)
      : labels_(labels.begin(), labels.end()) {}
  prometheus_metrics(const prometheus_metrics&) = delete;
  prometheus_metrics& operator=(const prometheus_metrics&) = delete;

  // --- the metrics policy (the replica's thread) -----------------------------------

  void gauges(const node_gauges& g) noexcept {
    const raft::node_id before = leader_.load(relaxed);
    if (g.leader != before && g.leader != raft::no_node) add(leader_changes_);
    set(term_, g.term);
    set(commit_, g.commit);
    set(applied_, g.applied);
    set(snapshot_index_, g.snapshot_index);
    set(leader_, g.leader);
    set(is_leader_, g.role == raft::state_type::leader ? 1 : 0);
    set(pending_writes_, g.pending_writes);
    set(pending_reads_, g.pending_reads);
    set(stopped_, g.stopped ? 1 : 0);
  }
  void proposed() noexcept { add(proposals_); }
  void proposal_failed() noexcept { add(proposals_failed_); }
  void wal_synced(std::chrono::nanoseconds d) noexcept {
    const auto ns = static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count());
    std::size_t i = 0;
    while (i < wal_sync_bounds.size() && static_cast<double>(ns) > wal_sync_bounds[i] * 1e9) {
      ++i;
    }
    if (i < wal_sync_bounds.size()) add(wal_sync_buckets_[i]);
    add(wal_sync_count_);
    add(wal_sync_ns_, ns);
  }
  void wal_written(std::uint64_t bytes) noexcept { add(wal_bytes_, bytes); }
  void snapshot_saved(std::uint64_t bytes) noexcept {
    add(snapshots_saved_);
    add(snapshot_saved_bytes_, bytes);
  }
  void snapshot_installed(std::uint64_t bytes) noexcept {
    add(snapshots_installed_);
    add(snapshot_installed_bytes_, bytes);
  }
  void snapshot_sent(std::uint64_t bytes, bool delivered) noexcept {
    add(delivered ? snapshots_sent_ : snapshots_send_failed_);
    add(snapshot_sent_bytes_, bytes);
  }
  void message_sent(raft::message_type t) noexcept { add(sent_[index_of(t)]); }
  void message_received(raft::message_type t) noexcept { add(received_[index_of(t)]); }
  void message_dropped(drop_reason why) noexcept {
    add(why == drop_reason::removed_member ? dropped_removed_ : dropped_damaged_);
  }
  void peer_unreachable(raft::node_id) noexcept { add(unreachable_); }
  void watch_queues(const store::watch_depths& w) noexcept {
    set(watches_, w.watches);
    set(watch_queued_, w.queued);
    set(watch_deepest_, w.deepest);
  }

  // --- reading (any thread) --------------------------------------------------------

  /// The numbers at one moment (each read once), for tests and status pages.
  struct values {
    std::uint64_t term = 0;
    std::uint64_t commit = 0;
    std::uint64_t applied = 0;
    std::uint64_t snapshot_index = 0;
    raft::node_id leader = raft::no_node;
    bool is_leader = false;
    std::uint64_t leader_changes = 0;
    std::uint64_t proposals = 0;
    std::uint64_t proposals_failed = 0;
    std::uint64_t wal_syncs = 0;
    std::uint64_t wal_sync_nanoseconds = 0;
    std::uint64_t wal_bytes = 0;
    std::uint64_t snapshots_saved = 0;
    std::uint64_t snapshots_installed = 0;
    std::uint64_t snapshots_sent = 0;
    std::uint64_t snapshot_sent_bytes = 0;
    std::uint64_t watches = 0;
    std::uint64_t watch_queued = 0;
  };

  values read() const noexcept {
    return {.term = get(term_),
            .commit = get(commit_),
            .applied = get(applied_),
            .snapshot_index = get(snapshot_index_),
            .leader = get(leader_),
            .is_leader = get(is_leader_) != 0,
            .leader_changes = get(leader_changes_),
            .proposals = get(proposals_),
            .proposals_failed = get(proposals_failed_),
            .wal_syncs = get(wal_sync_count_),
            .wal_sync_nanoseconds = get(wal_sync_ns_),
            .wal_bytes = get(wal_bytes_),
            .snapshots_saved = get(snapshots_saved_),
            .snapshots_installed = get(snapshots_installed_),
            .snapshots_sent = get(snapshots_sent_),
            .snapshot_sent_bytes = get(snapshot_sent_bytes_),
            .watches = get(watches_),
            .watch_queued = get(watch_queued_)};
  }

  /// The text exposition format (version 0.0.4) of every metric.
  std::string render() const {
    std::string out;
    render(out);
    return out;
  }

  /// Appends the text exposition format to `out`.
  void render(std::string& out) const {
    prometheus_text w(out, labels_);
    auto gauge = [&](const char* name, const char* help, std::uint64_t v) {
      w.family(name, "gauge", help);
      w.sample(name, v);
    };
    auto counter = [&](const char* name, const char* help, std::uint64_t v) {
      w.family(name, "counter", help);
      w.sample(name, v);
    };
    const std::uint64_t commit = get(commit_);
    const std::uint64_t applied = get(applied_);
    const raft::node_id leader = get(leader_);
    gauge("keel_raft_term", "The current Raft term.", get(term_));
    gauge("keel_raft_commit_index", "The highest log index known to be committed.", commit);
    gauge("keel_raft_applied_index", "The highest log index applied to the store.", applied);
    gauge("keel_raft_apply_lag", "Committed entries not yet applied (commit - applied).",
          commit > applied ? commit - applied : 0);
    gauge("keel_raft_snapshot_index", "The index of the newest snapshot this node holds.",
          get(snapshot_index_));
    gauge("keel_raft_has_leader", "1 if this node knows a leader, 0 otherwise.",
          leader != raft::no_node ? 1 : 0);
    gauge("keel_raft_is_leader", "1 if this node is the leader, 0 otherwise.", get(is_leader_));
    gauge("keel_raft_leader_id", "The id of the leader this node knows (0: none).", leader);
    counter("keel_raft_leader_changes_total", "Leader changes this node has seen.",
            get(leader_changes_));
    gauge("keel_node_pending_writes", "Writes waiting for their entry to be applied.",
          get(pending_writes_));
    gauge("keel_node_pending_reads", "Linearizable reads waiting for their barrier.",
          get(pending_reads_));
    gauge("keel_node_stopped", "1 once the node stopped (storage failure or removal).",
          get(stopped_));
    counter("keel_proposals_total", "Writes and membership changes proposed to the log.",
            get(proposals_));
    counter("keel_proposals_failed_total",
            "Proposals refused (not leader, too large, dropped) or whose entry failed.",
            get(proposals_failed_));
    std::array<std::uint64_t, wal_sync_bounds.size()> buckets{};
    for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] = get(wal_sync_buckets_[i]);
    // Relaxed loads are no consistent cut: a scrape between a bucket's store
    // and the count's may see the bucket ahead of the count. The text
    // writer clamps the count to the buckets' sum, so the page stays
    // monotonic.
    const std::uint64_t syncs = get(wal_sync_count_);
    w.histogram("keel_wal_sync_duration_seconds", "Latency of WAL syncs (fsync or msync).",
                wal_sync_bounds, buckets, static_cast<double>(get(wal_sync_ns_)) / 1e9, syncs);
    counter("keel_wal_written_bytes_total", "Bytes the WAL wrote.", get(wal_bytes_));
    counter("keel_snapshots_saved_total", "Snapshots this node took.", get(snapshots_saved_));
    counter("keel_snapshot_saved_bytes_total", "Bytes of the snapshots this node took.",
            get(snapshot_saved_bytes_));
    counter("keel_snapshots_installed_total", "Snapshots received from a leader and installed.",
            get(snapshots_installed_));
    counter("keel_snapshot_installed_bytes_total", "Bytes of the snapshots installed.",
            get(snapshot_installed_bytes_));
    counter(
        "keel_snapshots_sent_total",
        "Snapshots handed to the transport (non-streaming) or streamed to followers without error.",
        get(snapshots_sent_));
    counter("keel_snapshots_send_failed_total", "Snapshots sent to followers that failed.",
            get(snapshots_send_failed_));
    counter("keel_snapshot_sent_bytes_total",
            "Bytes of the snapshots sent, as far as this node or its transport could see.",
            get(snapshot_sent_bytes_));
    message_family(w, "keel_messages_sent_total", "Raft messages sent, by type.", sent_);
    message_family(w, "keel_messages_received_total", "Raft messages received, by type.",
                   received_);
    w.family("keel_messages_dropped_total", "counter",
             "Messages dropped before Raft saw them, by reason.");
    w.sample("keel_messages_dropped_total", get(dropped_removed_), {{"reason", "removed_member"}});
    w.sample("keel_messages_dropped_total", get(dropped_damaged_),
             {{"reason", "damaged_snapshot"}});
    counter("keel_peer_unreachable_total", "Times the transport reported a peer unreachable.",
            get(unreachable_));
    gauge("keel_watches",
          "Watch subscriptions on the store whose handles are alive, closed ones included.",
          get(watches_));
    gauge("keel_watch_queued_events", "Events waiting unread in all watch queues.",
          get(watch_queued_));
    gauge("keel_watch_queue_max_depth", "Events waiting unread in the deepest watch queue.",
          get(watch_deepest_));
  }

 private:
  using counter_type = std::atomic<std::uint64_t>;
  static constexpr auto relaxed = std::memory_order_relaxed;

  // One writer: a load and a store, not a locked read-modify-write.
  static void add(counter_type& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(relaxed) + n, relaxed);
  }
  static void set(counter_type& c, std::uint64_t v) noexcept { c.store(v, relaxed); }
  static std::uint64_t get(const counter_type& c) noexcept { return c.load(relaxed); }

  static std::size_t index_of(raft::message_type t) noexcept {
    const auto i = static_cast<std::size_t>(t);
    return i < message_types ? i : 0;
  }

  static constexpr std::size_t message_types = static_cast<std::size_t>(raft::message_type_count);

  /// The network message types only: local ones never travel.
  static void message_family(prometheus_text& w, const char* name, const char* help,
                             const std::array<counter_type, message_types>& by_type) {
    w.family(name, "counter", help);
    for (std::size_t i = 0; i < message_types; ++i) {
      const auto t = static_cast<raft::message_type>(i);
      if (!raft::is_network_message(t)) continue;
      w.sample(name, get(by_type[i]), {{"type", raft::to_string(t)}});
    }
  }

  std::vector<label> labels_;
  counter_type term_{0}, commit_{0}, applied_{0}, snapshot_index_{0}, leader_{0}, is_leader_{0};
  counter_type leader_changes_{0}, pending_writes_{0}, pending_reads_{0}, stopped_{0};
  counter_type proposals_{0}, proposals_failed_{0};
  std::array<counter_type, wal_sync_bounds.size()> wal_sync_buckets_{};
  counter_type wal_sync_count_{0}, wal_sync_ns_{0}, wal_bytes_{0};
  counter_type snapshots_saved_{0}, snapshot_saved_bytes_{0};
  counter_type snapshots_installed_{0}, snapshot_installed_bytes_{0};
  counter_type snapshots_sent_{0}, snapshots_send_failed_{0}, snapshot_sent_bytes_{0};
  std::array<counter_type, message_types> sent_{}, received_{};
  counter_type dropped_removed_{0}, dropped_damaged_{0}, unreachable_{0};
  counter_type watches_{0}, watch_queued_{0}, watch_deepest_{0};
};

static_assert(metrics<prometheus_metrics>);

}  // namespace keel::observe
