// runner: a replica on its own thread, with blocking calls for the
// application. The thread owns the replica: it ticks it from the clock
// policy, runs what arrived from the transport and what callers posted, and
// hands each caller its outcome. Callers on any thread block in update(),
// view_linearizable(), status() and the membership calls, each with a
// timeout; view() and the store's watches need no round trip.
//
//   auto r = runner<steady_clock, posix_file_system, endpoint, Task>::start(fs, opts, connect);
//   auto version = (*r)->update([&](auto& tx) { return tx.create(task); }, 2s);
//
// Writes pipeline: the loop proposes each posted write as soon as it runs,
// without waiting for the previous one to commit, so many writers share
// each Raft round trip and each fsync.
//
// Observation: basic_runner<Observe, Clock, FS, Transport, Ts...> runs a
// basic_replica with the metrics and logging policies of the bundle Observe
// (observe/policies.hpp), whose objects start() takes; runner<Clock, FS,
// Transport, Ts...> is the alias with the silent defaults, so existing code
// is unchanged (the bundle comes first because Ts is a pack; see replica.hpp).
//
// Thread safety: every member may be called from any thread, except that
// the runner must outlive the calls, and the transport must stop delivering
// to the replica before the runner is destroyed (in-process: disconnect).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/node/clock.hpp"
#include "keel/node/replica.hpp"
#include "keel/node/status.hpp"
#include "keel/result.hpp"

namespace keel::node {

struct runner_options {
  /// How often Raft ticks; election and heartbeat timeouts are counted in
  /// ticks (replica_options). etcd's default heartbeat is 100 ms.
  std::chrono::milliseconds tick_interval{100};
};

/// What a batch did: how many of its updates were committed, and the first
/// error (an update's own, or the one that stopped the batch).
struct batch_result {
  std::size_t committed = 0;
  std::error_code error{};
};

struct batch_options {
  /// A group becomes one log entry once it holds this many changes...
  std::size_t max_changes = 200;
  /// ...or this share of the replica's max_proposal_bytes.
  double max_bytes_share = 0.75;
};

template <observe::policy_bundle Observe, clock Clock, wal::file_system FS,
          transport::transport Transport, store::object... Ts>
class basic_runner {
 public:
  using replica_type = basic_replica<Observe, FS, Transport, Ts...>;
  using observers_type = observe::observers<Observe>;
  using metrics_type = typename replica_type::metrics_type;
  using log_policy = typename replica_type::log_policy;
  using store_type = typename replica_type::store_type;
  using read_type = typename store_type::read_type;
  using duration = std::chrono::nanoseconds;

  /// Opens the replica (replica::open) and starts its thread.
  template <class Connect>
  static result<std::unique_ptr<basic_runner>> start(FS fs, replica_options opts, Connect&& connect,
                                                     runner_options ro = {}, Clock clock = {}) {
    return start(std::move(fs), std::move(opts), observers_type{}, std::forward<Connect>(connect),
                 ro, std::move(clock));
  }

  /// The same, the replica reporting to the application's metrics and
  /// logging objects (basic_replica::open). Requires: they outlive the runner.
  template <class Connect>
  static result<std::unique_ptr<basic_runner>> start(FS fs, replica_options opts,
                                                     observers_type obs, Connect&& connect,
                                                     runner_options ro = {}, Clock clock = {}) {
    std::unique_ptr<basic_runner> self(new basic_runner(ro, std::move(clock)));
    basic_runner* raw = self.get();
    opts.on_inbox = [raw] {
      raw->wake();
    };
    opts.on_applied = [raw] {
      raw->answer();
    };
    auto r =
        replica_type::open(std::move(fs), std::move(opts), obs, std::forward<Connect>(connect));
    if (!r) return r.error();
    self->replica_ = std::move(*r);
    self->thread_ = std::thread([raw] { raw->loop(); });
    return self;
  }

  basic_runner(const basic_runner&) = delete;
  basic_runner& operator=(const basic_runner&) = delete;
  ~basic_runner() {
    stop();
    replica_.reset();  // Its transport may call wake() until it is gone.
  }

  /// Stops the thread; calls still waiting fail with errc::node_stopped.
  /// The replica stays (its store can still be read).
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    work_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    for (auto& w : writes_) settle(*w.call, errc::node_stopped, 0);
    for (auto& r : reads_) settle(*r.call, errc::node_stopped, 0);
    for (auto& [c, t] : tasks_) {
      if (!c->done) settle(*c, errc::node_stopped, 0);
    }
    tasks_.clear();
    writes_.clear();
    reads_.clear();
  }

