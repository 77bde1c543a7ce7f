// watch_registry: the shared state behind a keel::store::watch_queue: the
// intrusive list of live subscribers and the delivery of published batches to
// them. Shared (std::shared_ptr) between the queue and every subscriber, so a
// subscription that outlives its queue still has a mutex to unlink under and
// simply finds itself closed.
//
// Why Boost.Intrusive: linking and unlinking a subscriber never allocates and
// never fails, so subscribe (which the store calls under its commit lock) does
// all its allocation before taking the mutex and then cannot fail inside it;
// cancel is O(1) from the subscriber itself, with no search and no handle to
// keep; and constant_time_size gives subscriber_count() in O(1). Safe-mode
// hooks (see detail/watch_subscriber.hpp) rather than auto-unlink ones,
// because unlinking must happen under the mutex.
//
// Invariants, under mutex_:
//   - every linked subscriber is open, and is alive (its owner unlinks it
//     under mutex_ before destroying it);
//   - once closed_ is set, the list is empty and stays empty.
//
// Thread safety: every member function may be called from any thread. mutex_
// serialises publish, close_all, link and unlink, and is held while filters
// and on_ready callbacks run, which is what guarantees that no callback runs
// after cancel() returns. Lock order: mutex_ before a subscriber's mutex,
// never the reverse; a subscriber's mutex is a leaf (consumers hold only it,
// and run no user code under it), so publish cannot deadlock with a consumer
// and never waits for one longer than a queue operation. Re-entering the
// registry from a filter or on_ready callback (subscribe, cancel, destroying a
// subscription, publish, close_all, subscriber_count) would deadlock; debug
// builds assert instead.
#pragma once

#include <boost/intrusive/list.hpp>

#include <atomic>
#include <cassert>
#include <cstddef>
#include <iterator>
#include <mutex>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include "keel/errc.hpp"
#include "keel/store/detail/watch_subscriber.hpp"

namespace keel::store::detail {

template <class Event>
class watch_registry {
 public:
  watch_registry() = default;
  watch_registry(const watch_registry&) = delete;
  watch_registry& operator=(const watch_registry&) = delete;
  ~watch_registry() {
    // Each linked subscriber holds a shared_ptr to this registry.
    assert(subscribers_.empty() && "watch_registry destroyed with subscribers linked");
  }

  /// Links `subscriber` so that it receives the following batches, or
  /// returns the close_all error if the queue is closed. Calls no user code.
  /// Requires: `subscriber` is open, has capacity >= 1 and is not linked.
  std::error_code link(watch_subscriber<Event>& subscriber) {
    guard lock(*this);
    if (closed_) return closed_;
    subscribers_.push_back(subscriber);
    return {};
  }

  /// Unlinks `subscriber` if it is linked. After this returns, its filter and
  /// on_ready callback are not running and will not be called again.
  void unlink(watch_subscriber<Event>& subscriber) noexcept {
    guard lock(*this);
    if (subscriber.is_linked()) subscribers_.erase(subscribers_.iterator_to(subscriber));
  }

  /// Offers one commit's events, in order, to every linked subscriber.
  void publish(std::span<const Event> batch) noexcept {
    if (batch.empty()) return;
    guard lock(*this);
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      watch_subscriber<Event>& subscriber = *it;
      offer_outcome outcome = offer_outcome::none;
      bool filtered = true;
      try {
        accepted_.clear();
        for (const Event& event : batch) {
          if (subscriber.accepts(event)) accepted_.push_back(&event);
        }
      } catch (...) {
        // A throwing filter (or no memory for the scratch list) costs this
        // subscriber its watch, never the writer or the other subscribers.
        filtered = false;
      }
      if (filtered) {
        outcome = subscriber.offer(accepted_);
      } else if (subscriber.close(make_error_code(errc::watch_delivery_failed), false)) {
        outcome = offer_outcome::now_closed;
      }
      it = outcome == offer_outcome::now_closed ? subscribers_.erase(it) : std::next(it);
      if (outcome == offer_outcome::now_ready || outcome == offer_outcome::now_closed) {
        subscriber.ready();
      }
    }
    accepted_.clear();
  }

  /// Closes every subscriber with `why` (their queued events stay readable)
  /// and every later subscription too. Requires: `why` is an error.
  void close_all(std::error_code why) noexcept {
    assert(why && "close_all needs an error to report");
    if (!why) why = make_error_code(errc::watch_closed);
    guard lock(*this);
    if (!closed_) closed_ = why;
    while (!subscribers_.empty()) {
      watch_subscriber<Event>& subscriber = subscribers_.front();
      subscribers_.pop_front();
      if (subscriber.close(closed_, false)) subscriber.ready();
    }
    accepted_ = {};
  }

  std::size_t size() const {
    guard lock(*this);
    return subscribers_.size();
  }

 private:
  /// Holds mutex_ and remembers which thread holds it, so that a filter or
  /// callback re-entering the registry trips an assertion instead of a
  /// deadlock. The owner is tracked in every build (two relaxed stores), so
  /// the class layout does not depend on NDEBUG.
  class guard {
   public:
    explicit guard(const watch_registry& registry) : registry_(registry) {
      assert(registry_.owner_.load(std::memory_order_relaxed) != std::this_thread::get_id() &&
             "a watch filter or on_ready callback called back into its watch_queue "
             "(subscribe, cancel, destroying a subscription, publish, close_all or "
             "subscriber_count); that would deadlock");
      registry_.mutex_.lock();
      registry_.owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() {
      registry_.owner_.store(std::thread::id{}, std::memory_order_relaxed);
      registry_.mutex_.unlock();
    }

   private:
    const watch_registry& registry_;
  };

  using list_type =
      boost::intrusive::list<watch_subscriber<Event>, boost::intrusive::constant_time_size<true>>;

  mutable std::mutex mutex_;
  mutable std::atomic<std::thread::id> owner_{};
  list_type subscribers_;
  std::error_code closed_;  // Set once by close_all.
  // Scratch list of one subscriber's accepted events, reused across batches
  // so that publishing does not allocate in the steady state.
  std::vector<const Event*> accepted_;
};

}  // namespace keel::store::detail
