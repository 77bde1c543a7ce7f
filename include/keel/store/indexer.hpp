// Indexers: how the store files an object under the keys of an index, in
// go-memdb's model but typed. An index is described by an index_schema
// {name, unique, allow_missing, indexer}; its indexer maps an object to zero,
// one or many keys, byte strings whose byte order is the order of the values
// they encode (detail/key_encoding.hpp specifies the formats). The indexers
// here cover string fields (optionally lower-cased), integer and enum
// fields, conditions, compounds of those, and multi-valued fields (a set of
// strings, a map such as labels); a user writes others against the
// `indexer` concept below.
//
// Each indexer also encodes the query side that selectors use: exact(v) is
// the key of the value v, prefix(v) a byte prefix shared by the keys of
// every value that starts with v (for strings; for fixed-width values it is
// exact(v)), and compound/map indexers have leading(v...) for "the first
// parts equal these".
//
// Entries (what the store puts in an index's radix tree): a unique index maps
// each key to its one object; a non-unique index is made unique by appending
// the object's id, encoded as a string, to the key (index_entry_key). Because
// every key of an index is prefix-free (no complete key is a proper prefix of
// another), entries sort by (key, id) and:
//   - the objects whose key is exact(v) are those whose entry key starts with
//     exact(v) (seek_prefix(exact(v)); on a unique index, a point lookup);
//   - the objects with a value starting with p are those whose entry key
//     starts with prefix(p) (seek_prefix(prefix(p)));
//   - lower_bound(exact(v)) is the first entry with a value >= v, for ranges.
//
// Cost: an indexer holds its getter by value, no std::function (a stateless
// lambda takes no space, a pointer to member one pointer), and computing keys
// allocates only the key strings (plus the combinations, for a compound over
// a multi-valued part).
//
// Invariants an indexer keeps (the built-in ones do; custom ones must):
// keys depend only on the object; keys of one index are prefix-free; an
// object without a value yields no key rather than an empty one.
//
// Thread safety: indexers and schemas are immutable values; every member is
// const and may be called from any thread at once, provided the getters they
// hold may be.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/store/detail/field.hpp"
#include "keel/store/detail/key_encoding.hpp"

