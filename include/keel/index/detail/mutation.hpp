// Insert, erase and erase_prefix over a root that a transaction holds: path
// copying with in-place edits of what the transaction owns.
//
// Each walks down from the root, calling node_memory::writable() on every
// inner node it is about to change or pass through: a node shared with any
// other version (count above one) is copied once and the copy replaces it in
// its (already writable) parent; a node the transaction owns alone is edited
// in place. After one copy the copy is owned, so a transaction copies each
// shared node at most once, however many writes go through it, and needs no
// table of writable nodes. A miss (erase of an absent key) is found by a
// read-only lookup first and copies nothing.
//
// Structural rules kept after every write (node.hpp lists the invariants):
// a full node grows to the next kind; a node that drops below its shrink
// threshold is rebuilt smaller; a node left with one entry disappears, its
// last child or leaf taking its place (a child inner node absorbing the
// node's prefix and the child's byte into its own prefix).
//
// Exceptions: allocation (and Value's constructors) may throw; every step
// allocates before it changes anything, so the tree stays valid and holds
// either the old or the new state of the key (a failed shrink is skipped).
//
// Thread safety: the caller owns the root slot; other versions are only read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include "keel/index/detail/cursor.hpp"
#include "keel/index/detail/lookup.hpp"
#include "keel/index/detail/node.hpp"
#include "keel/index/detail/node_edit.hpp"
#include "keel/index/detail/node_memory.hpp"

namespace keel::index::detail {

template <class Value, class Policy>
struct mutation {
  using memory = node_memory<Value, Policy>;
  using leaf_type = leaf<Value>;

  /// Stores value under key. Returns true if the key is new, false if its
  /// value was replaced.
  template <class V>
  static bool insert(child_ptr& root, std::string_view key, V&& value) {
    child_ptr* slot = &root;
    std::size_t depth = 0;  // Bytes of key spelled by the path to *slot.
    for (;;) {
      const child_ptr c = *slot;
      const std::string_view rest = key.substr(depth);
      if (!c) {
        *slot = child_ptr(memory::make_leaf(rest, std::forward<V>(value)));
        return true;
      }
      if (c.is_leaf()) {
        const std::string_view old_rest = c.template as_leaf<Value>()->suffix();
        if (old_rest == rest) {
          replace_value(*slot, rest, std::forward<V>(value));
          return false;
        }
        // Two keys now: a node4 where they part holds both, each leaf
        // keeping the bytes below its new position.
        const std::size_t m = common_prefix(old_rest, rest);
        const int old_byte = m < old_rest.size() ? byte_at(old_rest, m) : -1;
        const int new_byte = m < rest.size() ? byte_at(rest, m) : -1;
        child_ptr fresh(
            memory::make_leaf(rest.substr(std::min(rest.size(), m + 1)), std::forward<V>(value)));
        inner_node* n = nullptr;
        child_ptr moved;
        try {
          n = memory::make_node(node_kind::node4, prefix_pieces{rest.substr(0, m)});
          moved = memory::move_leaf(
              c, prefix_pieces{old_rest.substr(std::min(old_rest.size(), m + 1))});
        } catch (...) {
          if (n != nullptr) memory::free_shell(n);
          memory::release(fresh);
          throw;
        }
        place(n, old_byte, moved);
        place(n, new_byte, fresh);
        *slot = child_ptr(n);
        return true;
      }
      inner_node* n = c.inner();
      const std::string_view prefix = prefix_of(n);
      const std::size_t m = common_prefix(prefix, rest);
      if (m < prefix.size()) {
        // The key leaves this node's prefix after m bytes: a node4 there
        // holds the key and this node, with its prefix cut after the split.
        const int new_byte = m < rest.size() ? byte_at(rest, m) : -1;
        child_ptr fresh(
            memory::make_leaf(rest.substr(std::min(rest.size(), m + 1)), std::forward<V>(value)));
        inner_node* parent = nullptr;
        try {
          parent = memory::make_node(node_kind::node4, prefix_pieces{prefix.substr(0, m)});
          const auto b = byte_at(prefix, m);
          inner_node* cut = memory::rebuild(n, n->kind, prefix_pieces{prefix.substr(m + 1)});
          insert_child(parent, b, child_ptr(cut));
        } catch (...) {
          if (parent != nullptr) memory::free_shell(parent);
          memory::release(fresh);
          throw;
        }
        place(parent, new_byte, fresh);
        *slot = child_ptr(parent);
        return true;
      }
      n = memory::writable(*slot);
      depth += m;
      if (depth == key.size()) {
        if (n->leaf) {
          replace_value(n->leaf, {}, std::forward<V>(value));
          return false;
        }
        n->leaf = child_ptr(memory::make_leaf(std::string_view{}, std::forward<V>(value)));
        return true;
      }
      const std::uint8_t b = byte_at(key, depth);
      if (child_ptr* next = memory::writable_child_slot(n, b)) {
        slot = next;
        ++depth;
        continue;
      }
      child_ptr fresh(memory::make_leaf(key.substr(depth + 1), std::forward<V>(value)));
      try {
        if (n->count == node_capacity(n->kind)) {
          n = memory::rebuild(n, grown_kind(n->kind), prefix_pieces{prefix_of(n)});
          *slot = child_ptr(n);
        }
        memory::add_child(n, b, fresh);
      } catch (...) {
        memory::release(fresh);
        throw;
      }
      return true;
    }
  }

