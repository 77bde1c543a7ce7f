// Making, copying, editing the child tables of, and freeing the radix tree's
// nodes through a node policy.
//
// Reference counting (intrusive, atomic): retain is a relaxed increment;
// release is an acq_rel decrement (skipped when the caller holds the last
// reference), and the thread that drops the last reference frees the node
// and releases its children, iteratively (an intrusive stack threaded
// through the dying nodes' leaf fields), so a tree as deep as its longest
// key never overflows the call stack. unique() is an acquire load, pairing
// with the releases of other threads: seeing 1 means every other holder's
// reads of the node happened before. A node256's child_blocks are counted
// the same way and shared between copies of the node.
//
// rebuild() is the one way a node changes kind, prefix or owner: it makes a
// new node and consumes the caller's reference to the old one. When the old
// node is unique its children simply move (no refcount traffic) and its block
// is freed; when it is shared, the new node retains every child (a node256
// copy retains its blocks instead) and the old one is left to its other
// holders.
//
// Thread safety: nodes and blocks with a count above one are never written;
// release and retain may run on any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "keel/index/detail/node.hpp"
#include "keel/index/detail/node_edit.hpp"

namespace keel::index::detail {

/// A prefix assembled from pieces: head, then an optional byte, then tail.
struct prefix_pieces {
  std::string_view head{};
  int middle = -1;
  std::string_view tail{};

