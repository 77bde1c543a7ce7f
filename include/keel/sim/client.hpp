// A simulated client of a keel cluster: it runs one register operation at a
// time (put, get or cas on one of a few keys) against the replica it thinks
// leads, and records the operation in a history for the linearizability
// checker.
//
// How each operation is recorded:
//  - put: propose(fn) where fn creates or updates the register. An immediate
//    error means nothing was proposed: dropped. Then the write_outcome:
//    success is a completed put; lost_leadership, node_stopped, a timeout,
//    or a crash of the replica before the outcome means the put may or may
//    not have happened (unknown); any other error (sequence_conflict: a
//    concurrent write won) means nothing was written: dropped.
//  - get: read_barrier() (ReadIndex), then, once it is done, a view() of the
//    same replica: the get's response. A failed barrier changes nothing:
//    dropped. With stale_reads, the get reads any replica's view() at once,
//    without a barrier: the deliberately broken read path.
//  - cas: read_barrier() on the leader, then propose(fn) where fn reads the
//    register: on a different value fn refuses and the cas is a definite
//    failure (fn read state at least as new as the barrier); otherwise it
//    writes, and the outcome is recorded as for a put.
// On not_leader the client follows the replica's leader hint, or tries
// another node.
//
// Thread safety: none; the simulation thread drives its clients.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/node/replica.hpp"
#include "keel/raft/types.hpp"
#include "keel/sim/history.hpp"
#include "keel/sim/register_object.hpp"
#include "keel/sim/scheduler.hpp"
#include "keel/store/selector.hpp"

namespace keel::sim {

struct client_options {
  /// Keys are "k0" .. "k<keys - 1>".
  std::size_t keys = 3;
  /// Steps a client waits for an outcome before it gives up (unknown).
  std::uint64_t timeout = 60;
  /// Gets read any replica's store without a barrier (broken on purpose).
  bool stale_reads = false;
};

/// What a client needs of the cluster it talks to.
template <class Nodes, class Replica>
concept client_nodes = requires(Nodes& n, raft::node_id id) {
  { n.replica(id) } -> std::same_as<Replica*>;  // Null while the node is down.
  { n.incarnation(id) } -> std::same_as<std::uint64_t>;
  { n.ids() } -> std::same_as<const std::vector<raft::node_id>&>;
};

/// Counts of a client's operations that left no trace in the history.
struct client_stats {
  std::uint64_t refused = 0;  ///< Refused at once: never reached Raft.
  std::uint64_t dropped = 0;  ///< Reached Raft, but surely had no effect.
};

template <class Replica>
class client {
 public:
  client(std::uint64_t id, raft::node_id target, client_options opts)
      : id_(id), target_(target), opts_(opts) {}

  std::uint64_t id() const noexcept { return id_; }
  bool idle() const noexcept { return phase_ == phase::idle; }
  /// Idle and not backing off after a refusal.
  bool ready(std::uint64_t step) const noexcept { return idle() && step >= rest_until_; }
  const client_stats& stats() const noexcept { return stats_; }

  /// Starts one operation drawn from s. Requires: idle().
  template <client_nodes<Replica> Nodes>
  void start(Nodes& nodes, scheduler& s, history& h, std::uint64_t step) {
    now_ = step;
    key_ = "k" + std::to_string(s.below(opts_.keys));
    value_ = "c" + std::to_string(id_) + "." + std::to_string(++written_);
    const std::uint64_t roll = s.below(100);
    if (roll < 40) {
      kind_ = op_kind::put;
      op_ = h.invoke_put(id_, key_, value_);
      propose(nodes, target_, s, h, step);
    } else if (roll < 75) {
      kind_ = op_kind::get;
      // Half the reads go to any node: followers must answer linearizably too.
      const raft::node_id at = s.chance(0.5) ? s.pick(nodes.ids()) : target_;
      if (opts_.stale_reads) {
        stale_get(nodes, at, h);
      } else {
        barrier(nodes, at, s, h, step);
      }
    } else {
      kind_ = op_kind::cas;
      auto seen = seen_.find(key_);
      expected_ = seen == seen_.end() ? std::nullopt : seen->second;
      op_ = h.invoke_cas(id_, key_, expected_, value_);
      barrier(nodes, target_, s, h, step);
    }
  }

  /// Learns what it can of the operation in progress.
  template <client_nodes<Replica> Nodes>
  void poll(Nodes& nodes, scheduler& s, history& h, std::uint64_t step) {
    now_ = step;
    if (phase_ == phase::idle) return;
    Replica* r = nodes.replica(node_);
    const bool alive = r != nullptr && nodes.incarnation(node_) == incarnation_;
    if (phase_ == phase::writing) {
      if (write_->done) {
        const std::error_code ec = write_->error;
        if (!ec) {
          h.complete_write(op_, true);
          seen_[key_] = value_;
        } else if (ec == errc::lost_leadership || ec == errc::node_stopped || ec == errc::timeout) {
          h.abandon(op_);
        } else {
          drop(h);
        }
        finish();
      } else if (!alive || step >= deadline_) {
        h.abandon(op_);  // It may still commit, or may never.
        finish();
        if (!alive) retarget(nullptr, s, nodes);
      }
      return;
    }
    // Waiting for a read barrier (a get, or the first half of a cas).
    if (!alive) {
      drop(h);
      finish();
      retarget(nullptr, s, nodes);
      return;
    }
    if (!read_->done) {
      if (step >= deadline_) {
        drop(h);
        finish();
      }
      return;
    }
    if (const std::error_code ec = read_->error) {
      drop(h);
      finish();
      if (ec != errc::timeout) retarget(r, s, nodes);
      return;
    }
    if (kind_ == op_kind::get) {
      std::optional<std::string> v = read(*r);
      seen_[key_] = v;
      h.complete_get(op_, std::move(v));
      finish();
      return;
    }
    propose(nodes, node_, s, h, step);
  }