  /// Removes key. Returns whether it was there.
  static bool erase(child_ptr& root, std::string_view key) {
    if (find_leaf<Value>(root, key) == nullptr) return false;
    child_ptr* slot = &root;
    child_ptr* parent_slot = nullptr;
    std::uint8_t b = 0;
    std::size_t depth = 0;
    for (;;) {
      if (slot->is_leaf()) {  // The key's leaf, under byte b of the node at parent_slot.
        if (parent_slot == nullptr) {
          memory::release(std::exchange(root, child_ptr{}));
        } else {
          detach(*parent_slot, b);
        }
        return true;
      }
      inner_node* n = memory::writable(*slot);
      depth += n->prefix_size;
      if (depth == key.size()) {
        detach(*slot, leaf_slot);
        return true;
      }
      b = byte_at(key, depth);
      parent_slot = slot;
      slot = memory::writable_child_slot(n, b);
      ++depth;
    }
  }

  /// Removes every key that starts with prefix, calling on_erase(key) for
  /// each first. Returns how many there were.
  template <class OnErase>
  static std::size_t erase_prefix(child_ptr& root, std::string_view prefix, OnErase&& on_erase) {
    const located_subtree target = locate_prefix<Value>(root, prefix);
    if (!target.root) return 0;
    std::size_t erased = 0;
    cursor<Value> walk(target.root, prefix.substr(0, target.depth));
    for (walk.seek_first(); walk.current() != nullptr; walk.next()) {
      on_erase(walk.key());
      ++erased;
    }
    child_ptr* slot = &root;
    child_ptr* parent_slot = nullptr;
    std::uint8_t b = 0;
    std::size_t depth = 0;
    for (;;) {
      // The same descent as locate_prefix, along nodes made writable.
      if (!slot->is_leaf()) {
        const std::size_t prefix_size = slot->inner()->prefix_size;
        if (prefix.size() - depth > prefix_size) {
          inner_node* n = memory::writable(*slot);
          depth += prefix_size;
          b = byte_at(prefix, depth);
          parent_slot = slot;
          slot = memory::writable_child_slot(n, b);
          ++depth;
          continue;
        }
      }
      if (parent_slot == nullptr) {
        memory::release(std::exchange(root, child_ptr{}));
      } else {
        detach(*parent_slot, b);
      }
      return erased;
    }
  }

 private:
  /// Puts an entry into a new node: under byte b, or as its own leaf (-1).
  static void place(inner_node* n, int b, child_ptr c) noexcept {
    if (b < 0) {
      n->leaf = c;
    } else {
      insert_child(n, static_cast<std::uint8_t>(b), c);
    }
  }

  /// Gives the leaf at slot (which stores suffix) a new value: in place if
  /// the transaction owns it, else as a new leaf.
  template <class V>
  static void replace_value(child_ptr& slot, std::string_view suffix, V&& value) {
    if constexpr (std::is_assignable_v<Value&, V&&>) {
      if (unique(slot)) {
        slot.template as_leaf<Value>()->value = std::forward<V>(value);
        return;
      }
    }
    const child_ptr old = slot;
    slot = child_ptr(memory::make_leaf(suffix, std::forward<V>(value)));
    memory::release(old);
  }

  /// Removes one entry from the writable node at slot, the child under byte
  /// `which` or its own leaf (leaf_slot), releasing it; then collapses or
  /// shrinks the node as the invariants ask.
  static void detach(child_ptr& slot, int which) {
    inner_node* n = slot.inner();
    const int children = n->count - (which == leaf_slot ? 0 : 1);
    const bool keeps_leaf = n->leaf && which != leaf_slot;
    const child_ptr removed =
        which == leaf_slot ? n->leaf : find_child(n, static_cast<std::uint8_t>(which));
    if (children == 0 || (children == 1 && !keeps_leaf)) {
      // One entry left: it replaces the node. Build the replacement first,
      // so an allocation failure changes nothing.
      // It moves up to where n starts, so its own prefix (or a leaf's
      // suffix) grows by n's prefix and the byte it hung under.
      child_ptr heir;
      if (children == 0) {
        heir = memory::move_leaf(n->leaf, prefix_pieces{prefix_of(n)});
      } else {
        int s = first_slot(n);
        if (slot_byte(n, s) == which) s = next_slot(n, s);
        const std::uint8_t b = slot_byte(n, s);
        // Through a writable slot: a child in a shared block is not ours to
        // take over, however low its own count.
        const child_ptr only = *memory::writable_child_slot(n, b);
        if (only.is_leaf()) {
          heir = memory::move_leaf(
              only, prefix_pieces{prefix_of(n), b, only.template as_leaf<Value>()->suffix()});
        } else {
          inner_node* h = only.inner();
          heir =
              child_ptr(memory::rebuild(h, h->kind, prefix_pieces{prefix_of(n), b, prefix_of(h)}));
        }
      }
      if (n->kind == node_kind::node256) {
        if (which != leaf_slot) memory::remove_child(n, static_cast<std::uint8_t>(which));
        memory::release_blocks_keeping_children(n);
      }
      memory::release(removed);
      memory::free_shell(n);  // Its other references moved to the heir.
      slot = heir;
      return;
    }
    if (which == leaf_slot) {
      n->leaf = child_ptr{};
    } else {
      memory::remove_child(n, static_cast<std::uint8_t>(which));
    }
    memory::release(removed);
    const node_kind smaller = shrunk_kind(n->kind, n->count);
    if (smaller != n->kind) {
      try {
        slot = child_ptr(memory::rebuild(n, smaller, prefix_pieces{prefix_of(n)}));
      } catch (const std::bad_alloc&) {
        // A node bigger than needed still works; a later erase shrinks it.
      }
    }
  }
};

}  // namespace keel::index::detail