namespace keel::store {

// --- the policy ----------------------------------------------------------------

// clang-format off
/// An indexer of objects of type T.
///  - ix.append_keys(obj, keys): appends to `keys` the keys obj has in the
///    index, zero (obj has no value: "missing"), one, or many (a multi-valued
///    field); never touches the elements already in `keys`. Duplicates are
///    allowed (the store removes them); order does not matter.
///  - Keys follow the invariants in this file's banner: order-preserving
///    encodings, prefix-free within one index, a function of obj alone.
///  - I is copyable and its members are const: the store shares one indexer
///    between threads.
template <class I, class T>
concept indexer = std::copy_constructible<I> &&
    requires(const I& ix, const T& obj, std::vector<std::string>& keys) {
      { ix.append_keys(obj, keys) } -> std::same_as<void>;
    };

/// An indexer that gives each object at most one key, and can append it to a
/// key being built without allocating (compound_indexer builds on these).
///  - ix.append_key(obj, key): appends obj's key to `key` and returns true,
///    or returns false and leaves `key` as it was when obj has no value.
template <class I, class T>
concept single_indexer = indexer<I, T> &&
    requires(const I& ix, const T& obj, std::string& key) {
      { ix.append_key(obj, key) } -> std::same_as<bool>;
    };

/// An indexer whose keys can be built from a query value V: usable as a part
/// of compound_indexer's queries.
///  - ix.append_exact(out, v): appends exact(v) to out.
///  - ix.append_prefix(out, v): appends prefix(v) to out.
template <class I, class V>
concept query_encoder = requires(const I& ix, std::string& out, const V& v) {
  ix.append_exact(out, v);
  ix.append_prefix(out, v);
};
// clang-format on

/// Whether string keys are ASCII-lower-cased (case-insensitive indexes such as
/// SwarmKit's names). Only A-Z fold: Unicode case folding depends on tables
/// and versions, and keys must not change between two builds of a cluster.
enum class case_fold { none, lower };

// --- encoders for custom indexers ---------------------------------------------

/// The key of a string: its escaped bytes and a terminating '\0'.
inline std::string encode_string(std::string_view value, case_fold fold = case_fold::none) {
  std::string key;
  detail::append_string(key, value, fold == case_fold::lower);
  return key;
}

/// The prefix of the keys of all strings that start with `value`.
inline std::string encode_string_prefix(std::string_view value, case_fold fold = case_fold::none) {
  std::string key;
  detail::append_string_body(key, value, fold == case_fold::lower);
  return key;
}

/// The key of an integer or enum: fixed width, big-endian, sign bit flipped.
template <detail::key_integer V>
std::string encode_integer(V value) {
  std::string key;
  detail::append_integer(key, value);
  return key;
}

/// The key of a bool: one byte, 0 or 1.
inline std::string encode_bool(bool value) { return std::string(1, value ? '\x01' : '\x00'); }

namespace detail {

/// append_keys of a single indexer, in terms of its append_key.
template <class I, class T>
void append_single_key(const I& ix, const T& obj, std::vector<std::string>& keys) {
  std::string key;
  if (ix.append_key(obj, key)) keys.push_back(std::move(key));
}

constexpr bool lower(case_fold fold) noexcept { return fold == case_fold::lower; }

}  // namespace detail

// --- string field ----------------------------------------------------------------

// clang-format off
/// A getter of a string field of T: yields something convertible to
/// std::string_view (std::string, string_view), or a std::optional of it.
template <class Get, class T>
concept string_getter = std::invocable<const Get&, const T&> &&
                        std::convertible_to<const detail::field_value_t<Get, T>&, std::string_view>;
// clang-format on

/// Indexes a string field: key = encode_string(value). The empty string and an
/// empty optional are missing values (as go-memdb's StringFieldIndex).
template <class Get>
class string_indexer {
 public:
  constexpr explicit string_indexer(Get get, case_fold fold = case_fold::none)
      : get_(std::move(get)), fold_(fold) {}

  template <class T>
    requires string_getter<Get, T>
  bool append_key(const T& obj, std::string& key) const {
    return detail::visit_field(get_, obj, [&](const auto& value) {
      const std::string_view s(value);
      if (s.empty()) return false;
      detail::append_string(key, s, detail::lower(fold_));
      return true;
    });
  }

  template <class T>
    requires string_getter<Get, T>
  void append_keys(const T& obj, std::vector<std::string>& keys) const {
    detail::append_single_key(*this, obj, keys);
  }

  /// The key of objects whose field is `value`.
  std::string exact(std::string_view value) const { return encode_string(value, fold_); }
  /// The key prefix of objects whose field starts with `value`.
  std::string prefix(std::string_view value) const { return encode_string_prefix(value, fold_); }
  void append_exact(std::string& out, std::string_view value) const {
    detail::append_string(out, value, detail::lower(fold_));
  }
  void append_prefix(std::string& out, std::string_view value) const {
    detail::append_string_body(out, value, detail::lower(fold_));
  }

  constexpr case_fold fold() const noexcept { return fold_; }

 private:
  [[no_unique_address]] Get get_;
  case_fold fold_;
};

// --- integer or enum field --------------------------------------------------------

/// A getter of an integer or enum field of T whose type is exactly Value (or
/// std::optional<Value>): the key width is sizeof(Value), so queries and
/// objects must agree on it.
// clang-format off
template <class Get, class T, class Value>
concept integer_getter = std::invocable<const Get&, const T&> &&
                         std::same_as<detail::field_value_t<Get, T>, Value>;
// clang-format on

/// Indexes an integer or enum field: key = encode_integer(value), so byte
/// order is numeric order (signed too). Never missing unless the getter
/// returns an empty optional. CTAD reads Value from a non-generic getter's
/// signature; for a generic one, name it: integer_indexer<std::uint64_t, G>.
template <class Value, class Get>
class integer_indexer {
  static_assert(detail::key_integer<Value>,
                "integer_indexer: the field must have an integer or enum type (for a bool "
                "use conditional_indexer)");

