// A table: the objects of one type, filed in one radix tree per index. The
// primary index "id" maps each id's key to the object; a unique index maps
// its key to the object; a non-unique index maps key + id to it, so every
// entry is distinct (indexer.hpp explains the key formats).
//
// table_state is an immutable version (copying it is a few reference
// counts); table_writer is the single writer's view: one radix transaction
// per index, started from a table_state and committed into a new one. A
// write either happens in every index or, when it is refused (exists,
// not_found, name_conflict, missing_index_value, sequence_conflict), in none.
//
// Thread safety: a table_state may be read from any number of threads; a
// table_writer belongs to one thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/index/pooled_node_policy.hpp"
#include "keel/index/transaction.hpp"
#include "keel/index/tree.hpp"
#include "keel/store/change.hpp"
#include "keel/store/indexer.hpp"
#include "keel/store/object_traits.hpp"

namespace keel::store {

/// The compile-time facts of T's table: its index schemas.
template <object T>
struct table_schema {
  using schemas_type = decltype(table_indexes<T>());
  static constexpr std::size_t index_count = std::tuple_size_v<schemas_type>;

  static const schemas_type& indexes() {
    static const schemas_type schemas = table_indexes<T>();
    return schemas;
  }

  /// The position of the index called `name`, or nothing.
  static std::optional<std::size_t> position(std::string_view name) {
    std::optional<std::size_t> found;
    for_each_index([&](auto i, const auto& schema) {
      if (!found && schema.name == name) found = decltype(i)::value;
    });
    return found;
  }

  /// Calls f(std::integral_constant<size_t, I>, schema I) for every index.
  template <class F>
  static void for_each_index(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::integral_constant<std::size_t, I>{}, std::get<I>(indexes())), ...);
    }
    (std::make_index_sequence<index_count>{});
  }
};

/// Index nodes come from size-class pools: tables allocate and free nodes
/// at a high rate (disabled under sanitizers and by KEEL_DISABLE_FREE_LIST).
using index_node_policy = index::pooled_node_policy;

template <object T>
using index_tree = index::tree<object_ptr<T>, index_node_policy>;
template <object T>
using index_transaction = index::transaction<object_ptr<T>, index_node_policy>;

/// One version of T's table.
template <object T>
struct table_state {
  std::array<index_tree<T>, table_schema<T>::index_count> indexes{};

  const index_tree<T>& primary() const noexcept { return indexes[0]; }
  std::size_t size() const noexcept { return primary().size(); }

  /// The object with this id, or null. `scratch` holds the encoded key.
  object_ptr<T> get(std::string_view id, std::string& scratch) const {
    scratch.clear();
    append_entry_id(scratch, id);  // The primary key is the encoded id.
    const object_ptr<T>* found = primary().find(scratch);
    return found == nullptr ? nullptr : *found;
  }
};

/// The writer of one table inside a write transaction.
template <object T>
class table_writer {
 public:
  using schema = table_schema<T>;
  static constexpr std::size_t index_count = schema::index_count;

  explicit table_writer(const table_state<T>& base) {
    for (std::size_t i = 0; i < index_count; ++i) {
      txns_[i].emplace(base.indexes[i].begin_transaction());
    }
  }

  object_ptr<T> get(std::string_view id) const {
    scratch_.clear();
    append_entry_id(scratch_, id);
    const object_ptr<T>* found = txns_[0]->find(scratch_);
    return found == nullptr ? nullptr : *found;
  }

  /// The radix transaction of index i (reads see this transaction's writes).
  const index_transaction<T>& index(std::size_t i) const { return *txns_[i]; }

  /// Adds a new object. errc::exists if its id is taken.
  std::error_code create(const object_ptr<T>& obj) {
    const std::string_view id = object_traits<T>::id(*obj);
    if (auto ec = entry_keys(*obj, id, new_keys_)) return ec;
    if (txns_[0]->find(new_keys_[0].front()) != nullptr) return errc::exists;
    if (auto ec = check_unique(id)) return ec;
    insert_all(obj);
    return {};
  }

  /// Replaces the stored object with the same id by obj; errc::not_found if
  /// there is none. Returns the replaced object through `old`.
  std::error_code replace(const object_ptr<T>& obj, object_ptr<T>& old) {
    const std::string_view id = object_traits<T>::id(*obj);
    old = get(id);
    if (old == nullptr) return errc::not_found;
    if (auto ec = entry_keys(*obj, id, new_keys_)) return ec;
    if (auto ec = check_unique(id)) return ec;
    // old_keys_ borrows nothing from old: it stays alive in `old` anyway.
    if (auto ec = entry_keys(*old, id, old_keys_)) return ec;
    for (std::size_t i = 0; i < index_count; ++i) {
      for (const std::string& key : old_keys_[i]) {
        if (!contains(new_keys_[i], key)) txns_[i]->erase(key);
      }
    }
    insert_all(obj);
    return {};
  }

  /// Removes the object with this id; errc::not_found if there is none.
  std::error_code remove(std::string_view id, object_ptr<T>& old) {
    old = get(id);
    if (old == nullptr) return errc::not_found;
    if (auto ec = entry_keys(*old, object_traits<T>::id(*old), old_keys_)) return ec;
    for (std::size_t i = 0; i < index_count; ++i) {
      for (const std::string& key : old_keys_[i]) txns_[i]->erase(key);
    }
    return {};
  }

  /// The new version of the table. The writer must not be used afterwards.
  table_state<T> commit() {
    table_state<T> out;
    for (std::size_t i = 0; i < index_count; ++i) out.indexes[i] = txns_[i]->commit();
    return out;
  }

 private:
  using keys_type = std::array<std::vector<std::string>, index_count>;

  static bool contains(const std::vector<std::string>& keys, const std::string& key) {
    for (const auto& k : keys) {
      if (k == key) return true;
    }
    return false;
  }

  /// Computes obj's entry keys in every index; errc::missing_index_value
  /// if an index that needs a value has none.
  static std::error_code entry_keys(const T& obj, std::string_view id, keys_type& keys) {
    std::error_code ec;
    schema::for_each_index([&](auto i, const auto& s) {
      keys[i].clear();
      if (!ec) ec = append_entry_keys(s, obj, id, keys[i]);
    });
    return ec;
  }

  /// errc::name_conflict if a unique index already files another object
  /// under one of new_keys_.
  std::error_code check_unique(std::string_view id) const {
    std::error_code ec;
    schema::for_each_index([&](auto i, const auto& s) {
      if (ec || !s.unique || decltype(i)::value == 0) return;
      for (const std::string& key : new_keys_[i]) {
        const object_ptr<T>* other = txns_[i]->find(key);
        if (other != nullptr && object_traits<T>::id(**other) != id) {
          ec = errc::name_conflict;
          return;
        }
      }
    });
    return ec;
  }

  void insert_all(const object_ptr<T>& obj) {
    for (std::size_t i = 0; i < index_count; ++i) {
      for (const std::string& key : new_keys_[i]) txns_[i]->insert(key, obj);
    }
  }

  std::array<std::optional<index_transaction<T>>, index_count> txns_;
  keys_type new_keys_;
  keys_type old_keys_;
  mutable std::string scratch_;
};

}  // namespace keel::store
