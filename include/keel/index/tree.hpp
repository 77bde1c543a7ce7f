// index::tree: an immutable radix tree over byte-string keys, the index under
// keel's store (the C++ counterpart of hashicorp/go-immutable-radix).
//
// A tree is a value: a root pointer and a size. Copying it is O(1) (one
// atomic increment) and gives a snapshot that never changes; writes go
// through a transaction (begin_transaction()), whose commit() returns a new
// tree sharing every node it did not touch with the old one. Keys are
// arbitrary bytes ('\0' included, any length below 4 GiB); one key may be a
// prefix of another. Values live inline in the leaves (handles are the
// intended use); a value is copied only when a write must move a leaf that
// another version shares (a new key splitting beside it, or an erase merging
// its parent away), so Value must be copy-constructible, and is moved or
// assigned in place otherwise.
//
// Layout and algorithms: adaptive nodes (node4/8/16/32 with sorted keys, and
// a node256 made of shared 16-child blocks) with compressed paths, leaves
// storing only the key bytes below their position, detail/node.hpp; writes, detail/mutation.hpp;
// ordered walks, detail/cursor.hpp.
//
// Costs: find is one descent comparing prefixes and the leaf's suffix; a
// write copies, once per
// transaction, each shared node on its path (and a node256's touched
// block), taking a reference on each child of the copy (at most 32 atomic
// increments per node); commit and snapshot copies are one increment.
//
// Invariants: size() is the number of keys; nodes reachable from a tree are
// never written again (a transaction writes only nodes it owns alone).
//
// Reclamation: nodes carry intrusive atomic reference counts; when the last
// tree, transaction or parent node holding a node lets go, on whatever
// thread, it is freed through NodePolicy, and exactly the nodes no other
// version uses go with it.
//
// Thread safety: const member functions may run concurrently on one tree,
// and different trees (copies of one another included) may be used and
// destroyed on different threads without synchronization. Assigning to a
// tree object while another thread reads that same object is a data race,
// as for std::shared_ptr: publish new versions through a mutex-protected
// tree or an atomic holder, and let readers copy it out.
#pragma once

#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "keel/index/detail/node.hpp"
#include "keel/index/detail/node_memory.hpp"
#include "keel/index/detail/read_api.hpp"
#include "keel/index/fwd.hpp"
#include "keel/index/iterator.hpp"
#include "keel/index/node_policy.hpp"

namespace keel::index {

namespace detail {
struct tree_access;
}  // namespace detail

template <class Value, node_policy NodePolicy>
  requires std::copy_constructible<Value>
class tree {
  static_assert(alignof(Value) <= alignof(std::max_align_t),
                "keel::index::tree: Value must not be over-aligned (alignof(Value) must be at "
                "most alignof(std::max_align_t)); store a pointer or handle to it instead");

 public:
  using value_type = Value;
  using policy_type = NodePolicy;
  using iterator = index::iterator<Value>;
  using reverse_iterator = index::reverse_iterator<Value>;
  using range = index::range<Value>;
  using transaction = index::transaction<Value, NodePolicy>;

  /// The empty tree.
  tree() noexcept = default;
  tree(const tree& other) noexcept : root_(other.root_), size_(other.size_) {
    detail::retain(root_);
  }
  tree(tree&& other) noexcept
      : root_(std::exchange(other.root_, detail::child_ptr{})),
        size_(std::exchange(other.size_, 0)) {}
  tree& operator=(const tree& other) noexcept {
    tree copy(other);
    swap(copy);
    return *this;
  }
  tree& operator=(tree&& other) noexcept {
    tree moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~tree() { memory::release(root_); }

  void swap(tree& other) noexcept {
    std::swap(root_, other.root_);
    std::swap(size_, other.size_);
  }
  friend void swap(tree& a, tree& b) noexcept { a.swap(b); }

  /// The number of keys, O(1).
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// The value stored under key, or nullptr.
  const Value* find(std::string_view key) const noexcept { return reads::find(root_, key); }

  /// Keys ascending.
  iterator begin() const { return reads::begin(root_); }
  iterator end() const { return reads::end(root_); }
  /// Keys descending.
  reverse_iterator rbegin() const { return reads::rbegin(root_); }
  reverse_iterator rend() const { return reads::rend(root_); }

  /// The first key >= key, ascending from there.
  iterator lower_bound(std::string_view key) const { return reads::lower_bound(root_, key); }
  /// The last key <= key, descending from there.
  reverse_iterator reverse_lower_bound(std::string_view key) const {
    return reads::reverse_lower_bound(root_, key);
  }
  /// The keys that start with prefix, ascending (all of them for "").
  range seek_prefix(std::string_view prefix) const { return reads::seek_prefix(root_, prefix); }
  /// The longest stored key that is a prefix of key (key itself included)
  /// and its value, or nothing.
  std::optional<std::pair<std::string, const Value*>> longest_prefix(std::string_view key) const {
    return reads::longest_prefix(root_, key);
  }

  /// A writer on top of this snapshot; the snapshot itself never changes.
  transaction begin_transaction() const noexcept { return transaction(*this); }

  /// Whether a and b are the same version (one root): O(1); same contents
  /// follow, the converse does not.
  friend bool same_version(const tree& a, const tree& b) noexcept { return a.root_ == b.root_; }

 private:
  friend class index::transaction<Value, NodePolicy>;
  friend struct detail::tree_access;
  using memory = detail::node_memory<Value, NodePolicy>;
  using reads = detail::read_api<Value>;

  /// Adopts one reference to root.
  tree(detail::child_ptr root, std::size_t size) noexcept : root_(root), size_(size) {}

  detail::child_ptr root_{};
  std::size_t size_ = 0;
};

}  // namespace keel::index

// tree::begin_transaction returns one, and transaction::commit a tree: either
// header gives both.
#include "keel/index/transaction.hpp"  // IWYU pragma: export
