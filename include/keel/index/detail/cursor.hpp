// A position in a tree's ordered sequence of keys: the walk behind iterators,
// reverse iterators, lower_bound, reverse_lower_bound and seek_prefix.
//
// A cursor keeps the path from its root to the current leaf as a stack of
// frames (inner node, slot, depth): the slot is the child the path goes
// through, or leaf_slot when the current leaf is that node's own leaf (which
// sorts before its children); depth is the key length where the node
// starts. next() moves past the subtree at the top frame's slot, prev()
// before it; both go down the first or last child of the next subtree. The
// root is kept so that prev() from the end finds the last key. A cursor over
// a subtree (seek_prefix) has that subtree as its root and the bytes above it
// as its base.
//
// Leaves store only the bytes below their position, so the cursor assembles
// the current key in a buffer of its own: the base, then each node's prefix
// and branch byte down the stack, then the leaf's suffix. key() views that
// buffer and changes when the cursor moves.
//
// Invariants: current is null exactly at the end; otherwise it is the leaf at
// the top frame's slot, or the top frame's node's own leaf (leaf_slot), or,
// with an empty stack, the root itself; key_ holds the current key.
//
// Thread safety: a cursor reads nodes only; it stays valid as long as the
// nodes it walks are neither freed nor changed (see iterator.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include <boost/container/small_vector.hpp>

#include "keel/index/detail/node.hpp"

namespace keel::index::detail {

/// The bytes of the key a cursor stands on: inline up to 64 bytes, on the
/// heap beyond, grown by memcpy (iteration rewrites its tail at every step).
class key_buffer {
 public:
  key_buffer() noexcept = default;
  explicit key_buffer(std::string_view s) { append(s); }
  key_buffer(const key_buffer& other) { append(other.view()); }
  key_buffer& operator=(const key_buffer& other) {
    if (this != &other) {
      size_ = 0;
      append(other.view());
    }
    return *this;
  }
  key_buffer(key_buffer&& other) noexcept { take(other); }
  key_buffer& operator=(key_buffer&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  ~key_buffer() { release(); }

  std::string_view view() const noexcept { return {data(), size_}; }
  std::size_t size() const noexcept { return size_; }
  /// Requires: n <= size().
  void truncate(std::size_t n) noexcept { size_ = n; }
  void append(std::string_view s) {
    reserve(size_ + s.size());
    if (!s.empty()) std::memcpy(data() + size_, s.data(), s.size());
    size_ += s.size();
  }
  void push_back(char c) {
    reserve(size_ + 1);
    data()[size_++] = c;
  }

 private:
  static constexpr std::size_t inline_capacity = 64;

  char* data() noexcept { return heap_ != nullptr ? heap_ : inline_; }
  const char* data() const noexcept { return heap_ != nullptr ? heap_ : inline_; }
  void reserve(std::size_t n) {
    const std::size_t capacity = heap_ != nullptr ? capacity_ : inline_capacity;
    if (n <= capacity) return;
    const std::size_t grown = std::max(n, 2 * capacity);
    auto* bigger = static_cast<char*>(::operator new(grown));
    std::memcpy(bigger, data(), size_);
    release();
    heap_ = bigger;
    capacity_ = grown;
  }
  void release() noexcept {
    if (heap_ != nullptr) ::operator delete(heap_);
    heap_ = nullptr;
  }
  void take(key_buffer& other) noexcept {
    size_ = other.size_;
    if (other.heap_ != nullptr) {
      heap_ = std::exchange(other.heap_, nullptr);
      capacity_ = other.capacity_;
    } else {
      std::memcpy(inline_, other.inline_, size_);
    }
    other.size_ = 0;
  }

  char* heap_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  char inline_[inline_capacity];
};

template <class Value>
class cursor {
 public:
  using leaf_type = leaf<Value>;

  cursor() = default;
  /// A cursor over the tree at root, whose keys all start with base.
  explicit cursor(child_ptr root, std::string_view base = {})
      : root_(root), base_size_(base.size()), key_(base) {}

