// progress: what a leader knows about one follower's log, and the state
// machine that decides how to send to it (Raft thesis 3.5, etcd's tracker):
//  - probe: the leader does not know where the follower's log ends; it sends
//    at most one append per heartbeat interval and backs `next` off on reject;
//  - replicate: the follower is known to match; appends stream optimistically
//    within the inflights window;
//  - snapshot: the follower needs a snapshot; nothing is sent until the node
//    layer reports the snapshot finished or failed.
//
// Invariant: match < next.
//
// Thread safety: none.
#pragma once

#include <algorithm>
#include <cstdint>

#include "keel/raft/inflights.hpp"

namespace keel::raft {

enum class progress_state : std::uint8_t { probe, replicate, snapshot };

constexpr const char* to_string(progress_state s) noexcept {
  switch (s) {
    case progress_state::probe:
      return "probe";
    case progress_state::replicate:
      return "replicate";
    case progress_state::snapshot:
      return "snapshot";
  }
  return "invalid";
}

struct progress {
  std::uint64_t match = 0;
  std::uint64_t next = 1;
  progress_state state = progress_state::probe;
  /// In snapshot state: the index of the snapshot being sent.
  std::uint64_t pending_snapshot = 0;
  /// Heard from since the last check-quorum round.
  bool recent_active = false;
  /// Probe state: an append was sent and no answer has come back yet.
  bool probe_sent = false;
  bool is_learner = false;
  raft::inflights inflights;

  progress(std::uint64_t next_index, std::size_t max_inflight, std::uint64_t max_inflight_bytes,
           bool learner)
      : next(next_index), is_learner(learner), inflights(max_inflight, max_inflight_bytes) {}

  void become_probe() {
    // After a snapshot, resume probing right after it.
    if (state == progress_state::snapshot) {
      const std::uint64_t snap = pending_snapshot;
      reset_state(progress_state::probe);
      next = std::max(match + 1, snap + 1);
    } else {
      reset_state(progress_state::probe);
      next = match + 1;
    }
  }

  void become_replicate() {
    reset_state(progress_state::replicate);
    next = match + 1;
  }

  void become_snapshot(std::uint64_t snapshot_index) {
    reset_state(progress_state::snapshot);
    pending_snapshot = snapshot_index;
  }

  /// An append up to `last` was sent carrying `bytes` of payload.
  void sent_entries(std::uint64_t last, std::uint64_t bytes) {
    if (state == progress_state::replicate) {
      if (last >= next) {
        next = last + 1;
        inflights.add(last, bytes);
      }
    } else if (state == progress_state::probe && last >= next) {
      // Only a probe carrying entries pauses: an empty one costs nothing to repeat.
      probe_sent = true;
    }
  }

  /// The follower acknowledged up to n; returns false if that is old news.
  bool maybe_update(std::uint64_t n) {
    bool updated = false;
    if (match < n) {
      match = n;
      updated = true;
      probe_sent = false;
    }
    next = std::max(next, n + 1);
    return updated;
  }

  /// The follower rejected an append at `rejected`; hint is the index it
  /// suggests. Returns false if the rejection is stale.
  bool maybe_decrease_to(std::uint64_t rejected, std::uint64_t hint) {
    if (state == progress_state::replicate) {
      // Stale if it refers to something already matched.
      if (rejected <= match) return false;
      next = match + 1;
      return true;
    }
    // Probe: the rejection must be for the probe we sent.
    if (next == 0 || next - 1 != rejected) return false;
    const std::uint64_t probe_at = hint < rejected ? hint + 1 : rejected;  // No overflow.
    next = std::max(probe_at, match + 1);
    probe_sent = false;
    return true;
  }

  /// Sending is paused: probe already in flight, window full, or snapshot.
  bool is_paused() const {
    switch (state) {
      case progress_state::probe:
        return probe_sent;
      case progress_state::replicate:
        return inflights.full();
      case progress_state::snapshot:
        return true;
    }
    return true;
  }

 private:
  void reset_state(progress_state s) {
    probe_sent = false;
    pending_snapshot = 0;
    state = s;
    inflights.reset();
  }
};

}  // namespace keel::raft
