// A deterministic in-process network for tests and the cluster simulation:
// every node of a cluster in one process connects to one in_process_network
// and gets an `endpoint`, its transport (it satisfies keel::transport::
// transport). Nothing moves until the owner of the network drives it:
// advance(ticks) moves logical time and delivers what is due; deliver_all()
// delivers everything in flight regardless of delays.
//
// Model:
//  - Time is a logical tick counter that only advance() moves. Each message
//    gets a due time, now + a delay drawn from [min, max] (set_delay), and
//    is delivered in (due time, send sequence) order. Different delays
//    reorder messages; set_reorder(false) keeps each link FIFO by never
//    letting a message fall due before the previous one on its link.
//  - Every random choice (loss, duplication, delay) is drawn at send time,
//    in send order, from one generator seeded by the constructor: one seed
//    and one sequence of calls replay one run exactly.
//  - A send succeeds only to a peer of the sender (endpoint::add_peer) that
//    is connected to the network. A send to a disconnected or never
//    connected node, or over a link at its in-flight cap (set_link_capacity),
//    is refused: dropped, counted, and reported to the sender's
//    handler::unreachable, like a failed dial or a full send queue (etcd's
//    rafthttp reports ReportUnreachable for both). A send to a node that is
//    not a peer is dropped and counted, not reported.
//  - The network loses messages silently (counted, never reported): random
//    loss (set_drop_rate, per link or overall), and link rules (partition,
//    cut, isolate), checked both when a message is sent and when it would be
//    delivered, so a partition loses what it finds on the wire too.
//  - Duplication (set_duplicate_rate) puts a second copy in flight with its
//    own delay.
//  - Crash and restart: disconnect(id) drops the messages in flight to id
//    (the connection died with the process); messages id already sent stay
//    in flight. The old endpoint is dead: its sends are dropped and counted.
//    connect(id, ...) again starts a new incarnation with no peers.
//  - Unreachable reports are queued like messages (due now, in sequence),
//    one per sender and peer at a time, and handed out by advance() and
//    deliver_all(), never from inside send.
//  - Bounded: at most link_capacity() messages in flight per link, and at
//    most one pending unreachable report per sender and peer.
//  - Accounting, per sender: sent + duplicated == delivered + dropped +
//    (messages still in flight).
//
// Thread safety: every member of the network and of its endpoints may be
// called from any thread; one mutex guards the state. Handlers run without
// the mutex held, on the thread that called advance() or deliver_all(), so
// a handler may send, connect or disconnect. After disconnect(id) returns,
// id's old handler is not running and is never called again (unless
// disconnect was called from inside that handler, whose call then finishes
// normally). Delivery order is deterministic when one thread delivers.
//
// Requires: the network outlives its endpoints and is not destroyed while a
// call to it is in progress.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "keel/raft/config.hpp"
#include "keel/raft/types.hpp"
#include "keel/transport/transport.hpp"

namespace keel::transport {

/// Why the in-process network dropped a message.
enum class drop_reason : std::uint8_t {
  not_a_peer,    ///< The target is not a peer of the sender (never added, or removed).
  sender_down,   ///< Sent through the endpoint of a disconnected incarnation.
  peer_down,     ///< The target is not connected (reported unreachable).
  congested,     ///< The link was at its in-flight cap (reported unreachable).
  partitioned,   ///< A partition, cut or isolation was in the way (silent).
  lost,          ///< Random loss (silent).
  peer_crashed,  ///< The target disconnected while the message was in flight (silent).
};
inline constexpr std::size_t drop_reason_count =
    static_cast<std::size_t>(drop_reason::peer_crashed) + 1;

constexpr const char* to_string(drop_reason r) noexcept {
  switch (r) {
    case drop_reason::not_a_peer:
      return "not a peer";
    case drop_reason::sender_down:
      return "sender down";
    case drop_reason::peer_down:
      return "peer down";
    case drop_reason::congested:
      return "congested";
    case drop_reason::partitioned:
      return "partitioned";
    case drop_reason::lost:
      return "lost";
    case drop_reason::peer_crashed:
      return "peer crashed";
  }
  return "invalid";
}

/// Message counts of one node (as a sender, except `received`) or of the
/// whole network.
struct traffic_stats {
  std::uint64_t sent = 0;        ///< send() calls.
  std::uint64_t delivered = 0;   ///< Copies handed to their target's handler.
  std::uint64_t dropped = 0;     ///< Copies dropped, for any reason.
  std::uint64_t duplicated = 0;  ///< Extra copies the network made.
  std::uint64_t received = 0;    ///< Copies handed to this node's handler.
  std::array<std::uint64_t, drop_reason_count> dropped_by{};  ///< `dropped`, by reason.