  std::size_t size() const noexcept { return head.size() + (middle >= 0 ? 1 : 0) + tail.size(); }
  void write(char* out) const noexcept {
    if (!head.empty()) std::memcpy(out, head.data(), head.size());
    out += head.size();
    if (middle >= 0) *out++ = static_cast<char>(middle);
    if (!tail.empty()) std::memcpy(out, tail.data(), tail.size());
  }
};

/// Drops one reference; true if it was the last (the caller frees). A count
/// of one that the caller holds cannot grow behind its back (every other
/// holder would be counted), so the last reference needs no atomic write;
/// the acquire load orders the frees after the other holders' releases.
inline bool drop_reference(counted* c) noexcept {
  if (c->refs.load(std::memory_order_acquire) == 1) return true;
  return c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

inline void retain(counted* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }
inline void retain(child_ptr c) noexcept {
  if (c) retain(c.header());
}

/// Whether the caller's reference is the only one. Requires: non-null.
inline bool unique(const counted* c) noexcept {
  return c->refs.load(std::memory_order_acquire) == 1;
}
inline bool unique(child_ptr c) noexcept { return unique(c.header()); }

/// Each child's count sits on a cache line of its own, and an atomic update
/// waits for its line: fetching them all first lets the misses overlap.
template <class Range>
void prefetch_counts([[maybe_unused]] const Range& children, [[maybe_unused]] int count) noexcept {
#if defined(__GNUC__)
  if (count > 4) {
    for (const child_ptr c : children) {
      if (c) __builtin_prefetch(c.header(), 1);
    }
  }
#endif
}

template <class Value, class Policy>
struct node_memory {
  using leaf_type = leaf<Value>;
  static constexpr std::size_t leaf_align = alignof(leaf_type);
  static constexpr std::size_t node_align = alignof(node256);
  static constexpr std::size_t block_align = alignof(child_block);

  // --- leaves ------------------------------------------------------------------

  /// A new leaf storing `suffix` and a Value made from value.
  template <class V>
  static leaf_type* make_leaf(const prefix_pieces& suffix, V&& value) {
    const std::size_t ssize = suffix.size();
    // Keys are index keys; anything near 4 GiB is a caller bug, not input.
    if (ssize > UINT32_MAX) throw std::length_error("keel::index: key over 4 GiB");
    const std::size_t size = leaf_type::block_size(ssize);
    void* raw = Policy::allocate(size, leaf_align);
    leaf_type* l;
    try {
      l = new (raw) leaf_type(static_cast<std::uint32_t>(ssize), std::forward<V>(value));
    } catch (...) {
      Policy::deallocate(raw, size, leaf_align);
      throw;
    }
    suffix.write(l->suffix_data());
    return l;
  }
  template <class V>
  static leaf_type* make_leaf(std::string_view suffix, V&& value) {
    return make_leaf(prefix_pieces{suffix}, std::forward<V>(value));
  }

  static void destroy_leaf(leaf_type* l) noexcept {
    const std::size_t size = leaf_type::block_size(l->suffix_size);
    l->~leaf_type();
    Policy::deallocate(l, size, leaf_align);
  }

  /// The leaf at c, moved to another depth: a new leaf storing `suffix`
  /// with c's value (moved if the caller owns c alone, else copied).
  /// Consumes the caller's reference to c; on an exception nothing is.
  static child_ptr move_leaf(child_ptr c, const prefix_pieces& suffix) {
    leaf_type* old = c.template as_leaf<Value>();
    if (unique(c)) {
      leaf_type* fresh = make_leaf(suffix, std::move_if_noexcept(old->value));
      destroy_leaf(old);
      return child_ptr(fresh);
    }
    leaf_type* fresh = make_leaf(suffix, std::as_const(old->value));
    release(c);
    return child_ptr(fresh);
  }

  // --- inner nodes and blocks ------------------------------------------------------

  /// A new, empty inner node of a kind with a prefix.
  static inner_node* make_node(node_kind kind, const prefix_pieces& prefix) {
    const std::size_t psize = prefix.size();
    if (psize > UINT32_MAX) throw std::length_error("keel::index: key over 4 GiB");
    void* raw = Policy::allocate(node_block_size(kind, psize), node_align);
    const auto p32 = static_cast<std::uint32_t>(psize);
    inner_node* n = nullptr;
    switch (kind) {
      case node_kind::node4:
        n = new (raw) node4(kind, p32);
        break;
      case node_kind::node8:
        n = new (raw) node8(kind, p32);
        break;
      case node_kind::node16:
        n = new (raw) node16(kind, p32);
        break;
      case node_kind::node32:
        n = new (raw) node32(kind, p32);
        break;
      case node_kind::node256:
        n = new (raw) node256(kind, p32);
        break;
    }
    prefix.write(prefix_data(n));
    return n;
  }

  /// Frees n's block without touching its children. Requires: the caller
  /// owns n and has moved or released everything it referenced (a node256's
  /// blocks included).
  static void free_shell(inner_node* n) noexcept {
    Policy::deallocate(n, node_block_size(n->kind, n->prefix_size), node_align);
  }

  static child_block* make_block() {
    return new (Policy::allocate(sizeof(child_block), block_align)) child_block();
  }
  static void free_block_shell(child_block* block) noexcept {
    Policy::deallocate(block, sizeof(child_block), block_align);
  }

  /// Frees a node256 that rebuild() was filling, and its blocks, leaving
  /// the children alone (they still belong to the node being rebuilt).
  static void discard(inner_node* n) noexcept {
    if (n->kind == node_kind::node256) {
      for (child_block* block : static_cast<node256*>(n)->blocks) {
        if (block != nullptr) free_block_shell(block);
      }
    }
    free_shell(n);
  }

  /// Appends a child to a node that is not full; bytes arrive ascending.
  /// Throws only when a node256 needs a new block.
  static void append_child(inner_node* n, std::uint8_t b, child_ptr c) {
    if (n->kind == node_kind::node256) {
      child_block*& block = static_cast<node256*>(n)->blocks[b >> 4];
      if (block == nullptr) block = make_block();
      block->children[b & 15] = c;
      ++block->count;
    } else {
      const sorted_arrays a = sorted_of(n);
      a.keys[n->count] = b;
      a.children[n->count] = c;
    }
    ++n->count;
  }

  /// A node of `kind` with `prefix` holding n's children and leaf; consumes
  /// the caller's reference to n. Requires: n's children fit in `kind`; the
  /// caller reached n through nodes it owns alone. On an exception nothing
  /// is consumed.
  static inner_node* rebuild(inner_node* n, node_kind kind, const prefix_pieces& prefix) {
    inner_node* m = make_node(kind, prefix);  // Copies the prefix before n may be freed.
    const bool same_kind = kind == n->kind;
    if (same_kind) {
      // Sorted arrays, or a node256's block pointers: the body as it is.
      constexpr std::size_t body = sizeof(inner_node);
      std::memcpy(reinterpret_cast<char*>(m) + body, reinterpret_cast<const char*>(n) + body,
                  node_struct_size(kind) - body);
      m->count = n->count;
    } else {
      try {
        for_each_child(n, [m](std::uint8_t b, child_ptr c) { append_child(m, b, c); });
      } catch (...) {
        discard(m);
        throw;
      }
    }
    m->leaf = n->leaf;
    if (unique(child_ptr(n))) {
      // n's references move to m; a node256's blocks move too (same kind),
      // or give their children up (another kind).
      if (!same_kind && n->kind == node_kind::node256) release_blocks_keeping_children(n);
      free_shell(n);
    } else {
      if (same_kind && kind == node_kind::node256) {
        for (child_block* block : static_cast<node256*>(m)->blocks) {
          if (block != nullptr) retain(block);
        }
      } else {
        retain_children(m);
      }
      retain(m->leaf);
      release(child_ptr(n));
    }
    return m;
  }

  /// Makes the inner node at slot writable: returns it if the caller owns it
  /// alone, else replaces it there by a copy. Requires: the slot belongs to
  /// a node (or handle) the caller owns alone.
  static inner_node* writable(child_ptr& slot) {
    inner_node* n = slot.inner();
    if (unique(slot)) return n;
    inner_node* m = rebuild(n, n->kind, prefix_pieces{prefix_of(n)});
    slot = child_ptr(m);
    return m;
  }

  /// Where writable n stores the child under byte b (copying a shared
  /// node256 block first), or nullptr if there is none.
  static child_ptr* writable_child_slot(inner_node* n, std::uint8_t b) {
    if (n->kind != node_kind::node256) return sorted_child_slot(n, b);
    child_block*& block = static_cast<node256*>(n)->blocks[b >> 4];
    if (block == nullptr || !block->children[b & 15]) return nullptr;
    if (!unique(block)) {
      child_block* copy = make_block();
      std::memcpy(copy->children, block->children, sizeof(block->children));
      copy->count = block->count;
      retain_block_children(copy);
      release_block(std::exchange(block, copy));
    }
    return &block->children[b & 15];
  }

  /// Puts c under byte b of writable n. Requires: n is not full and has no
  /// child under b. Throws only when a node256 needs a new block.
  static void add_child(inner_node* n, std::uint8_t b, child_ptr c) {
    if (n->kind != node_kind::node256) {
      insert_child(n, b, c);
      return;
    }
    child_block*& block = static_cast<node256*>(n)->blocks[b >> 4];
    if (block == nullptr) {
      block = make_block();
    } else if (!unique(block)) {
      child_block* copy = make_block();
      std::memcpy(copy->children, block->children, sizeof(block->children));
      copy->count = block->count;
      retain_block_children(copy);
      release_block(std::exchange(block, copy));
    }
    block->children[b & 15] = c;
    ++block->count;
    ++n->count;
  }

  /// Takes the child under byte b out of writable n, without releasing it.
  /// Requires: n has a child under b, in a block made writable (by
  /// writable_child_slot) if n is a node256.
  static void remove_child(inner_node* n, std::uint8_t b) noexcept {
    if (n->kind != node_kind::node256) {
      detail::remove_child(n, b);
      return;
    }
    child_block*& block = static_cast<node256*>(n)->blocks[b >> 4];
    block->children[b & 15] = child_ptr{};
    if (--block->count == 0) {
      free_block_shell(block);
      block = nullptr;
    }
    --n->count;
  }

  /// Gives up a writable node256's blocks, keeping the references to their
  /// children for whoever takes them over: a block of its own is freed, a
  /// shared one stays with its other holders after its children are retained.
  static void release_blocks_keeping_children(inner_node* n) noexcept {
    for (child_block*& block : static_cast<node256*>(n)->blocks) {
      if (block == nullptr) continue;
      if (unique(block)) {
        free_block_shell(block);
      } else {
        retain_block_children(block);
        release_block(block);
      }
      block = nullptr;
    }
  }

  // --- references ------------------------------------------------------------

  /// Takes a reference on every child of n (not its leaf).
  static void retain_children(const inner_node* n) noexcept {
    if (is_sorted_kind(n->kind)) {
      const sorted_arrays a = sorted_of(n);
      prefetch_counts(std::span<const child_ptr>(a.children, n->count), n->count);
    }
    for_each_child(n, [](std::uint8_t, child_ptr c) { retain(c); });
  }

  static void retain_block_children(const child_block* block) noexcept {
    prefetch_counts(block->children, block->count);
    for (const child_ptr c : block->children) retain(c);
  }

  /// Drops one reference to a block; the last one releases its children.
  static void release_block(child_block* block) noexcept {
    if (!drop_reference(block)) return;
    for (const child_ptr c : block->children) release(c);
    free_block_shell(block);
  }

  /// Drops one reference; frees whatever no one references any more.
  static void release(child_ptr c) noexcept {
    if (!c || !drop_reference(c.header())) return;
    if (c.is_leaf()) {
      destroy_leaf(c.template as_leaf<Value>());
      return;
    }
    // Dead inner nodes wait on a stack linked through their leaf fields.
    inner_node* stack = nullptr;
    auto drop = [&stack](child_ptr ch) noexcept {
      if (!ch || !drop_reference(ch.header())) return;
      if (ch.is_leaf()) {
        destroy_leaf(ch.template as_leaf<Value>());
        return;
      }
      inner_node* n = ch.inner();
      const child_ptr l = n->leaf;
      if (l && drop_reference(l.header())) destroy_leaf(l.template as_leaf<Value>());
      n->leaf = child_ptr(stack);
      stack = n;
    };
    {
      inner_node* n = c.inner();
      const child_ptr l = n->leaf;
      if (l && drop_reference(l.header())) destroy_leaf(l.template as_leaf<Value>());
      n->leaf = child_ptr(stack);
      stack = n;
    }
    while (stack != nullptr) {
      inner_node* n = stack;
      stack = n->leaf ? n->leaf.inner() : nullptr;
      if (n->kind == node_kind::node256) {
        for (child_block* block : static_cast<node256*>(n)->blocks) {
          if (block == nullptr || !drop_reference(block)) continue;
          prefetch_counts(block->children, block->count);
          for (const child_ptr ch : block->children) drop(ch);
          free_block_shell(block);
        }
      } else {
        const sorted_arrays a = sorted_of(n);
        prefetch_counts(std::span<const child_ptr>(a.children, n->count), n->count);
        for (int i = 0; i < n->count; ++i) drop(a.children[i]);
      }
      free_shell(n);
    }
  }
};

}  // namespace keel::index::detail