  /// Runs fn(write_transaction&) -> std::error_code on the leader and
  /// returns the write's version once Raft committed and this replica
  /// applied it. Errors: fn's own, errc::not_leader, leader_not_ready,
  /// request_too_large, sequence_conflict, lost_leadership, node_stopped,
  /// and errc::timeout (the write may or may not take effect). fn runs on
  /// the runner's thread while the caller waits.
  template <class F>
  result<std::uint64_t> update(F&& fn, duration timeout) {
    return submit([&](replica_type& r) { return r.propose(fn); }, timeout);
  }

  /// Writes a large set of changes as a few entries, as SwarmKit's Batch:
  /// fn(batch_writer& b) calls b.update(inner) for each change set; each
  /// inner update sees the ones before it and is atomic on its own (its
  /// error, which b.update returns, discards only its writes); the updates
  /// are grouped into log entries by batch_options and each group commits
  /// before the next starts. A group that fails to commit stops the batch:
  /// later b.update calls return its error without running.
  class batch_writer {
   public:
    template <class F>
    std::error_code update(F&& inner) {
      if (stopped_) return stopped_;
      std::error_code own;
      const auto ec = runner_.call(
          [&](replica_type& r) {
            if (group_.empty()) {
              group_ = {};
              group_.track_bytes = true;
            }
            own = r.group_update(group_, inner);
          },
          left());
      if (ec) return stop(ec);
      if (own) {
        if (!first_error_) first_error_ = own;
        // Refusals of the replica itself (not leading, stopped) end the batch.
        if (own == errc::not_leader || own == errc::leader_not_ready || own == errc::node_stopped) {
          return stop(own);
        }
        return own;
      }
      if (group_.changes.size() >= options_.max_changes ||
          static_cast<double>(group_.bytes) >=
              options_.max_bytes_share * static_cast<double>(max_bytes_)) {
        if (auto flushed = flush()) return flushed;
      }
      return {};
    }

   private:
    friend class basic_runner;
    batch_writer(basic_runner& r, batch_options o, duration timeout)
        : runner_(r), options_(o), deadline_(r.clock_.now() + timeout) {}

    duration left() const {
      return std::max(duration::zero(),
                      std::chrono::duration_cast<duration>(deadline_ - runner_.clock_.now()));
    }

    /// Proposes the group and waits for its commit.
    std::error_code flush() {
      if (stopped_ || group_.empty()) return stopped_;
      const std::size_t updates = group_.updates;
      auto done = runner_.submit([&](replica_type& r) { return r.propose_group(group_); }, left());
      if (!done) return stop(done.error());
      committed_ += updates;
      return {};
    }

    std::error_code stop(std::error_code ec) {
      stopped_ = ec;
      if (!first_error_) first_error_ = ec;
      return ec;
    }

    basic_runner& runner_;
    batch_options options_;
    typename Clock::time_point deadline_;
    typename replica_type::write_group group_{};
    std::uint64_t max_bytes_ = 0;
    std::size_t committed_ = 0;
    std::error_code first_error_{};
    std::error_code stopped_{};
  };

  template <class F>
  batch_result batch(F&& fn, duration timeout, batch_options options = {}) {
    batch_writer b(*this, options, timeout);
    (void)call([&](replica_type& r) { b.max_bytes_ = r.max_proposal_bytes(); }, timeout);
    std::forward<F>(fn)(b);
    (void)b.flush();
    return {b.committed_, b.first_error_};
  }

  /// Adds a learner (promoted once caught up), promotes, removes: the
  /// membership change's log index once applied, or the error.
  result<std::uint64_t> add_learner(raft::node_id id, std::string address, duration timeout) {
    return submit([&](replica_type& r) { return r.add_learner(id, address); }, timeout);
  }
  result<std::uint64_t> remove_member(raft::node_id id, duration timeout) {
    return submit([&](replica_type& r) { return r.remove_member(id); }, timeout);
  }

  /// Runs f(const read_transaction&) on a state that includes every write
  /// that completed before this call (ReadIndex), on any replica. Returns
  /// f's result (an std::error_code if f returns nothing) or the barrier's
  /// error: lost_leadership, timeout, node_stopped.
  template <class F>
  auto view_linearizable(F&& f, duration timeout) {
    using out = std::invoke_result_t<F&, const read_type&>;
    const std::error_code ec = barrier(timeout);
    if constexpr (std::is_void_v<out>) {
      if (!ec) store().view(f);
      return ec;
    } else {
      return ec ? result<out>(ec) : result<out>(store().view(f));
    }
  }

