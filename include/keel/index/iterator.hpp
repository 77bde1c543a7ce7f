// Iterators over a radix tree's keys in byte order (unsigned, shorter first,
// the order of std::string's operator<): iterator ascends, reverse_iterator
// descends, range is what seek_prefix returns.
//
// Dereferencing gives an entry {key, value} by value. key views a buffer in
// the iterator, where it assembles each key as it walks (leaves store only
// the bytes below their position): it is valid until the iterator moves or
// goes away. value refers to the stored value and stays valid while the tree
// (or any copy of it) that the iterator came from is alive. Iterators stay
// valid as long as that tree; a transaction's iterators and entries are
// valid until its next write.
// Iterators are bidirectional (decrementing end() gives the last key);
// reverse_iterator is a distinct type that walks the other way, so
// reverse_lower_bound can start anywhere.
//
// Thread safety: like const access to the tree they came from; an iterator
// object itself is not shared between threads.
#pragma once

#include <cstddef>
#include <iterator>
#include <string_view>
#include <utility>

#include "keel/index/detail/cursor.hpp"

namespace keel::index {

/// One stored key and its value.
template <class Value>
struct entry {
  std::string_view key;
  const Value& value;
};

namespace detail {

/// What operator-> returns for iterators whose entries are values.
template <class Value>
struct entry_arrow {
  entry<Value> e;
  const entry<Value>* operator->() const noexcept { return &e; }
};

/// The iterator of one direction; Forward ascends.
template <class Value, bool Forward>
class basic_iterator {
 public:
  using iterator_concept = std::bidirectional_iterator_tag;
  using iterator_category = std::input_iterator_tag;  // entries are values, not references
  using value_type = entry<Value>;
  using difference_type = std::ptrdiff_t;
  using reference = entry<Value>;

  basic_iterator() = default;

  reference operator*() const noexcept { return {cursor_.key(), cursor_.current()->value}; }
  entry_arrow<Value> operator->() const noexcept { return {**this}; }

  basic_iterator& operator++() {
    if constexpr (Forward) {
      cursor_.next();
    } else {
      cursor_.prev();
    }
    return *this;
  }
  basic_iterator operator++(int) {
    basic_iterator old = *this;
    ++*this;
    return old;
  }
  basic_iterator& operator--() {
    if constexpr (Forward) {
      cursor_.prev();
    } else {
      cursor_.next_or_first();
    }
    return *this;
  }
  basic_iterator operator--(int) {
    basic_iterator old = *this;
    --*this;
    return old;
  }

  /// Iterators are equal when they stand on the same leaf, or both at the end.
  friend bool operator==(const basic_iterator& a, const basic_iterator& b) noexcept {
    return a.cursor_.current() == b.cursor_.current();
  }

  /// For the tree and the transaction that create iterators.
  explicit basic_iterator(cursor<Value> c) : cursor_(std::move(c)) {}

 private:
  cursor<Value> cursor_{};
};

}  // namespace detail

/// Ascending iterator.
template <class Value>
using iterator = detail::basic_iterator<Value, true>;

/// Descending iterator.
template <class Value>
using reverse_iterator = detail::basic_iterator<Value, false>;

/// The keys that start with one prefix, ascending (seek_prefix's result).
template <class Value>
class range {
 public:
  range() = default;
  range(index::iterator<Value> first, index::iterator<Value> last)
      : first_(std::move(first)), last_(std::move(last)) {}

  const index::iterator<Value>& begin() const noexcept { return first_; }
  const index::iterator<Value>& end() const noexcept { return last_; }
  bool empty() const noexcept { return first_ == last_; }

 private:
  index::iterator<Value> first_{};
  index::iterator<Value> last_{};
};

}  // namespace keel::index