  std::uint64_t dropped_for(drop_reason r) const noexcept {
    return dropped_by[static_cast<std::size_t>(r)];
  }

  traffic_stats& operator+=(const traffic_stats& o) noexcept {
    sent += o.sent;
    delivered += o.delivered;
    dropped += o.dropped;
    duplicated += o.duplicated;
    received += o.received;
    for (std::size_t i = 0; i < drop_reason_count; ++i) dropped_by[i] += o.dropped_by[i];
    return *this;
  }

  friend bool operator==(const traffic_stats&, const traffic_stats&) = default;
};

/// Messages a link holds in flight at most, unless set_link_capacity says otherwise.
inline constexpr std::size_t default_link_capacity = 10'000;
/// Events advance() and deliver_all() handle at most per call, unless told otherwise.
inline constexpr std::size_t default_delivery_limit = 1'000'000;

class in_process_network;

/// One node's transport on an in_process_network; made by connect(). A cheap
/// handle: copies refer to the same connection.
class endpoint {
 public:
  /// Queues m for m.to (see the model in the file comment); never blocks on delivery.
  void send(raft::message m);
  /// Makes id a peer, or updates its address (kept for bookkeeping only).
  void add_peer(raft::node_id id, const std::string& address);
  /// id is no longer a peer: later sends to it are dropped and counted.
  void remove_peer(raft::node_id id);
  /// What this node's transport knows about peer id.
  peer_status status(raft::node_id id) const;
  /// The peers and their addresses, by id.
  std::vector<std::pair<raft::node_id, std::string>> peers() const;
  /// The node this endpoint belongs to.
  raft::node_id id() const noexcept { return id_; }
  /// False once its node was disconnected (or connected again, anew).
  bool connected() const;

 private:
  friend class in_process_network;
  endpoint(in_process_network& net, raft::node_id id, std::uint64_t generation) noexcept
      : net_(&net), id_(id), generation_(generation) {}

  in_process_network* net_;
  raft::node_id id_;
  std::uint64_t generation_;
};

static_assert(transport<endpoint>);

/// The network shared by the nodes of an in-process cluster.
class in_process_network {
 public:
  explicit in_process_network(std::uint64_t seed) : seed_(seed), random_(seed) {}
  in_process_network(const in_process_network&) = delete;
  in_process_network& operator=(const in_process_network&) = delete;
  ~in_process_network() = default;

  /// The seed this network draws every random choice from.
  std::uint64_t seed() const noexcept { return seed_; }

  // --- membership ----------------------------------------------------------

  /// Connects node id, whose messages arrive through h, and returns its
  /// transport. Connecting a connected id disconnects it first (a restart).
  /// Requires: id != raft::no_node and h.deliver is set.
  endpoint connect(raft::node_id id, handler h) {
    assert(id != raft::no_node && "node id 0 means none");
    assert(h.deliver && "a handler must deliver");
    std::unique_lock lock(mutex_);
    disconnect_locked(lock, id);
    node_state& node = nodes_[id];
    node.connected = true;
    node.generation = ++generations_;
    node.callbacks = std::make_shared<const handler>(std::move(h));
    return {*this, id, node.generation};
  }

  /// Crashes node id: drops what is in flight to it, kills its endpoint and
  /// waits until its handler is not running. No-op if id is not connected.
  void disconnect(raft::node_id id) {
    std::unique_lock lock(mutex_);
    disconnect_locked(lock, id);
  }

  bool connected(raft::node_id id) const {
    std::lock_guard lock(mutex_);
    auto it = nodes_.find(id);
    return it != nodes_.end() && it->second.connected;
  }

  // --- time and delivery ---------------------------------------------------