  /// Runs f(const read_transaction&) on this replica's applied state.
  template <class F>
  decltype(auto) view(F&& f) const {
    return replica_->store().view(std::forward<F>(f));
  }

  /// The store (views and watches are thread-safe; never write to it: only
  /// update() writes).
  store_type& store() { return replica_->store(); }

  /// The replica's status, read on its thread.
  result<node_status> status(duration timeout) {
    node_status out;
    auto ec = call([&](replica_type& r) { out = r.status(); }, timeout);
    if (ec) return ec;
    return out;
  }

  /// replica::watch_from, run on the replica's thread.
  template <class Filter>
  auto watch_from(std::uint64_t version, Filter filter, std::size_t capacity, duration timeout) {
    using out = decltype(replica_->watch_from(version, std::move(filter), capacity));
    std::optional<out> found;
    auto ec = call(
        [&](replica_type& r) { found.emplace(r.watch_from(version, std::move(filter), capacity)); },
        timeout);
    if (ec) return out(ec);
    return std::move(*found);
  }

  /// Hands leadership to `to`; errc::not_leader on a follower.
  std::error_code transfer_leadership(raft::node_id to, duration timeout) {
    std::error_code out;
    auto ec = call([&](replica_type& r) { out = r.transfer_leadership(to); }, timeout);
    return ec ? ec : out;
  }

  /// The replica's metrics object (a prometheus_metrics renders from any
  /// thread; see its own thread-safety note).
  metrics_type& metrics() noexcept { return replica_->metrics(); }

  /// The replica's logging object.
  log_policy& logger() noexcept { return replica_->logger(); }

  /// Runs f(replica&) on the runner's thread and waits for it.
  template <class F>
  std::error_code call(F&& f, duration timeout) {
    auto c = std::make_shared<waiting_call>();
    post(c, [&f, c](replica_type& r) {
      f(r);
      return std::error_code{};
    });
    return wait(*c, timeout).first;
  }

 private:
  /// One caller's request, guarded by mutex_.
  struct waiting_call {
    bool started = false;    ///< The loop began running it.
    bool abandoned = false;  ///< The caller gave up before it started.
    bool posted = false;     ///< Its proposal (if any) is in the log: no going back.
    bool done = false;
    /// The caller, past its deadline, waits for a running call to post or end.
    bool overdue = false;
    std::error_code error{};
    std::uint64_t index = 0;
    /// Its caller waits here (with mutex_): one wake-up per call, not one
    /// for every caller on every answer.
    std::condition_variable changed;
  };
  struct waiting_write {
    std::shared_ptr<const write_outcome> outcome;
    std::shared_ptr<waiting_call> call;
  };
  struct waiting_read {
    std::shared_ptr<const read_outcome> outcome;
    std::shared_ptr<waiting_call> call;
  };
  using task = std::function<void(replica_type&)>;

  basic_runner(runner_options ro, Clock clock) : options_(ro), clock_(std::move(clock)) {}

  /// Posts a proposal made by propose(replica&) and waits for its outcome.
  template <class Propose>
  result<std::uint64_t> submit(Propose&& propose, duration timeout) {
    auto c = std::make_shared<waiting_call>();
    post_task(c, [&propose, c, this](replica_type& r) {
      auto outcome = propose(r);
      std::lock_guard lock(mutex_);
      if (!outcome) {
        settle(*c, outcome.error(), 0);
      } else {
        c->posted = true;
        writes_.push_back({std::move(*outcome), c});
      }
      // Only an overdue caller cares that the call was posted; waking the
      // others would just send them back to sleep.
      if (c->overdue) c->changed.notify_one();
    });
    auto [ec, index] = wait(*c, timeout);
    if (ec) return ec;
    return index;
  }

  std::error_code barrier(duration timeout) {
    auto c = std::make_shared<waiting_call>();
    post_task(c, [c, this](replica_type& r) {
      auto outcome = r.read_barrier();
      std::lock_guard lock(mutex_);
      if (!outcome) {
        settle(*c, outcome.error(), 0);
      } else {
        c->posted = true;
        reads_.push_back({std::move(*outcome), c});
      }
      if (c->overdue) c->changed.notify_one();
    });
    return wait(*c, timeout).first;
  }

