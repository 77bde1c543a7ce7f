// watch_subscriber: one watcher's state inside a keel::store::watch_queue: its
// bounded queue of events, why it closed, the condition variable its
// consumers wait on, and the intrusive hook that links it into the queue's
// registry (detail/watch_registry.hpp). A subscription (store/watch.hpp) owns
// exactly one; the registry only links it, never owns it.
//
// Invariants, under mutex_:
//   - events_.size() <= capacity_, and capacity_ >= 1 for a subscriber that
//     was ever linked.
//   - error_ is empty while the subscriber is open. Once set it never changes
//     (the first reason wins) and no event is appended after it: a closed
//     subscriber holds only what was queued before it closed.
//   - offer() appends all of a batch's accepted events or none of them, so a
//     consumer never sees part of a commit.
//
// Why a std::deque and not a Boost.Intrusive container for the events: every
// subscriber gets its own copy of an event, so an intrusive queue would still
// need one allocated node (with a hook) per event and per subscriber; the
// deque allocates in blocks, gives memory back as it drains, and never holds
// more than capacity_ events.
//
// Thread safety: events_ and error_ are guarded by mutex_, which is a leaf
// lock: nothing else is acquired and no user code runs while it is held
// (except the destructors and copy constructors of Event). The hook, accepts()
// and ready() belong to the registry and are used only under its mutex.
// capacity_ and registry_ are immutable.
#pragma once

#include <boost/intrusive/list_hook.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

#include "keel/errc.hpp"

namespace keel::store::detail {

template <class Event>
class watch_registry;

/// Safe mode, not auto-unlink: an auto-unlink hook would unlink itself in its
/// destructor without the registry's mutex, racing with publish. A safe-mode
/// hook is unlinked explicitly under that mutex and asserts (in debug builds)
/// that it is no longer linked when it is destroyed.
using watch_hook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>;

/// What offer() did with a batch, so the registry knows whether to call the
/// subscriber's on_ready callback and whether to unlink it.
enum class offer_outcome {
  none,        ///< Nothing queued: no accepted event, or already closed.
  queued,      ///< Appended to a queue that already held events.
  now_ready,   ///< Appended to an empty queue: the subscriber became readable.
  now_closed,  ///< Closed by this batch (overflow or a failed copy).
};

template <class Event>
class watch_subscriber : public watch_hook {
 public:
  watch_subscriber(std::shared_ptr<watch_registry<Event>> registry, std::size_t capacity)
      : registry_(std::move(registry)), capacity_(capacity) {}
  watch_subscriber(const watch_subscriber&) = delete;
  watch_subscriber& operator=(const watch_subscriber&) = delete;
  virtual ~watch_subscriber() = default;

  // ---- the registry's side: called under the registry's mutex -------------

  /// The subscription's filter. May throw; the registry turns that into
  /// errc::watch_delivery_failed.
  virtual bool accepts(const Event& event) = 0;
  /// The subscription's on_ready callback.
  virtual void ready() noexcept = 0;

  /// Appends every event of `accepted` (one commit's events that passed the
  /// filter) if they all fit; otherwise closes with errc::watch_overflow and
  /// appends none. Never blocks on a consumer: it only takes mutex_, which
  /// consumers hold for a queue operation and never while waiting.
  offer_outcome offer(std::span<const Event* const> accepted) noexcept {
    if (accepted.empty()) return offer_outcome::none;
    offer_outcome outcome = offer_outcome::none;
    {
      std::lock_guard lock(mutex_);
      if (error_) return offer_outcome::none;
      if (accepted.size() > capacity_ - events_.size()) {
        error_ = make_error_code(errc::watch_overflow);
        outcome = offer_outcome::now_closed;
      } else {
        const bool was_empty = events_.empty();
        std::size_t appended = 0;
        try {
          for (const Event* event : accepted) {
            events_.push_back(*event);
            ++appended;
          }
          outcome = was_empty ? offer_outcome::now_ready : offer_outcome::queued;
        } catch (...) {
          // All or nothing: take back this batch's events, keep the earlier ones.
          for (; appended > 0; --appended) events_.pop_back();
          error_ = make_error_code(errc::watch_delivery_failed);
          outcome = offer_outcome::now_closed;
        }
      }
    }
    // Safe after unlocking: the subscriber cannot be destroyed while the
    // registry's mutex is held (its owner must take that mutex to unlink it).
    ready_.notify_all();
    return outcome;
  }

  // ---- any side ---------------------------------------------------------------

  /// Closes with `why` unless already closed (the first reason is kept) and
  /// wakes every waiting consumer. With `discard`, queued events are dropped
  /// too. Returns whether this call closed it.
  bool close(std::error_code why, bool discard) noexcept {
    bool closed_now = false;
    {
      std::lock_guard lock(mutex_);
      closed_now = !error_;
      if (closed_now) error_ = why;
      if (discard) events_.clear();
    }
    ready_.notify_all();
    return closed_now;
  }

  // ---- the consumers' side ---------------------------------------------------------

  std::optional<Event> try_pop() {
    std::lock_guard lock(mutex_);
    return take_locked();
  }

  std::optional<Event> pop_wait() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return !events_.empty() || error_; });
    return take_locked();
  }

  template <class Clock, class Duration>
  std::optional<Event> pop_wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    std::unique_lock lock(mutex_);
    ready_.wait_until(lock, deadline, [this] { return !events_.empty() || error_; });
    return take_locked();
  }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return static_cast<bool>(error_);
  }

  std::error_code error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }

  std::size_t depth() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

  std::size_t capacity() const noexcept { return capacity_; }
  watch_registry<Event>& registry() const noexcept { return *registry_; }

 private:
  std::optional<Event> take_locked() {
    if (events_.empty()) return std::nullopt;
    std::optional<Event> event(std::move(events_.front()));
    events_.pop_front();
    return event;
  }

  // Keeps the registry (its mutex and list) alive for as long as this
  // subscriber may need to unlink itself, even after the watch_queue is gone.
  const std::shared_ptr<watch_registry<Event>> registry_;
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Event> events_;
  std::error_code error_;
};

/// A subscriber with its filter and on_ready callback stored inline: the one
/// place their types are erased, once per subscription and in the same
/// allocation as the subscriber.
template <class Event, class Filter, class Ready>
class watch_subscriber_with final : public watch_subscriber<Event> {
 public:
  watch_subscriber_with(std::shared_ptr<watch_registry<Event>> registry, std::size_t capacity,
                        Filter filter, Ready on_ready)
      : watch_subscriber<Event>(std::move(registry), capacity),
        filter_(std::move(filter)),
        on_ready_(std::move(on_ready)) {}

  bool accepts(const Event& event) override { return static_cast<bool>(filter_(event)); }
  void ready() noexcept override { on_ready_(); }

 private:
  Filter filter_;
  Ready on_ready_;
};

}  // namespace keel::store::detail
