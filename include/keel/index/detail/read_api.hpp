// The read-only half of the API, shared by tree (a committed snapshot) and
// transaction (its uncommitted state): each function takes the root.
//
// Thread safety: read-only; see tree.hpp and transaction.hpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "keel/index/detail/cursor.hpp"
#include "keel/index/detail/lookup.hpp"
#include "keel/index/detail/node.hpp"
#include "keel/index/iterator.hpp"

namespace keel::index::detail {

template <class Value>
struct read_api {
  static const Value* find(child_ptr root, std::string_view key) noexcept {
    const leaf<Value>* l = find_leaf<Value>(root, key);
    return l == nullptr ? nullptr : &l->value;
  }

  static iterator<Value> begin(child_ptr root) {
    cursor<Value> c(root);
    c.seek_first();
    return iterator<Value>(std::move(c));
  }
  static iterator<Value> end(child_ptr root) { return iterator<Value>(cursor<Value>(root)); }

  static reverse_iterator<Value> rbegin(child_ptr root) {
    cursor<Value> c(root);
    c.seek_last();
    return reverse_iterator<Value>(std::move(c));
  }
  static reverse_iterator<Value> rend(child_ptr root) {
    return reverse_iterator<Value>(cursor<Value>(root));
  }

  static iterator<Value> lower_bound(child_ptr root, std::string_view key) {
    cursor<Value> c(root);
    c.seek_lower_bound(key);
    return iterator<Value>(std::move(c));
  }

  static reverse_iterator<Value> reverse_lower_bound(child_ptr root, std::string_view key) {
    cursor<Value> c(root);
    c.seek_reverse_lower_bound(key);
    return reverse_iterator<Value>(std::move(c));
  }

  static range<Value> seek_prefix(child_ptr root, std::string_view prefix) {
    const located_subtree found = locate_prefix<Value>(root, prefix);
    const std::string_view base = prefix.substr(0, found.depth);
    cursor<Value> first(found.root, base);
    first.seek_first();
    return range<Value>(iterator<Value>(std::move(first)),
                        iterator<Value>(cursor<Value>(found.root, base)));
  }

  static std::optional<std::pair<std::string, const Value*>> longest_prefix(child_ptr root,
                                                                            std::string_view key) {
    const prefix_match<Value> match = longest_prefix_leaf<Value>(root, key);
    if (match.found == nullptr) return std::nullopt;
    return std::pair<std::string, const Value*>(std::string(key.substr(0, match.size)),
                                                &match.found->value);
  }
};

}  // namespace keel::index::detail