  template <class F>
  void post(const std::shared_ptr<waiting_call>& c, F&& f) {
    post_task(c, [c, f = std::forward<F>(f), this](replica_type& r) {
      const std::error_code ec = f(r);
      std::lock_guard lock(mutex_);
      settle(*c, ec, 0);
      c->changed.notify_one();
    });
  }

  /// Queues t for the loop; it runs only if the caller still waits.
  void post_task(const std::shared_ptr<waiting_call>& c, task t) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        settle(*c, errc::node_stopped, 0);
        return;
      }
      tasks_.emplace_back(c, [c, t = std::move(t), this](replica_type& r) {
        {
          std::lock_guard lock(mutex_);
          if (c->abandoned) return;
          c->started = true;
        }
        t(r);
      });
    }
    work_.notify_one();
  }

  /// Waits for c: its outcome, or errc::timeout once the deadline passed
  /// and the call either never started (then it never will) or is in the
  /// log (it may still commit). A call that is running is waited for: it
  /// may use the caller's references.
  std::pair<std::error_code, std::uint64_t> wait(waiting_call& c, duration timeout) {
    const auto deadline = clock_.now() + timeout;
    std::unique_lock lock(mutex_);
    while (!c.done) {
      const auto left = std::chrono::duration_cast<duration>(deadline - clock_.now());
      if (left <= duration::zero()) {
        if (!c.started) {
          c.abandoned = true;
          return {errc::timeout, 0};
        }
        if (c.posted) return {errc::timeout, 0};
        c.overdue = true;
        c.changed.wait(lock);  // Running now: its end is near.
        continue;
      }
      c.changed.wait_for(lock, left);
    }
    return {c.error, c.index};
  }

  /// Requires: mutex_ held.
  void settle(waiting_call& c, std::error_code ec, std::uint64_t index) {
    c.done = true;
    c.error = ec;
    c.index = index;
    c.changed.notify_one();
  }

  void wake() {
    {
      std::lock_guard lock(mutex_);
      inbox_ = true;
    }
    work_.notify_one();
  }

  void loop() {
    auto next_tick = clock_.now() + options_.tick_interval;
    for (;;) {
      std::vector<task> tasks;
      {
        std::unique_lock lock(mutex_);
        while (!stopping_ && tasks_.empty() && !inbox_ && clock_.now() < next_tick) {
          work_.wait_for(lock, std::chrono::duration_cast<duration>(next_tick - clock_.now()));
        }
        if (stopping_) return;
        inbox_ = false;
        for (auto& posted : tasks_) tasks.push_back(std::move(posted.second));
        tasks_.clear();
      }
      for (task& t : tasks) t(*replica_);
      while (clock_.now() >= next_tick) {
        replica_->tick();
        next_tick += options_.tick_interval;
      }
      while (replica_->run_once()) {
      }
      answer();
    }
  }

  /// Hands the finished outcomes to their callers.
  /// Wakes them after releasing mutex_, so a woken caller does not block on it.
  void answer() {
    std::vector<std::shared_ptr<waiting_call>> woken;
    {
      std::lock_guard lock(mutex_);
      auto finish = [&](std::shared_ptr<waiting_call>& c, const auto& outcome) {
        c->done = true;
        c->error = outcome.error;
        c->index = outcome.index;
        woken.push_back(std::move(c));
      };
      std::erase_if(writes_, [&](waiting_write& w) {
        if (!w.outcome->done) return false;
        finish(w.call, *w.outcome);
        return true;
      });
      std::erase_if(reads_, [&](waiting_read& r) {
        if (!r.outcome->done) return false;
        finish(r.call, *r.outcome);
        return true;
      });
    }
    for (auto& c : woken) c->changed.notify_one();  // `woken` keeps each call alive.
  }

  runner_options options_;
  Clock clock_;
  std::unique_ptr<replica_type> replica_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable work_;  ///< The loop waits here.
  /// Posted work, with the call it answers (stop() answers what never ran).
  std::deque<std::pair<std::shared_ptr<waiting_call>, task>> tasks_;
  std::vector<waiting_write> writes_;
  std::vector<waiting_read> reads_;
  bool inbox_ = false;
  bool stopping_ = false;
};

/// A runner that records no metrics and logs nothing (observe::defaults).
template <clock Clock, wal::file_system FS, transport::transport Transport, store::object... Ts>
using runner = basic_runner<observe::defaults, Clock, FS, Transport, Ts...>;

}  // namespace keel::node