  std::uint64_t now() const {
    std::lock_guard lock(mutex_);
    return now_;
  }

  /// Moves time forward by `ticks`, delivering in (due, sequence) order every
  /// message and report that falls due meanwhile, those sent by handlers on
  /// the way included; now() is each message's due time while its handler
  /// runs. Handles at most `limit` events, so a livelock ends; returns how
  /// many messages were delivered. Time ends at the old now() + ticks.
  std::size_t advance(std::uint64_t ticks, std::size_t limit = default_delivery_limit) {
    std::unique_lock lock(mutex_);
    const std::uint64_t until = saturating_add(now_, ticks);
    const std::size_t delivered = run(lock, until, limit);
    now_ = std::max(now_, until);
    return delivered;
  }

  /// Delivers everything in flight, delays ignored (in due, sequence order),
  /// and what handlers send meanwhile, until nothing is in flight or `limit`
  /// events were handled. Time does not move. Returns how many messages were
  /// delivered.
  std::size_t deliver_all(std::size_t limit = default_delivery_limit) {
    std::unique_lock lock(mutex_);
    return run(lock, std::nullopt, limit);
  }

  /// Blocks until a message or report is in flight, or `timeout` passed;
  /// returns whether something is. How a delivery thread waits for work
  /// when the network carries a threaded cluster (see delivery_pump).
  template <class Rep, class Period>
  bool wait_for_traffic(const std::chrono::duration<Rep, Period>& timeout) {
    std::unique_lock lock(mutex_);
    return traffic_.wait_for(lock, timeout, [&] { return !queue_.empty(); });
  }

  /// Wakes every wait_for_traffic call (e.g. to stop a delivery thread).
  void wake_waiters() { traffic_.notify_all(); }

  /// Messages in flight (not yet delivered or dropped).
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return messages_in_flight_;
  }

  /// Messages in flight from `from` to `to`.
  std::size_t in_flight(raft::node_id from, raft::node_id to) const {
    std::lock_guard lock(mutex_);
    auto it = links_.find({from, to});
    return it == links_.end() ? 0 : it->second.in_flight;
  }