 public:
  using value_type = Value;

  constexpr explicit integer_indexer(Get get) : get_(std::move(get)) {}

  template <class T>
    requires integer_getter<Get, T, Value>
  bool append_key(const T& obj, std::string& key) const {
    return detail::visit_field(get_, obj, [&](const Value& value) {
      detail::append_integer(key, value);
      return true;
    });
  }

  template <class T>
    requires integer_getter<Get, T, Value>
  void append_keys(const T& obj, std::vector<std::string>& keys) const {
    detail::append_single_key(*this, obj, keys);
  }

  /// The key of objects whose field is `value`.
  std::string exact(Value value) const { return encode_integer(value); }
  /// Fixed-width values have no shorter prefix: the same as exact(value).
  std::string prefix(Value value) const { return encode_integer(value); }
  void append_exact(std::string& out, Value value) const { detail::append_integer(out, value); }
  void append_prefix(std::string& out, Value value) const { detail::append_integer(out, value); }

 private:
  [[no_unique_address]] Get get_;
};

template <class Get>
integer_indexer(Get) -> integer_indexer<detail::getter_value_t<Get>, Get>;

// --- condition ------------------------------------------------------------------------

// clang-format off
/// A predicate on T: returns bool, or std::optional<bool> (empty: missing).
template <class Pred, class T>
concept condition = std::invocable<const Pred&, const T&> &&
                    std::same_as<detail::field_value_t<Pred, T>, bool>;
// clang-format on

/// Indexes a condition ("the task is running") or a bool field: key =
/// encode_bool(pred(obj)), so false sorts before true.
template <class Pred>
class conditional_indexer {
 public:
  constexpr explicit conditional_indexer(Pred pred) : pred_(std::move(pred)) {}

  template <class T>
    requires condition<Pred, T>
  bool append_key(const T& obj, std::string& key) const {
    return detail::visit_field(pred_, obj, [&](bool value) {
      detail::append_bool(key, value);
      return true;
    });
  }

  template <class T>
    requires condition<Pred, T>
  void append_keys(const T& obj, std::vector<std::string>& keys) const {
    detail::append_single_key(*this, obj, keys);
  }

  /// The key of objects for which the condition is `value`.
  std::string exact(bool value) const { return encode_bool(value); }
  /// The same as exact(value).
  std::string prefix(bool value) const { return encode_bool(value); }
  void append_exact(std::string& out, bool value) const { detail::append_bool(out, value); }
  void append_prefix(std::string& out, bool value) const { detail::append_bool(out, value); }

 private:
  [[no_unique_address]] Pred pred_;
};

// --- compound -------------------------------------------------------------------------

namespace detail {

// clang-format off
template <class T, class... Indexers>
concept all_indexers = (indexer<Indexers, T> && ...);

template <class T, class... Indexers>
concept all_single_indexers = (single_indexer<Indexers, T> && ...);
// clang-format on

}  // namespace detail

/// Indexes a tuple of values (SwarmKit's "service id and slot"): the key is
/// the concatenation of the parts' keys, so entries sort by the first part,
/// then the second... An object missing any part has no key. Multi-valued
/// parts give the cartesian product of their keys.
///
/// Queries, with one value per part:
///  - exact(v1, ..., vn): all parts.
///  - leading(v1, ..., vk), k <= n: the prefix of the keys whose first k
///    parts are exactly these ("all tasks of service s").
///  - prefix(v1, ..., vk), k <= n: the first k-1 parts exact and the k-th a
///    prefix ("tasks of service s whose name starts with p").
template <class... Parts>
class compound_indexer {
  static_assert(sizeof...(Parts) >= 1, "compound_indexer: give at least one part");

 public:
  static constexpr std::size_t size = sizeof...(Parts);

  constexpr explicit compound_indexer(Parts... parts) : parts_(std::move(parts)...) {}