  const leaf_type* current() const noexcept { return current_; }
  /// The current key. Requires: not at the end.
  std::string_view key() const noexcept { return key_.view(); }

  /// Goes to the first key.
  void seek_first() {
    reset();
    if (root_) descend_first(root_, base_size_);
  }

  /// Goes to the last key.
  void seek_last() {
    reset();
    if (root_) descend_last(root_, base_size_);
  }

  /// Goes to the first key >= key. Requires: a root cursor (no base).
  void seek_lower_bound(std::string_view key) {
    reset();
    child_ptr c = root_;
    std::size_t depth = 0;
    while (c) {
      if (c.is_leaf()) {
        const leaf_type* l = c.template as_leaf<Value>();
        // The path matched key[0, depth): the suffix decides.
        if (l->suffix() >= key.substr(depth)) {
          at_leaf(l, depth);
        } else {
          advance();
        }
        return;
      }
      const inner_node* n = c.inner();
      const std::string_view prefix = prefix_of(n);
      const std::string_view rest = key.substr(depth);
      const std::size_t m = common_prefix(prefix, rest);
      if (m < prefix.size()) {
        // The key ends inside the prefix or leaves it: the whole subtree is
        // above the key, or the whole subtree is below it.
        if (m == rest.size() || byte_at(prefix, m) > byte_at(rest, m)) {
          descend_first(c, depth);
        } else {
          advance();
        }
        return;
      }
      if (depth + prefix.size() == key.size()) {  // The node's own leaf is the key.
        descend_first(c, depth);
        return;
      }
      const std::uint8_t b = byte_at(key, depth + prefix.size());
      const int s = lower_slot(n, b);
      if (s == no_slot) {  // The node's leaf and all its children are below the key.
        advance();
        return;
      }
      enter(n, depth);
      depth = take(s);
      c = slot_child(n, s);
      if (slot_byte(n, s) != b) {
        descend_first(c, depth);
        return;
      }
    }
  }

  /// Goes to the last key <= key. Requires: a root cursor (no base).
  void seek_reverse_lower_bound(std::string_view key) {
    reset();
    child_ptr c = root_;
    std::size_t depth = 0;
    while (c) {
      if (c.is_leaf()) {
        const leaf_type* l = c.template as_leaf<Value>();
        if (l->suffix() <= key.substr(depth)) {
          at_leaf(l, depth);
        } else {
          retreat();
        }
        return;
      }
      const inner_node* n = c.inner();
      const std::string_view prefix = prefix_of(n);
      const std::string_view rest = key.substr(depth);
      const std::size_t m = common_prefix(prefix, rest);
      if (m < prefix.size()) {
        if (m < rest.size() && byte_at(prefix, m) < byte_at(rest, m)) {
          descend_last(c, depth);  // The whole subtree is below the key.
        } else {
          retreat();  // The whole subtree is above it.
        }
        return;
      }
      if (depth + prefix.size() == key.size()) {  // Only the node's own leaf can be <= key.
        stop_at_own_leaf(n, depth);
        return;
      }
      const std::uint8_t b = byte_at(key, depth + prefix.size());
      const int s = upper_slot(n, b);
      if (s == no_slot) {
        stop_at_own_leaf(n, depth);
        return;
      }
      enter(n, depth);
      depth = take(s);
      c = slot_child(n, s);
      if (slot_byte(n, s) != b) {
        descend_last(c, depth);
        return;
      }
    }
  }

  /// Moves to the next key. Requires: not at the end.
  void next() { advance(); }

  /// Moves to the previous key; from the end, to the last key.
  void prev() {
    if (current_ == nullptr) {
      seek_last();
    } else {
      retreat();
    }
  }

  /// Moves to the next key; from the end, to the first key.
  void next_or_first() {
    if (current_ == nullptr) {
      seek_first();
    } else {
      advance();
    }
  }

