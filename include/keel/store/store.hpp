// store: an in-memory database of typed objects (go-memdb's model, as
// SwarmKit's store uses it): one table per object type Ts, each filed in
// persistent radix trees, read through atomic snapshots and written by one
// writer at a time whose commit swaps a single root pointer; watches see
// every commit's changes, in commit order, once the commit is visible.
//
//   store<Task, Service> s;
//   s.update([](auto& tx) { return tx.create(task); });
//   s.view([](const auto& tx) { auto t = tx.template get<Task>("id1"); });
//   auto w = s.watch(on_update<Task>(check_id<Task>("id1")), 128);
//
// Thread safety: every member may be called from any thread. Readers take
// the root mutex only to copy a pointer, so they never wait for a writer's
// transaction; writers are serialised by the writer mutex, held for a whole
// write transaction. A commit swaps the root and publishes its changes under
// the root mutex, which is also how view_and_watch registers a watch
// together with a snapshot: nothing is missed, nothing duplicated.
// Lock order: writer mutex, then root mutex, then the watch queue's.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/result.hpp"
#include "keel/store/change.hpp"
#include "keel/store/transaction.hpp"
#include "keel/store/watch.hpp"

namespace keel::store {

template <object... Ts>
class store {
  static_assert(sizeof...(Ts) > 0, "keel::store::store needs at least one object type");

 public:
  using state_type = store_state<Ts...>;
  using read_type = read_transaction<Ts...>;
  using write_type = write_transaction<Ts...>;
  using change_type = change<Ts...>;
  using subscription_type = subscription<change_type>;

  /// Default capacity of a watcher's queue.
  static constexpr std::size_t default_watch_capacity = 1024;

  store() : root_(std::make_shared<const state_type>()) {
    for (auto ec : {check_indexes<Ts>()...}) {
      // Invalid schemas are a programming error in the traits: refuse loudly.
      if (ec) throw std::system_error(ec);
    }
  }

  store(const store&) = delete;
  store& operator=(const store&) = delete;

  ~store() { watches_.close_all(errc::watch_closed); }

  /// An atomic snapshot of every table.
  read_type begin_read() const {
    std::lock_guard lock(root_mutex_);
    return read_type(root_);
  }

  /// Runs f(const read_transaction&) on a snapshot and returns what f returns.
  template <class F>
  decltype(auto) view(F&& f) const {
    const read_type tx = begin_read();
    return std::forward<F>(f)(tx);
  }

  /// The writer's transaction; blocks while another one is open. Its
  /// commit's version is one more than the last.
  write_type begin_write() { return begin_write_at(0); }

  /// The same, with the commit's version chosen by the caller (the node
  /// layer uses the Raft index of the entry that carries the write); 0
  /// means one more than the last. Requires: 0 or above the store's
  /// version (std::invalid_argument otherwise: versions never go back).
  write_type begin_write_at(std::uint64_t version) {
    std::unique_lock writer(writer_mutex_);
    std::shared_ptr<const state_type> base;
    {
      std::lock_guard lock(root_mutex_);
      base = root_;
    }
    if (version == 0) version = base->version + 1;
    if (version <= base->version) {
      throw std::invalid_argument("keel::store: a write's version must exceed the store's");
    }
    return write_type(std::move(base), std::move(writer), version);
  }

  /// The newest committed state: an immutable snapshot of every table.
  std::shared_ptr<const state_type> state() const {
    std::lock_guard lock(root_mutex_);
    return root_;
  }

  /// A write transaction over `base` (this store's state or one detached
  /// from it) at `version`, which may equal base's: how the node layer
  /// builds a batch as a chain of transactions, each atomic, before any of
  /// them is committed. Holds the writer mutex like begin_write. End it with
  /// detach(), never commit(). Requires: version >= base->version
  /// (std::invalid_argument otherwise).
  write_type begin_write_over(std::shared_ptr<const state_type> base, std::uint64_t version) {
    std::unique_lock writer(writer_mutex_);
    if (base == nullptr || version < base->version) {
      throw std::invalid_argument("keel::store: a write's version must not go back");
    }
    return write_type(std::move(base), std::move(writer), version);
  }

  /// Closes tx without publishing anything: its resulting state (for the
  /// next begin_write_over) and its collapsed changes.
  std::pair<std::shared_ptr<const state_type>, std::vector<change_type>> detach(write_type&& tx) {
    write_type owned(std::move(tx));
    return owned.finish();
  }

  /// Makes tx's writes visible and publishes its changes; returns them.
  std::vector<change_type> commit(write_type&& tx) {
    write_type owned(std::move(tx));
    auto [next, changes] = owned.finish();
    {
      std::lock_guard lock(root_mutex_);
      root_ = std::move(next);
      if (!changes.empty()) {
        watches_.publish(std::span<const change_type>(changes.data(), changes.size()));
      }
    }
    return std::move(changes);
  }

  /// Runs f(write_transaction&) -> std::error_code; commits if f succeeded,
  /// discards every write otherwise. Returns f's error.
  template <class F>
  std::error_code update(F&& f) {
    write_type tx = begin_write();
    if (std::error_code ec = std::forward<F>(f)(tx)) return ec;
    commit(std::move(tx));
    return {};
  }

  /// Watches changes that `filter` accepts (on_update<Task>(...), ...), from
  /// the next commit on. The watch closes with errc::watch_overflow if more
  /// than `capacity` events wait unread.
  template <watch_filter<change_type> Filter>
  subscription_type watch(Filter filter, std::size_t capacity = default_watch_capacity) {
    return watches_.subscribe(std::move(filter), capacity);
  }

  /// Runs f on a snapshot and starts a watch at exactly that snapshot: the
  /// watch gets every commit after it and none before (SwarmKit's ViewAndWatch).
  template <class F, watch_filter<change_type> Filter>
  auto view_and_watch(F&& f, Filter filter, std::size_t capacity = default_watch_capacity) {
    std::unique_lock lock(root_mutex_);
    const read_type tx(root_);
    subscription_type sub = watches_.subscribe(std::move(filter), capacity);
    lock.unlock();
    if constexpr (std::is_void_v<std::invoke_result_t<F&&, const read_type&>>) {
      std::forward<F>(f)(tx);
      return sub;
    } else {
      auto out = std::forward<F>(f)(tx);
      return std::pair<decltype(out), subscription_type>(std::move(out), std::move(sub));
    }
  }

  /// The version of the newest commit (0 for an empty store).
  std::uint64_t version() const {
    std::lock_guard lock(root_mutex_);
    return root_->version;
  }

  /// How many watches are open.
  std::size_t watch_count() const { return watches_.subscriber_count(); }

  /// The watches' queues: how many, events unread in all, the deepest.
  watch_depths watch_queue_depths() const { return watches_.depths(); }

 private:
  mutable std::mutex writer_mutex_;
  mutable std::mutex root_mutex_;
  std::shared_ptr<const state_type> root_;
  watch_queue<change_type> watches_;
};

}  // namespace keel::store