  template <class T>
    requires detail::all_single_indexers<T, Parts...>
  bool append_key(const T& obj, std::string& key) const {
    const std::size_t old_size = key.size();
    const bool present =
        std::apply([&](const auto&... part) { return (part.append_key(obj, key) && ...); }, parts_);
    if (!present) key.resize(old_size);
    return present;
  }

  template <class T>
    requires detail::all_indexers<T, Parts...>
  void append_keys(const T& obj, std::vector<std::string>& keys) const {
    if constexpr (detail::all_single_indexers<T, Parts...>) {
      detail::append_single_key(*this, obj, keys);
    } else {
      std::vector<std::string> partial(1), part_keys, next;
      const bool present = std::apply(
          [&](const auto&... part) { return (extend(part, obj, partial, part_keys, next) && ...); },
          parts_);
      if (!present) return;
      keys.insert(keys.end(), std::make_move_iterator(partial.begin()),
                  std::make_move_iterator(partial.end()));
    }
  }

  // clang-format off
  /// The key of objects whose parts are exactly these values.
  template <class... Args>
    requires(sizeof...(Args) == size)
  std::string exact(const Args&... values) const {
    std::string key;
    append_query(key, false, std::index_sequence_for<Args...>{}, values...);
    return key;
  }

  /// The key prefix of objects whose first k parts are exactly these values.
  template <class... Args>
    requires(sizeof...(Args) >= 1 && sizeof...(Args) <= size)
  std::string leading(const Args&... values) const {
    std::string key;
    append_query(key, false, std::index_sequence_for<Args...>{}, values...);
    return key;
  }

  /// The key prefix of objects whose first k-1 parts are exactly the first
  /// k-1 values and whose k-th part starts with the last value.
  template <class... Args>
    requires(sizeof...(Args) >= 1 && sizeof...(Args) <= size)
  std::string prefix(const Args&... values) const {
    std::string key;
    append_query(key, true, std::index_sequence_for<Args...>{}, values...);
    return key;
  }
  // clang-format on

  /// Part I, for building queries by hand.
  template <std::size_t I>
  constexpr const auto& part() const noexcept {
    return std::get<I>(parts_);
  }

 private:
  template <class Part, class T>
  static bool extend(const Part& part, const T& obj, std::vector<std::string>& partial,
                     std::vector<std::string>& part_keys, std::vector<std::string>& next) {
    part_keys.clear();
    part.append_keys(obj, part_keys);
    if (part_keys.empty()) return false;
    next.clear();
    next.reserve(partial.size() * part_keys.size());
    for (const auto& head : partial) {
      for (const auto& tail : part_keys) next.push_back(head + tail);
    }
    partial.swap(next);
    return true;
  }

  template <std::size_t... I, class... Args>
  void append_query(std::string& out, bool last_as_prefix, std::index_sequence<I...>,
                    const Args&... values) const {
    (append_part<I>(out, last_as_prefix && I + 1 == sizeof...(Args), values), ...);
  }

  template <std::size_t I, class Arg>
  void append_part(std::string& out, bool as_prefix, const Arg& value) const {
    const auto& part = std::get<I>(parts_);
    static_assert(query_encoder<std::remove_cvref_t<decltype(part)>, Arg>,
                  "compound_indexer: this part cannot encode a query from that value type");
    if (as_prefix) {
      part.append_prefix(out, value);
    } else {
      part.append_exact(out, value);
    }
  }

  std::tuple<Parts...> parts_;
};

// --- multi-valued: a set of strings ----------------------------------------------------

/// A getter of a range of strings of T (std::vector<std::string>, a protobuf
/// repeated string field...): anything with begin()/end() whose elements
/// convert to std::string_view.
// clang-format off
template <class Get, class T>
concept string_range_getter =
    std::invocable<const Get&, const T&> &&
    requires(const detail::field_result_t<Get, T>& range) {
      { *std::begin(range) } -> std::convertible_to<std::string_view>;
      std::end(range);
    };
// clang-format on

/// Indexes every string of a range field: one key encode_string(element) per
/// non-empty element (go-memdb's StringSliceFieldIndex). An empty range is a
/// missing value.
template <class Get>
class string_set_indexer {
 public:
  constexpr explicit string_set_indexer(Get get, case_fold fold = case_fold::none)
      : get_(std::move(get)), fold_(fold) {}

