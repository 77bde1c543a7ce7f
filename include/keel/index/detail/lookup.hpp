// Point lookups over a tree's root: the leaf of a key, the longest stored key
// that is a prefix of a key, and the subtree holding every key that starts
// with a prefix.
//
// Each walks down comparing the compressed prefixes it passes with the key,
// since a leaf stores only the bytes below its position (node.hpp): reaching
// a leaf at depth d means the key's first d bytes matched the path, and the
// leaf's suffix is compared with the rest.
//
// Thread safety: read-only; safe on any tree that is not being mutated.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

#include "keel/index/detail/node.hpp"

namespace keel::index::detail {

/// Whether key continues at depth with the prefix of n.
inline bool prefix_matches(const inner_node* n, std::string_view key, std::size_t depth) noexcept {
  const std::size_t size = n->prefix_size;
  if (size == 0) return true;
  return key.size() - depth >= size &&
         std::memcmp(key.data() + depth, prefix_of(n).data(), size) == 0;
}

/// The leaf whose key is exactly `key`, or nullptr.
template <class Value>
const leaf<Value>* find_leaf(child_ptr c, std::string_view key) noexcept {
  std::size_t depth = 0;
  while (c) {
    if (c.is_leaf()) {
      const leaf<Value>* l = c.template as_leaf<Value>();
      return l->suffix() == key.substr(depth) ? l : nullptr;
    }
    const inner_node* n = c.inner();
    if (!prefix_matches(n, key, depth)) return nullptr;
    depth += n->prefix_size;
    if (depth == key.size()) return n->leaf ? n->leaf.template as_leaf<Value>() : nullptr;
    c = find_child(n, byte_at(key, depth));
    ++depth;
  }
  return nullptr;
}

/// A stored key that is a prefix of another key: its leaf and its length.
template <class Value>
struct prefix_match {
  const leaf<Value>* found = nullptr;
  std::size_t size = 0;
};

/// The longest stored key that is a prefix of `key` (or equal), if any.
template <class Value>
prefix_match<Value> longest_prefix_leaf(child_ptr c, std::string_view key) noexcept {
  prefix_match<Value> best;
  std::size_t depth = 0;
  while (c) {
    if (c.is_leaf()) {
      const leaf<Value>* l = c.template as_leaf<Value>();
      if (key.substr(depth).starts_with(l->suffix())) best = {l, depth + l->suffix_size};
      break;
    }
    const inner_node* n = c.inner();
    if (!prefix_matches(n, key, depth)) break;
    depth += n->prefix_size;
    if (n->leaf) best = {n->leaf.template as_leaf<Value>(), depth};
    if (depth == key.size()) break;
    c = find_child(n, byte_at(key, depth));
    ++depth;
  }
  return best;
}

/// The smallest subtree holding every key that starts with a prefix.
struct located_subtree {
  /// A leaf or an inner node, or null when no key starts with the prefix.
  child_ptr root{};
  /// The bytes of the prefix above it: its keys start with prefix[0, depth).
  std::size_t depth = 0;
};

template <class Value>
located_subtree locate_prefix(child_ptr c, std::string_view prefix) noexcept {
  std::size_t depth = 0;
  while (c) {
    const std::string_view rest = prefix.substr(depth);
    if (c.is_leaf()) {
      if (!c.template as_leaf<Value>()->suffix().starts_with(rest)) return {};
      return {c, depth};
    }
    const inner_node* n = c.inner();
    const std::string_view node_prefix = prefix_of(n);
    if (rest.size() <= node_prefix.size()) {
      if (!node_prefix.starts_with(rest)) return {};
      return {c, depth};
    }
    if (!rest.starts_with(node_prefix)) return {};
    depth += node_prefix.size();
    c = find_child(n, byte_at(prefix, depth));
    ++depth;
  }
  return {};
}

}  // namespace keel::index::detail
