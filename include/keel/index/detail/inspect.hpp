// Looking inside a tree, for tests, benchmarks and debugging: how many nodes
// of each kind it has and how deep it is, and whether its structure keeps
// every invariant of detail/node.hpp.
//
// Thread safety: read-only, like const access to the tree.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/index/detail/node.hpp"
#include "keel/index/detail/node_edit.hpp"
#include "keel/index/tree.hpp"

namespace keel::index::detail {

/// The tree's and the transaction's root, for the functions below.
struct tree_access {
  template <class Value, class Policy>
  static child_ptr root(const tree<Value, Policy>& t) noexcept {
    return t.root_;
  }
  template <class Value, class Policy>
  static child_ptr root(const transaction<Value, Policy>& t) noexcept {
    return t.root_;
  }
};

struct node_census {
  std::size_t leaves = 0;
  std::size_t node4 = 0;
  std::size_t node8 = 0;
  std::size_t node16 = 0;
  std::size_t node32 = 0;
  std::size_t node256 = 0;
  /// A node256's child_blocks.
  std::size_t blocks = 0;
  /// Inner nodes on the longest path from the root to a leaf.
  std::size_t max_depth = 0;
  /// Bytes of all blocks as requested from the policy.
  std::size_t bytes = 0;

  std::size_t inner() const noexcept { return node4 + node8 + node16 + node32 + node256; }
};

/// Counts the nodes reachable from root (shared ones once per path to them).
template <class Value>
node_census census(child_ptr root) {
  node_census out;
  struct item {
    child_ptr c;
    std::size_t depth;
  };
  std::vector<item> todo;
  if (root) todo.push_back({root, 0});
  while (!todo.empty()) {
    const item it = todo.back();
    todo.pop_back();
    if (it.c.is_leaf()) {
      ++out.leaves;
      out.bytes += leaf<Value>::block_size(it.c.template as_leaf<Value>()->suffix_size);
      out.max_depth = std::max(out.max_depth, it.depth);
      continue;
    }
    const inner_node* n = it.c.inner();
    out.bytes += node_block_size(n->kind, n->prefix_size);
    switch (n->kind) {
      case node_kind::node4:
        ++out.node4;
        break;
      case node_kind::node8:
        ++out.node8;
        break;
      case node_kind::node16:
        ++out.node16;
        break;
      case node_kind::node32:
        ++out.node32;
        break;
      case node_kind::node256:
        ++out.node256;
        for (const child_block* block : static_cast<const node256*>(n)->blocks) {
          if (block == nullptr) continue;
          ++out.blocks;
          out.bytes += sizeof(child_block);
        }
        break;
    }
    if (n->leaf) todo.push_back({n->leaf, it.depth + 1});
    for_each_child(n, [&](std::uint8_t, child_ptr c) { todo.push_back({c, it.depth + 1}); });
  }
  return out;
}

/// An empty string if the tree under root is canonical (node.hpp), else a
/// description of the first violation found.
template <class Value>
std::string check_invariants(child_ptr root) {
  struct item {
    child_ptr c;
    std::string path;  // The key bytes that lead to c.
  };
  std::vector<item> todo;
  if (root) todo.push_back({root, {}});
  while (!todo.empty()) {
    item it = std::move(todo.back());
    todo.pop_back();
    if (it.c.is_leaf()) continue;  // Any suffix is fine below a branch byte.
    const inner_node* n = it.c.inner();
    const std::string path = it.path + std::string(prefix_of(n));
    const int entries = n->count + (n->leaf ? 1 : 0);
    if (entries < 2) return "an inner node with fewer than two entries at '" + path + "'";
    if (n->count > node_capacity(n->kind)) return "a node over its capacity";
    if (shrunk_kind(n->kind, n->count) != n->kind) return "a node that should have shrunk";
    if (n->leaf) {
      if (!n->leaf.is_leaf()) return "a node's own leaf is not a leaf";
      if (n->leaf.template as_leaf<Value>()->suffix_size != 0) {
        return "a node's own leaf stores a suffix at '" + path + "'";
      }
    }
    int seen = 0;
    int previous = -1;
    std::string error;
    for_each_child(n, [&](std::uint8_t b, child_ptr c) {
      ++seen;
      if (!c) error = "a null child";
      if (static_cast<int>(b) <= previous) error = "children out of order";
      previous = b;
      if (c) todo.push_back({c, path + static_cast<char>(b)});
    });
    if (!error.empty()) return error;
    if (seen != n->count) return "a node's count differs from its children";
    if (n->kind == node_kind::node256) {
      for (const child_block* block : static_cast<const node256*>(n)->blocks) {
        if (block == nullptr) continue;
        int in_block = 0;
        for (const child_ptr c : block->children) in_block += c ? 1 : 0;
        if (in_block == 0) return "an empty block";
        if (in_block != block->count) return "a block's count differs from its children";
      }
    }
  }
  return {};
}

}  // namespace keel::index::detail
