// Changes: what a write transaction did, one record per object it touched:
// {table, before, after}. before is empty for a create, after for a delete.
// A transaction's changes are collapsed per object: create then update is a
// create of the final object, update then update one update from the first
// before to the last after, and create then delete vanishes. The same
// records are the events that watches receive, in commit order.
//
// Objects are shared immutable handles (std::shared_ptr<const T>): a change
// costs two reference counts, never a copy of an object.
//
// Thread safety: changes are immutable values once built; change_set is
// owned by one write transaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "keel/store/object_traits.hpp"

namespace keel::store {

/// A stored object: shared, immutable.
template <class T>
using object_ptr = std::shared_ptr<const T>;

enum class change_kind : std::uint8_t { create, update, remove };

constexpr const char* to_string(change_kind k) noexcept {
  switch (k) {
    case change_kind::create:
      return "create";
    case change_kind::update:
      return "update";
    case change_kind::remove:
      return "delete";
  }
  return "invalid";
}

/// The position of T in Ts... (each type appears once).
template <class T, class... Ts>
inline constexpr std::size_t type_index_v = [] {
  constexpr bool matches[] = {std::is_same_v<T, Ts>...};
  std::size_t i = 0;
  while (i < sizeof...(Ts) && !matches[i]) ++i;
  return i;
}();

template <class T, class... Ts>
concept one_of = (std::is_same_v<T, Ts> || ...);

/// One object's change in a store over the object types Ts.
template <object... Ts>
struct change {
  using object_variant = std::variant<object_ptr<Ts>...>;

  object_variant before;  ///< Null pointer for a create.
  object_variant after;   ///< Null pointer for a delete.

  /// Index of the table in Ts.
  std::size_t table_index() const noexcept { return after.index(); }
  /// The table's name.
  std::string_view table() const {
    return std::visit([](const auto& p) { return table_of(p); }, after);
  }
  change_kind kind() const noexcept {
    const bool had = std::visit([](const auto& p) { return p != nullptr; }, before);
    const bool has = std::visit([](const auto& p) { return p != nullptr; }, after);
    return !had ? change_kind::create : has ? change_kind::update : change_kind::remove;
  }
  /// Whether the object is a T.
  template <class T>
  bool is() const noexcept {
    return after.index() == type_index_v<T, Ts...>;
  }
  /// The object before the change (null for a create, or if it is no T).
  template <class T>
  const object_ptr<T>& before_as() const noexcept {
    static const object_ptr<T> none;
    return is<T>() ? std::get<object_ptr<T>>(before) : none;
  }
  /// The object after the change (null for a delete, or if it is no T).
  template <class T>
  const object_ptr<T>& after_as() const noexcept {
    static const object_ptr<T> none;
    return is<T>() ? std::get<object_ptr<T>>(after) : none;
  }
  /// The object the change is about: after, or before for a delete.
  template <class T>
  const object_ptr<T>& object_as() const noexcept {
    return kind() == change_kind::remove ? before_as<T>() : after_as<T>();
  }

 private:
  template <class T>
  static std::string_view table_of(const object_ptr<T>&) {
    return object_traits<T>::table;
  }
};

/// The changes of one write transaction, collapsed per object, in the order
/// each object was first touched.
template <object... Ts>
class change_set {
 public:
  using change_type = change<Ts...>;

  /// Records that object `id` of table T went from `before` to `after`.
  template <one_of<Ts...> T>
  void record(std::string_view id, const object_ptr<T>& before, const object_ptr<T>& after) {
    const std::size_t table = type_index_v<T, Ts...>;
    auto [it, fresh] = positions_.try_emplace(std::pair{table, std::string(id)}, changes_.size());
    constexpr auto at = std::in_place_index<type_index_v<T, Ts...>>;
    using variant = typename change_type::object_variant;
    if (fresh) {
      changes_.push_back(change_type{variant(at, before), variant(at, after)});
      return;
    }
    // Keep the first before and take the latest after.
    changes_[it->second].after = variant(at, after);
  }

  /// The collapsed changes; objects created and deleted again are left out.
  std::vector<change_type> take() {
    std::vector<change_type> out;
    out.reserve(changes_.size());
    for (auto& c : changes_) {
      const bool had = std::visit([](const auto& p) { return p != nullptr; }, c.before);
      const bool has = std::visit([](const auto& p) { return p != nullptr; }, c.after);
      if (had || has) out.push_back(std::move(c));
    }
    changes_.clear();
    positions_.clear();
    return out;
  }

  bool empty() const noexcept { return changes_.empty(); }

 private:
  std::vector<change_type> changes_;
  std::map<std::pair<std::size_t, std::string>, std::size_t> positions_;
};

// ---- watch filters ----------------------------------------------------------------

/// A filter on changes: the kinds it wants, for objects of type T that pass
/// every check (checks see the object after the change, before for a delete).
template <class T, class... Checks>
struct change_filter {
  bool create = true;
  bool update = true;
  bool remove = true;
  std::tuple<Checks...> checks;

  template <class Change>
  bool operator()(const Change& c) const {
    if (!c.template is<T>()) return false;
    switch (c.kind()) {
      case change_kind::create:
        if (!create) return false;
        break;
      case change_kind::update:
        if (!update) return false;
        break;
      case change_kind::remove:
        if (!remove) return false;
        break;
    }
    const T& obj = *c.template object_as<T>();
    return std::apply([&](const auto&... check) { return (check(obj) && ...); }, checks);
  }
};

/// Creates of T passing every check (SwarmKit's EventCreateTask{Checks...}).
template <class T, class... Checks>
change_filter<T, Checks...> on_create(Checks... checks) {
  return {true, false, false, {std::move(checks)...}};
}
/// Updates of T whose new state passes every check.
template <class T, class... Checks>
change_filter<T, Checks...> on_update(Checks... checks) {
  return {false, true, false, {std::move(checks)...}};
}
/// Deletes of T whose last state passes every check.
template <class T, class... Checks>
change_filter<T, Checks...> on_delete(Checks... checks) {
  return {false, false, true, {std::move(checks)...}};
}
/// Every change of T passing every check.
template <class T, class... Checks>
change_filter<T, Checks...> on_any(Checks... checks) {
  return {true, true, true, {std::move(checks)...}};
}

/// Accepts a change that any of the filters accepts (a watch on several events).
template <class... Filters>
struct any_filter {
  std::tuple<Filters...> filters;
  template <class Change>
  bool operator()(const Change& c) const {
    return std::apply([&](const auto&... f) { return (f(c) || ...); }, filters);
  }
};

template <class... Filters>
any_filter<Filters...> any_event(Filters... filters) {
  return {{std::move(filters)...}};
}

/// A check that the object's id equals id (SwarmKit's TaskCheckID).
template <class T>
auto check_id(std::string id) {
  return [id = std::move(id)](const T& obj) {
    return object_traits<T>::id(obj) == id;
  };
}

}  // namespace keel::store
