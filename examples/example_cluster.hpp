// What the threaded examples share: a scratch directory on the real disk, a
// check that ends the example with a failure (the examples run as tests), and
// a cluster of runners in one process over a network (the in-process one, or
// an example's own), each runner with its own data directory on the posix
// file system.
//
// Each runner is a replica on its own thread (node/runner.hpp). Over the
// in-process network, a delivery_pump thread carries their messages as soon
// as they are sent. The cluster disconnects a runner from the network before
// stopping it, as the runner's contract asks.
//
// Leadership may move at any time (a runner thread starved on a loaded
// machine misses its heartbeats), so the examples never assume that the
// leader await_leader found still leads: they write with update_on_leader
// and read with read_linearizable, which retry on whichever runner leads.
//
// Thread safety: the cluster is driven from one thread (the example's main);
// the runners it hands out may be called from any thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "keel/errc.hpp"
#include "keel/node/runner.hpp"
#include "keel/result.hpp"
#include "keel/transport/delivery_pump.hpp"
#include "keel/transport/in_process.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::examples {

using namespace std::chrono_literals;

/// What an example throws when what it demonstrates did not happen.
struct check_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Prints "  ok: what" or throws check_failed("what").
inline void check(bool ok, const std::string& what) {
  if (!ok) throw check_failed(what);
  std::printf("  ok: %s\n", what.c_str());
}

/// Runs body(); returns main's exit status: 0, or 1 after printing why.
template <class Body>
int run_example(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("Done.\n");
  return 0;
}

/// A fresh directory under the system's temporary directory, removed with
/// everything in it when this object goes.
class temp_dir {
 public:
  explicit temp_dir(const std::string& name) {
    std::string pattern = (std::filesystem::temp_directory_path() / (name + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw check_failed("cannot create " + pattern);
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// Timing the examples use: 10 ms ticks, elections after 100-200 ticks
/// (1-2 s). The examples run as tests, in parallel and under sanitizers; a
/// runner thread starved for a whole election timeout loses its leadership,
/// so the margin is wide. The examples still survive a change of leader.
inline constexpr std::chrono::milliseconds example_tick{10};
inline constexpr int example_election_tick = 100;

/// How long an example waits for what should happen (a leader, a commit,
/// convergence). Generous: it matters only when something is wrong.
inline constexpr std::chrono::milliseconds await_timeout{60s};

/// Whether a write refused with ec may succeed on whichever runner leads
/// later: no leader yet, a leader not ready, or a leader that changed. The
/// write may have committed all the same after lost_leadership.
inline bool leadership_moved(std::error_code ec) {
  return ec == errc::not_leader || ec == errc::leader_not_ready || ec == errc::lost_leadership ||
         ec == errc::proposal_dropped;
}

/// Runners over one network, each in <dir>/node-<id>. Network has
/// connect(id, handler) -> transport and disconnect(id) (the in-process
/// network's shape) and outlives the cluster.
template <class Runner, class Network>
class runner_cluster {
 public:
  runner_cluster(Network& network, std::vector<raft::node_id> ids)
      : dir_("keel-example"), ids_(std::move(ids)), network_(network) {
    for (raft::node_id id : ids_) start(id);
  }
  runner_cluster(const runner_cluster&) = delete;
  runner_cluster& operator=(const runner_cluster&) = delete;
  ~runner_cluster() {
    for (auto& [id, r] : runners_) {
      network_.disconnect(id);
      r->stop();
    }
    runners_.clear();
  }

  /// Starts (or restarts, from its WAL) the runner of `id`.
  void start(raft::node_id id) {
    node::replica_options opts{.id = id,
                               .members = ids_,
                               .data_dir = dir_.path() + "/node-" + std::to_string(id),
                               .election_tick = example_election_tick};
    auto r = Runner::start(wal::posix_file_system{}, std::move(opts),
                           [&](transport::handler h) { return network_.connect(id, std::move(h)); },
                           {.tick_interval = example_tick});
    if (!r) throw check_failed("runner " + std::to_string(id) + ": " + r.error().message());
    runners_[id] = std::move(*r);
  }

  /// Stops the runner of `id` as a crash would: off the network first.
  void stop(raft::node_id id) {
    network_.disconnect(id);
    runners_.at(id)->stop();
    runners_.erase(id);
  }

  bool running(raft::node_id id) const { return runners_.contains(id); }
  Runner& at(raft::node_id id) { return *runners_.at(id); }
  const std::vector<raft::node_id>& ids() const noexcept { return ids_; }

  /// The id of the runner that leads and serves linearizable reads, within
  /// `within`. No event announces a leader, so this asks each runner for
  /// its status in a loop bounded by the deadline.
  raft::node_id await_leader(std::chrono::milliseconds within = await_timeout) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& [id, r] : runners_) {
        auto st = r->status(1s);
        if (!st || st->role != "leader") continue;
        // A new leader serves reads (and writes) once it applied an entry of its term.
        if (r->view_linearizable([](const auto&) { return 0; }, 2s)) return id;
      }
      std::this_thread::yield();
    }
    throw check_failed("no leader within " + std::to_string(within.count()) + " ms");
  }

  /// Runs fn(write_transaction&) -> std::error_code as a write on the runner
  /// that leads, and again on whichever leads next while the write is
  /// refused because leadership moves (leadership_moved), within `within`.
  /// Returns the write's version or the error that is not about leadership
  /// (fn's own, such as sequence_conflict, or errc::timeout).
  ///
  /// fn may run more than once, and an attempt reported lost_leadership may
  /// have committed: fn reads what it changes, so that running it again
  /// after its own commit does no harm.
  template <class F>
  result<std::uint64_t> update_on_leader(F&& fn, std::chrono::milliseconds within = await_timeout) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      const raft::node_id id = await_leader(std::max(left, std::chrono::milliseconds{1}));
      auto v = at(id).update(fn, std::max(left, std::chrono::milliseconds{1}));
      if (v || !leadership_moved(v.error()) || std::chrono::steady_clock::now() >= deadline) {
        return v;
      }
      std::printf("  (write on node %llu: %s; retried on the leader)\n",
                  static_cast<unsigned long long>(id), v.error().message().c_str());
    }
  }

  /// f(const read_transaction&) on the runner of `id`, linearizably
  /// (view_linearizable), retried within `within` while the read fails
  /// because no leader is known or the leader changed (or its barrier timed
  /// out): what view_linearizable returns.
  template <class F>
  auto read_linearizable(raft::node_id id, F&& f,
                         std::chrono::milliseconds within = await_timeout) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      auto v = at(id).view_linearizable(f, 5s);
      if (v || !(leadership_moved(v.error()) || v.error() == errc::timeout) ||
          std::chrono::steady_clock::now() >= deadline) {
        return v;
      }
      // A leader to answer the read first (status polling, as above).
      (void)await_leader(std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now()),
                                  std::chrono::milliseconds{1}));
    }
  }

 private:
  temp_dir dir_;
  std::vector<raft::node_id> ids_;
  Network& network_;
  std::map<raft::node_id, std::unique_ptr<Runner>> runners_;
};

/// The in-process network and the thread that delivers its messages.
struct in_process_wires {
  transport::in_process_network network{7};
  transport::delivery_pump pump{network};
};

/// Runners over the in-process network (which this cluster owns).
template <class Runner>
class in_process_cluster : private in_process_wires,
                           public runner_cluster<Runner, transport::in_process_network> {
 public:
  explicit in_process_cluster(std::vector<raft::node_id> ids)
      : in_process_wires(),
        runner_cluster<Runner, transport::in_process_network>(network, std::move(ids)) {}
};

}  // namespace keel::examples