 private:
  struct frame {
    const inner_node* node;
    int slot;
    /// The key length where the node starts (before its prefix).
    std::uint32_t depth;
  };

  void reset() {
    stack_.clear();
    key_.truncate(base_size_);
    current_ = nullptr;
  }

  /// Pushes n, starting at depth, and spells its prefix into the key.
  void enter(const inner_node* n, std::size_t depth) {
    stack_.push_back({n, leaf_slot, static_cast<std::uint32_t>(depth)});
    key_.truncate(depth);
    key_.append(prefix_of(n));
  }

  /// Points the top frame at slot s and spells its byte; returns the depth
  /// where the child starts.
  std::size_t take(int s) {
    frame& f = stack_.back();
    f.slot = s;
    const std::size_t end = f.depth + f.node->prefix_size;
    key_.truncate(end);
    key_.push_back(static_cast<char>(slot_byte(f.node, s)));
    return end + 1;
  }

  /// Makes l, at depth, the current leaf.
  void at_leaf(const leaf_type* l, std::size_t depth) {
    key_.truncate(depth);
    key_.append(l->suffix());
    current_ = l;
  }

  /// Positions at the own leaf of the top frame's node.
  void at_own_leaf() {
    frame& f = stack_.back();
    f.slot = leaf_slot;
    at_leaf(f.node->leaf.template as_leaf<Value>(), f.depth + f.node->prefix_size);
  }

  /// Goes down to the first leaf of the subtree at c, which starts at depth.
  void descend_first(child_ptr c, std::size_t depth) {
    for (;;) {
      if (c.is_leaf()) {
        at_leaf(c.template as_leaf<Value>(), depth);
        return;
      }
      const inner_node* n = c.inner();
      enter(n, depth);
      if (n->leaf) {
        at_own_leaf();
        return;
      }
      const int s = first_slot(n);
      depth = take(s);
      c = slot_child(n, s);
    }
  }

  /// Goes down to the last leaf of the subtree at c, which starts at depth.
  void descend_last(child_ptr c, std::size_t depth) {
    for (;;) {
      if (c.is_leaf()) {
        at_leaf(c.template as_leaf<Value>(), depth);
        return;
      }
      const inner_node* n = c.inner();
      enter(n, depth);
      const int s = last_slot(n);
      if (s == no_slot) {  // Only a leaf (not canonical, but walkable).
        at_own_leaf();
        return;
      }
      depth = take(s);
      c = slot_child(n, s);
    }
  }

  /// Positions at n's own leaf (everything else of n being above the
  /// target), or before n when it has none.
  void stop_at_own_leaf(const inner_node* n, std::size_t depth) {
    if (n->leaf) {
      enter(n, depth);
      at_own_leaf();
    } else {
      retreat();
    }
  }

  /// Moves past what the top frame points at: the next child, or up.
  void advance() {
    while (!stack_.empty()) {
      const frame& f = stack_.back();
      const int s = next_slot(f.node, f.slot);
      if (s != no_slot) {
        const inner_node* n = f.node;
        const std::size_t depth = take(s);
        descend_first(slot_child(n, s), depth);
        return;
      }
      stack_.pop_back();
    }
    current_ = nullptr;
  }

  /// Moves before what the top frame points at: the previous child, the
  /// node's own leaf, or up.
  void retreat() {
    while (!stack_.empty()) {
      const frame& f = stack_.back();
      if (f.slot != leaf_slot) {
        const int s = prev_slot(f.node, f.slot);
        if (s != no_slot) {
          const inner_node* n = f.node;
          const std::size_t depth = take(s);
          descend_last(slot_child(n, s), depth);
          return;
        }
        if (f.node->leaf) {
          at_own_leaf();
          return;
        }
      }
      stack_.pop_back();
    }
    current_ = nullptr;
  }

  child_ptr root_{};
  std::size_t base_size_ = 0;
  const leaf_type* current_ = nullptr;
  boost::container::small_vector<frame, 12> stack_{};
  key_buffer key_{};
};

}  // namespace keel::index::detail
