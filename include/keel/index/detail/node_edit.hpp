// In-place edits of one sorted inner node (node4 to node32) that a
// transaction owns alone: putting a child under a byte and taking one out,
// and the kinds nodes grow and shrink into. They never allocate and never
// touch reference counts; a node256's blocks are node_memory.hpp's business,
// growing, shrinking and collapsing nodes mutation.hpp's.
//
// Thread safety: only on nodes the caller owns alone (count 1, reached
// through owned nodes).
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>

#include "keel/index/detail/node.hpp"

namespace keel::index::detail {

/// Puts c under byte b of a sorted node. Requires: is_sorted_kind(n->kind),
/// n is not full and has no child under b.
inline void insert_child(inner_node* n, std::uint8_t b, child_ptr c) noexcept {
  assert(is_sorted_kind(n->kind) && n->count < node_capacity(n->kind));
  const sorted_arrays a = sorted_of(n);
  int i = n->count;
  while (i > 0 && a.keys[i - 1] > b) --i;
  std::memmove(a.keys + i + 1, a.keys + i, static_cast<std::size_t>(n->count - i));
  std::memmove(a.children + i + 1, a.children + i, sizeof(child_ptr) * (n->count - i));
  a.keys[i] = b;
  a.children[i] = c;
  ++n->count;
}

/// Takes the child under byte b out of a sorted node (without releasing
/// it). Requires: is_sorted_kind(n->kind) and n has a child under b.
inline void remove_child(inner_node* n, std::uint8_t b) noexcept {
  assert(is_sorted_kind(n->kind));
  const sorted_arrays a = sorted_of(n);
  int i = 0;
  while (a.keys[i] != b) ++i;
  const int last = n->count - 1;
  std::memmove(a.keys + i, a.keys + i + 1, static_cast<std::size_t>(last - i));
  std::memmove(a.children + i, a.children + i + 1, sizeof(child_ptr) * (last - i));
  a.keys[last] = 0;
  a.children[last] = child_ptr{};
  --n->count;
}

/// The kind a full node grows into.
inline node_kind grown_kind(node_kind kind) noexcept {
  switch (kind) {
    case node_kind::node4:
      return node_kind::node8;
    case node_kind::node8:
      return node_kind::node16;
    case node_kind::node16:
      return node_kind::node32;
    case node_kind::node32:
    case node_kind::node256:
      break;
  }
  return node_kind::node256;
}

/// The kind a node of `count` children shrinks into, or its own kind. Each
/// threshold sits below the point where the smaller kind would grow again
/// (5, 9, 17, 33), so a node that oscillates around a boundary does not
/// rebuild on every change.
inline node_kind shrunk_kind(node_kind kind, int count) noexcept {
  switch (kind) {
    case node_kind::node4:
      break;
    case node_kind::node8:
      if (count <= 3) return node_kind::node4;
      break;
    case node_kind::node16:
      if (count <= 6) return node_kind::node8;
      break;
    case node_kind::node32:
      if (count <= 13) return node_kind::node16;
      break;
    case node_kind::node256:
      if (count <= 28) return node_kind::node32;
      break;
  }
  return kind;
}

}  // namespace keel::index::detail
