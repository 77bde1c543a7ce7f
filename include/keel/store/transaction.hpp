// Read and write transactions over a store of object types Ts.
//
// A read_transaction is an atomic snapshot: it holds one immutable version
// of every table (a shared pointer to the store's state), so it never sees a
// later commit, never blocks a writer and is never blocked by one.
//
// A write_transaction is the single writer's: it starts from the newest
// version, writes tables through table_writers (all indexes of all touched
// tables copy-on-write together), reads its own writes, and records its
// changes collapsed per object. The store commits it by swapping one root
// pointer, or drops it (abort): nothing it did is visible before commit.
//
// Versions: every commit has a version, above the last: one more by default,
// or chosen with store::begin_write_at (the node layer: the Raft index). create() stamps objects
// with it; update() is a compare-and-set: the object passed in must carry the stored version, else
// errc::sequence_conflict (SwarmKit's sequencer).
//
// Thread safety: a read_transaction may be copied to and used from any
// thread; a write_transaction belongs to the thread that holds the store's
// writer lock (it owns that lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/store/change.hpp"
#include "keel/store/selector.hpp"
#include "keel/store/table.hpp"

namespace keel::store {

/// One immutable version of every table.
template <object... Ts>
struct store_state {
  std::tuple<table_state<Ts>...> tables{};
  std::uint64_t version = 0;
};

namespace detail {

/// Calls f(object_ptr) for every object one index query selects in `view`
/// (a tree or a radix transaction), ascending; f returns false to stop.
/// Returns errc::invalid_index if the table has no such index or it cannot
/// encode the query's values.
template <class T, class Views, class... Values, class F>
std::error_code scan_query(const Views& views, const index_query<Values...>& q, F&& f) {
  using schema = table_schema<T>;
  std::error_code ec = errc::invalid_index;
  schema::for_each_index([&](auto i, const auto& s) {
    if (s.name != q.index) return;
    auto key = query_key(s, q);
    if (!key) return;
    ec = {};
    views(decltype(i)::value, [&](const auto& view) {
      for (const auto& e : view.seek_prefix(*key)) {
        if (!f(e.value)) break;
      }
    });
  });
  return ec;
}

/// The smallest key greater than every key that starts with prefix, or
/// nothing if there is none (prefix is empty or all 0xff bytes).
inline std::optional<std::string> prefix_successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

template <class T, class Views, class S, class F>
std::error_code scan(const Views& views, const S& sel, F&& f) {
  if constexpr (is_index_query_v<S>) {
    return scan_query<T>(views, sel, f);
  } else {
    // A union: report each object once, in the order first seen.
    std::unordered_set<const T*> seen;
    std::error_code ec;
    bool stopped = false;
    std::apply(
        [&](const auto&... q) {
          ((ec || stopped ? void()
                          : void(ec = scan_query<T>(views, q,
                                                    [&](const object_ptr<T>& obj) {
                                                      if (!seen.insert(obj.get()).second)
                                                        return true;
                                                      if (!f(obj)) stopped = true;
                                                      return !stopped;
                                                    }))),
           ...);
        },
        sel.queries);
    return ec;
  }
}

/// Adapts f returning void or bool to "continue?".
template <class F, class Arg>
bool call_continue(F& f, const Arg& arg) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&, const Arg&>>) {
    f(arg);
    return true;
  } else {
    return static_cast<bool>(f(arg));
  }
}

}  // namespace detail

/// The reads both transactions offer, over `Derived::visit_index<T>(i, f)`.
template <class Derived, object... Ts>
class reads {
 public:
  /// The object with this id, or null.
  template <one_of<Ts...> T>
  object_ptr<T> get(std::string_view id) const {
    return self().template get_object<T>(id);
  }

  /// Calls f(const object_ptr<T>&) for each selected object (ascending in the
  /// index the selector uses); f may return false to stop.
  template <one_of<Ts...> T, selector S, class F>
  std::error_code for_each(const S& sel, F&& f) const {
    auto views = [this](std::size_t i, auto&& g) {
      self().template visit_index<T>(i, g);
    };
    return detail::scan<T>(views, sel,
                           [&](const object_ptr<T>& obj) { return detail::call_continue(f, obj); });
  }

  /// The selected objects (SwarmKit's FindTasks and friends).
  template <one_of<Ts...> T, selector S>
  result<std::vector<object_ptr<T>>> find(const S& sel) const {
    std::vector<object_ptr<T>> out;
    if (auto ec = for_each<T>(sel, [&](const object_ptr<T>& obj) { out.push_back(obj); })) {
      return ec;
    }
    return out;
  }

  /// Calls f for the objects of index `index` from the first whose value is
  /// >= values (ascending): the lower bound of a range query.
  template <one_of<Ts...> T, class F, class... Values>
  std::error_code for_each_from(std::string_view index, F&& f, const Values&... values) const {
    auto ascending = [&](const auto& view, const std::string& key) {
      for (auto it = view.lower_bound(key); it != view.end(); ++it) {
        if (!detail::call_continue(f, (*it).value)) break;
      }
    };
    return with_range_key<T>(index, ascending, values...);
  }