  /// The run is over: whatever is in progress stays unknown (or, for a
  /// get, leaves no trace).
  void stop(history& h) {
    if (phase_ == phase::idle) return;
    if (phase_ == phase::writing) {
      h.abandon(op_);
    } else {
      drop(h);
    }
    finish();
  }

  /// The register `key` as replica r's store holds it now.
  static std::optional<std::string> read(const Replica& r, const std::string& key) {
    return r.view([&](const auto& tx) -> std::optional<std::string> {
      auto obj = tx.template get<register_object>(key);
      if (!obj) return std::nullopt;
      return obj->value;
    });
  }

 private:
  enum class phase : std::uint8_t { idle, writing, reading };

  std::optional<std::string> read(const Replica& r) const { return read(r, key_); }

  template <class Nodes>
  void stale_get(Nodes& nodes, raft::node_id at, history& h) {
    op_ = h.invoke_get(id_, key_);
    Replica* r = nodes.replica(at);
    if (r == nullptr) {
      refuse(h);
      return;
    }
    std::optional<std::string> v = read(*r);
    seen_[key_] = v;
    h.complete_get(op_, std::move(v));
  }

  template <class Nodes>
  void barrier(Nodes& nodes, raft::node_id at, scheduler& s, history& h, std::uint64_t step) {
    if (kind_ == op_kind::get) op_ = h.invoke_get(id_, key_);
    Replica* r = nodes.replica(at);
    if (r == nullptr) {
      refuse(h);
      finish();
      retarget(nullptr, s, nodes);
      return;
    }
    auto b = r->read_barrier();
    if (!b) {
      refuse(h);
      finish();
      retarget(r, s, nodes);
      return;
    }
    read_ = *b;
    wait_on(nodes, at, step, phase::reading);
  }

  /// Proposes the put, or the write half of a cas, on node `at`.
  template <class Nodes>
  void propose(Nodes& nodes, raft::node_id at, scheduler& s, history& h, std::uint64_t step) {
    Replica* r = nodes.replica(at);
    if (r == nullptr) {
      kind_ == op_kind::put ? refuse(h) : drop(h);
      finish();
      retarget(nullptr, s, nodes);
      return;
    }
    bool mismatch = false;
    std::optional<std::string> found;
    auto w = r->propose([&](auto& tx) -> std::error_code {
      auto current = tx.template get<register_object>(key_);
      if (current) found = current->value;
      if (kind_ == op_kind::cas && found != expected_) {
        mismatch = true;
        return errc::sequence_conflict;  // Refused: nothing is proposed.
      }
      if (!current) return tx.create(register_object{.id = key_, .value = value_, .version = 0});
      register_object next = *current;
      next.value = value_;
      return tx.update(std::move(next));  // Keeps the base-version check.
    });
    if (!w) {
      if (mismatch) {
        h.complete_write(op_, false);
        seen_[key_] = found;
      } else {
        kind_ == op_kind::put ? refuse(h) : drop(h);
        retarget(r, s, nodes);
      }
      finish();
      return;
    }
    write_ = *w;
    wait_on(nodes, at, step, phase::writing);
  }

  template <class Nodes>
  void wait_on(Nodes& nodes, raft::node_id at, std::uint64_t step, phase p) {
    node_ = at;
    incarnation_ = nodes.incarnation(at);
    deadline_ = step + opts_.timeout;
    phase_ = p;
  }

  /// Follows r's leader hint, or picks another node, after a short rest
  /// (a cluster without a leader would otherwise see a storm of retries).
  template <class Nodes>
  void retarget(const Replica* r, scheduler& s, Nodes& nodes) {
    rest_until_ = now_ + s.between(1, 5);
    const raft::node_id hint = r != nullptr ? r->leader() : raft::no_node;
    if (hint != raft::no_node && hint != target_) {
      target_ = hint;
    } else {
      target_ = s.pick(nodes.ids());
    }
  }

  void drop(history& h) {
    h.drop(op_);
    ++stats_.dropped;
  }

  void refuse(history& h) {
    h.drop(op_);
    ++stats_.refused;
  }

  void finish() {
    phase_ = phase::idle;
    write_.reset();
    read_.reset();
  }

  std::uint64_t id_;
  raft::node_id target_;
  client_options opts_;
  client_stats stats_;
  phase phase_ = phase::idle;
  op_kind kind_ = op_kind::get;
  history::id op_ = 0;
  std::string key_;
  std::string value_;
  std::optional<std::string> expected_;
  std::uint64_t written_ = 0;
  raft::node_id node_ = raft::no_node;
  std::uint64_t incarnation_ = 0;
  std::uint64_t deadline_ = 0;
  std::uint64_t now_ = 0;
  std::uint64_t rest_until_ = 0;
  std::shared_ptr<const node::write_outcome> write_;
  std::shared_ptr<const node::read_outcome> read_;
  /// The last value this client saw per key: what its cas expects.
  std::map<std::string, std::optional<std::string>> seen_;
};

}  // namespace keel::sim