  template <class T>
    requires string_range_getter<Get, T>
  void append_keys(const T& obj, std::vector<std::string>& keys) const {
    for (const auto& element : std::invoke(get_, obj)) {
      const std::string_view s(element);
      if (s.empty()) continue;
      keys.push_back(encode_string(s, fold_));
    }
  }

  /// The key of objects that have `value` among their elements.
  std::string exact(std::string_view value) const { return encode_string(value, fold_); }
  /// The key prefix of objects with an element that starts with `value`.
  std::string prefix(std::string_view value) const { return encode_string_prefix(value, fold_); }
  void append_exact(std::string& out, std::string_view value) const {
    detail::append_string(out, value, detail::lower(fold_));
  }
  void append_prefix(std::string& out, std::string_view value) const {
    detail::append_string_body(out, value, detail::lower(fold_));
  }

 private:
  [[no_unique_address]] Get get_;
  case_fold fold_;
};

// --- multi-valued: a map of strings (labels) ------------------------------------------

/// A getter of a string-to-string map of T (std::map, std::unordered_map, a
/// protobuf map field): a range whose elements have .first and .second
/// convertible to std::string_view.
// clang-format off
template <class Get, class T>
concept string_map_getter =
    std::invocable<const Get&, const T&> &&
    requires(const detail::field_result_t<Get, T>& map) {
      { (*std::begin(map)).first } -> std::convertible_to<std::string_view>;
      { (*std::begin(map)).second } -> std::convertible_to<std::string_view>;
      std::end(map);
    };
// clang-format on

/// Indexes every entry of a map field (labels): one key per entry with a
/// non-empty key, encode_string(key) + encode_string(value), i.e. a compound
/// (key, value) (go-memdb's StringMapFieldIndex writes the same bytes). Not
/// "k=v" in one string: a key containing '=' would make ("a=b", "c") and
/// ("a", "b=c") collide. An empty map is a missing value. The fold applies
/// to keys and values.
///
/// Queries: exact(k, v) has label k=v; leading(k) has label k (any value);
/// prefix(k) has a label whose key starts with k; prefix(k, v) has label k
/// with a value that starts with v.
template <class Get>
class map_indexer {
 public:
  constexpr explicit map_indexer(Get get, case_fold fold = case_fold::none)
      : get_(std::move(get)), fold_(fold) {}

  template <class T>
    requires string_map_getter<Get, T>
  void append_keys(const T& obj, std::vector<std::string>& keys) const {
    for (const auto& entry : std::invoke(get_, obj)) {
      const std::string_view key(entry.first);
      if (key.empty()) continue;
      keys.push_back(exact(key, std::string_view(entry.second)));
    }
  }

  /// The key of objects with the entry key -> value.
  std::string exact(std::string_view key, std::string_view value) const {
    std::string out;
    detail::append_string(out, key, detail::lower(fold_));
    detail::append_string(out, value, detail::lower(fold_));
    return out;
  }
  /// The key prefix of objects with an entry whose key is `key`.
  std::string leading(std::string_view key) const { return encode_string(key, fold_); }
  /// The key prefix of objects with an entry whose key starts with `key`.
  std::string prefix(std::string_view key) const { return encode_string_prefix(key, fold_); }
  /// The key prefix of objects with an entry `key` whose value starts with `value`.
  std::string prefix(std::string_view key, std::string_view value) const {
    std::string out;
    detail::append_string(out, key, detail::lower(fold_));
    detail::append_string_body(out, value, detail::lower(fold_));
    return out;
  }

