// Selectors: which objects of a table a find() returns, in SwarmKit's
// vocabulary (All, ByIDPrefix, ByName, ByNamePrefix, ByServiceID, ByNodeID,
// BySlot, ByDesiredState, Or). A selector names an index and carries the
// query values; the table's indexer turns them into the key (exact) or key
// prefix (prefix) that the radix tree is searched for, so a selector works
// on every table that has an index of that name taking those value types.
// any_of() unions selectors and returns each object once.
//
// The values are typed (std::string for names and ids, the field's own type
// for numbers and enums): a query whose values the index cannot encode is
// refused with errc::invalid_index at run time, never a compile error, since
// a table may simply lack the index.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "keel/store/indexer.hpp"
#include "keel/store/object_traits.hpp"

namespace keel::store {

enum class query_mode : std::uint8_t {
  all,     ///< Every object in the index (entries of objects without a value are absent).
  exact,   ///< Objects whose index value equals the values.
  prefix,  ///< Objects whose (last) index value starts with the last value.
};

/// A query on one index: its name, the mode and the values.
template <class... Values>
struct index_query {
  std::string_view index;
  query_mode mode = query_mode::exact;
  std::tuple<Values...> values;
};

/// Several queries whose results are united, each object once.
template <class... Queries>
struct any_of_query {
  std::tuple<Queries...> queries;
};

template <class Q>
inline constexpr bool is_index_query_v = false;
template <class... V>
inline constexpr bool is_index_query_v<index_query<V...>> = true;
template <class Q>
inline constexpr bool is_any_of_query_v = false;
template <class... Q>
inline constexpr bool is_any_of_query_v<any_of_query<Q...>> = true;

/// Something find() accepts.
template <class S>
concept selector = is_index_query_v<S> || is_any_of_query_v<S>;

// ---- SwarmKit's selectors -------------------------------------------------------------

/// Every object of the table.
inline index_query<> all() { return {primary_index_name, query_mode::all, {}}; }
/// Objects whose id starts with prefix.
inline index_query<std::string> by_id_prefix(std::string prefix) {
  return {primary_index_name, query_mode::prefix, {std::move(prefix)}};
}
/// The object with this id (at most one).
inline index_query<std::string> by_id(std::string id) {
  return {primary_index_name, query_mode::exact, {std::move(id)}};
}
inline index_query<std::string> by_name(std::string name) {
  return {"name", query_mode::exact, {std::move(name)}};
}
inline index_query<std::string> by_name_prefix(std::string prefix) {
  return {"name", query_mode::prefix, {std::move(prefix)}};
}
inline index_query<std::string> by_service_id(std::string id) {
  return {"service_id", query_mode::exact, {std::move(id)}};
}
inline index_query<std::string> by_node_id(std::string id) {
  return {"node_id", query_mode::exact, {std::move(id)}};
}
/// The tasks of a service in one slot (index "slot": service id, slot).
template <class Slot>
index_query<std::string, Slot> by_slot(std::string service_id, Slot slot) {
  return {"slot", query_mode::exact, {std::move(service_id), slot}};
}
/// Objects in a desired state; pass the field's own (enum) type.
template <class State>
index_query<State> by_desired_state(State state) {
  return {"desired_state", query_mode::exact, {state}};
}
/// Objects with a label key=value (a map index named "labels").
inline index_query<std::string, std::string> by_label(std::string key, std::string value) {
  return {"labels", query_mode::exact, {std::move(key), std::move(value)}};
}

/// Any query on any index.
template <class... Values>
index_query<std::decay_t<Values>...> by_index(std::string_view index, query_mode mode,
                                              Values&&... values) {
  return {index, mode, {std::forward<Values>(values)...}};
}

/// The union of several selectors; an object matching several appears once.
/// A function object, not a function: selectors carry std::string, so
/// argument-dependent lookup would otherwise also find std::any_of.
inline constexpr struct any_of_fn {
  template <selector... Selectors>
  any_of_query<Selectors...> operator()(Selectors... selectors) const {
    return {{std::move(selectors)...}};
  }
} any_of{};

namespace detail {

template <class Indexer, class Tuple>
struct encodes_query : std::false_type {};

/// Whether indexer I can encode a query of these values: every part of a
/// compound accepts its value, or the indexer's exact()/prefix() takes them.
template <class I, class... Values>
  requires requires(const I& ix, const Values&... v) {
    ix.exact(v...);
    ix.prefix(v...);
  }
struct encodes_query<I, std::tuple<Values...>> : std::true_type {};

template <class... Parts, class... Values>
  requires(sizeof...(Parts) == sizeof...(Values))
struct encodes_query<compound_indexer<Parts...>, std::tuple<Values...>>
    : std::bool_constant<(query_encoder<Parts, Values> && ...)> {};

}  // namespace detail

/// The key (exact) or key prefix (prefix, all) that a query searches the
/// entries of `schema` for, or nothing when the index cannot encode it.
template <class Indexer, class... Values>
std::optional<std::string> query_key(const index_schema<Indexer>& schema,
                                     const index_query<Values...>& q) {
  if (q.mode == query_mode::all) return std::string();
  if constexpr (sizeof...(Values) == 0) {
    return std::nullopt;
  } else if constexpr (detail::encodes_query<Indexer, std::tuple<Values...>>::value) {
    return std::apply(
        [&](const auto&... v) -> std::string {
          return q.mode == query_mode::exact ? schema.indexer.exact(v...)
                                             : schema.indexer.prefix(v...);
        },
        q.values);
  } else {
    return std::nullopt;
  }
}

}  // namespace keel::store
