// watch_queue: the store's local watches, in the style of SwarmKit's watch
// queue. The store's single writer publishes each commit's events once the
// commit is visible; every subscriber whose filter accepts an event gets its
// own copy, in commit order, each commit's events together. A subscriber
// reads through its subscription, a move-only handle that blocks, polls,
// waits with a timeout, or is told by a callback that it became readable.
//
// Generic over the event: the store publishes something like
// {table, create/update/delete, before, after} with shared immutable object
// handles, but any copyable type works.
//
// Invariants:
//   - Order: a subscriber receives the events its filter accepts in the order
//     they were published; batches never interleave.
//   - Atomic batches: a subscriber receives all of a batch's accepted events
//     or none of them; it is registered either before a batch (and gets it)
//     or after (and does not).
//   - Bounded: a subscriber never holds more than its capacity. A batch that
//     does not fit closes the subscriber with errc::watch_overflow instead of
//     dropping anything silently or growing; what was queued before stays
//     readable, then next() returns nullopt and error() says overflow.
//     publish never blocks on a slow consumer.
//   - After cancel() returns (or the subscription is destroyed), its filter
//     and on_ready callback are never called again.
//
// Thread safety and locking (details in detail/watch_registry.hpp):
//   - publish, close_all, subscribe, subscriber_count and a subscription's
//     cancel may be called from any thread, concurrently. One registry mutex
//     serialises them; publish holds it while it runs filters and callbacks.
//   - Each subscriber has its own mutex and condition variable, a leaf lock:
//     consumers hold it only for a queue operation, never while running user
//     code or taking another lock, so publish (registry, then subscriber)
//     cannot deadlock with consumers and waits for none of them.
//   - subscribe allocates before it locks, then only links a node: it never
//     calls user code and never waits for a consumer, so the store may call
//     it under its commit lock. If the store also publishes under that lock,
//     a view taken together with subscribe misses and duplicates nothing
//     (SwarmKit's ViewAndWatch).
//   - A subscription's member functions may be called from several threads
//     at once (next() on one, cancel() on another), except move, assignment
//     and destruction, which need exclusive access.
//   - The queue and its subscriptions share the registry, so either may be
//     destroyed first; subscriptions of a destroyed queue are closed with
//     errc::watch_closed.
//   - Filters and on_ready callbacks run on the publishing thread (for the
//     store: the writer, under its commit lock). They must be quick, must not
//     block, and must not call back into the same watch_queue (subscribe,
//     cancel, destroying a subscription, publish, close_all,
//     subscriber_count): that would deadlock, and debug builds assert. They
//     may call try_next, depth, closed and error on any subscription.
//   - depths() (for metrics) walks a list of the queue's subscribers of its
//     own, under a mutex of its own, taking each subscriber's leaf lock in
//     turn: it never takes the registry mutex, so it neither waits for a
//     publish nor delays one by more than a queue operation.
#pragma once

#include <cassert>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#include "keel/errc.hpp"
#include "keel/store/detail/watch_registry.hpp"
#include "keel/store/detail/watch_subscriber.hpp"

namespace keel::store {

/// A subscriber's filter: called as `filter(event)` on the publishing thread,
/// returns whether the subscriber wants the event. It may keep state (it is
/// called as a non-const lvalue, from one thread at a time) and may throw: a
/// throwing filter closes its subscription with errc::watch_delivery_failed.
template <class F, class Event>
concept watch_filter = std::move_constructible<F> && std::predicate<F&, const Event&>;

/// A subscriber's on_ready callback: `on_ready()`, noexcept, called on the
/// publishing thread when the subscription's queue goes from empty to
/// non-empty, and when the queue closes it (overflow, a failed delivery,
/// close_all, the queue's destruction), but not on cancel(). Edge-triggered:
/// after a call, drain with try_next() until it returns nullopt.
template <class R>
concept watch_ready_callback = std::move_constructible<R> && std::is_nothrow_invocable_v<R&>;

/// The depths of a watch_queue's subscriptions at one moment.
struct watch_depths {
  /// Subscription handles alive and not cancelled, closed ones included (an
  /// overflowed or close_all'd watch counts until its handle is destroyed).
  std::size_t watches = 0;
  /// Events queued and not yet read, over all of them.
  std::size_t queued = 0;
  /// The most queued in one subscription.
  std::size_t deepest = 0;
};

namespace detail {

/// Every live subscriber of a queue, for watch_queue::depths(). A
/// subscription holds its own node; cancel removes it.
template <class Event>
class watch_depth_list {
 public:
  using list_type = std::list<const watch_subscriber<Event>*>;