  /// When the earliest message or report in flight falls due, if any.
  std::optional<std::uint64_t> next_due() const {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) return std::nullopt;
    return queue_.begin()->first.due;
  }

  // --- faults --------------------------------------------------------------

  /// Loses each later message with probability p, except on links with their
  /// own rate. Requires: 0 <= p <= 1.
  void set_drop_rate(double p) {
    assert(p >= 0 && p <= 1 && "a drop rate is a probability");
    std::lock_guard lock(mutex_);
    drop_rate_ = p;
  }

  /// Loses each later message from `from` to `to` with probability p,
  /// whatever the overall rate. Requires: 0 <= p <= 1.
  void set_drop_rate(raft::node_id from, raft::node_id to, double p) {
    assert(p >= 0 && p <= 1 && "a drop rate is a probability");
    std::lock_guard lock(mutex_);
    links_[{from, to}].drop_rate = p;
  }

  /// The link from `from` to `to` follows the overall drop rate again.
  void reset_drop_rate(raft::node_id from, raft::node_id to) {
    std::lock_guard lock(mutex_);
    if (auto it = links_.find({from, to}); it != links_.end()) it->second.drop_rate.reset();
  }

  /// Duplicates each later message with probability p. Requires: 0 <= p <= 1.
  void set_duplicate_rate(double p) {
    assert(p >= 0 && p <= 1 && "a duplicate rate is a probability");
    std::lock_guard lock(mutex_);
    duplicate_rate_ = p;
  }

  /// Each later message falls due after a delay drawn uniformly from
  /// [min_ticks, max_ticks]. Requires: min_ticks <= max_ticks.
  void set_delay(std::uint64_t min_ticks, std::uint64_t max_ticks) {
    assert(min_ticks <= max_ticks && "the delay range is [min, max]");
    std::lock_guard lock(mutex_);
    min_delay_ = std::min(min_ticks, max_ticks);
    max_delay_ = std::max(min_ticks, max_ticks);
  }

  /// Whether messages of one link may overtake each other when their delays
  /// differ (the default); false keeps every link FIFO, as a stream would.
  void set_reorder(bool on) {
    std::lock_guard lock(mutex_);
    reorder_ = on;
  }

  /// Nothing crosses between a node of `a` and a node of `b`, either way.
  void partition(std::vector<raft::node_id> a, std::vector<raft::node_id> b) {
    std::lock_guard lock(mutex_);
    partitions_.emplace_back(std::set<raft::node_id>(a.begin(), a.end()),
                             std::set<raft::node_id>(b.begin(), b.end()));
  }

  /// Nothing crosses from `from` to `to` (the other way is untouched).
  void cut(raft::node_id from, raft::node_id to) {
    std::lock_guard lock(mutex_);
    cuts_.insert({from, to});
  }

  /// Nothing crosses between id and any other node.
  void isolate(raft::node_id id) {
    std::lock_guard lock(mutex_);
    isolated_.insert(id);
  }

  /// Removes every partition, cut and isolation (not loss, delay or duplication).
  void heal() {
    std::lock_guard lock(mutex_);
    partitions_.clear();
    cuts_.clear();
    isolated_.clear();
  }

  /// Whether a partition, cut or isolation stops messages from `from` to `to`.
  bool blocked(raft::node_id from, raft::node_id to) const {
    std::lock_guard lock(mutex_);
    return blocked_locked(from, to);
  }

  /// Back to a perfect network: heal(), no loss (overall and per link), no
  /// duplication, no delay, reordering allowed. The link capacity stays.
  void reset_faults() {
    std::lock_guard lock(mutex_);
    partitions_.clear();
    cuts_.clear();
    isolated_.clear();
    drop_rate_ = 0;
    duplicate_rate_ = 0;
    min_delay_ = 0;
    max_delay_ = 0;
    reorder_ = true;
    for (auto& [key, link] : links_) link.drop_rate.reset();
  }

  /// At most n messages in flight per link; later sends are refused as
  /// congested. Requires: n >= 1.
  void set_link_capacity(std::size_t n) {
    assert(n >= 1 && "a link must hold a message");
    std::lock_guard lock(mutex_);
    link_capacity_ = std::max<std::size_t>(n, 1);
  }

  std::size_t link_capacity() const {
    std::lock_guard lock(mutex_);
    return link_capacity_;
  }

  // --- statistics ----------------------------------------------------------

  /// Counts of the whole network.
  traffic_stats stats() const {
    std::lock_guard lock(mutex_);
    traffic_stats total;
    for (const auto& [id, node] : nodes_) total += node.stats;
    return total;
  }

  /// Counts of node id, over all its incarnations (zero if it never connected).
  traffic_stats stats(raft::node_id id) const {
    std::lock_guard lock(mutex_);
    auto it = nodes_.find(id);
    return it == nodes_.end() ? traffic_stats{} : it->second.stats;
  }

 private:
  friend class endpoint;

  struct peer_entry {
    std::string address;
    peer_status status;
  };

  struct node_state {
    std::shared_ptr<const handler> callbacks;  ///< Shared with the calls in progress.
    bool connected = false;
    std::uint64_t generation = 0;  ///< Of the current (or last) incarnation.
    std::map<raft::node_id, peer_entry> peers;
    traffic_stats stats;
    std::size_t active = 0;  ///< Handler calls in progress.
  };

  struct link_state {
    std::size_t in_flight = 0;
    std::uint64_t last_due = 0;  ///< Of the last message queued, for FIFO links.
    std::optional<double> drop_rate;
  };

  /// A message in flight, or an unreachable report (from: the sender to
  /// notify, to: the peer it could not reach).
  struct flight {
    raft::message message;
    raft::node_id from = raft::no_node;
    raft::node_id to = raft::no_node;
    std::uint64_t generation = 0;  ///< The target's (message) or the sender's (report).
    bool report = false;
  };

  struct flight_key {
    std::uint64_t due = 0;
    std::uint64_t sequence = 0;
    friend bool operator<(const flight_key& a, const flight_key& b) noexcept {
      return a.due != b.due ? a.due < b.due : a.sequence < b.sequence;
    }
  };

  using link_key = std::pair<raft::node_id, raft::node_id>;

  static std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    return b > std::numeric_limits<std::uint64_t>::max() - a
               ? std::numeric_limits<std::uint64_t>::max()
               : a + b;
  }

  /// The handler calls this thread is inside, innermost last, so disconnect
  /// from inside a handler does not wait for itself.
  static std::vector<std::pair<const in_process_network*, raft::node_id>>& calls_on_this_thread() {
    static thread_local std::vector<std::pair<const in_process_network*, raft::node_id>> calls;
    return calls;
  }

  std::size_t own_calls(raft::node_id id) const {
    const auto& calls = calls_on_this_thread();
    return static_cast<std::size_t>(std::count(
        calls.begin(), calls.end(), std::pair<const in_process_network*, raft::node_id>(this, id)));
  }

  // --- randomness (callers hold the mutex) ---------------------------------

  bool chance(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    // 53 random bits: a uniform double in [0, 1), the same on every platform.
    const double u = static_cast<double>(random_.next() >> 11) * 0x1.0p-53;
    return u < p;
  }

  std::uint64_t draw_delay() {
    if (max_delay_ == min_delay_) return min_delay_;
    const std::uint64_t span = max_delay_ - min_delay_;
    const std::uint64_t r = random_.next();
    return min_delay_ + (span == std::numeric_limits<std::uint64_t>::max() ? r : r % (span + 1));
  }

  // --- state changes (callers hold the mutex) ------------------------------

  bool blocked_locked(raft::node_id from, raft::node_id to) const {
    if (from == to) return false;
    if (isolated_.contains(from) || isolated_.contains(to)) return true;
    if (cuts_.contains({from, to})) return true;
    return std::any_of(partitions_.begin(), partitions_.end(), [&](const auto& p) {
      return (p.first.contains(from) && p.second.contains(to)) ||
             (p.second.contains(from) && p.first.contains(to));
    });
  }

  static void count_drop(node_state& sender, drop_reason r) noexcept {
    ++sender.stats.dropped;
    ++sender.stats.dropped_by[static_cast<std::size_t>(r)];
  }

  void disconnect_locked(std::unique_lock<std::mutex>& lock, raft::node_id id) {
    auto it = nodes_.find(id);
    if (it == nodes_.end() || !it->second.connected) return;
    node_state& node = it->second;
    node.connected = false;
    node.peers.clear();
    for (auto q = queue_.begin(); q != queue_.end();) {
      flight& f = q->second;
      if (f.report && f.from == id) {
        pending_reports_.erase({f.from, f.to});
      } else if (!f.report && f.to == id) {
        --links_[{f.from, f.to}].in_flight;
        --messages_in_flight_;
        count_drop(nodes_.at(f.from), drop_reason::peer_crashed);
      } else {
        ++q;
        continue;
      }
      q = queue_.erase(q);
    }
    const std::size_t own = own_calls(id);
    idle_.wait(lock, [&] { return node.active <= own; });
    node.callbacks.reset();  // A call still running on this thread holds its own reference.
  }

  /// Refuses a send the sender's transport knows failed: counted, the peer
  /// marked unreachable, and a report queued for the sender's handler.
  void refuse(node_state& sender, raft::node_id from, peer_status& peer, raft::node_id to,
              drop_reason reason, std::string error) {
    peer.reachable = false;
    peer.last_error = std::move(error);
    ++peer.dropped;
    count_drop(sender, reason);
    if (pending_reports_.insert({from, to}).second) {
      queue_.emplace(flight_key{now_, sequence_++}, flight{.message = {},
                                                           .from = from,
                                                           .to = to,
                                                           .generation = sender.generation,
                                                           .report = true});
      traffic_.notify_one();
    }
  }

  void enqueue(link_state& link, raft::node_id from, raft::node_id to, std::uint64_t generation,
               raft::message m) {
    std::uint64_t due = saturating_add(now_, draw_delay());
    if (!reorder_) due = std::max(due, link.last_due);
    link.last_due = std::max(link.last_due, due);
    ++link.in_flight;
    ++messages_in_flight_;
    queue_.emplace(
        flight_key{due, sequence_++},
        flight{.message = std::move(m), .from = from, .to = to, .generation = generation});
    traffic_.notify_one();
  }

  void send_from(raft::node_id from, std::uint64_t generation, raft::message m) {
    std::lock_guard lock(mutex_);
    node_state& sender = nodes_.at(from);
    ++sender.stats.sent;
    if (!sender.connected || sender.generation != generation) {
      count_drop(sender, drop_reason::sender_down);
      return;
    }
    const raft::node_id to = m.to;
    auto peer = sender.peers.find(to);
    if (peer == sender.peers.end()) {
      count_drop(sender, drop_reason::not_a_peer);
      return;
    }
    peer_status& status = peer->second.status;
    auto target = nodes_.find(to);
    if (target == nodes_.end() || !target->second.connected) {
      refuse(sender, from, status, to, drop_reason::peer_down,
             "node " + std::to_string(to) + " is not connected to the network (down or unknown)");
      return;
    }
    link_state& link = links_[{from, to}];
    if (link.in_flight >= link_capacity_) {
      refuse(sender, from, status, to, drop_reason::congested,
             "link " + std::to_string(from) + " -> " + std::to_string(to) + " is congested: " +
                 std::to_string(link.in_flight) + " messages in flight, the link's capacity");
      return;
    }
    status.reachable = true;
    ++status.sent;
    // From here on the network loses messages silently.
    if (blocked_locked(from, to)) {
      count_drop(sender, drop_reason::partitioned);
      return;
    }
    if (chance(link.drop_rate.value_or(drop_rate_))) {
      count_drop(sender, drop_reason::lost);
      return;
    }
    const std::uint64_t target_generation = target->second.generation;
    if (chance(duplicate_rate_) && link.in_flight + 2 <= link_capacity_) {
      raft::message copy = m;
      enqueue(link, from, to, target_generation, std::move(m));
      enqueue(link, from, to, target_generation, std::move(copy));
      ++sender.stats.duplicated;
    } else {
      enqueue(link, from, to, target_generation, std::move(m));
    }
  }

  /// Calls call(handler) for node id without the mutex, keeping id's
  /// disconnect waiting meanwhile.
  template <class Call>
  void call_handler(std::unique_lock<std::mutex>& lock, raft::node_id id, node_state& node,
                    Call&& call) {
    std::shared_ptr<const handler> h = node.callbacks;
    calls_on_this_thread().emplace_back(this, id);
    ++node.active;
    lock.unlock();
    struct relock {
      std::unique_lock<std::mutex>& lock;
      node_state& node;
      std::condition_variable& idle;
      ~relock() {
        calls_on_this_thread().pop_back();
        lock.lock();
        --node.active;
        idle.notify_all();
      }
    } guard{lock, node, idle_};
    std::forward<Call>(call)(*h);
  }

  /// The delivery loop: handles events in (due, sequence) order, those due
  /// by `until` only if given, at most `limit` of them.
  std::size_t run(std::unique_lock<std::mutex>& lock, std::optional<std::uint64_t> until,
                  std::size_t limit) {
    std::size_t delivered = 0;
    for (std::size_t handled = 0; handled < limit && !queue_.empty(); ++handled) {
      auto first = queue_.begin();
      if (until && first->first.due > *until) break;
      if (until) now_ = std::max(now_, first->first.due);
      flight f = std::move(first->second);
      queue_.erase(first);

      if (f.report) {
        pending_reports_.erase({f.from, f.to});
        node_state& sender = nodes_.at(f.from);
        if (!sender.connected || sender.generation != f.generation ||
            !sender.callbacks->unreachable) {
          continue;
        }
        call_handler(lock, f.from, sender, [&](const handler& h) { h.unreachable(f.to); });
        continue;
      }

      --links_[{f.from, f.to}].in_flight;
      --messages_in_flight_;
      node_state& sender = nodes_.at(f.from);
      if (blocked_locked(f.from, f.to)) {
        count_drop(sender, drop_reason::partitioned);
        continue;
      }
      auto target = nodes_.find(f.to);
      if (target == nodes_.end() || !target->second.connected ||
          target->second.generation != f.generation) {
        count_drop(sender, drop_reason::peer_crashed);  // Normally purged by disconnect already.
        continue;
      }
      ++sender.stats.delivered;
      ++target->second.stats.received;
      ++delivered;
      call_handler(lock, f.to, target->second,
                   [&](const handler& h) { h.deliver(std::move(f.message)); });
    }
    return delivered;
  }

  // --- endpoint operations -------------------------------------------------

  /// Node `id`'s state if `generation` is its live incarnation.
  node_state* live(raft::node_id id, std::uint64_t generation) {
    return find_live(nodes_, id, generation);
  }
  const node_state* live(raft::node_id id, std::uint64_t generation) const {
    return find_live(nodes_, id, generation);
  }
  template <class Nodes>
  static auto find_live(Nodes& nodes, raft::node_id id, std::uint64_t generation)
      -> decltype(&nodes.begin()->second) {
    auto it = nodes.find(id);
    if (it == nodes.end() || !it->second.connected || it->second.generation != generation) {
      return nullptr;
    }
    return &it->second;
  }

  void add_peer(raft::node_id self, std::uint64_t generation, raft::node_id id,
                const std::string& address) {
    std::lock_guard lock(mutex_);
    if (node_state* node = live(self, generation)) node->peers[id].address = address;
  }

  void remove_peer(raft::node_id self, std::uint64_t generation, raft::node_id id) {
    std::lock_guard lock(mutex_);
    if (node_state* node = live(self, generation)) node->peers.erase(id);
  }

  peer_status status(raft::node_id self, std::uint64_t generation, raft::node_id id) const {
    std::lock_guard lock(mutex_);
    const node_state* node = live(self, generation);
    if (!node) {
      return peer_status{.reachable = false,
                         .last_error = "node " + std::to_string(self) +
                                       " is disconnected from the network; connect it again"};
    }
    auto it = node->peers.find(id);
    if (it == node->peers.end()) {
      return peer_status{.reachable = false,
                         .last_error = "node " + std::to_string(id) + " is not a peer of node " +
                                       std::to_string(self) + " (never added, or removed)"};
    }
    return it->second.status;
  }

  std::vector<std::pair<raft::node_id, std::string>> peers(raft::node_id self,
                                                           std::uint64_t generation) const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<raft::node_id, std::string>> out;
    if (const node_state* node = live(self, generation)) {
      for (const auto& [id, peer] : node->peers) out.emplace_back(id, peer.address);
    }
    return out;
  }

  bool is_live(raft::node_id self, std::uint64_t generation) const {
    std::lock_guard lock(mutex_);
    return live(self, generation) != nullptr;
  }

  const std::uint64_t seed_;
  mutable std::mutex mutex_;
  std::condition_variable idle_;     ///< Signalled when a handler call ends.
  std::condition_variable traffic_;  ///< Signalled when something is queued.
  raft::splitmix_random random_;
  std::uint64_t now_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t generations_ = 0;
  std::map<raft::node_id, node_state> nodes_;  ///< Never erased: node_state addresses are stable.
  std::map<link_key, link_state> links_;
  std::map<flight_key, flight> queue_;  ///< Messages and reports in flight, in delivery order.
  std::set<link_key> pending_reports_;  ///< (sender, peer) with a report queued.
  std::size_t messages_in_flight_ = 0;
  std::size_t link_capacity_ = default_link_capacity;
  double drop_rate_ = 0;
  double duplicate_rate_ = 0;
  std::uint64_t min_delay_ = 0;
  std::uint64_t max_delay_ = 0;
  bool reorder_ = true;
  std::vector<std::pair<std::set<raft::node_id>, std::set<raft::node_id>>> partitions_;
  std::set<link_key> cuts_;
  std::set<raft::node_id> isolated_;
};

inline void endpoint::send(raft::message m) { net_->send_from(id_, generation_, std::move(m)); }

inline void endpoint::add_peer(raft::node_id id, const std::string& address) {
  net_->add_peer(id_, generation_, id, address);
}

inline void endpoint::remove_peer(raft::node_id id) { net_->remove_peer(id_, generation_, id); }

inline peer_status endpoint::status(raft::node_id id) const {
  return net_->status(id_, generation_, id);
}

inline std::vector<std::pair<raft::node_id, std::string>> endpoint::peers() const {
  return net_->peers(id_, generation_);
}

inline bool endpoint::connected() const { return net_->is_live(id_, generation_); }

}  // namespace keel::transport
