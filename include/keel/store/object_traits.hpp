// The object traits policy: what the store needs to know about a type of
// object it keeps in a table. A user specializes keel::store::object_traits<T>
// for each object type (a struct of static functions: the traits hold no
// state); the `object` concept checks the specialization where the store is
// instantiated, so a missing member is a compile error that names it.
//
// Every table has a primary index named "id", unique and never missing, built
// from traits::id (primary_index<T>()); traits::indexes() lists the others.
// table_indexes<T>() is the full list the store maintains, primary first.
//
// Invariants: id(obj) and the keys of obj depend only on obj; decode(encode(o))
// equals o; decode never trusts its input (it comes from the log, a snapshot
// or the network) and answers bad bytes with an error value.
//
// Thread safety: the traits are static functions and must be safe to call
// from any thread on distinct objects, and on one object from many threads
// for the const ones.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>

#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/store/indexer.hpp"

namespace keel::store {

/// The traits of an object type; specialize it for each type kept in a store
/// (see the `object` concept for what a specialization must provide).
template <class T>
struct object_traits;

// clang-format off
/// An object type the store can keep: object_traits<T> is specialized with
///  - `static constexpr std::string_view table`: the table's name, non-empty,
///    unique in the store, stable (it is written in the log and snapshots).
///  - `static std::string_view id(const T&)`: the primary key, non-empty;
///    the view may point into the object and lives as long as it is unchanged.
///  - `static std::uint64_t version(const T&)` and
///    `static void set_version(T&, std::uint64_t)`: the object's meta.version,
///    the Raft index of its last write, which updates compare-and-set against.
///  - `static std::string encode(const T&)`: the bytes written to the log and
///    snapshots. Need not be canonical (equal objects may encode differently).
///  - `static keel::result<T> decode(std::string_view)`: the inverse; any
///    bytes that are not an encoding give an error (errc::invalid_object),
///    never undefined behaviour or an exception.
///  - `static auto indexes()`: a std::tuple of index_schema whose indexers
///    index T (possibly empty); their names are non-empty, distinct and not
///    "id". Make it constexpr to check the names at compile time.
/// Optional, detected: `static void set_created_at(T&, std::int64_t)` and
/// `static void set_updated_at(T&, std::int64_t)` (unix nanoseconds).
/// T is copyable: reads hand out copies of stored objects.
template <class T>
concept object =
    std::copy_constructible<T> &&
    requires { sizeof(object_traits<T>); } &&
    requires(const T& obj, T& mutable_obj, std::string_view bytes, std::uint64_t version) {
      { object_traits<T>::table } -> std::convertible_to<std::string_view>;
      typename std::integral_constant<std::size_t,
                                      std::string_view(object_traits<T>::table).size()>;
      { object_traits<T>::id(obj) } -> std::convertible_to<std::string_view>;
      { object_traits<T>::version(obj) } -> std::same_as<std::uint64_t>;
      object_traits<T>::set_version(mutable_obj, version);
      { object_traits<T>::encode(obj) } -> std::same_as<std::string>;
      { object_traits<T>::decode(bytes) } -> std::same_as<result<T>>;
      { object_traits<T>::indexes() } -> index_schemas_for<T>;
    };

/// An object whose traits record when it was created.
template <class T>
concept object_with_created_at = object<T> && requires(T& obj, std::int64_t unix_nanos) {
  object_traits<T>::set_created_at(obj, unix_nanos);
};

/// An object whose traits record when it was last updated.
template <class T>
concept object_with_updated_at = object<T> && requires(T& obj, std::int64_t unix_nanos) {
  object_traits<T>::set_updated_at(obj, unix_nanos);
};
// clang-format on

/// Sets obj's creation time if its traits record one; otherwise does nothing.
template <object T>
void set_created_at(T& obj, std::int64_t unix_nanos) {
  if constexpr (object_with_created_at<T>) object_traits<T>::set_created_at(obj, unix_nanos);
}

/// Sets obj's update time if its traits record one; otherwise does nothing.
template <object T>
void set_updated_at(T& obj, std::int64_t unix_nanos) {
  if constexpr (object_with_updated_at<T>) object_traits<T>::set_updated_at(obj, unix_nanos);
}

/// The name of every table's primary index.
inline constexpr std::string_view primary_index_name = "id";

/// Reads an object's id through its traits: the getter of the primary index.
template <class T>
struct id_of {
  std::string_view operator()(const T& obj) const { return object_traits<T>::id(obj); }
};

/// The primary index's indexer: key = encode_string(id).
template <class T>
using id_indexer = string_indexer<id_of<T>>;

/// The primary index of T's table: "id", unique, never missing.
template <class T>
constexpr index_schema<id_indexer<T>> primary_index() {
  return {.name = primary_index_name,
          .unique = true,
          .allow_missing = false,
          .indexer = id_indexer<T>(id_of<T>{})};
}

/// Every index of T's table: the primary index, then traits::indexes().
template <object T>
constexpr auto table_indexes() {
  return std::tuple_cat(std::tuple{primary_index<T>()}, object_traits<T>::indexes());
}

/// Checks T's index schemas (names non-empty, distinct, "id" only for the
/// primary index): errc::invalid_index_schema or an empty error_code.
template <object T>
std::error_code check_indexes() {
  return index_names_valid(table_indexes<T>()) ? std::error_code{}
                                               : make_error_code(errc::invalid_index_schema);
}

}  // namespace keel::store