  /// Moves `one` (a list of one node, allocated by the caller before any
  /// lock) into the list; returns where it went. Never allocates or fails.
  typename list_type::iterator add(list_type& one) noexcept {
    std::lock_guard lock(mutex_);
    const auto it = one.begin();
    subscribers_.splice(subscribers_.end(), one);
    return it;
  }

  void remove(typename list_type::iterator it) noexcept {
    std::lock_guard lock(mutex_);
    subscribers_.erase(it);
  }

  watch_depths sample() const {
    watch_depths out;
    std::lock_guard lock(mutex_);
    for (const watch_subscriber<Event>* s : subscribers_) {
      const std::size_t d = s->depth();
      ++out.watches;
      out.queued += d;
      out.deepest = d > out.deepest ? d : out.deepest;
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  list_type subscribers_;
};

}  // namespace detail

/// The filter that accepts every event.
struct accept_all {
  template <class Event>
  constexpr bool operator()(const Event&) const noexcept {
    return true;
  }
};

/// The on_ready callback that does nothing (consumers block or poll instead).
struct no_ready_callback {
  constexpr void operator()() const noexcept {}
};

/// One subscriber's end of a watch_queue: the events its filter accepted, in
/// publish order. Move-only; destroying it cancels it. An empty handle
/// (default-constructed or moved from) behaves as cancelled and drained.
template <class Event>
class subscription {
 public:
  subscription() noexcept = default;
  subscription(subscription&& other) noexcept = default;
  subscription& operator=(subscription&& other) noexcept {
    if (this != &other) {
      cancel();
      subscriber_ = std::move(other.subscriber_);
      depths_ = std::move(other.depths_);
      listed_ = other.listed_;
    }
    return *this;
  }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { cancel(); }

  /// The next event if one is queued, without waiting.
  std::optional<Event> try_next() { return subscriber_ ? subscriber_->try_pop() : std::nullopt; }

  /// Waits for the next event; nullopt once closed and drained.
  std::optional<Event> next() { return subscriber_ ? subscriber_->pop_wait() : std::nullopt; }

  /// Waits at most `timeout` (on the steady clock) for the next event;
  /// nullopt on timeout, or once closed and drained.
  template <class Rep, class Period>
  std::optional<Event> next_for(const std::chrono::duration<Rep, Period>& timeout) {
    using clock = std::chrono::steady_clock;
    if (!subscriber_) return std::nullopt;
    if (timeout <= timeout.zero()) return try_next();
    const auto now = clock::now();
    // Compared in floating point so that a huge timeout (duration::max())
    // saturates to "wait forever" instead of overflowing the deadline.
    if (std::chrono::duration<double>(timeout) >=
        std::chrono::duration<double>(clock::time_point::max() - now)) {
      return next();
    }
    return subscriber_->pop_wait_until(now + std::chrono::ceil<clock::duration>(timeout));
  }

  /// Waits until `deadline` for the next event; nullopt on timeout, or once
  /// closed and drained.
  template <class Clock, class Duration>
  std::optional<Event> next_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return subscriber_ ? subscriber_->pop_wait_until(deadline) : std::nullopt;
  }

  /// No event will be added any more (events already queued may remain:
  /// see depth()).
  bool closed() const { return subscriber_ ? subscriber_->closed() : true; }

  /// Why the subscription closed: errc::watch_overflow,
  /// errc::watch_cancelled, errc::watch_delivery_failed, the close_all error
  /// (errc::watch_closed when the queue was destroyed) or
  /// errc::invalid_argument (capacity 0); empty while open.
  std::error_code error() const {
    return subscriber_ ? subscriber_->error() : make_error_code(errc::watch_cancelled);
  }

  /// Events queued and not yet read.
  std::size_t depth() const { return subscriber_ ? subscriber_->depth() : 0; }

  /// The most events this subscription may hold.
  std::size_t capacity() const noexcept { return subscriber_ ? subscriber_->capacity() : 0; }

  /// Unsubscribes: stops delivery, drops queued events, wakes every waiting
  /// consumer (next() returns nullopt) and closes with errc::watch_cancelled
  /// unless already closed for another reason. When it returns, the filter
  /// and on_ready callback are not running and will not run again.
  /// Requires: not called from a filter or on_ready callback of the same queue.
  void cancel() noexcept {
    if (!subscriber_) return;
    subscriber_->registry().unlink(*subscriber_);
    subscriber_->close(make_error_code(errc::watch_cancelled), true);
    if (depths_) {
      depths_->remove(listed_);
      depths_.reset();
    }
  }

 private:
  template <class>
  friend class watch_queue;

  using depth_list = detail::watch_depth_list<Event>;