  /// Calls f for the objects of index `index` in descending order, starting
  /// at the last whose value is <= values (all of them with no values).
  template <one_of<Ts...> T, class F, class... Values>
  std::error_code for_each_reverse(std::string_view index, F&& f, const Values&... values) const {
    auto descending = [&](const auto& view, const std::string& key) {
      // Start below the first key past every entry of values: entries of a
      // non-unique index extend the value's key with the object's id.
      const auto bound = detail::prefix_successor(key);
      auto it = bound ? view.reverse_lower_bound(*bound) : view.rbegin();
      if (bound && it != view.rend() && (*it).key == *bound) ++it;
      for (; it != view.rend(); ++it) {
        if (!detail::call_continue(f, (*it).value)) break;
      }
    };
    return with_range_key<T>(index, descending, values...);
  }

  /// The number of objects in T's table.
  template <one_of<Ts...> T>
  std::size_t count() const {
    std::size_t n = 0;
    self().template visit_index<T>(0, [&](const auto& view) { n = view.size(); });
    return n;
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  /// Calls range(view, key) with index `index` of T and the key of values
  /// (the whole index with none); errc::invalid_index if T has no such
  /// index or it cannot encode the values.
  template <class T, class Range, class... Values>
  std::error_code with_range_key(std::string_view index, Range&& range,
                                 const Values&... values) const {
    const index_query<Values...> q{
        index, sizeof...(Values) == 0 ? query_mode::all : query_mode::exact, {values...}};
    std::error_code ec = errc::invalid_index;
    table_schema<T>::for_each_index([&](auto i, const auto& s) {
      if (s.name != index) return;
      auto key = query_key(s, q);
      if (!key) return;
      ec = {};
      self().template visit_index<T>(decltype(i)::value,
                                     [&](const auto& view) { range(view, *key); });
    });
    return ec;
  }
};

/// An atomic snapshot of the store.
template <object... Ts>
class read_transaction : public reads<read_transaction<Ts...>, Ts...> {
 public:
  using state_type = store_state<Ts...>;

  explicit read_transaction(std::shared_ptr<const state_type> state) : state_(std::move(state)) {}

  /// The version of the last commit this snapshot includes.
  std::uint64_t version() const noexcept { return state_->version; }

  /// T's table as of this snapshot.
  template <one_of<Ts...> T>
  const table_state<T>& table() const noexcept {
    return std::get<table_state<T>>(state_->tables);
  }

 private:
  friend class reads<read_transaction<Ts...>, Ts...>;

  template <class T>
  object_ptr<T> get_object(std::string_view id) const {
    // Per thread, not per snapshot: a snapshot may be read by many threads.
    thread_local std::string key;
    return table<T>().get(id, key);
  }
  template <class T, class F>
  void visit_index(std::size_t i, F&& f) const {
    f(table<T>().indexes[i]);
  }

  std::shared_ptr<const state_type> state_;
};

template <object... Ts>
class store;

/// The single writer's transaction. Obtain it from store::begin_write() (or
/// through store::update) and hand it back to store::commit().
template <object... Ts>
class write_transaction : public reads<write_transaction<Ts...>, Ts...> {
 public:
  using state_type = store_state<Ts...>;
  using change_type = change<Ts...>;

  /// A moved-from transaction is closed: every write answers errc::transaction_closed.
  write_transaction(write_transaction&& other) noexcept
      : base_(std::move(other.base_)),
        lock_(std::move(other.lock_)),
        version_(other.version_),
        writers_(std::move(other.writers_)),
        changes_(std::move(other.changes_)),
        open_(std::exchange(other.open_, false)) {}
  write_transaction& operator=(write_transaction&& other) noexcept {
    if (this != &other) {
      base_ = std::move(other.base_);
      lock_ = std::move(other.lock_);
      version_ = other.version_;
      writers_ = std::move(other.writers_);
      changes_ = std::move(other.changes_);
      open_ = std::exchange(other.open_, false);
    }
    return *this;
  }

  /// The version this transaction's commit will have (0 once closed).
  std::uint64_t version() const noexcept { return base_ ? version_ : 0; }

  /// Adds obj; errc::exists if its id is taken, errc::name_conflict if a
  /// unique index already holds its value, errc::missing_index_value if it
  /// lacks a required value. Stamps obj with this commit's version.
  template <one_of<Ts...> T>
  std::error_code create(T obj) {
    if (!open_) return errc::transaction_closed;
    object_traits<T>::set_version(obj, version());
    auto ptr = std::make_shared<const T>(std::move(obj));
    if (auto ec = writer<T>().create(ptr)) return ec;
    changes_.template record<T>(object_traits<T>::id(*ptr), nullptr, ptr);
    return {};
  }