 private:
  [[no_unique_address]] Get get_;
  case_fold fold_;
};

// --- index schemas ----------------------------------------------------------------------

/// One index of a table (go-memdb's IndexSchema).
///  - name: what selectors and errors call it; unique within the table, and
///    "id" is the primary index (object_traits.hpp).
///  - unique: at most one object per key; a second one is refused.
///  - allow_missing: an object without a value is left out of the index;
///    otherwise inserting it fails with errc::missing_index_value.
template <class Indexer>
struct index_schema {
  std::string_view name{};
  bool unique = false;
  bool allow_missing = false;
  Indexer indexer;
};

template <class S>
inline constexpr bool is_index_schema_v = false;
template <class I>
inline constexpr bool is_index_schema_v<index_schema<I>> = true;

namespace detail {

template <class Tuple, class T>
inline constexpr bool index_schemas_for_v = false;
template <class... Indexers, class T>
inline constexpr bool index_schemas_for_v<std::tuple<index_schema<Indexers>...>, T> =
    (indexer<Indexers, T> && ...);

}  // namespace detail

// clang-format off
/// A std::tuple of index_schema whose indexers all index T: what
/// object_traits<T>::indexes() returns.
template <class Tuple, class T>
concept index_schemas_for = detail::index_schemas_for_v<std::remove_cvref_t<Tuple>, T>;
// clang-format on

/// Whether the names of these schemas are non-empty and distinct. constexpr,
/// so `static_assert(index_names_valid(traits::indexes()))` checks a schema
/// at compile time when indexes() is constexpr.
template <class... Indexers>
constexpr bool index_names_valid(const std::tuple<index_schema<Indexers>...>& schemas) {
  const std::array<std::string_view, sizeof...(Indexers)> names = std::apply(
      [](const auto&... s) {
        return std::array<std::string_view, sizeof...(Indexers)>{std::string_view(s.name)...};
      },
      schemas);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) return false;
    for (std::size_t j = 0; j < i; ++j) {
      if (names[i] == names[j]) return false;
    }
  }
  return true;
}

/// Calls f(schema) with the schema named `name`, if any; returns whether there
/// was one. Schemas have different types, so f is generic.
template <class Tuple, class F>
constexpr bool visit_index(const Tuple& schemas, std::string_view name, F&& f) {
  return std::apply(
      [&](const auto&... schema) {
        return ((schema.name == name ? (std::invoke(f, schema), true) : false) || ...);
      },
      schemas);
}

// --- entries --------------------------------------------------------------------------------

/// Appends the encoded id to an index key, making the entry key of a
/// non-unique index: key + encode_string(id). See the banner for why exact
/// and prefix lookups keep working.
inline void append_entry_id(std::string& key, std::string_view id) {
  detail::append_string(key, id, false);
}

/// The entry key of object `id` under `index_key` in a non-unique index.
inline std::string index_entry_key(std::string_view index_key, std::string_view id) {
  std::string key;
  key.reserve(index_key.size() + id.size() + 1);
  key.append(index_key);
  append_entry_id(key, id);
  return key;
}

/// Appends to `entries` the entry keys of obj (whose id is `id`) in the index
/// `schema`: its keys sorted and without duplicates, each followed by the
/// encoded id unless the index is unique. Returns errc::missing_index_value,
/// with `entries` as it was, when obj has no key and the index does not allow
/// missing values; otherwise an empty error_code. Allocates only the keys.
template <class T, indexer<T> Indexer>
std::error_code append_entry_keys(const index_schema<Indexer>& schema, const T& obj,
                                  std::string_view id, std::vector<std::string>& entries) {
  const auto first = static_cast<std::ptrdiff_t>(entries.size());
  schema.indexer.append_keys(obj, entries);
  const auto begin = entries.begin() + first;
  if (begin == entries.end()) {
    return schema.allow_missing ? std::error_code{} : make_error_code(errc::missing_index_value);
  }
  if (entries.end() - begin > 1) {
    std::sort(begin, entries.end());
    entries.erase(std::unique(begin, entries.end()), entries.end());
  }
  if (!schema.unique) {
    for (auto it = entries.begin() + first; it != entries.end(); ++it) append_entry_id(*it, id);
  }
  return {};
}

}  // namespace keel::store