  subscription(std::unique_ptr<detail::watch_subscriber<Event>> subscriber,
               std::shared_ptr<depth_list> depths,
               typename depth_list::list_type::iterator listed) noexcept
      : subscriber_(std::move(subscriber)), depths_(std::move(depths)), listed_(listed) {}

  std::unique_ptr<detail::watch_subscriber<Event>> subscriber_;
  /// The queue's depth list and this subscriber's node in it (empty once cancelled).
  std::shared_ptr<depth_list> depths_;
  typename depth_list::list_type::iterator listed_{};
};

/// The publish side: the store owns one per watchable stream of events.
template <class Event>
class watch_queue {
  static_assert(std::copyable<Event>,
                "watch_queue<Event>: Event must be a copyable object type; every subscriber "
                "receives its own copy of each event it accepts");

 public:
  using event_type = Event;

  watch_queue()
      : registry_(std::make_shared<detail::watch_registry<Event>>()),
        depths_(std::make_shared<detail::watch_depth_list<Event>>()) {}
  watch_queue(watch_queue&& other) noexcept = default;
  watch_queue& operator=(watch_queue&& other) noexcept {
    if (this != &other) {
      close_registry();
      registry_ = std::move(other.registry_);
      depths_ = std::move(other.depths_);
    }
    return *this;
  }
  watch_queue(const watch_queue&) = delete;
  watch_queue& operator=(const watch_queue&) = delete;
  /// Closes every subscription with errc::watch_closed.
  ~watch_queue() { close_registry(); }

  /// Registers a subscriber that receives the events of every later batch
  /// that `filter` accepts, holding at most `capacity` of them. Calls no user
  /// code and waits for no consumer. Returns a subscription that is already
  /// closed if `capacity` is 0 (errc::invalid_argument) or the queue was
  /// closed by close_all (its error); on_ready is not called for those.
  /// Requires: not called from a filter or on_ready callback of this queue.
  template <watch_filter<Event> Filter, watch_ready_callback Ready = no_ready_callback>
  subscription<Event> subscribe(Filter filter, std::size_t capacity, Ready on_ready = {}) {
    assert(registry_ && "subscribe on a moved-from watch_queue");
    auto subscriber = std::make_unique<detail::watch_subscriber_with<Event, Filter, Ready>>(
        registry_, capacity, std::move(filter), std::move(on_ready));
    typename detail::watch_depth_list<Event>::list_type node{subscriber.get()};
    if (capacity == 0) {
      subscriber->close(make_error_code(errc::invalid_argument), false);
    } else if (std::error_code closed = registry_->link(*subscriber)) {
      subscriber->close(closed, false);
    }
    const auto listed = depths_->add(node);
    return subscription<Event>(std::move(subscriber), depths_, listed);
  }

  /// Subscribes to every event.
  subscription<Event> subscribe(std::size_t capacity) { return subscribe(accept_all{}, capacity); }

  /// Delivers one commit's events, in order, to every subscriber. Call it
  /// after the commit became visible, from one thread at a time (the store's
  /// writer); concurrent calls are serialised, never interleaved. Never
  /// blocks on a consumer and never fails: a subscriber that cannot take the
  /// batch is closed instead.
  void publish(std::span<const Event> batch) noexcept {
    assert(registry_ && "publish on a moved-from watch_queue");
    registry_->publish(batch);
  }

  /// Delivers a batch of one event.
  void publish(const Event& event) noexcept { publish(std::span<const Event>(&event, 1)); }

  /// Store shutdown: closes every subscription with `why` (their queued
  /// events stay readable) and every later one at once.
  /// Requires: `why` is an error.
  void close_all(std::error_code why = make_error_code(errc::watch_closed)) noexcept {
    assert(registry_ && "close_all on a moved-from watch_queue");
    registry_->close_all(why);
  }

  /// Subscribers currently registered (open and not cancelled).
  std::size_t subscriber_count() const {
    assert(registry_ && "subscriber_count on a moved-from watch_queue");
    return registry_->size();
  }

  /// How many events wait unread in the subscriptions alive now: their
  /// number, the total and the deepest (for metrics). Takes each
  /// subscription's lock in turn, never the publishing one.
  watch_depths depths() const {
    assert(depths_ && "depths on a moved-from watch_queue");
    return depths_->sample();
  }

 private:
  void close_registry() noexcept {
    if (registry_) registry_->close_all(make_error_code(errc::watch_closed));
  }

  std::shared_ptr<detail::watch_registry<Event>> registry_;
  std::shared_ptr<detail::watch_depth_list<Event>> depths_;
};

}  // namespace keel::store