  /// Replaces the stored object with obj's id. obj must carry the stored
  /// version (errc::sequence_conflict otherwise); errc::not_found if absent.
  template <one_of<Ts...> T>
  std::error_code update(T obj) {
    if (!open_) return errc::transaction_closed;
    const object_ptr<T> current = this->template get<T>(object_traits<T>::id(obj));
    if (current == nullptr) return errc::not_found;
    if (object_traits<T>::version(obj) != object_traits<T>::version(*current)) {
      return errc::sequence_conflict;
    }
    object_traits<T>::set_version(obj, version());
    return put(std::move(obj));
  }

  /// Deletes the object with this id; errc::not_found if absent.
  template <one_of<Ts...> T>
  std::error_code remove(std::string_view id) {
    if (!open_) return errc::transaction_closed;
    object_ptr<T> old;
    if (auto ec = writer<T>().remove(id, old)) return ec;
    changes_.template record<T>(object_traits<T>::id(*old), old, nullptr);
    return {};
  }

  /// Closes the transaction without committing anything and returns its
  /// collapsed changes: the replicated store encodes them into a log entry
  /// and applies them (with put/remove) once Raft has committed it.
  std::vector<change_type> take_changes() {
    if (!open_) return {};
    open_ = false;
    lock_ = {};
    return changes_.take();
  }

  /// Creates or replaces obj as given, keeping its version: how followers
  /// replay the leader's changes (its meta is authoritative).
  template <one_of<Ts...> T>
  std::error_code put(T obj) {
    return put(object_ptr<T>(std::make_shared<const T>(std::move(obj))));
  }

  /// The same for an object already shared; a refused put leaves the caller
  /// its handle, so it can retry later (a restore does, after a unique
  /// value it needs has been freed). Requires: obj is not null.
  template <one_of<Ts...> T>
  std::error_code put(object_ptr<T> obj) {
    if (!open_) return errc::transaction_closed;
    object_ptr<T> old;
    std::error_code ec = writer<T>().replace(obj, old);
    if (ec == errc::not_found) ec = writer<T>().create(obj);
    if (ec) return ec;
    changes_.template record<T>(object_traits<T>::id(*obj), old, obj);
    return {};
  }

  /// The snapshot this transaction started from, without its own writes: a
  /// restore walks the old tables in it while it writes the new ones.
  read_transaction<Ts...> base() const {
    return read_transaction<Ts...>(base_ ? base_ : std::make_shared<const state_type>());
  }

 private:
  friend class store<Ts...>;
  friend class reads<write_transaction<Ts...>, Ts...>;

  /// Requires: version > base->version.
  write_transaction(std::shared_ptr<const state_type> base, std::unique_lock<std::mutex> lock,
                    std::uint64_t version)
      : base_(std::move(base)), lock_(std::move(lock)), version_(version) {}

  template <class T>
  table_writer<T>& writer() {
    auto& w = std::get<std::optional<table_writer<T>>>(writers_);
    if (!w) w.emplace(std::get<table_state<T>>(base_->tables));
    return *w;
  }

  template <class T>
  object_ptr<T> get_object(std::string_view id) const {
    const auto& w = std::get<std::optional<table_writer<T>>>(writers_);
    if (w) return w->get(id);
    return base_ ? std::get<table_state<T>>(base_->tables).get(id, scratch_) : nullptr;
  }

  /// Calls f with index i of T's table as this transaction sees it: the
  /// radix transaction of a table it writes, else the base version's tree
  /// (both offer the same reads).
  template <class T, class F>
  void visit_index(std::size_t i, F&& f) const {
    const auto& w = std::get<std::optional<table_writer<T>>>(writers_);
    if (w) {
      f(w->index(i));
    } else if (base_) {
      f(std::get<table_state<T>>(base_->tables).indexes[i]);
    } else {
      f(index_tree<T>{});  // A moved-from transaction reads as empty.
    }
  }

  /// Builds the committed state and the collapsed changes; closes the transaction.
  std::pair<std::shared_ptr<const state_type>, std::vector<change_type>> finish() {
    open_ = false;
    auto next = std::make_shared<state_type>(*base_);
    next->version = version();
    [&]<std::size_t... I>(std::index_sequence<I...>) { (commit_table<Ts>(*next), ...); }
    (std::index_sequence_for<Ts...>{});
    return {std::move(next), changes_.take()};
  }

  template <class T>
  void commit_table(state_type& next) {
    auto& w = std::get<std::optional<table_writer<T>>>(writers_);
    if (w) std::get<table_state<T>>(next.tables) = w->commit();
  }

  std::shared_ptr<const state_type> base_;
  std::unique_lock<std::mutex> lock_;
  std::uint64_t version_ = 0;
  std::tuple<std::optional<table_writer<Ts>>...> writers_;
  change_set<Ts...> changes_;
  bool open_ = true;
  mutable std::string scratch_;
};

}  // namespace keel::store
